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
* a failure seen in a *degraded* run (the checker itself was cut off from the
  network: truth.py `run_verdict`) is no evidence at all: the link's row stays
  exactly as it was (no failure counted, no new failure, an alive link stays
  alive) and the transition says ``counted=False``; successes count as ever;
* a link whose recent outcomes switch between success and failure three times
  or more is `flaky`;
* an alive link whose main-text fingerprint moved `drift_threshold` or more
  from the first fingerprint seen alive is `drifted` (truth.py scores drift); it
  stays drifted through checks without content (HEAD) until a close one returns.

No I/O and no clock: the check's own `started_at` is the time of the change,
so the same history always replays to the same states (recorder.py writes them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from itertools import pairwise
from typing import Any, NamedTuple

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
    degraded: bool = False  # the run was cut off from the network: its failures do not count


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
    counted: bool = True  # False: the check is no evidence; `state` is the row as it was


def next_state(
    prev: LinkState | None, result: CheckResult, policy: StatePolicy | None = None
) -> Transition:
    """The link's state after `result`, given its state before (None: never checked)."""
    policy = policy or _DEFAULT_POLICY
    prev = prev or LinkState(result.url)
    status = Status(result.status)
    if policy.degraded and status in FAILURES:
        return Transition(prev, False, {"not_counted": "degraded run"}, counted=False)
    checked_at = result.started_at
    now = iso(checked_at) or ""
    consecutive, first_failed, last_ok = _counters(prev, status, now)
    recent = (prev.recent + _letter(status))[-RECENT_LEN:]
    if status in FAILURES:
        span = checked_at - (parse_iso(first_failed) or checked_at)
        confirmed = consecutive >= policy.confirm.checks and span >= timedelta(
            days=policy.confirm.days
        )
        state = State.DEAD if confirmed else State.FAILING
    else:
        state = _other_state(prev.state, status)
    if state in (State.ALIVE, State.FAILING, State.RECOVERED) and is_flaky(recent):
        state = State.FLAKY
    prints = _Prints(
        prev.first_fingerprint, prev.first_fingerprint_at, prev.last_fingerprint, prev.drift
    )
    evidence: dict[str, Any] = {}
    if status in ALIVE_STATUSES:
        drift = drift_of(result.fingerprint, prev.first_fingerprint, prev.last_fingerprint)
        state = drifted_state(state, prev.state, status, drift, policy.drift_threshold)
        prints = _with_fingerprint(prints, result.fingerprint, drift, now)
        if drift is not None:
            evidence["drift"] = drift.as_evidence(policy.drift_threshold)
    since = prev.since if state == prev.state and prev.since else now
    new = LinkState(
        prev.url, str(state), since, str(status), consecutive, first_failed, last_ok,
        prev.checks + 1, recent, *prints,
    )  # fmt: skip
    return Transition(new, status in FAILURES and prev.last_status not in FAILURES, evidence)


_DEFAULT_POLICY = StatePolicy()


class _Prints(NamedTuple):
    """The fingerprint columns of a link's row, in table order."""

    first: str | None
    first_at: str | None
    last: str | None
    drift: float | None


def _counters(prev: LinkState, status: Status, now: str) -> tuple[int, str | None, str | None]:
    """Failures in a row, the first of them, and the last success, after one more check."""
    if status in ALIVE_STATUSES:
        return 0, None, now
    if status in FAILURES:
        return prev.consecutive_failures + 1, prev.first_failed or now, prev.last_ok
    return prev.consecutive_failures, prev.first_failed, prev.last_ok


def _other_state(prev_state: str | None, status: Status) -> str:
    """The state after a check that is not a failure (failures are judged by the policy)."""
    if status in ALIVE_STATUSES:
        return State.RECOVERED if prev_state in (State.FAILING, State.DEAD) else State.ALIVE
    if status in INCONCLUSIVE:  # never evidence either way: the state stays
        return prev_state if prev_state and prev_state != State.UNCHECKED else State.BLOCKED
    return prev_state or State.UNCHECKED  # excluded / invalid


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
    prints: _Prints, fingerprint: str | None, drift: Drift | None, now: str
) -> _Prints:
    """The drift baseline (first fingerprint seen alive), the latest one, and the score."""
    score = prints.drift if drift is None else drift.vs_first
    if not fingerprint:
        return prints._replace(drift=score)
    if not prints.first:
        return _Prints(fingerprint, now, fingerprint, 0.0)
    return prints._replace(last=fingerprint, drift=score)


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
