"""Sites that lie about death, for soft-404 and drift tests: the fault web's "truth" hosts.

Articles exist on these hosts only where the last path segment starts with
``story-`` (``/news/2019/story-city-budget``); every other path is unknown,
which is what a random soft-404 probe asks for. Each host answers unknown
paths its own way:

* ``soft404.example``: 200 with a "page not found" page in the site's chrome.
* ``redirect-home.example``: 302 to ``/``.
* ``meta-refresh.example``: 200 with ``<meta http-equiv=refresh content="0; url=/">``.
* ``gbk.example`` / ``big5.example``: Chinese articles encoded GBK (declared
  only in ``<meta charset=gbk>``) and Big5 (declared in the header), whose
  unknown paths answer 200 with a Chinese "page does not exist" page.

Path behaviours on every host: ``/drift/<id>`` serves an article, then from
the second request on a different article at the same address (200 all
along); ``/chrome/<id>`` serves the same article every time while the date,
view counter and advert in its chrome change on every request (not drift).
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from html import escape

from aiohttp import web

from linkkeeper.faultweb import bodies
from linkkeeper.faultweb.behaviours import Behaviour, Hit

SOFT404_HOST = "soft404.example"
REDIRECT_HOME_HOST = "redirect-home.example"
META_REFRESH_HOST = "meta-refresh.example"
GBK_HOST = "gbk.example"
BIG5_HOST = "big5.example"
TRUTH_HOSTS = (SOFT404_HOST, REDIRECT_HOME_HOST, META_REFRESH_HOST, GBK_HOST, BIG5_HOST)
ARTICLE_PREFIX = "story-"

_SIMPLIFIED_TEXT = (
    "市政府 今天 公布 新的 年度 预算 教育 交通 投入 大幅 增加 议员 下周 表决 河流 防洪 工程 "
    "学校 医院 居民 抗议 铁路 车站 博物馆 展览 选举 部长 法院 裁决 农民 干旱 能源 价格 住房 警方 调查"
)
_TRADITIONAL_TEXT = (
    "市政府 今天 公佈 新的 年度 預算 教育 交通 投入 大幅 增加 議員 下週 表決 河流 防洪 工程 "
    "學校 醫院 居民 抗議 鐵路 車站 博物館 展覽 選舉 部長 法院 裁決 農民 乾旱 能源 價格 住房 警方 調查"
)
_SIMPLIFIED = _SIMPLIFIED_TEXT.split()
_TRADITIONAL = _TRADITIONAL_TEXT.split()


def is_article(path: str) -> bool:
    return path.rstrip("/").rsplit("/", 1)[-1].startswith(ARTICLE_PREFIX)


def site_page(name: str, title: str, main: str, *, charset: str = "utf-8", extra_head: str = "",
            lang: str = "en", top: str = "", bottom: str = "") -> str:
    """A news site's page: navigation, advert, main content, footer."""
    return f"""<!DOCTYPE html>
<html lang="{lang}">
<head>
  <meta charset="{charset}">
  <title>{escape(title)}</title>{extra_head}
</head>
<body>
  <header class="masthead"><a href="/">{escape(name)}</a>{top}</header>
  <nav class="menu"><a href="/news/">News</a> <a href="/sport/">Sport</a> <a href="/search">Search</a></nav>
  <div class="ad">Advertisement: subscribe for unlimited access</div>
  <main>
{main}
  </main>
  <footer>&copy; {escape(name)}{bottom}</footer>
</body>
</html>
"""


def chinese_article(host: str, path: str, *, traditional: bool) -> str:
    rng = random.Random(bodies.seed_for(host, path))
    words = _TRADITIONAL if traditional else _SIMPLIFIED
    headline = "".join(rng.choice(words) for _ in range(4))
    paragraphs = "\n".join(
        "    <p>" + "，".join("".join(rng.choice(words) for _ in range(5)) for _ in range(4)) + "。</p>"
        for _ in range(4)
    )
    main = f"    <article><h1>{headline}</h1>\n{paragraphs}\n    </article>"
    name = "大新聞網" if traditional else "大新闻网"
    charset = "big5" if traditional else "gbk"
    return site_page(name, f"{headline} - {name}", main, charset=charset, lang="zh")


def soft_page_en(host: str, path: str) -> str:
    main = (
        "    <h1>Sorry, we couldn't find that page</h1>\n"
        f"    <p>The page {escape(path)} was not found. It may have moved, or the address may be"
        " mistyped. Try the search box or browse our latest headlines.</p>"
    )
    return site_page(bodies.site_name(host), f"Page not found | {bodies.site_name(host)}", main)


def soft_page_zh(host: str, path: str, *, traditional: bool) -> str:
    if traditional:
        main = (f"    <h1>抱歉，您訪問的頁面不存在</h1>\n    <p>網址 {escape(path)} 可能已被移除或更改。"
                "請返回首頁繼續瀏覽最新新聞。</p>")
        return site_page("大新聞網", "頁面不存在 - 大新聞網", main, charset="big5", lang="zh")
    main = (f"    <h1>抱歉，您访问的页面不存在</h1>\n    <p>网址 {escape(path)} 可能已被删除或更改。"
            "请返回首页继续浏览最新新闻。</p>")
    return site_page("大新闻网", "页面不存在 - 大新闻网", main, charset="gbk", lang="zh")


def html_response(text: str, *, encoding: str = "utf-8", header_charset: str | None = "utf-8",
          status: int = 200) -> web.Response:
    response = web.Response(body=text.encode(encoding), status=status)
    response.headers["Content-Type"] = (
        f"text/html; charset={header_charset}" if header_charset else "text/html"
    )
    return response


# -- unknown paths on each truth host --------------------------------------------------------


async def soft404_host(hit: Hit) -> web.StreamResponse:
    if hit.path == "/":
        return html_response(bodies.home_html(hit.host).decode())
    if is_article(hit.path):
        return html_response(bodies.article_html(hit.host, hit.path).decode())
    return html_response(soft_page_en(hit.host, hit.path))


async def redirect_home_host(hit: Hit) -> web.StreamResponse:
    if hit.path == "/":
        return html_response(bodies.home_html(hit.host).decode())
    if is_article(hit.path):
        return html_response(bodies.article_html(hit.host, hit.path).decode())
    response = web.Response(status=302, text="Found", content_type="text/plain")
    response.headers["Location"] = hit.absolute("/")
    return response


async def meta_refresh_host(hit: Hit) -> web.StreamResponse:
    if hit.path == "/":
        return html_response(bodies.home_html(hit.host).decode())
    if is_article(hit.path):
        return html_response(bodies.article_html(hit.host, hit.path).decode())
    refresh = '\n  <meta http-equiv="refresh" content="0; url=/">'
    main = '    <p>Redirecting to <a href="/">the front page</a>…</p>'
    return html_response(site_page(bodies.site_name(hit.host), bodies.site_name(hit.host), main,
                         extra_head=refresh))


async def gbk_host(hit: Hit) -> web.StreamResponse:
    """GBK pages declared only by <meta charset>: the header names no charset."""
    if is_article(hit.path) or hit.path == "/":
        return html_response(chinese_article(hit.host, hit.path, traditional=False), encoding="gbk",
                     header_charset=None)
    return html_response(soft_page_zh(hit.host, hit.path, traditional=False), encoding="gbk",
                 header_charset=None)


async def big5_host(hit: Hit) -> web.StreamResponse:
    if is_article(hit.path) or hit.path == "/":
        return html_response(chinese_article(hit.host, hit.path, traditional=True), encoding="big5",
                     header_charset="big5")
    return html_response(soft_page_zh(hit.host, hit.path, traditional=True), encoding="big5",
                 header_charset="big5")


# -- drift and chrome-only changes (any host) ------------------------------------------------


def article_main(host: str, path: str) -> str:
    """The <article> element of the fault web's article page for (host, path)."""
    html = bodies.article_html(host, path).decode()
    return html[html.index("  <article>") : html.index("</article>") + len("</article>")]


async def drift(hit: Hit) -> web.StreamResponse:
    """/drift/<id>: the cited article first, then another article at the same address."""
    seed_path = hit.path if hit.count == 1 else hit.path + "/replaced"
    main = article_main(hit.host, seed_path)
    body = site_page(bodies.site_name(hit.host), bodies.title_for(hit.path), main).encode()
    hit.remember(body)
    return html_response(body.decode())


async def chrome(hit: Hit) -> web.StreamResponse:
    """/chrome/<id>: the same article; date, view counter and advert change on every request."""
    day = date(2024, 1, 1) + timedelta(days=hit.count)
    top = f'<span class="date">{day:%A %d %B %Y}</span>'
    bottom = (f'<span class="counter">{hit.count * 1379} views</span>'
              f'<div class="ad">{random.Random(hit.count).choice(bodies._WORDS)} sale today</div>')
    main = article_main(hit.host, hit.path)
    body = site_page(bodies.site_name(hit.host), bodies.title_for(hit.path), main, top=top,
                   bottom=bottom).encode()
    hit.remember(body)
    return html_response(body.decode())


TRUTH_BEHAVIOURS: tuple[Behaviour, ...] = (
    Behaviour("drift", drift, None, "/drift/<id>: an article, then another one at the same URL"),
    Behaviour("chrome", chrome, None, "/chrome/<id>: same article, changing date/counter/advert"),
)
HOST_BEHAVIOURS: dict[str, Behaviour] = {
    SOFT404_HOST: Behaviour("*", soft404_host, None, "story-* articles, else 200 'not found'"),
    REDIRECT_HOME_HOST: Behaviour("*", redirect_home_host, None, "story-* articles, else 302 /"),
    META_REFRESH_HOST: Behaviour("*", meta_refresh_host, None, "story-*, else meta refresh to /"),
    GBK_HOST: Behaviour("*", gbk_host, None, "GBK story-* articles, else 200 页面不存在"),
    BIG5_HOST: Behaviour("*", big5_host, None, "Big5 story-* articles, else 200 頁面不存在"),
}
