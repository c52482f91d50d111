"""db.pragmas: settings for one big operation, then connect()'s again (even on error)."""

from __future__ import annotations

from pathlib import Path

import pytest

from linkkeeper.db import Transaction, connect, pragmas


def _settings(db) -> tuple[int, int, int]:
    return tuple(db.execute(f"PRAGMA {name}").fetchone()[0]
                 for name in ("cache_size", "temp_store", "wal_autocheckpoint"))


def test_settings_hold_inside_and_are_restored_after(tmp_path: Path) -> None:
    db = connect(tmp_path / "x.db")
    before = _settings(db)
    with pragmas(db, cache_size=-2048, temp_store="FILE", wal_autocheckpoint=16384):
        assert _settings(db) == (-2048, 1, 16384)
    assert _settings(db) == before
    with pytest.raises(RuntimeError), pragmas(db, temp_store="FILE"):
        raise RuntimeError("the operation failed")
    assert _settings(db) == before


def test_only_known_settings(tmp_path: Path) -> None:
    db = connect(tmp_path / "x.db")
    with pytest.raises(ValueError, match="journal_mode"), pragmas(db, journal_mode="DELETE"):
        pass


def test_a_transaction_ended_by_sqlite_keeps_its_own_error(tmp_path: Path) -> None:
    """On a full disk SQLite rolls the transaction back itself; the second ROLLBACK's error
    ('no transaction is active') used to replace the one the user needed."""
    db = connect(tmp_path / "t.db")
    with pytest.raises(ValueError, match="the disk is full"), Transaction(db) as conn:
        conn.execute("ROLLBACK")  # what SQLite does by itself on SQLITE_FULL
        raise ValueError("the disk is full")
    with Transaction(db) as conn:  # the connection is usable again
        conn.execute("CREATE TABLE t (x)")
    assert db.execute("SELECT count(*) FROM t").fetchone() == (0,)
