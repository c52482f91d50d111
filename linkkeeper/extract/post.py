"""Every link a careful reader would find in one Jekyll post, with its kind and line.

A post is YAML front matter, then a body that mixes Markdown and raw HTML (in our
users' archives: a ``<!--…-->`` marker, a ``[title](url)`` line, ``------`` and
one big HTML block). ``parse_post`` never raises; bad input becomes a `Problem`.

How the body is read
    Jekyll renders posts with kramdown, which treats a block-level HTML tag at the
    start of a line as raw HTML *up to its matching end tag*, blank lines and
    indented lines included. CommonMark would end that block at the first blank
    line and turn the indented HTML after it into a code block, losing hundreds of
    links in the older posts. So HTML blocks are found the kramdown way
    (`_split_body`), parsed with selectolax (Lexbor), and blanked out of the text
    that markdown-it (CommonMark) then parses for Markdown links, images,
    autolinks and reference links, and for smaller HTML blocks and inline HTML.
    Links in code spans, fenced or indented code blocks and HTML comments are not
    links. Bare URLs in text are not links either: kramdown does not linkify them,
    so a reader of the rendered page cannot click them.

Line numbers
    Lines are 1-based in the file (front matter lines count). For HTML elements,
    each start tag of interest gets a position attribute before parsing, so the
    line is exact even when the parser moves elements (tables) and the element's
    raw attribute text (``original``) is read back from the source.

Kinds (see DESIGN.md)
    ``source``: front matter source keys, and the title link (the first link of
    the body's first block; it becomes the same key as ``from:`` even when one is
    percent-encoded and the other is not). ``image``: ``img`` src/srcset and the
    lazy-loading attributes, ``picture > source``, ``video[poster]``, og/twitter
    image ``meta``, icon ``link``, and any ``a`` whose target is an image file or
    an image proxy. ``embed``: ``iframe``, ``embed``, ``object``, ``script``,
    ``video``/``audio`` src and their ``source``/``track``. ``related``: links in a
    list of stories (a ``ul``/``ol`` whose items are mainly one link each, not a
    share/navigation list). ``inline``: everything else.

Comment spam
    Old posts mirror a whole page including its comments (hundreds of spam
    links). They are links in the post, so they are recorded, but links inside a
    recognisable comments section (``#comments``, ``.comment-wrapper``,
    ``.commentlist``, ``#disqus_thread`` …) are always ``inline`` and carry
    ``in_comments=True`` so a scan can count, skip or deprioritise them.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from datetime import tzinfo as tzinfo_type
from functools import lru_cache
from typing import Any

import yaml
from markdown_it import MarkdownIt
from markdown_it.token import Token
from selectolax.lexbor import LexborHTMLParser, LexborNode

from linkkeeper.urls import UrlInfo, is_image_key, normalize_url, parse_srcset, unwrap_key
from linkkeeper.vocab import Kind

__all__ = [
    "DEFAULT_SOURCE_KEYS",
    "Occurrence",
    "ParsedPost",
    "Problem",
    "parse_post",
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
class Occurrence:
    url: str  # UrlInfo.url (the key)
    original: str  # the link as written in the file (HTML: before entity decoding)
    kind: str  # Kind value
    line: int  # 1-based line in the file
    text: str  # anchor / alt / title text, whitespace-collapsed
    fragment: str
    host: str
    status: str | None  # None, 'excluded' or 'invalid'
    reason: str
    wraps: str | None  # normalised original URL wrapped by an image proxy
    element: str  # 'front-matter:from', 'md-link', 'md-image', 'autolink', 'a', 'img', ...
    in_comments: bool = False  # inside a mirrored page's comments section (often spam)


@dataclass(slots=True)
class Problem:
    line: int
    message: str


@dataclass(slots=True)
class ParsedPost:
    title: str | None
    date: str | None
    source_url: str | None
    front_matter: dict[str, Any]
    occurrences: list[Occurrence] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    ok: bool = True


# --------------------------------------------------------------------------- front matter

_FM_OPEN = re.compile(r"---[ \t]*\r?\n")
_FM_CLOSE = re.compile(r"^(?:---|\.\.\.)[ \t]*\r?$", re.MULTILINE)


def _jsonable(value: Any, budget: list[int], seen: frozenset[int] = frozenset()) -> Any:
    """A JSON-serialisable copy (dates as ISO strings); bounded against alias bombs/cycles."""
    budget[0] -= 1
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
    if type(value) is tuple:
        return key, tuple(_jsonable(list(value), [20_000]))
    return key, _jsonable(value, [20_000])


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
        items = [item.strip() for item in raw[1:-1].split(",")]
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


def _split_front_matter(
    text: str, problems: list[Problem]
) -> tuple[dict[str, Any], list[str], int, bool]:
    """(front matter, its lines, 0-based index of the first body line, parsed ok)."""
    if not _FM_OPEN.match(text):
        return {}, [], 0, True
    close = _FM_CLOSE.search(text, text.index("\n") + 1)
    if close is None:
        problems.append(Problem(1, "front matter: no closing '---' line"))
        return {}, [], 0, False
    block = text[text.index("\n") + 1 : close.start()]
    fm_lines = block.split("\n")
    body_start = text.count("\n", 0, close.start()) + 1
    try:
        # (already JSON-ready, so a simple front matter is done here)
        simple = _simple_front_matter(fm_lines, json=True)
        if simple is not None:
            return simple, fm_lines, body_start, True
        data = yaml.load(block, Loader=_YAML_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = 2 + (mark.line if mark is not None else 0)
        what = getattr(exc, "problem", None) or str(exc).split("\n", 1)[0]
        problems.append(Problem(line, f"front matter: YAML error: {what}"))
        return {}, fm_lines, body_start, False
    except Exception as exc:  # e.g. RecursionError on absurd nesting
        problems.append(Problem(2, f"front matter: cannot be read: {type(exc).__name__}"))
        return {}, fm_lines, body_start, False
    if data is None:
        return {}, fm_lines, body_start, True
    if not isinstance(data, dict):
        problems.append(Problem(2, f"front matter: is a {type(data).__name__}, not a mapping"))
        return {}, fm_lines, body_start, False
    # each top-level key gets its own node budget, so an alias bomb in one key cannot
    # starve the others (the source keys in particular)
    result = {
        str(key): value if type(value) is str else _jsonable(value, [20_000])
        for key, value in data.items()
    }
    return result, fm_lines, body_start, True


_KEY_LINE: dict[str, re.Pattern[str]] = {}


def _key_line(fm_lines: list[str], key: str) -> int:
    """1-based file line of a top-level front matter key (the '---' is line 1)."""
    pattern = _KEY_LINE.get(key)
    if pattern is None:
        k = re.escape(key)
        pattern = _KEY_LINE[key] = re.compile(rf"""^(?:{k}|"{k}"|'{k}')\s*:""")
    for i, line in enumerate(fm_lines):
        if pattern.match(line):
            return i + 2
    return 1


# --------------------------------------------------------------------------- body split

# kramdown's block-level HTML elements: a line starting with one of these opens raw HTML
# that runs to the matching end tag.
_BLOCK_TAGS = frozenset(
    [
        "address",
        "applet",
        "article",
        "aside",
        "audio",
        "blockquote",
        "body",
        "canvas",
        "center",
        "dd",
        "del",
        "details",
        "dialog",
        "dir",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "frameset",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "head",
        "header",
        "hgroup",
        "hr",
        "html",
        "iframe",
        "ins",
        "legend",
        "li",
        "listing",
        "main",
        "map",
        "math",
        "menu",
        "nav",
        "noframes",
        "noscript",
        "object",
        "ol",
        "optgroup",
        "option",
        "p",
        "picture",
        "pre",
        "section",
        "script",
        "style",
        "summary",
        "table",
        "tbody",
        "td",
        "template",
        "textarea",
        "tfoot",
        "th",
        "thead",
        "tr",
        "ul",
        "video",
    ]
)
_VOID_TAGS = frozenset(
    [
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "source",
        "track",
        "wbr",
    ]
)
_RAW_TEXT_TAGS = frozenset({"script", "style", "textarea", "title", "xmp"})
_HTML_START = re.compile(r" {0,3}<(?:(!--)|([A-Za-z][A-Za-z0-9-]*)(?=[\s/>]|$))")
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
_TAG_CACHE: dict[str, re.Pattern[str]] = {}


def _tag_pattern(tag: str) -> re.Pattern[str]:
    pattern = _TAG_CACHE.get(tag)
    if pattern is None:
        pattern = re.compile(
            rf"<!--.*?(?:-->|\Z)|<(/?){tag}(?=[\s/>])(?:[^>\"']|\"[^\"]*\"|'[^']*')*?(/?)>",
            re.IGNORECASE | re.DOTALL,
        )
        _TAG_CACHE[tag] = pattern
    return pattern


def _html_block_end(body: str, start: int, tag: str) -> int:
    """Offset just past the end tag matching the block that starts at ``start``."""
    if tag == "!--":
        end = body.find("-->", start + 4)
        return len(body) if end == -1 else end + 3
    depth = 0
    for m in _tag_pattern(tag).finditer(body, start):
        if m.group(0).startswith("<!--"):
            continue
        if m.group(1):
            depth -= 1
        elif not m.group(2) and tag not in _VOID_TAGS:
            depth += 1
        if depth <= 0:
            return m.end()
        if tag in _RAW_TEXT_TAGS:  # raw text: only its own end tag counts
            close = re.compile(rf"</{tag}\s*>", re.IGNORECASE).search(body, m.end())
            return len(body) if close is None else close.end()
    return len(body)


def _split_body(body: str) -> Iterator[tuple[int, int]]:
    """(start, end) offsets of the raw HTML blocks, kramdown style; the rest is Markdown."""
    pos = 0
    n = len(body)
    fence: str | None = None
    while pos < n:
        eol = body.find("\n", pos)
        eol = n if eol == -1 else eol
        line = body[pos:eol]
        if fence is not None:
            stripped = line.strip()
            if stripped.startswith(fence) and stripped.strip(fence[0]) == "":
                fence = None
        elif (f := _FENCE.match(line)) is not None:
            fence = f.group(1)
        elif (m := _HTML_START.match(line)) is not None and (
            m.group(1) or m.group(2).lower() in _BLOCK_TAGS
        ):
            tag = "!--" if m.group(1) else m.group(2).lower()
            end = _html_block_end(body, pos + m.start(0) + line.index("<"), tag)
            end_line = body.find("\n", end)
            end_line = n if end_line == -1 else end_line
            yield pos, end_line
            pos = end_line + 1
            continue
        pos = eol + 1


# --------------------------------------------------------------------------- HTML links

_POS_ATTR = "data-lk-pos"
_TAGS_OF_INTEREST = re.compile(
    r"<(a|area|audio|blockquote|embed|iframe|img|link|meta|object|q|script|source|track|video)(?=[\s/>])",
    re.IGNORECASE,
)
_TAG_NAME = re.compile(r"<[A-Za-z][^\s/>]*")
_ATTR_AT = re.compile(
    r"""[\s/]*([^\s/>=][^\s/>=]*|=[^\s/>=]*)?(?:\s*=\s*(?:"([^"]*)"?|'([^']*)'?|([^\s>]*)))?"""
)
# The elements that can hold links, and the attribute each needs to be worth reading (the
# CSS selector "a[href], area[href], img, source, ..."). The tree is walked rather than
# searched with a selector: Lexbor builds a CSS parser per document, which costs more
# than parsing a post's HTML.
_LINK_ELEMENTS: dict[str, str | None] = {
    "a": "href",
    "area": "href",
    "img": None,
    "source": None,
    "video": None,
    "audio": None,
    "iframe": None,
    "embed": "src",
    "object": "data",
    "script": "src",
    "link": "href",
    "meta": "content",
    "track": "src",
    "blockquote": "cite",
    "q": "cite",
}
_IMG_ATTRS = (
    ("src", "img", False),
    ("data-src", "img-data-src", False),
    ("data-lazy-src", "img-data-lazy-src", False),
    ("data-original", "img-data-original", False),
    ("srcset", "img-srcset", True),
    ("data-srcset", "img-data-srcset", True),
    ("data-lazy-srcset", "img-data-lazy-srcset", True),
)
_META_IMAGE = frozenset(
    {"og:image", "og:image:url", "og:image:secure_url", "twitter:image", "twitter:image:src"}
)
_META_EMBED = frozenset({"og:video", "og:video:url", "og:video:secure_url", "og:audio"})
_SKIP_REL = frozenset({"preconnect", "dns-prefetch"})
_COMMENT_SECTION = re.compile(
    r"^(?:comments|comment-wrapper|comments-area|comment-list|commentlist|disqus_thread|"
    r"respond|comments-section)$"
)
_SECTION_HINTS = ("omment", "disqus", "respond", "elated", "more", "More", "urther", "lso")
_SECTION_CANDIDATE = re.compile("comment|disqus|respond|related|more|further|also")
_NOT_STORIES = re.compile(
    r"(?<![a-z])(?:share|sharing|sharedaddy|social|menu|nav|navbar|navigation|pager|pagination|"
    r"tabs|breadcrumbs?|tags|tag-?list|tagcloud|comments?|links)(?![a-z])"
)
# a block of related stories: class or id "related", "related-posts", "relatedArticles" ...
_RELATED_SECTION = re.compile(
    r"^(?:[a-z]+[-_])?(?:related|more[-_]?(?:articles?|stories|news)|further[-_]?reading|"
    r"see[-_]?also|also[-_]?read)(?:$|[-_]?(?:posts?|stories|articles?|news|links?|content|"
    r"items?|list|block|box)$)"
)
_NEWLINE = re.compile("\n")


def _collapse(text: str) -> str:
    """Whitespace runs as one space, trimmed (str.split's whitespace is the same as \\s)."""
    return " ".join(text.split())


class _Collector:
    """Turns raw links into Occurrences, resolving them against the post's bases."""

    def __init__(self, site_url: str | None, post_url: str | None) -> None:
        self.site_url = site_url
        self.post_url = post_url
        self.occurrences: list[Occurrence] = []

    def resolve(self, raw: str) -> UrlInfo:
        """Root-relative links resolve against the site, document-relative ones only against
        the post's own URL: guessing it from the site root would invent a URL."""
        text = raw.strip()
        if self.post_url is not None:
            return normalize_url(text, self.post_url)
        if text[:1] in ("/", "\\") and text[1:2] not in ("/", "\\"):
            return normalize_url(text, self.site_url)
        info = normalize_url(text)
        if (
            self.site_url is not None
            and info.status == "invalid"
            and info.reason.startswith("relative link")
        ):
            return UrlInfo(
                info.url,
                "",
                "",
                info.status,
                "document-relative link and no post url to resolve it",
            )
        return info

    def add(
        self,
        raw: str,
        *,
        kind: str,
        line: int,
        text: str,
        element: str,
        original: str | None = None,
        in_comments: bool = False,
        info: UrlInfo | None = None,
    ) -> Occurrence:
        if info is None:
            info = self.resolve(raw)
        wraps = None
        wrapped = unwrap_key(info)
        if wrapped is not None:
            inner = normalize_url(wrapped)
            wraps = inner.url if inner.status is None else None
        occurrence = Occurrence(
            url=info.url,
            original=raw if original is None else original,
            kind=kind,
            line=line,
            text=text,
            fragment=info.fragment,
            host=info.host,
            status=info.status,
            reason=info.reason,
            wraps=wraps,
            element=element,
            in_comments=in_comments,
        )
        self.occurrences.append(occurrence)
        return occurrence


class _LineIndex:
    """Offset -> 1-based file line for one chunk of text."""

    def __init__(self, text: str, first_line: int) -> None:
        self.starts = [m.start() for m in _NEWLINE.finditer(text)] if "\n" in text else []
        self.first_line = first_line

    def line(self, offset: int) -> int:
        return self.first_line + bisect_right(self.starts, offset - 1)


def _raw_attributes(source: str, pos: int) -> dict[str, tuple[str, int]]:
    """The attributes of the start tag at ``pos`` exactly as written (names lower-cased).

    Reads them the way the HTML tokenizer does, so a stray quote in one attribute
    name (``alt="US" s x-37b'``) does not swallow the next ones.
    """
    m = _TAG_NAME.match(source, pos)
    if m is None:
        return {}
    attrs: dict[str, tuple[str, int]] = {}
    i = m.end()
    n = len(source)
    while i < n:
        a = _ATTR_AT.match(source, i)
        if a is None or a.group(1) is None:
            break
        name = a.group(1).lower()
        if name not in attrs:
            group = 2 if a.group(2) is not None else 3 if a.group(3) is not None else 4
            attrs[name] = (a.group(group) or "", a.start(group) if a.start(group) >= 0 else i)
        if a.end() <= i:
            break
        i = a.end()
    return attrs


def _is_story_list(list_node: LexborNode, cache: dict[int, bool]) -> bool:
    """A list whose items are mainly one link each (the related-stories lists)."""
    key = list_node.mem_id
    if key in cache:
        return cache[key]
    items = [c for c in list_node.iter() if c.tag == "li"]
    # share buttons, menus, tag lists and pagers are lists of links too, but not stories:
    # their class/id (on the list, its items, or a few ancestors) usually says so
    marked: list[LexborNode] = list(items)
    node: LexborNode | None = list_node
    for _ in range(3):
        if node is None:
            break
        marked.append(node)
        node = node.parent
    marks = " ".join(
        (n.attributes.get("class") or "") + " " + (n.attributes.get("id") or "") for n in marked
    ).lower()
    result = False
    if items and not _NOT_STORIES.search(marks):
        story_items = 0
        for item in items:
            links = [a for a in item.traverse() if a.tag == "a" and "href" in a.attributes]
            if not links:
                continue
            item_text = _collapse(item.text(deep=True))
            link_text = sum(len(_collapse(a.text(deep=True))) for a in links)
            if link_text > 0 and link_text * 2 >= len(item_text):
                story_items += 1
        result = story_items * 2 >= len(items)
    cache[key] = result
    return result


@dataclass(slots=True)
class _Place:
    """Where an element sits: what decides between related, inline and embed.

    Read as the walk from the element up to the root (or to the first comments
    section, where it stops) finds it: the nearest ``li`` decides ``in_story_list``,
    the nearest picture/video/audio ``media``.
    """

    in_story_list: bool = False
    in_comments: bool = False
    in_related_section: bool = False
    media: str = ""  # nearest picture/video/audio ancestor
    has_li: bool = False  # an li was met (so in_story_list is decided)


_NOWHERE = _Place()


def _context(
    node: LexborNode,
    sections: dict[int, str],
    lists: dict[int, bool],
    places: dict[int, _Place],
) -> _Place:
    """The `_Place` of ``node``: what its ancestors say. ``places`` remembers the answer for
    every ancestor walked (by mem_id), so siblings and cousins stop at the first shared
    one. Sections are complete for a node's ancestors by the time the node is reached."""
    chain: list[tuple[LexborNode, int]] = []
    above = _NOWHERE
    parent = node.parent
    while parent is not None:
        key = parent.mem_id
        known = places.get(key)
        if known is not None:
            above = known
            break
        chain.append((parent, key))
        parent = parent.parent
    for ancestor, key in reversed(chain):  # from the top down
        tag = ancestor.tag
        has_li = False
        story = False
        media = ""
        if tag == "li":
            has_li = True
            grand = ancestor.parent
            if grand is not None and grand.tag in ("ul", "ol"):
                story = _is_story_list(grand, lists)
        elif tag in ("picture", "video", "audio"):
            media = tag
        section = sections.get(key) if sections else None
        if section == "comments":  # the walk up stops here: nothing above counts
            place = _Place(story, True, False, media, has_li)
        else:
            place = _Place(
                story if has_li else above.in_story_list,
                above.in_comments,
                section == "related" or above.in_related_section,
                media or above.media,
                has_li or above.has_li,
            )
        places[key] = place
        above = place
    return above


def _section_mark(attrs: dict[str, str | None]) -> str | None:
    """'comments' or 'related' when the element starts such a section (its class or id)."""
    id_value = attrs.get("id")
    class_value = attrs.get("class")
    # what "[class*=comment i], [id*=comment i], ..." selects (ASCII case-insensitive)
    for value in (class_value, id_value):
        if value and _SECTION_CANDIDATE.search(
            value.lower() if value.isascii() else value.encode("utf-8", "replace").lower().decode()
        ):
            break
    else:
        return None
    found = None
    marks = [(id_value or "").lower()]
    marks.extend((class_value or "").lower().split())
    for mark in marks:
        if not mark:
            continue
        if _COMMENT_SECTION.match(mark):
            return "comments"
        if _RELATED_SECTION.search(mark):
            found = "related"
    return found


def _first_img_with_alt(node: LexborNode) -> LexborNode | None:
    for inner in node.traverse():
        if inner.tag == "img" and "alt" in inner.attributes:
            return inner
    return None


def _html_links(collector: _Collector, html: str, first_line: int) -> None:
    """Record every link of one chunk of raw HTML; ``first_line`` is its first file line."""
    first = html.find("<")
    if first == -1 or (html.startswith("<!", first) and html.find("<", first + 1) == -1):
        return  # no markup, or only a comment (the "<!--…-->" line most posts start with)
    marked = _TAGS_OF_INTEREST.sub(lambda m: f'{m.group(0)} {_POS_ATTR}="{m.start()}"', html)
    tree = LexborHTMLParser(marked)
    lines = _LineIndex(html, first_line)
    # Comment and related-story sections, by mem_id. The walk is depth-first, so an
    # element's ancestors are all known when it is reached.
    sections: dict[int, str] = {}
    hinted: bool | None = None  # does the chunk name a section at all (checked lazily)
    lists: dict[int, bool] = {}  # ul/ol by mem_id: a list of stories?
    places: dict[int, _Place] = {}  # elements by mem_id: what their ancestors say
    where = _Where(first_line, lines)  # one per chunk, its tag_line set per element
    root = tree.root
    for node in root.traverse() if root is not None else ():
        tag = node.tag
        attrs = node.attributes
        if "class" in attrs or "id" in attrs:
            section = _section_mark(attrs)
            if section is not None:
                if hinted is None:
                    hinted = any(hint in html for hint in _SECTION_HINTS)
                if hinted:
                    sections[node.mem_id] = section
        if tag not in _LINK_ELEMENTS:
            continue
        needed = _LINK_ELEMENTS[tag]
        if needed is not None and needed not in attrs:
            continue
        pos_text = attrs.get(_POS_ATTR)
        if pos_text is not None and pos_text.isdigit():
            pos = int(pos_text)
            line = lines.line(pos)
            end = html.find(">", pos)
            if (
                end != -1
                and html.find("&", pos, end) == -1
                and html.find("\n", pos, end) == -1
                and ">" not in "".join(filter(None, attrs.values()))
            ):
                # one-line tag without character references: the parser's values are
                # exactly what is written, no need to re-read the tag
                raw = None
            else:
                raw = _raw_attributes(html, pos)
        else:  # an element the parser made up: no position, no raw text
            line, raw = first_line, None
        where.tag_line = line
        _element_links(collector, node, tag, attrs, raw, where, sections, lists, places)


def _value(
    attrs: dict[str, str | None],
    raw: dict[str, tuple[str, int]] | None,
    name: str,
    where: _Where,
) -> tuple[str, int, int] | None:
    """(the attribute as written, its line, its offset or -1), None when absent or empty."""
    decoded = attrs.get(name)
    if decoded is None:
        return None
    written = raw.get(name) if raw is not None else None
    if written is None:  # the decoded value is the written one (or all we have)
        text, line, offset = decoded, where.tag_line, -1
    else:
        text, offset = written
        line = where.lines.line(offset)
    if not text.strip():
        return None
    return text, line, offset


def _candidates(
    value: tuple[str, int, int], is_srcset: bool, where: _Where
) -> list[tuple[str, int]]:
    """The URL(s) of an attribute with the line of each (srcset values can span lines)."""
    if not is_srcset:
        return [(value[0], value[1])]
    text, line, offset = value
    found: list[tuple[str, int]] = []
    cursor = 0
    for candidate in parse_srcset(text):
        at = text.find(candidate, cursor)
        if at >= 0 and offset >= 0:
            cursor = at + len(candidate)
            found.append((candidate, where.lines.line(offset + at)))
        else:
            found.append((candidate, line))
    return found


@dataclass(slots=True)
class _Where:
    tag_line: int
    lines: _LineIndex


def _element_links(
    collector: _Collector,
    node: LexborNode,
    tag: str,
    attrs: dict[str, str | None],
    raw: dict[str, tuple[str, int]] | None,
    where: _Where,
    sections: dict[int, str],
    lists: dict[int, bool],
    places: dict[int, _Place],
) -> None:
    # the ancestor walk only matters for links (story lists), <source> (picture or video)
    # and when the chunk has comment or related sections
    place = (
        _context(node, sections, lists, places)
        if sections or tag in ("a", "area", "source")
        else _NOWHERE
    )
    in_comments, media = place.in_comments, place.media
    add = collector.add

    if tag in ("a", "area"):
        value = _value(attrs, raw, "href", where)
        if value is None:
            return
        text = _collapse(node.text(deep=True)) if tag == "a" else ""
        if not text:
            img = _first_img_with_alt(node) if tag == "a" else None
            text = _collapse((img.attributes.get("alt") or "") if img else "") or _collapse(
                attrs.get("title") or attrs.get("alt") or ""
            )
        info = collector.resolve(value[0])
        if is_image_key(info):
            kind = Kind.IMAGE
        elif in_comments:
            kind = Kind.INLINE
        elif place.in_story_list or place.in_related_section:
            kind = Kind.RELATED
        else:
            kind = Kind.INLINE
        add(
            value[0],
            kind=kind.value,
            line=value[1],
            text=text,
            element=tag,
            in_comments=in_comments,
            info=info,
        )
        return

    if tag == "img":
        text = _collapse(attrs.get("alt") or attrs.get("title") or "")
        seen: set[str] = set()
        for name, element, is_srcset in _IMG_ATTRS:
            value = _value(attrs, raw, name, where)
            if value is None:
                continue
            for candidate, line in _candidates(value, is_srcset, where):
                info = collector.resolve(candidate)
                if info.url in seen:
                    continue
                seen.add(info.url)
                add(
                    candidate,
                    kind=Kind.IMAGE.value,
                    line=line,
                    text=text,
                    element=element,
                    in_comments=in_comments,
                    info=info,
                )
        return

    if tag == "source":
        kind = Kind.EMBED if media in ("video", "audio") else Kind.IMAGE
        seen = set()
        for name, element, is_srcset in (
            ("src", "source", False),
            ("srcset", "source-srcset", True),
        ):
            value = _value(attrs, raw, name, where)
            if value is None:
                continue
            for candidate, line in _candidates(value, is_srcset, where):
                info = collector.resolve(candidate)
                if info.url not in seen:
                    seen.add(info.url)
                    add(
                        candidate,
                        kind=kind.value,
                        line=line,
                        text="",
                        element=element,
                        in_comments=in_comments,
                        info=info,
                    )
        return

    if tag in ("video", "audio"):
        text = _collapse(attrs.get("title") or "")
        value = _value(attrs, raw, "src", where)
        if value is not None:
            add(
                value[0],
                kind=Kind.EMBED.value,
                line=value[1],
                text=text,
                element=tag,
                in_comments=in_comments,
            )
        poster = _value(attrs, raw, "poster", where)
        if poster is not None:
            add(
                poster[0],
                kind=Kind.IMAGE.value,
                line=poster[1],
                text=text,
                element=f"{tag}-poster",
                in_comments=in_comments,
            )
        return

    if tag in ("iframe", "embed", "script", "track", "object"):
        name = "data" if tag == "object" else "src"
        value = _value(attrs, raw, name, where)
        element = tag
        if value is None and tag == "iframe":  # lazy-loaded embeds keep the real URL here
            value = _value(attrs, raw, "data-src", where) or _value(
                attrs, raw, "data-lazy-src", where
            )
            element = "iframe-data-src"
        if value is not None:
            text = _collapse(attrs.get("title") or attrs.get("label") or "")
            add(
                value[0],
                kind=Kind.EMBED.value,
                line=value[1],
                text=text,
                element=element,
                in_comments=in_comments,
            )
        return

    if tag == "link":
        rels = set((attrs.get("rel") or "").lower().split())
        if rels & _SKIP_REL:
            return
        value = _value(attrs, raw, "href", where)
        if value is not None:
            kind = Kind.IMAGE if any("icon" in r for r in rels) else Kind.INLINE
            add(
                value[0],
                kind=kind.value,
                line=value[1],
                text=_collapse(attrs.get("title") or ""),
                element="link",
                in_comments=in_comments,
            )
        return

    if tag == "meta":
        prop = (attrs.get("property") or attrs.get("name") or "").lower()
        content = _value(attrs, raw, "content", where)
        if content is None:
            return
        if prop in _META_IMAGE or prop in _META_EMBED:
            add(
                content[0],
                kind=(Kind.IMAGE if prop in _META_IMAGE else Kind.EMBED).value,
                line=content[1],
                text="",
                element="meta",
                in_comments=in_comments,
            )
        elif prop in ("og:url", "twitter:url"):
            add(
                content[0],
                kind=Kind.INLINE.value,
                line=content[1],
                text="",
                element="meta",
                in_comments=in_comments,
            )
        elif (attrs.get("http-equiv") or "").lower() == "refresh":
            m = re.search(r"url\s*=\s*['\"]?([^'\"]+)", content[0], re.IGNORECASE)
            if m:
                add(
                    m.group(1),
                    kind=Kind.INLINE.value,
                    line=content[1],
                    text="",
                    element="meta-refresh",
                    in_comments=in_comments,
                )
        return

    if tag in ("blockquote", "q"):
        value = _value(attrs, raw, "cite", where)
        if value is not None:
            add(
                value[0],
                kind=Kind.INLINE.value,
                line=value[1],
                text="",
                element=f"{tag}-cite",
                in_comments=in_comments,
            )


# --------------------------------------------------------------------------- Markdown links


def _make_markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": True, "linkify": False})
    # Keep destinations as written (no percent-encoding, no scheme filtering): our own
    # normaliser does both, and excluded schemes must still be recorded.
    md.normalizeLink = lambda url: url  # type: ignore[method-assign]
    md.normalizeLinkText = lambda url: url  # type: ignore[method-assign]
    md.validateLink = lambda url: True  # type: ignore[method-assign]
    return md


_MARKDOWN = _make_markdown()


def _inline_text(children: list[Token], start: int) -> tuple[str, int]:
    """Text of a link's children from ``start`` to its link_close; (text, index after)."""
    parts: list[str] = []
    depth = 1
    i = start
    while i < len(children):
        child = children[i]
        if child.type == "link_open":
            depth += 1
        elif child.type == "link_close":
            depth -= 1
            if depth == 0:
                return _collapse("".join(parts)), i + 1
        elif child.type in ("text", "code_inline") or child.type == "image":
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        i += 1
    return _collapse("".join(parts)), i


# A heading line "[plain title](url)" underlined with dashes (or alone), nothing else:
# no emphasis, escapes, entities, code or HTML whose rendering would need the parser.
_TITLE_ONLY = re.compile(
    r"\s*\[([^\[\]\\`<>*_&!\n]*)\]\(([^\s()<>\\&]+)\)[ \t]*(?:\n[ \t]{0,3}-+[ \t]*)?\s*"
)


def _markdown_links(
    collector: _Collector, markdown: str, first_line: int, title_first: bool
) -> None:
    """Links of the Markdown parts (HTML blocks already blanked, lines preserved)."""
    if not any(c in markdown for c in "[<:"):
        return
    if title_first and (m := _TITLE_ONLY.fullmatch(markdown)) is not None:
        # the usual body head (title link over a '------' rule) needs no Markdown parser
        line = first_line + markdown.count("\n", 0, m.start(1))
        text = _collapse(m.group(1))
        collector.add(m.group(2), kind=Kind.SOURCE.value, line=line, text=text, element="md-link")
        return
    tokens = _MARKDOWN.parse(markdown)
    first_block_seen = False
    in_list_item = 0
    for token in tokens:
        if token.type == "list_item_open":
            in_list_item += 1
        elif token.type == "list_item_close":
            in_list_item -= 1
        elif token.type == "html_block":
            if token.map is not None:
                _html_links(collector, token.content, first_line + token.map[0])
            if "<!--" not in token.content[:8]:
                first_block_seen = True
        elif token.type == "inline" and token.map is not None:
            is_title_block = title_first and not first_block_seen and not in_list_item
            first_block_seen = True
            _inline_links(
                collector, token, first_line + token.map[0], is_title_block, in_list_item > 0
            )


def _inline_links(
    collector: _Collector, token: Token, line: int, is_title_block: bool, in_list_item: bool
) -> None:
    children = token.children or []
    html_parts: list[str] = []
    has_html = False
    current = line
    para_text = _collapse(
        "".join(c.content for c in children if c.type in ("text", "code_inline", "image"))
    )
    i = 0
    title_done = False
    while i < len(children):
        child = children[i]
        ctype = child.type
        if ctype in ("softbreak", "hardbreak"):
            current += 1
            html_parts.append("\n")
        elif ctype == "link_open":
            href = str(child.attrGet("href") or "")
            text, after = _inline_text(children, i + 1)
            if child.markup == "autolink":
                element, kind = "autolink", Kind.INLINE
            else:
                element, kind = "md-link", Kind.INLINE
            info = collector.resolve(href)
            if is_title_block and not title_done and len(text) * 2 >= len(para_text):
                kind = Kind.SOURCE
                title_done = True
            elif is_image_key(info):
                kind = Kind.IMAGE
            elif in_list_item and len(text) >= 0.5 * len(para_text):
                kind = Kind.RELATED
            collector.add(
                href, kind=kind.value, line=current, text=text, element=element, info=info
            )
            # count line breaks inside the link text, keep scanning its children for images
            for inner in children[i + 1 : after]:
                if inner.type in ("softbreak", "hardbreak"):
                    current += 1
                    html_parts.append("\n")
                elif inner.type == "image":
                    _markdown_image(collector, inner, current)
            i = after
            continue
        elif ctype == "image":
            _markdown_image(collector, child, current)
        elif ctype == "html_inline":
            has_html = True
            html_parts.append(child.content)
        elif ctype == "text":
            html_parts.append(child.content.replace("&", "&amp;").replace("<", "&lt;"))
        i += 1
    if has_html:
        _html_links(collector, "".join(html_parts), line)


def _markdown_image(collector: _Collector, token: Token, line: int) -> None:
    src = str(token.attrGet("src") or "")
    text = _collapse(token.content) or _collapse(str(token.attrGet("title") or ""))
    collector.add(src, kind=Kind.IMAGE.value, line=line, text=text, element="md-image")


# --------------------------------------------------------------------------- the post


def _decode(data: bytes, problems: list[Problem]) -> tuple[str, bool]:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8"), True
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        problems.append(
            Problem(line, f"not valid UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start}")
        )
        return data.decode("utf-8", "replace"), False


def _blank_out(body: str, blocks: list[tuple[int, int]]) -> str:
    """The body with HTML blocks replaced by as many empty lines (line numbers kept)."""
    if not blocks:
        return body
    parts: list[str] = []
    pos = 0
    for start, end in blocks:
        parts.append(body[pos:start])
        parts.append("\n" * body.count("\n", start, end))
        pos = end
    parts.append(body[pos:])
    return "".join(parts)


def parse_post(
    data: bytes | str,
    *,
    path: str = "",
    site_url: str | None = None,
    source_keys: Sequence[str] = DEFAULT_SOURCE_KEYS,
    post_url: str | None = None,
) -> ParsedPost:
    """Parse one post file: front matter, then every link of its body. Never raises.

    ``site_url`` (the Jekyll ``url`` + ``baseurl``) resolves root-relative links;
    ``post_url`` (the post's own URL) resolves document-relative ones. ``path`` is
    only used in messages.
    """
    problems: list[Problem] = []
    try:
        return _parse(data, path, site_url, tuple(source_keys), post_url, problems)
    except Exception as exc:  # a bug must not stop a scan of thousands of posts
        problems.append(Problem(1, f"internal error while parsing {path or 'post'}: {exc!r}"))
        return ParsedPost(None, None, None, {}, [], problems, ok=False)


def _parse(
    data: bytes | str,
    path: str,
    site_url: str | None,
    source_keys: tuple[str, ...],
    post_url: str | None,
    problems: list[Problem],
) -> ParsedPost:
    if isinstance(data, str):
        text, ok = data.lstrip("\ufeff"), True
    else:
        text, ok = _decode(data, problems)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    front_matter, fm_lines, body_start, fm_ok = _split_front_matter(text, problems)
    ok = ok and fm_ok

    collector = _Collector(site_url, post_url)
    source_url: str | None = None
    for key in source_keys:
        value = front_matter.get(key)
        values = value if isinstance(value, list) else [value]
        for item in values:
            if item is None or isinstance(item, dict | list) or not str(item).strip():
                continue
            occurrence = collector.add(
                str(item),
                kind=Kind.SOURCE.value,
                line=_key_line(fm_lines, key),
                text=_collapse(str(front_matter.get("title") or "")),
                element=f"front-matter:{key}",
            )
            if source_url is None:
                source_url = occurrence.url

    body_offset = 0
    if body_start:
        body_offset = _nth_line_offset(text, body_start)
    body = text[body_offset:]
    first_line = body_start + 1
    blocks = list(_split_body(body))
    markdown = _blank_out(body, blocks)
    # The title link is the first link of the first block that is not an HTML comment.
    first_block_start = _first_content_offset(body)
    title_first = not any(start <= first_block_start < max(end, start + 1) for start, end in blocks)
    _markdown_links(collector, markdown, first_line, title_first)
    for start, end in blocks:
        _html_links(collector, body[start:end], first_line + body.count("\n", 0, start))
    collector.occurrences.sort(key=lambda o: o.line)

    title = front_matter.get("title")
    date_value = front_matter.get("date")
    titles = [o for o in collector.occurrences if o.kind == Kind.SOURCE and o.element == "md-link"]
    if source_url is None and titles:
        source_url = titles[0].url
    return ParsedPost(
        title=None if title is None else str(title),
        date=None if date_value is None else str(date_value),
        source_url=source_url,
        front_matter=front_matter,
        occurrences=collector.occurrences,
        problems=problems,
        ok=ok,
    )


def _nth_line_offset(text: str, index: int) -> int:
    """Offset of the 0-based line ``index``."""
    pos = 0
    for _ in range(index):
        nxt = text.find("\n", pos)
        if nxt == -1:
            return len(text)
        pos = nxt + 1
    return pos


_LEADING_COMMENTS = re.compile(r"(?:\s*<!--.*?-->)*\s*", re.DOTALL)


def _first_content_offset(body: str) -> int:
    """Offset of the first thing in the body that is neither blank nor an HTML comment."""
    m = _LEADING_COMMENTS.match(body)
    return m.end() if m else 0
