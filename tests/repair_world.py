"""A small site in our users' format and a history in which some of its links died.

Posts are scanned for real (occurrence lines and the link as written come from
the scanner); the check history and captures are written straight into the
tables, so each test states exactly which link is dead and what was captured.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlite_utils

from linkkeeper.db import connect
from linkkeeper.scan import scan_site
from linkkeeper.site import open_site

SOURCE = "https://news.example/2021/05/story.html"
LEAD = "https://img.news.example/lead.jpg"
ZOOM = "https://img.news.example/lead-large.jpg"
RELATED_DEAD = "https://news.example/2021/04/earlier.html"
RELATED_OK = "https://news.example/2021/03/older.html"
INLINE_DEAD = "https://gone.example/report?id=7&lang=en"
MD_DEAD = "https://blog.example/post/1"

POST = f"""---
layout: post
title: "A story with every kind of link"
date: 2021-05-03T08:00:00.000Z
author: News
# the source is kept as it was; the archived copy goes on the next line
from: {SOURCE}
tags: [ news ]
---
<!--1620028800000-->
[A story with every kind of link]({SOURCE})
------

<div>
<p><a href="{ZOOM}"><img src="{LEAD}" alt="lead image"></a></p>
<p>As <a href="{INLINE_DEAD.replace('&', '&amp;')}">the report</a> says, and <a href="{RELATED_OK}">more</a>.</p>
<ul class="related"><li><a href="{RELATED_DEAD}">Earlier story</a></li><li><a href="{RELATED_OK}">Older story</a></li></ul>
</div>

See also [the blog]({MD_DEAD} "Blog") and [the report again]({MD_DEAD}).
"""


def make_site(root: Path, posts: dict[str, str | bytes]) -> Path:
    site = root / "site"
    (site / "_posts").mkdir(parents=True, exist_ok=True)
    for name, content in posts.items():
        data = content if isinstance(content, bytes) else content.encode("utf-8")
        (site / "_posts" / name).write_bytes(data)
    return site


def scanned(site: Path) -> sqlite_utils.Database:
    db = connect(site / "linkkeeper.db")
    scan_site(db, open_site([site]), jobs=1)
    return db


def kill(db: sqlite_utils.Database, url: str, *, state: str = "dead", status: str = "broken",
         first_failed: str = "2024-06-01T00:00:00+00:00", run_id: int = 2) -> None:
    """Record `url` as failing in run `run_id` (state dead unless told)."""
    _run(db, run_id)
    db.execute("INSERT OR REPLACE INTO checks (run_id, url, status, http_status, checked_at)"
               " VALUES (?,?,?,?,?)", [run_id, url, status, 404, "2024-07-01T00:00:00+00:00"])
    db.execute(
        "INSERT OR REPLACE INTO link_state (url, state, since, last_status, last_checked, last_run,"
        " consecutive_failures, first_failed) VALUES (?,?,?,?,?,?,?,?)",
        [url, state, first_failed, status, "2024-07-01T00:00:00+00:00", run_id, 3, first_failed])


def revive(db: sqlite_utils.Database, url: str, when: str = "2099-01-01T00:00:00+00:00") -> None:
    db.execute("UPDATE link_state SET state='recovered', last_status='ok', last_checked=?"
               " WHERE url=?", [when, url])


def capture(db: sqlite_utils.Database, url: str, date: str, *, http_status: int = 200,
            check_status: str = "ok", run_id: int = 1, record_type: str = "response",
            revisit_of: int | None = None, truncated: int = 0) -> int:
    """A snapshot row of `url` taken by run `run_id`, whose check said `check_status`."""
    _run(db, run_id)
    db.execute("INSERT OR IGNORE INTO checks (run_id, url, status, http_status, checked_at)"
               " VALUES (?,?,?,?,?)", [run_id, url, check_status, http_status, date])
    cur = db.execute(
        "INSERT INTO snapshots (url, run_id, warc_file, offset, length, record_type, date,"
        " http_status, truncated, revisit_of) VALUES (?,?,?,?,?,?,?,?,?,?)",
        [url, run_id, "linkkeeper-1.warc.gz", 0, 100, record_type, date, http_status,
         truncated, revisit_of])
    return int(cur.lastrowid or 0)


def _run(db: sqlite_utils.Database, run_id: int) -> None:
    db.execute("INSERT OR IGNORE INTO runs (id, started_at, state) VALUES (?,?,?)",
               [run_id, f"2024-0{run_id}-01T00:00:00+00:00", "complete"])


def rows(db: sqlite_utils.Database, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
    return db.execute(sql, params).fetchall()
