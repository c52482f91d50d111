"""One HTTP request of a check: a host slot, the request, the body read, the exchange kept.

A check is a walk of requests (HEAD, GET, redirect hops, retries; checker.py);
each of them comes here. `Fetcher.fetch` takes a slot of the host it goes to
(hosts.py), so a host's limits hold even for cross-host redirects, and counts
what the host answered. A GET streams and stops after ``get_bytes`` (the
`sample`), or, when captured, reads the raw body (content-encoding kept,
chunking removed) up to ``capture_max_bytes`` into an `Exchange`, within the
run's memory budget (bodies.py: in memory or spooled to disk).
"""

from __future__ import annotations

import asyncio
import os
import ssl
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

from linkkeeper.check.bodies import ByteBudget, read_capture
from linkkeeper.check.connections import HostConnector
from linkkeeper.check.hosts import HostScheduler
from linkkeeper.check.options import CheckOptions
from linkkeeper.check.policy import HostSettings
from linkkeeper.check.resolver import ConnectToResolver, GuardedConnector
from linkkeeper.clock import utcnow
from linkkeeper.codings import decoded_prefix
from linkkeeper.exchange import Body, CapturedBody, Exchange, body_head
from linkkeeper.urls import host_key

# What a request may raise that is an answer about the URL, not a bug of ours.
FETCH_ERRORS = (TimeoutError, aiohttp.ClientError, OSError, ValueError)


@dataclass(slots=True)
class Answer:
    """What one request brought back."""

    status: int
    headers: CIMultiDictProxy[str]
    location: str | None
    ip: str | None
    sample: bytes | None
    exchange: Exchange | None
    latency: float


@dataclass
class Fetcher:
    """Sends one request at a time for the checker, inside the host's limits."""

    options: CheckOptions
    session: aiohttp.ClientSession
    scheduler: HostScheduler
    resolver: ConnectToResolver
    ssl: ssl.SSLContext | bool
    reads_text: bool  # keep a decoded sample of captured bodies too (soft-404, fingerprints)
    budget: ByteBudget = field(init=False)  # the run's memory for captured bodies (bodies.py)

    def __post_init__(self) -> None:
        self.budget = ByteBudget(self.options.memory_budget)

    async def fetch(
        self, url: URL, method: str, settings: HostSettings, capture: bool, slot_taken: bool
    ) -> Answer:
        """One request in a slot of the URL's host (`slot_taken`: the dispatcher's, already held)."""
        async with self.scheduler.slot(host_key(url), already_started=slot_taken) as gate:
            began = time.perf_counter()
            try:
                answer = await self._request(url, method, settings, capture)
            except BaseException:
                gate.stats.errors += 1
                raise
            finally:
                gate.stats.busy_seconds += time.perf_counter() - began
            gate.stats.responses[answer.status] = gate.stats.responses.get(answer.status, 0) + 1
            return answer

    async def _request(
        self, url: URL, method: str, settings: HostSettings, capture: bool
    ) -> Answer:
        began = time.perf_counter()
        started = utcnow() if capture else None  # the WARC record's date
        async with self.session.request(
            method,
            url,
            headers=settings.headers,
            allow_redirects=False,
            timeout=settings.client_timeout,
            proxy=self.options.proxy,
            ssl=self.ssl,
            auto_decompress=not capture,
        ) as response:
            ip = peer_ip(response) or self.resolved_ip(url)
            sample: bytes | None = None
            exchange: Exchange | None = None
            if method == "GET":
                if capture:
                    body, complete = await read_capture(
                        response.content, self.options.capture_max_bytes, self.budget,
                        self.options.spool_dir,
                    )
                    assert started is not None
                    exchange = _exchange(response, url, method, body, started, ip, complete)
                    if self.reads_text:
                        encoding = response.headers.get("Content-Encoding", "")
                        head = body_head(body, _sample_source(body, self.options.get_bytes))
                        sample = decoded_prefix(head, encoding, self.options.get_bytes)
                else:
                    sample, complete = await read_up_to(response, self.options.get_bytes)
                if not complete:
                    response.close()  # stop the transfer: the rest is not needed
            return Answer(
                status=response.status,
                headers=response.headers,
                location=response.headers.get("Location"),
                ip=ip,
                sample=sample,
                exchange=exchange,
                latency=time.perf_counter() - began,
            )

    def resolved_ip(self, url: URL) -> str | None:
        """The address the resolver gave for the URL's host (when the socket could not say)."""
        if url.raw_host is None:
            return None
        addresses = self.resolver.addresses.get((url.raw_host.lower(), url.port or 0))
        return addresses[0] if addresses else None


def _sample_source(body: CapturedBody, get_bytes: int) -> int:
    """Raw bytes to decode for a sample of `get_bytes`: all of a body in memory; of a
    spooled one a prefix (deflate and brotli never grow data by more than a few bytes per
    block, so 4 x get_bytes holds the encoded form of get_bytes, whatever the coding)."""
    return 4 * get_bytes + 4096 if body.spooled else len(body)


def _exchange(
    response: aiohttp.ClientResponse,
    url: URL,
    method: str,
    body: Body,
    started: datetime,
    ip: str | None,
    complete: bool,
) -> Exchange:
    """The exchange as it happened, for the WARC writer."""
    version = response.version
    return Exchange(
        url=str(url),
        method=method,
        request_headers=request_headers(response, url),
        status=response.status,
        reason=response.reason or "",
        # decoded the way the WARC writer encodes them back (warc.py):
        # the stored header bytes are exactly the bytes received
        response_headers=[
            (name.decode("utf-8", "surrogateescape"), value.decode("utf-8", "surrogateescape"))
            for name, value in response.raw_headers
        ],
        body=body,
        started=started,
        http_version=f"{version.major}.{version.minor}" if version else "1.1",
        ip=ip,
        truncated=not complete,
    )


async def read_up_to(response: aiohttp.ClientResponse, limit: int) -> tuple[bytes, bool]:
    """Read at most `limit` bytes; complete=True when the body ended within the limit."""
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await response.content.read(min(limit - size, 1 << 16))
        if not chunk:
            return b"".join(chunks), True
        chunks.append(chunk)
        size += len(chunk)
    complete = response.content.at_eof()
    if not complete:
        # a body that ends exactly at the limit: peek one more read to know
        extra = await response.content.read(1) if limit else b""
        if not extra:
            complete = True
    return b"".join(chunks), complete


def dropped_after_connect(error: BaseException) -> bool:
    """The server took the HEAD and then hung up or garbled it: worth asking with GET."""
    if isinstance(error, aiohttp.ClientConnectorError | asyncio.TimeoutError):
        return False
    return isinstance(
        error,
        aiohttp.ServerDisconnectedError
        | aiohttp.ClientPayloadError
        | aiohttp.ClientResponseError
        | ConnectionResetError,
    ) or (
        isinstance(error, aiohttp.ClientOSError)
        and isinstance(error.__cause__, ConnectionResetError)
    )


def peer_ip(response: aiohttp.ClientResponse) -> str | None:
    connection = response.connection
    if connection is None or connection.transport is None:
        return None
    peer = connection.transport.get_extra_info("peername")
    return peer[0] if peer else None


def request_headers(response: aiohttp.ClientResponse, url: URL) -> list[tuple[str, str]]:
    """Headers as sent, Host first (aiohttp adds it on the wire even when not listed)."""
    sent = list(response.request_info.headers.items())
    if not any(name.lower() == "host" for name, _ in sent):
        host = url.raw_host or ""
        if url.explicit_port and not url.is_default_port():
            host = f"{host}:{url.port}"
        sent.insert(0, ("Host", host))
    else:
        sent.sort(key=lambda item: item[0].lower() != "host")
    return sent


class RunConnector(GuardedConnector, HostConnector):
    """Every connection of a run passes both: the resolver's rules (offline DNS, literals,
    private redirects) and the per-host-name count of open sockets (the politeness limit)."""


def open_session(
    options: CheckOptions,
    resolver: ConnectToResolver,
    tls: ssl.SSLContext | bool,
    host_limit: Callable[[str], int] | None = None,
) -> aiohttp.ClientSession:
    """The run's one session: keep-alive, the global limit, our resolver (--connect-to).

    `host_limit` gives each host name's connection limit (its settings); the connector
    keeps the sockets open to that name, idle and closing ones included, within it.
    """
    per_host = max(
        [options.host_concurrency]
        + [p.concurrency for p in options.hosts.values() if p.concurrency]
    )
    connector = RunConnector(  # resolver.py's rules and connections.py's per-name count
        host_limit=host_limit or (lambda host: per_host),
        limit=options.concurrency,
        limit_per_host=per_host,  # a backstop per (host, port, TLS); HostConnector counts names
        resolver=resolver,
        ssl=tls,
        enable_cleanup_closed=True,
    )
    return aiohttp.ClientSession(
        connector=connector,
        trust_env=options.trust_env and _environment_configures_http(),
        headers={"User-Agent": options.user_agent},
        auto_decompress=True,
        max_field_size=65536,
        max_line_size=65536,
    )


def ssl_context(ca_bundle: str | None) -> ssl.SSLContext:
    """Verified TLS: --ca-bundle, else SSL_CERT_FILE, else the system store."""
    cafile = ca_bundle or os.environ.get("SSL_CERT_FILE") or None
    return ssl.create_default_context(cafile=cafile)


def _environment_configures_http() -> bool:
    """Whether ``trust_env`` can change anything here: proxy variables or a netrc file.

    aiohttp honours ``trust_env`` with two thread-pool trips per request (it reads the
    netrc file and looks up the proxy each time): a quarter of the CPU of `snapshot` on the
    capture benchmark. With neither configured the answer is always "none", so the session
    is made without it.
    """
    if urllib.request.getproxies():
        return True
    netrc = os.environ.get("NETRC")
    try:
        path = Path(netrc) if netrc is not None else Path.home() / ".netrc"
    except RuntimeError:  # no home directory
        return False
    return path.exists()
