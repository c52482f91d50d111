"""Generate a synthetic Jekyll news archive in our users' exact post format, for benchmarks.

The posts copy the shape of the real archive in ../shared/corpus/posts (front matter
layout/title/date/author/from/tags/categories, an optional ``comments: True``, a
``<!--epoch-ms-->`` marker, a ``[title](url)`` line, ``------``, then an HTML body with a
lead image, a zoom link and icon, paragraphs with inline links, related-story lists,
iframes, ``srcset`` and lazy ``data-src`` images) and their sizes (log-normal, ~7 KB
median, ~10 KB mean, mostly Chinese text). Real text would add nothing but copyright
questions; what the benchmarks need is the same parser work and the same link mix.

Every link points at a fault-injection-web host (``www.news0.example`` ...), on a path
that selects its behaviour (see ``BEHAVIOURS``), so the check benchmark knows the
expected outcome of every URL. One host holds most links, as in real archives.

Usage::

    python benchmarks/gen_site.py OUT_DIR --posts 20000 --hosts 20 --seed 1
    python benchmarks/gen_site.py OUT_DIR --posts 5000 --distinct-urls 20000 --port 8080 --html

Besides ``_config.yml`` and ``_posts/``, it writes ``_benchmark/urls.txt`` (every distinct
URL, one a line, for baselines that need the URL list) and ``_benchmark/manifest.json``
(counts by behaviour, host and kind). ``--html`` also renders ``_site/`` (what ``jekyll
build`` would give: one page per post plus an index), for peers that only read HTML.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

# --------------------------------------------------------------------------------------
# The failure mix. Shares are of distinct URLs; counts are apportioned exactly (largest
# remainder), so a 20,000-URL site has exactly 16,000 `ok` URLs.
#
# | behaviour  | share | path (fault web)         | what a checker should conclude       |
# |------------|-------|--------------------------|--------------------------------------|
# | ok         | 80.0% | /ok/<id>, /img/<id>.jpg  | ok                                   |
# | redirect   |  5.0% | /redirect/301/2/<id>     | redirected (two 301 hops)            |
# | gone404    |  5.0% | /status/404/<id>         | broken                               |
# | gone410    |  3.0% | /status/410/<id>         | broken                               |
# | error500   |  1.5% | /status/500/<id>         | server-error (after retries)         |
# | flaky      |  1.5% | /flaky/2/<id>            | ok after 2 failed attempts (retries) |
# | ratelimit  |  1.0% | /ratelimit/1/1/<id>      | ok after one 429 Retry-After: 1      |
# | head405    |  1.0% | /head/405/<id>           | ok (HEAD 405, GET 200)               |
# | block403   |  1.0% | /block/403/<id>          | blocked                              |
# | slow       |  1.0% | /slow/200/<id>           | ok, 200 ms late                      |
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Behaviour:
    name: str
    share: float
    path: str  # format string; {id} is the URL's id


BEHAVIOURS: tuple[Behaviour, ...] = (
    Behaviour("ok", 0.80, "/ok/{id}"),
    Behaviour("redirect", 0.05, "/redirect/301/2/{id}"),
    Behaviour("gone404", 0.05, "/status/404/{id}"),
    Behaviour("gone410", 0.03, "/status/410/{id}"),
    Behaviour("error500", 0.015, "/status/500/{id}"),
    Behaviour("flaky", 0.015, "/flaky/2/{id}"),
    Behaviour("ratelimit", 0.01, "/ratelimit/1/1/{id}"),
    Behaviour("head405", 0.01, "/head/405/{id}"),
    Behaviour("block403", 0.01, "/block/403/{id}"),
    Behaviour("slow", 0.01, "/slow/200/{id}"),
)
OK_IMAGE_PATH = "/img/{id}.jpg"

# --------------------------------------------------------------------------------------
# The realistic world (``--world realistic``): what a news archive meets on the real web.
# Fewer clean answers, many old article links that now redirect to the site's home page
# (all ending on the same "/"), 429s and 503s scattered among successes (once each, with
# Retry-After), a few links that never answer, some slow pages; 66% on the main host, and
# bench_check.py makes two tail hosts slow as a whole (SLOW_HOSTS).
#
# | behaviour     | share | path (fault web)                      | a checker should say    |
# |---------------|-------|---------------------------------------|-------------------------|
# | ok            | 71.0% | /ok/<id>, /img/<id>.jpg               | ok                      |
# | redirect-home | 10.0% | /redirect-to?url=<home>&code=301&...  | redirected (to /)       |
# | redirect      |  3.0% | /redirect/301/2/<id>                  | redirected              |
# | gone404       |  6.0% | /status/404/<id>                      | broken                  |
# | gone410       |  2.0% | /status/410/<id>                      | broken                  |
# | error500      |  1.0% | /status/500/<id>                      | server-error            |
# | flaky503      |  1.5% | /flaky/1/<id>                         | ok after one 503        |
# | ratelimit     |  1.5% | /ratelimit/1/1/<id>                   | ok after one 429        |
# | head405       |  1.0% | /head/405/<id>                        | ok                      |
# | block403      |  1.0% | /block/403/<id>                       | blocked                 |
# | slow          |  0.9% | /slow/1500/<id>                       | ok, 1.5 s late          |
# | hang          |  0.1% | /hang/<id>                            | timeout                 |
# --------------------------------------------------------------------------------------
REALISTIC_BEHAVIOURS: tuple[Behaviour, ...] = (
    Behaviour("ok", 0.71, "/ok/{id}"),
    Behaviour("redirect-home", 0.10, "/redirect-to?url={home}&code=301&from={id}"),
    Behaviour("redirect", 0.03, "/redirect/301/2/{id}"),
    Behaviour("gone404", 0.06, "/status/404/{id}"),
    Behaviour("gone410", 0.02, "/status/410/{id}"),
    Behaviour("error500", 0.01, "/status/500/{id}"),
    Behaviour("flaky503", 0.015, "/flaky/1/{id}"),
    Behaviour("ratelimit", 0.015, "/ratelimit/1/1/{id}"),
    Behaviour("head405", 0.01, "/head/405/{id}"),
    Behaviour("block403", 0.01, "/block/403/{id}"),
    Behaviour("slow", 0.009, "/slow/1500/{id}"),
    Behaviour("hang", 0.001, "/hang/{id}"),
)
# world -> (behaviour mix, share of the main host)
WORLDS: dict[str, tuple[tuple[Behaviour, ...], float]] = {
    "gentle": (BEHAVIOURS, 0.70),
    "realistic": (REALISTIC_BEHAVIOURS, 0.66),
}
SLOW_HOST_COUNT = 2  # realistic world: the last tail hosts answer slowly (bench_check.py)

# Share of links per host: one main host, a second one, then a long tail (as in a real
# archive mirroring mostly one or two outlets). The tail share is spread Zipf-like.
MAIN_HOST_SHARE = 0.70
SECOND_HOST_SHARE = 0.15

OUTLETS = (
    "自由之声",
    "海外新闻社",
    "环球日报",
    "东方电台",
    "每日观察",
    "新世纪报",
    "国际广播",
    "时事周刊",
)

# Common characters and punctuation: enough variety for realistic UTF-8 size and parsing.
_HANZI = (
    "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学"
    "对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面"
    "公同三已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月明其种声全工己话儿者向情部"
    "正名定女问力机给等几很业最间新什打便位因重被走电四第门相次东政海口使教西再平真听世气信北少关"
    "并内加化由却代军产入先山五太水万市眼体别处总才场师书比住员九笑性通目华报立马命张活难神数件安"
    "表原车白应路期叫死常提感金何更反合放做系计或司利受光王果亲界及今京务制解各任至清物台象记边共"
    "风战干接它许八特觉望直服毛林题建南度统色字请交爱让认算论百吃义科怎元社术结六功指思非流每青管"
    "夫连远资队跟带花快条院变联言权往展该领传近留红治决周保达办运武半候七必城父强步完革深区即求品"
    "士转量空甚众技轻程告江语英基派满式李息写呢识极令黄德收脸钱党倒未持音众议选举抗议记者报道官员"
)
_PUNCT = "，，，，、。；：“”（）！？"
_ASCII_WORDS = ("COVID-19", "WHO", "G20", "OCCRP", "NATO", "2020", "AFP", "Reuters", "iPhone", "5G")


@dataclass(frozen=True, slots=True)
class Target:
    """One distinct URL of the site: where it lives and how the fault web will answer."""

    url: str
    host: str
    behaviour: str
    role: str  # "page" or "image"


@dataclass(slots=True)
class SiteSummary:
    """What was generated: enough for a benchmark to report and sanity-check its input."""

    out_dir: str
    posts: int
    distinct_urls: int
    occurrences: int
    bytes: int
    seconds: float
    by_behaviour: dict[str, int] = field(default_factory=dict)
    by_host: dict[str, int] = field(default_factory=dict)
    by_kind: dict[str, int] = field(default_factory=dict)


def apportion(total: int, weights: list[float]) -> list[int]:
    """Split `total` into integer parts proportional to `weights` (largest remainder)."""
    if total < 0:
        raise ValueError("total must be >= 0")
    weight_sum = sum(weights)
    if weight_sum <= 0:
        raise ValueError("weights must sum to a positive number")
    exact = [total * w / weight_sum for w in weights]
    parts = [math.floor(x) for x in exact]
    by_remainder = sorted(
        range(len(weights)), key=lambda i: (exact[i] - parts[i], -i), reverse=True
    )
    for i in by_remainder[: total - sum(parts)]:
        parts[i] += 1
    return parts


def host_names(hosts: int) -> list[str]:
    return [f"www.news{i}.example" for i in range(hosts)]


def host_weights(hosts: int, main_share: float = MAIN_HOST_SHARE) -> list[float]:
    """70% (`main_share`) on the main host, 15% on the second, a Zipf-like tail."""
    if hosts < 1:
        raise ValueError("need at least one host")
    if hosts == 1:
        return [1.0]
    if hosts == 2:
        return [main_share, 1 - main_share]
    tail = [1 / rank for rank in range(1, hosts - 1)]
    tail_share = 1 - main_share - SECOND_HOST_SHARE
    return [main_share, SECOND_HOST_SHARE] + [tail_share * t / sum(tail) for t in tail]


def slow_hosts(hosts: int) -> list[str]:
    """The realistic world's slow hosts: the last tail hosts (never the main or second)."""
    return host_names(hosts)[max(2, hosts - SLOW_HOST_COUNT) :]


def make_targets(
    pages: int,
    images: int,
    hosts: int,
    rng: random.Random,
    scheme: str,
    port: int | None,
    world: str = "gentle",
) -> tuple[list[Target], list[Target]]:
    """Build the distinct page and image URLs with the exact behaviour and host mix."""
    mix, main_share = WORLDS[world]
    names = host_names(hosts)
    port_part = f":{port}" if port else ""
    result: list[list[Target]] = []
    serial = 0
    for role, count in (("page", pages), ("image", images)):
        behaviours = [
            b
            for b, n in zip(mix, apportion(count, [b.share for b in mix]), strict=True)
            for _ in range(n)
        ]
        hosts_for = [
            h
            for h, n in zip(names, apportion(count, host_weights(hosts, main_share)), strict=True)
            for _ in range(n)
        ]
        rng.shuffle(behaviours)
        rng.shuffle(hosts_for)
        targets = []
        for behaviour, host in zip(behaviours, hosts_for, strict=True):
            serial += 1
            ident = f"{'p' if role == 'page' else 'i'}{serial:07d}"
            template = (
                OK_IMAGE_PATH if role == "image" and behaviour.name == "ok" else behaviour.path
            )
            home = quote(f"{scheme}://{host}{port_part}/", safe="")
            url = f"{scheme}://{host}{port_part}{template.format(id=ident, home=home)}"
            targets.append(Target(url, host, behaviour.name, role))
        result.append(targets)
    return result[0], result[1]


class TextBank:
    """A long run of pseudo-Chinese prose; paragraphs are slices of it (fast, deterministic)."""

    def __init__(self, rng: random.Random, size: int = 400_000) -> None:
        chars = rng.choices(_HANZI, k=size)
        for i in range(0, size, 23):
            chars[i] = rng.choice(_PUNCT)
        for i in range(7, size, 211):
            chars[i] = f" {rng.choice(_ASCII_WORDS)} "
        self.text = "".join(chars)
        self.rng = rng

    def take(self, length: int) -> str:
        start = self.rng.randrange(0, len(self.text) - length)
        return self.text[start : start + length]

    def title(self) -> str:
        body = self.take(self.rng.randint(8, 26)).replace("。", " ").strip()
        if self.rng.random() < 0.15:
            body = f"“{self.take(4)}”{body}"
        if self.rng.random() < 0.1:
            body = f"{body}！"
        return body.replace('"', "").replace("\\", "")


@dataclass(slots=True)
class PostPlan:
    """The link slots of one post, filled with targets after all posts are planned."""

    index: int
    size: int
    has_lead: bool
    inline: int
    related: int
    srcset: int  # images in one srcset (0: none)
    lazy: bool
    iframe: bool
    video: bool
    slots: dict[str, list[Target]] = field(default_factory=dict)

    def page_slots(self) -> int:
        return 1 + self.inline + self.related + int(self.iframe) + int(self.video)

    def image_slots(self) -> int:
        return 2 * int(self.has_lead) + self.srcset + int(self.lazy) + int(self.video)


def _poisson(rng: random.Random, lam: float) -> int:
    threshold, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= threshold:
            return k
        k += 1


def plan_post(index: int, rng: random.Random) -> PostPlan:
    # Sizes: log-normal fitted to the real corpus (median ~7 KB, p90 ~22 KB).
    size = min(int(rng.lognormvariate(math.log(7000), 0.9)), 230_000)
    size = max(size, 600)
    return PostPlan(
        index=index,
        size=size,
        has_lead=rng.random() < 0.85,
        inline=_poisson(rng, 0.8 + size / 4000),
        related=rng.randint(2, 4) if rng.random() < 0.4 else 0,
        srcset=3 if rng.random() < 0.10 else 0,
        lazy=rng.random() < 0.06,
        iframe=rng.random() < 0.05,
        video=rng.random() < 0.01,
    )


def fill_slots(
    plans: list[PostPlan], pages: list[Target], images: list[Target], rng: random.Random
) -> None:
    """Give every slot a target: each target is used at least once, sources come first."""
    for pool, role in ((pages, "page"), (images, "image")):
        order = list(pool)
        rng.shuffle(order)
        need = [(p, p.page_slots() if role == "page" else p.image_slots()) for p in plans]
        # Sources take the first distinct targets (one story, one source), then the rest.
        sequence: list[Target] = []
        total = sum(n for _, n in need)
        for i in range(total):
            sequence.append(order[i] if i < len(order) else order[rng.randrange(len(order))])
        if role == "page":
            sources, rest = sequence[: len(plans)], sequence[len(plans) :]
            rng.shuffle(rest)
            cursor = 0
            for plan, n in need:
                plan.slots["page"] = [sources[plan.index], *rest[cursor : cursor + n - 1]]
                cursor += n - 1
        else:
            rng.shuffle(sequence)
            cursor = 0
            for plan, n in need:
                plan.slots["image"] = sequence[cursor : cursor + n]
                cursor += n


def _escape_attr(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


class PostWriter:
    """Renders one planned post to the exact text layout of the real archive."""

    def __init__(self, bank: TextBank, rng: random.Random, icon: Target, hosts: list[str]) -> None:
        self.bank = bank
        self.rng = rng
        self.icon = icon
        self.outlets = {h: OUTLETS[i % len(OUTLETS)] for i, h in enumerate(hosts)}

    def render(self, plan: PostPlan, title: str, date: datetime) -> tuple[str, str, Counter[str]]:
        """Return (markdown post, HTML body, occurrences by kind)."""
        rng, bank = self.rng, self.bank
        kinds: Counter[str] = Counter()
        pages = list(plan.slots["page"])
        images = list(plan.slots["image"])
        source = pages.pop(0)
        outlet = self.outlets[source.host]
        style = rng.random()
        if style < 0.85:
            stamp = date.strftime("%Y-%m-%dT%H:%M:%S.") + f"{date.microsecond // 1000:03d}Z"
        else:
            stamp = date.strftime("%Y-%m-%dT%H:%M:%S") + rng.choice(("+00:00", "+01:00", "+02:00"))
        front = [
            "---",
            "layout: post",
            f'title: "{title}"',
            f"date: {stamp}",
            f"author: {outlet}",
            f"from: {source.url}",
            f"tags: [ {outlet} ]",
        ]
        if rng.random() < 0.05:
            front.append("comments: True")
        front.append(f"categories: [ {'news, ' if rng.random() < 0.2 else ''}{outlet} ]")
        front.append("---")
        kinds["source"] += 1

        body: list[str] = ["<div>"]
        if plan.has_lead:
            lead, zoom = images.pop(), images.pop()
            caption = bank.take(rng.randint(15, 60))
            body.append(
                f'<img src="{lead.url}" alt="{_escape_attr(caption)}" height="341" width="620" '
                f'referrerpolicy="no-referrer"> <span class="lead_image_caption">{caption}</span>'
            )
            body.append(
                f'<div id="zoomattribute"> <a id="single_image" href="{zoom.url}" data-fancybox="" '
                f'title="{_escape_attr(caption)}"> <img src="{self.icon.url}" '
                f'referrerpolicy="no-referrer"> </a> <span class="copyright">{rng.choice(OUTLETS)}</span> </div>'
            )
            kinds["image"] += 3
        inline_pages = pages[: plan.inline]
        related = pages[plan.inline : plan.inline + plan.related]
        embeds = pages[plan.inline + plan.related :]
        specials: list[str] = []
        if plan.srcset:
            shots = [images.pop() for _ in range(plan.srcset)]
            candidates = ", ".join(
                f"{t.url} {w}w" for t, w in zip(shots, (960, 300, 768), strict=False)
            )
            placeholder = (
                "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"
            )
            specials.append(
                f'<p><img alt="" class="aligncenter size-full" height="484" src="{shots[0].url}" '
                f'srcset="{candidates}" sizes="(max-width: 960px) 100vw, 960px" width="960"/></p>'
                if rng.random() < 0.5
                else f'<p><img alt="" class="jetpack-lazy-image" data-lazy-src="{shots[0].url}" '
                f'data-lazy-srcset="{candidates}" src="{shots[0].url}" srcset="{placeholder}" width="960"/></p>'
            )
            kinds["image"] += plan.srcset
        if plan.lazy:
            lazy = images.pop()
            specials.append(
                f'<img alt="" class="progressiveMedia-image" data-src="{lazy.url}" src="{lazy.url}"/>'
            )
            kinds["image"] += 1
        for embed in embeds:
            if plan.video and embed is embeds[-1]:
                poster = images.pop()
                specials.append(
                    f'<video poster="{poster.url}" src="{embed.url}" style="width:100%" controls></video>'
                )
                kinds["image"] += 1
            else:
                specials.append(
                    f'<iframe allowfullscreen="allowfullscreen" height="393" src="{embed.url}" width="700"></iframe>'
                )
            kinds["embed"] += 1

        # Paragraphs until the post reaches its planned size (UTF-8: ~3 bytes per character).
        budget = max(plan.size - 900, 200) // 3
        paragraphs: list[str] = []
        while budget > 0:
            length = min(rng.randint(60, 260), max(budget, 20))
            paragraphs.append(bank.take(length))
            budget -= length
        # Inline links go into plain text only: cut each paragraph at sorted points.
        links_in: dict[int, list[Target]] = {}
        for target in inline_pages:
            links_in.setdefault(rng.randrange(len(paragraphs)), []).append(target)
        for at, targets in links_in.items():
            text = paragraphs[at]
            cuts = sorted(rng.randrange(len(text) + 1) for _ in targets)
            pieces, previous = [], 0
            for cut, target in zip(cuts, targets, strict=True):
                anchor = bank.take(rng.randint(4, 12))
                if kinds["inline"] % 3 == 0:
                    anchor = f"<strong>{anchor}</strong>"
                pieces.append(f'{text[previous:cut]}<a href="{target.url}">{anchor}</a>')
                previous = cut
                kinds["inline"] += 1
            paragraphs[at] = "".join(pieces) + text[previous:]
        rendered = [f"<p>{p}</p>" for p in paragraphs]
        for special in specials:
            rendered.insert(rng.randrange(len(rendered) + 1), special)
        if related:
            items = []
            for n, target in enumerate(related):
                text = bank.take(rng.randint(10, 24))
                items.append(
                    f'<li><a href="{target.url}"><strong>{text}</strong></a></li>'
                    if n % 2 == 0
                    else f'<li><strong><a href="{target.url}">{text}</a></strong></li>'
                )
            rendered.insert(min(2, len(rendered)), f"<ul>{''.join(items)}</ul>")
            kinds["related"] += len(related)
        body.append("".join(rendered))
        body.append(f"<p>责编：{bank.take(2)}&nbsp;&nbsp;&nbsp; 网编：{bank.take(2)}</p>")
        body.append("</div>")
        html_body = "\n".join(body)

        if rng.random() < 0.9:
            marker = (
                "<!--NaN-->" if rng.random() < 0.03 else f"<!--{int(date.timestamp() * 1000)}-->"
            )
            head = f"{marker}\n[{title}]({source.url})\n------\n\n"
            kinds["source"] += 1
        else:
            head = "\n"
        post = "\n".join(front) + "\n" + head + html_body + "\n"
        return post, html_body, kinds


def _slug(title: str) -> str:
    for bad in '/\\:*?"<>|':
        title = title.replace(bad, "")
    return title.strip()[:40] or "post"


def _html_page(title: str, source: Target, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="zh"><head><meta charset="utf-8">'
        f"<title>{title}</title></head>\n<body><article>\n"
        f'<h1><a href="{source.url}">{title}</a></h1>\n{body}\n</article></body></html>\n'
    )


def generate_site(
    out_dir: Path,
    posts: int = 20_000,
    hosts: int = 20,
    seed: int = 1,
    scheme: str = "http",
    port: int | None = None,
    distinct_urls: int | None = None,
    html: bool = False,
    world: str = "gentle",
) -> SiteSummary:
    """Write a site to `out_dir` (replacing `_posts/`, `_site/`, `_benchmark/` there).

    `distinct_urls` defaults to three per post. The same arguments always give the same
    bytes, so cached sites can be reused across benchmark runs.
    """
    if posts < 1:
        raise ValueError("need at least one post")
    if scheme not in ("http", "https"):
        raise ValueError("scheme must be http or https")
    if world not in WORLDS:
        raise ValueError(f"world must be one of {', '.join(WORLDS)}")
    started = time.perf_counter()
    rng = random.Random(seed)
    plans = [plan_post(i, rng) for i in range(posts)]
    page_slots = sum(p.page_slots() for p in plans)
    image_slots = sum(p.image_slots() for p in plans)
    wanted = distinct_urls if distinct_urls is not None else 3 * posts
    if wanted > page_slots + image_slots:
        raise ValueError(
            f"{posts} posts cite only {page_slots + image_slots} links: "
            f"too few for {wanted} distinct URLs (add posts)"
        )
    if wanted < 2:
        raise ValueError("need at least two distinct URLs (a page and an image)")
    n_pages, n_images = apportion(wanted, [page_slots, image_slots])
    if n_images == 0:  # a tiny site: keep one image so every post's icon has a target
        n_pages, n_images = n_pages - 1, 1
    if n_pages == 0:
        n_pages, n_images = 1, n_images - 1
    pages, images = make_targets(n_pages, n_images, hosts, rng, scheme, port, world)
    fill_slots(plans, pages, images, rng)
    icon = next((t for t in images if t.behaviour == "ok"), images[0])

    out_dir.mkdir(parents=True, exist_ok=True)
    for sub in ("_posts", "_site", "_benchmark"):
        shutil.rmtree(out_dir / sub, ignore_errors=True)
    posts_dir = out_dir / "_posts"
    posts_dir.mkdir()
    (out_dir / "_benchmark").mkdir()
    (out_dir / "_config.yml").write_text(
        "title: 新闻存档 (linkkeeper benchmark)\n"
        'url: "https://archive.example"\nbaseurl: ""\npermalink: /:year/:month/:day/:title.html\n'
        "markdown: kramdown\n",
        encoding="utf-8",
    )

    bank = TextBank(rng)
    writer = PostWriter(bank, rng, icon, host_names(hosts))
    start_date = datetime(2014, 4, 16, tzinfo=UTC)
    span = timedelta(days=3650) / posts
    used_names: set[str] = set()
    total_bytes = 0
    kinds: Counter[str] = Counter()
    index_rows: list[str] = []
    for plan in plans:
        date = (
            start_date
            + span * plan.index
            + timedelta(seconds=rng.randrange(86_400), milliseconds=rng.randrange(1000))
        )
        title = bank.title()
        post, body, post_kinds = writer.render(plan, title, date)
        kinds.update(post_kinds)
        name = f"{date:%Y-%m-%d}-{_slug(title)}"
        if name in used_names:
            name = f"{name}-{plan.index}"
        used_names.add(name)
        data = post.encode("utf-8")
        total_bytes += len(data)
        (posts_dir / f"{name}.md").write_bytes(data)
        if html:
            page_dir = out_dir / "_site" / f"{date:%Y/%m/%d}"
            page_dir.mkdir(parents=True, exist_ok=True)
            page_name = f"{plan.index:06d}.html"
            (page_dir / page_name).write_text(
                _html_page(title, plan.slots["page"][0], body), encoding="utf-8"
            )
            index_rows.append(f'<li><a href="{date:%Y/%m/%d}/{page_name}">{title}</a></li>')
    if html:
        (out_dir / "_site" / "index.html").write_text(
            '<!DOCTYPE html>\n<html lang="zh"><head><meta charset="utf-8"><title>新闻存档</title></head>\n'
            f"<body><ul>\n{chr(10).join(index_rows)}\n</ul></body></html>\n",
            encoding="utf-8",
        )

    everything = pages + images
    summary = SiteSummary(
        out_dir=str(out_dir),
        posts=posts,
        distinct_urls=len(everything),
        occurrences=sum(kinds.values()),
        bytes=total_bytes,
        seconds=round(time.perf_counter() - started, 3),
        by_behaviour=dict(Counter(t.behaviour for t in everything).most_common()),
        by_host=dict(Counter(t.host for t in everything).most_common()),
        by_kind=dict(kinds.most_common()),
    )
    (out_dir / "_benchmark" / "urls.txt").write_text(
        "".join(f"{t.url}\n" for t in everything), encoding="utf-8"
    )
    manifest = asdict(summary) | {
        "arguments": {
            "posts": posts,
            "hosts": hosts,
            "seed": seed,
            "scheme": scheme,
            "port": port,
            "distinct_urls": distinct_urls,
            "html": html,
        }
        | ({"world": world} if world != "gentle" else {})  # gentle sites keep their cache
    }
    (out_dir / "_benchmark" / "manifest.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8"
    )
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--posts", type=int, default=20_000)
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--link-base", choices=("http", "https"), default="http", help="URL scheme of the links"
    )
    parser.add_argument(
        "--port", type=int, default=None, help="explicit port in every link (for peers)"
    )
    parser.add_argument(
        "--distinct-urls",
        type=int,
        default=None,
        help="exact number of distinct URLs (default: 3 per post)",
    )
    parser.add_argument(
        "--html", action="store_true", help="also render _site/ (HTML pages and an index)"
    )
    parser.add_argument(
        "--world", choices=tuple(WORLDS), default="gentle", help="the behaviour mix (see WORLDS)"
    )
    args = parser.parse_args(argv)
    try:
        summary = generate_site(
            args.out_dir,
            args.posts,
            args.hosts,
            args.seed,
            args.link_base,
            args.port,
            args.distinct_urls,
            args.html,
            args.world,
        )
    except ValueError as exc:
        print(f"gen_site: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(asdict(summary), ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
