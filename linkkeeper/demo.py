"""`linkkeeper demo` as one library call: the nightly audit of the bundled example site.

The example's made-up hosts are played by the fault-injection web on loopback
(404s, redirects, bot blocks, expired certificates, slow and dead servers), and
the checker reaches them through connect-to rules with DNS off, so no request
leaves the machine. Sits above `audit`, `report` and `faultweb`: it strings
them together, as the CLI must not.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from linkkeeper.archive.archiver import ArchiveOptions
from linkkeeper.audit import AuditOptions, AuditResult, ProgressFn, run_audit
from linkkeeper.check.options import CheckOptions
from linkkeeper.db import connect, default_db_path, default_warc_dir
from linkkeeper.faultweb import FaultWeb
from linkkeeper.report import Report, build_report, write_report_folder
from linkkeeper.scan import ScanProblem, ScanSummary, scan_site
from linkkeeper.site import open_site


class DemoError(Exception):
    """The demo cannot run in this installation (no example site)."""


@dataclass
class DemoResult:
    site: Path  # the example site's copy
    db: sqlite_utils.Database
    db_path: Path
    audit: AuditResult
    report_path: Path  # reports/index.html
    report: Report


def example_site_path() -> Path:
    """The bundled example site (from a source checkout or an editable install)."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "examples" / "site", here / "examples" / "site"):
        if candidate.is_dir():
            return candidate
    raise DemoError("the bundled example site is not installed with this copy")


def run_demo(
    workdir: Path,
    *,
    on_scan: Callable[[ScanSummary], None] | None = None,
    on_problem: Callable[[ScanProblem], None] | None = None,
    on_progress: ProgressFn | None = None,
) -> DemoResult:
    """Copy the example site to WORKDIR/site (once), audit it against the fault web, report.

    Run it again to add a night to the same history.
    """
    site = workdir / "site"
    if not site.exists():
        shutil.copytree(example_site_path(), site)
    db_path = default_db_path(site)
    db = connect(db_path)
    # the inventory names the hosts the fault web must play; this scan is the one reported
    scanned = scan_site(db, open_site([site]), on_problem=on_problem)
    if on_scan:
        on_scan(scanned)
    with FaultWeb(hosts=_checkable_hosts(db), default_latency=(5, 40)) as web:
        check = CheckOptions(
            connect_to=web.connect_to_args(wildcard=False), offline_dns=True,
            ca_bundle=web.ca_pem, attempts=2, total_timeout=5.0,
        )
        archive = ArchiveOptions(folder=default_warc_dir(db_path), user_agent=check.user_agent)
        audit = AuditOptions(archive=archive, record_options={
            "demo": True, "connect_to": check.connect_to, "offline_dns": True,
            "ca_bundle": check.ca_bundle, "attempts": 2, "timeout": 5.0, "fail_on": "never",
        })
        result = run_audit(db, open_site([site]), check, audit, on_progress=on_progress)
    report = build_report(db)
    target = write_report_folder(report, db_path.parent / "reports")
    return DemoResult(site, db, db_path, result, target, report)


def _checkable_hosts(db: sqlite_utils.Database) -> list[str]:
    """Hosts of the inventory's checkable links (the `.invalid` ones must stay unresolved)."""
    rows = db.execute("SELECT DISTINCT host FROM links WHERE status IS NULL AND host != ''")
    return [host for (host,) in rows if not host.endswith(".invalid")]
