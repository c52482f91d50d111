"""Compression bombs against `check` with archiving on, and against `replay --body`.

Each process's peak RSS is measured here (the VmHWM it reads from /proc at exit) and must
stay under 150 MB: a gibibyte (default suite) or four (slow) of zeros behind brotli,
gzip, ``gzip, gzip``, x-gzip, zlib-wrapped and raw deflate, and zstd (stored, not decoded,
when this Python has no zstd). Before the bounded decoders a 6.4 KB brotli body took
`check` to 4 GB.
"""

from __future__ import annotations

from pathlib import Path

import helpers
import pytest
from test_archive import make_site, rows, web_args

from linkkeeper import codings
from linkkeeper.faultweb import FaultWeb
from linkkeeper.faultweb.hostile import BOMB_CODINGS, bomb_body

PEAK_RSS_MB = 150


def run_measured(*args: object, timeout: float = 300) -> tuple[int, str, str, float]:
    """Run linkkeeper; its exit code, stdout, stderr and peak RSS in MB (of that process)."""
    done, peak = helpers.run_measured(*args, timeout=timeout)
    return done.returncode, done.stdout, done.stderr, peak


def bomb_url(kind: str, mib: int) -> str:
    return f"https://news.example/bomb/{kind}/{mib}/story-1"


def decodable(kind: str) -> bool:
    return all(codings.supported(c) for c in codings.content_codings(BOMB_CODINGS[kind]))


def check_and_replay(web: FaultWeb, root: Path, kinds: list[str], mib: int) -> list[str]:
    """check a site citing the bombs (archiving on: the default), then replay each body."""
    urls = [bomb_url(kind, mib) for kind in kinds]
    site = make_site(root, [{"source": urls[0], "related": urls[1:]}])
    code, _, err, peak = run_measured("check", site, *web_args(web), "--attempts", "1",
                                      "--fail-on", "never")
    assert code == 0, err
    report = [f"check {','.join(kinds)} {mib} MiB: peak RSS {peak:.0f} MB"]
    assert peak <= PEAK_RSS_MB, report
    db = site / "linkkeeper.db"
    archived = {r["url"]: r for r in rows(db, "SELECT url, payload_length FROM snapshots")}
    for kind, url in zip(kinds, urls, strict=True):
        body = bomb_body(kind, mib)
        assert archived[url]["payload_length"] == len(body), kind  # stored as sent
        code, out, err, peak = run_measured("replay", url, "--db", db, "--body")
        report.append(f"replay --body {kind} {mib} MiB: exit {code}, peak RSS {peak:.0f} MB")
        assert peak <= PEAK_RSS_MB, report
        assert code == 1 and out == ""
        problem = err.strip().splitlines()[-1]
        assert problem.startswith("error: ") and "--raw" in problem, err
        assert ("compression bomb" if decodable(kind) else "not supported") in problem, err
        raw = root / f"{kind}.raw"
        code, _, err, _ = run_measured("replay", url, "--db", db, "--body", "--raw", "-o", raw)
        assert code == 0 and raw.read_bytes() == body, err
    return report


def test_bombs_in_one_check_and_replay(faultweb: FaultWeb, tmp_path: Path) -> None:
    for line in check_and_replay(faultweb, tmp_path / "site", sorted(BOMB_CODINGS), 1024):
        print(line)


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(BOMB_CODINGS))
def test_each_four_gib_bomb_alone(faultweb_session: FaultWeb, tmp_path: Path, kind: str) -> None:
    """The sizes of the report: 4 GiB behind each coding, one check process per bomb."""
    for line in check_and_replay(faultweb_session, tmp_path / "site", [kind], 4096):
        print(line)
