"""Check in the CPU-bound regime: N distinct URLs over ~1,000 hosts, zero-latency fault web.

For each N (default 100,000 and 300,000) a site is generated (or reused) with exactly N
distinct URLs over 1,000 hosts (gen_site's shares: 70% main host, 15% second, a Zipf
tail; its failure mix) and N/4 posts, scanned once (not measured), then, each against a
fresh fault web (``python -m linkkeeper.faultweb`` as its own process, no added latency, so
the machinery is measured rather than the network):

* ``linkkeeper check --no-snapshot`` with ``--concurrency 128 --host-concurrency 8
  --host-rate 0`` (the database pre-scanned: the check is what runs);
* the raw aiohttp GET loop (``raw_aiohttp.py``) with the same limits: the ceiling.

Reported: wall, URLs/s (N / wall), linkkeeper's URLs/s over the raw loop's (aim ≥ 0.7),
CPU, peak RSS (aim < 300 MB, flat in N) and the requests the server saw. Both tools share
the two cores with the fault web, which is part of the regime: the server costs the same
for both.

    .venv/bin/python benchmarks/bench_scale.py --sizes 5000              # quick
    .venv/bin/python benchmarks/bench_scale.py --sizes 100000,300000 --write-md
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import gen_site
from bench_check import FaultWebProcess, free_port
from charts import CHARTS_DIR, Series, line_chart, remember
from harness import REPO, cached_site, provenance, update_section
from measure import OUT_DIR, markdown_table, measure, record

PYTHON = REPO / ".venv" / "bin" / "python"
LINKKEEPER = REPO / ".venv" / "bin" / "linkkeeper"
AIM_RATIO, AIM_RSS_MB = 0.7, 300.0
COLUMNS = (
    ("urls", "URLs"),
    ("label", "tool"),
    ("wall_s", "wall s"),
    ("urls_per_s", "URLs/s"),
    ("of_raw", "× raw loop"),
    ("cpu_s", "CPU s"),
    ("peak_rss_mb", "peak RSS MB"),
    ("scan_rss_mb", "scan+plan MB"),
    ("check_rss_mb", "check phase MB"),
    ("requests", "requests seen"),
)


def site_for(urls: int, hosts: int, port: int, world: str) -> tuple[Path, dict[str, Any]]:
    """The generated site; world "ok": every URL answers 200 at once (the machinery alone),
    "mix": gen_site's failure mix (429s, flaky 503s, slow pages: politeness shows too)."""
    saved = gen_site.WORLDS["gentle"]
    if world == "ok":  # the gentle world's host shares, every URL "ok" (WORLDS is what is read)
        gen_site.WORLDS["gentle"] = ((gen_site.Behaviour("ok", 1.0, "/ok/{id}"),), saved[1])
    try:
        site, manifest = cached_site(
            f"site-scale-{world}-{urls}-h{hosts}", posts=max(urls // 4, 1), hosts=hosts,
            distinct_urls=urls, port=port,
        )
    finally:
        gen_site.WORLDS["gentle"] = saved
    if world == "ok" and set(manifest["by_behaviour"]) != {"ok"}:
        raise SystemExit(f"{site} is not an all-ok world ({manifest['by_behaviour']}): delete it")
    return site, manifest


def prescan(site: Path, db: Path) -> None:
    """A scanned database for the check (not measured): a copy of the site's cached one.

    The first scan of a 1,000,000-URL site (250,000 posts) takes minutes; it is kept in
    the site's `_benchmark/` folder, and made again when the site is newer than it.
    """
    cached = site / "_benchmark" / "prescanned.db"
    manifest = site / "_benchmark" / "manifest.json"
    if not cached.exists() or cached.stat().st_mtime < manifest.stat().st_mtime:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{cached}{suffix}").unlink(missing_ok=True)
        done = subprocess.run(
            [str(LINKKEEPER), "scan", str(site), "--db", str(cached), "--format", "json"],
            capture_output=True, text=True,
        )
        if done.returncode != 0:
            raise SystemExit(f"scan failed:\n{done.stderr[-2000:]}")
        sqlite3.connect(cached).execute("PRAGMA wal_checkpoint(TRUNCATE)").connection.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(cached, db)


def commands(site: Path, port: int, work: Path, args: argparse.Namespace) -> dict[str, list[str]]:
    return {
        "linkkeeper": [
            str(LINKKEEPER), "check", str(site), "--db", str(work / "linkkeeper.db"),
            "--connect-to", f"*:{port}:127.0.0.1:{port}", "--offline-dns",
            "--concurrency", str(args.limit), "--host-concurrency", str(args.limit_per_host),
            "--host-rate", "0", "--no-snapshot", "--format", "json",
            "-o", str(work / "linkkeeper.json"), "--fail-on", "never", "-q",
        ],
        "raw": [
            str(PYTHON), str(Path(__file__).parent / "raw_aiohttp.py"),
            str(site / "_benchmark" / "urls.txt"), "--limit", str(args.limit),
            "--limit-per-host", str(args.limit_per_host),
        ],
    }


def start_fault_web(port: int, log: Path) -> FaultWebProcess:
    """A fresh fault web on the site's port; the last one may still be letting it go."""
    for attempt in range(15):
        try:
            return FaultWebProcess(port, "0", log)
        except RuntimeError:
            if attempt == 14:
                raise
            time.sleep(2)
    raise AssertionError("unreachable")


class PhaseRss:
    """Peak RSS of `linkkeeper check` in its two phases, sampled from /proc every 0.2 s:
    the scan it starts with (scan.py's no-change rescan) and the plan (history/runs.py),
    then the check proper, which begins when its run's row (committed with the plan) is
    in the database. Python keeps what the first phase freed: the second starts there."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.peaks = {"scan": 0.0, "check": 0.0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def stop(self) -> dict[str, float | None]:
        self._stop.set()
        self._thread.join()
        return {f"{phase}_rss_mb": round(mb, 1) or None for phase, mb in self.peaks.items()}

    def _sample(self) -> None:
        pid: int | None = None
        phase = "scan"
        while not self._stop.wait(0.2):
            pid = pid if pid is not None and Path(f"/proc/{pid}").exists() else self._find()
            if pid is None:
                continue
            if phase == "scan" and self._run_started():
                phase = "check"
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                pid = None
                continue
            rss = next((int(line.split()[1]) for line in status.splitlines()
                        if line.startswith("VmRSS:")), 0)
            self.peaks[phase] = max(self.peaks[phase], rss / 1024)

    def _find(self) -> int | None:
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    argv = (entry / "cmdline").read_bytes().split(b"\0")
                except OSError:
                    continue
                if b"check" in argv and str(self.db).encode() in argv:
                    return int(entry.name)
        return None

    def _run_started(self) -> bool:
        try:
            with contextlib.closing(sqlite3.connect(f"file:{self.db}?mode=ro", uri=True,
                                                    timeout=0.1)) as conn:
                return bool(conn.execute("SELECT count(*) FROM runs").fetchone()[0])
        except sqlite3.Error:
            return False


def run_size(urls: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    port = free_port(args.port)
    site, manifest = site_for(urls, args.hosts, port, args.world)
    if manifest["arguments"].get("port") != port:
        raise SystemExit(f"port {manifest['arguments'].get('port')} of the cached site is busy")
    work = OUT_DIR / f"scale-{urls}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    rows = []
    for tool in args.tools.split(","):
        if tool == "linkkeeper":
            prescan(site, work / "linkkeeper.db")
        web = start_fault_web(port, work / f"faultweb-{tool}.jsonl")
        phases = PhaseRss(work / "linkkeeper.db") if tool == "linkkeeper" else None
        try:
            result = measure(commands(site, port, work, args)[tool], label=tool, cwd=work,
                             timeout=args.timeout, stdout_path=work / f"{tool}.out",
                             env=dict(os.environ, BENCH_LOOPBACK_HOSTS="*.example"))
        finally:
            log, _stats = web.stop()
            peaks = phases.stop() if phases is not None else {}
        result |= peaks
        result |= {
            "urls": manifest["distinct_urls"],
            "requests": len(log),
            "urls_per_s": None if result["timed_out"]
            else round(manifest["distinct_urls"] / result["wall_s"], 1),
        }
        if result["exit_code"] not in (0, 1) or result["timed_out"]:
            result["label"] += f" (exit {result['exit_code']}, timed out {result['timed_out']})"
        record(result, benchmark="scale", urls=urls, load=os.getloadavg()[0])
        rows.append(result)
    raw = next((r for r in rows if r["label"] == "raw"), None)
    for row in rows:
        if raw and row["urls_per_s"] and raw["urls_per_s"]:
            row["of_raw"] = round(row["urls_per_s"] / raw["urls_per_s"], 2)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return rows


def charts(rows: list[dict[str, Any]], world: str) -> None:
    """CPU ms per URL (robust on a shared machine, unlike URLs/s) and peak RSS, by N."""
    cpu: list[Series] = []
    rss: list[Series] = []
    for row in rows:
        if not row["timed_out"]:
            cpu = remember(f"scale_cpu_{world}", row["label"], row["urls"],
                           round(1000 * row["cpu_s"] / row["urls"], 3))
        rss = remember(f"scale_rss_{world}", row["label"], row["urls"], row["peak_rss_mb"])
        if row.get("check_rss_mb"):
            rss = remember(f"scale_rss_{world}", f"{row['label']}: check phase", row["urls"],
                           row["check_rss_mb"])
    if cpu:
        line_chart("check, zero-latency fault web: CPU per URL", "distinct URLs",
                   "CPU ms per URL", cpu, CHARTS_DIR / f"scale_cpu_{world}.svg")
    line_chart("check: peak RSS by number of URLs", "distinct URLs", "MB", rss,
               CHARTS_DIR / f"scale_rss_{world}.svg", aim=AIM_RSS_MB)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,300000", help="numbers of distinct URLs")
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--port", type=int, default=47180,
                        help="the fault web's port (a site is generated for it)")
    parser.add_argument("--world", choices=("ok", "mix"), default="ok",
                        help="ok: every URL 200 (CPU-bound); mix: gen_site's failure mix")
    parser.add_argument("--tools", default="raw,linkkeeper")
    parser.add_argument("--limit", type=int, default=128)
    parser.add_argument("--limit-per-host", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=3600.0, help="per tool, seconds")
    parser.add_argument("--keep", action="store_true", help="keep the work folders")
    parser.add_argument("--write-md", action="store_true", help="update BENCHMARKS.md + charts")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        rows += run_size(size, args)
        print(markdown_table(rows, COLUMNS), flush=True)
    command_line = " ".join(
        shlex.quote(a) for a in ["python", "benchmarks/bench_scale.py", *(argv or sys.argv[1:])]
    )
    detail = (
        f"{args.hosts} hosts (70% of URLs on the main host, 15% on the second), "
        + ("every URL answering 200 (pages and images)" if args.world == "ok"
           else "gen_site's failure mix") + f", N/4 posts; zero-latency fault web; --concurrency {args.limit}, "
        f"{args.limit_per_host} per host. 1-minute load average before the run: "
        f"{load_before:.2f}."
    )
    print(detail)
    if args.write_md:
        charts(rows, args.world)
        name = f"scale-{args.world}-" + args.sizes.replace(",", "-")
        update_section(name, f"{markdown_table(rows, COLUMNS)}\n\n{detail}\n"
                             f"{provenance(command_line)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
