"""Removing HTTP content codings (gzip, deflate, br) from bodies kept as they were sent.

The checker reads bodies raw (archives keep Content-Encoding), so every stage
that wants readable bytes — the soft-404 sample, robots.txt, `replay --body` —
decodes here: strictly (`decode_content` raises on bad data) or leniently with
a size cap (`decoded_prefix`, for samples where a broken body just has no text).
"""

from __future__ import annotations

import zlib

import brotli


class UnsupportedEncoding(ValueError):
    """A Content-Encoding this build cannot remove (e.g. zstd), or data that is not valid."""


def content_codings(header: str | None) -> list[str]:
    """The codings of a Content-Encoding value, in the order they were applied."""
    if not header:
        return []
    return [c.strip().lower() for c in header.split(",") if c.strip()]


def _remove(data: bytes, coding: str, limit: int | None) -> bytes:
    """One coding removed; at most `limit` bytes of output when given."""
    cap = limit or 0  # zlib: 0 means no limit
    if coding in ("gzip", "x-gzip"):
        return zlib.decompressobj(wbits=31).decompress(data, cap)
    if coding == "deflate":  # zlib-wrapped per RFC, raw deflate in practice too
        try:
            return zlib.decompressobj().decompress(data, cap)
        except zlib.error:
            return zlib.decompressobj(wbits=-zlib.MAX_WBITS).decompress(data, cap)
    if coding == "br":
        out = brotli.Decompressor().process(data)
        return out if limit is None else out[:limit]
    raise UnsupportedEncoding(f"content coding {coding!r} is not supported")


def decode_content(payload: bytes, content_encoding: str | None, limit: int | None = None
                   ) -> bytes:
    """The payload with its content codings removed (last applied, first removed).

    Raises UnsupportedEncoding for an unknown coding or data that does not decode.
    """
    data = payload
    codings = [c for c in content_codings(content_encoding) if c != "identity"]
    for i, coding in enumerate(reversed(codings)):
        last = i == len(codings) - 1
        try:
            data = _remove(data, coding, limit if last else None)
        except UnsupportedEncoding:
            raise
        except (zlib.error, brotli.error) as err:
            raise UnsupportedEncoding(f"payload is not valid {coding}: {err}") from err
    return data if limit is None else data[:limit]


def decoded_prefix(body: bytes, content_encoding: str | None, limit: int) -> bytes:
    """At most `limit` decoded bytes; b"" when the body does not decode (it has no text)."""
    try:
        return decode_content(body, content_encoding, limit)
    except UnsupportedEncoding:
        return b""
