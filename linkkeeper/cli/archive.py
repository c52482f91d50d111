"""Commands of the archive stage: the archiving options `check` shares, and `snapshot`.

The options decorator and its parser come first and need nothing from `linkkeeper.cli.app`,
so `cli.py` can apply them to `check` while it is still being imported; the `snapshot`
command below registers itself on the `linkkeeper` group.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from linkkeeper.archive.archiver import (
    DEFAULT_KINDS,
    ArchiveCounts,
    ArchiveOptions,
    parse_kinds,
)
from linkkeeper.settings import ConfigError

if TYPE_CHECKING:
    from linkkeeper.archive.snapshot_run import SnapshotOutcome

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?)b?\s*$", re.IGNORECASE)
_UNITS = "kmgt"


def parse_size(text: str) -> int:
    """'50MiB' (binary), '1GB' or '1G' (decimal), '500k', '12345' (bytes) -> bytes."""
    match = _SIZE.match(str(text))
    if not match:
        raise click.BadParameter(f"{text!r} is not a size like 50MiB, 1GB or 500k")
    number, unit, binary = match.groups()
    base = 1024 if binary else 1000
    power = _UNITS.index(unit.lower()) + 1 if unit else 0
    return int(float(number) * base**power)


def human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"  # unreachable


def archive_options(fn: Any = None, *, switch: bool = True) -> Any:
    """The archiving options shared by `check` and `snapshot` (`switch`: --no-snapshot too).

    Use as ``@archive_options`` or ``@archive_options(switch=False)``.
    """
    if fn is None:
        return lambda f: archive_options(f, switch=switch)
    opts = [
        click.option(
            "--no-snapshot",
            is_flag=True,
            envvar="LINKKEEPER_NO_SNAPSHOT",
            help="Do not archive: check only (HEAD where possible).",
        ),
        click.option(
            "--warc-dir",
            type=click.Path(file_okay=False, path_type=Path),
            envvar="LINKKEEPER_WARC_DIR",
            help="Folder of the WARC files [default: warcs/ next to the database].",
        ),
        click.option(
            "--snapshot-max-age",
            envvar="LINKKEEPER_SNAPSHOT_MAX_AGE",
            metavar="DURATION",
            help="Re-capture a URL only when its last capture is older than this "
            "(e.g. 7d) or a check sees it changed [default: every run; an unchanged "
            "page costs a small revisit record].",
        ),
        click.option(
            "--snapshot-kinds",
            default=",".join(sorted(DEFAULT_KINDS)),
            show_default=True,
            envvar="LINKKEEPER_SNAPSHOT_KINDS",
            help="Link kinds to archive, comma-separated: source, related, image, "
            "inline, embed, or all.",
        ),
        click.option(
            "--max-capture-size",
            default="50MiB",
            show_default=True,
            envvar="LINKKEEPER_MAX_CAPTURE_SIZE",
            metavar="SIZE",
            help="Longest body stored per capture; longer ones are cut and marked WARC-Truncated.",
        ),
        click.option(
            "--warc-max-size",
            default="1GB",
            show_default=True,
            envvar="LINKKEEPER_WARC_MAX_SIZE",
            metavar="SIZE",
            help="Start a new WARC file once one reaches this size.",
        ),
        click.option(
            "--respect-robots",
            is_flag=True,
            envvar="LINKKEEPER_RESPECT_ROBOTS",
            help="Do not archive what robots.txt disallows (off by default, like the "
            "Internet Archive: a cited page is archived for readers, not crawled).",
        ),
        click.option(
            "--operator",
            envvar="LINKKEEPER_OPERATOR",
            help="Who runs the archive, for the WARC's warcinfo record "
            "(e.g. 'Jane Doe <jane@example.org>').",
        ),
    ]
    for opt in reversed(opts if switch else opts[1:]):
        fn = opt(fn)
    return fn


def archive_options_from(
    p: dict[str, Any], db_path: Path, user_agent: str, *, force: bool = False
) -> ArchiveOptions | None:
    """ArchiveOptions from parsed parameters; None when --no-snapshot (unless `force`)."""
    from linkkeeper.cli.app import parse_duration

    if p.get("no_snapshot") and not force:
        return None
    try:
        max_age = parse_duration(p["snapshot_max_age"])
        max_capture = parse_size(p["max_capture_size"])
        max_file = parse_size(p["warc_max_size"])
        kinds = parse_kinds(p["snapshot_kinds"])
    except click.BadParameter as exc:
        raise ConfigError(exc.message) from None
    except ValueError as exc:
        raise ConfigError(f"--snapshot-kinds: {exc}") from None
    if max_capture < 1 or max_file < 1:
        raise ConfigError("--max-capture-size and --warc-max-size must be at least 1 byte")
    folder = Path(p["warc_dir"]) if p.get("warc_dir") else db_path.parent / "warcs"
    operator = p.get("operator")
    if operator and re.search(r"[\r\n\x00]", operator):
        raise ConfigError("--operator must be a single line")
    return ArchiveOptions(
        folder=folder,
        kinds=kinds,
        max_age=max_age,
        max_capture_bytes=max_capture,
        warc_max_size=max_file,
        respect_robots=bool(p.get("respect_robots")),
        operator=operator,
        user_agent=user_agent,
    )


def format_archive_summary(counts: ArchiveCounts, folder: Path | None = None) -> str:
    """One line (two with robots/errors) for the check and snapshot summaries."""
    where = f" to {folder}" if folder is not None else ""
    line = (
        f"archived {counts.urls} URLs: {counts.captures} captures, {counts.revisits} revisits, "
        f"{counts.truncations} truncated, {human_bytes(counts.bytes_written)} written{where}"
    )
    extra = []
    if counts.robots_disallowed:
        extra.append(f"{counts.robots_disallowed} disallowed by robots.txt")
    if counts.errors:
        extra.append(f"{counts.errors} could not be written")
    return line + (f"\n  not archived: {', '.join(extra)}" if extra else "")


# ---------------------------------------------------------------------------------------------
# `linkkeeper snapshot`: registered on the group once linkkeeper.cli.app is importable.

import json  # noqa: E402
import sys  # noqa: E402

from linkkeeper.cli.app import (  # noqa: E402
    CONTEXT,
    EXIT_FAILURES,
    EXIT_OK,
    check_options,
    check_options_from,
    cli,
    load_params,
)
from linkkeeper.db import connect, default_db_path  # noqa: E402


def _is_url(target: str) -> bool:
    return target.lower().startswith(("http://", "https://"))


@cli.command(context_settings=CONTEXT)
@click.argument("targets", nargs=-1, metavar="[SITE|POST...|URL...]")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path, exists=True),
    envvar="LINKKEEPER_CONFIG",
    help="Config file (default: linkkeeper.toml or [tool.linkkeeper] in pyproject.toml).",
)
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="LINKKEEPER_DB",
    help="SQLite file [default: linkkeeper.db next to the site].",
)
@click.option(
    "--site-url",
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
    db_path = Path(p["db"]) if p["db"] else default_db_path(paths[0] if paths else Path("."))
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
    lines = [f"{len(outcome.due)} URLs due for a snapshot (of {outcome.asked} asked)"]
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
