"""The CDXJ index made while a WARC is written (archive/live_index.py): the same lines as
cdxj-indexer reading the closed file, and the old way whenever the child cannot give them."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from test_warc import T0, Clock, exchange

import linkkeeper.archive.warc as warc_module
from linkkeeper.archive.cdx import index_path_for, index_warc
from linkkeeper.archive.digests import digest_file, trusted_digest
from linkkeeper.archive.live_index import LiveIndex
from linkkeeper.archive.warc import WarcStore


@pytest.fixture(autouse=True)
def _small_files_indexed_live(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start the child once a file passes 200 kB here (16 MiB in use)."""
    monkeypatch.setattr(warc_module, "LIVE_INDEX_FROM", 200_000)


def _write_some(store: WarcStore, clock: Clock, count: int) -> None:
    """Random bodies (stored), a repeated page (deflated, then revisits of it)."""
    prior = None
    for i in range(count):
        clock.now = T0 + timedelta(minutes=i)
        if i % 3:
            store.write(exchange(f"http://news.test/{i}", body=os.urandom(40_000),
                                 started=clock.now))
            continue
        ex = exchange("http://news.test/same", body=b"<p>same page</p>" * 100,
                      started=clock.now)
        capture = store.write(ex, prior=prior)
        if capture.record_type == "response":
            prior = capture.as_prior()


def _indexes(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): index_path_for(path).read_text()
        for path in sorted(folder.rglob("*.warc.gz"))
    }


def test_live_index_equals_cdxj_indexer_reading_the_closed_files(tmp_path: Path) -> None:
    live, old = tmp_path / "live", tmp_path / "old"
    for folder, flag in ((live, True), (old, False)):
        clock = Clock()
        with WarcStore(folder, clock=clock, max_file_size=2_500_000, live_index=flag) as store:
            _write_some(store, clock, 150)  # > 1 MiB between announcements, three files
    live_indexes, old_indexes = _indexes(live), _indexes(old)
    assert len(live_indexes) >= 2 and any("warc/revisit" in t for t in live_indexes.values())
    assert list(live_indexes) == list(old_indexes)
    for rel, text in live_indexes.items():
        assert text.count("\n") > 10
        # the digest sidecar, from the child's reading: what reading the file gives
        assert trusted_digest(live / rel) == digest_file(live / rel)
        index_warc(live, rel)  # cdxj-indexer reading the closed file, as before
        assert index_path_for(live / rel).read_text() == text
    assert (live / "index.cdxj").read_text().count("\n") == sum(
        t.count("\n") for t in live_indexes.values()
    )


def test_a_dead_child_means_the_closed_file_is_indexed_the_old_way(tmp_path: Path) -> None:
    clock = Clock()
    with WarcStore(tmp_path, clock=clock, live_index=True) as store:
        _write_some(store, clock, 10)
        live = store._current.live  # type: ignore[union-attr]
        assert live is not None and live._proc is not None and store._current.digest is None
        live._proc.kill()
        live._proc.wait()
        _write_some(store, clock, 40)  # announcing to a dead child: no error
    (rel, text), = _indexes(tmp_path).items()
    assert trusted_digest(tmp_path / rel) == digest_file(tmp_path / rel)
    index_warc(tmp_path, rel)
    assert index_path_for(tmp_path / rel).read_text() == text
    assert text.count("\n") == 50
    assert not list(tmp_path.rglob("*.tmp"))


def test_the_child_gives_nothing_when_the_writer_goes_away(tmp_path: Path) -> None:
    """stdin closed without a final size (the writer killed): exit 1, no lines, no files."""
    clock = Clock()
    with WarcStore(tmp_path, clock=clock) as store:
        _write_some(store, clock, 5)
    (rel, _), = _indexes(tmp_path).items()
    before = sorted(tmp_path.rglob("*"))
    index = LiveIndex(tmp_path / rel, rel)
    proc = index._proc
    assert proc is not None and proc.stdin is not None
    index.grow(10 << 20)
    proc.stdin.close()
    out = proc.stdout.read() if proc.stdout else b""
    assert proc.wait(timeout=60) == 1 and out == b""
    assert sorted(tmp_path.rglob("*")) == before


def test_the_child_alone_indexes_what_it_is_told_is_whole(tmp_path: Path) -> None:
    clock = Clock()
    with WarcStore(tmp_path, clock=clock) as store:
        _write_some(store, clock, 12)
    (rel, text), = _indexes(tmp_path).items()
    size = (tmp_path / rel).stat().st_size
    fd = os.open(tmp_path / rel, os.O_RDONLY)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "linkkeeper.archive.live_index", str(fd), rel],
            input=f"size {size // 2}\nend {size}\n".encode(), capture_output=True,
            pass_fds=(fd,), timeout=60, check=True,
        )
    finally:
        os.close(fd)
    head, _, lines = done.stdout.decode().partition("\n")
    whole = digest_file(tmp_path / rel)
    assert head == f"#read {whole.size} {whole.sha256} {whole.crc32}"
    assert lines == text


def test_a_small_file_is_indexed_at_close_without_a_child(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(warc_module, "LIVE_INDEX_FROM", 16 << 20)
    clock = Clock()
    with WarcStore(tmp_path, clock=clock, live_index=True) as store:
        _write_some(store, clock, 20)
        assert store._current is not None and not store._current.live_tried
    (rel, text), = _indexes(tmp_path).items()
    assert trusted_digest(tmp_path / rel) == digest_file(tmp_path / rel)
    index_warc(tmp_path, rel)
    assert index_path_for(tmp_path / rel).read_text() == text
