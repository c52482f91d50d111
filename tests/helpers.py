"""Helpers shared by the tests (import as ``from helpers import ...``: tests/ is on sys.path)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import pytest
from warcio.archiveiterator import ArchiveIterator


def unavailable(requirement: str, reason: str) -> None:
    """Skip a test whose environment is missing, or fail it where CI demands the environment.

    `.ci/run` sets LINKKEEPER_REQUIRE_BROWSER=1 and LINKKEEPER_REQUIRE_PYWB=1: there, a
    Chromium or pywb that cannot be had is a broken CI, not a reason to test less.
    """
    if os.environ.get(f"LINKKEEPER_REQUIRE_{requirement}", "") not in ("", "0"):
        pytest.fail(f"{reason} (LINKKEEPER_REQUIRE_{requirement} is set)", pytrace=False)
    pytest.skip(reason)


def read_warc(path: Path, *, check_digests: bool = True) -> list[dict[str, Any]]:
    """Every record of a WARC file read back with warcio, in file order.

    Each record is a dict: ``type``, ``id`` (WARC-Record-ID), ``uri`` (WARC-Target-URI),
    ``headers`` (the WARC head), ``http`` (the HTTP head or None), ``payload`` (raw, content
    coding kept), ``offset``/``length`` of its gzip member and ``member`` (those bytes).
    With ``check_digests`` every block and payload digest is verified (a mismatch raises).
    """
    data = Path(path).read_bytes()
    records = []
    with open(path, "rb") as fh:
        iterator = ArchiveIterator(fh, check_digests="raise" if check_digests else False)
        for record in iterator:
            payload = record.raw_stream.read()
            if check_digests and record.rec_type != "revisit":
                assert record.digest_checker.passed is not False, record.digest_checker.problems
            offset, length = iterator.get_record_offset(), iterator.get_record_length()
            records.append(
                {
                    "type": record.rec_type,
                    "id": record.rec_headers.get_header("WARC-Record-ID"),
                    "uri": record.rec_headers.get_header("WARC-Target-URI"),
                    "headers": record.rec_headers,
                    "http": record.http_headers,
                    "payload": payload,
                    "offset": offset,
                    "length": length,
                    "member": data[offset : offset + length],
                }
            )
    return records


def web_args(web: Any, *extra: str) -> list[str]:
    """CLI arguments that send every request of a command to the fault web, and none elsewhere."""
    args = ["--offline-dns", "--ca-bundle", web.ca_pem]
    for spec in web.connect_to_args(wildcard=False):
        args += ["--connect-to", spec]
    return [*args, *extra]


def hermetic_options(web: Any, **overrides: Any) -> Any:
    """CheckOptions for library tests against the fault web: hermetic, no waits, no probes.

    Only the fault web is reachable (offline DNS), back-offs are tiny, hosts unthrottled;
    soft-404 probes and page reading are off unless a test turns them on.
    """
    from linkkeeper.check.options import CheckOptions

    settings: dict[str, Any] = {
        "connect_to": web.connect_to_args(wildcard=False),
        "offline_dns": True,
        "ca_bundle": web.ca_pem,
        "trust_env": False,
        "backoff_base": 0.02,
        "backoff_cap": 0.1,
        "host_rate": 0,
        "soft404": False,
        "read_pages": False,
    }
    settings.update(overrides)
    return CheckOptions(**settings)


def write_site(root: Path, posts: dict[str, str], site_url: str = "https://site.example") -> Path:
    """A Jekyll site: `_config.yml` with the site's URL and `_posts/NAME` for each post text."""
    (root / "_posts").mkdir(parents=True, exist_ok=True)
    (root / "_config.yml").write_text(f'url: "{site_url}"\n', encoding="utf-8")
    for name, text in posts.items():
        (root / "_posts" / name).write_text(text, encoding="utf-8")
    return root


def clean_env() -> dict[str, str]:
    """The environment without linkkeeper's variables or proxies (a child sees only its args)."""
    proxies = {"http_proxy", "https_proxy", "all_proxy"}
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("LINKKEEPER_") and k.lower() not in proxies
    }


# The CLI with its own peak RSS (VmHWM; exec starts it afresh) written at exit. rusage is no
# use here: a child's ru_maxrss starts at the test process's own peak.
_MEASURED = """
import atexit, os
def _peak():
    with open('/proc/self/status') as status, open(os.environ['LK_TEST_PEAK'], 'w') as out:
        out.write(next(line.split()[1] for line in status if line.startswith('VmHWM:')))
atexit.register(_peak)
from linkkeeper.cli import main
main()
"""


def run_measured(*args: object, timeout: float = 600) -> tuple[Any, float]:
    """Run linkkeeper: the finished process (subprocess.CompletedProcess) and its peak RSS, MB."""
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        peak_file = Path(scratch) / "peak"
        done = subprocess.run([sys.executable, "-c", _MEASURED, *map(str, args)],
                              capture_output=True, text=True, timeout=timeout,
                              env={**clean_env(), "LK_TEST_PEAK": str(peak_file)})
        return done, int(peak_file.read_text()) / 1024


@contextlib.asynccontextmanager
async def serving(site: Path) -> Any:
    """`linkkeeper serve` of a site's database, WARCs and report on a free loopback port:
    yields its base URL (with the trailing slash)."""
    from aiohttp import web

    from linkkeeper.serve import create_app, open_read_only

    app = create_app(open_read_only(site / "linkkeeper.db"), site / "warcs", site / "reports")
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/"
    finally:
        await runner.cleanup()
