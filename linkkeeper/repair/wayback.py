"""The Internet Archive's Wayback Machine, asked through its CDX API the way IABot asks.

First the capture closest *before* the moment (the post's date, else the first
failure) among answers 200/203/206 — what the author saw, not a later error
page; when there is none, the first good one *after*. The copy is the replay
URL ``<base>web/<timestamp>/<original>``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import urlencode

from linkkeeper.repair.copies import WAYBACK, Copy, Lookup, LookupUnavailable, Target
from linkkeeper.repair.politeness import PoliteClient

GOOD_STATUSES = "statuscode:(200|203|206)"


def _query(base: str, url: str, **extra: str) -> str:
    params = [("url", url), ("output", "json"), ("fl", "timestamp,original,statuscode"),
              ("filter", GOOD_STATUSES), *extra.items()]
    return f"{base}cdx/search/cdx?{urlencode(params)}"


def _rows(client: PoliteClient, query: str) -> list[list[str]]:
    answer = client.get(query)
    if answer.status == 404:
        return []
    if answer.status != 200:
        raise LookupUnavailable(f"Wayback CDX answered {answer.status}")
    try:
        data = json.loads(answer.body or b"[]")
    except ValueError:
        raise LookupUnavailable("Wayback CDX answered something that is not JSON") from None
    return [row for row in data[1:] if isinstance(row, list) and len(row) >= 3]


def closest_capture(client: PoliteClient, base: str, url: str,
                    moment: datetime | None) -> tuple[str, str, int] | None:
    """(timestamp, original, status) closest before `moment`, else the first after."""
    base = base if base.endswith("/") else base + "/"
    if moment is None:
        rows = _rows(client, _query(base, url, limit="-1"))
        return _row(rows[-1]) if rows else None
    stamp = moment.astimezone(UTC).strftime("%Y%m%d%H%M%S")
    rows = _rows(client, _query(base, url, to=stamp, limit="-1"))
    if rows:
        return _row(rows[-1])
    rows = _rows(client, _query(base, url, **{"from": stamp, "limit": "1"}))
    return _row(rows[0]) if rows else None


def _row(row: list[str]) -> tuple[str, str, int]:
    status = int(row[2]) if str(row[2]).isdigit() else 200
    return str(row[0]), str(row[1]), status


def wayback_lookup(base: str, client: PoliteClient) -> Lookup:
    base = base if base.endswith("/") else base + "/"

    def lookup(target: Target) -> Copy | None:
        found = closest_capture(client, base, target.url, target.before)
        if found is None:
            return None
        stamp, original, status = found
        when = datetime.strptime(stamp[:14].ljust(14, "0"), "%Y%m%d%H%M%S")
        return Copy(WAYBACK, f"{base}web/{stamp}/{original or target.url}",
                    when.strftime("%Y-%m-%dT%H:%M:%SZ"), status)

    return lookup
