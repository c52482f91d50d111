"""Fake web archives on loopback: a Wayback Machine (CDX API + replay) and a Memento service.

Tests of `fix --archives` and `report --archives` ask these instead of the real
archives. One server plays both (paths as the real services spell them):

    /cdx/search/cdx?url=&output=json&fl=&filter=statuscode:(200|203|206)&to=|from=&limit=
    /web/<timestamp>/<url>            the Wayback replay of a capture
    /timemap/link/<url>               RFC 7089 TimeMap (application/link-format)
    /timegate/<url>                   RFC 7089 TimeGate (302 by Accept-Datetime)
    /memento/<timestamp>/<url>        a memento

Behaviours: ``captures`` (url -> [(14-digit timestamp, HTTP status)]), so a
history of only 404s or a choice between captures before and after a date is
one dict away; ``rate_limit=N`` answers the first N requests 429 with
``Retry-After``; ``timemap=False`` makes the TimeMap answer 501 (TimeGate only).
Every request is logged with its time, for politeness assertions.
"""

from __future__ import annotations

import asyncio
import html
import re
import threading
import time
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from types import TracebackType

from aiohttp import web

Captures = dict[str, list[tuple[str, int]]]


def _tail_url(request: web.Request) -> str:
    """The archived URL at the end of the path, its query string included."""
    url = request.match_info["url"]
    return f"{url}?{request.query_string}" if request.query_string else url


def _http_date(ts: str) -> str:
    return format_datetime(datetime.strptime(ts, "%Y%m%d%H%M%S").replace(tzinfo=UTC), usegmt=True)


class FakeArchives:
    """The fake archives' server; `url` is its base (ends with '/')."""

    def __init__(self, captures: Captures | None = None, *, rate_limit: int = 0,
                 retry_after: str = "1", timemap: bool = True) -> None:
        self.captures: Captures = captures or {}
        self.rate_limit = rate_limit
        self.retry_after = retry_after
        self.timemap = timemap
        self.log: list[tuple[float, str]] = []  # (monotonic time, path?query)
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    # --- the services ----------------------------------------------------------------------

    def _sorted(self, url: str) -> list[tuple[str, int]]:
        return sorted(self.captures.get(url, []))

    async def _gate(self, request: web.Request) -> web.StreamResponse | None:
        self.log.append((time.monotonic(), request.path_qs))
        if self.rate_limit > 0:
            self.rate_limit -= 1
            return web.Response(status=429, headers={"Retry-After": self.retry_after},
                                text="slow down")
        return None

    async def _cdx(self, request: web.Request) -> web.StreamResponse:
        if (limited := await self._gate(request)) is not None:
            return limited
        q = request.query
        rows = self._sorted(q.get("url", ""))
        for flt in q.getall("filter", []):
            field, _, pattern = flt.partition(":")
            if field == "statuscode":
                rows = [r for r in rows if re.fullmatch(pattern, str(r[1]))]
        if q.get("to"):
            rows = [r for r in rows if r[0] <= q["to"].ljust(14, "9")]
        if q.get("from"):
            rows = [r for r in rows if r[0] >= q["from"].ljust(14, "0")]
        limit = int(q.get("limit", "0") or 0)
        rows = rows[:limit] if limit > 0 else rows[limit:] if limit < 0 else rows
        fields = (q.get("fl") or "timestamp,original,statuscode").split(",")
        values = {"timestamp": 0, "original": 1, "statuscode": 2}
        table = [[(r[0], q.get("url", ""), str(r[1]))[values[f]] for f in fields] for r in rows]
        return web.json_response([fields, *table] if table else [])

    async def _replay(self, request: web.Request) -> web.StreamResponse:
        if (limited := await self._gate(request)) is not None:
            return limited
        ts, url = request.match_info["ts"], _tail_url(request)
        kind = "Wayback" if request.path.startswith("/web/") else "Memento"
        status = dict(self.captures.get(url, [])).get(ts)
        if status is None:
            return web.Response(status=404, text="not archived")
        body = (f"<!doctype html><title>Archived: {html.escape(url)}</title>"
                f"<h1 id=archived>{kind} copy of {html.escape(url)} from {ts}</h1>")
        return web.Response(status=status, text=body, content_type="text/html",
                            headers={"Memento-Datetime": _http_date(ts)})

    def _mementos(self, url: str) -> list[str]:
        return [ts for ts, status in self._sorted(url) if 200 <= status < 300]

    async def _timemap(self, request: web.Request) -> web.StreamResponse:
        if (limited := await self._gate(request)) is not None:
            return limited
        if not self.timemap:
            return web.Response(status=501, text="no TimeMaps here")
        url = _tail_url(request)
        mementos = self._mementos(url)
        if not mementos:
            return web.Response(status=404, text="no mementos")
        base = self.url
        lines = [f'<{url}>; rel="original"',
                 f'<{base}timemap/link/{url}>; rel="self"; type="application/link-format"',
                 f'<{base}timegate/{url}>; rel="timegate"']
        lines += [f'<{base}memento/{ts}/{url}>; rel="memento"; datetime="{_http_date(ts)}"'
                  for ts in mementos]
        return web.Response(text=",\n".join(lines) + "\n", content_type="application/link-format")

    async def _timegate(self, request: web.Request) -> web.StreamResponse:
        if (limited := await self._gate(request)) is not None:
            return limited
        url = _tail_url(request)
        mementos = self._mementos(url)
        if not mementos:
            return web.Response(status=404, text="no mementos")
        wanted = request.headers.get("Accept-Datetime")
        target = (parsedate_to_datetime(wanted).strftime("%Y%m%d%H%M%S") if wanted
                  else mementos[-1])
        before = [ts for ts in mementos if ts <= target]
        chosen = before[-1] if before else mementos[0]
        location = f"{self.url}memento/{chosen}/{url}"
        return web.Response(status=302, headers={
            "Location": location, "Vary": "accept-datetime",
            "Link": f'<{url}>; rel="original", <{location}>; rel="memento"; '
                    f'datetime="{_http_date(chosen)}"'})

    # --- running ---------------------------------------------------------------------------

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/cdx/search/cdx", self._cdx)
        app.router.add_get("/web/{ts:\\d{14}}/{url:.*}", self._replay)
        app.router.add_get("/memento/{ts:\\d{14}}/{url:.*}", self._replay)
        app.router.add_get("/timemap/link/{url:.*}", self._timemap)
        app.router.add_get("/timegate/{url:.*}", self._timegate)
        return app

    def start(self) -> FakeArchives:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._runner = web.AppRunner(self._app())
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self.url = f"http://127.0.0.1:{port}/"
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-archives", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self._thread = self._loop = None

    def __enter__(self) -> FakeArchives:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
