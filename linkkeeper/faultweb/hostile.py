"""Hostile servers: compression bombs, and pages that attack whoever replays their archive.

``/bomb/<kind>/<MiB>/story-<id>`` answers 200 ``text/html`` with a body that inflates to
<MiB> mebibytes of zeros under its Content-Encoding; the body itself stays small (about a
thousandth of that for deflate, far less for the others). Other ids are 404, as unknown
pages of a real site are (so a soft-404 probe does not meet a second bomb)::

    br          Content-Encoding: br           (a few kB)
    gzip        Content-Encoding: gzip
    x-gzip      Content-Encoding: x-gzip
    gzip-gzip   Content-Encoding: gzip, gzip   (the outer gzip inflates to <MiB> of an inner
                                                gzip stream, left unterminated, of some
                                                thousand times more zeros: 2.4 MB per GiB)
    deflate     Content-Encoding: deflate      (zlib-wrapped, as RFC 9110 says)
    deflate-raw Content-Encoding: deflate      (raw deflate, as some servers send)
    zstd        Content-Encoding: zstd         (RLE blocks: 4 bytes per 128 KiB)

The deflate streams are built from one fully flushed 1 MiB block repeated, so even a
gibibyte costs milliseconds to make. ``/hostile/<page>`` are pages whose scripts attack the
viewer that replays them (``linkkeeper serve``): ``leak`` reads ``/archive/`` and writes it
into its title, ``fetch`` tries ``fetch('/archive/')`` and writes the outcome into its title,
``sw`` registers ``sw.js`` for scope ``/``, and ``sw.js`` is that service worker, sent with
``Service-Worker-Allowed: /`` (it would answer every URL of the viewer with "owned").
"""

from __future__ import annotations

import functools
import struct
import zlib

import brotli
from aiohttp import web

from linkkeeper.faultweb.behaviours import BadPath, Behaviour, Hit

MIB = 1 << 20
_ZEROS = bytes(MIB)
BOMB_CODINGS = {
    "br": "br", "gzip": "gzip", "x-gzip": "x-gzip", "gzip-gzip": "gzip, gzip",
    "deflate": "deflate", "deflate-raw": "deflate", "zstd": "zstd",
}
OWNED = "owned by an archived service worker"


@functools.cache
def _zero_block() -> bytes:
    """Raw deflate of one MiB of zeros, fully flushed: it can be repeated (history is cut)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(_ZEROS) + compressor.flush(zlib.Z_FULL_FLUSH)


_FINAL_EMPTY_BLOCK = b"\x03\x00"  # a last, empty fixed-Huffman block: the stream's end


@functools.lru_cache(maxsize=8)
def _raw_deflate_zeros(mib: int) -> bytes:
    """Raw deflate of `mib` MiB of zeros."""
    return _zero_block() * mib + _FINAL_EMPTY_BLOCK


_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"  # no name, mtime 0, level 9


@functools.lru_cache(maxsize=4)
def gzip_gzip_zeros(mib: int) -> bytes:
    """gzip of an inner gzip stream of about `mib` MiB (its deflate blocks of zeros repeated,
    no end): the outer layer alone inflates to `mib` MiB, the inner to ~1000 times that."""
    block = _zero_block()
    per_mib = MIB // len(block)
    outer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    head = outer.compress(_GZIP_HEADER) + outer.flush(zlib.Z_FULL_FLUSH)
    piece = outer.compress(block * per_mib) + outer.flush(zlib.Z_FULL_FLUSH)  # same every time
    crc = zlib.crc32(_GZIP_HEADER)
    for _ in range(mib):
        crc = zlib.crc32(block * per_mib, crc)
    size = len(_GZIP_HEADER) + mib * per_mib * len(block)
    return (_GZIP_HEADER + head + piece * mib + outer.flush(zlib.Z_FINISH)
            + struct.pack("<II", crc, size & 0xFFFFFFFF))


def _repeat_checksum(fn: object, mib: int, start: int) -> int:
    value = start
    for _ in range(mib):
        value = fn(_ZEROS, value)  # type: ignore[operator]
    return value


@functools.lru_cache(maxsize=8)
def gzip_zeros(mib: int) -> bytes:
    header = _GZIP_HEADER
    trailer = struct.pack("<II", _repeat_checksum(zlib.crc32, mib, 0), (mib * MIB) & 0xFFFFFFFF)
    return header + _raw_deflate_zeros(mib) + trailer


@functools.lru_cache(maxsize=8)
def zlib_zeros(mib: int) -> bytes:
    return b"\x78\xda" + _raw_deflate_zeros(mib) + struct.pack(
        ">I", _repeat_checksum(zlib.adler32, mib, 1))


@functools.lru_cache(maxsize=8)
def brotli_zeros(mib: int) -> bytes:
    compressor = brotli.Compressor(quality=5)
    return b"".join(compressor.process(_ZEROS) for _ in range(mib)) + compressor.finish()


def zstd_zeros(mib: int) -> bytes:
    """A zstd frame of 128 KiB RLE blocks (RFC 8878: 3-byte block header, then the byte)."""
    frame = b"\x28\xb5\x2f\xfd\x00\x38"  # magic; no content size; window 128 KiB
    blocks = mib * 8
    block = 131072 << 3 | 1 << 1  # size, type RLE
    body = struct.pack("<I", block)[:3] + b"\0"
    last = struct.pack("<I", block | 1)[:3] + b"\0"
    return frame + body * (blocks - 1) + last if blocks else frame + b"\x01\x00\x00"


def bomb_body(kind: str, mib: int) -> bytes:
    """The bytes /bomb/<kind>/<mib>/... sends."""
    if kind in ("gzip", "x-gzip"):
        return gzip_zeros(mib)
    if kind == "gzip-gzip":
        return gzip_gzip_zeros(mib)
    if kind == "deflate":
        return zlib_zeros(mib)
    if kind == "deflate-raw":
        return _raw_deflate_zeros(mib)
    if kind == "br":
        return brotli_zeros(mib)
    if kind == "zstd":
        return zstd_zeros(mib)
    raise BadPath(f"/bomb/{kind}: one of {sorted(BOMB_CODINGS)}")


def _bomb_args(path: str) -> tuple[str, int]:
    parts = path.split("/")
    try:
        kind, mib = parts[2], int(parts[3])
    except (IndexError, ValueError):
        raise BadPath(f"{path}: expected /bomb/<kind>/<MiB>/...") from None
    if not 0 <= mib <= 16384:
        raise BadPath(f"{path}: MiB must be between 0 and 16384")
    return kind, mib


def _bomb_payload(host: str, path: str) -> bytes:
    if not path.rsplit("/", 1)[-1].startswith("story"):
        return b"no such page\n"
    return bomb_body(*_bomb_args(path))


async def bomb(hit: Hit) -> web.StreamResponse:
    kind, mib = _bomb_args(hit.path)
    if not hit.path.rsplit("/", 1)[-1].startswith("story"):
        return web.Response(status=404, text="no such page\n")
    body = bomb_body(kind, mib)
    headers = {"Content-Type": "text/html; charset=utf-8",
               "Content-Encoding": BOMB_CODINGS[kind]}
    return web.Response(body=body, headers=headers)


# -- pages that attack their replay ---------------------------------------------------------

_TITLE_SCRIPT = """<!doctype html><html><head><meta charset=utf-8><title>{title}</title></head>
<body><h1>{title}</h1><p>An archived page with a script.</p>
<script>
function say(text) {{ document.title = text; }}
{script}
</script></body></html>
"""

HOSTILE_PAGES: dict[str, tuple[str, str]] = {
    "leak": ("hostile leak", """
fetch('/archive/').then(r => r.text())
  .then(t => say('LEAKED ' + t.replace(/<[^>]*>/g, ' ').replace(/\\s+/g, ' ').slice(0, 500)))
  .catch(e => say('blocked: ' + e));"""),
    "fetch": ("hostile fetch", """
fetch('/archive/').then(r => say('fetched: ' + r.status), e => say('failed: ' + e));"""),
    "sw": ("hostile sw", """
try {
  navigator.serviceWorker.register('sw.js', {scope: '/'})
    .then(() => say('registered'), e => say('refused: ' + e));
} catch (e) { say('refused: ' + e); }"""),
}

SERVICE_WORKER = f"""self.addEventListener('install', e => self.skipWaiting());
self.addEventListener('activate', e => e.waitUntil(self.clients.claim()));
self.addEventListener('fetch', e => e.respondWith(new Response(
  '<title>{OWNED}</title><p>{OWNED}</p>', {{headers: {{'Content-Type': 'text/html'}}}})));
"""


def _hostile_payload(host: str, path: str) -> bytes:
    name = path.split("/")[2] if path.count("/") >= 2 else ""
    if name == "sw.js":
        return SERVICE_WORKER.encode()
    if name not in HOSTILE_PAGES:
        raise BadPath(f"{path}: /hostile/ has {sorted(HOSTILE_PAGES)} and sw.js")
    title, script = HOSTILE_PAGES[name]
    return _TITLE_SCRIPT.format(title=title, script=script).encode()


async def hostile(hit: Hit) -> web.StreamResponse:
    body = _hostile_payload(hit.host, hit.path)
    if hit.path.endswith("/sw.js"):
        headers = {"Content-Type": "text/javascript", "Service-Worker-Allowed": "/",
                   "Set-Cookie": "viewer=owned; Path=/"}
    else:
        headers = {"Content-Type": "text/html; charset=utf-8"}
    return web.Response(body=body, headers=headers)


HOSTILE_BEHAVIOURS: tuple[Behaviour, ...] = (
    Behaviour("bomb", bomb, _bomb_payload,
              "/bomb/<br|gzip|x-gzip|gzip-gzip|deflate|deflate-raw|zstd>/<MiB>/story-<id>: "
              "a compression bomb"),
    Behaviour("hostile", hostile, _hostile_payload,
              "/hostile/<leak|fetch|sw|sw.js>: pages whose scripts attack their replay"),
)
