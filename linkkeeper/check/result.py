"""What one URL's check found: the typed record the history, archive and reports read."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from linkkeeper.clock import utcnow
from linkkeeper.exchange import Exchange
from linkkeeper.vocab import Status


@dataclass
class Hop:
    """One redirect answer: the URL asked, its status and where it pointed."""

    url: str
    status: int
    location: str | None


@dataclass
class CheckResult:
    url: str
    status: Status
    reason: str
    http_status: int | None = None
    final_url: str | None = None
    redirects: list[Hop] = field(default_factory=list)
    permanent_redirect: bool = False  # every hop was 301/308: the link deserves an update
    attempts: int = 0  # tries of the failing/final request
    requests: int = 0  # HTTP requests this URL cost (HEAD+GET, retries, hops)
    method: str = ""  # "HEAD", "GET" or "HEAD,GET"
    elapsed_ms: float = 0.0  # wall time of the whole check, waits and retries included
    started_at: datetime = field(default_factory=utcnow)
    ip: str | None = None
    content_type: str | None = None
    content_length: int | None = None
    error: str | None = None  # exception class and message, for debugging
    exchanges: list[Exchange] = field(default_factory=list)
    sample: bytes | None = None  # first get_bytes of the decoded body when a GET was made
    # sha1:BASE32 of `sample` (exchange.sha1_b32): the decoded body prefix this check read,
    # so two checks can tell whether the page's opening changed; None when nothing was read
    digest: str | None = None
    latency_ms: float | None = None  # duration of the last request (time to read what we read)
    host: str | None = None
    fingerprint: str | None = None  # main-text sketch of an HTML page read with GET (fingerprint.py)
    evidence: dict[str, Any] | None = None  # why a verdict was reached: {"soft404": {...}}
