"""Issue 12: `check` with archiving killed (-9) 20 times at random moments, then run again.

The site cites 480 URLs (more than the recorder's batch of 200, so runs are cut
between batches too) on six fault-web hosts with latency, so kills land during
startup, the scan, checking and WARC writing alike. At the end: every closed WARC reads
back with valid digests, no ``.open`` file is left, every snapshot row points at a
record, no check recorded before a kill is lost, no URL is checked twice in a run, every
run checked its whole plan, and the final statuses equal those of one uninterrupted run
on a fresh copy.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import read_warc

from linkkeeper.faultweb import FaultWeb

LINKKEEPER = [sys.executable, "-m", "linkkeeper"]
HOSTS = ("news.example", "blog.example", "cdn.example", "social.example", "archive.example",
         "images.example")
KILLS = 20


def _site(root: Path) -> Path:
    (root / "_posts").mkdir(parents=True)
    (root / "_config.yml").write_text('url: "https://site.example"\n')
    for p in range(48):
        host = HOSTS[p % len(HOSTS)]
        links = [f"https://{host}/ok/post{p}-{j}" for j in range(7)]
        links += [f"https://{host}/status/404/post{p}", f"https://{host}/redirect/301/1/r{p}",
                  f"https://{HOSTS[(p + 1) % len(HOSTS)]}/img/p{p}.png"]
        body = "\n".join(f'<p><a href="{u}">link {j}</a></p>' for j, u in enumerate(links))
        (root / "_posts" / f"2021-01-{p % 28 + 1:02}-post{p}.md").write_text(
            f"---\ntitle: post {p}\n---\n<div>\n{body}\n</div>\n", encoding="utf-8")
    return root


def _q(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db, timeout=30) as conn:
        return conn.execute(sql).fetchall()


def _args(web: FaultWeb, site: Path) -> list[str]:
    args = ["check", str(site), "--offline-dns", "--ca-bundle", web.ca_pem,
            "--host-concurrency", "4", "--quiet", "--fail-on", "never"]
    for spec in web.connect_to_args(wildcard=False):
        args += ["--connect-to", spec]
    return args


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("LINKKEEPER_")}


def _last_statuses(db: Path) -> dict[str, str]:
    return dict(_q(db, "SELECT url, status FROM checks c WHERE id ="
                       " (SELECT max(id) FROM checks WHERE url = c.url)"))


@pytest.mark.slow
@pytest.mark.faultweb(latency={h: (20, 120) for h in HOSTS})
def test_twenty_kills_lose_nothing(faultweb: FaultWeb, tmp_path: Path) -> None:
    site = _site(tmp_path / "site")
    fresh = tmp_path / "fresh"
    shutil.copytree(site, fresh)
    db = site / "linkkeeper.db"
    warcs = site / "warcs"
    rng = random.Random(12)
    recorded: set[tuple] = set()
    interrupted = open_left = 0
    for _ in range(KILLS):
        proc = subprocess.Popen([*LINKKEEPER, *_args(faultweb, site)], env=_env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.5, 6.0))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        try:  # (a kill while the first connect creates the tables leaves some missing)
            recorded |= set(_q(db, "SELECT id, run_id, url, status FROM checks"))
            interrupted += bool(_q(db, "SELECT 1 FROM runs WHERE state = 'running'"))
        except sqlite3.OperationalError as exc:
            assert "no such table" in str(exc)
        open_left += len(list(warcs.rglob("*.open"))) if warcs.exists() else 0
    final = subprocess.run([*LINKKEEPER, *_args(faultweb, site)], env=_env(),
                           capture_output=True, text=True, timeout=120)
    assert final.returncode == 0, final.stderr
    assert interrupted >= KILLS // 2, interrupted  # most kills landed inside a run
    assert open_left > 0  # and some mid-WARC
    runs = _q(db, "SELECT count(*) FROM runs")[0][0]
    print(f"crash loop: {KILLS} kills, {interrupted} inside a run, {open_left} .open files"
          f" left by them, {runs} runs, {len(recorded)} checks recorded before kills")

    # no check lost, none doubled, every run checked its whole plan once
    checks = set(_q(db, "SELECT id, run_id, url, status FROM checks"))
    assert recorded <= checks
    assert _q(db, "SELECT run_id, url FROM checks GROUP BY 1, 2 HAVING count(*) > 1") == []
    assert {s for (s,) in _q(db, "SELECT state FROM runs")} == {"complete"}
    for run_id, planned in _q(db, "SELECT run_id, count(*) FROM plan GROUP BY 1"):
        assert _q(db, f"SELECT count(*) FROM plan p JOIN checks c ON c.run_id = p.run_id"
                      f" AND c.url = p.url WHERE p.run_id = {run_id}") == [(planned,)]
        assert _q(db, f"SELECT count(*) FROM checks WHERE run_id = {run_id}") == [(planned,)]

    # every WARC closed and valid, every snapshot row pointing at one of its records
    assert list(warcs.rglob("*.open")) == []
    records = {}
    for path in warcs.rglob("*.warc.gz"):
        for record in read_warc(path):  # digests checked
            records[(path.relative_to(warcs).as_posix(), record["offset"])] = record["uri"]
    snapshots = _q(db, "SELECT warc_file, offset, url FROM snapshots")
    assert snapshots
    assert all(records.get((f, o)) == url for f, o, url in snapshots), snapshots[:3]

    # the same statuses as one uninterrupted run
    clean = subprocess.run([*LINKKEEPER, *_args(faultweb, fresh)], env=_env(),
                           capture_output=True, text=True, timeout=120)
    assert clean.returncode == 0, clean.stderr
    expected = _last_statuses(fresh / "linkkeeper.db")
    assert len(expected) == 480
    assert _last_statuses(db) == expected
