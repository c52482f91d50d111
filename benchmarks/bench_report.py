"""Benchmark `linkkeeper report`: generation time, memory and HTML size, and page load in Chromium.

The history is synthetic and written straight into SQLite with bulk inserts (a
real 30-night history of 100,000 links would take days to record): posts from
2005 to 2024, about five links per post, 30 runs one day apart, a realistic mix
of statuses (most links alive; older posts rot more; some soft-404s, flaky
servers, bot blocks), link states and WARC snapshot rows for most live links.
The database is cached in benchmarks/out/ per size.

Each report format runs as a subprocess under `measure` (wall time, CPU, peak
RSS). The HTML page is then opened from disk in headless Chromium (DevTools
protocol, see tests/test_report_browser.py): first paint and DOMContentLoaded (the
page's own Performance entries), time to the load event, time until
the all-links table has rendered its first page, and the time of one text
search and one sort over all rows, measured inside the page.

    .venv/bin/python benchmarks/bench_report.py                 # 10,000 and 100,000 links
    .venv/bin/python benchmarks/bench_report.py --links 10000 --no-write
    .venv/bin/python benchmarks/bench_report.py --links 100000 --html-only --no-write
    .venv/bin/python benchmarks/bench_report.py --page out/report-100000/index.html --repeat 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import statistics
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(0, str(BENCH_DIR.parent / "tests"))

from harness import provenance, update_section  # noqa: E402
from measure import OUT_DIR, measure  # noqa: E402

from linkkeeper.db import connect  # noqa: E402

FAILURES = {"broken", "soft-404", "timeout", "server-error", "tls-error", "network-error"}
START = datetime(2026, 10, 1, 2, 0, tzinfo=UTC)


def iso(dt: datetime) -> str:
    return dt.isoformat(timespec="seconds")


def synthetic_history(path: Path, links: int, runs: int = 30, seed: int = 1) -> Path:
    """Write a history of `links` URLs over `runs` nightly runs into a fresh database."""
    rng = random.Random(seed)
    path.unlink(missing_ok=True)
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    connect(path).conn.close()  # the real schema and indexes
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    hosts = [f"www.news{i}.example" for i in range(max(20, links // 60))]
    blocked_hosts = set(hosts[:: max(1, len(hosts) // 3)][:3])
    n_posts = max(1, links // 5)
    posts = []
    for i in range(n_posts):
        day = datetime(2005, 1, 1, tzinfo=UTC) + timedelta(days=int(7300 * i / n_posts))
        posts.append((f"_posts/{day:%Y-%m-%d}-story-{i}.md", f"Story {i}: a headline", iso(day)))
    conn.executemany(
        "INSERT INTO posts (path, title, date, ok, occurrence_count, scanned_at)"
        " VALUES (?,?,?,1,0,?)",
        ((p, t, d, iso(START)) for p, t, d in posts),
    )
    link_rows, occ_rows, fates = [], [], []
    kinds = ["source", "image", "related", "related", "inline"]
    for i in range(links):
        host = hosts[rng.randrange(len(hosts))]
        url = f"https://{host}/news/{i // 1000}/article-{i}.html"
        post_index = min(n_posts - 1, i // 5)
        link_rows.append((url, host, "https", iso(START), iso(START)))
        cited = [post_index] + ([rng.randrange(n_posts)] if rng.random() < 0.3 else [])
        for j, p in enumerate(cited):
            occ_rows.append((posts[p][0], url, kinds[(i + j) % 5], 8 + i % 20, f"link {i}"))
        age = 1 - post_index / n_posts  # older posts rot more
        roll = rng.random()
        if host in blocked_hosts:
            fate = ("blocked", 0)
        elif roll < 0.10 + 0.25 * age:
            fate = ("soft-404" if rng.random() < 0.2 else "broken", rng.randrange(-runs, runs))
        elif roll < 0.13 + 0.25 * age:
            fate = ("flaky", 0)
        elif roll < 0.18 + 0.25 * age:
            fate = ("redirected", 0)
        else:
            fate = ("ok", 0)
        fates.append(fate)
    conn.executemany(
        "INSERT INTO links (url, host, scheme, first_seen, last_seen) VALUES (?,?,?,?,?)", link_rows
    )
    conn.executemany(
        "INSERT INTO occurrences (post, url, kind, line, text) VALUES (?,?,?,?,?)", occ_rows
    )
    history: list[list[str]] = [[] for _ in range(links)]
    for run in range(1, runs + 1):
        when = START + timedelta(days=run - 1)
        counts: Counter[str] = Counter()
        rows = []
        for i, (fate, death) in enumerate(fates):
            if fate in ("broken", "soft-404"):
                status = fate if run > death else "ok"
            elif fate == "flaky":
                status = "server-error" if rng.random() < 0.3 else "ok"
            else:
                status = fate
            code = {
                "ok": 200,
                "redirected": 200,
                "broken": 404,
                "soft-404": 200,
                "server-error": 503,
                "blocked": 403,
            }[status]
            prev = history[i][-1] if history[i] else None
            history[i].append(status)
            counts[status] += 1
            rows.append(
                (
                    run,
                    link_rows[i][0],
                    status,
                    f"HEAD {code}, GET {code}",
                    code,
                    "GET",
                    1,
                    1,
                    40.0,
                    iso(when + timedelta(seconds=i % 3600)),
                    int(status in FAILURES and prev not in FAILURES),
                )
            )
        conn.execute(
            "INSERT INTO runs (id, started_at, finished_at, state, command, software, total,"
            " done, requests, counts) VALUES (?,?,?,'complete','check','bench',?,?,?,?)",
            (
                run,
                iso(when),
                iso(when + timedelta(hours=1)),
                links,
                links,
                links,
                json.dumps(counts),
            ),
        )
        conn.executemany(
            "INSERT INTO checks (run_id, url, status, reason, http_status, method, attempts,"
            " requests, elapsed_ms, checked_at, new_failure) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            rows,
        )
    last = START + timedelta(days=runs - 1)
    states, snaps = [], []
    for i, seq in enumerate(history):
        url = link_rows[i][0]
        fails = 0
        for status in reversed(seq):
            if status not in FAILURES:
                break
            fails += 1
        oks = [r for r, s in enumerate(seq) if s in ("ok", "redirected")]
        last_ok = iso(START + timedelta(days=oks[-1])) if oks else None
        if fails:
            first_failed = START + timedelta(days=len(seq) - fails)
            state = "dead" if fails >= 3 and (last - first_failed).days >= 3 else "failing"
            since = iso(first_failed)
        elif seq[-1] == "blocked":
            state, since, first_failed = "blocked", iso(START), None
        else:
            state, since, first_failed = "alive", iso(START), None
        states.append(
            (
                url,
                state,
                since,
                seq[-1],
                iso(last),
                runs,
                fails,
                iso(first_failed) if first_failed else None,
                last_ok,
                runs,
            )
        )
        if oks and rng.random() < 0.7:
            snap_day = START + timedelta(days=oks[0], minutes=i % 600)
            snaps.append(
                (
                    url,
                    oks[0] + 1,
                    f"linkkeeper-{snap_day:%Y%m%d}-00001.warc.gz",
                    i * 1000,
                    900,
                    "response",
                    iso(snap_day),
                    200,
                    "text/html",
                )
            )
    conn.executemany(
        "INSERT INTO link_state (url, state, since, last_status, last_checked, last_run,"
        " consecutive_failures, first_failed, last_ok, checks) VALUES (?,?,?,?,?,?,?,?,?,?)",
        states,
    )
    conn.executemany(
        "INSERT INTO snapshots (url, run_id, warc_file, offset, length, record_type, date,"
        " http_status, content_type) VALUES (?,?,?,?,?,?,?,?,?)",
        snaps,
    )
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return path


def cached_history(links: int, runs: int) -> Path:
    path = OUT_DIR / f"report-history-{links}-{runs}.db"
    marker = path.with_suffix(".done")
    if not (path.exists() and marker.exists()):
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        synthetic_history(path, links, runs)
        marker.write_text(f"{time.perf_counter() - started:.1f}s\n")
    return path


async def page_timings(page: Path) -> dict[str, float]:
    from test_report_browser import Chromium

    async with Chromium() as browser:
        started = time.perf_counter()
        await browser.open(page.as_uri())
        loaded = time.perf_counter() - started
        info = "document.getElementById('links-info').textContent"
        while not await browser.js(info):
            await asyncio.sleep(0.01)
        rendered = time.perf_counter() - started
        # a search over every row: a split page first reads all its row files
        started_search = time.perf_counter()
        await browser.js("(() => { const e = document.getElementById('f-text');"
                         " e.value = 'article-9'; e.dispatchEvent(new Event('input')); })()")
        while "filtered from" not in (await browser.js(info) or "") and \
                "No link matches" not in (await browser.js(info) or ""):
            await asyncio.sleep(0.02)
        search_ms = (time.perf_counter() - started_search) * 1000 - 120  # less the debounce
        sort_ms = await browser.js(
            "(() => { const e = document.getElementById('f-text'); e.value = '';"
            " e.dispatchEvent(new Event('input')); return new Promise(r => setTimeout(() => {"
            " const t = performance.now();"
            " document.querySelector('th[data-key=\"1\"] button').click();"
            " r(performance.now() - t); }, 300)); })()"
        )
        nav = await browser.js(
            "JSON.stringify(performance.getEntriesByType('navigation')[0].toJSON())"
        )
        timing = json.loads(nav)
        paints = {p["name"]: p["startTime"] for p in await browser.js(
            "performance.getEntriesByType('paint').map(p => p.toJSON())")}
        assert not browser.errors, browser.errors
    return {
        "load_s": loaded,
        "table_s": rendered,
        "search_ms": search_ms,
        "sort_ms": sort_ms,
        "first_paint_ms": paints.get("first-paint", 0.0),
        "first_contentful_paint_ms": paints.get("first-contentful-paint", 0.0),
        "dom_content_loaded_ms": timing.get("domContentLoadedEventEnd", 0.0),
        "load_event_ms": timing.get("loadEventEnd", 0.0),
    }


def median_timings(page: Path, repeat: int) -> dict[str, float]:
    """Each page timing's median over `repeat` fresh Chromium loads (a loaded machine is noisy)."""
    runs = [asyncio.run(page_timings(page)) for _ in range(repeat)]
    return {key: round(statistics.median(r[key] for r in runs), 3) for key in runs[0]}


def bench(links: int, runs: int, formats: tuple[str, ...] = ("json", "csv", "sarif", "markdown")
          ) -> dict[str, Any]:
    db = cached_history(links, runs)
    out = OUT_DIR / f"report-{links}"
    row: dict[str, Any] = {"links": links, "runs": runs}
    base = [sys.executable, "-m", "linkkeeper", "report", "--db", str(db)]
    html = measure([*base, "--output-dir", str(out)], label=f"report html {links}")
    assert html["exit_code"] == 0, html["stderr_tail"]
    row["html"] = html
    row["html_bytes"] = (out / "index.html").stat().st_size
    for fmt in formats:
        target = out / f"report.{fmt}"
        row[fmt] = measure(
            [*base, "--format", fmt, "-o", str(target)], label=f"report {fmt} {links}"
        )
        assert row[fmt]["exit_code"] == 0, row[fmt]["stderr_tail"]
        row[f"{fmt}_bytes"] = target.stat().st_size
    row["page"] = asyncio.run(page_timings(out / "index.html"))
    return row


def _mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| links × runs | HTML: time, CPU, peak RSS | HTML size | JSON / CSV / SARIF / Markdown "
        "time | Chromium: first paint, DOMContentLoaded, load event, table shown "
        "| search, sort (in page) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        h = r["html"]
        fmts = " / ".join(f"{r[f]['wall_s']:.1f} s" if f in r else "–"
                          for f in ("json", "csv", "sarif", "markdown"))
        p = r["page"]
        lines.append(
            f"| {r['links']:,} × {r['runs']} | {h['wall_s']:.1f} s, {h['cpu_s']:.1f} s, "
            f"{h['peak_rss_mb']:.0f} MB | {_mb(r['html_bytes'])} | {fmts} | "
            f"{p['first_paint_ms'] / 1000:.2f} s, {p['dom_content_loaded_ms'] / 1000:.2f} s, "
            f"{p['load_s']:.2f} s, {p['table_s']:.2f} s | {p['search_ms']:.0f} ms, "
            f"{p['sort_ms']:.0f} ms |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--links",
        type=int,
        action="append",
        help="history size (repeatable) [default: 10000 and 100000]",
    )
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--no-write", action="store_true", help="do not update BENCHMARKS.md")
    parser.add_argument("--html-only", action="store_true",
                        help="time only the HTML report and its page (not the other formats)")
    parser.add_argument("--page", type=Path, action="append",
                        help="only time this HTML file in Chromium (repeatable), --repeat times")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if args.page:
        for page in args.page:
            print(json.dumps({"page": str(page), "bytes": page.stat().st_size,
                              **median_timings(page.resolve(), args.repeat)}))
        return
    sizes = args.links or [10_000, 100_000]
    rows = []
    for n in sizes:
        row = bench(n, args.runs, () if args.html_only else ("json", "csv", "sarif", "markdown"))
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items()}, default=str)[:600], file=sys.stderr)
    text = table(rows)
    print(text)
    if not args.no_write:
        command = "python benchmarks/bench_report.py" + "".join(
            f" --links {n}" for n in (args.links or [])
        )
        update_section("report", "\n\n".join([text, provenance(command)]))


if __name__ == "__main__":
    main()
