"""URL handling for extracted links: one normalised key per URL, never an exception.

The key is what the checker fetches and what de-duplicates checks, so it follows
what a browser would request for the same link (the WHATWG URL standard's
percent-encode sets), plus a few safe normalisations:

* HTML entities decoded (``&amp;``, ``&#038;``, ``&gt;``), surrounding and
  embedded tab/newline whitespace removed;
* ``//host/x`` becomes ``https://host/x``; relative links are resolved against a
  base, or recorded as ``invalid`` with the reason when there is none;
* scheme and host lower-cased, IDN hosts to punycode, default port dropped;
* non-ASCII and unsafe characters percent-encoded once (UTF-8); existing
  ``%XX`` escapes are kept (hex upper-cased, RFC 3986 6.2.2.1), never encoded
  again, so normalising a key is a no-op;
* ``+``, ``@``, ``,`` and double slashes in paths are kept as written (servers
  treat ``//cn/`` and ``/cn/`` differently); ``.``/``..`` segments are removed
  as browsers do; an empty path becomes ``/``; an empty query is dropped;
* the fragment is split off (it is not sent to servers).

Other schemes (``mailto:``, ``tel:``, ``javascript:``, ``data:`` ...) are
``excluded`` with the scheme named; things that cannot be fetched (no host, bad
port, spaces in the host) are ``invalid`` with the reason.

Send keys with ``yarl.URL(key, encoded=True)`` so they are not re-quoted.
"""

from __future__ import annotations

import hashlib
import html
import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import parse_qsl, unquote, urljoin

import idna
from yarl import URL

from linkkeeper.vocab import Status

__all__ = [
    "UrlInfo",
    "is_image_key",
    "is_image_url",
    "normalize_url",
    "parse_srcset",
    "unwrap_key",
    "unwrap_proxy",
]


@dataclass(frozen=True, slots=True)
class UrlInfo:
    url: str  # the key: normalised absolute URL without fragment; else the cleaned original
    fragment: str  # '' when none
    host: str  # lower-case punycode host ('' for excluded/invalid)
    status: str | None  # None when checkable; Status.EXCLUDED or Status.INVALID otherwise
    reason: str  # why it is excluded/invalid, '' otherwise


_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_STRIP = " \t\n\r\f\v\x00\u00a0\u3000\ufeff\u200b"
_TAB_NEWLINE = re.compile(r"[\t\n\r]")
_PCT_HEX = re.compile(r"%[0-9a-fA-F]{2}")
_HOST_OK = re.compile(r"[a-z0-9_\-]+(?:\.[a-z0-9_\-]+)*\.?")
_IPV6_OK = re.compile(r"\[[0-9a-fA-F:.]+(?:%25[0-9A-Za-z._~\-]+)?\]")
_DEFAULT_PORTS = {"http": "80", "https": "443"}

# WHATWG percent-encode sets (C0 controls, space and non-ASCII always encoded).
_PATH_ENCODE = frozenset(' "#<>?`{}')
_QUERY_ENCODE = frozenset(" \"#<>'`")  # WHATWG's set, plus ` (not allowed by RFC 3986)
_FRAGMENT_ENCODE = frozenset(' "<>`')
_USERINFO_ENCODE = frozenset(' "#<>?`{}/:;=@[\\]^|')


_ATTENTION: dict[frozenset[str], re.Pattern[str]] = {}


def _attention(unsafe: frozenset[str]) -> re.Pattern[str]:
    """A character `_encode` would touch: non-ASCII, a control, '%' or one of ``unsafe``."""
    pattern = _ATTENTION.get(unsafe)
    if pattern is None:
        chars = "".join(sorted(unsafe | {"%"}))
        pattern = _ATTENTION[unsafe] = re.compile(f"[^\\x20-\\x7e]|[{re.escape(chars)}]")
    return pattern


def _encode(text: str, unsafe: frozenset[str]) -> str:
    """Percent-encode what must be encoded, keep valid %XX (hex upper-cased), encode a stray %."""
    if _attention(unsafe).search(text) is None:
        return text
    out: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == "%":
            if _PCT_HEX.match(text, i):
                out.append(text[i : i + 3].upper())
                i += 3
                continue
            # WHATWG leaves a stray % alone; encoding it keeps the key idempotent too,
            # but a browser would send it raw, so we do the same.
            out.append("%")
        elif c in unsafe or c < " " or c == "\x7f":
            out.append(f"%{ord(c):02X}")
        elif c.isascii():
            out.append(c)
        else:
            out.extend(f"%{b:02X}" for b in c.encode("utf-8", "surrogatepass"))
        i += 1
    return "".join(out)


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 5.2.4 / WHATWG path parsing: drop '.' and '..', keep empty segments (//)."""
    segments = path.split("/")
    if not any(
        s in (".", "..") or s.lower() in ("%2e", "%2e%2e", ".%2e", "%2e.") for s in segments
    ):
        return path
    out: list[str] = []
    last = len(segments) - 1
    for i, seg in enumerate(segments[1:], start=1):
        low = seg.lower()
        if low in (".", "%2e"):
            if i == last:
                out.append("")
        elif low in ("..", ".%2e", "%2e.", "%2e%2e"):
            if out:
                out.pop()
            if i == last:
                out.append("")
        else:
            out.append(seg)
    return "/" + "/".join(out)


@lru_cache(maxsize=4096)
def _encode_host(host: str) -> str | None:
    """Lower-case punycode form of a host, or None when it is not a valid host name."""
    if "%" in host:
        host = unquote(host)
    host = host.strip().rstrip("\u3002\uff0e\uff61") if host else host
    if host.isascii():
        host = host.lower()
    else:
        try:
            host = idna.encode(host, uts46=True, transitional=False).decode("ascii")
        except (idna.IDNAError, UnicodeError, ValueError):
            try:
                host = host.encode("idna").decode("ascii").lower()
            except UnicodeError:
                return None
    if not _HOST_OK.fullmatch(host) or len(host) > 253:
        return None
    return host


# the reason of a relative link in a site whose own URL is unknown (the CLI sums these up)
NO_SITE_URL = "relative link and no site url to resolve it"


def _invalid(text: str, reason: str) -> UrlInfo:
    return UrlInfo(text, "", "", Status.INVALID.value, reason)


def _excluded(text: str, reason: str) -> UrlInfo:
    return UrlInfo(text, "", "", Status.EXCLUDED.value, reason)


# Character references as an HTML attribute value decodes them: numeric ones, and named
# ones only with their ';' (so a query like '?a=1&copy=2' is left alone).
_CHAR_REF = re.compile(r"&(?:#[0-9]{1,8};?|#[xX][0-9a-fA-F]{1,8};?|[A-Za-z][A-Za-z0-9]{1,31};)")


def _decode_ref(match: re.Match[str]) -> str:
    return html.unescape(match.group(0))


def _guard_ref(match: re.Match[str]) -> str:
    """A reference left after decoding (double-escaped source) is literal text: encode its
    '&' so decoding the key again changes nothing."""
    ref = match.group(0)
    return "%26" + ref[1:] if html.unescape(ref) != ref else ref


def _clean(raw: str) -> str:
    text = raw
    if "&" in text:
        text = _CHAR_REF.sub(_decode_ref, text)
        if "&" in text:
            text = _CHAR_REF.sub(_guard_ref, text)
    text = text.strip(_STRIP)
    if "\t" in text or "\n" in text or "\r" in text:
        text = _TAB_NEWLINE.sub("", text)
    return text


# Longer links are not requested (servers answer 414 past ~8 KiB: nginx's and Apache's
# request-line limits) nor stored whole: a 16 MiB post holding one 5 MB href made a 63 MB
# database, the key written in links, occurrences, checks and the indexes.
MAX_URL_CHARS = 8192
_KEPT_OF_LONG_URL = 200  # characters of an over-long link kept in its key, before its digest


def long_url_key(text: str) -> str:
    """A bounded, unique stand-in for an over-long link: its start and its digest."""
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{text[:_KEPT_OF_LONG_URL]}…[{len(text):,} characters, sha256 {digest}]"


def normalize_url(raw: str, base: str | None = None) -> UrlInfo:
    """Normalise one link as written (attribute value, Markdown destination, front matter value).

    ``base`` resolves relative links (the post's URL, or the site URL for root-relative
    ones). Never raises: whatever cannot be checked comes back excluded or invalid.
    """
    if isinstance(raw, str) and len(raw) > MAX_URL_CHARS:
        return _invalid(long_url_key(raw), f"a link of {len(raw):,} characters: longer than"
                        f" {MAX_URL_CHARS:,} (servers refuse such requests), not checked")
    try:
        return _normalize(raw, base)
    except Exception as exc:  # the contract is "never raises"; the reason says what broke
        return _invalid(
            _clean(raw) if isinstance(raw, str) else repr(raw), f"unparseable URL: {exc}"
        )


# An absolute http(s) URL that is already in normal form (how nearly every link in a post
# is written): lower-case host name without port or userinfo, a path, query and fragment
# with nothing to percent-encode (escapes already upper-case %XX). For these the general
# code below returns the text unchanged (minus the fragment), so one match replaces it;
# tests compare both paths.
_NORMAL_URL = re.compile(
    r"(https?)://([a-z0-9_\-]+(?:\.[a-z0-9_\-]+)*\.?)"  # scheme, host (as _HOST_OK)
    # path: printable ASCII except ' "#<>?`{}%' and '\', and upper-case escapes
    r"(/[!$&-;=@-\[\]-_a-z|~]*(?:%[0-9A-F]{2}[!$&-;=@-\[\]-_a-z|~]*)*)"
    # query (not empty): printable ASCII except ' "#<>\'`%', and upper-case escapes
    r"(?:\?(?=[!$%&(-;=?-_a-~])[!$&(-;=?-_a-~]*(?:%[0-9A-F]{2}[!$&(-;=?-_a-~]*)*)?"
    # fragment: printable ASCII except ' "<>`%', and upper-case escapes
    r"(?:#([!#-$&-;=?-_a-z{-~]*(?:%[0-9A-F]{2}[!#-$&-;=?-_a-z{-~]*)*))?"
)
# a '.' or '..' segment, also spelled with escapes (what _remove_dot_segments removes)
_DOT_SEGMENT = re.compile(r"/(?:\.|%2E)(?:\.|%2E)?(?:/|$)")


def _upper(match: re.Match[str]) -> str:
    return match.group(0).upper()


def _already_normal(raw: str) -> UrlInfo | None:
    """The key of a link already in normal form, else None. ``&amp;`` is decoded first (HTML
    attributes as written carry it in queries): when no other character reference is left,
    that is exactly what `_clean` does; lower-case escapes are upper-cased as `_encode`
    does."""
    text = raw
    if "&" in raw:
        text = raw.replace("&amp;", "&")
        if "&" in text and _CHAR_REF.search(text) is not None:
            return None
    m = _NORMAL_URL.fullmatch(text)
    if m is None and "%" in text:  # escapes in lower case: `_encode` upper-cases them
        text = _PCT_HEX.sub(_upper, text)
        m = _NORMAL_URL.fullmatch(text)
    if m is None or _DOT_SEGMENT.search(m.group(3)) is not None or len(m.group(2)) > 253:
        return None
    fragment = m.group(4)
    if fragment is None:
        return UrlInfo(text, "", m.group(2), None, "")
    return UrlInfo(text[: m.start(4) - 1], fragment, m.group(2), None, "")


_PATH_PART = re.compile(r"[^?#]*")


def _path_start(key: str) -> int:
    """Where the path of an absolute URL begins (after ``scheme://authority``), -1 if none."""
    return key.find("/", key.find("://") + 3)


@lru_cache(maxsize=64)
def _origin(base: str) -> str | None:
    """``scheme://host`` of a base URL, when its key has no userinfo or port (else None)."""
    info = _normalize(base, None)
    if info.status is not None:
        return None
    end = _path_start(info.url)
    origin = info.url if end == -1 else info.url[:end]
    return None if "@" in origin or origin.count(":") > 1 else origin


def _root_relative_normal(raw: str, base: str) -> UrlInfo | None:
    """A root-relative link (``/a/b?q``) already in normal form, resolved against ``base``:
    the base's origin plus the link, as `_resolve` resolves it (links with dot segments
    take the long way, and so do links with a backslash, which it reads as '/' in their
    path)."""
    if "\\" in raw or raw[1:2] == "/":
        return None
    origin = _origin(base)
    return None if origin is None else _already_normal(origin + raw)


@lru_cache(maxsize=16384)
def _normalize(raw: str, base: str | None) -> UrlInfo:
    fast = _already_normal(raw)
    if fast is None and base is not None and raw[:1] == "/":
        fast = _root_relative_normal(raw, base)
    return fast if fast is not None else _normalize_any(raw, base)


def _normalize_any(raw: str, base: str | None) -> UrlInfo:
    text = _clean(raw)
    if not text:
        return _invalid(text, "empty link")
    match = _SCHEME.match(text)
    if match is None:
        if text.startswith(("//", "\\\\", "/\\", "\\/")):
            text = "https:" + text
        elif text.startswith("#"):
            if base is None:
                return _excluded(text, "link to a place in the same page")
            text = urljoin(base.split("#", 1)[0], text)
        elif base is None:
            return _invalid(text, NO_SITE_URL)
        else:
            base_info = _normalize(base, None)
            if base_info.status is not None:
                return _invalid(text, f"relative link and the base {base!r} is not an http(s) URL")
            text = _resolve(base_info.url, _path_slashes(text))
        match = _SCHEME.match(text)
        if match is None:
            return _invalid(text, "cannot resolve the relative link")
    scheme = match.group(1).lower()
    if scheme not in ("http", "https"):
        return _excluded(text, f"scheme {scheme}: is not checked")
    return _split_and_build(text, scheme, match.end())


def _resolve(base: str, link: str) -> str:
    """A relative link made absolute against a base key, as a browser does it: a path link
    is the base's origin (``/a``) or folder (``a``) plus the link, and its dot segments go
    later by the absolute URL's rules (`_remove_dot_segments`), so ``/..//`` on a site means
    what ``https://site/..//`` means; `urljoin` removes them its own way (``/..//`` -> ``/``)
    and drops an empty ``;``. A query-only link keeps the base's path (`urljoin`)."""
    if link.startswith("?"):
        return urljoin(base, link)
    path_start = _path_start(base)
    if path_start == -1:  # a key always has a path; kept for safety
        return base + (link if link.startswith("/") else "/" + link)
    if link.startswith("/"):
        return base[:path_start] + link
    path = _PATH_PART.match(base, path_start).group()  # type: ignore[union-attr]
    return base[: path_start + path.rfind("/") + 1] + link


def _path_slashes(link: str) -> str:
    """A relative link with its path's backslashes read as '/', as browsers read them in
    http(s) URLs; a backslash in the query or fragment is data and stays."""
    if "\\" not in link:
        return link
    end = _PATH_PART.match(link).end()  # type: ignore[union-attr]  # it matches any text
    return link[:end].replace("\\", "/") + link[end:]


def _split_and_build(text: str, scheme: str, start: int) -> UrlInfo:
    rest = text[start:].lstrip("/\\")
    if not rest:
        return _invalid(text, "no host in URL")
    end = len(rest)
    for sep in "/\\?#":
        i = rest.find(sep)
        if i != -1 and i < end:
            end = i
    authority, tail = rest[:end], rest[end:]
    userinfo = ""
    if "@" in authority:
        userinfo, _, authority = authority.rpartition("@")
        userinfo = _encode(userinfo, _USERINFO_ENCODE.difference(":")) + "@"
    port = ""
    if authority.startswith("["):
        close = authority.find("]")
        if close == -1 or not _IPV6_OK.fullmatch(authority[: close + 1]):
            return _invalid(text, "invalid IPv6 host")
        host = authority[: close + 1].lower()
        after = authority[close + 1 :]
        if after and not after.startswith(":"):
            return _invalid(text, "invalid host")
        port = after[1:]
    else:
        host, _, port = authority.partition(":")
        if not host:
            return _invalid(text, "no host in URL")
        encoded = _encode_host(host)
        if encoded is None:
            return _invalid(text, f"invalid host {host!r}")
        host = encoded
    if port:
        if not port.isascii() or not port.isdigit() or not 0 < int(port) <= 65535:
            return _invalid(text, f"invalid port {port!r}")  # 0: nothing can be contacted there
        port = str(int(port))
        if _DEFAULT_PORTS[scheme] == port:
            port = ""
    fragment = ""
    if "#" in tail:
        tail, _, fragment = tail.partition("#")
        fragment = _encode(fragment, _FRAGMENT_ENCODE)
    query = ""
    if "?" in tail:
        tail, _, query = tail.partition("?")
        query = _encode(query, _QUERY_ENCODE)
    path = tail.replace("\\", "/") if "\\" in tail else tail
    path = _remove_dot_segments(_encode(path, _PATH_ENCODE)) if path else "/"
    url = f"{scheme}://{userinfo}{host}{':' + port if port else ''}{path}"
    if query:
        url = f"{url}?{query}"
    return UrlInfo(url, fragment, host.strip("[]") if host.startswith("[") else host, None, "")


# --- srcset ---------------------------------------------------------------------------

_ASCII_WS = " \t\n\r\f"


def parse_srcset(value: str) -> list[str]:
    """URLs of a srcset attribute, per the HTML standard's "parse a srcset attribute".

    URLs may contain commas (only trailing commas end a URL); descriptors may contain
    parentheses with commas. ``data:`` candidates are kept; normalisation excludes them.
    """
    urls: list[str] = []
    n = len(value)
    pos = 0
    while True:
        while pos < n and (value[pos] in _ASCII_WS or value[pos] == ","):
            pos += 1
        if pos >= n:
            return urls
        start = pos
        while pos < n and value[pos] not in _ASCII_WS:
            pos += 1
        url = value[start:pos]
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            # skip descriptors: up to a comma that is not inside parentheses
            in_parens = False
            while pos < n:
                c = value[pos]
                if in_parens:
                    if c == ")":
                        in_parens = False
                elif c == "(":
                    in_parens = True
                elif c == ",":
                    pos += 1
                    break
                pos += 1
        if url:
            urls.append(url)


# --- image proxies ----------------------------------------------------------------------

_WESERV_HOSTS = frozenset({"images.weserv.nl", "wsrv.nl", "images.weserv.com"})
_PHOTON_HOST = re.compile(r"i[0-3]\.wp\.com")
_THUMBOR_EMBEDDED = re.compile(r"/unsafe/(?:[^/]+/)*?(https?:/{0,2}.*)$", re.IGNORECASE)
_QUERY_WRAPPERS = {
    # host: query parameter holding the original
    "images1-focus-opensocial.googleusercontent.com": "url",
    "proxy.duckduckgo.com": "u",
    "external-content.duckduckgo.com": "u",
    "imageproxy.ifunny.co": "url",
    "wp.com": "url",
}
# every host `unwrap_key` knows (hosts are keys: lower-case), and thumbor's path segment
_PROXY_HOSTS = frozenset(
    {*_WESERV_HOSTS, *(f"i{n}.wp.com" for n in range(4)), *_QUERY_WRAPPERS}
)
_UNSAFE_SEGMENT = re.compile("/unsafe/", re.IGNORECASE)
_SCHEMELESS_HOST = re.compile(r"[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+(?::\d+)?(?:[/?#].*)?")


def _absolute(target: str, default_scheme: str = "http") -> str | None:
    target = target.strip()
    if target.startswith("ssl:"):
        return "https://" + target[4:].lstrip("/")
    if target.startswith("//"):
        return "https:" + target
    m = re.match(r"(https?):/{0,2}", target, re.IGNORECASE)
    if m:
        return f"{m.group(1).lower()}://{target[m.end() :]}"
    if _SCHEMELESS_HOST.fullmatch(target):
        return f"{default_scheme}://{target}"
    return None


@lru_cache(maxsize=16384)
def unwrap_proxy(url: str) -> str | None:
    """The original URL wrapped by an image proxy/CDN URL (as found, not normalised), or None.

    Knows images.weserv.nl/wsrv.nl (``?url=``, ``ssl:`` prefix), Jetpack Photon
    (``i0-3.wp.com/host/path``), thumbor (``/unsafe/<options>/<url>``) and a few
    query-parameter proxies (Google gadgets proxy, DuckDuckGo).
    """
    return unwrap_key(normalize_url(url))


def unwrap_key(info: UrlInfo) -> str | None:
    """`unwrap_proxy` of a link already normalised: a key normalises to itself, so the
    extractor, which holds the key, does not normalise it again."""
    if info.status is not None or (
        info.host not in _PROXY_HOSTS and _UNSAFE_SEGMENT.search(info.url) is None
    ):
        return None  # nearly every link: no proxy host, no thumbor path
    try:
        host = info.host
        if host in _WESERV_HOSTS:
            _, query = _path_and_query(info.url)
            for key, value in parse_qsl(query, keep_blank_values=True):
                if key == "url" and value:
                    return _absolute(value)
            return None
        if _PHOTON_HOST.fullmatch(host):
            path, query = _path_and_query(info.url)
            if not path or "." not in path.split("/", 1)[0]:
                return None
            params = dict(parse_qsl(query))
            scheme = "https" if params.get("ssl") in ("1", "true") else "http"
            return f"{scheme}://{unquote(path)}"
        if "/unsafe/" in info.url.lower():
            m = _THUMBOR_EMBEDDED.search(info.url.split("://", 1)[1])
            if m:
                return _absolute(
                    unquote(m.group(1)) if "%3a" in m.group(1)[:8].lower() else m.group(1)
                )
            return None
        key = _QUERY_WRAPPERS.get(host)
        if key is not None:
            _, query = _path_and_query(info.url)
            for name, value in parse_qsl(query):
                if name == key and value:
                    return _absolute(value)
        return None
    except Exception:
        return None


def _path_and_query(url: str) -> tuple[str, str]:
    """What follows a normalised URL's host: its path (without the first '/') and query."""
    after_host = url.split("/", 3)[3] if url.count("/") >= 3 else ""
    path, _, query = after_host.partition("?")
    return path, query


def is_image_key(info: UrlInfo) -> bool:
    """``is_image_url(info.url)``, cheaper for a checkable key (see `unwrap_key`)."""
    if info.status is not None:
        return is_image_url(info.url)
    return _image_path(info.url) or unwrap_key(info) is not None


def _image_path(url: str) -> bool:
    """An image file extension, or a Plone ``@@images`` path."""
    path = url.split("?", 1)[0]
    last = path.rsplit("/", 1)[-1]
    if "." in last and last.rsplit(".", 1)[1].lower() in _IMAGE_EXTENSIONS:
        return True
    return "/@@images/" in path


_IMAGE_EXTENSIONS = frozenset(
    [
        "jpg",
        "jpeg",
        "jpe",
        "jfif",
        "png",
        "gif",
        "webp",
        "avif",
        "svg",
        "bmp",
        "ico",
        "tif",
        "tiff",
        "heic",
        "heif",
        "apng",
    ]
)


@lru_cache(maxsize=16384)
def is_image_url(url: str) -> bool:
    """True when a normalised URL obviously names an image: image file extension, a
    Plone ``@@images`` path, or an image proxy. Used to classify ``a`` links as images."""
    return _image_path(url) or unwrap_proxy(url) is not None


def host_key(url: str | URL) -> str:
    """The host a URL is counted under: lowercase, no port, no trailing dot ("" if none).

    One key for per-host limits, statistics, timings and host failures, so that
    `News.example:443` and `news.example.` are the same host everywhere.
    """
    try:
        parsed = url if isinstance(url, URL) else URL(url)
        return (parsed.raw_host or "").lower().rstrip(".")
    except (ValueError, TypeError):
        return ""
