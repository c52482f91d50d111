"""Answers to the same request within a run, fetched once.

Many links of an archive end on the same URL: every old article of a site that
now redirects to its home page asks for that home page again. Within one run the
answer is the same, so a (method, URL) is sent once: while its request is in
flight, other checks wait for it instead of sending their own; once answered
with a final, cacheable status (not 5xx, 408 or 429, which are worth asking
again), later checks reuse the answer. Failures are shared only while in flight
(each check then decides its own retry). The store is bounded in entries and
sample bytes (least recently used first out), so memory stays flat on big runs.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Generic, Protocol, TypeVar

# Statuses that are not the URL's lasting answer: asked again, never reused.
_ASK_AGAIN = frozenset({408, 425, 429})
MAX_ENTRIES = 4096
MAX_BYTES = 16 * 2**20


class Reusable(Protocol):
    status: int
    sample: bytes | None


def reusable(answer: Reusable) -> bool:
    """Whether later checks in the same run may take this answer as their own."""
    return answer.status < 500 and answer.status not in _ASK_AGAIN


A = TypeVar("A", bound=Reusable)


class AnswerCache(Generic[A]):
    """One run's answers by (method, URL), and the requests for them in flight."""

    def __init__(self, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._done: OrderedDict[tuple[str, str], A] = OrderedDict()
        self._bytes = 0
        self._flying: dict[tuple[str, str], asyncio.Future[A]] = {}
        self.reused = 0  # answers given without a request of their own

    async def ask(self, method: str, url: str, send: Callable[[], Awaitable[A]]) -> tuple[A, bool]:
        """The answer to (method, url) and whether it was shared (False: `send` sent it)."""
        key = (method, url)
        done = self._done.get(key)
        if done is not None:
            self._done.move_to_end(key)
            self.reused += 1
            return done, True
        flying = self._flying.get(key)
        if flying is not None:
            await asyncio.wait({flying})
            if not flying.cancelled():  # the sender was cancelled: ask ourselves
                self.reused += 1
                return flying.result(), True  # raises the shared failure
        return await self._send(key, send), False

    async def _send(self, key: tuple[str, str], send: Callable[[], Awaitable[A]]) -> A:
        future: asyncio.Future[A] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieve)
        self._flying[key] = future
        try:
            answer = await send()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as error:
            future.set_exception(error)
            raise
        else:
            future.set_result(answer)
            if reusable(answer):
                self._store(key, answer)
            return answer
        finally:
            if self._flying.get(key) is future:
                del self._flying[key]

    def _store(self, key: tuple[str, str], answer: A) -> None:
        size = len(answer.sample or b"")
        if size > self.max_bytes:
            return
        self._done[key] = answer
        self._bytes += size
        while len(self._done) > self.max_entries or self._bytes > self.max_bytes:
            _, old = self._done.popitem(last=False)
            self._bytes -= len(old.sample or b"")


def _retrieve(future: asyncio.Future[object]) -> None:
    """A failure nobody else waited for is not an unretrieved-exception warning."""
    if not future.cancelled():
        future.exception()
