"""The `linkkeeper` group and what its commands share: exit codes, options, parameter loading.

No command lives here and no command module is imported: the commands (cli/check.py,
cli/archive.py, cli/export.py, cli/report.py) import this module, and cli/__init__.py
imports them all. Every shared option is declared once, here; its default is read from
the library's options dataclass (`option_default`), so the CLI and the library agree.

Exit codes follow lychee: 0 nothing to report, 1 runtime error, 2 link failures,
3 configuration error.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import click

from linkkeeper import __version__
from linkkeeper.archive.archiver import ArchiveCounts, ArchiveOptions, parse_kinds
from linkkeeper.check.options import MIN_TIMEOUT, CheckOptions, header_problem, host_policies
from linkkeeper.db import connect, default_db_path, default_warc_dir
from linkkeeper.settings import (
    ConfigError,
    apply_config,
    find_config,
    last_db,
    read_ignore_files,
    remember_db,
)

if TYPE_CHECKING:  # history (and truth) load when a command uses them: not for snapshot
    import sqlite_utils

    from linkkeeper.history.state import ConfirmPolicy

EXIT_OK, EXIT_RUNTIME, EXIT_FAILURES, EXIT_CONFIG = 0, 1, 2, 3

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="linkkeeper")
@click.option("--debug", is_flag=True, envvar="LINKKEEPER_DEBUG", help="Show tracebacks on errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Keep a static archive's links honest: audit, archive and report link rot.

    \b
    Typical night:
      linkkeeper check ~/blog            # scan posts, check every link, record history
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def option_default(cls: type, name: str) -> Any:
    """The default of dataclass field `name`: the one place a CLI default comes from."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            if f.default is not dataclasses.MISSING:
                return f.default
            if f.default_factory is not dataclasses.MISSING:
                return f.default_factory()
    raise LookupError(f"{cls.__name__}.{name} has no default")


# -- where things are: SITE, --config, --db ---------------------------------------------------


def config_option(fn: Any) -> Any:
    """--config: every command reads the config file (settings.py) the same way."""
    return click.option(
        "--config",
        "config_file",
        type=click.Path(dir_okay=False, path_type=Path, exists=True),
        envvar="LINKKEEPER_CONFIG",
        help="Config file (default: linkkeeper.toml or [tool.linkkeeper] in pyproject.toml).",
    )(fn)


def db_option(fn: Any = None, *, must_exist: bool = False) -> Any:
    """--db: the history database [default: linkkeeper.db next to the site, `db_path_for`].

    Use as ``@db_option`` or ``@db_option(must_exist=True)`` (commands that only read it).
    """
    if fn is None:
        return lambda f: db_option(f, must_exist=must_exist)
    return click.option(
        "--db",
        type=click.Path(dir_okay=False, path_type=Path, exists=must_exist),
        envvar="LINKKEEPER_DB",
        help="SQLite file [default: linkkeeper.db next to the site].",
    )(fn)


def warc_dir_option(fn: Any) -> Any:
    """--warc-dir [default: warcs/ next to the database, `warc_dir_for`]."""
    return click.option(
        "--warc-dir",
        type=click.Path(file_okay=False, path_type=Path),
        envvar="LINKKEEPER_WARC_DIR",
        help="Folder of the WARC files [default: warcs/ next to the database].",
    )(fn)


def site_argument(fn: Any) -> Any:
    return click.argument("site", nargs=-1, type=click.Path(exists=True, path_type=Path))(fn)


def site_option(fn: Any) -> Any:
    """--site: SITE for the commands whose argument is something else (`history URL`)."""
    return click.option(
        "--site", "site_option", type=click.Path(exists=True, file_okay=False, path_type=Path),
        envvar="LINKKEEPER_SITE",
        help="The site folder, whose linkkeeper.db is read [default: the SITE argument, the "
        "config file's db, ./linkkeeper.db, or the last site checked].",
    )(fn)


def store_options(fn: Any) -> Any:
    """SITE, --site, --db and --config: the commands that read the history but not the posts."""
    return site_argument(site_option(db_option(config_option(fn))))


def merge_site_option(params: dict[str, Any]) -> dict[str, Any]:
    """Fold --site into the SITE arguments (before `load_params`, which looks for a config
    file in the site folder)."""
    site = params.pop("site_option", None)
    if site is not None and not params.get("site"):
        params["site"] = (site,)
    return params


class HttpUrl(click.ParamType):
    """An http(s) URL (--site-url): anything else made every relative link invalid without a
    word. A type, not a callback, so the config file's value is checked too."""

    name = "url"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None
                ) -> Any:
        text = str(value).strip()
        if text and not text.lower().startswith(("http://", "https://")):
            self.fail(f"{value!r} is not an http(s) URL", param, ctx)
        return text


def common_site_options(fn: Any) -> Any:
    """Options every command that reads a site shares."""
    fn = config_option(fn)
    fn = db_option(fn)
    fn = click.option(
        "--site-url",
        "--base-url",
        "-b",
        "site_url",
        envvar="LINKKEEPER_SITE_URL",
        type=HttpUrl(),
        help="The site's own URL, to resolve relative links [default: url+baseurl of _config.yml].",
    )(fn)
    fn = click.option(
        "--source-key",
        "source_keys",
        multiple=True,
        envvar="LINKKEEPER_SOURCE_KEYS",
        help="Front matter key naming the post's source URL; repeatable "
        "[default: from, source, source_url, original_url, canonical_url, link].",
    )(fn)
    fn = click.option(
        "--jobs",
        "-j",
        type=click.IntRange(0),
        default=0,
        envvar="LINKKEEPER_JOBS",
        help="Processes parsing posts [default 0: one per CPU for big scans].",
    )(fn)
    return site_argument(fn)


def load_params(ctx: click.Context, params: dict[str, Any]) -> dict[str, Any]:
    """The command's parameters with the config file's values filled in (settings.py)."""
    site_args: tuple[Path, ...] = params.get("site") or ()
    config = find_config(params.get("config_file"), site_args[0] if site_args else None)
    params = apply_config(ctx, params, config)
    params["_config"] = config
    return params


def db_path_for(site_args: tuple[Path, ...], db: Path | None) -> Path:
    """--db, else linkkeeper.db next to the first SITE (or in the current folder)."""
    return Path(db) if db else default_db_path(site_args[0] if site_args else Path("."))


def open_db_for(site_args: tuple[Path, ...], db: Path | None) -> sqlite_utils.Database:
    """The database `scan` and `check` write, remembered as the last-used one."""
    path = db_path_for(site_args, db)
    database = connect(path)
    remember_db(path)
    return database


def existing_db_path(p: dict[str, Any]) -> Path:
    """The database a reading command uses, the way `check` chose it.

    --db (or `db` in the config file), else linkkeeper.db of SITE/--site, else
    ./linkkeeper.db, else the last database `check` or `scan` wrote (remembered in
    `$XDG_STATE_HOME/linkkeeper/last-site`). Missing: exit 1, `check` comes first.
    """
    site_args: tuple[Path, ...] = p.get("site") or ()
    path = db_path_for(site_args, p.get("db"))
    if not (p.get("db") or site_args or path.exists()):
        path = last_db() or path
    if not path.exists():
        raise click.ClickException(
            f"no history database: {path} does not exist; run `linkkeeper check` first "
            "(or pass SITE, --site or --db)")
    return path


def warc_dir_for(db_path: Path, warc_dir: Path | str | None) -> Path:
    """--warc-dir, else warcs/ next to the database."""
    return Path(warc_dir) if warc_dir else default_warc_dir(db_path)


# -- where outputs may go -----------------------------------------------------------------------

_KEPT_MAGIC = ((b"SQLite format 3\0", "a SQLite database"),)
_ARCHIVE_MAGIC = ((b"\x1f\x8b", "a gzip file (a WARC?)"), (b"PK\x03\x04", "a zip file (a WACZ?)"),
                  (b"WARC/", "a WARC file"))
_ARCHIVE_SUFFIXES = (".warc.gz", ".warc", ".cdxj", ".digest.json")


def guard_output(output: Path | None, db_path: Path, warc_dir: Path | None = None, *,
                 text: bool = True) -> None:
    """Refuse (exit 3) an ``-o`` that would replace what linkkeeper keeps: the database or its
    WAL, shared memory and lock, a WARC, index or digest of the archive folder, any SQLite
    database, and, for a text document (``text``), any gzip, zip or WARC file. A report
    written onto the database replaced the whole history."""
    if output is None:
        return
    target = output.resolve()
    kept = [db_path.with_name(db_path.name + suffix) for suffix in ("", "-wal", "-shm", ".lock")]
    what = None
    if any(target == path.resolve() for path in kept):
        what = "the history database"
    elif warc_dir is not None and target.is_relative_to(warc_dir.resolve()) \
            and target.name.endswith(_ARCHIVE_SUFFIXES):
        what = "a file of the archive folder"
    else:
        head = b""
        try:
            if target.is_file():  # never read a terminal, a pipe or a device (-o /dev/stdout)
                with open(target, "rb") as handle:
                    head = handle.read(16)
        except OSError:  # unreadable: writing it will say so
            pass
        magic = _KEPT_MAGIC + (_ARCHIVE_MAGIC if text else ())
        what = next((name for prefix, name in magic if head.startswith(prefix)), None)
    if what:
        raise click.BadParameter(f"{output} is {what}: not overwritten (choose another file)",
                                 param_hint="'--output'")


def special_output(path: Path) -> bool:
    """An existing output that is not a regular file: /dev/stdout, /dev/null, a FIFO."""
    try:
        return not stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


@contextmanager
def output_file(path: Path, binary: bool = False) -> Iterator[IO[Any]]:
    """``path`` written whole or not at all, through a temporary file renamed over it; a
    special file (`special_output`) is written in place: renaming onto ``-o /dev/stdout``
    replaced /dev/stdout itself when run as root."""
    opening: dict[str, Any] = {} if binary else {"encoding": "utf-8", "newline": ""}
    mode = "wb" if binary else "w"
    if special_output(path):
        with open(path, mode, **opening) as handle:
            yield handle
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, mode, **opening) as handle:
            yield handle
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def guard_output_dir(folder: Path, db_path: Path, warc_dir: Path, option: str = "--output-dir"
                     ) -> None:
    """Refuse (exit 3) a report folder where its pages would be read as posts or mixed into
    the archive, or whose files `serve` would hand out with the database: a site's root (a
    folder holding ``_posts``), a ``_posts`` folder or one inside it, the WARC folder, or a
    folder holding the database."""
    target = folder.resolve()
    what = None
    if (target / "_posts").is_dir() or "_posts" in target.parts:
        what = "a site's folder (its pages would be scanned as posts)"
    elif target.is_relative_to(warc_dir.resolve()):
        what = "the archive folder"
    elif db_path.resolve().is_relative_to(target):
        what = "a folder holding the database (`serve` would hand it out)"
    if what:
        raise click.BadParameter(f"{folder} is {what}: choose another folder",
                                 param_hint=f"'{option}'")


# -- values people write ------------------------------------------------------------------------


def parse_duration(text: str | None) -> timedelta | None:
    """'90s', '30m', '12h', '7d', '2w' or plain seconds -> timedelta."""
    if text is None or str(text).strip() == "":
        return None
    s = str(text).strip().lower()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    try:
        if s[-1] in units:
            span = timedelta(seconds=float(s[:-1]) * units[s[-1]])
        else:
            span = timedelta(seconds=float(s))
    except (ValueError, IndexError, OverflowError):  # OverflowError: inf, or past 999,999,999 days
        raise click.BadParameter(f"{text!r} is not a duration like 90s, 30m, 12h, 7d") from None
    if span < timedelta(0):
        raise click.BadParameter(f"{text!r}: a duration cannot be negative")
    return span


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


def size_text(n: int) -> str:
    """A byte count the way parse_size reads it back: 52428800 -> '50MiB', 10**9 -> '1GB'."""
    for base, suffix in ((1024, "iB"), (1000, "B")):
        for power in range(len(_UNITS), 0, -1):
            if n % base**power == 0:
                return f"{n // base**power}{_UNITS[power - 1].upper()}{suffix}"
    return str(n)


def human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"  # unreachable


def parse_confirm(text: str) -> ConfirmPolicy:
    from linkkeeper.history.state import ConfirmPolicy

    try:
        n, days = (x.strip() for x in text.split(","))
        policy = ConfirmPolicy(int(n), float(days))
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected N,DAYS like 3,3") from None
    if policy.checks < 1 or not 0 <= policy.days < 1e6:  # nan and inf fail here too
        raise click.BadParameter(f"{text!r}: N must be >= 1 and DAYS a number from 0 to 999999")
    return policy


def parse_shard(text: str | None) -> Any:
    """`--shard I/N` -> Shard (None when not given); a bad value is a usage error."""
    from linkkeeper.shards import Shard, ShardError

    try:
        return Shard.parse(text) if text else None
    except ShardError as exc:
        raise click.BadParameter(f"--shard {exc}") from None


def parse_headers(values: tuple[str, ...] | list[str]) -> dict[str, str]:
    headers = {}
    for v in values:
        name, sep, value = v.partition(":")
        if not sep or not name.strip():
            raise click.BadParameter(f"--header {v!r}: expected 'Name: value'")
        problem = header_problem(name.strip(), value.strip())
        if problem:
            raise click.BadParameter(f"--header: {problem}")
        headers[name.strip()] = value.strip()
    return headers


class FiniteFloat(click.FloatRange):
    """A FloatRange that also refuses nan and inf: no timeout, rate or cap can be either
    (``inf`` crashed every request of a run; ``nan`` passes every comparison)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None
                ) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


def plural(n: int, word: str) -> str:
    """'1 post', '2 posts', '1,234 relative links': every count on screen reads right."""
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def format_archive_summary(counts: ArchiveCounts, folder: Path | None = None) -> str:
    """One line (two with robots/errors) for the check and snapshot summaries."""
    where = f" to {folder}" if folder is not None else ""
    line = (
        f"archived {plural(counts.urls, 'URL')}: {plural(counts.captures, 'capture')}, "
        f"{plural(counts.revisits, 'revisit')}, {counts.truncations:,} truncated, "
        f"{human_bytes(counts.bytes_written)} written{where}"
    )
    extra = []
    if counts.robots_disallowed:
        extra.append(f"{counts.robots_disallowed} disallowed by robots.txt")
    if counts.errors:
        extra.append(f"{counts.errors} could not be written")
    paused = f"\n  {counts.paused}" if counts.paused else ""  # a full disk: checking went on
    return line + (f"\n  not archived: {', '.join(extra)}" if extra else "") + paused


# -- the fetching options (check, snapshot) -----------------------------------------------------

def check_options(fn: Any) -> Any:
    """The fetching options (shared by `check` and `snapshot`); defaults from CheckOptions."""
    opts = [
        click.option("--concurrency", "--max-concurrency", "concurrency",
                     type=click.IntRange(1), show_default=True,
                     default=option_default(CheckOptions, "concurrency"),
                     envvar="LINKKEEPER_CONCURRENCY", help="Requests in flight, all hosts together."),
        click.option("--host-concurrency", type=click.IntRange(1), show_default=True,
                     default=option_default(CheckOptions, "host_concurrency"),
                     envvar="LINKKEEPER_HOST_CONCURRENCY",
                     help="Concurrent connections to one host (never exceeded)."),
        click.option("--host-rate", type=FiniteFloat(0), show_default=True,
                     default=option_default(CheckOptions, "host_rate"), envvar="LINKKEEPER_HOST_RATE",
                     help="Requests per second to one host (0: no limit)."),
        click.option("--max-redirects", "-m", type=click.IntRange(0), show_default=True,
                     default=option_default(CheckOptions, "max_redirects"),
                     envvar="LINKKEEPER_MAX_REDIRECTS"),
        click.option("--attempts", type=click.IntRange(1), show_default=True,
                     default=option_default(CheckOptions, "attempts"), envvar="LINKKEEPER_ATTEMPTS",
                     help="Tries for timeouts, connection errors, 5xx and 429."),
        click.option("--max-retries", type=click.IntRange(0), envvar="LINKKEEPER_MAX_RETRIES",
                     help="lychee's name: retries after the first try (--attempts N+1)."),
        click.option("--retry-after-cap", type=FiniteFloat(0), show_default=True,
                     default=option_default(CheckOptions, "retry_after_cap"),
                     envvar="LINKKEEPER_RETRY_AFTER_CAP",
                     help="Longest Retry-After (seconds) honoured before giving up."),
        click.option("--connect-timeout", type=FiniteFloat(MIN_TIMEOUT), show_default=True,
                     default=option_default(CheckOptions, "connect_timeout"),
                     envvar="LINKKEEPER_CONNECT_TIMEOUT"),
        click.option("--read-timeout", type=FiniteFloat(MIN_TIMEOUT), show_default=True,
                     default=option_default(CheckOptions, "read_timeout"),
                     envvar="LINKKEEPER_READ_TIMEOUT"),
        click.option("--timeout", "-t", type=FiniteFloat(MIN_TIMEOUT), show_default=True,
                     default=option_default(CheckOptions, "total_timeout"), envvar="LINKKEEPER_TIMEOUT",
                     help="Total seconds for one request."),
        click.option("--user-agent", "-u", envvar="LINKKEEPER_USER_AGENT",
                     help="User-Agent header [default: linkkeeper/VERSION (+url)]."),
        click.option("--header", "-H", multiple=True, envvar="LINKKEEPER_HEADER",
                     help="Extra request header 'Name: value'; repeatable."),
        click.option("--accept", "-a", envvar="LINKKEEPER_ACCEPT",
                     help="Accepted status codes, lychee syntax: '200..=299,403' [default: 200..=299]."),
        click.option("--insecure", "-k", "-i", "insecure", is_flag=True,
                     envvar="LINKKEEPER_INSECURE",
                     help="Do not verify TLS certificates (recorded in the run)."),
        click.option("--ca-bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     envvar="LINKKEEPER_CA_BUNDLE",
                     help="CA certificates file [default: SSL_CERT_FILE or the system store]."),
        click.option("--proxy", envvar="LINKKEEPER_PROXY",
                     help="HTTP proxy URL [default: HTTP(S)_PROXY from the environment]."),
        click.option("--connect-to", multiple=True, envvar="LINKKEEPER_CONNECT_TO",
                     metavar="HOST:PORT:ADDR:PORT",
                     help="Send requests for HOST:PORT to ADDR:PORT, keeping URL, Host and TLS "
                     "name (curl's meaning; '*' or empty HOST: any host); repeatable."),
        click.option("--offline-dns", is_flag=True, envvar="LINKKEEPER_OFFLINE_DNS",
                     help="Resolve nothing through DNS: names not matched by --connect-to fail "
                     "as 'name does not resolve' (for hermetic tests and demos)."),
        click.option("--include", multiple=True, envvar="LINKKEEPER_INCLUDE",
                     help="Regex: check only matching URLs (overrides --exclude); repeatable."),
        click.option("--exclude", multiple=True, envvar="LINKKEEPER_EXCLUDE",
                     help="Regex: do not check matching URLs; repeatable."),
        click.option("--exclude-private", is_flag=True, envvar="LINKKEEPER_EXCLUDE_PRIVATE",
                     help="Skip hosts resolving to private, loopback or link-local addresses."),
        click.option("--memory-budget", show_default=True, metavar="SIZE",
                     default=size_text(option_default(CheckOptions, "memory_budget")),
                     envvar="LINKKEEPER_MEMORY_BUDGET",
                     help="Memory for captured bodies, all in flight together; longer bodies "
                     "and the rest wait in temporary files in the WARC folder."),
        click.option("--allow-private", is_flag=True, envvar="LINKKEEPER_ALLOW_PRIVATE",
                     default=option_default(CheckOptions, "allow_private"),
                     help="Follow redirects from public addresses into private, loopback or "
                     "link-local ones (refused by default: such a link is 'excluded')."),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def check_options_from(p: dict[str, Any]) -> CheckOptions:
    """Map parsed CLI/config parameters onto the checker's options.

    Parameters a command does not have keep the dataclass's default (the `check` one):
    `snapshot` has no --soft404 and says `soft404=False` itself.
    """
    from linkkeeper.check.accept import AcceptRanges
    from linkkeeper.check.resolver import parse_connect_to

    try:
        accept = AcceptRanges.parse(p["accept"]) if p["accept"] else AcceptRanges.default()
        parse_connect_to(p["connect_to"])  # validate early: exit 3 on a bad spec
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    for option, patterns in (("--include", p["include"]),
                             ("--exclude (or an ignore file)", [*p["exclude"], *ignore_patterns(p)])):
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ConfigError(f"{option} {pattern!r}: not a regular expression: {exc}"
                                  ) from None
    agent = header_problem("User-Agent", p["user_agent"] or "")
    for problem in (agent and f"--user-agent: {agent}", _proxy_problem(p["proxy"])):
        if problem:
            raise ConfigError(problem)
    try:
        memory_budget = parse_size(p["memory_budget"])
    except click.BadParameter as exc:
        raise ConfigError(f"--memory-budget: {exc.message}") from None
    config = p["_config"]
    kwargs: dict[str, Any] = {
        "memory_budget": memory_budget,
        "concurrency": p["concurrency"],
        "host_concurrency": p["host_concurrency"],
        "host_rate": p["host_rate"],
        "max_redirects": p["max_redirects"],
        "attempts": attempts_from(p),
        "retry_after_cap": p["retry_after_cap"],
        "connect_timeout": p["connect_timeout"],
        "read_timeout": p["read_timeout"],
        "total_timeout": p["timeout"],
        "headers": parse_headers(p["header"]),
        "accept": accept,
        "insecure": p["insecure"],
        "ca_bundle": str(p["ca_bundle"]) if p["ca_bundle"] else None,
        "proxy": p["proxy"],
        "connect_to": list(p["connect_to"]),
        "offline_dns": p["offline_dns"],
        "include": list(p["include"]),
        "exclude": [*p["exclude"], *ignore_patterns(p)],
        "exclude_private": p["exclude_private"],
        "allow_private": p["allow_private"],
        "hosts": host_policies(config.hosts, config.path),
    }
    for name in ("soft404", "soft404_threshold", "read_pages"):  # `check` only
        if name in p:
            kwargs[name] = p[name]
    if p["user_agent"]:
        kwargs["user_agent"] = p["user_agent"]
    return CheckOptions(**kwargs)


def _proxy_problem(proxy: str | None) -> str | None:
    """Why ``--proxy`` cannot carry a request (aiohttp speaks to http(s) proxies only), or None:
    a wrong one would fail every URL of the night as a network error."""
    if not proxy:
        return None
    scheme, sep, rest = proxy.partition("://")
    if not sep or scheme.lower() not in ("http", "https") or not rest.strip("/"):
        return f"--proxy {proxy!r}: give an http:// or https:// proxy URL (http://host:port)"
    return header_problem("Proxy", proxy)


def attempts_from(p: dict[str, Any]) -> int:
    """--attempts, or lychee's --max-retries N (N retries: N + 1 attempts); not both."""
    retries = p.get("max_retries")
    if retries is None:
        return int(p["attempts"])
    if p["attempts"] != option_default(CheckOptions, "attempts") and p["attempts"] != retries + 1:
        raise ConfigError(f"--max-retries {retries} and --attempts {p['attempts']} disagree "
                          "(attempts = retries + 1): give one of them")
    return int(retries) + 1


def ignore_patterns(p: dict[str, Any]) -> list[str]:
    """Exclude regexes from .linkkeeperignore / .lycheeignore in the site folder and cwd."""
    if "_ignore" not in p:
        site_args: tuple[Path, ...] = p.get("site") or ()
        folders = [Path.cwd()]
        if site_args:
            first = Path(site_args[0])
            folders.append(first if first.is_dir() else first.parent)
        p["_ignore"] = read_ignore_files(folders)
    return list(p["_ignore"])


# -- the archiving options (check, snapshot) ----------------------------------------------------

def archive_options(fn: Any = None, *, switch: bool = True) -> Any:
    """The archiving options shared by `check` and `snapshot` (`switch`: --no-snapshot too).

    Use as ``@archive_options`` or ``@archive_options(switch=False)``.
    """
    if fn is None:
        return lambda f: archive_options(f, switch=switch)
    opts = [
        click.option("--no-snapshot", is_flag=True, envvar="LINKKEEPER_NO_SNAPSHOT",
                     help="Do not archive: check only (HEAD where possible)."),
        warc_dir_option,
        click.option("--snapshot-max-age", envvar="LINKKEEPER_SNAPSHOT_MAX_AGE",
                     metavar="DURATION",
                     help="Re-capture a URL only when its last capture is older than this "
                     "(e.g. 7d) or a check sees it changed [default: every run; an unchanged "
                     "page costs a small revisit record]."),
        click.option("--snapshot-kinds", show_default=True, envvar="LINKKEEPER_SNAPSHOT_KINDS",
                     default=",".join(sorted(option_default(ArchiveOptions, "kinds"))),
                     help="Link kinds to archive, comma-separated: source, related, image, "
                     "inline, embed, or all."),
        click.option("--max-capture-size", show_default=True, metavar="SIZE",
                     default=size_text(option_default(ArchiveOptions, "max_capture_bytes")),
                     envvar="LINKKEEPER_MAX_CAPTURE_SIZE",
                     help="Longest body stored per capture; longer ones are cut and marked "
                     "WARC-Truncated."),
        click.option("--warc-max-size", show_default=True, metavar="SIZE",
                     default=size_text(option_default(ArchiveOptions, "warc_max_size")),
                     envvar="LINKKEEPER_WARC_MAX_SIZE",
                     help="Start a new WARC file once one reaches this size."),
        click.option("--respect-robots", is_flag=True, envvar="LINKKEEPER_RESPECT_ROBOTS",
                     help="Do not archive what robots.txt disallows (off by default, like the "
                     "Internet Archive: a cited page is archived for readers, not crawled)."),
        click.option("--operator", envvar="LINKKEEPER_OPERATOR",
                     help="Who runs the archive, for the WARC's warcinfo record "
                     "(e.g. 'Jane Doe <jane@example.org>')."),
    ]
    for opt in reversed(opts if switch else opts[1:]):
        fn = opt(fn)
    return fn


def archive_options_from(
    p: dict[str, Any], db_path: Path, user_agent: str, *, force: bool = False
) -> ArchiveOptions | None:
    """ArchiveOptions from parsed parameters; None when --no-snapshot (unless `force`)."""
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
    operator = p.get("operator")
    if operator and re.search(r"[\r\n\x00]", operator):
        raise ConfigError("--operator must be a single line")
    return ArchiveOptions(
        folder=warc_dir_for(db_path, p.get("warc_dir")),
        kinds=kinds,
        max_age=max_age,
        max_capture_bytes=max_capture,
        warc_max_size=max_file,
        respect_robots=bool(p.get("respect_robots")),
        operator=operator,
        user_agent=user_agent,
    )


# -- what every command gets: --debug anywhere, its LINKKEEPER_* variables in --help -------------


def _set_debug(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(dict)["debug"] = True


def envvar_for(option: click.Option) -> str:
    """LINKKEEPER_ + the long option name in capitals (the README's rule)."""
    long_names = [o for o in option.opts if o.startswith("--")]
    return "LINKKEEPER_" + long_names[0][2:].replace("-", "_").upper()


def finish_commands(group: click.Group) -> None:
    """Give every command `--debug` (so `linkkeeper report --debug` works) and show each
    option's environment variable in `--help`; options declared without one get
    LINKKEEPER_<LONG NAME>. Called once, after the command modules registered."""
    for command in group.commands.values():
        if not any(p.name == "debug" for p in command.params):
            command.params.append(click.Option(
                ["--debug"], is_flag=True, expose_value=False, is_eager=True,
                envvar="LINKKEEPER_DEBUG", callback=_set_debug,
                help="Show tracebacks on errors."))
        for param in command.params:
            if isinstance(param, click.Option) and any(o.startswith("--") for o in param.opts):
                if param.envvar is None:
                    param.envvar = envvar_for(param)
                param.show_envvar = True
    for param in group.params:
        if isinstance(param, click.Option) and param.envvar:
            param.show_envvar = True
