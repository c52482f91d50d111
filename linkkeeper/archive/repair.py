"""Crash repair of a WARC folder: what a killed writer left becomes valid, closed files.

Each ``*.warc.gz.open`` not locked by a live writer is cut after its last complete record (a
gzip member that inflates to exactly one record whose block digest matches), renamed to its
closed name and indexed; a file with no complete record is removed. Closed WARCs are never
modified; a closed one without its index gets indexed. Each file closed here also gets its
digest sidecar (archive/digests.py), by reading it. `WarcStore` runs it when it opens a
folder, so every run starts from whole files.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import BinaryIO

from linkkeeper.archive.cdx import WARC_SUFFIX, index_path_for, index_warc, rebuild_folder_index
from linkkeeper.archive.digests import record_closed_file
from linkkeeper.archive.records import OPEN_SUFFIX, complete_record_end


def repair_folder(folder: Path, *, skip: Path | None = None) -> list[str]:
    """Repair and index what needs it in `folder` (not `skip`, the file being written now)."""
    messages: list[str] = []
    changed = False
    for path in sorted(folder.rglob("*" + WARC_SUFFIX + OPEN_SUFFIX)):
        if skip is not None and path == skip:
            continue
        message = _repair_open_file(folder, path)
        if message:
            messages.append(message)
            changed = True
    for warc in sorted(folder.rglob("*" + WARC_SUFFIX)):
        if not index_path_for(warc).exists():
            rel = warc.relative_to(folder).as_posix()
            record_closed_file(warc)  # closed, but not indexed nor digested: a crash at close
            index_warc(folder, rel)
            messages.append(f"indexed {rel} (its index was missing)")
            changed = True
    if changed:
        rebuild_folder_index(folder)
    return messages


def fsync_dir(path: Path) -> None:
    """Make a rename in `path` durable (the directory entry itself is synced)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _repair_open_file(folder: Path, path: Path) -> str | None:
    rel_open = path.relative_to(folder).as_posix()
    final = path.with_name(path.name[: -len(OPEN_SUFFIX)])
    rel = final.relative_to(folder).as_posix()
    with open(path, "r+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None  # another process is writing it right now
        if not path.exists():  # closed by its writer while we waited
            return None
        if final.exists():
            return f"left {rel_open} alone: {rel} already exists"
        size = os.fstat(handle.fileno()).st_size
        good_end, records = _complete_prefix(handle)
        if records == 0:
            os.unlink(path)
            return f"removed {rel_open}: no complete record in {size} bytes"
        if good_end < size:
            handle.truncate(good_end)
        handle.flush()
        os.fsync(handle.fileno())
        os.rename(path, final)
        fsync_dir(final.parent)
    record_closed_file(final)
    index_warc(folder, rel)
    cut = f", cut {size - good_end} bytes of an incomplete record" if good_end < size else ""
    return f"repaired {rel_open}: kept {records} records ({good_end} bytes){cut}; closed as {rel}"


def _complete_prefix(handle: BinaryIO) -> tuple[int, int]:
    """(end offset of the last complete record, number of complete records) of a WARC file."""
    good_end = records = 0
    while (end := complete_record_end(handle, good_end)) is not None:
        good_end = end
        records += 1
    return good_end, records
