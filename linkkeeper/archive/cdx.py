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

Every index line is written by cdxj-indexer (:func:`index_warc`), which reads the closed
file back; none is composed here.
"""

from __future__ import annotations

import fcntl
import heapq
import importlib
import json
import os
import sys
import threading
import types
from collections.abc import Iterator
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


class _ImportedOnUse(types.ModuleType):
    """Stands in for a module in one importer's namespace; imports the real one on first use."""

    def __getattr__(self, name: str) -> object:  # called only for attributes it lacks
        return getattr(importlib.import_module(self.__name__), name)


_AMF = "cdxj_indexer.amf"


def _amf_stand_in() -> types.ModuleType:
    """``cdxj_indexer.amf`` whose one function imports the real module (and pyamf) on call."""
    module = types.ModuleType(_AMF)

    def amf_parse(*args: object, **kwargs: object) -> object:
        if sys.modules.get(_AMF) is module:
            del sys.modules[_AMF]
        return importlib.import_module(_AMF).amf_parse(*args, **kwargs)

    module.amf_parse = amf_parse  # type: ignore[attr-defined]
    return module


def cdxj_indexer() -> type:
    """``cdxj_indexer.CDXJIndexer``, imported without paying for tldextract and pyamf up front.

    cdxj-indexer imports surt, whose ``handyurl`` imports tldextract (and through it
    requests and urllib3: ~0.1 s) at module level, yet only surt's public-suffix helpers use
    it, never ``surt.surt``, the one cdxj-indexer calls. So while they are imported,
    ``sys.modules`` lends surt a stand-in that imports the real tldextract the first time
    surt touches it. Likewise its ``postquery`` imports ``amf`` and with it pyamf (and
    pkg_resources: ~0.15 s, the larger half of the import) for AMF request bodies, which
    only its POST-appending mode reads and we never ask for: it is lent an ``amf`` whose
    ``amf_parse`` imports the real one when called. The stand-ins are removed right after,
    so any other import gets the real modules as usual.
    """
    lent = {
        name: stand_in
        for name, stand_in in (("tldextract", _ImportedOnUse("tldextract")), (_AMF, None))
        if name not in sys.modules
    }
    for name in lent:
        lent[name] = sys.modules[name] = lent[name] or _amf_stand_in()
    try:
        from cdxj_indexer import CDXJIndexer
    finally:
        for name, stand_in in lent.items():
            if sys.modules.get(name) is stand_in:
                del sys.modules[name]
    return CDXJIndexer


def index_warc(folder: Path, warc_file: str) -> Path:
    """Write the sorted per-file CDXJ index of one closed WARC; returns its path.

    Written to a temporary name and renamed, so a reader never sees half an index. The
    lines are cdxj-indexer's own: it reads the whole file back (cheap for bodies that did
    not shrink: they are stored, and inflating stored blocks is a copy).
    """
    CDXJIndexer = cdxj_indexer()

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
