"""curl-style --connect-to parsing and the offline resolver."""

from __future__ import annotations

import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkkeeper.check.resolver import (
    ConnectTo,
    ConnectToError,
    ConnectToResolver,
    OfflineUnmapped,
    PrivateAddressError,
    is_private_address,
    parse_connect_to,
)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("news.example:80:127.0.0.1:8080", ConnectTo("news.example", 80, "127.0.0.1", 8080)),
        ("News.Example.:443:127.0.0.1:8443", ConnectTo("news.example", 443, "127.0.0.1", 8443)),
        ("::127.0.0.1:8080", ConnectTo(None, None, "127.0.0.1", 8080)),
        ("*:80:127.0.0.1:8080", ConnectTo(None, 80, "127.0.0.1", 8080)),
        ("a.example:443:[::1]:8443", ConnectTo("a.example", 443, "::1", 8443)),
        ("a.example:443:b.example:", ConnectTo("a.example", 443, "b.example", None)),
        ("a.example:443::8443", ConnectTo("a.example", 443, None, 8443)),
    ],
)
def test_parse(spec: str, expected: ConnectTo) -> None:
    assert ConnectTo.parse(spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("a.example:80:127.0.0.1", "expected HOST:PORT:CONNECT-TO-HOST:CONNECT-TO-PORT"),
        ("a.example:http:127.0.0.1:80", "invalid port 'http'"),
        ("a.example:80:127.0.0.1:70000", "invalid port '70000'"),
        ("a.example:80:[::1:80", "unbalanced"),
    ],
)
def test_parse_errors(spec: str, message: str) -> None:
    with pytest.raises(ConnectToError, match=message):
        ConnectTo.parse(spec)


hosts = st.from_regex(r"[a-z][a-z0-9-]{0,10}(\.[a-z]{2,5}){1,2}", fullmatch=True)
ports = st.integers(1, 65535)


@given(
    st.one_of(st.none(), hosts),
    st.one_of(st.none(), ports),
    st.one_of(st.none(), hosts, st.sampled_from(["127.0.0.1", "::1", "10.0.0.7"])),
    st.one_of(st.none(), ports),
)
def test_text_round_trips(
    host: str | None, port: int | None, target: str | None, target_port: int | None
) -> None:
    rule = ConnectTo(host, port, target, target_port)
    assert ConnectTo.parse(str(rule)) == rule


def test_unicode_host_names_match_their_idna_form() -> None:
    rule = ConnectTo.parse("bücher.example:80:127.0.0.1:8080")
    assert rule.host == "xn--bcher-kva.example"
    assert rule.matches("xn--bcher-kva.example", 80)


def test_matching_and_first_rule_wins() -> None:
    rules = parse_connect_to(["a.example:443:127.0.0.1:1", "::127.0.0.1:2"])
    assert rules[0].matches("A.EXAMPLE", 443)
    assert not rules[0].matches("a.example", 80)
    assert rules[1].matches("anything.example", 8080)


async def test_resolver_keeps_the_hostname_and_maps_the_address() -> None:
    resolver = ConnectToResolver(
        parse_connect_to(["secure.example:443:127.0.0.1:8443", "::127.0.0.1:8080"]), offline=True
    )
    [result] = await resolver.resolve("secure.example", 443)
    assert (result["hostname"], result["host"], result["port"]) == (
        "secure.example",
        "127.0.0.1",
        8443,
    )
    [other] = await resolver.resolve("news.example", 80)
    assert (other["hostname"], other["host"], other["port"]) == ("news.example", "127.0.0.1", 8080)
    assert resolver.addresses[("news.example", 80)] == ["127.0.0.1"]


async def test_offline_unmapped_name_fails_like_nxdomain() -> None:
    resolver = ConnectToResolver(parse_connect_to(["a.example:80:127.0.0.1:1"]), offline=True)
    with pytest.raises(socket.gaierror) as caught:
        await resolver.resolve("nowhere.example", 80)
    assert caught.value.errno == socket.EAI_NONAME
    with pytest.raises(socket.gaierror):
        await resolver.resolve("a.example", 443)  # rule is for port 80 only


@pytest.mark.parametrize(
    "host", ["127.0.0.2", "136.23.63.44", "::1", "[::1]", "::ffff:127.0.0.1", "localhost",
             "LocalHost.", "app.localhost"],
)
async def test_offline_contacts_no_literal_or_local_name_unless_mapped(host: str) -> None:
    """Issue 12: under --offline-dns nothing is reached that --connect-to does not map."""
    resolver = ConnectToResolver(offline=True)
    with pytest.raises(OfflineUnmapped) as caught:
        await resolver.resolve(host, 80)
    assert caught.value.reason.startswith("not contacted: --offline-dns and no --connect-to rule")
    rule_host = f"[{host}]" if ":" in host and not host.startswith("[") else host
    mapped = ConnectToResolver(parse_connect_to([f"{rule_host}:80:127.0.0.1:8080"]), offline=True)
    assert [r["port"] for r in await mapped.resolve(host, 80)] == [8080]


async def test_online_still_knows_literals_and_localhost() -> None:
    resolver = ConnectToResolver()
    assert [r["host"] for r in await resolver.resolve("127.0.0.2", 80)] == ["127.0.0.2"]
    assert [r["host"] for r in await resolver.resolve("localhost", 80)] == ["127.0.0.1", "::1"]


async def test_exclude_private_refuses_private_targets() -> None:
    resolver = ConnectToResolver(
        parse_connect_to(["::127.0.0.1:8080"]), offline=True, exclude_private=True
    )
    with pytest.raises(PrivateAddressError, match=r"127\.0\.0\.1"):
        await resolver.resolve("news.example", 80)


@pytest.mark.parametrize(
    ("address", "private"),
    [
        ("10.1.2.3", True),
        ("192.168.0.1", True),
        ("172.16.5.4", True),
        ("127.0.0.1", True),
        ("169.254.1.1", True),
        ("::1", True),
        ("fe80::1%eth0", True),
        ("fd00::1", True),
        ("::ffff:10.0.0.1", True),
        ("0.0.0.0", True),
        ("93.184.216.34", False),
        ("2606:2800:220:1::1", False),
        ("not-an-ip", False),
    ],
)
def test_is_private_address(address: str, private: bool) -> None:
    assert is_private_address(address) is private
