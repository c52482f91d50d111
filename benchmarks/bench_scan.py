"""Scan benchmark: `linkkeeper scan` of a generated 20,000-post site, on one core.

Measures the first scan (posts/s, CPU, peak RSS) and a no-change rescan (wall time), each
as a separate process pinned with ``taskset -c 0``, against the aims of issue 2: at least
2,000 posts/s on one core, a no-change rescan under 2 s, peak RSS under 200 MB.

    .venv/bin/python benchmarks/bench_scan.py                 # print the table
    .venv/bin/python benchmarks/bench_scan.py --write-md      # also update BENCHMARKS.md

The site is generated once into benchmarks/out/ and reused. ``--linkkeeper`` names the
executable to measure (any program taking ``scan SITE --db DB --format json`` will do).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from harness import REPO, cached_site, provenance, update_section
from measure import OUT_DIR, markdown_table, measure, record

AIMS = {"posts_per_s": 2000.0, "rescan_s": 2.0, "peak_rss_mb": 200.0}
COLUMNS = (
    ("label", "run"),
    ("posts", "posts"),
    ("wall_s", "wall s"),
    ("posts_per_s", "posts/s"),
    ("cpu_s", "CPU s"),
    ("peak_rss_mb", "peak RSS MB"),
    ("verdict", "aim"),
)


def _remove_db(db: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)


def _summary(result: dict[str, Any]) -> dict[str, Any]:
    """The scan's own JSON summary, or a clear failure that stops the benchmark."""
    if result["exit_code"] != 0 or result["timed_out"]:
        raise SystemExit(
            f"{result['label']} failed (exit {result['exit_code']}):\n{result['stderr_tail']}"
        )
    try:
        return json.loads(result["stdout"] or "")
    except json.JSONDecodeError:
        raise SystemExit(
            f"{result['label']}: no JSON summary on stdout:\n{(result['stdout'] or '')[:500]}"
        ) from None


def run(
    linkkeeper: str, posts: int, seed: int, cpus: str | None, timeout: float
) -> list[dict[str, Any]]:
    site, manifest = cached_site(f"site-scan-{posts}-s{seed}", posts=posts, seed=seed)
    db = OUT_DIR / f"scan-{posts}-s{seed}.db"
    _remove_db(db)
    command = [linkkeeper, "scan", str(site), "--db", str(db), "--format", "json"]
    rows = []
    runs = [
        ("first scan", [*command, "--jobs", "1"], cpus),
        ("no-change rescan", command, cpus),
        # the default (--jobs 0: one parsing process per CPU), on the whole machine
        ("first scan, all cores", command, None),
    ]
    for label, argv, pin in runs:
        if label == "first scan, all cores":
            _remove_db(db)
        result = measure(argv, label=label, cpus=pin, timeout=timeout)
        summary = _summary(result)
        seen = summary.get("posts")
        if seen != manifest["posts"]:
            raise SystemExit(
                f"{label}: scan reports {seen} posts, the site has {manifest['posts']}"
            )
        result["posts"] = manifest["posts"]
        result["posts_per_s"] = round(manifest["posts"] / result["wall_s"], 1)
        result["scan_summary"] = {
            k: summary.get(k) for k in ("parsed", "unchanged", "occurrences", "distinct_urls")
        }
        if label.startswith("first scan"):
            speed_ok = result["posts_per_s"] >= AIMS["posts_per_s"]
            memory_ok = result["peak_rss_mb"] < AIMS["peak_rss_mb"]
            result["verdict"] = (
                f"speed {'met' if speed_ok else 'missed'} (≥{AIMS['posts_per_s']:.0f} posts/s), "
                f"memory {'met' if memory_ok else 'missed'} (<{AIMS['peak_rss_mb']:.0f} MB)"
            )
        else:
            ok = result["wall_s"] < AIMS["rescan_s"]
            result["verdict"] = f"{'met' if ok else 'missed'} (<{AIMS['rescan_s']:.0f} s)"
        record(result, benchmark="scan", site=manifest["arguments"], cpus=pin)
        rows.append(result)
    _remove_db(db)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--linkkeeper", default=str(REPO / ".venv" / "bin" / "linkkeeper"))
    parser.add_argument("--posts", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cpus", default="0", help="taskset CPU list; 'all' to not pin")
    parser.add_argument("--timeout", type=float, default=240.0, help="per run, seconds")
    parser.add_argument("--write-md", action="store_true", help="update BENCHMARKS.md")
    args = parser.parse_args(argv)
    cpus = None if args.cpus == "all" else args.cpus
    rows = run(args.linkkeeper, args.posts, args.seed, cpus, args.timeout)
    table = markdown_table(rows, COLUMNS)
    first = rows[0]["scan_summary"]
    detail = (
        f"{args.posts:,} posts, {first['occurrences']:,} link occurrences, "
        f"{first['distinct_urls']:,} distinct URLs; "
        f"{'pinned to CPU ' + cpus if cpus else 'not pinned'}."
    )
    command_line = " ".join(
        shlex.quote(a) for a in ["python", "benchmarks/bench_scan.py", *(argv or sys.argv[1:])]
    )
    print(table)
    print()
    print(detail)
    if args.write_md:
        update_section("scan", f"{table}\n\n{detail}\n{provenance(command_line)}")
        print("BENCHMARKS.md updated (scan section)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
