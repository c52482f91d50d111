"""The command line: a thin layer over the library modules.

Exit codes follow lychee: 0 nothing to report, 1 runtime error, 2 link
failures, 3 configuration error.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path
from typing import Any

import click

from linkkeeper import __version__
from linkkeeper.db import connect, default_db_path
from linkkeeper.settings import apply_config, find_config
from linkkeeper.site import SiteError, open_site

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
    from linkkeeper.extract import DEFAULT_SOURCE_KEYS
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
