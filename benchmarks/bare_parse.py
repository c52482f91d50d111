"""The floor of a scan: parse every post with the same libraries, and nothing else.

For each ``_posts/*.md`` file of a site: read it, decode UTF-8, split and load the front
matter with python-frontmatter (PyYAML's C loader, as linkkeeper uses), parse the body
with markdown-it-py (CommonMark, raw HTML allowed, as linkkeeper configures it) and with
selectolax's Lexbor parser, and pick the raw link attribute values (``href``, ``src``,
``srcset``, ``data-src``, ...) of the link-bearing tags plus the Markdown link
destinations. No URL normalisation, no classification, no storage: what any link scanner
built on these libraries must at least do. linkkeeper's scan is measured against it in
the same run (``bench_scan_real.py``).

    python benchmarks/bare_parse.py SITE      # prints {"posts": N, "links": M} as JSON
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import frontmatter
from markdown_it import MarkdownIt
from selectolax.lexbor import LexborHTMLParser

LINK_ATTRIBUTES = {
    "a": ("href",),
    "img": ("src", "srcset", "data-src", "data-original"),
    "iframe": ("src",),
    "source": ("src", "srcset"),
    "video": ("src", "poster"),
    "audio": ("src",),
    "embed": ("src",),
    "object": ("data",),
    "script": ("src",),
    "link": ("href",),
    "meta": ("content",),
}


def markdown_parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": True, "linkify": False})
    md.normalizeLink = lambda url: url  # type: ignore[method-assign]
    md.validateLink = lambda url: True  # type: ignore[method-assign]
    return md


def parse_one(data: bytes, md: MarkdownIt) -> list[str]:
    """The raw link values of one post file."""
    text = data.decode("utf-8", "replace")
    post = frontmatter.loads(text)
    links = [str(v) for k, v in post.metadata.items() if k == "from" and v]
    for token in md.parse(post.content):
        for child in token.children or ():
            if child.type in ("link_open", "image") and child.attrs:
                value = child.attrs.get("href") or child.attrs.get("src")
                if value:
                    links.append(str(value))
    tree = LexborHTMLParser(post.content)
    for tag, names in LINK_ATTRIBUTES.items():
        for node in tree.tags(tag):
            attributes = node.attributes
            links.extend(value for name in names if (value := attributes.get(name)))
    return links


def parse_site(site: Path) -> dict[str, int]:
    md = markdown_parser()
    posts = links = 0
    for entry in sorted(os.scandir(site / "_posts"), key=lambda e: e.name):
        if not entry.name.endswith((".md", ".markdown", ".html")):
            continue
        with open(entry.path, "rb") as handle:
            links += len(parse_one(handle.read(), md))
        posts += 1
    return {"posts": posts, "links": links}


if __name__ == "__main__":
    print(json.dumps(parse_site(Path(sys.argv[1]))))
