"""Links of raw HTML (selectolax's Lexbor parser), with the exact line of each.

Each start tag of interest gets a position attribute before parsing (``markup.py``), so the line is
exact even when the parser moves elements (tables), and an element's raw attribute
text (``original``) is read back from the source. Each link element has its handler
in `_HANDLERS` (tag → function); where the element sits (a list of stories, a
comments section, a picture or video) comes from `_context`.

Comment spam: old posts mirror a whole page including its comments (hundreds of spam
links). They are links in the post, so they are recorded, but links inside a
recognisable comments section (``#comments``, ``.comment-wrapper``, ``.commentlist``,
``#disqus_thread`` …) are always ``inline`` and carry ``in_comments=True``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from selectolax.lexbor import LexborHTMLParser, LexborNode

from linkkeeper.extract.links import Collector, Problem, collapse
from linkkeeper.extract.markup import MANY_TAGS, POS_ATTR, mark_positions, nesting_too_deep
from linkkeeper.urls import UrlInfo, is_image_key, parse_srcset
from linkkeeper.vocab import Kind

__all__ = ["html_links"]

_TAG_NAME = re.compile(r"<[A-Za-z][^\s/>]*")
_ATTR_AT = re.compile(
    r"""[\s/]*([^\s/>=][^\s/>=]*|=[^\s/>=]*)?(?:\s*=\s*(?:"([^"]*)"?|'([^']*)'?|([^\s>]*)))?"""
)
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


class _LineIndex:
    """Offset -> 1-based file line for one chunk of text: the newlines before the offset,
    counted from the last offset asked for (elements are asked for in document order, so
    a chunk is counted through about once, in C, instead of indexing every line first)."""

    def __init__(self, text: str, first_line: int) -> None:
        self.text = text
        self.at = 0  # the last offset asked for
        self.line_at = first_line  # its line

    def line(self, offset: int) -> int:
        offset = max(offset, 0)
        at = self.at
        if offset >= at:
            self.line_at += self.text.count("\n", at, offset)
        else:
            self.line_at -= self.text.count("\n", offset, at)
        self.at = offset
        return self.line_at


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
            item_text = collapse(item.text(deep=True))
            link_text = sum(len(collapse(a.text(deep=True))) for a in links)
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
    hinted: bool,
    lists: dict[int, bool],
    places: dict[int, _Place],
) -> _Place:
    """The `_Place` of ``node``: what its ancestors say. ``places`` remembers the answer for
    every ancestor walked (by mem_id), so siblings and cousins stop at the first shared
    one. Only ancestors can start a node's section, so their class and id are read here,
    once each, and only when the chunk names a section at all (``hinted``)."""
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
        section = None
        if hinted and tag[:1] != "-":  # not the document node
            attrs = ancestor.attributes
            if "class" in attrs or "id" in attrs:
                section = _section_mark(attrs)
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


def html_links(collector: Collector, html: str, first_line: int) -> None:
    """Record every link of one chunk of raw HTML; ``first_line`` is its first file line."""
    first = html.find("<")
    if first == -1 or (html.startswith("<!", first) and html.find("<", first + 1) == -1):
        return  # no markup, or only a comment (the "<!--…-->" line most posts start with)
    if html.count("<") > MANY_TAGS and (depth := nesting_too_deep(html)):
        collector.problems.append(Problem(
            first_line, f"HTML nested {depth:,} levels deep: too costly to parse, this block's"
            " links are not read"))
        return
    tree = LexborHTMLParser(mark_positions(html))
    # Can the chunk have comment or related-story sections at all (a class or id naming
    # one)? Only then are the ancestors of every link element read (`_context`).
    hinted = any(hint in html for hint in _SECTION_HINTS)
    lists: dict[int, bool] = {}  # ul/ol by mem_id: a list of stories?
    places: dict[int, _Place] = {}  # elements by mem_id: what their ancestors say
    el = _Element(collector, _LineIndex(html, first_line))  # one per chunk, set per element
    root = tree.root
    for node in root.traverse() if root is not None else ():
        tag = node.tag
        entry = _HANDLERS.get(tag)  # type: ignore[arg-type]
        if entry is None:
            continue
        needed, handler = entry
        attrs = node.attributes
        if needed is not None and needed not in attrs:
            continue
        el.tag_line, el.raw = _tag_source(html, attrs, el.lines, first_line)
        el.node, el.tag, el.attrs = node, tag, attrs  # type: ignore[assignment]
        # the ancestor walk only matters for links (story lists), <source> (picture or
        # video) and when the chunk has comment or related sections
        el.place = (
            _context(node, hinted, lists, places)
            if hinted or tag in ("a", "area", "source")
            else _NOWHERE
        )
        handler(el)


def _tag_source(
    html: str, attrs: dict[str, str | None], lines: _LineIndex, first_line: int
) -> tuple[int, dict[str, tuple[str, int]] | None]:
    """(line of the start tag, its attributes as written or None when the parser's values
    are exactly what is written)."""
    pos_text = attrs.get(POS_ATTR)
    if pos_text is None or not pos_text.isdigit():
        return first_line, None  # an element the parser made up: no position, no raw text
    pos = int(pos_text)
    end = html.find(">", pos)
    if (
        end != -1
        and html.find("&", pos, end) == -1
        and html.find("\n", pos, end) == -1
        and not any(">" in value for value in attrs.values() if value)
    ):
        # one-line tag without character references: no need to re-read the tag
        return lines.line(pos), None
    return lines.line(pos), _raw_attributes(html, pos)


@dataclass(slots=True)
class _Element:
    """The element a handler reads: one per chunk of HTML, its fields set per element."""

    collector: Collector
    lines: _LineIndex
    tag_line: int = 0
    raw: dict[str, tuple[str, int]] | None = None
    node: LexborNode = None  # type: ignore[assignment]
    tag: str = ""
    attrs: dict[str, str | None] = None  # type: ignore[assignment]
    place: _Place = field(default_factory=lambda: _NOWHERE)

    def value(self, name: str) -> tuple[str, int, int] | None:
        """(the attribute as written, its line, its offset or -1), None when absent/empty."""
        decoded = self.attrs.get(name)
        if decoded is None:
            return None
        written = self.raw.get(name) if self.raw is not None else None
        if written is None:  # the decoded value is the written one (or all we have)
            text, line, offset = decoded, self.tag_line, -1
        else:
            text, offset = written
            line = self.lines.line(offset)
        if not text.strip():
            return None
        return text, line, offset

    def candidates(self, value: tuple[str, int, int], is_srcset: bool) -> list[tuple[str, int]]:
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
                found.append((candidate, self.lines.line(offset + at)))
            else:
                found.append((candidate, line))
        return found

    def add(
        self, raw: str, kind: Kind, line: int, text: str, element: str, info: UrlInfo | None = None
    ) -> None:
        self.collector.add(
            raw,
            kind=kind.value,
            line=line,
            text=text,
            element=element,
            in_comments=self.place.in_comments,
            info=info,
        )

    def add_candidates(
        self, attributes: tuple[tuple[str, str, bool], ...], kind: Kind, text: str
    ) -> None:
        """Each URL of these (attribute, element, is srcset) once, in order."""
        seen: set[str] = set()
        for name, element, is_srcset in attributes:
            value = self.value(name)
            if value is None:
                continue
            for candidate, line in self.candidates(value, is_srcset):
                info = self.collector.resolve(candidate)
                if info.url in seen:
                    continue
                seen.add(info.url)
                self.add(candidate, kind, line, text, element, info)


# --------------------------------------------------------------------------- handlers


def _anchor(el: _Element) -> None:
    """``a`` and ``area``: image, related or inline, by target and place."""
    value = el.value("href")
    if value is None:
        return
    tag, attrs, place = el.tag, el.attrs, el.place
    text = collapse(el.node.text(deep=True)) if tag == "a" else ""
    if not text:
        img = _first_img_with_alt(el.node) if tag == "a" else None
        text = collapse((img.attributes.get("alt") or "") if img else "") or collapse(
            attrs.get("title") or attrs.get("alt") or ""
        )
    info = el.collector.resolve(value[0])
    if is_image_key(info):
        kind = Kind.IMAGE
    elif place.in_comments:
        kind = Kind.INLINE
    elif place.in_story_list or place.in_related_section:
        kind = Kind.RELATED
    else:
        kind = Kind.INLINE
    el.add(value[0], kind, value[1], text, tag, info)


def _img(el: _Element) -> None:
    """``img``: src, srcset and the lazy-loading attributes, each URL once."""
    text = collapse(el.attrs.get("alt") or el.attrs.get("title") or "")
    el.add_candidates(_IMG_ATTRS, Kind.IMAGE, text)


def _source(el: _Element) -> None:
    """``source``: an embed inside video/audio, an image inside picture."""
    kind = Kind.EMBED if el.place.media in ("video", "audio") else Kind.IMAGE
    el.add_candidates(_SOURCE_ATTRS, kind, "")


def _media(el: _Element) -> None:
    """``video``/``audio``: the src is an embed, the poster an image."""
    text = collapse(el.attrs.get("title") or "")
    value = el.value("src")
    if value is not None:
        el.add(value[0], Kind.EMBED, value[1], text, el.tag)
    poster = el.value("poster")
    if poster is not None:
        el.add(poster[0], Kind.IMAGE, poster[1], text, f"{el.tag}-poster")


def _embed(el: _Element) -> None:
    """``iframe``, ``embed``, ``script``, ``track``, ``object``: embeds."""
    tag = el.tag
    value = el.value("data" if tag == "object" else "src")
    element = tag
    if value is None and tag == "iframe":  # lazy-loaded embeds keep the real URL here
        value = el.value("data-src") or el.value("data-lazy-src")
        element = "iframe-data-src"
    if value is not None:
        text = collapse(el.attrs.get("title") or el.attrs.get("label") or "")
        el.add(value[0], Kind.EMBED, value[1], text, element)


def _link(el: _Element) -> None:
    """``link``: icons are images, other links inline; preconnect hints are not links."""
    rels = set((el.attrs.get("rel") or "").lower().split())
    if rels & _SKIP_REL:
        return
    value = el.value("href")
    if value is not None:
        kind = Kind.IMAGE if any("icon" in r for r in rels) else Kind.INLINE
        el.add(value[0], kind, value[1], collapse(el.attrs.get("title") or ""), "link")


def _meta(el: _Element) -> None:
    """``meta``: og/twitter images and videos, page URLs, and refresh targets."""
    attrs = el.attrs
    prop = (attrs.get("property") or attrs.get("name") or "").lower()
    content = el.value("content")
    if content is None:
        return
    if prop in _META_IMAGE or prop in _META_EMBED:
        kind = Kind.IMAGE if prop in _META_IMAGE else Kind.EMBED
        el.add(content[0], kind, content[1], "", "meta")
    elif prop in ("og:url", "twitter:url"):
        el.add(content[0], Kind.INLINE, content[1], "", "meta")
    elif (attrs.get("http-equiv") or "").lower() == "refresh":
        m = _REFRESH_URL.search(content[0])
        if m:
            el.add(m.group(1), Kind.INLINE, content[1], "", "meta-refresh")


def _cite(el: _Element) -> None:
    """``blockquote``/``q``: the quoted page."""
    value = el.value("cite")
    if value is not None:
        el.add(value[0], Kind.INLINE, value[1], "", f"{el.tag}-cite")


_SOURCE_ATTRS = (("src", "source", False), ("srcset", "source-srcset", True))
_REFRESH_URL = re.compile(r"url\s*=\s*['\"]?([^'\"]+)", re.IGNORECASE)

# The elements that can hold links: the attribute each needs to be worth reading (the CSS
# selector "a[href], area[href], img, source, ...") and its handler. The tree is walked
# rather than searched with a selector: Lexbor builds a CSS parser per document, which
# costs more than parsing a post's HTML.
_HANDLERS: dict[str, tuple[str | None, Callable[[_Element], None]]] = {
    "a": ("href", _anchor),
    "area": ("href", _anchor),
    "img": (None, _img),
    "source": (None, _source),
    "video": (None, _media),
    "audio": (None, _media),
    "iframe": (None, _embed),
    "embed": ("src", _embed),
    "object": ("data", _embed),
    "script": ("src", _embed),
    "track": ("src", _embed),
    "link": ("href", _link),
    "meta": ("content", _meta),
    "blockquote": ("cite", _cite),
    "q": ("cite", _cite),
}
