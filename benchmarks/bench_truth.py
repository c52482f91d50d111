"""Truth benchmark: soft-404 precision/recall, wrong deaths and the probes' cost, on a known world.

The world (tests/truth_world.py) is >= 1,000 links over 16 news sites that
answer unknown paths in every way the issue lists (honest 404, "not found"
pages in English, GBK and Big5 Chinese, quiet and varying error pages, the home
page itself, redirects home or to a section, meta refresh, a 200 "removed"
notice), plus a bot-blocking site, a site down for one night and a host whose
name is gone. Each link's truth is known. It is replayed for several nights
(recorded one day apart, no sleeping) in each mode:

* ``off``: ``--no-soft404``, HEAD first (the baseline request count);
* ``on``: soft-404 detection as `check` runs it by default (HEAD first);
* ``on+read``: ``--read-pages`` (GET page links instead of HEAD).

    .venv/bin/python benchmarks/bench_truth.py                # 6 nights, ~1,150 links
    .venv/bin/python benchmarks/bench_truth.py --size 3000 --nights 4

Everything runs on loopback (offline DNS, --connect-to style mappings).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from truth_world import generate, replay, score  # noqa: E402

from linkkeeper.db import connect  # noqa: E402
from linkkeeper.faultweb import FaultWeb  # noqa: E402

MODES = {"off": {"soft404": False}, "on": {"soft404": True},
         "on+read": {"soft404": True, "read_pages": True}}


async def measure(size: int, nights: int, seed: int) -> dict[str, Any]:
    world = generate(size=size, seed=seed)
    out: dict[str, Any] = {"links": len(world.links), "nights": nights, "modes": {}}
    with FaultWeb(hosts=world.served_hosts) as fault_web, tempfile.TemporaryDirectory() as tmp:
        world.install(fault_web)
        for mode, flags in MODES.items():
            db = connect(Path(tmp) / f"{mode}.db")
            runs = await replay(world, fault_web, db, nights, **flags)
            result = score(world, runs)
            result["requests_first_night"] = runs[0].requests
            result["served_first_night"] = runs[0].served
            result["requests_all_nights"] = sum(n.requests for n in runs)
            result["probes_per_night"] = runs[0].probes
            result["seconds_per_night"] = round(sum(n.seconds for n in runs) / nights, 1)
            out["modes"][mode] = result
            print(f"{mode}: {json.dumps(_row(result))}", file=sys.stderr)
    return out


def _row(result: dict[str, Any]) -> dict[str, Any]:
    return {k: result[k] for k in ("soft404_precision", "soft404_recall", "wrongly_dead",
                                   "dead_confirmed", "dead_truth", "requests_all_nights",
                                   "probes_per_night")}


def table(out: dict[str, Any]) -> str:
    base = out["modes"]["off"]["requests_all_nights"]
    lines = [
        "| mode | soft-404 precision | soft-404 recall | alive/blocked/transient ever dead "
        "| truly dead confirmed | probes per night | requests, all nights | vs off |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for mode, r in out["modes"].items():
        flagged = mode != "off"
        lines.append(
            f"| {mode} | {r['soft404_precision']:.3f} | "
            f"{r['soft404_recall']:.3f} | {len(r['wrongly_dead'])} | "
            f"{r['dead_confirmed']}/{r['dead_truth']} | {r['probes_per_night']} | "
            f"{r['requests_all_nights']} | "
            f"{(r['requests_all_nights'] / base - 1) * 100:+.1f}% |"
            if flagged
            else f"| {mode} | - | - | {len(r['wrongly_dead'])} | "
            f"{r['dead_confirmed']}/{r['dead_truth']} | 0 | {r['requests_all_nights']} | - |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--size", type=int, default=1200, help="links in the world (about)")
    parser.add_argument("--nights", type=int, default=6)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, default=REPO / "benchmarks/out/truth.json")
    args = parser.parse_args(argv)
    out = asyncio.run(measure(args.size, args.nights, args.seed))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=1, default=str))
    print(f"{out['links']} links, {out['nights']} nights\n")
    print(table(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
