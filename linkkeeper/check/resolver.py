"""Name resolution for the checker: curl's `--connect-to`, offline DNS, private-address policy.

`--connect-to HOST:PORT:ADDR:PORT` keeps the URL, the Host header and the TLS
server name (SNI and certificate checks) of the original host, and only changes
where the TCP connection goes. aiohttp makes that natural: a resolver returns
``{"hostname": original, "host": address, "port": mapped port}`` and the
connector connects to the address while verifying TLS against the hostname.

With ``offline=True`` nothing ever reaches the system resolver: a name that no
rule maps fails exactly like an NXDOMAIN answer. Tests rely on this to stay
hermetic. The private-address policy (``--exclude-private``) is enforced here,
on the addresses actually used for the connection, so a redirect to an internal
host is caught too (a check on the URL text alone could be fooled by DNS).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

_ANY = {"", "*"}
# Resolved without DNS even offline: curl and every OS agree on these.
_LOCAL_NAMES = {"localhost": ["127.0.0.1", "::1"], "localhost.": ["127.0.0.1", "::1"]}


class ConnectToError(ValueError):
    """A `--connect-to` value that is not curl's HOST:PORT:ADDR:PORT."""


class PrivateAddressError(OSError):
    """The host resolves to a private, loopback or link-local address (--exclude-private)."""

    def __init__(self, host: str, address: str) -> None:
        super().__init__(f"{host} resolves to private address {address}")
        self.host = host
        self.address = address


def name_not_resolved(host: str) -> socket.gaierror:
    """The error getaddrinfo raises for NXDOMAIN, so offline misses look like real ones."""
    error = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    error.filename = host
    return error


def is_private_address(address: str) -> bool:
    """Private (RFC 1918, ULA), loopback, link-local or unspecified: not the public web."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_unspecified


def ascii_host(host: str) -> str:
    """The form aiohttp resolves: lower-case, IDNA (punycode), no brackets or final dot."""
    host = host.strip().strip("[]").rstrip(".")
    if host.isascii():
        return host.lower()
    try:
        return (URL.build(scheme="http", host=host).raw_host or host).lower()
    except ValueError:
        return host.lower()


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class ConnectTo:
    """One curl-style rule: requests for host:port go to target_host:target_port.

    None means "any" on the matching side and "unchanged" on the target side,
    as in curl (``::127.0.0.1:8080`` sends every host and port to one server).
    """

    host: str | None
    port: int | None
    target_host: str | None
    target_port: int | None

    @classmethod
    def parse(cls, spec: str) -> ConnectTo:
        """Parse ``HOST:PORT:ADDR:PORT``; IPv6 addresses go in brackets (``[::1]``)."""
        fields = _split_fields(spec)
        if len(fields) != 4:
            raise ConnectToError(
                f"invalid --connect-to {spec!r}: expected HOST:PORT:CONNECT-TO-HOST:CONNECT-TO-PORT"
            )
        host, port, target_host, target_port = fields
        return cls(
            host=None if host in _ANY else ascii_host(host),
            port=None if port in _ANY else _port(port, spec),
            target_host=target_host.strip("[]") or None,
            target_port=_port(target_port, spec) if target_port else None,
        )

    def matches(self, host: str, port: int) -> bool:
        host = ascii_host(host)
        return (self.host is None or self.host == host) and (self.port is None or self.port == port)

    def __str__(self) -> str:
        def bracket(name: str | None) -> str:
            if name and ":" in name:
                return f"[{name}]"
            return name or ""

        return ":".join(
            (
                bracket(self.host),
                "" if self.port is None else str(self.port),
                bracket(self.target_host),
                "" if self.target_port is None else str(self.target_port),
            )
        )


def parse_connect_to(specs: Iterable[str]) -> list[ConnectTo]:
    return [ConnectTo.parse(spec) for spec in specs]


def _split_fields(spec: str) -> list[str]:
    """Split on ':' outside brackets, so ``[::1]`` stays one field."""
    fields: list[str] = []
    current: list[str] = []
    depth = 0
    for char in spec.strip():
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        if char == ":" and depth == 0:
            fields.append("".join(current))
            current = []
        else:
            current.append(char)
        if depth < 0:
            raise ConnectToError(f"invalid --connect-to {spec!r}: unbalanced ']'")
    if depth:
        raise ConnectToError(f"invalid --connect-to {spec!r}: unbalanced '['")
    fields.append("".join(current))
    return fields


def _port(text: str, spec: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ConnectToError(f"invalid port {text!r} in --connect-to {spec!r}")
    return int(text)


class ConnectToResolver(AbstractResolver):
    """aiohttp resolver applying `--connect-to` rules, offline DNS and --exclude-private.

    The first matching rule wins (as in curl). Names not covered by a rule go to
    the system resolver, or fail as NXDOMAIN when offline. ``addresses`` remembers
    what each (host, port) resolved to, for the result's ``ip`` field.
    """

    def __init__(
        self,
        rules: Iterable[ConnectTo] = (),
        *,
        offline: bool = False,
        exclude_private: bool = False,
        fallback: AbstractResolver | None = None,
    ) -> None:
        self.rules = list(rules)
        self.offline = offline
        self.exclude_private = exclude_private
        self._fallback = fallback
        self._owns_fallback = fallback is None
        self.addresses: dict[tuple[str, int], list[str]] = {}

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        target_host, target_port = host, port
        for rule in self.rules:
            if rule.matches(host, port):
                target_host = rule.target_host or host
                target_port = rule.target_port or port
                break
        results = await self._lookup(target_host, target_port, family)
        results = [{**result, "hostname": host} for result in results]  # type: ignore[typeddict-item]
        if self.exclude_private:
            for result in results:
                if is_private_address(result["host"]):
                    raise PrivateAddressError(host, result["host"])
        self.addresses[(host.lower(), port)] = [result["host"] for result in results]
        return results  # type: ignore[return-value]

    async def _lookup(
        self, host: str, port: int, family: socket.AddressFamily
    ) -> list[ResolveResult]:
        literal = host.strip("[]")
        if is_ip_literal(literal):
            return [_result(host, literal, port)]
        if host.lower() in _LOCAL_NAMES:
            return [_result(host, address, port) for address in _LOCAL_NAMES[host.lower()]]
        if self.offline:
            raise name_not_resolved(host)
        if self._fallback is None:
            self._fallback = DefaultResolver()
        return await self._fallback.resolve(host, port, family)

    async def close(self) -> None:
        if self._fallback is not None and self._owns_fallback:
            await self._fallback.close()


def _result(hostname: str, address: str, port: int) -> ResolveResult:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    return ResolveResult(
        hostname=hostname,
        host=address,
        port=port,
        family=family,
        proto=0,
        flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
    )
