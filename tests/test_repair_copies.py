"""Which of our captures a dead link is repaired with: the real page closest before it failed."""

from __future__ import annotations

from pathlib import Path

from repair_world import capture, kill, make_site, scanned

from linkkeeper.repair.copies import OURS, Target, choose_copy, own_copy, stored_copies

URL = "https://news.example/a"
FAILED = "2024-06-01T00:00:00+00:00"


def db_for(tmp_path: Path):  # type: ignore[no-untyped-def]
    site = make_site(tmp_path, {"2021-01-01-a.md": f"---\ntitle: a\n---\n[a]({URL})\n"})
    return scanned(site)


def test_closest_capture_before_the_first_failure(tmp_path: Path) -> None:
    db = db_for(tmp_path)
    capture(db, URL, "2023-01-05T10:00:00+00:00", run_id=1)
    capture(db, URL, "2024-05-20T10:00:00+00:00", run_id=3)
    capture(db, URL, "2024-06-10T10:00:00+00:00", run_id=4)  # after it failed: not this one
    copy = own_copy(db, URL, FAILED)
    assert copy is not None and copy.source == OURS
    assert copy.datetime == "2024-05-20T10:00:00Z"
    assert copy.url == f"archive/20240520100000/{URL}"


def test_never_an_error_page_soft_404_block_page_or_orphan_revisit(tmp_path: Path) -> None:
    db = db_for(tmp_path)
    good = capture(db, URL, "2022-01-01T00:00:00+00:00", run_id=1)
    capture(db, URL, "2024-01-01T00:00:00+00:00", run_id=3, http_status=500,
            check_status="server-error")
    capture(db, URL, "2024-02-01T00:00:00+00:00", run_id=4, check_status="soft-404")
    capture(db, URL, "2024-03-01T00:00:00+00:00", run_id=5, check_status="blocked")
    capture(db, URL, "2024-04-01T00:00:00+00:00", run_id=6, truncated=1)
    capture(db, URL, "2024-05-01T00:00:00+00:00", run_id=7, record_type="revisit",
            revisit_of=99999)  # its original is gone
    copy = own_copy(db, URL, FAILED)
    assert copy is not None and copy.snapshot_id == good
    # a revisit whose original is recorded is a real copy
    rev = capture(db, URL, "2024-05-15T00:00:00+00:00", run_id=8, record_type="revisit",
                  revisit_of=good)
    assert own_copy(db, URL, FAILED).snapshot_id == rev  # type: ignore[union-attr]


def test_nothing_usable_is_cached_as_none(tmp_path: Path) -> None:
    db = db_for(tmp_path)
    kill(db, URL, first_failed=FAILED)
    capture(db, URL, "2024-02-01T00:00:00+00:00", run_id=4, check_status="soft-404")
    assert choose_copy(db, Target(URL, FAILED)) is None
    assert db.execute("SELECT source, found FROM archived_copies WHERE url=?",
                      [URL]).fetchall() == [(OURS, 0)]
    capture(db, URL, "2023-02-01T00:00:00+00:00", run_id=5)
    assert choose_copy(db, Target(URL, FAILED)) is not None
    assert [c.date for c in stored_copies(db)[URL]] == ["2023-02-01"]
