"""db.pragmas: settings for one big operation, then connect()'s again (even on error)."""

from __future__ import annotations

from pathlib import Path

import pytest

from linkkeeper.db import connect, pragmas


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
