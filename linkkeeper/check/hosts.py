"""Per-host politeness: concurrency slots, request rate and adaptive back-off.

Speed comes from many hosts at once, never from hammering one. Each
host gets a `HostGate`: at most `concurrency` requests in flight, starts spaced by
a token bucket (`rate` per second, small `burst`), and a back-off that the host
itself can trigger: when several of its URLs answer 429 or 503 together, its
next start is pushed past Retry-After (or an exponential delay) and its rate
halved; successes bring the rate back gradually (x1.25 each), as lychee and
linkinator do for the whole host. A lone throttled URL among successes only
waits on its own: one page's 429 says nothing about the rest of a big site.

`HostGate` is plain state driven by an explicit clock value, so it is unit-tested
with a fake clock; `HostScheduler` adds the asyncio waiting on top.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from linkkeeper.clock import utcnow

# When the configured rate is "unlimited" (0) and the host says 429/503, the adaptive
# rate is half the rate it was getting (at least this figure); at 4x it, unlimited again.
UNLIMITED_BASELINE_RATE = 16.0
# Halving stops here: a host that needs longer pauses says so with Retry-After (or
# keeps answering 429, which pushes its next start exponentially, up to backoff_cap).
MIN_ADAPTIVE_RATE = 0.5
RECOVERY_FACTOR = 1.25
# A host is paused (not just slowed) when throttled URLs come together: at least
# HOST_SIGNAL_THROTTLES distinct ones among its last THROTTLE_WINDOW answers, making at
# least THROTTLE_SHARE of them. A host that rate-limits us answers most requests 429
# and trips this within a few answers; a few flaky pages scattered among successes
# (a few percent of a big site) do not: the host keeps its rate, and only that URL
# waits its Retry-After.
HOST_SIGNAL_THROTTLES = 3
THROTTLE_WINDOW = 8
THROTTLE_SHARE = 0.5
EPISODE_SECONDS = 1.0  # at most one halving per second (or per pause)


@dataclass(frozen=True, slots=True)
class HostLimits:
    """What one host may receive: concurrent requests and requests/second (0 = unlimited)."""

    concurrency: int = 8
    rate: float = 20.0
    burst: int = 1


@dataclass(slots=True)
class HostStats:
    """Counters per host, for the run summary ("slowest hosts") and politeness checks."""

    requests: int = 0
    responses: dict[int, int] = field(default_factory=dict)  # HTTP status -> count
    errors: int = 0  # requests that ended without an HTTP response
    throttled: int = 0  # 429/503 answers that slowed the host down
    retries: int = 0
    max_in_flight: int = 0
    busy_seconds: float = 0.0  # sum of request durations
    waited_seconds: float = 0.0  # time requests spent waiting for a slot or the rate

    @property
    def mean_latency(self) -> float:
        answered = self.requests or 1
        return self.busy_seconds / answered


class HostGate:
    """One host's scheduling state. All methods take `now` (monotonic seconds)."""

    def __init__(self, host: str, limits: HostLimits) -> None:
        self.host = host
        self.limits = limits
        self.in_flight = 0
        self.waiters = 0
        self.stats = HostStats()
        self.rate = limits.rate if limits.rate > 0 else math.inf
        self._next_token = -math.inf  # GCRA theoretical arrival time
        self.blocked_until = -math.inf  # back-off asked for by the host
        self.consecutive_throttles = 0
        # the last answers: None for a success, the URL (or a token) for a throttled one
        self._recent: deque[object] = deque(maxlen=THROTTLE_WINDOW)
        self._starts: deque[float] = deque(maxlen=THROTTLE_WINDOW)  # recent start times
        self._episode_until = -math.inf  # throttles before this belong to the last slow-down

    @property
    def interval(self) -> float:
        return 0.0 if math.isinf(self.rate) else 1.0 / self.rate

    def ready_in(self, now: float) -> float | None:
        """Seconds until a request may start; None when waiting for a slot to free."""
        if self.in_flight >= self.limits.concurrency:
            return None
        earliest_by_rate = self._next_token - (self.limits.burst - 1) * self.interval
        return max(0.0, earliest_by_rate - now, self.blocked_until - now)

    def try_start(self, now: float) -> bool:
        """Take a slot and a token if both are available now."""
        wait = self.ready_in(now)
        if wait is None or wait > 0:
            return False
        self.in_flight += 1
        self._starts.append(now)
        self.stats.requests += 1
        self.stats.max_in_flight = max(self.stats.max_in_flight, self.in_flight)
        self._next_token = max(self._next_token, now) + self.interval
        return True

    def finish(self) -> None:
        self.in_flight -= 1
        assert self.in_flight >= 0, "finish() without try_start()"

    def throttle(
        self,
        now: float,
        retry_after: float | None,
        backoff_base: float,
        backoff_cap: float,
        url: str | None = None,
    ) -> float | None:
        """The host answered 429/503: slow it down as a whole if the host, not a page, says so.

        A lone throttled URL among successes changes nothing for the host and None
        is returned: the caller makes that URL wait its Retry-After or back-off (a
        flaky page answering 503 twice is still one URL's trouble). When several URLs
        are throttled together (HOST_SIGNAL_THROTTLES distinct ones, at least
        THROTTLE_SHARE of the last THROTTLE_WINDOW answers), the host is overloaded or
        rate-limiting us: its rate is halved (from the rate it was actually getting,
        when unlimited), its next start pushed past Retry-After (or an exponential
        back-off), and that delay is returned. `url` None counts as a distinct URL.
        """
        self.stats.throttled += 1
        self._recent.append(url if url is not None else object())
        throttled = [key for key in self._recent if key is not None]
        if (
            len(set(throttled)) < HOST_SIGNAL_THROTTLES
            or len(throttled) < THROTTLE_SHARE * len(self._recent)
        ):
            return None
        new_pause = now >= self.blocked_until
        # Answers to requests sent together arrive together: one slow-down per episode.
        if now >= self._episode_until:
            current = self.observed_rate(now) if math.isinf(self.rate) else self.rate
            self.rate = max(MIN_ADAPTIVE_RATE, current / 2)
            self._next_token = max(self._next_token, now + self.interval)
            self._episode_until = now + EPISODE_SECONDS
        if new_pause:
            self.consecutive_throttles += 1
            # the pause answers these throttles; the next one needs fresh evidence
            self._recent.clear()
        if retry_after is not None:
            delay = retry_after
        else:
            delay = min(backoff_cap, backoff_base * 2 ** (self.consecutive_throttles - 1))
        self.blocked_until = max(self.blocked_until, now + delay)
        self._episode_until = max(self._episode_until, self.blocked_until)
        # a slower rate must not let a queued token through early
        self._next_token = max(self._next_token, now + delay)
        return delay

    def observed_rate(self, now: float) -> float:
        """Requests per second this host has been getting lately (for halving "unlimited")."""
        if len(self._starts) < 2:
            return UNLIMITED_BASELINE_RATE
        span = max(now, self._starts[-1]) - self._starts[0]
        return max(UNLIMITED_BASELINE_RATE, (len(self._starts) - 1) / span) if span > 0 else (
            UNLIMITED_BASELINE_RATE * 4)

    def succeed(self) -> None:
        """A non-throttled answer: recover the rate step by step toward the configured one."""
        self.consecutive_throttles = 0
        self._recent.append(None)
        configured = self.limits.rate if self.limits.rate > 0 else math.inf
        if self.rate >= configured:
            return
        recovered = self.rate * RECOVERY_FACTOR
        if math.isinf(configured) and recovered > UNLIMITED_BASELINE_RATE * 4:
            recovered = math.inf
        self.rate = min(configured, recovered)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After value (delta-seconds or HTTP-date); None if unusable."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or utcnow()
    return max(0.0, (when - now).total_seconds())


def backoff_delay(
    failures: int, base: float, cap: float, rng: random.Random | None = None
) -> float:
    """Exponential back-off with "equal jitter": half fixed, half random, capped.

    The fixed half keeps a real pause; the random half keeps URLs that failed
    together from retrying in lockstep.
    """
    ceiling = min(cap, base * 2 ** max(0, failures - 1))
    return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)


class HostScheduler:
    """Async access to the gates: `async with scheduler.slot(host)` around each request."""

    def __init__(
        self,
        limits_for: Callable[[str], HostLimits],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limits_for = limits_for
        self.clock = clock
        self.gates: dict[str, HostGate] = {}
        self._changed: dict[str, asyncio.Event] = {}
        self.any_change = asyncio.Event()  # wakes the dispatcher
        self.resting: dict[str, int] = {}  # checks waiting out a back-off, per host
        self.total_resting = 0

    async def rest(self, host: str, delay: float) -> None:
        """Wait before a retry, holding nothing: no slot, and not counted as work in progress.

        The dispatcher starts other URLs meanwhile (dispatch.py); when the wait is over
        the retry asks for a slot like any request, ahead of URLs not yet started.
        """
        self.resting[host] = self.resting.get(host, 0) + 1
        self.total_resting += 1
        self.any_change.set()
        try:
            await asyncio.sleep(delay)
        finally:
            self.total_resting -= 1
            self.resting[host] -= 1
            if not self.resting[host]:
                del self.resting[host]

    def gate(self, host: str) -> HostGate:
        gate = self.gates.get(host)
        if gate is None:
            gate = self.gates[host] = HostGate(host, self._limits_for(host))
            self._changed[host] = asyncio.Event()
        return gate

    def try_start(self, host: str) -> bool:
        """Non-blocking start for the dispatcher: never jumps ahead of waiting requests."""
        gate = self.gate(host)
        return gate.waiters == 0 and gate.try_start(self.clock())

    async def acquire(self, host: str) -> None:
        gate = self.gate(host)
        gate.waiters += 1
        began = self.clock()
        try:
            while True:
                now = self.clock()
                if gate.try_start(now):
                    gate.stats.waited_seconds += now - began
                    return
                event = self._changed[host]
                delay = gate.ready_in(now)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), delay)
        finally:
            gate.waiters -= 1

    def release(self, host: str) -> None:
        self.gates[host].finish()
        self.notify(host)

    def notify(self, host: str) -> None:
        """Wake everyone waiting on this host (they re-check), and the dispatcher."""
        event = self._changed.get(host)
        if event is not None:
            event.set()
            self._changed[host] = asyncio.Event()
        self.any_change.set()

    @contextlib.asynccontextmanager
    async def slot(self, host: str, *, already_started: bool = False) -> AsyncIterator[HostGate]:
        """Hold one of the host's slots for one request (taken by the dispatcher if already_started)."""
        if not already_started:
            await self.acquire(host)
        try:
            yield self.gates[host]
        finally:
            self.release(host)
