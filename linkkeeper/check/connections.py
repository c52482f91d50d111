"""Connections per host name, as the server counts them: never more than the host's limit.

aiohttp's ``limit_per_host`` counts only connections in use, per (host, port, TLS)
key: a host reached over http and https gets the limit twice, and idle keep-alive
connections (or TLS ones still shutting down) are not counted at all. The server
sees all of them. `HostConnector` counts every connection of a host NAME from the
moment it is about to be opened until the server has seen it closed, across ports
and schemes, idle ones included. A new connection to a host at its limit first
closes one of the host's idle connections (any port or scheme), then waits for it
to be gone. In-flight requests are kept within the same limit by hosts.py, so
there is always an idle or closing connection to wait for.

"Gone" is as the server sees it, or a new connection could overtake the old one's
close: an idle connection we close is shut down gracefully (our FIN, or the TLS
close_notify) and counts until the server's own close arrives; a connection the
client dropped on its own (a timeout, a body not read to the end) counts for
CLOSE_GRACE more after its socket closed; one the server closed first, not at all.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp.client_proto import ResponseHandler

# Seconds a socket the client closed first still counts: time for the server to see the FIN.
CLOSE_GRACE = 0.1
# Seconds an idle connection closed for room waits for the server's close before it is cut.
GRACEFUL_CLOSE_TIMEOUT = 2.0


class CountedHandler(ResponseHandler):
    """aiohttp's protocol, noting whether the server closed the connection first."""

    peer_closed = False

    def eof_received(self) -> None:
        self.peer_closed = True
        super().eof_received()


def host_name(host: str | None) -> str:
    """The name connections are counted under (as urls.host_key: lower case, no trailing dot)."""
    return (host or "").lower().rstrip(".")


class HostConnector(aiohttp.TCPConnector):
    """A TCPConnector whose per-host limit counts open sockets per host name."""

    def __init__(self, *, host_limit: Callable[[str], int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._factory = functools.partial(CountedHandler, loop=self._loop)
        self._host_limit = host_limit
        self._graceful: set[ResponseHandler] = set()  # closed for room, the server's close awaited
        self._open: dict[str, set[ResponseHandler]] = {}
        self._reserved: dict[str, int] = {}
        self._room: dict[str, asyncio.Event] = {}
        self.peak_open: dict[str, int] = {}  # most sockets open at once per host, this run

    def open_count(self, host: str) -> int:
        """Sockets open or being opened to `host` now (in use, idle, or closing)."""
        name = host_name(host)
        return len(self._open.get(name, ())) + self._reserved.get(name, 0)

    async def _create_connection(
        self, req: aiohttp.ClientRequest, traces: list[Any], timeout: aiohttp.ClientTimeout
    ) -> ResponseHandler:
        name = host_name(req.connection_key.host)
        await self._make_room(name)
        self._reserved[name] = self._reserved.get(name, 0) + 1
        try:
            proto = await super()._create_connection(req, traces, timeout)
        finally:
            self._reserved[name] -= 1
            if not self._reserved[name]:
                del self._reserved[name]
                self._changed(name)
        self._track(name, proto)
        return proto

    async def _make_room(self, name: str) -> None:
        """Wait until one more socket to `name` stays within its limit, closing idle ones."""
        limit = max(1, self._host_limit(name))
        while self.open_count(name) >= limit:
            self._close_one_idle(name)
            event = self._room.setdefault(name, asyncio.Event())
            event.clear()
            if self.open_count(name) < limit:
                break
            await event.wait()

    def _close_one_idle(self, name: str) -> bool:
        """Close the host's longest-idle pooled connection (any port or scheme), if it has one."""
        oldest: tuple[float, Any, ResponseHandler] | None = None
        for key, pool in self._conns.items():
            if host_name(key.host) != name or not pool:
                continue
            proto, used = pool[0]
            if oldest is None or used < oldest[0]:
                oldest = (used, key, proto)
        if oldest is None:
            return False
        _, key, proto = oldest
        pool = self._conns[key]
        pool.popleft()
        if not pool:
            del self._conns[key]
        self._close_gracefully(proto)
        return True

    def _close_gracefully(self, proto: ResponseHandler) -> None:
        """Our side first (FIN, or TLS close_notify), then wait for the server's close."""
        transport = proto.transport
        if transport is None:
            return
        self._graceful.add(proto)
        self._loop.call_later(GRACEFUL_CLOSE_TIMEOUT, transport.abort)
        if transport.get_extra_info("sslcontext") is not None:
            proto.close()  # close_notify; the socket closes when the server answers it
        elif transport.can_write_eof():
            transport.write_eof()  # the server closes on EOF; then connection_lost
        else:
            proto.abort()

    def _track(self, name: str, proto: ResponseHandler) -> None:
        closed = proto.closed
        if closed is None or closed.done():  # already lost before we saw it
            return
        sockets = self._open.setdefault(name, set())
        sockets.add(proto)
        self.peak_open[name] = max(self.peak_open.get(name, 0), len(sockets))

        def forget() -> None:
            sockets.discard(proto)
            if not sockets and self._open.get(name) is sockets:
                del self._open[name]
            self._changed(name)

        def lost(future: asyncio.Future[None]) -> None:
            if not future.cancelled():
                future.exception()  # retrieved: a reset is an answer, not a warning
            answered = proto in self._graceful or getattr(proto, "peer_closed", False)
            self._graceful.discard(proto)
            if answered:
                forget()
            else:  # we hung up first: give the server time to see it
                self._loop.call_later(CLOSE_GRACE, forget)

        closed.add_done_callback(lost)

    def _changed(self, name: str) -> None:
        event = self._room.get(name)
        if event is not None:
            event.set()

    def _release(self, key: Any, protocol: ResponseHandler, *, should_close: bool = False) -> None:
        """A connection back in the pool may be what a waiting host needs closed."""
        super()._release(key, protocol, should_close=should_close)
        self._changed(host_name(key.host))
