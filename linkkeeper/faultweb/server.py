"""The fault-injection web server: virtual hosts, TLS ports, latency, and the request log.

One aiohttp low-level server answers on four loopback ports (plain HTTP, good
TLS, expired TLS, wrong-name TLS). Each request is logged with its TCP
connection, so tests can assert politeness from the server's side: how many
connections and requests a checker held open per host at once, and when it
came back after a 429.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from yarl import URL

from linkkeeper.faultweb import bodies
from linkkeeper.faultweb.behaviours import DEFAULT_BEHAVIOURS, BadPath, Behaviour, Hit
from linkkeeper.faultweb.hostile import HOSTILE_BEHAVIOURS
from linkkeeper.faultweb.resolver import FaultResolver
from linkkeeper.faultweb.tls import make_certificates, sni_of
from linkkeeper.faultweb.truthsites import HOST_BEHAVIOURS, TRUTH_BEHAVIOURS, TRUTH_HOSTS

logger = logging.getLogger(__name__)

DEFAULT_HOSTS = (
    "news.example",
    "www.news.example",
    "images.example",
    "cdn.example",
    "blog.example",
    "secure.example",
    "social.example",
    "archive.example",
    *TRUTH_HOSTS,  # soft-404, redirect-home, meta-refresh, GBK and Big5 sites (truthsites.py)
)
EXPIRED_HOST = "expired.example"  # served on https_expired_port: certificate expired
WRONG_NAME_HOST = (
    "wrongname.example"  # served on https_wrongname_port: certificate for another name
)
CLOSED_HOST = "closed.example"  # mapped to closed_port: connection refused
UNRESOLVABLE_HOST = "does-not-resolve.invalid"  # never mapped: a name that does not resolve

LOOPBACK = "127.0.0.1"
SHUTDOWN_GRACE = 0.5  # seconds in-flight requests get when the server stops

Latency = float | tuple[float, float]  # milliseconds: fixed, or uniform in [min, max]


@dataclass(slots=True)
class LogEntry:
    """One request as the server saw it. Times are time.monotonic(), comparable across threads."""

    host: str  # virtual host (Host header, lower-case, no port)
    method: str
    path: str  # path and query, raw, as received
    connection: int  # id of the TCP connection it came on
    t_start: float
    t_end: float | None = None  # None while in flight
    status: int | None = None  # status sent; None if no response reached the wire
    scheme: str = "http"
    port: int = 0  # the server port it arrived on
    user_agent: str = ""
    seq_start: int = field(default=0, repr=False)  # total order of server events
    seq_end: int | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class Connection:
    """One TCP (or TLS) connection, open from connection_made to connection_lost."""

    id: int
    port: int
    tls: bool
    opened: float
    closed: float | None = None
    host: str | None = None  # the TLS handshake's SNI name, else the Host of its first request
    requests: int = 0
    seq_open: int = field(default=0, repr=False)
    seq_close: int | None = field(default=None, repr=False)


def max_overlap(intervals: Iterable[tuple[int, int | None]]) -> int:
    """Most intervals open at once; an end of None means still open."""
    events: list[tuple[int, int]] = []
    for start, end in intervals:
        events.append((start, 1))
        if end is not None:
            events.append((end, -1))
    events.sort()
    current = peak = 0
    for _, delta in events:
        current += delta
        peak = max(peak, current)
    return peak


def decoded_path(path: str) -> str:
    """ "/ok/caf%C3%A9?x=1" -> "/ok/café": the key behaviours and counters use (aiohttp's request.path)."""
    return URL(path.split("?", 1)[0] or "/").path


def virtual_host(authority: str) -> str:
    """ "News.Example:8080" -> "news.example"; "[::1]:80" -> "::1"."""
    authority = authority.strip().lower()
    if authority.startswith("["):
        return authority[1:].split("]", 1)[0]
    if authority.count(":") == 1:
        authority = authority.split(":", 1)[0]
    return authority.rstrip(".")


class _TrackingServer(web.Server):
    """aiohttp's low-level server, telling FaultWeb when each connection opens and closes."""

    def __init__(self, handler: Any, *, web_: FaultWeb, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._web = web_

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        self._web._connection_opened(handler, transport)

    def connection_lost(self, handler: RequestHandler, exc: BaseException | None = None) -> None:
        super().connection_lost(handler, exc)
        self._web._connection_closed(handler)


class FaultWeb:
    """A local web that misbehaves on request: `with FaultWeb() as web: ...`.

    Runs in a background thread with its own event loop, so the code under
    test may use the main loop or run as a subprocess. Use `connect_to_args()`
    or `resolver()` to reach it with realistic URLs (http://news.example/ok/a).
    """

    def __init__(
        self,
        *,
        hosts: Iterable[str] = DEFAULT_HOSTS,
        latency: Mapping[str, Latency] | None = None,
        default_latency: Latency = 0,
        seed: int = 0,
        http_port: int = 0,
        https_port: int = 0,
        https_expired_port: int = 0,
        https_wrongname_port: int = 0,
        behaviours: Iterable[Behaviour] = (),
        backlog: int = 1024,
        capacity: Mapping[str, int] | None = None,
        shed: Mapping[str, int] | None = None,
    ) -> None:
        special = {EXPIRED_HOST, WRONG_NAME_HOST, CLOSED_HOST}
        self.hosts: list[str] = [
            h.lower() for h in dict.fromkeys(hosts) if h.lower() not in special
        ]
        self._latency = {virtual_host(h): v for h, v in (latency or {}).items()}
        self._default_latency = default_latency
        self._seed = seed
        self._rngs: dict[str, random.Random] = {}
        self._requested_ports = {
            "http": http_port,
            "https": https_port,
            "https_expired": https_expired_port,
            "https_wrongname": https_wrongname_port,
        }
        self._backlog = backlog
        # A real server's limits, per host: `capacity` requests are served at once (more
        # wait their turn, as in a worker pool); past `shed` requests in the house, the
        # server answers 429 at once (a rate limiter). Peers that open dozens of
        # connections to one host meet these, as they would on the real web.
        self._capacity = {virtual_host(h): n for h, n in (capacity or {}).items()}
        self._shed = {virtual_host(h): n for h, n in (shed or {}).items()}
        self._workers: dict[str, asyncio.Semaphore] = {}
        self._in_house: dict[str, int] = {}
        self.shed_count = 0
        self._behaviours: dict[str, Behaviour] = {b.name: b for b in DEFAULT_BEHAVIOURS}
        self._host_behaviours: dict[str, dict[str, Behaviour]] = {}
        for behaviour in (*TRUTH_BEHAVIOURS, *HOSTILE_BEHAVIOURS):
            self.add_behaviour(behaviour)
        for host, behaviour in HOST_BEHAVIOURS.items():
            self.add_behaviour(behaviour, host=host)
        for behaviour in behaviours:
            self.add_behaviour(behaviour)

        self.http_port = self.https_port = self.https_expired_port = self.https_wrongname_port = 0
        self.closed_port = 0
        self.ca_pem = ""

        self._lock = threading.Lock()
        self._log: list[LogEntry] = []
        self._connections: list[Connection] = []
        self._open: dict[RequestHandler, Connection] = {}
        # live count of open connections per host name (from the moment the name is known)
        self._open_by_host: dict[str, int] = {}
        self._peak_by_host: dict[str, int] = {}
        self._counts: dict[tuple[str, str], int] = {}
        self._remembered: dict[tuple[str, str], bytes] = {}
        self._seq = itertools.count(1)
        self._connection_ids = itertools.count(1)

        self._tmpdir: Path | None = None
        self._runner: web.ServerRunner | None = None
        self._closing: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # -- behaviours --------------------------------------------------------------------------

    def add_behaviour(self, behaviour: Behaviour, host: str | None = None) -> None:
        """Add or replace a behaviour, for every host or only for `host` (e.g. a soft-404 site)."""
        if host is None:
            self._behaviours[behaviour.name] = behaviour
        else:
            self._host_behaviours.setdefault(virtual_host(host), {})[behaviour.name] = behaviour

    def behaviour_for(self, host: str, path: str) -> Behaviour:
        name = path.split("/", 2)[1] if path.startswith("/") and path != "/" else ""
        own = self._host_behaviours.get(virtual_host(host), {})
        return own.get(name) or self._behaviours.get(name) or own.get("*") or self._behaviours["*"]

    def payload_for(self, host: str, path: str) -> bytes:
        """The body bytes the server sends for (host, path): de-chunked, still content-encoded.

        For behaviours whose body changes per request (/changing) it is the body
        sent last; LookupError if none was sent yet or the behaviour has no body.
        """
        host = virtual_host(host)
        path = decoded_path(path)
        remembered = self._remembered.get((host, path))
        if remembered is not None:
            return remembered
        behaviour = self.behaviour_for(host, path)
        if behaviour.payload is None:
            raise LookupError(f"{path}: the {behaviour.name!r} behaviour has no fixed body")
        return behaviour.payload(host, path)

    # -- addresses ---------------------------------------------------------------------------

    def connect_to_args(self, wildcard: bool = True) -> list[str]:
        """curl-style --connect-to mappings (HOST:PORT:ADDR:PORT) that aim realistic URLs here.

        Specific names first, then (if `wildcard`) `*` entries that send any other
        name to the good ports. Without the wildcard, UNRESOLVABLE_HOST (and any
        name not listed) stays unmapped, to play a name that does not resolve.
        """
        self._require_started()
        mappings: list[str] = []
        for host in self.hosts:
            mappings.append(f"{host}:80:{LOOPBACK}:{self.http_port}")
            mappings.append(f"{host}:443:{LOOPBACK}:{self.https_port}")
        for host, tls_port in (
            (EXPIRED_HOST, self.https_expired_port),
            (WRONG_NAME_HOST, self.https_wrongname_port),
            (CLOSED_HOST, self.closed_port),
        ):
            plain_port = self.closed_port if host == CLOSED_HOST else self.http_port
            mappings.append(f"{host}:80:{LOOPBACK}:{plain_port}")
            mappings.append(f"{host}:443:{LOOPBACK}:{tls_port}")
        if wildcard:
            mappings.append(f"*:80:{LOOPBACK}:{self.http_port}")
            mappings.append(f"*:443:{LOOPBACK}:{self.https_port}")
        return mappings

    def resolver(self, wildcard: bool = True) -> FaultResolver:
        """An aiohttp resolver that answers from connect_to_args() and never asks real DNS."""
        return FaultResolver.from_connect_to(self.connect_to_args(wildcard=wildcard))

    def describe(self) -> dict[str, Any]:
        """What a client needs to use this server (the CLI prints it as JSON)."""
        self._require_started()
        return {
            "http_port": self.http_port,
            "https_port": self.https_port,
            "https_expired_port": self.https_expired_port,
            "https_wrongname_port": self.https_wrongname_port,
            "closed_port": self.closed_port,
            "ca_pem": self.ca_pem,
            "hosts": self.hosts,
            "expired_host": EXPIRED_HOST,
            "wrong_name_host": WRONG_NAME_HOST,
            "closed_host": CLOSED_HOST,
            "unresolvable_host": UNRESOLVABLE_HOST,
            "connect_to": self.connect_to_args(),
        }

    def _require_started(self) -> None:
        if not self.http_port:
            raise RuntimeError("FaultWeb is not started: use `with FaultWeb() as web:` or start()")

    # -- the request log -------------------------------------------------------------------------

    @property
    def log(self) -> list[LogEntry]:
        with self._lock:
            return list(self._log)

    @property
    def connections(self) -> list[Connection]:
        with self._lock:
            return list(self._connections)

    def requests(
        self, host: str | None = None, path: str | None = None, method: str | None = None
    ) -> list[LogEntry]:
        """Logged requests, filtered; `path` matches with or without the query string."""
        wanted_host = virtual_host(host) if host is not None else None
        return [
            entry
            for entry in self.log
            if (wanted_host is None or entry.host == wanted_host)
            and (method is None or entry.method == method.upper())
            and (path is None or entry.path == path or entry.path.split("?", 1)[0] == path)
        ]

    def request_times(self, host: str, path: str) -> list[float]:
        """Start times (monotonic) of the requests for (host, path), in arrival order."""
        return [entry.t_start for entry in self.requests(host=host, path=path)]

    def max_concurrent_requests(self, host: str | None = None) -> int:
        """Most requests for `host` (all hosts if None) in flight at the same moment."""
        return max_overlap((entry.seq_start, entry.seq_end) for entry in self.requests(host=host))

    def max_concurrent_connections(self, host: str | None = None) -> int:
        """Most TCP connections attributed to `host` open at the same moment.

        A connection belongs to the name its TLS handshake asked for (SNI), else to
        the Host of its first request, whatever port or scheme it came on, and counts
        as open from connection_made to connection_lost (for TLS, from the end of the
        handshake), so idle keep-alive connections count too.
        """
        wanted = virtual_host(host) if host is not None else None
        return max_overlap(
            (c.seq_open, c.seq_close)
            for c in self.connections
            if wanted is None or c.host == wanted
        )

    def open_connections(self, host: str) -> int:
        """Connections to `host` open right now (idle keep-alive ones included)."""
        with self._lock:
            return self._open_by_host.get(virtual_host(host), 0)

    def peak_connections(self, host: str | None = None) -> int | dict[str, int]:
        """Most connections to `host` ever open at once, counted live (all hosts: a dict).

        Kept as connections open and close, so it costs nothing to ask on a long run;
        a plain-HTTP connection counts from its first request (its name is unknown
        before), a TLS one from its handshake. `max_concurrent_connections` replays
        the log instead and counts every connection from its opening.
        """
        with self._lock:
            if host is None:
                return dict(self._peak_by_host)
            return self._peak_by_host.get(virtual_host(host), 0)

    def _count_open(self, connection: Connection, host: str) -> None:
        """The connection now serves `host`: count it (caller holds the lock)."""
        connection.host = host
        now_open = self._open_by_host[host] = self._open_by_host.get(host, 0) + 1
        if now_open > self._peak_by_host.get(host, 0):
            self._peak_by_host[host] = now_open

    def stats(self) -> dict[str, Any]:
        """Politeness per host as the server saw it: requests, peak connections, peak requests."""
        log, connections = self.log, self.connections
        hosts = sorted({entry.host for entry in log} | {c.host for c in connections if c.host})
        per_host = {}
        for host in hosts:
            entries = [e for e in log if e.host == host]
            per_host[host] = {
                "requests": len(entries),
                "connections": sum(1 for c in connections if c.host == host),
                "max_concurrent_connections": max_overlap(
                    (c.seq_open, c.seq_close) for c in connections if c.host == host
                ),
                "max_concurrent_requests": max_overlap((e.seq_start, e.seq_end) for e in entries),
            }
        return {
            "requests": len(log),
            "connections": len(connections),
            "max_concurrent_connections": max_overlap(
                (c.seq_open, c.seq_close) for c in connections
            ),
            "max_concurrent_requests": max_overlap((e.seq_start, e.seq_end) for e in log),
            "shed": self.shed_count,  # 429s answered by the --shed rate limiter
            "peak_connections": self.peak_connections(),  # live count per host name
            "hosts": per_host,
        }

    def reset_log(self) -> None:
        """Forget logged requests and closed connections (open ones stay tracked, and peaks
        start again from them)."""
        with self._lock:
            self._log.clear()
            self._connections = [c for c in self._connections if c.closed is None]
            self._peak_by_host = {h: n for h, n in self._open_by_host.items() if n}

    def request_count(self, host: str, path: str) -> int:
        """How many requests (host, path) has had: what /flaky and /ratelimit count."""
        return self._counts.get((virtual_host(host), decoded_path(path)), 0)

    # -- connection tracking (server thread) ------------------------------------------------------

    def _connection_opened(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        sockname = transport.get_extra_info("sockname")
        connection = Connection(
            id=next(self._connection_ids),
            port=sockname[1] if sockname else 0,
            tls=transport.get_extra_info("sslcontext") is not None,
            opened=time.monotonic(),
            seq_open=next(self._seq),
        )
        sni = sni_of(transport.get_extra_info("ssl_object"))
        with self._lock:
            self._open[handler] = connection
            self._connections.append(connection)
            if sni:
                self._count_open(connection, virtual_host(sni))

    def _connection_closed(self, handler: RequestHandler) -> None:
        with self._lock:
            connection = self._open.pop(handler, None)
        if connection is not None:
            connection.closed = time.monotonic()
            connection.seq_close = next(self._seq)
            if connection.host is not None:
                with self._lock:
                    self._open_by_host[connection.host] -= 1

    def _delay_for(self, host: str) -> float:
        spec = self._latency.get(host, self._default_latency)
        if isinstance(spec, tuple):
            rng = self._rngs.get(host)
            if rng is None:
                rng = self._rngs[host] = random.Random(f"{self._seed}:{host}")
            return rng.uniform(*spec) / 1000
        return spec / 1000

    # -- request handling (server thread) ---------------------------------------------------------

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        assert self._closing is not None
        authority = request.headers.get("Host", "")
        host = virtual_host(authority)
        path = request.path
        connection = self._open.get(request.protocol)
        if connection is not None:
            connection.requests += 1
            if connection.host is None:
                with self._lock:
                    self._count_open(connection, host)
        key = (host, path)
        count = self._counts[key] = self._counts.get(key, 0) + 1
        entry = LogEntry(
            host=host,
            method=request.method,
            path=request.raw_path,
            connection=connection.id if connection else 0,
            t_start=time.monotonic(),
            scheme="https" if connection and connection.tls else "http",
            port=connection.port if connection else 0,
            user_agent=request.headers.get("User-Agent", ""),
            seq_start=next(self._seq),
        )
        with self._lock:
            self._log.append(entry)
        behaviour = self.behaviour_for(host, path)

        def finishing(status: int | None) -> None:
            if entry.seq_end is None:
                entry.status = status
                entry.t_end = time.monotonic()
                entry.seq_end = next(self._seq)

        hit = Hit(
            request=request,
            host=host,
            authority=authority,
            scheme=entry.scheme,
            path=path,
            args=path.split("/")[2:],
            count=count,
            closing=self._closing,
            remember=lambda body: self._remembered.__setitem__(key, body),
            finishing=finishing,
        )
        response: web.StreamResponse | None = None
        in_house = self._in_house.get(host, 0)
        self._in_house[host] = in_house + 1
        try:
            limit = self._shed.get(host)
            if limit is not None and in_house >= limit:
                self.shed_count += 1
                response = web.Response(
                    body=bodies.message_html(429, "Too Many Requests", "Slow down."),
                    status=429, content_type="text/html", charset="utf-8",
                    headers={"Retry-After": "1"},
                )
            else:
                try:
                    async with self._worker_slot(host):
                        delay = self._delay_for(host)
                        if delay > 0:
                            await asyncio.sleep(delay)
                        response = await self._respond(behaviour, hit)
                except ConnectionError:
                    return web.Response()  # the client left mid-answer; nothing more to send
            if not response.prepared:
                transport = request.transport
                if transport is None or transport.is_closing():
                    return response  # nothing can reach the client any more
                finishing(response.status)  # before the bytes leave: see Hit.finishing
            with contextlib.suppress(ConnectionError):  # the client or the behaviour hung up
                await response.prepare(request)
                await response.write_eof()
            return response
        finally:
            self._in_house[host] -= 1
            if response is not None and response.prepared:
                finishing(response.status)
            else:  # cancelled (the client left) or never answered
                finishing(hit.headers_sent)

    def _worker_slot(self, host: str) -> contextlib.AbstractAsyncContextManager[object]:
        """One of the host's `capacity` workers (no limit when none is set)."""
        size = self._capacity.get(host)
        if size is None:
            return contextlib.nullcontext()
        worker = self._workers.get(host)
        if worker is None:
            worker = self._workers[host] = asyncio.Semaphore(size)
        return worker

    async def _respond(self, behaviour: Behaviour, hit: Hit) -> web.StreamResponse:
        try:
            return await behaviour.handler(hit)
        except BadPath as error:
            body = bodies.message_html(400, "Bad Request", str(error))
            return web.Response(body=body, status=400, content_type="text/html", charset="utf-8")
        except ConnectionError:
            raise
        except Exception:
            logger.exception("fault web: behaviour %r failed on %s", behaviour.name, hit.path)
            body = bodies.message_html(500, "Internal Server Error", "The behaviour crashed.")
            return web.Response(body=body, status=500, content_type="text/html", charset="utf-8")

    # -- life cycle -------------------------------------------------------------------------------

    async def astart(self) -> None:
        """Start serving on the running loop (start() does this in a thread of its own)."""
        self._closing = asyncio.Event()
        self._tmpdir = Path(tempfile.mkdtemp(prefix="faultweb-"))
        certificates = make_certificates(
            self._tmpdir, [*self.hosts, WRONG_NAME_HOST, CLOSED_HOST], EXPIRED_HOST
        )
        self.ca_pem = str(certificates.ca_pem)
        server = _TrackingServer(
            self._handle, web_=self, handler_cancellation=True, access_log=None
        )
        self._runner = web.ServerRunner(server, shutdown_timeout=SHUTDOWN_GRACE)
        await self._runner.setup()
        contexts = {
            "http": None,
            "https": certificates.good,
            "https_expired": certificates.expired,
            "https_wrongname": certificates.wrong_name,
        }
        for name, context in contexts.items():
            sock = self._bind(self._requested_ports[name])
            setattr(self, f"{name}_port", sock.getsockname()[1])
            site = web.SockSite(self._runner, sock, ssl_context=context, backlog=self._backlog)
            await site.start()
        self.closed_port = _closed_port()

    async def aclose(self) -> None:
        """Stop serving: endless requests are dropped, others get SHUTDOWN_GRACE seconds."""
        if self._closing is not None:
            self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    async def __aenter__(self) -> FaultWeb:
        await self.astart()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def _bind(self, port: int) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((LOOPBACK, port))
        return sock

    def start(self) -> FaultWeb:
        """Serve from a background thread with its own event loop; returns once ports are bound."""
        if self._thread is not None:
            raise RuntimeError("FaultWeb already started")
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                loop.run_until_complete(self.astart())
            except BaseException as error:
                failure.append(error)
                ready.set()
                loop.run_until_complete(self.aclose())
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self.aclose())
                pending = asyncio.all_tasks(loop)
                for task in pending:
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=run, name="faultweb", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]
        return self

    def stop(self) -> None:
        """Stop the background server and wait for its thread to finish."""
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._thread = None
        self._loop = None

    def __enter__(self) -> FaultWeb:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _closed_port() -> int:
    """A loopback port where nothing listens: bind, read the port, close."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]
