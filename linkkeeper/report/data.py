"""What a report shows, read once from the SQLite history into a typed view model.

Every output format (HTML, Markdown, CSV, JUnit, SARIF) renders the same
`Report`, so the numbers agree across formats. The queries touch each table
once and lean on the existing indexes (`checks` is joined on its unique
(run_id, url) key through `link_state.last_run`), which keeps a 100,000-link,
30-run history within a few seconds.

"What changed" compares each link's latest status with its status as of a
*baseline* run: by default the complete run before the latest one; with
`since` a run id, or a date (the last run started before it). A link whose
latest check came after the baseline and whose status moved from non-failure
to failure is *newly broken*; from failure to ok/redirected, *recovered*.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import sqlite_utils

from linkkeeper.clock import iso, utcnow
from linkkeeper.history.runs import previous_run_id
from linkkeeper.report.copies import (
    ArchivedCopy,
    chosen_copies,
    latest_captures,
)
from linkkeeper.report.results import run_record
from linkkeeper.vocab import FAILURES, INCONCLUSIVE, State, Status

ALIVE_STATUSES = frozenset({Status.OK, Status.REDIRECTED})
UNCHECKABLE = frozenset({Status.EXCLUDED, Status.INVALID})
CHANGE_NEW = "newly-broken"
CHANGE_RECOVERED = "recovered"
CHANGE_OTHER = "changed"


class ReportError(Exception):
    """The database cannot give the report that was asked for (no runs, unknown run...)."""


@dataclass(slots=True, frozen=True)
class Occurrence:
    """One place a post cites a link."""

    post: str
    line: int | None
    kind: str
    text: str


# what to do about a failing link (the HTML report's last column)
TODO_REPLACE, TODO_WAIT, TODO_CHECK, TODO_NOTHING = "replace", "wait", "check", "nothing"


@dataclass(slots=True)
class LinkView:
    url: str
    host: str
    status: str  # latest check status, or the scan-time status, or "unchecked"
    http_status: int | None
    reason: str
    state: str
    state_since: str | None
    first_failed: str | None
    last_ok: str | None
    checked_at: str | None
    run_id: int | None
    final_url: str | None
    occurrences: list[Occurrence]
    baseline_status: str | None = None
    change: str | None = None  # newly-broken | recovered | changed | None
    archive: ArchivedCopy | None = None
    looked_everywhere: bool = False  # every archive asked answered "nothing"

    @property
    def archive_label(self) -> str:
        """The archived copy in words, for every format."""
        if self.archive:
            return self.archive.label
        return "none anywhere" if self.looked_everywhere else "none"

    @property
    def todo(self) -> tuple[str, str]:
        """(code, advice) for a failing link: replace, wait, check by hand, or nothing to use."""
        if self.is_blocked:
            return TODO_CHECK, "check by hand: the site blocks us"
        if self.state not in (State.DEAD, State.DRIFTED) and self.status != Status.SOFT_404:
            return TODO_WAIT, "wait: not yet confirmed dead"
        if self.archive:
            return TODO_REPLACE, "replace with this copy (linkkeeper fix)"
        return TODO_NOTHING, "nothing archived anywhere: write to the publisher or remove the link"

    @property
    def kinds(self) -> list[str]:
        return sorted({o.kind for o in self.occurrences})

    @property
    def is_failure(self) -> bool:
        """Broken or failing: what the "by post" section lists."""
        return self.status in FAILURES or self.state == State.DEAD

    @property
    def is_alive(self) -> bool:
        return self.status in ALIVE_STATUSES

    @property
    def is_blocked(self) -> bool:
        return self.status in INCONCLUSIVE

    @property
    def clickable(self) -> bool:
        """Only web URLs become links in HTML; `javascript:` and friends stay text."""
        return is_web_url(self.url)

    @property
    def failing_since(self) -> str | None:
        return self.first_failed or (self.state_since if self.is_failure else None)


@dataclass(slots=True)
class BadLink:
    link: LinkView
    occurrence: Occurrence


@dataclass(slots=True)
class PostView:
    path: str
    title: str
    date: str
    bad: list[BadLink] = field(default_factory=list)

    @property
    def has_new(self) -> bool:
        return any(b.link.change == CHANGE_NEW for b in self.bad)


@dataclass(slots=True)
class HostView:
    host: str
    links: int
    failures: int
    blocked: int
    typical_reason: str = ""  # the commonest reason among its failing/blocked links
    typical_status: str = ""  # the status that goes with it ("broken", "network-error")
    typical_count: int = 0  # how many of its links fail for that reason

    @property
    def failure_rate(self) -> float:
        return self.failures / self.links if self.links else 0.0

    @property
    def typical_error(self) -> str:
        """'DNS: name does not resolve (broken)': the reason is what helps, the status names it."""
        if not self.typical_reason:
            return self.typical_status
        return f"{self.typical_reason} ({self.typical_status})" if self.typical_status else \
            self.typical_reason


@dataclass(slots=True)
class RunPoint:
    """One run's status counts, for the history chart."""

    id: int
    started_at: str
    state: str
    counts: dict[str, int]
    degraded: bool = False  # cut off from the network: its failures were not counted


@dataclass(slots=True)
class YearRot:
    """Links cited by the posts of one year, and how many have rotted."""

    year: str
    links: int
    dead: int  # state dead
    soft_404: int  # latest status soft-404 (and not already counted dead)
    broken: int  # latest status broken, not yet confirmed dead

    @property
    def rot_share(self) -> float:
        return (self.dead + self.soft_404) / self.links if self.links else 0.0


@dataclass(slots=True)
class Summary:
    links: int
    checked: int
    alive: int
    failing: int
    dead: int
    soft_404: int
    drifted: int
    blocked: int
    flaky: int
    unchecked: int
    live_with_capture: int
    newly_broken: int
    recovered: int

    @property
    def archive_coverage(self) -> float | None:
        return self.live_with_capture / self.alive if self.alive else None


@dataclass(slots=True)
class Report:
    generated_at: str
    run: dict[str, Any]  # results.run_record of the run reported on
    baseline: dict[str, Any] | None  # run compared against (None: the first run)
    since: str | None  # what the user asked with --since, for labels
    summary: Summary
    links: list[LinkView]  # every link (sorted by URL)
    shown: list[LinkView]  # what the lists show: all, or only the changed with --since
    posts: list[PostView]
    hosts: list[HostView]
    history: list[RunPoint]
    rot: list[YearRot]
    post_meta: dict[str, tuple[str, str]]  # every post: path -> (title, date)
    serve_url: str | None = None  # where `linkkeeper serve` runs, for our copies' links

    @property
    def degraded(self) -> str | None:
        """Why the reported run was cut off from the network (its failures not counted)."""
        return self.run.get("degraded")

    @property
    def host_failures(self) -> list[dict[str, Any]]:
        """Hosts down as a whole in the reported run: {host, links, status, reason}."""
        return list(self.run.get("host_failures") or [])

    def degraded_note(self) -> str | None:
        """The banner every format shows for a degraded run (None: the run counts)."""
        if not self.degraded:
            return None
        return (f"Run {self.run.get('id')} is degraded: {self.degraded}. Its failures are "
                "recorded but not counted: the statuses shown are from earlier checks.")

    @property
    def newly_broken(self) -> list[LinkView]:
        return sorted((lnk for lnk in self.links if lnk.change == CHANGE_NEW), key=severity)

    @property
    def recovered(self) -> list[LinkView]:
        return [lnk for lnk in self.links if lnk.change == CHANGE_RECOVERED]

    def post_title(self, path: str) -> str:
        return self.post_meta.get(path, (path, ""))[0]


def is_web_url(url: str | None) -> bool:
    return bool(url) and re.match(r"(?i)https?://", url or "") is not None


# --- the baseline ---------------------------------------------------------------------------


def latest_run_id(db: sqlite_utils.Database) -> int:
    """The run to report on: the latest complete one, else the latest of any state."""
    row = db.execute("SELECT max(id) FROM runs WHERE state='complete'").fetchone()
    if row and row[0] is not None:
        return int(row[0])
    row = db.execute("SELECT max(id) FROM runs").fetchone()
    if not row or row[0] is None:
        raise ReportError("no check has been run on this database yet: run `linkkeeper check`")
    return int(row[0])


def resolve_since(db: sqlite_utils.Database, since: str | None, run_id: int) -> int | None:
    """The baseline run id for `since` (a run id or a date); None means "before any run"."""
    if since is None or str(since).strip() == "":
        return previous_run_id(db, run_id)
    text = str(since).strip()
    if text.isdigit():
        baseline = int(text)
        if db.execute("SELECT 1 FROM runs WHERE id=?", [baseline]).fetchone() is None:
            raise ReportError(f"--since {text}: there is no run {text} in this database")
    else:
        when = parse_since_date(text)
        row = db.execute(
            "SELECT max(id) FROM runs WHERE started_at < ?", [iso(when)]
        ).fetchone()
        baseline = int(row[0]) if row and row[0] is not None else None
    if baseline is not None and baseline >= run_id:  # never compare a run with itself
        started = db.execute("SELECT started_at FROM runs WHERE id=?", [run_id]).fetchone()[0]
        raise ReportError(f"--since {text}: nothing to compare, the last run (run {run_id}, "
                          f"started {started}) is not after it; give an earlier run or date")
    return baseline


def parse_since_date(text: str) -> datetime:
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            return datetime(d.year, d.month, d.day, tzinfo=UTC)
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ReportError(
            f"--since {text!r}: expected a run id (e.g. 12) or a date (2024-11-19, "
            "2024-11-19T08:00:00Z)"
        ) from None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(UTC)


# --- loading -----------------------------------------------------------------------------------


def build_report(
    db: sqlite_utils.Database,
    *,
    since: str | None = None,
    now: datetime | None = None,
    serve_url: str | None = None,
) -> Report:
    """Read the history into a `Report` of the latest run; `since` limits the lists to what
    changed after that run id or date."""
    run_id = latest_run_id(db)
    baseline_id = resolve_since(db, since, run_id)
    links = _load_links(db)
    _mark_changes(db, links, baseline_id)
    _attach_archives(db, links, serve_url)
    posts_meta = {
        path: (title or path, str(pdate or ""))
        for path, title, pdate in db.execute("SELECT path, title, date FROM posts")
    }
    shown = links if since is None else [lnk for lnk in links if lnk.change is not None]
    summary = _summary(links)
    return Report(
        generated_at=iso(now or utcnow()),
        run=run_record(db, run_id),
        baseline=run_record(db, baseline_id) if baseline_id is not None else None,
        since=since,
        summary=summary,
        links=links,
        shown=shown,
        posts=_posts(shown, posts_meta),
        hosts=_hosts(shown),
        history=_history(db),
        rot=_rot(links, posts_meta),
        post_meta=posts_meta,
        serve_url=serve_url,
    )


def _load_links(db: sqlite_utils.Database) -> list[LinkView]:
    occurrences: dict[str, list[Occurrence]] = defaultdict(list)
    for url, post, kind, line, text in db.execute(
        "SELECT url, post, kind, line, text FROM occurrences ORDER BY post, line, id"
    ):
        occurrences[url].append(Occurrence(post, line, kind, text or ""))
    latest: dict[str, tuple[Any, ...]] = {}
    for row in db.execute(
        "SELECT s.url, s.state, s.since, s.first_failed, s.last_ok, c.status, c.http_status,"
        " c.reason, c.checked_at, c.run_id, c.final_url FROM link_state s"
        " LEFT JOIN checks c ON c.run_id = s.last_run AND c.url = s.url"
    ):
        latest[row[0]] = row[1:]
    links: list[LinkView] = []
    for url, host, scan_status, scan_reason in db.execute(
        "SELECT url, host, status, reason FROM links ORDER BY url"
    ):
        occ = occurrences.get(url)
        if not occ:  # no post cites it any more
            continue
        st = latest.get(url)
        if st and st[4]:
            state, since, first_failed, last_ok, status, code, reason, checked, rid, final = st
        else:
            state = since = first_failed = last_ok = code = checked = rid = final = None
            status = scan_status or "unchecked"
            reason = scan_reason or ("" if scan_status else "not checked yet")
        links.append(
            LinkView(
                url=url,
                host=host or "",
                status=status,
                http_status=code,
                reason=reason or "",
                state=state or State.UNCHECKED,
                state_since=since,
                first_failed=first_failed,
                last_ok=last_ok,
                checked_at=checked,
                run_id=rid,
                final_url=final,
                occurrences=occ,
            )
        )
    return links


def _mark_changes(db: sqlite_utils.Database, links: list[LinkView], baseline: int | None) -> None:
    before: dict[str, str] = {}
    if baseline is not None:
        before = _statuses_at(db, baseline, {
            lnk.url for lnk in links if lnk.run_id is not None and lnk.run_id > baseline})
    for link in links:
        link.baseline_status = before.get(link.url)
        if link.run_id is None or (baseline is not None and link.run_id <= baseline):
            continue  # not checked since the baseline: nothing new to say
        old, new = link.baseline_status, link.status
        if new in FAILURES and old not in FAILURES:
            link.change = CHANGE_NEW
        elif new in ALIVE_STATUSES and old in FAILURES:
            link.change = CHANGE_RECOVERED
        elif old is not None and old != new:
            link.change = CHANGE_OTHER


def _statuses_at(db: sqlite_utils.Database, run_id: int, urls: set[str]) -> dict[str, str]:
    """Each URL's latest status as of `run_id`.

    Nightly runs check (nearly) every URL, so one indexed read of that run's
    checks answers almost all; the rest (skipped by --max-age or --budget that
    night) are looked up one by one, or, when there are many, with one grouped
    scan of the history (which costs seconds at 3 million checks).
    """
    found = {
        url: status
        for url, status in db.execute("SELECT url, status FROM checks WHERE run_id=?", [run_id])
        if url in urls
    }
    missing = urls - found.keys()
    if len(missing) > 20_000:
        for url, status in db.execute(
            "SELECT c.url, c.status FROM checks c JOIN (SELECT max(id) AS id FROM checks"
            " WHERE run_id <= ? GROUP BY url) m ON m.id = c.id",
            [run_id],
        ):
            if url in missing:
                found[url] = status
    else:
        for url in missing:
            row = db.execute(
                "SELECT status FROM checks WHERE url=? AND run_id<=? ORDER BY id DESC LIMIT 1",
                [url, run_id],
            ).fetchone()
            if row:
                found[url] = row[0]
    return found


def _attach_archives(db: sqlite_utils.Database, links: list[LinkView],
                     serve_url: str | None = None) -> None:
    """Every link's latest good capture; for failing links, the copy chosen for them."""
    latest = latest_captures(db, serve_url)
    chosen = chosen_copies(db, serve_url)
    for link in links:
        link.archive = latest.get(link.url)
        if link.is_failure and link.url in chosen:
            link.archive, link.looked_everywhere = chosen[link.url]


def _summary(links: list[LinkView]) -> Summary:
    states = Counter(lnk.state for lnk in links)
    return Summary(
        links=len(links),
        checked=sum(1 for lnk in links if lnk.run_id is not None and lnk.status not in UNCHECKABLE),
        alive=sum(1 for lnk in links if lnk.is_alive),
        failing=states[State.FAILING],
        dead=states[State.DEAD],
        soft_404=sum(1 for lnk in links if lnk.status == Status.SOFT_404),
        drifted=states[State.DRIFTED],
        blocked=sum(1 for lnk in links if lnk.is_blocked),
        flaky=states[State.FLAKY],
        unchecked=sum(1 for lnk in links if lnk.run_id is None),
        live_with_capture=sum(1 for lnk in links if lnk.is_alive and lnk.archive),
        newly_broken=sum(1 for lnk in links if lnk.change == CHANGE_NEW),
        recovered=sum(1 for lnk in links if lnk.change == CHANGE_RECOVERED),
    )


def _posts(links: list[LinkView], meta: dict[str, tuple[str, str]]) -> list[PostView]:
    """Posts with at least one broken or failing link: newly broken first, then newest posts."""
    posts: dict[str, PostView] = {}
    for link in links:
        if not link.is_failure:
            continue
        for occ in link.occurrences:
            post = posts.get(occ.post)
            if post is None:
                title, pdate = meta.get(occ.post, (occ.post, ""))
                post = posts[occ.post] = PostView(occ.post, title, pdate)
            post.bad.append(BadLink(link, occ))
    out = list(posts.values())
    for post in out:
        post.bad.sort(key=lambda b: (b.link.change != CHANGE_NEW, severity(b.link),
                                     b.occurrence.line or 0))
    out.sort(key=lambda p: p.path)
    out.sort(key=lambda p: p.date, reverse=True)
    out.sort(key=lambda p: not p.has_new)
    return out


def _hosts(links: list[LinkView]) -> list[HostView]:
    """Per host; the worst first (most failures, then highest rate, then most links)."""
    total: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    blocked: Counter[str] = Counter()
    errors: dict[str, Counter[tuple[str, str]]] = defaultdict(Counter)
    for link in links:
        if link.status in UNCHECKABLE or not link.host:
            continue
        total[link.host] += 1
        if link.is_failure:
            failures[link.host] += 1
            errors[link.host][(link.reason, link.status)] += 1
        elif link.is_blocked:
            blocked[link.host] += 1
            errors[link.host][(link.reason, link.status)] += 1
    hosts = []
    for h, n in total.items():
        (reason, status), count = errors[h].most_common(1)[0] if errors[h] else (("", ""), 0)
        hosts.append(HostView(h, n, failures[h], blocked[h], reason, status, count))
    hosts.sort(key=lambda v: (-v.failures, -v.failure_rate, -v.links, v.host))
    return hosts


# Most severe first: what a reader should fix first heads every list of failing links.
STATUS_SEVERITY: tuple[str, ...] = (
    Status.SOFT_404, Status.BROKEN, Status.TLS_ERROR, Status.NETWORK_ERROR,
    Status.SERVER_ERROR, Status.TIMEOUT, Status.BLOCKED, Status.RATE_LIMITED,
    Status.REDIRECTED, Status.OK, "unchecked", Status.EXCLUDED, Status.INVALID,
)
_STATUS_RANK = {status: rank for rank, status in enumerate(STATUS_SEVERITY)}


def status_rank(status: str) -> int:
    """Position of a status in STATUS_SEVERITY (an unknown status ranks with `unchecked`)."""
    return _STATUS_RANK.get(status, _STATUS_RANK["unchecked"])


def severity(link: LinkView) -> tuple[int, int]:
    """Sort key, worst first: dead, soft-404, other failures (broken before timeouts),
    blocked, drifted, flaky, alive, unchecked, and excluded and invalid last."""
    if link.state == State.DEAD:
        group = 0
    elif link.status == Status.SOFT_404:
        group = 1
    elif link.is_failure:
        group = 2
    elif link.is_blocked:
        group = 3
    elif link.state == State.DRIFTED:
        group = 4
    elif link.state == State.FLAKY:
        group = 5
    elif link.status in UNCHECKABLE:
        group = 8
    elif link.run_id is None:
        group = 7
    else:
        group = 6
    return group, status_rank(link.status)


def _history(db: sqlite_utils.Database, limit: int = 30) -> list[RunPoint]:
    rows = db.execute(
        "SELECT id, started_at, state, counts, degraded FROM runs ORDER BY id DESC LIMIT ?",
        [limit],
    ).fetchall()
    points = []
    for rid, started, state, counts, degraded in reversed(rows):
        try:
            parsed = json.loads(counts) if counts else {}
        except ValueError:
            parsed = {}
        points.append(RunPoint(rid, started or "", state or "",
                               {k: int(v) for k, v in parsed.items()}, bool(degraded)))
    return points


def _rot(links: list[LinkView], meta: dict[str, tuple[str, str]]) -> list[YearRot]:
    """Per year of post: the links its posts cite (each counted once per year) and their rot."""
    years: dict[str, dict[str, LinkView]] = defaultdict(dict)
    for link in links:
        if link.status in UNCHECKABLE or link.run_id is None:
            continue
        for occ in link.occurrences:
            year = meta.get(occ.post, ("", ""))[1][:4]
            if len(year) == 4 and year.isdigit():
                years[year][link.url] = link
    out = []
    for year in sorted(years):
        members = years[year].values()
        dead = sum(1 for lnk in members if lnk.state == State.DEAD)
        soft = sum(1 for lnk in members if lnk.status == Status.SOFT_404 and lnk.state != State.DEAD)
        broken = sum(1 for lnk in members
                     if lnk.status == Status.BROKEN and lnk.state != State.DEAD)
        out.append(YearRot(year, len(years[year]), dead, soft, broken))
    return out
