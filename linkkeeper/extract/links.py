"""What extraction produces (`Occurrence`, `Problem`) and the `Collector` that makes them.

Every reader of a post (front matter, Markdown, HTML) hands raw links to one `Collector`,
which resolves them against the post's bases; kinds are described in ``post.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from linkkeeper.urls import MAX_URL_CHARS, UrlInfo, long_url_key, normalize_url, unwrap_key

__all__ = ["Collector", "Occurrence", "Problem", "collapse"]


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


MAX_TEXT_CHARS = 1000  # of a link's text (anchor, alt, title) kept: a link around a whole page


def collapse(text: str) -> str:
    """Whitespace runs as one space, trimmed (str.split's whitespace is the same as \\s)."""
    return " ".join(text.split())


class Collector:
    """Turns raw links into Occurrences, resolving them against the post's bases; the
    readers leave here the Problems of what they could not read."""

    def __init__(self, site_url: str | None, post_url: str | None) -> None:
        self.site_url = site_url
        self.post_url = post_url
        self.occurrences: list[Occurrence] = []
        self.problems: list[Problem] = []  # what a reader could not read (said, not dropped)

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
            original=_bounded_original(raw if original is None else original),
            kind=kind,
            line=line,
            text=text if len(text) <= MAX_TEXT_CHARS else text[: MAX_TEXT_CHARS - 1] + "…",
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


def _bounded_original(original: str) -> str:
    """The link as written, or its bounded stand-in when it is too long to be a link."""
    return original if len(original) <= MAX_URL_CHARS else long_url_key(original)
