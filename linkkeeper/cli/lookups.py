"""Options and helpers shared by `fix` and `report`: the archives to ask, `serve`'s URL.

Kept apart from cli/repair.py (which registers `fix` on the group) so that
cli/report.py can use them without an import cycle through cli/app.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

ARCHIVE_NAMES = ("wayback", "memento")


def parse_archives(value: str | tuple[str, ...] | list[str] | None) -> list[str]:
    """`wayback,memento` (or repeated) -> ['wayback', 'memento']; unknown names are an error."""
    items = [value] if isinstance(value, str) else list(value or ())
    names = [n.strip().lower() for item in items for n in str(item).split(",") if n.strip()]
    unknown = [n for n in names if n not in ARCHIVE_NAMES]
    if unknown:
        raise click.BadParameter(f"unknown archive {unknown[0]!r} (choose from wayback, memento)",
                                 param_hint="--archives")
    return list(dict.fromkeys(names))


def archive_lookup_options(fn: Any) -> Any:
    """--archives and the endpoints, shared by `fix` and `report`."""
    fn = click.option("--memento-url", envvar="LINKKEEPER_MEMENTO_URL",
                      default="https://timetravel.mementoweb.org/", show_default=True,
                      help="Memento aggregator or TimeGate/TimeMap service (RFC 7089): "
                      "asked at timemap/link/<url> and timegate/<url>.")(fn)
    fn = click.option("--wayback-url", envvar="LINKKEEPER_WAYBACK_URL",
                      default="https://web.archive.org/", show_default=True,
                      help="The Wayback Machine (CDX API at cdx/search/cdx, replay at web/).")(fn)
    return click.option(
        "--archives", multiple=True, envvar="LINKKEEPER_ARCHIVES", metavar="wayback,memento",
        help="Also look for copies in these web archives when we have none (opt-in; answers "
        "are cached in the database).")(fn)


def serve_url_option(fn: Any) -> Any:
    return click.option(
        "--serve-url", envvar="LINKKEEPER_SERVE_URL", metavar="URL",
        help="Where `linkkeeper serve` is published; our own captures are linked as "
        "URL/archive/<timestamp>/<url>.")(fn)


def refresh_copies(db: Any, db_path: Path, p: dict[str, Any]) -> None:
    """Before a report: the copy of every failing link (ours, then the archives asked for)."""
    from linkkeeper.repair.copies import refresh_copies as refresh

    warcs = db_path.parent / "warcs"
    refresh(db, lookups_for(p), warcs if warcs.is_dir() else None)


def lookups_for(p: dict[str, Any]) -> list[tuple[str, Any]]:
    """The external lookups asked for, in order; one polite HTTP client shared by all."""
    names = parse_archives(p.get("archives"))
    if not names:
        return []
    from linkkeeper.repair.memento import memento_lookup
    from linkkeeper.repair.politeness import PoliteClient
    from linkkeeper.repair.wayback import wayback_lookup

    client = PoliteClient()
    made = {"wayback": lambda: wayback_lookup(p["wayback_url"], client),
            "memento": lambda: memento_lookup(p["memento_url"], client)}
    return [(name, made[name]()) for name in names]
