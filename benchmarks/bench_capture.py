"""Capture throughput: `linkkeeper snapshot` beside a raw aiohttp GET + warcio write loop.

Both fetch the same pages from the fault-injection web running as a process
(``python -m linkkeeper.faultweb``, plain HTTP on loopback, no added latency, so the
machinery is measured, not the network) and write WARC files; both run as child
processes, measured by ``measure.py`` (wall, CPU, peak RSS). The baseline is the least a
capture must do: GET without decompression, read the body, write a response and a
request record (WARC/1.1, one gzip member per record at linkkeeper's level 6) in the
same thread, with the same concurrency (8 per host, 32 in all). linkkeeper does more:
politeness scheduling, per-URL planning and history, a writer thread, SQLite rows,
and CDXJ indexes when the file closes. Rounds alternate the two; the median is reported.

    .venv/bin/python benchmarks/bench_capture.py            # writes BENCHMARKS.md "Capture"
    .venv/bin/python benchmarks/bench_capture.py --rounds 1 --no-write
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import shutil
import sqlite3
import statistics
import sys
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench_check import PYTHON, REPO, FaultWebProcess, free_port
from harness import provenance, update_section
from measure import OUT_DIR, measure, record

HOSTS = ("news.example", "cdn.example", "images.example", "blog.example")


def page_paths(scale: int) -> list[tuple[str, str]]:
    """(host, path) pairs: gzip'd articles, large documents, images, mid-size pages."""
    pages = []
    pages += [("news.example", f"/gzip/2026/story-{i}") for i in range(30 * scale)]
    pages += [("cdn.example", f"/large/200000/dossier-{i}") for i in range(30 * scale)]
    pages += [("images.example", f"/img/photo-{i}.jpg") for i in range(20 * scale)]
    pages += [("blog.example", f"/large/50000/post-{i}") for i in range(20 * scale)]
    return pages


# ---------------------------------------------------------------------------------------------
# The baseline, run as a child process: python bench_capture.py --raw PORT URLS_FILE OUT_DIR


async def raw_capture(port: int, pages: list[tuple[str, str]], out: Path) -> dict[str, Any]:
    import aiohttp
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    out.mkdir(parents=True, exist_ok=True)
    handle = open(out / "raw.warc.gz", "wb")  # noqa: SIM115 - closed below
    total = 0
    per_host = {host: asyncio.Semaphore(8) for host in HOSTS}

    def write_member(record: Any) -> None:
        buffer = io.BytesIO()
        WARCWriter(buffer, gzip=False, warc_version="WARC/1.1").write_record(record)
        compressor = zlib.compressobj(6, zlib.DEFLATED, zlib.MAX_WBITS + 16)
        handle.write(compressor.compress(buffer.getvalue()) + compressor.flush())

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
            write_member(record)
            write_member(request)
            total += len(body)

        await asyncio.gather(*(one(host, path) for host, path in pages))
    handle.close()
    return {"pages": len(pages), "payload_bytes": total}


# ---------------------------------------------------------------------------------------------


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
    if tool == "raw":
        command = [str(PYTHON), __file__, "--raw", str(port), str(urls_file), str(out)]
        label = "raw aiohttp GET + warcio write"
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
        label = "linkkeeper snapshot"
    result = measure(command, label=label, cwd=REPO, stdout_path=out / "stdout.txt")
    if result["exit_code"] != 0:
        raise RuntimeError(f"{label} failed: {result.get('stderr_tail')}")
    if tool == "raw":
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scale", type=int, default=5, help="x100 pages (default 500)")
    parser.add_argument("--no-write", action="store_true", help="do not update BENCHMARKS.md")
    parser.add_argument("--raw", nargs=3, metavar=("PORT", "URLS", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.raw:
        port, urls, out = args.raw
        pages = [tuple(line.split(" ", 1)) for line in Path(urls).read_text().splitlines()]
        print(json.dumps(asyncio.run(raw_capture(int(port), pages, Path(out)))))  # type: ignore[arg-type]
        return 0

    work = OUT_DIR / "capture"
    work.mkdir(parents=True, exist_ok=True)
    pages = page_paths(args.scale)
    urls_file = work / "pages.txt"
    urls_file.write_text("".join(f"{h} {p}\n" for h, p in pages))
    port = free_port(18990)
    web = FaultWebProcess(port, "0", work / "faultweb.jsonl")
    results: dict[str, list[dict[str, Any]]] = {"raw": [], "linkkeeper": []}
    try:
        connect_to = [f"{host}:80:127.0.0.1:{port}" for host in HOSTS]
        for round_ in range(args.rounds):
            order = ("raw", "linkkeeper") if round_ % 2 == 0 else ("linkkeeper", "raw")
            for tool in order:
                outcome = run_round(port, urls_file, pages, connect_to, work, tool)
                record(outcome, bench="capture", round=round_)
                results[tool].append(outcome)
                print(f"round {round_} {tool}: {outcome['wall_s']:.2f}s", file=sys.stderr)
    finally:
        web.stop()
    table = format_table(results)
    print(table)
    if not args.no_write:
        command = (
            "python benchmarks/bench_capture.py"
            + (f" --rounds {args.rounds}" if args.rounds != 3 else "")
            + (f" --scale {args.scale}" if args.scale != 5 else "")
        )
        update_section("capture", table + "\n\n" + provenance(command))
    return 0


def format_table(results: dict[str, list[dict[str, Any]]]) -> str:
    rows = []
    speeds = {}
    for tool, label in (
        ("raw", "raw aiohttp GET + warcio write"),
        ("linkkeeper", "`linkkeeper snapshot`"),
    ):
        runs = results[tool]
        wall = statistics.median(r["wall_s"] for r in runs)
        cpu = statistics.median(r["cpu_s"] for r in runs)
        rss = max(r["peak_rss_mb"] for r in runs)
        pages, payload = runs[0]["pages"], runs[0]["payload_bytes"]
        speeds[tool] = payload / wall
        rows.append(
            f"| {label} | {pages} | {payload / 1e6:.1f} | {runs[0]['warc_bytes'] / 1e6:.1f} "
            f"| {wall:.2f} | {pages / wall:.0f} | {payload / 1e6 / wall:.1f} | {cpu:.2f} "
            f"| {rss:.0f} |"
        )
    ratio = speeds["linkkeeper"] / speeds["raw"]
    return "\n".join(
        [
            "| capture | pages | payload MB | WARC MB | wall s (median) | pages/s | MB/s | CPU s "
            "| peak RSS MB |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
            *rows,
            "",
            f"Throughput ratio linkkeeper / raw loop: **{ratio:.2f}** (aim: >= 0.8). "
            f"{len(results['raw'])} rounds, alternating; wall time includes interpreter start.",
            f"_Run {datetime.now(UTC):%Y-%m-%d}._",
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
