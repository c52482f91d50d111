"""Commands of the report stage; they register themselves on the `linkkeeper` group."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from linkkeeper.cli.app import (
    CONTEXT,
    cli,
    existing_db_path,
    guard_output,
    guard_output_dir,
    load_params,
    merge_site_option,
    output_file,
    special_output,
    store_options,
    warc_dir_for,
)
from linkkeeper.cli.lookups import archive_lookup_options, refresh_copies, serve_url_option
from linkkeeper.db import connect


@cli.command(context_settings=CONTEXT)
@store_options
@click.option("--format", "fmt", default="html", show_default=True,
              type=click.Choice(["html", "markdown", "json", "csv", "junit", "sarif"]),
              envvar="LINKKEEPER_REPORT_FORMAT",
              help="html: a page for people; the others for machines (stdout unless -o).")
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path),
              envvar="LINKKEEPER_OUTPUT_DIR",
              help="Where the HTML report goes, as index.html [default: reports/ next to the "
              "database].")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this file instead (HTML: instead of OUTPUT_DIR/index.html; other "
              "formats: instead of stdout).")
@click.option("--since", metavar="RUN|DATE", envvar="LINKKEEPER_SINCE",
              help="Only what changed after run RUN, or since DATE (2024-11-19 or an ISO "
              "time): newly broken, recovered, other status changes [default: everything; "
              "changes counted against the previous run].")
@click.option("--sarif-prefix", default="", metavar="PATH/",
              help="SARIF: prefix for post paths when the site is not the repository root "
              "(e.g. 'site/').")
@serve_url_option
@archive_lookup_options
@click.pass_context
def report(ctx: click.Context, **params: Any) -> None:
    """Write the broken-link report from the history database.

    The HTML report is one self-contained page (no network needed: open it
    from disk, or through `linkkeeper serve`, which also serves the archived
    copies it links to). Machine formats go to stdout: markdown (a GitHub
    issue or PR comment, newly broken first), json (the schema of
    `check --format json`), csv (one row per link in a post), junit (one test
    case per link), sarif (GitHub code scanning annotates the posts).

    \b
    Examples:
      linkkeeper report ~/blog                       # ~/blog/reports/index.html
      linkkeeper report --db links.db --output-dir /var/www/links
      linkkeeper report ~/blog --format markdown --since 41 > comment.md
      linkkeeper report ~/blog --format sarif -o links.sarif
      linkkeeper report ~/blog --format csv --since 2024-11-01 -o changes.csv
    """
    from linkkeeper.report import (
        ReportError,
        build_report,
        write_html,
        write_report,
        write_report_folder,
    )

    p = load_params(ctx, merge_site_option(params))
    _check_since(p["since"])
    db_path = existing_db_path(p)
    warc_dir = warc_dir_for(db_path, p.get("warc_dir"))
    guard_output(p["output"], db_path, warc_dir)
    if p["output_dir"]:
        guard_output_dir(p["output_dir"], db_path, warc_dir)
    db = connect(db_path)
    refresh_copies(db, db_path, p)
    try:
        rep = build_report(db, since=p["since"], serve_url=p["serve_url"],
                           table=p["fmt"] == "html")
    except ReportError as exc:
        if p["since"] and str(exc).startswith("--since"):
            raise click.BadParameter(str(exc).split(": ", 1)[1], param_hint="'--since'") from None
        raise click.ClickException(str(exc)) from None
    if p["fmt"] == "html":
        if p["output"] and special_output(p["output"]):  # /dev/stdout: one page, rows inline
            with output_file(p["output"]) as fh:
                write_report(db, rep, "html", fh)
            target = p["output"]
        elif p["output"]:
            target = write_html(rep, p["output"])
        else:
            target = write_report_folder(rep, p["output_dir"] or db_path.parent / "reports")
        s = rep.summary
        click.echo(f"{target}: {s.links} links, {s.newly_broken} newly broken, "
                   f"{s.recovered} recovered, {s.failing + s.dead} failing or dead", err=True)
        return
    if p["output"]:
        with output_file(p["output"]) as fh:
            write_report(db, rep, p["fmt"], fh, sarif_prefix=p["sarif_prefix"])
    else:
        write_report(db, rep, p["fmt"], sys.stdout, sarif_prefix=p["sarif_prefix"])


def _check_since(since: str | None) -> None:
    """A --since that is neither a run id nor a date is a bad value (exit 3) whatever the
    database holds."""
    from linkkeeper.report.data import ReportError, parse_since_date

    if since and not str(since).strip().isdigit():
        try:
            parse_since_date(str(since).strip())
        except ReportError as exc:
            raise click.BadParameter(str(exc).split(": ", 1)[1], param_hint="'--since'") from None
