"""What every benchmark script shares: cached generated sites and BENCHMARKS.md sections.

Sites are generated once per set of arguments into benchmarks/out/ (gitignored) and
reused while their manifest matches, since generation is deterministic. Results go into
BENCHMARKS.md between ``<!-- NAME:begin -->`` and ``<!-- NAME:end -->`` markers, so a
benchmark rewrites only its own table and the prose around it stays as people wrote it.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gen_site import generate_site
from measure import OUT_DIR, machine

REPO = Path(__file__).resolve().parent.parent
BENCHMARKS_MD = REPO / "BENCHMARKS.md"


def cached_site(name: str, **arguments: Any) -> tuple[Path, dict[str, Any]]:
    """The site `OUT_DIR/name`, generated with `arguments` unless already there; its manifest."""
    site = OUT_DIR / name
    manifest_path = site / "_benchmark" / "manifest.json"
    wanted = {
        "posts": 20_000,
        "hosts": 20,
        "seed": 1,
        "scheme": "http",
        "port": None,
        "distinct_urls": None,
        "html": False,
    } | arguments
    if wanted.get("world") == "gentle":
        del wanted["world"]  # the default world is not written into manifests
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if manifest.get("arguments") == wanted:
            return site, manifest
    generate_site(
        site,
        posts=wanted["posts"],
        hosts=wanted["hosts"],
        seed=wanted["seed"],
        scheme=wanted["scheme"],
        port=wanted["port"],
        distinct_urls=wanted["distinct_urls"],
        html=wanted["html"],
        world=wanted.get("world", "gentle"),
    )
    return site, json.loads(manifest_path.read_text(encoding="utf-8"))


def update_section(name: str, body: str, path: Path = BENCHMARKS_MD) -> None:
    """Replace the text between NAME's markers in BENCHMARKS.md (appended if missing)."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    block = f"{begin}\n{body.strip()}\n{end}"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text, count=1)
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + block + "\n"
    path.write_text(text, encoding="utf-8")


def provenance(command_line: str) -> str:
    """The 'when, where, how' line printed under every results table."""
    where = machine()
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"Written {stamp} on {where['cpus']} CPUs (1-minute load average then: "
        f"{where['loadavg_1m']}), commit {where['commit']}, Python {where['python']}. "
        f"Command: `{command_line}`"
    )
