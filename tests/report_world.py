"""A large report built in memory (no database, no checks): for the HTML report's scale tests.

`big_report(n)` makes `n` links on ~n/60 hosts cited by ~n/5 posts, with every status,
dead and failing links, some archived copies, readable IRIs (a Chinese path, a punycode
host) and invalid relative links; the model's own grouping functions build its views.
"""

from __future__ import annotations

from linkkeeper.report.copies import ArchivedCopy
from linkkeeper.report.data import (
    LinkView,
    Occurrence,
    Report,
    RunPoint,
    _hosts,
    _posts,
    _rot,
    _summary,
)

CHINESE = "https://zh.example/wiki/%E4%B8%AD%E6%96%87%E9%A1%B5"  # /wiki/中文页
CHINESE_SHOWN = "https://zh.example/wiki/中文页"
PUNY = "https://xn--fiqs8s.example/%E6%96%B0%E9%97%BB"  # 中国.example/新闻
PUNY_SHOWN = "https://中国.example/新闻"
STATUSES = [("ok", 200, "HTTP 200 OK"), ("broken", 404, "HTTP 404 Not Found"),
            ("soft-404", 200, "soft 404: looks like an error page"),
            ("network-error", None, "DNS: temporary failure in name resolution"),
            ("blocked", 403, "HTTP 403 Forbidden"), ("redirected", 200, "HTTP 301 to /x"),
            ("timeout", None, "no answer in 15 s"), ("ok", 200, "HTTP 200 OK")]


def url_of(i: int) -> str:
    return f"https://www.news{i % 97}.example/news/{i // 1000}/article-{i:05d}.html"


def _link(i: int, url: str, posts: int) -> LinkView:
    status, code, reason = STATUSES[i % len(STATUSES)]
    state = {"ok": "alive", "redirected": "alive", "blocked": "blocked"}.get(status, "failing")
    if status == "broken" and i % 3 == 0:
        state = "dead"
    host = url.split("/")[2]
    if i % 211 == 0:  # an invalid relative link: no site url to resolve it
        url, host, status, code, reason, state = (f"../drafts/{i}.html", "", "invalid", None,
                                                  "relative link and no site url", "unchecked")
    post = f"_posts/20{5 + i * 20 // (5 * posts):02d}-01-01-story-{i // 5}.md"
    archive = ArchivedCopy(f"2026100102{i % 60:02d}00", "2026-10-01T02:00:00Z", "w.warc.gz",
                           200) if i % 4 == 0 else None
    return LinkView(
        url=url, host=host, status=status, http_status=code, reason=reason, state=state,
        state_since="2026-10-01T02:00:00+00:00", first_failed=None, last_ok=None,
        checked_at=f"2026-10-30T02:{i % 60:02d}:00+00:00", run_id=None if state == "unchecked"
        else 30, final_url=None,
        occurrences=[Occurrence(post, 8 + i % 20, ("source", "inline", "image")[i % 3],
                                f"link {i}")],
        change="newly-broken" if status == "broken" and i % 50 == 1 else None, archive=archive)


def big_report(n: int) -> Report:
    posts = max(1, n // 5)
    links = [_link(i, url_of(i), posts) for i in range(n - 2)]
    links += [_link(1, CHINESE, posts), _link(9, PUNY, posts)]
    links.sort(key=lambda lnk: lnk.url)
    meta = {o.post: (f"Story {o.post[-8:]}", o.post[7:17]) for lnk in links
            for o in lnk.occurrences}
    history = [RunPoint(r, f"2026-10-{r:02d}T02:00:00+00:00", "complete",
                        {"ok": n * 3 // 4, "broken": n // 8, "soft-404": n // 16})
               for r in range(1, 31)]
    return Report(
        generated_at="2026-10-30T03:00:00+00:00",
        run={"id": 30, "started_at": "2026-10-30T02:00:00+00:00",
             "finished_at": "2026-10-30T02:50:00+00:00", "state": "complete"},
        baseline={"id": 29, "started_at": "2026-10-29T02:00:00+00:00"},
        since=None, summary=_summary(links), links=links, shown=links,
        posts=_posts(links, meta), hosts=_hosts(links), history=history,
        rot=_rot(links, meta), post_meta=meta)
