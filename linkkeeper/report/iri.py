"""URLs as people read them: percent-encoded UTF-8 and punycode hosts shown in Unicode.

A link key is stored encoded (``/wiki/%E4%B8%AD%E6%96%87``, ``xn--fiqs8s.example``),
which is exact but unreadable for a Chinese or Russian blog. The report shows the
decoded form (``/wiki/中文``) and keeps the exact key in the link's ``href`` and title.

Decoding is conservative, so what is shown always encodes back to the same key:

* only escapes of non-ASCII bytes are decoded; ``%2F``, ``%3F``, ``%25``, ``%20`` and
  other ASCII escapes stay as written (decoding them would change the URL's meaning);
* bytes that are not valid UTF-8 stay escaped (never mojibake or U+FFFD);
* characters that hide or imitate structure stay escaped: controls, format and
  bidi characters, spaces, unassigned code points, U+FFFD, look-alikes of ``/?#@:%.``;
* a punycode host is shown in Unicode only when it is valid IDNA and encodes back
  to exactly the same name.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import idna

_WEB = re.compile(r"(?i)(https?://)([^/?#]*)(.*)", re.S)
_HIGH_ESCAPES = re.compile(r"(?:%[89A-Fa-f][0-9A-Fa-f])+")
_HIDDEN = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"})
_STRUCTURE = frozenset("/?#@:%.\\[]&=")


def display_url(url: str) -> str:
    """The readable form of `url`; `url` itself when nothing can be decoded safely."""
    if "%" not in url and (("n--" not in url and "N--" not in url)
                           or "xn--" not in url.lower()):  # no copy of the URL when no "n--"
        return url
    try:
        match = _WEB.fullmatch(url)
        if match is None:
            return _decode_escapes(url)
        scheme, authority, rest = match.groups()
        return scheme + _display_authority(authority) + _decode_escapes(rest)
    except Exception:  # display only: the exact form is always a safe answer
        return url


def _display_authority(authority: str) -> str:
    userinfo, at, hostport = authority.rpartition("@")
    host, port = hostport, ""
    if not hostport.startswith("["):
        head, colon, tail = hostport.rpartition(":")
        if colon and tail.isdigit():
            host, port = head, ":" + tail
    return userinfo + at + display_host(host) + port


@lru_cache(maxsize=4096)
def display_host(host: str) -> str:
    """Unicode labels for a punycode host, only when that is exact IDNA both ways."""
    if "xn--" not in host.lower() or not host.isascii():
        return host
    try:
        shown = ".".join(idna.decode(label) if label.lower().startswith("xn--") else label
                         for label in host.split("."))
        back = idna.encode(shown, uts46=True, transitional=False).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError):
        return host
    if back != host.lower() or not all(_showable(c) for c in shown if not c.isascii()):
        return host
    return shown


def _decode_escapes(text: str) -> str:
    return _HIGH_ESCAPES.sub(_decode_run, text) if "%" in text else text


def _decode_run(match: re.Match[str]) -> str:
    """One run of %XX escapes of non-ASCII bytes: valid, showable UTF-8 characters decoded,
    every other byte kept exactly as written."""
    escaped = match.group(0)
    data = bytes.fromhex(escaped.replace("%", ""))
    out: list[str] = []
    pos = 0  # in bytes; byte i is escaped[3 * i: 3 * i + 3]
    for char in data.decode("utf-8", errors="surrogateescape"):
        size = 1 if 0xDC80 <= ord(char) <= 0xDCFF else len(char.encode("utf-8"))
        out.append(char if size > 1 and _showable(char) else escaped[3 * pos:3 * (pos + size)])
        pos += size
    return "".join(out)


@lru_cache(maxsize=8192)
def _showable(char: str) -> bool:
    if char == "\ufffd" or unicodedata.category(char) in _HIDDEN:
        return False
    return not (set(unicodedata.normalize("NFKC", char)) & _STRUCTURE)
