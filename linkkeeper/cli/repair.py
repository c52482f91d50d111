"""`linkkeeper fix`: replace dead links in the posts with archived copies (dry run by default).

Registers on the `linkkeeper` group like the other command modules; the
package's `__init__` imports it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from linkkeeper.cli.app import CONTEXT, cli, load_params
from linkkeeper.cli.lookups import archive_lookup_options, lookups_for, serve_url_option
from linkkeeper.db import connect, default_db_path


def _include(values: tuple[str, ...]) -> frozenset[str]:
    from linkkeeper.repair.fix import INCLUDABLE

    names = {n.strip() for v in values for n in v.split(",") if n.strip()}
    bad = names - set(INCLUDABLE)
    if bad:
        raise click.BadParameter(f"{sorted(bad)[0]!r}: choose from soft-404, drifted",
                                 param_hint="--include")
    return frozenset(names)


@cli.command(context_settings=CONTEXT)
@click.argument("site", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), envvar="LINKKEEPER_DB",
              help="SQLite file [default: linkkeeper.db next to the site].")
@click.option("--config", "config_file", envvar="LINKKEEPER_CONFIG",
              type=click.Path(dir_okay=False, path_type=Path, exists=True),
              help="Config file (default: linkkeeper.toml or [tool.linkkeeper] in pyproject.toml).")
@click.option("--write", is_flag=True, help="Apply the edits (default: print a diff per post).")
@click.option("--undo", "undo", type=int, metavar="RUN",
              help="Restore the bytes every post had before fix run RUN.")
@click.option("--revert-recovered", is_flag=True,
              help="Links alive again after a fix: show (with --write: undo) those edits.")
@click.option("--include", multiple=True, metavar="soft-404,drifted",
              help="Also replace links whose latest check is a soft 404, or that drifted "
              "[default: dead links only].")
@click.option("--robust-links", "robust", type=click.Choice(["url", "html"]), default="url",
              show_default=True, help="Markdown links: point at the copy (url), or become an "
              "HTML link with Robust Links attributes (html).")
@click.option("--archived-key", default="archived", show_default=True,
              help="Front matter key added next to the source URL for its copy.")
@serve_url_option
@click.option("--warc-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder of our WARC files [default: warcs/ next to the database].")
@archive_lookup_options
@click.pass_context
def fix(ctx: click.Context, **params: Any) -> int:
    """Replace dead links in the posts with archived copies.

    Our own capture taken closest before the link first failed comes first;
    with --archives, the Wayback Machine and Memento archives next. Without
    --write nothing changes: a unified diff per post is printed. Every written
    change is recorded, so `fix --undo RUN` puts the posts back byte for byte.

    \b
    Examples:
      linkkeeper fix ~/blog --serve-url https://archive.blog.example/
      linkkeeper fix ~/blog --archives wayback --write
      linkkeeper fix ~/blog --undo 3
      linkkeeper fix ~/blog --revert-recovered --write
    """
    from linkkeeper.repair.fix import FixError

    p = load_params(ctx, params)
    site_args: tuple[Path, ...] = p["site"]
    db_path = p["db"] or default_db_path(site_args[0] if site_args else Path("."))
    if not db_path.exists():
        raise click.ClickException(
            f"no history database at {db_path}: run `linkkeeper check` first (or pass --db)")
    root = _site_root(site_args, db_path)
    db = connect(db_path)
    try:
        if p["undo"] is not None:
            return _undo(db, root, p["undo"])
        if p["revert_recovered"]:
            return _revert(db, root, p["write"])
        return _fix(db, root, db_path, p)
    except FixError as exc:
        raise click.ClickException(str(exc)) from None


def _site_root(site_args: tuple[Path, ...], db_path: Path) -> Path:
    """Post paths in the database are relative to the site root that was scanned."""
    from linkkeeper.site import open_site

    return open_site(list(site_args) or [db_path.parent]).root


def _fix(db: Any, root: Path, db_path: Path, p: dict[str, Any]) -> int:
    from linkkeeper.repair.fix import FixOptions, plan_fix, write_plan

    opts = FixOptions(
        include=_include(p["include"]), serve_url=p["serve_url"], robust=p["robust"],
        archived_key=p["archived_key"], warc_folder=p["warc_dir"] or db_path.parent / "warcs",
        lookups=lookups_for(p))
    plan = plan_fix(db, root, opts)
    for post in plan.posts:
        if post.edits and not p["write"]:
            click.echo(post.diff(), nl=False)
        for line, url, why in post.skipped:
            click.echo(f"{post.post}:{line}: {url}: not changed: {why}", err=True)
    for url in plan.no_copy:
        click.echo(f"no archived copy anywhere: {url}", err=True)
    edits = sum(len(x.edits) for x in plan.changed)
    if not p["write"]:
        click.echo(f"dry run: {edits} edit(s) in {len(plan.changed)} post(s); "
                   "--write applies them", err=True)
        return 0
    options = {k: p[k] for k in ("include", "robust", "archived_key", "serve_url", "archives")}
    run_id = write_plan(db, plan, options)
    if run_id is None:
        click.echo("nothing to change", err=True)
    else:
        click.echo(f"fix run {run_id}: {edits} edit(s) in {len(plan.changed)} post(s) "
                   f"(undo with `linkkeeper fix --undo {run_id}`)", err=True)
    return 0


def _undo(db: Any, root: Path, run_id: int) -> int:
    from linkkeeper.repair.fix import undo_run

    posts = undo_run(db, root, run_id)
    for post in posts:
        click.echo(f"restored {post}", err=True)
    click.echo(f"fix run {run_id} undone: {len(posts)} post(s) restored", err=True)
    return 0


def _revert(db: Any, root: Path, write: bool) -> int:
    from linkkeeper.repair.revert import recovered_edits, revert_edits

    found = recovered_edits(db, root)
    if not found:
        click.echo("no fixed link has come back", err=True)
        return 0
    for item in found:
        click.echo(f"{item.post}:{item.line}: {item.url} is alive again (fix run {item.run_id})",
                   err=True)
    if not write:
        for diff in revert_edits(db, root, found, write=False):
            click.echo(diff, nl=False)
        click.echo(f"{len(found)} edit(s) can be undone: --write undoes them", err=True)
        return 0
    revert_edits(db, root, found, write=True)
    click.echo(f"{len(found)} edit(s) undone", err=True)
    return 0
