"""Gzip members: how each WARC record is compressed (one member per record, level per record).

warcio writes uncompressed into :class:`GzipMemberSink`, which makes each record one gzip
member with zlib, the level chosen per record: 6 (not warcio's 9: measured on 400 HTML
pages, 9 is 0.4 % smaller and 45 % slower, 55 vs 80 MB/s), or 0 when the body does not
shrink (gzip/br-encoded, images, media, or judged so by compressing a 4 kB sample,
:func:`incompressible`): deflate at any level, even 1, runs at ~55 MB/s on such data and
gains nothing, zlib's stored blocks are a copy.

A record whose body is spooled (check/bodies.py: too big for the memory budget) is
compressed as warcio writes it and goes to the file piece by piece
(:meth:`GzipMemberSink.stream_next`): the same member, never whole in memory.
"""

from __future__ import annotations

import zlib
from typing import Any, BinaryIO

from linkkeeper.archive.records import header_value
from linkkeeper.exchange import Body, body_at

DEFAULT_COMPRESS_LEVEL = 6


_COMPRESSED_TYPES = (
    "image/",
    "video/",
    "audio/",
    "font/woff",
    "application/zip",
    "application/pdf",
    "application/gzip",
    "application/x-gzip",
    "application/zstd",
    "application/x-7z",
    "application/x-rar",
    "application/x-xz",
    "application/x-bzip2",
)
_SAMPLE = 4096  # bytes of a body of unknown kind compressed to judge the rest
_SAMPLE_RATIO = 0.9  # sample still above this fraction at level 1: do not compress the body
_SAMPLE_MIN = 16384  # shorter bodies are just compressed: the sample would cost as much


def incompressible(headers: list[tuple[str, str]], body: Body) -> bool:
    """Whether deflate would waste its time on this body (it would not shrink).

    Content-encoded bodies (gzip, br, ...), images (not SVG), media and archives are known
    to be; any other body of some size is judged by compressing a 4 kB sample at level 1
    (random-looking data does not shrink, HTML shrinks to a third). A wrong guess costs only
    size or time, never correctness.
    """
    encoding = (header_value(headers, "Content-Encoding") or "").strip().lower()
    if encoding and encoding != "identity":
        return True
    ctype = (header_value(headers, "Content-Type") or "").strip().lower()
    if ctype.startswith(_COMPRESSED_TYPES) and not ctype.startswith("image/svg"):
        return True
    if len(body) < _SAMPLE_MIN:
        return False
    middle = len(body) // 2
    sample = body_at(body, middle, _SAMPLE)
    return len(zlib.compress(sample, 1)) > _SAMPLE_RATIO * len(sample)


STORED_LEVEL = 0  # zlib's stored blocks: a copy, for records whose body does not shrink
# Records up to 4 kB (request records, revisits, small responses) are deflated with a 4 kB
# window and a small hash: the same output (the window still spans the whole input), at a
# third of the cost, most of which is zlib setting up its 32 kB window and 64 kB hash.
_SMALL, _SMALL_WBITS, _SMALL_MEMLEVEL = 4096, 12, 4


def gzip_member(record: bytes, level: int) -> bytes:
    """One serialised record as one complete gzip member, by zlib (``wbits`` 31: gzip)."""
    if len(record) <= _SMALL:
        compressor = zlib.compressobj(level, zlib.DEFLATED, _SMALL_WBITS + 16, _SMALL_MEMLEVEL)
    else:
        compressor = zlib.compressobj(level, zlib.DEFLATED, zlib.MAX_WBITS + 16)
    return compressor.compress(record) + compressor.flush()


class GzipMemberSink:
    """The file-like object warcio writes to (``gzip=False``): each record it writes, ended
    by its ``flush``, becomes one gzip member, compressed at the level set for that record
    (:attr:`level`, back to the default after each record).

    The record is gathered in memory and compressed in one zlib call; finished members wait
    in memory until :meth:`write_members` puts them in the file in one write (each call that
    releases the GIL costs the writer thread a hand-over with the event loop's thread).
    A record announced by :meth:`stream_next` is instead compressed piece by piece and
    written as it comes (a spooled body). Every byte reaches the file by ``_emit``.
    """

    def __init__(self, out: BinaryIO, level: int) -> None:
        self._out = out
        self.default_level = level
        self.level = level
        self._parts: list[bytes] = []
        self._members: list[bytes] = []  # finished, not yet in the file
        self._lengths: list[int] = []  # of every member finished since write_members
        self._stream: Any = None  # the zlib compressor of a streamed record
        self._streamed = 0

    def stream_next(self) -> None:
        """Compress the next record as it is written and put it in the file at once."""
        self._write_pending()
        self._stream = zlib.compressobj(self.level, zlib.DEFLATED, zlib.MAX_WBITS + 16)
        self._streamed = 0

    def write(self, data: bytes) -> None:
        if self._stream is None:
            self._parts.append(data)
            return
        out = self._stream.compress(data)
        if out:
            self._emit(out)
            self._streamed += len(out)

    def flush(self) -> None:
        if self._stream is not None:
            tail = self._stream.flush()
            self._emit(tail)
            self._lengths.append(self._streamed + len(tail))
            self._stream = None
        else:
            record = b"".join(self._parts)
            self._parts = []
            member = gzip_member(record, self.level)
            self._members.append(member)
            self._lengths.append(len(member))
        self.level = self.default_level

    def _emit(self, data: bytes) -> None:
        self._out.write(data)

    def _write_pending(self) -> None:
        """Write the finished members (in one write when they are small)."""
        members, self._members = self._members, []
        if sum(map(len, members)) <= 1 << 20:
            if members:
                self._emit(b"".join(members))
        else:
            for member in members:
                self._emit(member)

    def write_members(self) -> list[int]:
        """Put the finished members in the file; the lengths of all since the last call."""
        self._write_pending()
        lengths, self._lengths = self._lengths, []
        return lengths

    def reset(self) -> None:
        """Drop a half-built record and unwritten members (after a failed write)."""
        self._parts = []
        self._members = []
        self._lengths = []
        self._stream = None
        self.level = self.default_level
