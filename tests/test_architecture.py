"""The architecture contract of ARCHITECTURE.md holds: layers respected, no import cycles."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_import_contract_holds() -> None:
    """`lint-imports` reads [tool.importlinter] in pyproject.toml; any broken contract fails."""
    tool = Path(sys.executable).with_name("lint-imports")
    command = str(tool) if tool.exists() else shutil.which("lint-imports")
    if command is None:
        pytest.fail("import-linter is not installed (it is in the [test] extra)")
    done = subprocess.run([command, "--no-cache"], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]



def test_the_cli_holds_no_sql() -> None:
    """Commands parse, make one library call and print: queries live with their tables."""
    import re

    sql = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE)\b.*\b(FROM|INTO|SET|WHERE)\b|\.execute\(")
    offenders = [
        f"{path.name}:{number}"
        for path in sorted((REPO / "linkkeeper" / "cli").glob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if sql.search(line)
    ]
    assert offenders == []
