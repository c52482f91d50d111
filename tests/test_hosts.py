"""Per-host gates with a fake clock: slots, token bucket, throttling and recovery."""

from __future__ import annotations

import asyncio
import math
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from linkkeeper.check.hosts import (
    HOST_SIGNAL_THROTTLES,
    HostGate,
    HostLimits,
    HostScheduler,
    backoff_delay,
    parse_retry_after,
)


def test_concurrency_slots_are_never_exceeded() -> None:
    gate = HostGate("a.example", HostLimits(concurrency=2, rate=0))
    assert gate.try_start(0.0) and gate.try_start(0.0)
    assert not gate.try_start(0.0)
    assert gate.ready_in(0.0) is None  # waiting for a slot, not for time
    gate.finish()
    assert gate.try_start(0.0)
    assert gate.stats.max_in_flight == 2


def test_rate_spaces_starts() -> None:
    gate = HostGate("a.example", HostLimits(concurrency=100, rate=4))
    assert gate.try_start(10.0)
    assert not gate.try_start(10.1)
    assert gate.ready_in(10.1) == pytest.approx(0.15)
    assert gate.try_start(10.25)
    # over 10 s of steady demand: 4/s, never more
    now, started = 10.25, 0
    while now < 20.25:
        if gate.try_start(now):
            started += 1
        now += 0.01
    assert 39 <= started <= 40


def test_burst_allows_a_few_at_once_then_the_rate() -> None:
    gate = HostGate("a.example", HostLimits(concurrency=100, rate=1, burst=3))
    assert all(gate.try_start(0.0) for _ in range(3))
    assert not gate.try_start(0.0)
    assert gate.ready_in(0.0) == pytest.approx(1.0)


def test_unlimited_rate() -> None:
    gate = HostGate("a.example", HostLimits(concurrency=1000, rate=0))
    assert all(gate.try_start(0.0) for _ in range(1000))


def test_a_lone_429_leaves_the_host_alone_and_the_url_alone_waits() -> None:
    gate = HostGate("a.example", HostLimits(concurrency=8, rate=20))
    for _ in range(10):
        gate.succeed()
    assert gate.throttle(100.0, 2.0, backoff_base=0.5, backoff_cap=30) is None
    assert gate.rate == 20  # one page's 429 says nothing about the rest of the site
    assert gate.try_start(100.1)  # not stopped either: the limited URL waits on its own


def test_scattered_429s_on_a_big_host_never_slow_it() -> None:
    # 3% of a busy host's answers are 429/503 of different pages: its rate stays
    gate = HostGate("a.example", HostLimits(concurrency=8, rate=0))
    now = 0.0
    for i in range(1000):
        now += 0.005
        if i % 33 == 0:
            assert gate.throttle(now, 1.0, backoff_base=0.5, backoff_cap=30, url=f"/p{i}") is None
        else:
            gate.succeed()
    assert math.isinf(gate.rate) and gate.ready_in(now) == 0.0


def test_throttles_together_pause_the_host_past_retry_after() -> None:
    gate = HostGate("a.example", HostLimits(concurrency=8, rate=20))
    for url in ("/a", "/b"):
        assert gate.throttle(100.0, 2.0, backoff_base=0.5, backoff_cap=30, url=url) is None
    assert gate.throttle(100.0, 2.0, backoff_base=0.5, backoff_cap=30, url="/c") == 2.0
    assert gate.rate == 10  # one episode, one halving
    assert not gate.try_start(101.9)
    assert gate.ready_in(101.0) == pytest.approx(1.0)
    assert gate.try_start(102.0)


def test_simultaneous_429s_halve_once() -> None:
    gate = HostGate("a.example", HostLimits(concurrency=8, rate=20))
    for _ in range(5):  # five requests in flight all come back 429
        gate.throttle(50.0, 1.0, backoff_base=0.5, backoff_cap=30)
    assert gate.rate == 10
    assert gate.stats.throttled == 5
    assert gate.ready_in(50.0) == pytest.approx(1.0)


def test_repeated_throttles_without_retry_after_back_off_exponentially() -> None:
    gate = HostGate("a.example", HostLimits(concurrency=8, rate=20))
    delays = []
    now = 0.0
    for _ in range(9):
        delay = gate.throttle(now, None, backoff_base=0.5, backoff_cap=30)  # distinct URLs
        delays.append(delay)
        now += delay or 1.0  # next 503 arrives once the back-off has passed
    # every third URL throttled makes a pause (a pause answers the throttles before it),
    # each twice as long as the last until a success
    assert delays == [None, None, 0.5, None, None, 1, None, None, 2]
    assert gate.rate == 2.5  # halved once per pause


def test_rate_recovers_gradually_after_successes() -> None:
    gate = HostGate("a.example", HostLimits(concurrency=8, rate=20))
    for _ in range(HOST_SIGNAL_THROTTLES):  # throttled together: the host slows down
        gate.throttle(0.0, 1.0, backoff_base=0.5, backoff_cap=30)
    assert gate.rate == 10
    gate.succeed()
    assert gate.rate == pytest.approx(12.5)
    for _ in range(50):
        gate.succeed()
    assert gate.rate == 20  # never above the configured rate


def test_unlimited_host_that_throttles_gets_a_finite_rate_then_unlimited_again() -> None:
    gate = HostGate("a.example", HostLimits(concurrency=8, rate=0))
    for _ in range(HOST_SIGNAL_THROTTLES):
        gate.throttle(0.0, None, backoff_base=0.5, backoff_cap=30)
    assert math.isfinite(gate.rate)
    for _ in range(100):
        gate.succeed()
    assert math.isinf(gate.rate)


def test_parse_retry_after() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("120", now) == 120
    assert parse_retry_after(" 1.5 ", now) == 1.5
    assert parse_retry_after("-3", now) == 0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30
    assert parse_retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True), now) == 0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after("", now) is None
    assert parse_retry_after(None, now) is None
    assert parse_retry_after("nan", now) is None


def test_backoff_delay_is_capped_exponential_with_jitter() -> None:
    rng = random.Random(7)
    for failures, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (10, 30.0)]:
        for _ in range(50):
            delay = backoff_delay(failures, 0.5, 30.0, rng)
            assert ceiling / 2 <= delay <= ceiling
    samples = {backoff_delay(3, 0.5, 30.0, rng) for _ in range(20)}
    assert len(samples) > 1  # jittered, not lockstep


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_scheduler_waiters_get_slots_as_they_free() -> None:
    scheduler = HostScheduler(lambda host: HostLimits(concurrency=2, rate=0))
    in_flight = 0
    peak = 0

    async def request() -> None:
        nonlocal in_flight, peak
        async with scheduler.slot("a.example"):
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0.005)
            in_flight -= 1

    await asyncio.gather(*(request() for _ in range(10)))
    assert peak == 2
    assert scheduler.gates["a.example"].stats.requests == 10


async def test_scheduler_dispatcher_never_jumps_waiting_requests() -> None:
    scheduler = HostScheduler(lambda host: HostLimits(concurrency=1, rate=0))
    assert scheduler.try_start("a.example")
    waiter = asyncio.create_task(scheduler.acquire("a.example"))
    await asyncio.sleep(0)
    scheduler.gates["a.example"].finish()  # slot free, but someone is waiting for it
    assert not scheduler.try_start("a.example")
    scheduler.notify("a.example")
    await asyncio.wait_for(waiter, 1)
    assert scheduler.gates["a.example"].in_flight == 1


async def test_scheduler_waits_for_the_rate() -> None:
    clock = FakeClock()
    scheduler = HostScheduler(lambda host: HostLimits(concurrency=5, rate=10), clock=clock)
    await scheduler.acquire("a.example")
    second = asyncio.create_task(scheduler.acquire("a.example"))
    await asyncio.sleep(0.02)
    assert not second.done()  # fake time has not moved: the token is not due
    clock.now = 0.1
    await asyncio.wait_for(second, 1)


def test_one_flaky_url_answering_503_again_and_again_never_pauses_the_host() -> None:
    gate = HostGate("a.example", HostLimits(concurrency=8, rate=20))
    now = 0.0
    for _ in range(5):
        assert gate.throttle(now, None, backoff_base=0.5, backoff_cap=30, url="/flaky") is None
        now += 2.0
    assert gate.ready_in(now) == 0.0


def test_flaky_pages_scattered_among_successes_slow_the_host_but_never_pause_it() -> None:
    # a big site where one answer in four is a flaky page's 503 (each a different URL):
    # the host is slowed as a whole, never stopped
    gate = HostGate("a.example", HostLimits(concurrency=8, rate=0))
    now = 0.0
    for i in range(200):
        now += 0.01
        if i % 4 == 3:
            assert gate.throttle(now, 1.0, backoff_base=0.5, backoff_cap=30, url=f"/p{i}") is None
        else:
            gate.succeed()
    assert gate.stats.throttled == 50
    assert gate.ready_in(now) == 0.0


def test_a_host_answering_mostly_429_is_paused_within_a_few_answers() -> None:
    gate = HostGate("a.example", HostLimits(concurrency=8, rate=0))
    for _ in range(30):
        gate.succeed()
    delays = [
        gate.throttle(10.0, 2.0, backoff_base=0.5, backoff_cap=30, url=f"/p{i}") for i in range(4)
    ]
    # a window of 8 answers: 3 successes and 3 throttles is not yet half; the 4th is
    assert delays[:3] == [None, None, None] and delays[3] == 2.0
    assert gate.ready_in(10.0) == pytest.approx(2.0)
