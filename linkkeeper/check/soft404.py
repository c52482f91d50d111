"""Soft 404s: pages that answer 2xx but are error pages, home pages or generic pages.

The method is Bar-Yossef et al.'s ("Sic Transit Gloria Telae", WWW 2004): ask
the same host and directory for a random, certainly-nonexistent URL. A host
that answers it 404 is honest there, and its 2xx answers can be believed. A
host that answers it 2xx (or redirects it) shows us what its "not found"
looks like; a link whose page is near-identical to the probe's (Jaccard of
main-text shingles, fingerprint.py), or that lands where the probe lands, is
a soft 404.

One probe per host+directory per run, shared by every link there (a
`asyncio.Future` per key), so a host with 10,000 links costs a handful of
probes. The directory key generalises digit-only segments (``/2019/05/12/``
-> ``/#/#/#/``): a news site routes every dated directory the same way, and
probing each date would cost a request per day of archive. Probes are asked
once (no retries): they are evidence, not verdicts.

Other signals, each recorded by name in the evidence:

* ``redirect-to-home``: a deep link that ends on a home page (DeadlinkChecker's
  "REDIRECT TO ROOT"); ``redirect-like-probe``: it lands where the nonexistent
  URL lands; ``redirect-to-error-page`` / ``-search-page`` / ``-login-page`` /
  ``-section-front``: generic pages.
* ``meta-refresh-to-home`` (and the other targets above) for ``<meta
  http-equiv=refresh>`` pages.
* ``like-probe``: main text near-identical to the probe's page;
  ``title-like-probe``: the same title and first heading as the probe's page
  (error templates whose body varies per request).
* ``text``: an error phrase (English, Simplified and Traditional Chinese) in the
  title or first heading, decisive alone; in the opening of the main text it is
  a second opinion, decisive only on a directory whose probe answered 2xx.

Site roots are never judged (a home page is not a soft 404 of itself), nor
are URLs of static files (images, media, documents).
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from yarl import URL

from linkkeeper.check.fingerprint import Fingerprint, PageText, fingerprint_page, is_html, tokens
from linkkeeper.vocab import Status

SIMILARITY_THRESHOLD = 0.75  # Jaccard at or above which a page is "the probe's page"
PROBE_PREFIX = "lk404-"

_STATIC_EXTENSIONS_TEXT = (
    "jpg jpeg png gif webp avif svg ico bmp tif tiff css js mjs json xml rss atom txt csv pdf"
    " doc docx xls xlsx ppt pptx zip gz tgz bz2 xz 7z rar mp3 mp4 m4a m4v webm ogg oga ogv wav"
    " flac mov avi mkv woff woff2 ttf otf eot wasm epub"
)
STATIC_EXTENSIONS = frozenset(_STATIC_EXTENSIONS_TEXT.split())
_NUMERIC_SEGMENT = re.compile(r"^\d[\d._-]*$")
_HOME_PATH = re.compile(
    r"^/?((index|default|home|homepage|main)(\.[a-z]+)?|[a-z]{2}([-_][a-z]{2})?/?)?$", re.I
)
_ERROR_SEGMENT = re.compile(
    r"^(404|410|error|errors|not[-_]?found|notfound|page[-_]?not[-_]?found|missing|gone)"
    r"(\.[a-z]+)?$",
    re.I,
)
_SEARCH_SEGMENT = re.compile(r"^(search|find|suche|recherche|sousuo|搜索|搜尋)(\.[a-z]+)?$", re.I)
_LOGIN_SEGMENT = re.compile(
    r"^(login|log-in|signin|sign-in|sign_in|logon|auth|sso|passport)(\.[a-z]+)?$", re.I
)
_SEARCH_KEYS = frozenset({"q", "s", "query", "search", "keyword", "keywords", "wd"})

# Error phrases. Strict enough for a headline: "Police still cannot find..." must not match.
_ERROR_PHRASES = re.compile(
    "|".join(
        (
            r"\b(page|file|article|story|document|content|url|resource)s?\s+(was\s+|could\s+not\s+be\s+|cannot\s+be\s+|can'?t\s+be\s+)?not\s+found\b",
            r"\b(page|file|article|story|document|content|url|resource)s?\b[^.]{0,40}?\b(could|can)\s*(not|'?t)\s+be\s+found\b",
            r"\b(we|i)\s+(could\s*not|couldn'?t|can\s*not|can'?t)\s+find\s+(that|the|this|your)\s+(page|article|story)\b",
            r"\b404\s*[-:|]?\s*(error|not\s+found|page)\b",
            r"\berror\s*[-:]?\s*404\b",
            r"\b(page|article|story|content)\s+(does\s+not|doesn'?t|no\s+longer)\s+exists?\b",
            r"\b(page|article|story|content)\s+(is\s+)?no\s+longer\s+available\b",
            r"\b(page|article|story)\s+(has\s+been|was)\s+(removed|deleted)\b",
            r"\bnot\s+found\s*[-|:]\s*404\b",
            r"^\s*not\s+found\s*$",
            r"(页面|网页|頁面|網頁|文章|内容|內容|新闻|新聞|信息|資訊)(不存在|已删除|已刪除|已被删除|已被刪除|未找到|找不到|无法找到|無法找到|無法顯示|无法显示)",
            r"找不到(该|該|此|您要的|您要訪問的|您要访问的|您所請求的|您所请求的|相关|相關|指定的)?(页面|頁面|网页|網頁|文章|内容|內容|网址|網址)",
            r"(您访问的|您訪問的|您所访问的|您所訪問的|你访问的|你訪問的)(页面|頁面|网页|網頁)",
            r"404\s*(错误|錯誤|页面|頁面|啦|了)",
            r"(抱歉|对不起|對不起)[，,\s]*(您|你)?(访问|訪問|请求|請求|要找)的",
        )
    ),
    re.IGNORECASE,
)
# Words one of the phrases above cannot match without (each alternative contains one):
# the phrases are searched only in texts that have one, a tenth of the cost on most pages.
_ERROR_HINTS = re.compile(
    r"found|find|404|exist|availab|remov|delet|[不删刪未找无無访訪抱对對]", re.IGNORECASE
)
OPENING_CHARS = 400  # how much of the main text a second-opinion phrase may hide in


class FetchedPage(Protocol):
    """What the soft-404 layer reads from a check (check.result.CheckResult fits)."""

    url: str
    status: Status
    http_status: int | None
    final_url: str | None
    redirects: Sequence[Any]
    sample: bytes | None
    content_type: str | None
    requests: int


ProbeFetch = Callable[[str], Awaitable[FetchedPage]]


@dataclass(frozen=True, slots=True)
class Probe:
    """What a certainly-nonexistent URL in a directory got."""

    url: str
    status: Status
    http_status: int | None
    final_url: str | None
    redirected: bool
    page: PageText | None
    fingerprint: Fingerprint | None
    requests: int
    # the page's sketch without some words (`sketch_without`), per set of words left out
    _sketches: dict[frozenset[str], Fingerprint] = field(
        default_factory=dict, compare=False, repr=False
    )

    def sketch_without(self, ignore: frozenset[str]) -> Fingerprint | None:
        """The probe page's sketch leaving out `ignore` (the links' URL words), computed once
        per distinct set of its own words left out: a directory's links mostly share it."""
        if self.page is None:
            return None
        words = self.page.tokens()
        present = ignore.intersection(words)
        if not present or self.fingerprint is None:
            return self.fingerprint
        key = frozenset(present)
        sketch = self._sketches.get(key)
        if sketch is None:
            sketch = self.fingerprint.without(words, key)
            if len(self._sketches) < 256:  # bounded: URL words rarely vary this much
                self._sketches[key] = sketch
        return sketch

    @property
    def answers_ok(self) -> bool:
        """The directory answers unknown URLs with a page: 2xx links there need their content read."""
        return self.status.is_alive

    @property
    def honest(self) -> bool:
        return self.status is Status.BROKEN and self.http_status in (404, 410)

    def summary(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "status": str(self.status),
            "http_status": self.http_status,
            "final_url": self.final_url if self.redirected else None,
            "title": self.page.title if self.page else None,
        }


@dataclass(slots=True)
class Verdict:
    """The soft-404 layer's opinion of one alive check."""

    soft_404: bool
    signals: list[str]
    reason: str
    evidence: dict[str, Any]


# -- URLs -----------------------------------------------------------------------------------


def _segments(url: URL) -> tuple[list[str], bool]:
    """Path segments (no empty ones) and whether the path ends with a slash."""
    path = url.path or "/"
    return [s for s in path.split("/") if s], path.endswith("/") and path != "/"


def is_root(url: URL) -> bool:
    return bool(_HOME_PATH.match(url.path or "/")) and not url.query_string


def is_static(url: URL) -> bool:
    last = url.path.rsplit("/", 1)[-1]
    return "." in last and last.rsplit(".", 1)[-1].lower() in STATIC_EXTENSIONS


def applies(url: URL) -> bool:
    """Deep links to pages: what soft-404 detection judges (not roots, not static files)."""
    return url.scheme in ("http", "https") and not is_root(url) and not is_static(url)


def directory_key(url: URL) -> str:
    """scheme://host:port/dir/#/ — digit-only segments generalised — plus the last segment's shape."""
    segments, trailing = _segments(url)
    directory = ["#" if _NUMERIC_SEGMENT.match(s) else s.lower() for s in segments[:-1]]
    last = segments[-1] if segments else ""
    extension = last.rsplit(".", 1)[-1].lower() if "." in last else ""
    shape = f"*.{extension}" if extension else "*"
    return (
        f"{url.scheme}://{(url.raw_host or '').lower()}:{url.port}/"
        f"{'/'.join([*directory, shape])}{'/' if trailing else ''}"
    )


def probe_url(url: URL, token: str | None = None) -> str:
    """The same directory with the last segment replaced by a random token (extension kept)."""
    segments, trailing = _segments(url)
    token = token or PROBE_PREFIX + secrets.token_hex(8)
    last = segments[-1] if segments else ""
    if "." in last:
        token += "." + last.rsplit(".", 1)[-1]
    path = "/" + "/".join([*segments[:-1], token]) + ("/" if trailing else "")
    return str(url.with_path(path, encoded=False).with_query(None).with_fragment(None))


def _site(host: str) -> str:
    host = host.lower().rstrip(".")
    for prefix in ("www.", "m.", "mobile.", "amp."):
        if host.startswith(prefix):
            return host[len(prefix) :]
    return host


def same_site(a: URL, b: URL) -> bool:
    one, two = _site(a.raw_host or ""), _site(b.raw_host or "")
    return one == two or one.endswith("." + two) or two.endswith("." + one)


def _same_place(a: URL, b: URL) -> bool:
    return (
        _site(a.raw_host or "") == _site(b.raw_host or "")
        and a.path.rstrip("/") == b.path.rstrip("/")
        and a.query_string == b.query_string
    )


def generic_page(target: URL, original: URL) -> str | None:
    """Which generic page `target` is, for a link that asked for `original`; None if specific."""
    if is_root(target):
        return "home"
    segments, _ = _segments(target)
    lowered = [s.lower() for s in segments]
    if any(_ERROR_SEGMENT.match(s) for s in lowered):
        return "error-page"
    if any(_SEARCH_SEGMENT.match(s) for s in lowered) or (
        len(segments) <= 1 and _SEARCH_KEYS & set(target.query)
    ):
        return "search-page"
    if any(_LOGIN_SEGMENT.match(s) for s in lowered):
        return "login-page"
    asked, _ = _segments(original)
    if (
        same_site(target, original)
        and len(segments) < len(asked)
        and [s.lower() for s in asked[: len(segments)]] == lowered
    ):
        return "section-front"
    return None


def _url_words(url: URL) -> frozenset[str]:
    return frozenset(tokens(url.path))


def _similarity_without_urls(
    page: PageText | None, fingerprint: Fingerprint, probe: Probe, original: URL
) -> float:
    """Main-text similarity, leaving out the words of both URLs (error pages echo the path).

    `fingerprint` is the page's whole sketch, reused when no URL word is in its text.
    """
    if page is None or probe.page is None:
        return 0.0
    ignore = _url_words(original) | _url_words(URL(probe.url))
    mine = fingerprint.without(page.tokens(), ignore)
    theirs = probe.sketch_without(ignore)
    assert theirs is not None  # probe.page is there
    return mine.similarity(theirs)


def _same_template(page: PageText | None, probe: PageText | None) -> bool:
    """Title and first heading both identical to the probe's page: the error template.

    Catches error pages whose body varies per request ("you may like" lists);
    articles have their own headline. A site whose every page shares one title
    and one heading would be misjudged, hence both must be present and equal.
    """
    if page is None or probe is None:
        return False
    return bool(page.title and page.heading) and (page.title, page.heading) == (
        probe.title,
        probe.heading,
    )


def text_signal(page: PageText) -> tuple[str, str] | None:
    """(where, phrase) of an error phrase: "title"/"heading" are strong, "text" a second opinion."""
    for where, text in (
        ("title", page.title),
        ("heading", page.heading),
        ("text", page.text[:OPENING_CHARS]),
    ):
        match = _ERROR_PHRASES.search(text) if _ERROR_HINTS.search(text) else None
        if match:
            return where, match.group(0).strip()
    return None


# -- the detector ---------------------------------------------------------------------------


@dataclass
class Soft404Detector:
    """Probes per host+directory (one per run, shared) and judges alive checks.

    It owns probe scheduling: which link starts its directory's probe, which ones
    wait for it, and which one pays for it. The checker asks (`wants_content`,
    `probe_for`, `judge`); the detector reaches the network only through `fetch`,
    a narrow callable that checks one URL once (GET, no retries, never captured).
    """

    fetch: ProbeFetch
    threshold: float = SIMILARITY_THRESHOLD
    read_pages: bool = False  # links are read with GET anyway: nobody waits for a probe
    probes: dict[str, asyncio.Task[Probe]] = field(default_factory=dict)
    probe_requests: int = 0  # requests the probes cost, all together
    _payers: dict[str, str] = field(default_factory=dict)  # directory key -> link that started it

    @property
    def stats(self) -> dict[str, int]:
        """Probes sent this run and the requests they cost (part of the results' counts)."""
        return {"probes": len(self.probes), "probe_requests": self.probe_requests}

    async def wants_content(self, url: URL) -> bool:
        """Whether this link's directory answers unknown URLs with pages (so GET, not HEAD).

        The first link of a directory starts the probe and goes ahead without
        waiting; later links wait for the probe's answer.
        """
        if not applies(url):
            return False
        task, started = self._probe_task(url)
        if started or self.read_pages:
            return self.read_pages
        probe = await _probe_of(task)
        return probe is not None and probe.answers_ok

    async def probe_for(self, url: URL, *, alive: bool) -> tuple[Probe | None, int]:
        """The directory's probe to judge an alive link by (None: none or not alive),
        and the probe's requests when this link is the one that pays for it (else 0)."""
        if not applies(url):
            return None, 0
        key = directory_key(url)
        task, _ = self._probe_task(url, key)
        pays = self._bill(url, key)
        if not (pays or alive):
            return None, 0
        probe = await _probe_of(task)
        billed = probe.requests if probe is not None and pays else 0
        return (probe if alive else None), billed

    async def aclose(self) -> None:
        """Cancel the probes still running (a run stopped early)."""
        running = [task for task in self.probes.values() if not task.done()]
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    def _probe_task(self, url: URL, key: str | None = None) -> tuple[asyncio.Task[Probe], bool]:
        """The directory's probe (started now if nobody has): (task, True if this call started it).

        The caller that starts it is billed for it once (`_bill`), so the run's
        request count includes every probe exactly once.
        """
        key = key or directory_key(url)
        task = self.probes.get(key)
        if task is not None:
            return task, False
        task = asyncio.ensure_future(self._probe(url))
        self.probes[key] = task
        self._payers[key] = str(url)
        return task, True

    def _bill(self, url: URL, key: str) -> bool:
        """True once, for the link whose check started its directory's probe."""
        if key in self._payers and self._payers[key] == str(url):
            del self._payers[key]
            return True
        return False

    async def _probe(self, url: URL) -> Probe:
        checked = await self.fetch(probe_url(url))
        page = fingerprint = None
        if (
            checked.status.is_alive
            and checked.sample
            and is_html(checked.content_type, checked.sample)
        ):
            page, fingerprint = fingerprint_page(checked.sample, checked.content_type)
        self.probe_requests += checked.requests
        return Probe(
            url=checked.url,
            status=checked.status,
            http_status=checked.http_status,
            final_url=checked.final_url,
            redirected=bool(checked.redirects),
            page=page,
            fingerprint=fingerprint,
            requests=checked.requests,
        )

    def judge(
        self,
        result: FetchedPage,
        probe: Probe | None,
        page: PageText | None,
        fingerprint: Fingerprint | None,
    ) -> Verdict | None:
        """Soft 404 or not, for an alive check; None when there is nothing to say."""
        original = URL(result.url)
        if not applies(original):
            return None
        final = URL(result.final_url or result.url)
        signals: list[str] = []
        evidence: dict[str, Any] = {}
        details: list[str] = []
        if probe is not None:
            evidence["probe"] = probe.summary()
        if result.redirects and not _same_place(final, original):
            if probe is not None and probe.redirected and probe.final_url and _same_place(
                final, URL(probe.final_url)
            ):
                signals.append("redirect-like-probe")
                details.append(f"redirects where a nonexistent URL does ({final})")
            kind = generic_page(final, original)
            if kind is not None:
                signals.append(f"redirect-to-{kind}")
                details.append(f"redirects to the {kind.replace('-', ' ')} {final}")
        if page is not None and page.refresh is not None:
            try:
                target = final.join(URL(page.refresh)) if page.refresh else final
            except ValueError:
                target = final
            kind = generic_page(target, original) if not _same_place(target, original) else None
            if kind is not None:
                signals.append(f"meta-refresh-to-{kind}")
                details.append(f"meta refresh to the {kind.replace('-', ' ')} {target}")
                evidence["refresh"] = str(target)
        probe_lookalike = (
            probe is not None
            and probe.answers_ok
            and probe.fingerprint is not None
            and fingerprint is not None
        )
        if probe_lookalike:
            assert probe is not None and probe.fingerprint is not None and fingerprint is not None
            if fingerprint.empty and probe.fingerprint.empty:
                same_title = bool(page and probe.page and page.title == probe.page.title)
                similarity = 1.0 if same_title else 0.0
            else:
                similarity = _similarity_without_urls(page, fingerprint, probe, original)
            evidence["similarity"] = round(similarity, 3)
            if similarity >= self.threshold:
                signals.append("like-probe")
                details.append(
                    f"page like a nonexistent URL's (similarity {similarity:.2f}, {probe.url})"
                )
            elif _same_template(page, probe.page):
                signals.append("title-like-probe")
                details.append(
                    f"same title and heading as a nonexistent URL's page ({probe.url})"
                )
        if page is not None and (phrase := text_signal(page)) is not None:
            where, words = phrase
            evidence["text"] = {"where": where, "phrase": words}
            if where != "text" or (probe is not None and probe.answers_ok):
                signals.append(f"text-in-{where}")
                details.append(f"{where} says {words!r}")
        if signals:
            evidence["signals"] = signals
        if not evidence:
            return None
        reason = "soft 404: " + "; ".join(details) if signals else ""
        return Verdict(bool(signals), signals, reason, {"soft404": evidence})


async def _probe_of(task: asyncio.Future[Probe]) -> Probe | None:
    """A directory's probe, or None if it could not be had (shielded: waiters never cancel it)."""
    if task.done():  # most links come after their directory's probe: no shield to make
        if task.cancelled() or task.exception() is not None:
            return None
        return task.result()
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        if task.cancelled():
            return None
        raise
    except Exception:
        return None
