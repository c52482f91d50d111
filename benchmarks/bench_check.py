"""Check benchmark: linkkeeper against the ceiling and two peers, on the fault-injection web.

One run generates (or reuses) a site of 20,000 distinct URLs over 20 hosts (70% on the
main host, the failure mix of gen_site.BEHAVIOURS), then for each tool in turn starts a
fresh fault web (``python -m linkkeeper.faultweb``, 20-100 ms latency per request, so
/flaky and /ratelimit counters start at zero for everyone), measures the tool, stops the
fault web and reads its request log:

- ``linkkeeper check`` (the site pre-scanned into a fresh database, so this is the check),
  with the same limits as the ceiling and ``--host-rate 0``;
- ``raw``: benchmarks/raw_aiohttp.py, a bare aiohttp GET loop with the same global and
  per-host connection limits: the ceiling for a polite checker;
- linkinator (npm) and LinkChecker (PyPI) at their documented best settings, on the
  rendered ``_site/`` (they read HTML), kept on loopback by the shims in peers/.
  LinkChecker runs twice: ``linkchecker`` as it checks hosts that are not yours (its
  documented politeness: a random 0.1-0.6 s between two requests to one host, whatever
  ``maxrequestspersecond`` says, unless the server sends a ``LinkChecker`` header) and
  ``linkchecker-optin`` as if every host had opted in with that header.

Reported per tool: wall time, URLs/s (distinct site URLs / wall), CPU, peak RSS, requests
the server saw, and the most requests / connections it had in flight at once for one
host, from the fault web's ``--stats`` (a connection counts from open to close, idle
keep-alive included).

    .venv/bin/python benchmarks/bench_check.py                        # all four, 20,000 URLs
    .venv/bin/python benchmarks/bench_check.py --urls 100000 --tools linkkeeper  # peak RSS
    .venv/bin/python benchmarks/bench_check.py --write-md             # update BENCHMARKS.md
    .venv/bin/python benchmarks/bench_check.py --world both --urls 3000 --tools linkkeeper,raw \
        --rounds 2                                                    # gentle and realistic

Worlds (gen_site.WORLDS): ``gentle``, the mix above; ``realistic``, what an archive meets on
the real web: 66% on the main host, a tenth of the links redirecting to their site's home
page, 429s and 503s scattered among successes, a few links that never answer (timeouts),
slow pages, and two slow hosts (SLOW_HOST_LATENCY). ``--rounds N`` repeats the tools,
alternating their order, and compares each tool with the ceiling of its own round.

Peers need ``benchmarks/peers/setup.sh`` once; a missing peer is skipped with a note.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gen_site import WORLDS, slow_hosts
from harness import REPO, cached_site, provenance, update_section
from measure import OUT_DIR, markdown_table, measure, record

BENCH = Path(__file__).resolve().parent
PEERS = BENCH / "peers"
PYTHON = REPO / ".venv" / "bin" / "python"
LINKKEEPER = REPO / ".venv" / "bin" / "linkkeeper"
LINKINATOR_CLI = PEERS / "node_modules" / "linkinator" / "build" / "src" / "cli.js"
LINKCHECKER_PYTHON = BENCH / ".venvs" / "linkchecker" / "bin" / "python"
MAIN_HOST = "www.news0.example"
SLOW_HOST_LATENCY = "400-1500"  # ms, the realistic world's slow hosts
TOOLS = ("linkkeeper", "raw", "linkinator", "linkchecker", "linkchecker-optin")
COLUMNS = (
    ("label", "tool"),
    ("wall_s", "wall s"),
    ("urls_per_s", "URLs/s"),
    ("of_ceiling", "× ceiling"),
    ("cpu_s", "CPU s"),
    ("peak_rss_mb", "peak RSS MB"),
    ("requests", "requests"),
    ("main_max_requests", "max in flight, main host"),
    ("max_connections", "max connections, one host"),
    ("note", "settings / note"),
)
LINKCHECKER_RC = """\
[checking]
threads={threads}
timeout={timeout}
maxrequestspersecond=1000
[output]
status=0
"""


def free_port(preferred: int) -> int:
    """`preferred` if nothing listens there (so cached sites can be reused), else any."""
    for port in (preferred, 0):
        with socket.socket() as probe:
            # as a listening server would: TIME_WAIT leftovers of the last run do not count
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return probe.getsockname()[1]
    raise RuntimeError("no free port on loopback")


class FaultWebProcess:
    """`python -m linkkeeper.faultweb` as a child process; its request log once stopped."""

    def __init__(
        self, port: int, latency: str, log: Path, seed: int = 1, limits: Sequence[str] = ()
    ) -> None:
        self.log = log
        self.state = log.with_suffix(".state.json")
        self.stats = log.with_suffix(".stats.json")
        for path in (log, self.state, self.stats):
            path.unlink(missing_ok=True)
        command = [
            str(PYTHON),
            "-m",
            "linkkeeper.faultweb",
            "--http-port",
            str(port),
            "--default-latency",
            latency,
            "--seed",
            str(seed),
            "--log",
            str(log),
            "--state-file",
            str(self.state),
            "--stats",
            str(self.stats),
            *limits,
        ]
        self.stderr = log.with_suffix(".stderr")
        with self.stderr.open("wb") as err:
            self.process = subprocess.Popen(
                command, stdout=subprocess.DEVNULL, stderr=err, cwd=REPO, start_new_session=True
            )
        deadline = time.monotonic() + 30
        while not self.state.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"fault web did not start:\n{self.stderr.read_text()[-2000:]}")
            time.sleep(0.05)
        self.described = json.loads(self.state.read_text())

    def stop(self) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """Stop the server; its request log and (exact) per-host politeness stats."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        stats = json.loads(self.stats.read_text()) if self.stats.exists() else None
        if not self.log.exists():
            return [], stats
        with self.log.open(encoding="utf-8") as lines:
            return [json.loads(line) for line in lines if line.strip()], stats


def server_stats(log: list[dict[str, Any]], exact: dict[str, Any] | None = None) -> dict[str, Any]:
    """Politeness as the server saw it: requests and connections in flight per host.

    `exact` is the fault web's --stats document (connections counted from open to close,
    idle keep-alive included). Without it, connections are estimated from the request
    log: first request start to last request end, a lower bound.
    """

    def peak(intervals: list[tuple[int, int]]) -> int:
        events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
        current = best = 0
        for _, delta in events:
            current += delta
            best = max(best, current)
        return best

    requests_by_host: dict[str, list[tuple[int, int]]] = defaultdict(list)
    spans: dict[int, list[Any]] = {}
    for entry in log:
        end = entry.get("seq_end") or entry["seq_start"]
        requests_by_host[entry["host"]].append((entry["seq_start"], end))
        span = spans.setdefault(entry["connection"], [entry["host"], entry["seq_start"], end])
        span[1], span[2] = min(span[1], entry["seq_start"]), max(span[2], end)
    connections_by_host: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for host, start, end in spans.values():
        connections_by_host[host].append((start, end))
    max_requests = {h: peak(v) for h, v in requests_by_host.items()}
    max_connections = {h: peak(v) for h, v in connections_by_host.items()}
    connections_used = Counter(host for host, *_ in spans.values())
    if exact:
        hosts = exact.get("hosts", {})
        max_requests = {h: v["max_concurrent_requests"] for h, v in hosts.items()}
        max_connections = {h: v["max_concurrent_connections"] for h, v in hosts.items()}
        connections_used = Counter({h: v["connections"] for h, v in hosts.items()})
    busiest = max(max_connections, key=lambda h: max_connections[h], default=None)
    return {
        "requests": len(log),
        "methods": dict(Counter(e["method"] for e in log)),
        "server_statuses": dict(Counter(str(e.get("status")) for e in log).most_common()),
        "main_max_requests": max_requests.get(MAIN_HOST),
        "main_max_connections": max_connections.get(MAIN_HOST),
        "main_connections_used": connections_used.get(MAIN_HOST, 0),
        "connections_exact": exact is not None,
        "max_connections": max_connections.get(busiest) if busiest else None,
        "max_connections_host": busiest,
    }


def _linkkeeper(
    site: Path, port: int, args: argparse.Namespace, work: Path
) -> tuple[list[str], str]:
    db = work / "linkkeeper.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    scanned = subprocess.run(
        [str(LINKKEEPER), "scan", str(site), "--db", str(db), "--format", "json"],
        capture_output=True,
        text=True,
    )
    if scanned.returncode != 0:
        raise RuntimeError(f"linkkeeper scan failed:\n{scanned.stderr[-2000:]}")
    command = [
        str(LINKKEEPER),
        "check",
        str(site),
        "--db",
        str(db),
        "--connect-to",
        f"*:{port}:127.0.0.1:{port}",
        "--offline-dns",
        "--concurrency",
        str(args.limit),
        "--host-concurrency",
        str(args.limit_per_host),
        "--host-rate",
        "0",
        "--format",
        "json",
        "-o",
        str(work / "linkkeeper.json"),
        "--fail-on",
        "never",
        "--no-snapshot",  # archiving is measured on its own (bench_capture.py)
        "-q",
    ]
    note = (
        f"--concurrency {args.limit} --host-concurrency {args.limit_per_host} --host-rate 0"
        " --no-snapshot"
    )
    return command, note


def _raw(site: Path, port: int, args: argparse.Namespace, work: Path) -> tuple[list[str], str]:
    command = [
        str(PYTHON),
        str(BENCH / "raw_aiohttp.py"),
        str(site / "_benchmark" / "urls.txt"),
        "--limit",
        str(args.limit),
        "--limit-per-host",
        str(args.limit_per_host),
    ]
    return command, f"GET, limit {args.limit}, limit_per_host {args.limit_per_host}, no retries"


def _linkinator(
    site: Path, port: int, args: argparse.Namespace, work: Path
) -> tuple[list[str], str]:
    # README: --concurrency (default 100) is the speed knob; --timeout in ms (default none);
    # --retry honours 429 Retry-After per host; --retry-errors retries 5xx with back-off.
    flags = [
        "--recurse",
        "--concurrency",
        "100",
        "--timeout",
        "45000",
        "--retry",
        "--retry-errors",
        "--retry-errors-count",
        "2",
        "--format",
        "csv",
    ]
    command = [
        shutil.which("node") or "node",
        "--require",
        str(PEERS / "loopback-dns.cjs"),
        str(LINKINATOR_CLI),
        str(site / "_site"),
        *flags,
    ]
    return command, " ".join(flags[:-2])


def _linkchecker(
    site: Path, port: int, args: argparse.Namespace, work: Path, *, opted_in: bool = False
) -> tuple[list[str], str]:
    rc = work / "linkcheckerrc"
    rc.write_text(LINKCHECKER_RC.format(threads=args.linkchecker_threads, timeout=45))
    command = [
        str(LINKCHECKER_PYTHON),
        str(PEERS / "linkchecker_loopback.py"),
        *(["--unthrottle"] if opted_in else []),
        "--",
        "--config",
        str(rc),
        "--check-extern",
        "--no-status",
        "-o",
        "none",
        "-F",
        f"csv/utf_8/{work / 'linkchecker.csv'}",
        str(site / "_site" / "index.html"),
    ]
    note = f"--check-extern, threads={args.linkchecker_threads}, maxrequestspersecond=1000, " + (
        "every host opted in (as if it sent the LinkChecker header)"
        if opted_in
        else "hosts not opted in (news sites send no LinkChecker header)"
    )
    return command, note


def _linkchecker_optin(
    site: Path, port: int, args: argparse.Namespace, work: Path
) -> tuple[list[str], str]:
    return _linkchecker(site, port, args, work, opted_in=True)


CONNECT = re.compile(
    r'connect\(\d+, \{sa_family=AF_INET6?,[^}]*?(?:inet_addr\(|inet_pton\(AF_INET6, )"([^"]+)"'
)


def outside_connects(trace: Path) -> list[str]:
    """Addresses outside loopback that the traced tool tried to connect() to."""
    if not trace.exists():
        return ["(no strace output)"]
    found = []
    for address in CONNECT.findall(trace.read_text(errors="replace")):
        if not (address.startswith("127.") or address in ("::1", "::ffff:127.0.0.1")):
            found.append(address)
    return sorted(set(found))


BUILDERS = {
    "linkkeeper": _linkkeeper,
    "raw": _raw,
    "linkinator": _linkinator,
    "linkchecker": _linkchecker,
    "linkchecker-optin": _linkchecker_optin,
}


def missing(tool: str) -> str | None:
    """Why `tool` cannot run here, or None."""
    needs = {
        "linkkeeper": (LINKKEEPER, "the project is not installed in .venv"),
        "raw": (PYTHON, ".venv is missing"),
        "linkinator": (LINKINATOR_CLI, "run benchmarks/peers/setup.sh"),
        "linkchecker": (LINKCHECKER_PYTHON, "run benchmarks/peers/setup.sh"),
        "linkchecker-optin": (LINKCHECKER_PYTHON, "run benchmarks/peers/setup.sh"),
    }
    path, fix = needs[tool]
    if not Path(path).exists():
        return f"{tool} skipped: {path} not found ({fix})"
    if tool == "linkinator" and shutil.which("node") is None:
        return "linkinator skipped: node not found"
    return None


def run_tool(
    tool: str, site: Path, manifest: dict[str, Any], port: int, args: argparse.Namespace
) -> dict[str, Any]:
    work = OUT_DIR / f"check-{tool}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    web = FaultWebProcess(port, args.latency, work / "faultweb.jsonl", limits=server_limits(args))
    try:
        command, note = BUILDERS[tool](site, port, args, work)
        env = dict(os.environ, BENCH_LOOPBACK_HOSTS="*.example")
        trace = work / "connect.strace"
        if args.verify_hermetic:
            command = ["strace", "-f", "-qq", "-e", "trace=connect", "-o", str(trace), *command]
        result = measure(
            command,
            label=tool,
            env=env,
            cwd=work,
            timeout=args.timeout,
            stdout_path=work / "stdout.txt",
        )
    finally:
        log, exact = web.stop()
    result |= server_stats(log, exact)
    if args.verify_hermetic:
        outside = outside_connects(trace)
        result["outside_connects"] = outside
        result["note"] = f"hermetic: {'yes' if not outside else 'NO: ' + ', '.join(outside[:3])}"
        return result | {"urls": manifest["distinct_urls"], "urls_per_s": None}
    result["urls"] = manifest["distinct_urls"]
    # a tool stopped by the timeout did not check every URL: no rate to claim
    result["urls_per_s"] = (
        None if result["timed_out"] else round(manifest["distinct_urls"] / result["wall_s"], 1)
    )
    result["note"] = note + (
        f"; TIMED OUT after {args.timeout:.0f} s" if result["timed_out"] else ""
    )
    if result["exit_code"] not in (0, 1) and not result["timed_out"]:
        result["note"] += f"; exit {result['exit_code']}: {result['stderr_tail'][-300:]}"
    return result


def server_limits(args: argparse.Namespace) -> list[str]:
    """Every benchmark host gets a real server's limits: a worker pool and a rate limiter.

    In the realistic world the slow hosts answer every request SLOW_HOST_LATENCY late.
    """
    limits: list[str] = []
    if args.world == "realistic":
        for host in slow_hosts(args.hosts):
            limits += ["--latency", f"{host}={SLOW_HOST_LATENCY}"]
    for i in range(args.hosts):
        host = f"www.news{i}.example"
        if args.capacity:
            limits += ["--capacity", f"{host}={args.capacity}"]
        if args.shed:
            limits += ["--shed", f"{host}={args.shed}"]
    return limits


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--urls", type=int, default=20_000, help="distinct URLs in the site")
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--latency", default="20-100", help="fault web latency, ms or MIN-MAX")
    parser.add_argument("--port", type=int, default=47080, help="fault web port (in the URLs)")
    parser.add_argument("--tools", default=",".join(TOOLS), help=f"subset of {','.join(TOOLS)}")
    parser.add_argument(
        "--limit", type=int, default=128, help="global concurrency (linkkeeper, raw)"
    )
    parser.add_argument("--limit-per-host", type=int, default=8, help="per-host connections")
    parser.add_argument(
        "--capacity",
        type=int,
        default=10,
        help="requests each fault-web host serves at once; more wait (0: unlimited)",
    )
    parser.add_argument(
        "--shed",
        type=int,
        default=32,
        help="requests in the house at which a host answers 429 Retry-After: 1 (0: never)",
    )
    parser.add_argument("--linkchecker-threads", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=240.0, help="per tool, seconds")
    parser.add_argument("--write-md", action="store_true", help="update BENCHMARKS.md")
    parser.add_argument(
        "--world",
        choices=(*WORLDS, "both"),
        default="gentle",
        help="the site's behaviour mix (gen_site.WORLDS); both: one after the other",
    )
    parser.add_argument("--rounds", type=int, default=1, help="repeat, alternating tool order")
    parser.add_argument(
        "--verify-hermetic",
        action="store_true",
        help="run each tool under strace and list any connect() outside loopback (no timings)",
    )
    args = parser.parse_args(argv)
    if args.verify_hermetic and shutil.which("strace") is None:
        parser.error("--verify-hermetic needs strace")
    if args.verify_hermetic:
        args.write_md = False
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = set(tools) - set(TOOLS)
    if unknown:
        parser.error(f"unknown tools: {', '.join(sorted(unknown))}")

    port = free_port(args.port)
    worlds = list(WORLDS) if args.world == "both" else [args.world]
    rows: list[dict[str, Any]] = []
    for world in worlds:
        args.world = world
        rows += run_world(args, tools, port, argv)
    with contextlib.suppress(OSError):
        (OUT_DIR / "last-check.json").write_text(
            json.dumps([{k: v for k, v in r.items() if k != "stdout"} for r in rows], indent=1)
        )
    return 0


def run_world(
    args: argparse.Namespace, tools: list[str], port: int, argv: list[str] | None
) -> list[dict[str, Any]]:
    """Every tool over one world, `args.rounds` times (tool order alternating per round)."""
    world = args.world
    needs_html = bool({"linkinator", "linkchecker", "linkchecker-optin"} & set(tools))
    site, manifest = cached_site(
        f"site-check-{args.urls}-h{args.hosts}-s{args.seed}-p{port}"
        f"{'-html' if needs_html else ''}{'' if world == 'gentle' else '-' + world}",
        posts=max(args.urls // 4, 1),
        hosts=args.hosts,
        seed=args.seed,
        port=port,
        distinct_urls=args.urls,
        html=needs_html,
        world=world,
    )
    print(
        f"{world} world: {manifest['posts']:,} posts, {manifest['distinct_urls']:,} distinct "
        f"URLs, {manifest['by_host'].get(MAIN_HOST, 0):,} on {MAIN_HOST}; fault web on port {port}",
        file=sys.stderr,
    )
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    for reason in filter(None, map(missing, tools)):
        notes.append(reason)
        print(reason, file=sys.stderr)
    available = [tool for tool in tools if missing(tool) is None]
    for round_ in range(1, args.rounds + 1):
        order = available if round_ % 2 else available[::-1]
        round_rows = []
        for tool in order:
            print(f"running {tool} (round {round_}) ...", file=sys.stderr)
            result = run_tool(tool, site, manifest, port, args)
            record(
                result,
                benchmark="check",
                site=manifest["arguments"],
                latency=args.latency,
                limit=args.limit,
                limit_per_host=args.limit_per_host,
                world=world,
                round=round_,
            )
            if args.rounds > 1:
                result["label"] = f"{tool} (round {round_})"
            round_rows.append(result)
            print(
                f"  {tool}: {result['wall_s']} s, {result['requests']} requests, "
                f"max {result['main_max_connections']} connections on {MAIN_HOST}",
                file=sys.stderr,
            )
        ceiling = next((r for r in round_rows if r["label"].split(" ")[0] == "raw"), None)
        for row in round_rows:
            if ceiling and ceiling["urls_per_s"] and row["urls_per_s"] and not row["timed_out"]:
                row["of_ceiling"] = round(row["urls_per_s"] / ceiling["urls_per_s"], 2)
        rows += round_rows
    report_world(args, tools, manifest, rows, notes, argv)
    return rows


def report_world(
    args: argparse.Namespace,
    tools: list[str],
    manifest: dict[str, Any],
    rows: list[dict[str, Any]],
    notes: list[str],
    argv: list[str] | None,
) -> None:
    table = markdown_table(rows, COLUMNS)
    ceiling = any(r["label"].split(" ")[0] == "raw" for r in rows)
    slow = (
        f"; slow hosts {', '.join(slow_hosts(args.hosts))} at {SLOW_HOST_LATENCY} ms"
        if args.world == "realistic"
        else ""
    )
    detail = (
        f"{args.world} world: {manifest['distinct_urls']:,} distinct URLs in "
        f"{manifest['posts']:,} posts over {args.hosts} hosts "
        f"({manifest['by_host'].get(MAIN_HOST, 0):,} on the main host), "
        f"fault-web latency {args.latency} ms per request{slow}"
        + (
            f"; ceiling = raw aiohttp loop with limit {args.limit}, {args.limit_per_host} per host"
            " (same round)."
            if ceiling
            else "."
        )
    )
    command_line = " ".join(
        shlex.quote(a) for a in ["python", "benchmarks/bench_check.py", *(argv or sys.argv[1:])]
    )
    print(table)
    print()
    print(detail)
    for note in notes:
        print(f"- {note}")
    if args.write_md:
        section = "check" if args.urls == 20_000 and len(tools) > 1 else f"check-{args.urls}"
        if args.world != "gentle":
            section += f"-{args.world}"
        body = f"{table}\n\n{detail}\n" + "".join(f"- {n}\n" for n in notes)
        update_section(section, body + provenance(command_line))
        print(f"BENCHMARKS.md updated ({section} section)", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
