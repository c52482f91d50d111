"""The end of a run reads its checks a page at a time and keeps only what the verdict and the
host failures can use: the same answers as from every row, in the memory of the failures."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from linkkeeper.db import connect
from linkkeeper.history.recorder import Recorder
from linkkeeper.history.truth import host_failures, run_verdict

ROWS = [  # status, reason, http_status
    ("ok", "HTTP 200", 200),
    ("broken", "HTTP 404", 404),
    ("error", "HTTP 503", 503),
    ("timeout", "timed out (read)", None),
    ("network-error", "DNS: name not resolved", None),
    ("network-error", "connection refused", None),
    ("excluded", "by rule", None),
]


def _all_rows(db, run_id):
    return db.execute(
        "SELECT url, status, reason, http_status FROM checks WHERE run_id=?", [run_id]
    ).fetchall()


@pytest.mark.parametrize("seed", range(40))
def test_compact_rows_give_the_same_verdict_and_host_failures(tmp_path: Path, seed: int
                                                               ) -> None:
    rng = random.Random(seed)
    db = connect(tmp_path / "r.db")
    run_id = 1
    hosts = [f"h{i}.example" for i in range(rng.randint(1, 12))]
    mix = rng.sample(ROWS, rng.randint(1, len(ROWS)))
    if seed % 3 == 0:  # cut off from the network, but for a host or two that answered
        hosts = [f"h{i}.example" for i in range(rng.randint(6, 30))]
        mix = [ROWS[4], ROWS[5], ROWS[6]] + ([ROWS[0]] if seed % 2 else [])
    for n in range(rng.randint(0, 120)):
        status, reason, code = rng.choice(mix)
        db.execute(
            "INSERT INTO checks (run_id, url, status, reason, http_status) VALUES (?,?,?,?,?)",
            [run_id, f"https://{rng.choice(hosts)}/p{n}", status, reason, code],
        )
    recorder = Recorder(db, run_id)
    rows = _all_rows(db, run_id)
    for canaries in (None, [("https://c.example/", "network-error", "DNS: x", None)]):
        assert run_verdict(recorder._verdict_rows(), canaries) == run_verdict(rows, canaries)
    assert host_failures(recorder._host_failure_rows()) == host_failures(rows)
