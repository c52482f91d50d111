"""A generated world of news sites whose truth is known, to measure linkkeeper's verdicts.

Every URL carries its truth: an article that exists (`alive`, or `moved` behind
a permanent redirect), one that is gone and answered honestly (`gone`: 404),
one that is gone behind a soft 404 (`soft-404`), one that a bot block hides
(`blocked`), one that fails some nights only (`transient`: 503 on all tries,
`rate-limited`: 429), and a host whose name no longer resolves (`host-gone`).
Sites differ in how they answer unknown paths, which is where soft 404s hide:
honestly (404), with a "not found" page (English, quiet with no error words,
the home page itself, GBK and Big5 Chinese), a redirect to the home page or to
a section front, or a meta refresh. Hard negatives are mixed in: one-paragraph
briefs in the same chrome as the error page, headlines such as "Route 404 bus
returns" or "警方仍找不到失踪男子".

The world is served by the fault-injection web (one host behaviour per site)
and replayed night after night with explicit timestamps one day apart, so the
history's confirmed-dead rule (3 checks over 3 days) plays out without
sleeping. Used by tests/test_truth.py (a small world) and
benchmarks/bench_truth.py (>= 1,000 URLs, numbers for BENCHMARKS.md).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Any

import sqlite_utils
from aiohttp import web

from linkkeeper.check.checker import Checker
from linkkeeper.check.options import CheckOptions
from linkkeeper.db import connect
from linkkeeper.faultweb import Behaviour, FaultWeb, Hit, bodies
from linkkeeper.faultweb.behaviours import reset_connection
from linkkeeper.faultweb.truthsites import (
    chinese_article,
    html_response,
    site_page,
    soft_page_en,
    soft_page_zh,
)
from linkkeeper.history.recorder import Recorder
from linkkeeper.history.runs import interleave_by_host, start_run
from linkkeeper.vocab import State, Status

ALIVE, MOVED, GONE, SOFT = "alive", "moved", "gone", "soft-404"
BLOCKED, TRANSIENT, LIMITED, HOST_GONE = "blocked", "transient", "rate-limited", "host-gone"
TRULY_DEAD = frozenset({GONE, SOFT, HOST_GONE})
NEVER_DEAD = frozenset({ALIVE, MOVED, BLOCKED, TRANSIENT, LIMITED})

# How each kind of site answers a path it does not have.
PROFILES = (
    "honest", "honest", "honest", "soft-en", "soft-en", "soft-quiet", "soft-home",
    "redirect-home", "meta-refresh", "section", "soft-gbk", "soft-big5", "soft-varied",
    "removed-notice", "blocked", "outage",
)
OUTAGE_NIGHT = 2  # the night the "outage" site resets every connection (server down)
# Nights a transient link fails; never three in a row, so never confirmed dead.
TRANSIENT_PATTERNS = ({1}, {1, 2}, {0, 2, 4}, {3, 4}, {0, 1, 3, 4}, {5})
HARD_TITLES_EN = ("Route 404 bus returns", "Not found guilty jury clears mayor",
                  "Lost and found office reopens", "Error in budget report corrected")
HARD_TITLES_ZH = {"soft-gbk": "警方仍找不到失踪男子", "soft-big5": "警方仍找不到失蹤男子"}


@dataclass(frozen=True, slots=True)
class Link:
    url: str
    truth: str
    host: str


@dataclass(slots=True)
class Page:
    kind: str  # article | brief | moved | transient | limited
    target: str = ""  # moved: where the permanent redirect points
    fail_nights: frozenset[int] = frozenset()
    title: str = ""


@dataclass
class World:
    """Sites, their pages and the links a site's posts cite, with the truth of each link."""

    links: list[Link] = field(default_factory=list)
    profiles: dict[str, str] = field(default_factory=dict)  # host -> profile
    pages: dict[tuple[str, str], Page] = field(default_factory=dict)
    night: int = 0

    @property
    def urls(self) -> list[str]:
        return interleave_by_host((link.url, link.host) for link in self.links)

    @property
    def truth(self) -> dict[str, str]:
        return {link.url: link.truth for link in self.links}

    @property
    def served_hosts(self) -> list[str]:
        return sorted(self.profiles)

    def install(self, fault_web: FaultWeb) -> None:
        for host in self.profiles:
            fault_web.add_behaviour(Behaviour("*", self._handle, None, "truth world"), host=host)

    # -- serving ---------------------------------------------------------------------------

    async def _handle(self, hit: Hit) -> web.StreamResponse:
        profile = self.profiles[hit.host]
        if profile == "blocked":
            return html_response(bodies.message_html(403, "Forbidden").decode(), status=403)
        if profile == "outage" and self.night == OUTAGE_NIGHT:  # the server is down: resets
            transport = hit.request.transport
            hit.finishing(None)
            if transport is not None:
                reset_connection(transport)
            return web.Response(status=503)
        page = self.pages.get((hit.host, hit.path))
        if page is not None:
            return self._page(hit, page, profile)
        if profile == "section" and hit.path == "/news/":
            return html_response(bodies.home_html(hit.host).decode())
        return self._unknown(hit, profile)

    def _page(self, hit: Hit, page: Page, profile: str) -> web.StreamResponse:
        if page.kind == "moved":
            return _redirect(hit, 301, page.target)
        if self.night in page.fail_nights:
            if page.kind == "limited":
                response = html_response(bodies.message_html(429, "Too Many Requests").decode(),
                                         status=429)
                response.headers["Retry-After"] = "0"
                return response
            return html_response(bodies.message_html(503, "Service Unavailable").decode(),
                                 status=503)
        if profile in ("soft-gbk", "soft-big5"):
            traditional = profile == "soft-big5"
            text = chinese_article(hit.host, hit.path, traditional=traditional)
            if page.title:
                text = text.replace("<h1>", f"<h1>{page.title}", 1)
            return html_response(text, encoding="big5" if traditional else "gbk",
                                 header_charset="big5" if traditional else None)
        if page.kind == "brief":
            main = (f"    <article><h1>{escape(page.title)}</h1>\n"
                    f"    <p>{escape(_brief_sentence(hit.host, hit.path))}</p></article>")
            return html_response(site_page(bodies.site_name(hit.host), page.title, main))
        html = bodies.article_html(hit.host, hit.path).decode()
        if page.title:
            html = html.replace(f"<h1>{escape(bodies.title_for(hit.path))}</h1>",
                                f"<h1>{escape(page.title)}</h1>")
            html = html.replace(f"<title>{escape(bodies.title_for(hit.path))}",
                                f"<title>{escape(page.title)}")
        return html_response(html)

    def _unknown(self, hit: Hit, profile: str) -> web.StreamResponse:
        name = bodies.site_name(hit.host)
        if profile in ("honest", "outage"):
            return html_response(bodies.message_html(404, "Not Found").decode(), status=404)
        if profile == "soft-en":
            return html_response(soft_page_en(hit.host, hit.path))
        if profile == "soft-quiet":
            main = ("    <h1>Explore our archive</h1>\n    <p>Browse the latest headlines from "
                    f"{escape(name)}, or pick a section from the menu above to keep reading."
                    "</p>")
            return html_response(site_page(name, name, main))
        if profile == "soft-varied":  # different "you may like" stories on every request
            rng = random.Random()
            stories = "\n".join(
                f"      <li>{' '.join(rng.choice(bodies._WORDS) for _ in range(6))}</li>"
                for _ in range(6)
            )
            main = ("    <h1>We looked everywhere</h1>\n    <p>Try one of these instead:</p>\n"
                    f"    <ul>\n{stories}\n    </ul>")
            return html_response(site_page(name, name, main))
        if profile == "removed-notice":  # unknown paths 404; removed articles say so with 200
            if hit.path.rsplit("/", 1)[-1].startswith("removed-"):
                main = ("    <h1>This article has been removed</h1>\n    <p>It is no longer "
                        "available on our site.</p>")
                return html_response(site_page(name, f"{name}", main))
            return html_response(bodies.message_html(404, "Not Found").decode(), status=404)
        if profile == "soft-home":
            return html_response(bodies.home_html(hit.host).decode())
        if profile == "redirect-home":
            return _redirect(hit, 302, "/")
        if profile == "meta-refresh":
            refresh = '\n  <meta http-equiv="refresh" content="0; url=/">'
            return html_response(site_page(name, name, "    <p>Redirecting…</p>",
                                           extra_head=refresh))
        if profile == "section":
            return _redirect(hit, 301, "/news/")
        if profile == "soft-gbk":
            return html_response(soft_page_zh(hit.host, hit.path, traditional=False),
                                 encoding="gbk", header_charset=None)
        if profile == "soft-big5":
            return html_response(soft_page_zh(hit.host, hit.path, traditional=True),
                                 encoding="big5", header_charset="big5")
        raise AssertionError(profile)


def _redirect(hit: Hit, code: int, path: str) -> web.StreamResponse:
    response = web.Response(status=code, text="moved", content_type="text/plain")
    response.headers["Location"] = hit.absolute(path)
    return response


def _brief_sentence(host: str, path: str) -> str:
    rng = random.Random(bodies.seed_for(host, path))
    words = [rng.choice(bodies._WORDS) for _ in range(12)]
    return " ".join(words).capitalize() + "."


def generate(size: int = 1200, seed: int = 7) -> World:
    """A world of about `size` links over one site per profile, plus a host that is gone."""
    rng = random.Random(seed)
    world = World()
    per_site = max(20, size // (len(PROFILES) + 1))
    for index, profile in enumerate(PROFILES):
        host = f"{profile}-{index}.example"
        world.profiles[host] = profile
        for n in range(per_site):
            year, month = rng.randint(2008, 2024), rng.randint(1, 12)
            slug = f"{rng.choice(bodies._WORDS)}-{rng.choice(bodies._WORDS)}-{n}"
            section = "zh" if profile in ("soft-gbk", "soft-big5") else "news"
            path = f"/{section}/{year}/{month:02d}/{slug}"
            url = f"http://{host}{path}"
            truth = _pick_truth(rng, profile)
            if truth in (ALIVE, TRANSIENT, LIMITED, BLOCKED):
                kind = {TRANSIENT: "transient", LIMITED: "limited"}.get(truth, "article")
                page = Page(kind)
                if truth in (TRANSIENT, LIMITED):
                    page.fail_nights = frozenset(rng.choice(TRANSIENT_PATTERNS))
                elif rng.random() < 0.1:
                    page.kind = "brief"
                    page.title = slug.replace("-", " ").capitalize()
                if truth == ALIVE and n % 25 == 0:  # headlines that look like error pages
                    page.title = (HARD_TITLES_ZH[profile] if section == "zh"
                                  else HARD_TITLES_EN[(n // 25) % len(HARD_TITLES_EN)])
                world.pages[(host, path)] = page
            elif truth == MOVED:
                target = f"/{section}/{year}/{month:02d}/moved-{slug}"
                world.pages[(host, target)] = Page("article")
                old = f"/old/{slug}"
                world.pages[(host, old)] = Page("moved", target=target)
                url = f"http://{host}{old}"
            elif truth == SOFT and profile == "removed-notice":
                url = f"http://{host}/{section}/{year}/{month:02d}/removed-{slug}"
            world.links.append(Link(url, truth, host))
    gone_host = "gone-forever.example"  # never served: its name does not resolve
    for n in range(per_site // 2):
        world.links.append(Link(f"http://{gone_host}/news/2015/01/story-{n}", HOST_GONE,
                                gone_host))
    return world


def _pick_truth(rng: random.Random, profile: str) -> str:
    if profile == "blocked":
        return BLOCKED
    if profile == "outage":
        return ALIVE
    roll = rng.random()
    if profile == "honest":
        return (ALIVE if roll < 0.62 else GONE if roll < 0.82 else TRANSIENT if roll < 0.90
                else LIMITED if roll < 0.95 else MOVED)
    return ALIVE if roll < 0.62 else SOFT if roll < 0.90 else TRANSIENT if roll < 0.95 else MOVED


# -- replaying nights ------------------------------------------------------------------------


@dataclass
class Night:
    night: int
    statuses: dict[str, str]
    states: dict[str, str]
    requests: int  # counted by the checker (probes included)
    served: int  # requests the fault web saw
    probes: int
    host_failures: list[str]
    seconds: float


def checker_options(fault_web: FaultWeb, *, soft404: bool, read_pages: bool = False
                    ) -> CheckOptions:
    return CheckOptions(
        connect_to=fault_web.connect_to_args(wildcard=False),
        offline_dns=True,
        ca_bundle=fault_web.ca_pem,
        trust_env=False,
        host_rate=0,
        backoff_base=0.01,
        backoff_cap=0.05,
        connect_timeout=2,
        read_timeout=2,
        total_timeout=5,
        soft404=soft404,
        read_pages=read_pages,
    )


async def run_night(
    world: World,
    fault_web: FaultWeb,
    db: sqlite_utils.Database,
    night: int,
    *,
    start: datetime,
    soft404: bool = True,
    read_pages: bool = False,
) -> Night:
    """Check every link of the world as it is on `night`, recorded as if on start + night days."""
    import time

    world.night = night
    when = start + timedelta(days=night)
    urls = world.urls
    run = start_run(db, urls, options={"night": night}, new_run=True)
    recorder = Recorder(db, run.id)
    before = len(fault_web.log)
    began = time.perf_counter()
    statuses: dict[str, str] = {}
    options = checker_options(fault_web, soft404=soft404, read_pages=read_pages)
    async with Checker(options) as checker:
        async for result in checker.run(urls):
            result.started_at = when
            statuses[result.url] = str(result.status)
            recorder.add(result)
        probes = checker.soft404_stats["probes"]
    recorder.finish()
    elapsed = time.perf_counter() - began
    states = dict(db.execute("SELECT url, state FROM link_state").fetchall())
    return Night(night, statuses, states, recorder.requests, len(fault_web.log) - before, probes,
                 [failure.host for failure in recorder.host_failures], elapsed)


def new_db(path: str) -> sqlite_utils.Database:
    return connect(path)


START = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)


async def replay(world: World, fault_web: FaultWeb, db: sqlite_utils.Database, nights: int,
                 *, soft404: bool = True, read_pages: bool = False,
                 on_night: Callable[[Night], None] | None = None) -> list[Night]:
    out = []
    for night in range(nights):
        result = await run_night(world, fault_web, db, night, start=START, soft404=soft404,
                                 read_pages=read_pages)
        if on_night:
            on_night(result)
        out.append(result)
    return out


# -- scoring ---------------------------------------------------------------------------------


def score(world: World, nights: list[Night]) -> dict[str, Any]:
    """Soft-404 precision/recall (every night), wrong deaths, confirmed deaths, host failures."""
    truth = world.truth
    true_pos = false_pos = false_neg = 0
    wrong_dead: set[str] = set()
    for night in nights:
        for url, status in night.statuses.items():
            flagged = status == Status.SOFT_404
            actual = truth[url] == SOFT
            true_pos += flagged and actual
            false_pos += flagged and not actual
            false_neg += actual and not flagged
        wrong_dead |= {u for u, s in night.states.items() if s == State.DEAD
                       and truth[u] in NEVER_DEAD}
    last = nights[-1].states
    dead_truth = [u for u, t in truth.items() if t in TRULY_DEAD]
    confirmed = sum(1 for u in dead_truth if last.get(u) == State.DEAD)
    flagged = true_pos + false_pos
    return {
        "links": len(truth),
        "truth": dict(Counter(truth.values())),
        "nights": len(nights),
        "soft404_precision": true_pos / flagged if flagged else 1.0,
        "soft404_recall": true_pos / (true_pos + false_neg) if true_pos + false_neg else 1.0,
        "soft404_false_positives": false_pos,
        "soft404_missed": false_neg,
        "wrongly_dead": sorted(wrong_dead),
        "dead_confirmed": confirmed,
        "dead_truth": len(dead_truth),
        "host_failures": {n.night: n.host_failures for n in nights},
        "final_states": dict(Counter(last.values())),
    }
