"""WACZ 1.1.1 packages of an export plan: what ReplayWeb.page opens and other archives ingest.

Our own writer rather than the ``wacz`` PyPI package: that package pins old libraries
(``typer==0.11.1``, frictionless, black, pytest-cov) and re-reads every WARC to index it.
Here the WARCs are streamed straight into the ZIP (stored, not deflated: replay tools read
records by offset through HTTP ranges) while the CDXJ lines are taken from the source files'
own cdxj-indexer indexes with only ``offset``/``length``/``filename`` changed, so the archive
is read at most once; the index is sorted one source file at a time and merged, so memory does
not grow with the archive. A source WARC whose every record is selected is stored whole, as it
is, copied in the kernel, with the sha256 and CRC-32 its writer recorded
(:mod:`linkkeeper.archive.digests`): none of its bytes passes through Python. Layout (WACZ
1.1.1, https://specs.webrecorder.net/wacz/1.1.1/)::

    archive/linkkeeper-export-YYYYMMDDhhmmss.warc.gz   the export's WARC: a warcinfo describing
                              the export, then the records of partly selected source files
                              (see linkkeeper.export.assemble)
    archive/<source>.warc.gz  each source WARC taken whole, under its own name
    indexes/index.cdxj        sorted CDXJ of the response/revisit records (cdxj-indexer format)
    pages/pages.jsonl         header line, then one page per exported post link: url, ts, title
    datapackage.json          profile data-package, wacz_version 1.1.1, sha256 + size of each file
    datapackage-digest.json   sha256 of datapackage.json

A *page* is a URL that a post cites and that has an exported capture; its ``ts`` is the
newest exported capture's WARC-Date and its title the link's text in the post (the post title
for a source link), else the citing post's title.

:func:`check_wacz` re-reads a package and lists what is wrong with it; ``wacz validate`` from
the ``wacz`` package does not notice missing files, so this one checks every listed file.
"""

from __future__ import annotations

import hashlib
import heapq
import io
import json
import re
import tempfile
import time
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from linkkeeper.archive.cdx import cdxj_indexer, index_path_for
from linkkeeper.archive.digests import FileDigest, trusted_digest
from linkkeeper.archive.records import parse_record, warc_path
from linkkeeper.archive.replay import rfc3339
from linkkeeper.archive.snapshots import Capture, parse_stored_date
from linkkeeper.export.assemble import (
    SOFTWARE,
    WRITEBACK_EVERY,
    AssemblyStats,
    ExportResult,
    Output,
    Placement,
    Progress,
    ProgressCallback,
    SourceFile,
    assemble_warc,
    atomic_output,
    copy_range,
    start_writeback,
    survey,
)
from linkkeeper.export.select import ExportPlan, newest_per_url

WACZ_VERSION = "1.1.1"
PAGES_HEADER = {"format": "json-pages-1.0", "id": "pages", "title": "All Pages"}
_KIND_ORDER = {"source": 0, "related": 1, "inline": 2, "image": 3, "embed": 4}


# ---------------------------------------------------------------------------------------------
# Index lines


class _SourceIndexes:
    """CDXJ lines of the source WARCs by (file, offset), one file in memory at a time."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._file: str | None = None
        self._lines: dict[int, tuple[str, str, dict[str, Any]]] = {}

    def line_for(self, capture: Capture) -> tuple[str, str, dict[str, Any]] | None:
        if capture.warc_file != self._file:
            self._load(capture.warc_file, prefer_existing=True)
        found = self._lines.get(capture.offset)
        if found is None:  # an index older than the file, or none: index the file itself
            self._load(capture.warc_file, prefer_existing=False)
            found = self._lines.get(capture.offset)
        return found

    def _load(self, warc_file: str, *, prefer_existing: bool) -> None:
        self._file = warc_file
        path = warc_path(self.folder, warc_file)
        index = index_path_for(self.folder / warc_file)
        if prefer_existing and index.exists():
            text = index.read_text(encoding="utf-8")
        else:
            buffer = io.StringIO()
            try:
                with open(path, "rb") as handle:
                    indexer = cdxj_indexer()  # imported only when needed: ~0.3 s
                    indexer(output=buffer, inputs=[handle], filename=warc_file).process_all()
            except Exception:  # a file still being written ends mid-record: keep what indexed
                pass
            text = buffer.getvalue()
        self._lines = {}
        for line in text.splitlines():
            if not line.strip() or line.startswith("!"):
                continue
            urlkey, ts, rest = line.split(" ", 2)
            fields = json.loads(rest)
            self._lines[int(fields["offset"])] = (urlkey, ts, fields)


class _IndexRuns:
    """CDXJ lines sorted one source file at a time into temporary runs, merged at the end.

    Memory holds one source file's lines (a 1 GB WARC: some thousands), not the export's.
    """

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._lines: list[str] = []
        self._runs: list[Path] = []
        self.urls: set[str] = set()

    def add(self, line: str, url: str) -> None:
        self._lines.append(line)
        self.urls.add(url)

    def cut(self) -> None:
        """End the current run (call when the source file changes)."""
        if not self._lines:
            return
        self._lines.sort()
        run = self._folder / f"run-{len(self._runs):05d}.cdxj"
        run.write_text("".join(self._lines), encoding="utf-8")
        self._runs.append(run)
        self._lines = []

    def write_merged(self, out: Output) -> None:
        self.cut()
        with ExitStack() as stack:
            sources = [stack.enter_context(open(r, encoding="utf-8")) for r in self._runs]
            batch: list[str] = []
            size = 0
            for line in heapq.merge(*sources):
                batch.append(line)
                size += len(line)
                if size >= 1 << 20:
                    out.write("".join(batch).encode())
                    batch, size = [], 0
            out.write("".join(batch).encode())


def _index_line(source: tuple[str, str, dict[str, Any]], placement: Placement, name: str) -> str:
    urlkey, ts, fields = source
    moved = dict(fields)
    moved["offset"] = str(placement.offset)
    moved["length"] = str(placement.length)
    moved["filename"] = name
    return f"{urlkey} {ts} {json.dumps(moved)}\n"


# ---------------------------------------------------------------------------------------------
# Pages


def pages_for(db: Any, captures: list[Capture]) -> list[dict[str, str]]:
    """One page per exported URL that a post cites: newest exported capture, link title."""
    newest = newest_per_url(captures)
    urls = sorted(newest)
    titles: dict[str, tuple[int, str]] = {}
    for start in range(0, len(urls), 500):
        chunk = urls[start : start + 500]
        marks = ",".join("?" * len(chunk))
        rows = db.execute(
            "SELECT o.url, o.kind, o.text, p.title FROM occurrences o"
            f" LEFT JOIN posts p ON p.path = o.post WHERE o.url IN ({marks})"
            " ORDER BY o.post, o.line",
            chunk,
        )
        for url, kind, text, post_title in rows:
            rank = _KIND_ORDER.get(kind or "", 9)
            title = " ".join((text or "").split()) or " ".join((post_title or "").split()) or url
            if url not in titles or rank < titles[url][0]:
                titles[url] = (rank, title)
    pages = []
    for url in urls:
        if url not in titles:
            continue  # a redirect target or revisit original: archived, but not a post link
        capture = newest[url]
        pages.append(
            {
                "id": uuid.uuid5(uuid.NAMESPACE_URL, f"{url} {capture.timestamp}").hex,
                "url": url,
                "ts": rfc3339(capture.date),
                "title": titles[url][1],
            }
        )
    return pages


# ---------------------------------------------------------------------------------------------
# Writing


def _safe_name(text: str) -> str:
    return re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-") or "file"


@dataclass
class _Resource:
    path: str
    sha256: str
    size: int

    def as_json(self) -> dict[str, object]:
        return {
            "name": _safe_name(Path(self.path).name),
            "path": self.path,
            "hash": f"sha256:{self.sha256}",
            "bytes": self.size,
        }


def _write_bytes(zf: zipfile.ZipFile, path: str, data: bytes, *, deflate: bool) -> _Resource:
    info = zipfile.ZipInfo(path, date_time=time.gmtime()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    zf.writestr(info, data)
    return _Resource(path, hashlib.sha256(data).hexdigest(), len(data))


def _direct(zf: zipfile.ZipFile, entry: Any) -> bool:
    """Whether a stored member's bytes may go straight to the package file (zipfile then
    told the size and CRC): zipfile has the counters this relies on (a future Python may not)."""
    return (
        getattr(entry, "_compressor", True) is None
        and isinstance(getattr(entry, "_crc", None), int)
        and isinstance(getattr(entry, "_file_size", None), int)
        and zf.fp is not None
    )


@contextmanager
def _stored_member(zf: zipfile.ZipFile, path: str, created: datetime) -> Iterator[Output]:
    """A stored (not deflated) member of the package, written through an `Output`.

    zipfile's member writer computes the CRC-32 with zlib's (~0.5 GB/s here, slower than
    copying the bytes), so the bytes go straight to the package file while the `Output`
    computes sha256 and CRC-32 itself (zlib-ng, threads); zipfile is then told the size and
    CRC and writes the headers and central directory as usual.
    """
    info = zipfile.ZipInfo(path, date_time=created.timetuple()[:6])
    info.compress_type = zipfile.ZIP_STORED
    with zf.open(info, "w", force_zip64=True) as entry:
        direct = _direct(zf, entry)
        assert zf.fp is not None
        out = Output(zf.fp if direct else entry, sha256=True, crc32=direct,
                     sync_fd=zf.fp.fileno())
        yield out
        if direct:
            entry._file_size = out.position  # type: ignore[attr-defined]
            entry._crc = out.crc32  # type: ignore[attr-defined]


def _whole_files(
    sources: list[SourceFile], combined_name: str
) -> tuple[list[tuple[SourceFile, FileDigest, str]], list[SourceFile]]:
    """The source files to store whole (every byte selected, digests known from when the file
    was written, a name free in ``archive/``) and the rest, for the combined WARC."""
    whole: list[tuple[SourceFile, FileDigest, str]] = []
    rest: list[SourceFile] = []
    names = {combined_name}
    for found in sources:
        name = Path(found.warc_file).name
        digest = trusted_digest(found.path) if found.whole and name not in names else None
        if digest is not None and digest.size == found.size:
            whole.append((found, digest, name))
            names.add(name)
        else:
            rest.append(found)
    return whole, rest


def _whole_member(
    zf: zipfile.ZipFile, found: SourceFile, digest: FileDigest, path: str, created: datetime
) -> None:
    """Store a source WARC as it is: copied in the kernel, its sha256 and CRC-32 the ones
    recorded when it was written (archive/digests.py), so no byte passes through Python."""
    info = zipfile.ZipInfo(path, date_time=created.timetuple()[:6])
    info.compress_type = zipfile.ZIP_STORED
    with (
        open(found.path, "rb") as source,
        zf.open(info, "w", force_zip64=True) as entry,
    ):
        if not _direct(zf, entry):
            Output(entry).copy_from(source, 0, digest.size)  # zipfile computes the CRC
            return
        assert zf.fp is not None
        fp = zf.fp
        fp.flush()
        start = fp.tell()
        done = 0
        while done < digest.size:
            count = copy_range(source.fileno(), fp.fileno(), done,
                               min(WRITEBACK_EVERY, digest.size - done), start + done)
            if count == 0:
                break
            done += count
            start_writeback(fp.fileno())
        fp.seek(start + done)
        Output(fp).copy_from(source, done, digest.size - done)  # what the kernel did not copy
        entry._file_size = digest.size  # type: ignore[attr-defined]
        entry._crc = digest.crc32  # type: ignore[attr-defined]


def write_wacz(
    db: Any,
    folder: Path,
    plan: ExportPlan,
    output: Path,
    *,
    force: bool = False,
    on_progress: ProgressCallback | None = None,
    title: str | None = None,
) -> ExportResult:
    """Write ``plan`` as a WACZ 1.1.1 package at ``output`` (atomically)."""
    started = time.monotonic()
    created = datetime.now(UTC).replace(microsecond=0)
    warc_name = f"linkkeeper-export-{created:%Y%m%d%H%M%S}.warc.gz"
    archive_path = f"archive/{warc_name}"
    sources = _SourceIndexes(folder)
    placed: list[Capture] = []
    problems: list[str] = []
    progress = Progress(plan, on_progress)
    with (
        tempfile.TemporaryDirectory(prefix="linkkeeper-wacz-") as scratch,
        atomic_output(output, force=force) as temp,
        zipfile.ZipFile(temp, "x", allowZip64=True) as zf,
    ):
        runs = _IndexRuns(Path(scratch))

        def index(placement: Placement) -> None:
            capture = placement.capture
            if placed and placed[-1].warc_file != capture.warc_file:
                runs.cut()
            placed.append(capture)
            source = sources.line_for(capture)
            if source is None:
                problems.append(f"{capture.url} at {capture.timestamp}: not indexable")
                return
            runs.add(_index_line(source, placement, placement.file or warc_name), capture.url)

        whole, rest = _whole_files(survey(folder, plan), warc_name)
        stats = AssemblyStats()
        resources = []
        for found, sums, name in whole:
            _whole_member(zf, found, sums, f"archive/{name}", created)
            found.add_to(stats)
            for offset, length, capture in found.pieces:
                if capture is not None:
                    index(Placement(capture, offset, length, name))
            progress.advance(found.captures)
            resources.append(_Resource(f"archive/{name}", sums.sha256, sums.size))
        stored_whole = {"linkkeeper-source-files-stored-whole": f"{len(whole)} (beside this "
                        "WARC in the package's archive/, under their own names)"}
        with _stored_member(zf, archive_path, created) as out:
            stats.add(assemble_warc(folder, plan, out, warc_name, sources=rest,
                                    on_record=index, progress=progress,
                                    extra_fields=stored_whole))
        resources.insert(0, _Resource(archive_path, out.sha256, out.position))
        with _stored_member(zf, "indexes/index.cdxj", created) as index_out:
            runs.write_merged(index_out)
        resources.append(_Resource("indexes/index.cdxj", index_out.sha256, index_out.position))
        pages = [p for p in pages_for(db, placed) if p["url"] in runs.urls]
        pages_text = "".join(
            json.dumps(entry, ensure_ascii=False) + "\n" for entry in (PAGES_HEADER, *pages)
        )
        resources.append(
            _write_bytes(zf, "pages/pages.jsonl", pages_text.encode(), deflate=True)
        )
        package = _datapackage(plan, resources, pages, created, title)
        package_bytes = json.dumps(package, indent=2, ensure_ascii=False).encode()
        _write_bytes(zf, "datapackage.json", package_bytes, deflate=True)
        digest = {"path": "datapackage.json",
                  "hash": "sha256:" + hashlib.sha256(package_bytes).hexdigest()}
        _write_bytes(zf, "datapackage-digest.json", json.dumps(digest, indent=2).encode(),
                     deflate=True)
    return ExportResult.of(output, "wacz", plan, stats, bytes_written=output.stat().st_size,
                           started=started, problems=problems, pages=len(pages))


def _datapackage(
    plan: ExportPlan,
    resources: list[_Resource],
    pages: list[dict[str, str]],
    created: datetime,
    title: str | None,
) -> dict[str, object]:
    stamp = rfc3339(created)
    package: dict[str, object] = {
        "profile": "data-package",
        "wacz_version": WACZ_VERSION,
        "title": title or "linkkeeper export",
        "description": f"Archived links selected by `linkkeeper export {plan.selection.describe()}`"
        f": {len(plan.selected)} captures, plus {len(plan.originals)} revisit originals and "
        f"{len(plan.redirect_hops)} redirect targets they need.",
        "created": stamp,
        "modified": stamp,
        "software": SOFTWARE,
        "resources": [r.as_json() for r in resources],
    }
    if pages:
        package["mainPageUrl"] = pages[0]["url"]
        package["mainPageDate"] = pages[0]["ts"]
    return package


# ---------------------------------------------------------------------------------------------
# Checking


def _read_stored(path: Path, info: zipfile.ZipInfo, offset: int, length: int) -> bytes:
    """Bytes of a stored ZIP member by offset, read straight from the package (as replay does)."""
    with open(path, "rb") as handle:
        handle.seek(info.header_offset)
        local = handle.read(30)
        if local[:4] != b"PK\x03\x04":
            raise ValueError(f"{info.filename}: bad local header")
        name_length = int.from_bytes(local[26:28], "little")
        extra_length = int.from_bytes(local[28:30], "little")
        handle.seek(info.header_offset + 30 + name_length + extra_length + offset)
        return handle.read(min(length, max(0, info.file_size - offset)))


def check_wacz(path: Path) -> list[str]:
    """Everything wrong with a WACZ package, by reading it back (empty list: it is sound).

    Checks the layout, that every file ``datapackage.json`` lists exists with its stated size
    and sha256, the digest of ``datapackage.json``, that every CDXJ line points at a readable
    record with its URL and payload digest, and that every page has an index entry.
    """
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as err:
        return [f"{path}: not a ZIP file ({err})"]
    with zf:
        names = set(zf.namelist())
        index_names = [n for n in names if n.startswith("indexes/") and n.endswith(".cdxj")]
        problems = _layout_problems(zf, names, index_names)
        if problems:
            return problems
        problems += _package_problems(zf, names)
        entries, index_problems = _index_problems(path, zf, names, index_names)
        problems += index_problems
        problems += _page_problems(zf, entries)
    return problems


def _layout_problems(zf: zipfile.ZipFile, names: set[str], index_names: list[str]) -> list[str]:
    """The files every package needs, and WARCs stored (not deflated) for ranged reads."""
    problems = [f"missing {n}" for n in ("datapackage.json", "pages/pages.jsonl") if n not in names]
    warcs = [n for n in names if n.startswith("archive/") and n.endswith((".warc", ".warc.gz"))]
    if not warcs:
        problems.append("no WARC in archive/")
    for name in warcs:
        if zf.getinfo(name).compress_type != zipfile.ZIP_STORED:
            problems.append(f"{name} is compressed in the ZIP (must be stored)")
    if not index_names:
        problems.append("no CDXJ index in indexes/")
    return problems


def _package_problems(zf: zipfile.ZipFile, names: set[str]) -> list[str]:
    """datapackage.json against the files: version, each listed file's size and sha256, the
    files it does not list, and datapackage-digest.json."""
    problems: list[str] = []
    package_bytes = zf.read("datapackage.json")
    package = json.loads(package_bytes)
    if package.get("wacz_version") != WACZ_VERSION:
        problems.append(f"wacz_version is {package.get('wacz_version')!r}")
    listed = set()
    for resource in package.get("resources", []):
        name = resource.get("path")
        listed.add(name)
        if name not in names:
            problems.append(f"datapackage.json lists {name}, which is not in the package")
            continue
        size, sha256 = _member_digest(zf, name)
        if size != resource.get("bytes"):
            problems.append(f"{name}: {size} bytes, datapackage.json says {resource.get('bytes')}")
        if f"sha256:{sha256}" != resource.get("hash"):
            problems.append(f"{name}: sha256 differs from datapackage.json")
    for name in sorted(names - listed - {"datapackage.json", "datapackage-digest.json"}):
        problems.append(f"{name} is not listed in datapackage.json")
    if "datapackage-digest.json" in names:
        stated = json.loads(zf.read("datapackage-digest.json")).get("hash")
        if stated != "sha256:" + hashlib.sha256(package_bytes).hexdigest():
            problems.append("datapackage-digest.json does not match datapackage.json")
    return problems


def _member_digest(zf: zipfile.ZipFile, name: str) -> tuple[int, str]:
    """(size, sha256) of a file of the package, read in pieces."""
    digest = hashlib.sha256()
    size = 0
    with zf.open(name) as member:
        while chunk := member.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _index_problems(
    path: Path, zf: zipfile.ZipFile, names: set[str], index_names: list[str]
) -> tuple[set[tuple[str, str]], list[str]]:
    """Every CDXJ line against the record it points at; the (url, timestamp) entries seen."""
    problems: list[str] = []
    entries: set[tuple[str, str]] = set()
    for index_name in index_names:
        for line in zf.read(index_name).decode().splitlines():
            if not line.strip():
                continue
            _urlkey, ts, rest = line.split(" ", 2)
            fields = json.loads(rest)
            entries.add((fields["url"], ts))
            warc = f"archive/{fields['filename']}"
            if warc not in names:
                problems.append(f"{index_name}: {fields['filename']} is not in archive/")
                continue
            raw = _read_stored(path, zf.getinfo(warc), int(fields["offset"]),
                               int(fields["length"]))
            try:
                record = parse_record(raw)
            except ValueError as err:
                problems.append(f"{index_name}: {fields['url']} {ts}: unreadable ({err})")
                continue
            payload_ok = record.record_type == "revisit" or (
                record.warc_header("WARC-Payload-Digest") == fields.get("digest")
            )
            if not (payload_ok and record.warc_header("WARC-Target-URI") == fields["url"]):
                problems.append(f"{index_name}: {fields['url']} {ts}: record does not match")
    return entries, problems


def _page_problems(zf: zipfile.ZipFile, entries: set[tuple[str, str]]) -> list[str]:
    """Pages without an index entry (replay tools would show them as missing)."""
    problems = []
    for line in zf.read("pages/pages.jsonl").decode().splitlines()[1:]:
        page = json.loads(line)
        ts = f"{parse_stored_date(page['ts']):%Y%m%d%H%M%S}"
        if (page["url"], ts) not in entries:
            problems.append(f"page {page['url']} {page['ts']}: no index entry")
    return problems
