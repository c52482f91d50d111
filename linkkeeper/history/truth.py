"""Verdicts that need more than one check: content drift and hosts failing as a whole.

Drift: a page checked with GET (or archived) leaves a main-text fingerprint
(fingerprint.py). The history keeps the first fingerprint seen while the link
was alive and the latest one; each new one is scored against both. The drift
score is ``1 - Jaccard`` of the main-text shingle sets, so boilerplate (menus,
adverts, dates, counters) never counts. A link whose score against the first
fingerprint reaches `DRIFT_THRESHOLD` is `drifted`: alive, but no longer what
the post cited. It stays drifted while it stays alive, through checks made
with HEAD (no content to compare), until a fingerprint close to the first one
comes back.

Host failures: when every link of a host checked in a run failed at the host
level (no HTTP answer at all, or 5xx everywhere: DNS gone, connection refused,
TLS broken, server down), the run records one `host_failures` row naming the
host, how many links it took down and why, and each of those checks carries
``{"host_failure": host}`` in its evidence. Links keep their own states
(failing, then dead if it lasts days: a host gone for good does take its links
with it), but a report can say "news.example is down (10,000 links)" once,
instead of listing 10,000 independent deaths. Honest 404s are not host
failures: a host that answers is alive even if the pages are gone.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from linkkeeper.check.fingerprint import load_fingerprint
from linkkeeper.urls import host_key
from linkkeeper.vocab import FAILURES, Status

DRIFT_THRESHOLD = 0.5  # drift score vs the first fingerprint that makes a link `drifted`
HOST_FAILURE_MIN_LINKS = 3  # a host with fewer links checked in a run is never "down as a whole"


@dataclass(frozen=True, slots=True)
class Drift:
    """How far a page's main text moved: vs the first fingerprint seen and vs the previous one."""

    vs_first: float | None
    vs_previous: float | None

    def as_evidence(self, threshold: float) -> dict[str, Any]:
        return {
            "vs_first": None if self.vs_first is None else round(self.vs_first, 3),
            "vs_previous": None if self.vs_previous is None else round(self.vs_previous, 3),
            "threshold": threshold,
        }


def drift_of(current: str | None, first: str | None, previous: str | None) -> Drift | None:
    """Drift scores of a fingerprint (None when there is no current fingerprint to score)."""
    now = load_fingerprint(current)
    if now is None:
        return None
    base, last = load_fingerprint(first), load_fingerprint(previous)
    return Drift(
        vs_first=None if base is None else 1.0 - now.similarity(base),
        vs_previous=None if last is None else 1.0 - now.similarity(last),
    )


@dataclass(frozen=True, slots=True)
class HostFailure:
    """A host whose every checked link failed at the host level in one run."""

    host: str
    links: int
    status: str  # the most common failure status
    reason: str  # the most common reason
    urls: tuple[str, ...]


def _host_level(status: str, http_status: int | None) -> bool:
    """A failure that says the host is not answering, rather than this page is gone."""
    if status not in FAILURES:
        return False
    return http_status is None or http_status >= 500


def host_failures(
    rows: Iterable[tuple[str, str, str | None, int | None]],
    min_links: int = HOST_FAILURE_MIN_LINKS,
) -> list[HostFailure]:
    """Hosts down as a whole, from one run's (url, status, reason, http_status) rows."""
    by_host: dict[str, list[tuple[str, str, str | None, int | None]]] = defaultdict(list)
    for row in rows:
        if row[1] in (Status.EXCLUDED, Status.INVALID):
            continue
        by_host[host_key(row[0])].append(row)
    failures = []
    for host, checked in sorted(by_host.items()):
        if not host or len(checked) < min_links:
            continue
        if not all(_host_level(status, code) for _, status, _, code in checked):
            continue
        statuses = Counter(status for _, status, _, _ in checked)
        reasons = Counter(reason or "" for _, _, reason, _ in checked)
        failures.append(
            HostFailure(
                host=host,
                links=len(checked),
                status=statuses.most_common(1)[0][0],
                reason=reasons.most_common(1)[0][0],
                urls=tuple(url for url, _, _, _ in checked),
            )
        )
    return failures
