"""The machine-readable view of the history: one record per link, with its posts.

`check --format json` and (later) `report --format json` share this schema,
documented in the README; keep it stable (add keys, never rename):

    {"run": {id, started_at, finished_at, state, counts, requests, archive,
             host_failures, degraded, ...},
     "links": [{url, status, http_status, final_url, reason, kinds, posts,
                redirects, method, attempts, elapsed_ms, checked_at, run_id,
                checked_this_run, new_failure, evidence, state, state_since,
                consecutive_failures, first_failed, last_ok, host,
                host_failure, drift}]}

`evidence` says why: ``{"soft404": {signals, probe, similarity, text},
"drift": {vs_first, vs_previous, threshold}, "host_failure": host}``;
`run.host_failures` lists hosts down as a whole in the run (one entry each,
with the number of links they took down); `run.degraded` says why the run was
cut off from the network (its failures not counted), null when it was not; `drift` is the latest drift score
against the first fingerprint (truth.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import sqlite_utils


def run_record(db: sqlite_utils.Database, run_id: int) -> dict[str, Any]:
    cols = ("id", "started_at", "finished_at", "state", "command", "software", "options",
            "insecure", "total", "done", "requests", "counts")
    row = db.execute(f"SELECT {', '.join(cols)} FROM runs WHERE id=?", [run_id]).fetchone()
    if row is None:
        return {}
    rec = dict(zip(cols, row, strict=True))
    for key in ("options", "counts"):
        rec[key] = json.loads(rec[key]) if rec[key] else {}
    rec["insecure"] = bool(rec["insecure"])
    archive, degraded = db.execute(
        "SELECT archive, degraded FROM runs WHERE id=?", [run_id]
    ).fetchone()
    rec["degraded"] = degraded  # why its failures do not count (history/truth.py), or None
    # what the archiving stage wrote: captures, revisits, truncations, bytes_written, ...
    rec["archive"] = json.loads(archive) if archive else None
    rec["host_failures"] = [
        dict(zip(("host", "links", "status", "reason"), r, strict=True))
        for r in db.execute(
            "SELECT host, links, status, reason FROM host_failures WHERE run_id=? ORDER BY host",
            [run_id],
        )
    ]
    return rec


def link_records(db: sqlite_utils.Database, run_id: int | None = None, *,
                 spill: int | None = None) -> Iterator[dict[str, Any]]:
    """Every link of the inventory with its latest check (up to `run_id`) and state.

    Streamed: one query walks the links (with their state and latest check) in URL
    order while a second walks the occurrences in the same order, so memory stays flat
    at 100,000 links and millions of checks (SQLite sorts on disk when it must).

    One URL can be cited by every post (an image in a template: 214,000 citations at
    1,000,000 links, ~360 MB as a list of dicts). With `spill`, a link cited more than
    `spill` times gets its "posts" as a one-shot iterator (`SpilledPosts`) that must be
    consumed before the next record is asked for (`dump_record` does); its "kinds" come
    from the (url, kind) index.
    """
    check_cols = ("run_id", "status", "reason", "http_status", "final_url", "redirects",
                  "permanent_redirect", "method", "attempts", "requests", "elapsed_ms",
                  "checked_at", "new_failure", "evidence")
    state_cols = ("state", "since", "consecutive_failures", "first_failed", "last_ok", "drift")
    newest_run = db.execute("SELECT max(last_run) FROM link_state").fetchone()[0]
    if run_id is None or (newest_run is not None and run_id >= newest_run):
        # link_state knows each URL's latest run: one unique-index lookup per URL instead
        # of grouping every check ever made (3 million rows after 30 nights of 100k links)
        latest, params = "c.run_id = s.last_run AND c.url = l.url", []
    else:
        latest = "c.id = (SELECT max(id) FROM checks WHERE url = l.url AND run_id <= ?)"
        params = [run_id]
    rows = db.execute(
        "SELECT l.url, l.host, l.status, l.reason, "
        + ", ".join(f"c.{col}" for col in check_cols) + ", "
        + ", ".join(f"s.{col}" for col in state_cols)
        + " FROM links l LEFT JOIN link_state s ON s.url = l.url"
        f" LEFT JOIN checks c ON {latest}"
        " WHERE EXISTS (SELECT 1 FROM occurrences o WHERE o.url = l.url) ORDER BY l.url",
        params,
    )
    occurrences = db.execute(
        "SELECT o.url, o.post, o.kind, o.line, o.text, p.title FROM occurrences o"
        " LEFT JOIN posts p ON p.path = o.post ORDER BY o.url, o.post, o.line"
    )
    cited = _Cited(occurrences)
    split = 4 + len(check_cols)
    for row in rows:
        url, host, scan_status, scan_reason = row[:4]
        c = dict(zip(check_cols, row[4:split], strict=True)) if row[4] is not None else {}
        s = dict(zip(state_cols, row[split:], strict=True))
        cited.skip_before(url)
        posts: list[dict[str, Any]] | SpilledPosts = []
        kinds: set[str] = set()
        for post in cited.take(url):
            posts.append(post)
            kinds.add(post["kind"])
            if spill is not None and len(posts) >= spill:
                kinds = {k for (k,) in db.execute(
                    "SELECT DISTINCT kind FROM occurrences WHERE url = ?", [url])}
                posts = SpilledPosts(posts, cited.take(url))
                break
        evidence = json.loads(c["evidence"]) if c.get("evidence") else None
        yield {
            "url": url,
            "host": host,
            "status": c.get("status") or scan_status,
            "http_status": c.get("http_status"),
            "final_url": c.get("final_url"),
            "reason": c.get("reason") or scan_reason or ("not checked yet" if not c else ""),
            "kinds": sorted(kinds),
            "posts": posts,
            "redirects": json.loads(c["redirects"]) if c.get("redirects") else [],
            "permanent_redirect": bool(c.get("permanent_redirect")),
            "method": c.get("method"),
            "attempts": c.get("attempts"),
            "requests": c.get("requests"),
            "elapsed_ms": c.get("elapsed_ms"),
            "checked_at": c.get("checked_at"),
            "run_id": c.get("run_id"),
            "checked_this_run": run_id is not None and c.get("run_id") == run_id,
            "new_failure": bool(c.get("new_failure")) and c.get("run_id") == run_id,
            "evidence": evidence,
            "state": s.get("state"),
            "state_since": s.get("since"),
            "consecutive_failures": s.get("consecutive_failures"),
            "first_failed": s.get("first_failed"),
            "last_ok": s.get("last_ok"),
            "host_failure": (evidence or {}).get("host_failure"),
            "drift": s.get("drift"),
        }


def write_json(db: sqlite_utils.Database, run_id: int, out: Any) -> None:
    """Stream the document: the links list can be 100,000 entries long."""
    out.write('{"run": ')
    out.write(json.dumps(run_record(db, run_id), ensure_ascii=False))
    out.write(', "links": [')
    for i, rec in enumerate(link_records(db, run_id, spill=SPILL_POSTS)):
        out.write("\n  " if i == 0 else ",\n  ")
        dump_record(rec, out)
    out.write("\n]}\n")


# a record cited more often than this has its posts written one by one (see link_records)
SPILL_POSTS = 1000


class _Cited:
    """The occurrence query, walked in URL order beside the links."""

    def __init__(self, rows: Iterator[tuple[Any, ...]]) -> None:
        self.rows = rows
        self.pending = next(rows, None)

    def skip_before(self, url: str) -> None:
        while self.pending is not None and self.pending[0] < url:
            self.pending = next(self.rows, None)

    def take(self, url: str) -> Iterator[dict[str, Any]]:
        while self.pending is not None and self.pending[0] == url:
            _, post, kind, line, text, title = self.pending
            self.pending = next(self.rows, None)
            yield {"path": post, "line": line, "kind": kind, "text": text, "title": title}


class SpilledPosts:
    """A record's posts when there are too many to hold: the first ones, then the rest
    read from the occurrence query as they are written. Iterate once, before the next
    record."""

    def __init__(self, first: list[dict[str, Any]], rest: Iterator[dict[str, Any]]) -> None:
        self.first, self.rest = first, rest

    def __iter__(self) -> Iterator[dict[str, Any]]:
        yield from self.first
        self.first = []
        yield from self.rest


def dump_record(rec: dict[str, Any], out: Any) -> None:
    """Write one record as JSON (what json.dumps writes), its posts one at a time when
    they are spilled, so no record is ever whole in memory."""
    posts = rec.get("posts")
    if not isinstance(posts, SpilledPosts):
        out.write(json.dumps(rec, ensure_ascii=False))
        return
    keys = list(rec)
    at = keys.index("posts")
    head = json.dumps({k: rec[k] for k in keys[:at]}, ensure_ascii=False)
    out.write(head[:-1] + (', "posts": [' if at else '"posts": ['))
    for i, post in enumerate(posts):
        out.write(json.dumps(post, ensure_ascii=False) if i == 0
                  else ", " + json.dumps(post, ensure_ascii=False))
    tail = json.dumps({k: rec[k] for k in keys[at + 1:]}, ensure_ascii=False)
    out.write("]" + (", " + tail[1:] if len(tail) > 2 else "}"))
