"""Configuration: command line > `LINKKEEPER_*` environment > config file > defaults.

The config file is the first of: `--config FILE`; `linkkeeper.toml` in the
current folder; `linkkeeper.toml` in the site folder; `[tool.linkkeeper]` in a
`pyproject.toml` of the current or site folder. Keys are the long option names
(`host-concurrency` or `host_concurrency`), at the top level or in a table
named after the command (`[check]`), which wins for that command. Per-host
overrides live in `[hosts."www.example.com"]` tables (see check/options.py HostPolicy).

Click already applies command line over environment over default; we fill in
the file's values only for parameters whose source is still the default, after
parsing, because the site folder (where the file may live) is itself a
parameter.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource


class ConfigError(click.ClickException):
    """A configuration problem: exit code 3, lychee's convention."""

    exit_code = 3


@dataclass
class ConfigFile:
    path: Path | None = None
    values: dict[str, Any] = field(default_factory=dict)

    def for_command(self, command: str) -> dict[str, Any]:
        flat = {
            _key(k): v for k, v in self.values.items() if not isinstance(v, dict)
        }
        section = self.values.get(command)
        if isinstance(section, dict):
            flat.update({_key(k): v for k, v in section.items() if not isinstance(v, dict)})
        return flat

    @property
    def hosts(self) -> dict[str, dict[str, Any]]:
        hosts = self.values.get("hosts") or {}
        if not isinstance(hosts, dict) or not all(isinstance(v, dict) for v in hosts.values()):
            raise ConfigError(f"{self.path}: [hosts] must hold one table per host name")
        return {h: {_key(k): v for k, v in t.items()} for h, t in hosts.items()}


def _key(name: str) -> str:
    return name.replace("-", "_").lower()


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None


def find_config(explicit: Path | None, site: Path | None) -> ConfigFile:
    if explicit is not None:
        return ConfigFile(explicit, _read_toml(explicit))
    folders = [Path.cwd()]
    if site is not None:
        folder = site if site.is_dir() else site.parent
        if folder.resolve() != Path.cwd().resolve():
            folders.append(folder)
    for folder in folders:
        candidate = folder / "linkkeeper.toml"
        if candidate.is_file():
            return ConfigFile(candidate, _read_toml(candidate))
    for folder in folders:
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            section = _read_toml(candidate).get("tool", {}).get("linkkeeper")
            if isinstance(section, dict):
                return ConfigFile(candidate, section)
    return ConfigFile()


def apply_config(ctx: click.Context, params: dict[str, Any], config: ConfigFile) -> dict[str, Any]:
    """Fill parameters still at their default from the config file, converting types."""
    assert ctx.command.name
    values = config.for_command(ctx.command.name)
    by_name = _params_by_key(ctx.command)
    unknown = [k for k in values if k not in by_name and k not in _OTHER_COMMANDS_KEYS]
    if unknown and config.path is not None:
        known_anywhere = _all_option_names(ctx)
        really_unknown = [k for k in unknown if k not in known_anywhere]
        if really_unknown:
            raise ConfigError(
                f"{config.path}: unknown setting(s): {', '.join(sorted(really_unknown))}"
            )
    out = dict(params)
    for name, raw in values.items():
        param = by_name.get(name)
        if param is None or not param.name or ctx.get_parameter_source(param.name) not in (
            ParameterSource.DEFAULT,
            None,
        ):
            continue
        try:
            if param.multiple and not isinstance(raw, list):
                raw = [raw]
            out[param.name] = param.type_cast_value(ctx, raw)
        except click.BadParameter as exc:
            raise ConfigError(f"{config.path}: {name}: {exc.message}") from None
        except (TypeError, ValueError, OverflowError):  # e.g. db = 5, concurrency = 1e400
            raise ConfigError(f"{config.path}: {name}: {raw!r} is not a value for "
                              f"--{name.replace('_', '-')}") from None
    return out


# keys that are legitimately present for other commands' sake
_OTHER_COMMANDS_KEYS = frozenset({"hosts"})


def _all_option_names(ctx: click.Context) -> set[str]:
    root = ctx.find_root().command
    names: set[str] = set()
    if isinstance(root, click.Group):
        for cmd in root.commands.values():
            names.update(_params_by_key(cmd))
            names.add(_key(cmd.name or ""))
    return names


def _params_by_key(command: click.Command) -> dict[str, click.Parameter]:
    """A parameter is found by its name and by each long option name (`source-key`)."""
    out: dict[str, click.Parameter] = {}
    for p in command.params:
        if p.name:
            out[p.name] = p
        for opt in getattr(p, "opts", []):
            if opt.startswith("--"):
                out[_key(opt[2:])] = p
    return out


# -- the last-used site: where `history`, `replay`, `report`... look when told nothing ---------

LAST_SITE_FILE = "last-site"


def state_dir() -> Path:
    """linkkeeper's state folder: `$XDG_STATE_HOME/linkkeeper` (default ~/.local/state)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "linkkeeper"


def remember_db(db_path: Path) -> None:
    """Note `db_path` as the last-used database (what `check` and `scan` just wrote).

    Best effort: a read-only home must not fail a nightly check.
    """
    target = state_dir() / LAST_SITE_FILE
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{LAST_SITE_FILE}.{os.getpid()}")
        tmp.write_text(str(Path(db_path).resolve()) + "\n", encoding="utf-8")
        tmp.replace(target)
    except OSError:
        pass


def last_db() -> Path | None:
    """The last-used database, if it still exists."""
    try:
        text = (state_dir() / LAST_SITE_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    path = Path(text) if text else None
    return path if path is not None and path.is_file() else None


# -- ignore files: lychee's .lycheeignore, and ours ---------------------------------------------

IGNORE_FILES = (".linkkeeperignore", ".lycheeignore")


def read_ignore_files(folders: list[Path]) -> list[str]:
    """Exclude regexes from `.linkkeeperignore` and `.lycheeignore` in `folders`.

    One regex per line; blank lines and lines starting with `#` are skipped (lychee's
    format). A file found in two of the folders (cwd is the site) is read once.
    """
    patterns: list[str] = []
    seen: set[Path] = set()
    for folder in folders:
        for name in IGNORE_FILES:
            path = folder / name
            if not path.is_file() or path.resolve() in seen:
                continue
            seen.add(path.resolve())
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"{path}: cannot read: {exc}") from None
            for line in text.splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    patterns.append(line)
    return patterns
