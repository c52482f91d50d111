"""`fix --revert-recovered`: a link that answers again after a fix gets its own bytes back.

One edit is undone on its own (not the whole run): its replacement bytes are
found in the post as it is now — exactly as many times as the run made that
edit there, or the revert refuses — and the original bytes go back in. The
run's recorded after-hash follows, so `fix --undo RUN` still works afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from linkkeeper.db import Transaction
from linkkeeper.repair.edits import PostText
from linkkeeper.repair.fix import FixError, sha256, unified_diff, write_atomic
from linkkeeper.repair.store import ensure_tables, now_iso

ALIVE_AGAIN = ("alive", "recovered")


@dataclass(frozen=True, slots=True)
class RecoveredEdit:
    id: int
    run_id: int
    post: str
    line: int
    url: str
    original: bytes
    replacement: bytes


def recovered_edits(db: sqlite_utils.Database, root: Path) -> list[RecoveredEdit]:
    """Written, not reverted edits whose link was checked alive after the edit was made."""
    ensure_tables(db)
    marks = ",".join("?" * len(ALIVE_AGAIN))
    rows = db.execute(
        "SELECT e.id, e.run_id, e.post, e.line, e.url, e.original_bytes, e.replacement_bytes"
        " FROM fix_edits e JOIN link_state s ON s.url = e.url"
        f" WHERE e.reverted_at IS NULL AND s.state IN ({marks}) AND s.last_checked > e.made_at"
        " ORDER BY e.post, e.line, e.id", list(ALIVE_AGAIN)).fetchall()
    return [RecoveredEdit(r[0], r[1], r[2], r[3], r[4], bytes(r[5]), bytes(r[6])) for r in rows]


def revert_edits(db: sqlite_utils.Database, root: Path, edits: list[RecoveredEdit], *,
                 write: bool) -> list[str]:
    """Undo these edits post by post; returns the diffs. Refuses (FixError) when unsure."""
    by_post: dict[str, list[RecoveredEdit]] = {}
    for e in edits:
        by_post.setdefault(e.post, []).append(e)
    diffs, results = [], []
    for post, items in sorted(by_post.items()):
        path = root / post
        before = path.read_bytes()
        after = before
        for replacement in {e.replacement for e in items}:
            group = [e for e in items if e.replacement == replacement]
            found = after.count(replacement)
            if found != len(group) or not replacement:
                raise FixError(f"cannot revert the fix of {group[0].url} in {post}: its edit is "
                               f"found {found} time(s) where {len(group)} expected (changed since?)")
            after = after.replace(replacement, group[0].original)
        diffs.append(unified_diff(post, before, after, PostText(before).encoding))
        results.append((post, path, after, items))
    if write:
        when = now_iso()
        for post, path, after, items in results:
            write_atomic(path, after)
            with Transaction(db):
                for e in items:
                    db.conn.execute("UPDATE fix_edits SET reverted_at=? WHERE id=?", [when, e.id])
                db.conn.execute(
                    "UPDATE fix_posts SET after_sha256=? WHERE post=? AND run_id=(SELECT max(run_id)"
                    " FROM fix_posts WHERE post=? AND undone_at IS NULL)",
                    [sha256(after), post, post])
    return diffs
