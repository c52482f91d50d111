"""`linkkeeper snapshot` as one library call: capture URLs now, without recording checks.

Usage::

    outcome = run_snapshot(db, check_options, archive_options,
                           urls=["https://www.example.com/a.html"])
    outcome.counts.captures, outcome.failed, outcome.as_dict()

Targets are URLs, post files (their links of the archived kinds) or one site folder (every
cited link of those kinds; the inventory is brought up to date first). The due URLs are
fetched once with GET by the checker, each live result handed to the
:class:`~linkkeeper.archive.archiver.Archiver`, as a `check` run does with archiving on, but
no check is recorded (so no drift fingerprints are computed: they would be thrown away).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import sqlite_utils

from linkkeeper.archive.archiver import ArchiveCounts, ArchiveOptions, Archiver, with_capture
from linkkeeper.archive.snapshots import Capture
from linkkeeper.check.checker import Checker
from linkkeeper.check.options import CheckOptions
from linkkeeper.check.result import CheckResult
from linkkeeper.urls import normalize_url

Say = Callable[[str], None]


def _quiet(message: str) -> None:
    """The default `say`: nothing."""


@dataclass
class SnapshotOutcome:
    """What a snapshot run asked for, fetched and wrote."""

    folder: Path
    asked: int  # distinct URLs the targets named
    due: set[str]  # URLs due for a snapshot and allowed by robots.txt
    counts: ArchiveCounts
    results: dict[str, CheckResult] = field(default_factory=dict)  # bodies dropped
    captured: dict[str, list[Capture]] = field(default_factory=dict)  # cited URL -> captures
    disallowed: list[str] = field(default_factory=list)  # due URLs robots.txt kept out
    problems: list[str] = field(default_factory=list)  # exchanges that could not be written
    repair_messages: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[str]:
        """Due URLs of which nothing was archived (dead, blocked, disallowed...)."""
        return sorted(self.due - set(self.captured))

    @property
    def ok(self) -> bool:
        return not self.failed and not self.disallowed

    def as_dict(self) -> dict[str, Any]:
        """The JSON summary: counts, the folder, every URL with its captures."""
        return {
            "archive": self.counts.as_dict(),
            "warc_dir": str(self.folder),
            "urls": [self._url_entry(url) for url in sorted(self.due | set(self.disallowed))],
        }

    def _url_entry(self, url: str) -> dict[str, Any]:
        result = self.results.get(url)
        return {
            "url": url,
            "status": str(result.status) if result else "not-fetched",
            "http_status": result.http_status if result else None,
            "reason": result.reason if result else "disallowed by robots.txt",
            "captures": [_capture_entry(c) for c in self.captured.get(url, [])],
        }


def _capture_entry(c: Capture) -> dict[str, Any]:
    return {
        "url": c.url,
        "warc_file": c.warc_file,
        "offset": c.offset,
        "length": c.length,
        "record_type": c.record_type,
        "http_status": c.http_status,
        "payload_digest": c.payload_digest,
        "date": c.date.isoformat(),
        "truncated": c.truncated,
    }


def run_snapshot(
    db: sqlite_utils.Database,
    check_options: CheckOptions,
    archive_options: ArchiveOptions,
    *,
    urls: Sequence[str] = (),
    paths: Sequence[Path] = (),
    site_url: str | None = None,
    source_keys: Sequence[str] = (),
    say: Say = _quiet,
) -> SnapshotOutcome:
    """Capture what the targets name into ``archive_options.folder``; see the module docstring.

    With neither ``urls`` nor ``paths``, the site in the current folder. ``say`` gets the
    warnings met while reading the targets (config, parse problems).
    """
    wanted = [normalize_url(u).url for u in urls]
    single_site = len(paths) == 1 and Path(paths[0]).is_dir()
    explicit = bool(urls) or bool(paths and not single_site)
    if paths or not urls:
        wanted += urls_to_snapshot(db, [Path(p) for p in paths], archive_options.kinds,
                                   site_url=site_url, source_keys=source_keys, say=say)
    archiver = Archiver(db, archive_options)
    archiver.plan(wanted, explicit=explicit)
    # no checks are recorded: drift fingerprints and soft-404 verdicts would be thrown away
    options = with_capture(
        replace(check_options, fingerprints=False, soft404=False, read_pages=False), archiver
    )
    outcome = SnapshotOutcome(archive_options.folder, len(set(wanted)), set(), archiver.counts)
    asyncio.run(_capture(archiver, options, outcome))
    outcome.due = archiver.due  # robots.txt may have taken some out
    outcome.counts = archiver.counts
    outcome.captured = archiver.captured
    outcome.disallowed = archiver.disallowed
    outcome.problems = archiver.problems
    outcome.repair_messages = archiver.repair_messages
    return outcome


async def _capture(archiver: Archiver, options: CheckOptions, outcome: SnapshotOutcome) -> None:
    """Fetch the due URLs (robots.txt first when asked) and hand each result to the archiver."""
    async with Checker(options) as checker, archiver:
        await archiver.load_robots(checker)
        async for result in checker.run(sorted(archiver.due)):
            outcome.results[result.url] = replace(result, exchanges=[], sample=None)  # no bodies
            await archiver.submit(result)


def urls_to_snapshot(
    db: sqlite_utils.Database,
    paths: list[Path],
    kinds: frozenset[str],
    *,
    site_url: str | None = None,
    source_keys: Sequence[str] = (),
    say: Say = _quiet,
) -> list[str]:
    """The checkable URLs cited by a site (scanned first) or by post files (parsed only)."""
    # imported here: `snapshot URL...` reads no post (the parsers cost ~0.04 s of start-up)
    from linkkeeper.extract.post import DEFAULT_SOURCE_KEYS, parse_post
    from linkkeeper.scan import scan_site
    from linkkeeper.site import PostUnreadable, open_site

    keys = tuple(source_keys) or DEFAULT_SOURCE_KEYS
    site = open_site(paths, site_url)
    if site.config_problem:
        say(f"warning: {site.config_problem}")
    if not site.files:  # a whole site: bring the inventory up to date, then use it
        scan_site(db, site, source_keys=keys, on_problem=lambda prob: say(str(prob)))
        return [
            row[0]
            for row in db.execute(
                "SELECT DISTINCT o.url FROM occurrences o JOIN links l ON l.url = o.url"
                " WHERE l.status IS NULL ORDER BY o.url"
            )
        ]
    # post files: parsed, not scanned (scanning a few files would drop the others' rows)
    found: list[str] = []
    for rel, path in site.posts():
        try:
            data, _ = site.read_post(path)
        except PostUnreadable as exc:
            say(f"{rel}:0: {exc}")
            continue
        parsed = parse_post(data, path=rel, site_url=site.url, source_keys=keys)
        for problem in parsed.problems:
            say(f"{rel}:{problem.line}: {problem.message}")
        found += [o.url for o in parsed.occurrences if o.status is None and o.kind in kinds]
    return list(dict.fromkeys(found))
