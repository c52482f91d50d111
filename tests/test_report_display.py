"""The HTML report answers instead of puzzling: readable IRIs (exact URL kept), links worst
first, hosts' typical reason, a history axis scaled to the data, long lists paged."""

from __future__ import annotations

import json
import re
from urllib.parse import quote

import idna
from hypothesis import given, settings
from hypothesis import strategies as st
from report_world import CHINESE, CHINESE_SHOWN, PUNY, PUNY_SHOWN, big_report

from linkkeeper.report import charts
from linkkeeper.report.data import RunPoint, severity
from linkkeeper.report.html import PAGE, POST_PAGE, render_html, table_data
from linkkeeper.report.iri import display_host, display_url
from linkkeeper.urls import normalize_url

# --- readable IRIs ------------------------------------------------------------------------------


def test_display_decodes_what_helps_and_keeps_what_changes_meaning() -> None:
    assert display_url(CHINESE) == CHINESE_SHOWN
    assert display_url(PUNY) == PUNY_SHOWN
    assert display_host("xn--bcher-kva.example") == "bücher.example"
    assert display_url("https://xn--fiqs8s.example:8080/a?q=%E4%B8%AD") == \
        "https://中国.example:8080/a?q=中"
    # ASCII escapes keep their meaning: %2F is not a path separator, %25 not an escape
    assert display_url("https://x.example/a%2Fb%25c%20d") == "https://x.example/a%2Fb%25c%20d"
    # invalid UTF-8 stays escaped, valid neighbours are decoded; no U+FFFD, no mojibake
    assert display_url("https://x.example/%FF%E4%B8%AD%E4%B8") == "https://x.example/%FF中%E4%B8"
    assert display_url("https://x.example/%C3%A9t%C3%A9") == "https://x.example/été"
    # what hides or imitates structure stays escaped: bidi override, fullwidth solidus, NBSP
    for escaped in ("%E2%80%AE", "%EF%BC%8F", "%C2%A0", "%EF%BF%BD", "%E2%80%8B"):
        assert display_url(f"https://x.example/{escaped}") == f"https://x.example/{escaped}"
    # a punycode label that is not valid IDNA stays as written
    assert display_url("https://xn--zz.example/") == "https://xn--zz.example/"
    # relative and other links: escapes decoded the same way, nothing else touched
    assert display_url("../%E4%B8%AD.html") == "../中.html"
    assert display_url("javascript:alert(1)") == "javascript:alert(1)"


@settings(deadline=None)  # pure and fast; a loaded machine must not fail it
@given(st.text())
def test_display_never_raises_and_never_invents_text(text: str) -> None:
    shown = display_url(text)
    assert isinstance(shown, str)
    shown.encode("utf-8")  # no lone surrogates
    assert "\ufffd" not in shown or "\ufffd" in text


SEGMENT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)


@settings(deadline=None)
@given(st.lists(SEGMENT, min_size=1, max_size=4), SEGMENT,
       st.sampled_from(["example.com", "bücher.example", "中国.example", "xn--zz.example",
                        "пример.рф"]))
def test_shown_iri_encodes_back_to_the_same_key(segments: list[str], query: str,
                                                host: str) -> None:
    info = normalize_url(f"https://{host}/" + "/".join(segments) + (f"?{query}" if query else ""))
    if info.status is not None:
        return  # not a checkable link: its key is the text as written
    shown = display_url(info.url)
    assert normalize_url(shown).url == info.url


@settings(deadline=None)
@given(st.binary(max_size=24))
def test_invalid_utf8_is_shown_raw_not_as_mojibake(data: bytes) -> None:
    url = "https://x.example/" + quote(data, safe="")
    shown = display_url(url)
    assert "\ufffd" not in shown
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        assert "%" in shown  # the bad bytes stay escaped
    assert normalize_url(shown).url == normalize_url(url).url


def test_idna_display_round_trips() -> None:
    for host in ("xn--fiqs8s.example", "xn--e1afmkfd.xn--p1ai", "www.xn--bcher-kva.example"):
        assert idna.encode(display_host(host)).decode() == host


# --- the page ----------------------------------------------------------------------------------


def test_links_worst_first_and_invalid_last() -> None:
    rep = big_report(2_000)
    data = table_data(rep)
    groups = [severity(lnk) for lnk in sorted(rep.shown, key=severity)]
    assert groups == sorted(groups)
    names = [data["statuses"][row[2]] for row in data["rows"]]
    states = [data["states"][row[3]] for row in data["rows"]]
    assert states[0] == "dead" and names[-1] == "invalid"
    first_soft = names.index("soft-404")
    assert all(s == "dead" for s in states[:first_soft])
    assert names.index("blocked") > max(i for i, n in enumerate(names) if n == "broken")
    # statuses listed worst first, so sorting the Status column sorts by severity
    assert data["statuses"][:2] == ["soft-404", "broken"] and data["statuses"][-1] == "invalid"
    # newly broken, and within a post, worst first too
    assert all(severity(a) <= severity(b) for a, b in zip(rep.newly_broken, rep.newly_broken[1:],
                                                          strict=False))


def test_page_renders_first_pages_and_keeps_the_rest_inert() -> None:
    rep = big_report(20_000)
    page = render_html(rep)
    outside = re.sub(r"<template class=\"more\">.*?</template>", "", page, flags=re.S)
    # at load: one page of each list in the DOM, the rest in <template>s
    assert outside.count('<article class="post">') == POST_PAGE
    hosts = outside[outside.index('id="hosts-list"'):outside.index("</tbody>",
                                                                   outside.index('id="hosts-list"'))]
    assert hosts.count("<tr>") == PAGE
    assert outside.count("<tr") < 400
    assert page.count('<article class="post">') == min(1000, len(rep.posts))
    assert 'class="show-more" data-list="posts-list"' in page
    # hosts name the reason, with its status
    assert "no answer in 15 s" in hosts and '<span class="badge s-timeout">timeout</span>' in hosts
    # readable IRIs, exact URL in href, title and data-url
    data = json.loads(re.search(r'id="links-data">(.*?)</script>', page, re.S).group(1))
    shown = {row[0]: row[12] for row in data["rows"]}
    assert shown[CHINESE] == CHINESE_SHOWN and shown[PUNY] == PUNY_SHOWN
    assert shown[rep.links[0].url] == ""  # nothing to decode: nothing repeated
    assert "中国.example" in data["hosts"]
    small = render_html(big_report(40))
    assert (f'href="{CHINESE}" rel="noopener noreferrer" title="{CHINESE}" '
            f'data-url="{CHINESE}">{CHINESE_SHOWN}</a>') in small


def test_history_axis_follows_the_data() -> None:
    assert charts.nice_ticks(4207) == [0, 1000, 2000, 3000, 4000, 5000]
    assert charts.nice_ticks(10_300) == [0, 2500, 5000, 7500, 10_000, 12_500]
    assert charts.nice_ticks(7) == [0, 2, 4, 6, 8]
    assert charts.nice_ticks(1) == [0, 1] and charts.nice_ticks(0) == [0, 1]
    assert charts.nice_ticks(0.18, 4, whole=False) == [0, 0.05, 0.1, 0.15, 0.2]
    for top in (3, 99, 101, 4_999, 123_456, 1_000_000):
        ticks = charts.nice_ticks(top)
        assert ticks[0] == 0 and ticks[-1] >= top and 2 <= len(ticks) <= 6
        assert ticks[-2] < top  # the scale ends at the first round value above the data
    runs = [RunPoint(i, f"2026-01-{i:02d}T00:00:00+00:00", "complete",
                     {"ok": 4000, "broken": 207}) for i in range(1, 4)]
    svg = str(charts.history_chart(runs))
    labels = re.findall(r'text-anchor="end"[^>]*>([^<]+)</text>', svg)
    assert labels == ["0", "1,000", "2,000", "3,000", "4,000", "5,000"]  # not 0 and 10k
