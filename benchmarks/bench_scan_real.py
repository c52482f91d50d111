"""Scan benchmark on real posts: the corpus replicated to N posts, against a bare parse.

The real posts of ``../shared/corpus/posts`` (391 mirrored news articles) are written N
times over into ``benchmarks/out/site-real-N/_posts/`` (never into the repository), copy k
of each post with every URL moved under ``/r<k>/`` on its host (``https://host/r3/path``)
so links stay distinct as in a real archive while hosts, sizes and link density are the
corpus's own. Then, each as a fresh process pinned to one core (``taskset -c 0``), in the
same run and alternating when ``--rounds`` > 1:

* the **bare parse** (``bare_parse.py``): front matter, Markdown and HTML parsed by the same
  libraries, raw link values picked, nothing normalised or stored: the floor;
* ``linkkeeper scan SITE --jobs 1`` into a fresh database (first scan);
* the same scan again with nothing changed (no-change rescan).

The ratio is the bare parse's wall time over the scan's (aim ≥ 0.7; CPU seconds give the
same ratio with less noise from other load). ``--posts 130000 --no-baseline`` is the
large first scan (aims: peak RSS < 300 MB, no-change rescan < 5 s).

    .venv/bin/python benchmarks/bench_scan_real.py --posts 2000            # quick
    .venv/bin/python benchmarks/bench_scan_real.py --write-md              # 20,000 posts
    .venv/bin/python benchmarks/bench_scan_real.py --posts 130000 --no-baseline --write-md
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

from charts import CHARTS_DIR, Series, bar_chart, line_chart, remember
from harness import REPO, provenance, update_section
from measure import OUT_DIR, markdown_table, measure, record

CORPUS = REPO.parent / "shared" / "corpus" / "posts"
AIM_RATIO, AIM_RSS_MB, AIM_RESCAN_S = 0.7, 300.0, 5.0
URL = re.compile(r"(https?://)([^/\s\"'<>()\[\]]+)")
COLUMNS = (
    ("label", "run"),
    ("posts", "posts"),
    ("wall_s", "wall s"),
    ("posts_per_s", "posts/s"),
    ("cpu_s", "CPU s"),
    ("peak_rss_mb", "peak RSS MB"),
    ("vs_bare", "× bare parse (wall / CPU)"),
)


def corpus_posts(corpus: Path = CORPUS) -> list[Path]:
    """The corpus's post files, in a fixed order."""
    return sorted(p for p in corpus.iterdir() if p.suffix in (".md", ".markdown", ".html"))


def vary(text: str, copy: int) -> str:
    """Copy ``copy`` of a post: every URL moved under ``/r<copy>/`` on its own host."""
    if copy == 0:
        return text
    return URL.sub(lambda m: f"{m.group(1)}{m.group(2)}/r{copy}", text)


def copy_name(name: str, copy: int) -> str:
    """``2014-09-25-title.md`` → ``2014-09-25-title-r3.md`` (still a Jekyll post name)."""
    if copy == 0:
        return name
    stem, _dot, suffix = name.rpartition(".")
    return f"{stem}-r{copy}.{suffix}"


def replicate(site: Path, posts: int, corpus: Path = CORPUS) -> dict[str, Any]:
    """Write ``posts`` posts into ``site/_posts`` (reused when its manifest matches)."""
    sources = corpus_posts(corpus)
    wanted = {"posts": posts, "corpus_files": len(sources), "scheme": "r<copy> after host"}
    manifest_path = site / "_benchmark" / "manifest.json"
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if manifest.get("arguments") == wanted:
            return manifest
    if site.exists():
        shutil.rmtree(site)
    (site / "_posts").mkdir(parents=True)
    (site / "_benchmark").mkdir()
    (site / "_config.yml").write_text(
        'title: real posts\nurl: "https://archive.example"\nbaseurl: ""\n', encoding="utf-8"
    )
    texts = [p.read_text(encoding="utf-8", errors="surrogateescape") for p in sources]
    total = 0
    for index in range(posts):
        copy, which = divmod(index, len(sources))
        data = vary(texts[which], copy).encode("utf-8", errors="surrogateescape")
        (site / "_posts" / copy_name(sources[which].name, copy)).write_bytes(data)
        total += len(data)
    manifest = {"arguments": wanted, "bytes": total}
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    return manifest


def _remove_db(db: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)


def _json(result: dict[str, Any]) -> dict[str, Any]:
    if result["exit_code"] != 0 or result["timed_out"]:
        raise SystemExit(f"{result['label']} failed:\n{result['stderr_tail']}")
    return json.loads(result["stdout"] or "{}")


def run(args: argparse.Namespace) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    site = OUT_DIR / f"site-real-{args.posts}"
    manifest = replicate(site, args.posts)
    python = str(REPO / ".venv" / "bin" / "python")
    linkkeeper = str(REPO / ".venv" / "bin" / "linkkeeper")
    db = OUT_DIR / f"scan-real-{args.posts}.db"
    scan = [linkkeeper, "scan", str(site), "--db", str(db), "--format", "json"]
    rows: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    for round_ in range(args.rounds):
        order = ["bare", "scan"] if round_ % 2 == 0 else ["scan", "bare"]
        for which in order if args.baseline else ["scan"]:
            if which == "bare":
                result = measure(
                    [python, str(Path(__file__).parent / "bare_parse.py"), str(site)],
                    label="bare parse (same libraries, no normalisation, no storage)",
                    cpus=args.cpus, timeout=args.timeout,
                )
                result["links"] = _json(result)["links"]
                rows.append(result)
                continue
            _remove_db(db)
            first = measure([*scan, "--jobs", "1"], label="linkkeeper scan --jobs 1 (first)",
                            cpus=args.cpus, timeout=args.timeout)
            summary = _json(first)
            rescan = measure([*scan, "--jobs", "1"], label="no-change rescan",
                             cpus=args.cpus, timeout=args.timeout)
            _json(rescan)
            rows += [first, rescan]
    _remove_db(db)
    for row in rows:
        row["posts"] = args.posts
        row["posts_per_s"] = round(args.posts / row["wall_s"], 1)
        record(row, benchmark="scan-real", posts=args.posts, load=os.getloadavg()[0])
    return rows, summary | {"bytes": manifest["bytes"]}


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def verdict(rows: list[dict[str, Any]], posts: int) -> tuple[list[dict[str, Any]], str]:
    """One row per kind (medians over rounds), the ratios, and a sentence on the aims."""
    kinds: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        kinds.setdefault(row["label"], []).append(row)
    table = []
    for _label, group in kinds.items():
        merged = dict(group[0])
        for key in ("wall_s", "cpu_s", "peak_rss_mb"):
            merged[key] = _median([g[key] for g in group])
        merged["posts_per_s"] = round(posts / merged["wall_s"], 1)
        table.append(merged)
    bare = next((r for r in table if r["label"].startswith("bare")), None)
    first = next(r for r in table if "first" in r["label"])
    rescan = next(r for r in table if "rescan" in r["label"])
    parts = []
    if bare:
        wall_ratio = bare["wall_s"] / first["wall_s"]
        cpu_ratio = bare["cpu_s"] / first["cpu_s"]
        first["vs_bare"] = f"{wall_ratio:.2f} / {cpu_ratio:.2f}"
        first["ratio"] = round(wall_ratio, 3)
        ok = "met" if wall_ratio >= AIM_RATIO else "missed"
        parts.append(f"scan / bare parse: **{wall_ratio:.2f}** by wall time, {cpu_ratio:.2f} by "
                     f"CPU (aim ≥ {AIM_RATIO}: {ok})")
    rss_ok = "met" if first["peak_rss_mb"] < AIM_RSS_MB else "missed"
    rescan_ok = "met" if rescan["wall_s"] < AIM_RESCAN_S else "missed"
    parts.append(f"peak RSS {first['peak_rss_mb']:.0f} MB (aim < {AIM_RSS_MB:.0f}: {rss_ok})")
    parts.append(f"no-change rescan {rescan['wall_s']:.2f} s (aim < {AIM_RESCAN_S:.0f} s: "
                 f"{rescan_ok})")
    return table, "; ".join(parts) + "."


def charts(table: list[dict[str, Any]], posts: int) -> None:
    """scan_real.svg (posts/s against the bare parse) and scan_real_rss.svg (RSS by size)."""
    first = next(r for r in table if "first" in r["label"])
    bare = next((r for r in table if r["label"].startswith("bare")), None)
    if bare:
        bar_chart(  # per CPU second: wall time on a shared machine is mostly waiting
            f"Scan of {posts:,} real posts, one core: posts per CPU second",
            "posts / CPU s",
            [("bare parse", round(posts / bare["cpu_s"])),
             ("linkkeeper scan", round(posts / first["cpu_s"]))],
            CHARTS_DIR / "scan_real.svg",
        )
    series = remember("scan_real_rss", "first scan, peak RSS MB", posts, first["peak_rss_mb"])
    rescan = next(r for r in table if "rescan" in r["label"])
    remember("scan_real_rescan", "no-change rescan, s", posts, rescan["wall_s"])
    line_chart("Scan of real posts: peak RSS by number of posts", "posts", "MB",
               [Series(s.name, s.points) for s in series], CHARTS_DIR / "scan_real_rss.svg",
               aim=AIM_RSS_MB)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds (medians)")
    parser.add_argument("--cpus", default="0", help="taskset CPU list")
    parser.add_argument("--timeout", type=float, default=1800.0, help="per run, seconds")
    parser.add_argument("--no-baseline", dest="baseline", action="store_false")
    parser.add_argument("--write-md", action="store_true", help="update BENCHMARKS.md + charts")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    rows, summary = run(args)
    table, sentence = verdict(rows, args.posts)
    detail = (
        f"{args.posts:,} posts ({summary['bytes'] / 1e6:,.0f} MB) replicated from the "
        f"{len(corpus_posts())} real posts of ../shared/corpus/posts, URLs varied per copy; "
        f"{summary.get('occurrences', 0):,} link occurrences, "
        f"{summary.get('distinct_urls', 0):,} distinct URLs; pinned to CPU {args.cpus}; "
        f"{args.rounds} round(s), medians. 1-minute load average before the run: "
        f"{load_before:.2f}.\n{sentence}"
    )
    command_line = " ".join(
        shlex.quote(a) for a in ["python", "benchmarks/bench_scan_real.py", *(argv or sys.argv[1:])]
    )
    text = markdown_table(table, COLUMNS)
    print(text)
    print(detail)
    if args.write_md:
        charts(table, args.posts)
        name = "scan-real" if args.posts == 20_000 else f"scan-real-{args.posts}"
        update_section(name, f"{text}\n\n{detail}\n{provenance(command_line)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
