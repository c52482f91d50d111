"""Commands of the export stage; they register themselves on the `linkkeeper` group."""

from __future__ import annotations

from linkkeeper.cli import cli  # noqa: F401
