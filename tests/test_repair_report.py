"""Every report format names the archived copy of each failing link; the HTML says what to do."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

from repair_world import (
    INLINE_DEAD,
    LEAD,
    MD_DEAD,
    POST,
    RELATED_DEAD,
    RELATED_OK,
    capture,
    kill,
    make_site,
    scanned,
)

from linkkeeper.repair.copies import MEMENTO, OURS, WAYBACK, Copy, refresh_copies, remember
from linkkeeper.report import build_report, render_html, write_report

WAYBACK_COPY = f"http://web.archive.example/web/20230502000000/{INLINE_DEAD}"
SERVE = "http://127.0.0.1:8000/"


def world(tmp_path: Path):  # type: ignore[no-untyped-def]
    site = make_site(tmp_path, {"2021-05-03-story.md": POST})
    db = scanned(site)
    kill(db, LEAD)  # ours: the capture before it failed
    capture(db, LEAD, "2024-05-20T10:00:00+00:00")
    capture(db, LEAD, "2024-06-20T10:00:00+00:00", run_id=3, check_status="soft-404")
    kill(db, INLINE_DEAD)  # only the Wayback Machine has it
    kill(db, MD_DEAD)  # nowhere
    kill(db, RELATED_DEAD, state="failing")  # not confirmed yet
    kill(db, RELATED_OK, state="blocked", status="blocked")
    refresh_copies(db)
    remember(db, INLINE_DEAD, WAYBACK, Copy(WAYBACK, WAYBACK_COPY, "2023-05-02T00:00:00Z", 200))
    remember(db, MD_DEAD, WAYBACK, None)
    remember(db, MD_DEAD, MEMENTO, None)
    return db


def test_the_model_carries_the_chosen_copy_and_the_advice(tmp_path: Path) -> None:
    db = world(tmp_path)
    links = {lnk.url: lnk for lnk in build_report(db).links}
    lead = links[LEAD]
    assert lead.archive and lead.archive.source == OURS
    assert lead.archive_label == "ours 2024-05-20"  # not the soft-404 capture after
    assert lead.archive.href(LEAD) == f"archive/20240520100000/{LEAD}"
    assert links[INLINE_DEAD].archive_label == "Wayback 2023-05-02"
    assert links[INLINE_DEAD].archive.href(INLINE_DEAD) == WAYBACK_COPY  # type: ignore[union-attr]
    assert links[MD_DEAD].archive_label == "none anywhere"
    assert [links[u].todo[0] for u in (LEAD, INLINE_DEAD, MD_DEAD, RELATED_DEAD, RELATED_OK)] == [
        "replace", "replace", "nothing", "wait", "check"]
    served = {lnk.url: lnk for lnk in build_report(db, serve_url=SERVE).links}
    assert served[LEAD].archive.href(LEAD) == f"{SERVE}archive/20240520100000/{LEAD}"  # type: ignore[union-attr]


def test_every_format_names_the_copy(tmp_path: Path) -> None:
    db = world(tmp_path)
    rep = build_report(db)
    out = {}
    for fmt in ("markdown", "json", "csv", "junit", "sarif"):
        buf = io.StringIO()
        write_report(db, rep, fmt, buf)
        out[fmt] = buf.getvalue()
    assert f"archived copy: Wayback 2023-05-02 <{WAYBACK_COPY}>" in out["markdown"]
    assert "archived copy: none anywhere" in out["markdown"]
    assert "archived copy: ours 2024-05-20" in out["markdown"]
    by_url = {r["url"]: r for r in json.loads(out["json"])["links"]}
    assert by_url[LEAD]["archived_copy"] == "ours 2024-05-20"
    assert by_url[INLINE_DEAD]["archived"]["href"] == WAYBACK_COPY
    assert by_url[MD_DEAD]["archived_copy"] == "none anywhere" and not by_url[MD_DEAD]["archived"]
    rows = {r["url"]: r for r in csv.DictReader(io.StringIO(out["csv"]))}
    assert rows[INLINE_DEAD]["archive_label"] == "Wayback 2023-05-02"
    assert rows[INLINE_DEAD]["archived_copy"] == WAYBACK_COPY
    assert f"archived copy: Wayback 2023-05-02 {WAYBACK_COPY}" in out["junit"].replace(
        "&amp;", "&")
    assert "Archived copy: none anywhere." in out["sarif"]


def test_html_what_to_do_cells(tmp_path: Path) -> None:
    db = world(tmp_path)
    page = render_html(build_report(db, serve_url=SERVE))
    assert "<th>What to do</th>" in page
    cells = re.findall(r'<span class="todo todo-(\w+)">(.*?)</span>', page)
    codes = [c for c, _ in cells]
    assert {"replace", "nothing", "wait"} <= set(codes)
    assert any(c == "replace" and f'href="{SERVE}archive/20240520100000/' in t for c, t in cells)
    assert any(c == "replace" and WAYBACK_COPY.replace("&", "&amp;") in t for c, t in cells)
    assert ">Wayback 2023-05-02</a>" in page and ">none anywhere</span>" in page
