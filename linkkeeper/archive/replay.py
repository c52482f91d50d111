"""What was saved of a URL: its captures (from the `snapshots` table) and their payloads.

The library under `linkkeeper replay`, `linkkeeper serve` and the exports::

    captures = captures_of(db, "https://www.rfa.org/a.html")     # oldest first
    chosen = closest_capture(captures, parse_moment("2026-11-26"))
    archived = load_response(db, Path("warcs"), chosen)          # revisits resolved
    archived.status, archived.headers, archived.payload          # as the server sent them
    codings.decode_content(archived.payload, archived.header("Content-Encoding"))  # readable

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
import io
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from warcio.archiveiterator import ArchiveIterator

from linkkeeper.urls import normalize_url

SNAPSHOT_COLUMNS = (
    "id, url, run_id, warc_file, offset, length, record_type, record_id, payload_digest, "
    "date, http_status, content_type, payload_length, truncated, revisit_of"
)
_OPEN_SUFFIX = ".open"


class CaptureUnavailable(LookupError):
    """A capture whose record cannot be read (file missing, bytes damaged, original lost)."""


@dataclass(frozen=True, slots=True)
class Capture:
    """One row of the `snapshots` table: where a response (or revisit) record is."""

    id: int
    url: str
    date: datetime  # UTC; the record's WARC-Date
    warc_file: str  # relative to the WARC folder
    offset: int
    length: int
    record_type: str  # 'response' | 'revisit'
    record_id: str | None = None
    payload_digest: str | None = None
    http_status: int | None = None
    content_type: str | None = None
    payload_length: int | None = None
    truncated: bool = False
    revisit_of: int | None = None
    run_id: int | None = None

    @property
    def timestamp(self) -> str:
        """The 14-digit UTC timestamp replay URLs use (``archive/<timestamp>/<url>``)."""
        return f"{self.date:%Y%m%d%H%M%S}"

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Capture:
        """From a row selected with :data:`SNAPSHOT_COLUMNS`, in that order."""
        (ident, url, run_id, warc_file, offset, length, record_type, record_id, digest,
         date, status, content_type, payload_length, truncated, revisit_of) = row
        return cls(
            id=int(ident),
            url=url,
            date=parse_stored_date(date),
            warc_file=sys.intern(warc_file),  # thousands of rows share a few files: one string
            offset=int(offset),
            length=int(length),
            record_type=sys.intern(record_type or "response"),
            record_id=record_id,
            payload_digest=digest,
            http_status=int(status) if status is not None else None,
            content_type=sys.intern(content_type) if content_type else None,
            payload_length=int(payload_length) if payload_length is not None else None,
            truncated=bool(truncated),
            revisit_of=int(revisit_of) if revisit_of is not None else None,
            run_id=int(run_id) if run_id is not None else None,
        )


# ---------------------------------------------------------------------------------------------
# Dates


def parse_stored_date(value: str | datetime) -> datetime:
    """A `snapshots.date` value (ISO 8601, 'Z' or offset, or naive meaning UTC) as UTC."""
    if isinstance(value, datetime):
        moment = value
    else:
        text = str(value).strip()
        if re.fullmatch(r"\d{14}", text):
            moment = datetime.strptime(text, "%Y%m%d%H%M%S")
        else:
            moment = datetime.fromisoformat(text.replace(" ", "T", 1))
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


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
    keys = url_keys(url)
    marks = ",".join("?" * len(keys))
    rows = db.execute(
        f"SELECT {SNAPSHOT_COLUMNS} FROM snapshots WHERE url IN ({marks})", keys
    ).fetchall()
    return sorted((Capture.from_row(r) for r in rows), key=lambda c: (c.date, c.id))


def capture_by_id(db: Any, ident: int) -> Capture | None:
    row = db.execute(f"SELECT {SNAPSHOT_COLUMNS} FROM snapshots WHERE id=?", [ident]).fetchone()
    return Capture.from_row(row) if row else None


def closest_capture(captures: Iterable[Capture], at: datetime | None = None) -> Capture | None:
    """The newest capture at or before ``at`` (default: the newest), else the earliest."""
    ordered = sorted(captures, key=lambda c: (c.date, c.id))
    if not ordered:
        return None
    if at is None:
        return ordered[-1]
    before = [c for c in ordered if c.date <= at]
    return before[-1] if before else ordered[0]


def archived_urls(db: Any) -> list[tuple[str, int, datetime, datetime]]:
    """(url, captures, first, last) for every archived URL, by URL: the archive's contents."""
    rows = db.execute(
        "SELECT url, count(*), min(date), max(date) FROM snapshots GROUP BY url ORDER BY url"
    ).fetchall()
    return [(u, n, parse_stored_date(a), parse_stored_date(b)) for u, n, a, b in rows]


# ---------------------------------------------------------------------------------------------
# Reading records


@dataclass(frozen=True, slots=True)
class RecordHead:
    """A record's WARC and HTTP head, and its payload (content coding kept)."""

    record_type: str
    warc_headers: list[tuple[str, str]]
    protocol: str | None  # 'HTTP/1.1'
    status: int | None
    reason: str
    http_headers: list[tuple[str, str]]
    payload: bytes

    def warc_header(self, name: str) -> str | None:
        return _find(self.warc_headers, name)


def _find(headers: Sequence[tuple[str, str]], name: str) -> str | None:
    lowered = name.lower()
    return next((v for k, v in headers if k.lower() == lowered), None)


def warc_path(folder: Path, warc_file: str) -> Path:
    """The file of a `snapshots.warc_file`, also while it is still being written (``.open``)."""
    path = Path(folder) / warc_file
    if not path.exists():
        still_open = path.with_name(path.name + _OPEN_SUFFIX)
        if still_open.exists():
            return still_open
    return path


def read_capture_record(folder: Path, capture: Capture) -> RecordHead:
    """Read the record a capture points at; checks it is the record the row describes."""
    path = warc_path(folder, capture.warc_file)
    try:
        with open(path, "rb") as handle:
            handle.seek(capture.offset)
            member = handle.read(capture.length)
    except OSError as err:
        raise CaptureUnavailable(f"{capture.warc_file}: {err.strerror or err}") from err
    if len(member) != capture.length:
        raise CaptureUnavailable(
            f"{capture.warc_file}@{capture.offset}: file ends before {capture.length} bytes"
        )
    try:
        record = next(iter(ArchiveIterator(io.BytesIO(member))))
        payload = record.raw_stream.read()
    except Exception as err:  # warcio raises assorted types on damaged bytes
        raise CaptureUnavailable(
            f"{capture.warc_file}@{capture.offset}: not a readable WARC record ({err})"
        ) from err
    record_id = record.rec_headers.get_header("WARC-Record-ID")
    if capture.record_id and record_id != capture.record_id:
        raise CaptureUnavailable(
            f"{capture.warc_file}@{capture.offset}: holds {record_id}, not {capture.record_id}"
        )
    http = record.http_headers
    status = reason = None
    if http is not None and record.rec_type in ("response", "revisit"):
        code, _, reason = http.statusline.partition(" ")
        status = int(code) if code.isdigit() else None
    return RecordHead(
        record_type=record.rec_type,
        warc_headers=list(record.rec_headers.headers),
        protocol=http.protocol if http is not None else None,
        status=status,
        reason=(reason or "").strip(),
        http_headers=list(http.headers) if http is not None else [],
        payload=payload,
    )


def resolve_original(
    db: Any, folder: Path, capture: Capture, head: RecordHead | None = None
) -> Capture | None:
    """The capture holding a revisit's payload (see the module docstring for the order)."""
    if capture.record_type != "revisit":
        return capture
    if capture.revisit_of is not None:
        found = capture_by_id(db, capture.revisit_of)
        if found is not None:
            return found
    if head is None:
        head = read_capture_record(folder, capture)
    refers_to = head.warc_header("WARC-Refers-To")
    if refers_to:
        row = db.execute(
            f"SELECT {SNAPSHOT_COLUMNS} FROM snapshots WHERE record_id=? AND record_type!='revisit'",
            [refers_to],
        ).fetchone()
        if row:
            return Capture.from_row(row)
    target = head.warc_header("WARC-Refers-To-Target-URI") or capture.url
    digest = head.warc_header("WARC-Payload-Digest") or capture.payload_digest
    rows = db.execute(
        f"SELECT {SNAPSHOT_COLUMNS} FROM snapshots WHERE url=? AND payload_digest=?"
        " AND record_type='response'",
        [target, digest],
    ).fetchall()
    candidates = [Capture.from_row(r) for r in rows]
    return closest_capture(candidates, capture.date)


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
        return _find(self.headers, name)


def load_response(db: Any, folder: Path, capture: Capture) -> ArchivedResponse:
    """Read a capture's response; for a revisit, its own headers with the original's payload."""
    head = read_capture_record(folder, capture)
    if head.status is None:
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
        original_head = read_capture_record(folder, original)
        payload = original_head.payload
        # the revisit's own WARC-Truncated only says its block is headers only, by design
        truncated = original.truncated or original_head.warc_header("WARC-Truncated") is not None
    return ArchivedResponse(
        capture=capture,
        original=original,
        protocol=head.protocol or "HTTP/1.1",
        status=head.status,
        reason=head.reason,
        headers=head.http_headers,
        payload=payload,
        truncated=truncated,
    )


# ---------------------------------------------------------------------------------------------
# Content coding


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

