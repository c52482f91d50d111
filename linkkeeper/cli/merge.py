"""`linkkeeper merge`: shard databases and WARC folders into one (see linkkeeper/merge.py)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from linkkeeper.cli.app import CONTEXT, cli, parse_duration, plural


@cli.command(context_settings=CONTEXT)
@click.argument("shards", nargs=-1, required=True,
                type=click.Path(exists=True, path_type=Path))
@click.option("--db", "out_db", required=True, envvar="LINKKEEPER_DB",
              type=click.Path(dir_okay=False, path_type=Path),
              help="The merged database (created if needed; merged into again each night).")
@click.option("--warc-dir", type=click.Path(file_okay=False, path_type=Path),
              envvar="LINKKEEPER_WARC_DIR",
              help="The merged WARC folder: its index.cdxj indexes every shard's WARCs "
              "[default: warcs/ next to the merged database].")
@click.option("--window", default="12h", show_default=True, metavar="DURATION",
              help="Shard runs that started within this time of each other are one run.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
def merge(shards: tuple[Path, ...], out_db: Path, warc_dir: Path | None, window: str,
          fmt: str) -> None:
    """Combine the databases and WARC folders of `check --shard I/N` runs into one.

    Each SHARD is a shard's database, or a folder holding its linkkeeper.db; its
    WARC folder is warcs/ beside the database. Runs of the same night across
    shards become one run; merging the same shards again changes nothing, and
    merging after the next night adds that night. `report`, `history`, `serve`,
    `replay` and `export` then read the merged database.

    \b
    Examples:
      linkkeeper merge --db all/linkkeeper.db shards/1 shards/2 shards/3 shards/4
      linkkeeper report --db all/linkkeeper.db
      linkkeeper export --db all/linkkeeper.db -o archive.wacz
    """
    from linkkeeper.merge import MergeError, locate_shard
    from linkkeeper.merge import merge as merge_shards

    span = parse_duration(window)
    if span is None:
        raise click.BadParameter(f"{window!r}: expected a duration like 12h", param_hint="--window")
    try:
        summary = merge_shards(out_db, [locate_shard(p) for p in shards], warc_dir=warc_dir,
                               window=span)
    except MergeError as exc:
        raise click.ClickException(str(exc)) from None
    for problem in summary.problems:
        click.echo(f"warning: {problem}", err=True)
    if fmt == "json":
        click.echo(json.dumps(summary.as_dict(), indent=2))
        return
    click.echo(f"merged {plural(summary.shards, 'shard')} into {out_db}: runs "
               f"{summary.runs or 'none'} ({summary.runs_added} new), "
               f"{plural(summary.checks, 'check')}, {plural(summary.link_states, 'link state')}, "
               f"{plural(summary.snapshots, 'capture')}, {plural(summary.posts, 'post')} written;"
               f" index.cdxj {plural(summary.index_lines, 'line')}")
