"""Issue 12, item 3: a run cut off from the network is no evidence.

The verdict (history/truth.py `run_verdict`) and the rule (history/state.py: a
degraded run's failures leave the link as it was) are pure and table-tested
here; the recorder settles failures at the end of a run, once the verdict is
known; `check` says it in one line, exits 1 and every report format carries it.
End to end, `--offline-dns` without a single `--connect-to` mapping is the
offline machine.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from linkkeeper.check.classify import Timeouts, classify_error
from linkkeeper.check.resolver import OfflineUnmapped, name_not_resolved
from linkkeeper.check.result import CheckResult
from linkkeeper.db import connect
from linkkeeper.faultweb import FaultWeb
from linkkeeper.history.recorder import Recorder, settle_abandoned
from linkkeeper.history.runs import start_run
from linkkeeper.history.state import ConfirmPolicy, LinkState, StatePolicy, next_state
from linkkeeper.history.truth import network_level, run_verdict
from linkkeeper.vocab import State, Status

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DNS = "DNS: name does not resolve"
DEGRADED = StatePolicy(degraded=True)

# -- the rule (state.py) ------------------------------------------------------------------------

ALIVE = LinkState("u", State.ALIVE, "2025-12-01T00:00:00Z", Status.OK, 0, None,
                  "2025-12-31T00:00:00Z", 5, "OOOOO")
FAILING = LinkState("u", State.FAILING, "2025-12-30T00:00:00Z", Status.BROKEN, 2,
                    "2025-12-30T00:00:00Z", None, 2, "FF")
DEAD = LinkState("u", State.DEAD, "2025-12-29T00:00:00Z", Status.BROKEN, 4,
                 "2025-12-26T00:00:00Z", None, 4, "FFFF")


@pytest.mark.parametrize("prev", [None, ALIVE, FAILING, DEAD], ids=["new", "alive", "failing",
                                                                    "dead"])
@pytest.mark.parametrize("status", sorted(Status.__members__.values()))
def test_a_degraded_run_counts_no_failure(prev: LinkState | None, status: Status) -> None:
    result = CheckResult("u", status, DNS if status.is_failure else "x", started_at=T0)
    normal = next_state(prev, result)
    degraded = next_state(prev, result, DEGRADED)
    if status.is_failure:
        assert not degraded.counted and not degraded.new_failure
        assert degraded.state == (prev or LinkState("u"))  # the row exactly as it was
        assert degraded.evidence == {"not_counted": "degraded run"}
    else:  # successes, blocks and exclusions count as in any run
        assert degraded == normal and degraded.counted


def test_three_degraded_nights_then_real_ones() -> None:
    state: LinkState | None = ALIVE
    for night in range(3):
        change = next_state(state, CheckResult("u", Status.BROKEN, DNS,
                                               started_at=T0 + timedelta(days=night)), DEGRADED)
        state = change.state
    assert state == ALIVE
    policy = StatePolicy(ConfirmPolicy(3, 0))
    for night in range(3, 6):
        state = next_state(state, CheckResult("u", Status.BROKEN, DNS,
                                              started_at=T0 + timedelta(days=night)),
                           policy).state
    assert state is not None and state.state == State.DEAD and state.consecutive_failures == 3


# -- the verdict (truth.py) ---------------------------------------------------------------------


def rows(hosts: dict[str, list[tuple[str, str | None, int | None]]]) -> list[tuple]:
    return [(f"http://{host}/{i}", status, reason, code)
            for host, answers in hosts.items() for i, (status, reason, code) in enumerate(answers)]


DOWN = [("broken", DNS, None)] * 2
OK = [("ok", "HTTP 200 OK", 200)]
GONE = [("broken", "HTTP 404 Not Found", 404)]
REFUSED = [("broken", "connection refused", None)]
UNREACHABLE = [("network-error", "cannot connect: Network is unreachable", None)]

VERDICTS = [
    # (hosts, canaries, degraded reason or None)
    ({f"h{i}.example": DOWN for i in range(391)}, None,
     "391 of 391 hosts unreachable at the DNS level"),
    ({**{f"h{i}.example": UNREACHABLE for i in range(9)}, "a.example": REFUSED}, None,
     "10 of 10 hosts unreachable at the network level"),
    ({**{f"h{i}.example": DOWN for i in range(18)}, "up.example": OK}, None,
     "18 of 19 hosts unreachable at the DNS level"),  # a stale resolver cache answered one
    ({**{f"h{i}.example": DOWN for i in range(8)}, "a.example": OK, "b.example": GONE}, None,
     None),  # 80 %: hosts answer, the dead ones are dead
    ({"gone.example": DOWN, **{f"h{i}.example": OK for i in range(20)}}, None, None),
    ({f"h{i}.example": DOWN for i in range(4)}, None, None),  # a tiny site: cannot tell
    ({f"h{i}.example": GONE for i in range(50)}, None, None),  # HTTP answers are evidence
    ({f"h{i}.example": OK for i in range(50)}, None, None),  # nothing failed
    ({f"h{i}.example": DOWN for i in range(2)}, [("http://c.example/", "broken", DNS, None)],
     f"the canary URL unreachable ({DNS})"),
    ({f"h{i}.example": DOWN for i in range(50)}, [("http://c.example/", "ok", "HTTP 200", 200)],
     None),  # a canary answered: the machine is online, the hosts are down
    ({f"h{i}.example": DOWN for i in range(50)},
     [("http://c.example/", "broken", DNS, None), ("http://d.example/", "broken", "HTTP 404 "
                                                   "Not Found", 404)], None),
    ({"a.example": DOWN}, [("http://c.example/", "timeout", "connect timeout after 10 s", None),
                           ("http://d.example/", "broken", "connection refused", None)],
     "all 2 canary URLs unreachable (connect timeout after 10 s)"),
]


@pytest.mark.parametrize(("hosts", "canaries", "expected"), VERDICTS)
def test_run_verdict(hosts: dict, canaries: list | None, expected: str | None) -> None:
    assert run_verdict(rows(hosts), canaries) == expected


def test_the_network_level_reasons_are_the_ones_classify_gives() -> None:
    """The verdict reads reasons: tie them to what classify.py and resolver.py really say."""
    timeouts = Timeouts(10, 20, 45)
    key = aiohttp.client_reqrep.ConnectionKey("h.example", 80, False, True, None, None, None)
    network = [
        aiohttp.ClientConnectorDNSError(key, name_not_resolved("h.example")),
        aiohttp.ClientConnectorDNSError(key, socket.gaierror(socket.EAI_AGAIN, "again")),
        aiohttp.ClientConnectorError(key, ConnectionRefusedError(111, "refused")),
        aiohttp.ClientConnectorError(key, OSError(101, "Network is unreachable")),
        aiohttp.ConnectionTimeoutError("timeout"),
        aiohttp.ClientConnectorDNSError(key, OfflineUnmapped("127.0.0.1", 80)),
    ]
    for error in network:
        outcome = classify_error(error, timeouts)
        assert network_level(outcome.status, outcome.reason, None), outcome
    answered = [aiohttp.SocketTimeoutError("read"), ConnectionResetError(),
                aiohttp.ServerDisconnectedError()]
    for error in answered:
        outcome = classify_error(error, timeouts)
        assert not network_level(outcome.status, outcome.reason, None), outcome


# -- the recorder: failures settled at the end of the run ---------------------------------------

HOSTS = [f"h{i}.example" for i in range(6)]


def night(db, when: datetime, statuses: dict[str, tuple[Status, str, int | None]]
          ) -> Recorder:
    run = start_run(db, list(statuses), options={})
    recorder = Recorder(db, run.id, confirm=ConfirmPolicy(3, 0))
    for url, (status, reason, code) in statuses.items():
        recorder.add(CheckResult(url, status, reason, http_status=code, started_at=when))
    recorder.finish()
    return recorder


def offline(urls: list[str]) -> dict[str, tuple[Status, str, int | None]]:
    return {u: (Status.BROKEN, DNS, None) for u in urls}


def test_offline_nights_leave_the_history_as_it_was(tmp_path: Path) -> None:
    db = connect(tmp_path / "h.db")
    urls = [f"http://{h}/a" for h in HOSTS]
    gone = "http://h0.example/gone"
    first = night(db, T0, {**{u: (Status.OK, "HTTP 200 OK", 200) for u in urls},
                           gone: (Status.BROKEN, "HTTP 404 Not Found", 404)})
    assert first.degraded is None and first.new_failures == [gone]
    before = db.execute("SELECT * FROM link_state ORDER BY url").fetchall()
    for n in range(1, 4):
        rec = night(db, T0 + timedelta(days=n), offline([*urls, gone]))
        assert rec.degraded == "6 of 6 hosts unreachable at the DNS level"
        assert rec.new_failures == []
        assert {h.host for h in rec.host_failures} == set()  # 1-2 links a host: below the floor
    assert db.execute("SELECT * FROM link_state ORDER BY url").fetchall() == before
    evidence = db.execute("SELECT DISTINCT evidence, new_failure FROM checks WHERE run_id>1")
    assert evidence.fetchall() == [('{"not_counted":"degraded run"}', 0)]
    assert db.execute("SELECT count(*) FROM runs WHERE degraded IS NOT NULL").fetchone() == (3,)
    # a healthy night counts again: the 404 has 2 counted failures, the rest stay alive
    night(db, T0 + timedelta(days=4), {**{u: (Status.OK, "HTTP 200 OK", 200) for u in urls},
                                       gone: (Status.BROKEN, "HTTP 404 Not Found", 404)})
    state = dict(db.execute("SELECT url, state FROM link_state").fetchall())
    assert state.pop(gone) == State.FAILING and set(state.values()) == {State.ALIVE}
    assert db.execute("SELECT consecutive_failures FROM link_state WHERE url=?",
                      [gone]).fetchone() == (2,)


def test_one_dead_host_among_answering_hosts_dies_as_before(tmp_path: Path) -> None:
    db = connect(tmp_path / "h.db")
    alive = [f"http://{h}/a" for h in HOSTS]
    dead = [f"http://gone.example/{i}" for i in range(3)]
    for n in range(3):
        rec = night(db, T0 + timedelta(days=n),
                    {**{u: (Status.OK, "HTTP 200 OK", 200) for u in alive}, **offline(dead)})
        assert rec.degraded is None
        assert [h.host for h in rec.host_failures] == ["gone.example"]
        assert rec.new_failures == (dead if n == 0 else [])
    states = dict(db.execute("SELECT url, state FROM link_state").fetchall())
    assert {states[u] for u in dead} == {State.DEAD}


def test_settling_twice_counts_once_and_abandoned_runs_are_settled(tmp_path: Path) -> None:
    db = connect(tmp_path / "h.db")
    url = "http://h0.example/gone"
    run = start_run(db, [url], options={})
    recorder = Recorder(db, run.id)
    recorder.add(CheckResult(url, Status.BROKEN, "HTTP 404 Not Found", http_status=404,
                             started_at=T0))
    recorder.flush()
    assert db.execute("SELECT count(*) FROM link_state").fetchone() == (0,)  # waits for settle
    recorder.judge()
    recorder.judge()  # a settle repeated after a crash
    assert db.execute("SELECT consecutive_failures FROM link_state").fetchone() == (1,)
    recorder.finish()
    # a run killed before its end, then given up by --new-run, is settled when abandoned
    second = start_run(db, [url], options={})
    Recorder(db, second.id).add(CheckResult(url, Status.BROKEN, "HTTP 404 Not Found",
                                            http_status=404, started_at=T0 + timedelta(days=1)))
    pending = Recorder(db, second.id)
    pending.add(CheckResult(url, Status.BROKEN, "HTTP 404", http_status=404, started_at=T0))
    pending.flush()
    third = start_run(db, [url], options={}, new_run=True)
    assert third.abandoned == second.id
    settle_abandoned(db, third.abandoned, StatePolicy())
    assert db.execute("SELECT consecutive_failures, last_run FROM link_state").fetchone() == (
        2, second.id)


# -- end to end: `linkkeeper check` on an offline machine ---------------------------------------

POST = """---
layout: post
title: "Post {n}"
date: 2024-01-0{n}T00:00:00Z
from: {source}
---
[Post {n}]({source})

{links}
"""

FAULT_HOSTS = ["news.example", "images.example", "cdn.example", "blog.example", "social.example",
               "archive.example"]
GONE_URL = "http://news.example/status/404/gone-e2e"


def make_site(root: Path, links: list[str]) -> Path:
    (root / "_posts").mkdir(parents=True)
    (root / "_config.yml").write_text('url: "https://site.example"\n')
    for n, start in enumerate(range(0, len(links), 3), start=1):
        chunk = links[start:start + 3]
        body = "\n".join(f"- [l{i}]({u})" for i, u in enumerate(chunk[1:]))
        (root / "_posts" / f"2024-01-0{n}-p{n}.md").write_text(
            POST.format(n=n, source=chunk[0], links=body))
    return root


def check(site: Path, *args: str, web: FaultWeb | None = None) -> subprocess.CompletedProcess[str]:
    """`check` offline; with `web`, its hosts mapped (a healthy night), else none (offline)."""
    cmd = [sys.executable, "-m", "linkkeeper", "check", str(site), "--offline-dns",
           "--attempts", "1", "--no-soft404", "--no-snapshot", "--confirm", "3,0", *args]
    if web is not None:
        cmd += ["--ca-bundle", web.ca_pem]
        for spec in web.connect_to_args(wildcard=False):
            cmd += ["--connect-to", spec]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINKKEEPER_")}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=180,
                          cwd=site)


def report(site: Path, fmt: str) -> str:
    out = site.parent / f"report.{fmt}"  # outside the site: a scan would read it as a post
    done = subprocess.run([sys.executable, "-m", "linkkeeper", "report", str(site), "--format",
                           fmt, "-o", str(out)], capture_output=True, text=True, timeout=120,
                          cwd=site)
    assert done.returncode == 0, done.stderr
    return out.read_text(encoding="utf-8")


def states(site: Path) -> dict[str, tuple[str, int]]:
    with sqlite3.connect(site / "linkkeeper.db") as conn:
        return {u: (s, n) for u, s, n in conn.execute(
            "SELECT url, state, consecutive_failures FROM link_state")}


def test_three_offline_nights_kill_nothing_and_say_so(faultweb: FaultWeb, tmp_path: Path) -> None:
    links = [f"http://{h}/ok/e2e-{i}" for h in FAULT_HOSTS for i in range(3)] + [GONE_URL]
    site = make_site(tmp_path / "site", links)
    first = check(site, web=faultweb)
    assert first.returncode == 2, first.stderr  # the 404 is a new failure
    healthy = states(site)
    for _ in range(3):
        done = check(site)  # no mapping at all: nothing resolves
        assert done.returncode == 1, done.stderr
        degraded_lines = [line for line in done.stderr.splitlines() if "is degraded" in line]
        assert degraded_lines == [
            f"run {_ + 2} is degraded: 6 of 6 hosts unreachable at the DNS level; its failures "
            "are not counted — is this machine offline?"]
        assert "hosts down this run: 6" in done.stdout  # host-down rows are shown
        assert f"news.example (4 links): {DNS}" in done.stdout
        assert states(site) == healthy
    assert State.DEAD not in {s for s, _ in states(site).values()}
    history = subprocess.run([sys.executable, "-m", "linkkeeper", "history", GONE_URL, "--db",
                              str(site / "linkkeeper.db"), "--format", "json"],
                             capture_output=True, text=True, timeout=60)
    checks = json.loads(history.stdout)["checks"]
    assert [c["degraded_run"] for c in checks] == [False, True, True, True]

    note = "Run 4 is degraded: 6 of 6 hosts unreachable at the DNS level"
    assert note in report(site, "html") and "Degraded run." in report(site, "html")
    assert "**Warning:** " + note in report(site, "markdown")
    assert json.loads(report(site, "json"))["report"]["degraded"] == (
        "6 of 6 hosts unreachable at the DNS level")
    assert json.loads(report(site, "json"))["run"]["degraded"]
    sarif = json.loads(report(site, "sarif"))["runs"][0]
    assert note in sarif["invocations"][0]["toolExecutionNotifications"][0]["message"]["text"]
    junit = report(site, "junit")
    assert 'name="degraded"' in junit and note in junit
    html = report(site, "html")
    assert "Hosts down in run 4" in html
    assert "(degraded run: failures not counted)" in html  # the history chart's bars say it

    healthy_again = check(site, web=faultweb)  # back online: a normal night
    assert healthy_again.returncode == 0, healthy_again.stderr  # the 404 is not new
    assert "degraded" not in healthy_again.stderr
    after = states(site)
    assert after[GONE_URL] == (State.FAILING, 2)  # offline nights did not count
    assert {s for u, (s, _) in after.items() if u != GONE_URL} == {State.ALIVE}
    assert "Degraded run." not in report(site, "html")
    # compared with the last run that counted, not with the offline one: nothing "recovered"
    header = json.loads(report(site, "json"))["report"]
    assert (header["baseline_run"], header["recovered"], header["newly_broken"]) == (1, [], [])
    assert check(site, web=faultweb).returncode == 0
    assert states(site)[GONE_URL] == (State.DEAD, 3)


def test_a_single_host_really_gone_still_fails(faultweb: FaultWeb, tmp_path: Path) -> None:
    links = [f"http://{h}/ok/one-{i}" for h in FAULT_HOSTS for i in range(2)]
    gone = [f"http://does-not-resolve.invalid/story-{i}" for i in range(3)]
    site = make_site(tmp_path / "site", links + gone)
    for n in range(3):
        done = check(site, web=faultweb)
        assert done.returncode == (2 if n == 0 else 0), done.stderr
        assert "degraded" not in done.stderr
        assert f"does-not-resolve.invalid (3 links): {DNS}" in done.stdout
    final = states(site)
    assert {final[u][0] for u in gone} == {State.DEAD}
    assert {final[u][0] for u in links} == {State.ALIVE}


def test_canaries_decide_when_configured(faultweb: FaultWeb, tmp_path: Path) -> None:
    """A tiny site (two hosts) cannot tell by itself; the canary in the config can."""
    gone = ["http://gone-a.invalid/x", "http://gone-b.invalid/y"]
    site = make_site(tmp_path / "site", gone)
    (site / "linkkeeper.toml").write_text('canaries = ["http://canary.invalid/"]\n')
    done = check(site, web=faultweb)
    assert done.returncode == 1, done.stderr
    assert ("is degraded: the canary URL unreachable (DNS: name does not resolve)"
            in done.stderr)
    (site / "linkkeeper.toml").unlink()
    online = check(site, "--canary", "http://news.example/ok/canary", web=faultweb)
    assert online.returncode == 2, online.stderr  # the canary answered: the hosts are gone
    assert faultweb.requests(path="/ok/canary")
    assert {s for s, _ in states(site).values()} == {State.FAILING}


def test_canary_must_be_a_web_url(tmp_path: Path) -> None:
    site = make_site(tmp_path / "site", ["http://a.invalid/"])
    assert check(site, "--canary", "not a url").returncode == 3
