"""A post's front matter: its keys, the line each key is on, and where the body starts.

Two paths. Jekyll's YAML (``---``), almost every post, takes the fast path: flat
``key: value`` lines are read by `_simple_line` (the values YAML's safe loader gives,
without building a node tree), anything else by PyYAML's C loader, whose errors carry
the exact line. TOML (``+++``) and JSON (``{`` … ``}``) front matter, which Hugo and
other generators write, take the general path through python-frontmatter's handlers
(`general_front_matter`), whose YAML handler reads Jekyll posts as the fast path does
(a test compares them on the corpus) but slower: on the 391 corpus posts, one core,
34 µs a post against 126 µs, of ~860 µs for the whole `parse_post` (about a tenth of a
scan), which is why YAML keeps the fast path.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from datetime import tzinfo as tzinfo_type
from functools import lru_cache
from typing import Any

import yaml
from frontmatter import JSONHandler, YAMLHandler, detect_format
from frontmatter.default_handlers import BaseHandler

from linkkeeper.extract.links import Problem

__all__ = [
    "DEFAULT_SOURCE_KEYS",
    "FrontMatter",
    "general_front_matter",
    "read_front_matter",
]

DEFAULT_SOURCE_KEYS: tuple[str, ...] = (
    "from",
    "source",
    "source_url",
    "original_url",
    "canonical_url",
    "link",
)

_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(slots=True)
class FrontMatter:
    """What the body reader needs from the front matter."""

    data: dict[str, Any] = field(default_factory=dict)  # JSON-ready (dates as ISO text)
    lines: list[str] = field(default_factory=list)  # its lines; the first is file line 2
    body_offset: int = 0  # where the body starts in the text
    body_line: int = 1  # the 1-based file line of body_offset
    ok: bool = True
    syntax: str = "yaml"  # 'yaml', 'toml' or 'json': how a key line is spelled

    def key_line(self, key: str) -> int:
        """1-based file line of a top-level key (the opening delimiter is line 1)."""
        return _key_line(self.lines, key, self.syntax)


_FM_OPEN = re.compile(r"---[ \t]*\r?\n")
_FM_CLOSE = re.compile(r"^(?:---|\.\.\.)[ \t]*\r?$", re.MULTILINE)


# What the JSON copy of one top-level key may hold, in characters (a node counts one, a
# string its length), or twice the front matter's text when that is more: YAML aliases repeat
# a value without repeating its text, and a 10 KB post whose aliases named a 10,000-character
# string 59,049 times stored 429 MB (1.3 GB of memory).
KEY_BUDGET = 65_536
# ... and of the whole front matter: this many times its text, at least FRONT_MATTER_BUDGET
FRONT_MATTER_BUDGET, EXPANSION = 262_144, 8


def _jsonable(value: Any, budget: list[int], seen: frozenset[int] = frozenset()) -> Any:
    """A JSON-serialisable copy (dates as ISO strings); bounded against alias bombs/cycles:
    ``budget`` holds the characters left (each node costs one, a string its length), and
    what comes past it is None."""
    budget[0] -= 1 + (len(value) if isinstance(value, str) else 0)
    if budget[0] < 0:
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if id(value) in seen:
        return None
    if isinstance(value, dict):
        inner = seen | {id(value)}
        return {str(k): _jsonable(v, budget, inner) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        inner = seen | {id(value)}
        return [_jsonable(v, budget, inner) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


# Fast path for the flat front matter almost every post has (`key: plain`, `key: "quoted"`,
# `key: [ a, b ]`): the same values YAML's safe loader gives, without building a YAML node
# tree (the loader's Python constructor costs more than the rest of a post's parsing).
# Anything else (nesting, comments, escapes, quotes, anchors, block scalars) goes to YAML;
# tests compare both on the corpus and on generated front matter.
_FM_FAST_LINE = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*):[ \t]+(\S(?:.*\S)?)[ \t]*")
_FM_QUOTED = re.compile(r'"([^"\\]*)"')
_FM_PLAIN_BAD_START = frozenset("-?:,[]{}#&*!|>'\"%@`")
_YAML_RESOLVERS: dict[str | None, list[tuple[str, re.Pattern[str]]]] = (
    yaml.SafeLoader.yaml_implicit_resolvers
)
_YAML_CONSTRUCTOR = yaml.SafeLoader("")


# the ISO timestamps posts carry ('2024-11-19T02:09:41.774Z', '2014-09-28T23:51:30+02:00',
# '2020-07-24'): a subset of what YAML resolves as timestamps, built as its constructor does
_FM_TIMESTAMP = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
    r"(?:[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?(?:(Z)|([-+])([0-9]{2}):([0-9]{2}))?)?"
)


def _timestamp(m: re.Match[str]) -> date | datetime:
    year, month, day, hour, minute, second, fraction, utc, sign, tz_hour, tz_minute = m.groups()
    if hour is None:
        return date(int(year), int(month), int(day))
    tzinfo: tzinfo_type | None = None
    if sign:
        delta = timedelta(hours=int(tz_hour), minutes=int(tz_minute))
        tzinfo = timezone(-delta if sign == "-" else delta)
    elif utc:
        tzinfo = UTC
    micro = int(fraction[:6].ljust(6, "0")) if fraction else 0
    return datetime(
        int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo
    )


def _plain_scalar(text: str) -> tuple[bool, Any]:
    """(understood, value) of a plain YAML scalar, resolved as the safe loader does."""
    if text[0] in _FM_PLAIN_BAD_START or ": " in text or " #" in text or text.endswith(":"):
        return False, None
    if "\t" in text:
        return False, None
    if text[0] in "0123456789" and (m := _FM_TIMESTAMP.fullmatch(text)) is not None:
        return True, _timestamp(m)
    for tag, regexp in _YAML_RESOLVERS.get(text[0], ()):
        if regexp.match(text):
            if tag == "tag:yaml.org,2002:str":
                return True, text
            constructor = _YAML_CONSTRUCTOR.yaml_constructors.get(tag)
            if constructor is None or tag.endswith((":merge", ":value")):
                return False, None
            return True, constructor(_YAML_CONSTRUCTOR, yaml.ScalarNode(tag, text))
    return True, text


# what YAML would fold, reject or treat as a line break: leave those to the real parser
_FM_UNSAFE = re.compile(
    "[^\t\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
)


def _simple_front_matter(lines: list[str], *, json: bool = False) -> dict[str, Any] | None:
    """The front matter as YAML's safe loader reads it, when every line is a simple
    one; None otherwise. ``json``: values as `_jsonable` makes them (dates as text)."""
    read = _simple_line_json if json else _simple_line
    data: dict[str, Any] = {}
    for line in lines:
        if not line.strip():
            if line:  # whitespace-only lines: let YAML decide
                return None
            continue
        item = read(line)
        if item is None:
            return None
        key, value = item
        data[key] = list(value) if type(value) is tuple else value
    return data


@lru_cache(maxsize=4096)
def _simple_line_json(line: str) -> tuple[str, Any] | None:
    item = _simple_line.__wrapped__(line)  # (json lines have their own cache)
    if item is None:
        return None
    key, value = item
    budget = [2 * len(line) + 64]  # one flat line has no aliases: its values are its text
    if type(value) is tuple:
        return key, tuple(_jsonable(list(value), budget))
    return key, _jsonable(value, budget)


@lru_cache(maxsize=4096)  # most lines ('layout: post', 'tags: [ ... ]') recur across posts
def _simple_line(line: str) -> tuple[str, Any] | None:
    """(key, value) of one flat front matter line, None when YAML must decide.

    A list comes back as a tuple: the cached value is shared between posts.
    """
    if _FM_UNSAFE.search(line):
        return None
    if "\t" in line:
        return None
    m = _FM_FAST_LINE.fullmatch(line)
    if m is None:
        return None
    key, raw = m.group(1), m.group(2)
    if not _string_key(key):
        return None
    if raw[0] == '"':
        q = _FM_QUOTED.fullmatch(raw)
        if q is None:
            return None
        return key, q.group(1)
    if raw[0] == "[":
        if not raw.endswith("]") or any(c in raw[1:-1] for c in "[]{}\"'"):
            return None
        items = [item.strip(" ") for item in raw[1:-1].split(",")]  # YAML spaces only
        if items and not items[-1]:
            items.pop()  # a trailing comma
        values = []
        for item in items:
            if not item:
                return None
            understood, value = _plain_scalar(item)
            if not understood:
                return None
            values.append(value)
        return key, tuple(values)
    understood, value = _plain_scalar(raw)
    if not understood:
        return None
    return key, value


@lru_cache(maxsize=1024)
def _string_key(key: str) -> bool:
    """'yes:', 'null:', '1:' are not string keys."""
    understood, key_value = _plain_scalar(key)
    return understood and key_value == key


def read_front_matter(text: str, problems: list[Problem]) -> FrontMatter:
    """The front matter at the head of ``text`` (newlines already ``\\n``); an empty one,
    body from line 1, when there is none. Never raises: bad input becomes a `Problem`."""
    if _FM_OPEN.match(text):
        return _yaml_front_matter(text, problems)
    if text[:1] in ("+", "{"):  # (the one cheap test most bodies fail)
        handler = detect_format(text, _GENERAL_HANDLERS)
        if handler is not None:
            return general_front_matter(text, handler, problems)
    return FrontMatter()


def _yaml_front_matter(text: str, problems: list[Problem]) -> FrontMatter:
    """Jekyll's ``---`` front matter (closed by ``---`` or ``...``): the fast path."""
    first = text.index("\n") + 1
    close = _FM_CLOSE.search(text, first)
    if close is None:
        problems.append(Problem(1, "front matter: no closing '---' line"))
        return FrontMatter(ok=False)
    block = text[first : close.start()]
    fm_lines = block.split("\n")
    body_start = text.count("\n", 0, close.start()) + 1  # 0-based index of the body's line
    data, ok = _yaml_data(block, fm_lines, problems)
    return FrontMatter(data, fm_lines, _nth_line_offset(text, body_start), body_start + 1, ok)


def _yaml_data(block: str, fm_lines: list[str], problems: list[Problem]) -> tuple[dict, bool]:
    """(JSON-ready mapping, parsed ok) of a YAML block: flat lines fast, the rest by PyYAML."""
    try:
        # (already JSON-ready, so a simple front matter is done here)
        simple = _simple_front_matter(fm_lines, json=True)
        if simple is not None:
            return simple, True
        data = yaml.load(block, Loader=_YAML_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = 2 + (mark.line if mark is not None else 0)
        what = getattr(exc, "problem", None) or str(exc).split("\n", 1)[0]
        problems.append(Problem(line, f"front matter: YAML error: {what}"))
        return {}, False
    except Exception as exc:  # e.g. RecursionError on absurd nesting
        problems.append(Problem(2, f"front matter: cannot be read: {type(exc).__name__}"))
        return {}, False
    return _mapping(data, problems, len(block))


def _mapping(data: Any, problems: list[Problem], size: int) -> tuple[dict[str, Any], bool]:
    """(JSON-ready copy, ok) of what a parser loaded; anything but a mapping is a problem."""
    if data is None:
        return {}, True
    if not isinstance(data, dict):
        problems.append(Problem(2, f"front matter: is a {type(data).__name__}, not a mapping"))
        return {}, False
    # each top-level key gets its own budget, so an alias bomb in one key cannot starve the
    # others (a source key's plain string is taken as written); all of them share one more
    total = max(FRONT_MATTER_BUDGET, EXPANSION * size)
    result: dict[str, Any] = {}
    cut = False
    for key, value in data.items():
        if type(value) is str:
            result[str(key)] = value
            continue
        given = min(max(KEY_BUDGET, 2 * size), total)  # without aliases a key fits its text
        left = [given]
        result[str(key)] = _jsonable(value, left) if given > 0 else None
        total -= given - max(left[0], 0)
        cut = cut or left[0] < 0 or given <= 0
    if cut:
        problems.append(Problem(2, "front matter: YAML aliases expand it past what is stored"
                                f" ({max(KEY_BUDGET, 2 * size):,} characters a key): the stored"
                                " copy is cut"))
    return result, True


def _nth_line_offset(text: str, index: int) -> int:
    """Offset of the 0-based line ``index``."""
    pos = 0
    for _ in range(index):
        nxt = text.find("\n", pos)
        if nxt == -1:
            return len(text)
        pos = nxt + 1
    return pos


# --------------------------------------------------------------------------- general path


class TomlHandler(BaseHandler):
    """``+++`` TOML front matter (Hugo, Zola). python-frontmatter's own TOML handler needs
    the third-party ``toml`` package; Python 3.11 reads TOML itself."""

    FM_BOUNDARY = re.compile(r"^\+{3,}\s*$", re.MULTILINE)
    START_DELIMITER = END_DELIMITER = "+++"

    def load(self, fm: str, **kwargs: object) -> Any:
        return tomllib.loads(fm)

    def export(self, metadata: dict[str, object], **kwargs: object) -> str:
        raise NotImplementedError("linkkeeper only reads front matter")


# the formats beyond Jekyll's; YAML is detected (the Jekyll way) before these are tried
_GENERAL_HANDLERS: tuple[BaseHandler, ...] = (TomlHandler(), JSONHandler())
_SYNTAX: dict[type, str] = {TomlHandler: "toml", JSONHandler: "json", YAMLHandler: "yaml"}
_CLOSING = {"toml": "+++", "json": "}", "yaml": "---"}
_TOML_ERROR_LINE = re.compile(r"at line (\d+)")


def general_front_matter(text: str, handler: BaseHandler, problems: list[Problem]) -> FrontMatter:
    """Front matter in a format python-frontmatter has a handler for (TOML and JSON in a
    scan; its YAML handler reads the same posts as the fast path, slower)."""
    syntax = _SYNTAX.get(type(handler), "yaml")
    try:
        fm, content = handler.split(text)
    except ValueError:  # one delimiter only
        problems.append(Problem(1, f"front matter: no closing '{_CLOSING[syntax]}' line"))
        return FrontMatter(ok=False, syntax=syntax)
    body_offset = len(text) - len(content)  # (the handler's split keeps the body's tail)
    lines = text[text.find("\n") + 1 : body_offset].split("\n")
    body_line = text.count("\n", 0, body_offset) + 1
    try:
        loaded = handler.load(fm)
    except Exception as exc:  # each format has its own error class; all mean "unreadable"
        line = _error_line(exc) or 2  # (each handler's fm starts on the file's line 1)
        what = str(getattr(exc, "msg", None) or getattr(exc, "problem", None) or exc)
        problems.append(Problem(line, f"front matter: {syntax.upper()} error: {what}"))
        return FrontMatter({}, lines, body_offset, body_line, False, syntax)
    data, ok = _mapping(loaded, problems, len(fm))
    return FrontMatter(data, lines, body_offset, body_line, ok, syntax)


def _error_line(exc: Exception) -> int:
    """The 1-based file line a parser error names (0: none)."""
    if isinstance(exc, tomllib.TOMLDecodeError):
        m = _TOML_ERROR_LINE.search(str(exc))
        return int(m.group(1)) if m else 0
    lineno = getattr(exc, "lineno", None)  # json.JSONDecodeError
    if isinstance(lineno, int):
        return lineno
    mark = getattr(exc, "problem_mark", None)  # yaml.MarkedYAMLError
    return mark.line + 1 if mark is not None else 0


_KEY_SPELLING = {
    "yaml": r"""^(?:{k}|"{k}"|'{k}')\s*:""",
    "toml": r"""^\s*(?:{k}|"{k}"|'{k}')\s*=""",
    "json": r"""^\s*"{k}"\s*:""",
}
_KEY_LINE: dict[tuple[str, str], re.Pattern[str]] = {}


def _key_line(fm_lines: list[str], key: str, syntax: str = "yaml") -> int:
    """1-based file line of a top-level front matter key (the '---' is line 1)."""
    pattern = _KEY_LINE.get((key, syntax))
    if pattern is None:
        spelling = _KEY_SPELLING[syntax].replace("{k}", re.escape(key))
        pattern = _KEY_LINE[key, syntax] = re.compile(spelling)
    for i, line in enumerate(fm_lines):
        if pattern.match(line):
            return i + 2
    return 1
