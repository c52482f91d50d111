"""pywb, in a virtualenv of its own, serving a WARC folder on loopback for replay tests.

pywb pins libraries (old redis and fakeredis, brotlipy, gevent) that must not meet the app's, so
it gets its own virtualenv, created once from ``.ci/pywb-requirements.txt`` in
``.cache/pywb-venv`` (recreated when that file changes; ``.cache`` ignores itself). pywb 2.10.0
installs from PyPI wheels on CPython 3.11 with nothing else needed.

Hermetic: pywb is started through a launcher that gives tldextract (used by pywb's cookie
rewriter and by surt) its bundled public-suffix snapshot instead of a download, with proxy
variables pointing at a closed loopback port as a second fence. It binds 127.0.0.1 only.
"""

from __future__ import annotations

import fcntl
import hashlib
import http.client
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REQUIREMENTS = REPO / ".ci" / "pywb-requirements.txt"
DEFAULT_VENV = REPO / ".cache" / "pywb-venv"

_LAUNCHER = """
from gevent.monkey import patch_all
patch_all()  # first, as pywb's own cli does, before tldextract pulls in ssl
import sys
import tldextract
import tldextract.tldextract
offline = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
tldextract.extract = offline
tldextract.tldextract.extract = offline
tldextract.tldextract.TLD_EXTRACTOR = offline
from pywb.apps.cli import wayback
sys.argv = ["wayback", *sys.argv[1:]]
wayback()
"""


class PywbUnavailable(RuntimeError):
    """pywb could not be installed here (no registry, no wheels): the test is skipped."""


def _base_python() -> str:
    return shutil.which("python3.11") or getattr(sys, "_base_executable", sys.executable)


def ensure_pywb(venv: Path = DEFAULT_VENV) -> Path:
    """The python of a ready pywb virtualenv, creating it when missing or out of date."""
    wanted = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    marker = venv / ".ready"
    venv.parent.mkdir(parents=True, exist_ok=True)
    ignore = venv.parent / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n")
    with open(venv.parent / ".pywb-venv.lock", "a+b") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)  # one creator at a time
        if marker.exists() and marker.read_text() == wanted:
            return venv / "bin" / "python"
        shutil.rmtree(venv, ignore_errors=True)
        steps = [
            [_base_python(), "-m", "venv", str(venv)],
            [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "-r", str(REQUIREMENTS)],
        ]
        for step in steps:
            result = subprocess.run(step, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise PywbUnavailable(
                    f"{' '.join(step)} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
                )
        marker.write_text(wanted)
    return venv / "bin" / "python"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(port: int, path: str, headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
    """One GET to the local pywb, redirects not followed, body not decoded (read it right away)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path, headers=headers or {})
    return conn.getresponse()


@contextmanager
def wayback(python: Path, config_yaml: str, workdir: Path) -> Iterator[int]:
    """Run pywb's ``wayback`` (reads ./config.yaml) on a free loopback port; yields the port."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.yaml").write_text(config_yaml)
    port = free_port()
    fence = "http://127.0.0.1:9"  # discard port: nothing listens, nothing leaves the machine
    env = {
        **os.environ,
        "HTTP_PROXY": fence,
        "HTTPS_PROXY": fence,
        "http_proxy": fence,
        "https_proxy": fence,
        "NO_PROXY": "127.0.0.1,localhost",  # pywb calls its own warcserver over HTTP
        "no_proxy": "127.0.0.1,localhost",
        "TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS": "",  # empty list: bundled snapshot only
    }
    log = open(workdir / "wayback.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [str(python), "-c", _LAUNCHER, "-p", str(port), "-b", "127.0.0.1", "-t", "2"],
        cwd=workdir,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"wayback exited: {(workdir / 'wayback.log').read_text()}")
            try:
                get(port, "/").read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("wayback did not start within 60 s") from None
                time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


if __name__ == "__main__":  # CI can prepare the venv up front: python tests/pywb_env.py
    print(ensure_pywb())
