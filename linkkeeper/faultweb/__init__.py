"""The fault-injection web: a local server that plays, on loopback, every way a real web fails.

Used by tests (the `faultweb` fixture in tests/conftest.py), benchmarks and the
demo (`python -m linkkeeper.faultweb`, `--list` shows the behaviours by path).

    with FaultWeb(latency={"news.example": (20, 100)}) as web:
        # realistic URLs, aimed here by curl-style --connect-to or by web.resolver():
        run_checker("http://news.example/flaky/2/a", connect_to=web.connect_to_args(),
                    ca_bundle=web.ca_pem)
        assert web.max_concurrent_connections("news.example") <= 8
        first, second, third = web.request_times("news.example", "/flaky/2/a")

Modules: `server` (FaultWeb: ports, TLS, latency, request log), `behaviours`
(the table of what each path plays; extend it with `FaultWeb.add_behaviour`),
`bodies` (deterministic pages, images, encodings), `tls` (trustme certificates),
`resolver` (an aiohttp resolver built from --connect-to entries, no real DNS).
"""

from linkkeeper.faultweb.archives import FakeArchives
from linkkeeper.faultweb.behaviours import DEFAULT_BEHAVIOURS, BadPath, Behaviour, Hit
from linkkeeper.faultweb.resolver import FaultResolver
from linkkeeper.faultweb.server import (
    CLOSED_HOST,
    DEFAULT_HOSTS,
    EXPIRED_HOST,
    UNRESOLVABLE_HOST,
    WRONG_NAME_HOST,
    Connection,
    FaultWeb,
    LogEntry,
    max_overlap,
)

__all__ = [
    "CLOSED_HOST",
    "DEFAULT_BEHAVIOURS",
    "DEFAULT_HOSTS",
    "EXPIRED_HOST",
    "UNRESOLVABLE_HOST",
    "WRONG_NAME_HOST",
    "BadPath",
    "Behaviour",
    "Connection",
    "FakeArchives",
    "FaultResolver",
    "FaultWeb",
    "Hit",
    "LogEntry",
    "max_overlap",
]
