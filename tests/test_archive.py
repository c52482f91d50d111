"""Archiving during `linkkeeper check`, verified by independent readers.

`check` runs as a subprocess (as cron runs it) against the fault-injection web on
loopback (--connect-to, --offline-dns: nothing leaves the machine). What it wrote is then
read back with warcio (digest checks), `warcio check`, cdxj-indexer and pywb, and
compared with the exact bytes the fault web sent (`web.payload_for`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web as aioweb
from cdxj_indexer import CDXJIndexer
from helpers import clean_env, read_warc, unavailable, web_args, write_site
from hypothesis import given
from hypothesis import strategies as st
from test_warc import warcio_check

from linkkeeper.archive.archiver import ArchiveCounts, parse_kinds
from linkkeeper.archive.records import read_record
from linkkeeper.check.checker import Checker
from linkkeeper.check.options import CheckOptions
from linkkeeper.cli.archive import format_archive_summary, human_bytes, parse_size
from linkkeeper.codings import decoded_prefix
from linkkeeper.faultweb import Behaviour, FaultWeb, Hit
from linkkeeper.vocab import Kind

LINKKEEPER = [sys.executable, "-m", "linkkeeper"]

POST = """---
layout: post
title: "{title}"
date: 2021-01-0{day}T00:00:00.000Z
from: {source}
---
[{title}]({source})
------

<div>
{images}
<p>Text with <a href="{inline}">an inline link</a>.</p>
<div class="related"><h3>Related</h3><ul>
{related}
</ul></div>
</div>
"""


def make_site(root: Path, posts: list[dict[str, Any]]) -> Path:
    """posts: dicts with source, and optionally images, related, inline URL lists."""
    texts = {}
    for i, post in enumerate(posts, start=1):
        texts[f"2021-01-{i:02d}-story-{i}.md"] = POST.format(
            title=f"Story {i}",
            day=i % 9 + 1,
            source=post["source"],
            images="\n".join(f'<p><img src="{u}" alt="photo"></p>' for u in post.get("images", [])),
            inline=post.get("inline", "https://blog.example/ok/inline"),
            related="\n".join(f'<li><a href="{u}">more</a></li>' for u in post.get("related", [])),
        )
    return write_site(root, texts)


def check_args(web: FaultWeb) -> list[str]:
    """For `check`: HEAD first and no soft-404 probes, as these tests count what archiving GETs."""
    return [*web_args(web), "--head-first", "--no-soft404"]


def run(*args: object, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LINKKEEPER, *map(str, args)],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=timeout,
    )


def rows(db: Path, sql: str = "SELECT * FROM snapshots ORDER BY id", *params: object) -> list[dict]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(sql, params)]


def sha1_b32(data: bytes) -> str:
    return "sha1:" + base64.b32encode(hashlib.sha1(data).digest()).decode()


def path_of(url: str) -> tuple[str, str]:
    rest = url.split("://", 1)[1]
    host, _, path = rest.partition("/")
    return host, "/" + path


def cdxj_lines(folder: Path, warc: Path) -> list[dict[str, Any]]:
    import io

    out = io.StringIO()
    rel = warc.relative_to(folder).as_posix()
    CDXJIndexer(output=out, inputs=[str(warc)], filename=rel, sort=True).process_all()
    lines = []
    for line in out.getvalue().splitlines():
        surt, timestamp, block = line.split(" ", 2)
        lines.append({"surt": surt, "timestamp": timestamp, **json.loads(block)})
    return lines


def verify_folder(folder: Path, db: Path) -> list[dict[str, Any]]:
    """All the acceptance checks on a WARC folder and its `snapshots` rows; returns the rows."""
    assert not list(folder.rglob("*.open")), "a file was left open"
    warcs = sorted(folder.rglob("*.warc.gz"))
    assert warcs
    warcio_check(*warcs)
    indexed: dict[tuple[str, int], dict[str, Any]] = {}
    for warc in warcs:
        records = read_warc(warc)
        assert records[0]["type"] == "warcinfo"
        for first, second in zip(records[1::2], records[2::2], strict=True):
            assert first["type"] in ("response", "revisit") and second["type"] == "request"
            resp, req = first["headers"], second["headers"]
            assert req.get_header("WARC-Concurrent-To") == resp.get_header("WARC-Record-ID")
            assert req.get_header("WARC-Date") == resp.get_header("WARC-Date")
            assert req.get_header("WARC-Target-URI") == resp.get_header("WARC-Target-URI")
            assert resp.protocol == "WARC/1.1"
            if first["type"] == "response":
                assert resp.get_header("WARC-Payload-Digest") == sha1_b32(first["payload"])
        rel = warc.relative_to(folder).as_posix()
        for line in cdxj_lines(folder, warc):
            indexed[(rel, int(line["offset"]))] = line
    snapshot_rows = rows(db)
    assert snapshot_rows
    for row in snapshot_rows:
        record = read_record(folder, row["warc_file"], row["offset"], row["length"])
        assert record.record_type == row["record_type"]
        assert record.warc_header("WARC-Target-URI") == row["url"]
        assert record.warc_header("WARC-Payload-Digest") == row["payload_digest"]
        assert record.http_status == row["http_status"]
        if row["record_type"] == "response":
            assert sha1_b32(record.payload) == row["payload_digest"]
            assert len(record.payload) == row["payload_length"]
        else:
            original = rows(db, "SELECT * FROM snapshots WHERE id=?", row["revisit_of"])[0]
            assert original["record_type"] == "response"
            assert original["payload_digest"] == row["payload_digest"]
            assert record.warc_header("WARC-Refers-To") == original["record_id"]
        line = indexed[(row["warc_file"], row["offset"])]
        assert int(line["length"]) == row["length"]
        assert line["digest"].removeprefix("sha1:") == row["payload_digest"].removeprefix("sha1:")
        assert line["url"] == row["url"]
    return snapshot_rows


# ---------------------------------------------------------------------------------------------
# One nightly check of a small site, shared by the tests below


SOURCES = [
    "https://news.example/gzip/storm-floods-harbour",
    "https://news.example/brotli/council-votes-budget",
    "http://news.example/chunked/bridge-reopens",
    "https://www.news.example/ok/museum-opens",
]
IMAGES = ["https://images.example/img/lead.jpg", "https://images.example/img/chart.png"]
RELATED = [
    "https://news.example/redirect/301/2/moved-story",
    "https://news.example/status/404/gone-story",
    "https://news.example/large/300000/huge-dossier",
    "https://cdn.example/large/150000/report",
]
INLINE = "https://blog.example/ok/inline-aside"
CAP = 200_000


@pytest.fixture(scope="module")
def nightly(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with FaultWeb() as web:
        root = tmp_path_factory.mktemp("nightly")
        site = make_site(
            root / "site",
            [
                {"source": SOURCES[0], "images": IMAGES, "related": RELATED[:2], "inline": INLINE},
                {"source": SOURCES[1], "related": RELATED[2:], "inline": INLINE},
                {"source": SOURCES[2], "images": IMAGES[:1]},
                {"source": SOURCES[3]},
            ],
        )
        out = root / "run.json"
        res = run(
            "check",
            site,
            *check_args(web),
            "--attempts",
            "1",
            "--format",
            "json",
            "-o",
            out,
            "--max-capture-size",
            str(CAP),
            "--operator",
            "Archive desk <desk@news.test>",
        )
        assert res.returncode == 2, res.stderr  # the 404 is a new failure
        yield {
            "web": web,
            "site": site,
            "db": site / "linkkeeper.db",
            "warcs": site / "warcs",
            "doc": json.loads(out.read_text()),
            "result": res,
        }


def test_check_summary_and_json_count_what_was_written(nightly: dict[str, Any]) -> None:
    archive = nightly["doc"]["run"]["archive"]
    # 4 sources + 2 images + redirect (2 hops + page) + 2 large pages: 11 response records
    assert archive["captures"] == 11
    assert archive["urls"] == 9  # the 404 is not archived
    assert archive["revisits"] == 0 and archive["truncations"] == 1
    warc_bytes = sum(p.stat().st_size for p in nightly["warcs"].rglob("*.warc.gz"))
    assert 0 < archive["bytes_written"] < warc_bytes  # warcinfo records are not captures
    text = nightly["result"].stdout
    assert "archived 9 URLs: 11 captures, 0 revisits, 1 truncated" in text


def test_every_record_reads_back_valid_and_every_row_points_at_it(nightly: dict[str, Any]) -> None:
    snapshot_rows = verify_folder(nightly["warcs"], nightly["db"])
    assert {r["run_id"] for r in snapshot_rows} == {nightly["doc"]["run"]["id"]}
    index = (nightly["warcs"] / "index.cdxj").read_text()
    assert all(f'"offset": "{r["offset"]}"' in index for r in snapshot_rows)


def test_payloads_are_the_exact_bytes_the_server_sent(nightly: dict[str, Any]) -> None:
    web, folder = nightly["web"], nightly["warcs"]
    by_url = {r["url"]: r for r in rows(nightly["db"])}
    for url in [*SOURCES, *IMAGES, RELATED[3], "https://news.example/ok/moved-story"]:
        row = by_url[url]
        record = read_record(folder, row["warc_file"], row["offset"], row["length"])
        assert record.payload == web.payload_for(*path_of(url)), url
        assert row["truncated"] == 0
    gz = by_url[SOURCES[0]]
    record = read_record(folder, gz["warc_file"], gz["offset"], gz["length"])
    assert record.http_header("Content-Encoding") == "gzip"
    assert record.warc_header("WARC-IP-Address") == "127.0.0.1"
    chunked = by_url[SOURCES[2]]
    record = read_record(folder, chunked["warc_file"], chunked["offset"], chunked["length"])
    assert record.http_header("X-Orig-Transfer-Encoding") == "chunked"
    assert record.http_header("Transfer-Encoding") is None
    assert record.http_header("Content-Length") == str(len(record.payload))


def test_redirect_hops_are_captured_and_truncation_is_marked(nightly: dict[str, Any]) -> None:
    folder, db = nightly["warcs"], nightly["db"]
    hops = rows(
        db, "SELECT url, http_status FROM snapshots WHERE url LIKE '%moved-story' ORDER BY id"
    )
    assert [(h["url"].split(".example")[1], h["http_status"]) for h in hops] == [
        ("/redirect/301/2/moved-story", 301),
        ("/redirect/301/1/moved-story", 301),
        ("/ok/moved-story", 200),
    ]
    [big] = rows(db, "SELECT * FROM snapshots WHERE url=?", RELATED[2])
    record = read_record(folder, big["warc_file"], big["offset"], big["length"])
    assert big["truncated"] == 1 and record.warc_header("WARC-Truncated") == "length"
    assert record.payload == nightly["web"].payload_for(*path_of(RELATED[2]))[:CAP]


def test_only_live_urls_of_archived_kinds_are_captured(nightly: dict[str, Any]) -> None:
    web, db = nightly["web"], nightly["db"]
    captured = {r["url"] for r in rows(db)}
    assert RELATED[1] not in captured  # 404
    assert INLINE not in captured  # inline links are opt-in
    assert web.requests(host="blog.example", method="GET") == []  # checked with HEAD only
    for url in SOURCES:  # archived URLs cost exactly one request: the GET that was archived
        host, path = path_of(url)
        assert [e.method for e in web.requests(host=host, path=path)] == ["GET"], url


def test_warcinfo_names_software_operator_and_robots_policy(nightly: dict[str, Any]) -> None:
    [warc] = nightly["warcs"].rglob("*.warc.gz")
    info = read_warc(warc)[0]
    text = info["payload"].decode()
    assert "software: linkkeeper/" in text
    assert "operator: Archive desk <desk@news.test>" in text
    assert "robots: ignore" in text
    assert "http-header-user-agent: linkkeeper/" in text


def test_pywb_replays_the_folder_with_the_bytes_sent(nightly: dict[str, Any]) -> None:
    from pywb_env import PywbUnavailable, ensure_pywb, get, wayback

    from linkkeeper.archive.cdx import pywb_collection_config

    try:
        python = ensure_pywb()
    except PywbUnavailable as err:
        unavailable("PYWB", f"pywb cannot be installed here: {err}")
    web, folder = nightly["web"], nightly["warcs"]
    by_url = {r["url"]: r for r in rows(nightly["db"])}
    browser = {"Accept-Encoding": "gzip, deflate, br", "User-Agent": "replay-test"}
    config = pywb_collection_config(folder, "news")
    with wayback(python, config, nightly["site"].parent / "pywb") as port:
        for url in [*SOURCES, *IMAGES, RELATED[3], "https://news.example/ok/moved-story"]:
            stamp = datetime.fromisoformat(by_url[url]["date"]).strftime("%Y%m%d%H%M%S")
            response = get(port, f"/news/{stamp}id_/{url}", browser)
            body = response.read()
            assert response.status == 200, url
            assert body == web.payload_for(*path_of(url)), url
        redirect = by_url[RELATED[0]]
        stamp = datetime.fromisoformat(redirect["date"]).strftime("%Y%m%d%H%M%S")
        response = get(port, f"/news/{stamp}id_/{RELATED[0]}", browser)
        response.read()
        assert response.status == 301
        assert response.getheader("Location").endswith("/redirect/301/1/moved-story")


# ---------------------------------------------------------------------------------------------
# Second night, crash, --no-snapshot, change detection


def test_second_run_on_an_unchanged_web_adds_only_small_revisits(
    faultweb: FaultWeb, tmp_path: Path
) -> None:
    """Sized like real news pages: fault-web articles are ~2 kB (smaller than a revisit's own
    headers), so the pages here are /large/ bodies of 200 kB, about a real article page."""
    pages = [f"https://news.example/large/200000/article-{i}" for i in range(8)]
    site = make_site(
        tmp_path / "site",
        [
            {
                "source": pages[i],
                "related": [pages[i + 4]],
                "images": [f"https://images.example/img/{i}.jpg"],
            }
            for i in range(4)
        ],
    )
    folder = site / "warcs"
    first = run("check", site, *check_args(faultweb), "--format", "json")
    assert first.returncode == 0, first.stderr
    first_files = set(folder.rglob("*.warc.gz"))
    first_bytes = sum(p.stat().st_size for p in first_files)
    second = run("check", site, *check_args(faultweb), "--format", "json")
    assert second.returncode == 0, second.stderr
    added = set(folder.rglob("*.warc.gz")) - first_files
    added_bytes = sum(p.stat().st_size for p in added)
    types = [r["type"] for p in added for r in read_warc(p)]
    assert set(types) == {"warcinfo", "revisit", "request"}
    assert types.count("revisit") == 12
    assert json.loads(second.stdout)["run"]["archive"]["revisits"] == 12
    assert added_bytes < 0.05 * first_bytes, (added_bytes, first_bytes)
    verify_folder(folder, site / "linkkeeper.db")


def test_kill_9_while_writing_loses_no_record_a_row_points_at(
    faultweb: FaultWeb, tmp_path: Path
) -> None:
    """Killed once rows are committed while 3 MB bodies keep streaming into the open file."""
    pages = [f"https://cdn.example/large/3000000/dossier-{i}" for i in range(16)]
    site = make_site(
        tmp_path / "site",
        [{"source": pages[i * 4], "related": pages[i * 4 + 1 : i * 4 + 4]} for i in range(4)],
    )
    db, folder = site / "linkkeeper.db", site / "warcs"
    proc = subprocess.Popen(
        [
            *LINKKEEPER,
            "check",
            str(site),
            *check_args(faultweb),
            "--host-concurrency",
            "2",
            "--host-rate",
            "4",
            "--quiet",
        ],
        env=clean_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
            try:
                if db.exists() and rows(db, "SELECT count(*) AS n FROM snapshots")[0]["n"] >= 4:
                    break
            except sqlite3.OperationalError:
                pass
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    [left] = folder.rglob("*.warc.gz.open")
    before = rows(db)
    assert 0 < len(before) < 16  # some rows committed, the run not finished

    res = run("check", site, *check_args(faultweb))
    assert res.returncode == 0, res.stderr
    assert f"repaired {left.relative_to(folder).as_posix()}" in res.stderr
    assert not left.exists()
    after = verify_folder(folder, db)  # every closed file passes; every row readable
    assert after[: len(before)] == before
    # pages checked before the kill whose snapshot rows died with it were captured again
    assert {r["url"] for r in after if r["run_id"] == 1} == set(pages)


def test_no_snapshot_checks_without_archiving(faultweb: FaultWeb, tmp_path: Path) -> None:
    site = make_site(tmp_path / "site", [{"source": "https://news.example/ok/quiet-night"}])
    res = run("check", site, *check_args(faultweb), "--no-snapshot", "--format", "json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["run"]["archive"] is None
    assert not (site / "warcs").exists()
    assert [e.method for e in faultweb.requests(path="/ok/quiet-night")] == ["HEAD"]


async def _growing(hit: Hit) -> aioweb.StreamResponse:
    """A page that grows by a paragraph on every request (so HEAD sees a new length)."""
    body = b"<html><body>" + b"<p>update</p>" * hit.count + b"</body></html>"
    return aioweb.Response(body=body, content_type="text/html")


def test_max_age_spares_unchanged_pages_and_recaptures_changed_ones(
    faultweb: FaultWeb, tmp_path: Path
) -> None:
    faultweb.add_behaviour(Behaviour("growing", _growing))
    site = make_site(
        tmp_path / "site",
        [
            {"source": "https://news.example/ok/steady"},
            {"source": "https://news.example/growing/live-blog"},
        ],
    )
    db = site / "linkkeeper.db"
    assert run("check", site, *check_args(faultweb), "--snapshot-max-age", "7d").returncode == 0
    res = run("check", site, *check_args(faultweb), "--snapshot-max-age", "7d", "--format", "json")
    assert res.returncode == 0, res.stderr
    archive = json.loads(res.stdout)["run"]["archive"]
    assert archive["captures"] == 1 and archive["revisits"] == 0
    assert [e.method for e in faultweb.requests(path="/ok/steady")] == ["GET", "HEAD"]
    assert [e.method for e in faultweb.requests(path="/growing/live-blog")] == [
        "GET",
        "HEAD",
        "GET",
    ]
    latest = rows(db, "SELECT * FROM snapshots WHERE url LIKE '%live-blog' ORDER BY id")
    assert len(latest) == 2 and latest[0]["payload_digest"] != latest[1]["payload_digest"]
    verify_folder(site / "warcs", db)


# ---------------------------------------------------------------------------------------------
# The checker's capture path and small parsers


async def _unicode_headers(hit: Hit) -> aioweb.StreamResponse:
    return aioweb.Response(
        body=b"x",
        headers={
            "X-Title": "Caf\u00e9 \u00fcber",
            "Content-Disposition": 'inline; filename="r\u00e9sum\u00e9.pdf"',
        },
    )


async def test_captured_headers_are_the_bytes_received(tmp_path: Path) -> None:
    from linkkeeper.archive.warc import WarcStore
    from linkkeeper.exchange import Exchange

    with FaultWeb(behaviours=[Behaviour("unicode", _unicode_headers)]) as web:
        options = CheckOptions(
            connect_to=web.connect_to_args(),
            offline_dns=True,
            trust_env=False,
            capture=lambda url: True,
            soft404=False,
            read_pages=False,
        )
        async with Checker(options) as checker:
            [result] = [r async for r in checker.run(["http://news.example/unicode/h"])]
    [exchange] = result.exchanges
    assert isinstance(exchange, Exchange)
    assert ("X-Title", "Caf\u00e9 \u00fcber") in exchange.response_headers
    with WarcStore(tmp_path) as store:
        capture = await asyncio.to_thread(store.write, exchange)
    record = read_record(tmp_path, capture.warc_file, capture.offset, capture.length)
    raw = record.member
    import zlib

    inflated = zlib.decompressobj(31).decompress(raw)
    assert "X-Title: Café über\r\n".encode() in inflated  # UTF-8 as sent, not double-encoded


def test_parse_kinds_and_sizes() -> None:
    assert parse_kinds("source, related,image") == {Kind.SOURCE, Kind.RELATED, Kind.IMAGE}
    assert parse_kinds("all") == set(Kind)
    with pytest.raises(ValueError, match="unknown link kind"):
        parse_kinds("source,video")
    assert parse_size("50MiB") == 50 * 2**20
    assert parse_size("1GB") == parse_size("1G") == 10**9
    assert parse_size("500k") == 500_000 and parse_size("12345") == 12345
    assert human_bytes(999) == "999 B" and human_bytes(1_234_567) == "1.2 MB"
    line = format_archive_summary(
        ArchiveCounts(captures=3, revisits=2, truncations=1, bytes_written=2_500_000, urls=4)
    )
    assert line == "archived 4 URLs: 3 captures, 2 revisits, 1 truncated, 2.5 MB written"


@given(
    st.integers(min_value=0, max_value=10**15), st.sampled_from(["", "k", "M", "G", "KiB", "MiB"])
)
def test_parse_size_reads_what_people_write(number: int, unit: str) -> None:
    factor = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "KiB": 2**10, "MiB": 2**20}[unit]
    assert parse_size(f"{number}{unit}") == int(float(number) * factor) or number > 2**53


@given(st.binary(max_size=2000))
def test_decode_body_never_raises(data: bytes) -> None:
    import gzip

    for encoding in ("gzip", "br", "deflate", "", None):
        assert isinstance(decoded_prefix(data, encoding, 1000), bytes)
    assert decoded_prefix(gzip.compress(data), "gzip", 10**6) == data


async def test_captures_without_fingerprints_skip_page_reading_only() -> None:
    """`snapshot` turns fingerprints off: the same exchange is captured, no page is parsed."""
    url = "http://news.example/gzip/2026/story-1"
    results = {}
    with FaultWeb() as web:
        for fingerprints in (True, False):
            options = CheckOptions(
                connect_to=web.connect_to_args(),
                offline_dns=True,
                trust_env=False,
                capture=lambda url: True,
                fingerprints=fingerprints,
                soft404=False,
                read_pages=False,
            )
            async with Checker(options) as checker:
                [results[fingerprints]] = [r async for r in checker.run([url])]
    with_fp, without = results[True], results[False]
    assert with_fp.fingerprint and with_fp.sample
    assert without.fingerprint is None and without.sample is None
    assert (
        without.status == with_fp.status and without.exchanges[0].body == with_fp.exchanges[0].body
    )


async def test_queued_results_are_written_in_batches_that_keep_revisits(tmp_path: Path) -> None:
    """Results waiting in the queue go to the writer thread together, but one URL's second
    capture still sees the first as its prior (a revisit), and the rows keep their order."""
    from test_warc import exchange

    from linkkeeper.archive.archiver import ArchiveOptions, Archiver
    from linkkeeper.check.result import CheckResult
    from linkkeeper.db import connect
    from linkkeeper.vocab import Status

    db = connect(tmp_path / "lk.db")
    urls = [f"http://news.test/{i}" for i in range(20)]
    archiver = Archiver(db, ArchiveOptions(folder=tmp_path / "warcs"))
    archiver.plan([*urls, "http://news.test/again"], explicit=True)
    again = "http://news.test/again"
    order = [*urls[:5], again, *urls[5:10], again, *urls[10:]]  # both within one batch's reach
    async with archiver:
        for url in order:
            result = CheckResult(url=url, status=Status.OK, reason="200 OK")
            result.exchanges = [exchange(url)]
            await archiver.submit(result)  # all queued before the writer runs
    rows = db.execute("SELECT url, record_type, revisit_of FROM snapshots ORDER BY id").fetchall()
    assert [r[0] for r in rows] == order
    twice = [r for r in rows if r[0] == again]
    assert [r[1] for r in twice] == ["response", "revisit"] and twice[1][2] is not None
    assert archiver.counts.captures == 21 and archiver.counts.revisits == 1
