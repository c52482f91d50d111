"""Replay: pywb serves the WARC folder exactly as WarcStore leaves it (no wb-manager, no copy),
and gives back the bytes each server sent, through its identity (``id_``) mode."""

from __future__ import annotations

import gzip
import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import brotli
import pytest
from helpers import unavailable
from pywb_env import PywbUnavailable, ensure_pywb, get, wayback

from linkkeeper.archive.cdx import pywb_collection_config
from linkkeeper.archive.snapshots import Capture, PriorCapture
from linkkeeper.archive.warc import WarcStore
from linkkeeper.exchange import Exchange

T0 = datetime(2026, 11, 26, 10, 15, 0, tzinfo=UTC)
PAGE = b"<!doctype html><title>Bridge reopens</title>" + b"<p>The council voted.</p>" * 300
PHOTO = os.urandom(30_000)
BROWSER = {"Accept-Encoding": "gzip, deflate, br", "User-Agent": "replay-test"}


def exchange(path: str, **changes: object) -> Exchange:
    url = f"http://news.test{path}"
    base = Exchange(
        url=url,
        method="GET",
        request_headers=[("Host", "news.test"), ("Accept-Encoding", "gzip, br")],
        status=200,
        reason="OK",
        response_headers=[("Content-Type", "text/html; charset=utf-8")],
        body=PAGE,
        started=T0,
        ip="127.0.0.1",
    )
    return replace(base, **changes)


CASES: dict[str, Exchange] = {
    "plain": exchange(
        "/plain.html",
        response_headers=[("Content-Type", "text/html"), ("Content-Length", str(len(PAGE)))],
    ),
    "gzip": exchange(
        "/gzip.html",
        response_headers=[("Content-Type", "text/html"), ("Content-Encoding", "gzip")],
        body=gzip.compress(PAGE),
    ),
    "brotli": exchange(
        "/brotli.html",
        response_headers=[("Content-Type", "text/html"), ("Content-Encoding", "br")],
        body=brotli.compress(PAGE),
    ),
    "chunked": exchange(
        "/chunked.html",
        response_headers=[
            ("Content-Type", "text/html"),
            ("Transfer-Encoding", "chunked"),
            ("Content-Encoding", "gzip"),
        ],
        body=gzip.compress(PAGE, compresslevel=1),
    ),
    "image": exchange(
        "/photo.jpg",
        response_headers=[("Content-Type", "image/jpeg"), ("Content-Length", "1")],
        body=PHOTO,
    ),
    "redirect": exchange(
        "/old-story",
        status=301,
        reason="Moved Permanently",
        response_headers=[("Location", "http://news.test/plain.html"), ("Content-Length", "0")],
        body=b"",
    ),
}


def ts(capture: Capture) -> str:
    return f"{capture.date:%Y%m%d%H%M%S}"


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory):
    """A WARC folder with every case (and a revisit, in a second file), served by pywb."""
    try:
        python = ensure_pywb()
    except PywbUnavailable as err:
        unavailable("PYWB", f"pywb cannot be installed here: {err}")
    root = tmp_path_factory.mktemp("replay")
    folder = root / "warcs"
    with WarcStore(folder, clock=lambda: T0) as store:
        captures = {name: store.write(ex) for name, ex in CASES.items()}
    first = captures["image"]
    later = replace(CASES["image"], started=T0 + timedelta(days=1))
    with WarcStore(folder, clock=lambda: later.started) as store:
        captures["revisit"] = store.write(
            later,
            prior=PriorCapture(first.url, first.date, first.payload_digest, first.record_id),
        )
    assert captures["revisit"].record_type == "revisit"
    assert len(list(folder.rglob("*.warc.gz"))) == 2
    with wayback(python, pywb_collection_config(folder, "news"), root / "pywb") as port:
        yield port, captures


@pytest.mark.parametrize("name", ["plain", "gzip", "brotli", "chunked", "image"])
def test_replay_gives_back_the_exact_bytes(replay, name: str) -> None:
    port, captures = replay
    capture, sent = captures[name], CASES[name]
    response = get(port, f"/news/{ts(capture)}id_/{capture.url}", BROWSER)
    body = response.read()
    assert response.status == 200
    assert body == sent.body
    assert response.getheader("Content-Encoding") == dict(sent.response_headers).get(
        "Content-Encoding"
    )


def test_revisit_replays_the_original_payload(replay) -> None:
    port, captures = replay
    revisit = captures["revisit"]
    response = get(port, f"/news/{ts(revisit)}id_/{revisit.url}", BROWSER)
    assert response.status == 200
    assert response.read() == PHOTO
    assert response.getheader("Memento-Datetime") == "Fri, 27 Nov 2026 10:15:00 GMT"


def test_redirect_replays_as_a_redirect(replay) -> None:
    port, captures = replay
    capture = captures["redirect"]
    response = get(port, f"/news/{ts(capture)}id_/{capture.url}", BROWSER)
    response.read()
    assert response.status == 301
    assert response.getheader("Location").endswith("http://news.test/plain.html")


def test_timemap_lists_every_capture(replay) -> None:
    port, captures = replay
    response = get(port, "/news/timemap/link/http://news.test/photo.jpg")
    timemap = response.read().decode()
    assert response.status == 200
    for capture in (captures["image"], captures["revisit"]):
        assert f"/news/{ts(capture)}mp_/http://news.test/photo.jpg" in timemap
