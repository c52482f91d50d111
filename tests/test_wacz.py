"""WACZ exports, validated by reading them back independently (zipfile, hashlib, json, warcio):
every listed file present with its size and sha256, the datapackage digest, every CDXJ line
pointing at a readable record with its URL and digest, every page indexed. Plus our own
`check_wacz`, shown to catch the damage `wacz validate` is known to miss."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from datetime import datetime
from pathlib import Path

import pytest
from helpers import unavailable
from surt import surt
from test_export import (
    BRIDGE_POST,
    BRIDGE_URL,
    GONE_URL,
    NEW_URL,
    OLD_URL,
    PHOTO,
    PHOTO_URL,
    STORM_POST,
    STORM_URL,
    Archive,
    build_archive,
)
from test_warc import warcio_check
from warcio.archiveiterator import ArchiveIterator

from linkkeeper.export.run import export
from linkkeeper.export.select import Selection
from linkkeeper.export.wacz import check_wacz


@pytest.fixture
def archive(tmp_path: Path) -> Archive:
    return build_archive(tmp_path / "site")


def independent_check(path: Path) -> dict[str, object]:
    """Validate a WACZ 1.1.1 package without linkkeeper's code; returns what it holds."""
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        package_bytes = zf.read("datapackage.json")
        package = json.loads(package_bytes)
        assert package["profile"] == "data-package"
        assert package["wacz_version"] == "1.1.1"
        listed = {r["path"] for r in package["resources"]}
        assert listed | {"datapackage.json", "datapackage-digest.json"} == names
        for resource in package["resources"]:
            data = zf.read(resource["path"])
            assert len(data) == resource["bytes"], resource["path"]
            assert resource["hash"] == "sha256:" + hashlib.sha256(data).hexdigest()
        digest = json.loads(zf.read("datapackage-digest.json"))
        assert digest == {"path": "datapackage.json",
                          "hash": "sha256:" + hashlib.sha256(package_bytes).hexdigest()}

        # the export's own WARC (its warcinfo first), and the source WARCs taken whole
        warcs = {n: zf.read(n) for n in sorted(names) if n.startswith("archive/")}
        assert all(n.endswith(".warc.gz") for n in warcs)
        assert all(zf.getinfo(n).compress_type == zipfile.ZIP_STORED for n in warcs)
        own = [n for n in warcs if n.startswith("archive/linkkeeper-export-")]
        assert len(own) == 1
        first = next(iter(ArchiveIterator(io.BytesIO(warcs[own[0]]))))
        assert first.rec_type == "warcinfo"
        assert first.rec_headers.get_header("WARC-Filename") == own[0].removeprefix("archive/")
        index_lines = zf.read("indexes/index.cdxj").decode().splitlines()
        assert index_lines == sorted(index_lines)
        entries = set()
        for line in index_lines:
            urlkey, ts, rest = line.split(" ", 2)
            fields = json.loads(rest)
            assert urlkey == surt(fields["url"])  # the key replay tools binary-search on
            warc = warcs["archive/" + fields["filename"]]
            offset, length = int(fields["offset"]), int(fields["length"])
            record = next(iter(ArchiveIterator(io.BytesIO(warc[offset : offset + length]))))
            assert record.rec_headers.get_header("WARC-Target-URI") == fields["url"]
            assert record.rec_headers.get_header("WARC-Payload-Digest") == fields["digest"]
            assert record.rec_headers.get_header("WARC-Date").replace("-", "").replace(
                ":", "").replace("T", "")[:14] == ts
            entries.add((fields["url"], ts))
        pages_lines = zf.read("pages/pages.jsonl").decode().splitlines()
        header = json.loads(pages_lines[0])
        assert header["format"] == "json-pages-1.0" and header["id"] == "pages"
        pages = [json.loads(line) for line in pages_lines[1:]]
        for page in pages:
            when = datetime.fromisoformat(page["ts"].replace("Z", "+00:00"))
            assert (page["url"], f"{when:%Y%m%d%H%M%S}") in entries, page
            assert page["title"] and page["id"]
        return {"package": package, "pages": pages, "entries": entries, "warcs": warcs,
                "warc": b"".join(warcs.values())}


def test_wacz_export_validates_independently(archive: Archive) -> None:
    target = archive.root / "all.wacz"
    result = export(archive.db, archive.folder, Selection(), target, title="Storm archive")
    held = independent_check(target)

    assert result.format == "wacz" and result.problems == []
    assert held["package"]["title"] == "Storm archive"
    assert held["package"]["software"].startswith("linkkeeper/")
    assert len(held["entries"]) == len(archive.captures)  # every capture indexed
    extracted = []
    for number, data in enumerate(held["warcs"].values()):
        extracted.append(archive.root / f"extracted-{number}.warc.gz")
        extracted[-1].write_bytes(data)
    warcio_check(*extracted)
    assert check_wacz(target) == []


def test_pages_are_the_exported_post_links_with_their_titles(archive: Archive) -> None:
    target = archive.root / "bridge.wacz"
    export(archive.db, archive.folder, Selection(posts=(BRIDGE_POST, STORM_POST)), target)
    pages = {p["url"]: p for p in independent_check(target)["pages"]}

    # every post link with a capture, once; the redirect target is archived but no page
    assert set(pages) == {STORM_URL, PHOTO_URL, OLD_URL, BRIDGE_URL, GONE_URL}
    assert NEW_URL not in pages
    assert pages[STORM_URL]["title"] == "Storm floods harbour"
    assert pages[OLD_URL]["title"] == "Harbour <b>history</b>"  # data, kept as written
    assert pages[PHOTO_URL]["title"] in ("Storm floods harbour", "Bridge reopens")
    assert pages[STORM_URL]["ts"] == "2026-11-21T02:00:00.500000Z"  # the newest capture
    assert pages[GONE_URL]["ts"] == "2026-11-20T02:00:00.125000Z"


def test_a_wacz_of_revisits_carries_their_originals(archive: Archive) -> None:
    target = archive.root / "photo.wacz"
    export(archive.db, archive.folder, Selection(url_patterns=("*.jpg",), latest=True), target)
    held = independent_check(target)
    records = list(ArchiveIterator(io.BytesIO(held["warc"])))
    kinds = sorted(r.rec_type for r in records)
    assert kinds == ["request", "request", "response", "revisit", "warcinfo", "warcinfo",
                     "warcinfo"]
    response = next(r for r in ArchiveIterator(io.BytesIO(held["warc"]))
                    if r.rec_type == "response")
    assert response.content_stream().read() == PHOTO
    assert [p["url"] for p in held["pages"]] == [PHOTO_URL]


def _rewrite(source: Path, target: Path, *, drop: str | None = None,
             change: str | None = None) -> None:
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w") as zout:
        for info in zin.infolist():
            if info.filename == drop:
                continue
            data = zin.read(info.filename)
            if info.filename == change:
                data = data.replace(b"Mayor", b"Major")
            zout.writestr(info, data)


def test_check_wacz_catches_missing_and_altered_files(archive: Archive) -> None:
    good = archive.root / "good.wacz"
    export(archive.db, archive.folder, Selection(), good)
    no_pages = archive.root / "no-pages.wacz"
    _rewrite(good, no_pages, drop="pages/pages.jsonl")
    assert "missing pages/pages.jsonl" in check_wacz(no_pages)
    no_index = archive.root / "no-index.wacz"
    _rewrite(good, no_index, drop="indexes/index.cdxj")
    assert check_wacz(no_index) == ["no CDXJ index in indexes/"]
    altered = archive.root / "altered.wacz"
    _rewrite(good, altered, change="pages/pages.jsonl")
    assert check_wacz(altered) == ["pages/pages.jsonl: sha256 differs from datapackage.json"]
    not_zip = archive.root / "not.wacz"
    not_zip.write_bytes(b"PK nothing")
    assert "not a ZIP file" in check_wacz(not_zip)[0]


WACZ_PACKAGE = "wacz==0.6.0"  # py-wacz, the reference WACZ tool (its own venv: heavy pins)


def _wacz_tool() -> Path:
    """`wacz` from PyPI in a virtualenv of its own under .cache/ (created once)."""
    import fcntl
    import shutil
    import subprocess

    from pywb_env import DEFAULT_VENV, _base_python

    venv = DEFAULT_VENV.parent / "wacz-venv"
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / ".wacz-venv.lock", "a+b") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        marker = venv / ".ready"
        if not (marker.exists() and marker.read_text() == WACZ_PACKAGE):
            shutil.rmtree(venv, ignore_errors=True)
            for step in ([_base_python(), "-m", "venv", str(venv)],
                         [str(venv / "bin" / "pip"), "install", "-q", WACZ_PACKAGE]):
                done = subprocess.run(step, capture_output=True, text=True, check=False)
                if done.returncode != 0:
                    unavailable("PYWB", f"cannot install {WACZ_PACKAGE}: {done.stderr[-500:]}")
            marker.write_text(WACZ_PACKAGE)
    return venv / "bin" / "wacz"


@pytest.mark.slow
def test_wacz_validate_accepts_the_package(archive: Archive) -> None:
    """The reference validator agrees (not sufficient alone: it misses missing files)."""
    import subprocess

    target = archive.root / "all.wacz"
    export(archive.db, archive.folder, Selection(), target)
    done = subprocess.run([str(_wacz_tool()), "validate", "-f", str(target)],
                          capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Validation succeeded" in done.stdout + done.stderr


def test_large_records_keep_crc_and_sha256_right(tmp_path: Path) -> None:
    """Records larger than the copy's pieces (sha256 in a helper thread, CRC-32 by zlib-ng,
    bytes written past zipfile's member writer): zipfile's own CRC check and sha256 agree."""
    import os

    from test_export import NIGHT1, _insert, exchange

    from linkkeeper.archive.warc import WarcStore
    from linkkeeper.db import connect

    folder = tmp_path / "warcs"
    db = connect(tmp_path / "linkkeeper.db")
    body = os.urandom(5 << 20)
    with WarcStore(folder, clock=lambda: NIGHT1, compress_level=1) as store:
        for i in range(3):
            ex = exchange(f"http://big.test/{i}.bin", body[i:] + body[:i], NIGHT1,
                          response_headers=[("Content-Type", "application/octet-stream")])
            _insert(db, store.write(ex), 1, None)
    # all: the source file is stored whole (recorded digests); two of three: its records are
    # copied into the export's WARC (digests computed while copying)
    some = Selection(url_patterns=("http://big.test/0.bin", "http://big.test/2.bin"))
    for name, selection, captures in (("big.wacz", Selection(), 3), ("some.wacz", some, 2)):
        target = tmp_path / name
        result = export(db, folder, selection, target)
        assert result.captures == captures and result.bytes_written > captures * 5e6
        with zipfile.ZipFile(target) as zf:
            assert zf.testzip() is None  # every member's CRC-32 checked by zipfile itself
            package = json.loads(zf.read("datapackage.json"))
            for resource in package["resources"]:
                data = zf.read(resource["path"])
                assert resource["hash"] == "sha256:" + hashlib.sha256(data).hexdigest()
                assert resource["bytes"] == len(data)
        assert check_wacz(target) == []


def test_wholly_selected_source_files_are_stored_as_they_are(archive: Archive) -> None:
    """Every record of a source file selected: the file itself goes into archive/, byte for
    byte, its sha256 and CRC-32 those recorded when it was written; a file whose digest
    sidecar no longer vouches for it (modification time changed) is copied record by record
    into the export's WARC instead, digested as it is copied. Both packages validate."""
    import os

    sources = sorted(archive.folder.rglob("*.warc.gz"))
    target = archive.root / "all.wacz"
    export(archive.db, archive.folder, Selection(), target)
    held = independent_check(target)
    for path in sources:
        assert held["warcs"]["archive/" + path.name] == path.read_bytes()
    (own,) = (data for name, data in held["warcs"].items() if "linkkeeper-export-" in name)
    assert [r.rec_type for r in ArchiveIterator(io.BytesIO(own))] == ["warcinfo"]

    stat = sources[0].stat()
    os.utime(sources[0], ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    again = archive.root / "again.wacz"
    result = export(archive.db, archive.folder, Selection(), again)
    held = independent_check(again)
    assert "archive/" + sources[0].name not in held["warcs"]
    assert held["warcs"]["archive/" + sources[1].name] == sources[1].read_bytes()
    assert len(held["entries"]) == len(archive.captures) == result.captures
    assert check_wacz(again) == []
