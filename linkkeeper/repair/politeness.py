"""Asking web archives politely: one request at a time, spaced, Retry-After honoured.

The Wayback Machine and Memento aggregators rate-limit hard and a fix of a
large site asks them thousands of times, so the client is deliberately
sequential (one host at a time), waits `min_interval` between requests to the
same host, obeys 429/503 ``Retry-After`` (seconds or an HTTP date) up to
`max_wait`, and stops asking a host for the rest of the run when it wants a
longer pause. Network errors and timeouts raise LookupUnavailable: the answer
is not cached, the next run asks again.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from linkkeeper import __version__
from linkkeeper.repair.copies import LookupUnavailable

USER_AGENT = f"linkkeeper/{__version__} (archived-copy lookup for a static site)"


@dataclass(slots=True)
class Answer:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # a TimeGate's 302 is the answer, not something to follow


@dataclass
class PoliteClient:
    timeout: float = 20.0
    min_interval: float = 1.0  # seconds between two requests to one host
    max_wait: float = 60.0  # longest Retry-After obeyed; longer: the host is done for this run
    attempts: int = 3
    sleep: Callable[[float], None] = time.sleep
    _last: dict[str, float] = field(default_factory=dict)
    _closed: dict[str, str] = field(default_factory=dict)  # host -> why it is not asked now

    def __post_init__(self) -> None:
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)

    def get(self, url: str, headers: dict[str, str] | None = None) -> Answer:
        host = urlsplit(url).netloc
        if host in self._closed:
            raise LookupUnavailable(self._closed[host])
        for _ in range(self.attempts):
            self._space(host)
            answer = self._fetch(url, headers or {})
            if answer.status not in (429, 503):
                return answer
            wait = retry_after(answer.headers.get("retry-after"))
            if wait is None:
                wait = self.min_interval * 4
            if wait > self.max_wait:
                self._closed[host] = f"{host} asked us to wait {wait:.0f} s (Retry-After)"
                raise LookupUnavailable(self._closed[host])
            self.sleep(wait)
        self._closed[host] = f"{host} kept answering {answer.status}"
        raise LookupUnavailable(self._closed[host])

    def _space(self, host: str) -> None:
        last = self._last.get(host)
        if last is not None:
            gap = time.monotonic() - last
            if gap < self.min_interval:
                self.sleep(self.min_interval - gap)
        self._last[host] = time.monotonic()

    def _fetch(self, url: str, headers: dict[str, str]) -> Answer:
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **headers})
        try:
            with self._opener.open(request, timeout=self.timeout) as resp:
                return Answer(resp.status, _lower(resp.headers.items()), resp.read(4_000_000))
        except urllib.error.HTTPError as err:
            body = err.read(100_000) if err.fp else b""
            return Answer(err.code, _lower(err.headers.items()), body)
        except (urllib.error.URLError, TimeoutError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise LookupUnavailable(f"{urlsplit(url).netloc}: {reason}") from None


def _lower(items: object) -> dict[str, str]:
    return {k.lower(): v for k, v in items}  # type: ignore[attr-defined]


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After value (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
