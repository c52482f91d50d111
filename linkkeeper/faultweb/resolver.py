"""An aiohttp resolver that maps names (and ports) from curl-style --connect-to entries.

It never consults the system resolver: a name with no entry fails the way a
name that does not exist fails (socket.gaierror EAI_NONAME), so hermetic tests
can play DNS failures without sending a single packet.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable

from aiohttp.abc import AbstractResolver, ResolveResult

from linkkeeper.check.resolver import ConnectTo, parse_connect_to

Route = tuple[str, int]


class FaultResolver(AbstractResolver):
    """Resolve (host, port) to the address and port a --connect-to entry names."""

    def __init__(self, rules: list[ConnectTo]) -> None:
        self.rules = rules

    @classmethod
    def from_connect_to(cls, entries: Iterable[str]) -> FaultResolver:
        """Rules parsed by the product's own parser (check/resolver.py): one spelling of them."""
        return cls(parse_connect_to(entries))

    def lookup(self, host: str, port: int) -> Route | None:
        """The first matching rule's target (as in curl); None when no rule names the host."""
        for rule in self.rules:
            if rule.matches(host.rstrip("."), port):
                return (rule.target_host or host, rule.target_port or port)
        return None

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
