"""`linkkeeper snapshot` end to end: URLs, post files and sites captured on demand.

The CLI runs as a subprocess against the in-process fault-injection web on loopback.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aiohttp import web as aioweb
from helpers import read_warc
from test_archive import make_site, path_of, rows, run, verify_folder, web_args

from linkkeeper.faultweb import Behaviour, FaultWeb, Hit


def test_urls_are_captured_and_failures_reported(faultweb: FaultWeb, tmp_path: Path) -> None:
    db, folder = tmp_path / "lk.db", tmp_path / "warcs"
    live = "https://news.example/brotli/just-published"
    gone = "https://news.example/status/410/withdrawn"
    moved = "https://news.example/redirect/302/1/moved"
    res = run(
        "snapshot",
        live,
        gone,
        moved,
        "--db",
        db,
        "--warc-dir",
        folder,
        *web_args(faultweb),
        "--attempts",
        "1",
        "--format",
        "json",
    )
    assert res.returncode == 2, res.stderr  # one URL could not be archived
    doc = json.loads(res.stdout)
    assert doc["archive"]["captures"] == 3 and doc["archive"]["urls"] == 2
    urls = {u["url"]: u for u in doc["urls"]}
    assert urls[gone]["status"] == "broken" and urls[gone]["captures"] == []
    [capture] = urls[live]["captures"]
    assert capture["record_type"] == "response" and capture["http_status"] == 200
    assert [c["http_status"] for c in urls[moved]["captures"]] == [302, 200]
    assert "not archived  " + gone in res.stderr
    assert "archived 2 URLs: 3 captures, 0 revisits, 0 truncated" in res.stderr
    snapshot_rows = verify_folder(folder, db)
    assert {r["run_id"] for r in snapshot_rows} == {None}  # on demand: not part of a check run
    body = read_warc(next(folder.rglob("*.warc.gz")))[1]["payload"]
    assert body == faultweb.payload_for(*path_of(live))

    again = run("snapshot", live, "--db", db, "--warc-dir", folder, *web_args(faultweb))
    assert again.returncode == 0, again.stderr
    assert "archived 1 URL: 0 captures, 1 revisit," in again.stdout


def test_post_file_captures_its_links_without_touching_the_inventory(
    faultweb: FaultWeb, tmp_path: Path
) -> None:
    site = make_site(
        tmp_path / "site",
        [
            {
                "source": "https://news.example/ok/first-story",
                "images": ["https://images.example/img/a.png"],
                "related": ["https://news.example/gzip/related-one"],
                "inline": "https://blog.example/ok/aside",
            },
            {"source": "https://news.example/ok/second-story"},
        ],
    )
    db = site / "linkkeeper.db"
    assert run("scan", site).returncode == 0
    posts_before = rows(db, "SELECT path, sha256 FROM posts ORDER BY path")
    [first, _] = sorted((site / "_posts").iterdir())
    res = run("snapshot", first, "--db", db, *web_args(faultweb))
    assert res.returncode == 0, res.stderr
    captured = {r["url"] for r in rows(db)}
    assert captured == {
        "https://news.example/ok/first-story",
        "https://images.example/img/a.png",
        "https://news.example/gzip/related-one",
    }
    assert faultweb.requests(path="/ok/second-story") == []
    assert faultweb.requests(host="blog.example") == []  # inline: not an archived kind
    assert rows(db, "SELECT path, sha256 FROM posts ORDER BY path") == posts_before
    verify_folder(site / "warcs", db)

    res = run("snapshot", first, "--db", db, *web_args(faultweb), "--snapshot-kinds", "inline")
    assert res.returncode == 0, res.stderr
    assert "https://blog.example/ok/aside" in {r["url"] for r in rows(db)}


def test_site_snapshot_honours_max_age(faultweb: FaultWeb, tmp_path: Path) -> None:
    site = make_site(
        tmp_path / "site",
        [
            {
                "source": "https://news.example/chunked/a-story",
                "images": ["https://images.example/img/b.gif"],
            }
        ],
    )
    res = run("snapshot", site, *web_args(faultweb))
    assert res.returncode == 0, res.stderr
    assert "2 URLs due for a snapshot" in res.stdout
    requests = len(faultweb.log)
    res = run("snapshot", site, *web_args(faultweb), "--snapshot-max-age", "1h")
    assert res.returncode == 0, res.stderr
    assert "0 URLs due for a snapshot" in res.stdout
    assert len(faultweb.log) == requests  # nothing fetched
    assert len(rows(site / "linkkeeper.db")) == 2


async def _robots(hit: Hit) -> aioweb.StreamResponse:
    rules = {
        "news.example": (200, "User-agent: *\nDisallow: /ok/private\n"),
        "blog.example": (503, "busy"),
    }
    status, text = rules.get(hit.host, (404, "no robots here"))
    return aioweb.Response(status=status, text=text, content_type="text/plain")


def test_respect_robots_fetches_robots_txt_once_per_host(tmp_path: Path) -> None:
    db, folder = tmp_path / "lk.db", tmp_path / "warcs"
    urls = [
        "https://news.example/ok/public-1",
        "https://news.example/ok/public-2",
        "https://news.example/ok/private/secret",
        "https://blog.example/ok/post",  # robots.txt answers 503: everything disallowed
        "https://images.example/img/c.jpg",  # robots.txt 404: no rules
    ]
    with FaultWeb(behaviours=[Behaviour("robots.txt", _robots)]) as web:
        res = run(
            "snapshot",
            *urls,
            "--db",
            db,
            "--warc-dir",
            folder,
            *web_args(web),
            "--respect-robots",
            "--attempts",
            "1",
        )
        assert res.returncode == 2, res.stderr  # two URLs not archived
        assert {r["url"] for r in rows(db)} == {urls[0], urls[1], urls[4]}
        for host in ("news.example", "blog.example", "images.example"):
            assert len(web.requests(host=host, path="/robots.txt")) == 1, host
        assert web.requests(path="/ok/private/secret") == []
        assert web.requests(host="blog.example", path="/ok/post") == []
    assert "archived 3 URLs" in res.stdout and "2 disallowed by robots.txt" in res.stdout
    assert f"not archived  {urls[2]}  (robots.txt disallows it)" in res.stdout
    info = read_warc(next(folder.rglob("*.warc.gz")))[0]["payload"].decode()
    assert "robots: obey" in info


def test_bad_archiving_options_exit_3(tmp_path: Path) -> None:
    for bad in (
        ["--snapshot-kinds", "video"],
        ["--max-capture-size", "huge"],
        ["--snapshot-max-age", "soon"],
        ["--warc-max-size", "0"],
    ):
        res = run("snapshot", "https://news.example/ok/x", "--db", tmp_path / "lk.db", *bad)
        assert res.returncode == 3, (bad, res.stderr)
        assert "Traceback" not in res.stderr
    res = run("snapshot", str(tmp_path / "missing.md"), "--db", tmp_path / "lk.db")
    assert res.returncode == 3 and "no such file" in res.stderr


def test_environment_is_trusted_only_when_it_configures_something(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """aiohttp's trust_env costs two thread-pool trips per request; the checker asks for it
    only when a proxy variable or a netrc file could change a request."""
    from linkkeeper.check.fetch import _environment_configures_http

    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "NETRC"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert not _environment_configures_http()
    (tmp_path / ".netrc").write_text("machine news.example login a password b\n")
    assert _environment_configures_http()
    monkeypatch.setenv("NETRC", str(tmp_path / "elsewhere"))
    assert not _environment_configures_http()
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    assert _environment_configures_http()


def test_json_summary_has_one_line_per_url_and_parses_as_the_document() -> None:
    from linkkeeper.cli.archive import _json_text

    entries = [{"url": f"http://a.example/{i}", "captures": [{"offset": i}]} for i in range(3)]
    for doc in (
        {"archive": {"captures": 3}, "warc_dir": "w\u00e9", "urls": entries},
        {"archive": {}, "warc_dir": "w", "urls": []},
    ):
        text = _json_text(doc)
        assert json.loads(text) == doc and text.endswith("}\n")
        assert sum('"url": ' in line for line in text.splitlines()) == len(doc["urls"])


def test_run_snapshot_is_the_library_call_the_command_mirrors(
    faultweb: FaultWeb, tmp_path: Path
) -> None:
    """`run_snapshot` captures, reports failures and counts without any CLI around it."""
    from linkkeeper.archive.archiver import ArchiveOptions
    from linkkeeper.archive.snapshot_run import run_snapshot
    from linkkeeper.archive.snapshots import captures_with_keys
    from linkkeeper.check.options import CheckOptions
    from linkkeeper.db import connect

    db = connect(tmp_path / "lk.db")
    live = "http://news.example/gzip/2026/story-1"
    gone = "http://news.example/status/410/withdrawn"
    options = CheckOptions(connect_to=faultweb.connect_to_args(), offline_dns=True,
                           trust_env=False, attempts=1)
    outcome = run_snapshot(db, options, ArchiveOptions(folder=tmp_path / "warcs"),
                           urls=[live, gone])
    assert outcome.due == {live, gone} and outcome.asked == 2
    assert outcome.failed == [gone] and not outcome.ok
    assert outcome.counts.captures == 1 and outcome.counts.urls == 1
    [stored] = captures_with_keys(db, [live])
    assert stored.record_type == "response" and stored.run_id is None
    doc = outcome.as_dict()
    entries = {u["url"]: u for u in doc["urls"]}
    assert entries.keys() == {live, gone} and entries[gone]["captures"] == []
    assert entries[live]["captures"][0]["offset"] == stored.offset
    verify_folder(tmp_path / "warcs", tmp_path / "lk.db")
