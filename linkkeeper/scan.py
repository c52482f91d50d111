"""Stage 1: read a site's posts and record every link they contain (the inventory).

Incremental: a post whose size and mtime are unchanged is not even read; one
whose bytes hash the same is not re-parsed; an edited post has its occurrences
replaced; a deleted post loses its row and occurrences. `links` rows are never
deleted (history tables refer to them), only their `last_seen` moves.

Speed (BENCHMARKS.md, "Scan"): parsing is most of the cost. Posts are parsed in
batches of `BATCH` posts or `BATCH_BYTES` bytes into plain row tuples (in worker
processes with ``jobs`` > 1, where one batch is parsed while the one before it is
written) and each batch is written in one transaction with one ``executemany`` per
table; a URL's `links` row is upserted about once per scan. A first scan loads the
empty `occurrences` and `links` tables with their secondary indexes dropped and builds
them at the end. Memory stays flat with the size of the archive (posts are listed as a
stream, batches are bounded in bytes, SQLite's cache is small while scanning), and a
scan that changed nothing reuses the last scan's totals (`scan_totals`).
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import sqlite_utils

from linkkeeper.clock import iso, utcnow
from linkkeeper.db import SCHEMA_VERSION, Transaction, exclusive, indexes_deferred, pragmas
from linkkeeper.extract.post import DEFAULT_SOURCE_KEYS, ParsedPost, parse_post
from linkkeeper.site import PostUnreadable, Site, stored_name
from linkkeeper.urls import NO_SITE_URL

BATCH = 500  # posts per transaction
# ... and at most this many bytes of posts: a batch holds its posts' bytes and rows, and an
# archive sorted by name can hold long runs of big pages (332 copies of a 225 KB page of
# comment spam made one batch 110 MB of posts and several hundred MB of rows)
BATCH_BYTES = 6 << 20
# SQLite's page cache during a scan, KiB: a scan writes each page about once, so a bigger
# cache buys little speed and costs its size in RAM (64 MB of it was a fifth of the peak)
SCAN_CACHE_KIB = 8192
SCAN_CHECKPOINT_PAGES = 16384  # WAL pages between checkpoints during a scan (64 MB)
UPSERTED_CAP = 50_000  # URLs a scan remembers as written (see `_Writer.upserted`)
LOCK_WAIT = 120.0  # seconds a scan waits for another one on the same database


@dataclass
class ScanProblem:
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


@dataclass
class ScanSummary:
    posts: int = 0
    parsed: int = 0  # (re)parsed this time
    unchanged: int = 0
    removed: int = 0
    posts_with_problems: int = 0
    occurrences: int = 0
    distinct_urls: int = 0
    urls_by_kind: dict[str, int] = field(default_factory=dict)
    urls_by_status: dict[str, int] = field(default_factory=dict)
    top_hosts: list[tuple[str, int]] = field(default_factory=list)
    problems: list[ScanProblem] = field(default_factory=list)
    site_url: str | None = None
    elapsed_s: float = 0.0

    def file_problems(self) -> list[ScanProblem]:
        """Problems with a file itself (line 0: unreadable, not a regular file, an odd name),
        which no post row records: the scan that met them is the one to say so."""
        return [p for p in self.problems if p.line == 0]

    def as_dict(self) -> dict[str, object]:
        return {
            "posts": self.posts,
            "parsed": self.parsed,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "posts_with_problems": self.posts_with_problems,
            "occurrences": self.occurrences,
            "distinct_urls": self.distinct_urls,
            "urls_by_kind": self.urls_by_kind,
            "urls_by_status": self.urls_by_status,
            "top_hosts": [{"host": h, "urls": n} for h, n in self.top_hosts],
            "problems": [p.__dict__ for p in self.problems],
            "site_url": self.site_url,
            "elapsed_s": round(self.elapsed_s, 3),
        }


def scan_site(
    db: sqlite_utils.Database,
    site: Site,
    *,
    source_keys: Sequence[str] = DEFAULT_SOURCE_KEYS,
    force: bool = False,
    on_problem: Callable[[ScanProblem], None] | None = None,
    jobs: int = 0,
    lock_wait: float = LOCK_WAIT,
) -> ScanSummary:
    """Bring the inventory tables up to date with the site's files.

    Parsing is the CPU cost: with `jobs` > 1 posts are parsed in that many
    worker processes (SQLite writes stay here, in order); `jobs=0` means one
    per CPU once a scan has a full batch to parse, so small rescans never pay
    for starting processes. One scan at a time per database: a second one waits
    for the writer lock (`db.exclusive`) up to ``lock_wait`` seconds, then
    raises `DatabaseBusy`.
    """
    with exclusive(db, wait=lock_wait, doing="scan"):
        return _scan(db, site, source_keys, force, on_problem, jobs)


def _scan(
    db: sqlite_utils.Database,
    site: Site,
    source_keys: Sequence[str],
    force: bool,
    on_problem: Callable[[ScanProblem], None] | None,
    jobs: int,
) -> ScanSummary:
    t0 = time.perf_counter()
    summary = ScanSummary(site_url=site.url)

    def report(problem: ScanProblem) -> None:
        summary.problems.append(problem)
        if on_problem:
            on_problem(problem)

    # path -> (size, mtime_ns): all a post needs to be skipped unread (its hash is asked
    # for only when they differ, so 130,000 digests are not held for a no-change rescan)
    known: dict[str, tuple[int, int]] = {
        row[0]: (row[1], row[2]) for row in db.execute("SELECT path, size, mtime_ns FROM posts")
    }
    now = iso(utcnow())
    gone = set(known)  # the posts not found (yet): deleted, once the walk is done
    changed = _changed_posts(db, site, known, force, gone, summary, report)
    parse = partial(_parse_one, site_url=site.url, source_keys=tuple(source_keys), now=now)
    writer = _Writer(db, known, now, summary, report)
    with (
        _scan_pragmas(db),
        _bulk_load(db, known),
        _fewer_collections(),
        _Parser(parse, jobs) as parser,
    ):
        for batch in _batches(changed, BATCH, BATCH_BYTES):
            for done in parser.submit(batch):
                writer.write(*done)
        for done in parser.finish():
            writer.write(*done)
    summary.removed = _remove_gone(db, [p for p in known if p in gone])
    _fill_totals(db, summary, changed=bool(summary.parsed or summary.removed))
    summary.elapsed_s = time.perf_counter() - t0
    return summary


# a changed post: path relative to the site, its bytes, their sha256, size, mtime_ns
_Changed = tuple[str, bytes, str, int, int]


def _changed_posts(
    db: sqlite_utils.Database,
    site: Site,
    known: dict[str, tuple[int, int]],
    force: bool,
    gone: set[str],
    summary: ScanSummary,
    report: Callable[[ScanProblem], None],
) -> Iterator[_Changed]:
    """The posts to (re)parse, with their bytes. The others are only counted: a post whose
    size and mtime are unchanged is not read, one whose bytes hash the same has only its
    stat updated. Every post found leaves ``gone`` (what remains there was deleted)."""
    for rel, path in site.post_files():  # each once, streamed
        gone.discard(rel)
        summary.posts += 1
        if "\\x" in rel and stored_name(path) != path:
            report(ScanProblem(rel, 0, "file name is not UTF-8: recorded with its bytes as \\xNN"))
        try:
            st = os.stat(path)
        except OSError as exc:
            report(ScanProblem(rel, 0, f"cannot read: {exc.strerror or exc}"))
            continue
        old = known.get(rel)
        if not force and old and old[0] == st.st_size and old[1] == st.st_mtime_ns:
            summary.unchanged += 1
            continue
        try:
            data, st = site.read_post(path)
        except PostUnreadable as exc:
            report(ScanProblem(rel, 0, str(exc)))
            continue
        digest = hashlib.sha256(data).hexdigest()
        if not force and old and _stored_digest(db, rel) == digest:
            db.execute(
                "UPDATE posts SET size=?, mtime_ns=? WHERE path=?",
                [st.st_size, st.st_mtime_ns, rel],
            )
            summary.unchanged += 1
            continue
        yield rel, data, digest, st.st_size, st.st_mtime_ns


def _stored_digest(db: sqlite_utils.Database, rel: str) -> str | None:
    row = db.execute("SELECT sha256 FROM posts WHERE path = ?", [rel]).fetchone()
    return row[0] if row else None


def _batches(items: Iterator[_Changed], size: int, max_bytes: int) -> Iterator[list[_Changed]]:
    """Lists of at most ``size`` posts and (but for a single bigger post) ``max_bytes``."""
    batch: list[_Changed] = []
    held = 0
    for item in items:
        if batch and held + len(item[1]) > max_bytes:
            yield batch
            batch, held = [], 0
        batch.append(item)
        held += len(item[1])
        if len(batch) >= size:
            yield batch
            batch, held = [], 0
    if batch:
        yield batch


class _Parser:
    """Batches of posts → their rows, here or in worker processes. With workers, one batch
    is parsed while the one before it is written; results come back in order."""

    def __init__(self, parse: Callable[[_Changed], _Rows], jobs: int) -> None:
        self.parse = parse
        self.jobs = jobs
        self.workers = jobs or (os.cpu_count() or 1)
        self.pool: ProcessPoolExecutor | None = None
        self.in_flight: list[tuple[list[_Changed], Iterator[_Rows]]] = []

    def __enter__(self) -> _Parser:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool:
            self.pool.shutdown()

    def submit(self, batch: list[_Changed]) -> Iterator[tuple[list[_Changed], Iterator[_Rows]]]:
        """Start parsing ``batch``; yields the batches ready to write (with their rows)."""
        full = len(batch) >= BATCH or 2 * sum(len(item[1]) for item in batch) >= BATCH_BYTES
        if self.pool is None and self.workers > 1 and (self.jobs > 1 or full):
            self.pool = ProcessPoolExecutor(max_workers=self.workers)
        pool = self.pool
        results = pool.map(self.parse, batch, chunksize=16) if pool else map(self.parse, batch)
        self.in_flight.append((batch, results))
        while self.in_flight and (pool is None or len(self.in_flight) > 1):
            yield self.in_flight.pop(0)

    def finish(self) -> Iterator[tuple[list[_Changed], Iterator[_Rows]]]:
        while self.in_flight:
            yield self.in_flight.pop(0)


class _Writer:
    """Each parsed batch in one transaction, one ``executemany`` per table."""

    def __init__(
        self,
        db: sqlite_utils.Database,
        known: dict[str, tuple[int, int]],
        now: str,
        summary: ScanSummary,
        report: Callable[[ScanProblem], None],
    ) -> None:
        self.db, self.known, self.now = db, known, now
        self.summary, self.report = summary, report
        # URLs whose links row this scan already wrote (True: with its wrapped original), so
        # the icon a thousand posts share is upserted once, not once per batch; bounded
        self.upserted: dict[str, bool] = {}

    def write(self, batch: list[_Changed], results: Iterator[_Rows]) -> None:
        post_rows: list[tuple[object, ...]] = []
        occurrence_rows: list[tuple[object, ...]] = []
        link_rows: list[tuple[object, ...]] = []
        replaced: list[str] = []
        upserted, now = self.upserted, self.now
        if len(upserted) > UPSERTED_CAP:
            upserted.clear()
        for (rel, *_), (post_row, occurrences, links, problems) in zip(batch, results, strict=True):
            post_rows.append(post_row)
            if rel in self.known:
                replaced.append(rel)
            occurrence_rows.extend(occurrences)
            for url, host, status, reason, wraps in links:
                done = upserted.get(url)
                if done is None or (wraps and not done):
                    upserted[url] = wraps is not None
                    link_rows.append((url, host, _scheme(url), status, reason, wraps, now, now))
            for line, message in problems:
                self.report(ScanProblem(rel, line, message))
            self.summary.parsed += 1
        batch.clear()  # its bytes go now, not when the next batch (read meanwhile) replaces it
        self._commit(replaced, post_rows, occurrence_rows, link_rows)

    def _commit(
        self,
        replaced: list[str],
        post_rows: list[tuple[object, ...]],
        occurrence_rows: list[tuple[object, ...]],
        link_rows: list[tuple[object, ...]],
    ) -> None:
        # raw executemany of prepared tuples, not sqlite-utils' insert_all/upsert_all: those
        # take a dict per row and rebuild the SQL per chunk, and a scan writes millions of rows
        with Transaction(self.db) as conn:
            for chunk in _chunks(replaced):  # edited posts: their old occurrences go
                marks = ",".join("?" * len(chunk))
                conn.execute(f"DELETE FROM occurrences WHERE post IN ({marks})", chunk)
            conn.executemany(
                "INSERT OR REPLACE INTO posts (path, title, date, source_url, front_matter,"
                " sha256, size, mtime_ns, ok, problems, occurrence_count, scanned_at)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                post_rows,
            )
            conn.executemany(  # (post, seq) is unique: a row written twice is one row
                "INSERT OR REPLACE INTO occurrences (post, url, kind, line, text, original,"
                " fragment, element, seq) VALUES (?,?,?,?,?,?,?,?,?)",
                occurrence_rows,
            )
            conn.executemany(
                "INSERT INTO links (url, host, scheme, status, reason, wraps, first_seen,"
                " last_seen) VALUES (?,?,?,?,?,?,?,?)"
                " ON CONFLICT(url) DO UPDATE SET last_seen = excluded.last_seen,"
                " wraps = coalesce(excluded.wraps, links.wraps)",
                link_rows,
            )


def _chunks(paths: list[str], size: int = 500) -> Iterator[list[str]]:
    """Slices small enough for one ``IN (?, ...)`` each."""
    for i in range(0, len(paths), size):
        yield paths[i : i + size]


def _remove_gone(db: sqlite_utils.Database, gone: list[str]) -> int:
    """Deleted posts lose their row and occurrences (their links rows stay: history)."""
    if gone:
        with Transaction(db) as conn:
            for chunk in _chunks(gone):
                marks = ",".join("?" * len(chunk))
                conn.execute(f"DELETE FROM occurrences WHERE post IN ({marks})", chunk)
                conn.execute(f"DELETE FROM posts WHERE path IN ({marks})", chunk)
    return len(gone)


def _bulk_load(
    db: sqlite_utils.Database, known: dict[str, tuple[int, int]]
) -> AbstractContextManager[object]:
    """A first scan loads empty tables: their indexes are built once at the end."""
    bulk = [
        table
        for table in ("occurrences", "links")
        if not known and db.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone() is None
    ]
    return indexes_deferred(db, *bulk) if bulk else nullcontext()


def _scan_pragmas(db: sqlite_utils.Database) -> AbstractContextManager[None]:
    """A small page cache and rarer WAL checkpoints while the scan writes, then as before.

    Each checkpoint syncs the file: at the default 1,000 pages a first scan of 20,000 posts
    checkpointed after every batch and waited ~3 s on the disk. Committed batches stay safe
    across a crash of the process (WAL); a power cut can lose the batches written since the
    last checkpoint, which the next scan parses again."""
    return pragmas(db, cache_size=-int(SCAN_CACHE_KIB), wal_autocheckpoint=int(SCAN_CHECKPOINT_PAGES))


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """Parsing makes millions of short-lived objects and no cycles to speak of; the default
    young-generation threshold (700) ran ~450 collections per 20,000 posts, 4% of a scan."""
    threshold = gc.get_threshold()
    gc.set_threshold(max(threshold[0], 20_000), *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)


_Rows = tuple[
    tuple[object, ...],  # the posts row
    list[tuple[object, ...]],  # its occurrences rows
    list[tuple[str, str, str | None, str | None, str | None]],  # url, host, status, reason, wraps
    list[tuple[int, str]],  # problems: line, message
]


def _parse_one(
    item: _Changed,
    *,
    site_url: str | None,
    source_keys: tuple[str, ...],
    now: str,
) -> _Rows:
    """One post parsed into the rows `_Writer` writes: plain tuples, which a worker process
    sends back much faster than the objects parse_post returns."""
    rel, data, digest, size, mtime_ns = item
    parsed = parse_post(data, path=rel, site_url=site_url, source_keys=source_keys)
    occurrences = parsed.occurrences
    return (
        _post_row(rel, parsed, digest, size, mtime_ns, now),
        [
            (rel, o.url, o.kind, o.line, o.text, o.original, o.fragment, o.element, seq)
            for seq, o in enumerate(occurrences)
        ],
        [(o.url, o.host, o.status, o.reason or None, o.wraps) for o in occurrences],
        [(p.line, p.message) for p in parsed.problems],
    )


def _post_row(
    rel: str, parsed: ParsedPost, digest: str, size: int, mtime_ns: int, now: str
) -> tuple[object, ...]:
    problems = [{"line": p.line, "message": p.message} for p in parsed.problems]
    return (
        rel,
        parsed.title,
        parsed.date,
        parsed.source_url,
        json.dumps(parsed.front_matter, ensure_ascii=False, default=str),
        digest,
        size,
        mtime_ns,
        1 if parsed.ok else 0,
        json.dumps(problems, ensure_ascii=False) if problems else None,
        len(parsed.occurrences),
        now,
    )


def _scheme(url: str) -> str:
    head, sep, _ = url.partition(":")
    return head.lower() if sep and head.isascii() and len(head) < 20 else ""


# The totals of the last scan, with the inventory they were counted on: a scan that changed
# nothing reuses them instead of counting 2 million occurrences again (seconds on a big
# archive; what a no-change rescan spent most of its time on). Created on first use, like
# the repair tables; any other writer (merge) changes the fingerprint and they are counted.
TOTALS_TABLE = "scan_totals"
_TOTALS_SQL = f"""CREATE TABLE IF NOT EXISTS [{TOTALS_TABLE}] (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    fingerprint TEXT NOT NULL,  -- the inventory counted (`_fingerprint`)
    totals TEXT NOT NULL)       -- JSON: ScanSummary's totals"""
_TOTAL_FIELDS = ("posts_with_problems", "urls_by_kind", "urls_by_status", "distinct_urls")


def _fingerprint(db: sqlite_utils.Database, occurrences: int) -> str:
    """Changes whenever rows of the inventory are added, replaced or removed (a replaced
    row gets a new rowid); cheap: counts from the smallest indexes and the largest rowids."""
    q = db.execute
    posts = q("SELECT count(*), max(rowid) FROM posts").fetchone()
    links = q("SELECT count(*), max(rowid) FROM links").fetchone()
    last = q("SELECT max(id) FROM occurrences").fetchone()[0]
    return json.dumps([SCHEMA_VERSION, *posts, *links, occurrences, last])


def _fill_totals(db: sqlite_utils.Database, summary: ScanSummary, changed: bool) -> None:
    """Totals over the whole inventory (not just this scan): counted in three index-backed
    passes, or those of the last scan when neither this scan nor anything else changed it."""
    summary.occurrences = db.execute("SELECT count(*) FROM occurrences").fetchone()[0]
    fingerprint = _fingerprint(db, summary.occurrences)
    if not changed and (saved := _saved_totals(db, fingerprint)) is not None:
        for name in _TOTAL_FIELDS:
            setattr(summary, name, saved[name])
        summary.top_hosts = [(host, n) for host, n in saved["top_hosts"]]
        return
    _count_totals(db, summary)
    totals = {name: getattr(summary, name) for name in (*_TOTAL_FIELDS, "top_hosts")}
    with Transaction(db) as conn:
        conn.execute(_TOTALS_SQL)
        conn.execute(
            f"INSERT OR REPLACE INTO [{TOTALS_TABLE}] (id, fingerprint, totals) VALUES (1, ?, ?)",
            [fingerprint, json.dumps(totals, ensure_ascii=False)],
        )


def _saved_totals(db: sqlite_utils.Database, fingerprint: str) -> dict[str, Any] | None:
    try:
        row = db.execute(
            f"SELECT fingerprint, totals FROM [{TOTALS_TABLE}] WHERE id = 1").fetchone()
    except sqlite3.OperationalError:  # no such table: no scan saved totals yet
        return None
    if row is None or row[0] != fingerprint:
        return None
    totals = json.loads(row[1])
    return totals if isinstance(totals, dict) and set(_TOTAL_FIELDS) <= set(totals) else None


def _count_totals(db: sqlite_utils.Database, summary: ScanSummary) -> None:
    q = db.execute
    summary.posts_with_problems = q(
        "SELECT count(*) FROM posts WHERE problems IS NOT NULL OR ok = 0"
    ).fetchone()[0]
    summary.urls_by_kind = dict(
        q(
            "SELECT kind, count(*) FROM (SELECT DISTINCT url, kind FROM occurrences)"
            " GROUP BY kind ORDER BY 2 DESC, 1"
        )
    )
    status_counts: Counter[str] = Counter()
    host_counts: Counter[str] = Counter()
    # links rows outlive deleted posts (history refers to them): count only cited ones
    for host, status, n in q(
        "SELECT l.host, l.status, count(*) FROM links l"
        " WHERE EXISTS (SELECT 1 FROM occurrences o WHERE o.url = l.url) GROUP BY 1, 2"
    ):
        status_counts[status or "checkable"] += n
        if status is None and host:
            host_counts[host] += n
    summary.distinct_urls = sum(status_counts.values())
    summary.urls_by_status = dict(status_counts)
    summary.top_hosts = sorted(host_counts.items(), key=lambda hn: (-hn[1], hn[0]))[:10]


# -- what the inventory says about the site (read by the CLI after a scan) ------------------------


def problem_posts(db: sqlite_utils.Database, limit: int | None = None
                  ) -> tuple[int, list[ScanProblem]]:
    """(posts with problems, the first `limit` problems by path): shown after every scan,
    not only by the scan that parsed them."""
    count = db.execute(
        "SELECT count(*) FROM posts WHERE problems IS NOT NULL OR ok = 0").fetchone()[0]
    rows = db.execute(
        "SELECT path, problems FROM posts WHERE problems IS NOT NULL OR ok = 0 ORDER BY path"
        + (" LIMIT ?" if limit is not None else ""), [limit] if limit is not None else [])
    found: list[ScanProblem] = []
    for path, problems in rows:
        try:
            items = json.loads(problems or "[]") or [{}]
        except ValueError:
            items = [{}]
        first = items[0] if isinstance(items[0], dict) else {}
        found.append(ScanProblem(path, int(first.get("line") or 1),
                                 str(first.get("message") or "could not be parsed")))
    return count, found


def unresolved_relative_links(db: sqlite_utils.Database) -> int:
    """Cited relative links left unchecked because the site's own URL is unknown."""
    return int(db.execute(
        "SELECT count(*) FROM links l WHERE l.status = 'invalid' AND l.reason = ?"
        " AND EXISTS (SELECT 1 FROM occurrences o WHERE o.url = l.url)", [NO_SITE_URL]
    ).fetchone()[0])
