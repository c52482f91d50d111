"""`serve` over HTTP on loopback: the report at /, archived copies with their original status,
content type, headers and bytes (revisits resolved, closest capture chosen), headers that would
act on the local server neutralised, and everything from the archive escaped in our own pages."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from pywb_env import free_port
from test_export import (
    BRIDGE_URL,
    NEW_STORY,
    NIGHT1,
    NIGHT2,
    OLD_URL,
    PHOTO,
    STORM,
    STORM2,
    STORM_URL,
    Archive,
    _insert,
    build_archive,
    exchange,
)

from linkkeeper.archive.warc import WarcStore
from linkkeeper.db import connect
from linkkeeper.serve import create_app, open_read_only

SEARCH_URL = "http://news.test/search?q=storm&page=2"
REPORT = (
    "<!doctype html><title>Link report</title>"
    '<a href="archive/20261120020000/http://news.test/2026/storm.html">archived copy</a>'
)


@pytest.fixture
def archive(tmp_path: Path) -> Archive:
    archive = build_archive(tmp_path / "site")
    with WarcStore(archive.folder, clock=lambda: NIGHT2 + timedelta(hours=1)) as store:
        capture = store.write(exchange(
            SEARCH_URL, b"<p>results</p>", NIGHT2 + timedelta(hours=1),
            response_headers=[("Content-Type", "text/html"), ("Set-Cookie", "sid=1; Path=/"),
                              ("Strict-Transport-Security", "max-age=600"),
                              ("X-Frame-Options", "DENY")]))
    db = archive.db
    _insert(db, capture, 3, None)
    db.execute("INSERT INTO snapshots (url, warc_file, offset, length, record_type, date)"
               " VALUES (?, 'nowhere.warc.gz', 0, 10, 'response', '2026-11-22T00:00:00+00:00')",
               ["http://evil.test/<script>alert(1)</script>"])
    reports = archive.root / "reports"
    reports.mkdir()
    (reports / "index.html").write_text(REPORT)
    (reports / "style.css").write_text("body{}")
    return archive


@pytest.fixture
async def server(archive: Archive) -> AsyncIterator[str]:
    app = create_app(open_read_only(archive.db_path), archive.folder, archive.root / "reports")
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        yield session


async def fetch(client: aiohttp.ClientSession, url: str) -> tuple[aiohttp.ClientResponse, bytes]:
    async with client.get(url, allow_redirects=False) as response:
        return response, await response.read()


async def test_report_page_loads_and_its_archive_links_work(server: str, client) -> None:
    response, body = await fetch(client, server + "/")
    assert response.status == 200
    assert response.content_type == "text/html"
    assert body.decode() == REPORT
    css, _ = await fetch(client, server + "/style.css")
    assert css.status == 200
    # the report's relative link, resolved the way a browser does
    link = server + "/archive/20261120020000/http://news.test/2026/storm.html"
    response, body = await fetch(client, link)
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert body == STORM
    assert response.headers["Memento-Datetime"] == "Fri, 20 Nov 2026 02:00:00 GMT"
    assert response.headers["Link"] == f'<{STORM_URL}>; rel="original"'


async def test_archived_bytes_are_served_as_sent(server: str, client, archive: Archive) -> None:
    response, body = await fetch(client, f"{server}/archive/20261120020000/{BRIDGE_URL}")
    assert body == archive.sent["bridge1"]  # still gzip: the browser decodes it
    assert response.headers["Content-Encoding"] == "gzip"
    assert response.headers["Content-Type"] == "text/html"
    assert response.headers["X-Orig-Transfer-Encoding"] == "chunked"
    assert "Transfer-Encoding" not in response.headers
    photo, body = await fetch(client, f"{server}/archive/20261121/http://img.test/photo.jpg")
    assert photo.status == 200 and body == PHOTO  # a revisit, served from its original
    assert photo.headers["Content-Type"] == "image/jpeg"
    assert photo.headers["Memento-Datetime"] == "Sat, 21 Nov 2026 02:00:00 GMT"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (f"20261120235959/{STORM_URL}", STORM),  # newest at or before
        (f"20261121/{STORM_URL}", STORM2),  # a partial timestamp: the end of that day
        (f"2025/{STORM_URL}", STORM),  # before every capture: the earliest
        (STORM_URL, STORM2),  # no timestamp: the newest
        (f"20261121020000id_/{STORM_URL}", STORM2),  # pywb-style modifiers are accepted
        ("20261120/http:/news.test/2026/storm.html", STORM),  # a collapsed '//' is repaired
    ],
)
async def test_the_closest_capture_is_chosen(server: str, client, path: str,
                                             expected: bytes) -> None:
    response, body = await fetch(client, f"{server}/archive/{path}")
    assert response.status == 200
    assert body == expected


async def test_archived_redirect_stays_in_the_archive(server: str, client) -> None:
    response, _ = await fetch(client, f"{server}/archive/20261120020000/{OLD_URL}")
    assert response.status == 301
    assert response.reason == "Moved Permanently"
    location = response.headers["Location"]
    assert location == "/archive/20261120020000/http://news.test/new-story"
    assert response.headers["X-Archive-Orig-Location"] == "/new-story"
    target, body = await fetch(client, server + location)
    assert target.status == 200 and body == NEW_STORY


async def test_headers_that_act_on_this_server_are_neutralised(server: str, client) -> None:
    response, body = await fetch(client, f"{server}/archive/{SEARCH_URL}")
    assert response.status == 200 and body == b"<p>results</p>"
    assert "Set-Cookie" not in response.headers
    assert response.headers["X-Archive-Orig-Set-Cookie"] == "sid=1; Path=/"
    assert "Strict-Transport-Security" not in response.headers
    assert response.headers["X-Frame-Options"] == "DENY"  # describes the page: kept
    policy = response.headers["Content-Security-Policy"]  # its scripts get an opaque origin
    assert policy.startswith("sandbox ") and "allow-same-origin" not in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_listings_escape_what_the_archive_holds(server: str, client) -> None:
    response, body = await fetch(client, f"{server}/archive/")
    page = body.decode()
    assert response.status == 200
    assert STORM_URL in page and SEARCH_URL.replace("&", "&amp;") in page
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    filtered = (await fetch(client, f"{server}/archive/?q=photo"))[1].decode()
    assert "photo.jpg" in filtered and "storm.html" not in filtered
    captures = (await fetch(client, f"{server}/archive/*/{STORM_URL}"))[1].decode()
    assert "2026-11-21 02:00" in captures and "2026-11-20 02:00" in captures


async def test_errors(server: str, client) -> None:
    assert (await fetch(client, f"{server}/archive/http://news.test/never"))[0].status == 404
    assert (await fetch(client, f"{server}/archive/20261399/{STORM_URL}"))[0].status == 400
    broken, _ = await fetch(client, f"{server}/archive/http://evil.test/<script>alert(1)</script>")
    assert broken.status == 502  # its WARC file is gone: said, not crashed
    assert (await fetch(client, f"{server}/nothing.html"))[0].status == 404
    assert (await fetch(client, f"{server}/..%2f..%2flinkkeeper.db"))[0].status == 404


def test_serve_command_on_loopback(archive: Archive) -> None:
    """The real command: regenerates the report when it can, serves / and an archived page."""
    import http.client

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "linkkeeper", "serve", str(archive.root), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("GET", "/")
                index = conn.getresponse()
                index_body = index.read()
                break
            except OSError:
                assert process.poll() is None, process.stdout.read().decode()
                assert time.monotonic() < deadline, "serve did not start"
                time.sleep(0.1)
        assert index.status == 200
        assert index.getheader("Content-Type").startswith("text/html")
        assert b"<html" in index_body.lower() or b"<!doctype" in index_body.lower()
        conn.request("GET", f"/archive/{NIGHT1:%Y%m%d%H%M%S}/{STORM_URL}")
        page = conn.getresponse()
        assert page.status == 200 and page.read() == STORM
        assert page.getheader("Content-Type") == "text/html; charset=utf-8"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_report_archive_links_open_what_the_server_sent(faultweb, tmp_path: Path) -> None:
    """check against the fault web, then `serve` regenerates the report and every
    archived-copy link in it opens the captured bytes."""
    import http.client
    import json
    import re

    from test_archive import make_site, path_of, run, web_args

    site = make_site(tmp_path / "site", [
        {"source": "https://news.example/chunked/a-story",
         "images": ["https://images.example/img/a.png"],
         "related": ["https://news.example/gzip/b", "https://news.example/status/404/gone"]}])
    done = run("check", site, *web_args(faultweb), "--attempts", "1", "--fail-on", "never")
    assert done.returncode == 0, done.stderr
    recorded = connect(site / "linkkeeper.db")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "linkkeeper", "serve", str(site), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("GET", "/")
                index = conn.getresponse()
                report = index.read().decode()
                break
            except OSError:
                assert process.poll() is None, process.stdout.read().decode()
                assert time.monotonic() < deadline, "serve did not start"
                time.sleep(0.1)
        assert index.status == 200
        links = set(re.findall(r'archive/\d{14}/[^"\'\s<>\\]+', report))
        # the links table keeps a copy at archive/<timestamp>/<url> as its timestamp alone;
        # report.js builds the link from it
        table = json.loads(re.search(r'id="links-data">(.*?)</script>', report, re.S).group(1))
        links |= {f"archive/{row[10]}/{row[0]}" for row in table["rows"]
                  if re.fullmatch(r"\d{14}", row[10])}
        urls = {link.split("/", 2)[2] for link in links}
        assert urls == {"https://news.example/chunked/a-story", "https://images.example/img/a.png",
                        "https://news.example/gzip/b"}  # the 404 was never archived
        for link in links:
            conn.request("GET", "/" + link, headers={"Accept-Encoding": "gzip"})
            page = conn.getresponse()
            body = page.read()
            url = link.split("/", 2)[2]
            assert page.status == 200, link
            assert body == faultweb.payload_for(*path_of(url)), link
            [(content_type,)] = recorded.execute(
                "SELECT DISTINCT content_type FROM snapshots WHERE url=?", [url]).fetchall()
            assert page.getheader("Content-Type") == content_type, link
        conn.close()
    finally:
        process.terminate()
        process.wait(timeout=10)
