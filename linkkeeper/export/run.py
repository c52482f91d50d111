"""`linkkeeper export` as one library call: select, plan, then write a WARC or a WACZ.

Usage::

    result = export(db, Path("warcs"), Selection(states=("dead",), latest=True),
                    Path("dead-links.wacz"))
    result.captures, result.bytes_written

The output name decides the format (:func:`export_format`). Dependencies run one way:
:mod:`~linkkeeper.export.select` (what) <- :mod:`~linkkeeper.export.assemble` (the WARC)
<- :mod:`~linkkeeper.export.wacz` (the package) <- this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from linkkeeper.export.assemble import ExportResult, ProgressCallback, write_warc_export
from linkkeeper.export.select import ExportError, Selection, plan_export
from linkkeeper.export.wacz import write_wacz


def export_format(path: Path) -> str:
    """'warc' for ``*.warc.gz``, 'wacz' for ``*.wacz`` (the output name decides)."""
    name = Path(path).name.lower()
    if name.endswith(".warc.gz"):
        return "warc"
    if name.endswith(".wacz"):
        return "wacz"
    raise ExportError(f"{path}: the output name must end in .warc.gz or .wacz")



def export(
    db: Any,
    folder: Path,
    selection: Selection,
    output: Path,
    *,
    force: bool = False,
    follow_redirects: bool = True,
    on_progress: ProgressCallback | None = None,
    title: str | None = None,
) -> ExportResult:
    """Export the selected captures to ``output`` (``.warc.gz`` or ``.wacz``)."""
    fmt = export_format(output)
    if output.exists() and not force:
        raise ExportError(f"{output} exists (use --force to replace it)")
    plan = plan_export(db, Path(folder), selection, follow_redirects=follow_redirects)
    if not plan.selected:
        raise ExportError(f"no capture matches the selection ({selection.describe()})")
    if fmt == "wacz":
        return write_wacz(db, Path(folder), plan, Path(output), force=force,
                          on_progress=on_progress, title=title)
    return write_warc_export(Path(folder), plan, Path(output), force=force,
                             on_progress=on_progress)
