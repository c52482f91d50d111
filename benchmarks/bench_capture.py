"""Capture throughput: `linkkeeper snapshot` beside a raw aiohttp GET + warcio write loop.

Both fetch the same pages from the fault-injection web running as a process
(``python -m linkkeeper.faultweb``, plain HTTP on loopback, no added latency, so the
machinery is measured, not the network) and write WARC files; both run as child
processes, measured by ``measure.py`` (wall, CPU, peak RSS). The baseline is the least a
capture must do: GET without decompression, read the body, write a response and a
request record (built and serialised by warcio, WARC/1.1, one gzip member per record,
every record deflated at level 6) in the same thread, with the same concurrency (8 per
host, 32 in all). A second raw loop does the same but gzips a record whose body does not
shrink at level 0 (zlib's stored blocks), as linkkeeper does. linkkeeper does
more: politeness scheduling, per-URL planning and history, a writer thread, SQLite rows,
a CDXJ index per file and for the folder. Rounds alternate the order; medians are reported.

Each page count is a separate pair of runs (default 1, 500 and 3,000 pages): 1 page shows
the fixed cost of a run (interpreter, imports, session, database, file open/close/index),
500 pages is the earlier headline (start-up weighs on it), 3,000 pages (~210 MB) is
closer to steady-state throughput. A `linkkeeper --help` row shows the bare CLI start-up.
Bytecode is compiled first (``compileall``), as an installed package has it: with
``PYTHONDONTWRITEBYTECODE`` set, an edited checkout would otherwise recompile its changed
modules in every run.

    .venv/bin/python benchmarks/bench_capture.py            # writes BENCHMARKS.md "Capture"
    .venv/bin/python benchmarks/bench_capture.py --rounds 1 --pages 500 --no-write
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench_check import PYTHON, REPO, FaultWebProcess, free_port
from harness import provenance, update_section
from measure import OUT_DIR, measure, record

HOSTS = ("news.example", "cdn.example", "images.example", "blog.example")


def page_paths(count: int) -> list[tuple[str, str]]:
    """`count` (host, path) pairs, 3:3:2:2 of gzip'd articles (~0.8 kB), 200 kB documents,
    small images and 50 kB pages (the documents: random bytes, served as
    application/octet-stream). 500 gives the same list the earlier ``--scale 5`` did."""
    gzip_n, large_n, image_n, blog_n = (count * 3 // 10, count * 3 // 10, count // 5, count // 5)
    gzip_n += count - (gzip_n + large_n + image_n + blog_n)
    pages = []
    pages += [("news.example", f"/gzip/2026/story-{i}") for i in range(gzip_n)]
    pages += [("cdn.example", f"/large/200000/dossier-{i}") for i in range(large_n)]
    pages += [("images.example", f"/img/photo-{i}.jpg") for i in range(image_n)]
    pages += [("blog.example", f"/large/50000/post-{i}") for i in range(blog_n)]
    return pages


# ---------------------------------------------------------------------------------------------
# The baseline, run as a child process: python bench_capture.py --raw PORT URLS_FILE OUT_DIR


async def raw_capture(
    port: int, pages: list[tuple[str, str]], out: Path, *, stored: bool = False
) -> dict[str, Any]:
    """The baseline loop: warcio builds and serialises every record, each is deflated as
    one gzip member at level 6. `stored`: a response whose body does not shrink (judged by
    linkkeeper's ``incompressible``) is gzipped at level 0 instead (zlib's stored blocks),
    as linkkeeper writes it, so the comparison with linkkeeper measures its machinery alone."""
    import aiohttp
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    if stored:
        from linkkeeper.archive.compress import incompressible

    out.mkdir(parents=True, exist_ok=True)
    handle = open(out / "raw.warc.gz", "wb")  # noqa: SIM115 - closed below
    total = 0
    per_host = {host: asyncio.Semaphore(8) for host in HOSTS}

    def write_member(record: Any, body: bytes | None = None) -> None:
        buffer = io.BytesIO()
        WARCWriter(buffer, gzip=False, warc_version="WARC/1.1").write_record(record)
        data = buffer.getvalue()
        level = 6
        if stored and body is not None and incompressible(record.http_headers.headers, body):
            level = 0
        compressor = zlib.compressobj(level, zlib.DEFLATED, zlib.MAX_WBITS + 16)
        handle.write(compressor.compress(data) + compressor.flush())

    writer = WARCWriter(io.BytesIO(), gzip=False, warc_version="WARC/1.1")
    connector = aiohttp.TCPConnector(limit=32, limit_per_host=32)
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as session:

        async def one(host: str, path: str) -> None:
            nonlocal total
            url = f"http://{host}{path}"
            async with (
                per_host[host],
                session.get(f"http://127.0.0.1:{port}{path}", headers={"Host": host}) as response,
            ):
                body = await response.read()
                headers = [
                    (k.decode("utf-8", "surrogateescape"), v.decode("utf-8", "surrogateescape"))
                    for k, v in response.raw_headers
                ]
            http = StatusAndHeaders(
                f"{response.status} {response.reason}", headers, protocol="HTTP/1.1"
            )
            record = writer.create_warc_record(
                url, "response", payload=io.BytesIO(body), length=len(body), http_headers=http
            )
            request = writer.create_warc_record(
                url,
                "request",
                payload=io.BytesIO(b""),
                length=0,
                http_headers=StatusAndHeaders(f"GET {path} HTTP/1.1", [("Host", host)]),
                warc_headers_dict={
                    "WARC-Concurrent-To": record.rec_headers.get_header("WARC-Record-ID")
                },
            )
            write_member(record, body)
            write_member(request)
            total += len(body)

        await asyncio.gather(*(one(host, path) for host, path in pages))
    handle.close()
    return {"pages": len(pages), "payload_bytes": total}


# ---------------------------------------------------------------------------------------------


LABELS = {
    "raw": "raw aiohttp GET + warcio write (every record deflated, level 6)",
    "raw-stored": "same raw loop, records whose body does not shrink stored (level 0, as linkkeeper)",
    "linkkeeper": "`linkkeeper snapshot`",
}
TOOLS: tuple[str, ...] = ("raw", "raw-stored", "linkkeeper")
BEFORE: dict[str, Path] = {}  # --before: the folder of an older checkout ("before" runs)


def add_before(folder: Path) -> None:
    """Also run `snapshot` with the code in `folder` (git archive of an older commit)."""
    global TOOLS
    BEFORE["folder"] = folder.resolve()
    stamp = folder / "COMMIT"
    commit = stamp.read_text().strip() if stamp.exists() else folder.name
    LABELS["before"] = f"`linkkeeper snapshot`, code before ({commit})"
    TOOLS = (*TOOLS, "before")


def run_round(
    port: int,
    urls_file: Path,
    pages: list[tuple[str, str]],
    connect_to: list[str],
    work: Path,
    tool: str,
) -> dict[str, Any]:
    out = work / tool
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    if tool.startswith("raw"):
        command = [str(PYTHON), str(Path(__file__).resolve()), "--raw", str(port),
                   str(urls_file), str(out)]
        if tool == "raw-stored":
            command.append("--stored")
    else:
        command = [
            str(PYTHON),
            "-m",
            "linkkeeper",
            "snapshot",
            *[f"http://{h}{p}" for h, p in pages],
            "--db",
            str(out / "lk.db"),
            "--warc-dir",
            str(out / "warcs"),
            "--offline-dns",
            "--host-concurrency",
            "8",
            "--concurrency",
            "32",
            "--host-rate",
            "0",
            "--attempts",
            "1",
            "--format",
            "json",
            "--quiet",
        ]
        for spec in connect_to:
            command += ["--connect-to", spec]
    label = LABELS[tool]
    cwd, env = REPO, None
    if tool == "before":  # the older package first on the path: run from its folder
        cwd = BEFORE["folder"]
        env = {**os.environ, "PYTHONPATH": str(cwd)}
    result = measure(command, label=label, cwd=cwd, env=env, stdout_path=out / "stdout.txt")
    if result["exit_code"] != 0:
        raise RuntimeError(f"{label} failed: {result.get('stderr_tail')}")
    if tool.startswith("raw"):
        done = json.loads((out / "stdout.txt").read_text())
    else:
        doc = json.loads((out / "stdout.txt").read_text())
        with sqlite3.connect(out / "lk.db") as conn:
            payload = conn.execute("SELECT sum(payload_length) FROM snapshots").fetchone()[0]
        done = {"pages": doc["archive"]["urls"], "payload_bytes": payload}
        if doc["archive"]["captures"] != len(pages):
            raise RuntimeError(f"linkkeeper captured {doc['archive']['captures']} of {len(pages)}")
    warc_bytes = sum(p.stat().st_size for p in out.rglob("*.warc.gz"))
    return {**result, **done, "warc_bytes": warc_bytes, "tool": tool}


def compile_bytecode() -> None:
    """Write .pyc files for linkkeeper and these scripts, as an installed package has them."""
    folders = [REPO / "linkkeeper", Path(__file__).resolve().parent]
    if BEFORE:
        folders.append(BEFORE["folder"] / "linkkeeper")
    for folder in folders:
        subprocess.run(
            [str(PYTHON), "-m", "compileall", "-q", str(folder)],
            check=True,
            stdout=subprocess.DEVNULL,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--pages",
        default="1,500,3000",
        help="comma-separated page counts, one pair of runs each (default: 1,500,3000)",
    )
    parser.add_argument("--no-write", action="store_true", help="do not update BENCHMARKS.md")
    parser.add_argument("--before", type=Path, help="also run snapshot with this older checkout")
    parser.add_argument("--raw", nargs=3, metavar=("PORT", "URLS", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--stored", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.raw:
        port, urls, out = args.raw
        pages = [tuple(line.split(" ", 1)) for line in Path(urls).read_text().splitlines()]
        done = asyncio.run(raw_capture(int(port), pages, Path(out), stored=args.stored))  # type: ignore[arg-type]
        print(json.dumps(done))
        return 0

    if args.before:
        add_before(args.before)
    counts = [int(n) for n in args.pages.split(",") if n.strip()]
    work = OUT_DIR / "capture"
    work.mkdir(parents=True, exist_ok=True)
    compile_bytecode()
    port = free_port(18990)
    web = FaultWebProcess(port, "0", work / "faultweb.jsonl")
    results: dict[tuple[str, int], list[dict[str, Any]]] = {}
    startup: list[dict[str, Any]] = []
    try:
        connect_to = [f"{host}:80:127.0.0.1:{port}" for host in HOSTS]
        for round_ in range(args.rounds):
            help_run = measure(
                [str(PYTHON), "-m", "linkkeeper", "--help"], label="linkkeeper --help", cwd=REPO
            )
            record(help_run, bench="capture", round=round_)
            startup.append(help_run)
            for count in counts:
                pages = page_paths(count)
                urls_file = work / f"pages-{count}.txt"
                urls_file.write_text("".join(f"{h} {p}\n" for h, p in pages))
                order = TOOLS if round_ % 2 == 0 else TOOLS[::-1]
                for tool in order:
                    outcome = run_round(port, urls_file, pages, connect_to, work, tool)
                    record(outcome, bench="capture", round=round_, pages=count)
                    results.setdefault((tool, count), []).append(outcome)
                    print(
                        f"round {round_} {count} pages {tool}: {outcome['wall_s']:.2f}s",
                        file=sys.stderr,
                    )
    finally:
        web.stop()
    table = format_table(results, counts, startup)
    print(table)
    if not args.no_write:
        command = (
            "python benchmarks/bench_capture.py"
            + (f" --rounds {args.rounds}" if args.rounds != 3 else "")
            + (f" --pages {args.pages}" if args.pages != "1,500,3000" else "")
            + (f" --before {args.before}" if args.before else "")
        )
        update_section("capture", table + "\n\n" + provenance(command))
    return 0


def format_table(
    results: dict[tuple[str, int], list[dict[str, Any]]],
    counts: list[int],
    startup: list[dict[str, Any]],
) -> str:
    rows = [
        "| `linkkeeper --help` (CLI start-up alone) | – | – | – "
        f"| {statistics.median(r['wall_s'] for r in startup):.2f} | – | – "
        f"| {statistics.median(r['cpu_s'] for r in startup):.2f} "
        f"| {max(r['peak_rss_mb'] for r in startup):.0f} |"
    ]
    ratios, machinery = [], []
    for count in counts:
        speeds = {}
        for tool in TOOLS:
            runs = results[(tool, count)]
            wall = statistics.median(r["wall_s"] for r in runs)
            cpu = statistics.median(r["cpu_s"] for r in runs)
            rss = max(r["peak_rss_mb"] for r in runs)
            pages, payload = runs[0]["pages"], runs[0]["payload_bytes"]
            speeds[tool] = payload / wall
            rows.append(
                f"| {LABELS[tool]} | {pages:,} | {payload / 1e6:.1f} "
                f"| {runs[0]['warc_bytes'] / 1e6:.1f} | {wall:.2f} | {pages / wall:.0f} "
                f"| {payload / 1e6 / wall:.1f} | {cpu:.2f} | {rss:.0f} |"
            )
        if count > 1:  # one page measures the fixed cost, not a throughput
            ratios.append(f"{count:,} pages **{speeds['linkkeeper'] / speeds['raw']:.2f}**")
            machinery.append(f"{count:,} pages {speeds['linkkeeper'] / speeds['raw-stored']:.2f}"
                             + (f" (code before: {speeds['before'] / speeds['raw-stored']:.2f})"
                                if "before" in speeds else ""))
    rounds = len(startup)
    return "\n".join(
        [
            "| capture | pages | payload MB | WARC MB | wall s (median) | pages/s | MB/s | CPU s "
            "| peak RSS MB |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
            *rows,
            "",
            "Throughput ratio linkkeeper / raw loop (wall time, start-up included): "
            + ", ".join(ratios)
            + " (aim: >= 0.8). Against the raw loop that also stores what does not shrink "
            "(linkkeeper's machinery alone): "
            + ", ".join(machinery)
            + f". {rounds} rounds, the tools alternating.",
            f"_Run {datetime.now(UTC):%Y-%m-%d}._",
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
