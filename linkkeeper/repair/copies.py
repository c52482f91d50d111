"""Choosing the archived copy a failing link should be replaced with.

Our own captures come first: the one closest *before the link first failed*,
and only a real page — a 2xx response, not truncated, whose check that night
said ok/redirected (so never an error page, a soft 404 or a block page), and
for a revisit only when the response it points to is still recorded. External
archives (repair/wayback.py, repair/memento.py) come next, opt-in. Every answer
is kept in `archived_copies` (repair/store.py) with its date, so the report
shows it and slow upstream archives are asked again only when the answer is old.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import sqlite_utils

from linkkeeper.archive.replay import Capture, captures_of
from linkkeeper.clock import iso_z
from linkkeeper.db import Transaction
from linkkeeper.history.runs import parse_iso
from linkkeeper.repair.store import ensure_tables, now_iso
from linkkeeper.vocab import FAILURES, State, Status

OURS, WAYBACK, MEMENTO = "ours", "wayback", "memento"
EXTERNAL = (WAYBACK, MEMENTO)
GOOD_CHECKS = frozenset({Status.OK.value, Status.REDIRECTED.value})
RECHECK_AFTER = timedelta(days=30)  # an external answer older than this is asked again
_URL_SAFE = ":/?&=%@!$'()*+,;~[]-._#"


@dataclass(frozen=True, slots=True)
class Copy:
    """Where a reader finds the page the link pointed to."""

    source: str  # ours | wayback | memento
    url: str  # replay URL (ours: archive/<timestamp>/<url>, relative to `serve`)
    datetime: str  # ISO UTC
    http_status: int | None = None
    snapshot_id: int | None = None

    @property
    def date(self) -> str:
        return self.datetime[:10]

    def absolute(self, serve_url: str | None) -> str | None:
        """A URL usable outside the report: ours needs the address `serve` is reachable at."""
        if self.source != OURS:
            return self.url
        return serve_url.rstrip("/") + "/" + self.url if serve_url else None


@dataclass(frozen=True, slots=True)
class Target:
    """One failing link and the moment its copy should be closest before."""

    url: str
    first_failed: str | None
    post_date: str | None = None

    @property
    def before(self) -> datetime | None:
        """IABot's choice: the post's date when known (what the author saw), else first failure."""
        return _moment(self.post_date) or _moment(self.first_failed)


def _moment(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return parse_iso(str(value).replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        return None


def own_copy(db: sqlite_utils.Database, url: str, first_failed: str | None,
             warc_folder: Path | None = None) -> Copy | None:
    """Our capture closest before the first failure that is a real page, or None."""
    limit = _moment(first_failed)
    captures = captures_of(db, url)
    if not captures:  # most failing links: no need to read their checks
        return None
    by_id = {c.id: c for c in captures}
    checks = dict(db.execute("SELECT run_id, status FROM checks WHERE url=?", [url]).fetchall())
    good = [c for c in captures
            if (limit is None or c.date < limit)
            and _is_real_page(db, c, by_id, checks, warc_folder)]
    if not good:
        return None
    best = max(good, key=lambda c: c.date)
    when = iso_z(best.date)
    return Copy(OURS, f"archive/{best.timestamp}/{quote(url, safe=_URL_SAFE)}", when,
                best.http_status, best.id)


def _is_real_page(db: sqlite_utils.Database, c: Capture, by_id: dict[int, Capture],
                  checks: dict[int, str], warc_folder: Path | None) -> bool:
    if c.http_status is None or not 200 <= c.http_status < 300 or c.truncated:
        return False
    status = checks.get(c.run_id) if c.run_id is not None else None
    if status is not None and status not in GOOD_CHECKS:
        return False  # soft 404, block page, error page dressed as 200
    if c.record_type == "revisit":
        original = by_id.get(c.revisit_of) if c.revisit_of is not None else None
        if original is None or original.record_type != "response" or original.truncated:
            return False
        if warc_folder is not None and not (warc_folder / original.warc_file).exists():
            return False
    return warc_folder is None or (warc_folder / c.warc_file).exists()


# --- the cache ---------------------------------------------------------------------------------


def remember(db: sqlite_utils.Database, url: str, source: str, copy: Copy | None,
             detail: str = "") -> None:
    ensure_tables(db)
    db.execute(
        "INSERT OR REPLACE INTO archived_copies (url, source, found, copy_url, copy_datetime,"
        " http_status, snapshot_id, looked_up_at, detail) VALUES (?,?,?,?,?,?,?,?,?)",
        [url, source, int(copy is not None), copy.url if copy else None,
         copy.datetime if copy else None, copy.http_status if copy else None,
         copy.snapshot_id if copy else None, now_iso(), detail],
    )


def cached(db: sqlite_utils.Database, url: str, source: str,
           max_age: timedelta = RECHECK_AFTER) -> tuple[bool, Copy | None]:
    """(known, copy): known is False when never asked or the answer is too old."""
    row = db.execute(
        "SELECT found, copy_url, copy_datetime, http_status, snapshot_id, looked_up_at"
        " FROM archived_copies WHERE url=? AND source=?", [url, source]).fetchone()
    if row is None:
        return False, None
    when = _moment(row[5])
    if when is None or datetime.now(UTC) - when > max_age:
        return False, None
    if not row[0]:
        return True, None
    return True, Copy(source, row[1], row[2] or "", row[3], row[4])


Lookup = Callable[[Target], "Copy | None"]  # raises LookupUnavailable when it cannot say


class LookupUnavailable(Exception):
    """An archive could not answer now (rate limited, down): nothing is cached."""


def choose_copy(db: sqlite_utils.Database, target: Target,
                lookups: Sequence[tuple[str, Lookup]] = (),
                warc_folder: Path | None = None) -> Copy | None:
    """Ours first, then each external archive in the order given; every answer is cached."""
    ours = own_copy(db, target.url, target.first_failed, warc_folder)
    remember(db, target.url, OURS, ours)
    if ours is not None:
        return ours
    for source, lookup in lookups:
        known, copy = cached(db, target.url, source)
        if not known:
            try:
                copy = lookup(target)
            except LookupUnavailable:
                continue
            remember(db, target.url, source, copy)
        if copy is not None:
            return copy
    return None


def stored_copies(db: sqlite_utils.Database) -> dict[str, list[Copy]]:
    """Every found copy per link, ours first then by source order."""
    ensure_tables(db)
    order = {OURS: 0, WAYBACK: 1, MEMENTO: 2}
    out: dict[str, list[Copy]] = {}
    for url, source, copy_url, when, status, snap in db.execute(
        "SELECT url, source, copy_url, copy_datetime, http_status, snapshot_id"
        " FROM archived_copies WHERE found=1"
    ):
        out.setdefault(url, []).append(Copy(source, copy_url, when or "", status, snap))
    for copies in out.values():
        copies.sort(key=lambda c: order.get(c.source, 9))
    return out


def link_targets(db: sqlite_utils.Database,
                 keep: Callable[[str | None, str | None], bool]) -> list[Target]:
    """Links whose (state, latest check status) `keep` accepts, each with the earliest citing
    post's date: one query for `fix` (dead links) and the report (every failing link)."""
    kept = [(url, first_failed) for url, state, first_failed, status in db.execute(
        "SELECT s.url, s.state, s.first_failed, c.status FROM link_state s"
        " LEFT JOIN checks c ON c.run_id = s.last_run AND c.url = s.url ORDER BY s.url"
    ) if keep(state, status)]
    # the posts' dates only for the links kept: a join per citation of every link cost a
    # report on 1,000,000 links more than the report itself
    return [Target(url, first_failed, db.execute(
        "SELECT min(p.date) FROM occurrences o JOIN posts p ON p.path = o.post WHERE o.url = ?",
        [url]).fetchone()[0]) for url, first_failed in kept]


def _failing(state: str | None, status: str | None) -> bool:
    """What the report lists as broken or failing (report/data.py LinkView.is_failure)."""
    return state == State.DEAD or status in FAILURES


def refresh_copies(db: sqlite_utils.Database, lookups: Sequence[tuple[str, Lookup]] = (),
                   warc_folder: Path | None = None) -> int:
    """Choose (and cache) a copy for every failing link, as the report shows them; returns
    how many have one."""
    ensure_tables(db)
    targets = link_targets(db, _failing)
    if lookups:  # no write transaction held across slow network lookups
        return sum(choose_copy(db, t, lookups, warc_folder) is not None for t in targets)
    with Transaction(db):
        return sum(choose_copy(db, t, (), warc_folder) is not None for t in targets)
