"""The fault-injection web: a local server that plays, on loopback, every way a real web fails.

Used by tests (`faultweb` fixture), benchmarks and the demo
(`python -m linkkeeper.faultweb`). See `server.FaultWeb` for the API and
`behaviours` for what each path does.
"""

from linkkeeper.faultweb.behaviours import DEFAULT_BEHAVIOURS, BadPath, Behaviour, Hit
from linkkeeper.faultweb.resolver import FaultResolver, parse_connect_to
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
    "FaultResolver",
    "FaultWeb",
    "Hit",
    "LogEntry",
    "max_overlap",
    "parse_connect_to",
]
