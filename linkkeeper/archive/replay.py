"""What was saved of a URL: its captures (from the `snapshots` table) and their payloads.

The library under `linkkeeper replay`, `linkkeeper serve` and the exports::

    captures = captures_of(db, "https://www.rfa.org/a.html")     # oldest first
    chosen = closest_capture(captures, parse_moment("2026-11-26"))
    archived = load_response(db, Path("warcs"), chosen)          # revisits resolved
    archived.status, archived.headers, archived.payload          # as the server sent them
    codings.decode_content(archived.payload, archived.header("Content-Encoding"), limit)

    answer = replay_url(db, Path("warcs"), url, at=moment, body=True)   # `linkkeeper replay`

Choosing a capture follows the replay tools (pywb, Wayback): the newest capture at or
before the requested moment; when every capture is later, the earliest one. A partial
moment (``2026``, ``2026-11``, ``20261126``) means the *end* of that period, so "as it
was on 26 November" includes that day's captures.

A ``revisit`` record keeps only the HTTP headers; its payload is the original's. The
original is found by ``snapshots.revisit_of``, else by the record's ``WARC-Refers-To``
record id, else by payload digest and ``WARC-Refers-To-Target-URI`` -- in that order,
because older rows or other writers may lack the first two.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from linkkeeper.archive.records import (
    CaptureUnavailable,
    StoredRecord,
    header_value,
    read_record,
)
from linkkeeper.archive.snapshots import (
    Capture,
    capture_by_id,
    captures_with_keys,
    parse_stored_date,
    response_by_record_id,
    responses_with_digest,
)
from linkkeeper.codings import decoded_size, iter_decoded
from linkkeeper.urls import normalize_url

REPLAY_DECODED_MAX = 256 * 2**20  # replay --body refuses a body that decodes to more

# ---------------------------------------------------------------------------------------------
# Dates


_PARTIAL = re.compile(r"(\d{4})(?:-?(\d{2}))?(?:-?(\d{2}))?(?:[T ]?(\d{2}))?(?::?(\d{2}))?(?::?(\d{2}))?")


def parse_moment(text: str, *, end_of_period: bool = True) -> datetime:
    """A moment given by a person: ``2026``, ``2026-11-26``, ``20261126101500``, full ISO 8601.

    A partial date or timestamp stands for a period: its last second (``end_of_period``,
    used by ``--at`` and ``--until``) or its first (``--since``). Naive times are UTC.
    Raises ``ValueError`` with a readable message.
    """
    raw = text.strip()
    match = _PARTIAL.fullmatch(raw)
    if match is None:
        try:
            return parse_stored_date(raw)
        except ValueError:
            raise ValueError(
                f"{text!r} is not a date: use 2026-11-26, 2026-11-26T10:15:00Z or 20261126101500"
            ) from None
    year, month, day, hour, minute, second = (int(g) if g else None for g in match.groups())
    assert year is not None
    try:
        if end_of_period:
            month_ = month or 12
            last_day = calendar.monthrange(year, month_)[1]
            return datetime(
                year, month_, day or last_day,
                23 if hour is None else hour,
                59 if minute is None else minute,
                59 if second is None else second,
                999999, tzinfo=UTC,
            )
        return datetime(year, month or 1, day or 1, hour or 0, minute or 0, second or 0,
                        tzinfo=UTC)
    except ValueError as err:
        raise ValueError(f"{text!r} is not a valid date: {err}") from None


def rfc3339(moment: datetime) -> str:
    """UTC with 'Z' and microseconds only when present (what WARC-Date and pages.jsonl use)."""
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}"
    return text + "Z"


# ---------------------------------------------------------------------------------------------
# Looking captures up


def url_keys(url: str) -> list[str]:
    """The URL as given and as the inventory normalises it (the key `snapshots.url` uses)."""
    keys = [url]
    info = normalize_url(url)
    if info.status is None and info.url not in keys:
        keys.append(info.url)
    return keys


def captures_of(db: Any, url: str) -> list[Capture]:
    """Every capture of a URL, oldest first (the URL is also tried in normalised form)."""
    return captures_with_keys(db, url_keys(url))


def closest_capture(captures: Iterable[Capture], at: datetime | None = None) -> Capture | None:
    """The newest capture at or before ``at`` (default: the newest), else the earliest."""
    ordered = sorted(captures, key=lambda c: c.key)
    if not ordered:
        return None
    if at is None:
        return ordered[-1]
    before = [c for c in ordered if c.date <= at]
    return before[-1] if before else ordered[0]


# ---------------------------------------------------------------------------------------------
# Reading records


def read_capture(folder: Path, capture: Capture) -> StoredRecord:
    """Read the record a capture points at; checks it is the record the row describes."""
    return read_record(
        folder, capture.warc_file, capture.offset, capture.length, record_id=capture.record_id
    )


def resolve_original(
    db: Any, folder: Path, capture: Capture, head: StoredRecord | None = None
) -> Capture | None:
    """The capture holding a revisit's payload (see the module docstring for the order)."""
    if capture.record_type != "revisit":
        return capture
    if capture.revisit_of is not None:
        found = capture_by_id(db, capture.revisit_of)
        if found is not None:
            return found
    if head is None:
        head = read_capture(folder, capture)
    refers_to = head.warc_header("WARC-Refers-To")
    if refers_to:
        found = response_by_record_id(db, refers_to)
        if found is not None:
            return found
    target = head.warc_header("WARC-Refers-To-Target-URI") or capture.url
    digest = head.warc_header("WARC-Payload-Digest") or capture.payload_digest
    return closest_capture(responses_with_digest(db, target, digest), capture.date)


# ---------------------------------------------------------------------------------------------
# Archived responses


@dataclass(frozen=True, slots=True)
class ArchivedResponse:
    """What the server said for a capture: status, headers and body, revisits resolved."""

    capture: Capture
    original: Capture | None  # the capture whose payload this is, for a revisit
    protocol: str
    status: int
    reason: str
    headers: list[tuple[str, str]]  # as stored (see linkkeeper.archive.warc: X-Orig-* renames)
    payload: bytes  # as the server sent it: content coding (gzip, br) kept
    truncated: bool

    def header(self, name: str) -> str | None:
        return header_value(self.headers, name)


def load_response(db: Any, folder: Path, capture: Capture) -> ArchivedResponse:
    """Read a capture's response; for a revisit, its own headers with the original's payload."""
    head = read_capture(folder, capture)
    if head.http_status is None:
        raise CaptureUnavailable(f"{capture.url}: the record has no HTTP response")
    original: Capture | None = None
    payload = head.payload
    truncated = capture.truncated or head.warc_header("WARC-Truncated") is not None
    if head.record_type == "revisit":
        original = resolve_original(db, folder, capture, head)
        if original is None or original.id == capture.id:
            raise CaptureUnavailable(
                f"{capture.url} at {capture.timestamp}: revisit of a capture that is not in "
                "the archive"
            )
        original_head = read_capture(folder, original)
        payload = original_head.payload
        # the revisit's own WARC-Truncated only says its block is headers only, by design
        truncated = original.truncated or original_head.warc_header("WARC-Truncated") is not None
    return ArchivedResponse(
        capture=capture,
        original=original,
        protocol=head.protocol or "HTTP/1.1",
        status=head.http_status,
        reason=head.reason,
        headers=head.http_headers,
        payload=payload,
        truncated=truncated,
    )


# ---------------------------------------------------------------------------------------------
# Describing


def period_end(timestamp: str) -> datetime:
    """The moment a (partial) 14-digit replay timestamp stands for: the end of its period."""
    return parse_moment(timestamp, end_of_period=True)


def describe_capture(capture: Capture) -> str:
    """One line of the capture list: when, what, where."""
    status = capture.http_status if capture.http_status is not None else "-"
    kind = "revisit " if capture.record_type == "revisit" else ""
    size = "-" if capture.payload_length is None else f"{capture.payload_length}"
    cut = " truncated" if capture.truncated else ""
    return (
        f"{capture.timestamp}  {status!s:<4} {kind}{capture.content_type or '-'}  "
        f"{size} bytes{cut}  {capture.warc_file}@{capture.offset}"
    )



# ---------------------------------------------------------------------------------------------
# `linkkeeper replay` as one call


class NothingArchived(LookupError):
    """No capture of the URL in the archive."""


@dataclass(frozen=True, slots=True)
class ReplayAnswer:
    """The captures of a URL, the one chosen, and (when asked) its response and payload."""

    captures: list[Capture]  # oldest first
    chosen: Capture
    archived: ArchivedResponse | None = None
    pieces: Iterable[bytes] | None = None  # the payload to write; content coding removed
    # unless asked raw (pieces, so a decoder can stream and cap a body, rather than hold it)

    def as_dict(self) -> dict[str, Any]:
        """The capture list as `replay --format json` prints it."""
        return {
            "url": self.captures[0].url,
            "chosen": self.chosen.timestamp,
            "captures": [{
                "timestamp": c.timestamp, "date": rfc3339(c.date), "status": c.http_status,
                "record_type": c.record_type, "content_type": c.content_type,
                "payload_length": c.payload_length, "truncated": c.truncated,
                "warc_file": c.warc_file, "offset": c.offset, "length": c.length,
            } for c in self.captures],
        }


def replay_url(
    db: Any, folder: Path, url: str, *, at: datetime | None = None, body: bool = False,
    raw: bool = False,
) -> ReplayAnswer:
    """The captures of ``url`` and the one closest at or before ``at``; with ``body``, its
    response and payload (decoded unless ``raw``).

    Raises :class:`NothingArchived`, :class:`CaptureUnavailable`, or
    :class:`~linkkeeper.codings.UnsupportedEncoding` (a coding this build cannot remove).
    """
    captures = captures_of(db, url)
    chosen = closest_capture(captures, at)
    if chosen is None:
        raise NothingArchived(url)
    if not body:
        return ReplayAnswer(captures, chosen)
    archived = load_response(db, folder, chosen)
    if raw:
        return ReplayAnswer(captures, chosen, archived, [archived.payload])
    coding = archived.header("Content-Encoding")
    decoded_size(archived.payload, coding, REPLAY_DECODED_MAX)  # a bomb is refused up front
    pieces = iter_decoded(archived.payload, coding, REPLAY_DECODED_MAX)
    return ReplayAnswer(captures, chosen, archived, pieces)
