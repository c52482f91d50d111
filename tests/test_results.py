"""`results.link_records`: the JSON view of the history, streamed in URL order."""

from __future__ import annotations

from pathlib import Path

from linkkeeper.db import connect
from linkkeeper.report.results import link_records


def _history(path: Path):
    db = connect(path)
    db["posts"].insert_all(
        [{"path": "_posts/a.md", "title": "A"}, {"path": "_posts/b.md", "title": "B"}]
    )
    db["links"].insert_all(
        [
            {"url": "https://x.example/1", "host": "x.example"},
            {"url": "https://x.example/2", "host": "x.example"},
            {"url": "https://y.example/orphan", "host": "y.example"},  # cited nowhere now
            {"url": "mailto:someone", "host": "", "status": "excluded", "reason": "scheme"},
        ]
    )
    db["occurrences"].insert_all(
        [
            {"post": "_posts/b.md", "url": "https://x.example/1", "kind": "related", "line": 9},
            {"post": "_posts/a.md", "url": "https://x.example/1", "kind": "source", "line": 3},
            {"post": "_posts/a.md", "url": "https://x.example/1", "kind": "related", "line": 2},
            {"post": "_posts/a.md", "url": "https://x.example/2", "kind": "image", "line": 5},
            {"post": "_posts/b.md", "url": "mailto:someone", "kind": "inline", "line": 1},
        ]
    )
    db["runs"].insert_all([{"id": 1, "state": "complete"}, {"id": 2, "state": "complete"}])
    db["checks"].insert_all(
        [
            {"run_id": 1, "url": "https://x.example/1", "status": "ok", "http_status": 200},
            {"run_id": 1, "url": "https://x.example/2", "status": "ok", "http_status": 200},
            {"run_id": 2, "url": "https://x.example/1", "status": "broken", "http_status": 404,
             "new_failure": 1},
        ]
    )
    db["link_state"].insert_all(
        [
            {"url": "https://x.example/1", "state": "failing", "last_run": 2},
            {"url": "https://x.example/2", "state": "alive", "last_run": 1},
        ],
        pk="url",
        alter=True,
    )
    return db


def test_each_cited_link_once_in_url_order_with_its_posts_and_latest_check(
    tmp_path: Path,
) -> None:
    records = list(link_records(_history(tmp_path / "h.db"), 2))
    assert [r["url"] for r in records] == [
        "https://x.example/1", "https://x.example/2", "mailto:someone"
    ]
    first, second, excluded = records
    assert [(p["path"], p["line"], p["title"]) for p in first["posts"]] == [
        ("_posts/a.md", 2, "A"), ("_posts/a.md", 3, "A"), ("_posts/b.md", 9, "B")
    ]
    assert first["kinds"] == ["related", "source"]
    assert (first["status"], first["http_status"], first["run_id"]) == ("broken", 404, 2)
    assert first["new_failure"] and first["checked_this_run"] and first["state"] == "failing"
    assert (second["status"], second["run_id"], second["checked_this_run"]) == ("ok", 1, False)
    assert second["posts"][0]["kind"] == "image" and second["state"] == "alive"
    assert (excluded["status"], excluded["reason"], excluded["run_id"]) == (
        "excluded", "scheme", None
    )


def test_an_older_run_shows_the_checks_as_they_were_then(tmp_path: Path) -> None:
    records = {r["url"]: r for r in link_records(_history(tmp_path / "h.db"), 1)}
    assert records["https://x.example/1"]["status"] == "ok"
    assert records["https://x.example/1"]["checked_this_run"]
    assert not records["https://x.example/1"]["new_failure"]


def test_a_link_cited_past_the_spill_writes_the_same_json_without_holding_its_posts(
    tmp_path: Path,
) -> None:
    """One URL may be cited by every post: past `spill` citations its posts are written
    one by one, and the document is the same as json.dumps of the whole record."""
    import io
    import json

    from linkkeeper.report.results import SpilledPosts, dump_record

    db = _history(tmp_path / "h.db")
    whole = list(link_records(db, 2))
    spilled = []
    for rec in link_records(db, 2, spill=2):
        out = io.StringIO()
        dump_record(rec, out)
        spilled.append((type(rec["posts"]), rec["kinds"], out.getvalue()))
    assert spilled[0][0] is SpilledPosts  # x.example/1 is cited three times
    assert [kinds for _, kinds, _ in spilled] == [r["kinds"] for r in whole]
    assert [text for _, _, text in spilled] == [json.dumps(r, ensure_ascii=False) for r in whole]
