"""`linkkeeper merge`: the databases and WARC folders of `check --shard I/N` runs, as one.

Each shard database holds the whole inventory (every shard scans the whole site) and the
history of its own hosts. The merged database holds the inventory once and every shard's
history, so `report`, `history`, `serve`, `replay` and `export` read it as if one machine had
done the work. Nightly checks go on in the shard databases; the merged one is for reading
and is merged into again each night.

**Runs.** The shard runs of one night become one merged run. Every shard run is a *source*,
recorded in the ``merge_sources`` table of the merged database under its identity (the
shard it checked, ``runs.options.shard`` such as ``"2/4"`` or, for an unsharded database,
the database's path; its run id there; its ``started_at``). A source already recorded keeps
its merged run. A new one joins the merged run that started nearest to it within
``window`` (12 hours by default: a nightly matrix starts its shards within minutes, the
next night is 24 hours later) and has no source from the same shard yet; else it starts a
new merged run. The merged run's numbers are recomputed from its sources and its checks.

**Idempotence.** Every row has a key that does not depend on the merge: checks
``(run, url)``, host failures ``(run, host)``, link states ``url`` (the latest check wins),
captures ``record_id`` (the WARC-Record-ID), posts ``path`` (the latest scan wins, and a
post's occurrences are replaced only when its content changed), links ``url``. Rows are
upserted on those keys and only written when the source is newer, so merging the same
shards again writes nothing new; merging after another night adds that night.

**Captures.** ``snapshots.warc_file`` is relative to a WARC folder. In the merged database it
is relative to the merged WARC folder (default ``warcs/`` beside it): a shard's file
``2026/11/a.warc.gz`` in ``shards/2/warcs`` becomes ``../shards/2/warcs/2026/11/a.warc.gz``,
which both ``Path(folder) / warc_file`` (replay, export, serve) and pywb's
``archive_paths`` prefix resolve. The merged folder's ``index.cdxj`` is the sorted merge of
the shards' folder indexes with their ``filename`` fields rewritten the same way.

The ``plan`` rows are not merged: they only serve to resume a shard's own interrupted run.
"""

from __future__ import annotations

import heapq
import json
import os
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlite_utils

from linkkeeper.archive.cdx import FOLDER_INDEX_NAME, iter_file_indexes
from linkkeeper.db import TABLES, Transaction, connect
from linkkeeper.history.retention import RETENTION_TABLE
from linkkeeper.history.runs import parse_iso
from linkkeeper.shards import Shard, ShardError

DEFAULT_WINDOW = timedelta(hours=12)
DB_NAME = "linkkeeper.db"
SOURCES_TABLE = "merge_sources"
INVENTORY_TABLE = "merge_inventory"
_SOURCES_SQL = f"""CREATE TABLE IF NOT EXISTS [{SOURCES_TABLE}] (
    shard TEXT NOT NULL,        -- the shard it checked ("2/4"), or the unsharded database's path
    shard_run INTEGER NOT NULL, -- runs.id in the shard's database
    started_at TEXT NOT NULL,
    run_id INTEGER NOT NULL,    -- the merged run it belongs to
    finished_at TEXT, state TEXT, total INTEGER, done INTEGER, requests INTEGER,
    insecure INTEGER, software TEXT, options TEXT, archive TEXT, db TEXT,
    PRIMARY KEY (shard, shard_run, started_at))"""
_SOURCE_COLS = ("finished_at", "state", "total", "done", "requests", "insecure", "software",
                "options", "archive")


class MergeError(Exception):
    """A shard that cannot be merged (missing database, not a linkkeeper database)."""


@dataclass(frozen=True)
class ShardInput:
    """One shard's database and the WARC folder its captures are relative to (if any)."""

    db: Path
    warc_dir: Path | None


@dataclass
class MergeSummary:
    shards: int = 0
    runs_added: int = 0  # merged runs created by this merge
    sources_added: int = 0  # shard runs seen for the first time
    checks: int = 0  # check rows inserted or updated
    snapshots: int = 0  # capture rows inserted
    link_states: int = 0  # link states inserted or updated
    posts: int = 0  # posts inserted, updated or removed
    index_lines: int = 0  # lines of the merged index.cdxj
    runs: list[int] = field(default_factory=list)  # merged run ids touched
    problems: list[str] = field(default_factory=list)  # one line each, for the user

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def locate_shard(path: Path) -> ShardInput:
    """A shard given as its database file or as a folder holding ``linkkeeper.db``.

    Its WARC folder is ``warcs/`` beside the database (the layout `check` uses by default and
    the examples upload); else the ``--warc-dir`` its latest run recorded, if that exists.
    """
    db = path / DB_NAME if path.is_dir() else path
    if not db.is_file():
        raise MergeError(f"{path}: no shard database (expected a .db file or a folder with "
                         f"{DB_NAME})")
    beside = db.parent / "warcs"
    if beside.is_dir():
        return ShardInput(db, beside)
    recorded = _recorded_warc_dir(db)
    return ShardInput(db, recorded if recorded and recorded.is_dir() else None)


def _recorded_warc_dir(db: Path) -> Path | None:
    import sqlite3

    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            row = conn.execute("SELECT options FROM runs ORDER BY id DESC LIMIT 1").fetchone()
    except sqlite3.Error:
        return None
    options = json.loads(row[0]) if row and row[0] else {}
    value = options.get("warc_dir")
    return Path(value) if value else None


def merge(
    out_db: Path,
    shards: list[ShardInput],
    *,
    warc_dir: Path | None = None,
    window: timedelta = DEFAULT_WINDOW,
) -> MergeSummary:
    """Merge `shards` into `out_db` (created if needed); see the module docstring."""
    out_db = Path(out_db)
    folder = Path(warc_dir) if warc_dir else out_db.parent / "warcs"
    if any(_same_file_key(s.db) == _same_file_key(out_db) for s in shards):
        raise MergeError(f"{out_db}: the merged database cannot also be a shard")
    unique: dict[str, ShardInput] = {}  # a shard named twice is merged once
    for shard in shards:
        unique.setdefault(_same_file_key(shard.db), shard)
    shards = list(unique.values())
    out_db.parent.mkdir(parents=True, exist_ok=True)
    db = connect(out_db)
    db.execute(_SOURCES_SQL)
    summary = MergeSummary(shards=len(shards))
    db.execute("CREATE TEMP TABLE IF NOT EXISTS seen_posts (path TEXT PRIMARY KEY)")
    db.execute("DELETE FROM temp.seen_posts")
    for shard in shards:  # every shard readable and whole before anything is merged
        _attach(db, shard.db)
        db.execute("DETACH DATABASE s")
    touched: set[int] = set()
    for shard in shards:
        _attach(db, shard.db)
        try:
            with Transaction(db):
                touched |= _merge_shard(db, shard, folder, window, summary)
        finally:
            db.execute("DETACH DATABASE s")
    with Transaction(db) as conn:
        if shards:
            summary.posts += _drop_vanished_posts(conn)
        for run_id in sorted(touched):
            _recompute_run(conn, run_id)
    summary.runs = sorted(touched)
    summary.index_lines = merge_indexes(folder, [s.warc_dir for s in shards if s.warc_dir])
    db.conn.close()
    return summary


def _same_file_key(path: Path) -> str:
    return str(Path(path).resolve())


def _attach(db: sqlite_utils.Database, path: Path) -> None:
    import sqlite3

    try:
        db.execute("ATTACH DATABASE ? AS s", [str(path)])
    except sqlite3.DatabaseError as exc:
        raise MergeError(f"{path}: not a linkkeeper database ({exc})") from None
    try:
        tables = {r[0] for r in db.execute("SELECT name FROM s.sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as exc:
        db.execute("DETACH DATABASE s")
        raise MergeError(f"{path}: not a linkkeeper database ({exc})") from None
    if not {"runs", "checks", "links"} <= tables:
        db.execute("DETACH DATABASE s")
        raise MergeError(f"{path}: not a linkkeeper database (no runs/checks/links tables)")
    if RETENTION_TABLE in tables:  # its old runs' counts could not be rebuilt from checks
        row = db.execute(f"SELECT pruned_through FROM s.[{RETENTION_TABLE}]").fetchone()
        db.execute("DETACH DATABASE s")
        raise MergeError(f"{path}: the checks of its runs up to {row[0] if row else '?'} were"
                         " pruned (linkkeeper prune); merge shards before pruning, and prune"
                         " the merged database")


def _merge_shard(
    db: sqlite_utils.Database, shard: ShardInput, folder: Path, window: timedelta,
    summary: MergeSummary,
) -> set[int]:
    """One shard, inside one transaction: sources, history, captures, inventory."""
    changed_runs, all_runs = _map_sources(db, shard, window, summary)
    summary.checks += _merge_checks(db, changed_runs)
    summary.link_states += _merge_link_states(db)
    added = _merge_snapshots(db, _prefix(shard.warc_dir, folder))
    summary.snapshots += added
    if added and shard.warc_dir is None:
        summary.problems.append(f"{shard.db}: {added} captures but no WARC folder found "
                                "(expected warcs/ beside it): they will not replay")
    summary.posts += _merge_inventory(db, _same_file_key(shard.db))
    return all_runs


def _columns(db: sqlite_utils.Database, table: str, *, skip: tuple[str, ...] = ("id",)) -> list[str]:
    """The table's columns that the shard has too (an older shard lacks newer columns)."""
    have = {r[1] for r in db.execute(f"PRAGMA s.table_info([{table}])")}
    return [c for c in TABLES[table]["columns"] if c in have and c not in skip]


# -- runs ----------------------------------------------------------------------------------------


def _map_sources(
    db: sqlite_utils.Database, shard: ShardInput, window: timedelta, summary: MergeSummary,
) -> tuple[set[int], set[int]]:
    """Give every run of the shard its merged run; fill temp.run_map (shard run -> merged run).

    Returns the merged runs whose sources changed since the last merge (their checks are
    copied again) and all merged runs of this shard.
    """
    db.execute("CREATE TEMP TABLE IF NOT EXISTS run_map (shard_run INTEGER PRIMARY KEY,"
               " run_id INTEGER NOT NULL, changed INTEGER NOT NULL)")
    db.execute("DELETE FROM temp.run_map")
    cols = ("id", "started_at", *_SOURCE_COLS)
    rows = db.execute(
        f"SELECT {', '.join(cols)} FROM s.runs WHERE started_at IS NOT NULL"
        " ORDER BY started_at, id").fetchall()
    changed: set[int] = set()
    every: set[int] = set()
    for row in rows:
        run = dict(zip(cols, row, strict=True))
        label = _shard_label(run["options"], shard.db)
        known = db.execute(
            f"SELECT run_id, {', '.join(_SOURCE_COLS)} FROM [{SOURCES_TABLE}]"
            " WHERE shard=? AND shard_run=? AND started_at=?",
            [label, run["id"], run["started_at"]]).fetchone()
        values = [run[c] for c in _SOURCE_COLS]
        if known is None:
            run_id = _group_for(db, label, run["started_at"], window)
            if run_id is None:
                run_id = _new_run(db, run)
                summary.runs_added += 1
            summary.sources_added += 1
        else:
            run_id = known[0]
        if known is None or list(known[1:]) != values:
            db.execute(
                f"INSERT OR REPLACE INTO [{SOURCES_TABLE}] (shard, shard_run, started_at, run_id,"
                f" {', '.join(_SOURCE_COLS)}, db) VALUES (?,?,?,?,{','.join('?' * len(values))},?)",
                [label, run["id"], run["started_at"], run_id, *values, str(shard.db)])
            changed.add(run_id)
        db.execute("INSERT INTO temp.run_map VALUES (?,?,?)",
                   [run["id"], run_id, int(run_id in changed)])
        every.add(run_id)
    return changed, every


def _shard_label(options: str | None, db_path: Path) -> str:
    shard = (json.loads(options) if options else {}).get("shard")
    if not shard:
        return _same_file_key(db_path)
    try:
        return str(Shard.parse(shard))
    except ShardError:
        return str(shard)


def _group_for(db: sqlite_utils.Database, label: str, started_at: str, window: timedelta) -> int | None:
    """The merged run a new source joins: nearest start within `window`, no source of its shard."""
    start = parse_iso(started_at)
    best: tuple[float, int] | None = None
    for run_id, run_start in db.execute(
        f"SELECT r.id, r.started_at FROM runs r WHERE r.id IN (SELECT run_id FROM [{SOURCES_TABLE}])"
        f" AND NOT EXISTS (SELECT 1 FROM [{SOURCES_TABLE}] m WHERE m.run_id = r.id AND m.shard=?)",
        [label],
    ):
        gap = abs(((parse_iso(run_start) or start) - start).total_seconds()) if start else 0.0
        if gap <= window.total_seconds() and (best is None or (gap, run_id) < best):
            best = (gap, run_id)
    return best[1] if best else None


def _new_run(db: sqlite_utils.Database, run: dict[str, Any]) -> int:
    cur = db.conn.execute(
        "INSERT INTO runs (started_at, state, command, software, options, insecure, total, done,"
        " requests) VALUES (?, ?, 'check', ?, ?, ?, 0, 0, 0)",
        (run["started_at"], run["state"], run["software"], run["options"], run["insecure"]))
    return int(cur.lastrowid or 0)


def _recompute_run(conn: Any, run_id: int) -> None:
    """The merged run's row from its sources (times, state, plan size) and its checks (counts)."""
    sources = conn.execute(
        f"SELECT shard, shard_run, started_at, finished_at, state, total, insecure, software,"
        f" options, archive FROM [{SOURCES_TABLE}] WHERE run_id=? ORDER BY shard, shard_run",
        (run_id,)).fetchall()
    states = {s[4] for s in sources}
    state = "complete" if states == {"complete"} else next(
        (s for s in ("running", "interrupted", "abandoned") if s in states), "interrupted")
    if state == "running":  # no process runs the merged database: what is there is all there is
        state = "interrupted"
    finished = None if any(s[3] is None for s in sources) else max(s[3] for s in sources)
    options = json.loads(sources[0][8] or "{}") if sources else {}
    options["shard"] = None
    options["merged_from"] = [{"shard": s[0], "run": s[1], "started_at": s[2]} for s in sources]
    archive: dict[str, int] = {}
    for s in sources:
        for key, value in json.loads(s[9] or "{}").items():
            if isinstance(value, int | float):
                archive[key] = archive.get(key, 0) + value
    counts = dict(conn.execute(
        "SELECT status, count(*) FROM checks WHERE run_id=? GROUP BY status ORDER BY status",
        (run_id,)).fetchall())
    done, requests = conn.execute(
        "SELECT count(*), coalesce(sum(requests), 0) FROM checks WHERE run_id=?", (run_id,)
    ).fetchone()
    conn.execute(
        "UPDATE runs SET started_at=?, finished_at=?, state=?, software=?, options=?, insecure=?,"
        " total=?, done=?, requests=?, counts=?, archive=?, pid=NULL, host=NULL WHERE id=?",
        (min(s[2] for s in sources), finished, state, sources[0][7],
         json.dumps(options, sort_keys=True, default=str), max(int(s[6] or 0) for s in sources),
         sum(int(s[5] or 0) for s in sources), done, requests, json.dumps(counts),
         json.dumps(archive) if any(s[9] for s in sources) else None, run_id))


# -- history -------------------------------------------------------------------------------------


def _upsert_sql(table: str, cols: list[str], key: tuple[str, ...], select: str,
                newer: str | None = None) -> str:
    """INSERT ... SELECT ... ON CONFLICT(key) DO UPDATE, writing only rows that differ."""
    sets = [c for c in cols if c not in key]
    differs = " OR ".join(f"[{table}].[{c}] IS NOT excluded.[{c}]" for c in sets)
    when = f"({newer}) AND ({differs})" if newer else differs
    return (
        f"INSERT INTO main.[{table}] ({', '.join(f'[{c}]' for c in cols)}) {select}"
        f" ON CONFLICT({', '.join(key)}) DO UPDATE SET "
        + ", ".join(f"[{c}]=excluded.[{c}]" for c in sets)
        + f" WHERE {when}"
    )


def _merge_checks(db: sqlite_utils.Database, changed_runs: set[int]) -> int:
    """Checks and host failures of the shard runs whose source changed, under merged run ids."""
    if not changed_runs:
        return 0
    cols = _columns(db, "checks")
    select = ("SELECT " + ", ".join("m.run_id" if c == "run_id" else f"c.[{c}]" for c in cols)
              + " FROM s.checks c JOIN temp.run_map m ON m.shard_run = c.run_id"
              " WHERE m.changed = 1 ORDER BY c.id")
    n = db.conn.execute(_upsert_sql("checks", cols, ("run_id", "url"), select)).rowcount
    if "host_failures" in _shard_tables(db):
        hcols = _columns(db, "host_failures")
        hselect = ("SELECT " + ", ".join("m.run_id" if c == "run_id" else f"h.[{c}]" for c in hcols)
                   + " FROM s.host_failures h JOIN temp.run_map m ON m.shard_run = h.run_id"
                   " WHERE m.changed = 1 ORDER BY h.id")
        db.conn.execute(_upsert_sql("host_failures", hcols, ("run_id", "host"), hselect))
    return max(n, 0)


def _shard_tables(db: sqlite_utils.Database) -> set[str]:
    return {r[0] for r in db.execute("SELECT name FROM s.sqlite_master WHERE type='table'")}


def _merge_link_states(db: sqlite_utils.Database) -> int:
    """Each URL's state from the shard that checked it last (ties: the state already merged)."""
    if "link_state" not in _shard_tables(db):
        return 0
    cols = _columns(db, "link_state", skip=())
    select = ("SELECT " + ", ".join(
        "(SELECT m.run_id FROM temp.run_map m WHERE m.shard_run = x.last_run)"
        if c == "last_run" else f"x.[{c}]" for c in cols)
        + " FROM s.link_state x WHERE true ORDER BY x.url")
    newer = ("coalesce(excluded.last_checked, '') > coalesce(link_state.last_checked, '')"
             " OR (excluded.last_checked IS link_state.last_checked"
             " AND excluded.last_run IS link_state.last_run)")
    return max(db.conn.execute(_upsert_sql("link_state", cols, ("url",), select, newer)).rowcount, 0)


# -- captures ------------------------------------------------------------------------------------


def _prefix(shard_folder: Path | None, folder: Path) -> str:
    """What turns a shard's ``warc_file`` into one relative to the merged WARC folder."""
    if shard_folder is None:
        return ""
    rel = os.path.relpath(Path(shard_folder).resolve(), Path(folder).resolve())
    return "" if rel == "." else rel.replace(os.sep, "/") + "/"


def _merge_snapshots(db: sqlite_utils.Database, prefix: str) -> int:
    """New captures (by record id), their WARC paths made relative to the merged folder."""
    if "snapshots" not in _shard_tables(db):
        return 0
    cols = _columns(db, "snapshots", skip=("id", "revisit_of"))
    exprs = {"run_id": "(SELECT m.run_id FROM temp.run_map m WHERE m.shard_run = x.run_id)",
             "warc_file": "? || x.warc_file"}
    n = db.conn.execute(
        f"INSERT INTO main.snapshots ({', '.join(cols)}) SELECT "
        + ", ".join(exprs.get(c, f"x.[{c}]") for c in cols)
        + " FROM s.snapshots x WHERE NOT EXISTS (SELECT 1 FROM main.snapshots o"
        " WHERE o.record_id = x.record_id) ORDER BY x.id", (prefix,)).rowcount
    # the shard folder may have moved since the last merge (CI downloads): keep paths current
    db.conn.execute(
        "UPDATE main.snapshots SET warc_file = ? || x.warc_file FROM s.snapshots x"
        " WHERE x.record_id = main.snapshots.record_id"
        " AND main.snapshots.warc_file IS NOT ? || x.warc_file", (prefix, prefix))
    # a revisit points at its original by id: the ids are new here, the record ids are not
    db.conn.execute(
        "UPDATE main.snapshots SET revisit_of = (SELECT o.id FROM main.snapshots o"
        " WHERE o.record_id = (SELECT orig.record_id FROM s.snapshots x"
        " JOIN s.snapshots orig ON orig.id = x.revisit_of"
        " WHERE x.record_id = main.snapshots.record_id))"
        " WHERE revisit_of IS NULL AND record_id IN"
        " (SELECT record_id FROM s.snapshots WHERE revisit_of IS NOT NULL)")
    return max(n, 0)


# -- inventory -----------------------------------------------------------------------------------


_INVENTORY_SQL = f"""CREATE TABLE IF NOT EXISTS [{INVENTORY_TABLE}] (
    db TEXT PRIMARY KEY,  -- a shard database's path
    fingerprint TEXT)     -- its inventory when last merged: unchanged since, nothing to do"""


def _inventory_fingerprint(conn: Any) -> str:
    """Changes whenever a scan adds, changes or removes a post or a link of the shard."""
    posts = conn.execute("SELECT count(*), max(scanned_at), sum(size), sum(occurrence_count)"
                         " FROM s.posts").fetchone()
    links = conn.execute("SELECT count(*), max(first_seen), max(last_seen), count(status),"
                         " total(length(reason)), total(length(wraps)) FROM s.links").fetchone()
    return json.dumps([*posts, *links])


def _merge_inventory(db: sqlite_utils.Database, key: str) -> int:
    """Posts (the latest scan wins; occurrences follow their post) and links, without duplicates."""
    conn = db.conn
    conn.execute("INSERT OR IGNORE INTO temp.seen_posts SELECT path FROM s.posts")
    conn.execute(_INVENTORY_SQL)
    fingerprint = _inventory_fingerprint(conn)
    if conn.execute(f"SELECT 1 FROM [{INVENTORY_TABLE}] WHERE db=? AND fingerprint=?",
                    (key, fingerprint)).fetchone():
        return 0
    written = _merge_posts_and_links(db)
    conn.execute(f"INSERT OR REPLACE INTO [{INVENTORY_TABLE}] VALUES (?, ?)", (key, fingerprint))
    return written


def _merge_posts_and_links(db: sqlite_utils.Database) -> int:
    conn = db.conn
    conn.execute("DROP TABLE IF EXISTS temp.newer_posts")
    conn.execute(
        "CREATE TEMP TABLE newer_posts AS SELECT x.path FROM s.posts x"
        " LEFT JOIN main.posts p ON p.path = x.path WHERE p.path IS NULL"
        " OR (coalesce(x.scanned_at, '') > coalesce(p.scanned_at, '') AND ("
        " x.sha256 IS NOT p.sha256 OR x.ok IS NOT p.ok OR x.problems IS NOT p.problems"
        " OR x.occurrence_count IS NOT p.occurrence_count"
        " OR (SELECT count(*) FROM main.occurrences o WHERE o.post = x.path)"
        " != (SELECT count(*) FROM s.occurrences o WHERE o.post = x.path)))")
    conn.execute("DELETE FROM main.occurrences WHERE post IN (SELECT path FROM temp.newer_posts)")
    ocols = _columns(db, "occurrences")
    conn.execute(
        f"INSERT INTO main.occurrences ({', '.join(ocols)}) SELECT "
        + ", ".join(f"o.[{c}]" for c in ocols)
        + " FROM s.occurrences o WHERE o.post IN (SELECT path FROM temp.newer_posts) ORDER BY o.id")
    pcols = _columns(db, "posts", skip=())
    n = conn.execute(_upsert_sql(
        "posts", pcols, ("path",),
        "SELECT " + ", ".join(f"x.[{c}]" for c in pcols) + " FROM s.posts x WHERE true",
        "coalesce(excluded.scanned_at, '') > coalesce(posts.scanned_at, '')")).rowcount
    lcols = _columns(db, "links", skip=())
    conn.execute(
        f"INSERT INTO main.links ({', '.join(lcols)}) SELECT "
        + ", ".join(f"x.[{c}]" for c in lcols) + " FROM s.links x WHERE true"
        " ON CONFLICT(url) DO UPDATE SET "
        + ", ".join(_link_update(c) for c in lcols if c != "url")
        + " WHERE " + " OR ".join(f"links.[{c}] IS NOT ({_link_value(c)})"
                                 for c in lcols if c != "url"))
    return max(n, 0)


def _link_value(col: str) -> str:
    """A link's merged value: first seen earliest, last seen latest, the rest from the latest."""
    if col == "first_seen":
        return ("coalesce(min(links.first_seen, excluded.first_seen), links.first_seen,"
                " excluded.first_seen)")
    if col == "last_seen":
        return ("coalesce(max(links.last_seen, excluded.last_seen), links.last_seen,"
                " excluded.last_seen)")
    return (f"iif(coalesce(excluded.last_seen, '') > coalesce(links.last_seen, ''),"
            f" excluded.[{col}], links.[{col}])")


def _link_update(col: str) -> str:
    return f"[{col}]={_link_value(col)}"


def _drop_vanished_posts(conn: Any) -> int:
    """Posts no shard has any more (removed from the site), with their occurrences."""
    conn.execute("DELETE FROM occurrences WHERE post NOT IN (SELECT path FROM temp.seen_posts)")
    return max(conn.execute(
        "DELETE FROM posts WHERE path NOT IN (SELECT path FROM temp.seen_posts)").rowcount, 0)


# -- CDXJ ----------------------------------------------------------------------------------------


def merge_indexes(folder: Path, shard_folders: list[Path]) -> int:
    """Write ``<folder>/index.cdxj``: the shards' folder indexes merged in sorted order.

    The merged folder's own per-file indexes (WARCs it held before it was merged into) are
    merged too. Each line's ``filename`` gets the shard's prefix (see :func:`_prefix`), which keeps every
    shard's lines in order (a common prefix inserted at the same place of lines that only
    differ from there on); ``heapq.merge`` then interleaves the shards. Rewritten whole, from
    the shard folders given, atomically; the same shards give the same bytes.
    """
    indexes = [(Path(f), Path(f) / FOLDER_INDEX_NAME) for f in shard_folders]
    indexes = [(f, p) for f, p in indexes if p.is_file()]
    if not indexes:
        return 0
    # WARCs of the merged folder's own (a single machine's history, merged into): its
    # per-file indexes, the shard folders excepted should they sit inside it
    shards = [f.resolve() for f, _ in indexes]
    if folder.is_dir():
        indexes += [(folder, p) for p in iter_file_indexes(folder)
                    if not any(p.resolve().is_relative_to(f) for f in shards)]
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / FOLDER_INDEX_NAME
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    n = 0
    with ExitStack() as stack, open(tmp, "w", encoding="utf-8") as out:
        streams = [
            _rewritten(stack.enter_context(open(path, encoding="utf-8")), _prefix(f, folder))
            for f, path in indexes
        ]
        previous = None
        for line in heapq.merge(*streams):
            if line != previous:  # the same capture indexed twice (a folder given twice)
                out.write(line)
                n += 1
            previous = line
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, target)
    return n


def _rewritten(lines: Any, prefix: str) -> Iterator[str]:
    """CDXJ lines (``surt timestamp {json}``) with ``filename`` prefixed."""
    for line in lines:
        if not line.strip() or line.startswith("!"):
            continue
        head, sep, body = line.rstrip("\n").partition(" {")
        if not sep or not prefix:
            yield line if line.endswith("\n") else line + "\n"
            continue
        fields = json.loads("{" + body)
        if "filename" in fields:
            fields["filename"] = prefix + fields["filename"]
        yield f"{head} {json.dumps(fields)}\n"
