"""A database written by the previous version opens with today's `connect()` and is upgraded."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from linkkeeper.db import SCHEMA_VERSION, TABLES, connect, schema_version

FIXTURE = Path(__file__).parent / "fixtures" / "linkkeeper-v1.sql"
FIXTURE_V2 = Path(__file__).parent / "fixtures" / "linkkeeper-v2-net.sql"


def _old_database(path: Path, fixture: Path = FIXTURE) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(fixture.read_text(encoding="utf-8"))
    conn.close()


def _columns(db, table: str) -> list[str]:
    return [c.name for c in db[table].columns]


def test_a_version_1_database_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "linkkeeper.db"
    _old_database(path)
    old = sqlite3.connect(path)
    assert old.execute("PRAGMA user_version").fetchone()[0] == 1
    assert "next_check_due" in [r[1] for r in old.execute("PRAGMA table_info(link_state)")]
    old.close()

    db = connect(path)
    assert schema_version(db) == SCHEMA_VERSION == 4
    assert "next_check_due" not in _columns(db, "link_state")
    for name, spec in TABLES.items():  # every table is exactly today's, in declaration order
        assert _columns(db, name) == list(spec["columns"]), name
    states = {r["url"]: r for r in db["link_state"].rows}
    assert states["https://gone.example/b"]["state"] == "failing"
    assert states["https://gone.example/b"]["consecutive_failures"] == 2
    assert states["https://gone.example/b"]["recent"] == "FF"
    assert states["https://news.example/a"]["state"] == "alive"
    assert db.execute("SELECT count(*) FROM checks").fetchone()[0] == 4
    assert db.execute("SELECT count(*) FROM runs WHERE state='complete'").fetchone()[0] == 2
    indexes = {i.name for i in db["link_state"].indexes}
    assert "idx_link_state_state" in indexes
    db.conn.close()

    again = connect(path)  # a second open finds nothing to do
    assert schema_version(again) == SCHEMA_VERSION
    assert db_rows(again) == 2


def db_rows(db) -> int:
    return db.execute("SELECT count(*) FROM link_state").fetchone()[0]


def test_the_upgraded_database_keeps_recording(tmp_path: Path) -> None:
    """The next run on an upgraded file continues each link's history."""
    from datetime import UTC, datetime

    from linkkeeper.check.result import CheckResult
    from linkkeeper.history.recorder import Recorder
    from linkkeeper.history.runs import start_run
    from linkkeeper.vocab import Status

    path = tmp_path / "linkkeeper.db"
    _old_database(path)
    db = connect(path)
    run = start_run(db, ["https://gone.example/b"], options={})
    recorder = Recorder(db, run.id)
    recorder.add(
        CheckResult("https://gone.example/b", Status.BROKEN, "HTTP 404 Not Found",
                    http_status=404, started_at=datetime(2026, 11, 5, 8, tzinfo=UTC),
                    digest="sha1:ABC", method="HEAD,GET", requests=2)
    )
    recorder.finish()
    row = db["link_state"].get("https://gone.example/b")
    assert row["state"] == "dead"  # 3 failures over 4 days: the old rows counted
    assert row["recent"] == "FFF"
    check = db.execute("SELECT digest, method, requests FROM checks WHERE run_id=?", [run.id])
    assert check.fetchone() == ("sha1:ABC", "HEAD,GET", 2)


def test_a_new_database_starts_at_the_current_version(tmp_path: Path) -> None:
    db = connect(tmp_path / "new.db")
    assert schema_version(db) == SCHEMA_VERSION
    assert "next_check_due" not in _columns(db, "link_state")
    assert "digest" in _columns(db, "checks")


def test_a_newer_database_keeps_its_version(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    connect(path).execute(f"PRAGMA user_version={SCHEMA_VERSION + 5}")
    assert schema_version(connect(path)) == SCHEMA_VERSION + 5


def test_a_version_2_database_gains_runs_degraded(tmp_path: Path) -> None:
    """Step 3 (issue 12): `runs.degraded`, NULL for every run recorded before it existed."""
    path = tmp_path / "linkkeeper.db"
    _old_database(path, FIXTURE_V2)
    old = sqlite3.connect(path)
    assert old.execute("PRAGMA user_version").fetchone()[0] == 2
    assert "degraded" not in [r[1] for r in old.execute("PRAGMA table_info(runs)")]
    old.close()

    db = connect(path)
    assert schema_version(db) == SCHEMA_VERSION
    for name, spec in TABLES.items():
        assert _columns(db, name) == list(spec["columns"]), name
    assert db.execute("SELECT count(*), count(degraded) FROM runs").fetchone() == (2, 0)
    assert db["link_state"].get("https://gone.example/b")["consecutive_failures"] == 2
    db.conn.close()
    assert schema_version(connect(path)) == SCHEMA_VERSION  # nothing left to do
