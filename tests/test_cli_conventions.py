"""The command line as the README and lychee's users expect it (issue 14).

The README's recipes marked `<!-- test: verbatim -->` run here line by line, unchanged: the
links are answered by the fault web through linkkeeper's own environment variables
(LINKKEEPER_CONNECT_TO, LINKKEEPER_OFFLINE_DNS, LINKKEEPER_CA_BUNDLE), HOME is a scratch
folder holding `~/blog`. Then: `--help` shows every option's variable, errors are one
`error:` line with the documented exit code, lychee's option names behave exactly like
ours, and every number on screen is true.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import click
import pytest
from click.testing import CliRunner

from linkkeeper.archive.archiver import ArchiveCounts
from linkkeeper.cli import cli
from linkkeeper.cli.app import check_options_from, format_archive_summary, load_params, plural
from linkkeeper.cli.check import format_check_summary
from linkkeeper.db import connect
from linkkeeper.demo import example_site_path
from linkkeeper.faultweb import FaultWeb
from linkkeeper.progress import ProgressReporter
from linkkeeper.report.formats import sarif_uri
from linkkeeper.scan import scan_site
from linkkeeper.settings import last_db, read_ignore_files, remember_db
from linkkeeper.site import open_site

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
LINKKEEPER = [sys.executable, "-m", "linkkeeper"]
SNAPSHOTS = Path(__file__).parent / "fixtures" / "help"
NOT_FOUND = "https://www.rfa.example/status/404/mandarin/Xinwen/kw5-nato-eu-11142024134841.html"


@pytest.fixture(scope="module")
def example_web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultWeb]:
    """The fault web playing the example site's made-up hosts (as `linkkeeper demo` does)."""
    scratch = tmp_path_factory.mktemp("hosts")
    db = connect(scratch / "hosts.db")
    scan_site(db, open_site([example_site_path()]))
    hosts = [h for (h,) in db.execute(
        "SELECT DISTINCT host FROM links WHERE status IS NULL AND host != ''")
        if not h.endswith(".invalid")]
    with FaultWeb(hosts=hosts) as web:
        yield web


def web_env(web: FaultWeb) -> dict[str, str]:
    return {"LINKKEEPER_OFFLINE_DNS": "1", "LINKKEEPER_CA_BUNDLE": web.ca_pem,
            "LINKKEEPER_CONNECT_TO": " ".join(web.connect_to_args(wildcard=False)),
            "LINKKEEPER_ATTEMPTS": "2", "LINKKEEPER_TIMEOUT": "5"}


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINKKEEPER_")}
    return env | extra


def lk(*args: object, cwd: Path | None = None, env: dict[str, str] | None = None,
       timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LINKKEEPER, *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env or clean_env(), timeout=timeout)


def readme_recipes() -> list[list[str]]:
    """The shell lines of every fenced block right after a `<!-- test: verbatim -->` line."""
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"<!-- test: verbatim -->\n```(?:sh|bash|console)\n(.*?)```", text,
                        re.DOTALL)
    return [[line for line in block.splitlines() if line.strip()] for block in blocks]


# -- the README, verbatim -----------------------------------------------------------------------


def test_readme_recipes_run_verbatim(tmp_path: Path, example_web: FaultWeb) -> None:
    """`linkkeeper check ~/blog` then `linkkeeper history URL`: no --db, found by itself."""
    recipes = readme_recipes()
    assert len(recipes) >= 2, "the README's tested recipes went missing"
    assert recipes[0][0].startswith("linkkeeper check ~/blog")
    assert recipes[0][1].startswith("linkkeeper history ")
    home = tmp_path / "home"
    shutil.copytree(example_site_path(), home / "blog")
    elsewhere = tmp_path / "elsewhere"  # not the site: the database is the last-used one
    elsewhere.mkdir()
    env = clean_env(HOME=str(home), **web_env(example_web),
                    PATH=os.pathsep.join([str(Path(sys.executable).parent),
                                          os.environ["PATH"]]))
    for recipe in recipes:
        for line in recipe:
            done = subprocess.run(["bash", "-c", line], capture_output=True, text=True,
                                  cwd=elsewhere, env=env, timeout=300)
            # 2 is `check`'s "link failures" (the example site has broken links)
            assert done.returncode in (0, 2), (line, done.stderr)
            assert not [x for x in done.stderr.splitlines() if x.startswith("error")], (
                line, done.stderr)
            if line.startswith("linkkeeper history"):
                assert done.stdout.splitlines()[0] == NOT_FOUND
                assert "state: failing since" in done.stdout
                assert ", 1 consecutive failure\n" in done.stdout  # singular
    assert (home / "blog" / "linkkeeper.db").is_file()
    assert (home / "blog" / "reports" / "index.html").is_file()
    assert not (elsewhere / "linkkeeper.db").exists()


def test_history_and_replay_find_the_database(tmp_path: Path, example_web: FaultWeb,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """SITE, --site, the config file and the last-used site, like `check`."""
    site = tmp_path / "blog"
    shutil.copytree(example_site_path(), site)
    other = tmp_path / "other"
    other.mkdir()
    env = clean_env(**web_env(example_web))
    assert lk("check", site, "--fail-on", "never", env=env).returncode == 0
    assert last_db() == (site / "linkkeeper.db").resolve()
    where = dict(line.split("=", 1) for line in lk("paths", site).stdout.splitlines())
    assert where == {"db": str((site / "linkkeeper.db").resolve()),
                     "warc-dir": str((site / "warcs").resolve()),
                     "reports": str((site / "reports").resolve()), "config": ""}
    assert Path(where["warc-dir"]).is_dir()  # where check wrote
    for args in (["history", NOT_FOUND, site], ["history", NOT_FOUND, "--site", site],
                 ["history", NOT_FOUND], ["replay", "https://www.rfa.example/ok/x", site]):
        done = lk(*args, "--format", "json", cwd=other)
        if args[0] == "history":
            assert done.returncode == 0, (args, done.stderr)
            assert json.loads(done.stdout)["checks"][0]["status"] == "broken"
        else:  # found the database (and said what it does not hold)
            assert done.returncode == 1 and "nothing archived in" in done.stderr
            assert str(site / "linkkeeper.db") in done.stderr
    (other / "linkkeeper.toml").write_text(f'db = "{site / "linkkeeper.db"}"\n')
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "no-state"))  # config, not last-used
    done = lk("history", NOT_FOUND, cwd=other, env=clean_env())
    assert done.returncode == 0 and "1 consecutive failure" in done.stdout


def test_the_last_used_site_is_remembered(tmp_path: Path) -> None:
    assert last_db() is None
    db = tmp_path / "x.db"
    remember_db(db)
    assert last_db() is None  # only an existing database is offered
    connect(db)
    assert last_db() == db.resolve()
    state = Path(os.environ["XDG_STATE_HOME"]) / "linkkeeper" / "last-site"
    assert state.read_text().strip() == str(db.resolve())


# -- --help, --debug, errors, exit codes ----------------------------------------------------------


def help_text(command: str) -> str:
    result = CliRunner().invoke(cli, [command, "--help"], env={"COLUMNS": "100"},
                                prog_name="linkkeeper")
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_help_shows_every_options_environment_variable(command: str) -> None:
    options = [p for p in cli.commands[command].params if isinstance(p, click.Option)]
    text = " ".join(help_text(command).split())
    for option in options:
        assert option.show_envvar and isinstance(option.envvar, str), option.opts
        assert option.envvar.startswith("LINKKEEPER_")
        assert f"env var: {option.envvar}" in text, (command, option.opts)
    assert "--debug" in text


@pytest.mark.parametrize("command", ["check", "history"])
def test_help_snapshot(command: str) -> None:
    """The whole `--help` of two commands; LINKKEEPER_UPDATE_SNAPSHOTS=1 rewrites them."""
    text = help_text(command)
    snapshot = SNAPSHOTS / f"{command}.txt"
    if os.environ.get("LINKKEEPER_UPDATE_SNAPSHOTS") == "1" or not snapshot.exists():
        snapshot.parent.mkdir(parents=True, exist_ok=True)
        snapshot.write_text(text, encoding="utf-8")
    assert text == snapshot.read_text(encoding="utf-8")


def one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "Error:" not in stderr and "Usage:" not in stderr and "Traceback" not in stderr
    return lines[0]


def test_debug_anywhere_and_one_error_prefix(tmp_path: Path) -> None:
    missing = tmp_path / "none.db"
    for args in (["--debug", "report", "--db", missing], ["report", "--debug", "--db", missing],
                 ["report", "--db", missing, "--debug"]):
        done = lk(*args)
        assert done.returncode == 1, (args, done.stderr)
        assert "no history database" in one_error_line(done.stderr)
    done = lk("history", "https://x.example/", "--bogus")
    assert done.returncode == 3
    assert one_error_line(done.stderr) == ("error: No such option '--bogus' (see `linkkeeper "
                                           "history --help`)")
    done = lk("frobnicate")
    assert done.returncode == 3 and "No such command" in one_error_line(done.stderr)


BAD_VALUES = [
    ("export", "--db", "{db}", "-o", "exp/x.zip"),
    ("export", "--db", "{db}", "--since", "someday", "-o", "x.warc.gz"),
    ("export", "--db", "{db}", "--state", "sleepy", "-o", "x.wacz"),
    ("check", "{site}", "--concurrency", "0"),
    ("check", "{site}", "--max-concurrency", "0"),
    ("check", "{site}", "--max-retries", "-1"),
    ("check", "{site}", "--max-retries", "1", "--attempts", "5"),
    ("check", "{site}", "--format", "xml"),
    ("check", "{site}", "--confirm", "often"),
    ("scan", "{site}", "--jobs", "-1"),
    ("history", "https://x.example/", "--db", "{db}", "--format", "xml"),
    ("report", "--db", "{db}", "--format", "pdf"),
    ("report", "--db", "{db}", "--since", "last tuesday"),
    ("replay", "https://x.example/", "--db", "{db}", "--at", "someday"),
    ("serve", "--db", "{db}", "--port", "99999"),
    ("snapshot", "https://x.example/", "--db", "{db}", "--max-capture-size", "huge"),
    ("demo", "--workdir", "{site}/_config.yml"),
]


@pytest.mark.parametrize("args", BAD_VALUES, ids=lambda a: " ".join(a[:1] + a[-2:]))
def test_a_bad_option_value_exits_3(args: tuple[str, ...], tmp_path: Path) -> None:
    site = tmp_path / "site"
    shutil.copytree(example_site_path(), site)
    db = tmp_path / "h.db"
    connect(db)
    done = lk(*(a.format(db=db, site=site) for a in args), cwd=tmp_path)
    assert done.returncode == 3, done.stderr
    one_error_line(done.stderr)
    assert not (tmp_path / "exp").exists()


# -- answers instead of puzzles -------------------------------------------------------------------


def test_scan_shows_problem_posts_every_time_and_relative_links_once(tmp_path: Path) -> None:
    site = tmp_path / "site"
    shutil.copytree(example_site_path(), site)
    for night in (1, 2):
        done = lk("scan", site)
        assert done.returncode == 0, done.stderr
        err = done.stderr
        assert "2 posts with problems (recorded, the scan went on):" in err, (night, err)
        assert "GBK" in err and ":3: not valid UTF-8" in err
        assert "broken front matter.md:" in err
    # without the site's URL, N relative links are one sentence, not N lines
    config = site / "_config.yml"
    config.write_text(re.sub(r"(?m)^url:.*$", "", config.read_text(encoding="utf-8")))
    done = lk("scan", site, "--force")
    lines = [x for x in done.stderr.splitlines() if "relative" in x]
    assert len(lines) == 1 and re.fullmatch(
        r"set `--site-url` \(or `url` in `_config.yml`\) to check \d+ relative links?", lines[0])
    assert "set `--site-url`" not in lk("scan", site, "--force", "--site-url",
                                        "https://archive.example/").stderr


def test_many_problem_posts_show_the_first_few_and_how_to_list_all(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "_posts").mkdir(parents=True)
    for i in range(8):
        (site / "_posts" / f"2020-01-0{i + 1}-bad{i}.md").write_bytes(
            b"---\ntitle: [unclosed\n---\nbody\n")
    done = lk("scan", site)
    assert "8 posts with problems" in done.stderr
    assert "... and 3 more (`linkkeeper scan -v` lists them all)" in done.stderr
    everything = lk("scan", site, "-v").stderr
    assert sum("bad" in line for line in everything.splitlines()) == 8


def test_a_folder_without_posts_is_a_configuration_error(tmp_path: Path) -> None:
    empty = tmp_path / "not-a-site"
    (empty / "assets").mkdir(parents=True)
    (empty / "assets" / "style.css").write_text("body {}")
    for command in ("scan", "check"):
        done = lk(command, empty)
        assert done.returncode == 3
        assert one_error_line(done.stderr) == (f"error: no posts found under {empty} "
                                               "(is this a Jekyll site?)")
    assert not (empty / "linkkeeper.db").exists()


def test_demo_shows_the_problem_posts_on_every_night(tmp_path: Path) -> None:
    for night in (1, 2):
        done = lk("demo", "--workdir", tmp_path / "demo", "--no-progress", timeout=300)
        assert done.returncode == 0, done.stderr
        assert "scanned 12 posts: " in done.stderr
        assert "2 posts with problems" in done.stderr and "GBK" in done.stderr, night
    assert "(0 posts parsed)" not in done.stderr and "12 unchanged" in done.stderr
    # the demo's site is the last-used one: `history URL` reads it
    done = lk("history", NOT_FOUND, cwd=tmp_path)
    assert done.returncode == 0 and "2 consecutive failures" in done.stdout


# -- every number true ----------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_progress_eta_is_not_inflated_and_the_last_line_is_the_total() -> None:
    clock, out = Clock(), io.StringIO()
    progress = ProgressReporter(stream=out, interval=5.0, clock=clock)
    clock.now += 600  # a long scan before the first result: not part of the rate
    total = 4207
    etas = []
    for done in range(1, 4198):  # 50 URLs/s, steady
        clock.now += 0.02
        progress.update(done, total, {"ok": done})
        if done in (5, 19):
            assert progress.rate.eta(done, total) is None  # too early to say
        if done % 500 == 0:
            etas.append((progress.rate.eta(done, total), (total - done) / 50))
    for eta, truth in etas:
        assert eta is not None and abs(eta - truth) <= 0.1 * truth + 1, (eta, truth)
    first = out.getvalue().splitlines()[0]
    assert "eta" not in first  # the first line comes before anything is known
    progress.close()  # the run ended at 4,197 of 4,207 (say, interrupted): the last line says so
    last = out.getvalue().splitlines()[-1]
    assert last.startswith("[4197/4207]"), last
    assert "eta" in out.getvalue().splitlines()[-2]


def test_progress_is_printed_once_at_the_end_when_done() -> None:
    clock, out = Clock(), io.StringIO()
    progress = ProgressReporter(stream=out, interval=5.0, clock=clock)
    for done in range(1, 11):
        progress.update(done, 10, {"ok": done})
    progress.close()
    lines = out.getvalue().splitlines()
    assert lines[-1].startswith("[10/10]") and sum(x.startswith("[10/10]") for x in lines) == 1


def test_summary_lists_only_timed_hosts_and_counts_right() -> None:
    result = SimpleNamespace(
        run=SimpleNamespace(id=3, resumed=False), checked=1, requests=1, elapsed_s=1.0,
        counts={"ok": 1}, new_failures=[], archive=None, host_failures=[],
        host_times={"zero.example": (4, 0.0), "slow.example": (2, 500.0), "never.example": (0, 0)})
    text = format_check_summary(None, result)
    assert text.splitlines()[0] == "run 3: 1 URL, 1 request in 1.0s"
    assert "slow.example (2 URLs)" in text and "250" in text
    assert "zero.example" not in text and "never.example" not in text
    one = format_archive_summary(ArchiveCounts(captures=1, urls=1, bytes_written=900))
    assert one == "archived 1 URL: 1 capture, 0 revisits, 0 truncated, 900 B written"
    assert [plural(n, "consecutive failure") for n in (0, 1, 2, 1234)] == [
        "0 consecutive failures", "1 consecutive failure", "2 consecutive failures",
        "1,234 consecutive failures"]


def test_serve_says_serving_only_once_bound(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    connect(db)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = lk("serve", "--db", db, "--port", port, "--no-regenerate", timeout=60)
    assert done.returncode == 1
    line = one_error_line(done.stderr)
    assert line.startswith(f"error: cannot listen on 127.0.0.1:{port}: ") and "serving" not in line
    server = subprocess.Popen([*LINKKEEPER, "serve", "--db", str(db), "--port", "0",
                               "--no-regenerate"], stderr=subprocess.PIPE, text=True,
                              env=clean_env())
    try:
        assert server.stderr is not None
        said = server.stderr.readline()
        match = re.match(r"serving http://127\.0\.0\.1:(\d+)/ ", said)
        assert match and int(match.group(1)) > 0, said
        with socket.create_connection(("127.0.0.1", int(match.group(1))), timeout=5):
            pass  # it is listening when it says so
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_sarif_uris_are_percent_encoded() -> None:
    assert sarif_uri("blog/_posts/2021-05-20-broken front matter.md") == (
        "blog/_posts/2021-05-20-broken%20front%20matter.md")
    assert sarif_uri("_posts/2020-08-07-特朗普.md") == (
        "_posts/2020-08-07-%E7%89%B9%E6%9C%97%E6%99%AE.md")
    assert sarif_uri("_posts/100%.md") == "_posts/100%25.md"


# -- lychee's conventions ---------------------------------------------------------------------------


def parsed(command: str, args: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """The parameters `command` works with after parsing `args` (and the config file)."""
    saved = dict(os.environ)
    os.environ.update(env or {})
    try:
        ctx = cli.commands[command].make_context(command, list(args))
        with ctx:
            return load_params(ctx, dict(ctx.params))
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.mark.parametrize(("lychee", "ours"), [
    (["--max-concurrency", "7"], ["--concurrency", "7"]),
    (["--max-retries", "2"], ["--attempts", "3"]),
    (["--max-retries", "0"], ["--attempts", "1"]),
    (["--max-retries", "2", "--attempts", "3"], ["--attempts", "3"]),
    (["-a", "200..=299,403", "-t", "9", "-u", "lk test", "-i", "-m", "3"],
     ["--accept", "200..=299,403", "--timeout", "9", "--user-agent", "lk test", "--insecure",
      "--max-redirects", "3"]),
])
def test_lychee_aliases_give_the_same_check_options(lychee: list[str], ours: list[str],
                                                    tmp_path: Path) -> None:
    site = str(example_site_path())
    assert check_options_from(parsed("check", [site, *lychee])) == check_options_from(
        parsed("check", [site, *ours]))
    assert check_options_from(parsed("snapshot", lychee)) == check_options_from(
        parsed("snapshot", ours))


def test_lychee_aliases_by_environment_and_the_other_names() -> None:
    site = str(example_site_path())
    by_env = parsed("check", [site], {"LINKKEEPER_MAX_RETRIES": "4"})
    assert check_options_from(by_env).attempts == 5
    for command in ("check", "scan", "snapshot"):
        a = parsed(command, [site, "--base-url", "https://b.example/"])
        b = parsed(command, [site, "--site-url", "https://b.example/"])
        c = parsed(command, [site, "-b", "https://b.example/"])
        assert a["site_url"] == b["site_url"] == c["site_url"] == "https://b.example/"
    for args in (["-v", "--no-progress"], ["--verbose", "-n"]):
        p = parsed("check", [site, *args])
        assert (p["verbose"], p["no_progress"]) == (1, True)
    assert lk("-V").stdout == lk("--version").stdout != ""


def test_ignore_files_read_both_names(tmp_path: Path) -> None:
    (tmp_path / ".linkkeeperignore").write_text("# ours\n^https://a\\.example/\n\n")
    (tmp_path / "cwd").mkdir()
    (tmp_path / "cwd" / ".lycheeignore").write_text("b\\.example\n  # indented comment\n")
    assert read_ignore_files([tmp_path / "cwd", tmp_path, tmp_path]) == [
        "b\\.example", "^https://a\\.example/"]


def test_dump_lists_what_would_be_checked_and_checks_nothing(tmp_path: Path,
                                                              example_web: FaultWeb) -> None:
    site = tmp_path / "site"
    shutil.copytree(example_site_path(), site)
    (site / ".lycheeignore").write_text("# lychee's file\n//www\\.rfa\\.example/\n")
    done = lk("check", site, "--dump", "--exclude", "flickr", env=clean_env(
        **web_env(example_web)))
    assert done.returncode == 0, done.stderr
    urls = done.stdout.splitlines()
    assert urls and all(u.startswith(("http://", "https://")) for u in urls)
    assert not [u for u in urls if "www.rfa.example" in u or "flickr" in u]
    assert "https://archive.example/about/" in urls
    with sqlite3.connect(site / "linkkeeper.db") as conn:
        assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM checks").fetchone()[0] == 0
    # and a real check leaves the ignored ones unfetched
    done = lk("check", site, "--format", "json", "--no-progress", "--fail-on", "never",
              env=clean_env(**web_env(example_web)))
    doc = json.loads(done.stdout)
    links = {lnk["url"]: lnk for lnk in doc["links"]}
    # requests that never left (a name that does not resolve, a refused port) and the soft-404
    # probes of such hosts are not counted: the run's count is the sum of what was sent
    gone = links["https://gone.reuters.invalid/ok/article/host-gone"]
    assert gone["reason"] == "DNS: name does not resolve" and gone["requests"] == 0
    assert links["http://closed.example/ok/article/nothing-listens"]["requests"] == 0
    assert doc["run"]["requests"] == sum(lnk["requests"] for lnk in doc["links"]
                                         if lnk["checked_this_run"])
    assert f"{doc['run']['requests']} requests in" in done.stderr
    assert links[NOT_FOUND]["status"] == "excluded"
    assert links[NOT_FOUND]["reason"] == "matches --exclude '//www\\\\.rfa\\\\.example/'"
    assert not re.search(r"^\[\d+/\d+\]", done.stderr, re.MULTILINE)  # --no-progress
    assert "run 1: " in done.stderr  # the summary still


def test_check_format_markdown_for_job_summaries(tmp_path: Path, example_web: FaultWeb) -> None:
    site = tmp_path / "site"
    shutil.copytree(example_site_path(), site)
    done = lk("check", site, "--format", "markdown", "-q", env=clean_env(**web_env(example_web)))
    assert done.returncode == 2, done.stderr
    assert done.stdout.startswith("## linkkeeper: 13 newly broken, 0 recovered")
    assert "| checked | alive | failing | dead |" in done.stdout
    target = tmp_path / "summary.md"
    again = lk("check", site, "--format", "markdown", "-o", target, "--no-progress",
               env=clean_env(**web_env(example_web)))
    assert again.returncode in (0, 2) and target.read_text().startswith("## linkkeeper:")
    assert "run 2: " in again.stdout  # -o: the summary on stdout, as with json


LYCHEE_OPTIONS = [  # lychee's long options (its `--help`, 0.18)
    "config", "files-from", "no-progress", "host-stats", "extensions", "default-extension",
    "cache", "max-cache-age", "cache-exclude-status", "dump", "dump-inputs", "archive",
    "suggest", "max-redirects", "max-retries", "min-tls", "max-concurrency", "host-concurrency",
    "host-request-interval", "threads", "user-agent", "insecure", "scheme", "offline",
    "include", "exclude", "exclude-file", "exclude-path", "exclude-all-private",
    "exclude-private", "exclude-link-local", "exclude-loopback", "include-mail", "remap",
    "fallback-extensions", "index-files", "header", "accept", "accept-timeouts",
    "include-fragments", "timeout", "retry-wait-time", "method", "base", "base-url", "root-dir",
    "basic-auth", "github-token", "skip-missing", "no-ignore", "hidden", "include-verbatim",
    "glob-ignore-case", "output", "mode", "format", "generate", "require-https", "cookie-jar",
    "include-wikilinks", "preprocess", "verbose", "quiet", "help", "version",
]


def test_readme_maps_every_lychee_option_to_ours() -> None:
    """lychee's options (its `--help`, 0.18): each in the README's table, and every option of
    ours the table names exists."""
    text = README.read_text(encoding="utf-8")
    table = text.split("### lychee's options", 1)[1].split("\n### ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    lychee_side = " ".join(row.split(" | ")[0] for row in rows)
    for name in LYCHEE_OPTIONS:
        assert re.search(rf"`(?:-\w, )?--{name}`|, --{name}[`,]|`--{name}`", lychee_side), name
    ours = {opt for command in cli.commands.values() for p in command.params
            for opt in getattr(p, "opts", []) + getattr(p, "secondary_opts", [])}
    ours |= {"--help", "-h", "--version", "-V"}
    for row in rows:
        named = re.findall(r"`(--?[a-z][\w-]*)", row.split(" | ", 1)[1])
        for option in named:
            assert option in ours, (option, row)
