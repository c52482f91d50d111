"""An aiohttp resolver that maps names (and ports) from curl-style --connect-to entries.

It never consults the system resolver: a name with no entry fails the way a
name that does not exist fails (socket.gaierror EAI_NONAME), so hermetic tests
can play DNS failures without sending a single packet.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable

from aiohttp.abc import AbstractResolver, ResolveResult

Route = tuple[str, int]


def parse_connect_to(entry: str) -> tuple[Route, Route]:
    """ "news.example:443:127.0.0.1:8443" -> (("news.example", 443), ("127.0.0.1", 8443)).

    An empty or `*` first host matches any name; a bracketed IPv6 target is unwrapped.
    """
    if entry.count(":") < 3:
        raise ValueError(f"--connect-to wants HOST:PORT:ADDR:PORT, not {entry!r}")
    host, port, rest = entry.split(":", 2)
    if rest.startswith("["):
        address, _, tail = rest[1:].partition("]")
        target_port = tail.lstrip(":")
    else:
        address, _, target_port = rest.rpartition(":")
    try:
        return (host.lower() or "*", int(port)), (address, int(target_port))
    except ValueError:
        raise ValueError(f"--connect-to ports must be integers in {entry!r}") from None


class FaultResolver(AbstractResolver):
    """Resolve (host, port) to the address and port a --connect-to entry names."""

    def __init__(self, routes: dict[Route, Route]) -> None:
        self.routes = routes

    @classmethod
    def from_connect_to(cls, entries: Iterable[str]) -> FaultResolver:
        routes: dict[Route, Route] = {}
        for entry in entries:
            source, target = parse_connect_to(entry)
            routes.setdefault(source, target)  # first match wins, as in curl
        return cls(routes)

    def lookup(self, host: str, port: int) -> Route | None:
        name = host.lower().rstrip(".")
        return self.routes.get((name, port)) or self.routes.get(("*", port))

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        target = self.lookup(host, port)
        if target is None:
            raise socket.gaierror(socket.EAI_NONAME, f"{host}: Name or service not known")
        address, target_port = target
        address_family = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [
            {
                "hostname": host,
                "host": address,
                "port": target_port,
                "family": address_family,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
        ]

    async def close(self) -> None:
        """Nothing to release: no sockets, no threads."""
