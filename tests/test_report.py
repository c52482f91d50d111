"""`linkkeeper report` from a real history: two nights of `check` against the fault-injection web.

Night 1 checks three posts (one carries script payloads in its title, anchor
text and URLs); before night 2 a fourth post cites a new 404, and a link that
answered 503 comes back. So night 2 has exactly one newly broken link and one
recovered link, and every format is checked against that.
"""

from __future__ import annotations

import csv
import html
import io
import json
import os
import re
import sqlite3
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import helpers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkkeeper.db import connect
from linkkeeper.faultweb import FaultWeb
from linkkeeper.report import ReportError, build_report
from linkkeeper.report.copies import snapshot_timestamp
from linkkeeper.report.formats import md_code, md_text, md_url
from linkkeeper.report.html import render_html, safe_json
from linkkeeper.report.results import link_records, run_record

LINKKEEPER = [sys.executable, "-m", "linkkeeper"]
NEWS = "https://news.example"
GONE = f"{NEWS}/status/404/alpha-gone"
FLAKY = f"{NEWS}/flaky/1/alpha-flaky"
NEW_404 = f"{NEWS}/status/404/gamma-new"
XSS_TITLE = '<script>window.__xss=1</script> "quoted" & <b>bold</b>\u2028'
XSS_TEXT = '<img src=x onerror="window.__xss=2">'
XSS_URL = f"{NEWS}/status/404/</script><script>window.__xss=3</script>"
JS_URL = "javascript:window.__xss=4"
OK_PAGES = 60  # enough rows for the table to page at 50

POST = """---
layout: post
title: {title}
date: {date}T08:00:00.000Z
from: {source}
---
[source]({source})

<div>
{body}
</div>
"""


def write_post(site: Path, name: str, title: str, date: str, source: str,
               links: list[tuple[str, str]]) -> None:
    body = "\n".join(f'<p><a href="{html.escape(url)}">{html.escape(text)}</a></p>'
                     for url, text in links)
    (site / "_posts" / f"{date}-{name}.md").write_text(
        POST.format(title=json.dumps(title), date=date, source=source, body=body),
        encoding="utf-8")


def web_args(web: FaultWeb) -> list[str]:
    return helpers.web_args(web, "--attempts", "1", "--fail-on", "never", "--quiet")


def lk(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LINKKEEPER, *map(str, args)], capture_output=True, text=True,
                          timeout=120, env={"PATH": "/usr/bin:/bin",
                                            "XDG_STATE_HOME": os.environ["XDG_STATE_HOME"]})


@dataclass
class History:
    site: Path
    db: Path


def build_history(web: FaultWeb, root: Path) -> History:
    """Two nights of `check`; see the module docstring."""
    site = root / "site"
    (site / "_posts").mkdir(parents=True)
    (site / "_config.yml").write_text('url: "https://site.example"\n')
    write_post(site, "alpha", "Alpha story", "2019-05-01", f"{NEWS}/ok/alpha", [
        (GONE, "the gone page"),
        (FLAKY, "sometimes down"),
        (f"{NEWS}/block/403/alpha-paywall", "paywalled"),
        ("https://does-not-resolve.invalid/ok/x", "no such host"),
    ])
    write_post(site, "beta", "Beta story", "2021-03-02", f"{NEWS}/status/410/beta-source", [
        (GONE, "the same gone page"),
        *[(f"{NEWS}/ok/beta-{i}", f"page {i}") for i in range(OK_PAGES)],
    ])
    write_post(site, "xss", XSS_TITLE, "2022-07-03", f"{NEWS}/ok/xss-source", [
        (f"{NEWS}/status/404/xss-target", XSS_TEXT),
        (XSS_URL, "payload in the URL"),
        (JS_URL, "a javascript link"),
    ])
    assert lk("check", site, *web_args(web)).returncode == 0
    write_post(site, "gamma", "Gamma story", "2023-01-04", f"{NEWS}/ok/gamma", [
        (NEW_404, "new and already gone"),
    ])
    res = lk("check", site, *web_args(web))
    assert res.returncode == 0, res.stderr
    return History(site, site / "linkkeeper.db")


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory, faultweb_session: FaultWeb) -> History:
    return build_history(faultweb_session, tmp_path_factory.mktemp("report"))


def report_of(hist: History, fmt: str, *extra: object) -> str:
    res = lk("report", hist.site, "--format", fmt, *extra)
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_model_counts_changes_and_groupings(history: History) -> None:
    rep = build_report(connect(history.db))
    s = rep.summary
    by_url = {lnk.url: lnk for lnk in rep.links}
    assert rep.run["id"] == 2 and rep.baseline and rep.baseline["id"] == 1
    assert [lnk.url for lnk in rep.newly_broken] == [NEW_404]
    assert [lnk.url for lnk in rep.recovered] == [FLAKY]
    assert by_url[FLAKY].baseline_status == "server-error" and by_url[FLAKY].status == "ok"
    assert (s.newly_broken, s.recovered, s.blocked) == (1, 1, 1)
    broken = {u for u, lnk in by_url.items() if lnk.is_failure}
    assert GONE in broken and f"{NEWS}/status/410/beta-source" in broken
    assert "https://does-not-resolve.invalid/ok/x" in broken
    assert s.failing == len(broken) and s.dead == 0
    assert s.alive == sum(1 for lnk in rep.links if lnk.status in ("ok", "redirected"))
    assert s.alive >= OK_PAGES + 4
    assert s.checked == len(rep.links) - 1  # all but the javascript: link (excluded)
    # by post: the post with the newly broken link first; each bad link under each citing post
    assert rep.posts[0].title == "Gamma story"
    assert [b.link.url for b in rep.posts[0].bad] == [NEW_404]
    titles = {p.title: p for p in rep.posts}
    assert {b.link.url for b in titles["Beta story"].bad} == {GONE,
                                                              f"{NEWS}/status/410/beta-source"}
    assert {b.occurrence.kind for b in titles["Beta story"].bad} == {"source", "inline"}
    assert GONE in {b.link.url for b in titles["Alpha story"].bad}
    assert all(b.link.failing_since for p in rep.posts for b in p.bad)
    # by host: news.example has links and failures; the typical error is its commonest
    # reason (what helps), with the status it led to
    hosts = {h.host: h for h in rep.hosts}
    news = hosts["news.example"]
    assert news.failures >= 4 and news.blocked == 1
    assert (news.typical_reason, news.typical_status) == ("HTTP 404 Not Found", "broken")
    assert news.typical_error == "HTTP 404 Not Found (broken)" and news.typical_count >= 3
    nowhere = hosts["does-not-resolve.invalid"]
    assert nowhere.typical_error == "DNS: name does not resolve (broken)"
    assert 0 < news.failure_rate < 0.2
    # rot by year of post: 2019 (alpha), 2021 (beta), 2022 (xss), 2023 (gamma)
    assert [y.year for y in rep.rot] == ["2019", "2021", "2022", "2023"]
    assert rep.rot[-1].links == 2 and rep.rot[-1].broken == 1
    assert [p.id for p in rep.history] == [1, 2]


def test_since_limits_to_what_changed(history: History) -> None:
    db = connect(history.db)
    since_1 = build_report(db, since="1")
    assert {lnk.url: lnk.change for lnk in since_1.shown} == {NEW_404: "newly-broken",
                                                              FLAKY: "recovered"}
    assert [p.title for p in since_1.posts] == ["Gamma story"]
    # a date before every run compares with nothing: everything failing is newly broken
    since_old = build_report(db, since="2000-01-01")
    assert since_old.baseline is None
    assert since_old.summary.newly_broken == sum(1 for lnk in since_old.links
                                                 if lnk.status in ("broken", "tls-error",
                                                                   "server-error"))
    # a date after the last run (or the last run itself): said, never a run against itself
    for after in ("2999-01-01", "2"):
        with pytest.raises(ReportError, match="nothing to compare"):
            build_report(db, since=after)
    res = lk("report", history.site, "--since", "2999-01-01")
    assert res.returncode == 3 and "nothing to compare, the last run (run 2" in res.stderr
    res = lk("report", history.site, "--since", "99")
    assert res.returncode == 3 and "no run 99" in res.stderr
    with pytest.raises(ReportError, match="no run 99999999999999999999"):  # past SQLite's ints
        build_report(db, since="99999999999999999999")
    res = lk("report", history.site, "--since", "last tuesday")
    assert res.returncode == 3 and "run id" in res.stderr and "Traceback" not in res.stderr


def test_html_report_file_and_content(history: History, tmp_path: Path) -> None:
    res = lk("report", history.site)
    assert res.returncode == 0, res.stderr
    page = (history.site / "reports" / "index.html").read_text(encoding="utf-8")
    assert "1 newly broken" in res.stderr
    # self-contained: no external fetches of any kind
    assert not re.search(r'<(link|img|iframe)\b|src="http|@import|url\(', page)
    assert "default-src 'none'" in page
    summary = page[page.index('aria-label="Summary"'):page.index('id="changes"')]
    tiles = dict((label, int(n)) for n, label in
                 re.findall(r"<b>(\d+)</b><span>([a-z -]+?)(?: \(|</span>)", summary))
    rep = build_report(connect(history.db))
    assert tiles["alive"] == rep.summary.alive and tiles["newly broken"] == 1
    assert tiles["recovered"] == 1 and tiles["blocked"] == 1
    changes = page[page.index('id="changes"'):page.index('id="charts"')]
    assert NEW_404 in changes and FLAKY in changes and "was server-error" in changes
    assert page.count("<svg") == 3 and "Rot curve" in page
    # the table data holds every link; archived copies are relative links for `serve`
    data = json.loads(re.search(r'id="links-data">(.*?)</script>', page, re.S).group(1))
    assert len(data["rows"]) == len(rep.links)
    # (a copy at the usual archive/<timestamp>/<url> is stored as its timestamp alone)
    archived = [row[10] for row in data["rows"] if row[10]]
    assert archived, "check captured live pages: some rows link to an archived copy"
    assert all(re.fullmatch(r"\d{14}", a) for a in archived)
    # worst first: the table opens on the failures, the uncheckable links come last
    statuses = [data["statuses"][row[2]] for row in data["rows"]]
    assert statuses[0] in ("soft-404", "broken") and statuses[-1] in ("excluded", "invalid")
    assert statuses.index("ok") > max(i for i, s in enumerate(statuses) if s == "broken")
    assert "linkkeeper serve" in page
    # -o and --output-dir
    assert lk("report", history.site, "--output-dir", tmp_path / "out").returncode == 0
    assert (tmp_path / "out" / "index.html").exists()
    assert lk("report", "--db", history.db, "-o", tmp_path / "r.html").returncode == 0
    assert (tmp_path / "r.html").read_text(encoding="utf-8").startswith("<!doctype html>")


RAW_URL = 'https://news.example/x"><script>window.__xss=5</script><!--\u2028'


def copy_db(source: Path, target: Path) -> Path:
    """A consistent copy (the backup API includes what is still in the WAL)."""
    with sqlite3.connect(source, timeout=30) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    return target


def with_raw_payloads(hist: History, target: Path) -> Path:
    """A copy of the history where a URL and a reason carry payloads no normaliser cleaned."""
    with sqlite3.connect(copy_db(hist.db, target)) as conn:
        old = f"{NEWS}/status/404/xss-target"
        for table in ("links", "occurrences", "checks", "link_state", "snapshots"):
            conn.execute(f"UPDATE {table} SET url=? WHERE url=?", (RAW_URL, old))
        conn.execute("UPDATE checks SET reason=? WHERE url=?",
                     ('<svg onload="window.__xss=6">', RAW_URL))
        # and a javascript: link that (against all odds) shows up as broken
        conn.execute("UPDATE checks SET status='broken' WHERE url=?", (JS_URL,))
        conn.execute("UPDATE link_state SET state='failing' WHERE url=?", (JS_URL,))
    return target


def test_html_escapes_everything_from_posts_and_servers(history: History,
                                                        tmp_path: Path) -> None:
    rep = build_report(connect(with_raw_payloads(history, tmp_path / "raw.db")))
    assert RAW_URL in {lnk.url for lnk in rep.links}
    page = render_html(rep)
    # the page's only elements that run or load anything are its own
    assert re.findall(r"<script\b[^>]*>", page) == [
        '<script type="application/json" id="links-data">', "<script>"]
    assert not re.search(r"<(img|svg onload|b>bold)", page)
    assert 'href="javascript:' not in page.lower()
    # every payload appears, as text
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt; &#34;quoted&#34; &amp; &lt;b&gt;" in page
    assert "&lt;img src=x onerror=&#34;window.__xss=2&#34;&gt;" in page
    assert "x&#34;&gt;&lt;script&gt;window.__xss=5&lt;/script&gt;&lt;!--" in page
    assert "&lt;svg onload=&#34;window.__xss=6&#34;&gt;" in page
    assert f'<span class="url nolink" title="not a web address: not clickable">{JS_URL}' in page
    # the JSON block cannot be closed from inside, nor open a comment; U+2028 is escaped
    block = page.split('id="links-data">', 1)[1].split("</script>", 1)[0]
    assert not any(c in block for c in "<>\u2028")
    assert "\\u003c/script\\u003e" in block and "\\u003c!--" in block
    assert RAW_URL in json.loads(block)["rows"][-1][0] or any(
        row[0] == RAW_URL for row in json.loads(block)["rows"])


@given(st.text())
def test_safe_json_round_trips_and_never_breaks_out(text: str) -> None:
    out = str(safe_json({"t": text}))
    assert json.loads(out) == {"t": text}
    assert not any(c in out for c in "<>&\u2028\u2029")


@given(st.text())
def test_markdown_text_is_inert(text: str) -> None:
    out = md_text(text)
    assert "<" not in out and ">" not in out and "\n" not in out
    assert not re.search(r"(?<!\\)[\[\]`*_|]", out)


@given(st.text())
def test_markdown_urls_only_link_web_addresses(url: str) -> None:
    out = md_url(url)
    assert out.startswith("<http") or (out.startswith("`") and out.count("`") == 2)


@given(st.text())
def test_markdown_code_spans_stay_on_one_line(text: str) -> None:
    """A post's file name may hold a backtick or a line break: neither may end the code span
    or the list item it sits in."""
    out = md_code(text)
    assert out.count("`") == 2 and not any(c in out for c in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")


def test_snapshot_timestamps() -> None:
    assert snapshot_timestamp("2024-11-19T08:01:02Z") == "20241119080102"
    assert snapshot_timestamp("2024-11-19T08:01:02.123456+00:00") == "20241119080102"
    assert snapshot_timestamp("2024-11-19") is None and snapshot_timestamp(None) is None


def test_markdown_newly_broken_first(history: History) -> None:
    md = report_of(history, "markdown")
    assert md.startswith("## linkkeeper: 1 newly broken, 1 recovered (run 2 vs run 1)")
    new_at, rec_at = md.index("### Newly broken (1)"), md.index("### Recovered (1)")
    assert new_at < rec_at < md.index("Still broken or failing")
    assert f"<{NEW_404}>" in md[new_at:rec_at] and "Gamma story" in md[new_at:rec_at]
    assert "<script>" not in md and "`javascript:" not in md  # JS link is not broken: absent
    assert "\\<" not in md and "&lt;script&gt;" in md  # XSS title: entity-escaped
    assert len(md) < 65_536


def test_json_has_the_check_schema_plus_report(history: History, tmp_path: Path) -> None:
    doc = json.loads(report_of(history, "json"))
    check_keys = set(next(link_records(connect(history.db), 2)))  # `check --format json`'s
    assert set(doc) == {"run", "links", "report"}
    assert doc["run"] == run_record(connect(history.db), 2)
    assert all(set(lnk) == check_keys | {"change", "baseline_status", "archived", "archived_copy"}
               for lnk in doc["links"])
    assert doc["report"]["newly_broken"] == [NEW_404]
    assert doc["report"]["recovered"] == [FLAKY]
    assert doc["report"]["summary"]["newly_broken"] == 1
    since = json.loads(report_of(history, "json", "--since", "1"))
    assert {lnk["url"] for lnk in since["links"]} >= {NEW_404, FLAKY}
    assert all(lnk["change"] for lnk in since["links"])


def test_csv_one_row_per_occurrence(history: History) -> None:
    rows = list(csv.DictReader(io.StringIO(report_of(history, "csv"))))
    with sqlite3.connect(history.db, timeout=30) as conn:
        occurrences = conn.execute("SELECT count(*) FROM occurrences").fetchone()[0]
    assert len(rows) == occurrences
    gone = [r for r in rows if r["url"] == GONE]
    assert {r["post_title"] for r in gone} == {"Alpha story", "Beta story"}
    assert all(r["status"] == "broken" and r["http_status"] == "404" for r in gone)
    new = [r for r in rows if r["url"] == NEW_404]
    assert new[0]["change"] == "newly-broken" and new[0]["line"].isdigit()


def test_junit_one_case_per_link(history: History) -> None:
    root = ET.fromstring(report_of(history, "junit"))
    cases = root.findall("./testsuite/testcase")
    rep = build_report(connect(history.db))
    assert len(cases) == len(rep.links) == int(root.get("tests"))
    failed = {c.get("name") for c in cases if c.find("failure") is not None}
    assert failed == {lnk.url for lnk in rep.links if lnk.is_failure}
    assert int(root.get("failures")) == len(failed)
    skipped = {c.get("name") for c in cases if c.find("skipped") is not None}
    assert f"{NEWS}/block/403/alpha-paywall" in skipped and JS_URL in skipped
    fail = next(c for c in cases if c.get("name") == NEW_404).find("failure")
    assert fail.get("type") == "broken" and "Gamma story" in fail.text


def test_sarif_structure(history: History) -> None:
    doc = json.loads(report_of(history, "sarif", "--sarif-prefix", "blog/"))
    assert doc["version"] == "2.1.0" and doc["$schema"].endswith("sarif-schema-2.1.0.json")
    (run,) = doc["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "linkkeeper"
    rule_ids = [r["id"] for r in driver["rules"]]
    assert len(set(rule_ids)) == len(rule_ids)
    rep = build_report(connect(history.db))
    expected = sum(len(lnk.occurrences) for lnk in rep.links if lnk.is_failure)
    assert len(run["results"]) == expected
    for res in run["results"]:
        assert res["ruleId"] in rule_ids and rule_ids[res["ruleIndex"]] == res["ruleId"]
        assert res["level"] in ("error", "warning", "note")
        assert res["message"]["text"]
        (loc,) = res["locations"]
        uri = loc["physicalLocation"]["artifactLocation"]["uri"]
        assert uri.startswith("blog/_posts/") and uri.endswith(".md")
        assert isinstance(loc["physicalLocation"]["region"]["startLine"], int)
        assert loc["physicalLocation"]["region"]["startLine"] >= 1
    gamma = [r for r in run["results"] if NEW_404 in r["message"]["text"]]
    assert len(gamma) == 1 and gamma[0]["properties"]["newlyBroken"] is True
    post = history.site / gamma[0]["locations"][0]["physicalLocation"]["artifactLocation"][
        "uri"].removeprefix("blog/")
    line = gamma[0]["locations"][0]["physicalLocation"]["region"]["startLine"]
    assert NEW_404 in post.read_text(encoding="utf-8").splitlines()[line - 1]


def test_renders_soft_404_dead_and_drifted_from_the_data(history: History,
                                                         tmp_path: Path) -> None:
    """Detection of these comes later; the report shows whatever the history says."""
    db_path = copy_db(history.db, tmp_path / "copy.db")
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE checks SET status='soft-404', http_status=200 WHERE run_id=2 AND"
                     " url=?", (f"{NEWS}/ok/beta-0",))
        conn.execute("UPDATE link_state SET state='failing', last_status='soft-404' WHERE url=?",
                     (f"{NEWS}/ok/beta-0",))
        conn.execute("UPDATE link_state SET state='dead' WHERE url=?", (GONE,))
        conn.execute("UPDATE link_state SET state='drifted' WHERE url=?", (f"{NEWS}/ok/beta-1",))
    rep = build_report(connect(db_path))
    s = rep.summary
    assert (s.soft_404, s.dead, s.drifted) == (1, 1, 1)
    beta = next(y for y in rep.rot if y.year == "2021")
    assert (beta.dead, beta.soft_404) == (1, 1) and beta.rot_share == 2 / beta.links
    page = render_html(rep)
    assert 'class="badge s-soft-404">soft-404 200' in page and "s-dead" in page


def test_no_history_is_a_clear_error(tmp_path: Path) -> None:
    res = lk("report", "--db", tmp_path / "none.db")
    assert res.returncode == 1 and "run `linkkeeper check` first" in res.stderr
    connect(tmp_path / "empty.db")
    res = lk("report", "--db", tmp_path / "empty.db")
    assert res.returncode == 1 and "no check has been run" in res.stderr


def test_datasette_canned_queries_run_on_a_real_history(history: History) -> None:
    meta_file = Path(__file__).parent.parent / "linkkeeper" / "datasette-metadata.json"
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    queries = meta["databases"]["linkkeeper"]["queries"]
    assert len(queries) >= 8
    with sqlite3.connect(history.db, timeout=30) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert set(meta["databases"]["linkkeeper"]["tables"]) <= tables
        results = {}
        for name, query in queries.items():
            assert query["title"] and query["description"], name
            results[name] = conn.execute(query["sql"], {"url": GONE}).fetchall()
    assert [row[0] for row in results["newly_broken"]] == [NEW_404]
    assert results["recovered"] == [(FLAKY, "server-error", "ok", 200)]
    assert len(results["link_timeline"]) == 2
    assert [row[0] for row in results["rot_by_year"]] == ["2019", "2021", "2022", "2023"]
    assert {row[2] for row in results["broken_by_post"]} >= {
        "_posts/2019-05-01-alpha.md", "_posts/2023-01-04-gamma.md"}
    assert any(row[0] == "news.example" for row in results["hosts"])


def test_changes_against_a_run_that_skipped_some_links(history: History, tmp_path: Path) -> None:
    """Runs with --budget/--max-age check a subset: a link's baseline is its latest check then."""
    db_path = copy_db(history.db, tmp_path / "partial.db")
    with sqlite3.connect(db_path) as conn:
        for run, checks in ((3, {FLAKY: "broken"}), (4, {FLAKY: "broken", NEW_404: "ok"})):
            conn.execute("INSERT INTO runs (id, started_at, state, counts) VALUES"
                         " (?, ?, 'complete', '{}')", (run, f"2099-01-0{run}T00:00:00+00:00"))
            for url, status in checks.items():
                conn.execute("INSERT INTO checks (run_id, url, status, reason, checked_at)"
                             " VALUES (?, ?, ?, 'simulated', ?)",
                             (run, url, status, f"2099-01-0{run}T00:00:00+00:00"))
                conn.execute("UPDATE link_state SET last_run=?, last_status=? WHERE url=?",
                             (run, status, url))
    rep = build_report(connect(db_path))
    assert rep.run["id"] == 4 and rep.baseline and rep.baseline["id"] == 3
    changed = {lnk.url: (lnk.baseline_status, lnk.change) for lnk in rep.links if lnk.change}
    # NEW_404 was not checked in run 3: its baseline is run 2's check
    assert changed == {NEW_404: ("broken", "recovered")}
    since_2 = build_report(connect(db_path), since="2")
    assert {lnk.url: lnk.change for lnk in since_2.shown} == {FLAKY: "newly-broken",
                                                              NEW_404: "recovered"}


def test_report_options_from_a_config_file(history: History, tmp_path: Path) -> None:
    config = tmp_path / "linkkeeper.toml"
    config.write_text('host-concurrency = 4\n[report]\nformat = "csv"\nsince = "1"\n')
    rows = list(csv.DictReader(io.StringIO(report_of(history, "csv", "--config", config))))
    assert {r["url"] for r in rows} == {NEW_404, FLAKY}
    res = lk("report", history.site, "--config", config, "--format", "junit")
    assert res.returncode == 0 and res.stdout.startswith("<?xml")  # command line wins


def test_charts_escape_and_scale() -> None:
    from linkkeeper.report import charts
    from linkkeeper.report.data import HostView, RunPoint, YearRot

    svg = str(charts.host_chart([HostView('<x>&"', 10, 5, 0, "broken 404")]))
    assert "&lt;x&gt;&amp;" in svg and "<x>" not in svg and "5/10 (50%)" in svg
    runs = [RunPoint(i, f"2026-01-{i:02d}T00:00:00+00:00", "complete",
                     {"ok": 90_000, "broken": 10_000}) for i in range(1, 31)]
    svg = str(charts.history_chart(runs))
    assert svg.count("<rect") == 5 + 30 * 2 and ">100k<" in svg  # legend + two groups per run
    assert ">30<" in svg  # the latest run is always labelled
    rot = [YearRot(str(y), 100, 10, 5, 3) for y in range(2005, 2025)]
    svg = str(charts.rot_chart(rot))
    assert ">2024<" in svg and ">15%<" in svg
    assert "No runs yet" in str(charts.history_chart([]))


def test_counted_links_match_the_stream(history: History, tmp_path: Path) -> None:
    """The build's walk (no object per citation, no join to `posts`) sees what the formats'
    stream sees: same links, statuses and changes, citations summarised from the same
    occurrences, and the kept (failing or changed) links with every occurrence; also for
    a citation whose post is gone from `posts` and a post whose date is not text."""
    from linkkeeper.report.links import counted_links, open_stream, stream_links
    from linkkeeper.report.model import Citations

    db_path = copy_db(history.db, tmp_path / "counted.db")
    with sqlite3.connect(db_path) as conn:
        conn.execute("DELETE FROM posts WHERE path LIKE '%alpha%'")
        conn.execute("UPDATE posts SET date=20210302 WHERE path LIKE '%beta%'")
    db = connect(db_path)
    spec = open_stream(db, 1, None)
    streamed, counted = list(stream_links(db, spec)), list(counted_links(db, spec))
    assert [lnk.url for lnk in counted] == [lnk.url for lnk in streamed]
    kept = 0
    for full, light in zip(streamed, counted, strict=True):
        assert (light.status, light.state, light.change, light.archive, light.checked_at) == (
            full.status, full.state, full.change, full.archive, full.checked_at)
        occ = full.occurrences
        assert light.citations == Citations(
            len(occ), occ[0].post, tuple(full.kinds), light.citations.years)
        assert sorted(light.citations.years) == sorted({o.date[:4] for o in occ})
        if full.change or full.is_failure:
            kept += 1
            assert light.occurrences == occ
        else:
            assert light.occurrences == []
    assert kept >= 5
    years = {y for lnk in counted for y in lnk.citations.years}
    assert {"", "2021", "2022", "2023"} <= years and "2019" not in years
