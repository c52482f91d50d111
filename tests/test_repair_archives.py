"""External archives against local fakes: Wayback CDX (closest before, then after), Memento
TimeMap/TimeGate, 404-only histories, rate limiting and the answer cache."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from repair_world import INLINE_DEAD, MD_DEAD, POST, kill, make_site, rows, scanned

import linkkeeper.cli.repair  # noqa: F401  (registers `fix`)
from linkkeeper.cli.app import cli
from linkkeeper.faultweb import FakeArchives
from linkkeeper.repair.copies import LookupUnavailable, Target, choose_copy
from linkkeeper.repair.memento import memento_lookup, parse_link_format
from linkkeeper.repair.politeness import PoliteClient, retry_after
from linkkeeper.repair.wayback import wayback_lookup

URL = "https://news.example/2021/04/earlier.html"
HISTORY = {
    URL: [("20190101000000", 200), ("20210420120000", 200), ("20210420130000", 404),
          ("20210610000000", 200), ("20220101000000", 404)],
    "https://later.example/": [("20230101000000", 302), ("20230201000000", 200)],
    "https://only404.example/": [("20200101000000", 404), ("20210101000000", 404)],
    INLINE_DEAD: [("20200505000000", 200)],
}
POSTED = "2021-05-03T08:00:00.000Z"


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def archives() -> Iterator[FakeArchives]:
    with FakeArchives({k: list(v) for k, v in HISTORY.items()}) as fake:
        yield fake


def client(**kw: object) -> PoliteClient:
    return PoliteClient(min_interval=0, timeout=5, sleep=Sleeps(), **kw)  # type: ignore[arg-type]


def test_wayback_closest_before_the_post_then_after(archives: FakeArchives) -> None:
    lookup = wayback_lookup(archives.url, client())
    copy = lookup(Target(URL, "2024-06-01T00:00:00+00:00", POSTED))
    assert copy is not None and copy.source == "wayback"
    assert copy.url == f"{archives.url}web/20210420120000/{URL}"  # not the 404 an hour later
    assert copy.datetime == "2021-04-20T12:00:00Z" and copy.http_status == 200
    # without a post date: the first failure is the moment
    assert lookup(Target(URL, "2021-12-31T00:00:00+00:00")).datetime.startswith("2021-06-10")  # type: ignore[union-attr]
    # nothing good before: the first good capture after
    after = lookup(Target("https://later.example/", None, "2022-01-01"))
    assert after is not None and after.datetime.startswith("2023-02-01")
    asked = [path for _, path in archives.log]
    assert "filter=statuscode%3A%28200%7C203%7C206%29" in asked[0] and "to=20210503080000" in asked[0]
    assert "limit=-1" in asked[0] and "from=20220101000000" in asked[-1]


def test_a_404_only_history_is_nothing_and_is_not_asked_twice(archives: FakeArchives,
                                                              tmp_path: Path) -> None:
    site = make_site(tmp_path, {"2021-05-03-a.md": "---\ntitle: a\n---\n[x](https://only404.example/)\n"})
    db = scanned(site)
    lookups = [("wayback", wayback_lookup(archives.url, client()))]
    target = Target("https://only404.example/", "2024-01-01T00:00:00+00:00")
    assert choose_copy(db, target, lookups) is None
    asked = len(archives.log)
    assert asked == 2  # before, then after
    assert choose_copy(db, target, lookups) is None
    assert len(archives.log) == asked  # the cached "nothing" answered
    assert rows(db, "SELECT source, found FROM archived_copies ORDER BY source") == [
        ("ours", 0), ("wayback", 0)]


def test_rate_limited_retry_after_is_honoured(archives: FakeArchives) -> None:
    archives.rate_limit, archives.retry_after = 2, "2"
    polite = client()
    copy = wayback_lookup(archives.url, polite)(Target(URL, None, POSTED))
    assert copy is not None and polite.sleep == [2.0, 2.0]  # type: ignore[comparison-overlap]
    assert len(archives.log) == 3


def test_a_long_retry_after_closes_the_host_for_the_run(archives: FakeArchives,
                                                        tmp_path: Path) -> None:
    archives.rate_limit, archives.retry_after = 100, "3600"
    site = make_site(tmp_path, {"2021-05-03-a.md": f"---\ntitle: a\n---\n[x]({URL})\n"})
    db = scanned(site)
    polite = client()
    lookups = [("wayback", wayback_lookup(archives.url, polite))]
    assert choose_copy(db, Target(URL, None, POSTED), lookups) is None
    assert choose_copy(db, Target(URL, None, POSTED), lookups) is None
    assert len(archives.log) == 1 and polite.sleep == []  # type: ignore[comparison-overlap]
    assert rows(db, "SELECT source FROM archived_copies") == [("ours",)]  # nothing cached
    with pytest.raises(LookupUnavailable, match="wait 3600 s"):
        polite.get(archives.url + "cdx/search/cdx")


def test_requests_to_one_host_are_spaced(archives: FakeArchives) -> None:
    """Spacing is measured where it is made, when each request leaves the client:
    the server's own clock adds its scheduling delay, which under load can bring
    two arrivals closer than they were sent."""
    polite = PoliteClient(min_interval=0.15, timeout=5)
    sent: list[float] = []
    fetch = polite._fetch

    def timed_fetch(url: str, headers: dict[str, str]) -> object:
        sent.append(time.monotonic())
        return fetch(url, headers)

    polite._fetch = timed_fetch  # type: ignore[method-assign]
    lookup = wayback_lookup(archives.url, polite)
    for _ in range(3):
        lookup(Target(URL, None, POSTED))
    assert len(archives.log) == len(sent) == 3
    assert all(b - a >= 0.145 for a, b in itertools.pairwise(sent))


def test_retry_after_forms() -> None:
    now = datetime(2024, 1, 1, tzinfo=UTC)
    assert retry_after("120") == 120.0
    assert retry_after("Mon, 01 Jan 2024 00:00:30 GMT", now) == 30.0
    assert retry_after("soon") is None and retry_after(None) is None


def test_memento_timemap_closest_before(archives: FakeArchives) -> None:
    lookup = memento_lookup(archives.url, client())
    copy = lookup(Target(URL, None, POSTED))
    assert copy is not None and copy.source == "memento"
    assert copy.url == f"{archives.url}memento/20210420120000/{URL}"
    assert lookup(Target("https://only404.example/", None, POSTED)) is None


def test_memento_timegate_when_there_is_no_timemap(archives: FakeArchives) -> None:
    archives.timemap = False
    copy = memento_lookup(archives.url, client())(Target(URL, None, POSTED))
    assert copy is not None and copy.url == f"{archives.url}memento/20210420120000/{URL}"
    assert copy.datetime == "2021-04-20T12:00:00Z"
    assert any(path.startswith("/timegate/") for _, path in archives.log)


def test_link_format_with_commas_in_dates() -> None:
    text = ('<http://a/>; rel="original",\n<http://m/1>; rel="first memento"; '
            'datetime="Mon, 01 Jan 2024 00:00:00 GMT", <http://m/2>; rel=memento; '
            'datetime="Tue, 02 Jan 2024 00:00:00 GMT"')
    links = parse_link_format(text)
    assert [u for u, _ in links] == ["http://a/", "http://m/1", "http://m/2"]
    assert links[1][1]["rel"] == "first memento"


def test_fix_and_report_with_archives_from_the_cli(archives: FakeArchives, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(PoliteClient, "min_interval", 0.0)
    site = make_site(tmp_path, {"2021-05-03-story.md": POST})
    db = scanned(site)
    kill(db, INLINE_DEAD)
    kill(db, MD_DEAD)
    (site / "linkkeeper.toml").write_text(
        f'archives = ["wayback", "memento"]\nwayback-url = "{archives.url}"\n'
        f'memento-url = "{archives.url}"\n')
    runner = CliRunner()
    dry = runner.invoke(cli, ["fix", str(site)])
    assert dry.exit_code == 0, dry.output
    copy = f"{archives.url}web/20200505000000/{INLINE_DEAD}".replace("&", "&amp;")
    assert f'+<p>As <a href="{copy}" data-originalurl=' in dry.stdout
    assert f"no archived copy anywhere: {MD_DEAD}" in dry.stderr
    asked = len(archives.log)
    md = runner.invoke(cli, ["report", str(site), "--format", "markdown"])
    assert md.exit_code == 0, md.output
    assert "archived copy: Wayback 2020-05-05" in md.stdout
    assert "archived copy: none anywhere" in md.stdout
    assert len(archives.log) == asked  # answered from the cache
