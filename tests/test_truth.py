"""Verdicts over time: drift, confirmed deaths, what never dies, host failures, and a small world.

Nights are simulated by stamping each result with an explicit time one day
apart before it is recorded: the history's 3-checks-over-3-days rule plays out
without sleeping.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from helpers import hermetic_options
from truth_world import OUTAGE_NIGHT, generate, replay, score

from linkkeeper.check.checker import Checker
from linkkeeper.check.options import CheckOptions
from linkkeeper.db import connect
from linkkeeper.faultweb import UNRESOLVABLE_HOST, FaultWeb
from linkkeeper.history.recorder import Recorder
from linkkeeper.history.runs import start_run
from linkkeeper.history.state import ConfirmPolicy, drifted_state
from linkkeeper.history.truth import DRIFT_THRESHOLD, Drift, host_failures
from linkkeeper.report.results import link_records, run_record
from linkkeeper.vocab import State, Status

START = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def web() -> Iterator[FaultWeb]:
    with FaultWeb() as server:
        yield server


@pytest.fixture
def db(tmp_path: Path) -> sqlite_utils.Database:
    return connect(tmp_path / "truth.db")


def options(web: FaultWeb, **overrides: Any) -> CheckOptions:
    values = {"backoff_base": 0.01, "backoff_cap": 0.05, "attempts": 1, "soft404": True}
    return hermetic_options(web, **{**values, **overrides})


async def night(
    db: sqlite_utils.Database, web: FaultWeb, urls: list[str], n: int,
    confirm: ConfirmPolicy | None = None, **overrides: Any
) -> Recorder:
    """One nightly run, recorded as if it happened n days after START."""
    run = start_run(db, urls, options={}, new_run=True)
    recorder = Recorder(db, run.id, confirm=confirm or ConfirmPolicy())
    async with Checker(options(web, **overrides)) as checker:
        async for result in checker.run(urls):
            result.started_at = START + timedelta(days=n)
            recorder.add(result)
    recorder.finish()
    return recorder


def state(db: sqlite_utils.Database, url: str) -> dict[str, Any]:
    return next(db["link_state"].rows_where("url = ?", [url]))


def last_check(db: sqlite_utils.Database, url: str) -> dict[str, Any]:
    row = next(db["checks"].rows_where("url = ?", [url], order_by="id desc", limit=1))
    row["evidence"] = json.loads(row["evidence"]) if row["evidence"] else {}
    return row


# -- drift -----------------------------------------------------------------------------------


async def test_a_replaced_article_drifts_and_a_chrome_change_does_not(db, web) -> None:
    drifting, chrome = "http://news.example/drift/mayor-story", "http://news.example/chrome/flood"
    for n in range(3):
        await night(db, web, [drifting, chrome], n, read_pages=True)
        if n == 0:
            assert state(db, drifting)["state"] == State.ALIVE
            assert state(db, drifting)["first_fingerprint"].startswith("bk1:")
    replaced = state(db, drifting)
    assert replaced["state"] == State.DRIFTED
    assert replaced["since"] == (START + timedelta(days=1)).isoformat()  # when it first moved
    assert replaced["drift"] >= DRIFT_THRESHOLD
    evidence = last_check(db, drifting)["evidence"]["drift"]
    assert evidence["vs_first"] >= DRIFT_THRESHOLD and evidence["vs_previous"] == 0.0
    kept = state(db, chrome)
    assert kept["state"] == State.ALIVE and kept["drift"] == 0.0
    assert last_check(db, chrome)["evidence"]["drift"]["vs_previous"] == 0.0
    assert last_check(db, chrome)["status"] == Status.OK


async def test_drifted_survives_a_check_without_content(db, web) -> None:
    url = "http://news.example/drift/survives"
    await night(db, web, [url], 0, read_pages=True)
    await night(db, web, [url], 1, read_pages=True)
    assert state(db, url)["state"] == State.DRIFTED
    await night(db, web, [url], 2, soft404=False)  # HEAD only: no fingerprint
    assert state(db, url)["state"] == State.DRIFTED


def test_drift_rules() -> None:
    far, near = Drift(0.9, 0.9), Drift(0.1, 0.1)
    assert drifted_state(State.ALIVE, State.ALIVE, Status.OK, far, 0.5) == State.DRIFTED
    assert drifted_state(State.ALIVE, State.DRIFTED, Status.OK, near, 0.5) == State.ALIVE
    assert drifted_state(State.FAILING, State.DRIFTED, Status.BROKEN, far, 0.5) == State.FAILING
    assert drifted_state(State.FLAKY, State.ALIVE, Status.OK, far, 0.5) == State.FLAKY


# -- confirmed dead, and what never dies -----------------------------------------------------


async def test_soft_404_is_confirmed_dead_after_three_checks_over_three_days(db, web) -> None:
    url = "http://soft404.example/news/2018/07/gone-harbour"
    states = []
    for n in range(4):
        await night(db, web, [url], n)
        states.append(state(db, url)["state"])
    assert states == [State.FAILING, State.FAILING, State.FAILING, State.DEAD]
    row = state(db, url)
    assert row["first_failed"] == START.isoformat()
    assert row["since"] == (START + timedelta(days=3)).isoformat()
    check = last_check(db, url)
    assert check["status"] == Status.SOFT_404
    assert check["evidence"]["soft404"]["probe"]["url"].startswith("http://soft404.example/")
    assert "like-probe" in check["evidence"]["soft404"]["signals"]


async def test_confirm_policy_is_configurable(db, web) -> None:
    url = "http://news.example/status/410/gone-early"
    policy = ConfirmPolicy(checks=2, days=1)
    await night(db, web, [url], 0, confirm=policy)
    await night(db, web, [url], 1, confirm=policy)
    assert state(db, url)["state"] == State.DEAD


async def test_transient_blocked_and_rate_limited_links_never_die(db, web) -> None:
    flaky = "http://news.example/flaky/2/truth-flaky"  # 503 twice, then fine
    blocked = "http://news.example/block/403/truth-blocked"
    limited = "http://news.example/ratelimit/0/1000/truth-limited"
    cloudflare = "http://news.example/block/cf/truth-cf"
    seen: dict[str, list[str]] = {url: [] for url in (flaky, blocked, limited, cloudflare)}
    for n in range(5):
        await night(db, web, list(seen), n)
        for url in seen:
            seen[url].append(state(db, url)["state"])
    assert seen[flaky] == [State.FAILING, State.FAILING, State.RECOVERED, State.ALIVE,
                           State.ALIVE]
    assert set(seen[blocked]) == set(seen[cloudflare]) == {State.BLOCKED}
    assert set(seen[limited]) == {State.BLOCKED}
    assert last_check(db, limited)["status"] == Status.RATE_LIMITED
    assert all(State.DEAD not in states for states in seen.values())


# -- host failures ---------------------------------------------------------------------------


async def test_a_host_failing_entirely_is_reported_once(db, web) -> None:
    down = [f"https://{UNRESOLVABLE_HOST}/news/{i}/story" for i in range(5)]
    honest = [f"http://news.example/status/404/host-ok-{i}" for i in range(4)]
    recorder = await night(db, web, [*down, *honest], 0)
    assert [f.host for f in recorder.host_failures] == [UNRESOLVABLE_HOST]
    rows = list(db["host_failures"].rows)
    assert len(rows) == 1 and rows[0]["links"] == 5 and rows[0]["status"] == Status.BROKEN
    assert "DNS" in rows[0]["reason"]
    assert all(last_check(db, u)["evidence"]["host_failure"] == UNRESOLVABLE_HOST for u in down)
    assert all("host_failure" not in last_check(db, u)["evidence"] for u in honest)
    record = run_record(db, recorder.run_id)
    assert record["host_failures"] == [
        {"host": UNRESOLVABLE_HOST, "links": 5, "status": "broken",
         "reason": "DNS: name does not resolve"}
    ]


def test_host_failure_rules() -> None:
    rows = [
        ("http://a.example/1", "server-error", "HTTP 503", 503),
        ("http://a.example/2", "timeout", "read timeout", None),
        ("http://a.example/3", "server-error", "HTTP 503", 503),
        ("http://b.example/1", "broken", "HTTP 404", 404),  # the host answers: not down
        ("http://b.example/2", "broken", "HTTP 404", 404),
        ("http://b.example/3", "network-error", "reset", None),
        ("http://c.example/1", "network-error", "reset", None),  # too few links to say
        ("http://d.example/1", "blocked", "HTTP 403", 403),
        ("http://d.example/2", "network-error", "reset", None),
        ("http://d.example/3", "network-error", "reset", None),
    ]
    failures = host_failures(rows)
    assert [(f.host, f.links, f.status) for f in failures] == [("a.example", 3, "server-error")]


# -- the JSON a report reads -----------------------------------------------------------------


async def test_json_carries_state_since_and_evidence(db, web) -> None:
    gone = "http://redirect-home.example/news/2020/gone-json"
    alive = "http://news.example/ok/json-alive"
    db["links"].insert_all([{"url": gone, "host": "redirect-home.example"},
                            {"url": alive, "host": "news.example"}], pk="url")
    db["occurrences"].insert_all([{"post": "_posts/a.md", "url": gone, "kind": "source", "line": 2},
                                  {"post": "_posts/a.md", "url": alive, "kind": "related",
                                   "line": 9}])
    recorder = await night(db, web, [gone, alive], 0)
    records = {r["url"]: r for r in link_records(db, recorder.run_id)}
    assert records[gone]["status"] == "soft-404" and records[gone]["state"] == "failing"
    assert records[gone]["state_since"] == START.isoformat()
    assert "redirect-to-home" in records[gone]["evidence"]["soft404"]["signals"]
    assert records[alive]["state"] == "alive" and records[alive]["host_failure"] is None


# -- a small generated world (the full one is benchmarks/bench_truth.py) ---------------------


async def test_small_world_verdicts(tmp_path: Path) -> None:
    world = generate(size=170, seed=3)
    with FaultWeb(hosts=world.served_hosts) as fault_web:
        world.install(fault_web)
        nights = await replay(world, fault_web, connect(tmp_path / "world.db"), 4,
                              read_pages=True)
    result = score(world, nights)
    assert result["soft404_precision"] >= 0.98 and result["soft404_recall"] >= 0.95
    assert result["wrongly_dead"] == []
    assert result["dead_confirmed"] == result["dead_truth"]
    outage = next(h for h, p in world.profiles.items() if p == "outage")
    assert [n.host_failures.count(outage) for n in nights] == [
        int(n == OUTAGE_NIGHT) for n in range(4)
    ]


# -- the check command -----------------------------------------------------------------------


def test_check_command_reports_soft_404s_with_evidence(tmp_path: Path, web: FaultWeb) -> None:
    import os
    import subprocess
    import sys

    posts = tmp_path / "site" / "_posts"
    posts.mkdir(parents=True)
    (tmp_path / "site" / "_config.yml").write_text('url: "https://site.example"\n')
    gone = "http://soft404.example/news/2017/02/gone-museum"
    live = "http://soft404.example/news/2017/02/story-museum"
    (posts / "2021-01-01-a.md").write_text(
        f'---\ntitle: "A"\nfrom: {gone}\n---\n[A]({gone})\n\n<p><a href="{live}">x</a></p>\n',
        encoding="utf-8",
    )
    args = ["--offline-dns", "--ca-bundle", web.ca_pem, "--no-snapshot", "--format", "json"]
    for spec in web.connect_to_args(wildcard=False):
        args += ["--connect-to", spec]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINKKEEPER_")}

    def check(*extra: str) -> dict[str, Any]:
        done = subprocess.run(
            [sys.executable, "-m", "linkkeeper", "check", str(tmp_path / "site"), *args, *extra,
             "--db", str(tmp_path / "lk.db")],
            capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode in (0, 2), done.stderr
        return {link["url"]: link for link in json.loads(done.stdout)["links"]}

    links = check()  # on by default
    assert links[gone]["status"] == "soft-404" and links[gone]["state"] == "failing"
    assert "like-probe" in links[gone]["evidence"]["soft404"]["signals"]
    assert links[live]["status"] == "ok" and links[live]["state"] == "alive"
    links = check("--no-soft404")
    assert links[gone]["status"] == "ok" and "soft404" not in (links[gone]["evidence"] or {})


@pytest.mark.slow
async def test_full_world_meets_the_issue_aims(tmp_path: Path) -> None:
    """The benchmark world (>= 1,000 links, 6 nights): the aims of issue 7, asserted."""
    world = generate(size=1200, seed=7)
    assert len(world.links) >= 1000
    with FaultWeb(hosts=world.served_hosts) as fault_web:
        world.install(fault_web)
        off = await replay(world, fault_web, connect(tmp_path / "off.db"), 6, soft404=False)
        on = await replay(world, fault_web, connect(tmp_path / "on.db"), 6)
        read = await replay(world, fault_web, connect(tmp_path / "read.db"), 6, read_pages=True)
    for nights in (on, read):
        assert score(world, nights)["wrongly_dead"] == []
        assert sum(n.requests for n in nights) < 1.05 * sum(n.requests for n in off)
    result = score(world, read)
    assert result["soft404_precision"] >= 0.98 and result["soft404_recall"] >= 0.95
    assert score(world, on)["soft404_precision"] >= 0.98
