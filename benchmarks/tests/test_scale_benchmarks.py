"""The whole-archive benchmarks' own parts: replicated real posts, the bare parse, the
synthetic history and the SVG charts (the measurements themselves are never asserted)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import bare_parse
import bench_history
import bench_scan_real
import charts
import pytest

SVG = "{http://www.w3.org/2000/svg}"


def corpus_or_skip() -> Path:
    if not bench_scan_real.CORPUS.is_dir():
        pytest.skip("../shared/corpus/posts is not here")
    return bench_scan_real.CORPUS


def test_vary_moves_every_url_under_its_copy_and_keeps_hosts():
    text = "from: https://www.bbc.co.uk/a.html\n[t](https://www.bbc.co.uk/a.html)\n<img src=\"http://x.example\">"
    assert bench_scan_real.vary(text, 0) == text
    varied = bench_scan_real.vary(text, 3)
    assert varied.count("https://www.bbc.co.uk/r3/a.html") == 2
    assert 'src="http://x.example/r3"' in varied
    assert bench_scan_real.copy_name("2014-09-25-标题.md", 3) == "2014-09-25-标题-r3.md"


def test_replicated_site_is_deterministic_and_links_are_distinct(tmp_path: Path):
    corpus = corpus_or_skip()
    sources = len(bench_scan_real.corpus_posts(corpus))
    posts = sources * 2 + 5
    one = bench_scan_real.replicate(tmp_path / "a", posts, corpus)
    two = bench_scan_real.replicate(tmp_path / "b", posts, corpus)
    names = sorted(p.name for p in (tmp_path / "a" / "_posts").iterdir())
    assert len(names) == posts
    assert one["bytes"] == two["bytes"]
    for name in names[:20]:
        assert (tmp_path / "a" / "_posts" / name).read_bytes() == (
            tmp_path / "b" / "_posts" / name
        ).read_bytes()
    # copy 1 of a post cites none of copy 0's URLs
    first = bench_scan_real.corpus_posts(corpus)[0]
    links0 = set(bare_parse.parse_one(first.read_bytes(), bare_parse.markdown_parser()))
    copy = tmp_path / "a" / "_posts" / bench_scan_real.copy_name(first.name, 1)
    links1 = set(bare_parse.parse_one(copy.read_bytes(), bare_parse.markdown_parser()))
    web0 = {u for u in links0 if u.startswith("http")}
    assert web0 and not web0 & links1


def test_bare_parse_reads_every_post_of_the_site(tmp_path: Path):
    corpus = corpus_or_skip()
    site = tmp_path / "site"
    bench_scan_real.replicate(site, 30, corpus)
    done = bare_parse.parse_site(site)
    assert done["posts"] == 30
    assert done["links"] > 30  # the corpus averages more than ten links a post


def test_bare_parse_finds_front_matter_markdown_and_html_links():
    post = (
        b"---\ntitle: t\nfrom: https://src.example/a\n---\n"
        b"[title](https://src.example/a)\n\n<div><a href=\"https://x.example/b\">b</a>"
        b"<img src=\"https://img.example/c.jpg\"></div>\n"
    )
    links = bare_parse.parse_one(post, bare_parse.markdown_parser())
    assert Counter(links) == Counter({
        "https://src.example/a": 2, "https://x.example/b": 1, "https://img.example/c.jpg": 1,
    })


def test_synthetic_history_is_deterministic_with_the_stated_mix():
    urls = [f"http://h{i % 7}.example/p{i}" for i in range(2000)]
    night1 = [bench_history.synthetic(u, i, 1) for i, u in enumerate(urls)]
    again = [bench_history.synthetic(u, i, 1) for i, u in enumerate(urls)]
    assert [(r.status, r.http_status) for r in night1] == [(r.status, r.http_status) for r in again]
    statuses = Counter(str(r.status) for r in night1)
    assert 0.80 < statuses["ok"] / len(urls) < 0.92
    assert statuses["broken"] and statuses["redirected"] and statuses["blocked"]
    night2 = Counter(str(bench_history.synthetic(u, i, 2).status) for i, u in enumerate(urls))
    assert night2["server-error"] == 0  # 503s come on odd nights only


def test_charts_are_valid_standalone_svg(tmp_path: Path):
    line = charts.line_chart(
        "RSS & speed <by N>", "URLs", "MB",
        [charts.Series("linkkeeper", [(100_000, 190.0), (300_000, 205.0)]),
         charts.Series("raw", [(100_000, 60.0)])],
        tmp_path / "line.svg", aim=300,
    )
    bar = charts.bar_chart("posts/s", "posts/s", [("bare", 1200.0), ("scan", 800.0)],
                           tmp_path / "bar.svg", aim=840)
    for path in (line, bar):
        root = ET.fromstring(path.read_bytes())  # well-formed XML, escaped text
        assert root.tag == f"{SVG}svg" and root.get("viewBox")
        assert all(el.tag != f"{SVG}script" for el in root.iter())
    assert len(list(ET.parse(line).getroot().iter(f"{SVG}polyline"))) == 1
    assert len(list(ET.parse(bar).getroot().iter(f"{SVG}rect"))) >= 3
    assert charts.nice_max(213) == 250 and charts.nice_max(0.7) == 0.8


def test_remembered_points_accumulate_per_series(tmp_path: Path):
    store = tmp_path / "points.json"
    charts.remember("c", "a", 100, 1.0, store)
    series = charts.remember("c", "a", 300, 2.0, store)
    assert [(s.name, sorted(s.points)) for s in series] == [("a", [(100.0, 1.0), (300.0, 2.0)])]
    assert json.loads(store.read_text())["c"]["a"] == {"100": 1.0, "300": 2.0}


def _history_rows(db_path: Path) -> dict[str, list[tuple]]:
    import sqlite3

    from linkkeeper.history.recorder import _CHECK_COLS

    with sqlite3.connect(db_path) as conn:
        check_cols = ", ".join(_CHECK_COLS)
        return {
            "checks": conn.execute(f"SELECT {check_cols} FROM checks ORDER BY run_id, url"
                                   ).fetchall(),
            "link_state": conn.execute("SELECT * FROM link_state ORDER BY url").fetchall(),
            "plan": conn.execute("SELECT * FROM plan ORDER BY run_id, seq").fetchall(),
            "runs": conn.execute("SELECT id, state, command, options, total, done, requests,"
                                 " counts, degraded, archive FROM runs ORDER BY id").fetchall(),
            "host_failures": conn.execute("SELECT run_id, host, links, status, reason FROM"
                                          " host_failures ORDER BY run_id, host").fetchall(),
        }


def _json_report(db_path: Path) -> dict:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "linkkeeper", "report", "--db", str(db_path),
                          "--format", "json"], check=True, capture_output=True, text=True).stdout
    doc = json.loads(out)
    for key in ("started_at", "finished_at", "pid"):
        doc["run"].pop(key, None)
    doc["report"].pop("generated_at")
    return doc


def test_bulk_history_records_what_the_recorder_records(tmp_path: Path):
    """The 1 M-link history is written by `build(bulk=True)` (SQL copies of 1,000 recorded URLs):
    it must give the very rows, and the same report, as recording every URL (`build`)."""
    import shutil
    import subprocess
    import sys

    from gen_site import generate_site

    site = tmp_path / "site"
    generate_site(site, posts=700, hosts=7, distinct_urls=2600)
    scanned = tmp_path / "scanned.db"
    subprocess.run([sys.executable, "-m", "linkkeeper", "scan", str(site), "--db", str(scanned)],
                   check=True, capture_output=True)
    one, two = tmp_path / "recorder.db", tmp_path / "bulk.db"
    shutil.copy(scanned, one)
    shutil.copy(scanned, two)
    bench_history.build(one, 4, tmp_path / "s1.jsonl")
    bench_history.build(two, 4, tmp_path / "s2.jsonl", bulk=True)
    recorded, bulk = _history_rows(one), _history_rows(two)
    assert len(recorded["checks"]) == 4 * len(recorded["link_state"]) > 4 * 2000
    for table in recorded:
        assert bulk[table] == recorded[table], table
    assert _json_report(two) == _json_report(one)
