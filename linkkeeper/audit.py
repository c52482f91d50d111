"""The nightly audit as one library call: scan, plan, check, record, archive.

`run_audit` is what `linkkeeper check` does; the CLI only parses options and
prints. The checker yields results as they complete; they are recorded in
batches while the run goes on, so an interrupted run keeps everything it had
finished and the next call resumes the same plan. `run_audit_async` is the
same run without the scan, for callers that already have an event loop.

A run cut off from the network (history/truth.py `run_verdict`: optional
canary URLs, else most hosts unreachable at the DNS/connect level) ends
`degraded`: its failures are recorded but not counted, and the result says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import sqlite_utils

from linkkeeper.archive.archiver import ArchiveCounts, ArchiveOptions, Archiver, with_capture
from linkkeeper.check.checker import Checker
from linkkeeper.check.options import CheckOptions
from linkkeeper.check.result import CheckResult
from linkkeeper.clock import utcnow
from linkkeeper.extract.post import DEFAULT_SOURCE_KEYS
from linkkeeper.history.recorder import Recorder, settle_abandoned
from linkkeeper.history.runs import (
    Plan,
    Run,
    plan_urls,
    planned_urls,
    scan_time_statuses,
    scan_time_statuses_of_run,
    start_run,
)
from linkkeeper.history.state import ConfirmPolicy, StatePolicy
from linkkeeper.history.truth import CheckRow
from linkkeeper.scan import ScanProblem, ScanSummary, scan_site
from linkkeeper.shards import Shard
from linkkeeper.site import Site
from linkkeeper.urls import host_key
from linkkeeper.vocab import Status


@dataclass
class AuditOptions:
    max_age: timedelta | None = None
    failing_only: bool = False
    budget: int | None = None
    new_run: bool = False
    confirm: ConfirmPolicy = field(default_factory=ConfirmPolicy)
    record_options: dict[str, Any] = field(default_factory=dict)  # stored in runs.options
    archive: ArchiveOptions | None = None  # None: no snapshots (--no-snapshot)
    source_keys: tuple[str, ...] = DEFAULT_SOURCE_KEYS  # front matter keys naming the source
    jobs: int = 0  # scan: processes parsing posts (0: one per CPU for big scans)
    shard: Shard | None = None  # check only this shard's hosts (--shard I/N)
    # URLs that answer whenever this machine is online (`canaries`, `--canary`): when the
    # run has failures and every canary fails at the network level, the run is degraded.
    canaries: tuple[str, ...] = ()


@dataclass
class AuditResult:
    run: Run
    counts: dict[str, int]
    new_failures: list[str]
    requests: int
    checked: int
    elapsed_s: float
    host_times: dict[str, tuple[int, float]] = field(default_factory=dict)  # host -> (n, total ms)
    archive: ArchiveCounts | None = None  # what the archiving stage wrote (None: off)
    archive_messages: list[str] = field(default_factory=list)  # repairs, robots, write problems
    scan: ScanSummary | None = None  # the scan `run_audit` did first
    degraded: str | None = None  # why this run's failures do not count (None: they do)
    host_failures: list[tuple[str, int, str]] = field(default_factory=list)  # host, links, reason


ProgressFn = Callable[[int, int, dict[str, int]], None]


def _scan_time_result(url: str, status: str, reason: str) -> CheckResult:
    return CheckResult(
        url=url,
        status=Status(status),
        reason=reason,
        http_status=None,
        final_url=None,
        redirects=[],
        permanent_redirect=False,
        attempts=0,
        requests=0,
        method="",
        elapsed_ms=0.0,
        started_at=utcnow(),
        ip=None,
        content_type=None,
        content_length=None,
        error=None,
        exchanges=[],
        sample=None,
    )


def run_audit(
    db: sqlite_utils.Database,
    site: Site,
    check_options: CheckOptions,
    options: AuditOptions,
    *,
    on_scan: Callable[[ScanSummary], None] | None = None,
    on_problem: Callable[[ScanProblem], None] | None = None,
    on_progress: ProgressFn | None = None,
) -> AuditResult:
    """Scan the site, then check (and archive) every planned link: `linkkeeper check`."""
    summary = scan_site(
        db, site, source_keys=options.source_keys or DEFAULT_SOURCE_KEYS,
        on_problem=on_problem, jobs=options.jobs,
    )
    if on_scan:
        on_scan(summary)
    result = asyncio.run(run_audit_async(db, check_options, options, on_progress=on_progress))
    result.scan = summary
    return result


def plan_audit(
    db: sqlite_utils.Database,
    site: Site,
    check_options: CheckOptions,
    options: AuditOptions,
    *,
    on_problem: Callable[[ScanProblem], None] | None = None,
) -> list[str]:
    """The URLs `run_audit` would fetch, in its order, without fetching (`check --dump`).

    Scans (the inventory is the plan's input), then plans as a run would, minus what is
    decided without the network: scan-time statuses and URLs the options do not admit.
    """
    from linkkeeper.check.admit import Admission

    scan_site(db, site, source_keys=options.source_keys or DEFAULT_SOURCE_KEYS,
              on_problem=on_problem, jobs=options.jobs)
    planned = plan_urls(db, max_age=options.max_age, failing_only=options.failing_only,
                        budget=options.budget)
    pre = scan_time_statuses(db, planned)
    admission = Admission(check_options)
    return [u for u in planned if u not in pre and not isinstance(admission.precheck(u),
                                                                   CheckResult)]


async def run_audit_async(
    db: sqlite_utils.Database,
    check_options: CheckOptions,
    options: AuditOptions,
    *,
    on_progress: ProgressFn | None = None,
    on_result: Callable[[CheckResult], None] | None = None,
) -> AuditResult:
    t0 = time.perf_counter()
    planned = Plan(
        max_age=options.max_age, failing_only=options.failing_only, budget=options.budget,
        shard=options.shard,
    )
    run = start_run(
        db,
        planned,  # stored by SQLite and read back a page at a time: memory stays flat
        options=options.record_options,
        new_run=options.new_run,
        insecure=check_options.insecure,
    )
    if run.abandoned is not None:  # its failures still wait to be counted (or not)
        settle_abandoned(db, run.abandoned, StatePolicy(options.confirm))
    recorder = Recorder(db, run.id, confirm=options.confirm)
    host_times: dict[str, tuple[int, float]] = {}
    total = run.planned

    def record(result: CheckResult) -> None:
        recorder.add(result)
        if on_result:
            on_result(result)
        if result.requests and result.latency_ms:  # timed requests only: no 0 ms hosts
            host = host_key(result.url)
            n, ms = host_times.get(host, (0, 0.0))
            host_times[host] = (n + 1, ms + float(result.latency_ms or 0.0))  # not queueing
        if on_progress:
            on_progress(recorder.done, total, dict(recorder.counts))

    if on_progress:  # the start: what a resumed run had done is not this process's rate
        on_progress(recorder.done, total, dict(recorder.counts))
    pre = scan_time_statuses_of_run(db, run.id)
    for url, (status, reason) in pre.items():
        record(_scan_time_result(url, status, reason))
    fetch: Iterable[str] = (u for u in planned_urls(db, run.id) if u not in pre)

    archiver = Archiver(db, options.archive, run_id=run.id) if options.archive else None
    if archiver is not None:
        fetch = list(fetch)  # the archiver plans its captures from the whole list
        archiver.plan(fetch)
        check_options = with_capture(check_options, archiver)

    interrupted = False
    canaries: list[CheckRow] | None = None
    last_flush = time.monotonic()
    try:
        async with Checker(check_options) as checker, _archiving(archiver):
            if archiver is not None:
                await archiver.load_robots(checker)
            async for result in checker.run(fetch):
                record(result)
                if archiver is not None:
                    await archiver.submit(result)
                if time.monotonic() - last_flush > 2.0:  # keep the file fresh for readers
                    recorder.flush()
                    last_flush = time.monotonic()
            if archiver is not None and (changed := archiver.take_followups()):
                async for result in checker.run(changed):  # HEAD saw a change: capture it
                    await archiver.submit(result)
            if options.canaries and _network_failures(recorder):
                canaries = await _check_canaries(checker, options.canaries)
    except (asyncio.CancelledError, KeyboardInterrupt):
        interrupted = True
        recorder.finish("interrupted")
        raise
    finally:
        if not interrupted:
            with contextlib.suppress(Exception):
                recorder.flush()
    recorder.finish("complete", canaries)
    return AuditResult(
        run=run,
        counts=dict(recorder.counts),
        new_failures=list(recorder.new_failures),
        requests=recorder.requests,
        checked=recorder.done,
        elapsed_s=time.perf_counter() - t0,
        host_times=host_times,
        archive=archiver.counts if archiver else None,
        archive_messages=_archive_messages(archiver),
        degraded=recorder.degraded,
        host_failures=[(f.host, f.links, f.reason) for f in recorder.host_failures],
    )


def _network_failures(recorder: Recorder) -> bool:
    """Whether the run has failures the canaries could explain (else they cost nothing)."""
    recorder.flush()
    return recorder.db.execute(
        "SELECT 1 FROM checks WHERE run_id=? AND http_status IS NULL AND status NOT IN"
        " ('ok', 'redirected', 'excluded', 'invalid', 'blocked', 'rate-limited') LIMIT 1",
        [recorder.run_id],
    ).fetchone() is not None


async def _check_canaries(checker: Checker, urls: tuple[str, ...]) -> list[CheckRow]:
    """Each canary checked like a link (same resolver, proxy and limits), never recorded."""
    results = await asyncio.gather(*(checker.check(url) for url in urls))
    return [(r.url, str(r.status), r.reason, r.http_status) for r in results]


def _archiving(archiver: Archiver | None) -> contextlib.AbstractAsyncContextManager[Any]:
    return archiver if archiver is not None else contextlib.nullcontext()


def _archive_messages(archiver: Archiver | None) -> list[str]:
    if archiver is None:
        return []
    messages = [f"warcs: {m}" for m in archiver.repair_messages]
    messages += archiver.problems
    messages += [f"{url}: not archived: robots.txt disallows it" for url in archiver.disallowed]
    return messages

