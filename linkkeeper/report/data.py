"""What a report shows, read from the SQLite history into a typed view model (model.py).

Every output format (HTML, Markdown, JSON, CSV, JUnit, SARIF) renders the same
`Report`, so the numbers agree across formats. The links are streamed (links.py):
`build_report` walks them once to count (tally.py) and keeps only what the lists
show in full (failing and changed links, the posts that cite them); the formats walk
them again as they write. Each walk looks every link's latest check up through
`link_state.last_run` and the unique (run_id, url) index, so a 1,000,000-link,
30-run history is never scanned whole.

"What changed" compares each link's latest status with its status as of a
*baseline* run: by default the complete run before the latest one; with
`since` a run id, or a date (the last run started before it). A link whose
latest check came after the baseline and whose status moved from non-failure
to failure is *newly broken*; from failure to ok/redirected, *recovered*.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import sqlite_utils

from linkkeeper.clock import iso, utcnow
from linkkeeper.db import MAX_ROW_ID
from linkkeeper.history.retention import pruned_through
from linkkeeper.history.runs import previous_run_id
from linkkeeper.report.links import LinkStream, counted_links, open_stream
from linkkeeper.report.model import (  # noqa: F401 - the model, re-exported for its readers
    ALIVE_STATUSES,
    CHANGE_NEW,
    CHANGE_OTHER,
    CHANGE_RECOVERED,
    STATUS_SEVERITY,
    TODO_CHECK,
    TODO_NOTHING,
    TODO_REPLACE,
    TODO_WAIT,
    UNCHECKABLE,
    BadLink,
    HostView,
    LinkView,
    Occurrence,
    PostView,
    Report,
    ReportError,
    RunPoint,
    Summary,
    YearRot,
    is_web_url,
    severity,
    status_rank,
)
from linkkeeper.report.results import run_record
from linkkeeper.report.table import TableSpill
from linkkeeper.report.tally import Tally, hosts_of, posts_of, rot_of, summary_of

# the list forms, for reports built in memory (tests/report_world.py)
_summary, _posts, _hosts, _rot = summary_of, posts_of, hosts_of, rot_of


# --- the baseline ---------------------------------------------------------------------------

def latest_run_id(db: sqlite_utils.Database) -> int:
    """The run to report on: the latest complete one, else the latest of any state."""
    row = db.execute("SELECT max(id) FROM runs WHERE state='complete'").fetchone()
    if row and row[0] is not None:
        return int(row[0])
    row = db.execute("SELECT max(id) FROM runs").fetchone()
    if not row or row[0] is None:
        raise ReportError("no check has been run on this database yet: run `linkkeeper check`")
    return int(row[0])


def resolve_since(db: sqlite_utils.Database, since: str | None, run_id: int) -> int | None:
    """The baseline run id for `since` (a run id or a date); None means "before any run"."""
    if since is None or str(since).strip() == "":
        return previous_run_id(db, run_id)
    text = str(since).strip()
    if text.isdigit():
        baseline = int(text)
        if baseline > MAX_ROW_ID or db.execute(
                "SELECT 1 FROM runs WHERE id=?", [baseline]).fetchone() is None:
            raise ReportError(f"--since {text}: there is no run {text} in this database")
    else:
        when = parse_since_date(text)
        row = db.execute(
            "SELECT max(id) FROM runs WHERE started_at < ?", [iso(when)]
        ).fetchone()
        baseline = int(row[0]) if row and row[0] is not None else None
    pruned = pruned_through(db)
    if baseline is not None and pruned is not None and baseline <= pruned:
        raise ReportError(f"--since {text}: the checks of runs up to {pruned} were pruned"
                          f" (linkkeeper prune); compare with run {pruned + 1} or later")
    if baseline is not None and baseline >= run_id:  # never compare a run with itself
        started = db.execute("SELECT started_at FROM runs WHERE id=?", [run_id]).fetchone()[0]
        raise ReportError(f"--since {text}: nothing to compare, the last run (run {run_id}, "
                          f"started {started}) is not after it; give an earlier run or date")
    return baseline


def parse_since_date(text: str) -> datetime:
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            return datetime(d.year, d.month, d.day, tzinfo=UTC)
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ReportError(
            f"--since {text!r}: expected a run id (e.g. 12) or a date (2024-11-19, "
            "2024-11-19T08:00:00Z)"
        ) from None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(UTC)


# --- loading -----------------------------------------------------------------------------------


def build_report(
    db: sqlite_utils.Database,
    *,
    since: str | None = None,
    now: datetime | None = None,
    serve_url: str | None = None,
    table: bool = False,
) -> Report:
    """Read the history into a `Report` of the latest run; `since` limits the lists to what
    changed after that run id or date. With `table`, the HTML links table is filled in the
    same walk over the links (for `write_html`: one walk instead of two)."""
    run_id = latest_run_id(db)
    baseline_id = resolve_since(db, since, run_id)
    spec = open_stream(db, baseline_id, serve_url)
    links = LinkStream(db, spec, count=0)
    tally = Tally()
    rows = TableSpill() if table else None
    shown_count = 0
    for link in counted_links(db, spec):
        shown = since is None or link.change is not None
        shown_count += shown
        tally.add(link, shown=shown)
        if rows is not None and shown:
            rows.add(link)
    links.count = tally.links
    shown_links = links if since is None else LinkStream(db, spec, count=shown_count,
                                                         changed_only=True)
    return Report(
        generated_at=iso(now or utcnow()),
        run=run_record(db, run_id),
        baseline=run_record(db, baseline_id) if baseline_id is not None else None,
        since=since,
        summary=tally.summary(),
        links=links,
        shown=shown_links,
        posts=tally.post_views(),
        hosts=tally.hosts(),
        history=_history(db),
        rot=tally.rot(),
        post_meta=tally.meta,
        serve_url=serve_url,
        changes=tally.changes,
        table=rows,
    )


def _history(db: sqlite_utils.Database, limit: int = 30) -> list[RunPoint]:
    rows = db.execute(
        "SELECT id, started_at, state, counts, degraded FROM runs ORDER BY id DESC LIMIT ?",
        [limit],
    ).fetchall()
    points = []
    for rid, started, state, counts, degraded in reversed(rows):
        try:
            parsed = json.loads(counts) if counts else {}
        except ValueError:
            parsed = {}
        points.append(RunPoint(rid, started or "", state or "",
                               {k: int(v) for k, v in parsed.items()}, bool(degraded)))
    return points

