"""Commands of the export stage: `export`, `replay`, `serve`; they register on the `linkkeeper` group."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from linkkeeper.cli.app import (
    CONTEXT,
    cli,
    config_option,
    db_option,
    existing_db_path,
    guard_output,
    guard_output_dir,
    load_params,
    merge_site_option,
    output_file,
    plural,
    site_argument,
    site_option,
    special_output,
    warc_dir_for,
    warc_dir_option,
)
from linkkeeper.db import connect
from linkkeeper.progress import TransferProgress
from linkkeeper.vocab import State


def _store_options(fn: Any) -> Any:
    """SITE, --site, --config, --db and --warc-dir: where the history and the WARC files are."""
    return site_argument(site_option(config_option(db_option(warc_dir_option(fn)))))


def _locations(p: dict[str, Any]) -> tuple[Path, Path]:
    """(database, WARC folder), the way `check` chooses them; the database must exist."""
    db_path = existing_db_path(p)
    return db_path, warc_dir_for(db_path, p["warc_dir"])


def _moment(text: str | None, option: str, *, end: bool) -> Any:
    from linkkeeper.archive.replay import parse_moment

    if not text:
        return None
    try:
        return parse_moment(text, end_of_period=end)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


@cli.command(context_settings=CONTEXT)
@_store_options
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The file to write: NAME.warc.gz (one WARC/1.1 file) or NAME.wacz (WACZ "
              "1.1.1 package).")
@click.option("--post", "posts", multiple=True, metavar="PATH",
              help="Captures of the links of this post (path as scanned, a path ending in it, "
              "or a glob); repeatable.")
@click.option("--url", "urls", multiple=True, metavar="PATTERN",
              help="Captures whose URL matches: a glob ('https://www.rfa.org/*') or, without "
              "* ? [, a substring; repeatable.")
@click.option("--since", metavar="DATE", help="Captures made at or after DATE (2026-11-01, an "
              "ISO time or a 14-digit timestamp).")
@click.option("--until", metavar="DATE", help="Captures made at or before DATE (a date means "
              "the end of that day).")
@click.option("--state", "states", multiple=True,
              type=click.Choice([s.value for s in State]),
              help="Links currently in this state (dead, failing, drifted, alive...); "
              "repeatable.")
@click.option("--latest", is_flag=True, help="Only the newest selected capture of each URL "
              "[default: all captures].")
@click.option("--no-redirects", is_flag=True, help="Do not add the captures that archived "
              "redirects lead to.")
@click.option("--title", help="WACZ: the package title [default: linkkeeper export].")
@click.option("--force", is_flag=True, help="Replace OUTPUT if it exists.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Summary format (on stdout).")
@click.option("--quiet", "-q", is_flag=True, help="No progress, no summary.")
@click.pass_context
def export(ctx: click.Context, **params: Any) -> None:
    """Export archived captures to a WARC file or a WACZ package.

    Selections combine (--post AND --url AND --state AND dates); a repeated
    option widens its own criterion. Records are copied byte for byte from the
    WARC folder; revisits bring their original record and archived redirects
    the capture they lead to, so the export replays on its own. The file is
    written under a temporary name and renamed when complete.

    \b
    Examples:
      linkkeeper export ~/blog --state dead -o dead-links.warc.gz
      linkkeeper export ~/blog --post _posts/2024-11-19-storm.md -o storm.wacz
      linkkeeper export --db links.db --url 'https://www.rfa.org/*' --since 2026-01-01 \\
          --latest -o rfa-2026.wacz
    """
    from linkkeeper.export.run import export as run_export
    from linkkeeper.export.run import export_format
    from linkkeeper.export.select import ExportError, Selection

    p = load_params(ctx, merge_site_option(params))
    try:
        export_format(p["output"])  # a bad name is a bad option value: exit 3, before anything
    except ExportError as exc:
        raise click.BadParameter(str(exc), param_hint="'--output'") from None
    db_path, folder = _locations(p)
    guard_output(p["output"], db_path, folder, text=False)
    if special_output(p["output"]):  # a package is seekable zip or a renamed WARC
        raise click.BadParameter(f"{p['output']} is not a regular file: give a file name",
                                 param_hint="'--output'")
    selection = Selection(
        posts=tuple(p["posts"]),
        url_patterns=tuple(p["urls"]),
        since=_moment(p["since"], "--since", end=False),
        until=_moment(p["until"], "--until", end=True),
        states=tuple(p["states"]),
        latest=p["latest"],
    )
    progress = TransferProgress(quiet=p["quiet"])
    try:
        result = run_export(connect(db_path), folder, selection, p["output"], force=p["force"],
                            follow_redirects=not p["no_redirects"], on_progress=progress,
                            title=p["title"])
    except ExportError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        progress.close()
    for problem in result.problems:
        click.echo(f"warning: {problem}", err=True)
    if p["quiet"]:
        return
    if p["fmt"] == "json":
        click.echo(json.dumps(result.as_dict(), ensure_ascii=False, indent=2))
        return
    added = []
    if result.originals_added:
        added.append(plural(result.originals_added, "revisit original"))
    if result.redirect_targets_added:
        added.append(plural(result.redirect_targets_added, "redirect target"))
    pages = f", {plural(result.pages, 'page')}" if result.format == "wacz" else ""
    click.echo(
        f"{result.path}: {plural(result.captures, 'capture')} ({result.selected} selected"
        + (f"; added {', '.join(added)}" if added else "")
        + f"), {plural(result.requests, 'request')}"
        f"{pages}, {result.bytes_written / 1e6:.1f} MB in {result.elapsed_s:.1f}s"
    )


@cli.command(context_settings=CONTEXT)
@click.argument("url")
@_store_options
@click.option("--at", metavar="DATE", help="Choose the capture closest at or before DATE "
              "(2026-11-26, an ISO time, a 14-digit timestamp) [default: the newest].")
@click.option("--body", is_flag=True, help="Write the chosen capture's payload instead of the "
              "list, content coding (gzip, br) removed (refused past 256 MiB decoded).")
@click.option("--raw", is_flag=True, help="With --body: keep the content coding (the bytes as "
              "the server sent them).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="With --body: write to this file instead of stdout.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Format of the capture list.")
@click.pass_context
def replay(ctx: click.Context, **params: Any) -> None:
    """List the captures of URL, or write one's archived payload (--body).

    The database is found the way `check` chose it: --db, SITE or --site, the config
    file, ./linkkeeper.db, or the last site checked.

    \b
    Examples:
      linkkeeper replay https://www.rfa.org/a.html ~/blog
      linkkeeper replay https://www.rfa.org/a.html --at 2026-11-01 --body -o a.html
      linkkeeper replay https://img.rfa.org/p.jpg --body --db ~/blog/linkkeeper.db > p.jpg
    """
    from linkkeeper.archive.records import CaptureUnavailable
    from linkkeeper.archive.replay import NothingArchived, describe_capture, replay_url
    from linkkeeper.codings import UnsupportedEncoding  # DecodedTooLarge (a bomb) is one

    p = load_params(ctx, merge_site_option(params))
    db, folder = _locations(p)
    url, at, body, raw, output, fmt = (p[k] for k in ("url", "at", "body", "raw", "output", "fmt"))
    guard_output(output, db, folder, text=False)
    moment = _moment(at, "--at", end=True)
    try:
        answer = replay_url(connect(db), folder, url, at=moment, body=body, raw=raw)
    except NothingArchived:
        raise click.ClickException(f"{url}: nothing archived in {db}") from None
    except CaptureUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    except UnsupportedEncoding as exc:
        raise click.ClickException(f"{exc} (use --raw for the stored bytes)") from None
    captures, chosen = answer.captures, answer.chosen
    if answer.archived is None or answer.pieces is None:
        if fmt == "json":
            click.echo(json.dumps(answer.as_dict(), ensure_ascii=False, indent=2))
            return
        click.echo(f"{captures[0].url}: {len(captures)} capture{'s' * (len(captures) != 1)}")
        for c in captures:
            mark = "*" if c.id == chosen.id and (moment is not None) else " "
            click.echo(f"{mark} {describe_capture(c)}")
        return
    archived = answer.archived
    click.echo(f"{chosen.timestamp} {archived.status} {archived.reason} "
               f"{archived.header('Content-Type') or ''}".rstrip(), err=True)
    if archived.truncated:
        click.echo("warning: this capture was truncated at the size cap", err=True)
    location = archived.header("Location")
    if location and 300 <= archived.status < 400:
        click.echo(f"redirect to {location}", err=True)
    if output:
        with output_file(output, binary=True) as fh:
            fh.writelines(answer.pieces)
    else:
        sys.stdout.buffer.writelines(answer.pieces)
        sys.stdout.buffer.flush()


@cli.command(context_settings=CONTEXT)
@_store_options
@click.option("--reports", "reports_dir", type=click.Path(file_okay=False, path_type=Path),
              envvar="LINKKEEPER_OUTPUT_DIR",
              help="Folder of the HTML report [default: reports/ next to the database].")
@click.option("--host", default="127.0.0.1", show_default=True, envvar="LINKKEEPER_SERVE_HOST",
              help="Address to listen on (loopback: only this machine can connect).")
@click.option("--port", "-p", type=click.IntRange(0, 65535), default=8000, show_default=True,
              envvar="LINKKEEPER_SERVE_PORT")
@click.option("--no-regenerate", is_flag=True, help="Serve the report as it is on disk instead "
              "of writing it afresh from the database when the server starts.")
@click.pass_context
def serve(ctx: click.Context, **params: Any) -> None:
    """Browse the broken-link report and the archived copies it links to.

    Serves reports/index.html at / (written afresh from the database first,
    unless --no-regenerate) and each archived copy at
    /archive/<timestamp>/<url> straight from the WARC files, with the status,
    headers and bytes the server sent. /archive/ lists every archived URL.

    \b
    Examples:
      linkkeeper serve ~/blog                  # then open http://127.0.0.1:8000/
      linkkeeper serve --db links.db --port 8080 --no-regenerate
    """
    from linkkeeper.serve import LOOPBACK_HOSTS, BindError, create_app, open_read_only, run

    p = load_params(ctx, merge_site_option(params))
    db_path, folder = _locations(p)
    reports = p["reports_dir"] or db_path.parent / "reports"
    if p["reports_dir"]:
        guard_output_dir(p["reports_dir"], db_path, folder, option="--reports")
    if not p["no_regenerate"]:
        _regenerate_report(db_path, reports)
    if p["host"] not in LOOPBACK_HOSTS:
        click.echo(f"warning: listening on {p['host']}: other machines can read the report "
                   "and the archive", err=True)
    app = create_app(open_read_only(db_path), folder, reports)
    try:
        run(app, p["host"], p["port"], say=lambda msg: click.echo(msg, err=True))
    except BindError as exc:
        raise click.ClickException(str(exc)) from None


def _regenerate_report(db_path: Path, reports: Path) -> None:
    """Write reports/index.html with the report library, when this build has it."""
    try:
        from linkkeeper.report import ReportError, build_report, write_html
    except ImportError:
        return
    try:
        write_html(build_report(connect(db_path)), reports / "index.html")
    except ReportError as exc:
        click.echo(f"warning: report not regenerated ({exc}); serving {reports} as it is",
                   err=True)
