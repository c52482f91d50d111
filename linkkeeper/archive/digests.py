"""Whole-file digests of closed WARCs (sha256, CRC-32, size), kept beside them for exports.

A WACZ lists the sha256 of every file it holds and its ZIP needs each member's CRC-32. For a
WARC that an export takes whole, both are known from when the file was written: the writer
digests every byte it puts in the file (:class:`RunningDigest`, rolled back with the file when
a failed write is cut off) and, once the file is closed, writes them to a sidecar
(``x.warc.gz`` -> ``x.digest.json``, :func:`sidecar_for`). So an export copies such a file in
the kernel and never reads it in Python.

A sidecar is trusted only while the file's size and modification time are those it records
(:func:`trusted_digest`): a copied (``cp`` without ``-p``), touched, truncated or appended file
is digested again by whoever needs it, never described by a stale sidecar. Like the WARC and
its index, a sidecar is written once, when the file is closed (or repaired), and never changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:  # zlib-ng's CRC-32 (SIMD, ~8 GB/s here) against zlib's (~0.5 GB/s): same values
    from zlib_ng.zlib_ng import crc32
except ImportError:  # pragma: no cover - the dependency is declared; stay correct without it
    from zlib import crc32

DIGEST_SUFFIX = ".digest.json"
_WARC_SUFFIX = ".warc.gz"
_READ_PIECE = 8 << 20
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True, slots=True)
class FileDigest:
    """What a closed WARC's bytes were: size, sha256 (hex) and CRC-32 of the whole file."""

    size: int
    sha256: str
    crc32: int
    mtime_ns: int = 0  # the file's modification time when digested (its identity check)

    def as_json(self) -> dict[str, Any]:
        return {"bytes": self.size, "sha256": self.sha256, "crc32": self.crc32,
                "mtime_ns": self.mtime_ns}


def sidecar_for(warc_path: Path) -> Path:
    """The digest sidecar of a WARC (``x.warc.gz`` -> ``x.digest.json``)."""
    name = warc_path.name
    stem = name[: -len(_WARC_SUFFIX)] if name.endswith(_WARC_SUFFIX) else name
    return warc_path.with_name(stem + DIGEST_SUFFIX)


class RunningDigest:
    """sha256 and CRC-32 of the bytes written so far, with a mark to roll back to.

    The writer marks before each capture and rolls back when a failed write is cut off, so
    the digest always describes the bytes the file keeps.
    """

    def __init__(self) -> None:
        self._sha = hashlib.sha256()
        self._crc = 0
        self.size = 0
        self._mark: tuple[Any, int, int] | None = None

    def update(self, data: bytes | memoryview) -> None:
        self._sha.update(data)
        self._crc = crc32(data, self._crc)
        self.size += len(data)

    def mark(self) -> None:
        self._mark = (self._sha.copy(), self._crc, self.size)

    def rollback(self) -> None:
        assert self._mark is not None
        sha, self._crc, self.size = self._mark
        self._sha = sha.copy()

    def result(self, mtime_ns: int) -> FileDigest:
        return FileDigest(self.size, self._sha.hexdigest(), self._crc, mtime_ns)


class DigestingWriter:
    """A file's ``write`` that also feeds a :class:`RunningDigest` (what the writer's gzip
    sink writes into)."""

    def __init__(self, handle: Any, digest: RunningDigest) -> None:
        self._handle = handle
        self.digest = digest

    def write(self, data: bytes) -> int:
        written = self._handle.write(data)
        self.digest.update(data)
        return written


def digest_file(path: Path) -> FileDigest:
    """Digest a file by reading it (files closed by crash repair; stale or missing sidecars)."""
    running = RunningDigest()
    with open(path, "rb") as handle:
        mtime_ns = os.fstat(handle.fileno()).st_mtime_ns
        while piece := handle.read(_READ_PIECE):
            running.update(piece)
    return running.result(mtime_ns)


def write_sidecar(warc_path: Path, digest: FileDigest) -> Path:
    """Write the sidecar of a closed WARC (temporary name, then renamed: never half a file)."""
    target = sidecar_for(warc_path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(digest.as_json()) + "\n", encoding="utf-8")
    os.replace(tmp, target)
    return target


def record_closed_file(warc_path: Path, running: RunningDigest | None = None) -> FileDigest:
    """Write the sidecar of a file just closed: from what the writer digested, else by reading.

    The writer's digest is used only if it covers the whole file as it is on disk.
    """
    stat = os.stat(warc_path)
    if running is not None and running.size == stat.st_size:
        digest = running.result(stat.st_mtime_ns)
    else:
        digest = digest_file(warc_path)
    write_sidecar(warc_path, digest)
    return digest


def trusted_digest(warc_path: Path) -> FileDigest | None:
    """The sidecar's digest if it still describes the file (same size and modification time)."""
    try:
        stat = os.stat(warc_path)
        data = json.loads(sidecar_for(warc_path).read_text(encoding="utf-8"))
        digest = FileDigest(
            size=int(data["bytes"]),
            sha256=str(data["sha256"]),
            crc32=int(data["crc32"]),
            mtime_ns=int(data["mtime_ns"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if len(digest.sha256) != 64 or set(digest.sha256) - _HEX or not 0 <= digest.crc32 < 1 << 32:
        return None
    if (digest.size, digest.mtime_ns) != (stat.st_size, stat.st_mtime_ns):
        return None
    return digest
