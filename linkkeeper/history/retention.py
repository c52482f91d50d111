"""History retention: forget the per-URL checks of old runs, keep what later answers need.

A nightly full run over 1.3 M links adds ~490 MB of `checks` a night (BENCHMARKS.md,
"History growth"). `prune_history` deletes the checks of runs older than a window (the
newest N complete runs and/or the last D days), but never one a later question reads:

* a URL's last check before the kept runs when the oldest kept run did not check it
  ("carry-over"): a kept run's "what changed" asks for a link's status *as of* its
  baseline, and `link_state.last_run` points at a link's last check wherever it is;
* the check of a run in which the URL was captured: `linkkeeper fix` reads it to tell a
  real page from a soft 404 among our captures;
* every check of the runs kept, and of the baseline run the oldest kept run compares with.

Run rows (their counts), link states, host failures and captures stay. The plan rows of
pruned runs go (they only serve resuming an unfinished run). Deleted pages are reused by
the next nights, so the file stops growing; `vacuum=True` also gives them back to the
file system (needs free space about the database's size). The boundary is remembered
(`retention` table), so a report asked to compare with a pruned run says so instead of
answering from partial data.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlite_utils

from linkkeeper.clock import iso, utcnow
from linkkeeper.db import Transaction, database_file, exclusive
from linkkeeper.history.runs import previous_run_id, refuse_if_running

RETENTION_TABLE = "retention"
CHUNK = 20_000  # checks examined per transaction: bounded memory and WAL growth


class RetentionError(Exception):
    """The retention asked for cannot be applied (one line for the user)."""


@dataclass(frozen=True)
class PruneResult:
    """What `prune_history` did (or, with ``dry_run``, would do)."""

    runs: tuple[int, ...]  # runs whose checks were pruned
    checks_deleted: int
    checks_kept: int  # checks of pruned runs kept (carry-overs, captured runs)
    plan_rows_deleted: int
    bytes_before: int
    bytes_after: int
    free_bytes: int  # pages inside the file free for the next nights
    dry_run: bool
    vacuumed: bool


def pruned_through(db: sqlite_utils.Database) -> int | None:
    """The newest run whose checks were pruned, None when none ever were."""
    if not db[RETENTION_TABLE].exists():
        return None
    row = db.execute(f"SELECT pruned_through FROM [{RETENTION_TABLE}] WHERE id=1").fetchone()
    return int(row[0]) if row and row[0] is not None else None


def prune_history(
    db: sqlite_utils.Database,
    *,
    keep_runs: int | None = None,
    keep_days: float | None = None,
    dry_run: bool = False,
    vacuum: bool = False,
    now: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> PruneResult:
    """Delete the checks of the runs outside the window (see the module docstring).

    A run is kept when it is one of the newest ``keep_runs`` complete runs or started in
    the last ``keep_days`` days (either keeps it). ``progress(run_id, checks_deleted)``
    is told after every chunk."""
    if keep_runs is None and keep_days is None:
        raise RetentionError("say what to keep: --keep-runs N and/or --keep-days D")
    if keep_runs is not None and keep_runs < 1:
        raise RetentionError(f"--keep-runs {keep_runs}: keep at least the newest run (1)")
    if keep_days is not None and not keep_days > 0:
        raise RetentionError(f"--keep-days {keep_days}: give a number of days above 0")
    with exclusive(db, doing="prune"):
        refuse_if_running(db)
        boundary = _boundary(db, keep_runs, keep_days, now or utcnow())
        runs = _runs_through(db, boundary)
        before = _file_bytes(db)
        if dry_run or not runs:
            deleted, kept = _count(db, runs, boundary)
            plan = _plan_rows(db, runs)
            return PruneResult(tuple(runs), deleted, kept, plan, before, before,
                               _free_bytes(db), dry_run, False)
        _remember(db, boundary, 0)  # first: an interrupted prune has pruned these runs too
        deleted = kept = plan = 0
        for run_id in runs:
            gone, stay = _prune_run(db, run_id, boundary, progress)
            deleted, kept = deleted + gone, kept + stay
            plan += _drop_plan(db, run_id)
        _remember(db, boundary, deleted)
        if vacuum:
            _vacuum(db)
        return PruneResult(tuple(runs), deleted, kept, plan, before, _file_bytes(db),
                           _free_bytes(db), False, vacuum)


def _boundary(db: sqlite_utils.Database, keep_runs: int | None, keep_days: float | None,
              now: datetime) -> int:
    """The newest run to prune (0: none): below the oldest kept run and its baseline."""
    first_kept: list[int] = []
    newest = int(db.execute("SELECT max(id) FROM runs").fetchone()[0] or 0)
    if keep_runs is not None:
        complete = db.execute("SELECT count(*) FROM runs WHERE state='complete'").fetchone()[0]
        if keep_runs > complete:  # (counted first: LIMIT cannot take any number asked for)
            return 0  # fewer complete runs than asked to keep
        rows = db.execute("SELECT id FROM runs WHERE state='complete' ORDER BY id DESC LIMIT ?",
                          [keep_runs]).fetchall()
        first_kept.append(int(rows[-1][0]))
    if keep_days is not None:
        try:
            since = iso(now - timedelta(days=keep_days))
        except OverflowError:  # a window reaching before year 1 (or infinite) keeps every run
            return 0
        row = db.execute("SELECT min(id) FROM runs WHERE started_at >= ?", [since]).fetchone()
        first_kept.append(int(row[0]) if row[0] is not None else newest + 1)
    # the run a report shows by default (the newest complete one) is always kept
    latest = db.execute("SELECT max(id) FROM runs WHERE state='complete'").fetchone()[0]
    oldest_kept = min([*first_kept, int(latest) if latest is not None else newest])
    # the oldest kept run reports "what changed" against its baseline: keep that run too
    anchor = previous_run_id(db, oldest_kept)
    boundary = (anchor if anchor is not None else oldest_kept) - 1
    # only the newest run can be resumed, and it is newer than the newest complete one (kept);
    # an older 'interrupted' run (a merged database has them) never comes back: prunable
    running = db.execute("SELECT min(id) FROM runs WHERE state = 'running'").fetchone()[0]
    if running is not None:
        boundary = min(boundary, int(running) - 1)
    return max(boundary, 0)


def _runs_through(db: sqlite_utils.Database, boundary: int) -> list[int]:
    """Every run up to ``boundary``: a run pruned before may lose more checks now, when
    a wider window puts a later check of their URLs among the pruned runs too."""
    return [int(r[0]) for r in db.execute("SELECT id FROM runs WHERE id <= ? ORDER BY id",
                                           [boundary])]


# A check of a pruned run goes when its URL has a later check no later than the oldest
# kept run (boundary + 1): every "status as of run X" question of the kept runs (X is at
# least that run) finds that later check first. It stays when the URL was captured in it.
_DROP = (
    "EXISTS (SELECT 1 FROM checks n WHERE n.url = c.url AND n.run_id > c.run_id"
    " AND n.run_id <= :boundary + 1)"
    " AND NOT EXISTS (SELECT 1 FROM snapshots s WHERE s.url = c.url AND s.run_id = c.run_id)"
)


def _prune_run(db: sqlite_utils.Database, run_id: int, boundary: int,
               progress: Callable[[int, int], None] | None) -> tuple[int, int]:
    """Delete one run's droppable checks, a chunk of URLs per transaction."""
    after, deleted, kept = "", 0, 0
    while True:
        with Transaction(db) as conn:
            rows = conn.execute(
                f"SELECT c.url, c.id, {_DROP} FROM checks c WHERE c.run_id = :run"
                " AND c.url > :after ORDER BY c.url LIMIT :chunk",
                {"run": run_id, "after": after, "boundary": boundary, "chunk": CHUNK},
            ).fetchall()
            if not rows:
                return deleted, kept
            drop = [(row[1],) for row in rows if row[2]]
            conn.executemany("DELETE FROM checks WHERE id=?", drop)
        after = rows[-1][0]
        deleted, kept = deleted + len(drop), kept + len(rows) - len(drop)
        if progress is not None:
            progress(run_id, deleted)


def _count(db: sqlite_utils.Database, runs: list[int], boundary: int) -> tuple[int, int]:
    """(checks that would go, checks of those runs that would stay)."""
    deleted = total = 0
    for run_id in runs:
        row = db.execute(
            f"SELECT count(*), coalesce(sum({_DROP}), 0) FROM checks c WHERE c.run_id = :run",
            {"run": run_id, "boundary": boundary},
        ).fetchone()
        total, deleted = total + row[0], deleted + row[1]
    return deleted, total - deleted


def _plan_rows(db: sqlite_utils.Database, runs: list[int]) -> int:
    return sum(db.execute("SELECT count(*) FROM plan WHERE run_id=?", [r]).fetchone()[0]
               for r in runs)


def _drop_plan(db: sqlite_utils.Database, run_id: int) -> int:
    """A finished run's plan, deleted a slice of its sequence numbers at a time."""
    deleted = 0
    while True:
        with Transaction(db) as conn:
            cursor = conn.execute(
                "DELETE FROM plan WHERE run_id=? AND seq IN"
                " (SELECT seq FROM plan WHERE run_id=? ORDER BY seq LIMIT ?)",
                [run_id, run_id, CHUNK * 5],
            )
        if cursor.rowcount <= 0:
            return deleted
        deleted += cursor.rowcount


def _remember(db: sqlite_utils.Database, boundary: int, deleted: int) -> None:
    with Transaction(db) as conn:
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS [{RETENTION_TABLE}] (id INTEGER PRIMARY KEY"
            " CHECK (id = 1), pruned_through INTEGER NOT NULL, pruned_at TEXT NOT NULL,"
            " checks_deleted INTEGER NOT NULL)")
        conn.execute(
            f"INSERT INTO [{RETENTION_TABLE}] (id, pruned_through, pruned_at, checks_deleted)"
            " VALUES (1, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET pruned_through ="
            " max(pruned_through, excluded.pruned_through), pruned_at = excluded.pruned_at,"
            " checks_deleted = checks_deleted + excluded.checks_deleted",
            [boundary, iso(utcnow()), deleted])


def _vacuum(db: sqlite_utils.Database) -> None:
    """Give the free pages back: VACUUM writes a copy, so it needs about the file's size."""
    file = database_file(db)
    if file is not None:
        need = _file_bytes(db) - _free_bytes(db)
        free = shutil.disk_usage(os.path.dirname(os.path.abspath(file))).free
        if free < need:
            raise RetentionError(
                f"{file}: VACUUM needs ~{need / 1e6:,.0f} MB free beside the database and"
                f" the disk has {free / 1e6:,.0f} MB; the checks were pruned (their space is"
                " reused by the next nights), run again with --vacuum when there is room")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.conn.execute("VACUUM")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _file_bytes(db: sqlite_utils.Database) -> int:
    file = database_file(db)
    if file is None:
        return 0
    return sum(os.path.getsize(f) for f in (file, file + "-wal") if os.path.exists(f))


def _free_bytes(db: sqlite_utils.Database) -> int:
    page = db.execute("PRAGMA page_size").fetchone()[0]
    return int(db.execute("PRAGMA freelist_count").fetchone()[0]) * int(page)
