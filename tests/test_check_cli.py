"""`linkkeeper check` end to end against the fault-injection web: the nightly audit as users run it.

The CLI runs as a subprocess (as cron would run it); the fault-injection web runs
in this process on loopback and every request is aimed at it with --connect-to
and --offline-dns, so nothing leaves the machine.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest
from helpers import web_args, write_site

from linkkeeper.check.options import CheckOptions, host_policies
from linkkeeper.faultweb import FaultWeb
from linkkeeper.settings import ConfigError

LINKKEEPER = [sys.executable, "-m", "linkkeeper"]

POST = """---
layout: post
title: "{title}"
date: 2021-01-0{day}T00:00:00.000Z
author: 测试
from: {source}
---
<!--NaN-->
[{title}]({source})
------

<div>
{body}
</div>
"""


def make_site(root: Path, posts: dict[str, tuple[str, list[str]]]) -> Path:
    """posts: title -> (source URL, other URLs)."""
    texts = {}
    for i, (title, (source, links)) in enumerate(posts.items(), start=1):
        body = "\n".join(f'<p><a href="{u}">link {j}</a></p>' for j, u in enumerate(links))
        texts[f"2021-01-0{i % 9 + 1}-post{i}.md"] = POST.format(
            title=title, day=i % 9 + 1, source=source, body=body)
    return write_site(root, texts)


def run(*args: object, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINKKEEPER_")}
    return subprocess.run([*LINKKEEPER, *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout)


def q(db: Path, sql: str, *params: object) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, params).fetchall()


def test_check_json_history_and_exit_codes(faultweb: FaultWeb, tmp_path: Path) -> None:
    site = make_site(tmp_path / "site", {
        "一": ("https://news.example/ok/story-1", [
            "https://news.example/status/404/gone",
            "https://news.example/redirect/301/2/moved",
            "https://news.example/block/403/paywall",
            "http://news.example/head/405/head-refused",
            "mailto:tips@news.example",
        ]),
        "二": ("https://news.example/ok/story-2", [
            "https://news.example/status/404/gone",  # cited twice, checked once
            "https://does-not-resolve.invalid/ok/x",
            "https://expired.example/ok/x",
        ]),
    })
    db = site / "linkkeeper.db"
    out = tmp_path / "results.json"
    # --head-first: this night also shows the HEAD-then-GET fallback (page links are
    # read with GET by default)
    res = run("check", site, *web_args(faultweb), "--format", "json", "-o", out, "--attempts", "1",
              "--head-first")
    assert res.returncode == 2, res.stderr  # new failures
    doc = json.loads(out.read_text())
    assert doc["run"]["state"] == "complete" and doc["run"]["id"] == 1
    links = {link["url"]: link for link in doc["links"]}
    expect = {
        "https://news.example/ok/story-1": ("ok", 200),
        "https://news.example/status/404/gone": ("broken", 404),
        "https://news.example/redirect/301/2/moved": ("redirected", 200),
        "https://news.example/block/403/paywall": ("blocked", 403),
        "http://news.example/head/405/head-refused": ("ok", 200),
        "https://does-not-resolve.invalid/ok/x": ("broken", None),
        "https://expired.example/ok/x": ("tls-error", None),
        "mailto:tips@news.example": ("excluded", None),
    }
    for url, (status, code) in expect.items():
        assert links[url]["status"] == status, (url, links[url])
        assert links[url]["http_status"] == code, (url, links[url])
        assert links[url]["reason"], url
    gone = links["https://news.example/status/404/gone"]
    assert len(gone["posts"]) == 2 and gone["kinds"] == ["inline"]
    assert gone["state"] == "failing" and gone["new_failure"] is True
    assert links["https://news.example/redirect/301/2/moved"]["final_url"].endswith("/ok/moved")
    assert len(links["https://news.example/redirect/301/2/moved"]["redirects"]) == 2
    assert "DNS" in links["https://does-not-resolve.invalid/ok/x"]["reason"]
    assert "expired" in links["https://expired.example/ok/x"]["reason"]
    assert links["http://news.example/head/405/head-refused"]["reason"] == "HEAD 405, GET 200"
    # the 404 was fetched for one URL only, however many posts cite it
    assert len(faultweb.requests(host="news.example", path="/status/404/gone")) <= 2

    # second night: same failures are not new -> exit 0 with --fail-on new, 2 with any
    res = run("check", site, *web_args(faultweb), "--attempts", "1")
    assert res.returncode == 0, res.stdout + res.stderr
    res = run("check", site, *web_args(faultweb), "--attempts", "1", "--fail-on", "any")
    assert res.returncode == 2
    assert q(db, "SELECT count(*) FROM runs WHERE state='complete'")[0][0] == 3
    assert q(db, "SELECT count(*) FROM checks WHERE url=?",
             "https://news.example/status/404/gone")[0][0] == 3

    # --max-age: URLs checked ok recently are skipped, failing ones re-checked
    res = run("check", site, *web_args(faultweb), "--attempts", "1", "--max-age", "1h",
              "--format", "json")
    doc = json.loads(res.stdout)
    assert doc["run"]["total"] == 5  # 404, blocked, DNS, TLS, mailto (no request): not the ok ones
    checked = {link["url"] for link in doc["links"] if link["checked_this_run"]}
    assert "https://news.example/ok/story-1" not in checked
    assert "https://news.example/status/404/gone" in checked

    # history prints the timeline
    res = run("history", "https://NEWS.example:443/status/404/gone", "--db", db)
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("broken") >= 4 and "state: failing" in res.stdout

    # --failing re-checks only failing links; --budget caps the run
    doc = json.loads(run("check", site, *web_args(faultweb), "--failing", "--budget", "2",
                         "--format", "json", "--attempts", "1").stdout)
    assert doc["run"]["total"] == 2


def test_bad_options_exit_3(tmp_path: Path) -> None:
    site = make_site(tmp_path / "site", {"a": ("https://news.example/ok/a", [])})
    for bad in (["--connect-to", "nonsense"], ["--accept", "abc"], ["--max-age", "soon"],
                ["--exclude", "(unclosed"],
                # no number a run can use: inf crashed every request, nan passes every test
                ["--timeout", "inf"], ["--host-rate", "nan"], ["--max-age", "inf"],
                ["--max-age", "-3d"], ["--confirm", "3,nan"],
                # a line break in a header would write a second header into every request
                ["-H", "X-A: b\r\nEvil: 1"], ["-H", "X A: b"], ["--user-agent", "a\nb"],
                # a proxy aiohttp cannot speak to failed every URL as a network error
                ["--proxy", "ftp://proxy.example"], ["--include", "[x"],
                ["--site-url", "javascript:alert(1)"]):
        res = run("check", site, *bad)
        assert res.returncode == 3, (bad, res.stderr)
        assert "Traceback" not in res.stderr and res.stderr.count("\n") == 1, res.stderr


@pytest.mark.parametrize("setting, says", [
    ('concurrency = "8"', "concurrency = '8': give a whole number of at least 1"),
    ("concurrency = 0", "at least 1"),
    ("concurrency = 2.5", "whole number"),
    ("rate = nan", "rate = nan"),
    ("rate = -1", "at least 0"),
    ("timeout = inf", "timeout = inf"),
    ('read_timeout = "slow"', "read_timeout"),
    ("headers = 5", "give a table"),
    ('headers = {"X-Y" = "a\\r\\nEvil: 1"}', "line break"),
    ('headers = {"X Y" = "a"}', "not a token"),
    ("headers = {a = [1]}", "plain value"),
])
def test_a_hostile_host_table_is_refused_in_one_line(tmp_path: Path, setting: str, says: str
                                                     ) -> None:
    tables = tomllib.loads(f'[hosts."news.example"]\n{setting}\n')["hosts"]
    with pytest.raises(ConfigError) as caught:
        host_policies(tables, tmp_path / "linkkeeper.toml")
    assert says in caught.value.message and "news.example" in caught.value.message


def test_a_host_table_with_usable_values_is_read(tmp_path: Path) -> None:
    text = '[hosts."news.example"]\nconcurrency = 2\nrate = 0.5\ntimeout = 5\nheaders = {X-N = 1}\n'
    policy = host_policies(tomllib.loads(text)["hosts"])["news.example"]
    assert (policy.concurrency, policy.rate, policy.total_timeout) == (2, 0.5, 5)
    assert policy.headers == {"X-N": "1"}


@pytest.mark.parametrize("setting", [
    {"total_timeout": float("inf")}, {"connect_timeout": 0}, {"host_rate": float("nan")},
    {"concurrency": 0}, {"host_concurrency": 2.5}, {"attempts": True},
    {"soft404_threshold": 1.5}, {"memory_budget": -1},
])
def test_the_library_refuses_options_no_run_can_use(setting: dict[str, Any]) -> None:
    name = next(iter(setting))
    with pytest.raises(ValueError, match=name):
        CheckOptions(**setting)


@pytest.mark.parametrize("text, says", [
    ('[hosts."news.example"]\ntimeout = inf\n', "timeout = inf"),
    ("db = 5\n", "db: 5 is not a value for --db"),  # was a TypeError
    ("concurrency = 1e400\n", "concurrency: inf"),  # was an OverflowError
    ('site-url = "ftp://x"\n', "site_url: 'ftp://x' is not an http(s) URL"),
])
def test_the_command_line_refuses_a_hostile_config_file_in_one_line(
    tmp_path: Path, text: str, says: str
) -> None:
    site = make_site(tmp_path / "site", {"a": ("https://news.example/ok/a", [])})
    (site / "linkkeeper.toml").write_text(text)
    res = run("check", site, "--no-snapshot")
    assert res.returncode == 3 and says in res.stderr, res.stderr
    assert res.stderr.count("\n") == 1 and "linkkeeper.toml" in res.stderr


@pytest.mark.faultweb(latency={"slow.example": (150, 150)}, hosts=["slow.example"])
def test_kill_9_run_is_resumed_and_nothing_is_lost(faultweb: FaultWeb, tmp_path: Path) -> None:
    urls = [f"https://slow.example/ok/page-{i}" for i in range(120)]
    site = make_site(tmp_path / "site", {
        f"p{i}": (urls[i * 20], urls[i * 20 + 1:(i + 1) * 20]) for i in range(6)})
    db = site / "linkkeeper.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINKKEEPER_")}
    proc = subprocess.Popen(
        [*LINKKEEPER, "check", str(site), *web_args(faultweb), "--host-concurrency", "2",
         "--quiet", "--no-snapshot"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            time.sleep(0.2)
            if db.exists():
                try:
                    if q(db, "SELECT count(*) FROM checks")[0][0] >= 30:
                        break
                except sqlite3.OperationalError:
                    pass
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    before = q(db, "SELECT id, url, status FROM checks ORDER BY id")
    requests_before_resume = len(faultweb.log)
    assert 0 < len(before) < 120
    assert q(db, "SELECT state FROM runs")[0][0] == "running"

    # (archiving off: a resumed run re-captures pages whose snapshot rows died with the
    # process, by design; tests/test_archive.py covers that crash)
    res = run("check", site, *web_args(faultweb), "--host-concurrency", "4", "--no-snapshot")
    assert res.returncode == 0, res.stderr
    assert "resumed" in res.stdout
    after = q(db, "SELECT id, url, status FROM checks ORDER BY id")
    assert after[: len(before)] == before  # nothing recorded before the kill was lost
    assert q(db, "SELECT count(*), count(DISTINCT url) FROM checks WHERE run_id=1")[0] == (120, 120)
    assert q(db, "SELECT id, state FROM runs") == [(1, "complete")]
    # the resumed run did not fetch again what was already recorded
    recorded_paths = {u.split("slow.example", 1)[1] for _, u, _ in before}
    refetched = [e.path for e in faultweb.log[requests_before_resume:]
                 if e.path in recorded_paths]
    assert refetched == []


def test_new_run_abandons_the_unfinished_run_for_good(faultweb: FaultWeb, tmp_path: Path) -> None:
    site = make_site(tmp_path / "site", {"a": ("https://news.example/ok/a",
                                               ["https://news.example/ok/b"])})
    db = site / "linkkeeper.db"
    assert run("scan", site).returncode == 0
    with sqlite3.connect(db) as conn:  # a run that died before checking anything
        conn.execute("INSERT INTO runs (id, started_at, state, total, done) VALUES "
                     "(1, '2026-01-01T00:00:00+00:00', 'running', 2, 0)")
        conn.executemany("INSERT INTO plan (run_id, seq, url) VALUES (1, ?, ?)",
                         [(0, "https://news.example/ok/a"), (1, "https://news.example/ok/b")])
    res = run("check", site, *web_args(faultweb), "--new-run")
    assert res.returncode == 0, res.stderr
    assert "resumed" not in res.stdout
    res = run("check", site, *web_args(faultweb))
    assert "resumed" not in res.stdout
    assert q(db, "SELECT id, state FROM runs ORDER BY id") == [
        (1, "abandoned"), (2, "complete"), (3, "complete")]
    assert q(db, "SELECT count(*) FROM checks WHERE run_id = 1")[0][0] == 0


def test_cli_defaults_are_the_library_defaults() -> None:
    """`check`'s defaults come from CheckOptions/ArchiveOptions: a library caller gets the CLI's run."""
    from linkkeeper.archive.archiver import ArchiveOptions
    from linkkeeper.check.options import CheckOptions
    from linkkeeper.cli import cli
    from linkkeeper.cli.app import parse_size

    defaults = {p.name: p.default for p in cli.commands["check"].params}
    library = CheckOptions()
    fields = {"concurrency": "concurrency", "host_concurrency": "host_concurrency",
              "host_rate": "host_rate", "max_redirects": "max_redirects", "attempts": "attempts",
              "retry_after_cap": "retry_after_cap", "connect_timeout": "connect_timeout",
              "read_timeout": "read_timeout", "timeout": "total_timeout", "soft404": "soft404",
              "soft404_threshold": "soft404_threshold", "read_pages": "read_pages"}
    for param, field in fields.items():
        assert defaults[param] == getattr(library, field), param
    archive = ArchiveOptions(folder=Path("warcs"))
    assert parse_size(defaults["max_capture_size"]) == archive.max_capture_bytes
    assert parse_size(defaults["warc_max_size"]) == archive.warc_max_size
    assert set(defaults["snapshot_kinds"].split(",")) == set(archive.kinds)


def test_cli_app_holds_no_command_and_imports_no_command_module() -> None:
    """The group module sits under the command modules: no cycle inside cli/."""
    import ast

    import linkkeeper.cli.app as app

    tree = ast.parse(Path(app.__file__).read_text(encoding="utf-8"))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {a.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                 for a in node.names}
    assert not {m for m in imported if m and m.startswith("linkkeeper.cli")}
    decorators = [ast.unparse(d) for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)
                  for d in node.decorator_list]
    assert not [d for d in decorators if d.startswith("cli.command")]


def test_history_reads_the_config_file_like_the_other_commands(tmp_path: Path) -> None:
    """`db` in linkkeeper.toml is where `history` looks (it used to skip the config file)."""
    from linkkeeper.db import connect

    connect(tmp_path / "elsewhere.db")
    (tmp_path / "linkkeeper.toml").write_text('db = "elsewhere.db"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINKKEEPER_")}
    done = subprocess.run([*LINKKEEPER, "history", "https://news.example/x", "--format", "json"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"url": "https://news.example/x", "state": None,
                                       "checks": []}
    (tmp_path / "empty").mkdir()
    missing = subprocess.run([*LINKKEEPER, "history", "https://news.example/x"],
                             capture_output=True, text=True, env=env, cwd=tmp_path / "empty",
                             timeout=60)
    # no database anywhere (no SITE, no config, none here, no last-used site): run check first
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    assert "run `linkkeeper check` first" in missing.stderr


def test_demo_runs_the_audit_and_writes_the_report(tmp_path: Path) -> None:
    """`linkkeeper demo`: one library call (demo.run_demo), hermetic, twice makes two nights."""
    for _night in (1, 2):
        done = run("demo", "--workdir", tmp_path / "demo", "--quiet", timeout=300)
        assert done.returncode == 0, done.stderr
        assert "index.html: " in done.stderr and "links" in done.stderr
    db = tmp_path / "demo" / "site" / "linkkeeper.db"
    assert [r[0] for r in q(db, "SELECT state FROM runs ORDER BY id")] == ["complete"] * 2
    assert q(db, "SELECT count(*) FROM snapshots")[0][0] > 0
    assert (tmp_path / "demo" / "site" / "reports" / "index.html").is_file()
