"""The HTML report in a real browser: Debian's headless Chromium, driven over the DevTools protocol.

Chromium opens the report from disk (file://), with every network path shut
(no DNS, no background services, a fresh profile), and we check: zero console
errors or exceptions, no injected script ran (payloads would set
`window.__xss`), filter and sort work, and a screenshot is taken
(`LINKKEEPER_SCREENSHOT_DIR=... pytest` keeps it for a human to look at).

`Chromium` is also used by benchmarks/bench_report.py to time page loads.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from helpers import unavailable

from linkkeeper.db import connect
from linkkeeper.faultweb import FaultWeb
from linkkeeper.report import build_report, write_html

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--mute-audio",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",  # no DNS, ever
    "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
]

@pytest.fixture(autouse=True)
def _needs_chromium() -> None:
    if CHROMIUM is None:
        unavailable("BROWSER", "needs Debian's chromium package")


class Chromium:
    """A headless Chromium and one page, spoken to over the DevTools protocol (aiohttp websocket)."""

    def __init__(self, width: int = 1280, height: int = 900) -> None:
        self.width, self.height = width, height
        self.errors: list[str] = []
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._events: dict[str, list[asyncio.Future[Any]]] = {}

    async def __aenter__(self) -> Chromium:
        assert CHROMIUM
        self._profile = tempfile.mkdtemp(prefix="lk-chromium-")
        self.proc = await asyncio.create_subprocess_exec(
            CHROMIUM, *FLAGS, f"--user-data-dir={self._profile}",
            f"--window-size={self.width},{self.height}", "about:blank",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        assert self.proc.stderr
        port = None
        async with asyncio.timeout(30):
            while port is None:
                line = (await self.proc.stderr.readline()).decode(errors="replace")
                if not line:
                    raise RuntimeError("chromium exited before opening the DevTools port")
                if m := re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line):
                    port = int(m.group(1))
        self._drain = asyncio.create_task(self._drain_stderr())
        self.http = aiohttp.ClientSession()
        async with self.http.get(f"http://127.0.0.1:{port}/json/list") as resp:
            targets = await resp.json()
        page = next(t for t in targets if t["type"] == "page")
        self.ws = await self.http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0)
        self._reader = asyncio.create_task(self._read())
        for domain in ("Page", "Runtime", "Log"):
            await self.send(f"{domain}.enable")
        await self.send("Emulation.setDeviceMetricsOverride", width=self.width,
                        height=self.height, deviceScaleFactor=1, mobile=self.width < 600)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._reader.cancel()
        await self.ws.close()
        await self.http.close()
        self.proc.kill()
        await self.proc.wait()
        self._drain.cancel()
        shutil.rmtree(self._profile, ignore_errors=True)

    async def _drain_stderr(self) -> None:
        assert self.proc.stderr
        while await self.proc.stderr.read(65536):
            pass

    async def _read(self) -> None:
        async for msg in self.ws:
            data = json.loads(msg.data)
            if "id" in data:
                fut = self._waiting.pop(data["id"], None)
                if fut and not fut.done():
                    if "error" in data:
                        fut.set_exception(RuntimeError(f"{data['error']}"))
                    else:
                        fut.set_result(data.get("result", {}))
                continue
            method, params = data.get("method"), data.get("params", {})
            if method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                self.errors.append(f"exception: {details.get('exception', {}).get('description')}"
                                   f" {details.get('text')}")
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error",
                                                                                 "assert"):
                self.errors.append("console: " + " ".join(
                    str(a.get("value", a.get("description"))) for a in params.get("args", [])))
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                self.errors.append(f"log: {params['entry'].get('text')}")
            for fut in self._events.pop(method, []):
                if not fut.done():
                    fut.set_result(params)

    async def send(self, method: str, **params: Any) -> Any:
        msg_id = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[msg_id] = fut
        await self.ws.send_str(json.dumps({"id": msg_id, "method": method, "params": params}))
        async with asyncio.timeout(60):
            return await fut

    def event(self, method: str) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._events.setdefault(method, []).append(fut)
        return fut

    async def open(self, url: str) -> None:
        loaded = self.event("Page.loadEventFired")
        await self.send("Page.navigate", url=url)
        async with asyncio.timeout(60):
            await loaded

    async def js(self, expression: str) -> Any:
        res = await self.send("Runtime.evaluate", expression=expression, returnByValue=True,
                              awaitPromise=True)
        if "exceptionDetails" in res:
            raise RuntimeError(res["exceptionDetails"])
        return res["result"].get("value")

    async def screenshot(self, path: Path, full_page: bool = True) -> Path:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            params["captureBeyondViewport"] = True
            size = await self.js("[document.documentElement.scrollWidth,"
                                 " Math.min(document.documentElement.scrollHeight, 6000)]")
            params["clip"] = {"x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1}
        shot = await self.send("Page.captureScreenshot", **params)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path


ROWS = "document.querySelectorAll('#links-body tr').length"
INFO = "document.getElementById('links-info').textContent"


async def set_value(browser: Chromium, element_id: str, value: str, event: str) -> None:
    await browser.js(f"(() => {{ const e = document.getElementById({json.dumps(element_id)});"
                     f" e.value = {json.dumps(value)};"
                     f" e.dispatchEvent(new Event({json.dumps(event)})); }})()")
    await asyncio.sleep(0.3)  # the search box is debounced (120 ms)
    await rows_loaded(browser)


async def rows_loaded(browser: Chromium, timeout: float = 60) -> None:
    """Wait while a split table reads its row files (the info line says "Loading links…")."""
    async with asyncio.timeout(timeout):
        while (await browser.js(INFO) or "").startswith("Loading"):
            await asyncio.sleep(0.05)


def keep_screenshot(path: Path) -> None:
    if target := os.environ.get("LINKKEEPER_SCREENSHOT_DIR"):
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / path.name)


async def test_report_in_chromium(faultweb_session: FaultWeb, tmp_path: Path) -> None:
    from test_report import JS_URL, NEW_404, RAW_URL, build_history, with_raw_payloads

    hist = build_history(faultweb_session, tmp_path)
    rep = build_report(connect(with_raw_payloads(hist, tmp_path / "raw.db")))
    page = write_html(rep, tmp_path / "reports" / "index.html")
    total = len(rep.links)
    assert total > 60

    async with Chromium() as browser:
        await browser.open(page.as_uri())
        await asyncio.sleep(0.2)
        assert browser.errors == []
        assert await browser.js("typeof window.__xss") == "undefined"
        assert await browser.js("document.querySelectorAll('script').length") == 2
        # the raw payloads show as text, nowhere as elements or links
        assert await browser.js("document.querySelectorAll('img, iframe, object, embed')"
                                ".length") == 0
        assert await browser.js("[...document.querySelectorAll('*')].filter(e => [...e.attributes]"
                                ".some(a => a.name.startsWith('on'))).length") == 0
        hrefs = await browser.js("[...document.querySelectorAll('a[href]')].map(a => a.href)")
        assert not [h for h in hrefs if not re.match(r"(https?|file):", h)]
        assert RAW_URL in await browser.js("document.body.innerText")
        # the table: first page rendered, all links counted
        assert await browser.js(ROWS) == min(100, total)
        assert f"of {total}" in await browser.js(INFO)
        # filter by status
        broken = sum(1 for lnk in rep.links if lnk.status == "broken")
        status_index = await browser.js(
            "[...document.querySelectorAll('#f-status option')].find(o => o.textContent"
            " === 'broken').value")
        await set_value(browser, "f-status", status_index, "change")
        assert await browser.js(ROWS) == broken
        assert set(await browser.js("[...document.querySelectorAll('#links-body tr td:nth-child(2)"
                                    "')].map(td => td.textContent.split(' ')[0])")) == {"broken"}
        await set_value(browser, "f-status", "", "change")
        # text search, then host filter
        await set_value(browser, "f-text", "gamma-new", "input")
        assert await browser.js(ROWS) == 1
        assert await browser.js("document.querySelector('#links-body a').href") == NEW_404
        await set_value(browser, "f-text", "", "input")
        await set_value(browser, "f-host", "does-not-resolve", "input")
        assert await browser.js(ROWS) == 1
        await set_value(browser, "f-host", "", "input")
        # the javascript: URL is listed but not a link
        await set_value(browser, "f-text", "javascript:", "input")
        assert await browser.js(ROWS) == 1
        assert await browser.js("document.querySelector('#links-body td.url').textContent"
                                ".startsWith(" + json.dumps(JS_URL) + ")")
        assert await browser.js("document.querySelectorAll('#links-body a').length") == 0
        await set_value(browser, "f-text", "", "input")
        # sort by URL, descending on the second click; paging at 50 rows
        await browser.js("document.querySelector('th[data-key=\"0\"] button').click()")
        urls = await browser.js("[...document.querySelectorAll('#links-body td.url')]"
                                ".map(td => td.firstChild.textContent)")
        assert urls == sorted(urls) and urls[0] == min(lnk.url for lnk in rep.links)
        await browser.js("document.querySelector('th[data-key=\"0\"] button').click()")
        urls = await browser.js("[...document.querySelectorAll('#links-body td.url')]"
                                ".map(td => td.firstChild.textContent)")
        assert urls == sorted(urls, reverse=True)
        await set_value(browser, "page-size", "50", "change")
        assert await browser.js(ROWS) == 50
        await browser.js("document.getElementById('page-next').click()")
        assert await browser.js(ROWS) == min(50, total - 50)
        assert "page 2 of" in await browser.js(INFO)
        assert await browser.js("typeof window.__xss") == "undefined"
        assert browser.errors == []
        await set_value(browser, "page-size", "100", "change")
        await browser.js("window.scrollTo(0, 0)")
        shot = await browser.screenshot(tmp_path / "report-desktop.png")
        assert shot.stat().st_size > 20_000
        keep_screenshot(shot)

    async with Chromium(width=390, height=844) as phone:  # a phone's viewport
        await phone.open(page.as_uri())
        assert phone.errors == []
        # nothing wider than the screen except inside the scrolling table wrappers
        assert await phone.js("document.documentElement.scrollWidth") <= 390 + 1
        shot = await phone.screenshot(tmp_path / "report-phone.png")
        keep_screenshot(shot)


async def test_large_report_pages_filters_and_copies_exact_urls(tmp_path: Path) -> None:
    """20,000 links: only a page of each list is in the DOM at load, yet filter, sort and
    paging see every row; "Show more" brings in the next page; readable IRIs copy exact."""
    from report_world import CHINESE, CHINESE_SHOWN, big_report, url_of

    from linkkeeper.report.html import PAGE, POST_PAGE

    rep = big_report(20_000)
    page = write_html(rep, tmp_path / "big" / "index.html")
    async with Chromium() as browser:
        await browser.open(page.as_uri())
        assert browser.errors == []
        # the first paint can be recorded a frame after the load event (a busy CI machine)
        paint = await browser.js(
            "new Promise(done => { const t0 = performance.now(); (function poll() {"
            " const n = performance.getEntriesByType('paint').length;"
            " if (n || performance.now() - t0 > 10000) done(n); else setTimeout(poll, 50);"
            " })(); })")
        assert paint >= 1
        assert await browser.js(ROWS) == 100
        assert "of 20000" in (await browser.js(INFO)).replace(",", "")
        assert await browser.js("document.querySelectorAll('tr').length") < 400
        # the default order is worst first: dead links open the table
        assert await browser.js("document.querySelector('#links-body tr td:nth-child(3)')"
                                ".textContent") == "dead"
        # a row far beyond the first page, found by search over all rows
        target = url_of(19_990)
        assert target in {lnk.url for lnk in rep.links}
        await set_value(browser, "f-text", "article-19990", "input")
        assert await browser.js(ROWS) == 1
        assert await browser.js("document.querySelector('#links-body a').href") == target
        await set_value(browser, "f-text", "", "input")
        # the status filter counts every row; invalid links exist but come last by default
        invalid = sum(1 for lnk in rep.links if lnk.status == "invalid")
        index = await browser.js("[...document.querySelectorAll('#f-status option')].find(o =>"
                                 " o.textContent === 'invalid').value")
        await set_value(browser, "f-status", index, "change")
        assert f"of {invalid}" in await browser.js(INFO)
        await set_value(browser, "f-status", "", "change")
        # sort by URL descending reaches the last URL of all
        await browser.js("document.querySelector('th[data-key=\"0\"] button').click()")
        await browser.js("document.querySelector('th[data-key=\"0\"] button').click()")
        last = max(lnk.url for lnk in rep.links)
        assert last == CHINESE  # a web URL, shown decoded
        assert await browser.js("document.querySelector('#links-body td.url a')"
                                ".getAttribute('href')") == last
        # "Show more": posts and hosts come in a page at a time
        posts = "document.querySelectorAll('#posts-list > article').length"
        assert await browser.js(posts) == POST_PAGE
        await browser.js("document.querySelector('button[data-list=\"posts-list\"]').click()")
        assert await browser.js(posts) == 2 * POST_PAGE
        assert await browser.js("document.querySelectorAll('#hosts-list > tr').length") == PAGE
        await browser.js("document.querySelector('button[data-list=\"hosts-list\"]').click()")
        assert await browser.js("document.querySelectorAll('#hosts-list > tr').length") == \
            min(2 * PAGE, len(rep.hosts))
        # a readable IRI: decoded text, exact URL in href and title, and on copy
        await set_value(browser, "f-text", "中文", "input")
        assert await browser.js(ROWS) == 1
        link = "document.querySelector('#links-body td.url a')"
        assert await browser.js(f"{link}.textContent") == CHINESE_SHOWN
        assert await browser.js(f"{link}.getAttribute('href')") == CHINESE
        assert await browser.js(f"{link}.title") == CHINESE
        copied = await browser.js(
            f"(() => {{ const a = {link}; getSelection().selectAllChildren(a);"
            " const e = new ClipboardEvent('copy', {clipboardData: new DataTransfer(),"
            " bubbles: true, cancelable: true}); a.dispatchEvent(e);"
            " return e.clipboardData.getData('text/plain'); })()")
        assert copied == CHINESE
        assert browser.errors == []


async def test_split_table_reads_its_row_files_from_disk_and_under_serve(tmp_path: Path) -> None:
    """A table too big for one page: the first rows are in it, the rest in files beside it
    that the page reads when a reader pages to them, searches, filters or sorts, from
    file:// and through `linkkeeper serve` alike."""
    from aiohttp import web
    from report_world import big_report, url_of

    from linkkeeper.serve import create_app, open_read_only

    rep = big_report(3_000)
    reports = tmp_path / "reports"
    page = write_html(rep, reports / "index.html", inline_rows=500, head_rows=200,
                      chunk_rows=700)
    assert len(list((reports / "index.files").glob("*/rows-*.js"))) == 4
    connect(tmp_path / "empty.db").conn.close()
    runner = web.AppRunner(create_app(open_read_only(tmp_path / "empty.db"), tmp_path / "warcs",
                                      reports))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        for url in (page.as_uri(), f"http://127.0.0.1:{port}/"):
            async with Chromium() as browser:
                await browser.open(url)
                assert await browser.js(ROWS) == 100
                assert "of 3000" in (await browser.js(INFO)).replace(",", "")
                # the last page: rows from the last file (invalid links come last)
                await set_value(browser, "page-size", "500", "change")
                for _ in range(5):
                    await browser.js("document.getElementById('page-next').click()")
                    await rows_loaded(browser)
                assert "page 6 of 6" in await browser.js(INFO)
                assert await browser.js(ROWS) == 500
                assert await browser.js("[...document.querySelectorAll('#links-body tr "
                                        "td:nth-child(2)')].pop().textContent") == "invalid"
                # search over every row
                await set_value(browser, "page-size", "100", "change")
                await set_value(browser, "f-text", "article-02990", "input")
                assert await browser.js(ROWS) == 1
                assert await browser.js("document.querySelector('#links-body a').href") == \
                    url_of(2990)
                assert browser.errors == []
    finally:
        await runner.cleanup()


async def test_split_table_says_when_its_files_are_missing(tmp_path: Path) -> None:
    from report_world import big_report

    page = write_html(big_report(1_500), tmp_path / "r.html", inline_rows=500, head_rows=200,
                      chunk_rows=700)
    shutil.rmtree(tmp_path / "r.files")
    async with Chromium() as browser:
        await browser.open(page.as_uri())
        assert await browser.js(ROWS) == 100
        await set_value(browser, "f-text", "article", "input")
        info = await browser.js(INFO)
        assert "could not read r.files/" in info and "(filtered from 200)" in info
