"""Shards: split one audit over N machines so that no host is ever checked from two of them.

``check --shard I/N`` checks only the URLs whose host falls in shard I (1-based: ``1/4``
to ``4/4``; a Kubernetes Indexed Job's 0-based ``JOB_COMPLETION_INDEX`` is I-1). The
partition is by *registrable domain* (the public suffix plus one label: ``bbc.co.uk`` for
``news.bbc.co.uk`` and ``www.bbc.co.uk``), because politeness is owed to an operator, not to
a host name: a site's hosts usually share servers and rate limiters, so they must share one
shard's per-host limits and back-off instead of being hit from several machines at once.

The shard of a domain is a stable hash (BLAKE2b, not Python's per-process ``hash``), so
every machine, every night, on every Python version, puts a domain in the same shard; and
the partition is total: every host, also an IP literal, a name without a known public
suffix or the empty host of an invalid URL, belongs to exactly one shard.

The public suffix list is the snapshot bundled with tldextract (ICANN section only, so
``*.github.io`` or ``*.blogspot.com`` stay together with their operator); it is never fetched
from the network, so a shard assignment cannot change because a download succeeded or not.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

_SPEC = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


class ShardError(ValueError):
    """A shard spec that is not I/N with 1 <= I <= N."""


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count`, 1-based (``Shard(1, 1)`` is the whole audit)."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 1 <= self.index <= self.count:
            raise ShardError(
                f"{self.index}/{self.count}: expected I/N with 1 <= I <= N (1-based)"
            )

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"2/4"`` -> ``Shard(2, 4)``; one clear error for anything else."""
        match = _SPEC.fullmatch(str(text))
        if not match:
            raise ShardError(f"{text!r}: expected a shard as I/N, like 1/4 (1-based)")
        return cls(int(match[1]), int(match[2]))

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, host: str) -> bool:
        """Is `host` checked by this shard?"""
        return self.count == 1 or shard_of(host, self.count) == self.index

    def select(self, urls_with_hosts: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """The (url, host) pairs this shard checks, in their order."""
        if self.count == 1:
            return urls_with_hosts
        return [(url, host) for url, host in urls_with_hosts if self.owns(host)]


@cache
def _extractor() -> Any:
    """tldextract with its bundled public suffix snapshot: no download, no cache files."""
    import tldextract  # ~0.1 s (requests): only when a sharded run needs it

    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)


@lru_cache(maxsize=65536)
def registrable_domain(host: str) -> str:
    """The unit shards are made of: public suffix + one label, or the host when there is none.

    * ``news.bbc.co.uk`` -> ``bbc.co.uk``; ``bbc.co.uk`` -> ``bbc.co.uk``;
    * an IP literal (``127.0.0.1``, ``[::1]``) -> the address itself, normalised;
    * a host that is itself a public suffix (``co.uk``) -> itself;
    * no known suffix (``news.example``, ``localhost``): the public suffix list's default
      rule ``*`` applies, the last label is the suffix -> ``news.example``, ``localhost``;
    * ``''`` (URLs without a host) -> ``''``.
    """
    name = host.strip().lower().rstrip(".")
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    try:
        return ipaddress.ip_address(name).compressed
    except ValueError:
        pass
    if not name:
        return ""
    parts = _extractor()(name)
    if parts.suffix:
        return f"{parts.domain}.{parts.suffix}" if parts.domain else parts.suffix
    return ".".join(name.split(".")[-2:])


def stable_hash(text: str) -> int:
    """64 bits of BLAKE2b: the same on every machine and Python version."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big")


def shard_of(host: str, count: int) -> int:
    """The 1-based shard (of `count`) that checks `host`."""
    if count < 1:
        raise ShardError(f"shard count {count}: must be at least 1")
    return stable_hash(registrable_domain(host)) % count + 1
