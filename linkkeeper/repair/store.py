"""The repair tables: archived copies found per link, and every edit `fix --write` made.

They are created here with ``CREATE TABLE IF NOT EXISTS`` whenever the repair
code opens a database, so an older database gains them on first use and a
report can read them (report/data.py) without importing this package.

``archived_copies``: one row per (link, source) that was looked for, found or
not, with the time of the lookup, so external archives are asked again only
when the answer is old. ``fix_runs``/``fix_posts``/``fix_edits``: what a written
fix changed; ``fix_posts.before`` keeps each post's original bytes so `fix --undo`
restores them exactly.
"""

from __future__ import annotations

import sqlite_utils

from linkkeeper.clock import iso_z, utcnow

SCHEMA = """
CREATE TABLE IF NOT EXISTS archived_copies (
    url TEXT NOT NULL,            -- the link (links.url)
    source TEXT NOT NULL,         -- ours | wayback | memento
    found INTEGER NOT NULL,       -- 0: looked, nothing usable there
    copy_url TEXT,                -- replay URL (ours: archive/<timestamp>/<url> for serve)
    copy_datetime TEXT,           -- when the copy was captured (ISO, UTC)
    http_status INTEGER,
    snapshot_id INTEGER,          -- ours: snapshots.id
    looked_up_at TEXT NOT NULL,
    detail TEXT,                  -- why nothing was found, or the endpoint asked
    PRIMARY KEY (url, source)
);
CREATE TABLE IF NOT EXISTS fix_runs (
    id INTEGER PRIMARY KEY,
    started_at TEXT NOT NULL,
    options TEXT,                 -- JSON
    posts INTEGER,
    edits INTEGER,
    undone_at TEXT
);
CREATE TABLE IF NOT EXISTS fix_posts (
    run_id INTEGER NOT NULL,
    post TEXT NOT NULL,
    before BLOB NOT NULL,         -- the file's bytes before the run
    before_sha256 TEXT NOT NULL,
    after_sha256 TEXT NOT NULL,   -- what the file must still hash to for undo
    undone_at TEXT,
    PRIMARY KEY (run_id, post)
);
CREATE TABLE IF NOT EXISTS fix_edits (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL,
    post TEXT NOT NULL,
    line INTEGER NOT NULL,
    element TEXT,
    url TEXT NOT NULL,
    original TEXT NOT NULL,       -- the bytes replaced, decoded for people
    replacement TEXT NOT NULL,
    original_bytes BLOB NOT NULL,
    replacement_bytes BLOB NOT NULL,
    copy_url TEXT NOT NULL,
    copy_source TEXT NOT NULL,
    copy_datetime TEXT,
    made_at TEXT NOT NULL,
    reverted_at TEXT
);
CREATE INDEX IF NOT EXISTS idx_fix_edits_url ON fix_edits (url);
CREATE INDEX IF NOT EXISTS idx_fix_edits_run ON fix_edits (run_id, post);
"""


TABLES = ("archived_copies", "fix_runs", "fix_posts", "fix_edits")


def ensure_tables(db: sqlite_utils.Database) -> None:
    """Create what is missing. Cheap when all is there, and then it runs no script (which
    would commit an open transaction)."""
    marks = ",".join("?" * len(TABLES))
    have = db.execute(f"SELECT count(*) FROM sqlite_master WHERE type='table' AND name IN ({marks})",
                      list(TABLES)).fetchone()[0]
    if have < len(TABLES):
        db.conn.executescript(SCHEMA)


def now_iso() -> str:
    return iso_z(utcnow())
