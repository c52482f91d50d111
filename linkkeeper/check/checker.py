"""The checking engine: fetch every URL politely and fast, and say precisely what happened.

One `Checker` = one run = one aiohttp session (keep-alive; a TCPConnector with
the global limit). URLs flow lazily from the caller's iterable into per-host
FIFO queues (a bounded buffer); a dispatcher starts a check whenever a host
has a free slot and its rate and back-off allow it, round-robin across hosts,
so a throttled host never holds up the others. Every HTTP request of a check
(HEAD, GET fallback, each redirect hop, each retry) takes a slot of the host it
goes to, so a host's limits hold even for cross-host redirects.

How one URL is checked (see classify.py for what each answer means):

* HEAD first; GET when the HEAD answer is one servers get wrong (405, 501, 403,
  404, other non-2xx/3xx except "ask again" codes). A GET streams and stops after
  ``get_bytes``, keeping that prefix as ``sample`` (for soft-404/fingerprints).
* When ``capture(url)`` is true: GET only, the whole raw body (content-encoding
  kept, chunking removed) up to ``capture_max_bytes``, an `Exchange` per hop.
* Redirects are followed by hand, each hop recorded; loops and overlong chains
  are reported as such.
* Soft 404s (``soft404=True``; soft404.py): a deep link's first check in a
  host+directory starts, in the background, one probe of a certainly-nonexistent
  URL there; later links of the directory wait for it and, when the directory
  answers unknown URLs with 2xx, are fetched with GET (their content is the
  evidence) instead of HEAD, so the probe costs one request per directory, not
  one per link. An alive answer is then judged (redirect to the home page or a
  generic page, page like the probe's, meta refresh, error phrases) and may
  become ``soft-404`` with its evidence. The probe's requests are counted in
  the result of the link that started it.
* Every GET of an HTML page leaves a main-text fingerprint (fingerprint.py) in
  ``CheckResult.fingerprint``, for drift detection in the history.
* Retryable failures (timeouts, resets, 5xx, 429) are retried up to
  ``attempts`` tries with exponential back-off and jitter; a 429/503 slows the
  whole host (hosts.py), and Retry-After is honoured up to ``retry_after_cap``
  (a longer one is not waited for: the URL is reported rate-limited).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import re
import ssl
import time
import urllib.request
from collections import OrderedDict, deque
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

from linkkeeper.check.accept import AcceptRanges
from linkkeeper.check.classify import (
    PERMANENT_REDIRECT_CODES,
    REDIRECT_CODES,
    Outcome,
    Timeouts,
    classify_error,
    classify_response,
    needs_get_after_head,
    seconds,
    status_text,
)
from linkkeeper.check.fingerprint import Fingerprint, PageText, fingerprint_page, is_html
from linkkeeper.check.hosts import (
    HostGate,
    HostLimits,
    HostScheduler,
    HostStats,
    backoff_delay,
    parse_retry_after,
)
from linkkeeper.check.options import CheckOptions, HostPolicy
from linkkeeper.check.resolver import (
    ConnectToResolver,
    ascii_host,
    is_ip_literal,
    is_private_address,
    parse_connect_to,
)
from linkkeeper.check.result import CheckResult, Hop
from linkkeeper.check.soft404 import Probe, Soft404Detector, applies
from linkkeeper.codings import decoded_prefix
from linkkeeper.exchange import Exchange
from linkkeeper.vocab import Status

logger = logging.getLogger(__name__)

FETCHED_SCHEMES = frozenset({"http", "https"})
# After this many HEAD refusals (405/501) and no HEAD success, a host gets GET directly.
HEAD_REFUSALS_BEFORE_GET_ONLY = 5
# A HEAD 404/410 is checked with GET until the host's GETs have agreed this many times
# (and never contradicted): then HEAD is trusted there, one request instead of two.
HEAD_TRUSTABLE = frozenset({404, 410})
HEAD_CONFIRMATIONS_TO_TRUST = 5
# URLs of one host in progress at once (in flight or waiting to retry), per slot of the host.
HOST_TASKS_PER_SLOT = 2


# ---------------------------------------------------------------------------
# Per-URL settings


@dataclass(frozen=True, slots=True)
class _HostSettings:
    limits: HostLimits
    timeouts: Timeouts
    headers: dict[str, str]
    accept: AcceptRanges

    @property
    def client_timeout(self) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(
            total=self.timeouts.total,
            sock_connect=self.timeouts.connect,
            sock_read=self.timeouts.read,
        )


@dataclass(slots=True)
class _Answer:
    """What one request brought back."""

    status: int
    headers: CIMultiDictProxy[str]
    location: str | None
    ip: str | None
    sample: bytes | None
    exchange: Exchange | None
    latency: float


class _Excluded(Exception):
    """A redirect hop we must not fetch (scheme, pattern, private address)."""

    def __init__(self, status: Status, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


# ---------------------------------------------------------------------------


class Checker:
    """Async context manager owning the run's session; `run()` streams results."""

    def __init__(self, options: CheckOptions | None = None) -> None:
        self.options = options or CheckOptions()
        self._include = [re.compile(p) for p in self.options.include]
        self._exclude = [re.compile(p) for p in self.options.exclude]
        self._connect_to = parse_connect_to(self.options.connect_to)
        self._policies = {_policy_key(key): policy for key, policy in self.options.hosts.items()}
        self._settings_cache: dict[str, _HostSettings] = {}
        self._head_refusals: dict[str, int] = {}
        self._head_successes: dict[str, int] = {}
        self._head_confirmed: dict[str, int] = {}  # HEAD 404/410s that GET agreed with
        self._head_contradicted: set[str] = set()  # hosts whose HEAD 404 GET answered 2xx/3xx
        self._session: aiohttp.ClientSession | None = None
        self._resolver: ConnectToResolver | None = None
        self._scheduler: HostScheduler | None = None
        self._ssl: ssl.SSLContext | bool = True
        self._dispatchers: set[asyncio.Task[None]] = set()
        self._soft404 = (
            Soft404Detector(threshold=self.options.soft404_threshold)
            if self.options.soft404
            else None
        )
        # page text is read (decoded, fingerprinted) for drift or for soft-404 judgements
        self._reads_text = self.options.fingerprints or self.options.soft404

    # -- lifecycle -----------------------------------------------------------

    async def __aenter__(self) -> Checker:
        options = self.options
        self._ssl = False if options.insecure else _ssl_context(options.ca_bundle)
        self._resolver = ConnectToResolver(
            self._connect_to, offline=options.offline_dns, exclude_private=options.exclude_private
        )
        per_host = max(
            [options.host_concurrency]
            + [p.concurrency for p in options.hosts.values() if p.concurrency]
        )
        connector = aiohttp.TCPConnector(
            limit=options.concurrency,
            limit_per_host=per_host,  # a backstop: the scheduler keeps each host to its own limit
            resolver=self._resolver,
            ssl=self._ssl,
            enable_cleanup_closed=True,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            trust_env=options.trust_env and _environment_configures_http(),
            headers={"User-Agent": options.user_agent},
            auto_decompress=True,
            max_field_size=65536,
            max_line_size=65536,
        )
        self._scheduler = HostScheduler(lambda host: self._settings(host).limits)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Cancel runs still going (a consumer that stopped iterating) and close the session."""
        for dispatcher in list(self._dispatchers):
            dispatcher.cancel()
        if self._dispatchers:
            await asyncio.gather(*self._dispatchers, return_exceptions=True)
        if self._soft404 is not None:
            probes = [task for task in self._soft404.probes.values() if not task.done()]
            for task in probes:
                task.cancel()
            await asyncio.gather(*probes, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def soft404_stats(self) -> dict[str, int]:
        """Soft-404 probes sent this run and the requests they cost (part of the results' counts)."""
        if self._soft404 is None:
            return {"probes": 0, "probe_requests": 0}
        return {
            "probes": len(self._soft404.probes),
            "probe_requests": self._soft404.probe_requests,
        }

    @property
    def stats(self) -> dict[str, HostStats]:
        """Per-host counters (requests, responses by status, throttling, waits)."""
        if self._scheduler is None:
            return {}
        return {host: gate.stats for host, gate in self._scheduler.gates.items()}

    # -- the run -------------------------------------------------------------

    async def run(self, urls: Iterable[str] | AsyncIterable[str]) -> AsyncIterator[CheckResult]:
        """Check every URL, yielding results as they complete (not in input order).

        Use ``contextlib.aclosing(checker.run(urls))`` when breaking out early, so
        in-flight requests are cancelled at once.
        """
        self._require_open()
        out: asyncio.Queue[CheckResult | _Finished] = asyncio.Queue(
            maxsize=max(64, self.options.concurrency * 2)
        )
        dispatcher = asyncio.create_task(self._dispatch(urls, out))
        self._dispatchers.add(dispatcher)
        dispatcher.add_done_callback(self._dispatchers.discard)
        try:
            while True:
                item = await out.get()
                if isinstance(item, _Finished):
                    if item.error is not None:
                        raise item.error
                    break
                yield item
        finally:
            if not dispatcher.done():
                dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await dispatcher

    async def check(self, url: str) -> CheckResult:
        """Check one URL (respecting the host limits shared with any concurrent run)."""
        self._require_open()
        early = self._precheck(url)
        if isinstance(early, CheckResult):
            return early
        return await self._check(url, early, slot_taken=False)

    def _require_open(self) -> None:
        if self._session is None or self._scheduler is None:
            raise RuntimeError("use `async with Checker(options) as checker:` first")

    async def _dispatch(
        self, urls: Iterable[str] | AsyncIterable[str], out: asyncio.Queue[CheckResult | _Finished]
    ) -> None:
        scheduler = self._scheduler
        assert scheduler is not None
        queues: OrderedDict[str, deque[tuple[str, URL]]] = OrderedDict()
        active: set[asyncio.Task[None]] = set()
        # URLs in progress per start host, sleeping retries included: capped, so one
        # failing host cannot fill the global limit with back-off sleepers.
        per_host: dict[str, int] = {}
        buffered = 0
        source = _aiter(urls)
        exhausted = False
        limit = self.options.concurrency

        def startable(host: str) -> bool:
            cap = HOST_TASKS_PER_SLOT * self._settings(host).limits.concurrency
            return per_host.get(host, 0) < cap

        def finished(task: asyncio.Task[None], host: str) -> None:
            active.discard(task)
            per_host[host] -= 1
            scheduler.any_change.set()

        try:
            while True:
                scheduler.any_change.clear()
                while not exhausted and buffered < self.options.buffer_size:
                    try:
                        url = await anext(source)
                    except StopAsyncIteration:
                        exhausted = True
                        break
                    early = self._precheck(url)
                    if isinstance(early, CheckResult):
                        await out.put(early)
                        continue
                    queues.setdefault(_host_key(early), deque()).append((url, early))
                    buffered += 1

                # round-robin: one start per ready host per pass; served hosts go to the back
                progress = True
                while progress and len(active) < limit:
                    progress = False
                    for host in list(queues):
                        if len(active) >= limit:
                            break
                        if not startable(host) or not scheduler.try_start(host):
                            continue
                        url, parsed = queues[host].popleft()
                        buffered -= 1
                        if queues[host]:
                            queues.move_to_end(host)
                        else:
                            del queues[host]
                        task = asyncio.create_task(self._check_into(url, parsed, out))
                        active.add(task)
                        per_host[host] = per_host.get(host, 0) + 1
                        task.add_done_callback(functools.partial(finished, host=host))
                        progress = True

                if exhausted and not queues and not active:
                    break
                await self._wait_for_change(queues, active, limit, startable)
        except BaseException as error:
            for task in active:
                task.cancel()
            await asyncio.gather(*active, return_exceptions=True)
            if isinstance(error, asyncio.CancelledError):
                raise
            await out.put(_Finished(error))
            return
        await out.put(_Finished(None))

    async def _wait_for_change(
        self,
        queues: OrderedDict[str, deque[tuple[str, URL]]],
        active: set[asyncio.Task[None]],
        limit: int,
        startable: Callable[[str], bool],
    ) -> None:
        """Sleep until a slot frees, a task ends, or the earliest rate-limited host is due."""
        scheduler = self._scheduler
        assert scheduler is not None
        timeout: float | None = None
        if len(active) < limit:
            now = scheduler.clock()
            for host in queues:
                gate = scheduler.gate(host)
                if gate.waiters or not startable(host):
                    continue
                wait = gate.ready_in(now)
                if wait is not None and (timeout is None or wait < timeout):
                    timeout = wait
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(scheduler.any_change.wait(), timeout)

    async def _check_into(
        self, url: str, parsed: URL, out: asyncio.Queue[CheckResult | _Finished]
    ) -> None:
        result = await self._check(url, parsed, slot_taken=True)
        await out.put(result)

    # -- one URL -------------------------------------------------------------

    def _precheck(self, url: str) -> CheckResult | URL:
        """Everything decidable without the network: parse, scheme, patterns, literal IPs."""
        try:
            parsed = URL(url)
        except (ValueError, TypeError) as error:
            return CheckResult(url, Status.INVALID, f"invalid URL: {error}", error=repr(error))
        try:
            self._admit(url, parsed)
        except _Excluded as excluded:
            return CheckResult(url, excluded.status, excluded.reason)
        return parsed

    def _admit(self, url: str, parsed: URL) -> None:
        scheme = parsed.scheme.lower()
        if not scheme:
            raise _Excluded(Status.INVALID, "invalid URL: not absolute (no scheme)")
        if scheme not in FETCHED_SCHEMES:
            raise _Excluded(Status.EXCLUDED, f"scheme {scheme}: not checked")
        if not parsed.raw_host:
            raise _Excluded(Status.INVALID, "invalid URL: no host")
        try:
            parsed.port  # noqa: B018 - raises on a bad port
        except ValueError as error:
            raise _Excluded(Status.INVALID, f"invalid URL: {error}") from error
        if not any(p.search(url) for p in self._include):
            for pattern in self._exclude:
                if pattern.search(url):
                    raise _Excluded(Status.EXCLUDED, f"matches --exclude {pattern.pattern!r}")
        host = parsed.raw_host.strip("[]")
        if self.options.exclude_private and is_ip_literal(host) and is_private_address(host):
            raise _Excluded(Status.EXCLUDED, f"private address {host} (--exclude-private)")

    async def _check(
        self, url: str, start: URL, *, slot_taken: bool, probing: bool = False
    ) -> CheckResult:
        """Check one URL; a bug or a failing capture callback becomes a result, never a lost URL."""
        token = _SlotToken(slot_taken)
        try:
            result = await self._check_url(url, start, token, probing=probing)
            if not probing:
                await self._judge(result, start)
            return result
        except Exception as error:
            logger.exception("internal error while checking %s", url)
            return CheckResult(
                url,
                Status.NETWORK_ERROR,
                f"internal error: {type(error).__name__}: {error}",
                error=repr(error),
                host=_host_key(start),
            )
        finally:
            if token.pending:  # the dispatcher's slot was never used: give it back
                assert self._scheduler is not None
                self._scheduler.release(_host_key(start))

    async def _check_url(
        self, url: str, start: URL, token: _SlotToken, *, probing: bool = False
    ) -> CheckResult:
        """One URL's requests; `probing`: a soft-404 probe (GET, one try, never captured)."""
        options = self.options
        began = time.perf_counter()
        result = CheckResult(url, Status.NETWORK_ERROR, "", started_at=datetime.now(UTC))
        capture = bool(options.capture and options.capture(url)) and not probing
        attempts = 1 if probing else options.attempts
        want_content = probing or await self._directory_wants_content(start)
        methods_used: list[str] = []
        visited = {_without_fragment(start)}
        current = start
        tries = 1
        head_code: int | None = None
        use_get = capture or options.always_get or want_content

        def finish(
            outcome: Outcome | None = None, *, status: Status | None = None, reason: str = ""
        ) -> CheckResult:
            if outcome is not None:
                status, reason = outcome.status, outcome.reason
            assert status is not None
            result.status, result.reason = status, reason
            result.attempts = tries
            result.method = ",".join(m for m in ("HEAD", "GET") if m in methods_used)
            result.elapsed_ms = (time.perf_counter() - began) * 1000
            result.permanent_redirect = bool(result.redirects) and all(
                hop.status in PERMANENT_REDIRECT_CODES for hop in result.redirects
            )
            return result

        while True:
            host = _host_key(current)
            result.host = result.host or host
            settings = self._settings(host)
            method = "GET" if use_get or self._host_prefers_get(host) else "HEAD"
            result.final_url = str(current)
            slot_taken, token.pending = token.pending, False  # _fetch owns the slot now
            try:
                answer = await self._fetch(current, method, settings, capture, slot_taken)
            except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as error:
                result.requests += 1
                methods_used.append(method)
                result.error = f"{type(error).__name__}: {error}"
                result.ip = result.ip or self._resolved_ip(current)
                result.http_status = None  # an earlier hop's status would mislead
                outcome = classify_error(error, settings.timeouts)
                if method == "HEAD" and _dropped_after_connect(error):
                    use_get = True  # some servers drop HEAD on the floor; GET is the real test
                    head_code = None
                    continue
                if outcome.retryable and tries < attempts:
                    tries += 1
                    self._gate(host).stats.retries += 1
                    await asyncio.sleep(
                        backoff_delay(tries - 1, options.backoff_base, options.backoff_cap)
                    )
                    continue
                return finish(outcome)
            result.requests += 1
            methods_used.append(method)
            result.error = None
            self._note_head(host, method, answer.status)
            if head_code is not None and method == "GET":
                self._note_head_checked(host, head_code, answer.status)
            if (
                method == "HEAD"
                and needs_get_after_head(answer.status)
                and not self._head_trusted(host, answer.status)
            ):
                head_code = answer.status
                use_get = True  # for this hop and its retries
                continue

            result.http_status = answer.status
            result.ip = answer.ip
            result.latency_ms = answer.latency * 1000
            result.content_type = answer.headers.get("Content-Type")
            result.content_length = _int(answer.headers.get("Content-Length"))
            if answer.exchange is not None:
                answer.exchange.extra["hop"] = str(len(result.redirects))
                result.exchanges.append(answer.exchange)
            if answer.sample is not None:
                result.sample = answer.sample

            gate = self._gate(host)
            if answer.status in REDIRECT_CODES and answer.location is not None:
                gate.succeed()
                result.redirects.append(Hop(str(current), answer.status, answer.location))
                try:
                    target = current.join(URL(answer.location))
                except (ValueError, TypeError):
                    return finish(
                        status=Status.BROKEN,
                        reason=f"HTTP {status_text(answer.status)} to an invalid Location {answer.location!r}",
                    )
                hops = len(result.redirects)
                key = _without_fragment(target)
                if key in visited:
                    plural = "hop" if hops == 1 else "hops"
                    return finish(
                        status=Status.BROKEN, reason=f"redirect loop after {hops} {plural}"
                    )
                if hops > options.max_redirects:
                    return finish(
                        status=Status.BROKEN, reason=f"more than {options.max_redirects} redirects"
                    )
                try:
                    self._admit(str(target), target)
                except _Excluded as excluded:
                    result.final_url = str(target)
                    return finish(
                        status=excluded.status, reason=f"redirects to {target}: {excluded.reason}"
                    )
                visited.add(key)
                current = target
                head_code = None
                use_get = capture or options.always_get or want_content
                continue

            label = (
                f"HEAD {head_code}, GET {answer.status}"
                if head_code is not None and method == "GET"
                else f"HTTP {status_text(answer.status)}"
            )
            outcome = classify_response(answer.status, answer.headers, settings.accept, label=label)
            if result.redirects and outcome.status is Status.OK:
                codes = ", ".join(str(hop.status) for hop in result.redirects)
                count = len(result.redirects)
                outcome = Outcome(
                    Status.REDIRECTED,
                    f"{label} after {count} redirect{'s' if count > 1 else ''} ({codes})",
                )
            retry_after = parse_retry_after(answer.headers.get("Retry-After"))
            host_delay = None  # set when the whole host was told to wait
            if outcome.throttle:
                capped = None if retry_after is None else min(retry_after, options.retry_after_cap)
                host_delay = gate.throttle(
                    self._scheduler_clock(),
                    capped,
                    options.backoff_base,
                    options.backoff_cap,
                    url=str(current),
                )
                if host_delay is not None:
                    self._scheduler_notify(host)
            elif answer.status < 500:
                gate.succeed()
            if not outcome.retryable or tries >= attempts:
                return finish(outcome)
            if retry_after is not None and retry_after > options.retry_after_cap:
                return finish(
                    status=outcome.status,
                    reason=f"{label}, Retry-After {seconds(retry_after)} exceeds the "
                    f"{seconds(options.retry_after_cap)} cap",
                )
            tries += 1
            gate.stats.retries += 1
            if host_delay is None:
                # the host gate already holds back throttled hosts; others wait here
                delay = (
                    retry_after
                    if retry_after is not None
                    else backoff_delay(tries - 1, options.backoff_base, options.backoff_cap)
                )
                await asyncio.sleep(min(delay, options.retry_after_cap))

    # -- soft 404s and fingerprints -------------------------------------------

    async def _directory_wants_content(self, start: URL) -> bool:
        """Whether this link's directory answers unknown URLs with pages (so GET, not HEAD).

        The first link of a directory starts the probe and goes ahead without
        waiting; later links wait for the probe's answer.
        """
        if not applies(start):
            return False
        if self._soft404 is None:
            return self.options.read_pages
        task, started = self._soft404.probe_task(start, self._fetch_probe)
        if started or self.options.read_pages:
            return self.options.read_pages
        probe = await _probe_of(task)
        return probe is not None and probe.answers_ok

    async def _fetch_probe(self, url: str) -> CheckResult:
        return await self._check(url, URL(url), slot_taken=False, probing=True)

    async def _judge(self, result: CheckResult, start: URL) -> None:
        """Fingerprint the page read, and let the soft-404 layer judge an alive answer."""
        page: PageText | None = None
        fingerprint: Fingerprint | None = None
        if (
            self._reads_text
            and result.sample
            and result.status.is_alive
            and is_html(result.content_type, result.sample)
        ):
            page, fingerprint = fingerprint_page(result.sample, result.content_type)
            result.fingerprint = fingerprint.dumps()  # error pages get none: nothing to drift
        if self._soft404 is None or not applies(start):
            return
        task, _ = self._soft404.probe_task(start, self._fetch_probe)
        pays = self._soft404.bill(start)
        if not (pays or result.status.is_alive):
            return
        probe = await _probe_of(task)
        if probe is not None and pays:
            result.requests += probe.requests  # the probe is part of this run's cost
        if probe is None or not result.status.is_alive:
            return
        if probe.answers_ok and result.sample is None and result.final_url:
            page, fingerprint = await self._read_page(result)
        verdict = self._soft404.judge(result, probe, page, fingerprint)
        if verdict is None:
            return
        result.evidence = {**(result.evidence or {}), **verdict.evidence}
        if verdict.soft_404:
            result.status = Status.SOFT_404
            result.reason = f"{verdict.reason} ({result.reason})"

    async def _read_page(self, result: CheckResult) -> tuple[PageText | None, Fingerprint | None]:
        """GET a page that HEAD found alive, when its directory needs content as evidence."""
        assert result.final_url is not None
        target = URL(result.final_url)
        settings = self._settings(_host_key(target))
        result.requests += 1
        try:
            answer = await self._fetch(target, "GET", settings, False, False)
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError):
            return None, None
        if "GET" not in result.method.split(","):
            result.method = f"{result.method},GET" if result.method else "GET"
        if not 200 <= answer.status < 300 or not answer.sample:
            return None, None
        result.sample = answer.sample
        content_type = answer.headers.get("Content-Type")
        if not is_html(content_type, answer.sample):
            return None, None
        page, fingerprint = fingerprint_page(answer.sample, content_type)
        result.fingerprint = fingerprint.dumps()
        return page, fingerprint

    # -- one request ---------------------------------------------------------

    async def _fetch(
        self, url: URL, method: str, settings: _HostSettings, capture: bool, slot_taken: bool
    ) -> _Answer:
        session, scheduler = self._session, self._scheduler
        assert session is not None and scheduler is not None
        host = _host_key(url)
        async with scheduler.slot(host, already_started=slot_taken) as gate:
            began = time.perf_counter()
            try:
                answer = await self._request(session, url, method, settings, capture)
            except BaseException:
                gate.stats.errors += 1
                raise
            finally:
                gate.stats.busy_seconds += time.perf_counter() - began
            gate.stats.responses[answer.status] = gate.stats.responses.get(answer.status, 0) + 1
            return answer

    async def _request(
        self,
        session: aiohttp.ClientSession,
        url: URL,
        method: str,
        settings: _HostSettings,
        capture: bool,
    ) -> _Answer:
        options = self.options
        began = time.perf_counter()
        started = datetime.now(UTC)
        async with session.request(
            method,
            url,
            headers=settings.headers,
            allow_redirects=False,
            timeout=settings.client_timeout,
            proxy=options.proxy,
            ssl=self._ssl,
            auto_decompress=not capture,
        ) as response:
            ip = _peer_ip(response) or self._resolved_ip(url)
            location = response.headers.get("Location")
            sample: bytes | None = None
            exchange: Exchange | None = None
            if method == "GET":
                limit = options.capture_max_bytes if capture else options.get_bytes
                body, complete = await _read_up_to(response, limit)
                if capture:
                    exchange = Exchange(
                        url=str(url),
                        method=method,
                        request_headers=_request_headers(response, url),
                        status=response.status,
                        reason=response.reason or "",
                        # decoded the way the WARC writer encodes them back (warc.py):
                        # the stored header bytes are exactly the bytes received
                        response_headers=[
                            (
                                name.decode("utf-8", "surrogateescape"),
                                value.decode("utf-8", "surrogateescape"),
                            )
                            for name, value in response.raw_headers
                        ],
                        body=body,
                        started=started,
                        http_version=f"{response.version.major}.{response.version.minor}"
                        if response.version
                        else "1.1",
                        ip=ip,
                        truncated=not complete,
                    )
                    if self._reads_text:
                        sample = decoded_prefix(
                            body, response.headers.get("Content-Encoding", ""), options.get_bytes
                        )
                else:
                    sample = body
                if not complete:
                    response.close()  # stop the transfer: the rest is not needed
            return _Answer(
                status=response.status,
                headers=response.headers,
                location=location,
                ip=ip,
                sample=sample,
                exchange=exchange,
                latency=time.perf_counter() - began,
            )

    # -- helpers -------------------------------------------------------------

    def _settings(self, host: str) -> _HostSettings:
        cached = self._settings_cache.get(host)
        if cached is not None:
            return cached
        options = self.options
        policy = _policy_for(host, self._policies) or HostPolicy()
        headers = {**options.headers, **policy.headers}
        if not any(name.lower() == "user-agent" for name in headers):
            headers["User-Agent"] = options.user_agent
        settings = _HostSettings(
            limits=HostLimits(
                concurrency=max(1, policy.concurrency or options.host_concurrency),
                rate=policy.rate if policy.rate is not None else options.host_rate,
            ),
            timeouts=Timeouts(
                connect=_pick(policy.connect_timeout, options.connect_timeout),
                read=_pick(policy.read_timeout, options.read_timeout),
                total=_pick(policy.total_timeout, options.total_timeout),
            ),
            headers=headers,
            accept=policy.accept or options.accept,
        )
        self._settings_cache[host] = settings
        return settings

    def _gate(self, host: str) -> HostGate:
        assert self._scheduler is not None
        return self._scheduler.gate(host)

    def _scheduler_clock(self) -> float:
        assert self._scheduler is not None
        return self._scheduler.clock()

    def _scheduler_notify(self, host: str) -> None:
        assert self._scheduler is not None
        self._scheduler.notify(host)

    def _note_head(self, host: str, method: str, code: int) -> None:
        if method != "HEAD":
            return
        if code in (405, 501):
            self._head_refusals[host] = self._head_refusals.get(host, 0) + 1
        elif 200 <= code < 400:
            self._head_successes[host] = self._head_successes.get(host, 0) + 1

    def _note_head_checked(self, host: str, head_code: int, get_code: int) -> None:
        """What GET said after a HEAD 404/410: the same (HEAD is honest here) or not."""
        if head_code not in HEAD_TRUSTABLE:
            return
        if get_code == head_code:
            self._head_confirmed[host] = self._head_confirmed.get(host, 0) + 1
        elif get_code < 400:
            self._head_contradicted.add(host)

    def _head_trusted(self, host: str, code: int) -> bool:
        """A HEAD 404/410 needs no GET on a host whose HEAD 404/410s GET always confirmed."""
        return (
            code in HEAD_TRUSTABLE
            and host not in self._head_contradicted
            and self._head_confirmed.get(host, 0) >= HEAD_CONFIRMATIONS_TO_TRUST
        )

    def _host_prefers_get(self, host: str) -> bool:
        """A host that keeps refusing HEAD and never accepted it gets GET directly (fewer requests)."""
        refusals = self._head_refusals.get(host, 0)
        return refusals >= HEAD_REFUSALS_BEFORE_GET_ONLY and not self._head_successes.get(host)

    def _resolved_ip(self, url: URL) -> str | None:
        if self._resolver is None or url.raw_host is None:
            return None
        addresses = self._resolver.addresses.get((url.raw_host.lower(), url.port or 0))
        return addresses[0] if addresses else None


@dataclass(slots=True)
class _SlotToken:
    """Whether the host slot the dispatcher took for a URL is still unused."""

    pending: bool


@dataclass(slots=True)
class _Finished:
    error: BaseException | None


# ---------------------------------------------------------------------------


async def _probe_of(task: asyncio.Future[Probe]) -> Probe | None:
    """A directory's probe, or None if it could not be had (shielded: waiters never cancel it)."""
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        if task.cancelled():
            return None
        raise
    except Exception:
        return None


def check_urls(urls: Iterable[str], options: CheckOptions | None = None) -> list[CheckResult]:
    """Check a small list synchronously; results come back in input order."""
    wanted = list(urls)

    async def collect() -> list[CheckResult]:
        async with Checker(options) as checker:
            return [result async for result in checker.run(wanted)]

    results = asyncio.run(collect())
    order = {url: index for index, url in enumerate(wanted)}
    return sorted(results, key=lambda result: order.get(result.url, len(order)))


def _ssl_context(ca_bundle: str | None) -> ssl.SSLContext:
    """Verified TLS: --ca-bundle, else SSL_CERT_FILE, else the system store."""
    cafile = ca_bundle or os.environ.get("SSL_CERT_FILE") or None
    return ssl.create_default_context(cafile=cafile)


def _policy_for(host: str, policies: dict[str, HostPolicy]) -> HostPolicy | None:
    if not policies:
        return None
    exact = policies.get(host)
    if exact is not None:
        return exact
    best: tuple[int, HostPolicy] | None = None
    for key, policy in policies.items():
        if key.startswith("*."):
            suffix = key[1:].lower()
            if host.endswith(suffix) and (best is None or len(suffix) > best[0]):
                best = (len(suffix), policy)
    return best[1] if best else None


def _policy_key(key: str) -> str:
    """Config keys may be written in Unicode; URLs are matched in their IDNA form."""
    if key.startswith("*."):
        return "*." + ascii_host(key[2:])
    return ascii_host(key)


def _pick(override: float | None, default: float) -> float:
    return default if override is None else override


def _host_key(url: URL) -> str:
    return (url.raw_host or "").lower().rstrip(".")


def _without_fragment(url: URL) -> str:
    return str(url.with_fragment(None))


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


async def _aiter(urls: Iterable[str] | AsyncIterable[str]) -> AsyncIterator[str]:
    if isinstance(urls, AsyncIterable):
        async for url in urls:
            yield url
    else:
        for url in urls:
            yield url


async def _read_up_to(response: aiohttp.ClientResponse, limit: int) -> tuple[bytes, bool]:
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


def _dropped_after_connect(error: BaseException) -> bool:
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


def _peer_ip(response: aiohttp.ClientResponse) -> str | None:
    connection = response.connection
    if connection is None or connection.transport is None:
        return None
    peer = connection.transport.get_extra_info("peername")
    return peer[0] if peer else None


def _request_headers(response: aiohttp.ClientResponse, url: URL) -> list[tuple[str, str]]:
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
