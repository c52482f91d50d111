"""Resources a run needs: a bounded memory for captured bodies, and a disk that fills up.

* Memory (issue 12, item 8): every captured body is read within the run's byte budget
  (check/bodies.py): in memory while the budget allows, else spooled to a temporary file
  and streamed into the WARC. 16 endless bodies at once took `check` to 1.3 GB before;
  the peak RSS of the process is measured here (VmHWM, read at exit).
* A full disk (item 9): a WARC write error pauses archiving (said in the run's archive
  summary, with the file it happened to), the `.open` file stays whole for the next
  repair, and checking goes on; an SQLite database on a full disk is one line naming it.
  A real full disk is a 2 MB tmpfs where the machine lets us mount one (root), else the
  test is skipped; the in-process variants inject ENOSPC and always run.
* Progress after a resume (item 9): the rate counts only this process's URLs.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import hashlib
import io
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import helpers
import pytest
from helpers import read_warc
from test_archive import clean_env, make_site, rows, web_args
from test_warc import Clock, exchange, warcio_check

import linkkeeper.archive.compress as compress_module
import linkkeeper.check.bodies as bodies_module
from linkkeeper.archive.archiver import ArchiveOptions
from linkkeeper.archive.records import read_record
from linkkeeper.archive.warc import WarcStore
from linkkeeper.audit import AuditOptions, run_audit
from linkkeeper.check.bodies import IN_MEMORY_MAX, ByteBudget, read_capture
from linkkeeper.check.options import CheckOptions
from linkkeeper.db import connect
from linkkeeper.exchange import CapturedBody, sha1_b32
from linkkeeper.faultweb import FaultWeb, bodies
from linkkeeper.progress import ProgressReporter
from linkkeeper.site import open_site

PEAK_RSS_MB = 150  # before the budget: 1,292 MB (one host) and 1,454 MB (four hosts)

def run_cli(*args: object, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "linkkeeper", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=clean_env())


# ---------------------------------------------------------------------------------------------
# The capture reader and its budget


class Content:
    """What read_capture reads: aiohttp's StreamReader, as far as it is used."""

    def __init__(self, data: bytes, piece: int = 1 << 16) -> None:
        self.data, self.pos, self.piece = data, 0, piece

    async def read(self, n: int) -> bytes:
        part = self.data[self.pos : self.pos + min(n, self.piece)]
        self.pos += len(part)
        return part

    def at_eof(self) -> bool:
        return self.pos >= len(self.data)


def capture(data: bytes, budget: ByteBudget, folder: Path, limit: int = 50 << 20
            ) -> tuple[CapturedBody, bool]:
    return asyncio.run(read_capture(Content(data), limit, budget, folder))  # type: ignore[arg-type]


def test_a_short_body_stays_in_memory_held_against_the_budget(tmp_path: Path) -> None:
    budget, data = ByteBudget(1 << 20), os.urandom(300_000)
    body, complete = capture(data, budget, tmp_path)
    assert complete and not body.spooled and body == data and len(body) == len(data)
    assert body.payload_digest == sha1_b32(data)
    assert budget.held == len(data)
    body.release()
    body.release()  # idempotent
    assert budget.held == 0


def test_a_long_body_spills_to_an_unnamed_file_and_holds_no_budget(tmp_path: Path) -> None:
    budget, data = ByteBudget(256 << 20), os.urandom(3 * IN_MEMORY_MAX + 12345)
    body, complete = capture(data, budget, tmp_path)
    assert complete and body.spooled and body == data
    assert body.payload_digest == sha1_b32(data)
    assert body.read(IN_MEMORY_MAX - 5, 10) == data[IN_MEMORY_MAX - 5 : IN_MEMORY_MAX + 5]
    assert budget.held == 0 and budget.peak <= IN_MEMORY_MAX
    assert not list(tmp_path.iterdir())  # nothing a crash could leave behind
    cut, complete = capture(data, budget, tmp_path, limit=2 * IN_MEMORY_MAX)
    assert not complete and cut == data[: 2 * IN_MEMORY_MAX]
    body.release()
    with pytest.raises(ValueError):
        body.read(0, 1)


def test_bodies_past_the_budget_spill_and_collected_bodies_give_it_back(tmp_path: Path) -> None:
    budget = ByteBudget(150_000)
    first, _ = capture(b"a" * 100_000, budget, tmp_path)
    second, _ = capture(b"b" * 100_000, budget, tmp_path)
    assert not first.spooled and second.spooled and second == b"b" * 100_000
    assert budget.held == 100_000
    del first
    gc.collect()
    assert budget.held == 0
    nothing, _ = capture(b"c" * 10, ByteBudget(0), tmp_path)  # --memory-budget 0: all spooled
    assert nothing.spooled and nothing == b"c" * 10


def test_a_full_spool_disk_cuts_the_body_where_the_disk_did(tmp_path: Path, monkeypatch) -> None:
    room = {"bytes": 1_500_000}
    real_write = os.write

    def write_until_full(fd: int, data: bytes) -> int:
        if room["bytes"] <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        written = real_write(fd, bytes(data[: room["bytes"]]))
        room["bytes"] -= written
        return written

    monkeypatch.setattr(bodies_module.os, "write", write_until_full)
    data = os.urandom(4 * IN_MEMORY_MAX)
    body, complete = capture(data, ByteBudget(1 << 30), tmp_path)
    assert not complete  # marked truncated, the transfer stopped
    assert len(body) == 1_500_000 and body == data[:1_500_000]
    assert body.payload_digest == sha1_b32(data[:1_500_000])


# ---------------------------------------------------------------------------------------------
# The WARC writer streams a spooled body: the same record, never whole in memory


def spooled(data: bytes) -> CapturedBody:
    file = tempfile.TemporaryFile()  # noqa: SIM115 - the body closes it
    file.write(data)
    file.flush()
    return CapturedBody(file=file, size=len(data), digest=sha1_b32(data))


@pytest.mark.parametrize("kind", ["random", "html"])
def test_a_spooled_body_is_stored_exactly_as_one_in_memory(tmp_path: Path, kind: str) -> None:
    data = (os.urandom(3 << 20) if kind == "random"
            else b"<p>" + b"Residents protest the flood. " * 120_000 + b"</p>")
    headers = [("Content-Type", "text/html"), ("Content-Length", str(len(data)))]
    stored = {}
    for name, body in (("bytes", data), ("spooled", spooled(data))):
        folder = tmp_path / name
        with WarcStore(folder, clock=Clock()) as store:
            written = store.write(exchange(body=body, response_headers=headers))
        (path,) = folder.rglob("*.warc.gz")
        warcio_check(path)
        response = read_warc(path)[1]
        assert response["payload"] == data
        again = read_record(folder, written.warc_file, written.offset, written.length)
        assert again.payload == data
        stored[name] = response
    for field in ("WARC-Payload-Digest", "WARC-Block-Digest", "Content-Length"):
        assert stored["bytes"]["headers"].get_header(field) == (
            stored["spooled"]["headers"].get_header(field))
    assert stored["bytes"]["http"].headers == stored["spooled"]["http"].headers


def test_a_disk_full_in_a_streamed_record_is_cut_back_and_names_the_file(
    tmp_path: Path, monkeypatch
) -> None:
    real_emit = compress_module.GzipMemberSink._emit
    room: dict[str, int | None] = {"bytes": None}

    def emit_until_full(sink: object, data: bytes) -> None:
        left = room["bytes"]
        if left is not None:
            if len(data) > left:
                real_emit(sink, data[:left])
                room["bytes"] = 0
                raise OSError(errno.ENOSPC, "No space left on device")
            room["bytes"] = left - len(data)
        real_emit(sink, data)

    monkeypatch.setattr(compress_module.GzipMemberSink, "_emit", emit_until_full)
    data = os.urandom(2 << 20)
    with WarcStore(tmp_path, clock=Clock()) as store:
        first = store.write(exchange("http://news.test/1"))
        room["bytes"] = 1 << 20  # half of the streamed body fits
        with pytest.raises(OSError) as failure:
            store.write(exchange("http://news.test/2", body=spooled(data)))
        assert failure.value.filename.endswith(".warc.gz.open")
        assert failure.value.strerror == "No space left on device"
        room["bytes"] = None
        store.write(exchange("http://news.test/3", body=spooled(data)))
    (path,) = tmp_path.rglob("*.warc.gz")
    warcio_check(path)
    urls = [r["uri"] for r in read_warc(path)[1:]]
    assert urls == ["http://news.test/1"] * 2 + ["http://news.test/3"] * 2
    again = read_record(tmp_path, first.warc_file, first.offset, first.length)
    assert again.payload == exchange().body


# ---------------------------------------------------------------------------------------------
# Peak memory of `check` against endless bodies


ONE_HOST = ["news.example"]
FOUR_HOSTS = ["news.example", "cdn.example", "blog.example", "images.example"]


def endless_check(web: FaultWeb, root: Path, hosts: list[str], cap: str) -> tuple[str, float]:
    """`check` (archiving on) of 16 endless bodies fetched at once; its peak RSS in MB."""
    urls = [f"https://{hosts[i % len(hosts)]}/endless/story-{i}" for i in range(16)]
    site = make_site(root, [{"source": urls[0], "related": urls[1:]}])
    done, peak = helpers.run_measured("check", site, *web_args(web), "--attempts", "1",
                              "--host-concurrency", "16", "--max-capture-size", cap,
                              "--fail-on", "never")
    assert done.returncode == 0, done.stderr
    line = f"16 endless bodies over {len(hosts)} host(s), {cap} each: peak RSS {peak:.0f} MB"
    snaps = rows(site / "linkkeeper.db", "SELECT * FROM snapshots WHERE url LIKE '%endless%'")
    assert len(snaps) == 16 and all(s["truncated"] for s in snaps), line
    first = snaps[0]
    host, path = first["url"].split("/", 3)[2], "/" + first["url"].split("/", 3)[3]
    payload = read_record(site / "warcs", first["warc_file"], first["offset"],
                          first["length"]).payload
    assert payload == b"".join(bodies.iter_large(host, path, first["payload_length"]))  # exact
    return line, peak


@pytest.mark.parametrize("hosts", [ONE_HOST, FOUR_HOSTS], ids=["one-host", "four-hosts"])
def test_endless_bodies_at_once_stay_within_the_memory_budget(
    faultweb: FaultWeb, tmp_path: Path, hosts: list[str]
) -> None:
    line, peak = endless_check(faultweb, tmp_path / "site", hosts, "16MiB")
    print(line)
    assert peak <= PEAK_RSS_MB, line


@pytest.mark.slow
@pytest.mark.parametrize("hosts", [ONE_HOST, FOUR_HOSTS], ids=["one-host", "four-hosts"])
def test_endless_bodies_at_the_default_capture_size(
    faultweb: FaultWeb, tmp_path: Path, hosts: list[str]
) -> None:
    """The report's numbers: 50 MiB each (the default cap), 16 at once."""
    line, peak = endless_check(faultweb, tmp_path / "site", hosts, "50MiB")
    print(line)
    assert peak <= PEAK_RSS_MB, line


def test_memory_budget_default_is_the_library_default() -> None:
    from linkkeeper.cli import cli
    from linkkeeper.cli.app import parse_size

    for command in ("check", "snapshot"):
        defaults = {p.name: p.default for p in cli.commands[command].params}
        assert parse_size(defaults["memory_budget"]) == CheckOptions().memory_budget == 256 << 20


# ---------------------------------------------------------------------------------------------
# A full WARC disk: archiving pauses, checking goes on


URLS = [f"https://news.example/large/300000/story-{i}" for i in range(10)] + [
    "https://news.example/status/404/gone",
    "https://cdn.example/ok/fine",
]


def fault_check_options(web: FaultWeb) -> CheckOptions:
    return CheckOptions(connect_to=web.connect_to_args(wildcard=False), offline_dns=True,
                        ca_bundle=web.ca_pem, attempts=1, soft404=False)


def test_a_full_warc_disk_pauses_archiving_and_checking_goes_on(
    faultweb: FaultWeb, tmp_path: Path, monkeypatch
) -> None:
    real_emit = compress_module.GzipMemberSink._emit
    room = {"bytes": 1_000_000}  # three captures of 300 kB fit, the fourth does not

    def emit_until_full(sink: object, data: bytes) -> None:
        if len(data) > room["bytes"]:
            real_emit(sink, data[: room["bytes"]])
            room["bytes"] = 0
            raise OSError(errno.ENOSPC, "No space left on device")
        room["bytes"] -= len(data)
        real_emit(sink, data)

    monkeypatch.setattr(compress_module.GzipMemberSink, "_emit", emit_until_full)
    site = make_site(tmp_path / "site", [{"source": URLS[0], "related": URLS[1:]}])
    db, warcs = connect(site / "linkkeeper.db"), tmp_path / "warcs"
    result = run_audit(db, open_site([site], None), fault_check_options(faultweb),
                       AuditOptions(archive=ArchiveOptions(folder=warcs)))
    assert result.checked == len(URLS) + 1  # every link checked (the inline one too)
    statuses = dict(db.execute("SELECT url, status FROM checks").fetchall())
    assert statuses[URLS[-2]] == "broken" and statuses[URLS[0]] == "ok"
    assert result.archive is not None
    paused = result.archive.paused
    (left_open,) = warcs.rglob("*.warc.gz.open")  # left whole for the next repair
    assert paused == (f"archiving paused at {result.archive.captures} captures: "
                      f"{left_open}: No space left on device")
    assert 3 <= result.archive.captures < len(URLS) - 1  # the rest was not written
    monkeypatch.setattr(compress_module.GzipMemberSink, "_emit", real_emit)
    with WarcStore(warcs) as store:  # the next run's repair
        assert [m.startswith("repaired ") for m in store.repair_messages] == [True]
    (closed,) = warcs.rglob("*.warc.gz")
    warcio_check(closed)
    for snap in rows(site / "linkkeeper.db"):
        record = read_record(warcs, snap["warc_file"], snap["offset"], snap["length"])
        assert len(record.payload) == snap["payload_length"]  # every row: a whole record


@contextlib.contextmanager
def tiny_disk(where: Path, size: str) -> Iterator[Path]:
    """A real small file system (tmpfs): root only; skipped elsewhere."""
    where.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_real_full_disk_under_the_warcs(faultweb: FaultWeb, tmp_path: Path) -> None:
    site = make_site(tmp_path / "site", [{"source": URLS[0], "related": URLS[1:]}])
    with tiny_disk(tmp_path / "disk", "2m") as disk:
        res = run_cli("check", site, *web_args(faultweb), "--attempts", "1",
                      "--warc-dir", disk / "warcs")
        assert res.returncode == 2, res.stderr  # the 404: checking went to the end
        db = site / "linkkeeper.db"
        assert len(rows(db, "SELECT * FROM checks")) == len(URLS) + 1
        paused = [line.strip() for line in res.stdout.splitlines() if "paused" in line]
        (left_open,) = (disk / "warcs").rglob("*.warc.gz.open")
        assert len(paused) == 1 and paused[0].startswith("archiving paused at ")
        assert paused[0].endswith(f"{left_open}: No space left on device")
        subprocess.run(["mount", "-o", "remount,size=8m", str(disk)], check=True)
        again = run_cli("check", site, *web_args(faultweb), "--attempts", "1",
                        "--warc-dir", disk / "warcs")
        assert again.returncode == 0, again.stderr
        assert "paused" not in again.stdout and "repaired" in again.stderr
        assert not list((disk / "warcs").rglob("*.open"))
        warcio_check(*(disk / "warcs").rglob("*.warc.gz"))


def test_a_file_size_limit_pauses_archiving_too(faultweb: FaultWeb, tmp_path: Path) -> None:
    """Without root: RLIMIT_FSIZE makes the WARC write fail with EFBIG (Python ignores
    SIGXFSZ), the same path as a full disk; the small database stays under the limit."""
    import resource

    site = make_site(tmp_path / "site", [{"source": URLS[0], "related": URLS[1:]}])

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (1_500_000, 1_500_000))

    res = subprocess.run([sys.executable, "-m", "linkkeeper", "check", str(site),
                          *web_args(faultweb), "--attempts", "1"], capture_output=True,
                         text=True, timeout=300, env=clean_env(), preexec_fn=limit)
    assert res.returncode == 2, res.stderr
    assert len(rows(site / "linkkeeper.db", "SELECT * FROM checks")) == len(URLS) + 1
    (left_open,) = (site / "warcs").rglob("*.warc.gz.open")
    (paused,) = [line.strip() for line in res.stdout.splitlines() if "paused" in line]
    assert paused.startswith("archiving paused at ") and paused.endswith(
        f"{left_open}: File too large")
    with WarcStore(site / "warcs") as store:
        assert len(store.repair_messages) == 1
    warcio_check(*(site / "warcs").rglob("*.warc.gz"))


def test_a_database_on_a_full_disk_is_one_line_naming_it(
    faultweb: FaultWeb, tmp_path: Path
) -> None:
    site = make_site(tmp_path / "site", [{"source": URLS[0], "related": URLS[1:]}])
    with tiny_disk(tmp_path / "disk", "1m") as disk:
        db = disk / "linkkeeper.db"
        assert run_cli("scan", site, "--db", db).returncode == 0
        fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, bytes(1 << 16))
        os.close(fd)
        res = run_cli("check", site, "--db", db, *web_args(faultweb), "--no-snapshot")
    assert res.returncode == 1
    (line,) = res.stderr.strip().splitlines()[-1:]
    assert line.startswith(f"error: {db}: ") and "Traceback" not in res.stderr, res.stderr


# ---------------------------------------------------------------------------------------------
# Progress after a resume


def test_the_rate_counts_only_urls_finished_in_this_process() -> None:
    now = {"t": 1000.0}
    out = io.StringIO()
    progress = ProgressReporter(stream=out, interval=0, clock=lambda: now["t"])
    progress.update(456, 1000, {"ok": 456})  # the start of a resumed run: 456 done before
    now["t"] += 10
    progress.update(476, 1000, {"ok": 476})
    assert "[476/1000] 2 URLs/s, eta 4m22s" in out.getvalue()


def test_the_first_progress_call_is_the_start_of_the_run(faultweb: FaultWeb, tmp_path: Path
                                                         ) -> None:
    site = make_site(tmp_path / "site", [{"source": URLS[0], "related": URLS[-2:]}])
    calls: list[int] = []
    run_audit(connect(site / "linkkeeper.db"), open_site([site], None),
              fault_check_options(faultweb), AuditOptions(),
              on_progress=lambda done, total, counts: calls.append(done))
    assert calls[0] == 0 and calls[-1] == 4


def test_spooled_reads_are_positioned() -> None:
    """Positioned reads: interleaved readers never disturb each other."""
    data = os.urandom(1 << 20)
    body = spooled(data)
    chunks = body.chunks(4096)
    first = next(chunks)
    assert body.read(100, 10) == data[100:110]
    assert hashlib.sha1(first + b"".join(chunks)).digest() == hashlib.sha1(data).digest()
