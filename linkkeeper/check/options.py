"""What shapes a check run: the options and their defaults, declared once.

The CLI reads its defaults from these dataclasses, so the library and the
command line cannot disagree.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from linkkeeper import __version__
from linkkeeper.check.accept import AcceptRanges
from linkkeeper.settings import ConfigError

DEFAULT_USER_AGENT = f"linkkeeper/{__version__} (+https://github.com/linkkeeper)"
MIN_TIMEOUT = 0.01  # seconds: the shortest connect/read/total timeout accepted

# RFC 9110's token: what a header name may be
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def header_problem(name: str, value: str) -> str | None:
    """Why a request header cannot be sent as given, or None. A line break in a value would
    let one setting write a second header (or a second request) into every request."""
    if not _HEADER_NAME.fullmatch(name):
        return f"header name {name!r} is not a token (letters, digits and !#$%&'*+-.^_`|~)"
    if any(c in value for c in "\r\n\0"):
        return f"header {name}: the value holds a line break or NUL"
    return None


@dataclass
class HostPolicy:
    """Per-host overrides (config ``[hosts."www.example.com"]``); None = inherit the run's value.

    A key ``*.example.com`` applies to every subdomain of example.com; an exact
    key wins over a wildcard.
    """

    concurrency: int | None = None
    rate: float | None = None  # requests/second
    connect_timeout: float | None = None
    read_timeout: float | None = None
    total_timeout: float | None = None
    headers: dict[str, str] = field(default_factory=dict)
    accept: AcceptRanges | None = None


@dataclass
class CheckOptions:
    """Everything that shapes a run. Defaults are polite for a nightly job (lychee-like)."""

    concurrency: int = 128  # global in-flight requests
    host_concurrency: int = 8  # concurrent requests (so connections) per host, never exceeded
    # Requests/second per host (0 = unlimited). 20/s is lychee's 50 ms interval: with
    # 8 connections and typical latencies it rarely binds, yet caps bursts on fast hosts.
    host_rate: float = 20.0
    max_redirects: int = 10
    attempts: int = 3  # total tries for retryable failures
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    retry_after_cap: float = 60.0
    connect_timeout: float = 10.0
    read_timeout: float = 20.0
    total_timeout: float = 45.0
    user_agent: str = DEFAULT_USER_AGENT
    headers: dict[str, str] = field(default_factory=dict)
    accept: AcceptRanges = field(default_factory=AcceptRanges.default)
    insecure: bool = False
    ca_bundle: str | None = None  # else SSL_CERT_FILE, else the system store
    proxy: str | None = None
    trust_env: bool = True  # HTTP(S)_PROXY / NO_PROXY from the environment
    connect_to: list[str] = field(default_factory=list)  # curl's HOST:PORT:ADDR:PORT
    offline_dns: bool = False  # names no connect_to rule maps fail as NXDOMAIN
    include: list[str] = field(default_factory=list)  # regexes; include overrides exclude
    exclude: list[str] = field(default_factory=list)
    exclude_private: bool = False
    # Follow a public page's redirect into loopback/private/link-local addresses (resolver.py);
    # off by default: such a redirect is `excluded`, its target never contacted.
    allow_private: bool = False
    hosts: dict[str, HostPolicy] = field(default_factory=dict)
    get_bytes: int = 65536
    capture: Callable[[str], bool] | None = None
    capture_max_bytes: int = 50 * 2**20
    # Bytes of captured bodies held in memory, all in-flight and queued captures together
    # (`--memory-budget`); the rest wait in spool files (check/bodies.py).
    memory_budget: int = 256 * 2**20
    spool_dir: Path | None = None  # where bodies spill (the WARC folder); None: the temp dir
    # GET every URL, static files included, never HEAD (some users prefer it; costs bytes).
    # Not `read_pages`: that one GETs deep page links only (`--read-pages/--head-first`).
    always_get: bool = False
    buffer_size: int = 4096  # URLs pulled ahead of the dispatcher, at most
    # Probe host+directories and judge 2xx pages (soft404.py): `check --soft404`, the default.
    # Callers that must cost exactly their own requests (`snapshot`) pass False.
    soft404: bool = True
    soft404_threshold: float = 0.75  # main-text similarity to the probe's page that is a soft 404
    # GET deep page links (not static files) instead of HEAD: every check then reads the page
    # (error phrases, drift fingerprints). Same request count, more bytes (capped at get_bytes).
    # `check --read-pages` (the default); `--head-first` is False: HEAD, GET only when needed.
    read_pages: bool = True
    # Main-text fingerprints of the HTML pages read (drift, in the history). Off for
    # `snapshot`, which records no checks: no page decoding or parsing it would not use.
    fingerprints: bool = True

    def __post_init__(self) -> None:
        """Refuse numbers no run can use (ValueError). The command line and the config file
        check the same ranges first; a library caller gets the one clear error too, not an
        internal error on every request (``total_timeout=inf``)."""
        values = vars(self)
        for name, (minimum, whole) in _LIMITS.items():
            _number(values, name, minimum, whole)
        if not 0 <= self.soft404_threshold <= 1:
            raise ValueError(f"soft404_threshold = {self.soft404_threshold!r}: give 0 to 1")


# the smallest value of each number of CheckOptions, and whether it is a whole number
_LIMITS: dict[str, tuple[float, bool]] = {
    "concurrency": (1, True), "host_concurrency": (1, True), "host_rate": (0, False),
    "max_redirects": (0, True), "attempts": (1, True), "backoff_base": (0, False),
    "backoff_cap": (0, False), "retry_after_cap": (0, False),
    "connect_timeout": (MIN_TIMEOUT, False), "read_timeout": (MIN_TIMEOUT, False),
    "total_timeout": (MIN_TIMEOUT, False), "get_bytes": (0, True),
    "capture_max_bytes": (0, True), "memory_budget": (0, True), "buffer_size": (1, True),
    "soft404_threshold": (0, False),
}


_HOST_KEYS = frozenset({"concurrency", "rate", "connect_timeout", "read_timeout", "timeout",
                        "total_timeout", "headers", "accept"})


def host_policies(tables: dict[str, dict[str, Any]], source: Path | None = None
                  ) -> dict[str, HostPolicy]:
    """The config file's ``[hosts."name"]`` tables as HostPolicy objects (ConfigError if wrong)."""
    out = {}
    for host, table in tables.items():
        unknown = set(table) - _HOST_KEYS
        if unknown:
            raise ConfigError(f"{source}: [hosts.{host!r}]: unknown setting(s): "
                              f"{', '.join(sorted(unknown))}")
        try:
            out[host.lower()] = HostPolicy(
                concurrency=_whole(table, "concurrency", 1),
                rate=_number(table, "rate", 0),
                connect_timeout=_number(table, "connect_timeout", MIN_TIMEOUT),
                read_timeout=_number(table, "read_timeout", MIN_TIMEOUT),
                total_timeout=_number(
                    table, "total_timeout" if "total_timeout" in table else "timeout", MIN_TIMEOUT),
                headers=_headers(table.get("headers")),
                accept=AcceptRanges.parse(str(table["accept"])) if "accept" in table else None,
            )
        except ValueError as exc:
            raise ConfigError(f"{source}: [hosts.{host!r}]: {exc}") from None
    return out


def _number(table: dict[str, Any], key: str, minimum: float, whole: bool = False
            ) -> float | None:
    """A host table's number, None when absent; ValueError when it is not one a run can use
    (a string, a boolean, nan, inf, below ``minimum``)."""
    value = table.get(key)
    if value is None:
        return None
    kinds = int if whole else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value) \
            or value < minimum:
        what = "a whole number" if whole else "a number"
        raise ValueError(f"{key} = {value!r}: give {what} of at least {minimum:g}")
    return value


def _whole(table: dict[str, Any], key: str, minimum: int) -> int | None:
    value = _number(table, key, minimum, whole=True)
    return None if value is None else int(value)


def _headers(table: object) -> dict[str, str]:
    """A host table's ``headers``: names and plain values that can be sent as written."""
    if table is None:
        return {}
    if not isinstance(table, dict):
        raise ValueError(f"headers = {table!r}: give a table of name = \"value\"")
    headers = {}
    for name, value in table.items():
        if isinstance(value, dict | list):
            raise ValueError(f"headers.{name}: give a plain value, not a table or a list")
        problem = header_problem(str(name), str(value))
        if problem:
            raise ValueError(problem)
        headers[str(name)] = str(value)
    return headers
