"""Name resolution for the checker: curl's `--connect-to`, offline DNS, private-address policy.

`--connect-to HOST:PORT:ADDR:PORT` keeps the URL, the Host header and the TLS
server name (SNI and certificate checks) of the original host, and only changes
where the TCP connection goes. aiohttp makes that natural: a resolver returns
``{"hostname": original, "host": address, "port": mapped port}`` and the
connector connects to the address while verifying TLS against the hostname.

With ``offline=True`` nothing is contacted that no rule maps: a name fails
exactly like an NXDOMAIN answer, and an IP literal, ``localhost`` or a
``*.localhost`` name (which need no DNS) is refused with its own reason
(`OfflineUnmapped`). Tests rely on this to stay hermetic. aiohttp hands IP
literals straight to the socket, so `GuardedConnector` routes them through this
resolver too: every connection passes here, proxies named in the options aside.

Private addresses (loopback, RFC 1918, ULA, link-local, unspecified, IPv4-mapped
forms): ``--exclude-private`` refuses them for every URL; by default a redirect
*from a public address* may not lead into them (`forbid_private`, set by the
checker for such hops; `--allow-private` lifts it). Both are enforced on the
addresses actually used for the connection, so a public name that resolves to
127.0.0.1 (DNS rebinding) is caught too, not only a literal in the Location. A
host that a `--connect-to` rule maps counts as public: the rule says where that
public host lives for this run (the fault web plays the internet on loopback).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from linkkeeper.vocab import Status

_ANY = {"", "*"}
# Resolved without DNS even offline: curl and every OS agree on these.
_LOCAL_NAMES = {"localhost": ["127.0.0.1", "::1"], "localhost.": ["127.0.0.1", "::1"]}


class ConnectToError(ValueError):
    """A `--connect-to` value that is not curl's HOST:PORT:ADDR:PORT."""


class NotContacted(OSError):
    """A connection refused before it was made; carries the check's verdict (classify.py)."""

    def __init__(self, message: str, status: Status, reason: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class PrivateAddressError(NotContacted):
    """The host resolves to a private, loopback or link-local address that may not be used."""

    def __init__(self, host: str, address: str, reason: str | None = None) -> None:
        super().__init__(
            f"{host} resolves to private address {address}",
            Status.EXCLUDED,
            reason or f"private address {address} (--exclude-private)",
        )
        self.host = host
        self.address = address


class OfflineUnmapped(NotContacted):
    """--offline-dns: an IP literal or a local name that no --connect-to rule maps."""

    def __init__(self, host: str, port: int) -> None:
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        super().__init__(
            f"{where} is not mapped by --connect-to",
            Status.NETWORK_ERROR,
            f"not contacted: --offline-dns and no --connect-to rule maps {where}",
        )


def redirect_into_private(host: str, address: str) -> PrivateAddressError:
    """The default rule: a public page's redirect may not lead into a private address."""
    target = address if address == host.strip("[]") else f"{host} ({address})"
    return PrivateAddressError(
        host, address,
        f"redirect from a public address into private address {target}: not followed "
        "(--allow-private follows it)",
    )


# Set by the checker around a request that a public address redirected to: the
# connection may not go to a private address (unless a rule maps the host).
_FORBID_PRIVATE: ContextVar[bool] = ContextVar("linkkeeper_forbid_private", default=False)


@contextmanager
def forbid_private(forbidden: bool) -> Iterator[None]:
    """Within this block (this task), connections to private addresses are refused."""
    token = _FORBID_PRIVATE.set(forbidden)
    try:
        yield
    finally:
        _FORBID_PRIVATE.reset(token)


def is_local_name(host: str) -> bool:
    """``localhost`` and ``*.localhost`` (RFC 6761): loopback without asking DNS."""
    name = host.strip().rstrip(".").lower()
    return name == "localhost" or name.endswith(".localhost")


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


def proxy_addresses(proxy: str | None, trust_env: bool) -> list[tuple[str, int]]:
    """(host, port) of the proxies a run may use: --proxy, and the environment's if trusted."""
    import urllib.request

    urls = [proxy] if proxy else []
    if trust_env:
        urls += [u for scheme, u in urllib.request.getproxies().items() if scheme != "no"]
    out = []
    for text in urls:
        try:
            url = URL(text if "://" in text else f"http://{text}")
        except ValueError:
            continue
        if url.raw_host:
            out.append((url.raw_host, url.port or 0))
    return out


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
    what each (host, port) resolved to, for the result's ``ip`` field. ``exempt``
    holds the (host, port) of proxies the options name: the user chose them.
    """

    def __init__(
        self,
        rules: Iterable[ConnectTo] = (),
        *,
        offline: bool = False,
        exclude_private: bool = False,
        fallback: AbstractResolver | None = None,
        exempt: Iterable[tuple[str, int]] = (),
    ) -> None:
        self.rules = list(rules)
        self.offline = offline
        self.exclude_private = exclude_private
        self.exempt = {(ascii_host(host), port) for host, port in exempt}
        self._fallback = fallback
        self._owns_fallback = fallback is None
        self.addresses: dict[tuple[str, int], list[str]] = {}

    def rule_for(self, host: str, port: int) -> ConnectTo | None:
        return next((rule for rule in self.rules if rule.matches(host, port)), None)

    def mapped(self, host: str, port: int) -> bool:
        """A rule (or a proxy the options name) says where this host:port is: it counts as public."""
        return self.rule_for(host, port) is not None or (ascii_host(host), port) in self.exempt

    def counts_as_public(self, url: URL, address: str | None) -> bool:
        """Whether an answer from `url` (at `address`) came from the public side."""
        if url.raw_host is None:
            return False
        if self.mapped(url.raw_host, url.port or 0):
            return True
        if address is None:
            host = url.raw_host.strip("[]")
            return not is_local_name(host) and not (is_ip_literal(host) and is_private_address(host))
        return not is_private_address(address)

    def refused_redirect(self, url: URL) -> str | None:
        """Why a redirect from a public address may not go to `url` as written (None: it may).

        Literal private addresses and local names are refused here, before any
        request; names are checked once resolved (`check_forbidden`).
        """
        host = (url.raw_host or "").strip("[]")
        if not host or self.mapped(host, url.port or 0):
            return None
        if is_local_name(host) or (is_ip_literal(host) and is_private_address(host)):
            return (f"private address {host}: not followed from a public address "
                    "(--allow-private follows it)")
        return None

    def check_forbidden(self, host: str, port: int, addresses: Iterable[str]) -> None:
        """Raise when a redirect from a public address would connect to a private one."""
        if not _FORBID_PRIVATE.get() or self.mapped(host, port):
            return
        for address in addresses:
            if is_private_address(address):
                raise redirect_into_private(host, address)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        target_host, target_port = host, port
        rule = self.rule_for(host, port)
        if rule is not None:
            target_host = rule.target_host or host
            target_port = rule.target_port or port
        elif self.offline and (ascii_host(host), port) not in self.exempt:
            bare = host.strip("[]")
            if is_ip_literal(bare) or is_local_name(bare):
                raise OfflineUnmapped(bare, port)
            raise name_not_resolved(host)
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
        if self.offline:  # a rule's target name (or an exempt proxy name): still no DNS
            raise name_not_resolved(host)
        if self._fallback is None:
            self._fallback = DefaultResolver()
        return await self._fallback.resolve(host, port, family)

    async def close(self) -> None:
        if self._fallback is not None and self._owns_fallback:
            await self._fallback.close()


class GuardedConnector(aiohttp.TCPConnector):
    """A TCPConnector whose every connection passes the resolver's rules.

    aiohttp connects to IP literals without asking the resolver: here they are
    resolved by it too (so --offline-dns and --connect-to cover them), and every
    resolution, and every pooled connection handed out, is checked against the
    private-redirect rule of the request in progress (`forbid_private`).
    """

    def __init__(self, *, resolver: ConnectToResolver, **kwargs: Any) -> None:
        super().__init__(resolver=resolver, **kwargs)
        self._guard = resolver

    async def _resolve_host(
        self, host: str, port: int, traces: Any = None
    ) -> list[ResolveResult]:
        if is_ip_literal(host):
            results = await self._guard.resolve(host, port, self._family)
        else:
            results = await super()._resolve_host(host, port, traces)
        self._guard.check_forbidden(host, port, [result["host"] for result in results])
        return results

    async def connect(self, req: Any, traces: Any, timeout: Any) -> Any:
        connection = await super().connect(req, traces, timeout)
        if _FORBID_PRIVATE.get() and req.proxy is None:
            transport = connection.transport
            peer = transport.get_extra_info("peername") if transport is not None else None
            if peer:
                try:
                    self._guard.check_forbidden(req.host, req.port, [str(peer[0])])
                except PrivateAddressError:
                    connection.close()
                    raise
        return connection


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
