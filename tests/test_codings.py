"""Content codings removed the same way everywhere (samples, robots.txt, replay --body)."""

from __future__ import annotations

import gzip
import zlib

import brotli
import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkkeeper.codings import (
    UnsupportedEncoding,
    content_codings,
    decode_content,
    decoded_prefix,
)

ENCODERS = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "br": brotli.compress,
    "identity": lambda b: b,
}


@given(st.binary(max_size=4000), st.lists(st.sampled_from(sorted(ENCODERS)), max_size=3),
       st.integers(min_value=1, max_value=5000))
def test_round_trip_and_prefix(data: bytes, codings: list[str], limit: int) -> None:
    encoded = data
    for coding in codings:
        encoded = ENCODERS[coding](encoded)
    header = ", ".join(codings)
    assert decode_content(encoded, header) == data
    assert decoded_prefix(encoded, header, limit) == data[:limit]


def test_raw_deflate_strict_errors_and_lenient_prefix() -> None:
    raw = zlib.compressobj(wbits=-15)
    body = raw.compress(b"hello") + raw.flush()
    assert decode_content(body, "deflate") == b"hello"
    assert content_codings(" GZIP , br ") == ["gzip", "br"]
    with pytest.raises(UnsupportedEncoding):
        decode_content(b"not gzip", "gzip")
    with pytest.raises(UnsupportedEncoding):
        decode_content(b"x", "zstd")
    assert decoded_prefix(b"not gzip", "gzip", 100) == b""
    assert decoded_prefix(b"plain", None, 3) == b"pla"
