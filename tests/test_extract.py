"""parse_post on small awkward posts: every rule of the extraction, line numbers, bad input,
and properties over arbitrary bytes, text and front matter."""

from __future__ import annotations

import json
import textwrap
from datetime import date

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linkkeeper.extract.post import DEFAULT_SOURCE_KEYS, Occurrence, ParsedPost, parse_post


def post(text: str, **kwargs: object) -> ParsedPost:
    return parse_post(textwrap.dedent(text).lstrip("\n").encode("utf-8"), **kwargs)  # type: ignore[arg-type]


def links(parsed: ParsedPost) -> list[tuple[str, str, int]]:
    return [(o.url, o.kind, o.line) for o in parsed.occurrences]


def only(parsed: ParsedPost, **match: object) -> Occurrence:
    found = [o for o in parsed.occurrences if all(getattr(o, k) == v for k, v in match.items())]
    assert len(found) == 1, (match, parsed.occurrences)
    return found[0]


DW_POST = """
---
layout: post
title: "疫后振兴 欧盟通过史上最大财政援助案 "
date: 2020-07-21T07:54:06.000Z
author: 德国之声
from: https://www.dw.com/zh/疫后振兴 欧盟通过史上最大财政援助案 /a-54251612
tags: [ 德国之声 ]
categories: [ news, 德国之声 ]
---
<!--1595318046000-->
[疫后振兴 欧盟通过史上最大财政援助案](https://www.dw.com/zh/%E7%96%AB%E5%90%8E%E6%8C%AF%E5%85%B4%20%E6%AC%A7%E7%9B%9F%E9%80%9A%E8%BF%87%E5%8F%B2%E4%B8%8A%E6%9C%80%E5%A4%A7%E8%B4%A2%E6%94%BF%E6%8F%B4%E5%8A%A9%E6%A1%88%20/a-54251612)
------

<div>
<img src="https://images.weserv.nl/?url=api.dw.com/image/54250466_303.jpg" width="100%"><p>text</p>
</div>
"""


def test_source_and_title_line_are_one_link() -> None:
    parsed = post(DW_POST)
    assert parsed.ok and not parsed.problems
    sources = [o for o in parsed.occurrences if o.kind == "source"]
    assert [(o.line, o.element) for o in sources] == [(6, "front-matter:from"), (11, "md-link")]
    assert len({o.url for o in sources}) == 1
    assert parsed.source_url == sources[0].url
    assert sources[0].original.startswith("https://www.dw.com/zh/疫后振兴 ")
    assert sources[1].text == "疫后振兴 欧盟通过史上最大财政援助案"
    assert parsed.title == "疫后振兴 欧盟通过史上最大财政援助案 "
    assert parsed.date == "2020-07-21T07:54:06+00:00"
    json.dumps(parsed.front_matter)  # dates became strings
    image = only(parsed, kind="image")
    assert image.line == 15
    assert image.wraps == "http://api.dw.com/image/54250466_303.jpg"


def test_source_keys_are_configurable_and_may_be_lists() -> None:
    text = """
    ---
    title: t
    source_url: https://a.example/1
    links_elsewhere: https://not-a-source.example/
    mirror:
      - https://b.example/2
      - https://c.example/3
    ---
    body
    """
    default = post(text)
    assert links(default) == [("https://a.example/1", "source", 3)]
    custom = post(text, source_keys=["mirror"])
    assert links(custom) == [
        ("https://b.example/2", "source", 5),
        ("https://c.example/3", "source", 5),
    ]
    assert custom.source_url == "https://b.example/2"
    assert "from" in DEFAULT_SOURCE_KEYS


def test_markdown_links_images_references_autolinks() -> None:
    parsed = post(
        """
        ---
        title: t
        ---
        Intro with [an inline link](https://a.example/x "title") and
        an ![alt text](https://img.example/p.png) image,
        a [reference][ref] link and <https://auto.example/y>.

        [ref]: https://ref.example/z
        [unused]: https://unused.example/
        """
    )
    assert [(o.url, o.kind, o.line, o.element, o.text) for o in parsed.occurrences] == [
        ("https://a.example/x", "inline", 4, "md-link", "an inline link"),
        ("https://img.example/p.png", "image", 5, "md-image", "alt text"),
        ("https://ref.example/z", "inline", 6, "md-link", "reference"),
        ("https://auto.example/y", "inline", 6, "autolink", "https://auto.example/y"),
    ]


def test_code_and_comments_are_not_links() -> None:
    parsed = post(
        """
        ---
        title: t
        ---
        Use `<a href="https://code-span.example/">x</a>` or `[x](https://code-span2.example/)`.

        ```html
        <a href="https://fenced.example/">x</a>
        [x](https://fenced2.example/)
        ```

            <a href="https://indented.example/">x</a>

        <!-- <a href="https://comment.example/">x</a> -->
        text <!-- [x](https://inline-comment.example/) --> <a href="https://real.example/">real</a>

        <div>
        <!-- <img src="https://comment-in-html.example/i.png"> -->
        <script>var u = "https://script-text.example/";</script>
        <textarea><a href="https://textarea.example/">x</a></textarea>
        <a href="https://kept.example/">kept</a>
        </div>

        A bare URL https://bare.example/ in text is not a link (kramdown does not linkify).
        """
    )
    assert [o.url for o in parsed.occurrences] == ["https://real.example/", "https://kept.example/"]
    assert only(parsed, url="https://real.example/").line == 14
    assert only(parsed, url="https://kept.example/").line == 20


def test_html_block_runs_to_its_end_tag_like_kramdown() -> None:
    """Blank lines and indentation inside an HTML block do not turn it into a code block."""
    parsed = post(
        """
        ---
        title: t
        ---
        <section>
         <div class="content">

              <a href="https://deep.example/1">
               one
              </a>

              <img alt="" src="https://deep.example/i.jpg"/>
         </div>
        </section>

            <a href="https://code.example/">indented after the block: code</a>
        """
    )
    assert links(parsed) == [
        ("https://deep.example/1", "inline", 7),
        ("https://deep.example/i.jpg", "image", 11),
    ]
    assert only(parsed, element="a").text == "one"


def test_html_elements_and_attributes() -> None:
    parsed = post(
        """
        ---
        title: t
        ---
        <div>
        <img src="https://i.example/a.png" data-lazy-src="https://i.example/real.png" srcset="data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7" data-lazy-srcset="https://i.example/real.png?w=960&amp;ssl=1 960w, https://i.example/real.png?resize=300%2C151&amp;ssl=1 300w" alt="Alt">
        <img class="lazyload" data-src="https://i.example/lazy.jpg" data-srcset="https://i.example/l1.jpg 414w, https://i.example/l2.jpg 1024w" data-original="https://i.example/orig.jpg">
        <picture><source srcset="https://i.example/p.webp 1x, https://i.example/p2.webp 2x" type="image/webp"><img src="https://i.example/p.jpg"></picture>
        <video src="https://v.example/v.mp4" poster="https://v.example/poster.jpg"><source src="https://v.example/v.webm"><track src="https://v.example/subs.vtt"></video>
        <audio src="https://a.example/a.mp3"></audio>
        <iframe src="https://www.youtube.com/embed/xyz" title="Video"></iframe>
        <iframe class="lazyload" data-src="https://docs.example/sheet"></iframe>
        <embed src="https://e.example/e.swf"><object data="https://e.example/o.swf"></object>
        <script src="https://s.example/widget.js"></script>
        <link rel="preconnect" href="https://preconnect.example/"><link rel="dns-prefetch" href="//dns.example">
        <link rel="stylesheet" href="https://css.example/s.css"><link rel="icon" href="https://css.example/favicon.ico">
        <meta property="og:image" content="https://og.example/i.jpg"><meta name="twitter:image" content="https://tw.example/i.jpg">
        <a href="https://x.example/photo.JPG">full size</a>
        <blockquote class="twitter-tweet" cite="https://twitter.com/x/status/1"><a href="https://twitter.com/x/status/1">tweet</a></blockquote>
        <a href="mailto:editor@example.org">mail</a> <a href="javascript:void(0)">js</a> <a>no href</a> <a href="">empty</a>
        </div>
        """
    )
    got = {(o.url, o.kind, o.element) for o in parsed.occurrences}
    assert got == {
        ("https://i.example/a.png", "image", "img"),
        ("https://i.example/real.png", "image", "img-data-lazy-src"),
        (
            "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7",
            "image",
            "img-srcset",
        ),
        ("https://i.example/real.png?w=960&ssl=1", "image", "img-data-lazy-srcset"),
        ("https://i.example/real.png?resize=300%2C151&ssl=1", "image", "img-data-lazy-srcset"),
        ("https://i.example/lazy.jpg", "image", "img-data-src"),
        ("https://i.example/orig.jpg", "image", "img-data-original"),
        ("https://i.example/l1.jpg", "image", "img-data-srcset"),
        ("https://i.example/l2.jpg", "image", "img-data-srcset"),
        ("https://i.example/p.webp", "image", "source-srcset"),
        ("https://i.example/p2.webp", "image", "source-srcset"),
        ("https://i.example/p.jpg", "image", "img"),
        ("https://v.example/v.mp4", "embed", "video"),
        ("https://v.example/poster.jpg", "image", "video-poster"),
        ("https://v.example/v.webm", "embed", "source"),
        ("https://v.example/subs.vtt", "embed", "track"),
        ("https://a.example/a.mp3", "embed", "audio"),
        ("https://www.youtube.com/embed/xyz", "embed", "iframe"),
        ("https://docs.example/sheet", "embed", "iframe-data-src"),
        ("https://e.example/e.swf", "embed", "embed"),
        ("https://e.example/o.swf", "embed", "object"),
        ("https://s.example/widget.js", "embed", "script"),
        ("https://css.example/s.css", "inline", "link"),
        ("https://css.example/favicon.ico", "image", "link"),
        ("https://og.example/i.jpg", "image", "meta"),
        ("https://tw.example/i.jpg", "image", "meta"),
        ("https://x.example/photo.JPG", "image", "a"),
        ("https://twitter.com/x/status/1", "inline", "blockquote-cite"),
        ("https://twitter.com/x/status/1", "inline", "a"),
        ("mailto:editor@example.org", "inline", "a"),
        ("javascript:void(0)", "inline", "a"),
    }
    data_uri = only(parsed, element="img-srcset")
    assert data_uri.status == "excluded" and "data:" in data_uri.reason
    assert only(parsed, url="mailto:editor@example.org").status == "excluded"
    assert only(parsed, element="img-data-lazy-src").text == "Alt"
    assert only(parsed, element="iframe").text == "Video"


def test_original_is_as_written_and_url_is_decoded() -> None:
    parsed = post(
        """
        <p><a href=" https://x.example/p?a=1&amp;b=2&#038;c=3 ">x</a>
        <a href='http://spam.example/"&gt;cheap'>y</a></p>
        """
    )
    first, second = parsed.occurrences
    assert first.original == " https://x.example/p?a=1&amp;b=2&#038;c=3 "
    assert first.url == "https://x.example/p?a=1&b=2&c=3"
    assert second.original == 'http://spam.example/"&gt;cheap'
    assert second.url == "http://spam.example/%22%3Echeap"


RFA_BODY = """
---
layout: post
title: "美授权乌克兰对俄使用远程导弹"
date: 2024-11-19T02:09:41.774Z
from: https://www.rfa.org/mandarin/yataibaodao/junshiwaijiao/tj2-11182024144313.html
comments: True
---
<!--NaN-->
[美授权乌克兰对俄使用远程导弹](https://www.rfa.org/mandarin/yataibaodao/junshiwaijiao/tj2-11182024144313.html)
------

<div>
<img src="https://www.rfa.org/mandarin/yataibaodao/junshiwaijiao/tj2-11182024144313.html/@@images/02e68563.jpeg" alt="lead" height="341" width="620"> <span class="lead_image_caption">caption</span>
<div id="zoomattribute"> <a id="single_image" href="https://www.rfa.org/mandarin/yataibaodao/junshiwaijiao/tj2-11182024144313.html/@@images/image/social_media" data-fancybox="" title="zoom"> <img src="https://www.rfa.org/++plone++rfa-resources/img/icon-zoom.png"> </a> <span class="copyright">法新社</span> </div>
<p>据<a href="https://www.rfa.org/english/korea/2024/11/18/north-korea-us-missile-russia/"><strong>本台英语组报道</strong></a>，正文。</p>
<ul><li><a href="https://www.rfa.org/mandarin/Xinwen/kw5-11142024134841.html"><strong>北约和欧盟敦促中国遏制朝鲜派兵援俄</strong></a></li><li><strong><a href="https://www.rfa.org/mandarin/yataibaodao/junshiwaijiao/jz-11052024.html">朝鲜加入俄对乌战争</a></strong></li></ul>
<ul class="share-links"><li><a href="https://twitter.com/share?u=x">Twitter</a></li><li><a href="https://facebook.com/sharer?u=x">Facebook</a></li></ul>
<ul><li>A long list item with some text and <a href="https://in-a-sentence.example/">one link</a> inside it, not a story.</li></ul>
<p>...责编：梒青&nbsp;&nbsp;&nbsp; 网编：洪伟</p>
</div>
"""


def test_kinds_in_the_issue_example() -> None:
    parsed = post(RFA_BODY)
    kinds = {(o.url.rsplit("/", 1)[-1], o.kind) for o in parsed.occurrences}
    assert (
        kinds
        == {
            ("tj2-11182024144313.html", "source"),
            ("02e68563.jpeg", "image"),
            ("social_media", "image"),  # zoom link: an `a` to an image
            ("icon-zoom.png", "image"),
            ("north-korea-us-missile-russia", "inline"),
            ("kw5-11142024134841.html", "related"),
            ("jz-11052024.html", "related"),
            ("share?u=x", "inline"),
            ("sharer?u=x", "inline"),
            ("in-a-sentence.example", "inline"),
        }
        or kinds
    )
    assert only(parsed, element="a", kind="image").text == "zoom"
    assert only(parsed, url="https://www.rfa.org/mandarin/Xinwen/kw5-11142024134841.html").text == (
        "北约和欧盟敦促中国遏制朝鲜派兵援俄"
    )
    assert {o.line for o in parsed.occurrences if o.element != "front-matter:from"} == {
        9,
        13,
        14,
        15,
        16,
        17,
        18,
    }


def test_related_blocks_and_markdown_story_lists() -> None:
    parsed = post(
        """
        <div class="block related"><h2>You may like</h2>
        <div><a href="https://r.example/1"><img src="https://r.example/1.jpg"></a></div>
        <h3><a href="https://r.example/2">Second story</a></h3></div>
        <div class="paragraph moreArticle"><a class="moreArticle-link" href="https://r.example/3"><span>Third</span></a></div>

        Related:

        - [A story](https://md.example/1)
        - [Another story](https://md.example/2)
        - Plain text item with [a link](https://md.example/3) inside a long sentence of words.
        """
    )
    kinds = {o.url: o.kind for o in parsed.occurrences}
    assert kinds == {
        "https://r.example/1": "related",
        "https://r.example/1.jpg": "image",
        "https://r.example/2": "related",
        "https://r.example/3": "related",
        "https://md.example/1": "related",
        "https://md.example/2": "related",
        "https://md.example/3": "inline",
    }


def test_comment_spam_is_recorded_but_marked() -> None:
    parsed = post(
        """
        <section>
        <p>Article with a <a href="https://good.example/">good link</a>.</p>
        <div class="comment-wrapper" id="comments">
          <div class="comment"><ul><li><a href="http://spam1.example/">cheap pills</a></li></ul>
          <p>&lt;a href="<a href='http://spam2.example/"&gt;adult'>http://spam2.example/"&gt;adult</a> webcams&lt;/a&gt;</p>
          <img src="https://avatar.example/a.png"></div>
        </div>
        </section>
        """
    )
    good = only(parsed, url="https://good.example/")
    assert not good.in_comments and good.kind == "inline"
    spam = [o for o in parsed.occurrences if o.in_comments]
    assert [(o.url, o.kind) for o in spam] == [
        ("http://spam1.example/", "inline"),  # in an li, but comments are never "related"
        ("http://spam2.example/%22%3Eadult", "inline"),
        ("https://avatar.example/a.png", "image"),
    ]


def test_relative_links_resolution() -> None:
    text = """
    ---
    title: t
    from: /original/
    ---
    <p><a href="/about/">about</a> <a href="img/a.png">doc-relative</a> <a href="#top">top</a>
    <a href="//cdn.example/x.js">protocol-relative</a></p>
    """
    bare = post(text)
    assert [(o.url, o.status) for o in bare.occurrences] == [
        ("/original/", "invalid"),
        ("/about/", "invalid"),
        ("img/a.png", "invalid"),
        ("#top", "excluded"),
        ("https://cdn.example/x.js", None),
    ]
    assert "no site url" in bare.occurrences[1].reason
    site = post(text, site_url="https://example.org/blog/")
    assert [(o.url, o.status) for o in site.occurrences] == [
        ("https://example.org/original/", None),
        ("https://example.org/about/", None),
        ("img/a.png", "invalid"),
        ("#top", "excluded"),
        ("https://cdn.example/x.js", None),
    ]
    assert "no post url" in site.occurrences[2].reason
    full = post(
        text, site_url="https://example.org/blog/", post_url="https://example.org/blog/2020/p.html"
    )
    assert [o.url for o in full.occurrences] == [
        "https://example.org/original/",
        "https://example.org/about/",
        "https://example.org/blog/2020/img/a.png",
        "https://example.org/blog/2020/p.html",
        "https://cdn.example/x.js",
    ]
    assert full.occurrences[3].fragment == "top"


def test_inline_html_inside_markdown_paragraphs() -> None:
    parsed = post(
        """
        ---
        title: t
        ---
        First line of a paragraph
        with <a href="https://inline-html.example/">inline html</a> and
        <img src="https://inline-img.example/i.png" alt="pic"> on the third line.
        """
    )
    assert links(parsed) == [
        ("https://inline-html.example/", "inline", 5),
        ("https://inline-img.example/i.png", "image", 6),
    ]


def test_crlf_and_bom() -> None:
    data = "\ufeff---\r\ntitle: t\r\nfrom: https://s.example/\r\n---\r\n\r\n<p>\r\n<a href='https://x.example/'>x</a></p>\r\n"
    parsed = parse_post(data.encode("utf-8"))
    assert parsed.ok
    assert links(parsed) == [
        ("https://s.example/", "source", 3),
        ("https://x.example/", "inline", 7),
    ]


def test_invalid_utf8_is_a_problem_not_an_exception() -> None:
    data = b"---\ntitle: t\n---\n<a href='https://x.example/'>x</a>\n" + b"\xff\xfe bad\n"
    parsed = parse_post(data, path="_posts/bad.md")
    assert not parsed.ok
    assert parsed.problems[0].line == 5
    assert "UTF-8" in parsed.problems[0].message
    assert [o.url for o in parsed.occurrences] == ["https://x.example/"]  # what could be read


@pytest.mark.parametrize(
    ("front_matter", "line", "words"),
    [
        ("title: a: b\n", 2, "front matter: YAML error: mapping values are not allowed"),
        ("title: t\ntags: [a, b\n", 4, "YAML error"),
        ("- just\n- a list\n", 2, "not a mapping"),
        ('title: "unterminated\n', 3, "YAML error"),
    ],
)
def test_broken_front_matter(front_matter: str, line: int, words: str) -> None:
    data = f"---\n{front_matter}---\n<a href='https://x.example/'>x</a>\n".encode()
    parsed = parse_post(data)
    assert not parsed.ok
    assert parsed.problems[0].line == line
    assert words in parsed.problems[0].message
    assert parsed.front_matter == {}


def test_unclosed_front_matter() -> None:
    parsed = parse_post(b"---\ntitle: t\n<a href='https://x.example/'>x</a>\n")
    assert not parsed.ok
    assert "no closing" in parsed.problems[0].message


def test_no_front_matter_and_empty_input() -> None:
    assert links(parse_post(b"[x](https://x.example/)\n")) == [("https://x.example/", "source", 1)]
    empty = parse_post(b"")
    assert empty.ok and empty.occurrences == [] and empty.front_matter == {}


def test_front_matter_alias_bomb_is_bounded() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [{', '.join('*' + p for p in [prev] * 9)}]\n"
        for prev, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    parsed = parse_post(f"---\n{bomb}from: https://x.example/\n---\n".encode())
    assert parsed.ok
    assert parsed.source_url == "https://x.example/"
    assert len(json.dumps(parsed.front_matter)) < 2_000_000


def test_markdown_title_with_brackets_and_emphasis_is_still_the_source() -> None:
    parsed = post(
        """
        ---
        title: t
        from: https://www.rti.org.tw/news/view/id/2072936
        ---
        <!--1595592077000-->
        [[國際] 美佛州教師工會告政府 *反對*](https://www.rti.org.tw/news/view/id/2072936)
        ------
        """
    )
    title = only(parsed, element="md-link")
    assert (title.kind, title.line, title.text) == ("source", 6, "[國際] 美佛州教師工會告政府 反對")


# --- properties ---------------------------------------------------------------------------

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=30),
    st.dates(),
    st.datetimes(),
    st.sampled_from(
        ["https://x.example/a b", "//cdn.example/x", "/rel/", "mailto:a@b", "http://", "中文"]
    ),
)
FRONT_MATTER = st.dictionaries(
    st.one_of(
        st.sampled_from([*list(DEFAULT_SOURCE_KEYS), "title", "date", "tags"]), st.text(max_size=10)
    ),
    st.recursive(
        SCALARS,
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
        ),
        max_leaves=8,
    ),
    max_size=8,
)
BODY_PIECES = st.sampled_from(
    [
        "\n",
        "\n\n",
        "    ",
        "<div>",
        "</div>",
        "<ul><li>",
        "</li></ul>",
        "<a href='https://a.example/x'>",
        "</a>",
        '<img src="//i.example/i.png" srcset="a.png 1x, data:x,y 2x">',
        "<!--",
        "-->",
        "```",
        "`",
        "[t](https://m.example/ a)",
        "[r][ref]",
        "[ref]: /rel",
        "<http://auto.example>",
        "&amp;",
        "&#038;",
        "中文",
        "<script>",
        "</script>",
        "<iframe data-src='https://e.example'>",
        '<a href="mailto:x@y">',
        "------",
        "<section class='comments'>",
        "<p>",
        '<a href="',
        '"',
        "'",
        ">",
        "<",
        "]",
        "(",
        ")",
        "\r\n",
        "\x00",
    ]
)


def check_invariants(parsed: ParsedPost, line_count: int) -> None:
    assert isinstance(parsed, ParsedPost)
    json.dumps(parsed.front_matter)
    for o in parsed.occurrences:
        assert o.kind in ("source", "image", "related", "inline", "embed")
        assert 1 <= o.line <= max(line_count, 1)
        if o.status is None:
            assert o.url.startswith(("http://", "https://")) and o.host
        else:
            assert o.status in ("excluded", "invalid") and o.reason


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_parse_post_never_raises_on_bytes(data: bytes) -> None:
    parsed = parse_post(data)
    check_invariants(parsed, data.count(b"\n") + data.count(b"\r") + 1)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    front_matter=FRONT_MATTER,
    body=st.lists(BODY_PIECES, max_size=40).map("".join),
    site=st.booleans(),
)
def test_parse_post_never_raises_on_front_matter_and_body(
    front_matter: dict, body: str, site: bool
) -> None:
    try:
        block = yaml.safe_dump(front_matter, allow_unicode=True)
    except yaml.YAMLError:
        block = "title: x\n"
    text = f"---\n{block}---\n{body}"
    parsed = parse_post(
        text.encode("utf-8", "surrogatepass"), site_url="https://example.org/" if site else None
    )
    check_invariants(parsed, text.count("\n") + text.count("\r") + 1)
    assert not any(p.message.startswith("internal error") for p in parsed.problems)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_parse_post_never_raises_on_text(text: str) -> None:
    parsed = parse_post(text.encode("utf-8", "surrogatepass"))
    check_invariants(parsed, text.count("\n") + text.count("\r") + 1)
    assert not any(p.message.startswith("internal error") for p in parsed.problems)


@pytest.mark.slow
@settings(max_examples=5_000, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    front_matter=FRONT_MATTER,
    body=st.lists(BODY_PIECES, max_size=80).map("".join),
    site=st.booleans(),
)
def test_parse_post_fuzz_long(front_matter: dict, body: str, site: bool) -> None:
    test_parse_post_never_raises_on_front_matter_and_body.hypothesis.inner_test(
        front_matter, body, site
    )  # type: ignore[attr-defined]


# --- the fast path for flat front matter gives exactly what YAML gives -----------------------

FM_KEYS = st.one_of(
    st.sampled_from(
        ["title", "date", "from", "tags", "comments", "yes", "null", "on", "1", "a-b", "_x"]
    ),
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_-]{0,8}", fullmatch=True),
)
FM_ATOMS = st.sampled_from(
    [
        "True",
        "false",
        "yes",
        "No",
        "on",
        "null",
        "~",
        "Null",
        "0",
        "-1",
        "0x1F",
        "017",
        "1_000",
        "3.5",
        ".5",
        "1e3",
        "1.0e+3",
        ".inf",
        "-.Inf",
        ".nan",
        "1:30",
        "2020-07-24",
        "2020-07-24T12:01:17.000Z",
        "2014-09-28T23:51:30+02:00",
        "2020-7-4 1:02:03",
        "https://x.example/a b",
        "http://www.rfi.fr//cn/x",
        "中文 标题",
        "a: b",
        "a #b",
        "a#b",
        "#c",
        "-",
        "- x",
        "?",
        "&a",
        "*a",
        "!x",
        "|",
        ">",
        "%",
        "@",
        "`",
        "'q'",
        '"q"',
        '"a\\"b"',
        '"a\\\\b"',
        "[a, b]",
        "[ 自由亚洲电台 ]",
        "[news, x]",
        "[a,,b]",
        "[a, ]",
        "[]",
        "[a: b]",
        "{a: b}",
        "x,y",
        "ends:",
        "\u2028",
        "\x85",
        "\ufeff",
        "\u00a0",
        "=",
        "<<",
        "a\tb",
    ]
)
FM_VALUES = st.one_of(
    FM_ATOMS,
    st.lists(FM_ATOMS, max_size=3).map(" ".join),
    st.lists(FM_ATOMS, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]"),
    st.lists(FM_ATOMS, max_size=2).map(lambda xs: '"' + " ".join(xs) + '"'),
    st.text(max_size=12),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(FM_KEYS, st.sampled_from([": ", ":  ", ":\t", ":"]), FM_VALUES), max_size=6)
)
def test_fast_front_matter_agrees_with_yaml(entries: list[tuple[str, str, str]]) -> None:
    from linkkeeper.extract.front_matter import _simple_front_matter

    lines = [f"{key}{sep}{value}" for key, sep, value in entries]
    fast = _simple_front_matter(lines)
    if fast is None:
        return  # left to YAML: always correct
    loaded = yaml.load("\n".join(lines), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    assert (fast or None) == loaded or (fast == {} and loaded is None)
    for key, value in fast.items():
        assert type(value) is type(loaded[key])


def test_fast_front_matter_agrees_with_yaml_on_the_corpus() -> None:
    import pathlib

    from linkkeeper.extract.front_matter import _simple_front_matter

    corpus = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "posts"
    if not corpus.is_dir():
        pytest.skip("corpus not found")
    for path in sorted(corpus.glob("*.md")):
        block = path.read_text("utf-8").split("\n---", 1)[0][4:]
        fast = _simple_front_matter(block.split("\n"))
        assert fast is not None, path.name
        assert fast == yaml.safe_load(block), path.name


@settings(max_examples=400, deadline=None)
@given(
    st.from_regex(
        r"[0-9]{4}-(0[0-9]|1[0-3])-[0-3][0-9]"
        r"([Tt][0-2][0-9]:[0-6][0-9]:[0-6][0-9](\.[0-9]{0,9})?(Z|[-+][0-2][0-9]:[0-6][0-9])?)?",
        fullmatch=True,
    )
)
def test_fast_timestamps_are_what_yaml_makes(text: str) -> None:
    from linkkeeper.extract.front_matter import _plain_scalar

    try:
        expected: object = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except ValueError as exc:
        expected = type(exc)
    try:
        got: object = _plain_scalar(text)[1]
    except ValueError as exc:
        got = type(exc)
    assert got == expected and type(got) is type(expected)
    if isinstance(got, date):
        assert got.isoformat() == expected.isoformat()  # type: ignore[union-attr]
