"""The link-state machine (history/state.py): table-driven rules and properties over histories."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkkeeper.check.fingerprint import Fingerprint
from linkkeeper.check.result import CheckResult
from linkkeeper.history.state import (
    ConfirmPolicy,
    LinkState,
    StatePolicy,
    is_flaky,
    next_state,
)
from linkkeeper.vocab import FAILURES, INCONCLUSIVE, State, Status

URL = "https://news.example/story"
T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def check(status: Status, at: datetime = T0, fingerprint: str | None = None) -> CheckResult:
    return CheckResult(URL, status, "", started_at=at, fingerprint=fingerprint)


def replay(statuses: list[Status], step: timedelta = timedelta(days=1), policy=None) -> LinkState:
    state: LinkState | None = None
    for n, status in enumerate(statuses):
        state = next_state(state, check(status, T0 + n * step), policy).state
    assert state is not None
    return state


OK, F, B, X = Status.OK, Status.BROKEN, Status.BLOCKED, Status.EXCLUDED


@pytest.mark.parametrize(
    ("history", "expected"),
    [
        ([OK], State.ALIVE),
        ([Status.REDIRECTED], State.ALIVE),
        ([F], State.FAILING),
        ([F, F], State.FAILING),
        ([F, F, F], State.FAILING),  # 3 checks but only 2 days
        ([F, F, F, F], State.DEAD),  # 4 checks over 3 days
        ([F, F, F, F, OK], State.RECOVERED),
        ([F, OK], State.RECOVERED),
        ([F, OK, OK], State.ALIVE),
        ([B], State.BLOCKED),
        ([Status.RATE_LIMITED], State.BLOCKED),
        ([OK, B], State.ALIVE),  # inconclusive: the state stays
        ([F, B, B, B, B, B], State.FAILING),
        ([X], State.UNCHECKED),
        ([OK, X], State.ALIVE),
        ([OK, F, OK, F], State.FLAKY),  # three switches in the recent window
        ([OK, F, OK], State.RECOVERED),
    ],
)
def test_state_rules(history: list[Status], expected: State) -> None:
    assert replay(history).state == expected


def test_counters_and_since() -> None:
    first = next_state(None, check(F, T0)).state
    assert (first.consecutive_failures, first.first_failed, first.since) == (
        1, "2026-11-01T08:00:00+00:00", "2026-11-01T08:00:00+00:00",
    )  # fmt: skip
    second = next_state(first, check(F, T0 + timedelta(days=1))).state
    assert second.since == first.since  # the same state: since kept
    assert second.first_failed == first.first_failed and second.checks == 2
    back = next_state(second, check(OK, T0 + timedelta(days=2))).state
    assert (back.consecutive_failures, back.first_failed) == (0, None)
    assert back.last_ok == back.since == "2026-11-03T08:00:00+00:00"
    assert back.recent == "FFO"


def test_new_failure_only_on_the_first_failure() -> None:
    ok = next_state(None, check(OK))
    broke = next_state(ok.state, check(F, T0 + timedelta(days=1)))
    again = next_state(broke.state, check(F, T0 + timedelta(days=2)))
    assert (ok.new_failure, broke.new_failure, again.new_failure) == (False, True, False)


def test_confirm_policy_is_read() -> None:
    quick = StatePolicy(confirm=ConfirmPolicy(checks=2, days=0))
    assert replay([F, F], step=timedelta(minutes=1), policy=quick).state == State.DEAD


def _fp(text: str) -> str:
    return Fingerprint.of_text(text).dumps()


ARTICLE = " ".join(f"word{n} about the council budget vote" for n in range(40))
OTHER = " ".join(f"term{n} of a wholly unrelated shopping page" for n in range(40))


def test_drift_is_a_state_rule() -> None:
    first = next_state(None, check(OK, T0, _fp(ARTICLE)))
    assert first.state.state == State.ALIVE and first.state.drift == 0.0
    assert first.state.first_fingerprint == _fp(ARTICLE)
    moved = next_state(first.state, check(OK, T0 + timedelta(days=1), _fp(OTHER)))
    assert moved.state.state == State.DRIFTED
    assert moved.evidence["drift"]["vs_first"] >= 0.5
    assert moved.state.first_fingerprint == _fp(ARTICLE)  # the baseline stays
    head_only = next_state(moved.state, check(OK, T0 + timedelta(days=2)))
    assert head_only.state.state == State.DRIFTED  # no content: nothing says it came back
    assert head_only.state.since == moved.state.since
    back = next_state(head_only.state, check(OK, T0 + timedelta(days=3), _fp(ARTICLE)))
    assert back.state.state == State.ALIVE
    failed = next_state(moved.state, check(F, T0 + timedelta(days=4), _fp(OTHER)))
    assert failed.state.state == State.FAILING and failed.evidence == {}


statuses = st.sampled_from(list(Status))
days = st.floats(min_value=0, max_value=3, allow_nan=False)


def _final(history: list[tuple[Status, datetime]]) -> LinkState | None:
    state: LinkState | None = None
    for status, at in history:
        state = next_state(state, check(status, at)).state
    return state


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(statuses, days), max_size=30))
def test_blocked_and_rate_limited_never_lead_to_dead(history: list[tuple[Status, float]]) -> None:
    """Taking every blocked/rate-limited check out of a history never changes whether the
    link ends dead, nor its failure count; a link only ever refused is `blocked`."""
    timed, at = [], T0
    for status, gap in history:
        at += timedelta(days=gap)
        timed.append((status, at))
    full = _final(timed)
    without = _final([(s, t) for s, t in timed if s not in INCONCLUSIVE])
    if without is None:
        assert full is None or full.state == State.BLOCKED
    else:
        assert full is not None
        assert (full.state == State.DEAD) == (without.state == State.DEAD)
        assert full.consecutive_failures == without.consecutive_failures


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(statuses, days), min_size=1, max_size=30))
def test_dead_needs_n_failures_over_d_days(history: list[tuple[Status, float]]) -> None:
    """Dead only when the last `checks` failures in a row (no success since) span `days`."""
    policy = StatePolicy(confirm=ConfirmPolicy(checks=3, days=2.0))
    state: LinkState | None = None
    at = T0
    failures_since_ok: list[datetime] = []
    for status, gap in history:
        at += timedelta(days=gap)
        state = next_state(state, check(status, at), policy).state
        if status in (Status.OK, Status.REDIRECTED):
            failures_since_ok = []
        elif status in FAILURES:
            failures_since_ok.append(at)
        if state.state == State.DEAD:
            assert len(failures_since_ok) >= 3
            assert failures_since_ok[-1] - failures_since_ok[0] >= timedelta(days=2)


@given(st.text(alphabet="OFB", max_size=8))
def test_flaky_needs_outcomes_that_alternate(recent: str) -> None:
    if is_flaky(recent):
        assert recent.count("O") >= 2 and recent.count("F") >= 2
    assert not is_flaky(recent.replace("F", "O")) and not is_flaky(recent.replace("O", "F"))
    assert is_flaky(recent + "OFOF") or is_flaky(recent + "FOFO")
