"""What a page says, as a small comparable fingerprint: decoding, main text, shingles, sketches.

Used twice: soft-404 detection compares a link's page with the page a
certainly-nonexistent URL gets (soft404.py), and drift detection compares a
page with the first and the previous fingerprint stored in the history.

Decoding follows the browser's order (BOM, HTTP header, ``<meta charset>``)
but checks each declared encoding against the bytes, because news sites
mislabel pages (a ``utf-8`` header on a GBK body is common); undeclared or
mislabelled bodies go to UTF-8, then charset-normalizer. Labels map the way
WHATWG maps them: GB2312/GBK are decoded as GB18030 (their superset) and Big5
as Big5-HKSCS, so no character a real page uses is lost.

Main text: selectolax (Lexbor) drops scripts, navigation, headers, footers,
asides, forms, ``<time>`` and elements whose class/id names boilerplate (menu,
share, related, byline, date, counter, ad...), then keeps the largest
``article``/``main`` candidate. Tokens are letter runs, lower-cased; every CJK
character is a token of its own (Chinese has no spaces); digits are dropped,
so a date, a view counter or a revision number never reads as new content.

Similarity: w-shingles (w = 3 tokens) compared by Jaccard, estimated with a
bottom-k MinHash sketch (the k smallest 32-bit hashes of the shingle set;
Broder 1997, Cohen & Kaplan 2007). One hash per shingle keeps it cheap, the
estimate is unbiased with a standard error of about sqrt(J(1-J)/k), and the
score is graded, which a drift threshold needs. SimHash was the alternative:
it is built to answer "near-duplicate or not" at a few bits of Hamming
distance and gives a poor graded score on short texts such as error pages.
"""

from __future__ import annotations

import base64
import codecs
import hashlib
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from charset_normalizer import from_bytes
from selectolax.lexbor import LexborHTMLParser, LexborNode

SHINGLE = 3  # tokens per shingle
SKETCH_SIZE = 64  # hashes kept: 256 bytes a fingerprint, +-0.06 at J = 0.5
FORMAT = "bk1"  # serialisation tag: bottom-k, 32-bit blake2b hashes

# What WHATWG decodes each legacy label as (Python's own codecs are narrower).
_ENCODING_ALIASES = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "gb_2312": "gb18030",
    "gb_2312-80": "gb18030",
    "x-gbk": "gb18030",
    "chinese": "gb18030",
    "csgb2312": "gb18030",
    "iso-ir-58": "gb18030",
    "big5": "big5hkscs",
    "big5-hkscs": "big5hkscs",
    "cn-big5": "big5hkscs",
    "x-x-big5": "big5hkscs",
    "csbig5": "big5hkscs",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    "x-sjis": "shift_jis",
}
_HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?([\w.:-]+)", re.IGNORECASE)
_META_CHARSET = re.compile(
    rb"<meta[^>]+charset\s*=\s*[\"']?\s*([\w.:-]+)", re.IGNORECASE
)
_DROP_TAGS = (
    "script, style, noscript, template, svg, iframe, form, nav, header, footer, aside,"
    " button, select, time, figure figcaption"
)
# class/id words that name page furniture rather than the article
_BOILERPLATE_WORDS_TEXT = (
    "nav navbar navigation menu breadcrumb breadcrumbs footer header masthead sidebar widget"
    " ad ads advert adverts advertisement sponsor sponsored promo banner share sharing social"
    " comment comments related recommended popular trending cookie cookies consent subscribe"
    " newsletter byline dateline date timestamp updated counter views pageviews hits tags"
    " pagination pager toolbar skip"
)
_BOILERPLATE_WORDS = frozenset(_BOILERPLATE_WORDS_TEXT.split())
_MAIN_CANDIDATES = "article, main, [role=main], [itemprop=articleBody]"
_CJK = (
    "\u3040-\u30ff"  # Hiragana, Katakana
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # CJK ideographs
    "\uac00-\ud7af"  # Hangul syllables
)
_TOKEN = re.compile(rf"[{_CJK}]|[^\W\d_{_CJK}]+")
_ASCII_TOKEN = re.compile(r"[a-z]+")  # the same tokens for ASCII text, four times faster


# -- decoding -------------------------------------------------------------------------------


def python_encoding(label: str | None) -> str | None:
    """The codec to decode a declared charset with (WHATWG's mapping), or None if unknown."""
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    name = _ENCODING_ALIASES.get(label, label)
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def header_charset(content_type: str | None) -> str | None:
    match = _HEADER_CHARSET.search(content_type or "")
    return match.group(1) if match else None


def meta_charset(body: bytes) -> str | None:
    """The charset a page declares in its first 4 KB (``<meta charset>`` or http-equiv)."""
    match = _META_CHARSET.search(body[:4096])
    return match.group(1).decode("ascii", "replace") if match else None


def _decodes(body: bytes, encoding: str) -> str | None:
    """The text if `body` is valid in `encoding`; a character cut at the end is forgiven."""
    try:
        return body.decode(encoding)
    except UnicodeDecodeError as error:
        if error.start >= len(body) - 4:  # the sample was cut mid-character
            try:
                return body[: error.start].decode(encoding)
            except UnicodeDecodeError:
                return None
        return None
    except LookupError:
        return None


def decode_html(body: bytes, content_type: str | None = None) -> tuple[str, str]:
    """(text, encoding used): BOM, then declared charsets that fit the bytes, then detection."""
    for bom, encoding in (
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    ):
        if body.startswith(bom):
            return body[len(bom) :].decode(encoding, "replace"), encoding
    declared = [python_encoding(header_charset(content_type)), python_encoding(meta_charset(body))]
    for encoding in [*dict.fromkeys(e for e in declared if e), "utf-8"]:
        text = _decodes(body, encoding)
        if text is not None:
            return text, encoding
    best = from_bytes(body[:65536]).best()
    encoding = python_encoding(best.encoding if best else None) or declared[0] or "utf-8"
    return body.decode(encoding, "replace"), encoding


# -- main text ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PageText:
    """What a page says, without its furniture."""

    title: str
    heading: str  # the first <h1>
    text: str  # main text, boilerplate removed
    refresh: str | None  # the target of a <meta http-equiv=refresh>, as written
    encoding: str
    # tokens(text), computed once: the drift fingerprint and the soft-404 similarity share them
    words: tuple[str, ...] | None = field(default=None, compare=False, repr=False)

    def tokens(self) -> tuple[str, ...]:
        return self.words if self.words is not None else tuple(tokens(self.text))


def _is_boilerplate(node: LexborNode) -> bool:
    attributes = node.attributes
    names = f"{attributes.get('class') or ''} {attributes.get('id') or ''}".lower()
    if not names.strip():
        return False
    return any(word in _BOILERPLATE_WORDS for word in re.split(r"[\s_-]+", names) if word)


def _refresh_target(tree: LexborHTMLParser) -> str | None:
    for meta in tree.css("meta[http-equiv]"):
        if (meta.attributes.get("http-equiv") or "").strip().lower() != "refresh":
            continue
        content = meta.attributes.get("content") or ""
        match = re.search(r"url\s*=\s*['\"]?([^'\";]*)", content, re.IGNORECASE)
        return match.group(1).strip() if match else ""
    return None


def page_text(body: bytes, content_type: str | None = None) -> PageText:
    """Decode and reduce an HTML page to its title, first heading and main text."""
    html, encoding = decode_html(body, content_type)
    tree = LexborHTMLParser(html)
    title_node = tree.css_first("title")
    title = " ".join(title_node.text().split()) if title_node else ""
    refresh = _refresh_target(tree)
    heading_node = tree.css_first("h1")
    heading = " ".join(heading_node.text().split()) if heading_node else ""
    for node in tree.css(_DROP_TAGS):
        node.decompose()
    for node in tree.css("[class], [id]"):
        if node.tag not in ("html", "body") and _is_boilerplate(node):
            node.decompose()
    candidates = tree.css(_MAIN_CANDIDATES)
    texts = [node.text(separator=" ", strip=True) for node in candidates]
    text = max(texts, key=len) if texts else ""
    if len(text) < 20:  # no marked-up article (or an empty one): the whole cleaned body
        body_node = tree.body
        text = body_node.text(separator=" ", strip=True) if body_node else ""
    text = " ".join(text.split())
    return PageText(title, heading, text, refresh, encoding, tuple(tokens(text)))


# -- shingles and sketches ------------------------------------------------------------------


def tokens(text: str) -> list[str]:
    """Lower-cased letter runs; each CJK character is a token; digits dropped."""
    if text.isascii():  # no CJK, and ASCII's letters are [a-z] once lowered
        return _ASCII_TOKEN.findall(text.lower())
    return _TOKEN.findall(text.lower())


def shingles(text: str, width: int = SHINGLE) -> set[str]:
    return _shingles_of(tokens(text), width)


def _shingles_of(words: Sequence[str], width: int = SHINGLE) -> set[str]:
    if len(words) <= width:
        return {" ".join(words)} if words else set()
    # zip of shifted views: the shingles built at C speed (a page has hundreds)
    return set(map(" ".join, zip(*(words[i:] for i in range(width)), strict=False)))


@lru_cache(maxsize=65536)
def _hash(shingle: str) -> int:
    return int.from_bytes(hashlib.blake2b(shingle.encode(), digest_size=4).digest(), "big")


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """A bottom-k MinHash sketch of a text's shingle set, plus the set's size."""

    hashes: tuple[int, ...]  # sorted, at most SKETCH_SIZE
    size: int  # shingles in the full set
    # the hash of the shingle starting at each word (made from words here, not loaded):
    # what `without` reuses; never stored, never compared
    windows: list[int] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of_text(cls, text: str, k: int = SKETCH_SIZE, *, ignore: frozenset[str] = frozenset()
                ) -> Fingerprint:
        """The sketch of a text; `ignore`: tokens left out (an error page echoing its URL)."""
        words = [w for w in tokens(text) if w not in ignore] if ignore else tokens(text)
        return cls.of_words(words, k)

    @classmethod
    def of_words(cls, words: Sequence[str], k: int = SKETCH_SIZE) -> Fingerprint:
        """The sketch of a text already cut into `tokens`."""
        if len(words) <= SHINGLE:
            hashed = sorted(set(map(_hash, _shingles_of(words))))
            return cls(tuple(hashed[:k]), len(hashed))
        windows = list(map(_hash, map(" ".join, zip(*(words[i:] for i in range(SHINGLE)),
                                                     strict=False))))
        hashed = sorted(set(windows))
        return cls(tuple(hashed[:k]), len(hashed), windows)

    def without(self, words: Sequence[str], ignore: frozenset[str],
                k: int = SKETCH_SIZE) -> Fingerprint:
        """The sketch of `words` (the words this one was made of) leaving out `ignore`.

        Equal to ``of_words`` of the filtered words, but only the shingles that now span a
        gap are hashed anew; every shingle clear of a left-out word is one of `windows`.
        """
        removed = [i for i, word in enumerate(words) if word in ignore]
        if not removed:
            return self
        kept = [word for word in words if word not in ignore]
        windows = self.windows
        if windows is None or len(kept) <= SHINGLE or len(windows) != len(words) - SHINGLE + 1:
            return Fingerprint.of_words(kept, k)
        # the old shingles touching no left-out word, copied run by run
        touched = sorted({i for r in removed for i in range(r - SHINGLE + 1, r + 1)})
        hashed: set[int] = set()
        start = 0
        for i in touched:
            if i >= start:
                hashed.update(windows[start:i])
                start = i + 1
        hashed.update(windows[start:])
        # the new ones: shingles of the kept words across a gap (g: the kept word before it)
        last_start = len(kept) - SHINGLE
        gaps = {r - n - 1 for n, r in enumerate(removed)}
        for j in sorted({j for g in gaps for j in range(g - SHINGLE + 2, g + 1)}):
            if 0 <= j <= last_start:
                hashed.add(_hash(" ".join(kept[j : j + SHINGLE])))
        ordered = sorted(hashed)
        return Fingerprint(tuple(ordered[:k]), len(ordered))

    @property
    def empty(self) -> bool:
        return self.size == 0

    def similarity(self, other: Fingerprint) -> float:
        """Estimated Jaccard similarity of the two shingle sets (1.0 for two empty texts)."""
        if self.empty and other.empty:
            return 1.0
        if self.empty or other.empty:
            return 0.0
        k = max(len(self.hashes), len(other.hashes))
        mine, theirs = set(self.hashes), set(other.hashes)
        union = sorted(mine | theirs)[:k]
        both = len((mine & theirs).intersection(union))
        return both / len(union)

    def dumps(self) -> str:
        """``bk1:<size>:<base64 of big-endian uint32 hashes>`` for the ``fingerprint`` column."""
        packed = struct.pack(f">{len(self.hashes)}I", *self.hashes)
        return f"{FORMAT}:{self.size}:{base64.b64encode(packed).decode('ascii')}"

    @classmethod
    def loads(cls, value: str) -> Fingerprint:
        tag, size, data = value.split(":", 2)
        if tag != FORMAT:
            raise ValueError(f"unknown fingerprint format {tag!r}")
        packed = base64.b64decode(data.encode("ascii"), validate=True)
        if len(packed) % 4:
            raise ValueError("fingerprint hashes are not whole 32-bit words")
        return cls(struct.unpack(f">{len(packed) // 4}I", packed), int(size))


def load_fingerprint(value: str | None) -> Fingerprint | None:
    """A stored fingerprint, or None when absent or unreadable (never fails a run)."""
    if not value:
        return None
    try:
        return Fingerprint.loads(value)
    except (ValueError, struct.error):
        return None


def is_html(content_type: str | None, body: bytes | None = None) -> bool:
    """HTML by its Content-Type, or by its first bytes when the type is missing or generic."""
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    if kind in ("text/html", "application/xhtml+xml"):
        return True
    if kind and kind not in ("application/octet-stream", "text/plain"):
        return False
    head = (body or b"")[:512].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html")) or b"<head" in head or b"<body" in head


def fingerprint_page(body: bytes, content_type: str | None = None) -> tuple[PageText, Fingerprint]:
    """Main text and its fingerprint, from a page's (decoded-transfer) bytes."""
    page = page_text(body, content_type)
    return page, Fingerprint.of_words(page.tokens())
