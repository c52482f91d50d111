"""Deterministic bodies for the fault-injection web: pages, images, encoded and large payloads.

Everything here is a pure function of (host, path), so a test that archives a
page can compare the bytes it stored with what the server sent, run after run.
"""

from __future__ import annotations

import gzip
import hashlib
import random
import struct
import zlib
from collections.abc import Iterator
from html import escape

import brotli

IMAGE_TYPES = {
    "png": "image/png",
    "gif": "image/gif",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
}

_VOCABULARY = (
    "council vote budget city river bridge school mayor report storm harbour museum "
    "election minister court ruling festival market rail station hospital plan "
    "residents protest archive library season record flood energy price strike "
    "university study farmers drought coast police inquiry housing transport"
)
_WORDS = tuple(_VOCABULARY.split())

LARGE_BLOCK = 64 * 1024  # streaming unit for /large bodies


def seed_for(host: str, path: str) -> int:
    """A stable 64-bit seed: the same (host, path) always yields the same bytes."""
    digest = hashlib.blake2b(f"{host}\0{path}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def title_for(path: str) -> str:
    """A headline derived from the path's last meaningful segment ("city-votes.html" -> "City Votes")."""
    segments = [s for s in path.split("?", 1)[0].split("/") if s]
    if not segments:
        return "Front page"
    stem = segments[-1].rsplit(".", 1)[0] if "." in segments[-1] else segments[-1]
    words = stem.replace("_", "-").split("-")
    title = " ".join(w.capitalize() for w in words if w)
    return title or "Untitled"


def site_name(host: str) -> str:
    labels = [label for label in host.split(".") if label and label != "www"]
    return " ".join(label.capitalize() for label in labels) or "Local"


def article_html(host: str, path: str, *, extra: str = "") -> bytes:
    """A small, realistic news article whose <title> comes from the path."""
    rng = random.Random(seed_for(host, path))
    title = title_for(path)
    name = site_name(host)
    # One draw of random bytes, read as words and lengths: cheap enough for 20,000 pages a run.
    noise = rng.randbytes(200)
    words = [_WORDS[b % len(_WORDS)] for b in noise[:160]]
    paragraphs = []
    position = 0
    for p in range(3 + noise[160] % 3):
        sentences = []
        for s in range(2 + noise[161 + p] % 3):
            length = 6 + noise[170 + 4 * p + s] % 9
            sentences.append(" ".join(words[position : position + length]).capitalize() + ".")
            position = (position + length) % 140
        paragraphs.append(f"    <p>{' '.join(sentences)}</p>")
    related = "\n".join(
        f'      <li><a href="/ok/{rng.choice(_WORDS)}-{rng.choice(_WORDS)}-{rng.randint(1, 9999)}">'
        f"{rng.choice(_WORDS).capitalize()} {rng.choice(_WORDS)}</a></li>"
        for _ in range(3)
    )
    day = rng.randint(1, 28)
    month = rng.randint(1, 12)
    year = rng.randint(2005, 2024)
    body = "\n".join(paragraphs)
    html = f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{escape(title)} | {escape(name)}</title>
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <link rel="canonical" href="{escape(path)}">
</head>
<body>
  <header><a href="/">{escape(name)}</a></header>
  <article>
    <h1>{escape(title)}</h1>
    <p class="byline">By Staff Reporter, <time datetime="{year:04d}-{month:02d}-{day:02d}">{day} {month}/{year}</time></p>
    <img src="/img/{seed_for(host, path) % 100000}.jpg" alt="{escape(title)}">
{body}{extra}
    <h2>Related stories</h2>
    <ul class="related">
{related}
    </ul>
  </article>
  <footer>&copy; {escape(name)}</footer>
</body>
</html>
"""
    return html.encode()


def home_html(host: str) -> bytes:
    """The front page: a list of article links, like a real news site's home."""
    rng = random.Random(seed_for(host, "/"))
    name = site_name(host)
    items = "\n".join(
        f'    <li><a href="/ok/{year}/{rng.choice(_WORDS)}-{rng.choice(_WORDS)}">'
        f"{rng.choice(_WORDS).capitalize()} {rng.choice(_WORDS)} {rng.choice(_WORDS)}</a></li>"
        for year in sorted(rng.randint(2005, 2024) for _ in range(8))
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{escape(name)} — latest news</title></head>
<body>
  <h1>{escape(name)}</h1>
  <ul class="stories">
{items}
  </ul>
</body>
</html>
""".encode()


def message_html(status: int, reason: str, detail: str = "") -> bytes:
    """The kind of terse page servers send with an error or a redirect."""
    paragraph = f"\n<p>{escape(detail)}</p>" if detail else ""
    return (
        f"<!DOCTYPE html>\n<html><head><title>{status} {escape(reason)}</title></head>\n"
        f"<body><h1>{status} {escape(reason)}</h1>{paragraph}\n</body></html>\n"
    ).encode()


# -- images -------------------------------------------------------------------------------


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_image(seed: int, size: int = 16) -> bytes:
    """A valid RGB PNG, size x size, a two-colour diagonal pattern chosen by the seed."""
    rng = random.Random(seed)
    a = bytes(rng.randrange(256) for _ in range(3))
    b = bytes(rng.randrange(256) for _ in range(3))
    rows = b"".join(
        b"\x00" + b"".join(a if (x + y) % 4 < 2 else b for x in range(size)) for y in range(size)
    )
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(rows, 9))
        + _png_chunk(b"IEND", b"")
    )


def gif_image(seed: int) -> bytes:
    """A valid 1x1 GIF89a whose single pixel's colour is chosen by the seed."""
    rng = random.Random(seed)
    colour = bytes(rng.randrange(256) for _ in range(3))
    return (
        b"GIF89a\x01\x00\x01\x00\x80\x00\x00"  # 1x1, global colour table of 2 entries
        + colour
        + b"\xff\xff\xff"
        + b",\x00\x00\x00\x00\x01\x00\x01\x00\x00"  # image descriptor
        + b"\x02\x02D\x01\x00"  # LZW min code size 2: clear, index 0, end
        + b";"
    )


def jpeg_image(seed: int) -> bytes:
    """A valid baseline JPEG, 8x8 greyscale, whose uniform grey level is chosen by the seed.

    One block, DC only: the DC Huffman table holds one category (4 bits of
    magnitude), the AC table only end-of-block, so the entropy-coded data fits
    in a couple of bytes yet any decoder reads it.
    """
    level = random.Random(seed).randrange(1, 16)  # DC difference in 1..15 (category 4)
    quant = b"\x00" + bytes([8] * 64)  # 8-bit table 0, all steps 8: DC 15 -> +120 grey levels
    dqt = b"\xff\xdb" + struct.pack(">H", 2 + len(quant)) + quant
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, 8, 8, 1) + b"\x01\x11\x00"
    # DC table 0: one code of length 1 for category 4. AC table 0: one code of length 1 for EOB.
    dc_table = b"\x00" + b"\x01" + b"\x00" * 15 + b"\x04"
    ac_table = b"\x10" + b"\x01" + b"\x00" * 15 + b"\x00"
    dht = b"\xff\xc4" + struct.pack(">H", 2 + len(dc_table) + len(ac_table)) + dc_table + ac_table
    sos = b"\xff\xda" + struct.pack(">HB", 8, 1) + b"\x01\x00" + b"\x00\x3f\x00"
    # bits: DC code '0', 4 magnitude bits of `level`, AC EOB code '0', then 1-padding
    bits = "0" + format(level, "04b") + "0"
    bits += "1" * (-len(bits) % 8)
    scan = bytes(int(bits[i : i + 8], 2) for i in range(0, len(bits), 8))
    scan = scan.replace(b"\xff", b"\xff\x00")
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    return b"\xff\xd8" + app0 + dqt + sof + dht + sos + scan + b"\xff\xd9"


# A 1x1 lossless WebP (VP8L), the well-known probe image browsers feature-test with.
_WEBP = bytes.fromhex("524946461a000000574542505650384c0d0000002f00000010071011118888fe0700")


def webp_image(seed: int) -> bytes:
    """A valid 1x1 lossless WebP (the seed does not vary it: one pixel is plenty)."""
    del seed
    return _WEBP


def image_bytes(extension: str, host: str, path: str) -> bytes:
    seed = seed_for(host, path)
    ext = extension.lower()
    if ext == "png":
        return png_image(seed)
    if ext == "gif":
        return gif_image(seed)
    if ext in ("jpg", "jpeg"):
        return jpeg_image(seed)
    if ext == "webp":
        return webp_image(seed)
    raise ValueError(f"no image type for extension {extension!r}")


# -- encodings and large bodies -----------------------------------------------------------


def gzip_bytes(data: bytes) -> bytes:
    """gzip with mtime 0, so the same input always gives the same bytes on the wire."""
    return gzip.compress(data, compresslevel=6, mtime=0)


def brotli_bytes(data: bytes) -> bytes:
    return brotli.compress(data, quality=5)


def large_block(host: str, path: str) -> bytes:
    return random.Random(seed_for(host, path)).randbytes(LARGE_BLOCK)


def iter_large(host: str, path: str, size: int, piece: int = LARGE_BLOCK) -> Iterator[bytes]:
    """The /large body in pieces, so a multi-gigabyte body never sits in memory."""
    block = large_block(host, path)
    sent = 0
    while sent < size:
        n = min(piece, size - sent, LARGE_BLOCK - sent % LARGE_BLOCK)
        offset = sent % LARGE_BLOCK
        yield block[offset : offset + n]
        sent += n
