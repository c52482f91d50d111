"""`serve` keeps archived pages from scripting the viewer (issue 12, item 2), and answers odd
paths with a 400/404 and one log line (item 9).

Archived pages come from the fault web's /hostile/ pages, captured by a real `check`: one
reads /archive/ and writes it into its title, one registers a service worker for scope /
(its sw.js was sent with ``Service-Worker-Allowed: /``), one tries fetch('/archive/'). In
headless Chromium (tests/test_report_browser.py's driver) none of them may reach the viewer.
With LINKKEEPER_REQUIRE_BROWSER=1 (CI) a missing Chromium fails these tests instead of
skipping them.
"""

from __future__ import annotations

import asyncio
import http.client
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import helpers
import pytest
from pywb_env import free_port
from test_archive import make_site, run, web_args
from test_report_browser import CHROMIUM, Chromium

from linkkeeper.faultweb import FaultWeb
from linkkeeper.faultweb.hostile import OWNED

HOSTILE = "https://news.example/hostile/"
PAGES = [HOSTILE + name for name in ("leak", "fetch", "sw", "sw.js")]
PLAIN = "https://news.example/ok/plain-story"


def needs_browser() -> None:
    if CHROMIUM is None:
        if os.environ.get("LINKKEEPER_REQUIRE_BROWSER") == "1":
            pytest.fail("LINKKEEPER_REQUIRE_BROWSER=1 but Chromium is not installed")
        pytest.skip("needs Debian's chromium package")


@pytest.fixture(scope="module")
def site(faultweb_session: FaultWeb, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A site whose post cites the hostile pages, checked (and so archived) and reported."""
    root = make_site(tmp_path_factory.mktemp("isolation") / "site",
                     [{"source": PLAIN, "related": PAGES}])
    done = run("check", root, *web_args(faultweb_session), "--attempts", "1",
               "--fail-on", "never")
    assert done.returncode == 0, done.stderr
    report = run("report", root)
    assert report.returncode == 0, report.stderr
    assert (root / "reports" / "index.html").is_file()
    return root


@pytest.fixture
async def viewer(site: Path) -> AsyncIterator[str]:
    async with helpers.serving(site) as base:
        yield base.rstrip('/')


async def get(url: str, **headers: str) -> tuple[aiohttp.ClientResponse, bytes]:
    async with aiohttp.ClientSession(auto_decompress=False) as session, session.get(
            url, headers=headers, allow_redirects=False) as response:
        return response, await response.read()


# -- headers ------------------------------------------------------------------------------


async def test_archived_responses_are_sandboxed(viewer: str) -> None:
    for url in [*PAGES, PLAIN]:
        response, body = await get(f"{viewer}/archive/{url}")
        assert response.status == 200 and body, url
        policy = response.headers["Content-Security-Policy"]
        assert policy.startswith("sandbox") and "allow-same-origin" not in policy, url
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    worker, _ = await get(f"{viewer}/archive/{HOSTILE}sw.js")
    assert "Service-Worker-Allowed" not in worker.headers
    assert worker.headers["X-Archive-Orig-Service-Worker-Allowed"] == "/"
    assert "Set-Cookie" not in worker.headers
    assert worker.headers["X-Archive-Orig-Set-Cookie"] == "viewer=owned; Path=/"
    report, _ = await get(viewer + "/")
    assert report.status == 200 and "sandbox" not in report.headers.get(
        "Content-Security-Policy", "")  # the viewer's own pages are not archived content


@pytest.mark.parametrize("path", ["/", "/archive/", f"/archive/{HOSTILE}sw.js", "/index.html"])
async def test_service_worker_scripts_are_refused(viewer: str, path: str) -> None:
    response, _ = await get(viewer + path, **{"Service-Worker": "script"})
    assert response.status == 403


# -- in Chromium ---------------------------------------------------------------------------


async def settled_title(browser: Chromium, initial: str, seconds: float = 10) -> str:
    """The page's title once its script has changed it (or the initial one after `seconds`)."""
    deadline = time.monotonic() + seconds
    title = await browser.js("document.title")
    while title == initial and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        title = await browser.js("document.title")
    return str(title)


async def test_a_page_cannot_read_the_viewer(viewer: str) -> None:
    needs_browser()
    async with Chromium() as browser:
        await browser.open(f"{viewer}/archive/{HOSTILE}leak")
        title = await settled_title(browser, "hostile leak")
        assert not title.startswith("LEAKED"), title
        assert "news.example" not in title and "archived" not in title.lower(), title
        assert title.startswith("blocked: TypeError"), title  # the script ran; its fetch failed
        assert await browser.js("self.origin") == "null"  # an opaque origin, not the viewer's


async def test_a_page_cannot_fetch_the_archive(viewer: str) -> None:
    needs_browser()
    async with Chromium() as browser:
        await browser.open(f"{viewer}/archive/{HOSTILE}fetch")
        title = await settled_title(browser, "hostile fetch")
        assert title.startswith("failed: TypeError"), title


async def test_no_service_worker_takes_the_viewer(viewer: str) -> None:
    needs_browser()
    async with Chromium() as browser:
        await browser.open(f"{viewer}/archive/{HOSTILE}sw")
        title = await settled_title(browser, "hostile sw")
        assert title.startswith("refused"), title
        await browser.open(viewer + "/")
        assert OWNED not in await browser.js("document.documentElement.outerHTML")
        assert await browser.js(
            "navigator.serviceWorker.getRegistrations().then(r => r.length)") == 0
        # even from the viewer's own origin the archived worker cannot be installed: 403
        outcome = await browser.js(
            f"navigator.serviceWorker.register('/archive/{HOSTILE}sw.js', {{scope: '/archive/'}})"
            ".then(() => 'registered', e => 'refused: ' + e)")
        assert outcome.startswith("refused"), outcome
        await browser.open(viewer + "/")
        assert OWNED not in await browser.js("document.documentElement.outerHTML")
        assert await browser.js("navigator.serviceWorker.controller") is None
        # the report's links to archived copies still open them
        links = await browser.js(
            "[...document.querySelectorAll('a[href*=\"archive/\"]')].map(a => a.href)")
        plain = next(link for link in links if link.endswith(PLAIN))
        await browser.open(plain)
        assert await browser.js("location.href") == plain
        assert "Plain Story" in await browser.js("document.title")


# -- odd paths ------------------------------------------------------------------------------

ODD_PATHS = ["/%00", "/a%00b.html", "/%ff", "/%c0%ae%c0%ae/", "/%7f", "/../../etc/passwd",
             "/%2e%2e/%2e%2e/etc/passwd", "/" + "a" * 5000, "/" + "a" * 300,
             "/archive/%00", "/archive/2026%00/http://x/", "/archive/*/%00",
             "/archive/http://x/%ff", "/archive/" + "a" * 9000, "/archive/?q=%00"]


def test_odd_paths_get_a_400_or_404_and_one_log_line(site: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "linkkeeper", "serve", str(site), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("GET", "/")
                conn.getresponse().read()
                conn.close()
                break
            except OSError:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                assert time.monotonic() < deadline, "serve did not start"
                time.sleep(0.1)
        statuses = {}
        for path in ODD_PATHS:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.putrequest("GET", path, skip_accept_encoding=True)
            conn.endheaders()
            response = conn.getresponse()
            response.read()
            statuses[path[:40]] = response.status
            conn.close()
    finally:
        process.terminate()
        _, err = process.communicate(timeout=10)
    assert all(status in (200, 400, 404) for status in statuses.values()), statuses
    assert statuses["/%00"] == 400 and statuses["/a%00b.html"] == 400
    assert statuses["/archive/?q=%00"] == 200  # a query is data: the listing, filtered
    assert "Traceback" not in err and not re.search(r": 500\b", err), err
    lines = [line for line in err.splitlines() if line.startswith("serve: ")]
    others = [line for line in err.splitlines() if not line.startswith(("serve: ", "serving "))]
    assert not [line for line in others if line.strip()], err  # every line is one of ours
    assert all(len(line) < 400 for line in lines), err
    assert sum("/%00" in line for line in lines) == 1, err
    assert any("too long" in line or "LineTooLong" in line for line in lines), err
    assert re.search(r"serve: GET '/%00': 400", err), err
