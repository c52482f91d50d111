"""Hand-verified links of real posts from the shared corpus (read there, never copied here).

Each list was written by reading the post's source (front matter, title line and every
a/img/iframe/... tag), not from the extractor's output: source, lead image, zoom link and
icon, inline and related links, each with its kind. The posts are parsed with a site URL,
as a scan of a Jekyll site does, so root-relative links resolve against the mirror site.
"""

from __future__ import annotations

import os
import pathlib
from collections import Counter

import pytest

from linkkeeper.extract.post import ParsedPost, parse_post


def corpus_dir() -> pathlib.Path:
    configured = os.environ.get("LINKKEEPER_CORPUS")
    if configured:
        path = pathlib.Path(configured)
        return path / "posts" if (path / "posts").is_dir() else path
    return pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "posts"


CORPUS = corpus_dir()
SITE = "https://mirror.example/"

pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"corpus not found at {CORPUS}")


def parse(name: str) -> ParsedPost:
    path = CORPUS / name
    if not path.is_file():
        pytest.skip(f"{name} is not in this corpus")
    parsed = parse_post(path.read_bytes(), path=name, site_url=SITE)
    assert parsed.ok, parsed.problems
    assert not parsed.problems
    return parsed


def pairs(parsed: ParsedPost) -> set[tuple[str, str]]:
    return {(o.url, o.kind) for o in parsed.occurrences}


def lines_of(parsed: ParsedPost, url: str) -> list[int]:
    return sorted(o.line for o in parsed.occurrences if o.url == url)


# --- RFA: source + title line, three one-link lists of related stories, Facebook videos ------

RFA = "2020-07-24-中方限美国72小时关成都总领馆 当地或爆发反美浪潮.md"
RFA_SOURCE = "https://www.rfa.org/mandarin/yataibaodao/junshiwaijiao/gf-07242020074419.html"
FB_VIDEO = (
    "https://www.facebook.com/plugins/video.php?href=https%3A%2F%2Fwww.facebook.com%2FRFAChinese"
    "%2Fvideos%2F{}%2F&show_text=0&width=622"
)


def test_rfa() -> None:
    parsed = parse(RFA)
    assert pairs(parsed) == {
        (RFA_SOURCE, "source"),
        ("http://www.rfa.org/mandarin/Xinwen/WUL0724A-07242020005106.html", "related"),
        ("http://www.rfa.org/mandarin/Xinwen/8-07232020121204.html", "related"),
        ("http://www.rfa.org/mandarin/Xinwen/WUL0722B-07222020062218.html", "related"),
        (FB_VIDEO.format("326145388554576"), "embed"),
        (FB_VIDEO.format("209586500414230"), "embed"),
        (FB_VIDEO.format("973611129718416"), "embed"),
    }
    assert lines_of(parsed, RFA_SOURCE) == [6, 11]
    assert parsed.source_url == RFA_SOURCE
    assert {o.line for o in parsed.occurrences if o.kind != "source"} == {15}


# --- RFA: images with zoom links (root-relative) and the zoom icon ---------------------------

RFA_ZOOM = "2020-08-13-中国粮食产量大跌三成 中央和各地反报喜大丰收.md"


def test_rfa_zoom_links_and_icon() -> None:
    parsed = parse(RFA_ZOOM)
    story = "yataibaodao/jingmao/ql1-08132020062337.html"
    assert pairs(parsed) == {
        (f"https://www.rfa.org/mandarin/{story}", "source"),
        ("http://www.rfa.org/mandarin/yataibaodao/jingmao/gf1-08122020075405.html", "related"),
        ("http://www.rfa.org/mandarin/yataibaodao/zhengzhi/ql2-07232020084227.html", "related"),
        ("http://www.rfa.org/mandarin/yataibaodao/jingmao/gf1-07292020072904.html", "related"),
        (f"https://www.rfa.org/mandarin/{story}/PEOPLE.jpeg", "image"),
        (f"https://www.rfa.org/mandarin/{story}/00-9d67b8.jpg", "image"),
        (f"https://www.rfa.org/mandarin/{story}/m0813-ql1p1.jpg", "image"),
        # the zoom links and icon are root-relative in the mirrored HTML: on the mirror
        # site they point at the mirror, and that is what a reader's click would fetch
        (f"https://mirror.example/mandarin/{story}/PEOPLE.jpeg", "image"),
        (f"https://mirror.example/mandarin/{story}/00-9d67b8.jpg", "image"),
        (f"https://mirror.example/mandarin/{story}/m0813-ql1p1.jpg", "image"),
        ("https://mirror.example/rfa_resources/graphics/icon-zoom.png", "image"),
    }
    zooms = [o for o in parsed.occurrences if o.element == "a" and o.kind == "image"]
    assert [o.text for o in zooms] == [
        "1958年8月13日的人民日报",
        "百年一遇的洪灾，湖北、安徽及江苏部分地区被洪水淹没。（AFP）",
        "中国粮食和物资储备局公布夏粮收购进度，显示同比往年减少约三成。（网页截图/乔龙提供）",
    ]
    icons = [o for o in parsed.occurrences if o.url.endswith("icon-zoom.png")]
    assert len(icons) == 3
    assert icons[0].original == "/rfa_resources/graphics/icon-zoom.png"


# --- DW: `from:` with raw spaces and Chinese, title line percent-encoded: one key --------------

DW = "2020-07-21-疫后振兴 欧盟通过史上最大财政援助案 .md"
DW_SOURCE = (
    "https://www.dw.com/zh/%E7%96%AB%E5%90%8E%E6%8C%AF%E5%85%B4%20%E6%AC%A7%E7%9B%9F%E9%80%9A"
    "%E8%BF%87%E5%8F%B2%E4%B8%8A%E6%9C%80%E5%A4%A7%E8%B4%A2%E6%94%BF%E6%8F%B4%E5%8A%A9%E6%A1%88"
    "%20/a-54251612"
)


def test_dw() -> None:
    parsed = parse(DW)
    assert pairs(parsed) == {
        (DW_SOURCE, "source"),
        ("https://images.weserv.nl/?url=api.dw.com/image/54250466_303.jpg", "image"),
        ("https://images.weserv.nl/?url=api.dw.com/image/54250927_303.jpg", "image"),
    }
    sources = [o for o in parsed.occurrences if o.kind == "source"]
    assert [(o.line, o.element) for o in sources] == [(6, "front-matter:from"), (11, "md-link")]
    assert (
        sources[0].original
        == "https://www.dw.com/zh/疫后振兴 欧盟通过史上最大财政援助案 /a-54251612"
    )
    assert {o.wraps for o in parsed.occurrences if o.kind == "image"} == {
        "http://api.dw.com/image/54250466_303.jpg",
        "http://api.dw.com/image/54250927_303.jpg",
    }


# --- VOA: weserv proxy without a slash before '?' -------------------------------------------

VOA = "2020-08-12-泛美卫生组织：俄罗斯新冠疫苗必须得到世卫组织批准.md"


def test_voa() -> None:
    parsed = parse(VOA)
    source = "https://www.voachinese.com/a/paho-awaiting-russian-vaccine-test-results-20200812/5541060.html"
    image = "https://images.weserv.nl/?url=gdb.voanews.com/778645A3-F37C-4977-9418-EA19EC3A9C5A_r1_s_w900.jpg"
    assert pairs(parsed) == {(source, "source"), (image, "image")}
    (lead,) = [o for o in parsed.occurrences if o.kind == "image"]
    assert lead.original == (
        "https://images.weserv.nl?url=gdb.voanews.com/778645A3-F37C-4977-9418-EA19EC3A9C5A_r1_s_w900.jpg"
    )
    assert lead.wraps == "http://gdb.voanews.com/778645A3-F37C-4977-9418-EA19EC3A9C5A_r1_s_w900.jpg"
    assert lead.line == 15


# --- BBC: related-story lists, including the publisher's own 'http://https//' slips -----------

BBC = "2020-09-11-中国成功发射可重复使用航天器 揭开“神秘任务”面纱.md"


def test_bbc() -> None:
    parsed = parse(BBC)
    ichef = "https://ichef.bbci.co.uk/news/600/cpsprodpb/"
    assert pairs(parsed) == {
        ("http://www.bbc.com/zhongwen/simp/chinese-news-54102635", "source"),
        (f"{ichef}925C/production/_114286473_toppic.jpg", "image"),
        (f"{ichef}E07C/production/_114286475_pic2.jpg", "image"),
        (f"{ichef}49B4/production/_114286881_pic3.jpg", "image"),
        (f"{ichef}17E4C/production/_114286879_pic4.jpg", "image"),
        ("http://www.bbc.com/zhongwen/simp/chinese-news-50350031", "related"),
        ("http://www.bbc.com/zhongwen/simp/chinese-news-46760559", "related"),
        ("http://www.bbc.com/zhongwen/simp/chinese-news-46950032", "related"),
        ("http://www.bbc.com/zhongwen/simp/science-38312117", "related"),
        ("http://www.bbc.com/zhongwen/simp/science-39650620", "related"),
        ("http://www.bbc.com/zhongwen/simp/science-42971239", "related"),
        ("http://https//www.bbc.com/zhongwen/simp/chinese-news-38451050", "related"),
        ("http://https//www.bbc.com/zhongwen/simp/chinese-news-53512839", "related"),
    }
    texts = {o.text for o in parsed.occurrences if o.kind == "image"}
    # one img has a stray quote in its attributes (alt="US Air Force" s x-37b')
    assert texts == {
        "Chinese Long March 2F rocket",
        "US Air Force",
        "China Army person",
        "Tianwen-1 Mars rover",
    }


# --- RFI: double slash in the path, percent-encoded source ----------------------------------

RFI = "2020-11-20-股市新动向：卖黄金买疫苗.md"


def test_rfi() -> None:
    parsed = parse(RFI)
    source = (
        "http://www.rfi.fr//cn/%E7%94%9F%E6%80%81/20201120-%E8%82%A1%E5%B8%82%E6%96%B0%E5%8A%A8%E5%90%91"
        "-%E5%8D%96%E9%BB%84%E9%87%91%E4%B9%B0%E7%96%AB%E8%8B%97"
    )
    image = (
        "https://s.rfi.fr/media/display/0695f764-16c4-11ea-983b-005056a99247/w:310/p:16x9/"
        "8%E5%B9%B4%E9%9B%84%E8%B8%9E%E9%BB%84%E9%87%91%E7%94%9F%E4%BA%A7%E7%AC%AC%E4%B8%80%E5%A4%A7%E5%9B%BD.jpg"
    )
    assert pairs(parsed) == {(source, "source"), (image, "image")}
    assert lines_of(parsed, source) == [6, 11]


# --- NYT: inline citations, weserv images ---------------------------------------------------

NYT = "2020-11-04-中国监管机构叫停蚂蚁集团IPO.md"


def test_nyt() -> None:
    parsed = parse(NYT)
    weserv = "https://images.weserv.nl/?url=static01.nyt.com/images/2020/11/03/world/"
    assert pairs(parsed) == {
        ("https://cn.nytimes.com/business/20201104/ant-ipo-jack-ma-summoned/", "source"),
        (f"{weserv}03china-ant-1/03china-ant-1-articleLarge-v3.jpg", "image"),
        (f"{weserv}03CHINA-ANT3/03CHINA-ANT3-articleLarge.jpg", "image"),
        ("https://www.nytimes.com/2020/10/26/technology/ant-group-ipo-valuation.html", "inline"),
        (
            "http://www.sse.com.cn/disclosure/announcement/general/c/c_20201103_5253315.shtml",
            "inline",
        ),
        ("http://www.csrc.gov.cn/pub/newsite/zjhxwfb/xwdd/202011/t20201102_385514.html", "inline"),
        ("https://cn.nytimes.com/technology/20201027/ant-group-ipo-china/", "inline"),
        ("https://www1.hkexnews.hk/listedco/listconews/sehk/2020/1103/2020110302285.pdf", "inline"),
        ("https://mp.weixin.qq.com/s/u6mFdEtN7jfMcSDAbu67TA", "inline"),
        ("http://www.ce.cn/xwzx/gnsz/gdxw/202011/03/t20201103_35969417.shtml", "inline"),
        ("http://www.cbirc.gov.cn/cn/view/pages/ItemDetail.html?docId=938821&itemId=951", "inline"),
        (
            "https://finance.sina.com.cn/money/bank/bank_hydt/2020-10-24/doc-iiznezxr7822563.shtml",
            "inline",
        ),
        (
            "https://m.21jingji.com/article/20201102/herald/62dfca7696f0148a9353a88dbd9eedf5.html",
            "inline",
        ),
        ("https://twitter.com/zhonggg", "inline"),
        ("https://www.nytimes.com/2020/11/03/technology/ant-ipo-jack-ma-summoned.html", "inline"),
    }
    english = [o for o in parsed.occurrences if o.url.endswith("ant-ipo-jack-ma-summoned.html")]
    assert english[0].text == "点击查看本文英文版。"


# --- Zaobao: lazy lead image (data-src), a broken 'undefined' src, promo images and links ----

ZAOBAO = "2021-05-09-钟南山：中国疫苗接种率距全民免疫还远远不够.md"


def test_zaobao() -> None:
    parsed = parse(ZAOBAO)
    subscribe = (
        "https://subscribe.sph.com.sg/promotions/chinese-3-months-99-cents-promotion/?utm_campaign=cn3in199c"
        "&utm_medium=sph-publication&utm_source=zb&utm_content=subscribelink-free-endofarticle"
    )
    assert pairs(parsed) == {
        ("https://www.zaobao.com/realtime/china/story20210509-1145405", "source"),
        ("https://www.zaobao.com/realtime/china/undefined", "image"),
        (
            "https://static.zaobao.com/s3fs-public/styles/article_large_full/public/2021-05/xwecefrfe.JPG"
            "?tVL0RazeVAt53rAabRzipJebWkD6sWgI&itok=4OJLpjoN",
            "image",
        ),
        (
            "https://static.zaobao.com/s3fs-public/freemium_images/20210209/399-default-desktop-l_0_1.jpg",
            "image",
        ),
        (
            "https://static.zaobao.com/s3fs-public/freemium_images/20210209/399-default-mobile_1.jpg",
            "image",
        ),
        (subscribe, "inline"),
    }
    assert lines_of(parsed, subscribe) == [15, 15]  # two links, two occurrences
    lead = [o for o in parsed.occurrences if o.element == "img-data-src"]
    assert len(lead) == 1 and lead[0].text.startswith("钟南山昨天在")
    # src and data-src naming the same promo image make one occurrence, not two
    promos = [o for o in parsed.occurrences if "freemium_images" in o.url]
    assert [o.element for o in promos] == ["img", "img"]


# --- CNA: lazy iframe, "延伸閱讀" further-reading block -------------------------------------

CNA = "2021-02-28-美FDA核准嬌生疫苗緊急使用 最快3月初開打.md"


def test_cna() -> None:
    parsed = parse(CNA)
    assert pairs(parsed) == {
        ("https://www.cna.com.tw/news/firstnews/202102280034.aspx", "source"),
        (
            "https://images.weserv.nl/?url=imgcdn.cna.com.tw/www/WebPhotos/1024/20210228/1440x666_106920012521.jpg",
            "image",
        ),
        (
            "https://docs.google.com/spreadsheets/d/e/2PACX-1vQ6pqHjUl5EUmBq3DWwm-B38uyFHhWuJsOj5TLYvvyyARNNx03fsLTyQz7S4"
            "_DOmIOtzLZ4UvlDPH3V/pubhtml?gid=431322219&ampsingle=true&widget=false&headers=false&chrome=false",
            "embed",
        ),
        ("https://www.cna.com.tw/news/aopl/202102280021.aspx", "related"),
        ("https://www.cna.com.tw/news/firstnews/202102280005.aspx", "related"),
        ("https://www.cna.com.tw/news/firstnews/202102080008.aspx", "related"),
        ("https://www.cna.com.tw/news/aopl/202102250002.aspx", "related"),
        ("https://www.cna.com.tw/news/aopl/202011170046.aspx", "related"),
        ("https://www.cna.com.tw/news/aopl/202010130055.aspx", "related"),
    }
    related = [o.text for o in parsed.occurrences if o.kind == "related"]
    assert related[0] == "美FDA批准嬌生疫苗 拜登：好消息但仍不得大意"


# --- FT: thumbor image proxy wrapping another thumbor URL ------------------------------------

FT = "2020-07-23-中国有机食品为何那么贵？.md"


def test_ft_thumbor() -> None:
    parsed = parse(FT)
    image = "https://thumbor.ftacademy.cn/unsafe/1340x754/https://thumbor.ftacademy.cn/unsafe/picture/1/000097871_piclink.jpg"
    assert pairs(parsed) == {
        ("https://cn.ft.com/story/001088672?full=y", "source"),
        (image, "image"),
    }
    (lead,) = [o for o in parsed.occurrences if o.kind == "image"]
    assert lead.wraps == "https://thumbor.ftacademy.cn/unsafe/picture/1/000097871_piclink.jpg"


# --- iYouPort (oped2): WordPress page with Jetpack lazy images, share and tag lists -----------

IYOUPORT = "2016-09-24-在中国：内容创业者的背面 - iYouPort.md"
IYP_POST = (
    "https://www.iyouport.org/%E5%9C%A8%E4%B8%AD%E5%9B%BD%EF%BC%9A%E5%86%85%E5%AE%B9%E5%88%9B%E4%B8%9A"
    "%E8%80%85%E7%9A%84%E8%83%8C%E9%9D%A2/"
)
WP_IMG = "https://i1.wp.com/www.iyouport.org/wp-content/uploads/2019/08/00-4.png"


def test_iyouport() -> None:
    parsed = parse(IYOUPORT)
    site = "https://www.iyouport.org/"
    assert pairs(parsed) == {
        (IYP_POST, "source"),
        (f"{site}author/don-evans/", "inline"),
        (f"{site}category/newsletters/", "inline"),
        (f"{site}category/opinion/", "inline"),
        (f"{site}category/%E5%85%B3%E4%BA%8E%E4%B8%AD%E5%9B%BD/", "inline"),
        (
            f"{site}category/%E5%AE%A1%E6%9F%A5%E5%92%8C%E8%87%AA%E6%88%91%E5%AE%A1%E6%9F%A5/",
            "inline",
        ),
        (f"{WP_IMG}?resize=960%2C484&ssl=1", "image"),
        (f"{WP_IMG}?resize=960%2C484&is-pending-load=1", "image"),  # '#038;ssl=1' is a fragment
        ("data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7", "image"),
        (f"{WP_IMG}?w=960&ssl=1", "image"),
        (f"{WP_IMG}?resize=300%2C151&ssl=1", "image"),
        (f"{WP_IMG}?resize=768%2C387&ssl=1", "image"),
        ("https://pao-pao.net/article/714", "inline"),
        ("https://pao-pao.net/article/740", "inline"),
        ("https://pao-pao.net/article/689", "inline"),
        ("https://steemit.com/bigdata/@iyouport/5ufmfe", "inline"),
        (f"{IYP_POST}?share=twitter", "inline"),  # share buttons: a list of links, not stories
        (f"{IYP_POST}?share=facebook", "inline"),
        (f"{site}tag/censorship/", "inline"),
        (f"{site}tag/china/", "inline"),
        (f"{site}tag/selfcensorship/", "inline"),
        (f"{site}tag/social-media/", "inline"),
    }
    placeholder = [o for o in parsed.occurrences if o.url.startswith("data:")]
    assert [(o.status, o.line) for o in placeholder] == [("excluded", 65)]
    assert {o.wraps for o in parsed.occurrences if o.url.startswith(WP_IMG)} == {
        "https://www.iyouport.org/wp-content/uploads/2019/08/00-4.png",
        "http://www.iyouport.org/wp-content/uploads/2019/08/00-4.png",  # no ssl=1 left in its query
    }
    # the lazy image (line 65) and its <noscript> twin (line 67) are both in the page
    assert lines_of(parsed, f"{WP_IMG}?w=960&ssl=1") == [65, 67]
    assert lines_of(parsed, "https://steemit.com/bigdata/@iyouport/5ufmfe") == [171]


# --- pao-pao 2014 (oped2): a mirrored Drupal page with related articles and spam comments ----

PAOPAO = "2014-04-16-伊力哈木的破碎之家.md"


def test_paopao_with_comments() -> None:
    parsed = parse(PAOPAO)
    title = "%E4%BC%8A%E5%8A%9B%E5%93%88%E6%9C%A8%E7%9A%84%E7%A0%B4%E7%A2%8E%E4%B9%8B%E5%AE%B6"
    files = "https://pao-pao.net/sites/pao-pao.net/files/styles/"
    icons = "https://pao-pao.net/sites/pao-pao.net/themes/rnw_paopao/servicelinks/png/"
    article = {
        ("https://pao-pao.net/article/74", "source"),
        ("https://mirror.example/author/64", "inline"),
        ("https://mirror.example/file/135", "inline"),
        (f"{files}article_detail/public/reporters_12574736.jpg?itok=WA6Clq8O", "image"),
        ("http://store.reporters.be/index.pgi", "inline"),
        ("https://web.archive.org/web/20131019093409/http://www.uighurbiz.net/", "inline"),
        ("https://pao-pao.net/node/45", "inline"),
        ("http://www.rfa.org/mandarin/Xinwen/14-01312014150452.html", "inline"),
        (f"https://twitter.com/share?url=https%3A//pao-pao.net/article/74&text={title}", "inline"),
        (f"{icons}twitter.png", "image"),
        (
            f"https://www.facebook.com/sharer.php?u=https%3A//pao-pao.net/article/74&t={title}",
            "inline",
        ),
        (f"{icons}facebook.png", "image"),
        (
            f"https://www.google.com/bookmarks/mark?op=add&bkmk=https%3A//pao-pao.net/article/74&title={title}",
            "inline",
        ),
        (f"{icons}google.png", "image"),
        # "您可能感兴趣的文章": a related-articles block (image link + headline link each)
        ("https://mirror.example/article/244", "related"),
        (f"{files}home_promoted/public/fa_guo_da_ge_ming_.jpg?itok=flZeh9Hy", "image"),
        ("https://mirror.example/article/442", "related"),
        (f"{files}home_promoted/public/3392370606_d600439692_z.jpg?itok=lD0E2gA1", "image"),
        ("https://mirror.example/article/195", "related"),
        (f"{files}home_promoted/public/anp-29264546.jpg?itok=DjpQrozq", "image"),
        ("https://mirror.example/article/454", "related"),
        (f"{files}home_promoted/public/cck8jypw0aavvym.jpg?itok=faJw-6Xj", "image"),
        ("https://mirror.example/article/74", "inline"),  # "冒个泡吧！" (#comment-form)
    }
    comments = {
        ("https://mirror.example/comment/15638", "inline"),
        ("http://deantxi.com>cialis", "inline"),
        ("https://mirror.example/comment/reply/74/15638", "inline"),
        ("https://mirror.example/comment/21016", "inline"),
        ("http://brandcial.com>cialis", "inline"),
        ("https://mirror.example/comment/reply/74/21016", "inline"),
        ("https://mirror.example/comment/25197", "inline"),
        ("http://cheapciali.com>cialis", "inline"),
        ("https://mirror.example/comment/reply/74/25197", "inline"),
    }
    assert {(o.url, o.kind) for o in parsed.occurrences if not o.in_comments} == article
    assert {(o.url, o.kind) for o in parsed.occurrences if o.in_comments} == comments
    assert lines_of(parsed, "https://mirror.example/author/64") == [22, 67]
    assert lines_of(parsed, "https://mirror.example/comment/21016") == [458, 468]
    spam = [o for o in parsed.occurrences if o.url == "http://deantxi.com>cialis"]
    assert [(o.status, o.line, o.original) for o in spam] == [
        ("invalid", 420, "http://deantxi.com&gt;cialis")
    ]
    assert "invalid host" in spam[0].reason
    form = [o for o in parsed.occurrences if o.url == "https://mirror.example/article/74"]
    assert [(o.fragment, o.line) for o in form] == [("comment-form", 371)]


# --- pao-pao 2014 with ~800 spam links: every one recorded, none counted as the article's ----

SPAM = "2014-09-28-香港民主示威 路透社和华尔街日报中文网“失声”.md"


def test_comment_spam_post() -> None:
    parsed = parse(SPAM)
    counts = Counter((o.in_comments, o.element, o.kind) for o in parsed.occurrences)
    # counted by hand with grep: 20 <a href> before the comments wrapper (line 351), 797 after
    assert counts[(True, "a", "inline")] == 797
    assert (
        sum(
            v
            for (in_comments, element, _), v in counts.items()
            if element == "a" and not in_comments
        )
        == 20
    )
    assert counts[(False, "a", "related")] == 8  # four related articles, two links each
    assert counts[(False, "img", "image")] == 12
    assert max(o.line for o in parsed.occurrences if not o.in_comments) < 351
    assert min(o.line for o in parsed.occurrences if o.in_comments) > 351
    webcam = [o for o in parsed.occurrences if o.host == "adultwebcams.icu"]
    assert webcam and webcam[0].url == "http://adultwebcams.icu/%22%3Eadult"
    assert webcam[0].original == 'http://adultwebcams.icu/"&gt;adult'


# --- the whole corpus: every post parses, every link is checkable or says why -----------------


def test_whole_corpus_parses_cleanly() -> None:
    posts = sorted(CORPUS.glob("*.md"))
    assert len(posts) >= 300
    kinds: Counter[str] = Counter()
    for path in posts:
        parsed = parse_post(path.read_bytes(), path=path.name, site_url=SITE)
        assert parsed.ok and not parsed.problems, (path.name, parsed.problems)
        assert parsed.source_url, path.name
        for o in parsed.occurrences:
            kinds[o.kind] += 1
            if o.status is None:
                assert o.url.startswith(("http://", "https://")), (path.name, o)
            else:
                assert o.reason, (path.name, o)
    assert all(kinds[k] > 0 for k in ("source", "image", "related", "inline", "embed"))
