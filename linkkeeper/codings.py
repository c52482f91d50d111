"""Removing HTTP content codings (gzip, deflate, br, zstd) from bodies kept as they were sent.

The checker reads bodies raw (archives keep Content-Encoding), so every stage that wants
readable bytes -- the soft-404/fingerprint sample, robots.txt, `replay --body` -- decodes
here, and always within a limit the caller gives: a few kilobytes of brotli or two stacked
gzip layers can inflate to gigabytes (a compression bomb), so nothing is inflated whole.

Each layer is a generator that pulls input from the layer below only as its own output is
wanted, and yields at most `CHUNK` bytes at a time (zlib's ``max_length``, brotli's
``output_buffer_limit``, the ``max_length`` of zstd/lzma-style decompressors); every layer's
output is counted against a cap, so memory stays at a few chunks per layer and the work
stops as soon as a cap is passed. Strict callers (:func:`decode_content`,
:func:`iter_decoded`) get :class:`DecodedTooLarge` past the limit; :func:`decoded_prefix`
keeps the first `limit` bytes, which is all a sample needs.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

import brotli

CHUNK = 64 * 1024  # most output one decompress call may produce, per layer


class UnsupportedEncoding(ValueError):
    """A Content-Encoding this build cannot remove (e.g. zstd), or data that is not valid."""


class DecodedTooLarge(UnsupportedEncoding):
    """The decoded body would pass the caller's limit (a compression bomb, or just huge)."""


def content_codings(header: str | None) -> list[str]:
    """The codings of a Content-Encoding value, in the order they were applied."""
    if not header:
        return []
    return [c.strip().lower() for c in header.split(",") if c.strip()]


# -- one layer each -----------------------------------------------------------------------


def _pieces(data: bytes) -> Iterator[bytes]:
    view = memoryview(data)
    for start in range(0, len(view), CHUNK):
        yield bytes(view[start : start + CHUNK])


def _zlib_layer(chunks: Iterable[bytes], wbits: int) -> Iterator[bytes]:
    """gzip (wbits 31), zlib-wrapped (15) or raw (-15) deflate; output CHUNK at a time."""
    inflater = zlib.decompressobj(wbits)
    for piece in chunks:
        data = piece
        while data and not inflater.eof:
            out = inflater.decompress(data, CHUNK)
            data = inflater.unconsumed_tail
            if out:
                yield out
        if inflater.eof:
            return  # bytes after the end of the stream are ignored
    while not inflater.eof:  # input ended: what zlib still holds (a truncated body is fine)
        out = inflater.decompress(b"", CHUNK)
        if not out:
            return
        yield out


def _peek(chunks: Iterable[bytes], size: int) -> tuple[bytes, Iterator[bytes]]:
    """The first `size` bytes of a stream, and the whole stream again."""
    source = iter(chunks)
    head: list[bytes] = []
    while sum(map(len, head)) < size:
        piece = next(source, None)
        if piece is None:
            break
        head.append(piece)

    def again() -> Iterator[bytes]:
        yield from head
        yield from source

    return b"".join(head)[:size], again()


def _is_zlib_header(head: bytes) -> bool:
    """RFC 1950's two-byte header: method 8, window <= 32 kB, check bits."""
    return (len(head) == 2 and head[0] & 0x0F == 8 and head[0] >> 4 <= 7
            and (head[0] << 8 | head[1]) % 31 == 0)


def _deflate_layer(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """``deflate`` is zlib-wrapped per RFC 9110, raw deflate from some servers: told by header."""
    head, stream = _peek(chunks, 2)
    return _zlib_layer(stream, zlib.MAX_WBITS if _is_zlib_header(head) else -zlib.MAX_WBITS)


def _brotli_layer(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """brotli through Brotli >= 1.2's output-limited `process` (older ones cannot bound it)."""
    decoder = brotli.Decompressor()
    if not hasattr(decoder, "can_accept_more_data"):
        raise UnsupportedEncoding("br cannot be decoded within bounds: Brotli >= 1.2 is needed")
    for piece in chunks:
        out = decoder.process(piece, output_buffer_limit=CHUNK)
        if out:
            yield out
        while not decoder.can_accept_more_data():  # the decoder holds more output than CHUNK
            yield decoder.process(b"", output_buffer_limit=CHUNK)
        if decoder.is_finished():
            return
    while not decoder.is_finished():
        out = decoder.process(b"", output_buffer_limit=CHUNK)
        if not out:
            return
        yield out


class _StreamDecompressor(Protocol):
    """The lzma/bz2/zstd decompressor shape (PEP 784's ``ZstdDecompressor`` has it too)."""

    eof: bool
    needs_input: bool

    def decompress(self, data: bytes, max_length: int = -1) -> bytes: ...


def _stream_layer(chunks: Iterable[bytes], make: Callable[[], _StreamDecompressor]
                  ) -> Iterator[bytes]:
    decoder = make()
    for piece in chunks:
        out = decoder.decompress(piece, CHUNK)
        if out:
            yield out
        while not decoder.eof and not decoder.needs_input:
            out = decoder.decompress(b"", CHUNK)
            if not out:
                break
            yield out
        if decoder.eof:
            return


def _zstd_factory() -> Callable[[], _StreamDecompressor] | None:
    """zstd's decompressor when this Python has one (3.14's compression.zstd, backports.zstd)."""
    for name in ("compression.zstd", "backports.zstd"):
        try:
            module: Any = __import__(name, fromlist=["ZstdDecompressor"])
        except ImportError:
            continue
        return module.ZstdDecompressor
    return None


_ZSTD = _zstd_factory()


def _layer(coding: str, chunks: Iterable[bytes]) -> Iterator[bytes]:
    if coding in ("gzip", "x-gzip"):
        return _zlib_layer(chunks, 16 + zlib.MAX_WBITS)
    if coding == "deflate":
        return _deflate_layer(chunks)
    if coding == "br":
        return _brotli_layer(chunks)
    if coding == "zstd" and _ZSTD is not None:
        return _stream_layer(chunks, _ZSTD)
    raise UnsupportedEncoding(f"content coding {coding!r} is not supported (not decoded)")


def supported(coding: str) -> bool:
    """Whether this build removes `coding` (``identity`` included)."""
    return coding in ("identity", "gzip", "x-gzip", "deflate", "br") or (
        coding == "zstd" and _ZSTD is not None)


# -- the stack ----------------------------------------------------------------------------


def _capped(chunks: Iterator[bytes], cap: int, coding: str) -> Iterator[bytes]:
    """The chunks up to `cap` bytes in all; DecodedTooLarge when more would follow."""
    total = 0
    try:
        for piece in chunks:
            if total + len(piece) > cap:
                if cap > total:
                    yield piece[: cap - total]
                raise DecodedTooLarge(
                    f"{coding or 'content'} decodes to more than {_size(cap)} (a compression "
                    "bomb?); decoding stopped")
            total += len(piece)
            yield piece
    except UnsupportedEncoding:
        raise
    except Exception as err:  # zlib.error, brotli.error, ZstdError...: the data is not valid
        raise UnsupportedEncoding(f"payload is not valid {coding}: {err}") from err


def _size(n: int) -> str:
    return f"{n / 2**20:g} MiB" if n >= 2**20 else f"{n} bytes"


def iter_decoded(payload: bytes, content_encoding: str | None, limit: int) -> Iterator[bytes]:
    """The payload with its codings removed (last applied, first removed), chunk by chunk.

    At most `limit` bytes come out; then DecodedTooLarge if the body decodes to more. An
    inner layer may produce up to twice `limit` (plus a chunk) before it is stopped too:
    enough for compressed data that grew, never enough for a bomb.
    UnsupportedEncoding for an unknown coding or data that does not decode.
    """
    codings = [c for c in content_codings(content_encoding) if c != "identity"]
    stream: Iterator[bytes] = _pieces(payload)
    for i, coding in enumerate(reversed(codings)):
        cap = limit if i == len(codings) - 1 else 2 * limit + CHUNK
        stream = _capped(_layer(coding, stream), cap, coding)
    if not codings:
        stream = _capped(stream, limit, "")
    return stream


def decode_content(payload: bytes, content_encoding: str | None, limit: int) -> bytes:
    """The whole decoded payload, when it is at most `limit` bytes (else DecodedTooLarge)."""
    out = bytearray()
    for piece in iter_decoded(payload, content_encoding, limit):
        out += piece
    return bytes(out)


def decoded_size(payload: bytes, content_encoding: str | None, limit: int) -> int:
    """How many bytes the payload decodes to, read and dropped: a check before streaming it."""
    return sum(len(piece) for piece in iter_decoded(payload, content_encoding, limit))


def decoded_prefix(body: bytes, content_encoding: str | None, limit: int) -> bytes:
    """At most `limit` decoded bytes; b"" when the body does not decode (it has no text)."""
    out = bytearray()
    try:
        for piece in iter_decoded(body, content_encoding, limit):
            out += piece
    except DecodedTooLarge:
        pass  # the prefix is all that is wanted
    except UnsupportedEncoding:
        return b""
    return bytes(out)
