"""The checking engine: fetch every URL politely and fast, and say precisely what happened.

One `Checker` = one run = one aiohttp session (keep-alive; a TCPConnector with
the global limit). dispatch.py decides which URL starts next (per-host queues,
round-robin, host slots); fetch.py sends each request inside its host's limits;
this module walks one URL's requests to a verdict (see classify.py for what
each answer means):

* HEAD first; GET when the HEAD answer is one servers get wrong (405, 501, 403,
  404, other non-2xx/3xx except "ask again" codes). A GET streams and stops after
  ``get_bytes``, keeping that prefix as ``sample`` (for soft-404/fingerprints).
* When ``capture(url)`` is true: GET only, the whole raw body (content-encoding
  kept, chunking removed) up to ``capture_max_bytes``, an `Exchange` per hop.
* Redirects are followed by hand, each hop recorded; loops and overlong chains
  are reported as such.
* Soft 404s (``soft404=True``): soft404.py probes each host+directory once and
  says whether a link's directory needs its content read (GET instead of HEAD);
  an alive answer is then judged and may become ``soft-404`` with its evidence.
  The probe's requests are counted in the result of the link that started it.
* Every GET of an HTML page leaves a main-text fingerprint (fingerprint.py) in
  ``CheckResult.fingerprint``, for drift detection in the history, and the
  digest of what was read in ``CheckResult.digest``.
* Retryable failures (timeouts, resets, 5xx, 429) are retried up to
  ``attempts`` tries (timeouts: TIMEOUT_ATTEMPTS) with exponential back-off and
  jitter, the wait holding no slot (`HostScheduler.rest`); 429/503s of several
  URLs together slow the whole host (hosts.py), a lone one makes only its URL
  wait; Retry-After is honoured up to ``retry_after_cap`` (a longer one is not
  waited for: the URL is reported rate-limited).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Iterable
from dataclasses import dataclass, field

import aiohttp
from yarl import URL

from linkkeeper.check.admit import Admission, Excluded
from linkkeeper.check.answers import AnswerCache
from linkkeeper.check.classify import (
    PERMANENT_REDIRECT_CODES,
    REDIRECT_CODES,
    Outcome,
    classify_error,
    classify_response,
    needs_get_after_head,
    seconds,
    status_text,
)
from linkkeeper.check.dispatch import Dispatcher, Finished
from linkkeeper.check.fetch import (
    FETCH_ERRORS,
    Answer,
    Fetcher,
    dropped_after_connect,
    open_session,
    ssl_context,
)
from linkkeeper.check.fingerprint import Fingerprint, PageText, fingerprint_page, is_html
from linkkeeper.check.hosts import (
    HostGate,
    HostScheduler,
    HostStats,
    backoff_delay,
    parse_retry_after,
)
from linkkeeper.check.options import CheckOptions
from linkkeeper.check.policy import HeadHabits, HostSettings, HostSettingsBook
from linkkeeper.check.resolver import (
    ConnectToResolver,
    forbid_private,
    parse_connect_to,
    proxy_addresses,
)
from linkkeeper.check.result import CheckResult, Hop
from linkkeeper.check.soft404 import Soft404Detector, applies
from linkkeeper.clock import utcnow
from linkkeeper.exchange import sha1_b32
from linkkeeper.urls import host_key
from linkkeeper.vocab import Status

logger = logging.getLogger(__name__)

# Tries for a request that timed out: one retry at most. A server silent for a whole
# read timeout rarely answers the next time, and each try costs that timeout again
# (three tries of a hanging link were a run's last minute); the next run tries again.
TIMEOUT_ATTEMPTS = 2

@dataclass(slots=True)
class _SlotToken:
    """Whether the host slot the dispatcher took for a URL is still unused."""

    pending: bool


@dataclass(slots=True)
class _Walk:
    """One URL's check in progress: where it is, how it was asked, and what it found."""

    result: CheckResult
    current: URL
    token: _SlotToken
    attempts: int  # tries allowed per request
    capture: bool
    want_content: bool  # GET, not HEAD: the page's content is evidence
    began: float = field(default_factory=time.perf_counter)
    forbid_private: bool = False  # a public address redirected here (resolver.py)
    tries: int = 1
    head_code: int | None = None  # the HEAD answer GET is now checking
    use_get: bool = False
    methods: list[str] = field(default_factory=list)
    visited: set[str] = field(default_factory=set)

    def finish(self, status: Status, reason: str) -> CheckResult:
        result = self.result
        result.status, result.reason = status, reason
        result.attempts = self.tries
        result.method = ",".join(m for m in ("HEAD", "GET") if m in self.methods)
        result.elapsed_ms = (time.perf_counter() - self.began) * 1000
        result.permanent_redirect = bool(result.redirects) and all(
            hop.status in PERMANENT_REDIRECT_CODES for hop in result.redirects
        )
        result.digest = sha1_b32(result.sample) if result.sample is not None else None
        return result

    def done(self, outcome: Outcome) -> CheckResult:
        return self.finish(outcome.status, outcome.reason)


class Checker:
    """Async context manager owning the run's session; `run()` streams results."""

    def __init__(self, options: CheckOptions | None = None) -> None:
        self.options = options or CheckOptions()
        self._admission = Admission(self.options)
        self._connect_to = parse_connect_to(self.options.connect_to)
        self._settings = HostSettingsBook(self.options)
        self._head = HeadHabits()
        self._answers: AnswerCache[Answer] = AnswerCache()
        self._fetcher: Fetcher | None = None
        self._resolver = ConnectToResolver()  # replaced by the run's in __aenter__
        self._scheduler: HostScheduler | None = None
        self._runs: set[asyncio.Task[None]] = set()
        self._soft404 = (
            Soft404Detector(
                self._fetch_probe,
                threshold=self.options.soft404_threshold,
                read_pages=self.options.read_pages,
            )
            if self.options.soft404
            else None
        )
        # page text is read (decoded, fingerprinted) for drift or for soft-404 judgements
        self._reads_text = self.options.fingerprints or self.options.soft404

    # -- lifecycle -----------------------------------------------------------

    async def __aenter__(self) -> Checker:
        options = self.options
        tls = False if options.insecure else ssl_context(options.ca_bundle)
        resolver = ConnectToResolver(
            self._connect_to, offline=options.offline_dns, exclude_private=options.exclude_private,
            exempt=proxy_addresses(options.proxy, options.trust_env),
        )
        self._resolver = resolver
        self._scheduler = HostScheduler(lambda host: self._settings(host).limits)
        self._fetcher = Fetcher(
            options=options,
            session=open_session(
                options, resolver, tls, lambda host: self._settings(host).limits.concurrency
            ),
            scheduler=self._scheduler,
            resolver=resolver,
            ssl=tls,
            reads_text=self._reads_text,
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Cancel runs still going (a consumer that stopped iterating) and close the session."""
        for task in list(self._runs):
            task.cancel()
        if self._runs:
            await asyncio.gather(*self._runs, return_exceptions=True)
        if self._soft404 is not None:
            await self._soft404.aclose()
        if self._fetcher is not None:
            await self._fetcher.session.close()
            self._fetcher = None

    @property
    def soft404_stats(self) -> dict[str, int]:
        """Soft-404 probes sent this run and the requests they cost (part of the results' counts)."""
        if self._soft404 is None:
            return {"probes": 0, "probe_requests": 0}
        return self._soft404.stats

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
        scheduler = self._require_open()
        out: asyncio.Queue[CheckResult | Finished] = asyncio.Queue(
            maxsize=max(64, self.options.concurrency * 2)
        )
        dispatcher = Dispatcher(
            scheduler=scheduler,
            precheck=self._admission.precheck,
            check=lambda url, parsed: self._check(url, parsed, slot_taken=True),
            host_concurrency=lambda host: self._settings(host).limits.concurrency,
            concurrency=self.options.concurrency,
            buffer_size=self.options.buffer_size,
        )
        task = asyncio.create_task(dispatcher.run(urls, out))
        self._runs.add(task)
        task.add_done_callback(self._runs.discard)
        try:
            while True:
                item = await out.get()
                if isinstance(item, Finished):
                    if item.error is not None:
                        raise item.error
                    break
                yield item
        finally:
            if not task.done():
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def check(self, url: str) -> CheckResult:
        """Check one URL (respecting the host limits shared with any concurrent run)."""
        self._require_open()
        early = self._admission.precheck(url)
        if isinstance(early, CheckResult):
            return early
        return await self._check(url, early, slot_taken=False)

    def _require_open(self) -> HostScheduler:
        if self._fetcher is None or self._scheduler is None:
            raise RuntimeError("use `async with Checker(options) as checker:` first")
        return self._scheduler

    # -- one URL -------------------------------------------------------------

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
                host=host_key(start),
            )
        finally:
            if token.pending:  # the dispatcher's slot was never used: give it back
                assert self._scheduler is not None
                self._scheduler.release(host_key(start))

    async def _check_url(
        self, url: str, start: URL, token: _SlotToken, *, probing: bool = False
    ) -> CheckResult:
        """One URL's requests; `probing`: a soft-404 probe (GET, one try, never captured)."""
        options = self.options
        walk = _Walk(
            result=CheckResult(url, Status.NETWORK_ERROR, "", started_at=utcnow()),
            current=start,
            token=token,
            attempts=1 if probing else options.attempts,
            capture=bool(options.capture and options.capture(url)) and not probing,
            want_content=probing or await self._directory_wants_content(start),
            visited={_without_fragment(start)},
        )
        walk.use_get = self._starts_with_get(walk)
        while True:
            host = host_key(walk.current)
            walk.result.host = walk.result.host or host
            settings = self._settings(host)
            method = "GET" if walk.use_get or self._head.prefers_get(host) else "HEAD"
            walk.result.final_url = str(walk.current)
            try:
                with forbid_private(walk.forbid_private):
                    answer, shared = await self._ask(walk, method, settings)
            except FETCH_ERRORS as error:
                done = await self._after_error(walk, error, method, settings)
            else:
                done = await self._after_answer(walk, answer, method, settings, shared)
            if done is not None:
                return done

    async def _ask(
        self, walk: _Walk, method: str, settings: HostSettings
    ) -> tuple[Answer, bool]:
        """One request of the walk, or the same request's answer shared within the run.

        Captured requests are always sent (each capture records its own exchange).
        A shared answer gives the dispatcher's unused slot back at once.
        """
        token = walk.token
        slot_taken, token.pending = token.pending, False  # fetch owns the slot now
        fetcher = self._fetcher
        assert fetcher is not None

        def send() -> Awaitable[Answer]:
            nonlocal slot_taken
            taken, slot_taken = slot_taken, False
            return fetcher.fetch(walk.current, method, settings, walk.capture, taken)

        if walk.capture:
            return await send(), False
        try:
            return await self._answers.ask(method, str(walk.current), send)
        finally:
            if slot_taken:  # answered without sending: the slot was never used
                self._return_slot(host_key(walk.current))

    def _return_slot(self, host: str) -> None:
        assert self._scheduler is not None
        self._scheduler.gate(host).stats.requests -= 1  # counted when taken, never sent
        self._scheduler.release(host)

    def _starts_with_get(self, walk: _Walk) -> bool:
        return walk.capture or self.options.always_get or walk.want_content

    async def _after_error(
        self, walk: _Walk, error: BaseException, method: str, settings: HostSettings
    ) -> CheckResult | None:
        """A request that got no HTTP answer: ask with GET, retry, or conclude (None: go on)."""
        result = walk.result
        if not never_sent(error):  # a name that does not resolve, a refused port: no request
            result.requests += 1
        walk.methods.append(method)
        result.error = f"{type(error).__name__}: {error}"
        assert self._fetcher is not None
        result.ip = result.ip or self._fetcher.resolved_ip(walk.current)
        result.http_status = None  # an earlier hop's status would mislead
        outcome = classify_error(error, settings.timeouts)
        if method == "HEAD" and dropped_after_connect(error):
            walk.use_get = True  # some servers drop HEAD on the floor; GET is the real test
            walk.head_code = None
            return None
        allowed = walk.attempts
        if outcome.status is Status.TIMEOUT:
            allowed = min(allowed, TIMEOUT_ATTEMPTS)
        if outcome.retryable and walk.tries < allowed:
            walk.tries += 1
            self._gate(walk.current).stats.retries += 1
            options = self.options
            await self._rest(
                walk.current,
                backoff_delay(walk.tries - 1, options.backoff_base, options.backoff_cap),
            )
            return None
        return walk.done(outcome)

    async def _rest(self, url: URL, delay: float) -> None:
        """Wait before a retry, holding no slot and no place in the dispatcher (hosts.py)."""
        assert self._scheduler is not None
        await self._scheduler.rest(host_key(url), delay)

    async def _after_answer(
        self, walk: _Walk, answer: Answer, method: str, settings: HostSettings, shared: bool
    ) -> CheckResult | None:
        """An HTTP answer: GET after HEAD, follow a redirect, retry, or conclude (None: go on).

        `shared`: the answer of the same request made for another check (no request here).
        """
        result, host = walk.result, host_key(walk.current)
        result.requests += 0 if shared else 1
        walk.methods.append(method)
        result.error = None
        self._head.note(host, method, answer.status)
        if walk.head_code is not None and method == "GET":
            self._head.note_get_after_head(host, walk.head_code, answer.status)
        if (
            method == "HEAD"
            and needs_get_after_head(answer.status)
            and not self._head.trusted(host, answer.status)
        ):
            walk.head_code = answer.status
            walk.use_get = True  # for this hop and its retries
            return None
        _record_answer(result, answer)
        if answer.status in REDIRECT_CODES and answer.location is not None:
            self._gate(walk.current).succeed()
            return self._follow(walk, answer)
        return await self._conclude(walk, answer, method, settings)

    def _follow(self, walk: _Walk, answer: Answer) -> CheckResult | None:
        """Record a redirect hop and move to its target, unless it loops, overruns or is excluded."""
        assert answer.location is not None
        result = walk.result
        result.redirects.append(Hop(str(walk.current), answer.status, answer.location))
        try:
            target = walk.current.join(URL(answer.location))
        except (ValueError, TypeError):
            return walk.finish(
                Status.BROKEN,
                f"HTTP {status_text(answer.status)} to an invalid Location {answer.location!r}",
            )
        hops = len(result.redirects)
        key = _without_fragment(target)
        if key in walk.visited:
            return walk.finish(
                Status.BROKEN, f"redirect loop after {hops} {'hop' if hops == 1 else 'hops'}"
            )
        if hops > self.options.max_redirects:
            return walk.finish(Status.BROKEN, f"more than {self.options.max_redirects} redirects")
        try:
            self._admission.admit(str(target), target)
        except Excluded as excluded:
            result.final_url = str(target)
            return walk.finish(excluded.status, f"redirects to {target}: {excluded.reason}")
        if not self.options.allow_private and self._resolver.counts_as_public(
            walk.current, answer.ip
        ):
            walk.forbid_private = True  # for every later hop of this check
        refused = self._resolver.refused_redirect(target) if walk.forbid_private else None
        if refused is not None:
            result.final_url = str(target)
            return walk.finish(Status.EXCLUDED, f"redirects to {target}: {refused}")
        walk.visited.add(key)
        walk.current = target
        walk.head_code = None
        walk.use_get = self._starts_with_get(walk)
        return None

    async def _conclude(
        self, walk: _Walk, answer: Answer, method: str, settings: HostSettings
    ) -> CheckResult | None:
        """A final answer: its verdict, or a retry (host throttled, or waiting here first)."""
        options = self.options
        label = (
            f"HEAD {walk.head_code}, GET {answer.status}"
            if walk.head_code is not None and method == "GET"
            else f"HTTP {status_text(answer.status)}"
        )
        outcome = _after_redirects(
            classify_response(answer.status, answer.headers, settings.accept, label=label),
            walk.result.redirects,
            label,
        )
        retry_after = parse_retry_after(answer.headers.get("Retry-After"))
        host_delay = self._throttle(walk, answer, outcome, retry_after)
        if not outcome.retryable or walk.tries >= walk.attempts:
            return walk.done(outcome)
        if retry_after is not None and retry_after > options.retry_after_cap:
            return walk.finish(
                outcome.status,
                f"{label}, Retry-After {seconds(retry_after)} exceeds the "
                f"{seconds(options.retry_after_cap)} cap",
            )
        walk.tries += 1
        self._gate(walk.current).stats.retries += 1
        if host_delay is None:
            # the host gate already holds back throttled hosts; others wait here
            delay = (
                retry_after
                if retry_after is not None
                else backoff_delay(walk.tries - 1, options.backoff_base, options.backoff_cap)
            )
            await self._rest(walk.current, min(delay, options.retry_after_cap))
        return None

    def _throttle(
        self, walk: _Walk, answer: Answer, outcome: Outcome, retry_after: float | None
    ) -> float | None:
        """Tell the host's gate how it answered; the delay when the whole host must wait."""
        gate = self._gate(walk.current)
        if not outcome.throttle:
            if answer.status < 500:
                gate.succeed()
            return None
        options = self.options
        capped = None if retry_after is None else min(retry_after, options.retry_after_cap)
        assert self._scheduler is not None
        host_delay = gate.throttle(
            self._scheduler.clock(),
            capped,
            options.backoff_base,
            options.backoff_cap,
            url=str(walk.current),
        )
        if host_delay is not None:
            self._scheduler.notify(host_key(walk.current))
        return host_delay

    def _gate(self, url: URL) -> HostGate:
        assert self._scheduler is not None
        return self._scheduler.gate(host_key(url))

    # -- soft 404s and fingerprints -------------------------------------------

    async def _directory_wants_content(self, start: URL) -> bool:
        """Whether the link must be read with GET: --read-pages, or soft404.py says so."""
        if self._soft404 is None:
            return self.options.read_pages and applies(start)
        return await self._soft404.wants_content(start)

    async def _fetch_probe(self, url: str) -> CheckResult:
        """The narrow fetch soft404.py probes with: one GET, one try, never captured."""
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
        if self._soft404 is None:
            return
        probe, billed = await self._soft404.probe_for(start, alive=result.status.is_alive)
        result.requests += billed  # the probe is part of this run's cost
        if probe is None:
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
        assert result.final_url is not None and self._fetcher is not None
        target = URL(result.final_url)
        settings = self._settings(host_key(target))
        result.requests += 1
        try:
            answer = await self._fetcher.fetch(target, "GET", settings, False, False)
        except FETCH_ERRORS:
            return None, None
        if "GET" not in result.method.split(","):
            result.method = f"{result.method},GET" if result.method else "GET"
        if not 200 <= answer.status < 300 or not answer.sample:
            return None, None
        result.sample = answer.sample
        result.digest = sha1_b32(answer.sample)
        content_type = answer.headers.get("Content-Type")
        if not is_html(content_type, answer.sample):
            return None, None
        page, fingerprint = fingerprint_page(answer.sample, content_type)
        result.fingerprint = fingerprint.dumps()
        return page, fingerprint


def _record_answer(result: CheckResult, answer: Answer) -> None:
    """What a real answer tells about the URL (the last one read wins)."""
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


def _after_redirects(outcome: Outcome, redirects: list[Hop], label: str) -> Outcome:
    """An OK reached through redirects is `redirected`, with the hops' codes."""
    if not redirects or outcome.status is not Status.OK:
        return outcome
    codes = ", ".join(str(hop.status) for hop in redirects)
    count = len(redirects)
    return Outcome(
        Status.REDIRECTED, f"{label} after {count} redirect{'s' if count > 1 else ''} ({codes})"
    )


def check_urls(urls: Iterable[str], options: CheckOptions | None = None) -> list[CheckResult]:
    """Check a small list synchronously; results come back in input order."""
    wanted = list(urls)

    async def collect() -> list[CheckResult]:
        async with Checker(options) as checker:
            return [result async for result in checker.run(wanted)]

    results = asyncio.run(collect())
    order = {url: index for index, url in enumerate(wanted)}
    return sorted(results, key=lambda result: order.get(result.url, len(order)))


def _without_fragment(url: URL) -> str:
    return str(url.with_fragment(None))


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def never_sent(error: BaseException) -> bool:
    """The request never left: no connection (DNS, refused, TLS handshake, connect timeout).

    Such a try is an attempt but not a request: the run's request count (and a probe's
    bill) counts only what reached a server.
    """
    return isinstance(error, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError)
