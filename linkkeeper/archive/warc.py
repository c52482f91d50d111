"""The WARC store: turns checker exchanges into WARC/1.1 records, safely, replayably.

Usage (the archiving stage; the checker hands over one :class:`~linkkeeper.exchange.Exchange`
per fetched hop)::

    with WarcStore(Path("warcs"), info={"operator": "Jane <jane@example.org>"}) as store:
        capture = store.write(exchange, prior=last_capture_of(exchange.url))
        snapshots.insert_captures(conn, [capture], run_id)   # the `snapshots` row

``WarcStore(folder)`` first repairs what a crashed run left (:meth:`WarcStore.repair`; the
messages are in ``store.repair_messages``), then opens a file lazily on the first write.
``write`` is blocking file I/O and thread-safe: call it via ``asyncio.to_thread`` or from one
writer task. Each call appends a response (or revisit) record and its request record, flushes,
and returns a :class:`~linkkeeper.archive.snapshots.Capture` (a `snapshots` row) whose
``warc_file``/``offset``/``length`` locate the response record's gzip member;
:func:`linkkeeper.archive.records.read_record` reads it back.

What is written, and why:

* WARC/1.1 (microsecond ``WARC-Date``; the 1.1 revisit profile URI), one gzip member per record
  (random access by offset), a ``warcinfo`` record first in every file.
* ``response`` + ``request`` records with the same ``WARC-Date`` (the capture start,
  ``Exchange.started``), the request pointing at the response by ``WARC-Concurrent-To``;
  ``WARC-IP-Address`` when known; sha1 base32 ``WARC-Block-Digest`` and ``WARC-Payload-Digest``.
* The payload is the body as the server sent it minus chunked framing: Content-Encoding is
  kept (gzip/br bytes stay compressed), so replay serves the same bytes. Headers are kept as
  received except that ``Transfer-Encoding`` becomes ``X-Orig-Transfer-Encoding`` (the body is
  stored de-chunked) and ``Content-Length`` is set to the stored length when it was missing or
  wrong (the original kept as ``X-Orig-Content-Length``): the Browsertrix convention, so the
  stored headers never lie and the payload digest is the spec's entity-body digest.
* Header strings are encoded back to bytes as UTF-8 with ``surrogateescape``: exactly the bytes
  received when they came from aiohttp's ``resp.headers`` (which decodes that way).
* ``prior`` given and its payload digest equal to this body's: a ``revisit`` record instead of
  the response (identical-payload-digest profile, ``WARC-Refers-To``, ``-Target-URI``, ``-Date``,
  HTTP headers only, ``WARC-Truncated: length``). A truncated exchange is never a revisit.
* ``Exchange.truncated``: the response record carries ``WARC-Truncated: length``.
* Every record is built and serialised by warcio (``create_warc_record``,
  ``create_revisit_record``, ``create_warcinfo_record``, ``write_record``; WARC/1.1). The
  HTTP heads are serialised by :class:`_WireHeaders` (byte-faithful). Both digests of a
  record are computed here, once, and given to warcio in its fields: warcio's
  ``ensure_digest`` computes only the digests a record lacks, so it does not read the body
  again for them.
* warcio writes uncompressed into a :class:`~linkkeeper.archive.compress.GzipMemberSink`,
  which makes each record one gzip member at a level chosen per record (see
  :mod:`linkkeeper.archive.compress`). A capture's two members are written to the file
  in one call.

Files: ``<folder>/YYYY/MM/<prefix>-YYYYMMDDhhmmss-NNNNN.warc.gz``, written as ``….warc.gz.open``
(exclusively created, flock-ed while written) and renamed when closed, which happens in
:meth:`WarcStore.close` or once a file reaches ``max_file_size`` (rotation happens between
captures, so a request/response pair never spans two files). ``WARC-Filename`` in warcinfo is
the final name. Closing also writes the file's digest sidecar (sha256 and CRC-32 of every
byte written, :mod:`linkkeeper.archive.digests`: a WACZ export copies the file without reading
it), the file's CDXJ index and refreshes the folder index
(:mod:`linkkeeper.archive.cdx`, cdxj-indexer reading the closed file back), so pywb replays the
folder with :func:`linkkeeper.archive.cdx.pywb_collection_config`. A closed file is never opened for
writing again.

A failed write (disk full, ...) cuts the file back to its last whole capture and raises
the OSError with the file's path in it (``named``); a body that is a spooled
:class:`~linkkeeper.exchange.CapturedBody` is streamed into its record, never read whole.

Inputs the writer insists on (else :class:`InvalidExchange`, nothing written): an ASCII http(s)
URL (``str(yarl.URL)`` is), a timezone-aware ``started``, header names that are HTTP tokens and
values without CR/LF/NUL. Keep ``PriorCapture.date`` to the microsecond: it becomes
``WARC-Refers-To-Date`` and must equal the original record's ``WARC-Date``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import os
import re
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self
from urllib.parse import urlsplit

from warcio.recordloader import ArcWarcRecord
from warcio.statusandheaders import StatusAndHeaders
from warcio.timeutils import datetime_to_iso_date
from warcio.warcwriter import WARCWriter

from linkkeeper import __version__
from linkkeeper.archive.cdx import WARC_SUFFIX, index_warc, rebuild_folder_index
from linkkeeper.archive.compress import (
    DEFAULT_COMPRESS_LEVEL,
    STORED_LEVEL,
    GzipMemberSink,
    incompressible,
)
from linkkeeper.archive.digests import DigestingWriter, RunningDigest, record_closed_file
from linkkeeper.archive.records import OPEN_SUFFIX, header_value
from linkkeeper.archive.repair import fsync_dir, repair_folder
from linkkeeper.archive.snapshots import Capture, PriorCapture
from linkkeeper.clock import utcnow
from linkkeeper.exchange import (
    Body,
    CapturedBody,
    Exchange,
    body_chunks,
    body_digest,
    sha1_b32,
    sha1_text,
)

SOFTWARE = f"linkkeeper/{__version__}"
WARC_VERSION = "WARC/1.1"
REVISIT_PROFILE = "http://netpreserve.org/warc/1.1/revisit/identical-payload-digest"
PAYLOAD_CONVENTION = (
    "payload = entity body with transfer coding removed and content coding kept; "
    "Transfer-Encoding renamed X-Orig-Transfer-Encoding; Content-Length set to the stored "
    "length (original kept as X-Orig-Content-Length); digests sha1 base32"
)

_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_BAD_VALUE_CHARS = re.compile(r"[\r\n\x00]")
_SPACE_OR_CONTROL = re.compile(r"[\x00-\x20]")  # in ASCII: white space or a control
_NO_BODY_STATUSES = frozenset({204, 304}) | frozenset(range(100, 200))


class InvalidExchange(ValueError):
    """An exchange that cannot be written as a well-formed record (nothing is written)."""


def payload_digest(body: bytes) -> str:
    """The WARC-Payload-Digest of a stored body: ``sha1:`` + uppercase base32 (no padding)."""
    return sha1_b32(body)


def _block_digest(http_head: bytes, body: Body) -> str:
    """sha1 of the HTTP head and the body, a spooled body read piece by piece."""
    digest = hashlib.sha1(http_head)
    for piece in body_chunks(body, 1 << 20):
        digest.update(piece)
    return sha1_text(digest)


def warc_date(moment: datetime) -> str:
    """WARC/1.1 date: UTC, microseconds when non-zero (naive datetimes are taken as UTC)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return datetime_to_iso_date(moment.replace(tzinfo=None), use_micros=True)


# ---------------------------------------------------------------------------------------------
# Building records


def named(error: OSError, path: Path | str) -> OSError:
    """The error with the file it happened to (a write error alone names no path)."""
    if error.filename is not None:
        return error
    return type(error)(error.errno, error.strerror or str(error), str(path))


class _BodyReader(io.RawIOBase):
    """A body as the stream warcio reads the payload from (a spooled one piece by piece)."""

    def __init__(self, body: Body) -> None:
        self._body = body
        self._pos = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        left = len(self._body) - self._pos
        count = left if size is None or size < 0 else min(size, left)
        data = (
            self._body[self._pos : self._pos + count]
            if isinstance(self._body, bytes)
            else self._body.read(self._pos, count)
        )
        self._pos += len(data)
        return data



class _WireHeaders(StatusAndHeaders):
    """HTTP head serialised byte-faithfully (warcio's own %-encodes non-ASCII values).

    The bytes are computed once: the writer hashes them for ``WARC-Block-Digest`` before
    warcio writes them (warcio asks for them again when it writes the record).
    """

    def compute_headers_buffer(self, header_filter: object = None) -> None:
        if self.headers_buff is None:
            self.headers_buff = self.to_str().encode("utf-8", "surrogateescape") + b"\r\n"

    def wire_bytes(self) -> bytes:
        self.compute_headers_buffer()
        assert self.headers_buff is not None
        return self.headers_buff


def stored_response_headers(
    headers: list[tuple[str, str]], body_length: int, status: int
) -> list[tuple[str, str]]:
    """Response headers as stored: as received, but true to the de-chunked stored body."""
    stored: list[tuple[str, str]] = []
    lengths = [value.strip() for name, value in headers if name.lower() == "content-length"]
    length_ok = lengths == [str(body_length)] or (
        not lengths and status in _NO_BODY_STATUSES and body_length == 0
    )
    placed = length_ok
    for name, value in headers:
        lowered = name.lower()
        if lowered == "transfer-encoding":
            stored.append(("X-Orig-Transfer-Encoding", value))
        elif lowered == "content-length" and not length_ok:
            if not placed:
                stored.append(("Content-Length", str(body_length)))
                placed = True
            stored.append(("X-Orig-Content-Length", value))
        else:
            stored.append((name, value))
    if not placed:
        stored.append(("Content-Length", str(body_length)))
    return stored


def _validate(ex: Exchange) -> None:
    if not _TOKEN.match(ex.method):
        raise InvalidExchange(f"invalid method {ex.method!r}")
    if not 100 <= ex.status <= 999:
        raise InvalidExchange(f"invalid HTTP status {ex.status}")
    if _BAD_VALUE_CHARS.search(ex.reason) or not re.fullmatch(r"\d+(\.\d+)?", ex.http_version):
        raise InvalidExchange(f"invalid status line {ex.http_version!r} {ex.reason!r}")
    if not ex.url.isascii() or _SPACE_OR_CONTROL.search(ex.url):
        raise InvalidExchange(f"URL must be ASCII without spaces: {ex.url!r}")
    parts = urlsplit(ex.url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidExchange(f"not an absolute http(s) URL: {ex.url!r}")
    for name, value in (*ex.request_headers, *ex.response_headers):
        if not _TOKEN.match(name) or _BAD_VALUE_CHARS.search(value):
            raise InvalidExchange(f"header cannot be stored as is: {name!r}: {value!r}")
    if ex.started.tzinfo is None:
        raise InvalidExchange("Exchange.started must be timezone-aware (UTC)")


def _request_line(ex: Exchange) -> str:
    parts = urlsplit(ex.url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return f"{ex.method} {target} HTTP/{ex.http_version}"


def _leading_fields(record_type: str, url: str, date: str) -> dict[str, str]:
    """The usual first fields, in the usual order (warcio keeps the order it is given)."""
    return {
        "WARC-Type": record_type,
        "WARC-Record-ID": _new_record_id(),
        "WARC-Target-URI": url,
        "WARC-Date": date,
    }


_EMPTY_DIGEST = sha1_b32(b"")


_ID_BATCH = 256


class _RecordIds:
    """``<urn:uuid:...>`` record IDs (random UUIDs, as warcio makes them), 256 per
    ``os.urandom`` call rather than one system call each; given to warcio in the
    record's fields (it keeps a ``WARC-Record-ID`` it is given)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool: list[str] = []

    def __call__(self) -> str:
        with self._lock:
            if not self._pool:
                raw = os.urandom(16 * _ID_BATCH)
                self._pool = [
                    f"<urn:uuid:{uuid.UUID(bytes=raw[i : i + 16], version=4)}>"
                    for i in range(0, len(raw), 16)
                ]
            return self._pool.pop()


_new_record_id = _RecordIds()


# ---------------------------------------------------------------------------------------------
# Files


@dataclass(slots=True)
class _OpenFile:
    path: Path  # …warc.gz.open
    final: Path  # …warc.gz
    rel: str  # final, relative to the folder
    handle: BinaryIO
    sink: GzipMemberSink
    writer: WARCWriter
    warcinfo_id: str
    size: int  # bytes written so far (kept here: tell() is a system call)
    digest: RunningDigest  # of those bytes: the sidecar written at close (archive/digests.py)


class WarcStore:
    """Appends captures to rotating WARC files in a folder; see the module docstring."""

    def __init__(
        self,
        folder: Path,
        *,
        max_file_size: int = 10**9,
        prefix: str = "linkkeeper",
        info: dict[str, str] | None = None,
        clock: Callable[[], datetime] = utcnow,
        compress_level: int = DEFAULT_COMPRESS_LEVEL,
    ) -> None:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", prefix):
            raise ValueError(f"file prefix must be a plain name: {prefix!r}")
        self.folder = Path(folder)
        self.max_file_size = max_file_size
        self.prefix = prefix
        self.info = dict(info or {})
        for name, value in self.info.items():
            if not _TOKEN.match(name) or _BAD_VALUE_CHARS.search(str(value)):
                raise ValueError(f"warcinfo field cannot be written: {name!r}: {value!r}")
        self.clock = clock
        self.compress_level = compress_level
        self._lock = threading.Lock()
        self._current: _OpenFile | None = None
        self.folder.mkdir(parents=True, exist_ok=True)
        self.repair_messages: list[str] = self.repair()

    # -- context manager -----------------------------------------------------------------------

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------------

    @property
    def current_file(self) -> str | None:
        """The file being written (final name, relative), if any."""
        return self._current.rel if self._current else None

    def write(self, ex: Exchange, *, prior: PriorCapture | None = None) -> Capture:
        """Append one exchange (request + response, or request + revisit) and flush it."""
        _validate(ex)
        digest = body_digest(ex.body)
        revisit = prior is not None and prior.payload_digest == digest and not ex.truncated
        with self._lock:
            current = self._current or self._open_new_file()
            response = self._response_record(current, ex, digest, prior if revisit else None)
            request = self._request_record(current, ex, response.rec_headers)
            offset = current.size
            current.digest.mark()
            try:
                sink, writer = current.sink, current.writer
                if not revisit and incompressible(ex.response_headers, ex.body):
                    sink.level = STORED_LEVEL  # deflate would gain nothing: zlib stores it
                if not revisit and isinstance(ex.body, CapturedBody) and ex.body.spooled:
                    sink.stream_next()  # never the whole body in memory
                writer.write_record(response)
                writer.write_record(request)
                response_length, request_length = sink.write_members()
                current.handle.flush()
            except OSError as error:
                self._undo_partial_write(current, offset)
                raise named(error, current.path) from error
            except BaseException:
                self._undo_partial_write(current, offset)
                raise
            request_offset = offset + response_length
            end = request_offset + request_length
            current.size = end
            capture = Capture(
                url=ex.url,
                warc_file=current.rel,
                offset=offset,
                length=response_length,
                request_offset=request_offset,
                request_length=request_length,
                record_type="revisit" if revisit else "response",
                record_id=response.rec_headers.get_header("WARC-Record-ID"),
                payload_digest=digest,
                date=ex.started.astimezone(UTC),
                http_status=ex.status,
                content_type=header_value(ex.response_headers, "Content-Type"),
                payload_length=len(ex.body),
                truncated=ex.truncated,
                bytes_written=end - offset,
                refers_to=prior if revisit else None,
            )
            if end >= self.max_file_size:
                self._close_current()
        return capture

    def _undo_partial_write(self, current: _OpenFile, offset: int) -> None:
        """After a failed write (disk full, ...): cut the file back to its last whole capture.

        If even that fails, the file is abandoned as ``.open`` for the next repair().
        """
        current.sink.reset()
        with contextlib.suppress(OSError):
            current.handle.flush()
        try:
            current.handle.truncate(offset)
            current.handle.seek(offset)
            current.digest.rollback()
        except OSError:
            self._current = None
            with contextlib.suppress(OSError):
                current.handle.close()

    def _response_record(
        self, current: _OpenFile, ex: Exchange, digest: str, prior: PriorCapture | None
    ) -> ArcWarcRecord:
        """The response (or revisit) record, built by warcio.

        Both digests are computed here, once (sha1 over the stored body, and over the HTTP
        head and body), and given to warcio in the fields: its ``ensure_digest`` keeps
        digests a record already has and reads the body only to compute missing ones.
        """
        writer = current.writer
        http_headers = _WireHeaders(
            f"{ex.status} {ex.reason}".rstrip(),
            stored_response_headers(ex.response_headers, len(ex.body), ex.status),
            protocol=f"HTTP/{ex.http_version}",
        )
        http_head = http_headers.wire_bytes()
        record_type = "response" if prior is None else "revisit"
        fields = _leading_fields(record_type, ex.url, warc_date(ex.started))
        fields["WARC-Warcinfo-ID"] = current.warcinfo_id
        if ex.ip:
            fields["WARC-IP-Address"] = ex.ip
        if prior is not None:
            # warcio's revisit helper adds WARC-Profile, -Refers-To-Target-URI, -Refers-To-Date
            # and WARC-Payload-Digest; the standard also asks for these two
            if prior.record_id:
                fields["WARC-Refers-To"] = prior.record_id
            fields["WARC-Truncated"] = "length"  # the block keeps the HTTP headers only
            fields["WARC-Block-Digest"] = sha1_b32(http_head)
            return writer.create_revisit_record(
                ex.url,
                digest,
                prior.url,
                warc_date(prior.date),
                http_headers=http_headers,
                warc_headers_dict=fields,
            )
        if ex.truncated:
            fields["WARC-Truncated"] = "length"
        fields["WARC-Payload-Digest"] = digest
        fields["WARC-Block-Digest"] = _block_digest(http_head, ex.body)
        return writer.create_warc_record(
            ex.url,
            "response",
            payload=_BodyReader(ex.body),
            length=len(ex.body),
            http_headers=http_headers,
            warc_headers_dict=fields,
        )

    def _request_record(
        self, current: _OpenFile, ex: Exchange, response_headers: StatusAndHeaders
    ) -> ArcWarcRecord:
        """The request record (its HTTP head is its block: GET has no body), built by warcio."""
        head = _WireHeaders(_request_line(ex), list(ex.request_headers))
        fields = _leading_fields("request", ex.url, response_headers.get_header("WARC-Date"))
        fields["WARC-Concurrent-To"] = response_headers.get_header("WARC-Record-ID")
        fields["WARC-Warcinfo-ID"] = current.warcinfo_id
        if ex.ip:
            fields["WARC-IP-Address"] = ex.ip
        fields["WARC-Payload-Digest"] = _EMPTY_DIGEST
        fields["WARC-Block-Digest"] = sha1_b32(head.wire_bytes())
        return current.writer.create_warc_record(
            ex.url,
            "request",
            payload=io.BytesIO(b""),
            length=0,
            http_headers=head,
            warc_headers_dict=fields,
        )

    def _open_new_file(self) -> _OpenFile:
        started = self.clock().astimezone(UTC)
        month_dir = self.folder / f"{started:%Y}" / f"{started:%m}"
        month_dir.mkdir(parents=True, exist_ok=True)
        serial = 0
        while True:
            serial += 1
            final = month_dir / f"{self.prefix}-{started:%Y%m%d%H%M%S}-{serial:05d}{WARC_SUFFIX}"
            path = final.with_name(final.name + OPEN_SUFFIX)
            if final.exists():
                continue
            try:
                handle = open(path, "xb")  # noqa: SIM115 - lives until close()
            except FileExistsError:
                continue
            # The lock tells repair() in other runs "in use". Another run's repair may have
            # removed the empty file before we got the lock: then start over on a new name.
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            if _same_file(path, handle):
                break
            handle.close()
        digest = RunningDigest()
        sink = GzipMemberSink(DigestingWriter(handle, digest), self.compress_level)
        writer = WARCWriter(sink, gzip=False, warc_version=WARC_VERSION)
        warcinfo = writer.create_warcinfo_record(final.name, self._warcinfo_fields())
        warcinfo.rec_headers.replace_header("WARC-Date", warc_date(started))
        writer.write_record(warcinfo)
        (size,) = sink.write_members()
        handle.flush()
        self._current = _OpenFile(
            path=path,
            final=final,
            rel=final.relative_to(self.folder).as_posix(),
            handle=handle,
            sink=sink,
            writer=writer,
            warcinfo_id=warcinfo.rec_headers.get_header("WARC-Record-ID"),
            size=size,
            digest=digest,
        )
        return self._current

    def _warcinfo_fields(self) -> dict[str, str]:
        fields = {
            "software": SOFTWARE,
            "format": "WARC File Format 1.1",
            "conformsTo": "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/",
            "hostname": socket.gethostname(),  # local name only: no DNS lookup
            "linkkeeper-payload": PAYLOAD_CONVENTION,
        }
        fields.update((name, str(value)) for name, value in self.info.items())
        return fields

    # -- closing -------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the current file: flush, fsync, rename ``.open`` away, digest and index it."""
        with self._lock:
            self._close_current()

    def _close_current(self) -> None:
        current, self._current = self._current, None
        if current is None:
            return
        handle = current.handle
        try:
            try:
                handle.flush()
                os.fsync(handle.fileno())
                os.rename(current.path, current.final)
                fsync_dir(current.final.parent)
            finally:
                with contextlib.suppress(OSError):
                    handle.close()  # releases the flock
        except OSError as error:  # left `.open`: the next repair() closes it
            raise named(error, current.path) from error
        try:
            record_closed_file(current.final, current.digest)
            index_warc(self.folder, current.rel)
            rebuild_folder_index(self.folder)
        except OSError as error:  # the next repair() indexes a closed file without one
            raise named(error, self.folder) from error

    def abandon(self) -> None:
        """Stop writing without closing: the current file stays ``.open`` for the next
        repair() (after a disk-full error, when closing would write an index to a disk
        that has no room). Every capture written so far stays in it, whole."""
        with self._lock:
            current, self._current = self._current, None
            if current is not None:
                with contextlib.suppress(OSError):
                    current.handle.close()

    # -- crash repair --------------------------------------------------------------------------

    def repair(self) -> list[str]:
        """Close what a crashed run left (archive/repair.py); one message per action taken."""
        return repair_folder(self.folder, skip=self._current.path if self._current else None)


def _same_file(path: Path, handle: BinaryIO) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
    except FileNotFoundError:
        return False
