"""The command line: a thin layer over the library modules.

Exit codes follow lychee: 0 nothing to report, 1 runtime error, 2 link
failures, 3 configuration error.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import traceback
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from linkkeeper import __version__
from linkkeeper.db import connect, default_db_path
from linkkeeper.progress import ProgressReporter
from linkkeeper.settings import ConfigError, apply_config, find_config
from linkkeeper.site import SiteError, open_site
from linkkeeper.vocab import FAILURES

if TYPE_CHECKING:  # history (and truth) load when a command uses them: not for snapshot
    from linkkeeper.history.runs import ConfirmPolicy

EXIT_OK, EXIT_RUNTIME, EXIT_FAILURES, EXIT_CONFIG = 0, 1, 2, 3

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def common_site_options(fn: Any) -> Any:
    """Options every command that reads a site shares."""
    fn = click.option(
        "--config",
        "config_file",
        type=click.Path(dir_okay=False, path_type=Path, exists=True),
        envvar="LINKKEEPER_CONFIG",
        help="Config file (default: linkkeeper.toml or [tool.linkkeeper] in pyproject.toml).",
    )(fn)
    fn = click.option(
        "--db",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar="LINKKEEPER_DB",
        help="SQLite file [default: linkkeeper.db next to the site].",
    )(fn)
    fn = click.option(
        "--site-url",
        envvar="LINKKEEPER_SITE_URL",
        help="The site's own URL, to resolve relative links [default: url+baseurl of _config.yml].",
    )(fn)
    fn = click.option(
        "--source-key",
        "source_keys",
        multiple=True,
        envvar="LINKKEEPER_SOURCE_KEYS",
        help="Front matter key naming the post's source URL; repeatable "
        "[default: from, source, source_url, original_url, canonical_url, link].",
    )(fn)
    fn = click.option(
        "--jobs",
        "-j",
        type=click.IntRange(0),
        default=0,
        envvar="LINKKEEPER_JOBS",
        help="Processes parsing posts [default 0: one per CPU for big scans].",
    )(fn)
    fn = click.argument(
        "site", nargs=-1, type=click.Path(exists=True, path_type=Path)
    )(fn)
    return fn


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, prog_name="linkkeeper")
@click.option("--debug", is_flag=True, envvar="LINKKEEPER_DEBUG", help="Show tracebacks on errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Keep a static archive's links honest: audit, archive and report link rot.

    \b
    Typical night:
      linkkeeper check ~/blog            # scan posts, check every link, record history
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def load_params(ctx: click.Context, params: dict[str, Any]) -> dict[str, Any]:
    site_args: tuple[Path, ...] = params.get("site") or ()
    config = find_config(params.get("config_file"), site_args[0] if site_args else None)
    params = apply_config(ctx, params, config)
    params["_config"] = config
    return params


def open_db_for(site_args: tuple[Path, ...], db: Path | None) -> Any:
    target = site_args[0] if site_args else Path(".")
    return connect(db or default_db_path(target))


@cli.command(context_settings=CONTEXT)
@common_site_options
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              envvar="LINKKEEPER_FORMAT", show_default=True, help="Summary format.")
@click.option("--force", is_flag=True, help="Re-parse every post, even unchanged ones.")
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
    if site.config_problem:
        click.echo(f"warning: {site.config_problem}", err=True)
    db = open_db_for(p["site"], p["db"])
    summary = scan_site(
        db,
        site,
        source_keys=p["source_keys"] or DEFAULT_SOURCE_KEYS,
        force=p["force"],
        on_problem=lambda prob: click.echo(f"{prob}", err=True),
        jobs=p["jobs"],
    )
    if p["fmt"] == "json":
        click.echo(json.dumps(summary.as_dict(), ensure_ascii=False, indent=2))
    else:
        click.echo(format_scan_summary(summary))


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


def main(argv: list[str] | None = None) -> None:
    """Entry point: one-line errors, tracebacks only with --debug."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args or bool(_env_flag("LINKKEEPER_DEBUG"))
    try:
        rv = cli.main(args=args, prog_name="linkkeeper", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except click.UsageError as exc:  # click's own code 2 would read as "link failures"
        exc.show()
        sys.exit(EXIT_CONFIG)
    except click.ClickException as exc:  # ConfigError carries 3, the rest 1
        exc.show()
        sys.exit(exc.exit_code)
    except SiteError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_CONFIG)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # the one place that turns crashes into messages
        if debug:
            traceback.print_exc()
        else:
            click.echo(f"error: {type(exc).__name__}: {exc} (run with --debug for details)",
                       err=True)
        sys.exit(EXIT_RUNTIME)
    sys.exit(rv if isinstance(rv, int) else EXIT_OK)


def _env_flag(name: str) -> bool:
    import os

    return os.environ.get(name, "").lower() in ("1", "true", "yes", "on")


def parse_duration(text: str | None) -> timedelta | None:
    """'90s', '30m', '12h', '7d', '2w' or plain seconds -> timedelta."""
    if text is None or str(text).strip() == "":
        return None
    s = str(text).strip().lower()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    try:
        if s[-1] in units:
            return timedelta(seconds=float(s[:-1]) * units[s[-1]])
        return timedelta(seconds=float(s))
    except (ValueError, IndexError):
        raise click.BadParameter(f"{text!r} is not a duration like 90s, 30m, 12h, 7d") from None


def parse_confirm(text: str) -> ConfirmPolicy:
    from linkkeeper.history.runs import ConfirmPolicy

    try:
        n, days = (x.strip() for x in text.split(","))
        policy = ConfirmPolicy(int(n), float(days))
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected N,DAYS like 3,3") from None
    if policy.checks < 1 or policy.days < 0:
        raise click.BadParameter(f"{text!r}: N must be >= 1 and DAYS >= 0")
    return policy


def parse_shard(text: str | None) -> Any:  # issue 15
    from linkkeeper.shards import Shard, ShardError

    try:
        return Shard.parse(text) if text else None
    except ShardError as exc:
        raise click.BadParameter(f"--shard {exc}") from None


def parse_headers(values: tuple[str, ...] | list[str]) -> dict[str, str]:
    headers = {}
    for v in values:
        name, sep, value = v.partition(":")
        if not sep or not name.strip():
            raise click.BadParameter(f"{v!r}: expected 'Name: value'")
        headers[name.strip()] = value.strip()
    return headers


def host_policies(config: Any) -> dict[str, Any]:
    from linkkeeper.check.accept import AcceptRanges
    from linkkeeper.check.options import HostPolicy

    known = {"concurrency", "rate", "connect_timeout", "read_timeout", "timeout",
             "total_timeout", "headers", "accept"}
    out = {}
    for host, table in config.hosts.items():
        unknown = set(table) - known
        if unknown:
            raise ConfigError(f"{config.path}: [hosts.{host!r}]: unknown setting(s): "
                              f"{', '.join(sorted(unknown))}")
        try:
            out[host.lower()] = HostPolicy(
                concurrency=table.get("concurrency"),
                rate=table.get("rate"),
                connect_timeout=table.get("connect_timeout"),
                read_timeout=table.get("read_timeout"),
                total_timeout=table.get("total_timeout", table.get("timeout")),
                headers={str(k): str(v) for k, v in (table.get("headers") or {}).items()},
                accept=AcceptRanges.parse(str(table["accept"])) if "accept" in table else None,
            )
        except ValueError as exc:
            raise ConfigError(f"{config.path}: [hosts.{host!r}]: {exc}") from None
    return out


def check_options_from(p: dict[str, Any]) -> Any:
    """Map parsed CLI/config parameters onto the checker's options."""
    from linkkeeper.check.accept import AcceptRanges
    from linkkeeper.check.options import CheckOptions
    from linkkeeper.check.resolver import parse_connect_to

    try:
        accept = AcceptRanges.parse(p["accept"]) if p["accept"] else AcceptRanges.default()
        parse_connect_to(p["connect_to"])  # validate early: exit 3 on a bad spec
        for pattern in (*p["include"], *p["exclude"]):
            re.compile(pattern)
    except (ValueError, re.error) as exc:
        raise ConfigError(str(exc)) from None
    kwargs: dict[str, Any] = {
        "concurrency": p["concurrency"],
        "host_concurrency": p["host_concurrency"],
        "host_rate": p["host_rate"],
        "max_redirects": p["max_redirects"],
        "attempts": p["attempts"],
        "retry_after_cap": p["retry_after_cap"],
        "connect_timeout": p["connect_timeout"],
        "read_timeout": p["read_timeout"],
        "total_timeout": p["timeout"],
        "headers": parse_headers(p["header"]),
        "accept": accept,
        "insecure": p["insecure"],
        "ca_bundle": str(p["ca_bundle"]) if p["ca_bundle"] else None,
        "proxy": p["proxy"],
        "connect_to": list(p["connect_to"]),
        "offline_dns": p["offline_dns"],
        "include": list(p["include"]),
        "exclude": list(p["exclude"]),
        "exclude_private": p["exclude_private"],
        "hosts": host_policies(p["_config"]),
    }
    if p["user_agent"]:
        kwargs["user_agent"] = p["user_agent"]
    return CheckOptions(**kwargs)


def check_options(fn: Any) -> Any:
    """The fetching options (shared by `check` and later `snapshot`)."""
    opts = [
        click.option("--concurrency", type=click.IntRange(1), default=128, show_default=True,
                     envvar="LINKKEEPER_CONCURRENCY", help="Requests in flight, all hosts together."),
        click.option("--host-concurrency", type=click.IntRange(1), default=8, show_default=True,
                     envvar="LINKKEEPER_HOST_CONCURRENCY",
                     help="Concurrent connections to one host (never exceeded)."),
        click.option("--host-rate", type=click.FloatRange(0), default=20.0, show_default=True,
                     envvar="LINKKEEPER_HOST_RATE",
                     help="Requests per second to one host (0: no limit)."),
        click.option("--max-redirects", type=click.IntRange(0), default=10, show_default=True,
                     envvar="LINKKEEPER_MAX_REDIRECTS"),
        click.option("--attempts", type=click.IntRange(1), default=3, show_default=True,
                     envvar="LINKKEEPER_ATTEMPTS",
                     help="Tries for timeouts, connection errors, 5xx and 429."),
        click.option("--retry-after-cap", type=click.FloatRange(0), default=60.0,
                     show_default=True, envvar="LINKKEEPER_RETRY_AFTER_CAP",
                     help="Longest Retry-After (seconds) honoured before giving up."),
        click.option("--connect-timeout", type=click.FloatRange(0.01), default=10.0,
                     show_default=True, envvar="LINKKEEPER_CONNECT_TIMEOUT"),
        click.option("--read-timeout", type=click.FloatRange(0.01), default=20.0,
                     show_default=True, envvar="LINKKEEPER_READ_TIMEOUT"),
        click.option("--timeout", type=click.FloatRange(0.01), default=45.0, show_default=True,
                     envvar="LINKKEEPER_TIMEOUT", help="Total seconds for one request."),
        click.option("--user-agent", envvar="LINKKEEPER_USER_AGENT",
                     help="User-Agent header [default: linkkeeper/VERSION (+url)]."),
        click.option("--header", "-H", multiple=True, envvar="LINKKEEPER_HEADER",
                     help="Extra request header 'Name: value'; repeatable."),
        click.option("--accept", envvar="LINKKEEPER_ACCEPT",
                     help="Accepted status codes, lychee syntax: '200..=299,403' [default: 200..=299]."),
        click.option("--insecure", "-k", is_flag=True, envvar="LINKKEEPER_INSECURE",
                     help="Do not verify TLS certificates (recorded in the run)."),
        click.option("--ca-bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     envvar="LINKKEEPER_CA_BUNDLE",
                     help="CA certificates file [default: SSL_CERT_FILE or the system store]."),
        click.option("--proxy", envvar="LINKKEEPER_PROXY",
                     help="HTTP proxy URL [default: HTTP(S)_PROXY from the environment]."),
        click.option("--connect-to", multiple=True, envvar="LINKKEEPER_CONNECT_TO",
                     metavar="HOST:PORT:ADDR:PORT",
                     help="Send requests for HOST:PORT to ADDR:PORT, keeping URL, Host and TLS "
                     "name (curl's meaning; '*' or empty HOST: any host); repeatable."),
        click.option("--offline-dns", is_flag=True, envvar="LINKKEEPER_OFFLINE_DNS",
                     help="Resolve nothing through DNS: names not matched by --connect-to fail "
                     "as 'name does not resolve' (for hermetic tests and demos)."),
        click.option("--include", multiple=True, envvar="LINKKEEPER_INCLUDE",
                     help="Regex: check only matching URLs (overrides --exclude); repeatable."),
        click.option("--exclude", multiple=True, envvar="LINKKEEPER_EXCLUDE",
                     help="Regex: do not check matching URLs; repeatable."),
        click.option("--exclude-private", is_flag=True, envvar="LINKKEEPER_EXCLUDE_PRIVATE",
                     help="Skip hosts resolving to private, loopback or link-local addresses."),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


# The archiving options live with the archive stage (it imports nothing of this module's rest).
from linkkeeper.cli.archive import archive_options, archive_options_from  # noqa: E402


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
@click.option("--shard", envvar="LINKKEEPER_SHARD", metavar="I/N",  # issue 15
              help="Check only shard I of N (1-based), the hosts whose registrable domain falls "
              "in it; give each shard its own --db and --warc-dir, then `linkkeeper merge`.")
@click.option("--confirm", default="3,3", show_default=True, envvar="LINKKEEPER_CONFIRM",
              metavar="N,DAYS", help="A link is dead after N failed checks spanning DAYS days.")
@click.option("--soft404/--no-soft404", "soft404", default=True, show_default=True,
              envvar="LINKKEEPER_SOFT404",
              help="Detect soft 404s: probe one certainly-nonexistent URL per host+directory "
              "and judge 2xx pages (redirects to the home page, error pages, meta refresh).")
@click.option("--soft404-threshold", type=click.FloatRange(0, 1), default=0.75,
              show_default=True, envvar="LINKKEEPER_SOFT404_THRESHOLD",
              help="Main-text similarity to the probe's page at which a page is a soft 404.")
@click.option("--read-pages/--head-first", "read_pages", default=True, show_default=True,
              envvar="LINKKEEPER_READ_PAGES",
              help="GET page links instead of HEAD (no more requests, more bytes): error "
              "phrases and content drift are then seen on every check; --head-first saves "
              "bytes but believes a 200 it did not read.")
@click.option("--fail-on", type=click.Choice(["new", "any", "never"]), default="new",
              show_default=True, envvar="LINKKEEPER_FAIL_ON",
              help="Which failures make the exit code 2: links broken since the previous run, "
              "any failing link, or never.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, envvar="LINKKEEPER_FORMAT",
              help="json: the run's results on stdout (or -o FILE), messages on stderr.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the --format json document to this file.")
@click.option("--quiet", "-q", is_flag=True, envvar="LINKKEEPER_QUIET",
              help="No progress, no summary (exit code only; JSON still written).")
@click.pass_context
def check(ctx: click.Context, **params: Any) -> int:
    """Scan the site, then check every distinct link and record the results.

    The nightly audit. Every URL is checked once per run however many posts
    cite it, politely: at most --host-concurrency connections and --host-rate
    requests per second per host, slowed further when a host answers 429/503.
    An interrupted run (Ctrl-C, kill -9) is resumed by the next `check`.

    Exit codes: 0 nothing to report, 2 link failures (see --fail-on),
    1 runtime error, 3 configuration error.

    \b
    Examples:
      linkkeeper check ~/blog
      linkkeeper check ~/blog --max-age 20h --format json -o results.json
      linkkeeper check ~/blog --failing --fail-on any
      linkkeeper check . --connect-to 'www.example.com:443:127.0.0.1:8443'
    """
    from linkkeeper.audit import AuditOptions, run_audit_async  # aiohttp: only when checking

    p = load_params(ctx, params)
    opts = check_options_from(p)
    opts.soft404, opts.soft404_threshold = p["soft404"], p["soft404_threshold"]
    opts.read_pages = p["read_pages"]
    try:
        confirm = parse_confirm(p["confirm"])
        max_age = parse_duration(p["max_age"])
        shard = parse_shard(p["shard"])  # issue 15
    except click.BadParameter as exc:
        raise ConfigError(exc.message) from None
    site = open_site(list(p["site"]), p["site_url"])
    db = open_db_for(p["site"], p["db"])
    db_path = p["db"] or default_db_path(p["site"][0] if p["site"] else Path("."))
    archive = archive_options_from(p, Path(db_path), opts.user_agent)
    from linkkeeper.extract.post import DEFAULT_SOURCE_KEYS
    from linkkeeper.scan import scan_site

    say = (lambda msg: None) if p["quiet"] else (lambda msg: click.echo(msg, err=True))
    if site.config_problem:
        say(f"warning: {site.config_problem}")
    summary = scan_site(db, site, source_keys=p["source_keys"] or DEFAULT_SOURCE_KEYS,
                        on_problem=lambda prob: say(str(prob)), jobs=p["jobs"])
    say(f"scanned {summary.posts} posts: {summary.distinct_urls} distinct URLs "
        f"({summary.parsed} posts parsed)")
    record_opts = {k: (str(v) if isinstance(v, Path) else v) for k, v in p.items()
                   if not k.startswith("_") and k not in ("site",)}
    audit_opts = AuditOptions(max_age=max_age, failing_only=p["failing_only"],
                              budget=p["budget"], new_run=p["new_run"], confirm=confirm,
                              record_options=record_opts, archive=archive,
                              shard=shard)  # issue 15
    from linkkeeper.history.runs import RunBusy

    progress = ProgressReporter(quiet=p["quiet"])
    try:
        result = asyncio.run(run_audit_async(db, opts, audit_opts, on_progress=progress.update))
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
    if p["fmt"] == "json":
        from linkkeeper.report.results import write_json

        if p["output"]:
            tmp = p["output"].with_name(p["output"].name + ".tmp")
            with tmp.open("w", encoding="utf-8") as fh:
                write_json(db, result.run.id, fh)
            tmp.replace(p["output"])
        else:
            write_json(db, result.run.id, sys.stdout)
    if not p["quiet"]:
        text = format_check_summary(db, result)
        click.echo(text, err=p["fmt"] == "json" and not p["output"])
    return exit_code_for(db, result, p["fail_on"])


def exit_code_for(db: Any, result: Any, fail_on: str) -> int:
    if fail_on == "never":
        return EXIT_OK
    if fail_on == "new":
        return EXIT_FAILURES if result.new_failures else EXIT_OK
    marks = ",".join("?" * len(FAILURES))
    n = db.execute(
        f"SELECT count(*) FROM link_state WHERE last_status IN ({marks})"
        " AND url IN (SELECT url FROM occurrences)", sorted(FAILURES)
    ).fetchone()[0]
    return EXIT_FAILURES if n else EXIT_OK


def format_check_summary(db: Any, r: Any) -> str:
    lines = [f"run {r.run.id}{' (resumed)' if r.run.resumed else ''}: {r.checked} URLs, "
             f"{r.requests} requests in {r.elapsed_s:.1f}s"]
    for status, n in sorted(r.counts.items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"  {status:<14} {n:>7}")
    if r.new_failures:
        lines.append(f"new failures since the previous run: {len(r.new_failures)}")
        rows = db.execute(
            "SELECT c.url, c.status, c.reason FROM checks c WHERE c.run_id=? AND c.new_failure=1"
            " ORDER BY c.url LIMIT 20", [r.run.id]
        ).fetchall()
        for url, status, reason in rows:
            lines.append(f"  {status:<13} {url}  ({reason})")
        if len(r.new_failures) > 20:
            lines.append(f"  ... and {len(r.new_failures) - 20} more")
    slow = sorted(((ms / n, h, n) for h, (n, ms) in r.host_times.items() if n), reverse=True)[:5]
    if slow:
        lines.append("slowest hosts (mean ms per URL)")
        lines.extend(f"  {avg:>8.0f}  {h} ({n} URLs)" for avg, h, n in slow)
    if getattr(r, "archive", None) is not None:
        from linkkeeper.cli.archive import format_archive_summary

        lines.append(format_archive_summary(r.archive))
    return "\n".join(lines)


@cli.command(context_settings=CONTEXT)
@click.argument("url")
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path, exists=True),
              envvar="LINKKEEPER_DB", default="linkkeeper.db", show_default=True)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
def history(url: str, db: Path, fmt: str) -> None:
    """Print a URL's status timeline, oldest first.

    URL is matched after normalisation, as the inventory stores it.

    \b
    Example:
      linkkeeper history 'https://www.rfa.org/mandarin/a.html' --db ~/blog/linkkeeper.db
    """
    from linkkeeper.history.runs import url_history
    from linkkeeper.urls import normalize_url

    database = connect(db)
    key = normalize_url(url).url
    rows = list(url_history(database, key))
    state = database.execute(
        "SELECT state, since, consecutive_failures, first_failed, last_ok FROM link_state"
        " WHERE url=?", [key]).fetchone()
    if fmt == "json":
        st = dict(zip(("state", "since", "consecutive_failures", "first_failed", "last_ok"),
                      state, strict=True)) if state else None
        click.echo(json.dumps({"url": key, "state": st, "checks": rows}, ensure_ascii=False,
                              indent=2))
        return
    if not rows:
        raise click.ClickException(f"{key}: never checked (not in this database's history)")
    click.echo(key)
    if state:
        click.echo(f"state: {state[0]} since {state[1]}"
                   + (f", {state[2]} consecutive failures" if state[2] else ""))
    for r in rows:
        code = r["http_status"] if r["http_status"] is not None else "-"
        click.echo(f"  {r['checked_at']}  run {r['run_id']:<4} {r['status']:<13} {code!s:<4} "
                   f"{r['reason'] or ''}")


@cli.command(context_settings=CONTEXT)
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("linkkeeper-demo"), show_default=True,
              help="Where the example site is copied and its database written.")
@click.option("--quiet", "-q", is_flag=True)
def demo(workdir: Path, quiet: bool) -> int:
    """Run the nightly audit on the bundled example site, against the local fault-injection web.

    Copies examples/site to WORKDIR, starts linkkeeper's fault-injection web on
    loopback (it plays 404s, redirects, bot blocks, expired certificates, slow
    and dead servers for the example's made-up hosts), and runs `check` with
    --connect-to so that no request leaves this machine. Run it twice to see
    the history build up.

    \b
    Example:
      linkkeeper demo && linkkeeper history https://www.rfa.example/status/404/mandarin/Xinwen/kw5-nato-eu-11142024134841.html --db linkkeeper-demo/site/linkkeeper.db
    """
    import shutil

    from linkkeeper.faultweb import FaultWeb

    source = example_site_path()
    site = workdir / "site"
    if not site.exists():
        shutil.copytree(source, site)
    db = connect(default_db_path(site))
    from linkkeeper.scan import scan_site

    scan_site(db, open_site([site]))
    hosts = [h for (h,) in db.execute(
        "SELECT DISTINCT host FROM links WHERE status IS NULL AND host != ''")
        if not h.endswith(".invalid")]
    with FaultWeb(hosts=hosts, default_latency=(5, 40)) as web:
        args = [str(site), "--offline-dns", "--ca-bundle", web.ca_pem, "--fail-on", "never",
                "--attempts", "2", "--timeout", "5"]
        for spec in web.connect_to_args(wildcard=False):
            args += ["--connect-to", spec]
        if quiet:
            args.append("--quiet")
        rv = check.main(args=args, prog_name="linkkeeper check", standalone_mode=False)
    cli.main(args=["report", str(site)],
             prog_name="linkkeeper", standalone_mode=False)
    if not quiet:
        click.echo(f"\nThe history is in {default_db_path(site)}, the report in "
                   f"{site / 'reports' / 'index.html'} (`linkkeeper serve {site}` shows it with "
                   "the archived copies); run `linkkeeper demo` again to add a second night.",
                   err=True)
    return int(rv or 0)


def example_site_path() -> Path:
    """The bundled example site (from a source checkout or an editable install)."""
    here = Path(__file__).resolve().parents[1]
    for candidate in (here.parent / "examples" / "site", here / "examples" / "site"):
        if candidate.is_dir():
            return candidate
    raise click.ClickException("the bundled example site is not installed with this copy")


# Commands of the later stages live in their own modules and register themselves on `cli`.
import linkkeeper.cli.archive  # noqa: E402
import linkkeeper.cli.export  # noqa: E402
import linkkeeper.cli.merge  # noqa: E402  (issue 15)
import linkkeeper.cli.report  # noqa: E402, F401
