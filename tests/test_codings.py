"""Content codings removed the same way everywhere (samples, robots.txt, replay --body), and
always within the caller's limit: bombs stop at the limit, for every coding and every layer."""

from __future__ import annotations

import gzip
import lzma
import tracemalloc
import zlib

import brotli
import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkkeeper import codings
from linkkeeper.codings import (
    CHUNK,
    DecodedTooLarge,
    UnsupportedEncoding,
    content_codings,
    decode_content,
    decoded_prefix,
    decoded_size,
    iter_decoded,
)
from linkkeeper.faultweb.hostile import BOMB_CODINGS, bomb_body

ENCODERS = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "br": brotli.compress,
    "identity": lambda b: b,
}
BIG = 1 << 30


@given(st.binary(max_size=4000), st.lists(st.sampled_from(sorted(ENCODERS)), max_size=3),
       st.integers(min_value=1, max_value=5000))
def test_round_trip_and_prefix(data: bytes, codings_: list[str], limit: int) -> None:
    encoded = data
    for coding in codings_:
        encoded = ENCODERS[coding](encoded)
    header = ", ".join(codings_)
    assert decode_content(encoded, header, BIG) == data
    assert decoded_prefix(encoded, header, limit) == data[:limit]
    if len(data) > limit:
        with pytest.raises(DecodedTooLarge):
            decode_content(encoded, header, limit)
    else:
        assert decoded_size(encoded, header, limit) == len(data)


def test_raw_deflate_strict_errors_and_lenient_prefix() -> None:
    raw = zlib.compressobj(wbits=-15)
    body = raw.compress(b"hello") + raw.flush()
    assert decode_content(body, "deflate", 100) == b"hello"
    assert decode_content(gzip.compress(b"hi"), "x-gzip", 100) == b"hi"
    assert content_codings(" GZIP , br ") == ["gzip", "br"]
    with pytest.raises(UnsupportedEncoding):
        decode_content(b"not gzip", "gzip", 100)
    with pytest.raises(UnsupportedEncoding, match="not supported"):
        decode_content(b"x", "compress", 100)
    assert decoded_prefix(b"not gzip", "gzip", 100) == b""
    assert decoded_prefix(b"plain", None, 3) == b"pla"
    text = bytes(range(256)) * 400  # a truncated capture still gives its beginning
    assert text.startswith(decoded_prefix(gzip.compress(text)[:-200], "gzip", 10**6)[:1000])
    assert len(decoded_prefix(gzip.compress(text)[:-200], "gzip", 10**6)) > 1000


def test_large_bodies_decode_whole_in_chunks() -> None:
    data = bytes(range(256)) * 40000  # 10 MB, several chunks per layer
    for header in ("gzip", "br", "deflate", "gzip, br", "br, gzip, deflate"):
        encoded = data
        for coding in content_codings(header):
            encoded = ENCODERS[coding](encoded)
        pieces = list(iter_decoded(encoded, header, len(data)))
        assert b"".join(pieces) == data
        assert max(map(len, pieces)) <= 2 * CHUNK  # brotli's limit may overshoot a little


@pytest.mark.parametrize("kind", sorted(BOMB_CODINGS))
def test_bombs_stop_at_the_limit_in_little_memory(kind: str) -> None:
    """A gibibyte of zeros behind each coding: the prefix and the strict refusal stay small."""
    body = bomb_body(kind, 1024)
    header = BOMB_CODINGS[kind]
    tracemalloc.start()
    try:
        if all(codings.supported(c) for c in content_codings(header)):
            assert decoded_prefix(body, header, 65536) == bytes(65536)
            with pytest.raises(DecodedTooLarge, match="compression bomb"):
                decoded_size(body, header, 8 * 2**20)
        else:
            assert decoded_prefix(body, header, 65536) == b""  # not decoded: no text
            with pytest.raises(UnsupportedEncoding, match="not supported"):
                decoded_size(body, header, 8 * 2**20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 2**20, f"{kind}: {peak / 2**20:.1f} MiB traced"


def test_every_layer_is_capped() -> None:
    """An inner layer that yields nothing (empty stored deflate blocks inside gzip) is stopped
    by its own cap: the work ends long before 20 MB of nothing is read."""
    empty_blocks = b"\x00\x00\x00\xff\xff" * 4_000_000  # raw deflate: empty stored blocks
    stacked = gzip.compress(empty_blocks)
    assert decoded_prefix(stacked, "deflate, gzip", 65536) == b""  # cut at the inner cap
    with pytest.raises(DecodedTooLarge):
        decoded_size(stacked, "deflate, gzip", 65536)


def test_stream_decompressors_are_bounded_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """The zstd path (lzma's decompressor has the same shape) keeps the per-chunk bound."""
    monkeypatch.setattr(codings, "_ZSTD", lzma.LZMADecompressor)
    body = lzma.compress(bytes(64 * 2**20))
    assert decoded_prefix(body, "zstd", 1000) == bytes(1000)
    assert max(map(len, iter_decoded(lzma.compress(b"ab" * 100000), "zstd", 10**6))) <= CHUNK
    with pytest.raises(DecodedTooLarge):
        decoded_size(body, "zstd", 2**20)
    with pytest.raises(UnsupportedEncoding):
        decode_content(b"not xz", "zstd", 100)


def test_a_brotli_without_bounded_output_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Brotli < 1.2 has no output limit: br is then not decoded (said), never decoded whole."""

    class OldDecompressor:
        def process(self, data: bytes) -> bytes:
            raise AssertionError("an unbounded decode was attempted")

    monkeypatch.setattr(codings.brotli, "Decompressor", OldDecompressor)
    body = brotli.compress(b"hello")
    with pytest.raises(UnsupportedEncoding, match=r"Brotli >= 1\.2"):
        decode_content(body, "br", 100)
    assert decoded_prefix(body, "br", 100) == b""
