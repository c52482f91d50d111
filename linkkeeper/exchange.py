"""One HTTP exchange as it happened on the wire: what the checker hands to the archiver.

The checker fills it for every hop it fetched with GET when a capture is wanted;
the WARC writer turns it into request/response (or revisit) records. The body is
exactly what the server sent after removing chunked transfer coding: never
decompressed, so replay serves identical bytes.

A captured body is ``bytes`` or a :class:`CapturedBody`: the checker's capture reader
(check/bodies.py) keeps a body in memory only while the run's memory budget allows and
spools the rest to an unnamed temporary file, so a run holds a bounded number of bytes
whatever the servers send. Both kinds read the same way through the helpers below
(``len``, :func:`body_head`, :func:`body_chunks`, :func:`body_digest`).
"""

from __future__ import annotations

import base64
import hashlib
import os
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import BinaryIO

_CHUNK = 1 << 16


def _free(file: BinaryIO | None, release: Callable[[], None] | None) -> None:
    if file is not None:
        file.close()
    if release is not None:
        release()


class CapturedBody:
    """A captured body: bytes held against the run's memory budget, or a spool file.

    Reads are positioned (``os.pread``), so the WARC writer's thread and the event loop
    never share a file position. :meth:`release` (idempotent; also run when the object is
    collected) gives the reserved bytes back to the budget and closes the spool file.
    """

    __slots__ = ("__weakref__", "_data", "_file", "_finalizer", "_size", "payload_digest")

    def __init__(
        self,
        *,
        data: bytes | None = None,
        file: BinaryIO | None = None,
        size: int,
        digest: str,
        release: Callable[[], None] | None = None,
    ) -> None:
        self._data = data
        self._file = file
        self._size = size
        self.payload_digest = digest  # sha1_b32 of the bytes: computed once, while reading
        self._finalizer = weakref.finalize(self, _free, file, release)

    @property
    def spooled(self) -> bool:
        return self._file is not None

    def __len__(self) -> int:
        return self._size

    def read(self, start: int, count: int) -> bytes:
        """Up to `count` bytes from offset `start`."""
        if not self._finalizer.alive:
            raise ValueError("captured body already released")
        count = max(0, min(count, self._size - start))
        if self._data is not None:
            return self._data[start : start + count]
        assert self._file is not None
        parts = []
        while count > 0:
            part = os.pread(self._file.fileno(), min(count, 1 << 20), start)
            if not part:
                raise OSError(f"spool file shorter than {self._size} bytes")
            parts.append(part)
            start += len(part)
            count -= len(part)
        return b"".join(parts)

    def chunks(self, size: int = _CHUNK) -> Iterator[bytes]:
        for start in range(0, self._size, size):
            yield self.read(start, size)

    def release(self) -> None:
        self._data = None
        self._finalizer()

    def __bytes__(self) -> bytes:
        return self.read(0, self._size)

    def __eq__(self, other: object) -> bool:  # tests compare bodies with bytes
        if isinstance(other, CapturedBody | bytes | bytearray):
            return len(self) == len(other) and bytes(self) == bytes(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        where = "spooled" if self.spooled else "in memory"
        return f"<CapturedBody {self._size} bytes {where}>"


Body = bytes | CapturedBody


def body_head(body: Body, count: int) -> bytes:
    """The first `count` bytes (what a sample or robots.txt needs, never the whole spool)."""
    return body[:count] if isinstance(body, bytes) else body.read(0, count)


def body_at(body: Body, start: int, count: int) -> bytes:
    return body[start : start + count] if isinstance(body, bytes) else body.read(start, count)


def body_chunks(body: Body, size: int = _CHUNK) -> Iterator[bytes]:
    """The body in pieces (a spooled one is never read whole into memory)."""
    if isinstance(body, bytes):
        yield body
    else:
        yield from body.chunks(size)


def body_digest(body: Body) -> str:
    """The WARC-Payload-Digest of the body (computed while reading for a captured one)."""
    return sha1_b32(body) if isinstance(body, bytes) else body.payload_digest


def release_body(body: Body) -> None:
    """Give a captured body's memory (or spool file) back; bytes need nothing."""
    if isinstance(body, CapturedBody):
        body.release()


@dataclass(slots=True)
class Exchange:
    url: str  # the URL requested (this hop)
    method: str  # "GET" (HEAD exchanges are never archived)
    request_headers: list[tuple[str, str]]  # as sent, in order (Host first)
    status: int
    reason: str
    response_headers: list[tuple[str, str]]  # as received, in order, repeated names kept
    body: Body  # de-chunked, still content-encoded (gzip/br kept)
    started: datetime  # UTC, when the request was sent
    http_version: str = "1.1"
    ip: str | None = None  # peer address the bytes came from
    truncated: bool = False  # body cut at the capture size cap
    extra: dict[str, str] = field(default_factory=dict)  # e.g. {"hop": "2"}

    def release(self) -> None:
        """Done with the body (written or dropped): its memory or spool file goes back."""
        release_body(self.body)


def sha1_b32(*parts: bytes) -> str:
    """A WARC-style digest (``sha1:`` + uppercase base32) of the parts, one after the other.

    The checker's `checks.digest` and the WARC writer's digests share this spelling.
    """
    digest = hashlib.sha1()
    for part in parts:
        digest.update(part)
    return sha1_text(digest)


def sha1_text(digest: hashlib._Hash) -> str:
    """A sha1 computed piece by piece, spelled as `sha1_b32` spells it."""
    return "sha1:" + base64.b32encode(digest.digest()).decode("ascii")
