"""Shared fixtures. The fault-injection web: a local server playing a misbehaving web on loopback."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from linkkeeper.faultweb import FaultWeb


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "faultweb(**kwargs): keyword arguments for the `faultweb` fixture's FaultWeb "
        "(e.g. latency={'news.example': (20, 100)})",
    )


@pytest.fixture(scope="session", autouse=True)
def _session_state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """$XDG_STATE_HOME for module and session fixtures (they start before `_own_state_dir`)."""
    saved = os.environ.get("XDG_STATE_HOME")
    os.environ["XDG_STATE_HOME"] = str(tmp_path_factory.mktemp("session-state"))
    yield
    if saved is None:
        os.environ.pop("XDG_STATE_HOME", None)
    else:
        os.environ["XDG_STATE_HOME"] = saved


@pytest.fixture(autouse=True)
def _own_state_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
                   ) -> None:
    """Each test its own $XDG_STATE_HOME: `check` remembers the last-used site there, and a
    test must neither read another's nor write the user's (subprocesses inherit it)."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))


@pytest.fixture
def faultweb(request: pytest.FixtureRequest) -> Iterator[FaultWeb]:
    """A fresh fault-injection web per test (starts in ~20 ms): counters and log start empty.

    Configure it with `@pytest.mark.faultweb(latency=..., default_latency=..., hosts=...)`.
    """
    marker = request.node.get_closest_marker("faultweb")
    options = dict(marker.kwargs) if marker else {}
    with FaultWeb(**options) as web:
        yield web


@pytest.fixture(scope="session")
def faultweb_session() -> Iterator[FaultWeb]:
    """One fault-injection web for the whole session; use distinct paths per test (counters persist)."""
    with FaultWeb() as web:
        yield web
