"""The HTML report: a self-contained page (styles, script, data and SVG charts inline).

No CDN, no web fonts, no request beyond its own files: it works from a file:// URL and
inside `linkkeeper serve`; up to INLINE_ROWS links it is one file (an e-mail attachment).
A bigger links table is split (table.py): the page carries its first rows and the rest
wait in script files beside it, loaded on demand. Jinja2 autoescapes every
value; the table data is embedded as JSON in a non-executed <script> block with
`<`, `>`, `&`, U+2028 and U+2029 escaped, so no string from a post or a server
can end the block or start markup. As a second line of defence the page carries
a Content-Security-Policy that allows only its own script (by hash) and no
network at all; a split page adds 'strict-dynamic', so the scripts its own script
adds (the row files, by relative address) run and no other.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import shutil
import time
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from linkkeeper import __version__
from linkkeeper.report import charts
from linkkeeper.report.iri import display_host, display_url
from linkkeeper.report.model import Report, is_web_url
from linkkeeper.report.table import CHUNK_ROWS, HEAD_ROWS, INLINE_ROWS, TableSpill
from linkkeeper.report.table import table_data as table_data  # re-exported

POST_LIMIT = 1000  # posts in "by post"; the table and CSV carry the rest
HOST_LIMIT = 300
CHANGE_LIMIT = 500
# Rendered at load; the rest of each list waits in <template>s for "Show more" (first paint
# stays fast with 100,000 links: the browser never styles or lays out what is not shown).
PAGE = 50
POST_PAGE = 25


def safe_json(value: Any) -> Markup:
    """JSON that is safe inside <script>: nothing in it can close the element or open a comment."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    text = (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))
    return Markup(text)


@cache
def _asset(name: str) -> str:
    return (files("linkkeeper.report") / "templates" / name).read_text(encoding="utf-8")


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("linkkeeper.report", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.globals.update(is_web_url=is_web_url, pct=_pct, num=_num, short_date=_short_date,
                       short_time=_short_time, display_url=display_url,
                       display_host=display_host)
    return env


def _num(value: int) -> str:
    return f"{value:,}"


def _pct(value: float | None) -> str:
    if value is None:
        return "–"
    if 0 < value < 0.01:
        return "<1%"
    return f"{value:.0%}" if value < 0.995 or value == 1 else "99%"


def _short_date(value: str | None) -> str:
    return (value or "")[:10]


def _short_time(value: str | None) -> str:
    return (value or "")[:16].replace("T", " ") + (" UTC" if value else "")


def script_hash(script: str) -> str:
    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return "sha256-" + base64.b64encode(digest).decode("ascii")


def render_html(report: Report) -> str:
    """The page as one string, every row of the links table inline (for a stream: stdout)."""
    with _rows(report) as spill:
        return _render(report, spill.inline())


def _rows(report: Report, near: Path | None = None) -> TableSpill:
    """The links table: spilled by build_report(table=True), else walked now."""
    if report.table is not None and not report.table.closed:
        return report.table
    spill = TableSpill(near)
    for link in report.shown:
        spill.add(link)
    return spill


_BUILD_NAME = re.compile(r"\d{8}-\d{6}-\d{9}")  # the build folders `write_html` names


def write_html(report: Report, path: Path, *, inline_rows: int = INLINE_ROWS,
               head_rows: int = HEAD_ROWS, chunk_rows: int = CHUNK_ROWS) -> Path:
    """Write the page atomically (temp file + rename), so `serve` never shows half a page.

    Up to `inline_rows` links the page carries every row. Beyond, it carries the first
    `head_rows` (the table shows at once) and the rest go to files beside it,
    ``<name>.files/<build>/rows-NNNN.js``, that the page loads when a reader pages,
    searches, filters or sorts; they are written first, under a new build folder, and
    the previous builds' folders are removed once the new page is in place.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    files = path.with_name(f"{path.stem}.files")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    build = f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{time.time_ns() % 10**9:09d}"
    with _rows(report, path.parent) as spill:
        if spill.total <= inline_rows:
            table, build = spill.inline(), ""
        else:
            table = spill.split(files / build, f"{path.stem}.files/{build}",
                                head_rows, chunk_rows)
        tmp.write_text(_render(report, table), encoding="utf-8")
    tmp.replace(path)
    if files.is_dir():  # earlier builds (and, for a page now whole, the folder once empty)
        for old in files.iterdir():  # only what a build named: never a reader's own files
            if old.name != build and _BUILD_NAME.fullmatch(old.name) and not old.is_symlink():
                shutil.rmtree(old, ignore_errors=True)
        if not build:
            with contextlib.suppress(OSError):  # not empty: something else lives there
                files.rmdir()
    return path


def _render(report: Report, table: dict[str, Any]) -> str:
    script = _asset("report.js")
    page = _environment().get_template("report.html.j2")
    return page.render(
        r=report,
        s=report.summary,
        version=__version__,
        css=Markup(_asset("report.css")),
        script=Markup(script),
        script_hash=script_hash(script),
        # the row files are loaded by the page's own script: 'strict-dynamic' trusts the
        # scripts it adds, and nothing else
        split=bool(table.get("chunks")),
        table_json=safe_json(table),
        charts={
            "history": charts.history_chart(report.history),
            "rot": charts.rot_chart(report.rot),
            "hosts": charts.host_chart(report.hosts),
        },
        post_title=report.post_title,
        limit=CHANGE_LIMIT,
        post_limit=POST_LIMIT,
        host_limit=HOST_LIMIT,
        page=PAGE,
        post_page=POST_PAGE,
    )
