"""Accepted HTTP status codes in lychee's `--accept` syntax.

Syntax (same as lychee, so configs migrate as they are): a comma-separated list of
items, each a single code (``403``), an inclusive range (``200..=299``), an
exclusive range (``200..300``) or a range open at the start (``..=299``, ``..300``,
which starts at 100). Whitespace around items is ignored. Codes are 100..=999.

The set is stored as merged inclusive intervals, so membership is cheap and the
canonical text (``str()``) is stable: it is what a run records among its options.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

MIN_CODE = 100
MAX_CODE = 999

_ITEM = re.compile(r"^(?:(?P<single>\d{3})|(?P<start>\d{3})?\.\.(?P<incl>=?)(?P<end>\d{3}))$")


class AcceptRangeError(ValueError):
    """An `--accept` value that is not lychee's range syntax (message says which item)."""


@dataclass(frozen=True, slots=True)
class AcceptRanges:
    """A set of accepted status codes, as sorted, merged, inclusive intervals."""

    intervals: tuple[tuple[int, int], ...]

    @classmethod
    def default(cls) -> AcceptRanges:
        """2xx only: redirects are followed, so a final 3xx is not success."""
        return cls(((200, 299),))

    @classmethod
    def parse(cls, text: str) -> AcceptRanges:
        """Parse ``"200..=299, 403"``; raise AcceptRangeError naming the bad item."""
        spans: list[tuple[int, int]] = []
        items = [item.strip() for item in text.split(",")]
        if not any(items):
            raise AcceptRangeError("empty --accept value: give codes like 200..=299,403")
        for item in items:
            if not item:
                raise AcceptRangeError(f"empty item in --accept value {text!r}")
            spans.append(_parse_item(item))
        return cls.from_spans(spans)

    @classmethod
    def from_spans(cls, spans: Iterable[tuple[int, int]]) -> AcceptRanges:
        """Build from inclusive (low, high) pairs, merging overlaps and neighbours."""
        merged: list[list[int]] = []
        for low, high in sorted(spans):
            if merged and low <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], high)
            else:
                merged.append([low, high])
        return cls(tuple((low, high) for low, high in merged))

    def __contains__(self, code: object) -> bool:
        if not isinstance(code, int):
            return False
        return any(low <= code <= high for low, high in self.intervals)

    def __bool__(self) -> bool:
        return bool(self.intervals)

    def codes(self) -> list[int]:
        """Every accepted code, in order (small: at most 900)."""
        return [code for low, high in self.intervals for code in range(low, high + 1)]

    def __str__(self) -> str:
        return ",".join(
            str(low) if low == high else f"{low}..={high}" for low, high in self.intervals
        )


def _parse_item(item: str) -> tuple[int, int]:
    match = _ITEM.match(item)
    if match is None:
        raise AcceptRangeError(
            f"invalid --accept item {item!r}: use a code (403), an inclusive range "
            f"(200..=299) or an exclusive one (200..300)"
        )
    if match["single"]:
        code = _code(match["single"], item)
        return code, code
    low = _code(match["start"], item) if match["start"] else MIN_CODE
    high = _code(match["end"], item)
    if not match["incl"]:
        high -= 1
    if high < low:
        raise AcceptRangeError(f"empty --accept range {item!r}: the end is before the start")
    return low, high


def _code(digits: str, item: str) -> int:
    code = int(digits)
    if not MIN_CODE <= code <= MAX_CODE:
        raise AcceptRangeError(f"status code {code} in {item!r} is outside 100..=999")
    return code
