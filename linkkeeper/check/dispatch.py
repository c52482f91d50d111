"""Which URL starts next: per-host queues, a bounded read-ahead, round-robin over ready hosts.

URLs flow lazily from the caller's iterable into per-host FIFO queues (at most
``buffer_size`` buffered); a check starts whenever its host has a free slot and
its rate and back-off allow it (hosts.py), one start per ready host per pass,
served hosts going to the back, so a throttled host never holds up the others.
The number of URLs of one host in progress (in flight, or waiting for a slot) is
capped too, so one failing host cannot fill the global limit. A check waiting out
a back-off before its retry is not in progress (`HostScheduler.rest`): it holds
no slot and no place, so retries overlap the bulk instead of stalling it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections import OrderedDict, deque
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from yarl import URL

from linkkeeper.check.hosts import HostScheduler
from linkkeeper.check.result import CheckResult
from linkkeeper.urls import host_key

# URLs of one host in progress at once (in flight or waiting for a slot), per slot of the host.
HOST_TASKS_PER_SLOT = 2

Precheck = Callable[[str], CheckResult | URL]  # a result decided offline, or the parsed URL
StartCheck = Callable[[str, URL], Awaitable[CheckResult]]  # check one URL, its slot taken


@dataclass(slots=True)
class Finished:
    """The end of a run's stream (with the error that stopped it, if any)."""

    error: BaseException | None


Outbox = asyncio.Queue[CheckResult | Finished]


@dataclass
class Dispatcher:
    """Feeds one run's URLs to `check`, within the global and per-host limits."""

    scheduler: HostScheduler
    precheck: Precheck
    check: StartCheck
    host_concurrency: Callable[[str], int]  # the host's slot count (its settings)
    concurrency: int
    buffer_size: int
    _queues: OrderedDict[str, deque[tuple[str, URL]]] = field(default_factory=OrderedDict)
    _active: set[asyncio.Task[None]] = field(default_factory=set)
    _per_host: dict[str, int] = field(default_factory=dict)
    _buffered: int = 0
    _exhausted: bool = False

    async def run(self, urls: Iterable[str] | AsyncIterable[str], out: Outbox) -> None:
        """Check every URL into `out`, then put `Finished` (never raises but cancellation)."""
        source = _aiter(urls)
        try:
            while True:
                self.scheduler.any_change.clear()
                await self._read_ahead(source, out)
                self._start_ready(out)
                if self._exhausted and not self._queues and not self._active:
                    break
                await self._wait_for_change()
        except BaseException as error:
            for task in self._active:
                task.cancel()
            await asyncio.gather(*self._active, return_exceptions=True)
            if isinstance(error, asyncio.CancelledError):
                raise
            await out.put(Finished(error))
            return
        await out.put(Finished(None))

    async def _read_ahead(self, source: AsyncIterator[str], out: Outbox) -> None:
        """Fill the buffer; URLs decided without the network go straight out."""
        while not self._exhausted and self._buffered < self.buffer_size:
            try:
                url = await anext(source)
            except StopAsyncIteration:
                self._exhausted = True
                break
            early = self.precheck(url)
            if isinstance(early, CheckResult):
                await out.put(early)
                continue
            self._queues.setdefault(host_key(early), deque()).append((url, early))
            self._buffered += 1

    def _startable(self, host: str) -> bool:
        cap = HOST_TASKS_PER_SLOT * self.host_concurrency(host)
        working = self._per_host.get(host, 0) - self.scheduler.resting.get(host, 0)
        return working < cap

    def _room(self) -> bool:
        """Below the global limit, not counting checks that rest before a retry."""
        return len(self._active) - self.scheduler.total_resting < self.concurrency

    def _start_ready(self, out: Outbox) -> None:
        """Round-robin: one start per ready host per pass; served hosts go to the back."""
        queues = self._queues
        progress = True
        while progress and self._room():
            progress = False
            for host in list(queues):
                if not self._room():
                    break
                if not self._startable(host) or not self.scheduler.try_start(host):
                    continue
                url, parsed = queues[host].popleft()
                self._buffered -= 1
                if queues[host]:
                    queues.move_to_end(host)
                else:
                    del queues[host]
                task = asyncio.create_task(self._check_into(url, parsed, out))
                self._active.add(task)
                self._per_host[host] = self._per_host.get(host, 0) + 1
                task.add_done_callback(functools.partial(self._finished, host=host))
                progress = True

    async def _check_into(self, url: str, parsed: URL, out: Outbox) -> None:
        await out.put(await self.check(url, parsed))

    def _finished(self, task: asyncio.Task[None], host: str) -> None:
        self._active.discard(task)
        self._per_host[host] -= 1
        self.scheduler.any_change.set()

    async def _wait_for_change(self) -> None:
        """Sleep until a slot frees, a task ends, or the earliest rate-limited host is due."""
        scheduler = self.scheduler
        timeout: float | None = None
        if self._room():
            now = scheduler.clock()
            for host in self._queues:
                gate = scheduler.gate(host)
                if gate.waiters or not self._startable(host):
                    continue
                wait = gate.ready_in(now)
                if wait is not None and (timeout is None or wait < timeout):
                    timeout = wait
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(scheduler.any_change.wait(), timeout)


async def _aiter(urls: Iterable[str] | AsyncIterable[str]) -> AsyncIterator[str]:
    if isinstance(urls, AsyncIterable):
        async for url in urls:
            yield url
    else:
        for url in urls:
            yield url
