"""Rewriting one link in a post's bytes, and nothing else.

A post is decoded (UTF-8, else GB18030, keeping undecodable bytes with
``surrogateescape``) only to *find* the link; the new file is spliced from the
original bytes, so every byte outside the link's own span — BOM, CRLF, other
encodings, odd front matter — stays as it was. Before each edit the bytes at the
place the scan recorded (occurrences.line) are read again and must still hold
the link as written; otherwise the edit is skipped.

What an edit looks like (Robust Links, https://robustlinks.mementoweb.org/):
HTML ``a``/``img`` get the archived URL plus ``data-originalurl``,
``data-versionurl`` and ``data-versiondate``; a Markdown link gets the archived
URL, or with ``robust="html"`` becomes an HTML link with those attributes; a
front-matter source keeps its URL and gains an archived-copy key on the next line.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

BOM = b"\xef\xbb\xbf"
_LINE_END = re.compile(r"\r\n|\r|\n")
_TAG = re.compile(r"<(a|img)\b[^>]*>", re.IGNORECASE | re.DOTALL)
_ATTR = re.compile(r"""\s([A-Za-z_:][-\w:.]*)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s"'=<>`]+))?""")
# occurrence element -> (tag, attribute, a srcset list?)
HTML_ELEMENTS = {
    "a": ("a", "href", False),
    "img": ("img", "src", False),
    "img-data-src": ("img", "data-src", False),
    "img-data-lazy-src": ("img", "data-lazy-src", False),
    "img-data-original": ("img", "data-original", False),
    "img-srcset": ("img", "srcset", True),
    "img-data-srcset": ("img", "data-srcset", True),
    "img-data-lazy-srcset": ("img", "data-lazy-srcset", True),
}


@dataclass(frozen=True, slots=True)
class Site:
    """Where one occurrence is: from the scan's `occurrences` row."""

    line: int
    element: str
    original: str  # the link as written (HTML: raw attribute text)


@dataclass(frozen=True, slots=True)
class Replacement:
    """The archived copy to point at."""

    url: str  # absolute replay URL
    date: str  # YYYY-MM-DD


@dataclass(frozen=True, slots=True)
class Span:
    """Characters [start, end) of the decoded text become `new`."""

    start: int
    end: int
    new: str


class Skip(Exception):
    """This occurrence cannot be rewritten safely; the message says why."""


class Covered(Skip):
    """This occurrence shares bytes another edit of the same plan already rewrites."""


class PostText:
    """A post's bytes and the decoded text used to find links in them."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.encoding = _encoding(data)
        self.text = data.decode(self.encoding, "surrogateescape")
        self.line_starts = [0] + [m.end() for m in _LINE_END.finditer(self.text)]

    def line_span(self, line: int) -> tuple[int, int]:
        """Text offsets of 1-based `line` without its line ending."""
        if not 1 <= line <= len(self.line_starts):
            raise Skip(f"line {line} is past the end of the post")
        start = self.line_starts[line - 1]
        m = _LINE_END.search(self.text, start)
        return start, m.start() if m else len(self.text)

    def encode(self, text: str) -> bytes:
        return text.encode(self.encoding, "surrogateescape")

    def byte_offset(self, pos: int) -> int:
        return len(self.encode(self.text[:pos]))

    def apply(self, spans: list[Span]) -> bytes:
        """Splice the spans into the original bytes; everything between is copied verbatim."""
        out: list[bytes] = []
        last = 0
        for span in sorted(spans, key=lambda s: s.start):
            b_start, b_end = self.byte_offset(span.start), self.byte_offset(span.end)
            if b_start < last:
                raise Skip("two edits overlap")
            out.append(self.data[last:b_start])
            out.append(self.encode(span.new))
            last = b_end
        out.append(self.data[last:])
        return b"".join(out)


def _encoding(data: bytes) -> str:
    body = data[3:] if data.startswith(BOM) else data
    for enc in ("utf-8", "gb18030"):
        try:
            body.decode(enc)
        except UnicodeDecodeError:
            continue
        return enc  # a BOM stays in the text as U+FEFF: its bytes are spliced like any other
    return "utf-8"


def robust_attrs(original: str, rep: Replacement, quote: str = '"') -> str:
    """The three Robust Links attributes; `original` is written as the file had it."""
    q = quote
    return (f" data-originalurl={q}{original}{q} data-versionurl={q}{html.escape(rep.url)}{q}"
            f" data-versiondate={q}{rep.date}{q}")


def find_edit(post: PostText, site: Site, rep: Replacement, taken: list[Span], *,
              robust: str = "url", archived_key: str = "archived") -> Span:
    """The span that rewrites this occurrence; raises Skip when it is not safe."""
    if site.element in HTML_ELEMENTS:
        return _html_edit(post, site, rep, taken)
    if site.element in ("md-link", "md-image", "autolink"):
        return _markdown_edit(post, site, rep, taken, robust)
    if site.element.startswith("front-matter:"):
        return _front_matter_edit(post, site, rep, archived_key)
    raise Skip(f"{site.element} links are not rewritten")


def _free(span: tuple[int, int], taken: list[Span]) -> bool:
    return all(span[1] <= t.start or span[0] >= t.end for t in taken)


def _html_edit(post: PostText, site: Site, rep: Replacement, taken: list[Span]) -> Span:
    """The attribute value (or srcset candidate) holding the link, in the tag the scan saw
    start on this line. The element's own link (a href, img src) also gains Robust Links
    attributes; lazy-loading copies and srcset candidates only get the new URL."""
    tag_name, wanted_attr, srcset = HTML_ELEMENTS[site.element]
    line_start, line_end = post.line_span(site.line)
    for tag in _TAG.finditer(post.text, line_start):
        if tag.start() > line_end:
            break
        if tag.group(1).lower() != tag_name:
            continue
        attrs = {m.group(1).lower(): m for m in _ATTR.finditer(tag.group(0))}
        attr = attrs.get(wanted_attr)
        if attr is None or attr.group(2) is None:
            continue
        raw = attr.group(2)
        quote = raw[0] if raw[0] in "\"'" else '"'
        inner = 1 if raw[0] in "\"'" else 0
        value = raw[inner:len(raw) - inner]
        offset = tag.start() + attr.start(2) + inner
        if srcset:
            m = re.search(r"(?:^|,)\s*(" + re.escape(site.original) + r")(?=[\s,]|$)", value)
            span = (offset + m.start(1), offset + m.end(1)) if m else None
            if span and _free(span, taken):
                return Span(*span, html.escape(rep.url).replace(",", "%2C"))
            continue
        if value != site.original:
            continue
        start, end = tag.start() + attr.start(2), tag.start() + attr.end(2)
        if not _free((start, end), taken):
            continue
        new = f"{quote}{html.escape(rep.url)}{quote}"
        if wanted_attr in ("href", "src"):
            if "data-versionurl" in attrs:
                raise Skip("already carries a Robust Links data-versionurl")
            new += robust_attrs(value, rep, quote)
            return _with_lazy_copies(tag, attrs, Span(start, end, new), raw, rep)
        return Span(start, end, new)
    raise Skip(f"<{tag_name} {wanted_attr}=…> with this URL is no longer on line {site.line}")


_LAZY = ("data-src", "data-lazy-src", "data-original")


def _with_lazy_copies(tag: re.Match[str], attrs: dict[str, re.Match[str]], span: Span,
                      raw: str, rep: Replacement) -> Span:
    """An img's lazy-loading attributes holding the very same URL as its src (the scan
    records that link once) change with it, or a lazy loader would put the dead URL back."""
    same = sorted((tag.start() + a.start(2), tag.start() + a.end(2)) for name, a in attrs.items()
                  if name in _LAZY and a.group(2) == raw)
    if not same or same[0][0] < span.end:
        return span
    text = tag.string
    parts, pos = [span.new], span.end
    for start, end in same:
        quote = raw[0] if raw[0] in "\"'" else '"'
        parts += [text[pos:start], f"{quote}{html.escape(rep.url)}{quote}"]
        pos = end
    return Span(span.start, pos, "".join(parts))


def _markdown_edit(post: PostText, site: Site, rep: Replacement, taken: list[Span],
                   robust: str) -> Span:
    line_start, line_end = post.line_span(site.line)
    line = post.text[line_start:line_end]
    if site.element == "autolink":
        needle = f"<{site.original}>"
        for m in re.finditer(re.escape(needle), line):
            span = (line_start + m.start() + 1, line_start + m.end() - 1)
            if _free(span, taken):
                return Span(*span, rep.url)
        raise Skip(f"the autolink is no longer on line {site.line}")
    pattern = re.compile(r"\]\(\s*(<?)" + re.escape(site.original) + r"(>?)(?=[\s)])")
    for m in pattern.finditer(line):
        start = line_start + m.start(1)
        end = line_start + m.end(2)
        if not _free((start, end), taken):
            continue
        if robust == "html" and site.element == "md-link":
            return _markdown_to_html(post, line_start, line, m, site, rep)
        new = f"<{rep.url}>" if m.group(1) else markdown_url(rep.url)
        return Span(start, end, new)
    return _reference_edit(post, site, rep, taken)


def _reference_edit(post: PostText, site: Site, rep: Replacement, taken: list[Span]) -> Span:
    """A reference link (`[text][id]` … `[id]: url`): the one definition holding the URL."""
    pattern = re.compile(r"(?m)^[ ]{0,3}\[[^\]\n]+\]:[ \t]*(<?)" + re.escape(site.original)
                         + r"(>?)(?=[ \t]|\r?$)")
    found = [m for m in pattern.finditer(post.text)]
    if len(found) != 1:
        raise Skip(f"the Markdown link is no longer on line {site.line}")
    m = found[0]
    if not _free((m.start(1), m.end(2)), taken):
        raise Covered("its reference definition is rewritten once for every use")
    new = f"<{rep.url}>" if m.group(1) else markdown_url(rep.url)
    return Span(m.start(1), m.end(2), new)


def markdown_url(url: str) -> str:
    """A link destination Markdown reads back whole: no spaces or parentheses left bare."""
    return url.replace(" ", "%20").replace("(", "%28").replace(")", "%29")


def _markdown_to_html(post: PostText, line_start: int, line: str, m: re.Match[str],
                      site: Site, rep: Replacement) -> Span:
    """`[text](url "title")` -> `<a href=… data-…>text</a>` (text stays Markdown: kramdown
    parses it inside span HTML)."""
    depth, i = 0, m.start() - 1
    while i >= 0:
        if line[i] == "]" and (i == 0 or line[i - 1] != "\\"):
            depth += 1
        elif line[i] == "[" and (i == 0 or line[i - 1] != "\\"):
            if depth == 0:
                break
            depth -= 1
        i -= 1
    close = line.find(")", m.end())
    if i < 0 or close < 0 or (i > 0 and line[i - 1] == "!"):
        raise Skip("the Markdown link's text or end cannot be found on its line")
    text = line[i + 1:m.start()]
    title = re.match(r"""\s+(?:"([^"]*)"|'([^']*)')\s*$""", line[m.end():close])
    title_attr = f' title="{html.escape(title.group(1) or title.group(2) or "")}"' if title else ""
    new = (f'<a href="{html.escape(rep.url)}"{title_attr}'
           f"{robust_attrs(html.escape(site.original), rep)}>{text}</a>")
    return Span(line_start + i, line_start + close + 1, new)


def _front_matter_edit(post: PostText, site: Site, rep: Replacement, key: str) -> Span:
    name = site.element.split(":", 1)[1]
    line_start, line_end = post.line_span(site.line)
    line = post.text[line_start:line_end]
    m = re.match(rf"{re.escape(name)}\s*:\s*(.*)$", line)
    if m is None or site.original not in m.group(1):
        raise Skip(f"front matter line {site.line} no longer reads `{name}: …` with this URL")
    fm_end = _front_matter_end(post)
    if re.search(rf"(?m)^{re.escape(key)}\s*:", post.text[:fm_end]):
        raise Skip(f"the front matter already has `{key}:`")
    following = post.text[line_end:line_end + 200].lstrip("\r\n")[:1]
    if following in (" ", "\t") or m.group(1).strip() in ("|", ">", "|-", ">-"):
        raise Skip(f"front matter `{name}:` continues on the next line")
    eol_match = _LINE_END.match(post.text, line_end)
    eol = eol_match.group(0) if eol_match else "\n"
    return Span(line_end, line_end, f"{eol}{key}: {rep.url}")


_FM_CLOSE = re.compile(r"^(?:---|\.\.\.)[ \t]*\r?$", re.MULTILINE)


def _front_matter_end(post: PostText) -> int:
    m = _FM_CLOSE.search(post.text, 4)
    return m.start() if m else 0
