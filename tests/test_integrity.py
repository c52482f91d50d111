"""Issue 12, items 6 and 7: one inventory however many scans run at once, and a folder
with bad files (a FIFO, a symlink to a device, a name that is not UTF-8) scanned anyway.

The CLI runs as subprocesses, as two cron jobs or a cron job and a user would run it.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from linkkeeper.db import DatabaseBusy, connect, exclusive, schema_version
from linkkeeper.faultweb import FaultWeb
from linkkeeper.scan import scan_site
from linkkeeper.site import open_site

LINKKEEPER = [sys.executable, "-m", "linkkeeper"]
FIXTURE = Path(__file__).parent / "fixtures" / "linkkeeper-v2-duplicates.sql"


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("LINKKEEPER_")}


def _site(root: Path, posts: int, links: int, host: str = "news.example") -> Path:
    (root / "_posts").mkdir(parents=True)
    (root / "_config.yml").write_text('url: "https://site.example"\n')
    for i in range(posts):
        body = "\n".join(f"[link {j}](https://{host}/ok/p{i}-{j})" for j in range(links))
        (root / "_posts" / f"2021-01-01-post{i:04}.md").write_text(
            f"---\ntitle: post {i}\n---\n{body}\n", encoding="utf-8")
    return root


def _q(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def _one_inventory(db: Path, occurrences: int) -> None:
    assert _q(db, "SELECT count(*) FROM occurrences") == [(occurrences,)]
    assert _q(db, "SELECT sum(occurrence_count) FROM posts") == [(occurrences,)]
    assert _q(db, "SELECT count(*) FROM (SELECT DISTINCT post, url, kind, line, original,"
                  " element FROM occurrences)") == [(occurrences,)]


def test_two_scans_at_once_write_one_inventory(tmp_path: Path) -> None:
    site = _site(tmp_path / "site", posts=300, links=6)  # 1,800 occurrences
    procs = [subprocess.Popen([*LINKKEEPER, "scan", str(site), "--jobs", "1"], env=_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    _one_inventory(site / "linkkeeper.db", 1800)
    again = subprocess.run([*LINKKEEPER, "scan", str(site)], env=_env(), capture_output=True,
                           text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    _one_inventory(site / "linkkeeper.db", 1800)


def test_two_checks_at_once_write_one_inventory_and_one_run(
    faultweb: FaultWeb, tmp_path: Path
) -> None:
    site = _site(tmp_path / "site", posts=30, links=5, host="slow.example")
    args = ["--offline-dns", "--ca-bundle", faultweb.ca_pem, "--no-snapshot", "--quiet"]
    for spec in faultweb.connect_to_args(wildcard=False):
        args += ["--connect-to", spec]
    procs = [subprocess.Popen([*LINKKEEPER, "check", str(site), *args], env=_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=180) for p in procs]
    codes = sorted(p.returncode for p in procs)  # 2: a link failed (not the point here)
    db = site / "linkkeeper.db"
    _one_inventory(db, 150)
    # either the second found the first's run alive (one line, exit 1) or ran after it
    assert codes.count(1) <= 1 and set(codes) <= {0, 1, 2}, outs
    for code, (_, err) in zip((p.returncode for p in procs), outs, strict=True):
        if code == 1:
            assert "still running" in err and len(err.strip().splitlines()) == 1, err
    for run_id, total in _q(db, "SELECT id, total FROM runs"):
        assert _q(db, f"SELECT count(*), count(DISTINCT url) FROM checks WHERE run_id={run_id}"
                  ) == [(total, total)]
    assert _q(db, "SELECT count(*) FROM runs WHERE state='complete'")[0][0] >= 1


def test_the_schema_refuses_a_duplicate_occurrence(tmp_path: Path) -> None:
    db = connect(tmp_path / "lk.db")
    row = ("_posts/a.md", "https://a.example/", "inline", 3, "", "https://a.example/", "", "a", 0)
    sql = ("INSERT INTO occurrences (post, url, kind, line, text, original, fragment, element,"
           " seq) VALUES (?,?,?,?,?,?,?,?,?)")
    db.execute(sql, row)
    with pytest.raises(sqlite3.IntegrityError):
        db.execute(sql, row)


def test_a_duplicated_inventory_is_repaired_by_the_migration(tmp_path: Path) -> None:
    path = tmp_path / "linkkeeper.db"
    conn = sqlite3.connect(path)
    conn.executescript(FIXTURE.read_text(encoding="utf-8"))
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    assert conn.execute("SELECT count(*) FROM occurrences").fetchone()[0] == 12
    conn.close()
    db = connect(path)
    assert schema_version(db) == 4
    rows = db.execute("SELECT post, seq, url, line FROM occurrences ORDER BY post, seq").fetchall()
    assert rows == [
        ("_posts/a.md", 0, "https://news.example/a", 7),
        ("_posts/a.md", 1, "https://news.example/a", 7),  # cited twice on the line: both kept
        ("_posts/a.md", 2, "https://img.example/i.png", 9),
        ("_posts/b.md", 0, "https://gone.example/b", 1),
        ("_posts/b.md", 1, "https://news.example/a", 12),
        ("_posts/c.md", 0, "https://news.example/c", 2),  # no count: identical rows are one
    ]
    assert "idx_occurrences_post_seq" in {i.name for i in db["occurrences"].indexes}
    assert "idx_occurrences_post" not in {i.name for i in db["occurrences"].indexes}


def test_the_writer_lock_waits_a_bounded_time_then_refuses(tmp_path: Path) -> None:
    site = _site(tmp_path / "site", posts=2, links=1)
    db_path = tmp_path / "lk.db"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import os, sys, time; from linkkeeper.db import connect, exclusive\n"
         f"db = connect({str(db_path)!r})\n"
         "with exclusive(db, doing='test'):\n"
         "    if os.fork() == 0:\n        time.sleep(8); os._exit(0)\n"  # a worker outliving it
         "    print('held', flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        db = connect(db_path)
        t0 = time.monotonic()
        with pytest.raises(DatabaseBusy, match=rf"pid {holder.pid}, test"):
            scan_site(db, open_site([site]), lock_wait=0.5)
        assert time.monotonic() - t0 < 5
        holder.kill()  # kill -9: the kernel drops the lock with the process (not its child's)
        holder.wait(timeout=10)
        assert scan_site(db, open_site([site]), lock_wait=5).posts == 2
        with exclusive(db), exclusive(db):  # re-entrant within one process
            pass
    finally:
        holder.kill()
        holder.wait(timeout=10)


def test_bad_files_next_to_a_good_post(tmp_path: Path) -> None:
    """A FIFO, a symlink to /dev/zero and a name that is not UTF-8: three problem lines,
    the good post recorded, within seconds."""
    site = _site(tmp_path / "site", posts=1, links=2)
    posts = site / "_posts"
    os.mkfifo(posts / ".md")  # hidden: skipped
    os.mkfifo(posts / "2021-01-02-fifo.md")
    os.symlink("/dev/zero", posts / "x.md")
    odd = os.fsencode(posts) + b"/2021-01-03-caf\xe9.md"
    with open(odd, "wb") as fh:
        fh.write(b"---\ntitle: odd\n---\n[odd](https://odd.example/)\n")
    big = posts / "2021-01-04-big.md"
    big.write_bytes(b"x" * 2048)
    inside = posts / "2021-01-05-alias.md"
    os.symlink(posts / "2021-01-01-post0000.md", inside)  # inside the site: read
    env = {**_env(), "LINKKEEPER_DEBUG": "1"}
    done = subprocess.run([*LINKKEEPER, "scan", str(site)], env=env, capture_output=True,
                          text=True, timeout=20)
    assert done.returncode == 0, done.stderr
    problems = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(problems) == 3, problems  # the FIFO, /dev/zero, the odd name (recorded)
    assert any("2021-01-02-fifo.md:0: not a regular file (a FIFO)" in p for p in problems)
    assert any("x.md:0: symlink to /dev/zero, outside the site" in p for p in problems)
    assert any("caf\\xe9.md:0: file name is not UTF-8" in p for p in problems)
    db = site / "linkkeeper.db"
    stored = dict(_q(db, "SELECT path, occurrence_count FROM posts"))
    assert stored["_posts/2021-01-01-post0000.md"] == 2
    assert stored["_posts/2021-01-05-alias.md"] == 2
    assert stored["_posts/2021-01-03-caf\\xe9.md"] == 1  # the undecodable byte, escaped
    found = open_site([site]).locate("_posts/2021-01-03-caf\\xe9.md")  # `fix` finds it again
    assert found.read_bytes().startswith(b"---")
    # the size cap: a one-line problem, the rest goes on
    db_small = connect(tmp_path / "small.db")
    small = open_site([site])
    small.max_post_bytes = 1024
    summary = scan_site(db_small, small)
    assert [str(p) for p in summary.problems if "big" in p.path] == [
        "_posts/2021-01-04-big.md:0: 2,048 bytes, over the 1,024-byte limit for a post: not read"]
    assert (summary.posts, summary.parsed) == (6, 3)  # post, alias, odd name; not the other 3


def test_check_goes_on_past_bad_files(faultweb: FaultWeb, tmp_path: Path) -> None:
    site = _site(tmp_path / "site", posts=1, links=2, host="news.example")
    os.mkfifo(site / "_posts" / "2021-01-02-fifo.md")
    os.symlink("/dev/zero", site / "_posts" / "x.md")
    args = ["--offline-dns", "--ca-bundle", faultweb.ca_pem, "--no-snapshot"]
    for spec in faultweb.connect_to_args(wildcard=False):
        args += ["--connect-to", spec]
    done = subprocess.run([*LINKKEEPER, "check", str(site), *args], env=_env(),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "not a regular file" in done.stderr and "outside the site" in done.stderr
    assert _q(site / "linkkeeper.db", "SELECT count(*) FROM checks") == [(2,)]


def _connect_at_the_barrier(path: str, barrier: Any, errors: Any) -> None:
    barrier.wait()
    try:
        connect(path).conn.close()
    except Exception as exc:  # reported to the test, which fails on it
        errors.put(repr(exc))


def test_two_processes_opening_a_new_database_at_once_both_succeed(tmp_path: Path) -> None:
    """SQLite answers two switches of one new file to WAL at the same moment with "database
    is locked" at once (no busy timeout): one of two commands started together failed."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    errors = ctx.Queue()
    for i in range(40):
        barrier = ctx.Barrier(2)
        procs = [ctx.Process(target=_connect_at_the_barrier,
                             args=(str(tmp_path / f"{i}.db"), barrier, errors))
                 for _ in range(2)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
            assert p.exitcode == 0
    assert errors.empty(), errors.get()
