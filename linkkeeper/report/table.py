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
import weakref
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


_string = json.encoder.encode_basestring  # one JSON string (C), as json.dumps writes it
_EMPTY = _string("")


def _script_safe(text: str) -> str:
    """JSON text as a script file: no line terminator JavaScript before ES2019 rejects in a
    string, and nothing that reads as markup (see html.safe_json)."""
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
        self._gone = weakref.finalize(self, shutil.rmtree, self._dir, True)
        self._files: dict[tuple[int, int], TextIO] = {}
        self.closed = False
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
        self.close()

    def close(self) -> None:
        """Remove the spilled rows (also done when the spill is garbage collected)."""
        for handle in self._files.values():
            handle.close()
        self._files.clear()
        self._gone()
        self.closed = True

    def add(self, link: LinkView) -> None:
        """Spill one row (a million of them: written as JSON text directly, see below)."""
        mask = 0
        kinds = self.kinds
        cited = link.citations
        if cited is not None:
            count, first, link_kinds = cited.count, _string(cited.first_post), cited.kinds
        else:
            occurrences = link.occurrences
            count = len(occurrences)
            first = _string(occurrences[0].post) if occurrences else "null"
            link_kinds = (occurrences[0].kind,) if count == 1 else link.kinds
        for kind in link_kinds:
            mask |= 1 << kinds.setdefault(kind, len(kinds))
        url = link.url
        shown = display_url(url)
        code = link.http_status
        checked = (link.checked_at or "")[:16].replace("T", " ")
        # the row as JSON text around its post, which becomes an index into its block's
        # post list when read back: '[url,...,posts' NUL '"path"' NUL 'checked,...]' (JSON
        # text holds no raw NUL or newline), so nothing is encoded or parsed twice
        text = (
            f"[{_string(url)},{self.hosts.setdefault(link.host, len(self.hosts))},"
            f"{self.statuses.setdefault(link.status, len(self.statuses))},"
            f"{self.states.setdefault(link.state, len(self.states))},{mask},"
            f"{'null' if code is None else int(code)},"
            f"{_string('' if link.status == 'ok' else link.reason)},{count}\0{first}\0"
            f"{self.times.setdefault(checked, len(self.times))},"
            f"{_string(_archive_cell(link)) if link.archive else _EMPTY},"
            f"{_string(link.change) if link.change else _EMPTY},"
            f"{_EMPTY if shown == url else _string(shown)}]\n"
        )
        key = severity(link)
        handle = self._files.get(key)
        if handle is None:
            name = os.path.join(self._dir, f"{key[0]:02d}-{key[1]:03d}.rows")
            handle = self._files[key] = open(name, "w+", encoding="utf-8")  # noqa: SIM115
        handle.write(text)
        self.total += 1

    def _rows(self) -> Iterator[tuple[str, str, str]]:
        for key in sorted(self._files):
            handle = self._files[key]
            handle.flush()
            handle.seek(0)
            for line in handle:
                before, path, after = line[:-1].split("\0")
                yield before, path, after

    def blocks(self, size: int, first: int | None = None) -> Iterator[tuple[str, str]]:
        """(post paths, rows), each as JSON array text, of `size` rows each (the first block
        of `first`), worst first."""
        rows: list[str] = []
        posts: dict[str, int] = {}
        want = first or size
        for before, path, after in self._rows():
            index = -1 if path == "null" else posts.setdefault(path, len(posts))
            rows.append(f"{before},{index},{after}")
            if len(rows) == want:
                yield "[" + ",".join(posts) + "]", "[" + ",".join(rows) + "]"
                rows, posts, want = [], {}, size
        if rows or want == (first or size):
            yield "[" + ",".join(posts) + "]", "[" + ",".join(rows) + "]"

    def header(self) -> dict[str, Any]:
        return {"columns": COLUMNS, "statuses": list(self.statuses), "states": list(self.states),
                "kinds": list(self.kinds), "hosts": [display_host(h) for h in self.hosts],
                "times": list(self.times), "total": self.total, "chunks": []}

    def inline(self) -> dict[str, Any]:
        """The whole table, for a page that carries every row."""
        posts, rows = next(self.blocks(max(self.total, 1)))
        return self.header() | {"posts": json.loads(posts), "rows": json.loads(rows)}

    def split(self, folder: Path, href: str, head: int, size: int) -> dict[str, Any]:
        """The first `head` rows for the page; the rest written as folder/rows-NNNN.js,
        which the page loads from `href` (relative to the page)."""
        folder.mkdir(parents=True, exist_ok=True)
        blocks = self.blocks(size, first=head)
        posts, rows = next(blocks)
        table = self.header() | {"posts": json.loads(posts), "rows": json.loads(rows)}
        for n, (posts, rows) in enumerate(blocks, start=1):
            if rows == "[]":
                break
            name = f"rows-{n:04d}.js"
            tmp = folder / f".{name}.tmp"
            text = f'linkkeeperRows({n},{{"posts":{posts},"rows":{rows}}});\n'
            tmp.write_text(_script_safe(text), encoding="utf-8")
            tmp.replace(folder / name)
            table["chunks"].append(f"{quote(href)}/{name}")
        return table


def table_data(report: Report) -> dict[str, Any]:
    """The all-links table of `report`, every row (what a one-file page carries)."""
    with TableSpill() as spill:
        for link in report.shown:
            spill.add(link)
        return spill.inline()
