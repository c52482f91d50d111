"""The report's links, streamed from the history in URL order, never all in memory.

Three queries walk side by side in URL order (a merge join in Python): the links with
their state, latest check (``link_state.last_run`` and the unique (run_id, url) index:
one lookup per link, however many runs are kept) and baseline status; their
occurrences with their posts' titles and dates; our latest good capture of each.
At 1,000,000 links × 30 runs nothing here scans the 30 million checks.

`LinkStream` is what `Report.links` and `Report.shown` hold: a sequence that runs the
queries again each time it is walked, so a report is built in one pass (tally.py) and
rendered in another with memory that does not grow with the number of links.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import groupby, islice
from operator import itemgetter
from typing import Any, overload

import sqlite_utils

from linkkeeper.report.copies import ArchivedCopy, chosen_copies, served_url, snapshot_timestamp
from linkkeeper.report.model import (
    ALIVE_STATUSES,
    CHANGE_NEW,
    CHANGE_OTHER,
    CHANGE_RECOVERED,
    Citations,
    LinkView,
    Occurrence,
)
from linkkeeper.vocab import FAILURES, State


@dataclass
class StreamSpec:
    """What the stream needs to know besides the database."""

    baseline: int | None  # the run compared against (None: none, nothing "changed")
    serve_url: str | None = None
    chosen: dict[str, tuple[ArchivedCopy | None, bool]] = field(default_factory=dict)


def _links_sql(baseline: int | None) -> str:
    # A link's status as of the baseline matters only when it was checked after it: the
    # baseline run's own check (one lookup), else its latest check before (rarely needed).
    before = "NULL" if baseline is None else (
        "CASE WHEN c.run_id > :baseline THEN coalesce(b.status, (SELECT status FROM checks"
        " WHERE url = l.url AND run_id <= :baseline ORDER BY id DESC LIMIT 1)) END")
    join = "" if baseline is None else (
        " LEFT JOIN checks b ON b.run_id = :baseline AND b.url = l.url")
    return (
        "SELECT l.url, l.host, l.status, l.reason, s.state, s.since, s.first_failed,"
        " s.last_ok, c.status, c.http_status, c.reason, c.checked_at, c.run_id, c.final_url, "
        + before + " FROM links l LEFT JOIN link_state s ON s.url = l.url"
        " LEFT JOIN checks c ON c.run_id = s.last_run AND c.url = l.url" + join
        + " ORDER BY l.url"
    )


_OCCURRENCES = (
    "SELECT o.url, o.post, o.kind, o.line, o.text, p.title, p.date FROM occurrences o"
    " LEFT JOIN posts p ON p.path = o.post ORDER BY o.url, o.post, o.line, o.id"
)
# The same rows without the posts (read once, see _PostDates), in table order and sorted:
# through the (url, kind) index every row would be a random read of the table
_CITATIONS = (
    "SELECT url, post, kind, line, text FROM occurrences NOT INDEXED"
    " ORDER BY url, post, line, id"
)
# SQLite takes the bare columns of a max() aggregate from the row holding the maximum
_CAPTURES = (
    "SELECT url, max(date), warc_file, http_status FROM snapshots"
    " WHERE coalesce(http_status, 200) < 400 GROUP BY url ORDER BY url"
)


class _Captures:
    """The latest captures in URL order, read alongside a walk over the links."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        has_table = db.execute("SELECT 1 FROM sqlite_master WHERE name='snapshots'").fetchone()
        self.rows: Iterator[tuple[Any, ...]] = iter(db.execute(_CAPTURES) if has_table else ())
        self.row = next(self.rows, None)

    def at(self, url: str) -> tuple[Any, ...] | None:
        """The capture of `url`, or None (URLs are asked for in increasing order)."""
        while self.row is not None and self.row[0] < url:
            self.row = next(self.rows, None)
        return self.row if self.row is not None and self.row[0] == url else None


def _finished(link: LinkView, row: tuple[Any, ...], capture: tuple[Any, ...] | None,
              spec: StreamSpec) -> LinkView:
    """The link with its archived copy and its change against the baseline."""
    if capture is not None:
        link.archive = _capture(capture, spec.serve_url)
    if link.url in spec.chosen and link.is_failure:
        link.archive, link.looked_everywhere = spec.chosen[link.url]
    _mark_change(link, row[14], spec.baseline)
    return link


def stream_links(db: sqlite_utils.Database, spec: StreamSpec, *,
                 cited_max: int | None = None) -> Iterator[LinkView]:
    """Every link some post cites, in URL order, with its latest status, state, change
    against the baseline and archived copy; with `cited_max`, at most that many of its
    occurrences (for readers that need the rest of the link only)."""
    rows = db.execute(_links_sql(spec.baseline), {"baseline": spec.baseline})
    occurrences = db.execute(_OCCURRENCES)
    captures = _Captures(db)
    occ = next(occurrences, None)
    for row in rows:
        url = row[0]
        cited: list[Occurrence] = []
        while occ is not None and occ[0] <= url:
            if occ[0] == url and (cited_max is None or len(cited) < cited_max):
                cited.append(Occurrence(occ[1], occ[3], occ[2], occ[4] or "", occ[5] or "",
                                        _post_date(occ[6])))
            occ = next(occurrences, None)
        if not cited:  # no post cites it any more
            continue
        yield _finished(_link(row, cited), row, captures.at(url), spec)


SORT_KB = 16_384  # memory for the sort of every citation; past it the sort spills to files


def _sorted(db: sqlite_utils.Database, sql: str) -> Iterator[tuple[Any, ...]]:
    """Run a query that sorts millions of rows with a smaller sort buffer than the page
    cache's 64 MB: SQLite sizes a sort by the cache, and that memory, freed after the
    sort, stayed in the process for the whole build."""
    size = db.execute("PRAGMA cache_size").fetchone()[0]
    db.execute(f"PRAGMA cache_size=-{SORT_KB}")
    try:
        return iter(db.execute(sql))  # the sort runs here, before the first row
    finally:
        db.execute(f"PRAGMA cache_size={int(size)}")


def _post_date(value: Any) -> str:
    return value if isinstance(value, str) else str(value or "")


class _PostDates:
    """The posts' years for every citation, read once in table order (one short string a
    post, not a join per citation), and the title and date of the posts the lists name,
    each looked up once by its key."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db
        years: dict[str, str] = {}
        self.years = {path: years.setdefault(year, year) for path, year in (
            (path, _post_date(day)[:4]) for path, day in db.execute(
                "SELECT path, date FROM posts"))}
        self.named: dict[str, tuple[str, str]] = {}

    def meta(self, path: str) -> tuple[str, str]:
        """(title or "", date) as the join gave them ("", "" for a post not in `posts`)."""
        found = self.named.get(path)
        if found is None:
            row = self.db.execute("SELECT title, date FROM posts WHERE path = ?",
                                  [path]).fetchone()
            found = self.named[path] = (row[0] or "", _post_date(row[1])) if row else ("", "")
        return found


def counted_links(db: sqlite_utils.Database, spec: StreamSpec) -> Iterator[LinkView]:
    """The links of `stream_links`, for counting: each with its `citations`, and its
    occurrences only when the lists keep it (failing or changed); cheaper per link (no
    object per citation, no join to `posts`)."""
    rows = db.execute(_links_sql(spec.baseline), {"baseline": spec.baseline})
    groups = groupby(_sorted(db, _CITATIONS), itemgetter(0))
    posts = _PostDates(db)
    years, meta = posts.years, posts.meta
    captures = _Captures(db)
    group = next(groups, None)
    for row in rows:
        url = row[0]
        while group is not None and group[0] < url:
            group = next(groups, None)
        if group is None or group[0] != url:  # no post cites it any more
            continue
        cited = list(group[1])
        group = next(groups, None)
        link = _finished(_link(row, []), row, captures.at(url), spec)
        first = cited[0][1]
        if len(cited) == 1:
            link.citations = Citations(1, first, (cited[0][2],), (years.get(first, ""),))
        else:
            link.citations = Citations(len(cited), first, tuple(sorted({c[2] for c in cited})),
                                       tuple({years.get(c[1], "") for c in cited}))
        if link.change or link.is_failure:
            link.occurrences = [Occurrence(c[1], c[3], c[2], c[4] or "", *meta(c[1]))
                                for c in cited]
        yield link


def _link(row: tuple[Any, ...], cited: list[Occurrence]) -> LinkView:
    (url, host, scan_status, scan_reason, state, since, first_failed, last_ok, status, code,
     reason, checked, run_id, final) = row[:14]
    if not status:  # never checked (or its check is gone): what the scan said
        state = since = first_failed = last_ok = code = checked = run_id = final = None
        status = scan_status or "unchecked"
        reason = scan_reason or ("" if scan_status else "not checked yet")
    return LinkView(url=url, host=host or "", status=status, http_status=code,
                    reason=reason or "", state=state or State.UNCHECKED, state_since=since,
                    first_failed=first_failed, last_ok=last_ok, checked_at=checked,
                    run_id=run_id, final_url=final, occurrences=cited)


def _capture(row: tuple[Any, ...], serve_url: str | None) -> ArchivedCopy | None:
    url, when, warc_file, code = row
    # iso(): '2026-10-01T02:00:00+00:00', read without a regular expression
    if when and len(when) >= 19 and when[4] == "-" and when[10] == "T":
        stamp = f"{when[:4]}{when[5:7]}{when[8:10]}{when[11:13]}{when[14:16]}{when[17:19]}"
        stamp = stamp if stamp.isdigit() else snapshot_timestamp(when)
    else:
        stamp = snapshot_timestamp(when)
    if not stamp:
        return None
    return ArchivedCopy(stamp, when, warc_file or "", code, link=served_url(serve_url, stamp, url))


def _mark_change(link: LinkView, before: str | None, baseline: int | None) -> None:
    """Newly broken: from non-failure to failure after the baseline; recovered: back to
    ok/redirected; changed: any other move."""
    link.baseline_status = before
    if link.run_id is None or (baseline is not None and link.run_id <= baseline):
        return  # not checked since the baseline: nothing new to say
    new = link.status
    if new in FAILURES and before not in FAILURES:
        link.change = CHANGE_NEW
    elif new in ALIVE_STATUSES and before in FAILURES:
        link.change = CHANGE_RECOVERED
    elif before is not None and before != new:
        link.change = CHANGE_OTHER


class LinkStream:
    """A sequence of links read from the database again on each walk (see module doc)."""

    def __init__(self, db: sqlite_utils.Database, spec: StreamSpec, *, count: int,
                 changed_only: bool = False) -> None:
        self.db, self.spec, self.count, self.changed_only = db, spec, count, changed_only

    def __iter__(self) -> Iterator[LinkView]:
        for link in stream_links(self.db, self.spec):
            if not self.changed_only or link.change is not None:
                yield link

    def __len__(self) -> int:
        return self.count

    def __bool__(self) -> bool:
        return self.count > 0

    @overload
    def __getitem__(self, index: int) -> LinkView: ...

    @overload
    def __getitem__(self, index: slice) -> list[LinkView]: ...

    def __getitem__(self, index: int | slice) -> LinkView | list[LinkView]:
        if isinstance(index, slice):
            return list(self)[index] if index.step or (index.start or 0) < 0 or (
                index.stop is not None and index.stop < 0) else list(
                islice(self, index.start, index.stop))
        if index < 0:
            index += self.count
        found = next(islice(self, index, None), None)
        if found is None:
            raise IndexError(index)
        return found


def brief(links: Iterable[LinkView]) -> Iterator[LinkView]:
    """The links of `links` with at most one occurrence each when they are streamed: one
    URL may be cited by every post, and some readers need only its status and change."""
    if isinstance(links, LinkStream):
        return (link for link in stream_links(links.db, links.spec, cited_max=1)
                if not links.changed_only or link.change is not None)
    return iter(links)


def open_stream(db: sqlite_utils.Database, baseline: int | None,
                serve_url: str | None) -> StreamSpec:
    """The spec of a report's stream: the copies chosen for failing links are few (looked
    up only for them), so they are read once, in full."""
    return StreamSpec(baseline, serve_url, chosen_copies(db, serve_url))
