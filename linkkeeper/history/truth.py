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

Degraded runs: when the checker itself is cut off (no network, a broken
resolver), every link fails at once and the run says nothing about the links.
`run_verdict` decides it from the run alone. With canary URLs configured
(`canaries` / `--canary`), they decide: the run is degraded when every canary
failed at the network level (DNS, refused, unreachable, connect timeout) and
no canary got any HTTP answer. Without canaries, hosts decide: the run is
degraded when at least `DEGRADED_MIN_HOSTS` hosts and at least
`DEGRADED_SHARE` of all hosts contacted got no answer at all, only
network-level failures. A nightly run on a working machine sees a few percent
of its hosts gone (dead domains); an offline one sees all of them; a single
dead host among answering hosts, or a tiny site with fewer than five hosts,
fails as it always has (canaries settle those). A degraded run's failures are
recorded but not counted (state.py).
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
DEGRADED_MIN_HOSTS = 5  # fewer unreachable hosts never make a run degraded (without canaries)
DEGRADED_SHARE = 0.9  # share of the contacted hosts that must be unreachable
# Reasons (classify.py, resolver.py) of a failure that never reached any server.
NETWORK_LEVEL_REASONS = ("DNS:", "connection refused", "cannot connect", "connect timeout",
                         "not contacted")


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


def host_level(status: str, http_status: int | None) -> bool:
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
        if not all(host_level(status, code) for _, status, _, code in checked):
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


CheckRow = tuple[str, str, str | None, int | None]  # url, status, reason, http_status


def network_level(status: str, reason: str | None, http_status: int | None) -> bool:
    """A failure that never reached a server: what a machine cut off from the network sees."""
    return (
        status in FAILURES
        and http_status is None
        and (reason or "").startswith(NETWORK_LEVEL_REASONS)
    )


def run_verdict(rows: Iterable[CheckRow], canaries: Iterable[CheckRow] | None = None
                ) -> str | None:
    """Why the run is degraded (one line), or None when its checks count as evidence."""
    checked = [r for r in rows if r[1] not in (Status.EXCLUDED, Status.INVALID)]
    if not any(r[1] in FAILURES for r in checked):
        return None  # nothing to discount
    canary_rows = list(canaries or ())
    if canary_rows:
        if all(network_level(s, why, code) for _, s, why, code in canary_rows):
            reason = Counter(why or "" for _, _, why, _ in canary_rows).most_common(1)[0][0]
            n = len(canary_rows)
            return f"{'the canary URL' if n == 1 else f'all {n} canary URLs'} unreachable ({reason})"
        return None
    by_host: dict[str, list[CheckRow]] = defaultdict(list)
    for row in checked:
        by_host[host_key(row[0])].append(row)
    down = [rs for rs in by_host.values() if all(network_level(s, w, c) for _, s, w, c in rs)]
    if len(down) < DEGRADED_MIN_HOSTS or len(down) < DEGRADED_SHARE * len(by_host):
        return None
    reasons = Counter(why or "" for rs in down for _, _, why, _ in rs)
    level = "DNS" if reasons.most_common(1)[0][0].startswith("DNS") else "network"
    return f"{len(down)} of {len(by_host)} hosts unreachable at the {level} level"
