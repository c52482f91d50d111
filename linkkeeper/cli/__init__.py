"""The command line: `linkkeeper` and its commands, a thin mirror of the library.

cli/app.py holds the group and what the commands share; each command module registers
its commands on the group when imported here. `main` is the entry point.
"""

from __future__ import annotations

import os
import sys
import traceback

import click

from linkkeeper.cli import archive, check, export, merge, repair, report  # noqa: F401  (register the commands)
from linkkeeper.cli.app import EXIT_CONFIG, EXIT_OK, EXIT_RUNTIME, cli
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
    except Exception as exc:  # the one place that turns crashes into messages
        if debug:
            traceback.print_exc()
        else:
            click.echo(f"error: {type(exc).__name__}: {exc} (run with --debug for details)",
                       err=True)
        sys.exit(EXIT_RUNTIME)
    sys.exit(rv if isinstance(rv, int) else EXIT_OK)


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes", "on")
