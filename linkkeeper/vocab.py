"""The vocabulary of the whole tool (ARCHITECTURE.md, "Vocabulary"): link kinds, check statuses, link states.

Every module speaks these words; they are also the strings stored in SQLite and
printed in reports, so they never change spelling.
"""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    """Why a post cites a URL."""

    SOURCE = "source"  # front matter source URL and the title link to it
    IMAGE = "image"  # img src/srcset, links to image files
    RELATED = "related"  # links in a related-stories list
    INLINE = "inline"  # other links in the text
    EMBED = "embed"  # iframe, video, audio, script


class Status(StrEnum):
    """Outcome of one check of one URL."""

    OK = "ok"
    REDIRECTED = "redirected"
    BROKEN = "broken"
    SOFT_404 = "soft-404"
    TIMEOUT = "timeout"
    SERVER_ERROR = "server-error"
    RATE_LIMITED = "rate-limited"
    BLOCKED = "blocked"
    TLS_ERROR = "tls-error"
    NETWORK_ERROR = "network-error"
    INVALID = "invalid"
    EXCLUDED = "excluded"

    @property
    def is_alive(self) -> bool:
        return self in (Status.OK, Status.REDIRECTED)

    @property
    def is_failure(self) -> bool:
        """Evidence that the link may be gone (what can make a link dead over time)."""
        return self in FAILURES


FAILURES = frozenset(
    {
        Status.BROKEN,
        Status.SOFT_404,
        Status.TIMEOUT,
        Status.SERVER_ERROR,
        Status.TLS_ERROR,
        Status.NETWORK_ERROR,
    }
)
# Not evidence of death, but not success either: reported as what they are.
INCONCLUSIVE = frozenset({Status.BLOCKED, Status.RATE_LIMITED})


class State(StrEnum):
    """A link's state over time, derived from its check history."""

    ALIVE = "alive"
    FAILING = "failing"
    DEAD = "dead"
    FLAKY = "flaky"
    DRIFTED = "drifted"
    RECOVERED = "recovered"
    BLOCKED = "blocked"  # only ever refused access: we cannot tell
    UNCHECKED = "unchecked"
