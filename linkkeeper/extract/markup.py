"""Where the real start tags of a chunk of HTML are, read as the HTML tokenizer reads it.

`html.py` gives each start tag of interest its source offset (``POS_ATTR``) before
Lexbor parses the chunk, so lines are exact and raw attribute text can be read back.
Only real start tags may be marked: a ``<img`` inside an attribute value
(``title="<img src=y>"``) is text, and a marker there broke the quoting, losing the
link or leaking the marker into a URL. Also here: whether a chunk nests so deep that
Lexbor's tree building would take hours (`nesting_too_deep`).
"""

from __future__ import annotations

import re

__all__ = ["MANY_TAGS", "POS_ATTR", "mark_positions", "nesting_too_deep"]

POS_ATTR = "data-lk-pos"
_TAGS_OF_INTEREST = frozenset(
    [
        "a", "area", "audio", "blockquote", "embed", "iframe", "img", "link", "meta", "object",
        "q", "script", "source", "track", "video",
    ]
)
# What the HTML tokenizer reads at a '<' (a comment, a bogus comment, or a tag with its
# attributes), so that a '<img' inside an attribute value or a comment is not a tag.
_MARKUP = re.compile(
    r"""<(?:
      !--(?:-?>|.*?--!?>|.*)
    | [!?][^>]*>?
    | /(?![A-Za-z])[^>]*>?
    | (/?)([A-Za-z][^\s/>]*)
      (?:[\s/]+|(?:=[^\s/>=]*|[^\s/>=]+)(?:\s*=\s*(?:"[^"]*"?|'[^']*'?|[^\s>]*))?)*+
      >?
    )""",
    re.DOTALL | re.VERBOSE,
)
_START_OF_INTEREST = re.compile(rf"<({'|'.join(sorted(_TAGS_OF_INTEREST))})(?=[\s/>])", re.I)
# An attribute value with a '<' in it (or text that looks like one): only then can a
# start tag of interest sit inside a value, so only then is the tokenizer needed.
_VALUE_WITH_LT = re.compile(r"""=\s*(?:"[^"<]*<|'[^'<]*<|[^\s"'>]*<)""")
# Elements whose content is text, not markup (noscript is markup: the parser runs
# without scripting): their content runs to the matching end tag.
_RAW_TEXT = {
    name: re.compile(rf"</{name}(?=[\s/>])", re.IGNORECASE)
    for name in ["script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes"]
}

# Lexbor's tree builder walks the stack of open elements at each block start tag (to
# close a <p>), so 20,000 nested <div>s cost 2 s and a 16 MiB post of them hours. A chunk
# with few tags cannot get there; one with many is measured first.
MANY_TAGS = 10_000
_TREE_WORK_LIMIT = 50_000_000  # stack steps, ~0.5 s
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9]*)")
_VOID = frozenset(
    "area base br col embed hr img input link meta param source track wbr".split()  # noqa: SIM905
)
_BLOCK_START = frozenset(
    "address article aside blockquote center dd details dialog dir div dl dt fieldset"  # noqa: SIM905
    " figcaption figure footer form h1 h2 h3 h4 h5 h6 header hgroup li main menu nav ol p"
    " pre section summary table ul".split()
)


def nesting_too_deep(html: str) -> int:
    """The deepest nesting, when walking the stack at every block start tag would take
    more than `_TREE_WORK_LIMIT` steps; else 0."""
    depth = deepest = work = 0
    for m in _TAG.finditer(html):
        name = m.group(2).lower()
        if m.group(1):
            depth -= depth > 0
        elif name not in _VOID:
            if name in _BLOCK_START:
                work += depth
            depth += 1
            deepest = max(deepest, depth)
    return deepest if work > _TREE_WORK_LIMIT else 0


def _value_with_lt(html: str) -> bool:
    """Can a start tag's attribute value in ``html`` hold a '<'? Text like ``a= <b>`` or
    ``&lt;a href=<a ...`` (spam quoted in comments) looks like one to `_VALUE_WITH_LT`.

    Judged at each candidate '=' in order: it is text when a '>' stands between it and the
    last '<' before it, with no quote there that could hide that '>' inside a value. That
    is sound for the first candidate that really is in a tag: a value of that tag holding
    a '<' before it would have been an earlier candidate, so the last '<' is the tag's own
    and any '>' after it sits in a quoted value."""
    pos = 0
    while (m := _VALUE_WITH_LT.search(html, pos)) is not None:
        start = m.start()
        lt = html.rfind("<", 0, start)
        if lt != -1:
            between = html[lt + 1 : start]
            if ">" not in between or '"' in between or "'" in between:
                return True
        pos = start + 1
    return False


def mark_positions(html: str) -> str:
    """The HTML with each start tag of interest given its source offset (``POS_ATTR``).

    Only real start tags are marked, found as the tokenizer finds them: a ``<img``
    inside an attribute value (``title="<img src=y>"``), a comment or a script is text,
    and a marker there would break the quoting and leak into a URL. (In a comment or
    a script a marker is harmless: the parser makes no element of it.)"""
    if not _value_with_lt(html):  # the usual case: one regex pass
        return _START_OF_INTEREST.sub(lambda m: f'{m.group(0)} {POS_ATTR}="{m.start()}"', html)
    out: list[str] = []
    last = 0
    pos = html.find("<")
    while pos != -1:
        m = _MARKUP.match(html, pos)
        if m is None:
            pos = html.find("<", pos + 1)
            continue
        end = m.end()
        name = m.group(2)
        if name is not None and not m.group(1):  # a start tag
            lower = name.lower()
            if lower in _TAGS_OF_INTEREST:
                cut = m.end(2)
                out += (html[last:cut], f' {POS_ATTR}="{pos}"')
                last = cut
            raw = _RAW_TEXT.get(lower)
            if raw is not None:
                close = raw.search(html, end)
                end = close.start() if close else len(html)
        pos = html.find("<", end)
    out.append(html[last:])
    return "".join(out)


