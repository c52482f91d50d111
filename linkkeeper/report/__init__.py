"""Stage 4: reports a person reads (HTML) and reports machines read (Markdown, JSON, CSV, JUnit, SARIF).

    from linkkeeper.db import connect
    from linkkeeper.report import build_report, write_html, write_report

    db = connect("linkkeeper.db")
    report = build_report(db, since="2024-11-01")   # or since="12" (a run id), or None
    write_html(report, Path("reports/index.html"))
    write_report(db, report, "sarif", sys.stdout)

`data` reads the history into a typed `Report` (model.py), walking the links once in URL
order (links.py, counted by tally.py); `Report.links` walks them again from the database
when a format writes them, so no format holds every link. `build_report(db, table=True)`
fills the HTML links table (table.py) in the same walk. `html` and `formats` only render.
"""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

import sqlite_utils

from linkkeeper.report.data import Report, ReportError, build_report
from linkkeeper.report.formats import (
    FORMATS,
    write_csv,
    write_json,
    write_junit,
    write_markdown,
    write_sarif,
)
from linkkeeper.report.html import render_html, write_html
from linkkeeper.site import REPORT_MARKER  # left in the report folder so scans skip it

__all__ = ["FORMATS", "Report", "ReportError", "build_report", "render_html", "write_html",
           "write_report", "write_report_folder"]


def write_report_folder(report: Report, folder: Path) -> Path:
    """FOLDER/index.html, marked so that scans of a site holding the folder skip it."""
    target = write_html(report, folder / "index.html")
    (folder / REPORT_MARKER).write_text(
        "linkkeeper report output: not posts; scanners skip this folder\n")
    return target


def write_report(db: sqlite_utils.Database, report: Report, fmt: str, out: TextIO,
                 *, sarif_prefix: str = "") -> None:
    """Render `report` in one of FORMATS to a text stream."""
    if fmt == "html":
        out.write(render_html(report))
    elif fmt == "markdown":
        write_markdown(report, out)
    elif fmt == "json":
        write_json(db, report, out)
    elif fmt == "csv":
        write_csv(report, out)
    elif fmt == "junit":
        write_junit(report, out)
    elif fmt == "sarif":
        write_sarif(report, out, uri_prefix=sarif_prefix)
    else:
        raise ValueError(f"unknown report format {fmt!r}; expected one of {', '.join(FORMATS)}")
