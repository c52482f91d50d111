"""How each host is asked: its settings from the options, and the HEAD habits learned this run.

Settings: `CheckOptions` plus the `hosts:` policy that matches the host (exact
name first, then the longest ``*.suffix``), resolved once per host.

HEAD habits: a host that keeps refusing HEAD (405/501) and never accepted it is
asked with GET directly; a host whose HEAD 404/410s GET always confirmed is
trusted on them (one request instead of two).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import aiohttp

from linkkeeper.check.accept import AcceptRanges
from linkkeeper.check.classify import Timeouts
from linkkeeper.check.hosts import HostLimits
from linkkeeper.check.options import CheckOptions, HostPolicy
from linkkeeper.check.resolver import ascii_host

# After this many HEAD refusals (405/501) and no HEAD success, a host gets GET directly.
HEAD_REFUSALS_BEFORE_GET_ONLY = 5
# A HEAD 404/410 is checked with GET until the host's GETs have agreed this many times
# (and never contradicted): then HEAD is trusted there, one request instead of two.
HEAD_TRUSTABLE = frozenset({404, 410})
HEAD_CONFIRMATIONS_TO_TRUST = 5


@dataclass(frozen=True, slots=True)
class HostSettings:
    limits: HostLimits
    timeouts: Timeouts
    headers: dict[str, str]
    accept: AcceptRanges

    # aiohttp's form of `timeouts`, made once per host (every request passes it)
    client_timeout: aiohttp.ClientTimeout = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "client_timeout", aiohttp.ClientTimeout(
            total=self.timeouts.total,
            sock_connect=self.timeouts.connect,
            sock_read=self.timeouts.read,
        ))


class HostSettingsBook:
    """Each host's settings, resolved from the options once and then cached."""

    def __init__(self, options: CheckOptions) -> None:
        self.options = options
        self._policies = {policy_key(key): policy for key, policy in options.hosts.items()}
        self._cache: dict[str, HostSettings] = {}

    def __call__(self, host: str) -> HostSettings:
        cached = self._cache.get(host)
        if cached is None:
            cached = self._cache[host] = self._resolve(host)
        return cached

    def _resolve(self, host: str) -> HostSettings:
        options = self.options
        policy = policy_for(host, self._policies) or HostPolicy()
        headers = {**options.headers, **policy.headers}
        if not any(name.lower() == "user-agent" for name in headers):
            headers["User-Agent"] = options.user_agent
        return HostSettings(
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


def policy_for(host: str, policies: dict[str, HostPolicy]) -> HostPolicy | None:
    """The policy of `host`: its own, else the longest matching ``*.suffix`` one."""
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


def policy_key(key: str) -> str:
    """Config keys may be written in Unicode; URLs are matched in their IDNA form."""
    if key.startswith("*."):
        return "*." + ascii_host(key[2:])
    return ascii_host(key)


def _pick(override: float | None, default: float) -> float:
    return default if override is None else override


@dataclass
class HeadHabits:
    """What each host's answers to HEAD taught this run."""

    refusals: dict[str, int] = field(default_factory=dict)
    successes: dict[str, int] = field(default_factory=dict)
    confirmed: dict[str, int] = field(default_factory=dict)  # HEAD 404/410s that GET agreed with
    contradicted: set[str] = field(default_factory=set)  # hosts whose HEAD 404 GET answered 2xx/3xx

    def note(self, host: str, method: str, code: int) -> None:
        if method != "HEAD":
            return
        if code in (405, 501):
            self.refusals[host] = self.refusals.get(host, 0) + 1
        elif 200 <= code < 400:
            self.successes[host] = self.successes.get(host, 0) + 1

    def note_get_after_head(self, host: str, head_code: int, get_code: int) -> None:
        """What GET said after a HEAD 404/410: the same (HEAD is honest here) or not."""
        if head_code not in HEAD_TRUSTABLE:
            return
        if get_code == head_code:
            self.confirmed[host] = self.confirmed.get(host, 0) + 1
        elif get_code < 400:
            self.contradicted.add(host)

    def trusted(self, host: str, code: int) -> bool:
        """A HEAD 404/410 needs no GET on a host whose HEAD 404/410s GET always confirmed."""
        return (
            code in HEAD_TRUSTABLE
            and host not in self.contradicted
            and self.confirmed.get(host, 0) >= HEAD_CONFIRMATIONS_TO_TRUST
        )

    def prefers_get(self, host: str) -> bool:
        """A host that keeps refusing HEAD and never accepted it gets GET directly."""
        return self.refusals.get(
            host, 0
        ) >= HEAD_REFUSALS_BEFORE_GET_ONLY and not self.successes.get(host)
