"""What is fetched at all: decided without the network, for each URL and each redirect hop.

A URL that cannot be parsed, is not http(s), has no host or a bad port is
`invalid` or `excluded` here; so is one matching ``--exclude`` (unless it
matches ``--include``) and, with ``--exclude-private``, a literal private
address (names are checked when resolved: resolver.py).
"""

from __future__ import annotations

import re

from yarl import URL

from linkkeeper.check.options import CheckOptions
from linkkeeper.check.resolver import is_ip_literal, is_private_address
from linkkeeper.check.result import CheckResult
from linkkeeper.vocab import Status

FETCHED_SCHEMES = frozenset({"http", "https"})


class Excluded(Exception):
    """A URL or redirect hop we must not fetch (scheme, pattern, private address)."""

    def __init__(self, status: Status, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Admission:
    """The options' rules about which URLs are fetched."""

    def __init__(self, options: CheckOptions) -> None:
        self.options = options
        self._include = [re.compile(p) for p in options.include]
        self._exclude = [re.compile(p) for p in options.exclude]

    def precheck(self, url: str) -> CheckResult | URL:
        """The URL parsed, or the result that says why it is not fetched."""
        try:
            parsed = URL(url)
        except (ValueError, TypeError) as error:
            return CheckResult(url, Status.INVALID, f"invalid URL: {error}", error=repr(error))
        try:
            self.admit(url, parsed)
        except Excluded as excluded:
            return CheckResult(url, excluded.status, excluded.reason)
        return parsed

    def admit(self, url: str, parsed: URL) -> None:
        """Raise `Excluded` unless the URL may be fetched."""
        scheme = parsed.scheme.lower()
        if not scheme:
            raise Excluded(Status.INVALID, "invalid URL: not absolute (no scheme)")
        if scheme not in FETCHED_SCHEMES:
            raise Excluded(Status.EXCLUDED, f"scheme {scheme}: not checked")
        if not parsed.raw_host:
            raise Excluded(Status.INVALID, "invalid URL: no host")
        try:
            parsed.port  # noqa: B018 - raises on a bad port
        except ValueError as error:
            raise Excluded(Status.INVALID, f"invalid URL: {error}") from error
        if not any(p.search(url) for p in self._include):
            for pattern in self._exclude:
                if pattern.search(url):
                    raise Excluded(Status.EXCLUDED, f"matches --exclude {pattern.pattern!r}")
        host = parsed.raw_host.strip("[]")
        if self.options.exclude_private and is_ip_literal(host) and is_private_address(host):
            raise Excluded(Status.EXCLUDED, f"private address {host} (--exclude-private)")
