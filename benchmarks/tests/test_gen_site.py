"""The generated site is what the benchmarks claim it is: format, mix, counts, determinism."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from pathlib import Path

import frontmatter
import pytest
from gen_site import BEHAVIOURS, apportion, generate_site, host_weights, main
from hypothesis import given
from hypothesis import strategies as st
from selectolax.lexbor import LexborHTMLParser as HTMLParser


def digest(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name != "manifest.json":  # it holds timings
            h.update(path.relative_to(folder).as_posix().encode())
            h.update(path.read_bytes())
    return h.hexdigest()


@given(
    st.integers(min_value=0, max_value=10**6),
    st.lists(st.floats(min_value=0.001, max_value=1000), min_size=1, max_size=30),
)
def test_apportion_is_exact_and_close_to_proportional(total, weights):
    parts = apportion(total, weights)
    assert sum(parts) == total
    assert all(p >= 0 for p in parts)
    for part, weight in zip(parts, weights, strict=True):
        assert abs(part - total * weight / sum(weights)) < 1


def test_mix_table_sums_to_one_and_host_weights_favour_the_main_host():
    assert sum(b.share for b in BEHAVIOURS) == pytest.approx(1.0)
    weights = host_weights(20)
    assert sum(weights) == pytest.approx(1.0)
    assert weights[0] == pytest.approx(0.70) and weights[1] == pytest.approx(0.15)
    assert weights[2:] == sorted(weights[2:], reverse=True)


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    a = generate_site(tmp_path / "a", posts=40, seed=7, html=True)
    b = generate_site(tmp_path / "b", posts=40, seed=7, html=True)
    generate_site(tmp_path / "c", posts=40, seed=8)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert digest(tmp_path / "a" / "_posts") != digest(tmp_path / "c" / "_posts")
    assert a.by_behaviour == b.by_behaviour


def test_posts_have_the_archive_layout(tmp_path):
    generate_site(tmp_path, posts=60, seed=3)
    posts = sorted((tmp_path / "_posts").glob("*.md"))
    assert len(posts) == 60
    with_title_line = 0
    for path in posts:
        assert re.match(r"\d{4}-\d{2}-\d{2}-.+\.md$", path.name)
        text = path.read_text(encoding="utf-8")
        post = frontmatter.loads(text)
        assert post["layout"] == "post"
        assert set(post.keys()) >= {"title", "date", "author", "from", "tags", "categories"}
        assert post["from"].startswith("http://www.news")
        if f"]({post['from']})\n------\n" in text:
            with_title_line += 1
            assert re.search(r"^<!--(\d+|NaN)-->$", post.content, re.MULTILINE)
        assert "<div>" in post.content and "</div>" in post.content
    assert with_title_line > 40  # ~90% carry the marker + [title](url) + ------ head


def test_every_link_is_a_listed_url_and_every_listed_url_is_cited(tmp_path):
    summary = generate_site(tmp_path, posts=200, seed=5, distinct_urls=700, port=8080)
    listed = set((tmp_path / "_benchmark" / "urls.txt").read_text().split())
    assert len(listed) == summary.distinct_urls == 700
    cited: set[str] = set()
    for path in (tmp_path / "_posts").glob("*.md"):
        post = frontmatter.loads(path.read_text(encoding="utf-8"))
        cited.add(post["from"])
        html = HTMLParser(post.content)
        for node in html.css("a[href], img[src], iframe[src], video[src], video[poster]"):
            for attribute in ("href", "src", "poster"):
                value = node.attributes.get(attribute)
                if value:
                    cited.add(value)
        for node in html.css("img[srcset], img[data-lazy-srcset]"):
            for attribute in ("srcset", "data-lazy-srcset"):
                for candidate in (node.attributes.get(attribute) or "").split(","):
                    url = candidate.strip().split(" ")[0]
                    if url.startswith("http"):
                        cited.add(url)
    assert cited == listed
    assert all(url.startswith("http://www.news") and ":8080/" in url for url in listed)


def test_failure_mix_and_host_skew_are_exact(tmp_path):
    summary = generate_site(tmp_path, posts=5000 // 4, seed=1, distinct_urls=5000)
    assert summary.distinct_urls == 5000
    assert summary.by_behaviour["ok"] == pytest.approx(4000, abs=2)
    assert summary.by_behaviour["gone404"] + summary.by_behaviour["gone410"] == pytest.approx(
        400, abs=2
    )
    assert summary.by_host["www.news0.example"] == pytest.approx(3500, abs=2)
    assert len(summary.by_host) == 20
    urls = (tmp_path / "_benchmark" / "urls.txt").read_text().split()
    paths = Counter(url.split("/")[3] for url in urls)
    assert set(paths) == {
        "ok",
        "img",
        "redirect",
        "status",
        "flaky",
        "ratelimit",
        "head",
        "block",
        "slow",
    }


def test_sizes_look_like_the_real_corpus(tmp_path):
    generate_site(tmp_path, posts=400, seed=2)
    sizes = sorted(p.stat().st_size for p in (tmp_path / "_posts").glob("*.md"))
    median = sizes[len(sizes) // 2]
    assert 4_000 < median < 12_000
    assert sizes[-1] > 20_000


def test_html_rendering_has_an_index_linking_every_post(tmp_path):
    generate_site(tmp_path, posts=30, seed=4, html=True)
    index = HTMLParser((tmp_path / "_site" / "index.html").read_text(encoding="utf-8"))
    targets = [a.attributes["href"] for a in index.css("a[href]")]
    assert len(targets) == 30
    assert all((tmp_path / "_site" / t).is_file() for t in targets)


def test_cli_reports_json_and_refuses_impossible_requests(tmp_path, capsys):
    assert main([str(tmp_path / "s"), "--posts", "10", "--seed", "1"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["posts"] == 10 and summary["distinct_urls"] == 30
    assert main([str(tmp_path / "t"), "--posts", "2", "--distinct-urls", "10000"]) == 2
    assert "too few" in capsys.readouterr().err
