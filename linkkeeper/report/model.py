"""The report's view model: what every format renders (links, posts, hosts, runs, rot).

Plain dataclasses, no database: data.py fills them from the history (streamed, see
links.py), tests build them in memory, and the formats only read them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from linkkeeper.report.copies import ArchivedCopy
from linkkeeper.vocab import FAILURES, INCONCLUSIVE, State, Status

# Enum members read once: `State.DEAD` is a lookup on the enum class (~4x a global), and
# these are compared for each of a million links
_DEAD, _DRIFTED, _FLAKY = State.DEAD, State.DRIFTED, State.FLAKY
_SOFT_404 = Status.SOFT_404
ALIVE_STATUSES = frozenset({Status.OK, Status.REDIRECTED})
UNCHECKABLE = frozenset({Status.EXCLUDED, Status.INVALID})
CHANGE_NEW = "newly-broken"
CHANGE_RECOVERED = "recovered"
CHANGE_OTHER = "changed"


class ReportError(Exception):
    """The database cannot give the report that was asked for (no runs, unknown run...)."""


@dataclass(slots=True)  # not frozen: a million are made per report, and frozen ones cost 3x
class Occurrence:
    """One place a post cites a link (with the post's title and date when read from the
    database, so no format needs a table of every post)."""

    post: str
    line: int | None
    kind: str
    text: str
    title: str | None = None  # the post's title (None: not known here, see Report.post_meta)
    date: str = ""  # the post's date


@dataclass(slots=True)
class Citations:
    """What the counts and the links table need of a link's occurrences, read without
    making an `Occurrence` of each (see links.counted_links): how many, the first post
    (by path, line), the kinds and the years of the citing posts' dates."""

    count: int
    first_post: str
    kinds: tuple[str, ...]  # distinct, sorted
    years: tuple[str, ...]  # distinct: each post's date cut to 4 characters ("" when none)


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
    # set by links.counted_links, which fills `occurrences` only for the links the lists
    # keep (failing or changed); None: read from `occurrences`
    citations: Citations | None = None

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
        if self.state not in (_DEAD, _DRIFTED) and self.status != _SOFT_404:
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
        return self.status in FAILURES or self.state == _DEAD

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
    # every link (sorted by URL), and what the lists show (all, or only the changed with
    # --since): lists, or links.LinkStream, which reads them again from the database on
    # each walk, so a million links are never all in memory
    links: Sequence[LinkView]
    shown: Sequence[LinkView]
    posts: list[PostView]
    hosts: list[HostView]
    history: list[RunPoint]
    rot: list[YearRot]
    post_meta: dict[str, tuple[str, str]]  # path -> (title, date): posts the lists name
    serve_url: str | None = None  # where `linkkeeper serve` runs, for our copies' links
    changes: list[LinkView] | None = None  # every changed link (None: found in `links`)
    # the links table's rows, spilled while the links were counted (build_report(table=True)),
    # so the HTML page needs no second walk over the links; used once
    table: Any = field(default=None, repr=False, compare=False)  # table.TableSpill | None

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

    def _changed(self) -> Iterable[LinkView]:
        if self.changes is None:
            return (lnk for lnk in self.links if lnk.change)
        return self.changes

    @property
    def newly_broken(self) -> list[LinkView]:
        return sorted((lnk for lnk in self._changed() if lnk.change == CHANGE_NEW), key=severity)

    @property
    def recovered(self) -> list[LinkView]:
        return [lnk for lnk in self._changed() if lnk.change == CHANGE_RECOVERED]

    def post_title(self, path: str) -> str:
        return self.post_meta.get(path, (path, ""))[0]


def occurrence_title(occ: Occurrence, meta: dict[str, tuple[str, str]]) -> tuple[str, str]:
    """(title, date) of the post of `occ`: from the occurrence when it was read with its post,
    else from `meta`, else the path and no date."""
    if occ.title is not None:
        return occ.title or occ.post, occ.date
    return meta.get(occ.post, (occ.post, ""))


def is_web_url(url: str | None) -> bool:
    return bool(url) and re.match(r"(?i)https?://", url or "") is not None


STATUS_SEVERITY: tuple[str, ...] = (
    Status.SOFT_404, Status.BROKEN, Status.TLS_ERROR, Status.NETWORK_ERROR,
    Status.SERVER_ERROR, Status.TIMEOUT, Status.BLOCKED, Status.RATE_LIMITED,
    Status.REDIRECTED, Status.OK, "unchecked", Status.EXCLUDED, Status.INVALID,
)
_STATUS_RANK = {status: rank for rank, status in enumerate(STATUS_SEVERITY)}
_UNCHECKED_RANK = _STATUS_RANK["unchecked"]


def status_rank(status: str) -> int:
    """Position of a status in STATUS_SEVERITY (an unknown status ranks with `unchecked`)."""
    return _STATUS_RANK.get(status, _UNCHECKED_RANK)


def severity(link: LinkView) -> tuple[int, int]:
    """Sort key, worst first: dead, soft-404, other failures (broken before timeouts),
    blocked, drifted, flaky, alive, unchecked, and excluded and invalid last."""
    state, status = link.state, link.status
    if state == _DEAD:
        group = 0
    elif status == _SOFT_404:
        group = 1
    elif status in FAILURES:  # is_failure (dead is above)
        group = 2
    elif status in INCONCLUSIVE:  # is_blocked
        group = 3
    elif state == _DRIFTED:
        group = 4
    elif state == _FLAKY:
        group = 5
    elif status in UNCHECKABLE:
        group = 8
    elif link.run_id is None:
        group = 7
    else:
        group = 6
    return group, _STATUS_RANK.get(status, _UNCHECKED_RANK)
