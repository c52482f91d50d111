"""Every rule of a link's state, in one pure function: previous state + one check -> next state.

The rules (ARCHITECTURE.md, "link states"):

* success (`ok`/`redirected`) makes a link `alive`, or `recovered` after it was
  `failing`/`dead`;
* a failure (vocab.FAILURES) makes it `failing`, and `dead` once failures hold
  over at least `confirm.checks` checks spanning `confirm.days` days with no
  success between;
* `blocked`/`rate-limited` never count towards death: the state stays what it
  was (`blocked` for a link never seen otherwise);
* `excluded`/`invalid` leave the state alone (`unchecked` for a new link);
* a link whose recent outcomes switch between success and failure three times
  or more is `flaky`;
* an alive link whose main-text fingerprint moved `drift_threshold` or more
  from the first fingerprint seen alive is `drifted` (truth.py scores drift); it
  stays drifted through checks without content (HEAD) until a close one returns.

No I/O and no clock: the check's own `started_at` is the time of the change,
so the same history always replays to the same states (recorder.py writes them).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

from linkkeeper.check.result import CheckResult
from linkkeeper.clock import iso, parse_iso
from linkkeeper.history.truth import DRIFT_THRESHOLD, Drift, drift_of
from linkkeeper.vocab import FAILURES, INCONCLUSIVE, State, Status

RECENT_LEN = 8  # outcomes kept in `recent`, the window flakiness is judged on
ALIVE_STATUSES = (Status.OK, Status.REDIRECTED)


@dataclass(frozen=True, slots=True)
class ConfirmPolicy:
    """How long failures must last before a link is `dead`: both conditions hold."""

    checks: int = 3
    days: float = 3.0


@dataclass(frozen=True, slots=True)
class StatePolicy:
    """The thresholds of the state rules (what `check --confirm-*` and config set)."""

    confirm: ConfirmPolicy = field(default_factory=ConfirmPolicy)
    drift_threshold: float = DRIFT_THRESHOLD


@dataclass(frozen=True, slots=True)
class LinkState:
    """One link's `link_state` row (less the run bookkeeping the recorder adds)."""

    url: str
    state: str | None = None  # None: never recorded
    since: str | None = None
    last_status: str | None = None
    consecutive_failures: int = 0
    first_failed: str | None = None
    last_ok: str | None = None
    checks: int = 0
    recent: str = ""  # newest last: O ok, F failure, B blocked/rate-limited
    first_fingerprint: str | None = None
    first_fingerprint_at: str | None = None
    last_fingerprint: str | None = None
    drift: float | None = None


@dataclass(frozen=True, slots=True)
class Transition:
    """What one check did to a link: its new row, and what the check's record should say."""

    state: LinkState
    new_failure: bool  # a failure right after a non-failure: "broke since last time"
    evidence: dict[str, Any]  # to merge into the check's evidence ({"drift": ...})


def next_state(
    prev: LinkState | None, result: CheckResult, policy: StatePolicy | None = None
) -> Transition:
    """The link's state after `result`, given its state before (None: never checked)."""
    policy = policy or StatePolicy()
    prev = prev or LinkState(result.url)
    status = Status(result.status)
    checked_at = result.started_at
    now = iso(checked_at) or ""
    new = _counted(prev, status, now)
    state = _outcome_state(prev, new, status, checked_at, policy.confirm)
    evidence: dict[str, Any] = {}
    if status in ALIVE_STATUSES:
        drift = drift_of(result.fingerprint, prev.first_fingerprint, prev.last_fingerprint)
        state = drifted_state(state, prev.state, status, drift, policy.drift_threshold)
        new = _with_fingerprint(new, result.fingerprint, drift, now)
        if drift is not None:
            evidence["drift"] = drift.as_evidence(policy.drift_threshold)
    since = prev.since if state == prev.state and prev.since else now
    new = replace(new, state=str(state), since=since)
    new_failure = status in FAILURES and prev.last_status not in FAILURES
    return Transition(new, new_failure, evidence)


def _counted(prev: LinkState, status: Status, now: str) -> LinkState:
    """The counters after one more check: failures in a row, first failure, last success."""
    consecutive, first_failed, last_ok = prev.consecutive_failures, prev.first_failed, prev.last_ok
    if status in ALIVE_STATUSES:
        consecutive, first_failed, last_ok = 0, None, now
    elif status in FAILURES:
        consecutive, first_failed = consecutive + 1, first_failed or now
    return replace(
        prev,
        last_status=str(status),
        consecutive_failures=consecutive,
        first_failed=first_failed,
        last_ok=last_ok,
        checks=prev.checks + 1,
        recent=(prev.recent + _letter(status))[-RECENT_LEN:],
    )


def _outcome_state(
    prev: LinkState, new: LinkState, status: Status, checked_at: datetime, confirm: ConfirmPolicy
) -> str:
    """alive/recovered/failing/dead/blocked/flaky from this outcome (drift aside)."""
    if status in ALIVE_STATUSES:
        state = State.RECOVERED if prev.state in (State.FAILING, State.DEAD) else State.ALIVE
    elif status in FAILURES:
        span = checked_at - (parse_iso(new.first_failed) or checked_at)
        confirmed = new.consecutive_failures >= confirm.checks and span >= timedelta(
            days=confirm.days
        )
        state = State.DEAD if confirmed else State.FAILING
    elif status in INCONCLUSIVE:
        state = prev.state if prev.state and prev.state != State.UNCHECKED else State.BLOCKED
    else:  # excluded / invalid
        state = prev.state or State.UNCHECKED
    if state in (State.ALIVE, State.FAILING, State.RECOVERED) and is_flaky(new.recent):
        return State.FLAKY
    return str(state)


def drifted_state(
    state: str, prev_state: str | None, status: str, drift: Drift | None, threshold: float
) -> str:
    """The state once drift is taken into account (only alive links can be drifted)."""
    if status not in ALIVE_STATUSES or state not in (State.ALIVE, State.RECOVERED):
        return state
    if drift is not None and drift.vs_first is not None:
        return State.DRIFTED if drift.vs_first >= threshold else state
    if drift is None and prev_state == State.DRIFTED:
        return State.DRIFTED  # checked without content (HEAD): nothing says it came back
    return state


def _with_fingerprint(
    new: LinkState, fingerprint: str | None, drift: Drift | None, now: str
) -> LinkState:
    """The drift baseline (first fingerprint seen alive), the latest one, and the score."""
    score = new.drift if drift is None else drift.vs_first
    if not fingerprint:
        return replace(new, drift=score)
    if not new.first_fingerprint:
        return replace(
            new,
            first_fingerprint=fingerprint,
            first_fingerprint_at=now,
            last_fingerprint=fingerprint,
            drift=0.0,
        )
    return replace(new, last_fingerprint=fingerprint, drift=score)


def _letter(status: Status) -> str:
    if status in FAILURES:
        return "F"
    if status in INCONCLUSIVE:
        return "B"
    if status in ALIVE_STATUSES:
        return "O"
    return ""


def is_flaky(recent: str) -> bool:
    """Three or more switches between success and failure in the recent window."""
    seq = [c for c in recent if c in "OF"]
    return sum(1 for a, b in pairwise(seq) if a != b) >= 3
