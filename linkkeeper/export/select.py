"""Choosing what an export holds: the selected captures and what their replay depends on.

Usage::

    plan = plan_export(db, Path("warcs"), Selection(states=("dead",), latest=True))
    plan.captures          # everything to copy, in file order

The export is self-contained, because an archive handed to someone else cannot reach back
into ours: a ``revisit`` whose original is not selected pulls the original in (see
:func:`linkkeeper.archive.replay.resolve_original`), and a redirect (3xx) capture pulls in the
capture of its ``Location`` made in the same run, so replay of a cited URL follows the chain as
it was recorded. :mod:`linkkeeper.export.assemble` writes the plan; :mod:`linkkeeper.export.wacz`
packages it.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from linkkeeper.archive.records import CaptureUnavailable
from linkkeeper.archive.replay import captures_of, read_capture, resolve_original, rfc3339
from linkkeeper.archive.snapshots import Capture, iter_captures
from linkkeeper.vocab import State

_MAX_REDIRECT_HOPS = 20


class ExportError(Exception):
    """The export cannot be made (bad selection, nothing selected, output exists...)."""


# ---------------------------------------------------------------------------------------------
# Selecting


@dataclass(frozen=True, slots=True)
class Selection:
    """Which captures to export. Different criteria combine with AND, repeated ones with OR."""

    posts: tuple[str, ...] = ()  # post paths (as stored, a path ending in one, or a glob)
    url_patterns: tuple[str, ...] = ()  # glob on the URL; without * ? [ : a substring
    since: datetime | None = None  # captures at or after
    until: datetime | None = None  # captures at or before
    states: tuple[str, ...] = ()  # link_state.state values
    latest: bool = False  # only the newest selected capture per URL

    def describe(self) -> str:
        """The selection as the command line would say it (for warcinfo and messages)."""
        parts = [f"--post {p}" for p in self.posts]
        parts += [f"--url {u}" for u in self.url_patterns]
        if self.since:
            parts.append(f"--since {rfc3339(self.since)}")
        if self.until:
            parts.append(f"--until {rfc3339(self.until)}")
        parts += [f"--state {s}" for s in self.states]
        if self.latest:
            parts.append("--latest")
        return " ".join(parts) if parts else "all captures"


def url_matches(url: str, pattern: str) -> bool:
    """``--url`` semantics: a glob (``*``, ``?``, ``[...]``) on the whole URL, else a substring."""
    if any(ch in pattern for ch in "*?["):
        return fnmatch.fnmatchcase(url, pattern)
    return pattern in url


def match_posts(db: Any, patterns: Iterable[str]) -> list[str]:
    """Post paths named by ``--post`` values; a value that names no post is an error.

    A value matches a stored path (relative to the site, e.g. ``_posts/2024-11-19-a.md``)
    exactly, as a glob, or when either path ends with the other (so ``blog/_posts/x.md`` and
    ``x.md`` both find ``_posts/x.md``).
    """
    stored = [p for (p,) in db.execute("SELECT path FROM posts ORDER BY path")]
    found: list[str] = []
    for raw in patterns:
        pattern = raw.replace("\\", "/").removeprefix("./")
        hits = [
            p
            for p in stored
            if p == pattern
            or fnmatch.fnmatchcase(p, pattern)
            or pattern.endswith("/" + p)
            or p.endswith("/" + pattern)
        ]
        if not hits:
            raise ExportError(f"--post {raw}: no post of the inventory matches (run `scan`?)")
        found.extend(h for h in hits if h not in found)
    return found


def _in_chunks(db: Any, sql: str, values: list[str], size: int = 500) -> Iterator[Any]:
    """Run ``sql`` (with one ``{marks}`` placeholder list) over ``values`` in chunks."""
    for start in range(0, len(values), size):
        chunk = values[start : start + size]
        yield from db.execute(sql.format(marks=",".join("?" * len(chunk))), chunk)


def _selected_urls(db: Any, selection: Selection) -> set[str] | None:
    """The URLs ``--post`` and ``--state`` allow (None: those criteria are not given)."""
    urls: set[str] | None = None
    if selection.posts:
        paths = match_posts(db, selection.posts)
        urls = {
            u for (u,) in _in_chunks(
                db, "SELECT DISTINCT url FROM occurrences WHERE post IN ({marks})", paths
            )
        }
    if selection.states:
        unknown = sorted(set(selection.states) - {s.value for s in State})
        if unknown:
            raise ExportError(f"unknown link state(s): {', '.join(unknown)}")
        marks = ",".join("?" * len(selection.states))
        in_state = {
            u for (u,) in db.execute(
                f"SELECT url FROM link_state WHERE state IN ({marks})", list(selection.states)
            )
        }
        urls = in_state if urls is None else urls & in_state
    return urls


def _matches(selection: Selection, capture: Capture) -> bool:
    """``--url``, ``--since`` and ``--until`` on one capture."""
    if selection.url_patterns and not any(
        url_matches(capture.url, p) for p in selection.url_patterns
    ):
        return False
    if selection.since and capture.date < selection.since:
        return False
    return not (selection.until and capture.date > selection.until)


def newest_per_url(captures: Iterable[Capture]) -> dict[str, Capture]:
    """The newest of the captures of each URL."""
    newest: dict[str, Capture] = {}
    for capture in captures:
        held = newest.get(capture.url)
        if held is None or capture.key > held.key:
            newest[capture.url] = capture
    return newest


def select_captures(db: Any, selection: Selection) -> list[Capture]:
    """The captures a selection names (before revisit originals and redirect hops are added)."""
    urls = _selected_urls(db, selection)
    found = iter_captures(db, None if urls is None else sorted(urls))
    chosen = [c for c in found if _matches(selection, c)]
    if selection.latest:
        chosen = list(newest_per_url(chosen).values())
    return sorted(chosen, key=lambda c: c.key)


# ---------------------------------------------------------------------------------------------
# Planning: make the selection self-contained


@dataclass
class ExportPlan:
    """The captures an export copies: the selection plus what its replay depends on."""

    selection: Selection
    selected: list[Capture]
    originals: list[Capture] = field(default_factory=list)  # revisit originals pulled in
    redirect_hops: list[Capture] = field(default_factory=list)  # Location targets pulled in
    problems: list[str] = field(default_factory=list)  # unresolvable revisits, unreadable rows

    _ordered: list[Capture] | None = field(default=None, repr=False)

    @property
    def captures(self) -> list[Capture]:
        """Everything to copy, in file order (sequential reads; originals before revisits)."""
        if self._ordered is None:
            every = {c.id: c for c in (*self.selected, *self.originals, *self.redirect_hops)}
            self._ordered = sorted(every.values(), key=lambda c: (c.warc_file, c.offset))
        return self._ordered

    @property
    def source_bytes(self) -> int:
        return sum(c.length for c in self.captures)


def _redirect_target(db: Any, folder: Path, capture: Capture) -> Capture | None:
    """The capture of a 3xx capture's Location: same run first, else the next one in time."""
    head = read_capture(folder, capture)
    location = next((v for k, v in head.http_headers if k.lower() == "location"), None)
    if not location:
        return None
    target = urljoin(capture.url, location.strip())
    candidates = [c for c in captures_of(db, target) if c.id != capture.id]
    if not candidates:
        return None
    same_run = [c for c in candidates if capture.run_id is not None and c.run_id == capture.run_id]
    pool = same_run or candidates
    after = [c for c in pool if c.date >= capture.date]
    if after:
        return min(after, key=lambda c: c.key)
    return max(pool, key=lambda c: c.key)


def plan_export(
    db: Any, folder: Path, selection: Selection, *, follow_redirects: bool = True
) -> ExportPlan:
    """Select, then add revisit originals and redirect targets until nothing is missing."""
    plan = ExportPlan(selection=selection, selected=select_captures(db, selection))
    included = {c.id for c in plan.selected}
    queue = [(c, 0) for c in plan.selected]
    while queue:
        capture, depth = queue.pop()
        try:
            if capture.record_type == "revisit":
                original = resolve_original(db, folder, capture)
                if original is None or original.id == capture.id:
                    plan.problems.append(
                        f"{capture.url} at {capture.timestamp}: revisit whose original is not in "
                        "the archive (exported as is; replay tools cannot show it)"
                    )
                elif original.id not in included:
                    included.add(original.id)
                    plan.originals.append(original)
                    queue.append((original, depth))
            status = capture.http_status or 0
            if follow_redirects and 300 <= status < 400 and depth < _MAX_REDIRECT_HOPS:
                hop = _redirect_target(db, folder, capture)
                if hop is not None and hop.id not in included:
                    included.add(hop.id)
                    plan.redirect_hops.append(hop)
                    queue.append((hop, depth + 1))
        except CaptureUnavailable as err:
            plan.problems.append(f"{capture.url} at {capture.timestamp}: {err}")
    return plan
