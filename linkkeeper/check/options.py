"""What shapes a check run: the options and their defaults, declared once.

The CLI reads its defaults from these dataclasses, so the library and the
command line cannot disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from linkkeeper import __version__
from linkkeeper.check.accept import AcceptRanges

DEFAULT_USER_AGENT = f"linkkeeper/{__version__} (+https://github.com/linkkeeper)"


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
    connect_timeout: float = 10
    read_timeout: float = 20
    total_timeout: float = 45
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
    hosts: dict[str, HostPolicy] = field(default_factory=dict)
    get_bytes: int = 65536
    capture: Callable[[str], bool] | None = None
    capture_max_bytes: int = 50 * 2**20
    head_first: bool = True  # False: always GET (some users prefer it; costs more bytes)
    buffer_size: int = 4096  # URLs pulled ahead of the dispatcher, at most
    # Probe host+directories and judge 2xx pages (soft404.py). Off unless asked for
    # (`linkkeeper check --soft404`), so a check costs exactly its own requests.
    soft404: bool = False
    soft404_threshold: float = 0.75  # main-text similarity to the probe's page that is a soft 404
    # GET deep page links (not static files) instead of HEAD: every check then reads the page
    # (error phrases, drift fingerprints). Same request count, more bytes (capped at get_bytes).
    read_pages: bool = False
    # Main-text fingerprints of the HTML pages read (drift, in the history). Off for
    # `snapshot`, which records no checks: no page decoding or parsing it would not use.
    fingerprints: bool = True
