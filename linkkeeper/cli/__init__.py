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

from linkkeeper.cli import (  # noqa: F401  (register the commands)
    archive,
    check,
    export,
    merge,
    repair,
    report,
)
from linkkeeper.cli.app import EXIT_CONFIG, EXIT_OK, EXIT_RUNTIME, cli, finish_commands
from linkkeeper.db import DatabaseBusy, opened_databases
from linkkeeper.site import SiteError
from linkkeeper.terminal import TerminalSafe

__all__ = ["cli", "main"]

finish_commands(cli)


def _terminal_safe() -> None:
    """Post and server text reaches a terminal inert (`linkkeeper.terminal`); pipes and files
    get the bytes as they are."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        try:
            terminal = stream is not None and stream.isatty()
        except (ValueError, OSError):  # closed, or no stream at all
            terminal = False
        if terminal and not isinstance(stream, TerminalSafe):
            setattr(sys, name, TerminalSafe(stream))


def main(argv: list[str] | None = None) -> None:
    """Entry point: one-line errors, tracebacks only with --debug."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args or _env_flag("LINKKEEPER_DEBUG")
    _terminal_safe()
    try:
        rv = cli.main(args=args, prog_name="linkkeeper", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except click.UsageError as exc:  # click's own code 2 would read as "link failures"
        _error(exc.format_message(), _help_hint(exc))
        sys.exit(EXIT_CONFIG)
    except click.ClickException as exc:  # ConfigError carries 3, the rest 1
        _error(exc.format_message())
        sys.exit(exc.exit_code)
    except SiteError as exc:
        _error(str(exc))
        sys.exit(EXIT_CONFIG)
    except DatabaseBusy as exc:  # another scan holds the database: say who, not a traceback
        _error(str(exc))
        sys.exit(EXIT_RUNTIME)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except (OSError, sqlite3.DatabaseError) as exc:
        line = storage_error_line(exc)
        if line is None or debug:
            _exit_with_crash(exc, debug)
        _error(str(line))
        sys.exit(EXIT_RUNTIME)
    except Exception as exc:  # the one place that turns crashes into messages
        _exit_with_crash(exc, debug)
    sys.exit(rv if isinstance(rv, int) else EXIT_OK)


def _error(message: str, hint: str = "") -> None:
    """Every error the same way: `error: ` and one line (click's `Error:` block included)."""
    text = " ".join(message.split())
    if hint:
        text = f"{text.rstrip('.')} ({hint})"
    click.echo(f"error: {text}", err=True)


def _help_hint(exc: click.UsageError) -> str:
    ctx = exc.ctx
    return f"see `{ctx.command_path} --help`" if ctx is not None else ""


def _exit_with_crash(exc: BaseException, debug: bool) -> None:
    """Any other error: its type and message in one line (a traceback with --debug), exit 1."""
    if debug:
        traceback.print_exc()
    else:
        _error(f"{type(exc).__name__}: {exc}", "run with --debug for details")
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
