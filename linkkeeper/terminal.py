"""Text from posts and servers reaches the user's terminal inert.

A post's file name, a title, a server's reason phrase or an error message can hold control
characters: ``ESC ] 0 ; … BEL`` retitles the terminal, ``ESC [ 2 J`` clears it, a lone
``CR`` overwrites what was printed. When standard output or error is a terminal, `main()`
wraps it in `TerminalSafe`, which writes every control character but tab and newline as a
visible ``\\xNN``. linkkeeper's own live lines start with ``\\r`` (and ``ESC [ K``, clear to
the end of the line): kept at the start of a write, where data never comes first. The
rich progress bar draws on `unfiltered`, the stream itself: it prints only counts.
"""

from __future__ import annotations

import re
from typing import Any, TextIO

__all__ = ["TerminalSafe", "inert", "unfiltered"]

# C0 controls but tab and newline, DEL, and the C1 controls (a terminal may act on them too)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_OWN_LEAD = re.compile(r"\r(?:\x1b\[K)?")  # what linkkeeper's live lines start with


def inert(text: str) -> str:
    """``text`` with every control character but tab and newline written as ``\\xNN``."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


class TerminalSafe:
    """A text stream to a terminal that writes control characters as text (see the module)."""

    def __init__(self, stream: TextIO) -> None:
        self.unfiltered = stream

    def write(self, text: str) -> int:
        lead = _OWN_LEAD.match(text)
        start = lead.end() if lead else 0
        self.unfiltered.write(text[:start] + inert(text[start:]))
        return len(text)

    def __getattr__(self, name: str) -> Any:  # encoding, errors, buffer, flush, isatty, ...
        return getattr(self.unfiltered, name)


def unfiltered(stream: Any) -> Any:
    """The stream under a `TerminalSafe` (for the progress bar's own drawing), else itself."""
    return getattr(stream, "unfiltered", stream)
