"""The HTML report: one self-contained page (styles, script, data and SVG charts inline).

No CDN, no web fonts, no request of any kind: it works from a file:// URL, from
an e-mail attachment and inside `linkkeeper serve`. Jinja2 autoescapes every
value; the table data is embedded as JSON in a non-executed <script> block with
`<`, `>`, `&`, U+2028 and U+2029 escaped, so no string from a post or a server
can end the block or start markup. As a second line of defence the page carries
a Content-Security-Policy that allows only its own script (by hash) and no
network at all.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from linkkeeper import __version__
from linkkeeper.report import charts
from linkkeeper.report.data import STATUS_SEVERITY, LinkView, Report, is_web_url, severity
from linkkeeper.report.iri import display_host, display_url

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


# Columns of a row of the all-links table (report.js reads them by these positions).
COLUMNS = ("url", "host", "status", "state", "kinds", "http_status", "reason", "posts", "post",
           "checked", "archive", "change", "shown")


def table_data(report: Report) -> dict[str, Any]:
    """The all-links table as compact arrays, worst links first (see `data.severity`).

    Hosts, statuses, states, kinds, post paths and check times (to the minute) are stored
    once and referred to by index; statuses are listed in severity order, so sorting by status sorts by severity.
    `archive` is only the 14-digit timestamp when the copy's link is the usual
    ``archive/<timestamp>/<url>``; `shown` is the decoded URL when it differs from `url`.
    """
    statuses = {name: i for i, name in enumerate(STATUS_SEVERITY)}
    states: dict[str, int] = {}
    kinds: dict[str, int] = {}
    hosts: dict[str, int] = {}
    posts: dict[str, int] = {}
    times: dict[str, int] = {}
    rows = []
    for link in sorted(report.shown, key=severity):
        mask = 0
        for kind in link.kinds:
            mask |= 1 << kinds.setdefault(kind, len(kinds))
        first = link.occurrences[0].post if link.occurrences else None
        shown = display_url(link.url)
        rows.append([
            link.url,
            hosts.setdefault(link.host, len(hosts)),
            statuses.setdefault(link.status, len(statuses)),
            states.setdefault(link.state, len(states)),
            mask,
            link.http_status,
            "" if link.status == "ok" else link.reason,
            len(link.occurrences),
            -1 if first is None else posts.setdefault(first, len(posts)),
            times.setdefault((link.checked_at or "")[:16].replace("T", " "), len(times)),
            _archive_cell(link),
            link.change or "",
            "" if shown == link.url else shown,
        ])
    return {"columns": COLUMNS, "statuses": list(statuses), "states": list(states),
            "kinds": list(kinds), "hosts": [display_host(h) for h in hosts],
            "posts": list(posts), "times": list(times), "rows": rows}


def _archive_cell(link: LinkView) -> str:
    if not (link.archive and is_web_url(link.url)):
        return ""
    href = link.archive.href(link.url)
    stamp = link.archive.timestamp
    return stamp if len(stamp) == 14 and href == f"archive/{stamp}/{link.url}" else href


def script_hash(script: str) -> str:
    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return "sha256-" + base64.b64encode(digest).decode("ascii")


def render_html(report: Report) -> str:
    script = _asset("report.js")
    page = _environment().get_template("report.html.j2")
    return page.render(
        r=report,
        s=report.summary,
        version=__version__,
        css=Markup(_asset("report.css")),
        script=Markup(script),
        script_hash=script_hash(script),
        table_json=safe_json(table_data(report)),
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


def write_html(report: Report, path: Path) -> Path:
    """Write atomically (temp file + rename), so `serve` never shows half a page."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(render_html(report), encoding="utf-8")
    tmp.replace(path)
    return path
