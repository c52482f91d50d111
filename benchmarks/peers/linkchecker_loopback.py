"""Run LinkChecker hermetically: benchmark host names resolve to loopback, nothing else resolves.

Runs inside LinkChecker's own virtualenv (benchmarks/.venvs/linkchecker, made by setup.sh):

    benchmarks/.venvs/linkchecker/bin/python benchmarks/peers/linkchecker_loopback.py \
        [--unthrottle] -- LINKCHECKER ARGUMENTS...

Before LinkChecker starts it replaces the resolver functions of `socket` (and dnspython's,
which LinkChecker uses for mail checks): names matching BENCH_LOOPBACK_HOSTS
(comma-separated names or "*.suffix" patterns, default "*.example") and `localhost`
resolve to 127.0.0.1; every other name fails with EAI_NONAME without a query being
sent; and `socket.connect` refuses any non-loopback address.

``--unthrottle``: LinkChecker waits a random 0.1-0.6 s between two requests to the same
host (about 3 requests/s per host) unless the server answers with a ``LinkChecker``
header, its documented opt-in for checking your own servers faster (then
``maxrequestspersecond`` applies). Our fault web does not send that header, so this flag
marks every host as if it had; without it, 14,000 URLs on one host take over an hour.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from typing import Any

PATTERNS = [
    p.strip().lower()
    for p in os.environ.get("BENCH_LOOPBACK_HOSTS", "*.example").split(",")
    if p.strip()
]


def is_bench_host(name: str) -> bool:
    host = name.lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    return any(host.endswith(p[1:]) if p.startswith("*.") else host == p for p in PATTERNS)


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return False


_real_getaddrinfo = socket.getaddrinfo
_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _target(host: Any) -> str | None:
    """The address to hand to the real resolver (numeric only), or None: refuse."""
    if host is None:
        return None
    name = host.decode() if isinstance(host, bytes) else str(host)
    try:
        ipaddress.ip_address(name.split("%")[0])
    except ValueError:
        return "127.0.0.1" if is_bench_host(name) else None
    return name if is_loopback(name) else None


def getaddrinfo(
    host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
):
    address = _target(host)
    if address is None:
        raise socket.gaierror(socket.EAI_NONAME, f"{host}: blocked, benchmarks stay on loopback")
    return _real_getaddrinfo(address, port, family, type, proto, flags | socket.AI_NUMERICHOST)


def gethostbyname(host: str) -> str:
    address = _target(host)
    if address is None:
        raise socket.gaierror(socket.EAI_NONAME, f"{host}: blocked, benchmarks stay on loopback")
    return address


def gethostbyname_ex(host: str) -> tuple[str, list[str], list[str]]:
    return host, [], [gethostbyname(host)]


def _guard(address: Any) -> None:
    if isinstance(address, tuple) and address and not is_loopback(str(address[0])):
        raise ConnectionRefusedError(
            f"refusing to connect to {address[0]}: benchmarks stay on loopback"
        )


def connect(self: socket.socket, address: Any) -> None:
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _guard(address)
    return _real_connect(self, address)


def connect_ex(self: socket.socket, address: Any) -> int:
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _guard(address)
    return _real_connect_ex(self, address)


def install() -> None:
    socket.getaddrinfo = getaddrinfo
    socket.gethostbyname = gethostbyname
    socket.gethostbyname_ex = gethostbyname_ex
    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    try:
        import dns.resolver
    except ImportError:
        return

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise dns.resolver.NXDOMAIN()

    dns.resolver.resolve = refuse
    dns.resolver.query = refuse
    dns.resolver.Resolver.resolve = refuse  # type: ignore[method-assign]
    dns.resolver.Resolver.query = refuse  # type: ignore[method-assign]


class _EveryHost(dict):
    """A `maxrated` table that answers yes for every host (see --unthrottle)."""

    def __contains__(self, key: object) -> bool:
        return True


def unthrottle() -> None:
    from linkcheck.director import aggregator

    original_init = aggregator.Aggregate.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self.maxrated = _EveryHost()

    aggregator.Aggregate.__init__ = init


def main() -> int:
    args = sys.argv[1:]
    wants_unthrottle = "--unthrottle" in args[: args.index("--")] if "--" in args else False
    if "--" in args:
        args = args[args.index("--") + 1 :]
    install()
    if wants_unthrottle:
        unthrottle()
    from linkcheck.command.linkchecker import linkchecker

    sys.argv = ["linkchecker", *args]
    return linkchecker()


if __name__ == "__main__":
    sys.exit(main())
