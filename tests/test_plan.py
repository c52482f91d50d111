"""A run's plan, made by SQLite: the same URLs in the same order as the list it replaces
(oldest checks first, interleaved by host), streamed back a page at a time."""

from __future__ import annotations

import random
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

from linkkeeper.db import connect
from linkkeeper.history.runs import (
    Plan,
    interleave_by_host,
    plan_urls,
    planned_urls,
    scan_time_statuses_of_run,
    start_run,
)
from linkkeeper.shards import Shard

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _inventory(path: Path, links: int = 300, seed: int = 7):
    """Links on a few hosts of very different sizes, some checked (ok or failing), a few
    decided at scan time, one no longer cited by any post."""
    rng = random.Random(seed)
    db = connect(path)
    hosts = ["big.example"] * 12 + ["mid.example"] * 4 + ["a.example", "b.example", None]
    rows = []
    for i in range(links):
        host = rng.choice(hosts)
        url = f"https://{host or 'nohost'}/p/{i}"
        status = "excluded" if i % 41 == 0 else None
        db.execute("INSERT INTO links (url, host, status, reason) VALUES (?,?,?,?)",
                   [url, host, status, "by rule" if status else None])
        if i != 5:
            db.execute("INSERT INTO occurrences (post, url, kind, seq) VALUES (?,?,?,?)",
                       [f"post{i % 17}.md", url, "inline", i])
        if i % 3:
            checked = NOW - timedelta(hours=rng.randint(1, 400))
            failing = i % 7 == 0
            db.execute(
                "INSERT INTO link_state (url, state, last_status, last_checked) VALUES (?,?,?,?)",
                [url, "failing" if failing else "ok", "broken" if failing else "ok",
                 checked.isoformat()],
            )
        rows.append(url)
    return db


def _reference(db, *, max_age=None, failing_only=False, budget=None, shard=None):
    """The plan as the Python list it used to be (history/runs.py before the SQL plan)."""
    rows = db.execute(
        "SELECT l.url, l.host, s.state, s.last_status, s.last_checked FROM links l"
        " LEFT JOIN link_state s ON s.url = l.url"
        " WHERE EXISTS (SELECT 1 FROM occurrences o WHERE o.url = l.url) ORDER BY l.rowid"
    ).fetchall()
    rows.sort(key=lambda r: (r[4] is not None, r[4] or "", zlib.crc32(r[0].encode())))
    chosen = []
    for url, host, state, last_status, last_checked in rows:
        failing = last_status == "broken" or state == "failing"
        if failing_only and not failing:
            continue
        if (max_age is not None and last_checked and not failing and last_status == "ok"
                and NOW - datetime.fromisoformat(last_checked) < max_age):
            continue
        chosen.append((url, host or ""))
    if shard is not None:
        chosen = shard.select(chosen)
    if budget is not None:
        chosen = chosen[: max(0, budget)]
    return interleave_by_host(chosen)


def test_the_plan_is_the_list_it_replaces(tmp_path: Path) -> None:
    db = _inventory(tmp_path / "l.db")
    for options in ({}, {"budget": 40}, {"budget": 0}, {"failing_only": True},
                    {"max_age": timedelta(hours=200)}, {"shard": Shard(2, 3)},
                    {"shard": Shard(1, 2), "budget": 25}):
        expected = _reference(db, **options)
        assert plan_urls(db, now=NOW, **options) == expected, options
        assert expected or options in ({"budget": 0},), options


def test_a_stored_plan_streams_back_in_order_skipping_what_the_run_checked(
    tmp_path: Path,
) -> None:
    db = _inventory(tmp_path / "l.db")
    run = start_run(db, Plan(now=NOW, budget=100), options={})
    expected = _reference(db, budget=100)
    assert run.planned == 100
    assert db.execute("SELECT total FROM runs WHERE id=?", [run.id]).fetchone()[0] == 100
    assert list(planned_urls(db, run.id, page=7)) == expected
    pre = scan_time_statuses_of_run(db, run.id)
    assert pre and all(status == "excluded" for status, _ in pre.values())
    assert list(pre) == [u for u in expected if u in pre]  # in plan order
    for url in expected[:30:3]:  # checked before a crash: a resumed run skips them
        db.execute("INSERT INTO checks (run_id, url, status) VALUES (?,?,?)",
                   [run.id, url, "ok"])
    assert list(planned_urls(db, run.id, page=4)) == [
        u for u in expected if u not in expected[:30:3]
    ]
    resumed = start_run(db, Plan(now=NOW), options={})
    assert (resumed.id, resumed.resumed, resumed.planned) == (run.id, True, 100)
    # the plan's sorting changed nothing lasting on the connection
    assert db.execute("PRAGMA temp_store").fetchone()[0] == 1  # FILE, as connect() sets it
    assert db.execute("PRAGMA cache_size").fetchone()[0] == -65536
