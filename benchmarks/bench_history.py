"""History growth: database size per million checks, and `report` on a long history.

A site with L distinct URLs (gen_site, L/4 posts) is scanned by ``linkkeeper scan``; then
R nightly runs are recorded through the library itself, the way ``check`` records them
(``history.runs.start_run`` plans every URL, ``history.recorder.Recorder`` writes each
synthetic `CheckResult`: checks, link states, the run's counters), one day apart, with a
fixed mix of outcomes (85% ok, 5% permanent redirects, 5% 404, 2% 503 on odd nights, 1%
timeouts every third night, 2% bot-blocked 403; a third of the answers carry a body
digest). The database size is read after each run (WAL checkpointed), so the growth per
million checks is measured, not extrapolated.

Then, each as a fresh process (wall, CPU, peak RSS): ``linkkeeper report`` to HTML,
``--format json`` (streamed) and ``linkkeeper history URL``; and the HTML page opened from
disk in headless Chromium (benchmarks/bench_report.py's DevTools client): load event and
first page of the links table shown.

    .venv/bin/python benchmarks/bench_history.py --links 2000 --runs 5     # quick
    .venv/bin/python benchmarks/bench_history.py --links 100000 --runs 30 --write-md
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from charts import CHARTS_DIR, Series, line_chart, remember
from harness import REPO, cached_site, provenance, update_section
from measure import OUT_DIR, markdown_table, measure, record

START = datetime(2026, 10, 1, 2, 0, tzinfo=UTC)
AIM_HTML_S, AIM_PAINT_S = 60.0, 2.0
COLUMNS = (
    ("label", "run"),
    ("wall_s", "wall s"),
    ("cpu_s", "CPU s"),
    ("peak_rss_mb", "peak RSS MB"),
    ("out_mb", "output MB"),
)


def db_size(path: Path) -> int:
    return sum(Path(f"{path}{s}").stat().st_size for s in ("", "-wal")
               if Path(f"{path}{s}").exists())


def synthetic(url: str, index: int, night: int) -> Any:
    """One night's check of one URL: a fixed, deterministic mix of outcomes."""
    from linkkeeper.check.result import CheckResult, Hop
    from linkkeeper.vocab import Status

    bucket = (index * 2654435761) % 1000
    started = START + timedelta(days=night, milliseconds=index)
    common = {"attempts": 1, "requests": 1, "method": "HEAD", "started_at": started,
              "ip": "127.0.0.1", "elapsed_ms": 20.0 + bucket % 80, "host": url.split("/")[2]}
    if bucket % 3 == 0:
        common |= {"method": "GET", "digest": f"sha1:{index:032d}"}
    flaky_ok = (950 <= bucket < 970 and night % 2 == 0) or (970 <= bucket < 980 and night % 3)
    if bucket < 850 or flaky_ok:
        return CheckResult(url, Status.OK, "200 OK", 200, content_type="text/html",
                           content_length=8000 + bucket, **common)
    if bucket < 900:
        target = url.rstrip("/") + "/moved"
        return CheckResult(url, Status.REDIRECTED, "301 to " + target, 200, final_url=target,
                           redirects=[Hop(url, 301, target)], permanent_redirect=True, **common)
    if bucket < 950:
        return CheckResult(url, Status.BROKEN, "404 Not Found", 404, **common)
    if bucket < 970:
        return CheckResult(url, Status.SERVER_ERROR, "503 Service Unavailable", 503, **common)
    if bucket < 980:
        return CheckResult(url, Status.TIMEOUT, "timed out after 30 s", None,
                           error="TimeoutError", **common)
    return CheckResult(url, Status.BLOCKED, "403 Forbidden (bot block)", 403, **common)


TEMPLATE = 1000  # synthetic()'s outcome depends on index % 1000 only (bucket is a bijection)
_SHIFT = "strftime('%Y-%m-%dT%H:%M:%S+00:00', {col}, '+' || (i.n / 1000) || ' seconds')"
_STATE_TIMES = ("since", "first_failed", "last_ok", "first_fingerprint_at", "last_checked")


def _index_table(db: Any, urls: list[str]) -> None:
    db.execute("DROP TABLE IF EXISTS temp.bench_index")
    db.execute("CREATE TEMP TABLE bench_index (n INTEGER PRIMARY KEY, url TEXT, t INTEGER)")
    db.conn.executemany("INSERT INTO bench_index VALUES (?,?,?)",
                        ((n, u, n % TEMPLATE) for n, u in enumerate(urls)))


def _redirect_json(url: str) -> str:
    """The `redirects` column Recorder writes for synthetic()'s permanent redirect of `url`."""
    target = url.rstrip("/") + "/moved"
    return json.dumps([{"url": url, "status": 301, "location": target}])


def _copy_night(db: Any, run_id: int) -> None:
    """Every URL past the template gets its template URL's check and link_state rows of this
    night, with its own URL, its own digest and its timestamps moved by index // 1000 s
    (synthetic() starts URL n at night + n ms: the same second as its template plus n // 1000)."""
    from linkkeeper.history.recorder import _CHECK_COLS, _LINK_STATE_COLS

    cols = [c for c in _CHECK_COLS if c not in ("run_id", "url")]
    pick = {c: f"t.{c}" for c in cols}
    pick |= {
        "checked_at": _SHIFT.format(col="t.checked_at"),
        "digest": "CASE WHEN t.digest IS NULL THEN NULL ELSE printf('sha1:%032d', i.n) END",
        "final_url": "CASE WHEN t.status = 'redirected' THEN rtrim(i.url, '/') || '/moved'"
                     " ELSE t.final_url END",
        "reason": "CASE WHEN t.status = 'redirected' THEN '301 to ' || rtrim(i.url, '/')"
                  " || '/moved' ELSE t.reason END",
        "redirects": "CASE WHEN t.redirects IS NULL THEN NULL ELSE bench_redirect(i.url) END",
    }
    db.execute(
        f"INSERT INTO checks (run_id, url, {', '.join(cols)}) SELECT ?, i.url, "
        + ", ".join(pick[c] for c in cols)
        + " FROM bench_index i JOIN bench_index ti ON ti.n = i.t"
        " JOIN checks t ON t.run_id = ? AND t.url = ti.url WHERE i.n >= ? ORDER BY i.n",
        [run_id, run_id, TEMPLATE],
    )
    state_cols = [c for c in _LINK_STATE_COLS if c != "url"]
    values = [_SHIFT.format(col=f"s.{c}") if c in _STATE_TIMES else f"s.{c}" for c in state_cols]
    db.execute(
        f"INSERT INTO link_state (url, {', '.join(state_cols)}) SELECT i.url, {', '.join(values)}"
        " FROM bench_index i JOIN bench_index ti ON ti.n = i.t"
        " JOIN link_state s ON s.url = ti.url WHERE i.n >= ? ORDER BY i.n"
        " ON CONFLICT(url) DO UPDATE SET "
        + ", ".join(f"{c}=excluded.{c}" for c in state_cols),
        [TEMPLATE],
    )


def _recount(db: Any, run_id: int) -> None:
    """The run's counters as Recorder keeps them (statuses in the order first met: all of
    them are met among the template URLs, which come first)."""
    old = json.loads(db.execute("SELECT counts FROM runs WHERE id=?", [run_id]).fetchone()[0])
    found = dict(db.execute("SELECT status, count(*) FROM checks WHERE run_id=? GROUP BY status",
                            [run_id]).fetchall())
    counts = {k: found[k] for k in old} | {k: v for k, v in found.items() if k not in old}
    done, requests = db.execute("SELECT count(*), coalesce(sum(requests), 0) FROM checks"
                                " WHERE run_id=?", [run_id]).fetchone()
    db.execute("UPDATE runs SET done=?, requests=?, counts=? WHERE id=?",
               [done, requests, json.dumps(counts), run_id])


def build(db_path: Path, runs: int, sizes: Path, bulk: bool = False) -> None:
    """Record ``runs`` nights over the scanned links; one JSON line of size per night.

    Each night goes through `start_run` + `Recorder` as `check` does. With ``bulk`` only
    the first TEMPLATE URLs (index order) are recorded, and every other URL's rows are
    copied by SQL from the template URL with the same outcome (`_copy_night`), in the
    same transaction-free bulk way a merge would: benchmarks/tests/test_scale_benchmarks.py
    checks that this gives the same checks, link states, plans, runs and JSON report."""
    from linkkeeper.db import Transaction, connect
    from linkkeeper.history.recorder import Recorder
    from linkkeeper.history.runs import start_run

    db = connect(db_path)
    urls = [row[0] for row in db.execute("SELECT url FROM links ORDER BY url")]
    if bulk:
        db.conn.create_function("bench_redirect", 1, _redirect_json, deterministic=True)
        _index_table(db, urls)
    recorded = urls[:TEMPLATE] if bulk else urls
    with sizes.open("w", encoding="utf-8") as out:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        out.write(json.dumps({"night": 0, "checks": 0, "bytes": db_size(db_path)}) + "\n")
        for night in range(1, runs + 1):
            started = time.perf_counter()
            run = start_run(db, urls, options={"benchmark": "history"}, new_run=True)
            recorder = Recorder(db, run.id, batch_size=500)
            for index, url in enumerate(recorded):
                recorder.add(synthetic(url, index, night))
            recorder.finish()
            if bulk:
                with Transaction(db):
                    _copy_night(db, run.id)
                    _recount(db, run.id)
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            out.write(json.dumps({"night": night, "checks": night * len(urls),
                                  "bytes": db_size(db_path),
                                  "seconds": round(time.perf_counter() - started, 2)}) + "\n")
            out.flush()


def cached_history(links: int, runs: int, bulk: bool = False
                   ) -> tuple[Path, list[dict[str, Any]]]:
    """The database of ``runs`` nights over ``links`` URLs (built once in a child process)."""
    folder = OUT_DIR / f"history-{links}-{runs}"
    db, sizes, done = folder / "linkkeeper.db", folder / "sizes.jsonl", folder / "done"
    if not done.exists():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        site, _ = cached_site(f"site-history-{links}", posts=max(links // 4, 1), hosts=20,
                              distinct_urls=links)
        linkkeeper = str(REPO / ".venv" / "bin" / "linkkeeper")
        subprocess.run([linkkeeper, "scan", str(site), "--db", str(db), "--format", "json"],
                       check=True, stdout=subprocess.DEVNULL)
        started = time.perf_counter()
        subprocess.run([str(REPO / ".venv" / "bin" / "python"), __file__, "--build-into",
                        str(db), "--runs", str(runs), "--sizes-to", str(sizes)]
                       + (["--bulk"] if bulk else []), check=True)
        done.write_text(f"{time.perf_counter() - started:.1f} s {'bulk' if bulk else 'Recorder'}\n")
    lines = [json.loads(line) for line in sizes.read_text().splitlines() if line.strip()]
    return db, lines


def reports(db: Path, links: int) -> tuple[list[dict[str, Any]], dict[str, float]]:
    out = db.parent / "report"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    base = [str(REPO / ".venv" / "bin" / "linkkeeper"), "report", "--db", str(db)]
    with sqlite3.connect(db) as conn:
        some_url = conn.execute("SELECT url FROM links ORDER BY url LIMIT 1 OFFSET 7").fetchone()[0]
    runs = [
        ("report, HTML", [*base, "-o", str(out / "index.html")], out / "index.html"),
        ("report --format json (streamed)", [*base, "--format", "json", "-o",
                                             str(out / "r.json")], out / "r.json"),
        ("history URL", [str(REPO / ".venv" / "bin" / "linkkeeper"), "history", some_url,
                         "--db", str(db)], None),
    ]
    rows = []
    for label, command, output in runs:
        result = measure(command, label=label, timeout=1800)
        if result["exit_code"] != 0:
            raise SystemExit(f"{label} failed:\n{result['stderr_tail']}")
        if output is not None:
            result["out_mb"] = round(output.stat().st_size / 1e6, 2)
            files = output.with_name(f"{output.stem}.files")
            if files.is_dir():  # a split HTML table: its row files beside the page
                chunks = list(files.glob("*/rows-*.js"))
                result["files"] = len(chunks)
                result["files_mb"] = round(sum(f.stat().st_size for f in chunks) / 1e6, 1)
        record(result, benchmark="history", links=links)
        rows.append(result)
    page: dict[str, float] = {}
    try:
        from bench_report import page_timings

        page = asyncio.run(page_timings(out / "index.html"))
    except Exception as exc:  # no Chromium here: say so, keep the rest
        page = {"error": f"{type(exc).__name__}: {exc}"[:200]}  # type: ignore[dict-item]
    return rows, page


def summary_text(links: int, runs: int, sizes: list[dict[str, Any]], rows: list[dict[str, Any]],
                 page: dict[str, Any], bulk: bool = False) -> str:
    first, last = sizes[0], sizes[-1]
    per_million = (last["bytes"] - first["bytes"]) / last["checks"] * 1e6 / 1e6
    html = rows[0]
    lines = [
        f"{links:,} links × {runs} nightly runs = {last['checks']:,} checks recorded "
        + ("(`--bulk`: 1,000 URLs a night through `Recorder`, their rows copied by SQL to "
           "the others" if bulk else "through `Recorder` (")
        + f"; median {sorted(s.get('seconds', 0) for s in sizes[1:])[runs // 2]:.1f} s "
        f"a night in one process): database {first['bytes'] / 1e6:,.0f} MB after the scan, "
        f"{last['bytes'] / 1e6:,.0f} MB after {runs} runs: **{per_million:,.0f} MB per million "
        "checks** (checks rows, their indexes, link states and each run's plan).",
        f"HTML report built in {html['wall_s']:.1f} s, {html['cpu_s']:.1f} CPU s, peak RSS "
        f"{html['peak_rss_mb']:.0f} MB (aim < {AIM_HTML_S:.0f} s: "
        f"{'met' if html['wall_s'] < AIM_HTML_S else 'missed'} in wall time, "
        f"{'met' if html['cpu_s'] < AIM_HTML_S else 'missed'} in CPU time).",
    ]
    if html.get("files"):
        lines.append(f"The page is {html['out_mb']:.2f} MB with the table's first rows; the "
                     f"other rows are in {html['files']} files beside it ({html['files_mb']:.0f}"
                     " MB), read when a reader needs them.")
    if "table_s" in page:
        verdict = "met" if page["table_s"] < AIM_PAINT_S else "missed"
        lines.append(f"Chromium: first contentful paint {page['first_contentful_paint_ms'] / 1000:.2f}"
                     f" s, load event {page['load_s']:.2f} s, first page of the links "
                     f"table shown at {page['table_s']:.2f} s (aim < {AIM_PAINT_S:.0f} s: "
                     f"{verdict}); a search over all {links:,} rows (every row file read) "
                     f"{page['search_ms'] / 1000:.1f} s, then a sort {page['sort_ms'] / 1000:.1f} s.")
    else:
        lines.append(f"Chromium: not measured ({page.get('error')}).")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--links", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--write-md", action="store_true", help="update BENCHMARKS.md + charts")
    parser.add_argument("--bulk", action="store_true",
                        help="record the nights by SQL copies of 1,000 recorded URLs (build(bulk=True))")
    parser.add_argument("--build-into", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--sizes-to", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.build_into:  # the child that records the runs
        build(args.build_into, args.runs, args.sizes_to, bulk=args.bulk)
        return 0
    load_before = os.getloadavg()[0]
    db, sizes = cached_history(args.links, args.runs, args.bulk)
    rows, page = reports(db, args.links)
    text = markdown_table(rows, COLUMNS)
    sentence = summary_text(args.links, args.runs, sizes, rows, page, args.bulk)
    command_line = " ".join(
        shlex.quote(a) for a in ["python", "benchmarks/bench_history.py", *(argv or sys.argv[1:])]
    )
    print(text)
    print(sentence)
    if args.write_md:
        series = [Series("database MB", [(s["checks"], s["bytes"] / 1e6) for s in sizes])]
        line_chart(f"History: database size, {args.links:,} links, one run a night",
                   "checks recorded", "MB", series, CHARTS_DIR / "history_size.svg")
        remember("history_report", "HTML report s", args.links * args.runs, rows[0]["wall_s"])
        update_section(
            f"history-{args.links}-{args.runs}",
            f"{text}\n\n{sentence}\n1-minute load average before the run: {load_before:.2f}. "
            + provenance(command_line),
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
