"""Archived copies as the report shows them: our latest capture of each link, and for a
failing link the copy chosen for it.

The choice itself (ours closest before the first failure, then Wayback or
Memento) is made by `fix` and `report --archives` and stored in the
`archived_copies` table; this module only reads it, so the report never asks
an archive anything.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import sqlite_utils


@dataclass(slots=True, frozen=True)
class ArchivedCopy:
    """The capture a reader should open instead of a dead link."""

    timestamp: str  # 14-digit UTC YYYYmmddHHMMSS, as `linkkeeper serve` routes it
    date: str
    warc_file: str
    http_status: int | None
    source: str = "ours"  # ours | wayback | memento (the `archived_copies` table)
    link: str | None = None  # absolute: an external replay URL, or ours under --serve-url

    def href(self, url: str) -> str:
        """Where the copy opens: `link` when known, else relative for `linkkeeper serve`
        (archive/<timestamp>/<original url>)."""
        return self.link or f"archive/{self.timestamp}/{quote(url, safe=_URL_SAFE)}"

    @property
    def label(self) -> str:
        """'ours 2024-11-19', 'Wayback 2023-05-02', 'Memento 2022-01-30'."""
        return f"{SOURCE_NAMES.get(self.source, self.source)} {self.date[:10]}"


_URL_SAFE = ":/?&=%@!$'()*+,;~[]-._#"
SOURCE_NAMES = {"ours": "ours", "wayback": "Wayback", "memento": "Memento"}
SOURCE_ORDER = ("ours", "wayback", "memento")


_NOT_DIGITS = re.compile(r"\D")


def snapshot_timestamp(value: str | None) -> str | None:
    """'2024-11-19T08:01:02Z' (or any ISO-ish form) -> '20241119080102'."""
    digits = _NOT_DIGITS.sub("", value or "")
    return digits[:14] if len(digits) >= 14 else None


def served_url(serve_url: str | None, timestamp: str, url: str) -> str | None:
    """Our capture under `linkkeeper serve` published at `serve_url` (None: not configured)."""
    if not serve_url:
        return None
    return f"{serve_url.rstrip('/')}/archive/{timestamp}/{quote(url, safe=_URL_SAFE)}"


def latest_captures(db: sqlite_utils.Database, serve_url: str | None) -> dict[str, ArchivedCopy]:
    """The latest good capture of each URL (SQLite takes the bare columns from the max row)."""
    copies: dict[str, ArchivedCopy] = {}
    for url, when, warc_file, code in db.execute(
        "SELECT url, max(date), warc_file, http_status FROM snapshots"
        " WHERE coalesce(http_status, 200) < 400 GROUP BY url"
    ):
        stamp = snapshot_timestamp(when)
        if stamp:
            copies[url] = ArchivedCopy(stamp, when, warc_file or "", code,
                                       link=served_url(serve_url, stamp, url))
    return copies


def chosen_copies(db: sqlite_utils.Database, serve_url: str | None
                  ) -> dict[str, tuple[ArchivedCopy | None, bool]]:
    """url -> (the chosen copy or None, whether every archive asked said "nothing").

    A link looked up with nothing found maps to None: its latest capture may well be the
    error page, so the report must not offer it.
    """
    if db.execute("SELECT 1 FROM sqlite_master WHERE name='archived_copies'").fetchone() is None:
        return {}
    rows: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for row in db.execute("SELECT url, source, found, copy_url, copy_datetime, http_status"
                          " FROM archived_copies"):
        rows[row[0]].append(row[1:])
    out: dict[str, tuple[ArchivedCopy | None, bool]] = {}
    for url, looked in rows.items():
        found = sorted((r for r in looked if r[1]), key=lambda r: _source_rank(r[0]))
        if not found:
            out[url] = (None, any(r[0] != "ours" for r in looked))
            continue
        source, _, copy_url, when, code = found[0]
        stamp = snapshot_timestamp(when) or ""
        href = served_url(serve_url, stamp, url) if source == "ours" else copy_url
        out[url] = (ArchivedCopy(stamp, when or "", "", code, source, href), False)
    return out


def _source_rank(source: str) -> int:
    return SOURCE_ORDER.index(source) if source in SOURCE_ORDER else len(SOURCE_ORDER)
