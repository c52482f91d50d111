"""CDXJ indexes of the WARC folder, so replay tools can use it as it is.

Two levels, both written with cdxj-indexer (the indexer pywb itself uses):

* a **per-file index**, sibling of each closed WARC (``x.warc.gz`` -> ``x.cdxj``),
  written once when the file is closed and never changed afterwards, like the WARC;
* a **folder index**, ``<folder>/index.cdxj``: a sorted merge of every per-file index,
  rebuilt (atomically, under a lock) each time a file is closed or repaired.

In both, the ``filename`` field is the WARC's path relative to the folder
(``2026/11/linkkeeper-20261126101500-00001.warc.gz``), so pywb resolves it against
``archive_paths: <folder>/``. Why a folder index rather than pywb's own auto-indexing:
pywb only auto-indexes ``collections/<coll>/archive`` (flat, its own layout, on a timer),
and its directory index source does not descend into ``YYYY/MM``; one sorted file that
pywb binary-searches works with a two-line collection config (:func:`pywb_collection_config`)
and is also what a WACZ export needs. The per-file indexes make the folder index cheap to
rebuild (a merge of sorted files, no WARC re-reading) and survive copying single WARCs.

The writer does not re-read its own files: :class:`~linkkeeper.warc.WarcStore` makes each
record's line with :func:`cdxj_line` as it writes the record (it knows the offset, length and
headers already) and :func:`write_index` sorts them into the per-file index at close. The
line is built the way cdxj-indexer builds it, with the same helpers (``surt.surt`` for the
key, warcio's timestamp, the same JSON field order), and the tests compare the two byte for
byte. Files the writer did not finish (repaired after a crash, or exported), or whose lines
grew too many to keep in memory, are indexed by cdxj-indexer itself with :func:`index_warc`.
"""

from __future__ import annotations

import fcntl
import heapq
import importlib
import json
import os
import re
import sys
import threading
import types
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

FOLDER_INDEX_NAME = "index.cdxj"
WARC_SUFFIX = ".warc.gz"
INDEX_SUFFIX = ".cdxj"
_LOCK_NAME = ".index.lock"


def _temp_name(target: Path) -> Path:
    """A private temporary sibling: concurrent writers of the same index never collide."""
    return target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")


def index_path_for(warc_path: Path) -> Path:
    """The per-file index that sits beside a closed WARC (``x.warc.gz`` -> ``x.cdxj``)."""
    name = warc_path.name
    stem = name[: -len(WARC_SUFFIX)] if name.endswith(WARC_SUFFIX) else name
    return warc_path.with_name(stem + INDEX_SUFFIX)


# cdxj-indexer's "mime": the media type up to the first ';' or white space (its RE_SPACE)
_MIME_END = re.compile(r"[;\s]")
_surt: Callable[[str], str] | None = None


class _ImportedOnUse(types.ModuleType):
    """Stands in for a module in one importer's namespace; imports the real one on first use."""

    def __getattr__(self, name: str) -> object:  # called only for attributes it lacks
        return getattr(importlib.import_module(self.__name__), name)


def _surt_function() -> Callable[[str], str]:
    """``surt.surt``, imported without paying for tldextract up front.

    surt's ``handyurl`` imports tldextract (and through it requests and urllib3: ~0.1 s)
    at module level, yet only its public-suffix helpers use it, never ``surt.surt``. So
    while surt is imported, ``sys.modules`` lends it a stand-in that imports the real
    tldextract the first time surt touches it; the stand-in is removed right after, so any
    other ``import tldextract`` gets the real module as usual.
    """
    global _surt
    if _surt is None:
        lent = "tldextract" not in sys.modules
        if lent:
            sys.modules["tldextract"] = _ImportedOnUse("tldextract")
        try:
            import surt
        finally:
            if lent and isinstance(sys.modules.get("tldextract"), _ImportedOnUse):
                del sys.modules["tldextract"]
        _surt = surt.surt
    return _surt


def url_key(url: str) -> str:
    """The SURT sort key of a URL, as cdxj-indexer computes it (the URL itself on failure)."""
    try:
        return _surt_function()(url)
    except Exception:  # cdxj-indexer falls back the same way
        return url


def cdxj_line(
    *,
    url: str,
    warc_date: str,
    record_type: str,
    http_status: int | None,
    content_type: str | None,
    payload_digest: str | None,
    length: int,
    offset: int,
    filename: str,
) -> str:
    """The CDXJ line cdxj-indexer writes for a response or revisit record (newline included).

    `content_type` is the record's HTTP Content-Type value as warcio reads it back from the
    stored head (first such header, stripped; bytes that are not UTF-8 read as Latin-1).
    """
    from warcio.timeutils import iso_date_to_timestamp

    index: dict[str, str] = {"url": url}
    if record_type == "revisit":
        index["mime"] = "warc/revisit"
    elif content_type is not None:
        index["mime"] = _MIME_END.split(content_type, 1)[0].strip() if content_type else ""
    if http_status is not None:
        index["status"] = str(http_status)
    if payload_digest:
        index["digest"] = payload_digest
    index["length"] = str(length)
    index["offset"] = str(offset)
    index["filename"] = filename
    return f"{url_key(url)} {iso_date_to_timestamp(warc_date)} {json.dumps(index)}\n"


def write_index(warc_path: Path, lines: Iterable[str]) -> Path:
    """Write the per-file index of a closed WARC from its records' lines (sorted, atomic)."""
    target = index_path_for(warc_path)
    tmp = _temp_name(target)
    with open(tmp, "w", encoding="utf-8") as out:
        out.writelines(sorted(lines))
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, target)
    return target


def index_warc(folder: Path, warc_file: str) -> Path:
    """Write the sorted per-file CDXJ index of one closed WARC; returns its path.

    Written to a temporary name and renamed, so a reader never sees half an index. For
    files the writer did not finish itself (crash repair, exports): it reads the whole file.
    """
    from cdxj_indexer import CDXJIndexer  # pkg_resources/tldextract: 0.13 s, only when closing

    warc_path = folder / warc_file
    target = index_path_for(warc_path)
    tmp = _temp_name(target)
    with open(tmp, "w", encoding="utf-8") as out:
        CDXJIndexer(
            output=out, inputs=[str(warc_path)], filename=warc_file, sort=True
        ).process_all()
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, target)
    return target


def iter_file_indexes(folder: Path) -> Iterator[Path]:
    """Every per-file index under the folder, in name order (the folder index excluded)."""
    for path in sorted(folder.rglob("*" + INDEX_SUFFIX)):
        if path.parent == folder and path.name == FOLDER_INDEX_NAME:
            continue
        yield path


@contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """Serialise folder-index rebuilds between processes sharing the folder."""
    with open(folder / _LOCK_NAME, "a+b") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def rebuild_folder_index(folder: Path) -> Path:
    """Merge all per-file indexes into ``<folder>/index.cdxj`` (sorted, atomic replace)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / FOLDER_INDEX_NAME
    tmp = _temp_name(target)
    with _folder_lock(folder), ExitStack() as stack:
        sources = [
            stack.enter_context(open(path, encoding="utf-8")) for path in iter_file_indexes(folder)
        ]
        with open(tmp, "w", encoding="utf-8") as out:
            for line in heapq.merge(*sources):
                if line.strip() and not line.startswith("!"):
                    out.write(line if line.endswith("\n") else line + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    return target


def pywb_collection_config(folder: Path, collection: str = "linkkeeper") -> str:
    """A pywb ``config.yaml`` that replays the WARC folder as it is, under ``/<collection>/``."""
    root = folder.resolve()
    # JSON strings are valid YAML scalars: safe quoting for any path.
    return (
        "collections:\n"
        f"  {json.dumps(collection)}:\n"
        f"    index_paths: {json.dumps(str(root / FOLDER_INDEX_NAME))}\n"
        f"    archive_paths: {json.dumps(str(root) + '/')}\n"
    )
