"""URL keys: normalisation table, srcset parsing, image proxies, and properties that must hold
for any text (never raises, checkable keys are absolute http(s) and idempotent)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from linkkeeper.urls import UrlInfo, is_image_url, normalize_url, parse_srcset, unwrap_proxy

DW_RAW = "https://www.dw.com/zh/疫后振兴 欧盟通过史上最大财政援助案 /a-54251612"
DW_ENCODED = (
    "https://www.dw.com/zh/%E7%96%AB%E5%90%8E%E6%8C%AF%E5%85%B4%20%E6%AC%A7%E7%9B%9F%E9%80%9A"
    "%E8%BF%87%E5%8F%B2%E4%B8%8A%E6%9C%80%E5%A4%A7%E8%B4%A2%E6%94%BF%E6%8F%B4%E5%8A%A9%E6%A1%88"
    "%20/a-54251612"
)

# raw, base, expected key, expected fragment
CHECKABLE = [
    ("https://example.org/a", None, "https://example.org/a", ""),
    ("  https://example.org/a \n", None, "https://example.org/a", ""),
    ("HTTP://Example.ORG", None, "http://example.org/", ""),
    ("https://example.org:443/x", None, "https://example.org/x", ""),
    ("http://example.org:80/x", None, "http://example.org/x", ""),
    ("http://example.org:8080/x", None, "http://example.org:8080/x", ""),
    ("https://example.org/a#Top", None, "https://example.org/a", "Top"),
    ("//cdn.example.org/i.png", None, "https://cdn.example.org/i.png", ""),
    # entities as they appear in href values
    ("https://x.org/p?a=1&amp;b=2", None, "https://x.org/p?a=1&b=2", ""),
    ("https://x.org/p?a=1&#038;b=2", None, "https://x.org/p?a=1&b=2", ""),
    ('http://adultwebcams.icu/"&gt;adult', None, "http://adultwebcams.icu/%22%3Eadult", ""),
    # a named reference without ';' is not decoded in an attribute (HTML rules)
    ("https://x.org/p?a=1&copy=2", None, "https://x.org/p?a=1&copy=2", ""),
    # WordPress' mangled '&#038;' leaves a real fragment behind
    (
        "https://i1.wp.com/x.org/a.png?resize=960%2C484&amp;is-pending-load=1#038;ssl=1",
        None,
        "https://i1.wp.com/x.org/a.png?resize=960%2C484&is-pending-load=1",
        "038;ssl=1",
    ),
    # raw spaces and Chinese are encoded once; an encoded twin gives the same key
    (DW_RAW, None, DW_ENCODED, ""),
    (DW_ENCODED, None, DW_ENCODED, ""),
    # lower-case escapes are the same URL
    ("https://x.org/%e7%96%ab", None, "https://x.org/%E7%96%AB", ""),
    # double slashes, '+' and '@' in paths are kept
    ("http://www.rfi.fr//cn/contenu/x", None, "http://www.rfi.fr//cn/contenu/x", ""),
    ("https://x.org/a+b/@user", None, "https://x.org/a+b/@user", ""),
    (
        "https://www.google.com/search?q=foo%2Bbar",
        None,
        "https://www.google.com/search?q=foo%2Bbar",
        "",
    ),
    # IDN to punycode
    ("https://granö.fi", None, "https://xn--gran-8qa.fi/", ""),
    ("https://Bücher.de/x", None, "https://xn--bcher-kva.de/x", ""),
    # dot segments as browsers resolve them
    ("https://x.org/a/./b/../c", None, "https://x.org/a/c", ""),
    # backslashes are slashes in http(s) URLs (WHATWG)
    (
        "https:\\\\www.youtube.com\\watch?v=QafV7WHdLHE",
        None,
        "https://www.youtube.com/watch?v=QafV7WHdLHE",
        "",
    ),
    # query characters: spaces and quotes encoded, '|' and ',' kept
    (
        "https://f.org/css?family=Open+Sans:300|Noto+Serif:400,700",
        None,
        "https://f.org/css?family=Open+Sans:300|Noto+Serif:400,700",
        "",
    ),
    ("https://x.org/s?q=a b", None, "https://x.org/s?q=a%20b", ""),
    ("https://x.org/?", None, "https://x.org/", ""),
    # relative links with a base
    ("/about/", "https://example.org/blog/", "https://example.org/about/", ""),
    (
        "img/a.png",
        "https://example.org/blog/2020/post.html",
        "https://example.org/blog/2020/img/a.png",
        "",
    ),
    ("#sec", "https://example.org/p.html", "https://example.org/p.html", "sec"),
    # userinfo kept, port range respected
    ("https://user@x.org/", None, "https://user@x.org/", ""),
    ("http://[::1]:8080/x", None, "http://[::1]:8080/x", ""),
    # the 'http://https//host' slip of a real BBC post is a real (broken) URL to host 'https'
    ("http://https//www.bbc.com/x", None, "http://https//www.bbc.com/x", ""),
]


@pytest.mark.parametrize(("raw", "base", "key", "fragment"), CHECKABLE)
def test_checkable_urls_get_their_key(raw: str, base: str | None, key: str, fragment: str) -> None:
    info = normalize_url(raw, base)
    assert info.status is None, info.reason
    assert info.url == key
    assert info.fragment == fragment
    assert info.reason == ""


# raw, status, words the reason must contain
UNCHECKABLE = [
    ("mailto:someone@example.org", "excluded", "mailto:"),
    ("tel:+4912345", "excluded", "tel:"),
    ("javascript:void(0)", "excluded", "javascript:"),
    (
        "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7",
        "excluded",
        "data:",
    ),
    ("irc://irc.freenode.net/%23bootstrap", "excluded", "irc:"),
    ("ftp://ftp.example.org/file", "excluded", "ftp:"),
    ("#top", "excluded", "same page"),
    ("http://", "invalid", "no host"),
    ("//////", "invalid", "no host"),
    ("http://exa mple.org/", "invalid", "invalid host"),
    ("https://example]org/malformed", "invalid", "invalid host"),
    ("http://example.org:99999/", "invalid", "invalid port"),
    ("http://example.org:8o/", "invalid", "invalid port"),
    ("http://example.org:0/", "invalid", "invalid port"),
    ("https://example.org/" + "a" * 9000, "invalid", "longer than 8,192"),
    ("http://[::1/", "invalid", "IPv6"),
    ("", "invalid", "empty"),
    ("   ", "invalid", "empty"),
    ("/about/", "invalid", "no site url"),
    ("https;//example.com/malformed_one", "invalid", "relative"),
]


@pytest.mark.parametrize(("raw", "status", "reason"), UNCHECKABLE)
def test_uncheckable_urls_say_why(raw: str, status: str, reason: str) -> None:
    info = normalize_url(raw)
    assert info.status == status
    assert reason in info.reason
    assert info.host == ""


def test_excluded_keeps_the_cleaned_original() -> None:
    assert normalize_url(" mailto:a@b.org?subject=x&amp;y ").url == "mailto:a@b.org?subject=x&y"


def test_relative_base_must_itself_be_http() -> None:
    info = normalize_url("a.png", "file:///home/site/")
    assert info.status == "invalid"
    assert "base" in info.reason


SRCSET = [
    ("a.jpg", ["a.jpg"]),
    ("a.jpg 1x, b.jpg 2x", ["a.jpg", "b.jpg"]),
    ("a.jpg 300w,b.jpg 600w", ["a.jpg", "b.jpg"]),
    # URLs may contain commas: only a trailing comma ends a URL
    (
        "https://i1.wp.com/x.png?resize=300%2C151,big 300w, https://x.org/a,b.png 600w",
        ["https://i1.wp.com/x.png?resize=300%2C151,big", "https://x.org/a,b.png"],
    ),
    ("https://x.org/a,b.jpg 1x", ["https://x.org/a,b.jpg"]),
    # linkinator's fixture: candidates without descriptors, separated by comma
    ("_site/foo.html, _site/bar.html", ["_site/foo.html", "_site/bar.html"]),
    ("_site/foo.html,                 _site/bar.html", ["_site/foo.html", "_site/bar.html"]),
    # a data: URI with commas inside, kept as one candidate
    (
        "data:image/gif;base64,R0lGOD,AAA 1x, b.jpg 2x",
        ["data:image/gif;base64,R0lGOD,AAA", "b.jpg"],
    ),
    # descriptors with parentheses containing commas
    ("a.jpg (min-width: 1px, x) 1x, b.jpg", ["a.jpg", "b.jpg"]),
    ("  ,, a.jpg ,, ", ["a.jpg"]),
    ("a.jpg\n 1x,\n b.jpg 2x", ["a.jpg", "b.jpg"]),
    ("", []),
    (" , ", []),
]


@pytest.mark.parametrize(("value", "urls"), SRCSET)
def test_srcset(value: str, urls: list[str]) -> None:
    assert parse_srcset(value) == urls


PROXIES = [
    (
        "https://images.weserv.nl?url=gdb.voanews.com/6EED_r1_s_w900.jpg",
        "http://gdb.voanews.com/6EED_r1_s_w900.jpg",
    ),
    (
        "https://images.weserv.nl/?url=api.dw.com/image/54250466_303.jpg",
        "http://api.dw.com/image/54250466_303.jpg",
    ),
    ("https://images.weserv.nl/?url=ssl:api.dw.com/i.jpg&w=300", "https://api.dw.com/i.jpg"),
    ("https://wsrv.nl/?url=https://x.org/i.png", "https://x.org/i.png"),
    ("https://images.weserv.nl/?url=https%3A%2F%2Fx.org%2Fi.png", "https://x.org/i.png"),
    (
        "https://i1.wp.com/www.iyouport.org/wp-content/uploads/2019/08/00-4.png?resize=960%2C484&ssl=1",
        "https://www.iyouport.org/wp-content/uploads/2019/08/00-4.png",
    ),
    ("https://i0.wp.com/example.org/a.jpg", "http://example.org/a.jpg"),
    (
        "https://thumbor.ftacademy.cn/unsafe/1340x754/https://thumbor.ftacademy.cn/unsafe/picture/2/000097802_piclink.jpg",
        "https://thumbor.ftacademy.cn/unsafe/picture/2/000097802_piclink.jpg",
    ),
    (
        "https://thumbor.example/unsafe/fit-in/300x200/filters:quality(80)/https://x.org/a.jpg",
        "https://x.org/a.jpg",
    ),
    ("https://proxy.duckduckgo.com/iu/?u=https://x.org/a.jpg&f=1", "https://x.org/a.jpg"),
]


@pytest.mark.parametrize(("url", "original"), PROXIES)
def test_image_proxies_are_unwrapped(url: str, original: str) -> None:
    assert unwrap_proxy(url) == original
    assert is_image_url(normalize_url(url).url)


@pytest.mark.parametrize(
    "url",
    [
        "https://example.org/a",
        "https://images.weserv.nl/",
        "https://i1.wp.com/",
        "https://nei.st/medium/initium?source=https://theinitium.com/article/x",
        "mailto:x@y.org",
        "not a url",
    ],
)
def test_not_a_proxy(url: str) -> None:
    assert unwrap_proxy(url) is None


@pytest.mark.parametrize(
    ("url", "image"),
    [
        ("https://x.org/a.JPG", True),
        ("https://x.org/a.jpeg?itok=1", True),
        ("https://www.rfa.org/m/story.html/@@images/image/social_media", True),
        ("https://x.org/a.html", False),
        ("https://x.org/jpg/", False),
    ],
)
def test_is_image_url(url: str, image: bool) -> None:
    assert is_image_url(url) is image


# --- properties ---------------------------------------------------------------------------

URL_ALPHABET = st.sampled_from(
    [
        *"abcXYZ019-._~:/?#[]@!$&'()*+,;=% \t\n\"<>\\^`{|}",
        *("é", "中", "ö", "&amp;", "&#038;", "&gt;", "%2", "%zz", "%E4%B8%AD"),
        *("\u3000", "\x00", "\ud800"),
    ]
)
URLISH = st.one_of(
    st.text(max_size=60),
    st.builds(
        lambda scheme, sep, host, port, rest: f"{scheme}{sep}{host}{port}{rest}",
        st.sampled_from(["http:", "https:", "HTTP:", "hTtPs:", "", "mailto:", "ftp:", "data:"]),
        st.sampled_from(["//", "/", "", "\\\\", "///"]),
        st.one_of(st.from_regex(r"[a-zA-Z0-9.\-]{0,20}", fullmatch=True), st.text(max_size=12)),
        st.sampled_from(["", ":", ":80", ":443", ":8080", ":99999", ":x"]),
        st.lists(URL_ALPHABET, max_size=30).map("".join),
    ),
)
BASES = st.sampled_from(
    [None, "https://example.org/blog/", "https://example.org/2020/01/p.html", "ftp://x/"]
)


def check_key(raw: str, base: str | None) -> None:
    info = normalize_url(raw, base)
    assert isinstance(info, UrlInfo)
    if info.status is None:
        scheme, _, rest = info.url.partition("://")
        assert scheme in ("http", "https")
        assert info.host and info.host == info.host.lower()
        assert info.host.isascii()
        assert info.url.isascii()
        assert not any(c in info.url for c in ' "<>`#\t\n')
        assert rest.startswith(info.host) or "@" in rest.split("/", 1)[0] or rest.startswith("[")
        again = normalize_url(info.url)
        assert again.status is None
        assert again.url == info.url  # idempotent: normalising a key is a no-op
        if info.fragment:
            with_fragment = normalize_url(f"{info.url}#{info.fragment}")
            assert (with_fragment.url, with_fragment.fragment) == (info.url, info.fragment)
    else:
        assert info.status in ("excluded", "invalid")
        assert info.reason
        assert info.host == ""


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=URLISH, base=BASES)
def test_normalize_never_raises_and_keys_are_checkable_and_idempotent(
    raw: str, base: str | None
) -> None:
    check_key(raw, base)


@pytest.mark.slow
@settings(max_examples=20_000, deadline=None, suppress_health_check=list(HealthCheck))
@given(raw=URLISH, base=BASES)
def test_normalize_fuzz_long(raw: str, base: str | None) -> None:
    check_key(raw, base)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(["a", "b", "中", "%41", "%e4%b8%ad", " ", "+", "@", "/", "//", ","]),
        max_size=20,
    )
)
def test_never_double_encodes(parts: list[str]) -> None:
    raw = "https://x.org/" + "".join(parts)
    key = normalize_url(raw).url
    assert "%25" not in key  # an existing escape is never encoded again
    assert normalize_url(key).url == key


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_srcset_and_unwrap_never_raise(value: str) -> None:
    for url in parse_srcset(value):
        assert url and not any(c in url for c in " \t\n\r\f")
        assert not url.endswith(",")
    unwrap_proxy(value)
    unwrap_proxy("https://images.weserv.nl/?url=" + value)
    unwrap_proxy("https://i2.wp.com/" + value)
    unwrap_proxy("https://t.example/unsafe/" + value)


NORMAL_ALPHABET = st.sampled_from(
    [*"abz09-._~:/?#[]@!$&'()*+,;=%\\^`{|}\"<> ", "/./", "/../", "/.", "&amp;", "&#1", "中",
     "%E4", "%b8", "%2E", "%2e", "/%2E/", "/.%2E", "%2E%2E/", "%25", "%4", "&amp;amp;", "&lt;",
     "&amp;#38;", "//", "?", "#", ";"]
)


@settings(max_examples=1500, deadline=None)
@given(
    scheme=st.sampled_from(["http://", "https://", "https://", "HTTP://", "http:/", "http:///"]),
    host=st.one_of(
        st.from_regex(r"[a-z0-9_\-]{1,8}(\.[a-z0-9\-]{1,5}){0,2}\.?", fullmatch=True),
        st.from_regex(r"[a-zA-Z0-9_.\-]{0,12}", fullmatch=True),
    ),
    rest=st.one_of(
        st.lists(st.sampled_from([*"az09-._~:/?#[]@!$&'()*+,;=^|", "/./", "/.."]), max_size=25),
        st.lists(NORMAL_ALPHABET, max_size=25),
    ).map("".join),
)
def test_fast_path_for_normal_urls_agrees_with_the_general_one(
    scheme: str, host: str, rest: str
) -> None:
    from linkkeeper.urls import _already_normal, _normalize_any

    for raw in (f"{scheme}{host}{rest}", f"{scheme}{host}/{rest}"):
        fast = _already_normal(raw)
        if fast is not None:
            assert fast == _normalize_any(raw, None), raw


PROXY_LIKE = st.one_of(
    URLISH,
    st.sampled_from([url for url, _ in PROXIES]),
    st.builds(
        lambda host, rest: f"https://{host}/{rest}",
        st.sampled_from(
            [
                "images.weserv.nl",
                "wsrv.nl",
                "i0.wp.com",
                "I2.WP.COM",
                "wp.com",
                "thumbor.example",
                "proxy.duckduckgo.com",
                "images1-focus-opensocial.googleusercontent.com",
                "example.org",
            ]
        ),
        st.lists(
            URL_ALPHABET | st.sampled_from(["unsafe/", "UnSafe/", "?url=", "u=", "x.org/a.jpg"])
        ).map("".join),
    ),
)


@settings(max_examples=600, deadline=None)
@given(raw=PROXY_LIKE)
def test_key_shortcuts_agree_with_unwrap_proxy_and_is_image_url(raw: str) -> None:
    from linkkeeper.urls import is_image_key, unwrap_key

    info = normalize_url(raw)
    assert unwrap_key(info) == (unwrap_proxy(info.url) if info.status is None else None)
    assert is_image_key(info) == is_image_url(info.url)


@settings(max_examples=1500, deadline=None)
@given(
    base=st.sampled_from([
        "https://archive.example/", "https://archive.example/blog/", "http://x.org",
        "https://Site.Example:443/b/", "https://u@site.example/", "http://site.example:8080/",
        "https://[::1]/", "ftp://site.example/",
    ]),
    rest=st.one_of(
        st.lists(st.sampled_from([*"az09-._~:/?#[]@!$&'()*+,;=^|", "/./", "/.."]), max_size=25),
        st.lists(NORMAL_ALPHABET, max_size=25),
    ).map("".join),
)
def test_fast_path_for_root_relative_links_agrees_with_the_general_one(
    base: str, rest: str
) -> None:
    """A root-relative link resolved against the site: origin + link when that is already
    normal, exactly what urljoin and the general code give."""
    from linkkeeper.urls import _normalize_any, _root_relative_normal

    for raw in (f"/{rest}", f"/a/{rest}", f"/{rest}?q=1&amp;b=%E4%B8%AD#frag"):
        fast = _root_relative_normal(raw, base)
        if fast is not None:
            assert fast == _normalize_any(raw, base), (raw, base)
        assert normalize_url(raw, base) == _normalize_any(raw, base), (raw, base)


@pytest.mark.parametrize(
    "raw, base",
    [
        ("/article/74#comment-form", "https://archive.example/"),
        ("/a//b/c", "https://archive.example/"),
        ("/a/./b", "https://archive.example/"),
        ("/a/%2E%2E/b", "https://archive.example/"),
        ("/a;", "https://archive.example/"),
        ("/a?", "https://archive.example/"),
        ("/?\\", "https://archive.example/"),  # found by hypothesis: '\\' read as '/'
        ("/a\\b?c\\d", "https://archive.example/"),
        ("https://t.co/s?url=https%3A//p.net/a/74&amp;text=%E4%BC%8A", None),
        ("https://t.co/s?a=1&amp;amp;b=2", None),
        ("https://t.co/%e4%b8%ad", None),
        ("https://t.co/r1/t/img/title-%E3%80%90%E5%A5%B3", None),
    ],
)
def test_widened_fast_path_on_links_seen_in_the_corpus(raw: str, base: str | None) -> None:
    from linkkeeper.urls import _normalize_any

    assert normalize_url(raw, base) == _normalize_any(raw, base)


_PATH_TEXT = st.lists(
    st.sampled_from([*"az09-._~:/?#@!$&'()*+,=;\\", "%5C", "/./", "/../", "..", "%2e"]),
    max_size=20,
).map("".join)


@settings(max_examples=400, deadline=None)
@given(rest=_PATH_TEXT)
@example(rest="..//")  # urljoin made it '/', a browser '//' (found by this test in CI)
@example(rest="a;")  # urljoin dropped the empty ';'
def test_a_root_relative_link_means_what_the_same_absolute_link_means(rest: str) -> None:
    """'/p\\q?x\\y' on the site is 'https://site/p\\q?x\\y': the path's backslash is a '/',
    the query's and the fragment's stay, dot segments go by the same rules (a browser
    requests the same URL either way)."""
    assume(not rest.startswith(("/", "\\")))  # '//host', '/\\host': another host
    raw = f"/{rest}"
    assert normalize_url(raw, "https://site.example/blog/") == normalize_url(
        "https://site.example" + raw
    ), raw


@settings(max_examples=400, deadline=None)
@given(rest=_PATH_TEXT)
@example(rest="a/../..//x")
def test_a_document_relative_link_means_the_post_folder_plus_the_link(rest: str) -> None:
    """'a/b' in https://site/blog/post.html?x is https://site/blog/a/b, dot segments and all."""
    head = rest.split("/")[0].split("?")[0].split("#")[0]
    assume(rest and not rest.startswith(("/", "\\", "?", "#")) and ":" not in head)
    relative = normalize_url(rest, "https://site.example/blog/post.html?x=1")
    absolute = normalize_url("https://site.example/blog/" + rest)
    assert (relative.url, relative.status) == (absolute.url, absolute.status), rest


def test_a_backslash_in_the_query_of_a_relative_link_is_kept() -> None:
    info = normalize_url("a\\b?q=c\\d#e\\f", "https://site.example/blog/")
    assert (info.url, info.fragment) == ("https://site.example/blog/a/b?q=c\\d", "e\\f")


def test_an_overlong_link_is_kept_bounded_and_unique() -> None:
    """A 5 MB href made a 63 MB database: its key is now its start and its digest."""
    one = normalize_url("https://news.example/" + "a" * 5_000_000)
    other = normalize_url("https://news.example/" + "a" * 4_999_999 + "b")
    assert one.status == other.status == "invalid" and one.url != other.url
    assert len(one.url) < 300 and "5,000,021 characters" in one.url
