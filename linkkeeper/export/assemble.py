"""Exporting captures: a selection of the `snapshots` table as one combined WARC (or a WACZ).

Usage::

    selection = Selection(states=("dead",), latest=True)
    result = export(db, Path("warcs"), selection, Path("dead-links.warc.gz"))
    result.captures, result.bytes_written

What the exported ``.warc.gz`` holds, in this order:

1. a fresh ``warcinfo`` record describing the export (the selection, counts, software);
2. for each source WARC that contributes, its own ``warcinfo`` record (provenance: operator,
   host, options; and the record every copied record's ``WARC-Warcinfo-ID`` points at),
   then the selected ``response``/``revisit`` records of that file, each followed by its
   ``request`` record, in file order.

Every record after the first is copied **byte for byte** (whole gzip members), so block and
payload digests stay valid and nothing is re-encoded. Before copying, each record's WARC head
is checked against its `snapshots` row (type, record id, URL); a row that does not match its
file is skipped with a message, never exported blind.

The export is self-contained, because an archive handed to someone else cannot reach back
into ours: a ``revisit`` whose original is not selected pulls the original in (see
:func:`linkkeeper.archive.replay.resolve_original`), and a redirect (3xx) capture pulls in the capture
of its ``Location`` made in the same run, so replay of a cited URL follows the chain as it
was recorded. Both are counted in :class:`ExportResult`.

Streaming: records are copied in 1 MiB pieces (``copy_file_range`` when the output is a plain
file), so memory does not grow with the archive. The output is written under a hidden
temporary name (``.NAME.PID.part``) beside the target, fsync-ed and renamed only when complete:
an interrupted export leaves no file that looks like a finished one (and the next export to
the same name removes the part files of exports that were killed).
"""

from __future__ import annotations

import fnmatch
import glob
import hashlib
import io
import os
import re
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import groupby
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urljoin

from warcio.warcwriter import WARCWriter

from linkkeeper import __version__
from linkkeeper.archive.replay import (
    SNAPSHOT_COLUMNS,
    Capture,
    CaptureUnavailable,
    captures_of,
    read_capture_record,
    resolve_original,
    rfc3339,
    warc_path,
)
from linkkeeper.vocab import State

SOFTWARE = f"linkkeeper/{__version__}"
COPY_CHUNK = 1 << 20
_HEAD_LIMIT = 1 << 20  # a WARC head larger than this is not one we wrote
_MAX_SMALL_MEMBER = 64 << 20  # warcinfo/request members are small; give up beyond this
_MAX_REDIRECT_HOPS = 20


class ExportError(Exception):
    """The export cannot be made (bad selection, nothing selected, output exists...)."""


# ---------------------------------------------------------------------------------------------
# Selecting


@dataclass(frozen=True, slots=True)
class Selection:
    """Which captures to export. Different criteria combine with AND, repeated ones with OR."""

    posts: tuple[str, ...] = ()  # post paths (as stored, a path ending in one, or a glob)
    url_patterns: tuple[str, ...] = ()  # glob on the URL; without * ? [ : a substring
    since: datetime | None = None  # captures at or after
    until: datetime | None = None  # captures at or before
    states: tuple[str, ...] = ()  # link_state.state values
    latest: bool = False  # only the newest selected capture per URL

    def describe(self) -> str:
        """The selection as the command line would say it (for warcinfo and messages)."""
        parts = [f"--post {p}" for p in self.posts]
        parts += [f"--url {u}" for u in self.url_patterns]
        if self.since:
            parts.append(f"--since {rfc3339(self.since)}")
        if self.until:
            parts.append(f"--until {rfc3339(self.until)}")
        parts += [f"--state {s}" for s in self.states]
        if self.latest:
            parts.append("--latest")
        return " ".join(parts) if parts else "all captures"


def url_matches(url: str, pattern: str) -> bool:
    """``--url`` semantics: a glob (``*``, ``?``, ``[...]``) on the whole URL, else a substring."""
    if any(ch in pattern for ch in "*?["):
        return fnmatch.fnmatchcase(url, pattern)
    return pattern in url


def match_posts(db: Any, patterns: Iterable[str]) -> list[str]:
    """Post paths named by ``--post`` values; a value that names no post is an error.

    A value matches a stored path (relative to the site, e.g. ``_posts/2024-11-19-a.md``)
    exactly, as a glob, or when either path ends with the other (so ``blog/_posts/x.md`` and
    ``x.md`` both find ``_posts/x.md``).
    """
    stored = [p for (p,) in db.execute("SELECT path FROM posts ORDER BY path")]
    found: list[str] = []
    for raw in patterns:
        pattern = raw.replace("\\", "/").removeprefix("./")
        hits = [
            p
            for p in stored
            if p == pattern
            or fnmatch.fnmatchcase(p, pattern)
            or pattern.endswith("/" + p)
            or p.endswith("/" + pattern)
        ]
        if not hits:
            raise ExportError(f"--post {raw}: no post of the inventory matches (run `scan`?)")
        found.extend(h for h in hits if h not in found)
    return found


def _in_chunks(db: Any, sql: str, values: list[str], size: int = 500) -> Iterator[Any]:
    """Run ``sql`` (with one ``{marks}`` placeholder list) over ``values`` in chunks."""
    for start in range(0, len(values), size):
        chunk = values[start : start + size]
        yield from db.execute(sql.format(marks=",".join("?" * len(chunk))), chunk)


def select_captures(db: Any, selection: Selection) -> list[Capture]:
    """The captures a selection names (before revisit originals and redirect hops are added)."""
    urls: set[str] | None = None
    if selection.posts:
        paths = match_posts(db, selection.posts)
        urls = {
            u for (u,) in _in_chunks(
                db, "SELECT DISTINCT url FROM occurrences WHERE post IN ({marks})", paths
            )
        }
    if selection.states:
        unknown = sorted(set(selection.states) - {s.value for s in State})
        if unknown:
            raise ExportError(f"unknown link state(s): {', '.join(unknown)}")
        marks = ",".join("?" * len(selection.states))
        in_state = {
            u for (u,) in db.execute(
                f"SELECT url FROM link_state WHERE state IN ({marks})", list(selection.states)
            )
        }
        urls = in_state if urls is None else urls & in_state
    if urls is None:
        rows: Iterable[Any] = db.execute(f"SELECT {SNAPSHOT_COLUMNS} FROM snapshots")
    else:
        rows = _in_chunks(
            db, f"SELECT {SNAPSHOT_COLUMNS} FROM snapshots WHERE url IN ({{marks}})", sorted(urls)
        )
    chosen: list[Capture] = []
    for row in rows:
        capture = Capture.from_row(row)
        if selection.url_patterns and not any(
            url_matches(capture.url, p) for p in selection.url_patterns
        ):
            continue
        if selection.since and capture.date < selection.since:
            continue
        if selection.until and capture.date > selection.until:
            continue
        chosen.append(capture)
    if selection.latest:
        newest: dict[str, Capture] = {}
        for capture in chosen:
            held = newest.get(capture.url)
            if held is None or (capture.date, capture.id) > (held.date, held.id):
                newest[capture.url] = capture
        chosen = list(newest.values())
    return sorted(chosen, key=lambda c: (c.date, c.id))


# ---------------------------------------------------------------------------------------------
# Planning: make the selection self-contained


@dataclass
class ExportPlan:
    """The captures an export copies: the selection plus what its replay depends on."""

    selection: Selection
    selected: list[Capture]
    originals: list[Capture] = field(default_factory=list)  # revisit originals pulled in
    redirect_hops: list[Capture] = field(default_factory=list)  # Location targets pulled in
    problems: list[str] = field(default_factory=list)  # unresolvable revisits, unreadable rows

    _ordered: list[Capture] | None = field(default=None, repr=False)

    @property
    def captures(self) -> list[Capture]:
        """Everything to copy, in file order (sequential reads; originals before revisits)."""
        if self._ordered is None:
            every = {c.id: c for c in (*self.selected, *self.originals, *self.redirect_hops)}
            self._ordered = sorted(every.values(), key=lambda c: (c.warc_file, c.offset))
        return self._ordered

    @property
    def source_bytes(self) -> int:
        return sum(c.length for c in self.captures)


def _redirect_target(db: Any, folder: Path, capture: Capture) -> Capture | None:
    """The capture of a 3xx capture's Location: same run first, else the next one in time."""
    head = read_capture_record(folder, capture)
    location = next((v for k, v in head.http_headers if k.lower() == "location"), None)
    if not location:
        return None
    target = urljoin(capture.url, location.strip())
    candidates = [c for c in captures_of(db, target) if c.id != capture.id]
    if not candidates:
        return None
    same_run = [c for c in candidates if capture.run_id is not None and c.run_id == capture.run_id]
    pool = same_run or candidates
    after = [c for c in pool if c.date >= capture.date]
    if after:
        return min(after, key=lambda c: (c.date, c.id))
    return max(pool, key=lambda c: (c.date, c.id))


def plan_export(
    db: Any, folder: Path, selection: Selection, *, follow_redirects: bool = True
) -> ExportPlan:
    """Select, then add revisit originals and redirect targets until nothing is missing."""
    plan = ExportPlan(selection=selection, selected=select_captures(db, selection))
    included = {c.id for c in plan.selected}
    queue = [(c, 0) for c in plan.selected]
    while queue:
        capture, depth = queue.pop()
        try:
            if capture.record_type == "revisit":
                original = resolve_original(db, folder, capture)
                if original is None or original.id == capture.id:
                    plan.problems.append(
                        f"{capture.url} at {capture.timestamp}: revisit whose original is not in "
                        "the archive (exported as is; replay tools cannot show it)"
                    )
                elif original.id not in included:
                    included.add(original.id)
                    plan.originals.append(original)
                    queue.append((original, depth))
            status = capture.http_status or 0
            if follow_redirects and 300 <= status < 400 and depth < _MAX_REDIRECT_HOPS:
                hop = _redirect_target(db, folder, capture)
                if hop is not None and hop.id not in included:
                    included.add(hop.id)
                    plan.redirect_hops.append(hop)
                    queue.append((hop, depth + 1))
        except CaptureUnavailable as err:
            plan.problems.append(f"{capture.url} at {capture.timestamp}: {err}")
    return plan


# ---------------------------------------------------------------------------------------------
# Reading gzip members of the source files


@dataclass(frozen=True, slots=True)
class MemberHead:
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


def read_member_head(handle: BinaryIO, offset: int, *, whole: bool) -> MemberHead | None:
    """Inflate the gzip member at ``offset`` far enough to parse its WARC head.

    With ``whole``, inflate to the member's end to learn its compressed length (used for
    the small warcinfo and request records). ``None`` when there is no WARC record there.
    """
    handle.seek(offset)
    inflater = zlib.decompressobj(zlib.MAX_WBITS + 16)
    inflated = b""
    fields: dict[str, str] | None = None
    consumed = 0
    try:
        while True:
            chunk = handle.read(1 << 16)
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
                        return MemberHead(fields, None)
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
    return MemberHead(fields, consumed - len(inflater.unused_data))


# ---------------------------------------------------------------------------------------------
# Writing


class Output:
    """The export's byte sink: counts the position, optionally hashes, copies ranges fast."""

    def __init__(self, raw: Any, *, sha256: bool = False, fd: int | None = None) -> None:
        self._raw = raw
        self._hash = hashlib.sha256() if sha256 else None
        self._fd = fd  # an unbuffered plain file: copy_file_range may be used
        self.position = 0

    def write(self, data: bytes) -> None:
        self._raw.write(data)
        if self._hash is not None:
            self._hash.update(data)
        self.position += len(data)

    def copy_from(self, source: BinaryIO, offset: int, length: int) -> None:
        """Append ``length`` bytes of ``source`` from ``offset`` (short source: ExportError)."""
        if self._fd is not None and self._hash is None and hasattr(os, "copy_file_range"):
            done = self._copy_file_range(source, offset, length)
            offset += done
            length -= done
        source.seek(offset)
        while length > 0:
            chunk = source.read(min(COPY_CHUNK, length))
            if not chunk:
                raise ExportError(f"{getattr(source, 'name', 'source')}: ends before {offset}")
            self.write(chunk)
            length -= len(chunk)
            offset += len(chunk)

    def _copy_file_range(self, source: BinaryIO, offset: int, length: int) -> int:
        assert self._fd is not None
        done = 0
        try:
            while done < length:
                n = os.copy_file_range(
                    source.fileno(), self._fd, min(length - done, 1 << 30), offset + done
                )
                if n == 0:
                    break
                done += n
        except OSError:  # another filesystem, an old kernel: the read/write loop does it
            pass
        self.position += done
        return done

    @property
    def sha256(self) -> str:
        assert self._hash is not None
        return self._hash.hexdigest()


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
    """Where a copied capture landed in the exported WARC."""

    capture: Capture
    offset: int
    length: int


@dataclass
class AssemblyStats:
    captures: int = 0
    requests: int = 0
    warcinfos: int = 0
    skipped: list[str] = field(default_factory=list)


ProgressCallback = Callable[[int, int, int, int], None]  # bytes done/total, records done/total


def assemble_warc(
    folder: Path,
    plan: ExportPlan,
    out: Output,
    warc_name: str,
    *,
    on_record: Callable[[Placement], None] | None = None,
    on_progress: ProgressCallback | None = None,
) -> AssemblyStats:
    """Write the combined WARC (see the module docstring) to ``out``."""
    stats = AssemblyStats()
    captures = plan.captures
    files = sorted({c.warc_file for c in captures})
    out.write(_warcinfo_member(warc_name, export_warcinfo_fields(plan, len(files))))
    stats.warcinfos += 1
    total_bytes, total_records = plan.source_bytes, len(captures)
    done_bytes = done_records = 0
    for warc_file, group in groupby(captures, key=lambda c: c.warc_file):
        members = list(group)
        try:
            source = open(warc_path(folder, warc_file), "rb")  # noqa: SIM115 - closed below
        except OSError as err:
            stats.skipped.extend(
                f"{c.url} at {c.timestamp}: {warc_file}: {err.strerror or err}" for c in members
            )
            continue
        with source:
            info = read_member_head(source, 0, whole=True)
            if info is not None and info.get("WARC-Type") == "warcinfo" and info.length:
                out.copy_from(source, 0, info.length)
                stats.warcinfos += 1
            for capture in members:
                done_records += 1
                done_bytes += capture.length
                problem = _check_head(source, capture)
                if problem:
                    stats.skipped.append(problem)
                    continue
                placement = Placement(capture, out.position, capture.length)
                out.copy_from(source, capture.offset, capture.length)
                stats.captures += 1
                if on_record is not None:
                    on_record(placement)
                request = read_member_head(source, capture.offset + capture.length, whole=True)
                if (
                    request is not None
                    and request.length
                    and request.get("WARC-Type") == "request"
                    and capture.record_id
                    and request.get("WARC-Concurrent-To") == capture.record_id
                ):
                    out.copy_from(source, capture.offset + capture.length, request.length)
                    stats.requests += 1
                if on_progress is not None:
                    on_progress(done_bytes, total_bytes, done_records, total_records)
    return stats


def _check_head(source: BinaryIO, capture: Capture) -> str | None:
    """Why the record at the capture's offset is not the one its row describes, if it is not."""
    where = f"{capture.url} at {capture.timestamp} ({capture.warc_file}@{capture.offset})"
    head = read_member_head(source, capture.offset, whole=False)
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
        if pid.isdigit() and not _process_alive(int(pid)):
            part.unlink(missing_ok=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


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


def export_format(path: Path) -> str:
    """'warc' for ``*.warc.gz``, 'wacz' for ``*.wacz`` (the output name decides)."""
    name = Path(path).name.lower()
    if name.endswith(".warc.gz"):
        return "warc"
    if name.endswith(".wacz"):
        return "wacz"
    raise ExportError(f"{path}: the output name must end in .warc.gz or .wacz")


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
        stats = assemble_warc(folder, plan, out, output.name, on_progress=on_progress)
    return ExportResult.of(output, "warc", plan, stats, bytes_written=out.position,
                           started=started)


def export(
    db: Any,
    folder: Path,
    selection: Selection,
    output: Path,
    *,
    force: bool = False,
    follow_redirects: bool = True,
    on_progress: ProgressCallback | None = None,
    title: str | None = None,
) -> ExportResult:
    """Export the selected captures to ``output`` (``.warc.gz`` or ``.wacz``)."""
    fmt = export_format(output)
    if output.exists() and not force:
        raise ExportError(f"{output} exists (use --force to replace it)")
    plan = plan_export(db, Path(folder), selection, follow_redirects=follow_redirects)
    if not plan.selected:
        raise ExportError(f"no capture matches the selection ({selection.describe()})")
    if fmt == "wacz":
        from linkkeeper.export.wacz import write_wacz

        return write_wacz(db, Path(folder), plan, Path(output), force=force,
                          on_progress=on_progress, title=title)
    return write_warc_export(Path(folder), plan, Path(output), force=force,
                             on_progress=on_progress)
