"""The build's one walk over the links (counted by tally.py, rows spilled by table.py), on
two cores when the history is big.

SQLite steps a query without the GIL, but a thread reading rows still needs the GIL for
every row, and the counting is Python: a second *process* is what gives a second core.
Past `SPLIT_LINKS` links, the links are cut at the median URL: a worker process walks the
upper half while this one walks the lower, each with its own connection. The halves are
then joined as one walk would have left them: the worker's tally is added to this one
(`Tally.merge`: its links all come later in URL order, so every list keeps the order one
walk gives) and its table rows are renumbered into this table (`TableSpill.absorb`).
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from linkkeeper.db import connect
from linkkeeper.report.links import StreamSpec, counted_links
from linkkeeper.report.table import SpillPart, TableSpill
from linkkeeper.report.tally import Tally

SPLIT_LINKS = 200_000  # below this many links one process walks them all: start-up costs


@dataclass
class Walked:
    tally: Tally
    rows: TableSpill | None  # the links table's rows (None: not asked for)
    shown: int  # links the lists show (all, or with --since the changed ones)


def walk(db: sqlite_utils.Database, spec: StreamSpec, *, since: str | None,
         table: bool) -> Walked:
    """Count every link (and spill the table's rows with `table`); see the module doc."""
    middle = _middle(db, SPLIT_LINKS)
    if middle is None:
        rows = TableSpill() if table else None
        tally, shown = _walk(db, spec, since, rows)
        return Walked(tally, rows, shown)
    context = multiprocessing.get_context(
        "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        upper = pool.submit(_walk_upper, _path(db), spec, middle, since, table)
        rows = TableSpill() if table else None
        try:
            tally, shown = _walk(db, spec, since, rows, hi=middle)
            later, later_shown, part = upper.result()
        except BaseException:
            if rows is not None:
                rows.close()
            raise
    tally.merge(later)
    if rows is not None and part is not None:
        rows.absorb(part)
    return Walked(tally, rows, shown + later_shown)


def _middle(db: sqlite_utils.Database, split_links: int) -> str | None:
    """The median URL when there are links enough to split and a file a second process
    can open; None to walk in one process."""
    total = db.execute("SELECT count(*) FROM links").fetchone()[0]
    if total < max(split_links, 2) or not _path(db):
        return None
    row = db.execute("SELECT url FROM links ORDER BY url LIMIT 1 OFFSET ?",
                     [total // 2]).fetchone()
    return row[0] if row else None


def _path(db: sqlite_utils.Database) -> str:
    """The database's file ("" in memory)."""
    for _, name, path in db.execute("PRAGMA database_list"):
        if name == "main":
            return str(path or "")
    return ""


def _walk(db: sqlite_utils.Database, spec: StreamSpec, since: str | None,
          rows: TableSpill | None, lo: str | None = None,
          hi: str | None = None) -> tuple[Tally, int]:
    tally = Tally()
    shown_count = 0
    for link in counted_links(db, spec, lo, hi):
        shown = since is None or link.change is not None
        shown_count += shown
        tally.add(link, shown=shown)
        if rows is not None and shown:
            rows.add(link)
    return tally, shown_count


def _walk_upper(path: str, spec: StreamSpec, lo: str, since: str | None,
                table: bool) -> tuple[Tally, int, SpillPart | None]:
    """In the worker: the links from `lo` on, their rows left in files for the parent."""
    db = connect(Path(path))
    try:
        rows = TableSpill(apart=True) if table else None
        tally, shown = _walk(db, spec, since, rows, lo=lo)
        return tally, shown, rows.part() if rows is not None else None
    finally:
        db.conn.close()
