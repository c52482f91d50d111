"""Issue 12, items 4 and 5: nobody let in.

* `--offline-dns` is hermetic: nothing is contacted that `--connect-to` does not
  map, IP literals (v4, v6, IPv4-mapped v6) and `localhost`/`*.localhost` included.
* By default a public page's redirect never reaches a loopback, private,
  link-local or unspecified address: the link is `excluded` with the reason, the
  internal service gets no request and nothing of it lands in a WARC. This holds
  for literals in the Location, for names that resolve there (DNS rebinding) and
  for a keep-alive connection opened earlier. `--connect-to` mappings count as
  public (the fault web plays the internet on loopback); `--allow-private` lifts
  the rule.

The internal service (faultweb/internal.py) counts every request and connection.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.abc import AbstractResolver
from helpers import hermetic_options, read_warc
from yarl import URL

import linkkeeper.check.resolver as resolver_module
from linkkeeper.check.checker import Checker
from linkkeeper.check.options import CheckOptions
from linkkeeper.check.resolver import (
    ConnectToResolver,
    PrivateAddressError,
    forbid_private,
    is_private_address,
    name_not_resolved,
    parse_connect_to,
)
from linkkeeper.check.result import CheckResult
from linkkeeper.faultweb import FaultWeb
from linkkeeper.faultweb.internal import SECRET, InternalService
from linkkeeper.vocab import Status

N = "http://news.example"


@pytest.fixture(scope="module")
def web() -> Iterator[FaultWeb]:
    with FaultWeb() as server:
        yield server


@pytest.fixture
def internal() -> Iterator[InternalService]:
    with InternalService() as service:
        yield service


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                 "all_proxy"):
        monkeypatch.delenv(name, raising=False)


def options(web: FaultWeb, **overrides: Any) -> CheckOptions:
    fast = {"attempts": 1, "connect_timeout": 2, "read_timeout": 2, "total_timeout": 5}
    return hermetic_options(web, **{**fast, **overrides})


async def check_all(opts: CheckOptions, urls: list[str]) -> dict[str, CheckResult]:
    async with Checker(opts) as checker:
        return {result.url: result async for result in checker.run(urls)}


def redirect_to(target: str, tag: str) -> str:
    return f"{N}/redirect-to?url={target}&code=302&t={tag}"


# -- item 4: --offline-dns contacts nothing unmapped -------------------------------------------


async def test_offline_dns_contacts_no_literal_and_no_local_name(
    web: FaultWeb, internal: InternalService
) -> None:
    port = internal.port
    urls = [
        f"http://127.0.0.1:{port}/x",
        f"http://localhost:{port}/y",
        f"http://LocalHost.:{port}/y2",
        f"http://app.localhost:{port}/z",
        f"http://[::ffff:127.0.0.1]:{port}/mapped-v6",
        f"http://[::1]:{port}/v6",
        f"{N}/ok/offline-control",
    ]
    results = await check_all(options(web), urls)
    assert internal.requests == [] and internal.connections == 0
    for url in urls[:-1]:
        got = results[url]
        assert got.status is Status.NETWORK_ERROR, (url, got.reason)
        assert got.reason.startswith("not contacted: --offline-dns and no --connect-to rule maps")
        assert str(port) in got.reason
    assert results[f"{N}/ok/offline-control"].status is Status.OK  # mapped hosts still work


async def test_offline_dns_also_refuses_a_redirect_to_an_unmapped_literal(
    web: FaultWeb, internal: InternalService
) -> None:
    url = redirect_to(internal.url("/behind"), "offline")
    got = (await check_all(options(web, allow_private=True), [url]))[url]
    assert internal.requests == [] and internal.connections == 0
    assert got.status is Status.NETWORK_ERROR and "not contacted" in got.reason


async def test_offline_dns_reaches_a_literal_that_a_rule_maps(
    web: FaultWeb, internal: InternalService
) -> None:
    """A rule may aim at any literal host (aiohttp skips resolvers for literals: not here)."""
    rules = [*web.connect_to_args(wildcard=False),
             f"136.23.63.44:80:127.0.0.1:{internal.port}"]
    url = "http://136.23.63.44/real-post-link"
    got = (await check_all(options(web, connect_to=rules), [url]))[url]
    assert got.status is Status.OK, got.reason
    assert internal.requests == ["HEAD /real-post-link"]


# -- item 5: no redirect from a public address into a private one ------------------------------


@pytest.mark.parametrize("private", ["127.0.0.1", "[::ffff:127.0.0.1]", "0.0.0.0", "[::]",
                                     "10.0.0.8", "169.254.169.254", "localhost"])
async def test_public_redirect_into_a_private_literal_is_excluded(
    web: FaultWeb, internal: InternalService, private: str
) -> None:
    target = str(URL(f"http://{private}:{internal.port}/admin"))  # as yarl writes it
    url = redirect_to(target, f"lit-{private}")
    got = (await check_all(options(web), [url]))[url]
    assert got.status is Status.EXCLUDED
    assert got.reason.startswith(f"redirects to {target}: private address ")
    assert got.reason.endswith("not followed from a public address (--allow-private follows it)")
    assert got.final_url == target
    assert internal.requests == [] and internal.connections == 0


class RebindingDNS(AbstractResolver):
    """Stands in for the system resolver: `rebind.example` is a public name aimed at loopback."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def resolve(self, host: str, port: int = 0, family: Any = socket.AF_INET) -> Any:
        self.asked.append(host)
        if host != "rebind.example":
            raise name_not_resolved(host)
        return [{"hostname": host, "host": "127.0.0.1", "port": port, "family": socket.AF_INET,
                 "proto": 0, "flags": socket.AI_NUMERICHOST}]

    async def close(self) -> None:
        return None


@pytest.fixture
def rebinding_dns(monkeypatch: pytest.MonkeyPatch) -> RebindingDNS:
    dns = RebindingDNS()
    monkeypatch.setattr(resolver_module, "DefaultResolver", lambda: dns)
    return dns


async def test_a_public_name_resolving_to_loopback_is_caught_where_it_connects(
    web: FaultWeb, internal: InternalService, rebinding_dns: RebindingDNS
) -> None:
    target = f"http://rebind.example:{internal.port}/internal"
    url = redirect_to(target, "rebind")
    got = (await check_all(options(web, offline_dns=False), [url]))[url]
    assert rebinding_dns.asked == ["rebind.example"]  # the URL text alone looked public
    assert got.status is Status.EXCLUDED
    assert got.reason == ("redirect from a public address into private address rebind.example "
                          "(127.0.0.1): not followed (--allow-private follows it)")
    assert internal.requests == [] and internal.connections == 0


async def test_a_kept_alive_connection_does_not_bypass_the_rule(
    web: FaultWeb, internal: InternalService, rebinding_dns: RebindingDNS
) -> None:
    """Cited directly, a private host is checked (intranets); reached by redirect, it is not."""
    direct = f"http://rebind.example:{internal.port}/cited-directly"
    via = redirect_to(f"http://rebind.example:{internal.port}/via-redirect", "pooled")
    async with Checker(options(web, offline_dns=False)) as checker:
        first = await checker.check(direct)
        second = await checker.check(via)
    assert first.status is Status.OK and internal.requests == ["HEAD /cited-directly"]
    assert second.status is Status.EXCLUDED, second.reason
    assert internal.requests == ["HEAD /cited-directly"]


async def test_allow_private_and_private_starts_keep_intranets_working(
    web: FaultWeb, internal: InternalService
) -> None:
    target = internal.url("/allowed")
    via_public = redirect_to(target, "allow")
    opts = options(web, offline_dns=False, allow_private=True)
    got = (await check_all(opts, [via_public]))[via_public]
    assert got.status is Status.REDIRECTED and internal.requests == ["HEAD /allowed"]
    # a private page redirecting within the private side is no public redirect at all
    private_start = internal.url("/intranet")
    got = (await check_all(options(web, offline_dns=False), [private_start]))[private_start]
    assert got.status is Status.OK


async def test_a_mapped_host_counts_as_public_and_as_a_fine_target(web: FaultWeb) -> None:
    """The fault web lives on loopback through --connect-to: its cross-host redirects work."""
    url = redirect_to("http://images.example/ok/mapped-target", "mapped")
    got = (await check_all(options(web), [url]))[url]
    assert got.status is Status.REDIRECTED, got.reason


async def test_the_resolver_guard_itself() -> None:
    resolver = ConnectToResolver(parse_connect_to(["mapped.example:80:127.0.0.1:1"]))
    resolver.check_forbidden("any.example", 80, ["127.0.0.1"])  # not in a forbidden hop
    with forbid_private(True):
        resolver.check_forbidden("mapped.example", 80, ["127.0.0.1"])  # a rule: public
        resolver.check_forbidden("public.example", 80, ["93.184.216.34"])
        for address in ("127.0.0.1", "::ffff:10.1.2.3", "0.0.0.0", "::", "fe80::1"):
            assert is_private_address(address)
            with pytest.raises(PrivateAddressError):
                resolver.check_forbidden("public.example", 80, [address])
    resolver.check_forbidden("public.example", 80, ["127.0.0.1"])  # reset after the block


# -- end to end: the cited page's redirect and the WARC ----------------------------------------

POST = """---
layout: post
title: "Internal"
date: 2024-01-02T00:00:00Z
from: {source}
---
[Internal]({source}) and [fine]({N}/ok/fine-e2e).
"""


def _check(site: Path, web: FaultWeb, *extra: str) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, "-m", "linkkeeper", "check", str(site), "--ca-bundle", web.ca_pem,
            "--attempts", "1", "--no-soft404", "--format", "json", "-o", str(site / "r.json")]
    for spec in web.connect_to_args(wildcard=False):  # every cited host mapped: no real DNS
        args += ["--connect-to", spec]
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("LINKKEEPER_") and "proxy" not in k.lower()}
    return subprocess.run([*args, *extra], capture_output=True, text=True, env=env, timeout=120)


def _site(root: Path, source: str) -> Path:
    (root / "_posts").mkdir(parents=True)
    (root / "_config.yml").write_text('url: "https://site.example"\n')
    (root / "_posts" / "2024-01-02-internal.md").write_text(POST.format(source=source, N=N))
    return root


def _warc_bytes(site: Path) -> bytes:
    return b"".join(
        record["payload"] + (record["uri"] or "").encode()
        for path in sorted((site / "warcs").rglob("*.warc.gz"))
        for record in read_warc(path)
    )


def test_check_never_follows_nor_archives_a_redirect_into_loopback(
    faultweb: FaultWeb, tmp_path: Path
) -> None:
    with InternalService() as internal:
        target = internal.url("/secret")
        site = _site(tmp_path / "site", redirect_to(target, "e2e"))
        done = _check(site, faultweb)
        assert done.returncode == 0, done.stderr
        assert internal.requests == [] and internal.connections == 0
        links = {rec["url"]: rec for rec in json.loads((site / "r.json").read_text())["links"]}
        cited = links[redirect_to(target, "e2e")]
        assert cited["status"] == "excluded"
        assert "private address 127.0.0.1: not followed from a public address" in cited["reason"]
        assert SECRET not in _warc_bytes(site)

        # --allow-private: followed and archived, as before issue 12 (what the default prevents)
        allowed = _site(tmp_path / "allowed", redirect_to(target, "e2e"))
        done = _check(allowed, faultweb, "--allow-private")
        assert done.returncode == 0, done.stderr
        assert internal.requests and SECRET in _warc_bytes(allowed)
