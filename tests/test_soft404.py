"""Soft 404s against the fault-injection web: probes, redirects, meta refresh, text signals.

Hermetic: offline DNS and the web's connect-to mappings keep every byte on loopback.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from helpers import hermetic_options
from hypothesis import given, settings
from hypothesis import strategies as st
from yarl import URL

from linkkeeper.check.checker import Checker
from linkkeeper.check.fingerprint import PageText
from linkkeeper.check.options import CheckOptions
from linkkeeper.check.result import CheckResult
from linkkeeper.check.soft404 import (
    PROBE_PREFIX,
    applies,
    directory_key,
    generic_page,
    probe_url,
    text_signal,
)
from linkkeeper.faultweb import FaultWeb
from linkkeeper.vocab import Status


@pytest.fixture(scope="module")
def web() -> Iterator[FaultWeb]:
    with FaultWeb() as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh_log(web: FaultWeb) -> None:
    web.reset_log()


def options(web: FaultWeb, **overrides: Any) -> CheckOptions:
    return hermetic_options(web, **{"soft404": True, **overrides})


async def check(web: FaultWeb, urls: list[str], **overrides: Any) -> dict[str, CheckResult]:
    async with Checker(options(web, **overrides)) as checker:
        return {result.url: result async for result in checker.run(urls)}


# -- URLs ------------------------------------------------------------------------------------


def test_probe_replaces_the_last_segment_and_keeps_the_directory() -> None:
    url = URL("https://news.example/world/2019/05/story-city.html?utm=x#top")
    probe = URL(probe_url(url, token="lk404-abc"))
    assert str(probe) == "https://news.example/world/2019/05/lk404-abc.html"
    assert str(URL(probe_url(URL("http://a.example/news/item/")))).startswith(
        f"http://a.example/news/{PROBE_PREFIX}"
    )


def test_dated_directories_share_one_probe() -> None:
    one = directory_key(URL("http://a.example/news/2019/05/12/story-a"))
    two = directory_key(URL("http://a.example/news/2021/11/03/story-b"))
    other = directory_key(URL("http://a.example/sport/2021/11/03/story-b"))
    assert one == two != other
    assert directory_key(URL("https://a.example/news/x")) != directory_key(
        URL("http://a.example/news/x")
    )


@given(st.lists(st.text(alphabet="abcxyz019-._~%é", min_size=1, max_size=12), max_size=5),
       st.booleans())
@settings(max_examples=200, deadline=None)
def test_probes_stay_in_their_directory(segments: list[str], trailing: bool) -> None:
    path = "/" + "/".join(segments) + ("/" if trailing and segments else "")
    url = URL("http://news.example").with_path(path)
    probe = URL(probe_url(url))
    assert probe.host == "news.example" and probe.scheme == "http"
    assert directory_key(probe) == directory_key(url)
    assert probe.name.startswith(PROBE_PREFIX) or probe.parent.name.startswith(PROBE_PREFIX)
    assert probe != url


def test_roots_and_static_files_are_never_judged() -> None:
    assert not applies(URL("https://news.example/"))
    assert not applies(URL("https://news.example/index.html"))
    assert not applies(URL("https://news.example/en/"))
    assert not applies(URL("https://images.example/a/b.jpg"))
    assert applies(URL("https://news.example/news/2020/story"))


@pytest.mark.parametrize(
    ("target", "kind"),
    [
        ("https://news.example/", "home"),
        ("https://www.news.example/index.php", "home"),
        ("https://news.example/errors/404.html", "error-page"),
        ("https://news.example/search?q=story", "search-page"),
        ("https://news.example/account/login?next=/x", "login-page"),
        ("https://news.example/news/", "section-front"),
        ("https://news.example/news/2020/other-story", None),
        ("https://other.example/news/", None),
    ],
)
def test_generic_pages(target: str, kind: str | None) -> None:
    assert generic_page(URL(target), URL("https://news.example/news/2020/story")) == kind


@pytest.mark.parametrize(
    ("title", "heading", "text", "where"),
    [
        ("Page not found | Daily", "", "", "title"),
        ("Daily", "404 - Page Not Found", "", "heading"),
        ("Daily", "Oops", "Sorry, the page you requested could not be found.", "text"),
        ("页面不存在 - 新闻网", "", "", "title"),
        ("新聞網", "抱歉，您訪問的頁面不存在", "", "heading"),
        ("新闻网", "", "对不起，找不到该页面", "text"),
        ("Route 404 bus returns", "Route 404 bus returns", "The 404 bus runs again.", None),
        ("Not found guilty", "Not found guilty", "The jury found him not guilty.", None),
        ("警方仍找不到失踪男子", "警方仍找不到失踪男子", "警方表示仍在搜索。", None),
    ],
)
def test_text_signals_in_three_scripts(title: str, heading: str, text: str,
                                       where: str | None) -> None:
    found = text_signal(PageText(title, heading, text, None, "utf-8"))
    assert (found[0] if found else None) == where


# -- against the fault web -------------------------------------------------------------------


async def test_a_host_serving_soft_404s_for_every_unknown_path(web: FaultWeb) -> None:
    live = "http://soft404.example/news/2019/05/story-city-budget"
    gone = [f"http://soft404.example/news/2019/0{i}/gone-story-{i}" for i in range(1, 5)]
    results = await check(web, [live, *gone])
    assert results[live].status is Status.OK
    assert results[live].evidence["soft404"]["similarity"] < 0.2
    for url in gone:
        result = results[url]
        assert result.status is Status.SOFT_404, result.reason
        evidence = result.evidence["soft404"]
        assert "like-probe" in evidence["signals"] and "text-in-title" in evidence["signals"]
        assert evidence["similarity"] >= 0.75
        assert evidence["probe"]["url"].startswith("http://soft404.example/news/2019/")
        assert evidence["text"] == {"where": "title", "phrase": "Page not found"}
        assert result.reason.startswith("soft 404: ")
    # one probe for the whole dated directory, paid once
    probes = [e for e in web.requests(host="soft404.example") if PROBE_PREFIX in e.path]
    assert len(probes) == 1
    assert sum(r.requests for r in results.values()) == len(web.requests(host="soft404.example"))


async def test_a_host_redirecting_unknown_paths_home(web: FaultWeb) -> None:
    live = "http://redirect-home.example/news/2020/story-a"
    gone = "http://redirect-home.example/news/2020/gone-a"
    results = await check(web, [live, gone])
    assert results[live].status is Status.OK
    result = results[gone]
    assert result.status is Status.SOFT_404
    assert {"redirect-to-home", "redirect-like-probe"} <= set(result.evidence["soft404"]["signals"])
    assert result.final_url == "http://redirect-home.example/"


async def test_a_meta_refresh_to_the_home_page(web: FaultWeb) -> None:
    gone = "http://meta-refresh.example/news/2020/gone-a"
    results = await check(web, [gone, "http://meta-refresh.example/news/2020/story-b"])
    assert results[gone].status is Status.SOFT_404
    assert "meta-refresh-to-home" in results[gone].evidence["soft404"]["signals"]
    assert results[gone].evidence["soft404"]["refresh"] == "http://meta-refresh.example/"
    assert results["http://meta-refresh.example/news/2020/story-b"].status is Status.OK


@pytest.mark.parametrize(
    ("host", "phrase"), [("gbk.example", "页面不存在"), ("big5.example", "頁面不存在")]
)
async def test_gbk_and_big5_pages(web: FaultWeb, host: str, phrase: str) -> None:
    live = f"http://{host}/zh/2020/story-budget"
    gone = f"http://{host}/zh/2020/gone-budget"
    results = await check(web, [live, gone], read_pages=True)
    assert results[live].status is Status.OK and results[live].fingerprint
    result = results[gone]
    assert result.status is Status.SOFT_404
    assert result.evidence["soft404"]["text"]["phrase"] == phrase
    assert "like-probe" in result.evidence["soft404"]["signals"]


async def test_a_deep_link_redirected_home_on_an_honest_host(web: FaultWeb) -> None:
    url = "http://news.example/redirect-to?url=http://news.example/&code=301"
    deep = "http://news.example/articles/2020/story?x=1"
    web.reset_log()
    results = await check(web, [url])
    # a redirect-to URL has a query: it is judged like any deep link
    assert results[url].status is Status.SOFT_404
    assert results[url].evidence["soft404"]["probe"]["http_status"] == 404
    assert not applies(URL("http://news.example/")) and applies(URL(deep))


async def test_honest_hosts_keep_head_and_moved_articles_stay_alive(web: FaultWeb) -> None:
    urls = [f"http://news.example/status/404/gone-{i}" for i in range(3)]
    moved = "http://news.example/redirect/301/1/new-home-of-story"
    results = await check(web, [*urls, moved])
    assert all(results[u].status is Status.BROKEN for u in urls)
    assert results[moved].status is Status.REDIRECTED
    assert results[moved].permanent_redirect


async def test_transient_503_and_bot_blocks_are_not_soft_404s(web: FaultWeb) -> None:
    flaky, blocked = "http://news.example/flaky/1/soft-t", "http://news.example/block/403/soft-b"
    results = await check(web, [flaky, blocked])
    assert results[flaky].status is Status.OK
    assert results[blocked].status is Status.BLOCKED


async def test_without_soft404_nothing_is_probed(web: FaultWeb) -> None:
    gone = "http://soft404.example/news/2019/05/gone-quietly"
    results = await check(web, [gone], soft404=False)
    assert results[gone].status is Status.OK and results[gone].requests == 1
    assert not [e for e in web.log if PROBE_PREFIX in e.path]


async def test_probes_are_shared_by_concurrent_links_and_counted_once(web: FaultWeb) -> None:
    urls = [f"http://soft404.example/news/20{y:02d}/0{m}/gone-{y}-{m}" for y in range(10, 16)
            for m in range(1, 6)]
    async with Checker(options(web)) as checker:
        results = [r async for r in checker.run(urls)]
        stats = checker.soft404_stats
    assert all(r.status is Status.SOFT_404 for r in results)
    assert stats == {"probes": 1, "probe_requests": 1}
    assert sum(r.requests for r in results) == len(urls) + 1 + 1  # + probe + first link's GET
