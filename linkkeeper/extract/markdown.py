"""Links of a post's Markdown (markdown-it-py, CommonMark): links, images, autolinks,
reference links, and the HTML that CommonMark leaves inline or in small blocks.

The big kramdown-style HTML blocks are blanked out before (``blocks.py``), lines kept.
Links in code spans, fenced or indented code blocks and HTML comments are not links.
Bare URLs in text are not links either: kramdown does not linkify them, so a reader of
the rendered page cannot click them.
"""

from __future__ import annotations

import re

from markdown_it import MarkdownIt
from markdown_it.token import Token

from linkkeeper.extract.html import html_links
from linkkeeper.extract.links import Collector, Problem, collapse
from linkkeeper.urls import is_image_key
from linkkeeper.vocab import Kind

__all__ = ["markdown_links"]


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
                return collapse("".join(parts)), i + 1
        elif child.type in ("text", "code_inline") or child.type == "image":
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        i += 1
    return collapse("".join(parts)), i


# A heading line "[plain title](url)" underlined with dashes (or alone), nothing else:
# no emphasis, escapes, entities, code or HTML whose rendering would need the parser.
_TITLE_ONLY = re.compile(
    r"\s*\[([^\[\]\\`<>*_&!\n]*)\]\(([^\s()<>\\&]+)\)[ \t]*(?:\n[ \t]{0,3}-+[ \t]*)?\s*"
)


def markdown_links(collector: Collector, markdown: str, first_line: int, title_first: bool) -> None:
    """Links of the Markdown parts (HTML blocks already blanked, lines preserved)."""
    if not any(c in markdown for c in "[<:"):
        return
    if title_first and (m := _TITLE_ONLY.fullmatch(markdown)) is not None:
        # the usual body head (title link over a '------' rule) needs no Markdown parser
        line = first_line + markdown.count("\n", 0, m.start(1))
        text = collapse(m.group(1))
        collector.add(m.group(2), kind=Kind.SOURCE.value, line=line, text=text, element="md-link")
        return
    tokens = _MARKDOWN.parse(markdown)
    _too_deep(collector, tokens, first_line)
    first_block_seen = False
    in_list_item = 0
    for token in tokens:
        if token.type == "list_item_open":
            in_list_item += 1
        elif token.type == "list_item_close":
            in_list_item -= 1
        elif token.type == "html_block":
            if token.map is not None:
                html_links(collector, token.content, first_line + token.map[0])
            if "<!--" not in token.content[:8]:
                first_block_seen = True
        elif token.type == "inline" and token.map is not None:
            is_title_block = title_first and not first_block_seen and not in_list_item
            first_block_seen = True
            _inline_links(
                collector, token, first_line + token.map[0], is_title_block, in_list_item > 0
            )


_MAX_NESTING = _MARKDOWN.options.maxNesting
_CONTAINERS = frozenset(
    {"blockquote_open", "bullet_list_open", "ordered_list_open", "list_item_open"}
)


def _too_deep(collector: Collector, tokens: list[Token], first_line: int) -> None:
    """markdown-it stops reading inside containers nested `_MAX_NESTING` deep (its guard
    against a 100,000-level blockquote): say so instead of losing the links silently."""
    for token in tokens:
        if token.type in _CONTAINERS and token.level >= _MAX_NESTING - 1 and token.map:
            collector.problems.append(Problem(
                first_line + token.map[0],
                f"Markdown nested more than {_MAX_NESTING - 1} levels deep (blockquotes or"
                " lists): links inside are not read",
            ))
            return


def _bracket_depth(text: str) -> int:
    depth = deepest = 0
    escaped = False
    for c in text:
        if escaped:
            escaped = False
        elif c == "\\":
            escaped = True
        elif c == "[":
            depth += 1
            deepest = max(deepest, depth)
        elif c == "]" and depth:
            depth -= 1
    return deepest


def _inline_links(
    collector: Collector, token: Token, line: int, is_title_block: bool, in_list_item: bool
) -> None:
    children = token.children or []
    if token.content.count("[") >= _MAX_NESTING and _bracket_depth(token.content) >= _MAX_NESTING:
        collector.problems.append(Problem(
            line, f"brackets nested {_MAX_NESTING} or more deep: links of this paragraph"
            " after them may not be read"))
    html_parts: list[str] = []
    has_html = False
    current = line
    para_text = collapse(
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
        html_links(collector, "".join(html_parts), line)


def _markdown_image(collector: Collector, token: Token, line: int) -> None:
    src = str(token.attrGet("src") or "")
    text = collapse(token.content) or collapse(str(token.attrGet("title") or ""))
    collector.add(src, kind=Kind.IMAGE.value, line=line, text=text, element="md-image")
