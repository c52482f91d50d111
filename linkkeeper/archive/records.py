"""Reading WARC records back: the one reader of what :mod:`linkkeeper.archive.warc` writes.

Every record is one gzip member, so a record is read by (file, offset, length), as a
`snapshots` row or a CDXJ line locates it::

    record = read_record(folder, capture.warc_file, capture.offset, capture.length)
    record.record_type, record.http_status, record.http_headers, record.payload

* :func:`warc_path` is the one place that knows a file may still be ``….warc.gz.open``.
* :func:`read_record` reads and parses a whole member (warcio); :func:`parse_record` parses
  member bytes from elsewhere (a WACZ package).
* :func:`read_head` is the head-only mode: it inflates just far enough to parse the WARC head
  (the export checks each record before copying it byte for byte), or to the member's end to
  learn its compressed length (``whole``).
* :func:`complete_record_end` is the strict mode crash repair needs: the end of a member only
  if it holds exactly one complete record whose block digest matches.

``warcio check`` and ``content_stream()`` of warcio 1.8 fail on ``br`` records when Google's
``Brotli`` package is installed (warcio expects brotlipy's API, warcio#73); the records are
fine, and pywb (which ships brotlipy) replays them. This reader reads the raw stream only.
"""

from __future__ import annotations

import base64
import hashlib
import io
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from warcio.archiveiterator import ArchiveIterator

OPEN_SUFFIX = ".open"
_READ_CHUNK = 1 << 16
_FIRST_CHUNK = 1 << 12
_HEAD_LIMIT = 1 << 20  # a WARC head larger than this is not one we wrote
_MAX_SMALL_MEMBER = 64 << 20  # warcinfo/request members are small; give up beyond this


class CaptureUnavailable(LookupError):
    """A capture whose record cannot be read (file missing, bytes damaged, another record
    there, a revisit's original lost)."""


def header_value(headers: Sequence[tuple[str, str]], name: str) -> str | None:
    """The first value of a header in (name, value) pairs, by name in any case."""
    lowered = name.lower()
    return next((v for k, v in headers if k.lower() == lowered), None)


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """One record read back: its WARC head, HTTP head and payload (content coding kept)."""

    record_type: str
    warc_headers: list[tuple[str, str]]
    protocol: str | None  # 'HTTP/1.1' (a request record: its method)
    http_status: int | None  # None for a request record
    reason: str
    http_headers: list[tuple[str, str]]
    payload: bytes  # stored entity body, content coding kept; empty for revisits
    member: bytes  # the record's gzip member exactly as stored (for byte-exact export)

    def warc_header(self, name: str) -> str | None:
        return header_value(self.warc_headers, name)

    def http_header(self, name: str) -> str | None:
        return header_value(self.http_headers, name)


def warc_path(folder: Path, warc_file: str) -> Path:
    """The file of a `snapshots.warc_file`, also while it is still being written (``.open``)."""
    path = Path(folder) / warc_file
    if not path.exists():
        still_open = path.with_name(path.name + OPEN_SUFFIX)
        if still_open.exists():
            return still_open
    return path


def read_record(
    folder: Path, warc_file: str, offset: int, length: int, *, record_id: str | None = None
) -> StoredRecord:
    """Read the record a capture (or a CDXJ line) points at; with ``record_id``, check it is
    that record. Works on closed files and on the file still being written."""
    where = f"{warc_file}@{offset}"
    try:
        with open(warc_path(folder, warc_file), "rb") as handle:
            handle.seek(offset)
            member = handle.read(length)
    except OSError as err:
        raise CaptureUnavailable(f"{warc_file}: {err.strerror or err}") from err
    if len(member) != length:
        raise CaptureUnavailable(f"{where}: file ends before {length} bytes")
    try:
        record = parse_record(member)
    except ValueError as err:
        raise CaptureUnavailable(f"{where}: {err}") from err
    found = record.warc_header("WARC-Record-ID")
    if record_id and found != record_id:
        raise CaptureUnavailable(f"{where}: holds {found}, not {record_id}")
    return record


def parse_record(member: bytes) -> StoredRecord:
    """The record in one gzip member's bytes (ValueError when there is none)."""
    try:
        record = next(iter(ArchiveIterator(io.BytesIO(member))))
        payload = record.raw_stream.read()
    except Exception as err:  # warcio raises assorted types on damaged bytes
        raise ValueError(f"not a readable WARC record ({err})") from err
    http = record.http_headers
    status = reason = None
    if http is not None and record.rec_type in ("response", "revisit"):
        code, _, reason = http.statusline.partition(" ")
        status = int(code) if code.isdigit() else None
    return StoredRecord(
        record_type=record.rec_type,
        warc_headers=list(record.rec_headers.headers),
        protocol=http.protocol if http is not None else None,
        http_status=status,
        reason=(reason or "").strip(),
        http_headers=list(http.headers) if http is not None else [],
        payload=payload,
        member=member,
    )


# ---------------------------------------------------------------------------------------------
# Head only


@dataclass(frozen=True, slots=True)
class RecordHead:
    """The WARC head of the record in one gzip member, and the member's length when read whole."""

    fields: dict[str, str]  # lower-cased names
    length: int | None

    def get(self, name: str) -> str | None:
        return self.fields.get(name.lower())


def _parse_head(head: bytes) -> dict[str, str] | None:
    lines = head.decode("utf-8", "replace").split("\r\n")
    if not lines or not lines[0].startswith("WARC/"):
        return None
    fields: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            fields.setdefault(name.strip().lower(), value.strip())
    return fields


def read_head(handle: BinaryIO, offset: int, *, whole: bool) -> RecordHead | None:
    """Inflate the gzip member at ``offset`` far enough to parse its WARC head.

    With ``whole``, inflate to the member's end to learn its compressed length (used for
    the small warcinfo and request records). ``None`` when there is no WARC record there.
    """
    handle.seek(offset)
    inflater = zlib.decompressobj(zlib.MAX_WBITS + 16)
    inflated = b""
    fields: dict[str, str] | None = None
    consumed = 0
    want = _FIRST_CHUNK  # a head (and a request member) fits: read no more than needed
    try:
        while True:
            chunk = handle.read(want)
            want = _READ_CHUNK
            if not chunk:
                return None  # the file ends inside the member
            consumed += len(chunk)
            data = inflater.decompress(chunk)
            if fields is None:
                inflated += data
                end = inflated.find(b"\r\n\r\n")
                if end >= 0:
                    fields = _parse_head(inflated[:end])
                    if fields is None:
                        return None
                    if not whole:
                        return RecordHead(fields, None)
                elif len(inflated) > _HEAD_LIMIT:
                    return None
            if inflater.eof:
                break
            if consumed > _MAX_SMALL_MEMBER:
                return None
    except zlib.error:
        return None
    if fields is None:
        return None
    return RecordHead(fields, consumed - len(inflater.unused_data))


# ---------------------------------------------------------------------------------------------
# Complete records (crash repair)


def complete_record_end(handle: BinaryIO, start: int) -> int | None:
    """End offset of the gzip member at ``start`` if it holds exactly one complete record."""
    handle.seek(start)
    inflater = zlib.decompressobj(zlib.MAX_WBITS + 16)
    checker = _RecordChecker()
    consumed = 0
    try:
        while not inflater.eof:
            chunk = handle.read(_READ_CHUNK)
            if not chunk:
                return None
            consumed += len(chunk)
            checker.feed(inflater.decompress(chunk))
        checker.feed(inflater.flush())
    except (zlib.error, ValueError):
        return None
    return start + consumed - len(inflater.unused_data) if checker.complete() else None


class _RecordChecker:
    """Streams one inflated record: header, then Content-Length block bytes, then CRLFCRLF."""

    def __init__(self) -> None:
        self._head = b""
        self._remaining: int | None = None  # block bytes still expected
        self._tail = b""
        self._digest: hashlib._Hash | None = None
        self._expected: str | None = None

    def feed(self, data: bytes) -> None:
        if self._remaining is None:
            self._head += data
            end = self._head.find(b"\r\n\r\n")
            if end < 0:
                if len(self._head) > _HEAD_LIMIT:
                    raise ValueError("WARC header too long")
                return
            data = self._head[end + 4 :]
            self._start(self._head[:end].decode("utf-8", "replace"))
        block = data[: self._remaining]
        if block and self._digest is not None:
            self._digest.update(block)
        assert self._remaining is not None
        self._remaining -= len(block)
        self._tail += data[len(block) :]
        if len(self._tail) > 4:
            raise ValueError("more than one record in a gzip member")

    def _start(self, head: str) -> None:
        lines = head.split("\r\n")
        if not lines[0].startswith("WARC/1."):
            raise ValueError("not a WARC record")
        fields = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        if "content-length" not in fields:
            raise ValueError("record without Content-Length")
        self._remaining = int(fields["content-length"])
        expected = fields.get("warc-block-digest", "")
        if expected.lower().startswith("sha1:"):
            self._expected = expected[5:].upper()
            self._digest = hashlib.sha1()

    def complete(self) -> bool:
        if self._remaining != 0 or self._tail != b"\r\n\r\n":
            return False
        if self._digest is None:
            return True
        return base64.b32encode(self._digest.digest()).decode("ascii") == self._expected
