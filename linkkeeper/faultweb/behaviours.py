"""The behaviour table of the fault-injection web: what each path plays.

A behaviour is chosen by the first segment of the path (`/flaky/3/x` ->
"flaky"), the same on every virtual host unless a host has its own override.
Each one is an async handler plus, where the bytes are a pure function of
(host, path), a `payload` function that returns exactly the body it sends, so
archive tests can compare bytes without fetching. Later behaviours (soft-404
hosts, meta refresh, legacy charsets, drift) are added by registering more
`Behaviour` objects; nothing here needs to change.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import socket
import struct
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import quote

from aiohttp import web
from yarl import URL

from linkkeeper.faultweb import bodies

HTML = "text/html; charset=utf-8"
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
SLOW_BODY_PIECES = 10
CHUNKED_PIECES = 5
BAD_LENGTH_EXCESS = 1000  # bytes promised by Content-Length but never sent


class BadPath(ValueError):
    """The path asks for a behaviour with arguments that make no sense (answered 400)."""


@dataclass(slots=True)
class Hit:
    """One request as a behaviour sees it."""

    request: web.BaseRequest
    host: str  # Host header, lower-case, without port: the virtual host
    authority: str  # Host header as sent (port kept), for absolute Locations
    scheme: str  # "http" or "https", as the client sees it
    path: str  # decoded path, no query
    args: list[str]  # path segments after the behaviour's name
    count: int  # this is the count-th request for (host, path), counting from 1
    closing: asyncio.Event  # set when the server stops: endless behaviours give up
    remember: Callable[[bytes], None]  # record the body sent when it varies per request
    # Call with the status just before the last bytes go out: the log then marks the request
    # done before the client can see it done, so a client reacting at once is never counted
    # as overlapping it. Responses returned unsent are marked by the server itself.
    finishing: Callable[[int | None], None]
    headers_sent: int | None = None  # status of headers already on the wire, if any

    @property
    def is_head(self) -> bool:
        return self.request.method == "HEAD"

    def absolute(self, path: str, query: str = "") -> str:
        """An absolute URL on the host the client asked for (Host header kept verbatim)."""
        return f"{self.scheme}://{self.authority}{quote_path(path)}{query}"

    def int_arg(self, index: int, name: str, low: int = 0, high: int = 10**12) -> int:
        try:
            value = int(self.args[index])
        except (IndexError, ValueError):
            raise BadPath(
                f"{self.path}: expected an integer {name} as segment {index + 2}"
            ) from None
        if not low <= value <= high:
            raise BadPath(f"{self.path}: {name} must be between {low} and {high}, not {value}")
        return value

    def rest(self, start: int) -> str:
        """The path segments from `start` on, joined: the free-form tail of the path."""
        return "/".join(self.args[start:]) or "index"


def quote_path(path: str) -> str:
    """Percent-encode a decoded path for a Location header ("?" and "#" in it are data)."""
    return quote(path, safe="/:@!$&'()*+,;=-._~")


Handler = Callable[[Hit], Awaitable[web.StreamResponse]]
Payload = Callable[[str, str], bytes]  # (host, path) -> body bytes exactly as sent


@dataclass(frozen=True, slots=True)
class Behaviour:
    name: str  # first path segment; "" is the home page, "*" anything unknown
    handler: Handler
    payload: Payload | None = None
    doc: str = ""


def _reason(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return {999: "Request denied"}.get(code, "Unknown")


def _page(body: bytes, status: int = 200, content_type: str = HTML, **headers: str) -> web.Response:
    response = web.Response(body=body, status=status, reason=_reason(status), headers=headers)
    response.content_type, _, charset = content_type.partition("; charset=")
    if charset:
        response.charset = charset
    return response


def _int_segment(path: str, index: int) -> int:
    """Segment `index` (0 = behaviour name) of a path as an int, for payload functions."""
    try:
        return int(path.split("/")[index + 1])
    except (IndexError, ValueError):
        raise BadPath(f"{path}: segment {index + 1} is not an integer") from None


# -- plain pages ---------------------------------------------------------------------------


async def home(hit: Hit) -> web.StreamResponse:
    return _page(bodies.home_html(hit.host))


async def ok(hit: Hit) -> web.StreamResponse:
    return _page(bodies.article_html(hit.host, hit.path))


def _image_payload(host: str, path: str) -> bytes:
    extension = path.rsplit(".", 1)[-1] if "." in path.rsplit("/", 1)[-1] else ""
    if extension.lower() not in bodies.IMAGE_TYPES:
        raise BadPath(f"{path}: images end in one of {sorted(bodies.IMAGE_TYPES)}")
    return bodies.image_bytes(extension, host, path)


async def image(hit: Hit) -> web.StreamResponse:
    body = _image_payload(hit.host, hit.path)
    extension = hit.path.rsplit(".", 1)[-1].lower()
    return _page(
        body, content_type=bodies.IMAGE_TYPES[extension], **{"Cache-Control": "max-age=86400"}
    )


def _status_payload(host: str, path: str) -> bytes:
    code = _int_segment(path, 1)
    if code in (204, 304):
        return b""
    return bodies.message_html(code, _reason(code))


async def status(hit: Hit) -> web.StreamResponse:
    code = hit.int_arg(0, "status code", 200, 999)
    if code in (204, 304):
        return web.Response(status=code, reason=_reason(code))
    return _page(_status_payload(hit.host, hit.path), status=code)


async def not_found(hit: Hit) -> web.StreamResponse:
    return _page(_not_found_payload(hit.host, hit.path), status=404)


def _not_found_payload(host: str, path: str) -> bytes:
    return bodies.message_html(404, "Not Found", "The requested URL was not found on this server.")


# -- recovering failures -------------------------------------------------------------------


def _recovering_payload(host: str, path: str) -> bytes:
    """After recovery the page is an ordinary article (the failing answers have short pages)."""
    return bodies.article_html(host, path)


async def flaky(hit: Hit) -> web.StreamResponse:
    failures = hit.int_arg(0, "failure count")
    if hit.count <= failures:
        return _page(bodies.message_html(503, "Service Unavailable"), status=503)
    return _page(bodies.article_html(hit.host, hit.path))


async def ratelimit(hit: Hit) -> web.StreamResponse:
    seconds = hit.int_arg(0, "Retry-After seconds")
    failures = hit.int_arg(1, "failure count")
    if hit.count <= failures:
        return _page(
            bodies.message_html(429, "Too Many Requests"),
            status=429,
            **{"Retry-After": str(seconds)},
        )
    return _page(bodies.article_html(hit.host, hit.path))


async def ratelimit_date(hit: Hit) -> web.StreamResponse:
    seconds = hit.int_arg(0, "Retry-After seconds")
    failures = hit.int_arg(1, "failure count")
    if hit.count <= failures:
        # An HTTP date has whole seconds: round up so "at least `seconds`" stays true.
        when = email.utils.formatdate(int(time.time()) + seconds + 1, usegmt=True)
        return _page(
            bodies.message_html(429, "Too Many Requests"), status=429, **{"Retry-After": when}
        )
    return _page(bodies.article_html(hit.host, hit.path))


async def head_refused(hit: Hit) -> web.StreamResponse:
    code = hit.int_arg(0, "HEAD status", 200, 999)
    if hit.is_head:
        headers = {"Allow": "GET"} if code == 405 else {}
        return _page(bodies.message_html(code, _reason(code)), status=code, **headers)
    return _page(bodies.article_html(hit.host, hit.path))


# -- redirects ------------------------------------------------------------------------------


def _redirect(hit: Hit, code: int, location: str) -> web.StreamResponse:
    if code not in REDIRECT_CODES:
        raise BadPath(f"{hit.path}: redirect status must be one of {sorted(REDIRECT_CODES)}")
    body = bodies.message_html(code, _reason(code), "The document has moved.")
    return _page(body, status=code, Location=location)


def _redirect_payload(host: str, path: str) -> bytes:
    code = _int_segment(path, 1)
    hops = _int_segment(path, 2)
    if hops <= 0:
        return bodies.article_html(host, "/ok/" + ("/".join(path.split("/")[4:]) or "index"))
    return bodies.message_html(code, _reason(code), "The document has moved.")


async def redirect(hit: Hit) -> web.StreamResponse:
    """/redirect/<code>/<n>/<rest>: n hops with absolute Locations, ending at /ok/<rest>."""
    code = hit.int_arg(0, "redirect status", 300, 399)
    hops = hit.int_arg(1, "hop count", 0, 1000)
    rest = hit.rest(2)
    if hops == 0:
        return _page(bodies.article_html(hit.host, f"/ok/{rest}"))
    target = f"/redirect/{code}/{hops - 1}/{rest}" if hops > 1 else f"/ok/{rest}"
    return _redirect(hit, code, hit.absolute(target))


async def redirect_relative(hit: Hit) -> web.StreamResponse:
    """/redirect-relative/<code>/<n>/<rest>: like /redirect, with dot-segment relative Locations."""
    code = hit.int_arg(0, "redirect status", 300, 399)
    hops = hit.int_arg(1, "hop count", 0, 1000)
    rest = hit.rest(2)
    if hops == 0:
        return _page(bodies.article_html(hit.host, f"/ok/{rest}"))
    depth = len(rest.split("/"))  # directories between this URL and /redirect-relative/<code>/
    if hops > 1:
        location = "../" * depth + f"{hops - 1}/{rest}"
    else:
        location = "../" * (depth + 2) + f"ok/{rest}"
    return _redirect(hit, code, quote_path(location))


async def redirect_to(hit: Hit) -> web.StreamResponse:
    """/redirect-to?url=<absolute url>&code=<3xx>: one hop anywhere, across hosts too."""
    url = hit.request.query.get("url", "")
    if not URL(url).absolute:
        raise BadPath(f"{hit.path}: needs ?url=<absolute URL>")
    return _redirect(hit, _query_code(hit), url)


def _query_code(hit: Hit) -> int:
    try:
        return int(hit.request.query.get("code", "302"))
    except ValueError:
        raise BadPath(f"{hit.path}: ?code= must be an integer") from None


async def loop(hit: Hit) -> web.StreamResponse:
    """/loop/<n>/<id>: /loop/n/id -> /loop/n/id/1 -> ... -> /loop/n/id/<n-1> -> /loop/n/id."""
    size = hit.int_arg(0, "loop length", 1, 1000)
    if len(hit.args) < 2:
        raise BadPath(f"{hit.path}: expected /loop/<n>/<id>")
    base = f"/loop/{size}/{hit.args[1]}"
    index = hit.int_arg(2, "loop index", 0, size - 1) if len(hit.args) > 2 else 0
    following = (index + 1) % size
    target = f"{base}/{following}" if following else base
    code = _query_code(hit)
    query = f"?code={code}" if "code" in hit.request.query else ""
    return _redirect(hit, code, hit.absolute(target, query))


# -- bot blocks --------------------------------------------------------------------------------

_CF_CHALLENGE = b"""<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title>
<meta http-equiv="refresh" content="390"></head>
<body><div class="main-wrapper" role="main"><h1>Checking if the site connection is secure</h1>
<noscript>Enable JavaScript and cookies to continue</noscript></div></body></html>
"""


def _block_payload(host: str, path: str) -> bytes:
    kind = [*path.split("/"), "", ""][2]
    if kind == "cf":
        return _CF_CHALLENGE
    if kind == "999":
        return b"<html><head><script>window.location='/authwall';</script></head></html>\n"
    if kind in ("401", "403"):
        return bodies.message_html(int(kind), _reason(int(kind)))
    raise BadPath(f"{path}: block kind is one of 401, 403, 999, cf")


async def block(hit: Hit) -> web.StreamResponse:
    """/block/401|403|999|cf/...: access refused the ways real sites refuse robots."""
    body = _block_payload(hit.host, hit.path)
    kind = hit.args[0]
    if kind == "401":
        return _page(body, status=401, **{"WWW-Authenticate": 'Basic realm="subscribers"'})
    if kind == "403":
        return _page(body, status=403)
    if kind == "999":
        return _page(body, status=999)
    return _page(
        body,
        status=403,
        **{"cf-mitigated": "challenge", "Server": "cloudflare", "cf-ray": "8f0000000000-LHR"},
    )


# -- time ----------------------------------------------------------------------------------------


async def slow(hit: Hit) -> web.StreamResponse:
    delay = hit.int_arg(0, "delay in ms", 0, 3_600_000)
    await asyncio.sleep(delay / 1000)
    return _page(bodies.article_html(hit.host, hit.path))


async def slow_body(hit: Hit) -> web.StreamResponse:
    """Headers at once, then the body trickles out over <ms> milliseconds."""
    duration = hit.int_arg(0, "duration in ms", 0, 3_600_000)
    body = bodies.article_html(hit.host, hit.path)
    response = _streaming(hit, len(body))
    if await _send_headers(hit, response):
        step = -(-len(body) // SLOW_BODY_PIECES)
        pieces = (body[start : start + step] for start in range(0, len(body), step))
        await _send_body(hit, response, pieces, delay=duration / 1000 / SLOW_BODY_PIECES)
    return response


async def _send_headers(hit: Hit, response: web.StreamResponse) -> bool:
    """Send the status line and headers; for HEAD that is the whole answer. True if a body follows."""
    if hit.is_head:
        hit.finishing(response.status)
    await response.prepare(hit.request)
    hit.headers_sent = response.status
    return not hit.is_head


async def _send_body(
    hit: Hit, response: web.StreamResponse, pieces: Iterable[bytes], delay: float = 0.0
) -> None:
    """Write the pieces (waiting `delay` before each), marking the request done before the last.

    A client that stops reading halfway (a checker that has what it needs) ends
    the body quietly: that is ordinary, not a server error.
    """
    iterator = iter(pieces)
    piece = next(iterator, None)
    with contextlib.suppress(ConnectionError):
        while piece is not None:
            following = next(iterator, None)
            if delay:
                await asyncio.sleep(delay)
            if following is None:
                hit.finishing(response.status)
            await response.write(piece)
            piece = following
        hit.finishing(response.status)
        await response.write_eof()


async def hang(hit: Hit) -> web.StreamResponse:
    """Never answer. The task ends when the client leaves (handler cancellation) or the server stops."""
    await hit.closing.wait()
    transport = hit.request.transport
    if transport is not None:
        transport.abort()
    return web.Response(status=503)  # never reaches the wire: the connection is gone


# -- broken transfers ----------------------------------------------------------------------------


def _streaming(
    hit: Hit, length: int | None, content_type: str = "text/html", **headers: str
) -> web.StreamResponse:
    response = web.StreamResponse(status=200, headers=headers)
    response.content_type = content_type
    if content_type.startswith("text/"):
        response.charset = "utf-8"
    if length is not None:
        response.content_length = length
    return response


def _half_payload(host: str, path: str) -> bytes:
    body = bodies.article_html(host, path)
    return body[: len(body) // 2]


async def reset(hit: Hit) -> web.StreamResponse:
    """Headers and half the body, then a TCP reset (abort), as a crashing backend does."""
    body = bodies.article_html(hit.host, hit.path)
    response = _streaming(hit, len(body))
    if not await _send_headers(hit, response):
        return response
    with contextlib.suppress(ConnectionError):
        await response.write(body[: len(body) // 2])
    transport = hit.request.transport
    if transport is not None:
        await _flushed(transport, hit.closing)
        hit.finishing(response.status)
        reset_connection(transport)
    return response


def reset_connection(transport: asyncio.BaseTransport) -> None:
    """Close with a TCP RST, not a FIN: SO_LINGER 0, then abort (which alone closes gracefully)."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def _flushed(transport: asyncio.BaseTransport, closing: asyncio.Event) -> None:
    """Wait until the kernel has the bytes: abort() drops anything still buffered."""
    assert isinstance(transport, asyncio.WriteTransport)
    while transport.get_write_buffer_size() and not transport.is_closing() and not closing.is_set():
        await asyncio.sleep(0.001)


async def bad_length(hit: Hit) -> web.StreamResponse:
    """Content-Length promises more than is sent, then the server closes the connection."""
    body = bodies.article_html(hit.host, hit.path)
    response = _streaming(hit, len(body) + BAD_LENGTH_EXCESS)
    response.force_close()
    if not await _send_headers(hit, response):
        return response
    with contextlib.suppress(ConnectionError):
        await response.write(body)
    transport = hit.request.transport
    if transport is not None:
        hit.finishing(response.status)
        transport.close()  # flushes what was written, then FIN: a short body, not a reset
    return response


def _gzip_payload(host: str, path: str) -> bytes:
    return bodies.gzip_bytes(bodies.article_html(host, path))


def _brotli_payload(host: str, path: str) -> bytes:
    return bodies.brotli_bytes(bodies.article_html(host, path))


def accepts_coding(accept_encoding: str | None, coding: str) -> bool:
    """Whether an Accept-Encoding value allows `coding` (RFC 9110 12.5.3; absent means anything)."""
    if accept_encoding is None:
        return True
    qualities: dict[str, float] = {}
    for item in accept_encoding.split(","):
        name, _, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if name.strip():
            qualities[name.strip().lower()] = quality
    return qualities.get(coding, qualities.get("*", 0.0)) > 0


async def _encoded(hit: Hit, coding: str, payload: Payload) -> web.StreamResponse:
    """The article content-encoded, unless the client's Accept-Encoding refuses the coding.

    payload_for() gives the encoded bytes: what aiohttp, browsers and curl
    --compressed get (and clients that send no Accept-Encoding at all).
    """
    if accepts_coding(hit.request.headers.get("Accept-Encoding"), coding):
        body = payload(hit.host, hit.path)
        return _page(body, **{"Content-Encoding": coding, "Vary": "Accept-Encoding"})
    return _page(bodies.article_html(hit.host, hit.path), Vary="Accept-Encoding")


async def gzip_encoded(hit: Hit) -> web.StreamResponse:
    return await _encoded(hit, "gzip", _gzip_payload)


async def brotli_encoded(hit: Hit) -> web.StreamResponse:
    return await _encoded(hit, "br", _brotli_payload)


async def chunked(hit: Hit) -> web.StreamResponse:
    """Transfer-Encoding: chunked, the article in a few chunks (payload is the de-chunked body)."""
    body = bodies.article_html(hit.host, hit.path)
    response = _streaming(hit, None)
    response.enable_chunked_encoding()
    if await _send_headers(hit, response):
        step = -(-len(body) // CHUNKED_PIECES)
        await _send_body(hit, response, (body[i : i + step] for i in range(0, len(body), step)))
    return response


def _large_payload(host: str, path: str) -> bytes:
    size = _int_segment(path, 1)
    return b"".join(bodies.iter_large(host, path, size))


async def large(hit: Hit) -> web.StreamResponse:
    """/large/<bytes>/...: a body of that size, streamed from a repeating block."""
    size = hit.int_arg(0, "size in bytes", 0, 1 << 40)
    response = _streaming(hit, size, content_type="application/octet-stream")
    if await _send_headers(hit, response):
        await _send_body(hit, response, bodies.iter_large(hit.host, hit.path, size))
    return response


async def endless(hit: Hit) -> web.StreamResponse:
    """/endless/...: a chunked HTML answer that never ends (the /large block, again and again).

    Its first n bytes are ``bodies.iter_large(host, path, n)``; it stops only when the
    client hangs up or the server closes.
    """
    response = _streaming(hit, None)
    response.enable_chunked_encoding()
    if await _send_headers(hit, response):
        block = bodies.large_block(hit.host, hit.path)
        with contextlib.suppress(ConnectionError):
            while not hit.closing.is_set():
                await response.write(block)
    return response


async def changing(hit: Hit) -> web.StreamResponse:
    """/changing/<id>: a page whose text changes on every request (drift, re-archiving)."""
    extra = f'\n    <p class="update">Updated: revision {hit.count}.</p>'
    body = bodies.article_html(hit.host, hit.path, extra=extra)
    hit.remember(body)
    return _page(body, **{"Cache-Control": "no-cache"})


def _article_payload(host: str, path: str) -> bytes:
    return bodies.article_html(host, path)


DEFAULT_BEHAVIOURS: tuple[Behaviour, ...] = (
    Behaviour("", home, lambda host, path: bodies.home_html(host), "home page"),
    Behaviour("ok", ok, _article_payload, "200 article page, title from the path"),
    Behaviour("img", image, _image_payload, "200 small image (.jpg .png .gif .webp)"),
    Behaviour("status", status, _status_payload, "/status/<code>/...: that status"),
    Behaviour("flaky", flaky, _recovering_payload, "/flaky/<k>/<id>: 503 k times, then 200"),
    Behaviour(
        "ratelimit",
        ratelimit,
        _recovering_payload,
        "/ratelimit/<s>/<k>/<id>: 429 Retry-After: s, k times",
    ),
    Behaviour(
        "ratelimit-date",
        ratelimit_date,
        _recovering_payload,
        "as /ratelimit with an HTTP-date Retry-After",
    ),
    Behaviour(
        "head", head_refused, _article_payload, "/head/<code>/...: HEAD gets <code>, GET 200"
    ),
    Behaviour(
        "redirect", redirect, _redirect_payload, "/redirect/<code>/<n>/<rest>: n hops to /ok/<rest>"
    ),
    Behaviour(
        "redirect-relative", redirect_relative, _redirect_payload, "as /redirect, relative Location"
    ),
    Behaviour(
        "redirect-to", redirect_to, None, "/redirect-to?url=<abs>&code=<3xx>: one hop anywhere"
    ),
    Behaviour("loop", loop, None, "/loop/<n>/<id>: redirect loop through n URLs"),
    Behaviour("block", block, _block_payload, "/block/401|403|999|cf/...: bot blocks"),
    Behaviour("slow", slow, _article_payload, "/slow/<ms>/...: waits, then 200"),
    Behaviour(
        "slow-body", slow_body, _article_payload, "/slow-body/<ms>/...: body trickles over ms"
    ),
    Behaviour("hang", hang, None, "/hang/...: never answers"),
    Behaviour("reset", reset, _half_payload, "/reset/...: half a body, then a TCP reset"),
    Behaviour(
        "bad-length",
        bad_length,
        _article_payload,
        "/bad-length/...: Content-Length too large, then close",
    ),
    Behaviour("gzip", gzip_encoded, _gzip_payload, "/gzip/...: Content-Encoding gzip"),
    Behaviour("brotli", brotli_encoded, _brotli_payload, "/brotli/...: Content-Encoding br"),
    Behaviour("chunked", chunked, _article_payload, "/chunked/...: Transfer-Encoding chunked"),
    Behaviour("large", large, _large_payload, "/large/<bytes>/...: a streamed body of that size"),
    Behaviour("endless", endless, None, "/endless/...: a chunked body that never ends"),
    Behaviour("changing", changing, None, "/changing/<id>: different text on every request"),
    Behaviour("*", not_found, _not_found_payload, "anything else: 404"),
)
