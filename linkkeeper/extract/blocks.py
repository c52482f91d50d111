"""Raw HTML blocks of a post body, found the way kramdown (Jekyll's renderer) finds them.

kramdown treats a block-level HTML tag at the start of a line as raw HTML *up to its
matching end tag*, blank lines and indented lines included. CommonMark would end that
block at the first blank line and turn the indented HTML after it into a code block,
losing hundreds of links in the older posts. So the blocks are cut out here, with exact
offsets (hence exact lines), parsed as HTML by ``html.py`` and blanked out of the text
that ``markdown.py`` reads.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

__all__ = ["blank_out", "first_content_offset", "split_body"]

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


def split_body(body: str) -> Iterator[tuple[int, int]]:
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


def blank_out(body: str, blocks: list[tuple[int, int]]) -> str:
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


_LEADING_COMMENTS = re.compile(r"(?:\s*<!--.*?-->)*\s*", re.DOTALL)


def first_content_offset(body: str) -> int:
    """Offset of the first thing in the body that is neither blank nor an HTML comment."""
    m = _LEADING_COMMENTS.match(body)
    return m.end() if m else 0
