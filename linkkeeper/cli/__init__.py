"""The command line: `linkkeeper` and its commands, a thin mirror of the library.

cli/app.py holds the group and what the commands share; each command module registers
its commands on the group when imported here. `main` is the entry point.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import sys
import traceback
from pathlib import Path

import click

from linkkeeper.cli import archive, check, export, merge, repair, report  # noqa: F401  (register the commands)
from linkkeeper.cli.app import EXIT_CONFIG, EXIT_OK, EXIT_RUNTIME, cli
from linkkeeper.db import opened_databases
from linkkeeper.site import SiteError

__all__ = ["cli", "main"]


def main(argv: list[str] | None = None) -> None:
    """Entry point: one-line errors, tracebacks only with --debug."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args or _env_flag("LINKKEEPER_DEBUG")
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
    except (OSError, sqlite3.DatabaseError) as exc:
        line = storage_error_line(exc)
        if line is None or debug:
            _exit_with_crash(exc, debug)
        click.echo(f"error: {line}", err=True)
        sys.exit(EXIT_RUNTIME)
    except Exception as exc:  # the one place that turns crashes into messages
        _exit_with_crash(exc, debug)
    sys.exit(rv if isinstance(rv, int) else EXIT_OK)


def _exit_with_crash(exc: BaseException, debug: bool) -> None:
    """Any other error: its type and message in one line (a traceback with --debug), exit 1."""
    if debug:
        traceback.print_exc()
    else:
        click.echo(f"error: {type(exc).__name__}: {exc} (run with --debug for details)", err=True)
    sys.exit(EXIT_RUNTIME)


_STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG, errno.EROFS})


def storage_error_line(exc: BaseException) -> str | None:
    """A full (or failing) disk in one line that names the file; None for other errors."""
    if isinstance(exc, sqlite3.DatabaseError):
        databases = opened_databases()
        where = ", ".join(map(str, databases)) if databases else "the database"
        full = any(_disk_full(path) for path in databases) and "full" not in str(exc)
        return f"{where}: {exc}" + (" (no space left on its disk)" if full else "")
    if isinstance(exc, OSError) and exc.errno in _STORAGE_ERRNOS:
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror or exc}"
    return None


def _disk_full(path: Path) -> bool:
    """SQLite says "disk I/O error" when its journal cannot grow: tell a full disk apart."""
    try:
        disk = os.statvfs(path.parent)
    except OSError:
        return False
    return disk.f_bavail * disk.f_frsize < 1 << 16


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes", "on")
