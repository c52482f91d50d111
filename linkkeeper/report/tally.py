"""What the report counts, fed one link at a time: the summary tiles, the hosts, the rot
curve and the posts with broken links.

One pass over a stream of links (links.py) fills a `Tally`; nothing in it grows with
the number of links, only with hosts, years, and the failing or changed links the
lists show. The list functions (`summary_of`, `hosts_of`, ...) run the same code on a
list, for reports built in memory.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from linkkeeper.report.model import (
    ALIVE_STATUSES,
    CHANGE_NEW,
    CHANGE_RECOVERED,
    UNCHECKABLE,
    BadLink,
    HostView,
    LinkView,
    PostView,
    Summary,
    YearRot,
    occurrence_title,
    severity,
)
from linkkeeper.vocab import FAILURES, INCONCLUSIVE, State, Status

_DEAD, _SOFT_404, _BROKEN = State.DEAD, Status.SOFT_404, Status.BROKEN  # read once (model.py)


@dataclass
class Tally:
    """Counters over every link, and the posts of the failing ones (see `add`)."""

    meta: dict[str, tuple[str, str]] = field(default_factory=dict)  # posts named by the lists
    states: Counter[str] = field(default_factory=Counter)
    counts: Counter[str] = field(default_factory=Counter)
    host_total: Counter[str] = field(default_factory=Counter)
    host_failures: Counter[str] = field(default_factory=Counter)
    host_blocked: Counter[str] = field(default_factory=Counter)
    host_errors: dict[str, Counter[tuple[str, str]]] = field(
        default_factory=lambda: defaultdict(Counter))
    years: dict[str, list[int]] = field(default_factory=dict)  # year -> [links, dead, soft, broken]
    posts: dict[str, PostView] = field(default_factory=dict)
    changes: list[LinkView] = field(default_factory=list)
    links: int = 0

    def add(self, link: LinkView, *, shown: bool = True) -> None:
        """Count `link` in the summary and rot curve; in hosts and posts when the lists show it."""
        self.links += 1
        status = link.status
        failure = status in FAILURES or link.state == _DEAD  # link.is_failure, inlined
        blocked = status in INCONCLUSIVE  # link.is_blocked
        self._summary(link, status, blocked)
        if link.run_id is not None and status not in UNCHECKABLE:
            self._rot(link)
        if link.change:
            self.changes.append(link)
            self._remember_posts(link)
        if shown:
            if link.host and status not in UNCHECKABLE:
                self._host(link, failure, blocked)
            if failure:
                self._post(link)

    def _summary(self, link: LinkView, status: str, blocked: bool) -> None:
        c = self.counts
        self.states[link.state] += 1
        if link.run_id is None:
            c["unchecked"] += 1
        elif status not in UNCHECKABLE:
            c["checked"] += 1
        if status in ALIVE_STATUSES:
            c["alive"] += 1
            if link.archive:
                c["live_with_capture"] += 1
        elif status == _SOFT_404:
            c["soft_404"] += 1
        elif blocked:
            c["blocked"] += 1
        if link.change:
            c["newly_broken"] += link.change == CHANGE_NEW
            c["recovered"] += link.change == CHANGE_RECOVERED

    def _rot(self, link: LinkView) -> None:
        """The link in the rot curve of each year its posts are dated (checked links only)."""
        if link.citations is not None:
            years: Iterable[str] = link.citations.years
        else:
            occurrences = link.occurrences
            if not occurrences:
                return
            years = {occurrence_title(occ, self.meta)[1][:4] for occ in occurrences} if len(
                occurrences) > 1 else (occurrence_title(occurrences[0], self.meta)[1][:4],)
        state, status = link.state, link.status
        column = 1 if state == _DEAD else 2 if status == _SOFT_404 else \
            3 if status == _BROKEN else 0
        for year in years:
            row = self.years.get(year)
            if row is None:
                if len(year) != 4 or not year.isdigit():
                    continue
                row = self.years[year] = [0, 0, 0, 0]
            row[0] += 1
            if column:
                row[column] += 1

    def _host(self, link: LinkView, failure: bool, blocked: bool) -> None:
        host = link.host
        self.host_total[host] += 1
        if failure:
            self.host_failures[host] += 1
            self.host_errors[host][(link.reason, link.status)] += 1
        elif blocked:
            self.host_blocked[host] += 1
            self.host_errors[host][(link.reason, link.status)] += 1

    def _remember_posts(self, link: LinkView) -> None:
        for occ in link.occurrences:
            if occ.post not in self.meta:
                self.meta[occ.post] = occurrence_title(occ, self.meta)

    def _post(self, link: LinkView) -> None:
        self._remember_posts(link)
        for occ in link.occurrences:
            post = self.posts.get(occ.post)
            if post is None:
                title, pdate = self.meta[occ.post]
                post = self.posts[occ.post] = PostView(occ.post, title, pdate)
            post.bad.append(BadLink(link, occ))

    def summary(self) -> Summary:
        c, states = self.counts, self.states
        return Summary(
            links=self.links, checked=c["checked"], alive=c["alive"],
            failing=states[State.FAILING], dead=states[State.DEAD], soft_404=c["soft_404"],
            drifted=states[State.DRIFTED], blocked=c["blocked"], flaky=states[State.FLAKY],
            unchecked=c["unchecked"], live_with_capture=c["live_with_capture"],
            newly_broken=c["newly_broken"], recovered=c["recovered"],
        )

    def hosts(self) -> list[HostView]:
        """Per host; the worst first (most failures, then highest rate, then most links)."""
        hosts = []
        for h, n in self.host_total.items():
            errors = self.host_errors.get(h)
            (reason, status), count = errors.most_common(1)[0] if errors else (("", ""), 0)
            hosts.append(HostView(h, n, self.host_failures[h], self.host_blocked[h], reason,
                                  status, count))
        hosts.sort(key=lambda v: (-v.failures, -v.failure_rate, -v.links, v.host))
        return hosts

    def rot(self) -> list[YearRot]:
        """Per year of post: the links its posts cite (each counted once per year) and their rot."""
        return [YearRot(year, *self.years[year]) for year in sorted(self.years)]

    def post_views(self) -> list[PostView]:
        """Posts with at least one broken or failing link: newly broken first, then newest."""
        out = list(self.posts.values())
        for post in out:
            post.bad.sort(key=lambda b: (b.link.change != CHANGE_NEW, severity(b.link),
                                         b.occurrence.line or 0))
        out.sort(key=lambda p: p.path)
        out.sort(key=lambda p: p.date, reverse=True)
        out.sort(key=lambda p: not p.has_new)
        return out


def _tally(links: Iterable[LinkView], meta: dict[str, tuple[str, str]] | None = None) -> Tally:
    tally = Tally(meta=dict(meta or {}))
    for link in links:
        tally.add(link)
    return tally


def summary_of(links: Iterable[LinkView]) -> Summary:
    return _tally(links).summary()


def posts_of(links: Iterable[LinkView], meta: dict[str, tuple[str, str]]) -> list[PostView]:
    return _tally(links, meta).post_views()


def hosts_of(links: Iterable[LinkView]) -> list[HostView]:
    return _tally(links).hosts()


def rot_of(links: Iterable[LinkView], meta: dict[str, tuple[str, str]]) -> list[YearRot]:
    return _tally(links, meta).rot()
