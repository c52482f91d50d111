"""Writing an export plan as one combined WARC, copying records byte for byte.

Usage (:func:`linkkeeper.export.run.export` is the one call the CLI makes)::

    plan = plan_export(db, Path("warcs"), Selection(states=("dead",)))   # export.select
    result = write_warc_export(Path("warcs"), plan, Path("dead-links.warc.gz"))

What the exported ``.warc.gz`` holds, in this order:

1. a fresh ``warcinfo`` record describing the export (the selection, counts, software);
2. for each source WARC that contributes, its own ``warcinfo`` record (provenance: operator,
   host, options; and the record every copied record's ``WARC-Warcinfo-ID`` points at),
   then the selected ``response``/``revisit`` records of that file, each followed by its
   ``request`` record, in file order.

Every record after the first is copied **byte for byte** (whole gzip members), so block and
payload digests stay valid and nothing is re-encoded. Before copying, each record's WARC head
is checked against its `snapshots` row (type, record id, URL; read by
:func:`linkkeeper.archive.records.read_head`); a row that does not match its file is skipped
with a message, never exported blind.

Streaming: records are copied in 1 MiB pieces (``copy_file_range`` when the output is a plain
file), so memory does not grow with the archive; every 64 MiB the disk is told to start
writing back (:func:`start_writeback`), so the fsync before the rename finds little left to do.
The output is written under a hidden
temporary name (``.NAME.PID.part``) beside the target, fsync-ed and renamed only when complete:
an interrupted export leaves no file that looks like a finished one (and the next export to
the same name removes the part files of exports that were killed).
"""

from __future__ import annotations

import glob
import hashlib
import io
import mmap
import os
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from itertools import groupby
from pathlib import Path
from typing import Any, BinaryIO

from warcio.warcwriter import WARCWriter

from linkkeeper import __version__
from linkkeeper.archive.records import read_head, warc_path
from linkkeeper.archive.replay import rfc3339
from linkkeeper.archive.snapshots import Capture
from linkkeeper.export.select import ExportError, ExportPlan
from linkkeeper.procs import pid_alive

try:  # zlib-ng's CRC-32 (SIMD, ~8 GB/s here) against zlib's (~0.5 GB/s): same values
    from zlib_ng.zlib_ng import crc32 as _crc32
except ImportError:  # pragma: no cover - the dependency is declared; stay correct without it
    from zlib import crc32 as _crc32

SOFTWARE = f"linkkeeper/{__version__}"
COPY_CHUNK = 1 << 20


# ---------------------------------------------------------------------------------------------
# Writing


class Output:
    """The export's byte sink: counts the position, optionally hashes, copies ranges fast.

    ``sha256``/``crc32`` digest what is written (a WACZ lists each file's sha256; its ZIP
    needs the stored WARC's CRC-32). A hashed range is mapped from the source file (no read
    copy) in pieces of 8 MiB; the sha256 of a piece runs in a helper thread (hashlib
    releases the GIL) while the same piece is CRC-ed and written, so a WACZ costs about one
    copy of the bytes plus the slower of the two, not a read, a write and two digests.
    """

    def __init__(
        self,
        raw: Any,
        *,
        sha256: bool = False,
        crc32: bool = False,
        fd: int | None = None,
        sync_fd: int | None = None,
    ) -> None:
        self._raw = raw
        self._hash = hashlib.sha256() if sha256 else None
        self._crc: int | None = 0 if crc32 else None
        self._fd = fd  # an unbuffered plain file: copy_file_range may be used
        self._sync_fd = fd if sync_fd is None else sync_fd  # the file to start writing back
        self._unsynced = 0
        self.position = 0

    def write(self, data: bytes | memoryview) -> None:
        self._raw.write(data)
        if self._hash is not None:
            self._hash.update(data)
        if self._crc is not None:
            self._crc = _crc32(data, self._crc)
        self._advance(len(data))

    def _advance(self, count: int) -> None:
        self.position += count
        self._unsynced += count
        if self._unsynced >= WRITEBACK_EVERY:
            self.start_writeback()

    def start_writeback(self) -> None:
        """Let the disk start writing what was written so far (see :func:`start_writeback`)."""
        if self._sync_fd is not None and self._unsynced:
            start_writeback(self._sync_fd)
        self._unsynced = 0

    def copy_from(self, source: BinaryIO, offset: int, length: int) -> None:
        """Append ``length`` bytes of ``source`` from ``offset`` (short source: ExportError)."""
        plain = self._hash is None and self._crc is None
        if plain and self._fd is not None and hasattr(os, "copy_file_range"):
            done = self._copy_file_range(source, offset, length)
            offset += done
            length -= done
        if not plain and length >= MAP_AT_LEAST:
            done = self._copy_mapped(source, offset, length)
            offset += done
            length -= done
        if length <= 0:
            return
        source.seek(offset)
        while length > 0:
            chunk = source.read(min(COPY_CHUNK, length))
            if not chunk:
                raise ExportError(f"{getattr(source, 'name', 'source')}: ends before {offset}")
            self.write(chunk)
            length -= len(chunk)
            offset += len(chunk)

    def _copy_mapped(self, source: BinaryIO, offset: int, length: int) -> int:
        """Copy from a mapping of the source, piece by piece; bytes done (0: not mappable)."""
        assert self._hash is not None or self._crc is not None
        done = 0
        try:
            size = os.fstat(source.fileno()).st_size
        except (OSError, AttributeError, io.UnsupportedOperation):
            return 0
        while done < length and offset + done < size:
            start = offset + done
            want = min(MAP_PIECE, length - done, size - start)
            base = start - start % mmap.ALLOCATIONGRANULARITY
            try:
                mapped = mmap.mmap(source.fileno(), start - base + want, offset=base,
                                   access=mmap.ACCESS_READ)
            except (OSError, ValueError):
                break  # the read loop does the rest (and reports a short source)
            with mapped, memoryview(mapped) as whole, whole[start - base :] as piece:
                self._write_piece(piece)
            done += want
            self._advance(0)
        return done

    def _write_piece(self, piece: memoryview) -> None:
        """Write, CRC and hash one piece; the hash in the helper thread meanwhile."""
        pending = None
        if self._hash is not None:
            if len(piece) >= THREAD_AT_LEAST:
                pending = _hasher().submit(self._hash.update, piece)
            else:
                self._hash.update(piece)
        try:
            self._raw.write(piece)
            if self._crc is not None:
                self._crc = _crc32(piece, self._crc)
        finally:
            if pending is not None:
                pending.result()
        self._advance(len(piece))

    def _copy_file_range(self, source: BinaryIO, offset: int, length: int) -> int:
        assert self._fd is not None
        done = copy_range(source.fileno(), self._fd, offset, length)
        self._advance(done)
        return done

    @property
    def sha256(self) -> str:
        assert self._hash is not None
        return self._hash.hexdigest()

    @property
    def crc32(self) -> int:
        assert self._crc is not None
        return self._crc


def copy_range(source_fd: int, target_fd: int, offset: int, length: int,
               target_offset: int | None = None) -> int:
    """Copy by ``copy_file_range`` (in the kernel, no copy through Python); the bytes copied
    (fewer: the rest is the caller's, by reading and writing; 0 where the call does not work:
    another filesystem, an old kernel). Without ``target_offset``, at the target's position."""
    done = 0
    try:
        while done < length:
            n = os.copy_file_range(
                source_fd, target_fd, min(length - done, 1 << 30), offset + done,
                None if target_offset is None else target_offset + done,
            )
            if n == 0:
                break
            done += n
    except OSError:
        pass
    return done


SYNC_FILE_RANGE_WRITE = 2  # linux/fs.h: start writeback of the dirty pages, do not wait


@lru_cache(maxsize=1)
def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    try:
        import ctypes

        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError, ImportError):  # not Linux: the final fsync does it all
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function  # type: ignore[no-any-return]


def start_writeback(fd: int) -> None:
    """Start writing the file's dirty pages to disk now, without waiting for them.

    The export still ``fsync``s before its rename (:func:`atomic_output`); started early,
    the disk writes while the export copies instead of all at the end (measured on 1 GB:
    the final fsync 0.5 s alone, ~0.03 s after this). Errors are ignored: an early start only.
    """
    function = _sync_file_range()
    if function is not None:
        function(fd, 0, 0, SYNC_FILE_RANGE_WRITE)


WRITEBACK_EVERY = 64 << 20  # bytes written between two starts of writeback
MAP_AT_LEAST = 64 << 10  # smaller ranges: one read is cheaper than a mapping
MAP_PIECE = 8 << 20  # what is mapped at once (memory stays flat however big a record is)
THREAD_AT_LEAST = 1 << 20  # smaller pieces: handing over to the thread costs more than it saves


def _hasher() -> ThreadPoolExecutor:
    """One helper thread for sha256 updates (one at a time, so they stay in order)."""
    return _hasher_of(os.getpid())


@lru_cache(maxsize=1)
def _hasher_of(pid: int) -> ThreadPoolExecutor:
    # per process: a forked child inherits the executor but not its thread
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="linkkeeper-sha256")


def _warcinfo_member(warc_name: str, fields: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    writer = WARCWriter(buffer, gzip=True, warc_version="WARC/1.1")
    record = writer.create_warcinfo_record(warc_name, fields)
    writer.write_record(record)
    return buffer.getvalue()


_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def export_warcinfo_fields(plan: ExportPlan, source_files: int) -> dict[str, str]:
    """The fresh warcinfo's fields: what was selected and what was added to make it whole."""
    fields = {
        "software": SOFTWARE,
        "format": "WARC File Format 1.1",
        "conformsTo": "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/",
        "description": "linkkeeper export of archived links; records copied byte for byte "
        "from the source WARCs, each source file's own warcinfo record before its records",
        "linkkeeper-selection": plan.selection.describe(),
        "linkkeeper-captures": str(len(plan.captures)),
        "linkkeeper-selected": str(len(plan.selected)),
        "linkkeeper-revisit-originals-added": str(len(plan.originals)),
        "linkkeeper-redirect-targets-added": str(len(plan.redirect_hops)),
        "linkkeeper-source-files": str(source_files),
        "linkkeeper-exported-at": rfc3339(datetime.now(UTC).replace(microsecond=0)),
    }
    # one field per line: a selection typed with a newline must not break the record
    return {name: _CONTROL.sub(" ", value) for name, value in fields.items()}


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a copied capture landed: in the combined WARC (``file`` None) or, in a WACZ,
    in a source WARC stored whole under its own name."""

    capture: Capture
    offset: int
    length: int
    file: str | None = None


@dataclass
class AssemblyStats:
    captures: int = 0
    requests: int = 0
    warcinfos: int = 0
    skipped: list[str] = field(default_factory=list)

    def add(self, other: AssemblyStats) -> None:
        self.captures += other.captures
        self.requests += other.requests
        self.warcinfos += other.warcinfos
        self.skipped.extend(other.skipped)


ProgressCallback = Callable[[int, int, int, int], None]  # bytes done/total, records done/total


class Progress:
    """Bytes and records copied so far, against the plan's totals, for the callback."""

    def __init__(self, plan: ExportPlan, callback: ProgressCallback | None) -> None:
        self._callback = callback
        self._total = (plan.source_bytes, len(plan.captures))
        self._bytes = self._records = 0

    def advance(self, captures: list[Capture]) -> None:
        self._bytes += sum(c.length for c in captures)
        self._records += len(captures)
        if self._callback is not None and captures:
            self._callback(self._bytes, self._total[0], self._records, self._total[1])


@dataclass
class SourceFile:
    """What an export takes from one source WARC, every record checked against its row.

    ``pieces`` are the byte ranges to copy, in file order: the file's warcinfo record, then
    each selected record that matched its row (``capture`` set) followed by its request
    record. When they tile the whole file (:attr:`whole`), a WACZ stores the file as it is.
    """

    warc_file: str
    path: Path
    captures: list[Capture]
    size: int = 0
    pieces: list[tuple[int, int, Capture | None]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def whole(self) -> bool:
        """Whether the pieces are the whole file, each byte once (nothing skipped)."""
        end = 0
        for offset, length, _capture in self.pieces:
            if offset != end:
                return False
            end += length
        return bool(self.pieces) and end == self.size and not self.skipped

    def add_to(self, stats: AssemblyStats) -> None:
        """Count what copying this file's pieces writes."""
        placed = sum(1 for *_, capture in self.pieces if capture is not None)
        stats.captures += placed
        stats.requests += len(self.pieces) - placed - self.warcinfos
        stats.warcinfos += self.warcinfos
        stats.skipped.extend(self.skipped)

    def skipped_captures(self) -> list[Capture]:
        placed = {id(capture) for *_, capture in self.pieces}
        return [c for c in self.captures if id(c) not in placed]

    @property
    def warcinfos(self) -> int:
        return 1 if self.pieces and self.pieces[0][0] == 0 and self.pieces[0][2] is None else 0


def survey(folder: Path, plan: ExportPlan) -> list[SourceFile]:
    """Each source file of the plan with the ranges to copy from it (heads read, no bodies)."""
    return [
        _survey_file(folder, warc_file, list(group))
        for warc_file, group in groupby(plan.captures, key=lambda c: c.warc_file)
    ]


def _survey_file(folder: Path, warc_file: str, members: list[Capture]) -> SourceFile:
    found = SourceFile(warc_file, warc_path(folder, warc_file), members)
    try:
        source = open(found.path, "rb")  # noqa: SIM115 - closed below
    except OSError as err:
        found.skipped.extend(
            f"{c.url} at {c.timestamp}: {warc_file}: {err.strerror or err}" for c in members
        )
        return found
    with source:
        found.size = os.fstat(source.fileno()).st_size
        info = read_head(source, 0, whole=True)
        if info is not None and info.get("WARC-Type") == "warcinfo" and info.length:
            found.pieces.append((0, info.length, None))
        for capture in members:
            problem = _check_head(source, capture)
            if problem:
                found.skipped.append(problem)
                continue
            found.pieces.append((capture.offset, capture.length, capture))
            request_at = capture.offset + capture.length
            request = read_head(source, request_at, whole=True)
            if (
                request is not None
                and request.length
                and request.get("WARC-Type") == "request"
                and capture.record_id
                and request.get("WARC-Concurrent-To") == capture.record_id
            ):
                found.pieces.append((request_at, request.length, None))
    return found


def assemble_warc(
    folder: Path,
    plan: ExportPlan,
    out: Output,
    warc_name: str,
    *,
    sources: list[SourceFile] | None = None,
    on_record: Callable[[Placement], None] | None = None,
    progress: Progress | None = None,
    extra_fields: dict[str, str] | None = None,
) -> AssemblyStats:
    """Write the combined WARC (see the module docstring) to ``out``: the pieces of
    ``sources`` (default: every source file of the plan)."""
    stats = AssemblyStats()
    sources = survey(folder, plan) if sources is None else sources
    fields = export_warcinfo_fields(plan, len({c.warc_file for c in plan.captures}))
    out.write(_warcinfo_member(warc_name, {**fields, **(extra_fields or {})}))
    stats.warcinfos += 1
    progress = progress or Progress(plan, None)
    for found in sources:
        found.add_to(stats)
        if not found.pieces:
            continue
        with open(found.path, "rb") as source:
            for offset, length, capture in found.pieces:
                at = out.position
                out.copy_from(source, offset, length)
                if capture is not None:
                    if on_record is not None:
                        on_record(Placement(capture, at, length))
                    progress.advance([capture])
        progress.advance(found.skipped_captures())
        out.start_writeback()
    return stats


def _check_head(source: BinaryIO, capture: Capture) -> str | None:
    """Why the record at the capture's offset is not the one its row describes, if it is not."""
    where = f"{capture.url} at {capture.timestamp} ({capture.warc_file}@{capture.offset})"
    head = read_head(source, capture.offset, whole=False)
    if head is None:
        return f"{where}: no readable WARC record there; skipped"
    if head.get("WARC-Type") != capture.record_type:
        return f"{where}: a {head.get('WARC-Type')} record, not {capture.record_type}; skipped"
    if capture.record_id and head.get("WARC-Record-ID") != capture.record_id:
        return f"{where}: holds {head.get('WARC-Record-ID')}, not {capture.record_id}; skipped"
    if head.get("WARC-Target-URI") not in (capture.url, f"<{capture.url}>"):
        return f"{where}: the record is for {head.get('WARC-Target-URI')}; skipped"
    return None


@contextmanager
def atomic_output(target: Path, *, force: bool = False) -> Iterator[Path]:
    """A temporary sibling to write; renamed to ``target`` only if the block completes."""
    target = Path(target)
    if target.exists() and not force:
        raise ExportError(f"{target} exists (use --force to replace it)")
    if not target.parent.is_dir():
        raise ExportError(f"{target.parent} is not a folder")
    _remove_stale_parts(target)
    temp = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        yield temp
        with open(temp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temp, target)
        directory = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    finally:
        if temp.exists():
            temp.unlink()


def _remove_stale_parts(target: Path) -> None:
    """Remove what exports to ``target`` killed outright (kill -9, power cut) left behind."""
    prefix = f".{target.name}."
    for part in target.parent.glob(glob.escape(prefix) + "*.part"):
        pid = part.name[len(prefix) : -len(".part")]
        if pid.isdigit() and not pid_alive(int(pid)):
            part.unlink(missing_ok=True)


@dataclass
class ExportResult:
    """What an export wrote."""

    path: Path
    format: str  # 'warc' | 'wacz'
    selected: int
    captures: int  # response/revisit records written (selected + added)
    originals_added: int
    redirect_targets_added: int
    requests: int
    warcinfos: int
    bytes_written: int
    elapsed_s: float
    problems: list[str] = field(default_factory=list)
    pages: int = 0  # WACZ pages.jsonl entries

    @classmethod
    def of(cls, path: Path, fmt: str, plan: ExportPlan, stats: AssemblyStats, *,
           bytes_written: int, started: float, problems: list[str] | None = None,
           pages: int = 0) -> ExportResult:
        """The result of writing `plan` (the same accounting for WARC and WACZ)."""
        return cls(
            path=path,
            format=fmt,
            selected=len(plan.selected),
            captures=stats.captures,
            originals_added=len(plan.originals),
            redirect_targets_added=len(plan.redirect_hops),
            requests=stats.requests,
            warcinfos=stats.warcinfos,
            bytes_written=bytes_written,
            elapsed_s=time.monotonic() - started,
            problems=plan.problems + stats.skipped + (problems or []),
            pages=pages,
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "path": str(self.path),
            "format": self.format,
            "selected": self.selected,
            "captures": self.captures,
            "originals_added": self.originals_added,
            "redirect_targets_added": self.redirect_targets_added,
            "requests": self.requests,
            "warcinfos": self.warcinfos,
            "pages": self.pages,
            "bytes_written": self.bytes_written,
            "elapsed_s": round(self.elapsed_s, 3),
            "problems": self.problems,
        }


def write_warc_export(
    folder: Path,
    plan: ExportPlan,
    output: Path,
    *,
    force: bool = False,
    on_progress: ProgressCallback | None = None,
) -> ExportResult:
    """Write ``plan`` as one combined ``.warc.gz`` at ``output`` (atomically)."""
    started = time.monotonic()
    with atomic_output(output, force=force) as temp, open(temp, "xb", buffering=0) as raw:
        out = Output(raw, fd=raw.fileno())
        stats = assemble_warc(folder, plan, out, output.name,
                              progress=Progress(plan, on_progress))
    return ExportResult.of(output, "warc", plan, stats, bytes_written=out.position,
                           started=started)
