"""The SQLite file: schema, connection settings and small shared queries.

One file holds the inventory (`posts`, `links`, `occurrences`), written by
`scan`, and the history (`runs`, `checks`, `link_state`, `snapshots`), written
by `check`. A scan never deletes history rows. The tables are plain and named
in the vocabulary of vocab.py so that Datasette or the sqlite3 shell can read
them without this code; the README documents every column.

The schema version lives in the file (``PRAGMA user_version``); `connect`
upgrades an older file in place, one numbered step at a time (`MIGRATIONS`),
each step and its version bump in one transaction.

WAL mode lets a report read while a check writes; `synchronous=NORMAL` keeps
committed transactions safe across a process crash (kill -9), which is what a
resumable run needs.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no writer lock
    fcntl = None  # type: ignore[assignment]

# 1: first versioned schema; 2: link_state.next_check_due dropped;
# 3: runs.degraded (why a run's failures do not count: truth.run_verdict);
# 4: occurrences.seq, unique per post (a duplicated inventory cannot be written)
SCHEMA_VERSION = 4
MAX_ROW_ID = 2**63 - 1  # SQLite's largest integer: a larger id asked for names no row

# Columns in declaration order; sqlite-utils creates the tables from these.
TABLES: dict[str, dict[str, Any]] = {
    "posts": {
        "columns": {
            "path": str,  # relative to the site root, '/'-separated
            "title": str,
            "date": str,
            "source_url": str,
            "front_matter": str,  # JSON
            "sha256": str,
            "size": int,
            "mtime_ns": int,
            "ok": int,  # 0 when the post could not be parsed
            "problems": str,  # JSON list of {"line", "message"}
            "occurrence_count": int,
            "scanned_at": str,
        },
        "pk": "path",
    },
    "links": {
        "columns": {
            "url": str,  # normalised key (no fragment)
            "host": str,
            "scheme": str,
            "status": str,  # 'excluded' / 'invalid' decided at scan time, else NULL
            "reason": str,
            "wraps": str,  # the original behind an image proxy
            "first_seen": str,
            "last_seen": str,
        },
        "pk": "url",
    },
    "occurrences": {
        "columns": {
            "id": int,
            "post": str,
            "url": str,
            "kind": str,
            "line": int,
            "text": str,
            "original": str,
            "fragment": str,
            "element": str,
            "seq": int,  # its place among its post's occurrences (0-based): with post, its identity
        },
        "pk": "id",
    },
    "runs": {
        "columns": {
            "id": int,
            "started_at": str,
            "finished_at": str,
            "state": str,  # running | complete | interrupted | abandoned
            "command": str,
            "software": str,
            "options": str,  # JSON
            "insecure": int,
            "total": int,  # URLs planned
            "done": int,
            "requests": int,
            "counts": str,  # JSON {status: n}
            "pid": int,  # process running it, to refuse a second concurrent check
            "host": str,
            "archive": str,  # JSON {captures, revisits, truncations, bytes_written, ...}
            "degraded": str,  # why the run was cut off from the network (its failures not
            # counted: history/truth.py run_verdict), NULL for a run whose checks count
        },
        "pk": "id",
    },
    "checks": {
        "columns": {
            "id": int,
            "run_id": int,
            "url": str,
            "status": str,
            "reason": str,
            "http_status": int,
            "final_url": str,
            "redirects": str,  # JSON [{"url", "status", "location"}]
            "permanent_redirect": int,
            "method": str,
            "attempts": int,
            "requests": int,
            "elapsed_ms": float,
            "checked_at": str,
            "ip": str,
            "content_type": str,
            "content_length": int,
            "error": str,
            "digest": str,  # sha1:BASE32 of the decoded body prefix read (CheckResult.digest)
            "fingerprint": str,
            "evidence": str,  # JSON, room for soft-404 / drift evidence
            "new_failure": int,  # 1 when this check broke a link that was fine before
        },
        "pk": "id",
    },
    "link_state": {
        "columns": {
            "url": str,
            "state": str,
            "since": str,
            "last_status": str,
            "last_checked": str,
            "last_run": int,
            "consecutive_failures": int,
            "first_failed": str,
            "last_ok": str,
            "checks": int,
            "recent": str,  # last outcomes, newest last: O ok, F failure, B blocked/limited
            "first_fingerprint": str,  # main-text sketch first seen alive (drift baseline)
            "first_fingerprint_at": str,
            "last_fingerprint": str,  # the latest one
            "drift": float,  # 1 - similarity to the first fingerprint (>= threshold: drifted)
        },
        "pk": "url",
    },
    "host_failures": {  # a host whose every link failed at the host level in a run (truth.py)
        "columns": {
            "id": int,
            "run_id": int,
            "host": str,
            "links": int,  # links of the host checked in the run, all failed
            "status": str,  # most common failure status
            "reason": str,  # most common reason
            "recorded_at": str,
        },
        "pk": "id",
    },
    "plan": {  # the URLs a run set out to check, so a resumed run finishes the same list
        "columns": {"run_id": int, "seq": int, "url": str},
        "pk": ("run_id", "seq"),
    },
    "snapshots": {
        "columns": {
            "id": int,
            "url": str,
            "run_id": int,
            "warc_file": str,
            "offset": int,
            "length": int,
            "record_type": str,  # response | revisit
            "record_id": str,
            "payload_digest": str,
            "date": str,
            "http_status": int,
            "content_type": str,
            "payload_length": int,
            "truncated": int,
            "revisit_of": int,  # snapshots.id of the original
            "request_offset": int,  # the request record, right after the response/revisit
            "request_length": int,
            "bytes_written": int,  # both records, compressed
        },
        "pk": "id",
    },
}

INDEXES: list[tuple[str, Sequence[str], bool]] = [
    ("occurrences", ["post", "seq"], True),  # one row per occurrence, however many scans
    ("occurrences", ["url", "kind"], False),  # covers "distinct URLs by kind"
    ("links", ["host"], False),
    ("checks", ["run_id", "url"], True),  # exactly once per URL per run
    ("checks", ["url", "checked_at"], False),
    ("link_state", ["state"], False),
    ("snapshots", ["url", "date"], False),
    ("snapshots", ["record_id"], False),
    ("snapshots", ["run_id"], False),
    ("host_failures", ["run_id", "host"], True),
]


def default_db_path(site: Path) -> Path:
    """`linkkeeper.db` next to the site: inside it when it is a folder."""
    return (site if site.is_dir() else site.parent) / "linkkeeper.db"


def default_warc_dir(db_path: Path) -> Path:
    """`warcs/` next to the database: where every command looks for the WARC files."""
    return Path(db_path).parent / "warcs"


_OPENED: list[Path] = []  # databases this process opened: an SQLite error names no file


def opened_databases() -> list[Path]:
    """The database files `connect` opened, so an error (a full disk) can name its file."""
    return list(_OPENED)


BUSY_TIMEOUT = 30.0  # seconds a connection waits for another's write lock


def _write_ahead_log(conn: sqlite3.Connection) -> None:
    """Switch to WAL, waiting for a process switching the same new file at the same moment.

    SQLite answers that race with "database is locked" at once, without the busy timeout:
    two commands started together on a new database (a cron job and a user) failed one."""
    deadline = time.monotonic() + BUSY_TIMEOUT
    pause = 0.005
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.2)


def connect(path: Path | str) -> sqlite_utils.Database:
    """Open (creating if needed) the database with the schema and pragmas in place."""
    if Path(path).absolute() not in _OPENED:
        _OPENED.append(Path(path).absolute())
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT, isolation_level=None)
    _write_ahead_log(conn)
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=OFF")
    # a 64 MB page cache keeps the occurrence/link indexes in memory during big scans
    conn.execute("PRAGMA cache_size=-65536")
    # sorts and temporary tables past the page cache spill to files: an in-memory sort of
    # a million rows (an index build, a plan, one URL's citations) grew with the archive
    conn.execute("PRAGMA temp_store=FILE")
    db = sqlite_utils.Database(conn)
    upgrade(db)
    ensure_schema(db)
    return db


def schema_version(db: sqlite_utils.Database) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def _drop_columns(db: sqlite_utils.Database, table: str, columns: set[str]) -> list[str]:
    """The statements that rebuild `table` without `columns` (indexes kept), if it has any."""
    if not db[table].exists():
        return []
    present = columns & {c.name for c in db[table].columns}
    return db.table(table).transform_sql(drop=present) if present else []


def _v2(db: sqlite_utils.Database) -> list[str]:
    """`link_state.next_check_due` was declared and never written: dropped."""
    return _drop_columns(db, "link_state", {"next_check_due"})


def _v3(db: sqlite_utils.Database) -> list[str]:
    """`runs.degraded`: a run cut off from the network says why (NULL for older runs)."""
    if not db["runs"].exists() or "degraded" in {c.name for c in db["runs"].columns}:
        return []
    return ["ALTER TABLE runs ADD COLUMN degraded TEXT"]


def _v4(db: sqlite_utils.Database) -> list[str]:
    """`occurrences.seq` and a unique (post, seq): two scans at once once wrote every
    occurrence twice. The duplicates go first: a post's rows beyond its recorded
    `occurrence_count` (each scan wrote a post's rows in one transaction, so the first
    scan's are the lowest ids), or, without a count, rows identical in every column."""
    if not db["occurrences"].exists():
        return []
    steps = []
    if "seq" not in {c.name for c in db["occurrences"].columns}:
        steps.append("ALTER TABLE occurrences ADD COLUMN seq INTEGER")
    counted = db["posts"].exists()
    if counted:
        steps.append(
            "DELETE FROM occurrences WHERE id IN (SELECT id FROM (SELECT o.id,"
            " row_number() OVER (PARTITION BY o.post ORDER BY o.id) AS n,"
            " p.occurrence_count AS c FROM occurrences o JOIN posts p ON p.path = o.post"
            " WHERE p.occurrence_count IS NOT NULL) WHERE n > c)"
        )
    uncounted = (
        "post NOT IN (SELECT path FROM posts WHERE occurrence_count IS NOT NULL) AND "
        if counted else ""
    )
    steps += [
        f"DELETE FROM occurrences WHERE {uncounted}id NOT IN (SELECT min(id) FROM occurrences"
        " GROUP BY post, url, kind, line, text, original, fragment, element)",
        "CREATE TEMP TABLE _lk_seq (id INTEGER PRIMARY KEY, seq INTEGER)",
        "INSERT INTO _lk_seq SELECT id, row_number() OVER (PARTITION BY post ORDER BY id) - 1"
        " FROM occurrences",
        "UPDATE occurrences SET seq = (SELECT seq FROM _lk_seq WHERE _lk_seq.id = occurrences.id)",
        "DROP TABLE _lk_seq",
        "DROP INDEX IF EXISTS idx_occurrences_post",  # the unique (post, seq) serves its queries
        "CREATE UNIQUE INDEX IF NOT EXISTS idx_occurrences_post_seq ON occurrences (post, seq)",
    ]
    return steps


# version reached -> the SQL that reaches it from the version before
MIGRATIONS: dict[int, Callable[[sqlite_utils.Database], list[str]]] = {2: _v2, 3: _v3, 4: _v4}


def upgrade(db: sqlite_utils.Database) -> None:
    """Bring an older file up to `SCHEMA_VERSION`, step by step, in place.

    sqlite-utils' ``transform_sql`` writes the table rebuild (SQLite before 3.35
    cannot drop a column); the statements run in our own transaction with the
    version bump, so a step is applied whole or not at all, and a second process
    opening the file at the same time waits and then finds nothing left to do.
    A file newer than this code is left as it is.
    """
    if schema_version(db) >= SCHEMA_VERSION:
        return
    with Transaction(db) as conn:
        version = schema_version(db)
        for target in range(version + 1, SCHEMA_VERSION + 1):
            for sql in MIGRATIONS.get(target, _no_step)(db):
                conn.execute(sql)
            conn.execute(f"PRAGMA user_version={target}")


def _no_step(db: sqlite_utils.Database) -> list[str]:
    return []


def _index_name(table_name: str, cols: Sequence[str]) -> str:
    return f"idx_{table_name}_{'_'.join(cols)}"


@contextmanager
def indexes_deferred(db: sqlite_utils.Database, *table_names: str) -> Iterator[None]:
    """Drop the tables' secondary indexes around a bulk load, then build them again.

    For loading empty tables: one sorted index build at the end is cheaper than
    keeping the indexes up to date through hundreds of thousands of random inserts.
    Unique indexes stay (they are constraints). Rows committed in between are safe;
    if the process dies before the end, the next `connect` (which runs
    `ensure_schema`) builds the missing indexes.
    """
    for name, cols, unique in INDEXES:
        if name in table_names and not unique:
            db.execute(f"DROP INDEX IF EXISTS [{_index_name(name, cols)}]")
    try:
        yield
    finally:
        ensure_schema(db)  # its sorts spill to files past the page cache (`connect`)


_TUNABLE = frozenset({"cache_size", "temp_store", "wal_autocheckpoint"})


@contextmanager
def pragmas(db: sqlite_utils.Database, **values: int | str) -> Iterator[None]:
    """Connection settings for one big operation (a scan, a plan, an index build), then
    back to `connect`'s: memory-frugal where a million rows are sorted or written.

    Only the settings in `_TUNABLE`, and outside a transaction (SQLite ignores a
    `temp_store` change inside one)."""
    unknown = set(values) - _TUNABLE
    if unknown:
        raise ValueError(f"not a tunable pragma: {', '.join(sorted(unknown))}")
    before = {name: db.execute(f"PRAGMA {name}").fetchone()[0] for name in values}
    for name, value in values.items():
        db.execute(f"PRAGMA {name}={value}")
    try:
        yield
    finally:
        for name, value in before.items():
            db.execute(f"PRAGMA {name}={value}")


def ensure_schema(db: sqlite_utils.Database) -> None:
    """Create what is missing, under the write lock: two processes opening a new file at
    once (two scans, two checks) must not both create its tables."""
    if db.conn.in_transaction:
        _ensure_schema(db)
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        _ensure_schema(db)
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _ensure_schema(db: sqlite_utils.Database) -> None:
    existing = set(db.table_names())
    for name, spec in TABLES.items():
        table = db.table(name)
        if name not in existing:
            table.create(spec["columns"], pk=spec["pk"])
        else:  # add columns a newer version introduced; never drop anything
            have = {c.name for c in table.columns}
            for col, typ in spec["columns"].items():
                if col not in have:
                    table.add_column(col, typ)
    for table_name, cols, unique in INDEXES:
        index_name = _index_name(table_name, cols)
        db.execute(
            f"CREATE {'UNIQUE ' if unique else ''}INDEX IF NOT EXISTS [{index_name}] "
            f"ON [{table_name}] ({', '.join(f'[{c}]' for c in cols)})"
        )
    if schema_version(db) < SCHEMA_VERSION:  # a new file (a newer one keeps its own number)
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")


class Transaction:
    """`with Transaction(db):` — one BEGIN/COMMIT around a batch of writes."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.conn = db.conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            try:
                self.conn.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
        else:
            self._rollback()

    def _rollback(self) -> None:
        """Undo what is left of the transaction, never hiding the error that ended it: on a
        full disk SQLite has already rolled back, and a second ROLLBACK's own error ('no
        transaction is active') replaced the one the user needed ('disk is full')."""
        if self.conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")


def executemany(db: sqlite_utils.Database, sql: str, rows: Iterable[Sequence[Any]]) -> None:
    db.conn.executemany(sql, rows)


class DatabaseBusy(Exception):
    """Another live process holds the database's writer lock (`exclusive`)."""


_held: dict[str, int] = {}  # lock files this process holds -> nesting depth


def database_file(db: sqlite_utils.Database) -> str | None:
    """The main database's file, None for an in-memory one."""
    for _, name, file in db.execute("PRAGMA database_list"):
        if name == "main":
            return file or None
    return None


@contextmanager
def exclusive(db: sqlite_utils.Database, *, wait: float = 60.0, doing: str = "scan"
              ) -> Iterator[None]:
    """Hold the database's writer lock (``linkkeeper.db.lock``) while loading it.

    Two scans at once on a fresh file each saw an empty inventory and wrote it whole.
    A kernel lock (fcntl), not a pid row: the kernel drops it the moment its process
    dies (kill -9 included), so there is never a stale lock to judge, no pid reused by
    another process and no gap between "is anyone there?" and "now it is me". A POSIX
    record lock rather than flock: the parsing workers a scan forks do not inherit it,
    so a worker outliving a killed scan cannot keep the database locked. A second
    process waits up to ``wait`` seconds, then `DatabaseBusy`. Re-entrant.
    """
    file = database_file(db)
    if file is None or fcntl is None:
        yield
        return
    lock_path = file + ".lock"
    if lock_path in _held:
        _held[lock_path] += 1
        try:
            yield
        finally:
            _held[lock_path] -= 1
        return
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    try:
        _acquire(fd, file, wait, doing)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {doing}\n".encode(), 0)
        _held[lock_path] = 1
        try:
            yield
        finally:
            del _held[lock_path]
    finally:
        os.close(fd)  # releases the lock


def _acquire(fd: int, file: str, wait: float, doing: str) -> None:
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EAGAIN):
                raise
            if time.monotonic() >= deadline:
                holder = os.pread(fd, 100, 0).decode("ascii", "replace").split()
                who = f"pid {holder[0]}, {' '.join(holder[1:])}" if holder else "another process"
                raise DatabaseBusy(
                    f"{file} is busy ({who}); waited {wait:.0f}s, not starting a second {doing}"
                ) from None
            time.sleep(0.05)
