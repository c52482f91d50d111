"""`linkkeeper serve`: the broken-link report and the archived copies, on a local web server.

Routes (an aiohttp application, :func:`create_app`)::

    /                           reports/index.html (the report of `linkkeeper report`), or the
                                archive's contents when there is no report yet
    /<file>                     other files of the reports folder (never outside it)
    /archive/                   every archived URL: captures, first and last (``?q=`` filters)
    /archive/*/<url>            the capture list of one URL
    /archive/<timestamp>/<url>  the capture closest at or before the (partial) 14-digit
                                timestamp, else the earliest; the report links these
    /archive/<url>              the newest capture

An archived copy is served from the WARC file with the status, reason, headers and payload
bytes the server sent (Content-Encoding kept, so the browser decodes gzip/br itself);
a revisit gets the original's payload. A few headers would act on *this* server rather than
describe the copy, so they are renamed ``X-Archive-Orig-<name>`` (Set-Cookie, HSTS, Alt-Svc,
Clear-Site-Data, Service-Worker-Allowed, CORS grants, ...) and ``Location`` is pointed back
into the archive, so following an archived redirect stays in the archive.
``Memento-Datetime`` and ``Link: rel="original"`` say what the copy is (RFC 7089). Pages are
not rewritten: their images and links still point at the live web. For full-fidelity replay
use pywb or ReplayWeb.page (see the README).

Archived pages are someone else's code on our origin, so every archived response carries
``Content-Security-Policy: sandbox ...`` without ``allow-same-origin``: its scripts run in an
opaque origin and cannot read the viewer (``/archive/``, the report), its cookies or storage,
nor register a service worker; ``X-Content-Type-Options: nosniff`` keeps a body from being
taken for another type. Any request for a service worker script (``Service-Worker: script``)
is refused with 403 on every path. Odd paths (NUL, too long, undecodable) get a 400 or 404
and one log line, never a 500 with a traceback.

The database is opened read-only; record reads run in a worker thread, one at a time.
"""

from __future__ import annotations

import asyncio
import html
import logging
import os
import re
import sqlite3
import sys
import threading
from datetime import datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin

import sqlite_utils
from aiohttp import web
from multidict import CIMultiDict

from linkkeeper.archive.records import CaptureUnavailable
from linkkeeper.archive.replay import (
    ArchivedResponse,
    captures_of,
    closest_capture,
    load_response,
    period_end,
)
from linkkeeper.archive.snapshots import Capture, archived_urls

REPORT_INDEX = "index.html"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
     "upgrade", "content-length"}
)
# Headers that would act on the local server or browser profile, not describe the page: a
# service worker scope, CORS grants to other origins, cookies, pinning, caches.
_NEUTRALISED = frozenset(
    {"set-cookie", "set-cookie2", "strict-transport-security", "public-key-pins",
     "public-key-pins-report-only", "expect-ct", "alt-svc", "clear-site-data", "refresh",
     "service-worker-allowed", "service-worker", "origin-agent-cluster", "referrer-policy",
     "access-control-allow-origin", "access-control-allow-credentials",
     "access-control-allow-methods", "access-control-allow-headers",
     "access-control-expose-headers", "access-control-max-age", "timing-allow-origin",
     "x-content-type-options"}
)
# What every archived response says instead: no same-origin powers for its scripts (an opaque
# origin), no forms or popups escaping that, no type sniffing, no Referer to the live web.
ARCHIVE_POLICY = (
    ("Content-Security-Policy", "sandbox allow-scripts allow-forms allow-popups"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
)
MAX_PATH = 4096  # characters of a request path; longer ones are refused (400)
_TAIL = re.compile(r"^(?P<ts>\d{1,14}|\*)(?:[a-z]{2}_)?/(?P<url>.+)$", re.DOTALL)
_COLLAPSED_SCHEME = re.compile(r"^(https?):/+", re.IGNORECASE)
_LISTING_LIMIT = 2000

DB_KEY = web.AppKey("db", sqlite_utils.Database)
WARCS_KEY = web.AppKey("warcs", Path)
REPORTS_KEY = web.AppKey("reports", Path)
LOCK_KEY = web.AppKey("lock", threading.Lock)

logger = logging.getLogger(__name__)


def open_read_only(db_path: Path) -> sqlite_utils.Database:
    """The history, read-only and usable from the worker thread (access is serialised)."""
    uri = f"file:{Path(db_path).resolve()}?mode=ro"
    conn = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=30)
    return sqlite_utils.Database(conn)


def create_app(db: sqlite_utils.Database, warc_folder: Path, reports_folder: Path) -> web.Application:
    """The viewer: report at ``/``, archived copies under ``/archive/``."""
    app = web.Application(middlewares=[_guard])
    app[DB_KEY] = db
    app[WARCS_KEY] = Path(warc_folder)
    app[REPORTS_KEY] = Path(reports_folder)
    app[LOCK_KEY] = threading.Lock()
    app.router.add_get("/archive", _archive_root)
    app.router.add_get("/archive/{tail:.*}", _archive)
    app.router.add_get("/{path:.*}", _report_file)
    return app


def archive_path(timestamp: str, url: str) -> str:
    """The local path of an archived copy (what the report links, relative to ``/``)."""
    return f"/archive/{timestamp}/{url}"


# ---------------------------------------------------------------------------------------------
# Every request


def _shown(path: str) -> str:
    return path if len(path) <= 120 else path[:100] + f"... ({len(path)} characters)"


@web.middleware
async def _guard(request: web.Request, handler: Any) -> web.StreamResponse:
    """Refuse service worker scripts and odd paths; turn any failure into one log line."""
    where = f"{request.method} {_shown(request.raw_path)!r}"
    if "Service-Worker" in request.headers:
        logger.warning("%s: 403, a service worker script is never served", where)
        return web.Response(status=403, text="service workers are not allowed here\n")
    if len(request.raw_path) > MAX_PATH:
        logger.warning("%s: 400, path longer than %d characters", where, MAX_PATH)
        return web.Response(status=400, text="path too long\n")
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status == 400:
            logger.warning("%s: 400, %s", where, exc.text.strip() if exc.text else exc.reason)
        raise
    except (ValueError, UnicodeError) as err:  # a NUL, an undecodable name, a bad timestamp
        logger.warning("%s: 400, %s: %.200s", where, type(err).__name__, err)
        return web.Response(status=400, text="bad request path\n")
    except OSError as err:  # a name too long for the file system, ...
        logger.warning("%s: 404, %s", where, err.strerror or type(err).__name__)
        return web.Response(status=404, text="not found\n")
    except Exception as err:
        logger.error("%s: 500, %s: %.200s", where, type(err).__name__, err)
        return web.Response(status=500, text="internal error (see the serve log)\n")


# ---------------------------------------------------------------------------------------------
# Report


async def _report_file(request: web.Request) -> web.StreamResponse:
    reports = request.app[REPORTS_KEY].resolve()
    relative = request.match_info["path"] or REPORT_INDEX
    if any(ord(c) < 32 or ord(c) == 127 for c in relative):
        raise web.HTTPBadRequest(text="control characters in the path\n")
    target = (reports / relative).resolve()  # match_info is already percent-decoded
    if target.is_dir():
        target = target / REPORT_INDEX
    if not target.is_relative_to(reports):
        raise web.HTTPNotFound()
    if target.is_file():
        return web.FileResponse(target, headers={"Cache-Control": "no-cache"})
    if relative == REPORT_INDEX:
        return await _listing(request, note="No report yet: run `linkkeeper report` to write "
                              f"{reports / REPORT_INDEX}. Meanwhile, the archive's contents:")
    raise web.HTTPNotFound(text=f"{relative}: not in {reports}\n")


# ---------------------------------------------------------------------------------------------
# Archive


async def _archive_root(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/archive/")


def _split_tail(request: web.Request) -> tuple[str | None, str]:
    raw = request.raw_path
    tail = raw[len("/archive/"):] if raw.startswith("/archive/") else ""
    match = _TAIL.match(tail)
    timestamp, url = (match["ts"], match["url"]) if match else (None, tail)
    return timestamp, _COLLAPSED_SCHEME.sub(lambda m: m.group(1).lower() + "://", url, count=1)


async def _archive(request: web.Request) -> web.StreamResponse:
    timestamp, url = _split_tail(request)
    if not url or url.startswith("?"):
        return await _listing(request)
    app = request.app
    captures = await _locked(app, _find_captures, app[DB_KEY], url)
    if not captures:
        body = (f"<p>Nothing archived for <code>{html.escape(url)}</code>.</p>"
                '<p><a href="/archive/">All archived URLs</a></p>')
        return web.Response(status=404, text=_page("Not archived", body), content_type="text/html")
    if timestamp == "*":
        return web.Response(text=_capture_list(captures[0].url, captures), content_type="text/html")
    try:
        at = period_end(timestamp) if timestamp else None
    except ValueError as err:
        raise web.HTTPBadRequest(text=f"{err}\n") from None
    chosen = closest_capture(captures, at)
    assert chosen is not None
    try:
        archived = await _locked(app, load_response, app[DB_KEY], app[WARCS_KEY], chosen)
    except CaptureUnavailable as err:
        body = f"<p>The capture cannot be read: {html.escape(str(err))}</p>"
        return web.Response(status=502, text=_page("Capture unavailable", body),
                            content_type="text/html")
    return _replay_response(archived)


def _find_captures(db: sqlite_utils.Database, url: str) -> list[Capture]:
    try:
        found = captures_of(db, url)
        if not found and "%" in url:
            found = captures_of(db, unquote(url))
        return found
    except sqlite3.OperationalError:  # no snapshots table yet: nothing archived
        return []


async def _locked(app: web.Application, fn: Any, *args: Any) -> Any:
    lock = app[LOCK_KEY]

    def call() -> Any:
        with lock:
            return fn(*args)

    return await asyncio.to_thread(call)


def _replay_response(archived: ArchivedResponse) -> web.Response:
    capture = archived.capture
    headers: CIMultiDict[str] = CIMultiDict()
    for name, value in archived.headers:
        lowered = name.lower()
        if lowered in _HOP_BY_HOP:
            continue
        if lowered in _NEUTRALISED:
            headers.add(f"X-Archive-Orig-{name}", value)
        elif lowered in ("location", "content-location"):
            headers.add(name, archive_path(capture.timestamp, urljoin(capture.url, value.strip())))
            headers.add(f"X-Archive-Orig-{name}", value)
        else:
            headers.add(name, value)
    for name, value in ARCHIVE_POLICY:
        headers[name] = value
    headers["Memento-Datetime"] = format_datetime(capture.date, usegmt=True)
    headers.add("Link", f'<{capture.url}>; rel="original"')
    if archived.truncated:
        headers["X-Archive-Truncated"] = "length"
    body = b"" if archived.status in (204, 304) or archived.status < 200 else archived.payload
    if "Content-Type" not in headers and body:
        headers["Content-Type"] = "application/octet-stream"
    reason = archived.reason if archived.reason.isascii() and archived.reason.isprintable() else ""
    return web.Response(status=archived.status, reason=reason or None, body=body, headers=headers)


# ---------------------------------------------------------------------------------------------
# Pages of our own (everything from the archive is escaped: it is data, never markup)


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang=en><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title>"
        "<style>body{font:15px/1.4 system-ui,sans-serif;margin:1.5em;max-width:70em}"
        "td,th{padding:.2em .6em;text-align:left;vertical-align:top}"
        "td:first-child{word-break:break-all}tr:nth-child(even){background:#f4f4f4}</style>"
        f"<h1>{html.escape(title)}</h1>{body}</html>"
    )


def _when(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M}"


async def _listing(request: web.Request, note: str = "") -> web.Response:
    query = request.query.get("q", "").strip()
    app = request.app

    def rows() -> list[tuple[str, int, datetime, datetime]]:
        try:
            found = archived_urls(app[DB_KEY])
        except sqlite3.OperationalError:
            return []
        return [r for r in found if query.lower() in r[0].lower()] if query else found

    found = await _locked(app, rows)
    shown = found[:_LISTING_LIMIT]
    lines = [
        f'<tr><td><a href="{html.escape(archive_path(f"{last:%Y%m%d%H%M%S}", url))}">'
        f"{html.escape(url)}</a></td><td>"
        f'<a href="{html.escape("/archive/*/" + url)}">{count}</a></td>'
        f"<td>{_when(first)}</td><td>{_when(last)}</td></tr>"
        for url, count, first, last in shown
    ]
    more = (f"<p>Showing {len(shown)} of {len(found)}; narrow with the filter.</p>"
            if len(found) > len(shown) else "")
    body = (
        (f"<p>{html.escape(note)}</p>" if note else "")
        + '<form action="/archive/"><input name=q placeholder="filter URLs" '
        f'value="{html.escape(query)}"> <button>Filter</button></form>'
        f"<p>{len(found)} archived URLs.</p>{more}"
        "<table><tr><th>URL (newest copy)</th><th>captures</th><th>first</th><th>last</th></tr>"
        + "".join(lines) + "</table>"
    )
    return web.Response(text=_page("Archived links", body), content_type="text/html")


def _capture_list(url: str, captures: list[Capture]) -> str:
    lines = []
    for c in reversed(captures):
        kind = " (unchanged: revisit)" if c.record_type == "revisit" else ""
        lines.append(
            f'<tr><td><a href="{html.escape(archive_path(c.timestamp, c.url))}">'
            f"{_when(c.date)}</a></td><td>{c.http_status or '-'}{kind}</td>"
            f"<td>{html.escape(c.content_type or '-')}</td>"
            f"<td>{'-' if c.payload_length is None else c.payload_length}</td></tr>"
        )
    body = (
        f"<p><code>{html.escape(url)}</code></p>"
        "<table><tr><th>captured (UTC)</th><th>status</th><th>type</th><th>bytes</th></tr>"
        + "".join(lines) + '</table><p><a href="/archive/">All archived URLs</a></p>'
    )
    return _page("Captures", body)


class BindError(OSError):
    """The address cannot be listened on (port in use, no such address, no permission)."""


def run(app: web.Application, host: str, port: int, *, say: Any = print) -> None:
    """Bind, then say where we serve, then serve until interrupted (Ctrl-C).

    "serving http://..." is printed only once the socket is bound: a port in use is
    a `BindError`, one clear line for the CLI, not a traceback after a false promise.
    The server's log (aiohttp's own errors included) is one line per event.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLineFormatter())
    for name in (__name__, "aiohttp.server", "aiohttp.web"):
        server_log = logging.getLogger(name)
        server_log.handlers[:] = [handler]
        server_log.propagate = False
    asyncio.run(_serve(app, host, port, say))


async def _serve(app: web.Application, host: str, port: int, say: Any) -> None:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            why = os.strerror(exc.errno).lower() if exc.errno else str(exc)
            raise BindError(f"cannot listen on {host}:{port}: {why}") from None
        bound = port or _bound_port(runner) or port
        shown = f"[{host}]" if ":" in host else host
        say(f"serving http://{shown}:{bound}/ (report) and http://{shown}:{bound}/archive/ "
            "- Ctrl-C to stop")
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def _bound_port(runner: web.AppRunner) -> int | None:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return None


class OneLineFormatter(logging.Formatter):
    """One line per event: aiohttp's own errors (a request line too long, bad bytes) included,
    their exception named and summed up instead of a traceback."""

    def format(self, record: logging.LogRecord) -> str:
        text = f"serve: {record.getMessage()}"
        error = record.exc_info[1] if record.exc_info else None
        if error is not None:
            text += f": {type(error).__name__}: {' '.join(str(error).split())[:200]}"
        return text
