"""Commands of the archive stage: `snapshot` (the archiving options live in cli/app.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from linkkeeper.cli.app import (  # noqa: F401  (parse_size, human_bytes: names tests import)
    CONTEXT,
    EXIT_FAILURES,
    EXIT_OK,
    archive_options,
    archive_options_from,
    check_options,
    check_options_from,
    cli,
    config_option,
    db_option,
    db_path_for,
    format_archive_summary,
    human_bytes,
    load_params,
    parse_size,
    plural,
)
from linkkeeper.db import connect

if TYPE_CHECKING:
    from linkkeeper.archive.snapshot_run import SnapshotOutcome


def _is_url(target: str) -> bool:
    return target.lower().startswith(("http://", "https://"))


@cli.command(context_settings=CONTEXT)
@click.argument("targets", nargs=-1, metavar="[SITE|POST...|URL...]")
@config_option
@db_option
@click.option(
    "--site-url",
    "--base-url",
    "-b",
    "site_url",
    envvar="LINKKEEPER_SITE_URL",
    help="The site's own URL, to resolve relative links [default: from _config.yml].",
)
@click.option(
    "--source-key",
    "source_keys",
    multiple=True,
    envvar="LINKKEEPER_SOURCE_KEYS",
    help="Front matter key naming the post's source URL; repeatable.",
)
@check_options
@archive_options(switch=False)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    envvar="LINKKEEPER_FORMAT",
    help="json: every URL with its captures on stdout.",
)
@click.option("--quiet", "-q", is_flag=True, envvar="LINKKEEPER_QUIET", help="No summary.")
@click.pass_context
def snapshot(ctx: click.Context, **params: Any) -> int:
    """Capture pages and images into the WARC folder now, without waiting for `check`.

    Targets are URLs, post files (their links of the archived kinds), or one site folder
    (every cited link of those kinds) [default: the current folder]. A URL is fetched once
    with GET and written as it came: redirect hops, then the page; a body unchanged since
    its last capture is written as a small revisit record. Only live pages are archived.
    Does not record checks: `check` does that (and archives as it checks).

    Exit codes: 0 everything archived, 2 some URL could not be archived (dead, blocked,
    disallowed), 1 runtime error, 3 configuration error.

    \b
    Examples:
      linkkeeper snapshot _posts/2024-11-19-bridge.md --db linkkeeper.db
      linkkeeper snapshot https://www.example.com/news/a.html --warc-dir ~/warcs
      linkkeeper snapshot ~/blog --snapshot-kinds all --snapshot-max-age 30d
    """
    from linkkeeper.archive.snapshot_run import run_snapshot

    targets: tuple[str, ...] = params.pop("targets")
    urls_given = [t for t in targets if _is_url(t)]
    paths = [Path(t) for t in targets if not _is_url(t)]
    for path in paths:
        if not path.exists():
            raise click.UsageError(f"{path}: no such file or folder, and not an http(s) URL")
    params["site"] = tuple(paths)
    p = load_params(ctx, params)
    opts = check_options_from(p)
    db_path = db_path_for(tuple(paths), p["db"])
    archive_opts = archive_options_from(p, db_path, opts.user_agent, force=True)
    assert archive_opts is not None
    say = (lambda msg: None) if p["quiet"] else (lambda msg: click.echo(msg, err=True))

    outcome = run_snapshot(
        connect(db_path), opts, archive_opts, urls=urls_given, paths=paths,
        site_url=p["site_url"], source_keys=p["source_keys"] or (), say=say,
    )
    for message in [*outcome.repair_messages, *outcome.problems]:
        say(message)
    if p["fmt"] == "json":
        sys.stdout.write(_json_text(outcome.as_dict()))
    if not p["quiet"]:
        click.echo(_summary(outcome), err=p["fmt"] == "json")
    return EXIT_OK if outcome.ok else EXIT_FAILURES


def _summary(outcome: SnapshotOutcome) -> str:
    """The text summary: what was due, what could not be archived and why, the counts."""
    lines = [f"{plural(len(outcome.due), 'URL')} due for a snapshot (of {outcome.asked} asked)"]
    for url in outcome.failed:
        result = outcome.results.get(url)
        why = f"{result.status}: {result.reason}" if result else "not fetched"
        lines.append(f"  not archived  {url}  ({why})")
    for url in outcome.disallowed:
        lines.append(f"  not archived  {url}  (robots.txt disallows it)")
    lines.append(format_archive_summary(outcome.counts, outcome.folder))
    return "\n".join(lines)


def _json_text(doc: dict[str, Any]) -> str:
    """The JSON summary: indented, with one line per URL entry (its captures included).

    ``json.dumps(indent=...)`` runs the pure-Python encoder: 0.3 s for 3,000 URLs, a tenth
    of the command's CPU. Each entry made by the C encoder on a line of its own is as easy
    to read and to grep; the document parses the same.
    """
    head = json.dumps({k: v for k, v in doc.items() if k != "urls"}, ensure_ascii=False, indent=2)
    lines = ",\n".join("    " + json.dumps(entry, ensure_ascii=False) for entry in doc["urls"])
    urls = f"[\n{lines}\n  ]" if lines else "[]"
    return f'{head[:-2]},\n  "urls": {urls}\n}}\n'
