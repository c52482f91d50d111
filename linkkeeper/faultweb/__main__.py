"""Run the fault-injection web as a process, for benchmarks and the demo.

    python -m linkkeeper.faultweb --http-port 0 --https-port 0 \\
        --latency news.example=20-100 --state-file /tmp/fw.json --log /tmp/fw.jsonl

Prints one JSON line (ports, CA path, --connect-to list) once it is serving,
writes the same JSON to --state-file if given, and serves until SIGTERM or
SIGINT. With --log, the request log is written as JSON lines at exit; with
--stats, per-host politeness counted from the server's side (peak open TCP
connections and in-flight requests, exact).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from pathlib import Path

from linkkeeper.faultweb.behaviours import DEFAULT_BEHAVIOURS
from linkkeeper.faultweb.hostile import HOSTILE_BEHAVIOURS
from linkkeeper.faultweb.server import DEFAULT_HOSTS, FaultWeb, Latency


def parse_latency(text: str) -> Latency:
    """ "50" -> 50.0 ms; "20-100" -> (20.0, 100.0) ms, drawn uniformly per request."""
    low, dash, high = text.partition("-")
    try:
        if not dash:
            return float(low)
        bounds = (float(low), float(high))
    except ValueError:
        raise argparse.ArgumentTypeError(f"latency is MS or MIN-MAX in ms, not {text!r}") from None
    if bounds[0] > bounds[1]:
        raise argparse.ArgumentTypeError(f"latency range {text!r} has min above max")
    return bounds


def parse_host_count(text: str) -> tuple[str, int]:
    host, sep, count = text.partition("=")
    if not sep or not host or not count.isdigit() or int(count) < 1:
        raise argparse.ArgumentTypeError(f"want HOST=N with N >= 1, not {text!r}")
    return host, int(count)


def parse_host_latency(text: str) -> tuple[str, Latency]:
    host, equals, spec = text.partition("=")
    if not equals or not host:
        raise argparse.ArgumentTypeError(f"--latency wants HOST=MS or HOST=MIN-MAX, not {text!r}")
    return host, parse_latency(spec)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m linkkeeper.faultweb",
        description="A local web that plays every way a real web fails (loopback only).",
    )
    parser.add_argument("--http-port", type=int, default=0, help="plain HTTP port (0: any free)")
    parser.add_argument("--https-port", type=int, default=0, help="TLS port, good certificate")
    parser.add_argument(
        "--https-expired-port", type=int, default=0, help="TLS port, expired certificate"
    )
    parser.add_argument(
        "--https-wrongname-port", type=int, default=0, help="TLS port, certificate for another name"
    )
    parser.add_argument(
        "--host",
        action="append",
        dest="hosts",
        metavar="NAME",
        help=f"a virtual host to serve (repeatable; default: {', '.join(DEFAULT_HOSTS)})",
    )
    parser.add_argument(
        "--latency",
        action="append",
        type=parse_host_latency,
        default=[],
        metavar="HOST=MS|HOST=MIN-MAX",
        help="latency added before answering that host (repeatable)",
    )
    parser.add_argument(
        "--default-latency",
        type=parse_latency,
        default=0.0,
        metavar="MS|MIN-MAX",
        help="latency for hosts without their own",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for latency ranges")
    parser.add_argument(
        "--capacity",
        action="append",
        default=[],
        type=parse_host_count,
        metavar="HOST=N",
        help="serve at most N requests of that host at once; more wait their turn (repeatable)",
    )
    parser.add_argument(
        "--shed",
        action="append",
        default=[],
        type=parse_host_count,
        metavar="HOST=N",
        help="with N requests of that host in the house, answer 429 Retry-After: 1 (repeatable)",
    )
    parser.add_argument(
        "--state-file", type=Path, help="also write the startup JSON here (removed at exit)"
    )
    parser.add_argument("--log", type=Path, help="write the request log here as JSON lines at exit")
    parser.add_argument(
        "--stats",
        type=Path,
        help="write per-host politeness (requests, peak connections, peak requests) as JSON at exit",
    )
    parser.add_argument(
        "--list", action="store_true", help="list the behaviours by path, then exit"
    )
    return parser


def behaviour_table() -> str:
    """One line per behaviour: the path that selects it and what it plays."""
    rows = [("/" + b.name if b.name != "*" else "(other)", b.doc) for b in (*DEFAULT_BEHAVIOURS, *HOSTILE_BEHAVIOURS)]
    width = max(len(path) for path, _ in rows)
    return "\n".join(f"{path:<{width}}  {doc}" for path, doc in rows)


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


async def serve(args: argparse.Namespace) -> None:
    web = FaultWeb(
        hosts=args.hosts or DEFAULT_HOSTS,
        latency=dict(args.latency),
        default_latency=args.default_latency,
        seed=args.seed,
        http_port=args.http_port,
        https_port=args.https_port,
        https_expired_port=args.https_expired_port,
        https_wrongname_port=args.https_wrongname_port,
        capacity=dict(args.capacity),
        shed=dict(args.shed),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await web.astart()
    try:
        line = json.dumps({**web.describe(), "pid": os.getpid()})
        if args.state_file:
            _write_atomically(args.state_file, line + "\n")
        print(line, flush=True)
        await stop.wait()
    finally:
        await web.aclose()
        if args.log:
            _write_atomically(
                args.log, "".join(json.dumps(entry.to_dict()) + "\n" for entry in web.log)
            )
        if args.stats:
            _write_atomically(args.stats, json.dumps(web.stats(), indent=2) + "\n")
        if args.state_file:
            with contextlib.suppress(FileNotFoundError):
                args.state_file.unlink()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.list:
        print(behaviour_table())
        return 0
    try:
        asyncio.run(serve(args))
    except OSError as error:
        print(f"faultweb: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
