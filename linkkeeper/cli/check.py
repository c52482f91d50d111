"""Commands of the audit: `scan`, `check`, `prune`, `history` and `demo`.

Each one loads its parameters, makes one library call (scan.scan_site, audit.run_audit,
history.runs, demo.run_demo) and prints what it returns.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from pathlib import Path
from typing import Any

import click

from linkkeeper.check.options import CheckOptions
from linkkeeper.cli.app import (
    CONTEXT,
    EXIT_FAILURES,
    EXIT_OK,
    EXIT_RUNTIME,
    FiniteFloat,
    archive_options,
    archive_options_from,
    check_options,
    check_options_from,
    cli,
    common_site_options,
    config_option,
    db_option,
    db_path_for,
    existing_db_path,
    format_archive_summary,
    guard_output,
    load_params,
    merge_site_option,
    open_db_for,
    option_default,
    output_file,
    parse_confirm,
    parse_duration,
    parse_shard,
    plural,
    site_argument,
    site_option,
    warc_dir_for,
    warc_dir_option,
)
from linkkeeper.progress import ProgressReporter
from linkkeeper.settings import ConfigError, remember_db
from linkkeeper.site import Site, open_site


@cli.command(context_settings=CONTEXT)
@common_site_options
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              envvar="LINKKEEPER_FORMAT", show_default=True, help="Summary format.")
@click.option("--force", is_flag=True, help="Re-parse every post, even unchanged ones.")
@click.option("--verbose", "-v", count=True, help="List every post with problems (not only the "
              "first few).")
@click.pass_context
def scan(ctx: click.Context, **params: Any) -> None:
    """Record every link of the site's posts in the SQLite inventory.

    SITE is a Jekyll site folder (with _posts/ and _config.yml), any folder
    of .md/.markdown/.html files, or a list of files [default: current folder].
    Re-scanning is incremental: unchanged posts are not parsed again.

    \b
    Examples:
      linkkeeper scan ~/blog
      linkkeeper scan ~/blog --format json | jq .urls_by_kind
      linkkeeper scan _posts/2024-11-19-a.md --db /tmp/links.db
    """
    from linkkeeper.extract.post import DEFAULT_SOURCE_KEYS
    from linkkeeper.scan import scan_site

    p = load_params(ctx, params)
    site = open_site(list(p["site"]), p["site_url"])
    require_posts(site)
    if site.config_problem:
        click.echo(f"warning: {site.config_problem}", err=True)
    db = open_db_for(p["site"], p["db"])
    summary = scan_site(db, site, source_keys=p["source_keys"] or DEFAULT_SOURCE_KEYS,
                        force=p["force"], jobs=p["jobs"])
    for line in inventory_notes(db, verbose=bool(p["verbose"]), command="scan", summary=summary):
        click.echo(line, err=True)
    if p["fmt"] == "json":
        click.echo(json.dumps(summary.as_dict(), ensure_ascii=False, indent=2))
    else:
        click.echo(format_scan_summary(summary))


def require_posts(site: Site) -> None:
    """A folder without a single post is a wrong SITE (exit 3), not an empty site: say so
    before a database is created there."""
    if not site.has_posts():
        raise ConfigError(f"no posts found under {site.root} (is this a Jekyll site?)")


PROBLEMS_SHOWN = 5


def inventory_notes(db: Any, *, verbose: bool, command: str, summary: Any = None) -> list[str]:
    """What the inventory holds that needs the user, after every scan (not only the one
    that parsed it): files this scan could not read or name (one line each: a FIFO, a link
    to a device, a name that is not UTF-8), posts with problems (count, the first few, how
    to list all) and the relative links left unchecked for want of the site's URL (one line)."""
    from linkkeeper.scan import problem_posts, unresolved_relative_links

    lines = [str(problem) for problem in (summary.file_problems() if summary else [])]
    count, problems = problem_posts(db, None if verbose else PROBLEMS_SHOWN)
    if count:
        lines.append(f"{plural(count, 'post')} with problems (recorded, the scan went on):")
        lines.extend(f"  {problem}" for problem in problems)
        if count > len(problems):
            lines.append(f"  ... and {count - len(problems)} more (`linkkeeper {command} -v` "
                         "lists them all)")
    relative = unresolved_relative_links(db)
    if relative:
        lines.append(f"set `--site-url` (or `url` in `_config.yml`) to check "
                     f"{plural(relative, 'relative link')}")
    return lines


def format_scan_summary(s: Any) -> str:
    lines = [
        f"posts            {s.posts:>8}  ({s.parsed} parsed, {s.unchanged} unchanged, "
        f"{s.removed} removed) in {s.elapsed_s:.2f}s",
        f"posts w/problems {s.posts_with_problems:>8}",
        f"occurrences      {s.occurrences:>8}",
        f"distinct URLs    {s.distinct_urls:>8}",
    ]
    for kind, n in s.urls_by_kind.items():
        lines.append(f"  {kind:<14} {n:>8}")
    for status, n in s.urls_by_status.items():
        if status != "checkable":
            lines.append(f"  ({status}) {n:>{max(1, 13 - len(status))}}")
    if s.top_hosts:
        lines.append("top hosts")
        lines.extend(f"  {n:>7}  {h}" for h, n in s.top_hosts)
    return "\n".join(lines)


@cli.command(context_settings=CONTEXT)
@common_site_options
@check_options
@archive_options
@click.option("--max-age", envvar="LINKKEEPER_MAX_AGE", metavar="DURATION",
              help="Skip URLs checked ok within this time (e.g. 20h, 7d); failing URLs are "
              "always re-checked.")
@click.option("--failing", "failing_only", is_flag=True,
              help="Re-check only links that are currently failing.")
@click.option("--budget", type=click.IntRange(0), envvar="LINKKEEPER_BUDGET",
              help="Check at most N URLs this run (least recently checked first).")
@click.option("--new-run", is_flag=True, help="Start afresh instead of resuming an "
              "interrupted run.")
@click.option("--shard", envvar="LINKKEEPER_SHARD", metavar="I/N",
              help="Check only shard I of N (1-based), the hosts whose registrable domain falls "
              "in it; give each shard its own --db and --warc-dir, then `linkkeeper merge`.")
@click.option("--confirm", default="3,3", show_default=True, envvar="LINKKEEPER_CONFIRM",
              metavar="N,DAYS", help="A link is dead after N failed checks spanning DAYS days.")
@click.option("--soft404/--no-soft404", "soft404", show_default=True,
              default=option_default(CheckOptions, "soft404"), envvar="LINKKEEPER_SOFT404",
              help="Detect soft 404s: probe one certainly-nonexistent URL per host+directory "
              "and judge 2xx pages (redirects to the home page, error pages, meta refresh).")
@click.option("--soft404-threshold", type=FiniteFloat(0, 1), show_default=True,
              default=option_default(CheckOptions, "soft404_threshold"),
              envvar="LINKKEEPER_SOFT404_THRESHOLD",
              help="Main-text similarity to the probe's page at which a page is a soft 404.")
@click.option("--read-pages/--head-first", "read_pages", show_default=True,
              default=option_default(CheckOptions, "read_pages"), envvar="LINKKEEPER_READ_PAGES",
              help="GET page links instead of HEAD (no more requests, more bytes): error "
              "phrases and content drift are then seen on every check; --head-first saves "
              "bytes but believes a 200 it did not read.")
@click.option("--fail-on", type=click.Choice(["new", "any", "never"]), default="new",
              show_default=True, envvar="LINKKEEPER_FAIL_ON",
              help="Which failures make the exit code 2: links broken since the previous run, "
              "any failing link, or never.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]),
              default="text", show_default=True, envvar="LINKKEEPER_FORMAT",
              help="json: the run's results on stdout (or -o FILE), messages on stderr; "
              "markdown: the run's summary as Markdown tables (for $GITHUB_STEP_SUMMARY).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the --format json or markdown document to this file.")
@click.option("--quiet", "-q", is_flag=True, envvar="LINKKEEPER_QUIET",
              help="No progress, no summary (exit code only; JSON still written).")
@click.option("--no-progress", "-n", is_flag=True, envvar="LINKKEEPER_NO_PROGRESS",
              help="No progress bar or lines (the summary is still printed).")
@click.option("--verbose", "-v", count=True, envvar="LINKKEEPER_VERBOSE",
              help="List every new failure and every post with problems (not the first few).")
@click.option("--dump", is_flag=True, help="Print the URLs this run would check, one per line, "
              "and check nothing (lychee's --dump; the scan still updates the inventory).")
@click.option("--canary", "canaries", multiple=True, envvar="LINKKEEPER_CANARY", metavar="URL",
              help="A URL that answers whenever this machine is online; repeatable (config: "
              "canaries = [...]). If every canary fails at the network level, the run is "
              "degraded: its failures are not counted [default: judged from the hosts].")
@click.pass_context
def check(ctx: click.Context, **params: Any) -> int:
    """Scan the site, then check every distinct link and record the results.

    The nightly audit. Every URL is checked once per run however many posts
    cite it, politely: at most --host-concurrency connections and --host-rate
    requests per second per host, slowed further when a host answers 429/503.
    An interrupted run (Ctrl-C, kill -9) is resumed by the next `check`.

    Exit codes: 0 nothing to report, 2 link failures (see --fail-on),
    1 runtime error (also a degraded run: the checker was cut off from the
    network, its failures are not counted), 3 configuration error.

    \b
    Examples:
      linkkeeper check ~/blog
      linkkeeper check ~/blog --max-age 20h --format json -o results.json
      linkkeeper check ~/blog --failing --fail-on any
      linkkeeper check . --connect-to 'www.example.com:443:127.0.0.1:8443'
    """
    from linkkeeper.audit import run_audit  # aiohttp: only when checking
    from linkkeeper.history.runs import RunBusy

    p = load_params(ctx, params)
    opts = check_options_from(p)
    audit_opts = _audit_options(p, opts.user_agent)
    site = open_site(list(p["site"]), p["site_url"])
    require_posts(site)
    db_path = db_path_for(p["site"], p["db"])
    guard_output(p["output"], db_path, warc_dir_for(db_path, p["warc_dir"]))
    db = open_db_for(p["site"], p["db"])
    say = (lambda msg: None) if p["quiet"] else (lambda msg: click.echo(msg, err=True))
    if site.config_problem:
        say(f"warning: {site.config_problem}")
    if p["dump"]:
        from linkkeeper.audit import plan_audit

        for url in plan_audit(db, site, opts, audit_opts):
            click.echo(url)
        return EXIT_OK

    def scanned(summary: Any) -> None:
        say(scan_line(summary))
        for line in inventory_notes(db, verbose=bool(p["verbose"]), command="check",
                                    summary=summary):
            say(line)

    progress = ProgressReporter(quiet=p["quiet"] or p["no_progress"])
    try:
        result = run_audit(db, site, opts, audit_opts, on_scan=scanned,
                           on_progress=progress.update)
    except RunBusy as exc:
        progress.close()
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        progress.close()
        say("interrupted: what was checked is recorded; the next `check` resumes the run")
        raise
    progress.close()
    for message in result.archive_messages:
        say(message)
    if p["fmt"] != "text":
        _write_results(db, result.run.id, p["output"], p["fmt"])
    if not p["quiet"]:
        click.echo(format_check_summary(db, result, verbose=bool(p["verbose"])),
                   err=p["fmt"] != "text" and not p["output"])
    if result.degraded:
        click.echo(degraded_line(result.run.id, result.degraded), err=True)
        return EXIT_RUNTIME
    return exit_code_for(db, result, p["fail_on"])


def scan_line(s: Any) -> str:
    """The line after the scan: what the inventory holds, what this scan parsed."""
    return (f"scanned {plural(s.posts, 'post')}: {s.distinct_urls:,} distinct URLs "
            f"({s.parsed:,} parsed now, {s.unchanged:,} unchanged)")


def degraded_line(run_id: int, reason: str) -> str:
    return (f"run {run_id} is degraded: {reason}; its failures are not counted — "
            "is this machine offline?")


def _audit_options(p: dict[str, Any], user_agent: str) -> Any:
    """AuditOptions from `check`'s parameters (ConfigError, exit 3, when one is wrong)."""
    from linkkeeper.audit import AuditOptions
    from linkkeeper.extract.post import DEFAULT_SOURCE_KEYS

    try:
        confirm = parse_confirm(p["confirm"])
        max_age = parse_duration(p["max_age"])
        shard = parse_shard(p["shard"])
    except click.BadParameter as exc:
        raise ConfigError(exc.message) from None
    archive = archive_options_from(p, db_path_for(p["site"], p["db"]), user_agent)
    record_opts = {k: (str(v) if isinstance(v, Path) else v) for k, v in p.items()
                   if not k.startswith("_") and k not in ("site",)}
    bad = [u for u in p["canaries"] if not re.match(r"(?i)https?://[^/?#]", u)]
    if bad:
        raise ConfigError(f"canary {bad[0]!r}: expected an http(s) URL")
    return AuditOptions(max_age=max_age, failing_only=p["failing_only"], budget=p["budget"],
                        new_run=p["new_run"], confirm=confirm, record_options=record_opts,
                        archive=archive, jobs=p["jobs"], shard=shard,
                        canaries=tuple(p["canaries"]),
                        source_keys=tuple(p["source_keys"] or DEFAULT_SOURCE_KEYS))


def _write_results(db: Any, run_id: int, output: Path | None, fmt: str) -> None:
    """The run's JSON document (or Markdown summary) to stdout, or to OUTPUT through a
    temporary file."""
    from linkkeeper.report import build_report
    from linkkeeper.report.formats import write_markdown
    from linkkeeper.report.results import write_json

    def write(fh: Any) -> None:
        if fmt == "json":
            write_json(db, run_id, fh)
        else:
            write_markdown(build_report(db), fh)

    if output is None:
        write(sys.stdout)
        return
    with output_file(output) as fh:
        write(fh)


def exit_code_for(db: Any, result: Any, fail_on: str) -> int:
    from linkkeeper.history.runs import failing_link_count

    if fail_on == "never":
        return EXIT_OK
    if fail_on == "new":
        return EXIT_FAILURES if result.new_failures else EXIT_OK
    return EXIT_FAILURES if failing_link_count(db) else EXIT_OK


NEW_FAILURES_SHOWN = 20


def format_check_summary(db: Any, r: Any, *, verbose: bool = False) -> str:
    """The summary: every number is one the run recorded (the last progress line's too)."""
    from linkkeeper.history.runs import new_failures_of
    from linkkeeper.urls import NO_SITE_URL

    lines = [f"run {r.run.id}{' (resumed)' if r.run.resumed else ''}: "
             f"{plural(r.checked, 'URL')}, {plural(r.requests, 'request')} in {r.elapsed_s:.1f}s"]
    for status, n in sorted(r.counts.items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"  {status:<14} {n:>7}")
    if r.new_failures:
        limit = len(r.new_failures) if verbose else NEW_FAILURES_SHOWN
        rows = new_failures_of(db, r.run.id, limit=len(r.new_failures))
        listed = [row for row in rows if row[2] != NO_SITE_URL]  # said once, after the scan
        lines.append(f"new failures since the previous run: {len(listed)}"
                     + (f" (and {len(rows) - len(listed)} relative links without a site URL)"
                        if len(rows) > len(listed) else ""))
        lines.extend(f"  {status:<13} {url}  ({reason})" for url, status, reason in listed[:limit])
        if len(listed) > limit:
            lines.append(f"  ... and {len(listed) - limit} more (`-v` lists them all)")
    if r.host_failures:
        lines.append(f"hosts down this run: {len(r.host_failures)}")
        lines.extend(f"  {host} ({n} links): {reason}" for host, n, reason in r.host_failures[:10])
        if len(r.host_failures) > 10:
            lines.append(f"  ... and {len(r.host_failures) - 10} more")
    slow = sorted(((ms / n, h, n) for h, (n, ms) in r.host_times.items() if n and ms > 0),
                  reverse=True)[:5]
    if slow:
        lines.append("slowest hosts (mean ms per URL)")
        lines.extend(f"  {avg:>8.0f}  {h} ({plural(n, 'URL')})" for avg, h, n in slow)
    if r.archive is not None:
        lines.append(format_archive_summary(r.archive))
    return "\n".join(lines)


@cli.command(context_settings=CONTEXT)
@site_argument
@site_option
@config_option
@db_option
@click.option("--keep-runs", type=int, default=None,
              help="Keep every check of the newest N complete runs.")
@click.option("--keep-days", type=float, default=None,
              help="Keep every check of the runs started in the last D days.")
@click.option("--dry-run", is_flag=True, help="Say what would go; change nothing.")
@click.option("--vacuum", is_flag=True,
              help="Then shrink the file (VACUUM: needs free space about its size).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.pass_context
def prune(ctx: click.Context, **params: Any) -> None:
    """Forget the per-URL checks of old runs (history retention).

    A nightly full run adds ~490 MB a night at 1.3 M links. Outside the window kept
    (--keep-runs and/or --keep-days: a run either keeps stays) each URL keeps only its
    last check, and the checks of runs that captured it; runs, link states and captures
    stay, and reports compare as before. Freed space is reused by the next nights;
    --vacuum also returns it to the disk.

    \b
    Examples:
      linkkeeper prune ~/blog --keep-runs 30 --dry-run
      linkkeeper prune --db ~/blog/linkkeeper.db --keep-days 90 --vacuum
    """
    from linkkeeper.db import connect
    from linkkeeper.history.retention import RetentionError, prune_history
    from linkkeeper.history.runs import RunBusy

    p = load_params(ctx, merge_site_option(params))
    database = connect(existing_db_path(p))
    try:
        result = prune_history(database, keep_runs=p["keep_runs"], keep_days=p["keep_days"],
                               dry_run=p["dry_run"], vacuum=p["vacuum"],
                               progress=_prune_progress() if sys.stderr.isatty() else None)
    except RetentionError as exc:
        raise ConfigError(str(exc)) from None
    except RunBusy as exc:
        raise click.ClickException(f"{exc}: prune when it has finished") from None
    if sys.stderr.isatty():
        click.echo("\r\033[K", err=True, nl=False)  # the live line goes
    if p["fmt"] == "json":
        click.echo(json.dumps(dataclasses.asdict(result), indent=2))
        return
    click.echo(format_prune_summary(result))


def _prune_progress() -> Any:
    """A live line on a terminal: a prune of a big history takes minutes."""
    def show(run_id: int, deleted: int) -> None:
        click.echo(f"\rpruning run {run_id}: {deleted:,} checks deleted ", err=True, nl=False)
    return show


def format_prune_summary(r: Any) -> str:
    if not r.runs:
        return "nothing to prune: every run is inside the window kept"
    runs = f"run {r.runs[0]}" if len(r.runs) == 1 else f"runs {r.runs[0]}–{r.runs[-1]}"
    verb = "would delete" if r.dry_run else "deleted"
    lines = [f"{runs}: {verb} {plural(r.checks_deleted, 'check')} and "
             f"{plural(r.plan_rows_deleted, 'plan row')}; kept {plural(r.checks_kept, 'check')}"
             " (each URL's last one, and those of runs that captured it)"]
    mb = 1_000_000
    if r.vacuumed:
        lines.append(f"database {r.bytes_before / mb:,.0f} MB -> {r.bytes_after / mb:,.0f} MB")
    elif not r.dry_run:
        lines.append(f"database {r.bytes_after / mb:,.0f} MB, {r.free_bytes / mb:,.0f} MB of it"
                     " free for the next nights (--vacuum gives it back to the disk)")
    return "\n".join(lines)


@cli.command(context_settings=CONTEXT)
@click.argument("url")
@site_argument
@site_option
@config_option
@db_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.pass_context
def history(ctx: click.Context, **params: Any) -> None:
    """Print a URL's status timeline, oldest first.

    URL is matched after normalisation, as the inventory stores it. The database
    is found the way `check` chose it: --db, SITE or --site (its linkkeeper.db),
    the config file's `db`, ./linkkeeper.db, or the last site `check` or `scan`
    wrote (remembered in $XDG_STATE_HOME/linkkeeper/last-site).

    \b
    Examples:
      linkkeeper check ~/blog && linkkeeper history 'https://www.rfa.org/mandarin/a.html'
      linkkeeper history 'https://www.rfa.org/mandarin/a.html' ~/blog
      linkkeeper history 'https://www.rfa.org/mandarin/a.html' --db ~/blog/linkkeeper.db
    """
    from linkkeeper.db import connect
    from linkkeeper.history.runs import link_state_of, url_history
    from linkkeeper.urls import normalize_url

    p = load_params(ctx, merge_site_option(params))
    database = connect(existing_db_path(p))
    key = normalize_url(p["url"]).url
    rows = list(url_history(database, key))
    state = link_state_of(database, key)
    if p["fmt"] == "json":
        click.echo(json.dumps({"url": key, "state": state, "checks": rows}, ensure_ascii=False,
                              indent=2))
        return
    if not rows:
        raise click.ClickException(f"{key}: never checked (not in this database's history)")
    click.echo(key)
    if state:
        failures = state["consecutive_failures"]
        click.echo(f"state: {state['state']} since {state['since']}"
                   + (f", {plural(failures, 'consecutive failure')}" if failures else ""))
    for r in rows:
        code = r["http_status"] if r["http_status"] is not None else "-"
        click.echo(f"  {r['checked_at']}  run {r['run_id']:<4} {r['status']:<13} {code!s:<4} "
                   f"{r['reason'] or ''}")


@cli.command(context_settings=CONTEXT)
@site_argument
@config_option
@db_option
@warc_dir_option
@click.option("--format", "fmt", type=click.Choice(["lines", "json"]), default="lines",
              show_default=True, help="lines: NAME=PATH, ready for $GITHUB_OUTPUT or `eval`.")
@click.pass_context
def paths(ctx: click.Context, **params: Any) -> None:
    """Print where `check SITE` keeps its files: database, WARC folder, reports, config.

    Resolved exactly as `check` resolves them (--db, the config file, SITE), as
    absolute paths; nothing is created.

    \b
    Examples:
      linkkeeper paths ~/blog
      linkkeeper paths ~/blog >> "$GITHUB_OUTPUT"     # db=..., warc-dir=..., ...
    """
    p = load_params(ctx, params)
    db_path = db_path_for(p["site"], p["db"])
    found = {"db": db_path, "warc-dir": warc_dir_for(db_path, p["warc_dir"]),
             "reports": db_path.parent / "reports", "config": p["_config"].path}
    shown = {k: str(Path(v).resolve()) if v is not None else "" for k, v in found.items()}
    if p["fmt"] == "json":
        click.echo(json.dumps(shown, indent=2))
    else:
        click.echo("\n".join(f"{k}={v}" for k, v in shown.items()))


@cli.command(context_settings=CONTEXT)
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("linkkeeper-demo"), show_default=True,
              help="Where the example site is copied and its database written.")
@click.option("--quiet", "-q", is_flag=True)
@click.option("--no-progress", "-n", is_flag=True, help="No progress bar or lines.")
@click.option("--verbose", "-v", count=True, help="List every post with problems.")
def demo(workdir: Path, quiet: bool, no_progress: bool, verbose: int) -> int:
    """Run the nightly audit on the bundled example site, against the local fault-injection web.

    Copies examples/site to WORKDIR, starts linkkeeper's fault-injection web on
    loopback (it plays 404s, redirects, bot blocks, expired certificates, slow
    and dead servers for the example's made-up hosts), and runs `check` with
    --connect-to so that no request leaves this machine. Run it twice to see
    the history build up.

    \b
    Example:
      linkkeeper demo && linkkeeper history https://www.rfa.example/status/404/mandarin/Xinwen/kw5-nato-eu-11142024134841.html linkkeeper-demo/site
    """
    from linkkeeper.demo import DemoError, run_demo

    say = (lambda msg: None) if quiet else (lambda msg: click.echo(msg, err=True))
    progress = ProgressReporter(quiet=quiet or no_progress)
    notes: list[str] = []
    try:
        done = run_demo(workdir, on_scan=lambda s: notes.append(scan_line(s)),
                        on_progress=progress.update)
    except DemoError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        progress.close()
    remember_db(done.db_path)  # `linkkeeper history URL` now reads the demo's history
    for message in [*notes, *inventory_notes(done.db, verbose=bool(verbose), command="demo"),
                    *done.audit.archive_messages]:
        say(message)
    if not quiet:
        click.echo(format_check_summary(done.db, done.audit, verbose=bool(verbose)))
    s = done.report.summary
    click.echo(f"{done.report_path}: {s.links} links, {s.newly_broken} newly broken, "
               f"{s.recovered} recovered, {s.failing + s.dead} failing or dead", err=True)
    if not quiet:
        click.echo(f"\nThe history is in {done.db_path}, the report in "
                   f"{done.report_path} (`linkkeeper serve {done.site}` shows it with "
                   "the archived copies); run `linkkeeper demo` again to add a second night.",
                   err=True)
    return EXIT_OK
