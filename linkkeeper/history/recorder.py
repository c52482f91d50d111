"""Writing a run's check results: `checks`, `link_state`, `host_failures` and the run's counters.

I/O only: state.py decides each link's next state; this module reads the
previous rows, asks it, and writes the answers in batched transactions, each
committed before the next batch starts, so a kill -9 loses at most the batch in
flight and never duplicates a row (`checks` is unique on run and URL).

A failure's check row is written at once, but what it does to its link waits
for the end of the run (`settle`): only then is it known whether the run was
cut off from the network (truth.py `run_verdict`), in which case its failures
count for nothing (state.py). A failure is settled when its link's row names
this run (`last_run`), so a settle cut short by a crash is finished, never
repeated, when the run is resumed; a run given up by `--new-run` is settled
when it is abandoned (`settle_abandoned`).

Raw SQL rather than sqlite-utils' insert/upsert here: those wrap every call in
``with conn:``, which would commit the batch transaction midway, and the
rowcount of ``INSERT OR IGNORE`` is what tells a resumed run's overlap apart.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields, replace
from operator import attrgetter
from typing import Any

import sqlite_utils

from linkkeeper.check.result import CheckResult, Hop
from linkkeeper.clock import iso, parse_iso, utcnow
from linkkeeper.db import Transaction
from linkkeeper.history.state import (
    ConfirmPolicy,
    LinkState,
    StatePolicy,
    Transition,
    next_state,
)
from linkkeeper.history.truth import (
    DRIFT_THRESHOLD,
    CheckRow,
    HostFailure,
    host_failures,
    host_level,
    network_level,
    run_verdict,
)
from linkkeeper.urls import host_key
from linkkeeper.vocab import FAILURES, Status

_STATE_COLS = tuple(f.name for f in fields(LinkState))
_state_values = attrgetter(*_STATE_COLS)  # a LinkState as a row, in column order
_CHECK_COLS = (
    "run_id", "url", "status", "reason", "http_status", "final_url", "redirects",
    "permanent_redirect", "method", "attempts", "requests", "elapsed_ms", "checked_at", "ip",
    "content_type", "content_length", "error", "digest", "fingerprint", "evidence", "new_failure",
)  # fmt: skip
_LINK_STATE_COLS = (*_STATE_COLS, "last_checked", "last_run")


def _insert(table: str, cols: Sequence[str], verb: str = "INSERT") -> str:
    return f"{verb} INTO {table} ({', '.join(cols)}) VALUES ({','.join('?' * len(cols))})"


_INSERT_CHECK = _insert("checks", _CHECK_COLS, "INSERT OR IGNORE")
_UPSERT_LINK_STATE = _insert("link_state", _LINK_STATE_COLS) + (
    " ON CONFLICT(url) DO UPDATE SET "
    + ", ".join(f"{c}=excluded.{c}" for c in _LINK_STATE_COLS if c != "url")
)


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
    degraded: str | None = None  # set by finish(): why the run's failures do not count
    _batch: list[CheckResult] = field(default_factory=list)
    _done: int = 0

    def __post_init__(self) -> None:
        """Counters of a resumed run start from what it already recorded."""
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

    @property
    def policy(self) -> StatePolicy:
        return StatePolicy(self.confirm, self.drift_threshold)

    def add(self, result: CheckResult) -> None:
        self._batch.append(result)
        if len(self._batch) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        """Write the pending results in one transaction."""
        if not self._batch:
            return
        batch, self._batch = self._batch, []
        previous = self._previous_states([r.url for r in batch])
        policy = self.policy
        with Transaction(self.db) as conn:
            for result in batch:
                pending = result.status in FAILURES  # its link waits for the verdict: settle()
                change = (
                    _PENDING if pending else next_state(previous.get(result.url), result, policy)
                )
                cur = conn.execute(_INSERT_CHECK, self._check_row(result, change))
                if cur.rowcount == 0:  # already recorded in this run (resume overlap)
                    continue
                if not pending:
                    conn.execute(_UPSERT_LINK_STATE, self._link_state_row(result, change))
                self.counts[str(result.status)] += 1
                self.requests += result.requests
                self._done += 1
                if change.new_failure:
                    self.new_failures.append(result.url)
            conn.execute(
                "UPDATE runs SET done=?, requests=?, counts=? WHERE id=?",
                (self._done, self.requests, json.dumps(dict(self.counts)), self.run_id),
            )

    def _previous_states(self, urls: list[str]) -> dict[str, LinkState]:
        marks = ",".join("?" * len(urls))
        states = {}
        for row in self.db.execute(
            f"SELECT {', '.join(_STATE_COLS)} FROM link_state WHERE url IN ({marks})", urls
        ):
            values = dict(zip(_STATE_COLS, row, strict=True))
            values["consecutive_failures"] = int(values["consecutive_failures"] or 0)
            values["checks"] = int(values["checks"] or 0)
            values["recent"] = values["recent"] or ""
            states[row[0]] = LinkState(**values)
        return states

    def _check_row(self, r: CheckResult, change: Transition) -> tuple[Any, ...]:
        evidence = {**(r.evidence or {}), **change.evidence}
        return (
            self.run_id, r.url, str(r.status), r.reason, r.http_status, r.final_url,
            json.dumps([_hop(h) for h in r.redirects]) if r.redirects else None,
            int(r.permanent_redirect), r.method, r.attempts, r.requests,
            round(float(r.elapsed_ms), 1), iso(r.started_at), r.ip, r.content_type,
            r.content_length, r.error, r.digest, r.fingerprint,
            json.dumps(evidence, ensure_ascii=False) if evidence else None,
            int(change.new_failure),
        )  # fmt: skip

    def _link_state_row(self, r: CheckResult, change: Transition) -> tuple[Any, ...]:
        return (*_state_values(change.state), iso(r.started_at), self.run_id)

    @property
    def done(self) -> int:
        return self._done + len(self._batch)

    def finish(self, state: str = "complete", canaries: Iterable[CheckRow] | None = None) -> None:
        """Write what is pending and close the run.

        A complete run gets its verdict (degraded or not, `canaries` deciding when
        given), its failures settled and its host failures recorded.
        """
        self.flush()
        if state == "complete":
            self.judge(canaries)
            self.record_host_failures()
        with Transaction(self.db) as conn:
            conn.execute(
                "UPDATE runs SET state=?, finished_at=?, done=?, requests=?, counts=?, pid=NULL"
                " WHERE id=?",
                (
                    state,
                    iso(utcnow()),
                    self._done,
                    self.requests,
                    json.dumps(dict(self.counts)),
                    self.run_id,
                ),
            )

    def judge(self, canaries: Iterable[CheckRow] | None = None) -> str | None:
        """Decide whether the run was cut off (truth.py), record why, and settle its failures."""
        self.flush()
        self.degraded = run_verdict(self._verdict_rows(), canaries)
        with Transaction(self.db) as conn:
            conn.execute("UPDATE runs SET degraded=? WHERE id=?", (self.degraded, self.run_id))
        self.settle()
        return self.degraded

    def settle(self) -> None:
        """Apply the run's failures to their links, counted or not as the verdict says."""
        policy = replace(self.policy, degraded=self.degraded is not None)
        marks = ",".join("?" * len(FAILURES))
        rows = self.db.execute(
            "SELECT c.url, c.status, c.reason, c.checked_at, c.fingerprint FROM checks c"
            f" WHERE c.run_id=? AND c.status IN ({marks}) AND NOT EXISTS (SELECT 1 FROM"
            " link_state s WHERE s.url = c.url AND s.last_run = c.run_id) ORDER BY c.id",
            [self.run_id, *sorted(FAILURES)],
        ).fetchall()
        for start in range(0, len(rows), self.batch_size):
            self._settle_batch(rows[start : start + self.batch_size], policy)

    def _settle_batch(self, rows: list[tuple[str, str, str, str, str | None]],
                      policy: StatePolicy) -> None:
        previous = self._previous_states([row[0] for row in rows])
        with Transaction(self.db) as conn:
            for url, status, reason, checked_at, fingerprint in rows:
                result = CheckResult(url, Status(status), reason or "",
                                     started_at=parse_iso(checked_at) or utcnow(),
                                     fingerprint=fingerprint)
                change = next_state(previous.get(url), result, policy)
                if change.counted:
                    conn.execute(_UPSERT_LINK_STATE, self._link_state_row(result, change))
                if change.evidence:
                    conn.execute(_SETTLE_WITH_EVIDENCE, (
                        int(change.new_failure), json.dumps(change.evidence), self.run_id, url))
                else:
                    conn.execute(_SETTLE, (int(change.new_failure), self.run_id, url))
                if change.new_failure:  # unsettled rows were never in the list
                    self.new_failures.append(url)

    def _rows(self) -> Iterator[CheckRow]:
        """The run's (url, status, reason, http_status) rows, read a page at a time."""
        cursor = self.db.execute(
            "SELECT url, status, reason, http_status FROM checks WHERE run_id=?"
            " AND status NOT IN (?, ?)", [self.run_id, Status.EXCLUDED, Status.INVALID]
        )
        while page := cursor.fetchmany(5000):
            yield from page

    def _verdict_rows(self) -> list[CheckRow]:
        """What `run_verdict` needs of the run's rows, for the same verdict in the memory of
        the failures rather than of the run: every row of a host whose rows all failed at
        the network level, one row of every other host (it shows the host answered), and
        one failure when the run had any (a run without one is never degraded)."""
        down: dict[str, list[CheckRow]] = {}
        answered: dict[str, CheckRow] = {}
        failure: CheckRow | None = None
        for row in self._rows():
            host = host_key(row[0])
            if host in answered:
                if failure is None and row[1] in FAILURES:
                    failure = row
                continue
            if network_level(row[1], row[2], row[3]):
                down.setdefault(host, []).append(row)
            else:
                answered[host] = row
                for earlier in down.pop(host, ()):
                    failure = failure or earlier
                if failure is None and row[1] in FAILURES:
                    failure = row
        rows = [*answered.values(), *(row for rows in down.values() for row in rows)]
        if not down and failure is not None and failure not in answered.values():
            rows.append(failure)  # a host that answered: it stays up with it
        return rows

    def _host_failure_rows(self) -> list[CheckRow]:
        """The rows `host_failures` can report: every row of the hosts whose rows all failed
        at the host level (any other host is never down as a whole)."""
        failing: dict[str, list[CheckRow]] = {}
        healthy: set[str] = set()
        for row in self._rows():
            host = host_key(row[0])
            if host in healthy:
                continue
            if host_level(row[1], row[3]):
                failing.setdefault(host, []).append(row)
            else:
                healthy.add(host)
                failing.pop(host, None)
        return [row for rows in failing.values() for row in rows]

    def record_host_failures(self) -> list[HostFailure]:
        """Hosts whose every link failed at the host level this run: one row each (truth.py)."""
        self.host_failures = host_failures(self._host_failure_rows())
        with Transaction(self.db) as conn:
            conn.execute("DELETE FROM host_failures WHERE run_id=?", (self.run_id,))
            for failure in self.host_failures:
                conn.execute(
                    "INSERT INTO host_failures (run_id, host, links, status, reason, recorded_at)"
                    " VALUES (?,?,?,?,?,?)",
                    (
                        self.run_id,
                        failure.host,
                        failure.links,
                        failure.status,
                        failure.reason,
                        iso(utcnow()),
                    ),
                )
                conn.executemany(
                    "UPDATE checks SET evidence=json_set(coalesce(evidence, '{}'),"
                    " '$.host_failure', ?) WHERE run_id=? AND url=?",
                    ((failure.host, self.run_id, url) for url in failure.urls),
                )
        return self.host_failures


def settle_abandoned(db: sqlite_utils.Database, run_id: int, policy: StatePolicy) -> None:
    """A run given up by --new-run: judge what it checked and settle its failures."""
    recorder = Recorder(db, run_id, confirm=policy.confirm, drift_threshold=policy.drift_threshold)
    recorder.judge()


_SETTLE = "UPDATE checks SET new_failure=? WHERE run_id=? AND url=?"
_SETTLE_WITH_EVIDENCE = (
    "UPDATE checks SET new_failure=?, evidence=json_patch(coalesce(evidence, '{}'), ?)"
    " WHERE run_id=? AND url=?"
)
_PENDING = Transition(LinkState(""), False, {})  # a failure's row before settle() decides


def _hop(hop: Hop) -> dict[str, Any]:
    return {"url": hop.url, "status": hop.status, "location": hop.location}
