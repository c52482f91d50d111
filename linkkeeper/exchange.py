"""One HTTP exchange as it happened on the wire: what the checker hands to the archiver.

The checker fills it for every hop it fetched with GET when a capture is wanted;
the WARC writer turns it into request/response (or revisit) records. The body is
exactly what the server sent after removing chunked transfer coding: never
decompressed, so replay serves identical bytes.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(slots=True)
class Exchange:
    url: str  # the URL requested (this hop)
    method: str  # "GET" (HEAD exchanges are never archived)
    request_headers: list[tuple[str, str]]  # as sent, in order (Host first)
    status: int
    reason: str
    response_headers: list[tuple[str, str]]  # as received, in order, repeated names kept
    body: bytes  # de-chunked, still content-encoded (gzip/br kept)
    started: datetime  # UTC, when the request was sent
    http_version: str = "1.1"
    ip: str | None = None  # peer address the bytes came from
    truncated: bool = False  # body cut at the capture size cap
    extra: dict[str, str] = field(default_factory=dict)  # e.g. {"hop": "2"}


def sha1_b32(*parts: bytes) -> str:
    """A WARC-style digest (``sha1:`` + uppercase base32) of the parts, one after the other.

    The checker's `checks.digest` and the WARC writer's digests share this spelling.
    """
    digest = hashlib.sha1()
    for part in parts:
        digest.update(part)
    return "sha1:" + base64.b32encode(digest.digest()).decode("ascii")
