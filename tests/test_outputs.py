"""`-o` never replaces what linkkeeper keeps: a report written onto the database replaced the
whole history, and an export onto a WARC of the archive would have destroyed what it reads.
Every command with `-o` refuses the database (and its WAL, shared memory, lock), the archive
folder's WARCs, indexes and digests, any SQLite file, and (for text documents) any archive."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

from helpers import web_args
from test_archive import make_site, run

from linkkeeper.faultweb import FaultWeb


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_no_output_replaces_the_history_or_the_archive(faultweb: FaultWeb, tmp_path: Path) -> None:
    site = make_site(tmp_path / "site", [{"source": "https://news.example/chunked/a-story"}])
    done = run("check", site, *web_args(faultweb), "--attempts", "1", "--fail-on", "never")
    assert done.returncode == 0, done.stderr
    db = site / "linkkeeper.db"
    warc = next((site / "warcs").rglob("*.warc.gz"))
    other_db = tmp_path / "notes.sqlite"
    sqlite3.connect(other_db).execute("CREATE TABLE t (x)").connection.commit()
    kept = {path: _digest(path) for path in (db, warc, other_db)}
    url = "https://news.example/chunked/a-story"
    refused = [
        ("report", site, "-o", db),  # was: the history replaced by the HTML page
        ("report", site, "-o", f"{db}-wal"),
        ("report", site, "--format", "json", "-o", warc),
        ("report", site, "--format", "csv", "-o", other_db),
        ("check", site, *web_args(faultweb), "--format", "json", "-o", db),
        ("export", site, "-o", warc, "--force"),  # --force replaces a package, not a source
        ("replay", url, site, "--body", "-o", db),
    ]
    for args in refused:
        done = run(*args)
        assert done.returncode == 3, (args, done.stderr)
        assert "not overwritten" in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert {path: _digest(path) for path in kept} == kept
    # what may be overwritten still is: a previous report, a previous package
    for _ in range(2):
        assert run("report", site, "-o", tmp_path / "r.html").returncode == 0
        assert run("export", site, "-o", tmp_path / "all.wacz", "--force").returncode == 0
    assert (tmp_path / "r.html").read_text(encoding="utf-8").startswith("<!doctype html>")


def test_no_report_folder_lands_among_the_posts_or_the_archive(faultweb: FaultWeb, tmp_path: Path
                                                             ) -> None:
    """A report in the site's root was scanned as a post (its links joined the inventory)."""
    site = make_site(tmp_path / "site", [{"source": "https://news.example/chunked/a-story"}])
    done = run("check", site, *web_args(faultweb), "--attempts", "1", "--fail-on", "never")
    assert done.returncode == 0, done.stderr
    for folder in (site, site / "_posts", site / "_posts" / "x", site / "warcs", tmp_path):
        done = run("report", site, "--output-dir", folder)
        assert done.returncode == 3 and "choose another folder" in done.stderr, done.stderr
        # `serve` hands out the files of its report folder: never the site or the database
        done = run("serve", site, "--reports", folder, "--port", "0", timeout=20)
        assert done.returncode == 3 and "choose another folder" in done.stderr, done.stderr
    assert not (site / "index.html").exists() and not (site / "_posts" / "index.html").exists()
    assert run("report", site, "--output-dir", site / "reports").returncode == 0


def test_a_page_never_removes_a_folder_it_did_not_make(faultweb: FaultWeb, tmp_path: Path) -> None:
    """`-o notes.html` cleans `notes.files/` of its earlier row builds only."""
    site = make_site(tmp_path / "site", [{"source": "https://news.example/chunked/a-story"}])
    run("check", site, *web_args(faultweb), "--attempts", "1", "--fail-on", "never")
    mine = tmp_path / "notes.files" / "mine"
    mine.mkdir(parents=True)
    (mine / "a.txt").write_text("kept")
    assert run("report", site, "-o", tmp_path / "notes.html").returncode == 0
    assert (mine / "a.txt").read_text() == "kept"


def test_a_special_output_is_written_in_place(faultweb: FaultWeb, tmp_path: Path) -> None:
    """`-o /dev/stdout` (as root) replaced /dev/stdout itself with a regular file: the report
    went to a temporary file renamed over the target. A device, a FIFO or a link to one is
    now written in place; a regular file still whole or not at all."""
    import os
    import threading

    site = make_site(tmp_path / "site", [{"source": "https://news.example/chunked/a-story"}])
    run("check", site, *web_args(faultweb), "--attempts", "1", "--fail-on", "never")
    link = tmp_path / "out.json"
    link.symlink_to(os.devnull)
    assert run("report", site, "--format", "json", "-o", link).returncode == 0
    assert link.is_symlink() and os.readlink(link) == os.devnull
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    assert run("report", site, "--format", "csv", "-o", fifo).returncode == 0
    reader.join(timeout=30)
    assert got and got[0].startswith(b"post,post_title") and fifo.exists()
    assert not list(tmp_path.glob(".*tmp"))  # no temporary file left beside them
