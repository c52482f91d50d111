"""The command line: `linkkeeper` and its commands, a thin mirror of the library.

cli/app.py holds the group and what the commands share; each command module registers
its commands on the group when imported here. `main` is the entry point.
"""

from __future__ import annotations

import os
import sys
import traceback

import click

from linkkeeper.cli import archive, check, export, report  # noqa: F401  (register the commands)
from linkkeeper.cli.app import EXIT_CONFIG, EXIT_OK, EXIT_RUNTIME, cli, finish_commands
from linkkeeper.site import SiteError

__all__ = ["cli", "main"]

finish_commands(cli)


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
        _error(exc.format_message(), _help_hint(exc))
        sys.exit(EXIT_CONFIG)
    except click.ClickException as exc:  # ConfigError carries 3, the rest 1
        _error(exc.format_message())
        sys.exit(exc.exit_code)
    except SiteError as exc:
        _error(str(exc))
        sys.exit(EXIT_CONFIG)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # the one place that turns crashes into messages
        if debug:
            traceback.print_exc()
        else:
            _error(f"{type(exc).__name__}: {exc}", "run with --debug for details")
        sys.exit(EXIT_RUNTIME)
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


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes", "on")
