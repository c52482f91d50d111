"""The fault-injection web plays each behaviour exactly, on loopback, and counts what clients do.

Clients here are plain aiohttp sessions with the web's own resolver (no system
DNS) or raw sockets where the wire format matters (chunks, HEAD bodies, resets).
"""

from __future__ import annotations

import asyncio
import email.utils
import gzip
import json
import logging
import os
import signal
import socket
import ssl
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import brotli
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from yarl import URL

from linkkeeper.faultweb import (
    CLOSED_HOST,
    EXPIRED_HOST,
    UNRESOLVABLE_HOST,
    WRONG_NAME_HOST,
    Behaviour,
    FaultResolver,
    FaultWeb,
    Hit,
    bodies,
    max_overlap,
)
from linkkeeper.faultweb.server import virtual_host

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
async def client(faultweb: FaultWeb) -> AsyncIterator[aiohttp.ClientSession]:
    """A session that trusts the web's CA and reaches every name through its resolver."""
    context = ssl.create_default_context(cafile=faultweb.ca_pem)
    connector = aiohttp.TCPConnector(resolver=faultweb.resolver(), ssl=context)
    async with aiohttp.ClientSession(connector=connector) as session:
        yield session


def raw_exchange(port: int, request: bytes, timeout: float = 5.0) -> tuple[bytes, bytes]:
    """Send raw bytes, read until the server closes; return (head, rest) split at the blank line."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def raw_get(port: int, host: str, path: str, method: str = "GET") -> tuple[bytes, bytes]:
    return raw_exchange(
        port, f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
    )


def header(head: bytes, name: str) -> str | None:
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name.lower().encode():
            return value.strip().decode()
    return None


def dechunk(data: bytes) -> tuple[bytes, int]:
    """Decode chunked transfer coding; returns (body, number of chunks)."""
    body, chunks = b"", 0
    while True:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return body, chunks
        body, data, chunks = body + data[:size], data[size + 2 :], chunks + 1


# -- pages, images, statuses ------------------------------------------------------------------


async def test_ok_page_is_an_article_titled_from_its_path(faultweb: FaultWeb, client) -> None:
    async with client.get("http://news.example/ok/2023/city-council-votes") as response:
        body = await response.read()
    assert response.status == 200
    assert response.content_type == "text/html"
    assert b"<title>City Council Votes | News Example</title>" in body
    assert body == faultweb.payload_for("news.example", "/ok/2023/city-council-votes")


async def test_payload_for_accepts_the_path_as_written_in_a_url(faultweb: FaultWeb, client) -> None:
    async with client.get(
        URL("http://news.example/ok/caf%C3%A9%20noir?ref=rss", encoded=True)
    ) as response:
        body = await response.read()
    assert body == faultweb.payload_for("news.example", "/ok/caf%C3%A9%20noir?ref=rss")
    assert body == faultweb.payload_for("News.Example", "/ok/café noir")
    assert faultweb.request_count("news.example", "/ok/caf%C3%A9%20noir") == 1


async def test_home_page_lists_stories(client) -> None:
    async with client.get("https://news.example/") as response:
        assert response.status == 200
        assert 'class="stories"' in await response.text()


def test_head_sends_the_same_headers_and_no_body(faultweb: FaultWeb) -> None:
    get_head, get_body = raw_get(faultweb.http_port, "news.example", "/ok/a")
    head_head, head_body = raw_get(faultweb.http_port, "news.example", "/ok/a", method="HEAD")
    assert head_head.startswith(b"HTTP/1.1 200")
    assert head_body == b""
    assert (
        header(head_head, "Content-Length")
        == header(get_head, "Content-Length")
        == str(len(get_body))
    )
    assert header(head_head, "Content-Type") == header(get_head, "Content-Type")


@pytest.mark.parametrize(
    ("extension", "content_type", "magic"),
    [
        ("png", "image/png", b"\x89PNG\r\n\x1a\n"),
        ("gif", "image/gif", b"GIF89a"),
        ("jpg", "image/jpeg", b"\xff\xd8\xff"),
        ("webp", "image/webp", b"RIFF"),
    ],
)
async def test_images_have_their_type(
    faultweb: FaultWeb, client, extension, content_type, magic
) -> None:
    async with client.get(f"http://images.example/img/lead.{extension}") as response:
        data = await response.read()
    assert response.status == 200
    assert response.headers["Content-Type"] == content_type
    assert data.startswith(magic)
    assert data == faultweb.payload_for("images.example", f"/img/lead.{extension}")


def test_png_is_well_formed() -> None:
    data = bodies.png_image(seed=42, size=16)
    offset, chunks = 8, {}
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        content = data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert crc == zlib.crc32(kind + content)
        chunks[kind] = content
        offset += 12 + length
    assert list(chunks) == [b"IHDR", b"IDAT", b"IEND"]
    assert struct.unpack(">II", chunks[b"IHDR"][:8]) == (16, 16)
    assert len(zlib.decompress(chunks[b"IDAT"])) == 16 * (1 + 16 * 3)


def test_jpeg_has_one_baseline_8x8_frame() -> None:
    data = bodies.jpeg_image(seed=7)
    assert data.startswith(b"\xff\xd8") and data.endswith(b"\xff\xd9")
    sof = data.index(b"\xff\xc0")
    assert struct.unpack(">BHHB", data[sof + 4 : sof + 10]) == (8, 8, 8, 1)


@pytest.mark.parametrize("code", [400, 404, 410, 451, 500, 502])
async def test_status_paths_answer_that_status(client, code) -> None:
    async with client.get(f"http://news.example/status/{code}/story") as response:
        assert response.status == code
        assert str(code) in await response.text()


async def test_status_204_has_no_body(client) -> None:
    async with client.get("http://news.example/status/204/x") as response:
        assert response.status == 204
        assert await response.read() == b""


async def test_unknown_paths_are_404_and_bad_arguments_400(client) -> None:
    async with client.get("http://news.example/nothing/here") as response:
        assert response.status == 404
    async with client.get("http://news.example/flaky/many/x") as response:
        assert response.status == 400
        assert "integer" in await response.text()


# -- recovering failures --------------------------------------------------------------------


async def test_flaky_recovers_after_k_requests_per_host_and_path(
    faultweb: FaultWeb, client
) -> None:
    statuses = []
    for _ in range(4):
        async with client.get("http://news.example/flaky/2/a") as response:
            statuses.append(response.status)
    assert statuses == [503, 503, 200, 200]
    async with client.get("http://blog.example/flaky/2/a") as response:
        assert response.status == 503  # another host keeps its own count
    assert faultweb.request_count("news.example", "/flaky/2/a") == 4


async def test_ratelimit_sends_retry_after_seconds_then_recovers(client) -> None:
    async with client.get("http://news.example/ratelimit/3/1/a") as response:
        assert response.status == 429
        assert response.headers["Retry-After"] == "3"
    async with client.get("http://news.example/ratelimit/3/1/a") as response:
        assert response.status == 200


async def test_ratelimit_date_sends_an_http_date_far_enough_ahead(client) -> None:
    async with client.get("http://news.example/ratelimit-date/5/1/a") as response:
        assert response.status == 429
        when = email.utils.parsedate_to_datetime(response.headers["Retry-After"])
    assert when.timestamp() >= time.time() + 5 - 1e-3


@pytest.mark.parametrize("code", [403, 404, 405, 501])
async def test_head_refused_while_get_works(client, code) -> None:
    async with client.head(f"http://news.example/head/{code}/a") as response:
        assert response.status == code
        if code == 405:
            assert response.headers["Allow"] == "GET"
    async with client.get(f"http://news.example/head/{code}/a") as response:
        assert response.status == 200


# -- redirects --------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
async def test_redirect_chain_of_n_hops_ends_at_ok(client, code) -> None:
    async with client.get(f"https://news.example/redirect/{code}/3/2019/story") as response:
        assert response.status == 200
        assert str(response.url) == "https://news.example/ok/2019/story"
        assert [r.status for r in response.history] == [code] * 3
        assert (
            response.history[0].headers["Location"]
            == f"https://news.example/redirect/{code}/2/2019/story"
        )


@settings(max_examples=40, deadline=None)
@given(
    hops=st.integers(min_value=1, max_value=4),
    rest=st.lists(st.from_regex(r"[a-z0-9 é%?#-]{1,8}", fullmatch=True), min_size=1, max_size=4),
)
def test_relative_redirects_resolve_to_the_next_hop(faultweb_session: FaultWeb, hops, rest) -> None:
    tail = "/".join(rest)
    url = URL.build(
        scheme="http", host="news.example", path=f"/redirect-relative/302/{hops}/{tail}"
    )
    for remaining in range(hops, 0, -1):
        head, _ = raw_get(faultweb_session.http_port, "news.example", url.raw_path)
        location = header(head, "Location")
        assert location is not None and not location.startswith(("/", "http"))
        url = url.join(URL(location))
        expected = (
            f"/redirect-relative/302/{remaining - 1}/{tail}" if remaining > 1 else f"/ok/{tail}"
        )
        assert url.path == expected


async def test_redirect_to_goes_across_hosts(client) -> None:
    async with client.get(
        "http://news.example/redirect-to",
        params={"url": "https://secure.example/ok/moved", "code": "301"},
    ) as response:
        assert response.status == 200
        assert str(response.url) == "https://secure.example/ok/moved"
        assert response.history[0].status == 301


async def test_loop_cycles_through_n_distinct_urls(client) -> None:
    seen = []
    url = "http://news.example/loop/3/x"
    for _ in range(4):
        async with client.get(url, allow_redirects=False) as response:
            assert response.status == 302
            seen.append(url)
            url = response.headers["Location"]
    assert len(set(seen[:3])) == 3
    assert seen[3] == seen[0]


# -- bot blocks -------------------------------------------------------------------------------


async def test_bot_blocks(client) -> None:
    async with client.get("http://social.example/block/401/p") as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Basic")
    async with client.get("http://social.example/block/403/p") as response:
        assert response.status == 403
        assert "cf-mitigated" not in response.headers
    async with client.get("http://social.example/block/999/p") as response:
        assert response.status == 999
    async with client.get("http://social.example/block/cf/p") as response:
        assert response.status == 403
        assert response.headers["cf-mitigated"] == "challenge"
        assert "Just a moment" in await response.text()


# -- time -------------------------------------------------------------------------------------


async def test_slow_waits_before_answering(client) -> None:
    started = time.monotonic()
    async with client.get("http://news.example/slow/300/a") as response:
        assert response.status == 200
    assert time.monotonic() - started >= 0.3


async def test_slow_body_sends_headers_at_once_then_trickles(faultweb: FaultWeb, client) -> None:
    started = time.monotonic()
    async with client.get("http://news.example/slow-body/400/a") as response:
        headers_after = time.monotonic() - started
        body = await response.read()
    assert headers_after < 0.2
    assert time.monotonic() - started >= 0.4
    assert body == faultweb.payload_for("news.example", "/slow-body/400/a")


async def test_hang_never_answers_and_ends_when_the_client_leaves(
    faultweb: FaultWeb, client
) -> None:
    with pytest.raises(asyncio.TimeoutError):
        async with client.get(
            "http://news.example/hang/a", timeout=aiohttp.ClientTimeout(total=0.3)
        ):
            pass
    deadline = time.monotonic() + 2
    while faultweb.requests(path="/hang/a")[0].t_end is None and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    entry = faultweb.requests(path="/hang/a")[0]
    assert entry.t_end is not None, "the handler task outlived its client"
    assert entry.status is None


def test_stop_does_not_wait_for_hanging_requests() -> None:
    web = FaultWeb().start()
    sock = socket.create_connection(("127.0.0.1", web.http_port))
    sock.sendall(b"GET /hang/a HTTP/1.1\r\nHost: news.example\r\n\r\n")
    time.sleep(0.1)
    started = time.monotonic()
    web.stop()
    assert time.monotonic() - started < 2
    sock.close()


# -- broken transfers -------------------------------------------------------------------------


async def test_reset_cuts_the_body_with_a_tcp_reset(faultweb: FaultWeb, client) -> None:
    with pytest.raises(aiohttp.ClientPayloadError):
        async with client.get("http://news.example/reset/a") as response:
            assert response.status == 200
            await response.read()
    with (
        socket.create_connection(("127.0.0.1", faultweb.http_port), timeout=5) as sock,
        pytest.raises(ConnectionResetError),
    ):
        sock.sendall(b"GET /reset/b HTTP/1.1\r\nHost: news.example\r\n\r\n")
        while sock.recv(65536):
            pass


def test_reset_sends_half_the_body_first(faultweb: FaultWeb) -> None:
    received = b""
    with socket.create_connection(("127.0.0.1", faultweb.http_port), timeout=5) as sock:
        sock.sendall(b"GET /reset/c HTTP/1.1\r\nHost: news.example\r\n\r\n")
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass
    body = received.partition(b"\r\n\r\n")[2]
    assert body == faultweb.payload_for("news.example", "/reset/c")
    assert len(body) < int(header(received.partition(b"\r\n\r\n")[0], "Content-Length") or 0)


def test_bad_length_promises_more_than_it_sends_then_closes(faultweb: FaultWeb) -> None:
    head, body = raw_get(faultweb.http_port, "news.example", "/bad-length/a")
    assert int(header(head, "Content-Length") or 0) > len(body)
    assert body == faultweb.payload_for("news.example", "/bad-length/a")


async def test_gzip_and_brotli_bodies_are_encoded_on_the_wire(faultweb: FaultWeb) -> None:
    connector = aiohttp.TCPConnector(resolver=faultweb.resolver())
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as session:
        async with session.get("http://news.example/gzip/a") as response:
            assert response.headers["Content-Encoding"] == "gzip"
            raw_gzip = await response.read()
        async with session.get("http://news.example/brotli/a") as response:
            assert response.headers["Content-Encoding"] == "br"
            raw_brotli = await response.read()
    assert raw_gzip == faultweb.payload_for("news.example", "/gzip/a")
    assert raw_brotli == faultweb.payload_for("news.example", "/brotli/a")
    assert gzip.decompress(raw_gzip) == bodies.article_html("news.example", "/gzip/a")
    assert brotli.decompress(raw_brotli) == bodies.article_html("news.example", "/brotli/a")


def test_encoding_is_skipped_only_when_the_client_refuses_it(faultweb: FaultWeb) -> None:
    def fetch(path: str, accept: str | None) -> tuple[bytes, bytes]:
        line = f"Accept-Encoding: {accept}\r\n" if accept is not None else ""
        request = f"GET {path} HTTP/1.1\r\nHost: news.example\r\n{line}Connection: close\r\n\r\n"
        return raw_exchange(faultweb.http_port, request.encode())

    for accept in (None, "gzip", "br;q=0.5, gzip", "*"):
        head, body = fetch("/gzip/e", accept)
        assert header(head, "Content-Encoding") == "gzip"
        assert body == faultweb.payload_for("news.example", "/gzip/e")
    for accept in ("identity", "gzip;q=0", "br", "*;q=0"):
        head, body = fetch("/gzip/e", accept)
        assert header(head, "Content-Encoding") is None
        assert body == bodies.article_html("news.example", "/gzip/e")
    head, _ = fetch("/brotli/e", "gzip, deflate, br")
    assert header(head, "Content-Encoding") == "br"


def test_chunked_is_chunked_on_the_wire(faultweb: FaultWeb) -> None:
    head, rest = raw_get(faultweb.http_port, "news.example", "/chunked/a")
    assert header(head, "Transfer-Encoding") == "chunked"
    assert header(head, "Content-Length") is None
    body, chunks = dechunk(rest)
    assert chunks > 1
    assert body == faultweb.payload_for("news.example", "/chunked/a")


async def test_large_body_has_the_exact_size_and_bytes(faultweb: FaultWeb, client) -> None:
    size = 3 * 1024 * 1024 + 17
    digest_stream = bytearray()
    async with client.get(f"http://cdn.example/large/{size}/video.bin") as response:
        assert response.content_length == size
        async for piece in response.content.iter_chunked(1 << 16):
            digest_stream += piece
    assert bytes(digest_stream) == faultweb.payload_for("cdn.example", f"/large/{size}/video.bin")


async def test_a_client_that_stops_reading_is_not_a_server_error(
    faultweb: FaultWeb, client, caplog: pytest.LogCaptureFixture
) -> None:
    async with client.get("http://cdn.example/large/50000000/a") as response:
        await response.content.read(100_000)
        response.close()
    deadline = time.monotonic() + 2
    while faultweb.requests(path="/large/50000000/a")[0].t_end is None:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    assert faultweb.requests(path="/large/50000000/a")[0].status == 200
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_changing_page_differs_every_time(faultweb: FaultWeb, client) -> None:
    seen = []
    for _ in range(2):
        async with client.get("http://news.example/changing/a") as response:
            seen.append(await response.read())
    assert seen[0] != seen[1]
    assert faultweb.payload_for("news.example", "/changing/a") == seen[1]


def test_payloads_are_deterministic_across_servers() -> None:
    with FaultWeb() as one, FaultWeb() as two:
        for path in ("/ok/x", "/gzip/x", "/img/a.png", "/status/404/x", "/large/100000/x"):
            assert one.payload_for("news.example", path) == two.payload_for("news.example", path)


@settings(max_examples=200)
@given(st.text(max_size=60))
def test_any_path_gives_an_escaped_title(path: str) -> None:
    html = bodies.article_html("news.example", "/ok/" + path)
    title = html.split(b"<title>", 1)[1].split(b"</title>", 1)[0]
    assert b"<" not in title
    assert html == bodies.article_html("news.example", "/ok/" + path)


@settings(max_examples=100, deadline=None)  # large bodies: time depends on the machine's load
@given(
    size=st.integers(min_value=0, max_value=300_000),
    piece=st.integers(min_value=1, max_value=70_000),
)
def test_large_pieces_add_up_to_the_size(size: int, piece: int) -> None:
    parts = list(bodies.iter_large("h", "/large/x", size, piece))
    assert sum(map(len, parts)) == size
    assert all(0 < len(p) <= piece for p in parts)


# -- TLS, refused, unresolvable -----------------------------------------------------------------


async def test_tls_good_certificate_for_every_served_host(faultweb: FaultWeb, client) -> None:
    for host in faultweb.hosts[:3]:
        async with client.get(f"https://{host}/ok/a") as response:
            assert response.status == 200
    assert faultweb.requests(host="news.example")[0].scheme == "https"


async def test_tls_without_the_ca_fails_verification(faultweb: FaultWeb) -> None:
    connector = aiohttp.TCPConnector(
        resolver=faultweb.resolver(), ssl=ssl.create_default_context(cafile=None, cadata=None)
    )
    async with aiohttp.ClientSession(connector=connector) as session:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await session.get("https://secure.example/ok/a")


async def test_tls_expired_certificate(client) -> None:
    with pytest.raises(aiohttp.ClientConnectorCertificateError) as error:
        await client.get(f"https://{EXPIRED_HOST}/ok/a")
    assert "expired" in str(error.value)


async def test_tls_certificate_for_another_name(client) -> None:
    with pytest.raises(aiohttp.ClientConnectorCertificateError) as error:
        await client.get(f"https://{WRONG_NAME_HOST}/ok/a")
    assert "match" in str(error.value) or "mismatch" in str(error.value)


async def test_closed_port_refuses(client) -> None:
    with pytest.raises(aiohttp.ClientConnectorError) as error:
        await client.get(f"http://{CLOSED_HOST}/ok/a")
    assert isinstance(error.value.os_error, ConnectionRefusedError)


async def test_unmapped_name_does_not_resolve(faultweb: FaultWeb) -> None:
    connector = aiohttp.TCPConnector(resolver=faultweb.resolver(wildcard=False))
    async with aiohttp.ClientSession(connector=connector) as session:
        with pytest.raises(aiohttp.ClientConnectorDNSError):
            await session.get(f"http://{UNRESOLVABLE_HOST}/ok/a")


def test_connect_to_args_map_every_host_and_special_port(faultweb: FaultWeb) -> None:
    entries = faultweb.connect_to_args()
    assert f"news.example:80:127.0.0.1:{faultweb.http_port}" in entries
    assert f"news.example:443:127.0.0.1:{faultweb.https_port}" in entries
    assert f"{EXPIRED_HOST}:443:127.0.0.1:{faultweb.https_expired_port}" in entries
    assert f"{WRONG_NAME_HOST}:443:127.0.0.1:{faultweb.https_wrongname_port}" in entries
    assert f"{CLOSED_HOST}:80:127.0.0.1:{faultweb.closed_port}" in entries
    assert entries[-2:] == [
        f"*:80:127.0.0.1:{faultweb.http_port}",
        f"*:443:127.0.0.1:{faultweb.https_port}",
    ]
    assert not any(e.startswith("*") for e in faultweb.connect_to_args(wildcard=False))
    assert Path(faultweb.ca_pem).read_text().startswith("-----BEGIN CERTIFICATE-----")


@given(
    host=st.from_regex(r"(\*|[a-z0-9-]{1,12}(\.[a-z0-9-]{1,12}){0,3})", fullmatch=True),
    port=st.integers(1, 65535),
    address=st.sampled_from(["127.0.0.1", "[::1]", "10.0.0.5"]),
    target_port=st.integers(1, 65535),
)
def test_connect_to_rules_route_the_fault_web(host, port, address, target_port) -> None:
    """The fault web reads --connect-to with the product's parser: a rule routes its host."""
    resolver = FaultResolver.from_connect_to([f"{host}:{port}:{address}:{target_port}"])
    name = "any.example" if host == "*" else host
    assert resolver.lookup(name, port) == (address.strip("[]"), target_port)


async def test_resolver_maps_ports_and_never_falls_back_to_dns() -> None:
    resolver = FaultResolver.from_connect_to(
        ["a.example:443:127.0.0.1:9443", "*:80:127.0.0.1:9080"]
    )
    (answer,) = await resolver.resolve("A.example", 443)
    assert (answer["hostname"], answer["host"], answer["port"]) == ("A.example", "127.0.0.1", 9443)
    (answer,) = await resolver.resolve("other.example", 80)
    assert answer["port"] == 9080
    with pytest.raises(socket.gaierror):
        await resolver.resolve("other.example", 443)


# -- virtual hosts, latency, extension ----------------------------------------------------------


@given(st.sampled_from(["News.Example", "news.example:8080", "news.example.", "[::1]:80", "::1"]))
def test_virtual_host_normalises_the_host_header(authority: str) -> None:
    assert virtual_host(authority) in ("news.example", "::1")


async def test_unknown_hosts_behave_like_the_others(faultweb: FaultWeb, client) -> None:
    async with client.get("http://whatever.test/status/410/a") as response:
        assert response.status == 410
    assert faultweb.requests(host="whatever.test")[0].status == 410


@pytest.mark.faultweb(latency={"slow.example": 150, "news.example": (40, 60)}, default_latency=0)
async def test_latency_is_per_host(faultweb: FaultWeb, client) -> None:
    for host in ("slow.example", "news.example", "blog.example"):
        started = time.monotonic()
        async with client.get(f"http://{host}/ok/a") as response:
            assert response.status == 200
        if host == "slow.example":
            assert time.monotonic() - started >= 0.15
    # The server's own timings: free of client-side scheduling noise.
    served = {e.host: e.t_end - e.t_start for e in faultweb.log if e.t_end is not None}
    assert served["slow.example"] >= 0.15
    assert 0.04 <= served["news.example"] < 0.15
    assert served["blog.example"] < 0.04


async def test_behaviours_can_be_added_per_host(faultweb: FaultWeb, client) -> None:
    from aiohttp import web

    async def soft_404(hit: Hit) -> web.StreamResponse:
        return web.Response(text="Sorry, we could not find that story.", content_type="text/html")

    faultweb.add_behaviour(Behaviour("*", soft_404), host="soft.example")
    async with client.get("http://soft.example/gone/story") as response:
        assert response.status == 200
    async with client.get("http://news.example/gone/story") as response:
        assert response.status == 404


# -- the request log and politeness accounting ---------------------------------------------------


async def test_log_records_each_request(faultweb: FaultWeb, client) -> None:
    async with client.get("http://news.example/ok/a?x=1", headers={"User-Agent": "probe/1"}):
        pass
    async with client.head("http://news.example/ok/a"):
        pass
    (get,) = faultweb.requests(host="news.example", path="/ok/a", method="GET")
    assert (get.method, get.path, get.status, get.user_agent) == (
        "GET",
        "/ok/a?x=1",
        200,
        "probe/1",
    )
    assert get.t_start <= get.t_end
    assert len(faultweb.request_times("news.example", "/ok/a")) == 2
    assert faultweb.requests(path="/ok/a?x=1") == [get]
    faultweb.reset_log()
    assert faultweb.log == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/ok/a"),
        ("HEAD", "/ok/a"),
        ("GET", "/chunked/a"),
        ("HEAD", "/chunked/a"),
        ("GET", "/large/200000/a"),
        ("GET", "/slow-body/20/a"),
        ("GET", "/flaky/1/a"),
        ("GET", "/redirect/302/1/a"),
    ],
)
async def test_a_request_is_logged_done_before_the_client_sees_it_done(
    faultweb: FaultWeb, client, method: str, path: str
) -> None:
    """So a client that starts its next request at once is never counted as overlapping."""
    for _ in range(5):
        async with client.request(method, f"http://news.example{path}", allow_redirects=False) as r:
            await r.read()
        last = faultweb.requests(path=path)[-1]
        assert last.t_end is not None and last.status == r.status
    assert faultweb.max_concurrent_requests("news.example") == 1


@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_connection_accounting_is_exact_with_a_connection_limit(
    faultweb: FaultWeb, scheme: str
) -> None:
    limit = 3
    connector = aiohttp.TCPConnector(
        resolver=faultweb.resolver(),
        limit_per_host=limit,
        ssl=ssl.create_default_context(cafile=faultweb.ca_pem),
    )
    async with aiohttp.ClientSession(connector=connector) as session:

        async def fetch(i: int) -> int:
            async with session.get(f"{scheme}://news.example/slow/80/{i}") as response:
                await response.read()
                return response.status

        assert await asyncio.gather(*(fetch(i) for i in range(4 * limit))) == [200] * (4 * limit)
    assert faultweb.max_concurrent_connections("news.example") == limit
    assert faultweb.max_concurrent_requests("news.example") == limit
    assert len({entry.connection for entry in faultweb.requests(host="news.example")}) == limit
    assert faultweb.max_concurrent_connections("blog.example") == 0
    stats = faultweb.stats()["hosts"]["news.example"]
    assert stats == {
        "requests": 4 * limit,
        "connections": limit,
        "max_concurrent_connections": limit,
        "max_concurrent_requests": limit,
    }


def test_connection_accounting_counts_idle_open_sockets_per_host(faultweb: FaultWeb) -> None:
    def open_with_request(host: str) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", faultweb.http_port))
        sock.sendall(f"GET /ok/a HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        return sock

    news = [open_with_request("news.example") for _ in range(5)]
    blog = [open_with_request("blog.example") for _ in range(2)]
    # A later request for another host does not move the connection: first request wins.
    news[0].sendall(b"GET /ok/b HTTP/1.1\r\nHost: blog.example\r\n\r\n")
    assert news[0].recv(65536).startswith(b"HTTP/1.1 200")
    for sock in news[:3]:
        sock.close()
    deadline = time.monotonic() + 2
    while (
        sum(c.closed is not None for c in faultweb.connections) < 3 and time.monotonic() < deadline
    ):
        time.sleep(0.01)
    news.append(open_with_request("news.example"))  # peak stays 5: three closed before
    assert faultweb.max_concurrent_connections("news.example") == 5
    assert faultweb.max_concurrent_connections("blog.example") == 2
    assert faultweb.max_concurrent_connections() == 7
    for sock in news[3:] + blog:
        sock.close()


async def test_request_times_show_the_wait_after_a_429(faultweb: FaultWeb, client) -> None:
    async with client.get("http://news.example/ratelimit/1/1/z") as response:
        wait = int(response.headers["Retry-After"])
    await asyncio.sleep(wait)
    async with client.get("http://news.example/ratelimit/1/1/z") as response:
        assert response.status == 200
    first, second = faultweb.request_times("news.example", "/ratelimit/1/1/z")
    assert second - first >= wait


def test_max_overlap() -> None:
    assert max_overlap([]) == 0
    assert max_overlap([(1, 4), (2, 3), (5, 6)]) == 2
    assert max_overlap([(1, 2), (3, None), (4, None)]) == 2


# -- as a process -------------------------------------------------------------------------------


def test_runs_as_a_process_and_writes_its_log(tmp_path: Path) -> None:
    state, log, stats = tmp_path / "fw.json", tmp_path / "fw.jsonl", tmp_path / "stats.json"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "linkkeeper.faultweb",
            "--latency",
            "news.example=5-10",
            "--state-file",
            str(state),
            "--log",
            str(log),
            "--stats",
            str(stats),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert process.stdout is not None
        info = json.loads(process.stdout.readline())
        assert json.loads(state.read_text()) == info
        assert Path(info["ca_pem"]).exists()
        head, _ = raw_get(info["http_port"], "news.example", "/status/410/x")
        assert head.startswith(b"HTTP/1.1 410")
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    (entry,) = [json.loads(line) for line in log.read_text().splitlines()]
    assert (entry["host"], entry["path"], entry["status"]) == ("news.example", "/status/410/x", 410)
    assert not state.exists()
    assert json.loads(stats.read_text())["hosts"]["news.example"]["max_concurrent_connections"] == 1


def test_cli_lists_the_behaviours() -> None:
    from linkkeeper.faultweb.__main__ import behaviour_table, parse_latency

    table = behaviour_table()
    assert "/ratelimit-date" in table and "/hang" in table and "(other)" in table
    assert parse_latency("20-100") == (20.0, 100.0)
    assert parse_latency("50") == 50.0


def test_hosts_no_certificate_can_hold_are_still_served_over_http() -> None:
    with FaultWeb(hosts=["odd_name.example", "news.example"]) as web:
        head, _ = raw_get(web.http_port, "odd_name.example", "/ok/a")
        assert head.startswith(b"HTTP/1.1 200")
        assert f"odd_name.example:80:127.0.0.1:{web.http_port}" in web.connect_to_args()


@pytest.mark.faultweb(
    hosts=["busy.example", "news.example"], latency={"busy.example": 100},
    capacity={"busy.example": 2}, shed={"news.example": 3},
)
async def test_capacity_queues_and_shed_answers_429(
    faultweb: FaultWeb, client: aiohttp.ClientSession
) -> None:
    """A real server's limits: a worker pool (capacity) and a rate limiter (shed)."""

    async def get(url: str) -> int:
        async with client.get(url) as response:
            await response.read()
            return response.status

    started = time.monotonic()
    statuses = await asyncio.gather(*(get(f"http://busy.example/ok/{i}") for i in range(6)))
    assert statuses == [200] * 6
    # six requests, two at a time, 100 ms each: three rounds
    assert time.monotonic() - started >= 0.3
    assert faultweb.stats()["shed"] == 0

    faultweb.add_behaviour(Behaviour("hold", _hold), host="news.example")
    statuses = await asyncio.gather(*(get(f"http://news.example/hold/{i}") for i in range(6)))
    assert sorted(statuses) == [200, 200, 200, 429, 429, 429]
    assert faultweb.stats()["shed"] == 3
    async with client.get("http://news.example/status/404/x") as response:
        assert response.status == 404  # once the house is empty, answers as usual


async def _hold(hit: Hit) -> aiohttp.web.StreamResponse:
    await asyncio.sleep(0.2)
    return aiohttp.web.Response(text="held")
