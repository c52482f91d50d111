"""The HTML report's all-links table as data: compact rows, worst links first, written
inline in the page or split into script files beside it.

A row is an array (`COLUMNS`); hosts, statuses, states, kinds and check times (to the
minute) are listed once and referred to by index; statuses in severity order, so
sorting by status sorts by severity. Post paths are listed once per block of rows.
`archive` is only the 14-digit timestamp when the copy's link is the usual
``archive/<timestamp>/<url>``; `shown` is the decoded URL when it differs from `url`.

Rows come from a stream of links in URL order and must leave worst first: each row is
spilled to a file per severity (`TableSpill`), and the files are read back in severity
order, so memory holds one block of rows at a time, never the whole table. A split
table keeps its first block in the page, and every further block is a script
(``rows-NNNN.js``) that hands its rows to the page (``linkkeeperRows(n, block)``):
script elements load from file:// where fetch() and XHR cannot.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO
from urllib.parse import quote

from linkkeeper.report.iri import display_host, display_url
from linkkeeper.report.model import STATUS_SEVERITY, LinkView, Report, is_web_url, severity

# Columns of a row of the all-links table (report.js reads them by these positions).
COLUMNS = ("url", "host", "status", "state", "kinds", "http_status", "reason", "posts", "post",
           "checked", "archive", "change", "shown")
POST = COLUMNS.index("post")
INLINE_ROWS = 5_000  # up to this many links the page holds every row (one file)
HEAD_ROWS = 1_000  # a split table's rows in the page itself: shown at once
CHUNK_ROWS = 25_000  # rows per file beside the page (~5 MB)


def _compact(value: Any) -> str:
    """JSON that is also safe inside <script> and in a .js file (see html.safe_json)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _archive_cell(link: LinkView) -> str:
    if not (link.archive and is_web_url(link.url)):
        return ""
    href = link.archive.href(link.url)
    stamp = link.archive.timestamp
    return stamp if len(stamp) == 14 and href == f"archive/{stamp}/{link.url}" else href


class TableSpill:
    """Rows spilled to one file per severity, read back worst first (see module doc)."""

    def __init__(self, near: Path | None = None) -> None:
        self._dir = tempfile.mkdtemp(prefix=".linkkeeper-table-", dir=near)
        self._files: dict[tuple[int, int], TextIO] = {}
        self.statuses = {name: i for i, name in enumerate(STATUS_SEVERITY)}
        self.states: dict[str, int] = {}
        self.kinds: dict[str, int] = {}
        self.hosts: dict[str, int] = {}
        self.times: dict[str, int] = {}
        self.total = 0

    def __enter__(self) -> TableSpill:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for handle in self._files.values():
            handle.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def add(self, link: LinkView) -> None:
        mask = 0
        for kind in link.kinds:
            mask |= 1 << self.kinds.setdefault(kind, len(self.kinds))
        first = link.occurrences[0].post if link.occurrences else None
        shown = display_url(link.url)
        row = [
            link.url,
            self.hosts.setdefault(link.host, len(self.hosts)),
            self.statuses.setdefault(link.status, len(self.statuses)),
            self.states.setdefault(link.state, len(self.states)),
            mask,
            link.http_status,
            "" if link.status == "ok" else link.reason,
            len(link.occurrences),
            first,  # a path here; an index into its block's posts once read back
            self.times.setdefault((link.checked_at or "")[:16].replace("T", " "), len(self.times)),
            _archive_cell(link),
            link.change or "",
            "" if shown == link.url else shown,
        ]
        key = severity(link)
        handle = self._files.get(key)
        if handle is None:
            name = os.path.join(self._dir, f"{key[0]:02d}-{key[1]:03d}.jsonl")
            handle = self._files[key] = open(name, "w+", encoding="utf-8")  # noqa: SIM115
        handle.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")
        self.total += 1

    def _rows(self) -> Iterator[list[Any]]:
        for key in sorted(self._files):
            handle = self._files[key]
            handle.flush()
            handle.seek(0)
            for line in handle:
                yield json.loads(line)

    def blocks(self, size: int, first: int | None = None) -> Iterator[dict[str, Any]]:
        """{"posts", "rows"} of `size` rows each (the first of `first`), worst first."""
        rows: list[list[Any]] = []
        posts: dict[str, int] = {}
        want = first or size
        for row in self._rows():
            path = row[POST]
            row[POST] = -1 if path is None else posts.setdefault(path, len(posts))
            rows.append(row)
            if len(rows) == want:
                yield {"posts": list(posts), "rows": rows}
                rows, posts, want = [], {}, size
        if rows or want == (first or size):
            yield {"posts": list(posts), "rows": rows}

    def header(self) -> dict[str, Any]:
        return {"columns": COLUMNS, "statuses": list(self.statuses), "states": list(self.states),
                "kinds": list(self.kinds), "hosts": [display_host(h) for h in self.hosts],
                "times": list(self.times), "total": self.total, "chunks": []}

    def inline(self) -> dict[str, Any]:
        """The whole table, for a page that carries every row."""
        block = next(self.blocks(max(self.total, 1)))
        return self.header() | block

    def split(self, folder: Path, href: str, head: int, size: int) -> dict[str, Any]:
        """The first `head` rows for the page; the rest written as folder/rows-NNNN.js,
        which the page loads from `href` (relative to the page)."""
        folder.mkdir(parents=True, exist_ok=True)
        blocks = self.blocks(size, first=head)
        table = self.header() | next(blocks)
        for n, block in enumerate(blocks, start=1):
            if not block["rows"]:
                break
            name = f"rows-{n:04d}.js"
            tmp = folder / f".{name}.tmp"
            tmp.write_text(f"linkkeeperRows({n},{_compact(block)});\n", encoding="utf-8")
            tmp.replace(folder / name)
            table["chunks"].append(f"{quote(href)}/{name}")
        return table


def table_data(report: Report) -> dict[str, Any]:
    """The all-links table of `report`, every row (what a one-file page carries)."""
    with TableSpill() as spill:
        for link in report.shown:
            spill.add(link)
        return spill.inline()
