"""A capture: one row of the `snapshots` table, and every query on that table.

The writer (:class:`~linkkeeper.archive.warc.WarcStore`) returns a :class:`Capture` for each
record it appends; the archiver inserts it here (:func:`insert_captures`); replay, serve and
the exports read it back (:func:`iter_captures`, :func:`captures_with_keys`, ...). The table
itself is created by :mod:`linkkeeper.db`. Other code asks these functions rather than writing
SQL on the table (the report's one query of the latest good copies still lives in
:mod:`linkkeeper.report.data`).

Dates are stored as ISO 8601 UTC with microseconds (:func:`stored_date`): a date becomes a
later revisit's ``WARC-Refers-To-Date`` and must equal the original's ``WARC-Date`` exactly.
"""

from __future__ import annotations

import re
import sqlite3
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from linkkeeper.vocab import Status

SNAPSHOT_COLUMNS = (
    "id, url, run_id, warc_file, offset, length, record_type, record_id, payload_digest, "
    "date, http_status, content_type, payload_length, truncated, revisit_of"
)
_INSERT = (
    "INSERT INTO snapshots (url, run_id, warc_file, offset, length, record_type, record_id,"
    " payload_digest, date, http_status, content_type, payload_length, truncated, revisit_of,"
    " request_offset, request_length, bytes_written) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
_CHUNK = 500  # URLs per `IN (...)` list: well under SQLite's variable limit


@dataclass(frozen=True, slots=True)
class PriorCapture:
    """The last full capture of a URL: what a new, identical body is written as a revisit of."""

    url: str
    date: datetime
    payload_digest: str
    record_id: str | None = None


@dataclass(slots=True)
class Capture:
    """Where and what one capture is: a row of the `snapshots` table.

    Made by the writer (``id``, ``run_id``, ``revisit_of`` still unset; ``request_*``,
    ``bytes_written`` and ``refers_to`` known) or read from the table (:meth:`from_row`).
    """

    url: str
    warc_file: str  # relative to the WARC folder, final (closed) name
    offset: int  # of the response/revisit record's gzip member
    length: int
    date: datetime  # UTC; the record's WARC-Date
    request_offset: int | None = None
    request_length: int | None = None
    record_type: str = "response"  # 'response' | 'revisit'
    record_id: str | None = None  # "<urn:uuid:...>"
    payload_digest: str | None = None  # "sha1:BASE32"
    http_status: int | None = None
    content_type: str | None = None
    payload_length: int | None = None
    truncated: bool = False
    bytes_written: int | None = None  # both records, compressed
    refers_to: PriorCapture | None = None  # what a revisit written by this run refers to
    id: int | None = None
    run_id: int | None = None
    revisit_of: int | None = None  # snapshots.id of the original

    @property
    def timestamp(self) -> str:
        """The 14-digit UTC timestamp replay URLs use (``archive/<timestamp>/<url>``)."""
        return f"{self.date:%Y%m%d%H%M%S}"

    @property
    def key(self) -> tuple[datetime, int]:
        """Order of captures of a URL: by date, then by row id."""
        return (self.date, self.id or 0)

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

    def as_prior(self) -> PriorCapture:
        """This capture as the original of a later revisit."""
        return PriorCapture(self.url, self.date, self.payload_digest or "", self.record_id)


# ---------------------------------------------------------------------------------------------
# Dates


def stored_date(moment: datetime) -> str:
    """A `snapshots.date` value: ISO 8601 UTC, microseconds kept."""
    return moment.astimezone(UTC).isoformat()


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


# ---------------------------------------------------------------------------------------------
# Writing


def insert_captures(conn: sqlite3.Connection, captures: Iterable[Capture], run_id: int | None) -> None:
    """Insert captures (inside the caller's transaction), linking each revisit to its original.

    The original may be in this very batch: the rows before a revisit are inserted first, so
    the lookup by record id finds it.
    """
    pending: list[tuple[Any, ...]] = []
    for c in captures:
        revisit_of = None
        refers_to = c.refers_to.record_id if c.refers_to else None
        if refers_to:
            conn.executemany(_INSERT, pending)
            pending = []
            found = conn.execute("SELECT id FROM snapshots WHERE record_id=?", (refers_to,))
            row = found.fetchone()
            revisit_of = row[0] if row else None
        pending.append((
            c.url, run_id, c.warc_file, c.offset, c.length, c.record_type, c.record_id,
            c.payload_digest, stored_date(c.date), c.http_status, c.content_type,
            c.payload_length, int(c.truncated), revisit_of, c.request_offset,
            c.request_length, c.bytes_written,
        ))
    conn.executemany(_INSERT, pending)


# ---------------------------------------------------------------------------------------------
# Reading


def _in_chunks(db: Any, sql: str, values: Sequence[Any]) -> Iterator[Any]:
    """Run ``sql`` (with one ``{marks}`` placeholder list) over ``values`` in chunks."""
    for start in range(0, len(values), _CHUNK):
        chunk = list(values[start : start + _CHUNK])
        yield from db.execute(sql.format(marks=",".join("?" * len(chunk))), chunk)


def iter_captures(db: Any, urls: Sequence[str] | None = None) -> Iterator[Capture]:
    """Every capture, or every capture of these URLs (in no particular order)."""
    if urls is None:
        rows: Iterable[Any] = db.execute(f"SELECT {SNAPSHOT_COLUMNS} FROM snapshots")
    else:
        rows = _in_chunks(db, f"SELECT {SNAPSHOT_COLUMNS} FROM snapshots WHERE url IN ({{marks}})",
                          urls)
    return (Capture.from_row(r) for r in rows)


def captures_with_keys(db: Any, keys: Sequence[str]) -> list[Capture]:
    """Every capture stored under one of these URL keys, oldest first."""
    return sorted(iter_captures(db, keys), key=lambda c: c.key)


def capture_by_id(db: Any, ident: int) -> Capture | None:
    row = db.execute(f"SELECT {SNAPSHOT_COLUMNS} FROM snapshots WHERE id=?", [ident]).fetchone()
    return Capture.from_row(row) if row else None


def response_by_record_id(db: Any, record_id: str) -> Capture | None:
    """The non-revisit capture whose record has this ``WARC-Record-ID``."""
    row = db.execute(
        f"SELECT {SNAPSHOT_COLUMNS} FROM snapshots WHERE record_id=? AND record_type!='revisit'",
        [record_id],
    ).fetchone()
    return Capture.from_row(row) if row else None


def responses_with_digest(db: Any, url: str, digest: str | None) -> list[Capture]:
    """The response captures of ``url`` whose payload has this digest."""
    rows = db.execute(
        f"SELECT {SNAPSHOT_COLUMNS} FROM snapshots WHERE url=? AND payload_digest=?"
        " AND record_type='response'",
        [url, digest],
    ).fetchall()
    return [Capture.from_row(r) for r in rows]


def archived_urls(db: Any) -> list[tuple[str, int, datetime, datetime]]:
    """(url, captures, first, last) for every archived URL, by URL: the archive's contents."""
    rows = db.execute(
        "SELECT url, count(*), min(date), max(date) FROM snapshots GROUP BY url ORDER BY url"
    ).fetchall()
    return [(u, n, parse_stored_date(a), parse_stored_date(b)) for u, n, a, b in rows]


def latest_captures(db: Any, urls: Sequence[str]) -> dict[str, Capture]:
    """The newest capture of each URL that has one (date, size, type and status filled)."""
    latest: dict[str, Capture] = {}
    for url, date, length, ctype, status in _in_chunks(
        db,
        "SELECT s.url, s.date, s.payload_length, s.content_type, s.http_status"
        " FROM snapshots s JOIN (SELECT url, max(date) AS date FROM snapshots"
        " WHERE url IN ({marks}) GROUP BY url) m ON m.url = s.url AND m.date = s.date",
        urls,
    ):
        latest[url] = Capture(url, "", 0, 0, parse_stored_date(date), payload_length=length,
                              content_type=ctype, http_status=status)
    return latest


def latest_full_responses(db: Any, urls: Sequence[str]) -> dict[str, PriorCapture]:
    """The newest non-truncated response of each URL: what a revisit of it refers to."""
    return {
        url: PriorCapture(url, parse_stored_date(date), digest, record_id)
        for url, date, digest, record_id in _in_chunks(
            db,
            "SELECT s.url, s.date, s.payload_digest, s.record_id FROM snapshots s"
            " JOIN (SELECT url, max(date) AS date FROM snapshots"
            " WHERE url IN ({marks}) AND record_type='response'"
            " AND coalesce(truncated, 0)=0 GROUP BY url) m"
            " ON m.url = s.url AND m.date = s.date AND s.record_type='response'",
            urls,
        )
    }


def checked_but_not_archived(db: Any, run_id: int) -> list[str]:
    """URLs a run checked live but recorded no snapshot of (a crash lost their rows)."""
    return [
        row[0]
        for row in db.execute(
            "SELECT c.url FROM checks c WHERE c.run_id=? AND c.status IN (?, ?)"
            " AND NOT EXISTS (SELECT 1 FROM snapshots s WHERE s.run_id=c.run_id"
            " AND s.url=c.url) ORDER BY c.id",
            [run_id, Status.OK.value, Status.REDIRECTED.value],
        )
    ]
