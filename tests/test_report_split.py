"""The split HTML report (issue 15): past INLINE_ROWS links the page carries its first rows
and the rest go to script files beside it, written atomically and replaced by the next
report; the data in them is the same table, worst first, as a one-file page carries."""

from __future__ import annotations

import json
import re
from pathlib import Path

from report_world import big_report

from linkkeeper.report import write_html
from linkkeeper.report.html import render_html
from linkkeeper.report.table import COLUMNS, table_data

POST = COLUMNS.index("post")


def _page_table(page: str) -> dict:
    return json.loads(re.search(r'id="links-data">(.*?)</script>', page, re.S).group(1))


def _chunk(path: Path) -> tuple[int, dict]:
    text = path.read_text(encoding="utf-8")
    m = re.fullmatch(r"linkkeeperRows\((\d+),(.*)\);\n", text, re.S)
    assert m, text[:80]
    return int(m.group(1)), json.loads(m.group(2))


def _rows(block: dict) -> list[list]:
    """Rows with their post path in place of the block's index."""
    return [[*r[:POST], block["posts"][r[POST]] if r[POST] >= 0 else None, *r[POST + 1:]]
            for r in block["rows"]]


def test_split_page_holds_the_head_and_files_hold_the_rest_in_order(tmp_path: Path) -> None:
    rep = big_report(3_000)
    whole = table_data(rep)
    page_path = write_html(rep, tmp_path / "index.html", inline_rows=500, head_rows=200,
                           chunk_rows=700)
    page = page_path.read_text(encoding="utf-8")
    table = _page_table(page)
    assert len(table["rows"]) == 200 and table["total"] == 3_000
    assert "'strict-dynamic'" in page  # the page's own script may add the row files
    builds = list((tmp_path / "index.files").iterdir())
    assert len(builds) == 1
    assert table["chunks"] == [f"index.files/{builds[0].name}/rows-{n:04d}.js"
                               for n in range(1, 5)]
    rows = _rows(table)
    for n, href in enumerate(table["chunks"], start=1):
        number, block = _chunk(tmp_path / href)
        assert number == n
        rows += _rows(block)
    assert rows == _rows(whole)  # the same rows, worst first, as the one-file page
    assert not list(tmp_path.glob(".*"))  # no temporary file or spill folder left


def test_next_report_replaces_the_files_and_a_small_one_removes_them(tmp_path: Path) -> None:
    target = tmp_path / "index.html"
    write_html(big_report(3_000), target, inline_rows=500, head_rows=200, chunk_rows=700)
    first = {p.name for p in (tmp_path / "index.files").iterdir()}
    write_html(big_report(2_000), target, inline_rows=500, head_rows=200, chunk_rows=700)
    second = {p.name for p in (tmp_path / "index.files").iterdir()}
    assert len(second) == 1 and second != first
    table = _page_table(target.read_text(encoding="utf-8"))
    assert all((tmp_path / href).is_file() for href in table["chunks"])
    write_html(big_report(300), target, inline_rows=500)
    assert not (tmp_path / "index.files").exists()
    small = target.read_text(encoding="utf-8")
    assert "strict-dynamic" not in small and len(_page_table(small)["rows"]) == 300


def test_one_file_page_carries_every_row() -> None:
    rep = big_report(6_000)  # more than INLINE_ROWS: a string has nowhere to put files
    table = _page_table(render_html(rep))
    assert len(table["rows"]) == table["total"] == 6_000 and table["chunks"] == []
