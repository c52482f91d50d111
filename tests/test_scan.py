"""scan_site through its Python API: the bulk-load and batching paths a big first scan takes,
checked on small sites by shrinking the batch size."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from linkkeeper import scan
from linkkeeper.db import connect
from linkkeeper.demo import example_site_path
from linkkeeper.scan import scan_site
from linkkeeper.site import open_site

CORPUS = Path(
    os.environ.get("LINKKEEPER_CORPUS")
    or Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "posts"
)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    target = tmp_path / "site"
    shutil.copytree(example_site_path(), target)
    if CORPUS.is_dir():  # more posts than a few batches
        for path in sorted(CORPUS.glob("*.md"))[:40]:
            shutil.copy(path, target / "_posts" / path.name)
    return target


def tables(db_path: Path) -> dict[str, list[tuple[object, ...]]]:
    with sqlite3.connect(db_path) as conn:
        return {
            "posts": conn.execute(
                "SELECT path, title, date, source_url, front_matter, sha256, ok, problems,"
                " occurrence_count FROM posts ORDER BY path"
            ).fetchall(),
            "occurrences": conn.execute(
                "SELECT post, url, kind, line, text, original, fragment, element"
                " FROM occurrences ORDER BY id"
            ).fetchall(),
            "links": conn.execute(
                "SELECT url, host, scheme, status, reason, wraps FROM links ORDER BY url"
            ).fetchall(),
        }


def occurrence_indexes(db_path: Path) -> set[str]:
    return indexes(db_path, "occurrences")


def indexes(db_path: Path, table: str) -> set[str]:
    with sqlite3.connect(db_path) as conn:
        return {
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?", (table,)
            )
        }


def test_first_scan_builds_the_occurrence_indexes_after_loading(site: Path, tmp_path: Path) -> None:
    db_path = tmp_path / "lk.db"
    db = connect(db_path)
    expected = occurrence_indexes(db_path)
    assert expected == {"idx_occurrences_post_seq", "idx_occurrences_url_kind"}
    links = indexes(db_path, "links")
    assert "idx_links_host" in links
    summary = scan_site(db, open_site([site]), jobs=1)
    assert summary.parsed == summary.posts > 0
    assert occurrence_indexes(db_path) == expected
    assert indexes(db_path, "links") == links


def test_indexes_dropped_by_an_interrupted_first_scan_come_back_on_connect(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db_path = tmp_path / "lk.db"
    db = connect(db_path)

    def boom(*args: object, **kwargs: object) -> object:
        # dropped while loading, but for the unique one (a constraint)
        assert occurrence_indexes(db_path) == {"idx_occurrences_post_seq"}
        assert "idx_links_host" not in indexes(db_path, "links")
        raise KeyboardInterrupt

    monkeypatch.setattr(scan, "_parse_one", boom)
    monkeypatch.setattr("linkkeeper.db.ensure_schema", lambda db: None)  # as if killed
    with pytest.raises(KeyboardInterrupt):
        scan_site(db, open_site([site]), jobs=1)
    assert occurrence_indexes(db_path) == {"idx_occurrences_post_seq"}
    monkeypatch.undo()
    connect(db_path)
    assert occurrence_indexes(db_path) == {"idx_occurrences_post_seq", "idx_occurrences_url_kind"}
    assert "idx_links_host" in indexes(db_path, "links")


def test_batches_and_worker_processes_write_the_same_tables(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many small batches (worker processes parse one while the one before is written)
    give the same tables as one process and one big batch, after edits too."""
    results = []
    for batch, jobs in ((1000, 1), (3, 1), (3, 2)):
        monkeypatch.setattr(scan, "BATCH", batch)
        work = tmp_path / f"site-{batch}-{jobs}"
        shutil.copytree(site, work)
        db_path = tmp_path / f"lk-{batch}-{jobs}.db"
        db = connect(db_path)
        first = scan_site(db, open_site([work]), jobs=jobs)
        for post in sorted((work / "_posts").iterdir())[:7]:
            post.write_bytes(
                post.read_bytes() + b'\n<p><a href="https://edit.example/">e</a></p>\n'
            )
        second = scan_site(db, open_site([work]), jobs=jobs)
        results.append((first.as_dict() | {"elapsed_s": 0}, second.parsed, tables(db_path)))
    assert results[0][1] == 7
    assert results[1] == results[0]
    assert results[2] == results[0]


def test_a_file_named_twice_is_one_post(site: Path, tmp_path: Path) -> None:
    post = next(iter(sorted((site / "_posts").glob("*.md"))))
    db_path = tmp_path / "lk.db"
    summary = scan_site(connect(db_path), open_site([post, post]), jobs=1)
    assert summary.posts == 1
    with sqlite3.connect(db_path) as conn:
        count = conn.execute("SELECT count(*) FROM occurrences").fetchone()[0]
        per_post = conn.execute("SELECT occurrence_count FROM posts").fetchone()[0]
    assert count == per_post


def test_read_follows_a_file_that_grew_or_shrank_since_stat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from linkkeeper import site as site_module

    path = tmp_path / "post.md"
    data = os.urandom(70_000)
    path.write_bytes(data)
    real_fstat = os.fstat
    for stat_size in (0, 1, 69_999, 70_000, 70_001, 200_000):
        def fstat(fd: int, size: int = stat_size) -> os.stat_result:
            st = list(real_fstat(fd))
            st[6] = size  # st_size as an earlier look saw it
            return os.stat_result(st)

        monkeypatch.setattr(site_module.os, "fstat", fstat)
        assert site_module.read_post(path, tmp_path)[0] == data


def test_posts_are_streamed_in_the_order_of_a_sort_of_all_their_paths(tmp_path: Path) -> None:
    """The walk sorts one folder at a time (a sub-folder where its paths fall), which is
    the order of sorting every relative path at once; skipped folders stay skipped."""
    root = tmp_path / "site"
    names = ["z.md", "a.md", "a-b.md", "a/x.md", "a/b/c.md", "a.b/y.md", "ab.md", "_posts/1.md",
             "_posts/2024-01-01-中文.md", "_site/skip.md", ".hidden/skip.md", "node_modules/s.md",
             "a/notes.txt", "b/c/d/e.html", "B.markdown", "a_/q.md"]
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("x", encoding="utf-8")
    os.symlink(root / "a", root / "linked")  # a symlinked folder is not entered (os.walk)
    got = [rel for rel, _ in open_site([root]).posts()]
    expected = sorted(n for n in names if n.endswith((".md", ".html", ".markdown"))
                      and not n.startswith(("_site/", ".hidden/", "node_modules/")))
    assert got == expected
    assert all(path.is_file() for _, path in open_site([root]).posts())
    assert open_site([root]).has_posts() and open_site([root / "a"]).has_posts()
    (tmp_path / "none" / "_site").mkdir(parents=True)
    (tmp_path / "none" / "_site" / "x.md").write_text("x", encoding="utf-8")
    assert not open_site([tmp_path / "none"]).has_posts()


def test_a_rescan_that_changed_nothing_reuses_the_totals_until_the_inventory_changes(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db_path = tmp_path / "lk.db"
    db = connect(db_path)
    first = scan_site(db, open_site([site]), jobs=1).as_dict() | {"elapsed_s": 0}
    counted: list[int] = []
    real = scan._count_totals
    monkeypatch.setattr(scan, "_count_totals", lambda *a: counted.append(1) or real(*a))
    again = scan_site(db, open_site([site]), jobs=1).as_dict() | {"elapsed_s": 0}
    # (problems are said by the scan that parsed the post, not by every later one)
    assert counted == [] and again == first | {"parsed": 0, "unchanged": first["posts"],
                                               "problems": []}
    # another writer (a merge, a hand edit) changes the inventory: counted again
    db.execute("DELETE FROM occurrences WHERE id = (SELECT max(id) FROM occurrences)")
    third = scan_site(db, open_site([site]), jobs=1)
    assert counted == [1] and third.occurrences == first["occurrences"] - 1
    # an edited post: counted again, and the saved totals follow
    post = sorted((site / "_posts").iterdir())[0]
    post.write_bytes(post.read_bytes() + b'\n<p><a href="https://new.example/">n</a></p>\n')
    fourth = scan_site(db, open_site([site]), jobs=1)
    assert counted == [1, 1] and fourth.urls_by_status["checkable"] >= 1
    fifth = scan_site(db, open_site([site]), jobs=1)
    assert counted == [1, 1] and fifth.as_dict() | {"elapsed_s": 0, "parsed": 1, "unchanged": 0} \
        == fourth.as_dict() | {"elapsed_s": 0, "unchanged": 0, "problems": []}
