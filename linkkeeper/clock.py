"""Timestamps as the database stores them: UTC, ISO 8601, one home for the conversions."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current moment, timezone-aware (naive datetimes never enter the history)."""
    return datetime.now(UTC)


def iso(moment: datetime | None) -> str | None:
    """Seconds precision, UTC offset spelled out: what every `*_at` column holds."""
    return moment.astimezone(UTC).isoformat(timespec="seconds") if moment else None


def iso_z(moment: datetime) -> str:
    """`iso` with UTC spelled `Z` (Robust Links' data-versiondate, archive lookups)."""
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_iso(value: str | None) -> datetime | None:
    """The inverse of `iso`; a value written without an offset is read as UTC."""
    if not value:
        return None
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
