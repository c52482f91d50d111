"""Main text, encodings and similarity: what a page says, not how it is dressed."""

from __future__ import annotations

import codecs

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkkeeper.check.fingerprint import (
    Fingerprint,
    decode_html,
    fingerprint_page,
    is_html,
    load_fingerprint,
    page_text,
    python_encoding,
    tokens,
)
from linkkeeper.faultweb import bodies
from linkkeeper.faultweb.truthsites import chinese_article, site_page

GBK_PAGE = (
    '<html><head><meta charset="gbk"><title>市政府公布预算</title></head><body><article>'
    "<h1>市政府公布预算</h1><p>市政府今天公布了新的年度预算，教育和交通投入大幅增加。</p>"
    "</article></body></html>"
)
BIG5_PAGE = (
    "<html><head><title>市政府公佈預算</title></head><body><article>"
    "<h1>市政府公佈預算</h1><p>市政府今天公佈了新的年度預算，教育和交通投入大幅增加。</p>"
    "</article></body></html>"
)


@pytest.mark.parametrize(
    ("body", "content_type", "encoding"),
    [
        (GBK_PAGE.encode("gbk"), "text/html", "gb18030"),  # declared only in <meta>
        (GBK_PAGE.encode("gbk"), "text/html; charset=utf-8", "gb18030"),  # header lies
        (GBK_PAGE.replace('<meta charset="gbk">', "").encode("gbk"), None, "gb18030"),  # detected
        (BIG5_PAGE.encode("big5"), "text/html; charset=big5", "big5hkscs"),
        (BIG5_PAGE.encode("big5"), "text/html", "big5hkscs"),  # detected
        (codecs.BOM_UTF8 + "<p>café</p>".encode(), "text/html; charset=latin-1", "utf-8"),
        ("<p>café</p>".encode("cp1252"), "text/html; charset=iso-8859-1", "cp1252"),
    ],
)
def test_decoding_reads_legacy_chinese_pages_right(
    body: bytes, content_type: str | None, encoding: str
) -> None:
    text, used = decode_html(body, content_type)
    assert used == encoding
    assert "預算" in text or "预算" in text or "café" in text


def test_a_sample_cut_mid_character_still_decodes() -> None:
    body = GBK_PAGE.encode("gbk")
    cut = body[: body.index("教育".encode("gbk")) + 1]  # half of a two-byte character
    text, used = decode_html(cut, "text/html")
    assert used == "gb18030" and text.endswith("，")


def test_labels_map_the_way_browsers_map_them() -> None:
    assert python_encoding("GB2312") == python_encoding("gbk") == "gb18030"
    assert python_encoding("big5") == "big5hkscs"
    assert python_encoding("no-such-charset") is None


def test_main_text_leaves_out_navigation_ads_dates_and_counters() -> None:
    main = "<article><h1>Council votes budget</h1><p>The council voted the budget.</p></article>"
    page = page_text(
        site_page("Daily", "Council votes budget | Daily", main,
                  top='<span class="date">Monday 1 January</span>',
                  bottom='<span class="counter">1234 views</span>').encode()
    )
    assert page.title == "Council votes budget | Daily"
    assert page.heading == "Council votes budget"
    assert "Advertisement" not in page.text and "views" not in page.text
    assert "Monday" not in page.text and "Sport" not in page.text
    assert "The council voted the budget." in page.text


def test_meta_refresh_target_is_read() -> None:
    html = b'<html><head><meta http-equiv="Refresh" content="0; URL=\'/\'"></head></html>'
    assert page_text(html).refresh == "/"
    assert page_text(b"<html><body>x</body></html>").refresh is None


def test_chinese_is_tokenised_by_character_and_digits_are_dropped() -> None:
    assert tokens("市政府 2024年 budget 1,234 views") == ["市", "政", "府", "年", "budget", "views"]


def test_chrome_only_changes_are_not_a_different_page() -> None:
    path = "/news/2020/city"
    first = bodies.article_html("news.example", path)
    changed = first.replace(b"<footer>", b'<footer><span class="counter">99 views</span>')
    _, one = fingerprint_page(first)
    _, two = fingerprint_page(changed)
    assert one.similarity(two) == 1.0


def test_a_replaced_article_is_a_different_page() -> None:
    _, one = fingerprint_page(bodies.article_html("news.example", "/a/first-story"))
    _, two = fingerprint_page(bodies.article_html("news.example", "/a/other-story"))
    assert one.similarity(two) < 0.2


def test_chinese_articles_compare_by_content() -> None:
    a = chinese_article("gbk.example", "/zh/story-a", traditional=False).encode("gbk")
    b = chinese_article("gbk.example", "/zh/story-b", traditional=False).encode("gbk")
    _, fa = fingerprint_page(a, "text/html")
    _, fa2 = fingerprint_page(a, "text/html; charset=gbk")
    _, fb = fingerprint_page(b, "text/html")
    assert fa.similarity(fa2) == 1.0
    assert fa.similarity(fb) < 0.3


def test_similarity_estimates_jaccard() -> None:
    words = [f"w{i}" for i in range(400)]
    base = " ".join(words)
    half = " ".join(words[:200] + [f"x{i}" for i in range(200)])
    estimate = Fingerprint.of_text(base).similarity(Fingerprint.of_text(half))
    # exact Jaccard of the 3-shingle sets: 198 shared of 398 + 200 - 198 + ... ~ 0.33
    assert 0.2 < estimate < 0.48


def test_empty_texts() -> None:
    empty = Fingerprint.of_text("")
    assert empty.empty and empty.similarity(Fingerprint.of_text("")) == 1.0
    assert empty.similarity(Fingerprint.of_text("some words here")) == 0.0


@given(st.text(max_size=300))
@settings(max_examples=150, deadline=None)
def test_fingerprints_survive_the_database(text: str) -> None:
    fingerprint = Fingerprint.of_text(text)
    stored = fingerprint.dumps()
    assert stored.startswith("bk1:") and len(stored) < 400
    assert Fingerprint.loads(stored) == fingerprint
    assert fingerprint.similarity(Fingerprint.loads(stored)) == 1.0


@given(st.text(max_size=200), st.text(max_size=200))
@settings(max_examples=150, deadline=None)
def test_similarity_is_a_symmetric_score(a: str, b: str) -> None:
    one, two = Fingerprint.of_text(a), Fingerprint.of_text(b)
    assert 0.0 <= one.similarity(two) <= 1.0
    assert one.similarity(two) == pytest.approx(two.similarity(one))


@given(st.binary(max_size=2000), st.sampled_from([None, "text/html", "text/html; charset=gbk",
                                                 "text/html; charset=bogus"]))
@settings(max_examples=150, deadline=None)
def test_any_bytes_decode_without_failing(body: bytes, content_type: str | None) -> None:
    text, encoding = decode_html(body, content_type)
    assert isinstance(text, str) and encoding
    page_text(body, content_type)


def test_unreadable_stored_fingerprints_are_ignored() -> None:
    assert load_fingerprint(None) is None
    assert load_fingerprint("bk9:1:AAAA") is None
    assert load_fingerprint("bk1:1:not base64!") is None


def test_html_is_recognised_by_type_or_by_its_first_bytes() -> None:
    assert is_html("text/html; charset=utf-8")
    assert not is_html("image/png", b"<html>")
    assert is_html(None, b"<!DOCTYPE html><html>")
    assert not is_html("application/octet-stream", b"\x89PNG")
