"""Stage 3: runs — what a run sets out to check, and resuming it where it stopped.

A run plans its URL list up front (stored in `plan`), so a run killed halfway
is resumed with exactly the URLs it had left. What each check did to its link
is decided by state.py and written by recorder.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import zlib
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlite_utils

from linkkeeper import __version__
from linkkeeper.clock import iso, parse_iso, utcnow
from linkkeeper.db import Transaction, pragmas
from linkkeeper.procs import pid_alive
from linkkeeper.shards import Shard
from linkkeeper.vocab import FAILURES, State, Status


class RunBusy(Exception):
    """Another live process is running a check on this database."""


@dataclass
class Run:
    id: int
    resumed: bool
    started_at: str
    planned: int
    abandoned: int | None = None  # the unfinished run --new-run gave up (to settle: recorder.py)


def _run_alive(pid: int | None, host: str | None) -> bool:
    """A run's process still lives: on this machine, not this process, and answering."""
    if not pid or host != socket.gethostname() or pid == os.getpid():
        return False
    return pid_alive(pid)


def latest_unfinished_run(db: sqlite_utils.Database) -> dict[str, Any] | None:
    """The newest run, if it did not finish (a run given up by --new-run never comes back)."""
    row = db.execute("SELECT id, pid, host, state FROM runs ORDER BY id DESC LIMIT 1").fetchone()
    if row is None or row[3] in ("complete", "abandoned"):
        return None
    return dict(zip(("id", "pid", "host", "state"), row, strict=True))


def refuse_if_running(db: sqlite_utils.Database) -> None:
    """`RunBusy` when the newest run is unfinished and its process still lives."""
    unfinished = latest_unfinished_run(db)
    if unfinished and _run_alive(unfinished["pid"], unfinished["host"]):
        raise RunBusy(f"run {unfinished['id']} is still running (pid {unfinished['pid']})")


def start_run(
    db: sqlite_utils.Database,
    urls: Sequence[str] | Plan,
    *,
    options: dict[str, Any],
    command: str = "check",
    new_run: bool = False,
    insecure: bool = False,
) -> Run:
    """Resume the last unfinished run, or start a new one planning `urls`.

    `urls` is a list, or a `Plan` that SQLite orders and stores itself (a million URLs
    never held in Python). The look for a live run and the claim are one write
    transaction, so of two `check`s started together exactly one gets the run and the
    other `RunBusy`."""
    now = iso(utcnow())
    sorting = sorting_on_disk(db) if isinstance(urls, Plan) else contextlib.nullcontext()
    with sorting, Transaction(db) as conn:
        unfinished = latest_unfinished_run(db)
        if unfinished and _run_alive(unfinished["pid"], unfinished["host"]):
            raise RunBusy(f"run {unfinished['id']} is still running (pid {unfinished['pid']})")
        if unfinished and not new_run:
            run_id = unfinished["id"]
            conn.execute(
                "UPDATE runs SET state='running', pid=?, host=? WHERE id=?",
                (os.getpid(), socket.gethostname(), run_id),
            )
            planned = conn.execute("SELECT count(*) FROM plan WHERE run_id=?", [run_id]
                                   ).fetchone()[0]
            started = conn.execute("SELECT started_at FROM runs WHERE id=?", [run_id]
                                   ).fetchone()[0]
            return Run(run_id, True, started, planned)
        if unfinished:  # given up by --new-run: keep its rows, never resume it
            conn.execute("UPDATE runs SET state='abandoned' WHERE id=?", (unfinished["id"],))
        cur = conn.execute(
            "INSERT INTO runs (started_at, state, command, software, options, insecure, total,"
            " done, requests, pid, host) VALUES (?, 'running', ?, ?, ?, ?, ?, 0, 0, ?, ?)",
            (
                now,
                command,
                f"linkkeeper/{__version__}",
                json.dumps(options, default=str, sort_keys=True),
                int(insecure),
                0 if isinstance(urls, Plan) else len(urls),
                os.getpid(),
                socket.gethostname(),
            ),
        )
        run_id = int(cur.lastrowid or 0)
        if isinstance(urls, Plan):
            planned = urls.store(db, conn, run_id)
            conn.execute("UPDATE runs SET total=? WHERE id=?", (planned, run_id))
        else:
            conn.executemany(
                "INSERT INTO plan (run_id, seq, url) VALUES (?,?,?)",
                ((run_id, i, u) for i, u in enumerate(urls)),
            )
            planned = len(urls)
    return Run(run_id, False, now or "", planned, unfinished["id"] if unfinished else None)


def remaining_urls(db: sqlite_utils.Database, run_id: int) -> list[str]:
    return list(planned_urls(db, run_id))


def planned_urls(db: sqlite_utils.Database, run_id: int, page: int = 5000) -> Iterator[str]:
    """The run's planned URLs it has not checked yet, in plan order, read a page at a time
    (no statement stays open while the recorder writes; memory is one page)."""
    last = -1
    while True:
        rows = db.execute(
            "SELECT p.seq, p.url FROM plan p WHERE p.run_id=? AND p.seq>? AND NOT EXISTS"
            " (SELECT 1 FROM checks c WHERE c.run_id=p.run_id AND c.url=p.url)"
            " ORDER BY p.seq LIMIT ?",
            [run_id, last, page],
        ).fetchall()
        if not rows:
            return
        last = rows[-1][0]
        yield from (url for _, url in rows)


def plan_urls(
    db: sqlite_utils.Database,
    *,
    max_age: timedelta | None = None,
    failing_only: bool = False,
    budget: int | None = None,
    now: datetime | None = None,
    shard: Shard | None = None,  # only the hosts of this shard (shards.py)
) -> list[str]:
    """Which URLs this run checks, in the order the scheduler should see them (`Plan`)."""
    plan = Plan(max_age=max_age, failing_only=failing_only, budget=budget, now=now, shard=shard)
    return plan.urls(db)


@dataclass
class Plan:
    """Which URLs a run checks, in the order the scheduler should see them.

    Never-checked first, then the least recently checked; URLs checked ok
    within `max_age` are skipped (failing ones never are); the list is then
    interleaved by host so that no host's backlog starves the others
    (`interleave_by_host`, here in SQL: SQLite sorts a million URLs on disk
    where a Python list of them would cost the run hundreds of MB).
    """

    max_age: timedelta | None = None
    failing_only: bool = False
    budget: int | None = None
    now: datetime | None = None
    shard: Shard | None = None  # only the hosts of this shard (shards.py), before the budget

    def urls(self, db: sqlite_utils.Database) -> list[str]:
        with sorting_on_disk(db):
            return [row[0] for row in db.execute(
                f"SELECT url FROM ({self._placed(db)}) ORDER BY at, first"
            )]

    def store(self, db: sqlite_utils.Database, conn: Any, run_id: int) -> int:
        """Write the plan as `run_id`'s rows of `plan` (inside the caller's transaction,
        opened within `sorting_on_disk`)."""
        cur = conn.execute(
            "INSERT INTO plan (run_id, seq, url) SELECT ?,"
            f" row_number() OVER (ORDER BY at, first) - 1, url FROM ({self._placed(db)})",
            [run_id],
        )
        return int(cur.rowcount)

    def _placed(self, db: sqlite_utils.Database) -> str:
        """The chosen URLs with their place: ORDER BY at, first is the plan's order."""
        # Never-checked first, then least recently checked; ties in a stable pseudo-random
        # order, because URL order clusters a host's failures (all of /section-gone/ at
        # once) and a burst of 503s would slow the whole host down for nothing.
        db.conn.create_function("lk_crc32", 1, _crc32, deterministic=True)
        keep = ""
        if self.failing_only or self.max_age is not None or self.shard is not None:
            now = self.now or utcnow()
            db.conn.create_function(
                "lk_keep", 4, lambda *row: self._keep(now, *row), deterministic=True
            )
            keep = " AND lk_keep(coalesce(l.host, ''), s.state, s.last_status, s.last_checked)"
        budget = "" if self.budget is None else f" WHERE pos <= {max(0, int(self.budget))}"
        # interleave_by_host: the i-th of a host's n URLs goes at (i + 0.5) / n, hosts in
        # the order of their first URL
        return (
            "SELECT url,"
            " (row_number() OVER (PARTITION BY host ORDER BY pos) - 0.5)"
            " / count(*) OVER (PARTITION BY host) AS at,"
            " min(pos) OVER (PARTITION BY host) AS first"
            " FROM (SELECT l.url AS url, coalesce(l.host, '') AS host, row_number() OVER"
            " (ORDER BY s.last_checked IS NOT NULL, coalesce(s.last_checked, ''),"
            " lk_crc32(l.url), l.rowid) AS pos"
            " FROM links l LEFT JOIN link_state s ON s.url = l.url"
            " WHERE EXISTS (SELECT 1 FROM occurrences o WHERE o.url = l.url)"
            f"{keep}){budget}"
        )

    def _keep(self, now: datetime, host: str, state: str | None, last_status: str | None,
              last_checked: str | None) -> int:
        """1 when the link is planned: failing, or not checked ok within max_age; its shard's."""
        failing = last_status in FAILURES or state in (State.FAILING, State.DEAD)
        if self.failing_only and not failing:
            return 0
        if (
            self.max_age is not None
            and last_checked
            and not failing
            and last_status in (Status.OK, Status.REDIRECTED)
            and now - (parse_iso(last_checked) or now) < self.max_age
        ):
            return 0
        return int(self.shard is None or self.shard.owns(host))


def _crc32(url: str) -> int:
    return zlib.crc32(url.encode())


# Page cache while a plan is made: SQLite lets each sort use about this much memory before
# it spills to a temporary file, and a plan sorts three times.
PLAN_CACHE_KB = 16384


def sorting_on_disk(db: sqlite_utils.Database) -> contextlib.AbstractContextManager[None]:
    """SQLite's sorts spill to temporary files past a small cache while a plan is made
    (outside any transaction: SQLite applies the setting between transactions)."""
    return pragmas(db, cache_size=-PLAN_CACHE_KB)


def interleave_by_host(urls: Iterable[tuple[str, str]]) -> list[str]:
    """Spread each host's URLs evenly through the list, keeping each host's own order.

    Proportional, not round-robin: a host with 70% of the URLs gets 70% of every
    stretch of the list. The checker reads ahead a bounded buffer; round-robin
    would fill it with the small hosts' URLs first and leave the big host, the
    one that needs all its connections busy, starved for work.
    """
    queues: dict[str, list[str]] = defaultdict(list)
    for url, host in urls:
        queues[host].append(url)
    placed = [
        ((i + 0.5) / len(q), n, url)
        for n, q in enumerate(queues.values())
        for i, url in enumerate(q)
    ]
    placed.sort()
    return [url for _, _, url in placed]


def scan_time_statuses(db: sqlite_utils.Database, urls: Iterable[str]) -> dict[str, tuple[str, str]]:
    """URLs that scan already classified (excluded/invalid): url -> (status, reason)."""
    out = {}
    for url, status, reason in db.execute(
        "SELECT url, status, reason FROM links WHERE status IS NOT NULL"
        " AND url IN (SELECT url FROM occurrences)"
    ):
        out[url] = (status, reason or "")
    wanted = set(urls)
    return {u: v for u, v in out.items() if u in wanted} if wanted else out


def scan_time_statuses_of_run(db: sqlite_utils.Database, run_id: int
                              ) -> dict[str, tuple[str, str]]:
    """The run's planned URLs, not yet checked, that scan already classified (excluded or
    invalid): url -> (status, reason), in plan order. Few: the rest is fetched."""
    return {
        url: (status, reason or "")
        for url, status, reason in db.execute(
            "SELECT l.url, l.status, l.reason FROM plan p JOIN links l ON l.url = p.url"
            " WHERE p.run_id=? AND l.status IS NOT NULL"
            " AND EXISTS (SELECT 1 FROM occurrences o WHERE o.url = l.url)"
            " AND NOT EXISTS (SELECT 1 FROM checks c WHERE c.run_id=p.run_id AND c.url=p.url)"
            " ORDER BY p.seq",
            [run_id],
        )
    }


def url_history(db: sqlite_utils.Database, url: str) -> Iterator[dict[str, Any]]:
    """A URL's checks, oldest first; `degraded_run`: the run was cut off (failures not counted)."""
    cols = ("run_id", "checked_at", "status", "http_status", "reason", "final_url", "elapsed_ms")
    for row in db.execute(
        f"SELECT {', '.join('c.' + c for c in cols)}, r.degraded IS NOT NULL FROM checks c"
        " LEFT JOIN runs r ON r.id = c.run_id WHERE c.url=? ORDER BY c.id", [url]
    ):
        yield {**dict(zip(cols, row[:-1], strict=True)), "degraded_run": bool(row[-1])}


def previous_run_id(db: sqlite_utils.Database, run_id: int) -> int | None:
    """The last complete run before `run_id` whose checks counted (a degraded one says nothing)."""
    row = db.execute(
        "SELECT max(id) FROM runs WHERE id < ? AND state='complete' AND degraded IS NULL",
        [run_id],
    ).fetchone()
    return row[0] if row else None


# -- what the CLI asks of the history (read-only; the commands print the answers) ----------

LINK_STATE_FIELDS = ("state", "since", "consecutive_failures", "first_failed", "last_ok")


def link_state_of(db: sqlite_utils.Database, url: str) -> dict[str, Any] | None:
    """A URL's row of `link_state` (the fields `linkkeeper history` shows), or None."""
    row = db.execute(
        f"SELECT {', '.join(LINK_STATE_FIELDS)} FROM link_state WHERE url=?", [url]
    ).fetchone()
    return dict(zip(LINK_STATE_FIELDS, row, strict=True)) if row else None


def failing_link_count(db: sqlite_utils.Database) -> int:
    """Links still cited by some post whose last check failed (`check --fail-on any`)."""
    marks = ",".join("?" * len(FAILURES))
    return int(db.execute(
        f"SELECT count(*) FROM link_state WHERE last_status IN ({marks})"
        " AND url IN (SELECT url FROM occurrences)", sorted(FAILURES)
    ).fetchone()[0])


def new_failures_of(db: sqlite_utils.Database, run_id: int, limit: int = 20
                    ) -> list[tuple[str, str, str]]:
    """(url, status, reason) of the run's first `limit` new failures, by URL."""
    return [tuple(row) for row in db.execute(
        "SELECT c.url, c.status, c.reason FROM checks c WHERE c.run_id=? AND c.new_failure=1"
        " ORDER BY c.url LIMIT ?", [run_id, limit]
    ).fetchall()]
