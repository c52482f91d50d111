"""`linkkeeper scan` end to end: real files in, a real SQLite file out, read back with sqlite3."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from linkkeeper.demo import example_site_path

LINKKEEPER = [sys.executable, "-m", "linkkeeper"]
CORPUS = Path(
    os.environ.get("LINKKEEPER_CORPUS")
    or Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "posts"
)


def run(*args: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None
        ) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("LINKKEEPER_")}
    full_env.update(env or {})
    return subprocess.run([*LINKKEEPER, *map(str, args)], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=120)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    target = tmp_path / "site"
    shutil.copytree(example_site_path(), target)
    return target


def rows(db: Path, sql: str, *params: object) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, params).fetchall()


def test_scan_example_site_records_posts_links_and_problems(site: Path) -> None:
    res = run("scan", site, "--format", "json")
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["posts"] == 12
    assert summary["posts_with_problems"] == 2
    db = site / "linkkeeper.db"
    assert db.exists()
    # one clear line per bad post on stderr: file, line, reason
    err = res.stderr.splitlines()
    assert any("GBK" in line and ":3: not valid UTF-8" in line for line in err), err
    assert any("broken front matter.md:" in line and "YAML" in line for line in err), err
    # the tables read without linkkeeper
    assert rows(db, "SELECT count(*) FROM posts")[0][0] == 12
    assert rows(db, "SELECT count(*) FROM posts WHERE ok = 0")[0][0] == 2
    kinds = dict(rows(db, "SELECT kind, count(DISTINCT url) FROM occurrences GROUP BY kind"))
    assert kinds == summary["urls_by_kind"]
    assert set(kinds) == {"source", "image", "related", "inline", "embed"}
    # `from:` with raw spaces and the percent-encoded title line are one link, kind source
    voa = rows(db, "SELECT DISTINCT url, kind FROM occurrences WHERE post LIKE '%特朗普禁微信%'"
               " AND kind = 'source'")
    assert len(voa) == 1, voa
    assert voa[0][0].startswith("https://www.voa.example/ok/a/trump%20wechat%20ban%20")
    # relative links resolve against url + baseurl of _config.yml
    assert rows(db, "SELECT count(*) FROM links WHERE url = 'https://archive.example/about/'"
                )[0][0] == 1
    # mailto/tel/javascript are excluded with the scheme, bad URLs invalid with a reason
    excluded = rows(db, "SELECT url, reason FROM links WHERE status = 'excluded'")
    assert {u.split(":")[0] for u, _ in excluded} >= {"mailto", "tel", "javascript"}
    assert all(r for _, r in excluded)
    invalid = rows(db, "SELECT url, reason FROM links WHERE status = 'invalid'")
    assert len(invalid) == 2 and all(r for _, r in invalid)
    # image proxies: checked as written, the wrapped original recorded beside them
    wraps = dict(rows(db, "SELECT url, wraps FROM links WHERE wraps IS NOT NULL"))
    assert any(w and "live.staticflickr.example" in w for w in wraps.values()), wraps
    # links in code and comments are not links
    assert rows(db, "SELECT count(*) FROM links WHERE url LIKE '%in-code%' OR url LIKE "
                "'%in-fenced%' OR url LIKE '%in-comment%'")[0][0] == 0


def test_rescan_is_incremental_and_keeps_history(site: Path) -> None:
    db = site / "linkkeeper.db"
    assert run("scan", site).returncode == 0
    # a history row written by a later stage must survive every scan
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO checks (run_id, url, status) VALUES (1, 'https://x.example/', "
                     "'ok')")
    again = json.loads(run("scan", site, "--format", "json").stdout)
    assert again["parsed"] == 0 and again["unchanged"] == 12

    post = next((site / "_posts").glob("*Markdown*"))
    text = post.read_text(encoding="utf-8")
    post.write_text(text.replace("https://theinitium.example/ok/autolink-page",
                                 "https://theinitium.example/ok/edited-autolink"), encoding="utf-8")
    removed = next((site / "_posts").glob("*embeds and meta*"))
    removed_rel = removed.relative_to(site).as_posix()
    removed.unlink()
    third = json.loads(run("scan", site, "--format", "json").stdout)
    assert third["parsed"] == 1 and third["removed"] == 1 and third["posts"] == 11
    urls = {u for (u,) in rows(db, "SELECT url FROM occurrences")}
    assert "https://theinitium.example/ok/edited-autolink" in urls
    assert "https://theinitium.example/ok/autolink-page" not in urls
    assert rows(db, "SELECT count(*) FROM occurrences WHERE post = ?", removed_rel)[0][0] == 0
    # links rows stay (history refers to them); the history row is untouched
    assert rows(db, "SELECT count(*) FROM links WHERE url = "
                "'https://theinitium.example/ok/autolink-page'")[0][0] == 1
    assert rows(db, "SELECT count(*) FROM checks")[0][0] == 1


def test_config_precedence_cli_over_env_over_file(site: Path, tmp_path: Path) -> None:
    post = site / "_posts" / "2021-06-01-custom key.md"
    post.write_text("---\ntitle: t\noriginal: https://custom.example/ok/from-original\n"
                    "via: https://custom.example/ok/from-via\n---\nbody\n", encoding="utf-8")
    (site / "linkkeeper.toml").write_text('source-key = ["original"]\nformat = "json"\n')
    db = tmp_path / "a.db"
    res = run("scan", site, "--db", db)  # file: key `original`, JSON output
    assert res.returncode == 0, res.stderr
    json.loads(res.stdout)
    sources = {u for (u,) in rows(db, "SELECT url FROM occurrences WHERE kind='source' AND "
                                       "post LIKE '%custom key%'")}
    assert sources == {"https://custom.example/ok/from-original"}
    # environment beats the file
    res = run("scan", site, "--db", tmp_path / "b.db", "--force",
              env={"LINKKEEPER_SOURCE_KEYS": "via", "LINKKEEPER_FORMAT": "text"})
    assert res.stdout.startswith("posts"), res.stdout
    sources = {u for (u,) in rows(tmp_path / "b.db", "SELECT url FROM occurrences WHERE "
                                  "kind='source' AND post LIKE '%custom key%'")}
    assert sources == {"https://custom.example/ok/from-via"}
    # the command line beats both
    res = run("scan", site, "--db", tmp_path / "c.db", "--format", "json",
              env={"LINKKEEPER_FORMAT": "text"})
    json.loads(res.stdout)


def test_clear_errors_and_exit_codes(tmp_path: Path, site: Path) -> None:
    res = run("scan", tmp_path / "missing")
    assert res.returncode == 3
    assert "missing" in res.stderr and "Traceback" not in res.stderr
    (site / "linkkeeper.toml").write_text("format = [unclosed\n")
    res = run("scan", site)
    assert res.returncode == 3
    assert "linkkeeper.toml" in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    (site / "linkkeeper.toml").write_text("no-such-setting = 1\n")
    res = run("scan", site)
    assert res.returncode == 3 and "no_such_setting" in res.stderr


def test_scan_of_file_list_and_python_m(site: Path, tmp_path: Path) -> None:
    posts = sorted((site / "_posts").glob("2020-*.md"))
    res = run("scan", *posts, "--db", tmp_path / "l.db", "--format", "json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["posts"] == len(posts)
    assert run("--version").stdout.startswith("linkkeeper")
    for cmd in ("scan", "check", "history", "demo"):
        helped = run(cmd, "--help")
        assert helped.returncode == 0 and "Example" in helped.stdout, cmd


@pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus not present")
def test_scan_real_corpus(tmp_path: Path) -> None:
    db = tmp_path / "corpus.db"
    res = run("scan", CORPUS, "--db", db, "--format", "json")
    assert res.returncode == 0, res.stderr
    s = json.loads(res.stdout)
    assert s["posts"] == len(list(CORPUS.glob("*.md")))
    # every post names its source: one source link per post at least
    no_source = rows(db, "SELECT path FROM posts WHERE path NOT IN "
                         "(SELECT post FROM occurrences WHERE kind='source')")
    assert no_source == []
    assert s["urls_by_kind"]["image"] > 500 and s["urls_by_kind"]["related"] > 100
    # every checkable URL is absolute http(s) with a host
    bad = rows(db, "SELECT url FROM links WHERE status IS NULL AND NOT "
                   "(url LIKE 'http://%' OR url LIKE 'https://%')")
    assert bad == []


@pytest.mark.parametrize("config, says", [
    ("url: 5\n", "url '5' is not an http(s) URL"),
    ('url: "javascript:alert(1)"\n', "is not an http(s) URL"),
    ("- a list\n", "not a YAML mapping"),
    ("url: [unclosed\n", "cannot read site config"),
    # str() of this url was 4.8 GB: only a plain string is read as the site's URL
    ('s: &s "' + "x" * 10_000 + '"\na0: &a0 [' + ",".join(["*s"] * 9) + "]\n"
     + "".join(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]\n" for i in range(1, 7))
     + "url: *a6\n", "url 'list' is not an http(s) URL"),
])
def test_a_site_config_that_gives_no_site_url_says_why(tmp_path: Path, config: str, says: str
                                                       ) -> None:
    """A _config.yml whose url cannot resolve links is said once, and the scan goes on."""
    from linkkeeper.site import open_site

    (tmp_path / "_posts").mkdir()
    (tmp_path / "_config.yml").write_text(config, encoding="utf-8")
    site = open_site([tmp_path])
    assert site.url is None and site.config_problem and says in site.config_problem
