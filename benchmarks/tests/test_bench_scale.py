"""bench_scale's world (the measurements themselves are never asserted)."""

from __future__ import annotations

from pathlib import Path

import bench_scale
import gen_site
import harness


def test_the_ok_world_is_all_ok_and_leaves_gen_site_as_it_was(tmp_path: Path, monkeypatch
                                                               ) -> None:
    monkeypatch.setattr(harness, "OUT_DIR", tmp_path)
    worlds = dict(gen_site.WORLDS)
    site, manifest = bench_scale.site_for(60, 5, 47999, "ok")
    assert set(manifest["by_behaviour"]) == {"ok"}
    urls = (site / "_benchmark" / "urls.txt").read_text().split()
    assert len(urls) == 60 and all("/ok/" in url or "/img/" in url for url in urls)
    assert worlds == gen_site.WORLDS
    _, mixed = bench_scale.site_for(60, 5, 47999, "mix")
    assert len(mixed["by_behaviour"]) > 1
