"""History retention: `linkkeeper prune` on the history database of `bench_history.py`.

Copies the database of ``--runs`` nights × ``--links`` URLs (built once, as
`bench_history.py` builds it), then measures, each as a fresh process: `linkkeeper
prune --keep-runs K` (the checks of the older runs go), the same command again (nothing
left to do), `prune --vacuum` (the file shrinks), and `report --format json` before and
after (the same document but for its time stamp). Sizes are the file plus its WAL.

    python benchmarks/bench_prune.py --links 100000 --runs 6 --keep-runs 2 --write-md
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

from bench_history import cached_history
from harness import REPO, provenance, update_section
from measure import OUT_DIR, markdown_table, measure, record

COLUMNS = [("label", "run"), ("wall_s", "wall s"), ("cpu_s", "CPU s"),
           ("peak_rss_mb", "peak RSS MB"), ("db_mb", "database MB after")]


def _bytes(db: Path) -> int:
    return sum(p.stat().st_size for p in (db, Path(f"{db}-wal")) if p.exists())


def _run(label: str, command: list[str], db: Path) -> dict[str, Any]:
    result = measure(command, label=label, timeout=7200)
    if result["exit_code"] != 0:
        raise SystemExit(f"{label} failed:\n{result['stderr_tail']}")
    result["db_mb"] = round(_bytes(db) / 1e6, 1)
    return result


def _report(linkkeeper: str, db: Path, out: Path) -> dict[str, Any]:
    return _run("report --format json", [linkkeeper, "report", "--db", str(db), "--format",
                                         "json", "-o", str(out)], db)


def _document(path: Path) -> dict[str, Any]:
    """A report without its time stamp. Read only after every measured run: a child's
    peak RSS starts at this process's size when it is forked."""
    document = json.loads(path.read_text(encoding="utf-8"))
    document["report"].pop("generated_at", None)
    return document


def run(links: int, runs: int, keep: int) -> tuple[list[dict[str, Any]], str]:
    source, _ = cached_history(links, runs, bulk=True)
    folder = OUT_DIR / f"prune-{links}-{runs}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    db = folder / "linkkeeper.db"
    shutil.copyfile(source, db)
    linkkeeper = str(REPO / ".venv" / "bin" / "linkkeeper")
    before_mb = _bytes(db) / 1e6
    report_before = _report(linkkeeper, db, folder / "before.json")
    prune = [linkkeeper, "prune", "--db", str(db), "--keep-runs", str(keep), "--format", "json"]
    first = _run(f"prune --keep-runs {keep}", prune, db)
    pruned = json.loads(first["stdout"])
    again = _run(f"prune --keep-runs {keep} again (nothing to do)", prune, db)
    vacuum = _run("prune --vacuum", [*prune, "--vacuum"], db)
    report_after = _report(linkkeeper, db, folder / "after.json")
    report_before["label"] += " (before)"
    report_after["label"] += " (after)"
    rows = [report_before, first, again, vacuum, report_after]
    for row in rows:
        record(row, benchmark="prune", links=links, runs=runs, load=os.getloadavg()[0])
    same = ("the same" if _document(folder / "before.json") == _document(folder / "after.json")
            else "**not** the same")
    checks = pruned["checks_deleted"] + pruned["checks_kept"]
    sentence = (
        f"{links:,} links × {runs} nights ({links * runs:,} checks), database "
        f"{before_mb:,.0f} MB. `prune --keep-runs {keep}` pruned runs "
        f"{pruned['runs'][0]}–{pruned['runs'][-1]}: {pruned['checks_deleted']:,} of their "
        f"{checks:,} checks deleted ({pruned['checks_kept']:,} kept) and "
        f"{pruned['plan_rows_deleted']:,} plan rows, in {first['wall_s']:.1f} s "
        f"({first['cpu_s']:.1f} CPU s, {pruned['checks_deleted'] / max(first['wall_s'], 1e-9):,.0f}"
        f" checks/s); {pruned['free_bytes'] / 1e6:,.0f} MB became free inside the file; "
        f"`--vacuum` then took {vacuum['wall_s']:.1f} s and left {vacuum['db_mb']:,.0f} MB. "
        f"The JSON report before and after is {same} document (but for its time stamp)."
    ) if pruned["runs"] else "nothing to prune"
    return rows, sentence


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--links", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--keep-runs", type=int, default=2)
    parser.add_argument("--write-md", action="store_true", help="update BENCHMARKS.md")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    rows, sentence = run(args.links, args.runs, args.keep_runs)
    text = markdown_table(rows, COLUMNS)
    print(text)
    print(sentence)
    if args.write_md:
        command_line = " ".join(shlex.quote(a) for a in
                                ["python", "benchmarks/bench_prune.py", *(argv or sys.argv[1:])])
        update_section(f"prune-{args.links}-{args.runs}",
                       f"{text}\n\n{sentence}\n1-minute load average before the run: "
                       f"{load_before:.2f}. " + provenance(command_line))
    return 0


if __name__ == "__main__":
    sys.exit(main())
