"""Stage 3: runs, the check history, and each link's state over time.

A run plans its URL list up front (stored in `plan`), so a run killed halfway
is resumed with exactly the URLs it had left; results are written in batched
transactions, each committed before the next batch starts, so a kill -9 loses
at most the batch in flight and never duplicates a row (`checks` is unique on
run and URL).

Link state rules (DESIGN.md): success makes a link `alive` (or `recovered`
after failures); a failure makes it `failing`, and `dead` once failures hold
over at least `confirm_checks` checks spanning `confirm_days` days with no
success between; `blocked`/`rate-limited` never count towards death; a link
whose recent outcomes alternate is `flaky`; an alive link whose main text
moved too far from the first fingerprint seen is `drifted`, and a host whose
every link failed at the host level is recorded once in `host_failures`
(truth.py explains both).
"""

from __future__ import annotations

import json
import os
import socket
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import sqlite_utils

from linkkeeper import __version__
from linkkeeper.db import Transaction
from linkkeeper.history.truth import (
    DRIFT_THRESHOLD,
    HostFailure,
    drift_of,
    drifted_state,
    host_failures,
)
from linkkeeper.shards import Shard  # issue 15: check --shard
from linkkeeper.vocab import FAILURES, INCONCLUSIVE, State, Status

RECENT_LEN = 8


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(dt: datetime | None) -> str | None:
    return dt.astimezone(UTC).isoformat(timespec="seconds") if dt else None


def parse_iso(value: str | None) -> datetime | None:
    if not value:
        return None
    dt = datetime.fromisoformat(value)
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


class RunBusy(Exception):
    """Another live process is running a check on this database."""


@dataclass
class Run:
    id: int
    resumed: bool
    started_at: str
    planned: int
    already_done: int = 0


@dataclass
class ConfirmPolicy:
    checks: int = 3
    days: float = 3.0


def _pid_alive(pid: int | None, host: str | None) -> bool:
    if not pid or host != socket.gethostname() or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def latest_unfinished_run(db: sqlite_utils.Database) -> dict[str, Any] | None:
    """The newest run, if it did not finish (a run given up by --new-run never comes back)."""
    row = db.execute("SELECT id, pid, host, state FROM runs ORDER BY id DESC LIMIT 1").fetchone()
    if row is None or row[3] in ("complete", "abandoned"):
        return None
    return dict(zip(("id", "pid", "host", "state"), row, strict=True))


def start_run(
    db: sqlite_utils.Database,
    urls: Sequence[str],
    *,
    options: dict[str, Any],
    command: str = "check",
    new_run: bool = False,
    insecure: bool = False,
) -> Run:
    """Resume the last unfinished run, or start a new one planning `urls`."""
    unfinished = latest_unfinished_run(db)
    if unfinished and _pid_alive(unfinished["pid"], unfinished["host"]):
        raise RunBusy(f"run {unfinished['id']} is still running (pid {unfinished['pid']})")
    now = iso(utcnow())
    if unfinished and not new_run:
        run_id = unfinished["id"]
        with Transaction(db) as conn:
            conn.execute(
                "UPDATE runs SET state='running', pid=?, host=? WHERE id=?",
                (os.getpid(), socket.gethostname(), run_id),
            )
        planned = db.execute("SELECT count(*) FROM plan WHERE run_id=?", [run_id]).fetchone()[0]
        done = db.execute("SELECT count(*) FROM checks WHERE run_id=?", [run_id]).fetchone()[0]
        started = db.execute("SELECT started_at FROM runs WHERE id=?", [run_id]).fetchone()[0]
        return Run(run_id, True, started, planned, done)
    with Transaction(db) as conn:
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
                len(urls),
                os.getpid(),
                socket.gethostname(),
            ),
        )
        run_id = int(cur.lastrowid or 0)
        conn.executemany(
            "INSERT INTO plan (run_id, seq, url) VALUES (?,?,?)",
            ((run_id, i, u) for i, u in enumerate(urls)),
        )
    return Run(run_id, False, now or "", len(urls))


def remaining_urls(db: sqlite_utils.Database, run_id: int) -> list[str]:
    return [
        r[0]
        for r in db.execute(
            "SELECT p.url FROM plan p WHERE p.run_id=? AND NOT EXISTS"
            " (SELECT 1 FROM checks c WHERE c.run_id=p.run_id AND c.url=p.url) ORDER BY p.seq",
            [run_id],
        )
    ]


def plan_urls(
    db: sqlite_utils.Database,
    *,
    max_age: timedelta | None = None,
    failing_only: bool = False,
    budget: int | None = None,
    now: datetime | None = None,
    shard: Shard | None = None,  # issue 15: only the hosts of this shard (shards.py)
) -> list[str]:
    """Which URLs this run checks, in the order the scheduler should see them.

    Never-checked first, then the least recently checked; URLs checked ok
    within `max_age` are skipped (failing ones never are); the list is then
    interleaved by host so that no host's backlog starves the others.
    """
    now = now or utcnow()
    rows = db.execute(
        "SELECT l.url, l.host, s.state, s.last_status, s.last_checked FROM links l"
        " LEFT JOIN link_state s ON s.url = l.url"
        " WHERE EXISTS (SELECT 1 FROM occurrences o WHERE o.url = l.url)"
    ).fetchall()
    # Never-checked first, then least recently checked; ties in a stable pseudo-random
    # order, because URL order clusters a host's failures (all of /section-gone/ at once)
    # and a burst of 503s would slow the whole host down for nothing.
    rows.sort(key=lambda r: (r[4] is not None, r[4] or "", zlib.crc32(r[0].encode())))
    chosen: list[tuple[str, str]] = []
    for url, host, state, last_status, last_checked in rows:
        failing = last_status in FAILURES or state in (State.FAILING, State.DEAD)
        if failing_only and not failing:
            continue
        if (
            max_age is not None
            and last_checked
            and not failing
            and last_status in (Status.OK, Status.REDIRECTED)
            and now - (parse_iso(last_checked) or now) < max_age
        ):
            continue
        chosen.append((url, host or ""))
    if shard is not None:  # issue 15: before the budget, which is then per shard
        chosen = shard.select(chosen)
    if budget is not None:
        chosen = chosen[: max(0, budget)]
    return interleave_by_host(chosen)


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


def _letter(status: str) -> str:
    if status in FAILURES:
        return "F"
    if status in INCONCLUSIVE:
        return "B"
    if status in (Status.OK, Status.REDIRECTED):
        return "O"
    return ""


def _is_flaky(recent: str) -> bool:
    """Three or more switches between success and failure in the recent window."""
    seq = [c for c in recent if c in "OF"]
    switches = sum(1 for a, b in pairwise(seq) if a != b)
    return switches >= 3


@dataclass
class StateUpdate:
    state: str
    since: str
    consecutive_failures: int
    first_failed: str | None
    last_ok: str | None
    recent: str
    checks: int
    new_failure: bool


def next_state(
    prev: dict[str, Any] | None,
    status: str,
    checked_at: datetime,
    confirm: ConfirmPolicy,
) -> StateUpdate:
    """The state machine of DESIGN.md, one check at a time."""
    now = iso(checked_at) or ""
    prev = prev or {}
    prev_state = prev.get("state")
    prev_status = prev.get("last_status")
    consecutive = int(prev.get("consecutive_failures") or 0)
    first_failed = prev.get("first_failed")
    last_ok = prev.get("last_ok")
    recent = ((prev.get("recent") or "") + _letter(status))[-RECENT_LEN:]
    checks = int(prev.get("checks") or 0) + 1
    new_failure = status in FAILURES and prev_status not in FAILURES

    if status in (Status.OK, Status.REDIRECTED):
        consecutive, first_failed, last_ok = 0, None, now
        state = State.RECOVERED if prev_state in (State.FAILING, State.DEAD) else State.ALIVE
    elif status in FAILURES:
        consecutive += 1
        first_failed = first_failed or now
        span = checked_at - (parse_iso(first_failed) or checked_at)
        if consecutive >= confirm.checks and span >= timedelta(days=confirm.days):
            state = State.DEAD
        else:
            state = State.FAILING
    elif status in INCONCLUSIVE:
        state = prev_state if prev_state and prev_state != State.UNCHECKED else State.BLOCKED
    else:  # excluded / invalid
        state = prev_state or State.UNCHECKED
    if state in (State.ALIVE, State.FAILING, State.RECOVERED) and _is_flaky(recent):
        state = State.FLAKY
    since = prev.get("since") if state == prev_state and prev.get("since") else now
    return StateUpdate(str(state), since or now, consecutive, first_failed, last_ok, recent,
                       checks, new_failure)


@dataclass
class Recorder:
    """Writes check results in batched transactions and keeps the run's counters."""

    db: sqlite_utils.Database
    run_id: int
    confirm: ConfirmPolicy = field(default_factory=ConfirmPolicy)
    batch_size: int = 200
    counts: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    new_failures: list[str] = field(default_factory=list)
    drift_threshold: float = DRIFT_THRESHOLD
    host_failures: list[HostFailure] = field(default_factory=list)  # set by finish()
    _batch: list[Any] = field(default_factory=list)
    _done: int = 0

    def __post_init__(self) -> None:
        for status, n in self.db.execute(
            "SELECT status, count(*) FROM checks WHERE run_id=? GROUP BY status", [self.run_id]
        ):
            self.counts[status] = n
        self._done = sum(self.counts.values())
        self.requests = self.db.execute(
            "SELECT coalesce(sum(requests),0) FROM checks WHERE run_id=?", [self.run_id]
        ).fetchone()[0]
        self.new_failures = [
            r[0]
            for r in self.db.execute(
                "SELECT url FROM checks WHERE run_id=? AND new_failure=1", [self.run_id]
            )
        ]

    def add(self, result: Any) -> None:
        self._batch.append(result)
        if len(self._batch) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        if not self._batch:
            return
        batch, self._batch = self._batch, []
        urls = [r.url for r in batch]
        marks = ",".join("?" * len(urls))
        prev_rows = {
            row[0]: dict(zip(_STATE_COLS, row, strict=True))
            for row in self.db.execute(
                f"SELECT {', '.join(_STATE_COLS)} FROM link_state WHERE url IN ({marks})", urls
            )
        }
        with Transaction(self.db) as conn:
            for r in batch:
                checked_at: datetime = getattr(r, "started_at", None) or utcnow()
                prev = prev_rows.get(r.url) or {}
                upd = next_state(prev, str(r.status), checked_at, self.confirm)
                evidence = dict(getattr(r, "evidence", None) or {})
                fingerprint = getattr(r, "fingerprint", None)
                first_fp, first_fp_at = prev.get("first_fingerprint"), prev.get("first_fingerprint_at")
                last_fp, drift_score = prev.get("last_fingerprint"), prev.get("drift")
                if r.status in (Status.OK, Status.REDIRECTED):
                    drift = drift_of(fingerprint, first_fp, last_fp)
                    state = drifted_state(upd.state, prev.get("state"), str(r.status), drift,
                                          self.drift_threshold)
                    if state != upd.state:
                        kept = state == prev.get("state") and prev.get("since")
                        upd.state, upd.since = state, kept or iso(checked_at) or upd.since
                    if drift is not None:
                        evidence["drift"] = drift.as_evidence(self.drift_threshold)
                        drift_score = drift.vs_first
                    if fingerprint:
                        if not first_fp:
                            first_fp, first_fp_at = fingerprint, iso(checked_at)
                            drift_score = 0.0
                        last_fp = fingerprint
                cur = conn.execute(
                    "INSERT OR IGNORE INTO checks (run_id, url, status, reason, http_status,"
                    " final_url, redirects, permanent_redirect, method, attempts, requests,"
                    " elapsed_ms, checked_at, ip, content_type, content_length, error, digest,"
                    " fingerprint, evidence, new_failure) VALUES"
                    " (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        self.run_id,
                        r.url,
                        str(r.status),
                        r.reason,
                        r.http_status,
                        r.final_url,
                        json.dumps([_hop(h) for h in r.redirects]) if r.redirects else None,
                        int(bool(getattr(r, "permanent_redirect", False))),
                        getattr(r, "method", None),
                        getattr(r, "attempts", 0),
                        getattr(r, "requests", 0),
                        round(float(getattr(r, "elapsed_ms", 0.0) or 0.0), 1),
                        iso(checked_at),
                        getattr(r, "ip", None),
                        getattr(r, "content_type", None),
                        getattr(r, "content_length", None),
                        getattr(r, "error", None),
                        getattr(r, "digest", None),
                        getattr(r, "fingerprint", None),
                        json.dumps(evidence, ensure_ascii=False) if evidence else None,
                        int(upd.new_failure),
                    ),
                )
                if cur.rowcount == 0:  # already recorded in this run (resume overlap)
                    continue
                conn.execute(
                    "INSERT INTO link_state (url, state, since, last_status, last_checked,"
                    " last_run, consecutive_failures, first_failed, last_ok, checks, recent,"
                    " first_fingerprint, first_fingerprint_at, last_fingerprint, drift)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(url) DO UPDATE SET"
                    " state=excluded.state, since=excluded.since,"
                    " last_status=excluded.last_status, last_checked=excluded.last_checked,"
                    " last_run=excluded.last_run,"
                    " consecutive_failures=excluded.consecutive_failures,"
                    " first_failed=excluded.first_failed, last_ok=excluded.last_ok,"
                    " checks=excluded.checks, recent=excluded.recent,"
                    " first_fingerprint=excluded.first_fingerprint,"
                    " first_fingerprint_at=excluded.first_fingerprint_at,"
                    " last_fingerprint=excluded.last_fingerprint, drift=excluded.drift",
                    (
                        r.url,
                        upd.state,
                        upd.since,
                        str(r.status),
                        iso(checked_at),
                        self.run_id,
                        upd.consecutive_failures,
                        upd.first_failed,
                        upd.last_ok,
                        upd.checks,
                        upd.recent,
                        first_fp,
                        first_fp_at,
                        last_fp,
                        drift_score,
                    ),
                )
                self.counts[str(r.status)] += 1
                self.requests += int(getattr(r, "requests", 0) or 0)
                self._done += 1
                if upd.new_failure:
                    self.new_failures.append(r.url)
            conn.execute(
                "UPDATE runs SET done=?, requests=?, counts=? WHERE id=?",
                (self._done, self.requests, json.dumps(dict(self.counts)), self.run_id),
            )

    @property
    def done(self) -> int:
        return self._done + len(self._batch)

    def finish(self, state: str = "complete") -> None:
        self.flush()
        if state == "complete":
            self.record_host_failures()
        with Transaction(self.db) as conn:
            conn.execute(
                "UPDATE runs SET state=?, finished_at=?, done=?, requests=?, counts=?, pid=NULL"
                " WHERE id=?",
                (state, iso(utcnow()), self._done, self.requests, json.dumps(dict(self.counts)),
                 self.run_id),
            )


    def record_host_failures(self) -> list[HostFailure]:
        """Hosts whose every link failed at the host level this run: one row each (truth.py)."""
        rows = self.db.execute(
            "SELECT url, status, reason, http_status FROM checks WHERE run_id=?", [self.run_id]
        ).fetchall()
        self.host_failures = host_failures(rows)
        with Transaction(self.db) as conn:
            conn.execute("DELETE FROM host_failures WHERE run_id=?", (self.run_id,))
            for failure in self.host_failures:
                conn.execute(
                    "INSERT INTO host_failures (run_id, host, links, status, reason, recorded_at)"
                    " VALUES (?,?,?,?,?,?)",
                    (self.run_id, failure.host, failure.links, failure.status, failure.reason,
                     iso(utcnow())),
                )
                conn.executemany(
                    "UPDATE checks SET evidence=json_set(coalesce(evidence, '{}'),"
                    " '$.host_failure', ?) WHERE run_id=? AND url=?",
                    ((failure.host, self.run_id, url) for url in failure.urls),
                )
        return self.host_failures


_STATE_COLS = (
    "url",
    "state",
    "since",
    "last_status",
    "consecutive_failures",
    "first_failed",
    "last_ok",
    "checks",
    "recent",
    "first_fingerprint",
    "first_fingerprint_at",
    "last_fingerprint",
    "drift",
)


def _hop(h: Any) -> dict[str, Any]:
    if isinstance(h, dict):
        return h
    return {"url": h.url, "status": h.status, "location": h.location}


def url_history(db: sqlite_utils.Database, url: str) -> Iterator[dict[str, Any]]:
    cols = ("run_id", "checked_at", "status", "http_status", "reason", "final_url", "elapsed_ms")
    for row in db.execute(
        f"SELECT {', '.join(cols)} FROM checks WHERE url=? ORDER BY id", [url]
    ):
        yield dict(zip(cols, row, strict=True))


def previous_run_id(db: sqlite_utils.Database, run_id: int) -> int | None:
    row = db.execute(
        "SELECT max(id) FROM runs WHERE id < ? AND state='complete'", [run_id]
    ).fetchone()
    return row[0] if row else None
