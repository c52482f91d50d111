"""The checking engine against the fault-injection web: exact statuses, reasons and politeness.

Every test is hermetic: offline DNS plus the web's connect-to mappings, so URLs
look real (http://news.example/...) while every byte stays on loopback. Paths
carry a per-test id because the server counts requests per (host, path).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp import web as aiohttp_web
from helpers import hermetic_options

import linkkeeper.check.admit as admit_module
import linkkeeper.check.resolver as resolver_module
from linkkeeper import __version__
from linkkeeper.check.accept import AcceptRanges
from linkkeeper.check.checker import Checker, check_urls
from linkkeeper.check.dispatch import HOST_TASKS_PER_SLOT
from linkkeeper.check.options import CheckOptions, HostPolicy
from linkkeeper.check.result import CheckResult
from linkkeeper.faultweb import FaultWeb
from linkkeeper.faultweb.server import max_overlap
from linkkeeper.vocab import Status

LATENCY_MS = 15


@pytest.fixture(scope="module")
def web() -> Iterator[FaultWeb]:
    with FaultWeb(latency={"blog.example": LATENCY_MS, "social.example": 5}) as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh_log(web: FaultWeb) -> None:
    web.reset_log()


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy from the environment would take test traffic off loopback."""
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)


def options(web: FaultWeb, **overrides: Any) -> CheckOptions:
    """Hermetic, fast settings: tiny back-offs and timeouts."""
    # this file tests the checker's own requests: no probes (hermetic_options' default)
    timeouts = {"connect_timeout": 1, "read_timeout": 0.5, "total_timeout": 5}
    return hermetic_options(web, **{**timeouts, **overrides})


async def check_all(web: FaultWeb, urls: list[str], **overrides: Any) -> dict[str, CheckResult]:
    async with Checker(options(web, **overrides)) as checker:
        return {result.url: result async for result in checker.run(urls)}


async def check_one(web: FaultWeb, url: str, **overrides: Any) -> CheckResult:
    return (await check_all(web, [url], **overrides))[url]


N = "http://news.example"

CASES = [
    # (url, status, reason, http_status, method)
    (f"{N}/ok/c1", Status.OK, "HTTP 200 OK", 200, "HEAD"),
    ("https://secure.example/ok/c1", Status.OK, "HTTP 200 OK", 200, "HEAD"),
    ("http://images.example/img/c1.png", Status.OK, "HTTP 200 OK", 200, "HEAD"),
    (f"{N}/status/404/c1", Status.BROKEN, "HEAD 404, GET 404", 404, "HEAD,GET"),
    (f"{N}/status/410/c1", Status.BROKEN, "HEAD 410, GET 410", 410, "HEAD,GET"),
    (f"{N}/status/400/c1", Status.BROKEN, "HEAD 400, GET 400", 400, "HEAD,GET"),
    (f"{N}/status/500/c1", Status.SERVER_ERROR, "HEAD 500, GET 500", 500, "HEAD,GET"),
    (f"{N}/status/503/c1", Status.SERVER_ERROR, "HTTP 503 Service Unavailable", 503, "HEAD"),
    (f"{N}/head/405/c1", Status.OK, "HEAD 405, GET 200", 200, "HEAD,GET"),
    (f"{N}/head/501/c1", Status.OK, "HEAD 501, GET 200", 200, "HEAD,GET"),
    (f"{N}/head/403/c1", Status.OK, "HEAD 403, GET 200", 200, "HEAD,GET"),
    (f"{N}/head/404/c1", Status.OK, "HEAD 404, GET 200", 200, "HEAD,GET"),
    (f"{N}/flaky/2/c1", Status.OK, "HTTP 200 OK", 200, "HEAD"),
    (
        f"{N}/redirect/301/2/c1",
        Status.REDIRECTED,
        "HTTP 200 OK after 2 redirects (301, 301)",
        200,
        "HEAD",
    ),
    (
        f"{N}/redirect/302/1/c1",
        Status.REDIRECTED,
        "HTTP 200 OK after 1 redirect (302)",
        200,
        "HEAD",
    ),
    (
        f"{N}/redirect-relative/308/2/a/c1",
        Status.REDIRECTED,
        "HTTP 200 OK after 2 redirects (308, 308)",
        200,
        "HEAD",
    ),
    (f"{N}/loop/4/c1", Status.BROKEN, "redirect loop after 4 hops", 302, "HEAD"),
    (f"{N}/redirect/301/11/c1", Status.BROKEN, "more than 10 redirects", 301, "HEAD"),
    (
        f"{N}/block/401/c1",
        Status.BLOCKED,
        "HEAD 401, GET 401 (access refused, not evidence of death)",
        401,
        "HEAD,GET",
    ),
    (
        f"{N}/block/403/c1",
        Status.BLOCKED,
        "HEAD 403, GET 403 (access refused, not evidence of death)",
        403,
        "HEAD,GET",
    ),
    (
        f"{N}/block/999/c1",
        Status.BLOCKED,
        "HEAD 999, GET 999 (access refused, not evidence of death)",
        999,
        "HEAD,GET",
    ),
    (
        f"{N}/block/cf/c1",
        Status.BLOCKED,
        "HEAD 403, GET 403 (Cloudflare challenge, cf-mitigated)",
        403,
        "HEAD,GET",
    ),
    (
        "https://expired.example/ok/c1",
        Status.TLS_ERROR,
        "TLS: certificate has expired",
        None,
        "HEAD",
    ),
    (
        "https://wrongname.example/ok/c1",
        Status.TLS_ERROR,
        "TLS: certificate is not valid for this host name",
        None,
        "HEAD",
    ),
    ("http://closed.example/ok/c1", Status.BROKEN, "connection refused", None, "HEAD"),
    (
        "http://does-not-resolve.invalid/ok/c1",
        Status.BROKEN,
        "DNS: name does not resolve",
        None,
        "HEAD",
    ),
    (f"{N}/gzip/c1", Status.OK, "HTTP 200 OK", 200, "HEAD"),
    (f"{N}/brotli/c1", Status.OK, "HTTP 200 OK", 200, "HEAD"),
    (f"{N}/chunked/c1", Status.OK, "HTTP 200 OK", 200, "HEAD"),
    (f"{N}/large/3000000/c1", Status.OK, "HTTP 200 OK", 200, "HEAD"),
    (f"{N}/slow/50/c1", Status.OK, "HTTP 200 OK", 200, "HEAD"),
    ("mailto:editor@news.example", Status.EXCLUDED, "scheme mailto: not checked", None, ""),
    ("ftp://files.example/a.txt", Status.EXCLUDED, "scheme ftp: not checked", None, ""),
    ("http://[bad", Status.INVALID, "invalid URL: Invalid IPv6 URL", None, ""),
    ("/relative/path", Status.INVALID, "invalid URL: not absolute (no scheme)", None, ""),
]


async def test_every_behaviour_gets_its_exact_status_and_reason(web: FaultWeb) -> None:
    results = await check_all(web, [case[0] for case in CASES])
    for url, status, reason, http_status, method in CASES:
        result = results[url]
        assert (result.status, result.reason, result.http_status, result.method) == (
            status,
            reason,
            http_status,
            method,
        ), url


async def test_redirect_chain_is_recorded_hop_by_hop(web: FaultWeb) -> None:
    result = await check_one(web, f"{N}/redirect/301/2/chain")
    assert [(hop.url, hop.status, hop.location) for hop in result.redirects] == [
        (f"{N}/redirect/301/2/chain", 301, f"{N}/redirect/301/1/chain"),
        (f"{N}/redirect/301/1/chain", 301, f"{N}/ok/chain"),
    ]
    assert result.final_url == f"{N}/ok/chain"
    assert result.permanent_redirect is True
    temporary = await check_one(web, f"{N}/redirect/307/1/chain")
    assert temporary.permanent_redirect is False


async def test_cross_host_redirect_and_redirect_to_unsupported_scheme(web: FaultWeb) -> None:
    cross = f"{N}/redirect-to?url=https://secure.example/ok/x&code=301"
    ftp = f"{N}/redirect-to?url=ftp://files.example/x&code=302"
    results = await check_all(web, [cross, ftp])
    assert results[cross].status is Status.REDIRECTED
    assert results[cross].final_url == "https://secure.example/ok/x"
    assert results[cross].host == "news.example"
    assert results[ftp].status is Status.EXCLUDED
    assert results[ftp].reason == "redirects to ftp://files.example/x: scheme ftp: not checked"


async def test_max_redirects_is_configurable(web: FaultWeb) -> None:
    result = await check_one(web, f"{N}/redirect/302/3/maxr", max_redirects=2)
    assert (result.status, result.reason) == (Status.BROKEN, "more than 2 redirects")
    assert len(web.requests(host="news.example", path="/ok/maxr")) == 0


async def test_timeouts_are_retried_then_reported(web: FaultWeb) -> None:
    result = await check_one(web, f"{N}/hang/t1", attempts=2, read_timeout=0.2)
    assert (result.status, result.reason) == (Status.TIMEOUT, "read timeout after 0.2 s")
    assert result.attempts == 2
    assert len(web.requests(host="news.example", path="/hang/t1")) == 2
    assert "SocketTimeoutError" in (result.error or "")


async def test_total_timeout(web: FaultWeb) -> None:
    result = await check_one(
        web,
        f"{N}/slow-body/800/t2",
        attempts=1,
        read_timeout=5,
        total_timeout=0.3,
        always_get=True,
    )
    assert (result.status, result.reason) == (Status.TIMEOUT, "total timeout after 0.3 s")


async def test_connect_timeout() -> None:
    """A listener whose accept queue is full drops SYNs: the connect hangs, as behind a firewall."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    try:
        opts = CheckOptions(
            connect_to=[f"firewalled.example:80:127.0.0.1:{port}"],
            offline_dns=True,
            trust_env=False,
            connect_timeout=0.3,
            attempts=1,
            soft404=False,
            read_pages=False,
        )
        async with Checker(opts) as checker:
            result = await checker.check("http://firewalled.example/x")
    finally:
        for sock in [*fillers, listener]:
            sock.close()
    assert (result.status, result.reason) == (Status.TIMEOUT, "connect timeout after 0.3 s")


async def test_body_failures_are_network_errors_when_the_body_is_read(web: FaultWeb) -> None:
    reset, short = f"{N}/reset/b1", f"{N}/bad-length/b1"
    results = await check_all(web, [reset, short], always_get=True, attempts=2)
    assert (results[reset].status, results[reset].reason) == (
        Status.NETWORK_ERROR,
        "connection reset mid-body",
    )
    assert (results[short].status, results[short].reason) == (
        Status.NETWORK_ERROR,
        "body shorter than its Content-Length",
    )
    assert results[reset].attempts == 2


async def test_head_and_get_counts_from_the_server_log(web: FaultWeb) -> None:
    await check_all(web, [f"{N}/ok/hg", f"{N}/head/405/hg", f"{N}/status/404/hg"])
    assert len(web.requests(path="/ok/hg", method="HEAD")) == 1
    assert len(web.requests(path="/ok/hg", method="GET")) == 0
    assert len(web.requests(path="/head/405/hg", method="HEAD")) == 1
    assert len(web.requests(path="/head/405/hg", method="GET")) == 1
    assert len(web.requests(path="/status/404/hg")) == 2  # never retried


async def test_no_url_is_fetched_more_often_than_attempts_allow(web: FaultWeb) -> None:
    flaky, error, refused = f"{N}/flaky/5/att", f"{N}/status/500/att", "http://closed.example/att"
    results = await check_all(web, [flaky, error, refused], attempts=3)
    assert results[flaky].status is Status.SERVER_ERROR
    assert web.request_count("news.example", "/flaky/5/att") == 3
    assert (results[flaky].attempts, results[flaky].requests) == (3, 3)
    # HEAD 500 makes HEAD suspect: one HEAD, then GET for each of the 3 tries
    assert len(web.requests(path="/status/500/att", method="HEAD")) == 1
    assert len(web.requests(path="/status/500/att", method="GET")) == 3
    # a refused connection is not retried, and sent no request (nothing reached a server)
    assert (results[refused].attempts, results[refused].requests) == (1, 0)


async def test_request_after_429_waits_at_least_retry_after(web: FaultWeb) -> None:
    result = await check_one(web, f"{N}/ratelimit/1/1/ra")
    assert (result.status, result.attempts) == (Status.OK, 2)
    first, second = web.requests(host="news.example", path="/ratelimit/1/1/ra")
    assert first.status == 429
    assert first.t_end is not None and second.t_start - first.t_end >= 1.0


async def test_retry_after_as_http_date(web: FaultWeb) -> None:
    result = await check_one(web, f"{N}/ratelimit-date/1/1/rd")
    assert (result.status, result.attempts) == (Status.OK, 2)


async def test_persistent_429_is_rate_limited(web: FaultWeb) -> None:
    result = await check_one(web, f"{N}/ratelimit/1/5/rl", attempts=2)
    assert (result.status, result.reason) == (Status.RATE_LIMITED, "HTTP 429 Too Many Requests")
    assert web.request_count("news.example", "/ratelimit/1/5/rl") == 2


async def test_retry_after_beyond_the_cap_is_not_waited_for(web: FaultWeb) -> None:
    began = time.monotonic()
    result = await check_one(web, f"{N}/ratelimit/120/1/cap", retry_after_cap=1)
    assert time.monotonic() - began < 5
    assert result.status is Status.RATE_LIMITED
    assert result.reason == "HTTP 429 Too Many Requests, Retry-After 120 s exceeds the 1 s cap"
    assert web.request_count("news.example", "/ratelimit/120/1/cap") == 1


async def test_429s_together_pause_the_whole_host(web: FaultWeb) -> None:
    urls = [f"http://archive.example/ratelimit/1/1/host{i}" for i in range(3)] + [
        f"http://archive.example/ok/host{i}" for i in range(4)
    ]
    results = await check_all(web, urls, host_concurrency=1)
    assert all(r.status is Status.OK for r in results.values())
    limited = [e for e in web.requests(host="archive.example") if e.status == 429]
    assert len(limited) == 3 and limited[2].t_end is not None
    # the third URL answering 429 makes it a pattern: nothing goes to the host before
    # Retry-After has passed
    later = [e for e in web.requests(host="archive.example") if e.t_start > limited[2].t_start]
    assert later and min(e.t_start for e in later) - limited[2].t_end >= 1.0


async def test_a_lone_429_slows_the_host_but_only_its_url_waits(web: FaultWeb) -> None:
    urls = ["http://blog.example/ratelimit/1/1/lone"] + [
        f"http://blog.example/ok/lone{i}" for i in range(30)
    ]
    results = await check_all(web, urls, host_concurrency=2)
    assert all(r.status is Status.OK for r in results.values())
    first, retry = web.requests(host="blog.example", path="/ratelimit/1/1/lone")
    assert first.t_end is not None and retry.t_start - first.t_end >= 1.0
    others = [e for e in web.requests(host="blog.example") if "/ok/" in e.path]
    assert max(e.t_end or 0 for e in others) < retry.t_start  # the rest went on meanwhile


async def test_other_hosts_keep_going_while_one_is_throttled(web: FaultWeb) -> None:
    throttled = ["http://social.example/ratelimit/2/1/tt"] + [
        f"http://social.example/ok/tt{i}" for i in range(5)
    ]
    healthy = [f"http://cdn.example/ok/tt{i}" for i in range(20)]
    interleaved = [throttled[0]] + [
        u for pair in zip(throttled[1:], healthy, strict=False) for u in pair
    ]
    interleaved += healthy[len(throttled) - 1 :]
    arrival: list[str] = []
    async with Checker(options(web, host_concurrency=2)) as checker:
        async for result in checker.run(interleaved):
            arrival.append(result.url)
    assert sorted(arrival) == sorted(interleaved)  # every URL answered once
    first, retry = web.requests(host="social.example", path="/ratelimit/2/1/tt")
    assert first.status == 429 and first.t_end is not None
    assert retry.t_start - first.t_end >= 2.0  # the throttled URL waited its Retry-After
    cdn = web.requests(host="cdn.example")
    assert sorted(e.path for e in cdn) == sorted(u.split("cdn.example", 1)[1] for u in healthy)
    assert all(e.seq_end is not None and e.seq_end < retry.seq_start for e in cdn)
    assert arrival.index(throttled[0]) > max(arrival.index(u) for u in healthy)


async def test_a_failing_host_cannot_fill_the_global_limit_with_retries(web: FaultWeb) -> None:
    """URLs sleeping before a retry hold no connection, but they must not crowd out other hosts."""
    failing = [f"http://archive.example/status/500/sv{i}" for i in range(40)]
    healthy = [f"http://images.example/ok/sv{i}" for i in range(30)]
    settings = {"concurrency": 6, "host_concurrency": 2, "attempts": 2}
    settings |= {"backoff_base": 0.6, "backoff_cap": 0.6}
    waiting = set(healthy)
    async with (
        Checker(options(web, **settings)) as checker,
        contextlib.aclosing(checker.run(failing + healthy)) as results,
    ):
        async for result in results:
            waiting.discard(result.url)
            if not waiting:
                break  # the failing host's retries are cancelled on the way out
    assert sorted(e.path for e in web.requests(host="images.example")) == sorted(
        u.split("images.example", 1)[1] for u in healthy
    )
    # URLs of the failing host in progress at once (first request to last), sleepers
    # included: capped at HOST_TASKS_PER_SLOT x its 2 slots; without the cap all 6 of the
    # global limit would fill with back-off sleepers and the healthy host would wait
    spans: dict[str, tuple[int, int | None]] = {}
    for entry in web.requests(host="archive.example"):
        start = spans.get(entry.path, (entry.seq_start, None))[0]
        spans[entry.path] = (start, entry.seq_end)
    assert HOST_TASKS_PER_SLOT * 2 == 4 < settings["concurrency"]
    assert 2 <= max_overlap(spans.values()) <= 4


async def test_never_more_than_host_concurrency_connections(web: FaultWeb) -> None:
    urls = [f"http://blog.example/ok/pol{i}" for i in range(40)]
    urls += [f"http://blog.example/head/405/pol{i}" for i in range(4)]
    urls += [f"http://blog.example/redirect/302/1/pol{i}" for i in range(4)]
    results = await check_all(web, urls, host_concurrency=3)
    assert all(r.status.is_alive for r in results.values())
    assert web.max_concurrent_connections("blog.example") <= 3
    assert web.max_concurrent_requests("blog.example") == 3  # the limit is also used


async def test_host_rate_limits_requests_per_second(web: FaultWeb) -> None:
    urls = [f"http://www.news.example/ok/rate{i}" for i in range(6)]
    await check_all(web, urls, host_rate=10, host_concurrency=8)
    times = sorted(e.t_start for e in web.requests(host="www.news.example") if "/rate" in e.path)
    assert len(times) == 6
    assert times[-1] - times[0] >= 0.45  # 6 starts at 10/s span at least 0.5 s (minus clock slack)


async def test_host_policies_override_concurrency_headers_and_accept(web: FaultWeb) -> None:
    policies = {
        "blog.example": HostPolicy(concurrency=1, headers={"User-Agent": "custom-agent/1"}),
        "*.example": HostPolicy(accept=AcceptRanges.parse("200..=299,404")),
        "news.example": HostPolicy(),
    }
    urls = [f"http://blog.example/ok/hp{i}" for i in range(5)]
    urls += ["http://cdn.example/status/404/hp", f"{N}/status/404/hp"]
    results = await check_all(web, urls, hosts=policies, host_concurrency=4)
    assert web.max_concurrent_requests("blog.example") == 1
    assert {e.user_agent for e in web.requests(host="blog.example")} == {"custom-agent/1"}
    assert results["http://cdn.example/status/404/hp"].status is Status.OK
    assert results[f"{N}/status/404/hp"].status is Status.BROKEN  # exact key wins over *.example


async def test_accept_ranges_turn_a_code_into_success(web: FaultWeb) -> None:
    result = await check_one(web, f"{N}/block/403/acc", accept=AcceptRanges.parse("200..=299,403"))
    assert (result.status, result.reason) == (Status.OK, "HEAD 403, GET 403")


async def test_connect_to_keeps_host_header_sni_and_user_agent(web: FaultWeb) -> None:
    result = await check_one(web, "https://secure.example/ok/sni")
    assert result.status is Status.OK and result.ip == "127.0.0.1"
    [entry] = web.requests(path="/ok/sni")
    assert (entry.host, entry.scheme, entry.port) == ("secure.example", "https", web.https_port)
    assert entry.user_agent == f"linkkeeper/{__version__} (+https://github.com/linkkeeper)"


async def test_tls_trust_sources(web: FaultWeb, monkeypatch: pytest.MonkeyPatch) -> None:
    unknown = await check_one(web, "https://secure.example/ok/tls1", ca_bundle=None)
    assert (unknown.status, unknown.reason) == (
        Status.TLS_ERROR,
        "TLS: self-signed / unknown issuer",
    )
    monkeypatch.setenv("SSL_CERT_FILE", web.ca_pem)
    from_env = await check_one(web, "https://secure.example/ok/tls2", ca_bundle=None)
    assert from_env.status is Status.OK
    insecure = await check_one(web, "https://expired.example/ok/tls3", insecure=True)
    assert insecure.status is Status.OK


async def test_include_overrides_exclude(web: FaultWeb) -> None:
    skipped, kept = f"{N}/ok/private/x", f"{N}/ok/private/keep"
    results = await check_all(web, [skipped, kept], exclude=["/private/"], include=["/keep$"])
    assert (results[skipped].status, results[skipped].reason) == (
        Status.EXCLUDED,
        "matches --exclude '/private/'",
    )
    assert results[kept].status is Status.OK
    assert web.requests(path="/ok/private/x") == []


async def test_exclude_private_addresses(web: FaultWeb) -> None:
    literal = f"http://127.0.0.1:{web.http_port}/ok/priv"
    named = f"{N}/ok/priv"
    results = await check_all(web, [literal, named], exclude_private=True)
    assert (results[literal].status, results[literal].reason) == (
        Status.EXCLUDED,
        "private address 127.0.0.1 (--exclude-private)",
    )
    assert (results[named].status, results[named].reason) == (
        Status.EXCLUDED,
        "private address 127.0.0.1 (--exclude-private)",
    )
    assert web.requests(path="/ok/priv") == []


async def test_exclude_private_also_after_redirects(
    web: FaultWeb, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pretend only 10/8 and 127.0.0.2 are private, so the loopback web plays the public one."""

    def private(address: str) -> bool:
        return address.startswith("10.") or address == "127.0.0.2"

    monkeypatch.setattr(resolver_module, "is_private_address", private)
    monkeypatch.setattr(admit_module, "is_private_address", private)
    to_literal = f"{N}/redirect-to?url=http://10.1.2.3/admin&code=302"
    to_name = f"{N}/redirect-to?url=http://intranet.example/admin&code=302"
    connect_to = [*web.connect_to_args(wildcard=False), "intranet.example:80:127.0.0.2:80"]
    results = await check_all(
        web, [to_literal, to_name], exclude_private=True, connect_to=connect_to
    )
    assert (results[to_literal].status, results[to_literal].reason) == (
        Status.EXCLUDED,
        "redirects to http://10.1.2.3/admin: private address 10.1.2.3 (--exclude-private)",
    )
    assert (results[to_name].status, results[to_name].reason) == (
        Status.EXCLUDED,
        "private address 127.0.0.2 (--exclude-private)",
    )
    assert results[to_name].final_url == "http://intranet.example/admin"


async def test_capture_returns_raw_exchanges_for_every_hop(web: FaultWeb) -> None:
    gz, chain = f"{N}/gzip/cap", f"{N}/redirect/301/1/cap"
    results = await check_all(
        web, [gz, chain, f"{N}/ok/nocap"], capture=lambda url: url.endswith("/cap")
    )
    [exchange] = results[gz].exchanges
    assert exchange.body == web.payload_for("news.example", "/gzip/cap")  # still gzip-encoded
    assert ("Content-Encoding", "gzip") in exchange.response_headers
    assert exchange.request_headers[0] == ("Host", "news.example")
    assert exchange.method == "GET" and exchange.status == 200 and not exchange.truncated
    assert exchange.ip == "127.0.0.1"
    assert results[gz].sample is not None and results[gz].sample.startswith(b"<!DOCTYPE html>")
    assert results[gz].method == "GET"
    hops = results[chain].exchanges
    assert [(e.url, e.status) for e in hops] == [(chain, 301), (f"{N}/ok/cap", 200)]
    assert hops[1].body == web.payload_for("news.example", "/ok/cap")
    assert results[f"{N}/ok/nocap"].exchanges == []
    assert web.requests(path="/ok/nocap", method="GET") == []


async def test_capture_truncates_at_the_cap_and_chunked_bodies_are_dechunked(web: FaultWeb) -> None:
    large, chunked = f"{N}/large/300000/trunc", f"{N}/chunked/trunc"
    results = await check_all(
        web, [large, chunked], capture=lambda url: True, capture_max_bytes=100_000
    )
    [big] = results[large].exchanges
    assert big.truncated and len(big.body) == 100_000
    assert big.body == web.payload_for("news.example", "/large/300000/trunc")[:100_000]
    [small] = results[chunked].exchanges
    assert small.body == web.payload_for("news.example", "/chunked/trunc")
    assert ("Transfer-Encoding", "chunked") in small.response_headers


async def test_get_reads_only_get_bytes_when_checking(web: FaultWeb) -> None:
    result = await check_one(web, f"{N}/large/5000000/gb", always_get=True, get_bytes=1000)
    assert result.status is Status.OK
    assert result.sample is not None and len(result.sample) == 1000
    assert result.content_length == 5_000_000


async def test_run_pulls_urls_lazily(web: FaultWeb) -> None:
    pulled = 0

    def source() -> Iterator[str]:
        nonlocal pulled
        for i in range(2000):
            pulled += 1
            yield f"http://blog.example/ok/lazy{i}"

    async with (
        Checker(options(web, buffer_size=20, concurrency=4)) as checker,
        contextlib.aclosing(checker.run(source())) as results,
    ):
        async for _ in results:
            break
    assert pulled <= 20 + 4 + 2


async def test_cancellation_stops_in_flight_requests(web: FaultWeb) -> None:
    urls = [f"http://cdn.example/hang/cancel{i}" for i in range(5)]

    async def consume(checker: Checker) -> None:
        async for _ in checker.run(urls):
            pass

    async with Checker(options(web, read_timeout=30, total_timeout=60)) as checker:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(consume(checker), 0.5)
    await asyncio.sleep(0.2)
    hanging = [c for c in web.connections if c.host == "cdn.example" and c.requests]
    assert hanging and all(c.closed is not None for c in hanging)  # not left to time out
    log = web.requests(host="cdn.example")
    assert sorted(e.path for e in log) == sorted(u.split("cdn.example", 1)[1] for u in urls)
    assert all(e.status is None for e in log)  # none answered: all were cut off in flight


async def test_async_iterable_input_and_stats(web: FaultWeb) -> None:
    async def source() -> AsyncIterator[str]:
        for i in range(3):
            yield f"http://images.example/ok/async{i}"

    async with Checker(options(web)) as checker:
        results = [r async for r in checker.run(source())]
        stats = checker.stats["images.example"]
    assert len(results) == 3 and all(r.status is Status.OK for r in results)
    assert stats.requests == 3 and stats.responses == {200: 3}


def test_check_urls_returns_results_in_input_order(web: FaultWeb) -> None:
    urls = [f"{N}/slow/120/order", f"{N}/ok/order", "mailto:x@news.example"]
    results = check_urls(urls, options(web))
    assert [r.url for r in results] == urls
    assert [r.status for r in results] == [Status.OK, Status.OK, Status.EXCLUDED]


async def test_unicode_host_names_in_urls_and_policies(web: FaultWeb) -> None:
    policies = {"bücher.example": HostPolicy(headers={"User-Agent": "idn-agent/1"})}
    result = await check_one(
        web, "http://bücher.example/ok/idn", hosts=policies, connect_to=web.connect_to_args()
    )
    assert result.status is Status.OK and result.host == "xn--bcher-kva.example"
    [entry] = web.requests(path="/ok/idn")
    assert (entry.host, entry.user_agent) == ("xn--bcher-kva.example", "idn-agent/1")


async def test_leaving_the_checker_stops_an_abandoned_run(web: FaultWeb) -> None:
    urls = [f"http://cdn.example/hang/abandon{i}" for i in range(3)] + [f"{N}/ok/abandon"]
    async with Checker(options(web, read_timeout=30, total_timeout=60)) as checker:
        results = checker.run(urls)
        first = await anext(results)  # then stop iterating without closing the generator
        assert first.url == f"{N}/ok/abandon"
    await asyncio.sleep(0.2)
    hanging = [c for c in web.connections if c.host == "cdn.example" and c.requests]
    assert hanging and all(c.closed is not None for c in hanging)  # cut off on leaving
    log = web.requests(host="cdn.example")
    assert sorted(e.path for e in log) == sorted(u.split("cdn.example", 1)[1] for u in urls[:3])
    assert all(e.status is None for e in log)
    await results.aclose()


async def test_a_failing_capture_callback_costs_one_result_not_the_run(web: FaultWeb) -> None:
    def capture(url: str) -> bool:
        if "boom" in url:
            raise RuntimeError("capture rule broke")
        return False

    urls = [f"{N}/ok/boom", *(f"{N}/ok/later{i}" for i in range(10))]
    results = await check_all(web, urls, capture=capture, host_concurrency=1)
    assert results[f"{N}/ok/boom"].status is Status.NETWORK_ERROR
    assert results[f"{N}/ok/boom"].reason == "internal error: RuntimeError: capture rule broke"
    assert all(results[u].status is Status.OK for u in urls[1:])  # the slot was given back


async def test_self_redirect_is_a_loop_of_one_hop(web: FaultWeb) -> None:
    result = await check_one(web, f"{N}/loop/1/self")
    assert (result.status, result.reason) == (Status.BROKEN, "redirect loop after 1 hop")
    assert result.requests == 1


@contextlib.asynccontextmanager
async def recording_proxy() -> AsyncIterator[tuple[str, list[str]]]:
    """A stand-in HTTP proxy on loopback that answers every request itself, recording its target."""
    seen: list[str] = []

    async def answer(request: aiohttp_web.BaseRequest) -> aiohttp_web.Response:
        seen.append(f"{request.method} {request.raw_path}")
        return aiohttp_web.Response(text="via proxy")

    runner = aiohttp_web.ServerRunner(aiohttp_web.Server(answer))
    await runner.setup()
    site = aiohttp_web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        await runner.cleanup()


async def test_proxy_option_and_proxy_from_the_environment(
    web: FaultWeb, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with recording_proxy() as (proxy, seen):
        explicit = await check_one(web, f"{N}/ok/px1", proxy=proxy)
        monkeypatch.setenv("HTTP_PROXY", proxy)
        from_env = await check_one(web, f"{N}/ok/px2", trust_env=True)
        ignored = await check_one(web, f"{N}/ok/px3", trust_env=False)
    assert explicit.status is Status.OK and from_env.status is Status.OK
    assert ignored.status is Status.OK
    assert seen == [f"HEAD {N}/ok/px1", f"HEAD {N}/ok/px2"]
    assert len(web.requests(path="/ok/px3")) == 1 and web.requests(path="/ok/px1") == []


async def test_a_host_that_keeps_refusing_head_gets_get_directly(web: FaultWeb) -> None:
    urls = [f"http://cdn.example/head/405/learn{i}" for i in range(8)]
    results = await check_all(web, urls, host_concurrency=1)
    assert all(r.status is Status.OK for r in results.values())
    assert len(web.requests(host="cdn.example", method="HEAD")) == 5
    assert len(web.requests(host="cdn.example", method="GET")) == 8
    assert results[urls[-1]].reason == "HTTP 200 OK" and results[urls[-1]].method == "GET"


async def test_head_404_is_trusted_once_get_agreed_on_that_host(web: FaultWeb) -> None:
    gone = [f"http://cdn.example/status/404/trust{i}" for i in range(9)]
    results = await check_all(web, gone, host_concurrency=1)
    assert all(r.status is Status.BROKEN for r in results.values())
    gets = [e for e in web.requests(host="cdn.example", method="GET") if "/trust" in e.path]
    assert len(gets) == 5  # five confirmations, then HEAD alone is believed
    # a host whose HEAD 404 once turned out to be a live page is never trusted
    lying = ["http://social.example/head/404/liar"] + [
        f"http://social.example/status/404/liar{i}" for i in range(8)
    ]
    results = await check_all(web, lying, host_concurrency=1)
    assert results[lying[0]].status is Status.OK
    gets = [e for e in web.requests(host="social.example", method="GET") if "liar" in e.path]
    assert len(gets) == 9


async def test_digest_is_the_sha1_of_the_body_read(web: FaultWeb) -> None:
    from linkkeeper.exchange import sha1_b32

    got = await check_one(web, f"{N}/large/5000/dg", always_get=True, get_bytes=1000)
    assert got.sample is not None and got.digest == sha1_b32(got.sample)
    head = await check_one(web, f"{N}/ok/dg")
    assert head.method == "HEAD" and head.sample is None and head.digest is None
