"""Every link a careful reader would find in one post, with its kind and line.

A post is front matter, then a body that mixes Markdown and raw HTML (in our users'
archives: a ``<!--…-->`` marker, a ``[title](url)`` line, ``------`` and one big HTML
block). ``parse_post`` never raises; bad input becomes a `Problem`.

How a post is read (one module per job)
    ``front_matter.py``  the keys (YAML fast path; TOML and JSON through python-frontmatter)
    ``blocks.py``        the raw HTML blocks of the body, found the way kramdown finds them
    ``html.py``          links of HTML (selectolax), one handler per tag
    ``markup.py``        where its real start tags are (source offsets), and nesting cost
    ``markdown.py``      links of the Markdown around them (markdown-it-py)
    ``links.py``         `Occurrence`, `Problem` and the `Collector` that resolves URLs
    this module          a post → its links: the order of the steps above

Line numbers
    Lines are 1-based in the file (front matter lines count).

Kinds (`linkkeeper.vocab.Kind`)
    ``source``: front matter source keys, and the title link (the first link of the
    body's first block; it becomes the same key as ``from:`` even when one is
    percent-encoded and the other is not). ``image``: ``img`` src/srcset and the
    lazy-loading attributes, ``picture > source``, ``video[poster]``, og/twitter image
    ``meta``, icon ``link``, and any ``a`` whose target is an image file or an image
    proxy. ``embed``: ``iframe``, ``embed``, ``object``, ``script``, ``video``/``audio``
    src and their ``source``/``track``. ``related``: links in a list of stories (a
    ``ul``/``ol`` whose items are mainly one link each, not a share/navigation list).
    ``inline``: everything else. Links in a mirrored page's comments section are
    ``inline`` with ``in_comments=True`` (see ``html.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from linkkeeper.extract.blocks import blank_out, first_content_offset, split_body
from linkkeeper.extract.front_matter import DEFAULT_SOURCE_KEYS, FrontMatter, read_front_matter
from linkkeeper.extract.html import html_links
from linkkeeper.extract.links import Collector, Occurrence, Problem, collapse
from linkkeeper.extract.markdown import markdown_links
from linkkeeper.vocab import Kind

__all__ = [
    "DEFAULT_SOURCE_KEYS",
    "Occurrence",
    "ParsedPost",
    "Problem",
    "parse_post",
]


@dataclass(slots=True)
class ParsedPost:
    title: str | None
    date: str | None
    source_url: str | None
    front_matter: dict[str, Any]
    occurrences: list[Occurrence] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    ok: bool = True


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
        return _parse(data, site_url, tuple(source_keys), post_url, problems)
    except Exception as exc:  # a bug must not stop a scan of thousands of posts
        problems.append(Problem(1, f"internal error while parsing {path or 'post'}: {exc!r}"))
        return ParsedPost(None, None, None, {}, [], problems, ok=False)


def _parse(
    data: bytes | str,
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
    front_matter = read_front_matter(text, problems)
    collector = Collector(site_url, post_url)
    source_url = _source_keys(collector, front_matter, source_keys)
    _body_links(collector, text[front_matter.body_offset :], front_matter.body_line)
    problems.extend(collector.problems)
    collector.occurrences.sort(key=lambda o: o.line)

    fm = front_matter.data
    title, date_value = fm.get("title"), fm.get("date")
    titles = [o for o in collector.occurrences if o.kind == Kind.SOURCE and o.element == "md-link"]
    if source_url is None and titles:
        source_url = titles[0].url
    return ParsedPost(
        title=None if title is None else str(title),
        date=None if date_value is None else str(date_value),
        source_url=source_url,
        front_matter=fm,
        occurrences=collector.occurrences,
        problems=problems,
        ok=ok and front_matter.ok,
    )


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


def _source_keys(
    collector: Collector, front_matter: FrontMatter, source_keys: tuple[str, ...]
) -> str | None:
    """Record the front matter's source links; the first one's URL is the post's source."""
    fm = front_matter.data
    source_url: str | None = None
    for key in source_keys:
        value = fm.get(key)
        values = value if isinstance(value, list) else [value]
        for item in values:
            if item is None or isinstance(item, dict | list) or not str(item).strip():
                continue
            occurrence = collector.add(
                str(item),
                kind=Kind.SOURCE.value,
                line=front_matter.key_line(key),
                text=collapse(str(fm.get("title") or "")),
                element=f"front-matter:{key}",
            )
            if source_url is None:
                source_url = occurrence.url
    return source_url


def _body_links(collector: Collector, body: str, first_line: int) -> None:
    """The Markdown with the HTML blocks blanked out, then each HTML block."""
    blocks = list(split_body(body))
    markdown = blank_out(body, blocks)
    # The title link is the first link of the first block that is not an HTML comment.
    first_block_start = first_content_offset(body)
    title_first = not any(start <= first_block_start < max(end, start + 1) for start, end in blocks)
    markdown_links(collector, markdown, first_line, title_first)
    for start, end in blocks:
        html_links(collector, body[start:end], first_line + body.count("\n", 0, start))
