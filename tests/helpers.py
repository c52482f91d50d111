"""Helpers shared by the tests (imported as `helpers`: tests/ is on sys.path)."""

from __future__ import annotations

import os

import pytest


def unavailable(requirement: str, reason: str) -> None:
    """Skip a test whose environment is missing, or fail it where CI demands the environment.

    `.ci/run` sets LINKKEEPER_REQUIRE_BROWSER=1 and LINKKEEPER_REQUIRE_PYWB=1: there, a
    Chromium or pywb that cannot be had is a broken CI, not a reason to test less.
    """
    if os.environ.get(f"LINKKEEPER_REQUIRE_{requirement}", "") not in ("", "0"):
        pytest.fail(f"{reason} (LINKKEEPER_REQUIRE_{requirement} is set)", pytrace=False)
    pytest.skip(reason)
