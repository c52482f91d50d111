"""`linkkeeper prune`: old runs lose their per-URL checks, and nothing a later question
asks changes — the report of the kept runs, every link's state, the URL timelines' last
checks, the captures `fix` judges by their run's check."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import clean_env, web_args, write_site

from linkkeeper.db import connect
from linkkeeper.faultweb import FaultWeb
from linkkeeper.history.retention import RetentionError, prune_history, pruned_through

LINKS = [f"https://news.example/ok/keep-{i}" for i in range(8)] + [
    "https://news.example/status/404",
    "https://cdn.example/status/410",
    "https://blog.example/ok/also",
    "https://images.example/img/a.png",
]


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "linkkeeper", *args], capture_output=True,
                          text=True, timeout=timeout, env=clean_env())


def _site(root: Path) -> Path:
    body = "\n".join(f'<p><a href="{url}">story {i}</a></p>' for i, url in enumerate(LINKS))
    return write_site(root, {"2026-01-01-a.md": f"---\ntitle: A\n---\n{body}\n"})


def _nights(site: Path, web: FaultWeb, n: int) -> None:
    """Night 1 checks and captures everything; later nights check half (--budget)."""
    for night in range(1, n + 1):
        extra = [] if night == 1 else ["--no-snapshot", "--budget", "6"]
        done = _cli("check", str(site), *web_args(web, *extra), "--host-rate", "0",
                    "--quiet")
        assert done.returncode in (0, 2), done.stderr


def _report(site: Path, *extra: str) -> dict[str, Any]:
    done = _cli("report", str(site), "--format", "json", *extra)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    document["report"].pop("generated_at", None)
    return document


def _table(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return sorted(conn.execute(sql).fetchall(), key=repr)


def _latest_checks(db: Path) -> list[tuple[Any, ...]]:
    return _table(db, "SELECT c.* FROM checks c WHERE c.id = (SELECT max(id) FROM checks"
                      " WHERE url = c.url)")


def test_prune_keeps_every_answer_of_the_kept_runs(tmp_path: Path, faultweb: FaultWeb) -> None:
    site = _site(tmp_path / "site")
    db = site / "linkkeeper.db"
    _nights(site, faultweb, 6)
    before = {
        "report": _report(site),
        "since 4": _report(site, "--since", "4"),
        "states": _table(db, "SELECT * FROM link_state"),
        "runs": _table(db, "SELECT * FROM runs"),
        "latest": _latest_checks(db),
        "captured": _table(db, "SELECT c.* FROM checks c JOIN snapshots s ON s.url = c.url"
                               " AND s.run_id = c.run_id"),
        "checks": _table(db, "SELECT count(*) FROM checks")[0][0],
    }

    dry = _cli("prune", str(site), "--keep-runs", "2", "--dry-run", "--format", "json")
    assert dry.returncode == 0, dry.stderr
    would = json.loads(dry.stdout)
    assert _table(db, "SELECT count(*) FROM checks")[0][0] == before["checks"]

    done = _cli("prune", str(site), "--keep-runs", "2", "--format", "json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    # kept: runs 5 and 6, and run 4, the baseline run 5 compares with
    assert result["runs"] == [1, 2, 3] and result["checks_deleted"] > 0, result
    assert {k: would[k] for k in ("runs", "checks_deleted", "checks_kept", "plan_rows_deleted")
            } == {k: result[k] for k in ("runs", "checks_deleted", "checks_kept",
                                         "plan_rows_deleted")}
    after_count = _table(db, "SELECT count(*) FROM checks")[0][0]
    assert after_count == before["checks"] - result["checks_deleted"]
    assert _table(db, "SELECT count(*) FROM plan WHERE run_id <= 3")[0][0] == 0

    assert _report(site) == before["report"]
    assert _report(site, "--since", "4") == before["since 4"]
    assert _table(db, "SELECT * FROM link_state") == before["states"]
    assert _table(db, "SELECT * FROM runs") == before["runs"]
    assert _latest_checks(db) == before["latest"]
    assert _table(db, "SELECT c.* FROM checks c JOIN snapshots s ON s.url = c.url"
                      " AND s.run_id = c.run_id") == before["captured"]

    old = _cli("report", str(site), "--since", "2")
    assert old.returncode == 3 and old.stderr.count("\n") == 1, old.stderr
    assert "runs up to 3 were pruned" in old.stderr

    timeline = json.loads(_cli("history", LINKS[0], "--db", str(db), "--format", "json").stdout)
    assert timeline["checks"] and timeline["state"]

    again = json.loads(_cli("prune", str(site), "--keep-runs", "2", "--format", "json").stdout)
    assert again["checks_deleted"] == 0 and again["plan_rows_deleted"] == 0
    assert _table(db, "SELECT count(*) FROM checks")[0][0] == after_count

    _nights(site, faultweb, 1)  # the next night reuses the freed pages; reports go on
    assert _report(site)["run"]["id"] == 7


def test_vacuum_gives_the_space_back(tmp_path: Path) -> None:
    path = tmp_path / "big.db"
    db = connect(path)
    for run_id in range(1, 6):
        db.execute("INSERT INTO runs (id, started_at, state) VALUES (?, ?, 'complete')",
                   [run_id, f"2026-01-0{run_id}T00:00:00Z"])
        db.conn.executemany(
            "INSERT INTO checks (run_id, url, status, reason, evidence) VALUES (?,?,?,?,?)",
            [(run_id, f"https://h.example/{i}", "ok", "HTTP 200", "x" * 300)
             for i in range(3000)])
        db.conn.commit()
    kept = prune_history(db, keep_runs=1)  # keeps run 5 and its baseline, run 4
    # run 4 checked every URL: no carry-over is needed from the pruned runs
    assert kept.runs == (1, 2, 3) and kept.checks_deleted == 9000 and kept.checks_kept == 0
    assert kept.free_bytes > 0
    assert pruned_through(db) == 3
    assert db.execute("SELECT count(*) FROM checks").fetchone()[0] == 6000
    shrunk = prune_history(db, keep_runs=1, vacuum=True)
    assert shrunk.vacuumed and shrunk.bytes_after < kept.bytes_after / 1.5


@pytest.mark.parametrize("options, says", [
    ([], "say what to keep"),
    (["--keep-runs", "0"], "keep at least the newest run"),
    (["--keep-days", "-1"], "above 0"),
])
def test_bad_retention_exits_3_in_one_line(tmp_path: Path, options: list[str], says: str
                                           ) -> None:
    connect(tmp_path / "linkkeeper.db")
    done = _cli("prune", "--db", str(tmp_path / "linkkeeper.db"), *options)
    assert done.returncode == 3 and says in done.stderr and done.stderr.count("\n") == 1


def test_keep_days_counts_from_now_and_a_young_history_loses_nothing(tmp_path: Path) -> None:
    db = connect(tmp_path / "d.db")
    for run_id, day in enumerate(("2026-01-01", "2026-02-01", "2026-03-01", "2026-03-02"), 1):
        db.execute("INSERT INTO runs (id, started_at, state) VALUES (?, ?, 'complete')",
                   [run_id, f"{day}T00:00:00Z"])
        db.execute("INSERT INTO checks (run_id, url, status) VALUES (?, 'https://a.example/',"
                   " 'ok')", [run_id])
    from datetime import UTC, datetime
    now = datetime(2026, 3, 3, tzinfo=UTC)
    assert prune_history(db, keep_days=400, now=now).runs == ()
    # a window longer than dates reach, or than there are runs, keeps everything
    for huge in ({"keep_days": 1e9}, {"keep_days": float("inf")}, {"keep_runs": 10**30}):
        assert prune_history(db, now=now, **huge).runs == ()  # type: ignore[arg-type]
    result = prune_history(db, keep_days=10, now=now)  # keeps 3, 4 and 2 (3's baseline)
    assert result.runs == (1,) and result.checks_deleted == 1
    with pytest.raises(RetentionError):
        prune_history(db)


def test_an_old_interrupted_run_does_not_stop_the_window_but_the_newest_unfinished_is_kept(
    tmp_path: Path,
) -> None:
    db = connect(tmp_path / "i.db")
    states = ["complete", "interrupted", "complete", "complete", "complete", "interrupted"]
    for run_id, state in enumerate(states, 1):
        db.execute("INSERT INTO runs (id, started_at, state) VALUES (?, ?, ?)",
                   [run_id, f"2026-01-0{run_id}T00:00:00Z", state])
        db.execute("INSERT INTO checks (run_id, url, status) VALUES (?, 'https://a.example/',"
                   " 'ok')", [run_id])
    db.conn.commit()
    result = prune_history(db, keep_runs=1)  # keeps 5 (newest complete), 4 (its baseline), 6
    assert result.runs == (1, 2, 3) and result.checks_deleted == 3
    assert [r[0] for r in db.execute("SELECT run_id FROM checks ORDER BY run_id")] == [4, 5, 6]
