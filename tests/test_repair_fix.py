"""`fix`: exact edits in posts of our users' format, written, recorded and undone byte for byte."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from repair_world import (
    INLINE_DEAD,
    LEAD,
    MD_DEAD,
    POST,
    RELATED_DEAD,
    RELATED_OK,
    SOURCE,
    ZOOM,
    capture,
    kill,
    make_site,
    revive,
    rows,
    scanned,
)

import linkkeeper.cli.repair  # noqa: F401  (registers `fix` until cli/__init__ imports it)
from linkkeeper.cli.app import cli
from linkkeeper.repair.fix import FixError, FixOptions, plan_fix, undo_run, write_plan

SERVE = "https://archive.blog.example/"
WHEN = "2021-05-04T09:30:00+00:00"
NAME = "_posts/2021-05-03-story.md"
DEAD = (SOURCE, LEAD, ZOOM, RELATED_DEAD, INLINE_DEAD, MD_DEAD)


def arch(url: str) -> str:
    return f"{SERVE}archive/20210504093000/{url}"


def robust(url: str, written: str | None = None) -> str:
    a = arch(url).replace("&", "&amp;")
    return (f'"{a}" data-originalurl="{written or url}" data-versionurl="{a}"'
            ' data-versiondate="2021-05-04"')


def expected_post() -> str:
    """POST as `fix` must leave it: every dead link's own bytes changed, nothing else."""
    text = POST
    text = text.replace(f"from: {SOURCE}\n", f"from: {SOURCE}\narchived: {arch(SOURCE)}\n")
    text = text.replace(f"]({SOURCE})", f"]({arch(SOURCE)})")
    text = text.replace(f'href="{ZOOM}"', f"href={robust(ZOOM)}")
    text = text.replace(f'src="{LEAD}"', f"src={robust(LEAD)}")
    written = INLINE_DEAD.replace("&", "&amp;")
    text = text.replace(f'href="{written}"', f"href={robust(INLINE_DEAD, written)}")
    text = text.replace(f'href="{RELATED_DEAD}"', f"href={robust(RELATED_DEAD)}")
    return text.replace(f"({MD_DEAD}", f"({arch(MD_DEAD)}")


def world(tmp_path: Path, content: str | bytes = POST, dead: tuple[str, ...] = DEAD):  # type: ignore[no-untyped-def]
    site = make_site(tmp_path, {NAME.split("/", 1)[1]: content})
    db = scanned(site)
    (site / "warcs").mkdir()
    (site / "warcs" / "linkkeeper-1.warc.gz").write_bytes(b"")  # our copies must be on disk
    for url in dead:
        kill(db, url)
        capture(db, url, WHEN)
    return site, db


def test_dry_run_diff_is_exact_and_writes_nothing(tmp_path: Path) -> None:
    site, db = world(tmp_path)
    plan = plan_fix(db, site, FixOptions(serve_url=SERVE))
    assert (site / NAME).read_text(encoding="utf-8") == POST
    [post] = plan.changed
    assert post.after.decode("utf-8") == expected_post()
    assert len(post.edits) == 8 and not post.skipped
    diff = post.diff()
    assert diff.startswith(f"--- a/{NAME}\n+++ b/{NAME}\n")
    assert f"+archived: {arch(SOURCE)}\n" in diff
    assert f"-<ul class=\"related\"><li><a href=\"{RELATED_DEAD}\">" in diff
    assert not any(line.startswith(("-", "+")) and RELATED_OK in line and "older" not in line
                   for line in diff.splitlines())


def test_write_records_every_edit_and_undo_restores_the_bytes(tmp_path: Path) -> None:
    site, db = world(tmp_path)
    original = (site / NAME).read_bytes()
    run = write_plan(db, plan_fix(db, site, FixOptions(serve_url=SERVE)), {"serve_url": SERVE})
    assert run is not None
    assert (site / NAME).read_text(encoding="utf-8") == expected_post()
    edits = rows(db, "SELECT post, line, element, url, original, replacement, copy_url,"
                 " copy_source, made_at FROM fix_edits WHERE run_id=? ORDER BY id", [run])
    assert len(edits) == 8
    fm = edits[0]
    assert fm[:4] == (NAME, 7, "front-matter:from", SOURCE)
    assert fm[4] == "" and fm[5] == f"\narchived: {arch(SOURCE)}"
    assert fm[6] == arch(SOURCE) and fm[7] == "ours" and fm[8]
    img = next(e for e in edits if e[2] == "img")
    assert img[4] == f'"{LEAD}"' and img[5] == robust(LEAD)
    # nothing left to do: a second fix plans no edit (the front matter key is there already)
    again = plan_fix(db, site, FixOptions(serve_url=SERVE))
    assert not any(p.edits for p in again.posts)
    assert undo_run(db, site, run) == [NAME]
    assert (site / NAME).read_bytes() == original
    with pytest.raises(FixError, match="already undone"):
        undo_run(db, site, run)


def test_undo_refuses_when_the_post_changed_since(tmp_path: Path) -> None:
    site, db = world(tmp_path)
    run = write_plan(db, plan_fix(db, site, FixOptions(serve_url=SERVE)), {})
    assert run is not None
    path = site / NAME
    path.write_bytes(path.read_bytes() + b"\nA line the author added.\n")
    changed = path.read_bytes()
    with pytest.raises(FixError, match=r"cannot undo fix run \d+: .*story.md changed since"):
        undo_run(db, site, run)
    assert path.read_bytes() == changed
    for missing in (99, 10**20, -1):  # 10**20: past SQLite's integers (an OverflowError)
        with pytest.raises(FixError, match=f"there is no fix run {missing}"):
            undo_run(db, site, missing)


@pytest.mark.parametrize("encoding", ["crlf-bom", "gbk"])
def test_other_encodings_and_line_endings_survive(tmp_path: Path, encoding: str) -> None:
    if encoding == "gbk":
        source = POST.replace("A story with every kind of link", "一篇 GBK 编码的帖子")
        data, want = source.encode("gbk"), expected_post().replace(
            "A story with every kind of link", "一篇 GBK 编码的帖子").encode("gbk")
    else:
        data = b"\xef\xbb\xbf" + POST.replace("\n", "\r\n").encode("utf-8")
        want = b"\xef\xbb\xbf" + expected_post().replace("\n", "\r\n").encode("utf-8")
    site, db = world(tmp_path, data)
    run = write_plan(db, plan_fix(db, site, FixOptions(serve_url=SERVE)), {})
    assert (site / NAME).read_bytes() == want
    assert run is not None
    undo_run(db, site, run)
    assert (site / NAME).read_bytes() == data


def test_markdown_links_as_robust_html(tmp_path: Path) -> None:
    site, db = world(tmp_path, dead=(MD_DEAD,))
    [post] = plan_fix(db, site, FixOptions(serve_url=SERVE, robust="html")).changed
    a = arch(MD_DEAD)
    attrs = (f'data-originalurl="{MD_DEAD}" data-versionurl="{a}" '
             'data-versiondate="2021-05-04"')
    assert post.after.decode().splitlines()[-1] == (
        f'See also <a href="{a}" title="Blog" {attrs}>the blog</a> and '
        f'<a href="{a}" {attrs}>the report again</a>.')


def test_links_not_where_the_scan_saw_them_are_left_alone(tmp_path: Path) -> None:
    site, db = world(tmp_path, dead=(RELATED_DEAD, SOURCE))
    path = site / NAME
    text = path.read_text(encoding="utf-8")  # edited after the scan: the related list moved
    text = text.replace("<ul class=\"related\">", "\n<ul class=\"related\">")
    text = text.replace(f"from: {SOURCE}\n", f"from: {SOURCE}\narchived: https://x.example/\n")
    path.write_text(text, encoding="utf-8")
    [post] = plan_fix(db, site, FixOptions(serve_url=SERVE)).posts
    reasons = [(url, why) for _, url, why in post.skipped]
    assert (RELATED_DEAD, "<a href=…> with this URL is no longer on line 17") in reasons
    assert (SOURCE, "the front matter already has `archived:`") in reasons
    assert (SOURCE, "the Markdown link is no longer on line 11") in reasons  # moved down
    assert not post.edits


def test_our_copy_needs_a_serve_url_to_be_linked(tmp_path: Path) -> None:
    site, db = world(tmp_path, dead=(LEAD,))
    [post] = plan_fix(db, site, FixOptions()).posts
    assert not post.edits and "--serve-url" in post.skipped[0][2]


def test_untouched_corpus_posts_stay_byte_identical(tmp_path: Path) -> None:
    corpus = Path(__file__).parent.parent / "../shared/corpus/posts"
    if not corpus.is_dir():
        pytest.skip("../shared/corpus is not here")
    site = tmp_path / "site"
    shutil.copytree(corpus, site / "_posts")
    db = scanned(site)
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in site.rglob("*.md")}
    lonely = rows(db, "SELECT min(post), url FROM occurrences WHERE element='a' GROUP BY url"
                  " HAVING count(DISTINCT post) = 1 ORDER BY min(post) LIMIT 40")
    victims = {post: url for post, url in lonely}  # one dead link in each of a few posts
    for url in list(victims.values())[:5]:
        kill(db, url)
        capture(db, url, "2019-01-01T00:00:00+00:00")
    run = write_plan(db, plan_fix(db, site, FixOptions(serve_url=SERVE)), {})
    assert run is not None
    changed = {p for p in before if hashlib.sha256(p.read_bytes()).hexdigest() != before[p]}
    assert {str(p.relative_to(site)) for p in changed} <= set(victims)
    assert len(before) > 300 and len(changed) >= 1
    undo_run(db, site, run)
    assert all(hashlib.sha256(p.read_bytes()).hexdigest() == h for p, h in before.items())


def test_cli_dry_run_write_undo_and_revert_recovered(tmp_path: Path) -> None:
    site, db = world(tmp_path, dead=(RELATED_DEAD, MD_DEAD))
    runner = CliRunner()
    args = ["fix", str(site), "--serve-url", SERVE]
    dry = runner.invoke(cli, args)
    assert dry.exit_code == 0, dry.output
    assert f"+++ b/{NAME}" in dry.stdout and "dry run: 3 edit(s) in 1 post(s)" in dry.stderr
    assert (site / NAME).read_text(encoding="utf-8") == POST
    done = runner.invoke(cli, [*args, "--write"])
    assert done.exit_code == 0 and "fix run 1: 3 edit(s)" in done.stderr
    fixed = (site / NAME).read_bytes()
    revive(db, MD_DEAD)
    offer = runner.invoke(cli, ["fix", str(site), "--revert-recovered"])
    assert f"{NAME}:20: {MD_DEAD} is alive again (fix run 1)" in offer.stderr
    assert f"+See also [the blog]({MD_DEAD} \"Blog\")" in offer.stdout
    assert (site / NAME).read_bytes() == fixed
    reverted = runner.invoke(cli, ["fix", str(site), "--revert-recovered", "--write"])
    assert reverted.exit_code == 0 and "2 edit(s) undone" in reverted.stderr
    text = (site / NAME).read_text(encoding="utf-8")
    assert f"[the blog]({MD_DEAD} \"Blog\")" in text and arch(RELATED_DEAD) in text
    undo = runner.invoke(cli, ["fix", str(site), "--undo", "1"])
    assert undo.exit_code == 0, undo.output
    assert (site / NAME).read_text(encoding="utf-8") == POST
    missing = runner.invoke(cli, ["fix", str(site), "--undo", "7"])
    assert missing.exit_code == 1 and "there is no fix run 7" in missing.output


def test_reference_links_rewrite_their_one_definition(tmp_path: Path) -> None:
    paper = "https://gone.example/paper.pdf"
    post = f"---\ntitle: r\n---\nSee [the paper][p] and [again][p].\n\n[p]: {paper} \"Paper\"\n"
    site, db = world(tmp_path, post, dead=(paper,))
    [plan] = plan_fix(db, site, FixOptions(serve_url=SERVE)).posts
    assert not plan.skipped and len(plan.edits) == 1
    assert plan.after.decode() == post.replace(f"[p]: {paper}", f"[p]: {arch(paper)}")


def test_soft_404_and_drifted_only_when_included(tmp_path: Path) -> None:
    site, db = world(tmp_path, dead=())
    kill(db, RELATED_DEAD, state="failing", status="soft-404")
    kill(db, MD_DEAD, state="drifted", status="ok")
    for url in (RELATED_DEAD, MD_DEAD):
        capture(db, url, WHEN)
    assert not plan_fix(db, site, FixOptions(serve_url=SERVE)).posts
    soft = plan_fix(db, site, FixOptions(serve_url=SERVE, include=frozenset({"soft-404"})))
    assert {e.url for e in soft.changed[0].edits} == {RELATED_DEAD}
    both = plan_fix(db, site, FixOptions(serve_url=SERVE,
                                         include=frozenset({"soft-404", "drifted"})))
    assert {e.url for e in both.changed[0].edits} == {RELATED_DEAD, MD_DEAD}
    bad = CliRunner().invoke(cli, ["fix", str(site), "--include", "soft-404,gone"])
    assert bad.exit_code == 2 and "'gone': choose from soft-404, drifted" in bad.output


def test_lead_image_with_srcset_and_lazy_loading(tmp_path: Path) -> None:
    small, big = "https://img.news.example/s.jpg", "https://img.news.example/l.jpg"
    post = (f'---\ntitle: i\n---\n<p><img class="lazy" src="{LEAD}" data-src="{LEAD}"'
            f' srcset="{small} 480w, {big} 1024w" alt="lead"></p>\n')
    site, db = world(tmp_path, post, dead=(LEAD, big))
    [plan] = plan_fix(db, site, FixOptions(serve_url=SERVE)).posts
    assert not plan.skipped
    assert plan.after.decode() == (
        f'---\ntitle: i\n---\n<p><img class="lazy" src={robust(LEAD)} data-src="{arch(LEAD)}"'
        f' srcset="{small} 480w, {arch(big)} 1024w" alt="lead"></p>\n')


def test_a_post_that_is_a_symlink_has_its_target_edited(tmp_path: Path) -> None:
    """Renaming the edited copy onto the link replaced the link with a file, and the file it
    named kept the dead link; now the target is edited, the link stays, undo restores it."""
    site, db = world(tmp_path)
    post = site / NAME
    target = site / "_drafts" / "story.md"
    target.parent.mkdir()
    shutil.move(post, target)
    post.symlink_to(Path("..") / "_drafts" / "story.md")
    before = target.read_bytes()
    run = write_plan(db, plan_fix(db, site, FixOptions(serve_url=SERVE)), {})
    assert run is not None and post.is_symlink()
    assert target.read_bytes() != before and post.read_bytes() == target.read_bytes()
    undo_run(db, site, run)
    assert post.is_symlink() and target.read_bytes() == before
    assert not list(site.rglob("*.fix-tmp"))
