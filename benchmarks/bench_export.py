"""Export benchmark: `linkkeeper export` of ~1 GB of captures against a raw copy of the same bytes.

Generates ~1 GB of captures with WarcStore (mostly incompressible bodies, so the WARC files
really weigh 1 GB; 256 MB file rotation; one capture in ten a revisit of an earlier one, the
way a second night looks) plus the matching `snapshots` rows, then measures, each as a fresh
process (wall, CPU, peak RSS via benchmarks/measure.py):

* ``cp`` of the WARC files: the floor for moving these bytes on this disk;
* a raw copy of exactly the records the export copies (response + request gzip members, by
  offset and length, in 1 MiB read/write pieces), with no checks: the baseline; the same
  with ``copy_file_range`` (in the kernel) and the same followed by an fsync, for reference;
* ``linkkeeper export -o all.warc.gz`` and ``-o all.wacz`` of every capture;
* a partial selection (``--url 'http://news1*'``, about half the captures: no source file
  is taken whole) as ``.wacz``, against a raw copy of the same records.

Throughput is the output size divided by wall time. Every run is repeated ``--rounds`` times
(default 3), every other round in reverse order; the table has medians. All data (captures,
database, outputs) lives in a temporary folder under benchmarks/out/ and is deleted at the end.

    .venv/bin/python benchmarks/bench_export.py                 # print the table
    .venv/bin/python benchmarks/bench_export.py --write-md      # also update BENCHMARKS.md
    .venv/bin/python benchmarks/bench_export.py --size-mb 200   # a quicker, smaller run
    .venv/bin/python benchmarks/bench_export.py --cpus 1        # every run pinned to CPU 1
    # before/after in one run: the older code exported into a folder (git archive)
    git archive 3e8def9 linkkeeper | tar -x -C /tmp/before && echo 3e8def9 > /tmp/before/COMMIT
    .venv/bin/python benchmarks/bench_export.py --before /tmp/before
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from harness import REPO, provenance, update_section
from measure import OUT_DIR, markdown_table, measure, record

COLUMNS = (
    ("label", "run"),
    ("out_mb", "output MB"),
    ("wall_s", "wall s"),
    ("mb_per_s", "MB/s"),
    ("vs_raw", "vs raw copy"),
    ("cpu_s", "CPU s"),
    ("peak_rss_mb", "peak RSS MB"),
)
BODY_SIZES = (64_000, 250_000, 1_000_000, 3_000_000)  # bytes; cycled
START = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)

RAW_COPY = textwrap.dedent(
    """
    import sqlite3, sys
    db, folder, out = sys.argv[1:4]
    like = next((a[5:] for a in sys.argv[4:] if a.startswith("like=")), "%")
    rows = sqlite3.connect(db).execute(
        "SELECT warc_file, offset, length, request_offset, request_length FROM snapshots"
        " WHERE url LIKE ? ORDER BY warc_file, offset", [like]).fetchall()
    handles = {}
    with open(out, "wb") as sink:
        for name, offset, length, req_offset, req_length in rows:
            source = handles.get(name) or handles.setdefault(name, open(f"{folder}/{name}", "rb"))
            for start, size in ((offset, length), (req_offset, req_length)):
                source.seek(start)
                while size > 0:
                    chunk = source.read(min(size, 1 << 20))
                    sink.write(chunk)
                    size -= len(chunk)
        if "fsync" in sys.argv[4:]:  # as durable as an export (which fsyncs before renaming)
            sink.flush()
            __import__("os").fsync(sink.fileno())
    """
)
# The same records copied in the kernel (copy_file_range): the floor for these bytes, shown
# for information; the aim's baseline stays the read/write copy above.
KERNEL_COPY = textwrap.dedent(
    """
    import os, sqlite3, sys
    db, folder, out = sys.argv[1:4]
    rows = sqlite3.connect(db).execute(
        "SELECT warc_file, offset, length, request_offset, request_length FROM snapshots"
        " ORDER BY warc_file, offset").fetchall()
    handles = {}
    with open(out, "wb", buffering=0) as sink:
        for name, offset, length, req_offset, req_length in rows:
            source = handles.get(name) or handles.setdefault(name, open(f"{folder}/{name}", "rb"))
            for start, size in ((offset, length), (req_offset, req_length)):
                while size > 0:
                    done = os.copy_file_range(source.fileno(), sink.fileno(), size, start)
                    start += done
                    size -= done
    """
)


def generate(root: Path, size_mb: int) -> tuple[Path, Path, int]:
    """WARC folder and database holding ~size_mb of captures; returns (db, folder, captures)."""
    sys.path.insert(0, str(REPO))
    from linkkeeper.archive.snapshots import PriorCapture
    from linkkeeper.archive.warc import WarcStore
    from linkkeeper.db import connect
    from linkkeeper.exchange import Exchange

    folder, db_path = root / "warcs", root / "linkkeeper.db"
    db = connect(db_path)
    random_pool = os.urandom(8 << 20)
    written = captures = 0
    clock = [START]
    firsts: list[tuple[Any, int, int]] = []  # (capture, start, size) of revisitable originals
    with WarcStore(
        folder, max_file_size=256 * 10**6, compress_level=1, clock=lambda: clock[0]
    ) as store:
        rows = []
        while written < size_mb * 10**6:
            i = captures
            clock[0] = START + timedelta(seconds=i)
            size = BODY_SIZES[i % len(BODY_SIZES)]
            start = (i * 7919) % (len(random_pool) - size)
            body = random_pool[start : start + size]
            prior = None
            if i % 10 == 9 and firsts:  # a revisit of an earlier capture: unchanged content
                first, start, size = firsts[(i // 10) % len(firsts)]
                body = random_pool[start : start + size]
                prior = PriorCapture(first.url, first.date, first.payload_digest, first.record_id)
                url = first.url
            else:
                url = f"http://news{i % 20}.example/2026/{i:06d}.jpg"
            exchange = Exchange(
                url=url,
                method="GET",
                request_headers=[("Host", url.split("/")[2]), ("User-Agent", "bench")],
                status=200,
                reason="OK",
                response_headers=[
                    ("Content-Type", "image/jpeg"),
                    ("Content-Length", str(len(body))),
                ],
                body=body,
                started=clock[0],
                ip="127.0.0.1",
            )
            capture = store.write(exchange, prior=prior)
            rows.append(capture)
            if prior is None and len(firsts) < 50:
                firsts.append((capture, start, size))
            written += capture.bytes_written
            captures += 1
    ids: dict[str, int] = {}
    with db.conn:
        for capture in rows:
            revisit_of = ids.get(capture.refers_to.record_id) if capture.refers_to else None
            cursor = db.conn.execute(
                "INSERT INTO snapshots (url, run_id, warc_file, offset, length, record_type,"
                " record_id, payload_digest, date, http_status, content_type, payload_length,"
                " truncated, revisit_of, request_offset, request_length, bytes_written)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    capture.url,
                    1,
                    capture.warc_file,
                    capture.offset,
                    capture.length,
                    capture.record_type,
                    capture.record_id,
                    capture.payload_digest,
                    capture.date.isoformat(),
                    capture.http_status,
                    capture.content_type,
                    capture.payload_length,
                    0,
                    revisit_of,
                    capture.request_offset,
                    capture.request_length,
                    capture.bytes_written,
                ),
            )
            ids[capture.record_id] = cursor.lastrowid
    return db_path, folder, captures


def _row(result: dict[str, Any], out: Path, raw_wall: float | None) -> dict[str, Any]:
    size = (
        out.stat().st_size
        if out.is_file()
        else sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    )
    result["out_mb"] = round(size / 1e6, 1)
    result["mb_per_s"] = round(size / 1e6 / result["wall_s"], 1)
    if raw_wall:
        result["vs_raw"] = f"{raw_wall / result['wall_s']:.2f}"
    return result


def _run_once(label: str, command: list[str], output: Path | None, args: argparse.Namespace,
              captures: int, source_mb: float) -> dict[str, Any]:
    """One measured run (its output measured, then deleted)."""
    env, cwd = None, REPO
    if "code before" in label:  # the older package first on the path (`-m` puts
        # the working folder first: run from the older checkout, all paths absolute)
        cwd = args.before.resolve()
        env = dict(os.environ, PYTHONPATH=str(cwd))
    result = measure(command, label=label, cwd=cwd, timeout=600, env=env, cpus=args.cpus)
    if result["exit_code"] != 0:
        raise SystemExit(f"{label} failed: {result['stderr_tail']}")
    record(result, benchmark="export", captures=captures, source_mb=round(source_mb, 1))
    if output is not None:
        result = _row(result, output, None)
        if output.is_dir():
            shutil.rmtree(output)
        else:
            output.unlink()
    return result


RAW = "raw copy of the records"
PART_PATTERN = "http://news1*"  # news1 and news10-19: 11 of the 20 hosts
PART_RAW = f"raw copy of the records of `{PART_PATTERN}` (about half)"
PART_EXPORT = f"export .wacz `--url '{PART_PATTERN}'`"


def _baseline(label: str) -> str | None:
    """The raw copy a run is compared with (the same records), if it is compared."""
    if label.startswith(PART_EXPORT):
        return PART_RAW
    if label.startswith(("export", RAW + ",", RAW + " in")):
        return RAW
    return None


def _medians(rounds: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One row per run: median wall and CPU, highest peak RSS, ratio to its raw copy."""
    rows = []
    for label, results in rounds.items():
        row = dict(results[0])
        row["wall_s"] = round(statistics.median(r["wall_s"] for r in results), 2)
        row["cpu_s"] = round(statistics.median(r["cpu_s"] for r in results), 2)
        row["peak_rss_mb"] = max(r["peak_rss_mb"] for r in results)
        if "out_mb" in row:
            row["mb_per_s"] = round(row["out_mb"] / row["wall_s"])
        baseline = _baseline(label)
        if baseline:
            raw_wall = statistics.median(r["wall_s"] for r in rounds[baseline])
            row["vs_raw"] = f"{raw_wall / row['wall_s']:.2f}"
        rows.append(row)
    return rows


def _per_round(rounds: dict[str, list[dict[str, Any]]]) -> str:
    parts = []
    for label, results in rounds.items():
        baseline = _baseline(label)
        if label.startswith("export") and baseline:
            ratios = [raw["wall_s"] / r["wall_s"] for raw, r in zip(rounds[baseline], results,
                                                                    strict=True)]
            parts.append(f"{label} " + ", ".join(f"{x:.2f}" for x in ratios))
    return "; ".join(parts)


def _commit_of(folder: Path) -> str:
    """The commit a --before folder was exported from (its COMMIT file), else its name."""
    stamp = folder / "COMMIT"
    return stamp.read_text().strip() if stamp.exists() else folder.name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--size-mb", type=int, default=1000, help="captures to generate (MB)")
    parser.add_argument("--write-md", action="store_true", help="update BENCHMARKS.md")
    parser.add_argument(
        "--before",
        type=Path,
        help="a checkout of older code (its folder): also export .wacz with it, in the same run",
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every run (medians)")
    parser.add_argument("--cpus", help="pin every run with taskset -c (e.g. 1)")
    parser.add_argument("--generate-into", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.generate_into:  # the child that writes the data (keeps the parent's RSS small)
        print(generate(args.generate_into, args.size_mb)[2])
        return 0
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    python = str(REPO / ".venv" / "bin" / "python")
    root = Path(tempfile.mkdtemp(prefix="bench-export-", dir=OUT_DIR))
    try:
        started = time.monotonic()
        # generated in a child: measure()'s peak RSS of a forked child starts from ours
        child = subprocess.run(
            [python, __file__, "--size-mb", str(args.size_mb), "--generate-into", str(root)],
            capture_output=True,
            text=True,
            check=True,
        )
        captures = int(child.stdout)
        db, folder = root / "linkkeeper.db", root / "warcs"
        source_mb = sum(p.stat().st_size for p in folder.rglob("*.warc.gz")) / 1e6
        print(
            f"generated {captures} captures, {source_mb:.0f} MB of WARC in "
            f"{time.monotonic() - started:.0f}s",
            file=sys.stderr,
        )
        runs: list[tuple[str, list[str], Path | None]] = [
            (
                "linkkeeper start-up only (`export --help`)",
                [python, "-m", "linkkeeper", "export", "--help"],
                None,
            ),
            ("cp of the WARC files", ["cp", "-r", str(folder), str(root / "copy")], root / "copy"),
            (
                "raw copy of the records",
                [python, "-c", RAW_COPY, str(db), str(folder), str(root / "raw.warc.gz")],
                root / "raw.warc.gz",
            ),
            (
                "raw copy of the records in the kernel (copy_file_range)",
                [python, "-c", KERNEL_COPY, str(db), str(folder), str(root / "rawk.warc.gz")],
                root / "rawk.warc.gz",
            ),
            (
                "raw copy of the records, then fsync",
                [python, "-c", RAW_COPY, str(db), str(folder), str(root / "rawf.warc.gz"),
                 "fsync"],
                root / "rawf.warc.gz",
            ),
            (
                "export .warc.gz",
                [
                    python,
                    "-m",
                    "linkkeeper",
                    "export",
                    "--db",
                    str(db),
                    "--warc-dir",
                    str(folder),
                    "-o",
                    str(root / "all.warc.gz"),
                    "--quiet",
                ],
                root / "all.warc.gz",
            ),
            (
                "export .wacz",
                [
                    python,
                    "-m",
                    "linkkeeper",
                    "export",
                    "--db",
                    str(db),
                    "--warc-dir",
                    str(folder),
                    "-o",
                    str(root / "all.wacz"),
                    "--quiet",
                ],
                root / "all.wacz",
            ),
        ]
        if args.before:
            label = f"export .wacz, code before ({_commit_of(args.before)})"
            runs.append((label, [*runs[-1][1][:-2], str(root / "before.wacz"), "--quiet"],
                         root / "before.wacz"))
        # a partial selection: no source file is taken whole, so the package's WARC is
        # assembled record by record and its sha256 and CRC-32 computed as it is written
        runs += [
            (
                PART_RAW,
                [python, "-c", RAW_COPY, str(db), str(folder), str(root / "part.warc.gz"),
                 f"like={PART_PATTERN.replace('*', '%')}"],
                root / "part.warc.gz",
            ),
            (
                PART_EXPORT,
                [*runs[5][1][:-3], "--url", PART_PATTERN, "-o", str(root / "part.wacz"),
                 "--quiet"],
                root / "part.wacz",
            ),
        ]
        if args.before:
            runs.append((f"{PART_EXPORT}, code before ({_commit_of(args.before)})",
                         [*runs[-1][1][:-2], str(root / "part-before.wacz"), "--quiet"],
                         root / "part-before.wacz"))
        rounds: dict[str, list[dict[str, Any]]] = {label: [] for label, _, _ in runs}
        for number in range(args.rounds):  # alternating: every other round in reverse order
            for label, command, output in runs if number % 2 == 0 else runs[::-1]:
                rounds[label].append(_run_once(label, command, output, args, captures,
                                               source_mb))
        results = _medians(rounds)
        table = markdown_table(results, COLUMNS)
        command_line = (
            "python benchmarks/bench_export.py"
            + (f" --size-mb {args.size_mb}" if args.size_mb != 1000 else "")
            + (f" --rounds {args.rounds}" if args.rounds != 3 else "")
            + (f" --cpus {args.cpus}" if args.cpus else "")
            + (f" --before {args.before}" if args.before else "")
            + (" --write-md" if args.write_md else "")
        )
        note = (
            f"{captures} captures ({captures // 10} of them revisits), {source_mb:,.0f} MB "
            "of WARC in files rotated at 256 MB, bodies of 64 kB to 3 MB of random bytes; "
            "files in the page cache (just written), so this measures CPU and memory "
            f"bandwidth more than the disk. Medians of {args.rounds} rounds, the runs "
            "alternating (every other round in reverse order)"
            + (f", each pinned to CPU {args.cpus}" if args.cpus else "")
            + "; vs raw copy: the raw copy's median wall over the run's. Per round (raw copy "
            "wall / export wall): " + _per_round(rounds) + ".\n" + provenance(command_line)
        )
        print(table)
        print(note)
        if args.write_md:
            update_section("export", table + "\n\n" + note)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
