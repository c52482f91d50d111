"""Certificates for the fault-injection web: one test CA, a good, an expired and a wrong-name cert.

trustme makes a throwaway CA per server, so a checker trusts it only when told
(`--ca-bundle web.ca_pem`) and never by accident through the system store.
"""

from __future__ import annotations

import ipaddress
import logging
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import idna
import trustme

logger = logging.getLogger(__name__)

# Names every good certificate covers besides the served hosts, so ad-hoc test hosts work too.
WILDCARD_NAMES = ("*.example", "*.example.com", "*.example.org", "*.test", "localhost", "127.0.0.1")
# The name the wrong-name certificate is issued for: a valid certificate, for someone else.
OTHER_NAME = "someone-else.invalid"


@dataclass(slots=True)
class Certificates:
    ca_pem: Path
    good: ssl.SSLContext
    expired: ssl.SSLContext
    wrong_name: ssl.SSLContext


def _server_context(cert: trustme.LeafCert) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    context.sni_callback = _remember_sni
    return context


def _remember_sni(ssl_object: ssl.SSLObject, server_name: str | None, _: ssl.SSLContext) -> None:
    """Keep the name the client asked for: connections are counted per host from the handshake."""
    ssl_object.faultweb_sni = server_name  # type: ignore[attr-defined]


def sni_of(ssl_object: object) -> str | None:
    """The SNI name a TLS connection was opened for (None when the client sent none)."""
    return getattr(ssl_object, "faultweb_sni", None)


def certifiable(name: str) -> bool:
    """Whether a name can go in a certificate (IDNA-valid host or IP): "bad_name.example" cannot."""
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        pass
    try:
        idna.encode(name[2:] if name.startswith("*.") else name, uts46=True)
    except idna.IDNAError:
        return False
    return True


def make_certificates(directory: Path, hosts: list[str], expired_host: str) -> Certificates:
    """Write the CA to `directory`/ca.pem and return server contexts for the three TLS ports.

    Host names no certificate can hold are left out (logged): over TLS they
    then fail the name check, as they would against most real servers.
    """
    ca = trustme.CA(organization_name="linkkeeper fault-injection web")
    ca_pem = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_pem))
    names = [name for name in dict.fromkeys([*hosts, *WILDCARD_NAMES]) if certifiable(name)]
    for name in sorted(set(hosts) - set(names)):
        logger.warning("fault web: %r cannot be put in a certificate; served over HTTP only", name)
    now = datetime.now(UTC)
    return Certificates(
        ca_pem=ca_pem,
        good=_server_context(ca.issue_cert(*names)),
        expired=_server_context(
            ca.issue_cert(
                expired_host,
                not_before=now - timedelta(days=730),
                not_after=now - timedelta(days=30),
            )
        ),
        wrong_name=_server_context(ca.issue_cert(OTHER_NAME)),
    )
