"""Shards and merge (issue 15): `check --shard I/N` on N machines, `linkkeeper merge` after.

The partition is a property of host names (hypothesis); the rest runs `check` as a user
would, against the fault web, once unsharded and as 2 and 4 shards, and compares the merged
databases with the single run: same statuses and link states, no host in two shards, the
same report, captures that replay, and a second merge that changes nothing.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkkeeper.faultweb import FaultWeb
from linkkeeper.shards import Shard, ShardError, registrable_domain, shard_of, stable_hash

LINKKEEPER = [sys.executable, "-m", "linkkeeper"]

# -- the partition -------------------------------------------------------------------------------

LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
# plain suffixes (no wildcard rule such as *.kawasaki.jp, where every label is a suffix)
SUFFIXES = ["com", "co.uk", "org.cn", "example", "com.au", "github.io", "xn--fiqs8s", "jp",
            "invalid", "net"]


@given(domain=LABEL, suffix=st.sampled_from(SUFFIXES),
       subs=st.lists(st.lists(LABEL, max_size=3), min_size=1, max_size=4),
       count=st.integers(1, 16))
@settings(max_examples=300, deadline=None)
def test_one_registrable_domain_one_shard(domain: str, suffix: str, subs: list[list[str]],
                                          count: int) -> None:
    hosts = [".".join([*labels, domain, suffix]) for labels in subs]
    shards = {shard_of(h, count) for h in hosts}
    assert len(shards) == 1  # news.bbc.co.uk and www.bbc.co.uk together
    (only,) = shards
    assert 1 <= only <= count  # total: every host is in some shard
    assert shard_of(hosts[0], count) == only  # stable within the process
    assert sum(Shard(i, count).owns(hosts[0]) for i in range(1, count + 1)) == 1


@given(host=st.one_of(st.text(max_size=40), st.ip_addresses().map(str)), count=st.integers(1, 9))
@settings(max_examples=300, deadline=None)
def test_total_on_any_host(host: str, count: int) -> None:
    """Any string, also an IP literal or garbage, belongs to exactly one shard."""
    owners = [i for i in range(1, count + 1) if Shard(i, count).owns(host)]
    assert owners == [shard_of(host, count)]


def test_registrable_domains() -> None:
    assert registrable_domain("news.bbc.co.uk") == registrable_domain("www.bbc.co.uk") == \
        "bbc.co.uk"
    assert registrable_domain("www.rfa.org") == "rfa.org"
    assert registrable_domain("WWW.RFA.ORG.") == "rfa.org"
    assert registrable_domain("news.example") == "news.example"  # no known suffix: '*' rule
    assert registrable_domain("www.news.example") == "news.example"
    assert registrable_domain("localhost") == "localhost"
    assert registrable_domain("127.0.0.1") == "127.0.0.1"
    assert registrable_domain("[::1]") == registrable_domain("::1") == "::1"
    assert registrable_domain("[2001:db8:0::1]") == "2001:db8::1"
    assert registrable_domain("co.uk") == "co.uk"  # a public suffix itself
    assert registrable_domain("") == ""
    assert registrable_domain("foo.github.io") == "github.io"  # ICANN section only: one operator
    assert registrable_domain("www.xn--fiqs8s") == "www.xn--fiqs8s"
    assert registrable_domain("a.b.kawasaki.jp") == "a.b.kawasaki.jp"  # *.kawasaki.jp
    assert registrable_domain("www.city.kawasaki.jp") == "city.kawasaki.jp"  # !city.kawasaki.jp


def test_stable_across_processes_and_hash_seeds() -> None:
    hosts = ["news.bbc.co.uk", "www.rfa.org", "127.0.0.1", "", "news.example", "a.b.c.com.au"]
    code = ("import json,sys; from linkkeeper.shards import shard_of; "
            f"print(json.dumps([shard_of(h, 7) for h in {hosts!r}]))")
    seen = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env=env, check=True).stdout
        seen.add(out)
    assert seen == {json.dumps([shard_of(h, 7) for h in hosts]) + "\n"}
    assert stable_hash("bbc.co.uk") == stable_hash("bbc.co.uk")


def test_parse_and_errors() -> None:
    assert Shard.parse("2/4") == Shard(2, 4) and str(Shard.parse(" 1 / 1 ")) == "1/1"
    for bad in ("0/4", "5/4", "1/0", "a/b", "1", "-1/2", "1/2/3", ""):
        with pytest.raises(ShardError, match="I/N"):
            Shard.parse(bad)
    with pytest.raises(ShardError):
        shard_of("x.com", 0)


def test_suffix_list_is_never_fetched(monkeypatch: pytest.MonkeyPatch) -> None:
    from linkkeeper import shards

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the public suffix list must come from the bundled snapshot")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    shards._extractor.cache_clear()
    shards.registrable_domain.cache_clear()
    assert registrable_domain("news.bbc.co.uk") == "bbc.co.uk"


def test_check_rejects_bad_shard(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("[x](https://example.com/)\n")
    res = run("check", tmp_path / "a.md", "--shard", "5/4", "--db", tmp_path / "x.db")
    assert res.returncode == 3 and "--shard 5/4: expected I/N" in res.stderr


# -- shards over the fault web -------------------------------------------------------------------

POST = """---
title: "{title}"
date: 2021-01-0{day}T00:00:00Z
from: {source}
---
{body}
"""

URLS = [
    "https://news.example/ok/story-1",
    "https://news.example/status/404/gone",
    "https://www.news.example/redirect/301/2/moved",
    "https://news.example/block/403/paywall",
    "http://images.example/ok/pic.png",
    "https://cdn.example/status/410/old.js",
    "https://blog.example/ok/post",
    "https://blog.example/status/500/broken",
    "https://secure.example/ok/a",
    "https://social.example/block/429/feed",
    "https://archive.example/ok/old",
    "http://redirect-home.example/news/2020/gone-a",
    "http://gbk.example/ok/x",
    "https://does-not-resolve.invalid/ok/x",
    "mailto:tips@news.example",
]


def make_site(root: Path) -> Path:
    (root / "_posts").mkdir(parents=True)
    (root / "_config.yml").write_text('url: "https://site.example"\n')
    for i, start in enumerate(range(0, len(URLS), 3), start=1):
        source, *rest = URLS[start:start + 3]
        body = "\n".join(f'<p><a href="{u}">l{j}</a> <img src="{u}"></p>'
                         for j, u in enumerate(rest))
        (root / "_posts" / f"2021-01-0{i}-post{i}.md").write_text(
            POST.format(title=f"post {i}", day=i, source=source, body=body), encoding="utf-8")
    return root


def run(*args: object, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINKKEEPER_")}
    return subprocess.run([*LINKKEEPER, *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout)


def check(site: Path, web: FaultWeb, db: Path, *extra: object) -> None:
    db.parent.mkdir(parents=True, exist_ok=True)
    args: list[object] = [site, "--db", db, "--warc-dir", db.parent / "warcs", "--offline-dns",
                          "--ca-bundle", web.ca_pem, "--attempts", "1", "--timeout", "5",
                          "--fail-on", "never", "--quiet", *extra]
    for spec in web.connect_to_args(wildcard=False):
        args += ["--connect-to", spec]
    res = run("check", *args)
    assert res.returncode == 0, res.stderr


def q(db: Path, sql: str, *params: object) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, params).fetchall()


def host_of(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[0] if "://" in url else ""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One unsharded night and the same night as 1, 2 and 4 shards, each merged."""
    root = tmp_path_factory.mktemp("shards")
    site = make_site(root / "site")
    out: dict[str, Any] = {"root": root, "site": site}
    with FaultWeb() as web:
        out["web"] = web
        check(site, web, root / "single" / "linkkeeper.db")
        for n in (1, 2, 4):
            shard_dirs = []
            for i in range(1, n + 1):
                folder = root / f"n{n}" / "shards" / str(i)
                check(site, web, folder / "linkkeeper.db", "--shard", f"{i}/{n}")
                shard_dirs.append(folder)
            merged = root / f"n{n}" / "merged" / "linkkeeper.db"
            res = run("merge", "--db", merged, *shard_dirs, "--format", "json")
            assert res.returncode == 0, res.stderr
            out[n] = {"shards": shard_dirs, "merged": merged, "summary": json.loads(res.stdout)}
    return out


def outcome(db: Path) -> dict[str, tuple[Any, ...]]:
    """Per URL: the status of its latest check and its state."""
    return {url: rest for url, *rest in q(
        db, "SELECT c.url, c.status, c.http_status, c.final_url, s.state, s.last_status,"
        " s.consecutive_failures FROM checks c JOIN link_state s ON s.url = c.url"
        " AND s.last_run = c.run_id")}


@pytest.mark.parametrize("n", [1, 2, 4])
def test_shards_merge_to_the_single_run(world: dict[str, Any], n: int) -> None:
    single = outcome(world["root"] / "single" / "linkkeeper.db")
    assert len(single) == len(URLS)
    assert outcome(world[n]["merged"]) == single
    # one merged run for the night, with the single run's numbers
    runs = q(world[n]["merged"], "SELECT id, state, total, done, counts FROM runs")
    (one,) = q(world["root"] / "single" / "linkkeeper.db",
               "SELECT 1, state, total, done, counts FROM runs")
    assert [(r[0], r[1], r[2], r[3], json.loads(r[4])) for r in runs] == \
        [(1, one[1], one[2], one[3], json.loads(one[4]))]
    assert world[n]["summary"]["runs_added"] == 1 and world[n]["summary"]["runs"] == [1]


@pytest.mark.parametrize("n", [2, 4])
def test_no_host_in_two_shards(world: dict[str, Any], n: int) -> None:
    seen: dict[str, int] = {}
    for i, folder in enumerate(world[n]["shards"], start=1):
        hosts = {host_of(u) for (u,) in q(folder / "linkkeeper.db", "SELECT url FROM checks")}
        for host in hosts:
            assert seen.setdefault(host, i) == i, f"{host} checked by shards {seen[host]} and {i}"
        # and the web saw each shard's requests only for its own hosts (politeness)
        assert all(shard_of(h, n) == i for h in hosts)
    assert set(seen) == {host_of(u) for u in URLS}
    # every shard scanned the whole site: the inventory is the same everywhere
    inventories = {tuple(q(f / "linkkeeper.db", "SELECT url, host FROM links ORDER BY url"))
                   for f in world[n]["shards"]}
    assert len(inventories) == 1


VOLATILE = {"elapsed_ms", "checked_at", "run_id", "state_since", "first_failed", "last_ok"}


def report_json(db: Path) -> dict[str, Any]:
    res = run("report", "--db", db, "--format", "json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    links = []
    for link in doc["links"]:
        link = {k: v for k, v in link.items() if k not in VOLATILE}
        evidence = link.pop("evidence") or {}
        link["evidence"] = sorted(evidence)  # soft-404 probes carry random names
        link["reason"] = re.sub(r"lk404-[0-9a-f]+", "PROBE", link["reason"] or "")
        link["archived"] = bool(link.get("archived"))  # when and in which file differ
        links.append(link)
    keep = ("state", "total", "done", "requests", "counts", "insecure", "host_failures")
    return {"run": {k: doc["run"].get(k) for k in keep}, "links": links}


@pytest.mark.parametrize("n", [2, 4])
def test_merged_database_reports_identically(world: dict[str, Any], n: int) -> None:
    assert report_json(world[n]["merged"]) == report_json(world["root"] / "single" / "linkkeeper.db")


def dump(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    tables = [t for (t,) in q(db, "SELECT name FROM sqlite_master WHERE type='table'"
                             " ORDER BY name")]
    return {t: q(db, f"SELECT * FROM [{t}] ORDER BY 1, 2") for t in tables}


def test_merging_again_changes_nothing(world: dict[str, Any]) -> None:
    merged = world[4]["merged"]
    index = merged.parent / "warcs" / "index.cdxj"
    before, index_before = dump(merged), index.read_bytes()
    shards_before = [dump(f / "linkkeeper.db") for f in world[4]["shards"]]
    # the shards in another order, one given as its database file: still nothing to do
    args = [world[4]["shards"][2] / "linkkeeper.db", *reversed(world[4]["shards"])]
    res = run("merge", "--db", merged, *args, "--format", "json")
    assert res.returncode == 0, res.stderr
    again = json.loads(res.stdout)
    assert (again["runs_added"], again["sources_added"], again["checks"], again["snapshots"],
            again["link_states"], again["posts"]) == (0, 0, 0, 0, 0, 0)
    assert dump(merged) == before
    assert index.read_bytes() == index_before
    assert [dump(f / "linkkeeper.db") for f in world[4]["shards"]] == shards_before


def test_captures_replay_from_the_merged_database(world: dict[str, Any]) -> None:
    from linkkeeper.archive.replay import captures_of, load_response
    from linkkeeper.db import connect

    merged = world[4]["merged"]
    folder = merged.parent / "warcs"
    single_n = q(world["root"] / "single" / "linkkeeper.db", "SELECT count(*) FROM snapshots")
    assert q(merged, "SELECT count(*) FROM snapshots") == single_n and single_n[0][0] > 0
    db = connect(merged)
    urls = [u for (u,) in q(merged, "SELECT DISTINCT url FROM snapshots")]
    for url in urls:
        for capture in captures_of(db, url):
            assert capture.warc_file.startswith("../../shards/")  # n4/shards from n4/merged/warcs
            response = load_response(db, folder, capture)
            assert response.status == capture.http_status
    # the merged index: every shard's lines, sorted, filenames relative to the merged folder
    lines = (folder / "index.cdxj").read_text().splitlines()
    shard_lines = sum(len((f / "warcs" / "index.cdxj").read_text().splitlines())
                      for f in world[4]["shards"] if (f / "warcs" / "index.cdxj").exists())
    assert len(lines) == shard_lines > 0 and lines == sorted(lines)
    for line in lines:
        filename = json.loads(line.split(" ", 2)[2])["filename"]
        assert (folder / filename).is_file()


def test_next_night_adds_one_run(world: dict[str, Any], tmp_path: Path) -> None:
    """Another night on the 2 shards: merged into the same database, it is run 2."""
    import shutil

    site, n2 = world["site"], world[2]
    copies = []
    for folder in n2["shards"]:
        copy = tmp_path / "moved" / folder.name
        shutil.copytree(folder, copy)
        copies.append(copy)
    merged = tmp_path / "merged" / "linkkeeper.db"
    merged.parent.mkdir()
    shutil.copy(n2["merged"], merged)
    with FaultWeb() as web:
        for i, copy in enumerate(copies, start=1):
            check(site, web, copy / "linkkeeper.db", "--shard", f"{i}/2")
    res = run("merge", "--db", merged, *copies, "--format", "json")
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["runs_added"] == 1 and summary["runs"] == [1, 2]
    assert [r[0] for r in q(merged, "SELECT id FROM runs ORDER BY id")] == [1, 2]
    assert q(merged, "SELECT count(*) FROM checks WHERE run_id=2") == [(len(URLS),)]
    assert q(merged, "SELECT count(DISTINCT last_run) FROM link_state") == [(1,)]
    assert q(merged, "SELECT max(checks) FROM link_state") == [(2,)]
    # the first night's captures moved with their folders: their paths follow
    folder = merged.parent / "warcs"
    for (warc_file,) in q(merged, "SELECT DISTINCT warc_file FROM snapshots"):
        assert (folder / warc_file).is_file(), warc_file


def test_one_wacz_from_the_shard_folders(world: dict[str, Any], tmp_path: Path) -> None:
    """`export` from the merged database reads every shard's WARCs: one WACZ, all captures."""
    import zipfile

    counts = {}
    for name, db in (("single", world["root"] / "single" / "linkkeeper.db"),
                     ("merged", world[4]["merged"])):
        out = tmp_path / f"{name}.wacz"
        res = run("export", "--db", db, "-o", out, "--format", "json")
        assert res.returncode == 0, res.stderr
        assert "warning" not in res.stderr, res.stderr
        with zipfile.ZipFile(out) as wacz:
            index = [n for n in wacz.namelist() if n.startswith("indexes/")]
            lines = b"".join(wacz.read(n) for n in index if n.endswith((".cdx", ".cdxj")))
            summary = json.loads(res.stdout)
            counts[name] = (len(lines.splitlines()), summary["captures"], summary["pages"])
    assert counts["merged"] == counts["single"] and counts["single"][0] > 0


def test_merge_indexes_keeps_order_and_the_folder_own_warcs(tmp_path: Path) -> None:
    from linkkeeper.merge import merge_indexes

    def line(key: str, ts: str, filename: str, offset: int) -> str:
        return f'{key} {ts} {json.dumps({"url": key, "offset": str(offset), "filename": filename})}\n'

    merged = tmp_path / "merged" / "warcs"
    (merged / "2026").mkdir(parents=True)
    (merged / "2026" / "old.cdxj").write_text(line("com,b)/", "20260101", "2026/old.warc.gz", 0))
    (merged / "index.cdxj").write_text("stale\n")
    shards = []
    for name, keys in (("1", ["com,a)/", "com,c)/"]), ("2", ["com,a)/", "org,z)/"])):
        folder = tmp_path / "shards" / name / "warcs"
        folder.mkdir(parents=True)
        (folder / "index.cdxj").write_text("".join(
            line(k, "20261203", f"2026/12/s{name}.warc.gz", i) for i, k in enumerate(keys)))
        shards.append(folder)
    assert merge_indexes(merged, [*shards, shards[0]]) == 5
    lines = (merged / "index.cdxj").read_text().splitlines()
    assert lines == sorted(lines)
    files = [json.loads(x.split(" ", 2)[2])["filename"] for x in lines]
    assert files == ["../../shards/1/warcs/2026/12/s1.warc.gz",
                     "../../shards/2/warcs/2026/12/s2.warc.gz", "2026/old.warc.gz",
                     "../../shards/1/warcs/2026/12/s1.warc.gz",
                     "../../shards/2/warcs/2026/12/s2.warc.gz"]


def test_merge_errors_are_one_line(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    res = run("merge", "--db", tmp_path / "out.db", junk)
    assert res.returncode == 1 and "not a linkkeeper database" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    res = run("merge", "--db", tmp_path / "out.db", empty)
    assert res.returncode == 1 and "no shard database" in res.stderr
    sqlite3.connect(tmp_path / "out.db").close()
    res = run("merge", "--db", tmp_path / "out.db", tmp_path / "out.db")
    assert res.returncode == 1 and "cannot also be a shard" in res.stderr
    res = run("merge", "--db", tmp_path / "o.db", tmp_path / "out.db", "--window", "soon")
    assert res.returncode == 3


def test_a_pruned_shard_is_refused_before_anything_is_merged(tmp_path: Path) -> None:
    """Its old runs' counts could not be rebuilt from its checks: one line, nothing written."""
    from linkkeeper.db import connect
    from linkkeeper.history.retention import prune_history

    good, pruned = tmp_path / "good.db", tmp_path / "pruned.db"
    for path in (good, pruned):
        db = connect(path)
        for run_id in (1, 2, 3):
            db.execute("INSERT INTO runs (id, started_at, state) VALUES (?, ?, 'complete')",
                       [run_id, f"2026-01-0{run_id}T00:00:00Z"])
            db.execute("INSERT INTO checks (run_id, url, status) VALUES (?, 'https://a.example/',"
                       " 'ok')", [run_id])
        db.conn.commit()
    assert prune_history(connect(pruned), keep_runs=1).runs == (1,)
    res = run("merge", "--db", tmp_path / "out.db", good, pruned)
    assert res.returncode == 1 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "runs up to 1 were pruned" in res.stderr and "prune the merged database" in res.stderr
    with sqlite3.connect(tmp_path / "out.db") as out:
        assert out.execute("SELECT count(*) FROM runs").fetchone()[0] == 0
