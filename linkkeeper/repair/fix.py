"""`linkkeeper fix`: plan the edits for failing links, show them as diffs, write, undo.

The plan reads the failing links from the history (`link_state`, the latest
check), their occurrences from the scan (post, line, the link as written) and a
copy for each (repair/copies.py); repair/edits.py turns each occurrence into a
byte span. Nothing is written without ``write=True``; a written run records every
edit and each post's original bytes (repair/store.py), which is what makes
`undo` exact and lets it refuse when a post changed since.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils

from linkkeeper.db import MAX_ROW_ID, Transaction
from linkkeeper.repair.copies import Copy, Lookup, Target, choose_copy, link_targets
from linkkeeper.repair.edits import Covered, PostText, Replacement, Site, Skip, Span, find_edit
from linkkeeper.repair.store import ensure_tables, now_iso
from linkkeeper.vocab import State, Status

INCLUDABLE = ("soft-404", "drifted")


class FixError(Exception):
    """A fix, undo or revert that cannot go ahead; the message says why, in one line."""


@dataclass(slots=True)
class FixOptions:
    include: frozenset[str] = frozenset()  # soft-404, drifted (dead links always)
    serve_url: str | None = None  # where `linkkeeper serve` publishes our captures
    robust: str = "url"  # Markdown links: "url" (plain) or "html" (Robust Links <a>)
    archived_key: str = "archived"
    warc_folder: Path | None = None
    lookups: Sequence[tuple[str, Lookup]] = ()


@dataclass(slots=True)
class PlannedEdit:
    line: int
    element: str
    url: str
    span: Span
    original: str
    copy: Copy
    copy_url: str


@dataclass(slots=True)
class PostPlan:
    post: str
    path: Path
    before: bytes
    after: bytes = b""
    encoding: str = "utf-8"
    edits: list[PlannedEdit] = field(default_factory=list)
    skipped: list[tuple[int, str, str]] = field(default_factory=list)  # line, url, why

    def diff(self) -> str:
        return unified_diff(self.post, self.before, self.after, self.encoding)


@dataclass(slots=True)
class FixPlan:
    posts: list[PostPlan]
    no_copy: list[str]  # failing links with no usable copy anywhere

    @property
    def changed(self) -> list[PostPlan]:
        return [p for p in self.posts if p.edits]


def unified_diff(post: str, before: bytes, after: bytes, encoding: str) -> str:
    """A unified diff for people (line endings shown as plain newlines)."""
    old = before.decode(encoding, "replace").splitlines()
    new = after.decode(encoding, "replace").splitlines()
    lines = difflib.unified_diff(old, new, f"a/{post}", f"b/{post}", lineterm="")
    return "".join(line + "\n" for line in lines)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- planning ----------------------------------------------------------------------------------


def fixable_targets(db: sqlite_utils.Database, include: frozenset[str]) -> list[Target]:
    """Dead links, and with `include` those whose latest check is a soft 404 or that drifted."""
    def keep(state: str | None, status: str | None) -> bool:
        return (state == State.DEAD
                or ("soft-404" in include and status == Status.SOFT_404)
                or ("drifted" in include and state == State.DRIFTED))

    return link_targets(db, keep)


def plan_fix(db: sqlite_utils.Database, root: Path, opts: FixOptions,
             posts: Sequence[str] = ()) -> FixPlan:
    """Every edit a fix would make, post by post; nothing is written."""
    ensure_tables(db)
    copies: dict[str, Copy] = {}
    no_copy: list[str] = []
    for target in fixable_targets(db, opts.include):
        copy = choose_copy(db, target, opts.lookups, opts.warc_folder)
        if copy is None:
            no_copy.append(target.url)
        else:
            copies[target.url] = copy
    by_post: dict[str, list[tuple[int, str, str, str]]] = defaultdict(list)
    marks = ",".join("?" * len(copies))
    if copies:
        for post, url, line, element, original in db.execute(
            "SELECT post, url, line, element, original FROM occurrences"
            f" WHERE url IN ({marks}) ORDER BY post, line, id", list(copies)
        ):
            if not posts or post in posts:
                by_post[post].append((line or 0, url, element or "", original or url))
    plans = [_plan_post(root, post, occs, copies, opts) for post, occs in sorted(by_post.items())]
    return FixPlan(plans, no_copy)


def _plan_post(root: Path, post: str, occs: list[tuple[int, str, str, str]],
               copies: dict[str, Copy], opts: FixOptions) -> PostPlan:
    path = root / post
    try:
        data = path.read_bytes()
    except OSError as exc:
        plan = PostPlan(post, path, b"")
        plan.skipped.extend((ln, url, f"cannot read the post: {exc.strerror}")
                            for ln, url, _, _ in occs)
        return plan
    text = PostText(data)
    plan = PostPlan(post, path, data, data, text.encoding)
    taken: list[Span] = []
    for line, url, element, original in occs:
        copy = copies[url]
        target = copy.absolute(opts.serve_url)
        if target is None:
            plan.skipped.append((line, url, "only our own capture exists: set --serve-url "
                                 "(where `linkkeeper serve` is published) to link it"))
            continue
        rep = Replacement(target, copy.date)
        try:
            span = find_edit(text, Site(line, element, original), rep, taken,
                             robust=opts.robust, archived_key=opts.archived_key)
        except Covered:
            continue
        except Skip as why:
            plan.skipped.append((line, url, str(why)))
            continue
        taken.append(span)
        plan.edits.append(PlannedEdit(line, element, url, span, text.text[span.start:span.end],
                                      copy, target))
    if plan.edits:
        plan.after = text.apply([e.span for e in plan.edits])
    return plan


# --- writing -----------------------------------------------------------------------------------


def write_atomic(path: Path, data: bytes) -> None:
    """Replace a post's bytes in one rename, durably, keeping its mode and owner. A post that
    is a symlink has its target edited (renaming onto the link replaced it with a copy, and
    the file it named kept the dead link); the bytes reach the disk before the rename, so a
    power cut leaves the old post or the new one, never an empty file."""
    target = path.resolve() if path.is_symlink() else path
    tmp = target.with_name(f".{target.name}.{os.getpid()}.fix-tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        st = target.stat()
        with contextlib.suppress(OSError):
            os.chmod(tmp, st.st_mode & 0o7777)
            os.chown(tmp, st.st_uid, st.st_gid)
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # the rename itself, durable
        folder = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def write_plan(db: sqlite_utils.Database, plan: FixPlan, options: dict[str, object]) -> int | None:
    """Apply the plan; returns the fix run id (None when nothing changed)."""
    changed = plan.changed
    if not changed:
        return None
    for p in changed:  # refuse before writing anything
        if p.path.read_bytes() != p.before:
            raise FixError(f"{p.post} changed while the fix was planned: run fix again")
    made = now_iso()
    with Transaction(db):
        cur = db.conn.execute(
            "INSERT INTO fix_runs (started_at, options, posts, edits) VALUES (?,?,?,?)",
            [made, json.dumps(options, default=str), len(changed),
             sum(len(p.edits) for p in changed)])
        run_id = int(cur.lastrowid or 0)
        for p in changed:
            db.conn.execute(
                "INSERT INTO fix_posts (run_id, post, before, before_sha256, after_sha256)"
                " VALUES (?,?,?,?,?)", [run_id, p.post, p.before, sha256(p.before), sha256(p.after)])
            text = PostText(p.before)
            for e in p.edits:
                db.conn.execute(
                    "INSERT INTO fix_edits (run_id, post, line, element, url, original, replacement,"
                    " original_bytes, replacement_bytes, copy_url, copy_source, copy_datetime,"
                    " made_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    [run_id, p.post, e.line, e.element, e.url, e.original, e.span.new,
                     text.encode(e.original), text.encode(e.span.new), e.copy_url,
                     e.copy.source, e.copy.datetime, made])
    for p in changed:
        write_atomic(p.path, p.after)
    return run_id


def undo_run(db: sqlite_utils.Database, root: Path, run_id: int) -> list[str]:
    """Put back the bytes every post had before fix run `run_id`; all or nothing."""
    ensure_tables(db)
    run = None if not 0 < run_id <= MAX_ROW_ID else db.execute(
        "SELECT undone_at FROM fix_runs WHERE id=?", [run_id]).fetchone()
    if run is None:
        raise FixError(f"there is no fix run {run_id} in this database")
    if run[0]:
        raise FixError(f"fix run {run_id} was already undone at {run[0]}")
    rows = db.execute("SELECT post, before, after_sha256 FROM fix_posts WHERE run_id=?"
                      " AND undone_at IS NULL ORDER BY post", [run_id]).fetchall()
    for post, _before, after_sha in rows:
        path = root / post
        if not path.exists():
            raise FixError(f"cannot undo fix run {run_id}: {post} no longer exists")
        if sha256(path.read_bytes()) != after_sha:
            later = db.execute("SELECT max(run_id) FROM fix_posts WHERE post=? AND run_id>?"
                               " AND undone_at IS NULL", [post, run_id]).fetchone()[0]
            hint = (f"fix run {later} edited it later: undo run {later} first" if later
                    else "it was edited after the fix; undo by hand or restore it from git")
            raise FixError(f"cannot undo fix run {run_id}: {post} changed since ({hint})")
    for post, before, _ in rows:
        write_atomic(root / post, bytes(before))
    when = now_iso()
    with Transaction(db):
        db.conn.execute("UPDATE fix_runs SET undone_at=? WHERE id=?", [when, run_id])
        db.conn.execute("UPDATE fix_posts SET undone_at=? WHERE run_id=?", [when, run_id])
        db.conn.execute("UPDATE fix_edits SET reverted_at=? WHERE run_id=? AND reverted_at IS NULL",
                        [when, run_id])
    return [r[0] for r in rows]
