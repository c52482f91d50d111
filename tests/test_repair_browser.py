"""Chromium clicks the archived-copy links of the HTML report and lands on the archived page:
from disk (our copy through `serve`'s configured URL, a Wayback copy at the archive) and with
the report opened under `linkkeeper serve` (relative links).

With LINKKEEPER_REQUIRE_BROWSER=1 a missing Chromium fails the test instead of skipping it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import helpers
import pytest
from repair_world import INLINE_DEAD, LEAD, POST, RELATED_DEAD, kill, make_site, scanned
from test_export import _insert, exchange
from test_report_browser import CHROMIUM, Chromium

from linkkeeper.archive.warc import WarcStore
from linkkeeper.faultweb import FakeArchives
from linkkeeper.repair.copies import refresh_copies
from linkkeeper.repair.politeness import PoliteClient
from linkkeeper.repair.wayback import wayback_lookup
from linkkeeper.report import build_report, write_html

CAPTURED = datetime(2024, 5, 20, 10, 0, 0, tzinfo=UTC)
PAGE = b"<!doctype html><title>The earlier story</title><h1 id=archived>Our copy of it</h1>"


@pytest.fixture(autouse=True)
def _browser() -> None:
    if CHROMIUM is None:
        if os.environ.get("LINKKEEPER_REQUIRE_BROWSER") == "1":
            pytest.fail("LINKKEEPER_REQUIRE_BROWSER=1 but no chromium is installed")
        pytest.skip("needs Debian's chromium package")


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A post whose related story died (we captured it before) and whose inline link died
    (only the Wayback Machine has it)."""
    site = make_site(tmp_path, {"2021-05-03-story.md": POST})
    db = scanned(site)
    with WarcStore(site / "warcs", clock=lambda: CAPTURED) as store:
        record = store.write(exchange(RELATED_DEAD, PAGE, CAPTURED))
    db.execute("INSERT INTO runs (id, started_at, state) VALUES (1, ?, 'complete')",
               [CAPTURED.isoformat()])
    db.execute("INSERT INTO checks (run_id, url, status, http_status) VALUES (1, ?, 'ok', 200)",
               [RELATED_DEAD])
    _insert(db, record, 1, None)
    kill(db, RELATED_DEAD)
    kill(db, INLINE_DEAD)
    kill(db, LEAD)  # nothing anywhere
    return site


@pytest.fixture
async def served(site: Path) -> AsyncIterator[str]:
    async with helpers.serving(site) as base:
        yield base


def write_report(site: Path, serve_url: str | None, archives: FakeArchives) -> Path:
    db = scanned(site)
    lookup = wayback_lookup(archives.url, PoliteClient(min_interval=0, timeout=5))
    refresh_copies(db, [("wayback", lookup)], site / "warcs")
    return write_html(build_report(db, serve_url=serve_url), site / "reports" / "index.html")


async def click(browser: Chromium, selector: str) -> str:
    """Click the first link matching `selector`; the text of the page it leads to."""
    loaded = browser.event("Page.loadEventFired")
    await browser.js(f"document.querySelector({selector!r}).click()")
    async with asyncio.timeout(30):
        await loaded
    await asyncio.sleep(0.1)
    return str(await browser.js("document.location.href + ' | ' + document.body.innerText"))


async def test_archived_copy_links_work_from_disk_and_under_serve(site: Path, served: str) -> None:
    with FakeArchives({INLINE_DEAD: [("20200505000000", 200)]}) as archives:
        page = write_report(site, served, archives)
        html = page.read_text(encoding="utf-8")
        assert "ours 2024-05-20" in html and "Wayback 2020-05-05" in html
        assert "none anywhere" not in html or "nothing archived anywhere" in html
        async with Chromium() as browser:
            await browser.open(page.as_uri())
            assert browser.errors == []
            landed = await click(browser, 'a.archived-copy[href*="earlier.html"]')
            assert landed.startswith(f"{served}archive/20240520100000/") and "Our copy of it" in landed
            await browser.open(page.as_uri())
            landed = await click(browser, 'a.archived-copy[href*="gone.example"]')
            assert landed.startswith(f"{archives.url}web/20200505000000/")
            assert "Wayback copy of" in landed
            await browser.open(page.as_uri())
            landed = await click(browser, '.todo-replace a[href*="earlier.html"]')
            assert "Our copy of it" in landed

            write_report(site, None, archives)  # relative links, for the report under serve
            await browser.open(served)
            landed = await click(browser, 'a.archived-copy[href*="earlier.html"]')
            assert landed.startswith(f"{served}archive/20240520100000/") and "Our copy of it" in landed
