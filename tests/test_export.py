"""Exports: the combined WARC read back with warcio (and `warcio check`), byte-for-byte copies,
selections, self-containment (revisit originals, redirect targets), atomic writing, streaming,
the CLI, and pywb replaying the exported file.

`build_archive` is shared by test_wacz.py and test_serve.py: two nights of captures written with
WarcStore (two WARC files), with the `posts`, `occurrences`, `link_state` and `snapshots` rows
the scan, check and archiver would have left.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import tracemalloc
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from helpers import read_warc, unavailable
from hypothesis import given
from hypothesis import strategies as st
from test_warc import warcio_check

import linkkeeper.export.assemble as export_module
from linkkeeper.archive.cdx import index_warc, pywb_collection_config, rebuild_folder_index
from linkkeeper.archive.replay import parse_moment, rfc3339
from linkkeeper.archive.snapshots import Capture, PriorCapture
from linkkeeper.archive.warc import WarcStore
from linkkeeper.db import connect
from linkkeeper.exchange import Exchange
from linkkeeper.export.run import export
from linkkeeper.export.select import (
    ExportError,
    Selection,
    match_posts,
    plan_export,
    select_captures,
    url_matches,
)

REPO = Path(__file__).resolve().parents[1]
NIGHT1 = datetime(2026, 11, 20, 2, 0, 0, 125000, tzinfo=UTC)
NIGHT2 = datetime(2026, 11, 21, 2, 0, 0, 500000, tzinfo=UTC)
STORM = b"<!doctype html><title>Storm floods harbour</title>" + b"<p>Residents protest.</p>" * 80
STORM2 = STORM.replace(b"Residents protest", b"Residents rebuild")
BRIDGE = b"<!doctype html><title>Bridge reopens</title>" + b"<p>The council voted.</p>" * 90
GONE = b"<!doctype html><title>Mayor resigns</title><p>The mayor resigned on Friday.</p>"
NEW_STORY = b"<!doctype html><title>Harbour: the new story</title><p>Moved here.</p>"
PHOTO = bytes(range(256)) * 40

STORM_URL = "http://news.test/2026/storm.html"
PHOTO_URL = "http://img.test/photo.jpg"
OLD_URL = "http://news.test/old-story"
NEW_URL = "http://news.test/new-story"
BRIDGE_URL = "http://news.test/2026/bridge.html"
GONE_URL = "http://news.test/2026/mayor.html"
STORM_POST = "_posts/2026-11-19-storm.md"
BRIDGE_POST = "_posts/2026-11-19-bridge.md"


def exchange(url: str, body: bytes, started: datetime, **changes: object) -> Exchange:
    base = Exchange(
        url=url,
        method="GET",
        request_headers=[("Host", url.split("/")[2]), ("User-Agent", "linkkeeper-test"),
                         ("Accept-Encoding", "gzip, br")],
        status=200,
        reason="OK",
        response_headers=[("Content-Type", "text/html; charset=utf-8"),
                          ("Content-Length", str(len(body)))],
        body=body,
        started=started,
        ip="127.0.0.1",
    )
    return replace(base, **changes)


@dataclass
class Archive:
    root: Path
    db_path: Path
    folder: Path
    captures: dict[str, Capture] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)  # capture name -> snapshots.id
    sent: dict[str, bytes] = field(default_factory=dict)  # capture name -> body as sent

    @property
    def db(self):
        return connect(self.db_path)


def _insert(db, capture: Capture, run_id: int, revisit_of: int | None) -> int:
    cursor = db.execute(
        "INSERT INTO snapshots (url, run_id, warc_file, offset, length, record_type, record_id,"
        " payload_digest, date, http_status, content_type, payload_length, truncated,"
        " revisit_of) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (capture.url, run_id, capture.warc_file, capture.offset, capture.length,
         capture.record_type, capture.record_id, capture.payload_digest,
         capture.date.astimezone(UTC).isoformat(), capture.http_status, capture.content_type,
         capture.payload_length, int(capture.truncated), revisit_of),
    )
    return cursor.lastrowid


def build_archive(root: Path) -> Archive:
    """Two nights of captures of two posts' links (see the module docstring)."""
    archive = Archive(root=root, db_path=root / "linkkeeper.db", folder=root / "warcs")
    root.mkdir(parents=True, exist_ok=True)
    db = connect(archive.db_path)
    db["posts"].insert_all([
        {"path": STORM_POST, "title": "Storm floods harbour", "date": "2026-11-19", "ok": 1},
        {"path": BRIDGE_POST, "title": "Bridge reopens", "date": "2026-11-19", "ok": 1},
    ])
    db["occurrences"].insert_all([
        {"post": STORM_POST, "url": STORM_URL, "kind": "source", "line": 3,
         "text": "Storm floods harbour"},
        {"post": STORM_POST, "url": PHOTO_URL, "kind": "image", "line": 9, "text": ""},
        {"post": STORM_POST, "url": OLD_URL, "kind": "related", "line": 12,
         "text": "Harbour <b>history</b>"},
        {"post": BRIDGE_POST, "url": BRIDGE_URL, "kind": "source", "line": 3,
         "text": "Bridge reopens"},
        {"post": BRIDGE_POST, "url": GONE_URL, "kind": "related", "line": 14,
         "text": "Mayor resigns"},
        {"post": BRIDGE_POST, "url": PHOTO_URL, "kind": "image", "line": 8, "text": ""},
    ])
    db["link_state"].insert_all([
        {"url": STORM_URL, "state": "alive"},
        {"url": PHOTO_URL, "state": "alive"},
        {"url": OLD_URL, "state": "alive"},
        {"url": BRIDGE_URL, "state": "drifted"},
        {"url": GONE_URL, "state": "dead"},
    ])
    night1 = {
        "storm1": exchange(STORM_URL, STORM, NIGHT1),
        "photo1": exchange(PHOTO_URL, PHOTO, NIGHT1, response_headers=[
            ("Content-Type", "image/jpeg"), ("Content-Length", str(len(PHOTO)))]),
        "old1": exchange(OLD_URL, b"", NIGHT1, status=301, reason="Moved Permanently",
                         response_headers=[("Location", "/new-story"), ("Content-Length", "0")]),
        "new1": exchange(NEW_URL, NEW_STORY, NIGHT1 + timedelta(milliseconds=40)),
        "bridge1": exchange(BRIDGE_URL, gzip.compress(BRIDGE), NIGHT1, response_headers=[
            ("Content-Type", "text/html"), ("Content-Encoding", "gzip"),
            ("Transfer-Encoding", "chunked")]),
        "gone1": exchange(GONE_URL, GONE, NIGHT1),
    }
    with WarcStore(archive.folder, clock=lambda: NIGHT1) as store:
        for name, ex in night1.items():
            archive.captures[name] = store.write(ex)
            archive.sent[name] = ex.body
            archive.ids[name] = _insert(db, archive.captures[name], 1, None)
    night2 = {
        "storm2": (exchange(STORM_URL, STORM2, NIGHT2), None),
        "photo2": (replace(night1["photo1"], started=NIGHT2), "photo1"),
        "bridge2": (replace(night1["bridge1"], started=NIGHT2), "bridge1"),
    }
    with WarcStore(archive.folder, clock=lambda: NIGHT2) as store:
        for name, (ex, prior_name) in night2.items():
            prior = None
            if prior_name:
                first = archive.captures[prior_name]
                prior = PriorCapture(first.url, first.date, first.payload_digest, first.record_id)
            archive.captures[name] = store.write(ex, prior=prior)
            archive.sent[name] = ex.body
            archive.ids[name] = _insert(db, archive.captures[name], 2,
                                        archive.ids[prior_name] if prior_name else None)
    assert archive.captures["photo2"].record_type == "revisit"
    assert len(list(archive.folder.rglob("*.warc.gz"))) == 2
    return archive


@pytest.fixture
def archive(tmp_path: Path) -> Archive:
    return build_archive(tmp_path / "site")


# ---------------------------------------------------------------------------------------------
# Reading an export back


def source_member(archive: Archive, capture: Capture, request: bool = False) -> bytes:
    with open(archive.folder / capture.warc_file, "rb") as fh:
        if request:
            fh.seek(capture.request_offset)
            return fh.read(capture.request_length)
        fh.seek(capture.offset)
        return fh.read(capture.length)


def exported_names(archive: Archive, records: list[dict[str, object]]) -> set[str]:
    by_id = {c.record_id: name for name, c in archive.captures.items()}
    return {by_id[r["id"]] for r in records if r["type"] in ("response", "revisit")}


def export_warc(archive: Archive, selection: Selection, name: str = "out.warc.gz", **kw):
    target = archive.root / name
    result = export(archive.db, archive.folder, selection, target, **kw)
    return result, target


# ---------------------------------------------------------------------------------------------
# The combined WARC


def test_export_all_copies_every_record_byte_for_byte(archive: Archive) -> None:
    result, target = export_warc(archive, Selection())
    warcio_check(target)
    records = read_warc(target, check_digests=False)

    assert exported_names(archive, records) == set(archive.captures)
    assert result.captures == len(archive.captures) == result.selected
    assert result.requests == len(archive.captures)
    assert result.problems == []
    by_id = {r["id"]: r for r in records}
    for capture in archive.captures.values():
        copied = by_id[capture.record_id]
        assert copied["member"] == source_member(archive, capture)
    requests = [r for r in records if r["type"] == "request"]
    for request in requests:
        response_id = request["headers"].get_header("WARC-Concurrent-To")
        capture = next(c for c in archive.captures.values() if c.record_id == response_id)
        assert request["member"] == source_member(archive, capture, request=True)
    assert {r["headers"].get_header("WARC-Concurrent-To") for r in requests} == {
        c.record_id for c in archive.captures.values()}


def test_export_starts_with_a_fresh_warcinfo_then_each_source_files_own(archive: Archive) -> None:
    _, target = export_warc(archive, Selection(states=("dead", "drifted")), "sel.warc.gz")
    records = read_warc(target, check_digests=False)
    infos = [r for r in records if r["type"] == "warcinfo"]

    assert records[0]["type"] == "warcinfo"
    assert records[0]["headers"].protocol == "WARC/1.1"
    assert records[0]["headers"].get_header("WARC-Filename") == "sel.warc.gz"
    fields = dict(line.split(": ", 1) for line in records[0]["payload"].decode().splitlines())
    assert fields["linkkeeper-selection"] == "--state dead --state drifted"
    assert fields["linkkeeper-captures"] == "3"  # gone1, bridge1 and bridge2 (a revisit of 1)
    assert fields["software"].startswith("linkkeeper/")
    assert len(infos) == 3  # the export's own, then one per source file
    sources = {i["headers"].get_header("WARC-Filename") for i in infos[1:]}
    assert sources == {Path(c.warc_file).name for c in archive.captures.values()}
    # every copied record's WARC-Warcinfo-ID resolves inside the export
    info_ids = {i["id"] for i in infos}
    for r in records[1:]:
        if r["type"] != "warcinfo":
            assert r["headers"].get_header("WARC-Warcinfo-ID") in info_ids


def test_dead_links_latest_capture_only(archive: Archive) -> None:
    result, target = export_warc(archive, Selection(states=("dead",), latest=True))
    warcio_check(target)
    assert exported_names(archive, read_warc(target, check_digests=False)) == {"gone1"}
    assert result.selected == result.captures == 1


def test_revisit_pulls_in_its_original_from_another_file(archive: Archive) -> None:
    since = parse_moment("2026-11-21", end_of_period=False)
    result, target = export_warc(archive, Selection(url_patterns=("*.jpg",), since=since))
    warcio_check(target)
    records = read_warc(target, check_digests=False)

    assert exported_names(archive, records) == {"photo2", "photo1"}
    assert result.selected == 1 and result.originals_added == 1
    revisit = next(r for r in records if r["type"] == "revisit")
    original = next(r for r in records if r["type"] == "response")
    assert revisit["headers"].get_header("WARC-Refers-To") == original["id"]
    assert original["payload"] == PHOTO


def test_post_selection_follows_the_archived_redirect(archive: Archive) -> None:
    result, target = export_warc(archive, Selection(posts=("2026-11-19-storm.md",)))
    names = exported_names(archive, read_warc(target, check_digests=False))
    assert names == {"storm1", "storm2", "photo1", "photo2", "old1", "new1"}
    assert result.redirect_targets_added == 1  # new-story is no post's link
    _, no_hops = export_warc(archive, Selection(posts=("2026-11-19-storm.md",)), "plain.warc.gz",
                             follow_redirects=False)
    assert "new1" not in exported_names(archive, read_warc(no_hops, check_digests=False))


def test_selections_combine(archive: Archive) -> None:
    db = archive.db
    ids = {v: k for k, v in archive.ids.items()}

    def names(**kw: object) -> set[str]:
        return {ids[c.id] for c in select_captures(db, Selection(**kw))}

    assert names(posts=(BRIDGE_POST,)) == {"bridge1", "bridge2", "gone1", "photo1", "photo2"}
    assert names(posts=(BRIDGE_POST,), url_patterns=("news.test",)) == {
        "bridge1", "bridge2", "gone1"}
    assert names(posts=("_posts/*",), states=("drifted",), latest=True) == {"bridge2"}
    assert names(until=parse_moment("2026-11-20")) == {
        "storm1", "photo1", "old1", "new1", "bridge1", "gone1"}
    assert names(since=parse_moment("2026-11-21", end_of_period=False),
                 url_patterns=("http://news.test/*",)) == {"storm2", "bridge2"}
    assert names(latest=True, url_patterns=(STORM_URL,)) == {"storm2"}
    assert names(states=("failing",)) == set()
    with pytest.raises(ExportError, match="no post"):
        match_posts(db, ["_posts/2020-nothing.md"])
    assert match_posts(db, ["site/_posts/2026-11-19-storm.md"]) == [STORM_POST]


def test_nothing_selected_is_an_error_and_writes_nothing(archive: Archive) -> None:
    with pytest.raises(ExportError, match="no capture matches"):
        export_warc(archive, Selection(states=("failing",)))
    assert not (archive.root / "out.warc.gz").exists()


def test_a_row_that_does_not_match_its_file_is_skipped_with_a_message(archive: Archive) -> None:
    db = archive.db
    db.execute("UPDATE snapshots SET record_id='<urn:uuid:00000000-0000-0000-0000-000000000000>'"
               " WHERE id=?", [archive.ids["gone1"]])
    result, target = export_warc(archive, Selection(states=("dead", "drifted")))
    assert "gone1" not in exported_names(archive, read_warc(target, check_digests=False))
    assert any(GONE_URL in p and "skipped" in p for p in result.problems)
    warcio_check(target)


def test_unresolvable_revisit_is_reported(archive: Archive) -> None:
    db = archive.db
    db.execute("DELETE FROM snapshots WHERE id=?", [archive.ids["photo1"]])
    plan = plan_export(db, archive.folder, Selection(url_patterns=("*.jpg",)))
    assert plan.originals == []
    assert any("original is not in the archive" in p for p in plan.problems)


# ---------------------------------------------------------------------------------------------
# Atomic, streamed


def test_an_interrupted_export_leaves_nothing_that_looks_complete(
    archive: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    import linkkeeper.export.wacz as wacz_module

    calls = 0
    original, original_range = export_module.Output.copy_from, export_module.copy_range

    def interrupted(self, source, offset, length):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if calls == 3:
            raise KeyboardInterrupt
        return original(self, source, offset, length)

    def interrupted_range(*args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal calls  # the kernel copies (whole source files in a WACZ) count too
        calls += 1
        if calls == 3:
            raise KeyboardInterrupt
        return original_range(*args, **kwargs)

    monkeypatch.setattr(export_module.Output, "copy_from", interrupted)
    monkeypatch.setattr(export_module, "copy_range", interrupted_range)
    monkeypatch.setattr(wacz_module, "copy_range", interrupted_range)
    for name in ("out.warc.gz", "out.wacz"):
        calls = 0
        with pytest.raises(KeyboardInterrupt):
            export_warc(archive, Selection(), name)
        assert sorted(p.name for p in archive.root.iterdir()) == [
            "linkkeeper.db", "linkkeeper.db-shm", "linkkeeper.db-wal", "warcs"]


def test_existing_output_is_kept_unless_forced(archive: Archive) -> None:
    target = archive.root / "keep.warc.gz"
    target.write_bytes(b"precious")
    with pytest.raises(ExportError, match="exists"):
        export(archive.db, archive.folder, Selection(), target)
    assert target.read_bytes() == b"precious"
    export(archive.db, archive.folder, Selection(), target, force=True)
    assert target.read_bytes()[:2] == b"\x1f\x8b"
    with pytest.raises(ExportError, match=r"\.warc\.gz or \.wacz"):
        export(archive.db, archive.folder, Selection(), archive.root / "out.zip")


def test_export_memory_does_not_grow_with_the_archive(tmp_path: Path) -> None:
    """40 MB of incompressible captures exported with a small, fixed amount of memory."""
    folder = tmp_path / "warcs"
    db = connect(tmp_path / "linkkeeper.db")
    body = os.urandom(2 << 20)
    with WarcStore(folder, clock=lambda: NIGHT1, compress_level=1) as store:
        for i in range(20):
            ex = exchange(f"http://big.test/{i}.bin", body[i:] + body[:i], NIGHT1,
                          response_headers=[("Content-Type", "application/octet-stream")])
            _insert(db, store.write(ex), 1, None)
    tracemalloc.start()
    try:
        for name in ("big.warc.gz", "big.wacz"):
            tracemalloc.reset_peak()
            result = export(db, folder, Selection(), tmp_path / name)
            assert result.captures == 20 and result.bytes_written > 40e6
            _, peak = tracemalloc.get_traced_memory()
            assert peak < 8e6, f"{name}: peak {peak / 1e6:.1f} MB"
    finally:
        tracemalloc.stop()


# ---------------------------------------------------------------------------------------------
# Parsing dates and URL patterns


@given(st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1),
                    timezones=st.just(UTC)))
def test_moments_round_trip_and_periods_contain_them(moment: datetime) -> None:
    second = moment.replace(microsecond=0)
    assert parse_moment(f"{second:%Y%m%d%H%M%S}", end_of_period=False) == second
    assert parse_moment(rfc3339(moment)) == moment
    for fmt in ("%Y", "%Y-%m", "%Y-%m-%d", "%Y%m%d", "%Y%m%d%H", "%Y%m%d%H%M"):
        text = moment.strftime(fmt)
        assert parse_moment(text, end_of_period=False) <= moment <= parse_moment(text)


def test_bad_moments_say_what_is_expected() -> None:
    for text in ("yesterday", "2026-13-01", "2026-02-30"):
        with pytest.raises(ValueError, match="date"):
            parse_moment(text)


@given(st.text(alphabet=st.characters(blacklist_characters="*?[", codec="ascii"), max_size=30),
       st.text(max_size=20), st.text(max_size=20))
def test_url_pattern_without_wildcards_is_a_substring(needle: str, left: str, right: str) -> None:
    assert url_matches(left + needle + right, needle)
    assert url_matches(left + needle + right, "*" + needle + "*")


# ---------------------------------------------------------------------------------------------
# CLI


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "linkkeeper", *args], capture_output=True,
                          text=True, cwd=cwd, check=False, timeout=120)


def test_cli_export_and_replay(archive: Archive) -> None:
    target = archive.root / "dead.warc.gz"
    done = run_cli("export", str(archive.root), "--state", "dead", "-o", str(target),
                   "--format", "json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["captures"] == 1 and summary["format"] == "warc"
    again = run_cli("export", str(archive.root), "--state", "dead", "-o", str(target))
    assert again.returncode == 1 and "exists" in again.stderr
    bad = run_cli("export", str(archive.root), "--since", "someday", "-o", "x.warc.gz")
    assert bad.returncode == 3 and "--since" in bad.stderr

    db = str(archive.db_path)
    listing = run_cli("replay", STORM_URL, "--db", db, "--at", "2026-11-20")
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert lines[0] == f"{STORM_URL}: 2 captures"
    assert lines[1].startswith("* 20261120020000  200")
    assert lines[2].startswith("  20261121020000  200")
    body = subprocess.run([sys.executable, "-m", "linkkeeper", "replay", BRIDGE_URL, "--db", db,
                           "--body"], capture_output=True, check=False)
    assert body.returncode == 0 and body.stdout == BRIDGE  # revisit resolved, gzip removed
    raw = archive.root / "bridge.gz"
    assert run_cli("replay", BRIDGE_URL, "--db", db, "--body", "--raw", "-o", str(raw),
                   "--at", "20261120").returncode == 0
    assert raw.read_bytes() == archive.sent["bridge1"]
    missing = run_cli("replay", "http://news.test/never", "--db", db)
    assert missing.returncode == 1 and "nothing archived" in missing.stderr


# ---------------------------------------------------------------------------------------------
# pywb replays the exported file


def test_pywb_replays_the_exported_warc_with_identical_bytes(archive: Archive) -> None:
    from pywb_env import PywbUnavailable, ensure_pywb, get, wayback

    try:
        python = ensure_pywb()
    except PywbUnavailable as err:
        unavailable("PYWB", f"pywb cannot be installed here: {err}")
    collection = archive.root / "handed-over"
    collection.mkdir()
    export_warc(archive, Selection(posts=(STORM_POST, BRIDGE_POST), latest=True),
                "handed-over/export.warc.gz")
    index_warc(collection, "export.warc.gz")
    rebuild_folder_index(collection)
    browser = {"Accept-Encoding": "gzip, br", "User-Agent": "replay-test"}
    with wayback(python, pywb_collection_config(collection, "x"), archive.root / "pywb") as port:
        for name, url in (("storm2", STORM_URL), ("bridge2", BRIDGE_URL), ("photo2", PHOTO_URL)):
            ts = f"{archive.captures[name].date:%Y%m%d%H%M%S}"
            response = get(port, f"/x/{ts}id_/{url}", browser)
            assert response.status == 200, name
            assert response.read() == archive.sent[name], name
        redirect = get(port, f"/x/20261120020000id_/{OLD_URL}", browser)
        redirect.read()
        assert redirect.status == 301
        target = get(port, f"/x/20261120020000id_/{NEW_URL}", browser)
        assert target.read() == NEW_STORY



# ---------------------------------------------------------------------------------------------
# End to end: what `check` archived, exported


def test_export_of_what_check_archived(faultweb, tmp_path: Path) -> None:
    """check archives against the fault web (twice: revisits), then export and replay."""
    from test_archive import make_site, path_of, run, web_args
    from test_wacz import independent_check

    site = make_site(tmp_path / "site", [
        {"source": "https://news.example/chunked/a-story",
         "images": ["https://images.example/img/a.png"],
         "related": ["https://news.example/redirect/301/1/moved", "https://news.example/gzip/b"]},
        {"source": "https://news.example/brotli/second-story",
         "related": ["https://news.example/status/404/gone"]},
    ])
    for _night in range(2):
        done = run("check", site, *web_args(faultweb), "--attempts", "1", "--fail-on", "never")
        assert done.returncode == 0, done.stderr
    db = connect(site / "linkkeeper.db")
    kinds = {t for (t,) in db.execute("SELECT record_type FROM snapshots")}
    assert kinds == {"response", "revisit"}

    target = tmp_path / "latest.warc.gz"
    done = run("export", site, "--latest", "-o", target, "--format", "json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["originals_added"] > 0 and summary["problems"] == []
    warcio_check(target)
    records = read_warc(target, check_digests=False)
    latest = {u: n for u, n in db.execute("SELECT url, count(*) FROM snapshots GROUP BY url")}
    exported = [r["uri"] for r in records if r["type"] in ("response", "revisit")]
    assert set(exported) == set(latest)  # every archived URL, its newest capture + originals
    assert len(exported) == summary["captures"]

    wacz = tmp_path / "posts.wacz"
    done = run("export", site, "--post", "_posts/*", "-o", wacz)
    assert done.returncode == 0, done.stderr
    pages = {p["url"] for p in independent_check(wacz)["pages"]}
    assert "https://news.example/chunked/a-story" in pages
    assert "https://news.example/status/404/gone" not in pages  # never archived: it was dead

    source = "https://news.example/brotli/second-story"
    body = subprocess.run([sys.executable, "-m", "linkkeeper", "replay", source, "--db",
                           str(site / "linkkeeper.db"), "--body", "--raw"],
                          capture_output=True, check=False)
    assert body.returncode == 0, body.stderr
    assert body.stdout == faultweb.payload_for(*path_of(source))


def test_a_selection_typed_with_a_newline_cannot_break_the_warcinfo(archive: Archive) -> None:
    _, target = export_warc(archive, Selection(url_patterns=("*.jpg", "evil\r\nWARC-Type: x")))
    warcio_check(target)
    info = read_warc(target, check_digests=False)[0]
    fields = dict(line.split(": ", 1) for line in info["payload"].decode().splitlines())
    assert fields["linkkeeper-selection"] == "--url *.jpg --url evil WARC-Type: x"


def test_part_files_of_killed_exports_are_cleared_by_the_next(archive: Archive) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()  # reaped: its pid names no live process
    stale = archive.root / f".out.warc.gz.{gone.pid}.part"
    stale.write_bytes(b"half an export")
    running = archive.root / f".out.warc.gz.{os.getppid()}.part"  # a live exporter's: kept
    running.write_bytes(b"in progress")
    export_warc(archive, Selection(states=("dead",)))
    assert not stale.exists()
    assert running.exists()
    assert (archive.root / "out.warc.gz").exists()
