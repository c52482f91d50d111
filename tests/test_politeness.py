"""Politeness promises under load, counted by the server: connections per host name.

The world: one main host served on two ports (http and https), many URLs, latency,
keep-alive, redirects between the schemes and to another host, answers that close
their connection. The fault web counts every TCP connection by the name it serves
(TLS SNI, else the Host of its first request), idle keep-alive ones included, from
open to close: that count must never exceed ``host_concurrency``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from helpers import hermetic_options

from linkkeeper.check.checker import Checker
from linkkeeper.check.options import CheckOptions
from linkkeeper.check.result import CheckResult
from linkkeeper.faultweb import FaultWeb
from linkkeeper.vocab import Status

MAIN = "news.example"
OTHER = "blog.example"


@pytest.fixture(scope="module")
def web() -> Iterator[FaultWeb]:
    with FaultWeb(latency={MAIN: (2, 25), OTHER: (2, 10)}, seed=15) as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh_log(web: FaultWeb, monkeypatch: pytest.MonkeyPatch) -> None:
    # each test counts its own run: the previous test's connections, closed by its client,
    # may not have been seen closed yet by a busy server (a CI run counted 8 + 2 such)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(web.open_connections(h) for h in (MAIN, OTHER)):
        time.sleep(0.02)
    web.reset_log()
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)


def options(web: FaultWeb, **overrides: Any) -> CheckOptions:
    timeouts = {"connect_timeout": 2, "read_timeout": 1, "total_timeout": 5, "read_pages": True}
    return hermetic_options(web, **{**timeouts, **overrides})


def mixed_world(tag: str, size: int) -> list[str]:
    """`size` URLs on the main host over both schemes, with cross-scheme and cross-host hops."""
    rng = random.Random(f"{tag}:{size}")
    urls = []
    for i in range(size):
        scheme = "https" if i % 2 else "http"
        other = "http" if scheme == "https" else "https"
        base = f"{scheme}://{MAIN}"
        kind = rng.random()
        if kind < 0.55:
            urls.append(f"{base}/ok/{tag}-{i}")
        elif kind < 0.70:
            target = quote(f"{other}://{MAIN}/ok/{tag}-to-{i}", safe="")
            urls.append(f"{base}/redirect-to?url={target}&code=301")
        elif kind < 0.75:
            target = quote(f"{other}://{OTHER}/ok/{tag}-away-{i}", safe="")
            urls.append(f"{base}/redirect-to?url={target}&code=302")
        elif kind < 0.80:
            back = quote(f"{scheme}://{MAIN}/ok/{tag}-back-{i}", safe="")
            urls.append(f"{other}://{OTHER}/redirect-to?url={back}&code=301")
        elif kind < 0.86:
            urls.append(f"{base}/status/404/{tag}-{i}")
        elif kind < 0.90:
            urls.append(f"{base}/reset/{tag}-{i}")  # the connection dies mid-body
        elif kind < 0.94:
            urls.append(f"{base}/flaky/1/{tag}-{i}")
        else:
            urls.append(f"{base}/slow/60/{tag}-{i}")
    return urls


async def check_all(web: FaultWeb, urls: list[str], **overrides: Any) -> list[CheckResult]:
    async with Checker(options(web, **overrides)) as checker:
        return [result async for result in checker.run(urls)]


@pytest.mark.parametrize("limit", [2, 8])
def test_connections_per_host_name_never_exceed_the_limit(web: FaultWeb, limit: int) -> None:
    urls = mixed_world(f"load{limit}", 240 if limit == 2 else 600)
    results = asyncio.run(check_all(web, urls, host_concurrency=limit))
    assert len(results) == len(urls)
    assert all(r.status is not Status.NETWORK_ERROR or "reset" in r.url for r in results), [
        (r.url, r.reason) for r in results if r.status is Status.NETWORK_ERROR
    ][:5]
    # both schemes of the main host were used, on keep-alive connections
    ports = {entry.port for entry in web.requests(host=MAIN)}
    assert {web.http_port, web.https_port} <= ports
    main_connections = [c for c in web.connections if c.host == MAIN]
    assert len(web.requests(host=MAIN)) > len(main_connections)
    for host in (MAIN, OTHER):
        assert web.max_concurrent_connections(host) <= limit, host
        assert web.peak_connections(host) <= limit, host
        assert web.max_concurrent_requests(host) <= limit, host
    assert web.max_concurrent_connections(MAIN) == limit  # the limit was used, not undershot


# -- the same answer within a run is fetched once --------------------------------------------


def test_links_redirecting_home_fetch_the_home_page_once(web: FaultWeb) -> None:
    home = quote(f"http://{MAIN}/", safe="")
    urls = [f"http://{MAIN}/redirect-to?url={home}&code=301&from={i}" for i in range(60)]
    results = asyncio.run(check_all(web, urls, host_concurrency=8))
    assert {r.status for r in results} == {Status.REDIRECTED}
    assert all(r.final_url == f"http://{MAIN}/" for r in results)
    assert len(web.requests(host=MAIN, path="/")) == 1  # not once per link
    # the request count of each result is what it cost: one hop of its own
    assert sum(r.requests for r in results) == len(urls) + 1


class _Answer:
    def __init__(self, status: int, sample: bytes = b"x") -> None:
        self.status, self.sample = status, sample


def test_answer_cache_shares_in_flight_and_keeps_only_lasting_answers() -> None:
    from linkkeeper.check.answers import AnswerCache

    async def scenario() -> None:
        cache: AnswerCache[_Answer] = AnswerCache(max_entries=2)
        sent: list[str] = []

        def sender(url: str, status: int) -> Any:
            async def send() -> _Answer:
                sent.append(url)
                await asyncio.sleep(0.01)
                return _Answer(status)

            return send

        together = await asyncio.gather(
            *(cache.ask("GET", "http://a/", sender("http://a/", 200)) for _ in range(5))
        )
        assert sent == ["http://a/"] and [shared for _, shared in together].count(False) == 1
        assert (await cache.ask("GET", "http://a/", sender("http://a/", 200)))[1] is True
        assert (await cache.ask("HEAD", "http://a/", sender("http://a/", 200)))[1] is False
        await cache.ask("GET", "http://b/", sender("http://b/", 503))
        await cache.ask("GET", "http://b/", sender("http://b/", 503))
        assert sent.count("http://b/") == 2  # a 503 is asked again
        for url in ("http://c/", "http://d/", "http://e/"):
            await cache.ask("GET", url, sender(url, 404))
        await cache.ask("GET", "http://a/", sender("http://a/", 200))
        assert sent.count("http://a/") == 3  # GET, HEAD, GET again: bounded, the oldest left

        async def failing() -> _Answer:
            await asyncio.sleep(0.01)
            raise TimeoutError("slow")

        outcomes = await asyncio.gather(
            *(cache.ask("GET", "http://f/", failing) for _ in range(3)), return_exceptions=True
        )
        assert all(isinstance(o, TimeoutError) for o in outcomes)  # shared while in flight

    asyncio.run(scenario())


# -- the tail: retries rest without holding anything ------------------------------------------


def test_urls_waiting_to_retry_leave_their_places_to_others(web: FaultWeb) -> None:
    # one slot, so HOST_TASKS_PER_SLOT = 2 places: two URLs resting before their retry
    # used to fill them, and the host stood idle while they slept
    flaky = [f"http://{OTHER}/flaky/1/rest{i}" for i in range(2)]
    urls = flaky + [f"http://{OTHER}/ok/rest{i}" for i in range(20)]
    results = asyncio.run(
        check_all(web, urls, host_concurrency=1, backoff_base=0.6, backoff_cap=0.6)
    )
    assert {r.status for r in results} == {Status.OK}
    first_503 = max(
        e.t_end or 0 for e in web.requests(host=OTHER) if "/flaky/" in e.path and e.status == 503
    )
    retried = min(
        e.t_start for e in web.requests(host=OTHER) if e.status == 200 and "/flaky/" in e.path
    )
    during = [
        e
        for e in web.requests(host=OTHER, method="GET")
        if "/ok/" in e.path and first_503 < e.t_start < retried
    ]
    assert during, "the host stood idle while two URLs rested"


def test_a_timeout_is_retried_once(web: FaultWeb) -> None:
    [result] = asyncio.run(
        check_all(web, [f"http://{MAIN}/hang/once"], attempts=3, read_timeout=0.2)
    )
    assert result.status is Status.TIMEOUT and result.attempts == 2
    assert len(web.requests(host=MAIN, path="/hang/once")) == 2


def test_the_fault_web_counts_tls_connections_by_their_sni_name_before_any_request(
    web: FaultWeb,
) -> None:
    import socket
    import ssl
    import time

    context = ssl.create_default_context(cafile=web.ca_pem)
    raw = socket.create_connection(("127.0.0.1", web.https_port))
    tls = context.wrap_socket(raw, server_hostname="secure.example")
    deadline = time.monotonic() + 2
    while web.open_connections("secure.example") < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert web.open_connections("secure.example") == 1  # idle, no request sent: still counted
    [connection] = [c for c in web.connections if c.host == "secure.example"]
    assert connection.tls and connection.requests == 0
    tls.close()
    while web.open_connections("secure.example") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert web.open_connections("secure.example") == 0
    assert web.peak_connections("secure.example") >= 1
    assert web.max_concurrent_connections("secure.example") == 1
