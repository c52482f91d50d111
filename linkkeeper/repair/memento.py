"""Any Memento service (RFC 7089): an aggregator such as Time Travel, or one archive's own.

The TimeMap (``<base>timemap/link/<url>``, application/link-format) lists every
memento with its datetime: the one closest before the moment is taken, else the
earliest after. A service without TimeMaps is asked at its TimeGate
(``<base>timegate/<url>`` with ``Accept-Datetime``), whose redirect names the
memento it chose.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime

from linkkeeper.repair.copies import MEMENTO, Copy, Lookup, LookupUnavailable, Target
from linkkeeper.repair.politeness import PoliteClient

_LINK = re.compile(r'<([^>]*)>((?:\s*;\s*[\w.-]+\s*=\s*(?:"[^"]*"|[^;,<]*))*)')
_PARAM = re.compile(r'([\w.-]+)\s*=\s*(?:"([^"]*)"|([^;,<]*))')


def parse_link_format(text: str) -> list[tuple[str, dict[str, str]]]:
    """`<uri>; rel="memento"; datetime="…", …` -> [(uri, {param: value})] (commas inside
    quoted dates are fine)."""
    out = []
    for m in _LINK.finditer(text):
        params = {p.group(1).lower(): (p.group(2) if p.group(2) is not None else p.group(3)).strip()
                  for p in _PARAM.finditer(m.group(2))}
        out.append((m.group(1), params))
    return out


def mementos(text: str) -> list[tuple[datetime, str]]:
    found = []
    for uri, params in parse_link_format(text):
        if "memento" in params.get("rel", "").split() and params.get("datetime"):
            try:
                when = parsedate_to_datetime(params["datetime"])
            except (TypeError, ValueError):
                continue
            found.append((when if when.tzinfo else when.replace(tzinfo=UTC), uri))
    return sorted(found)


def choose(found: list[tuple[datetime, str]], moment: datetime | None) -> tuple[datetime, str] | None:
    if not found:
        return None
    if moment is None:
        return found[-1]
    before = [m for m in found if m[0] <= moment]
    return before[-1] if before else found[0]


def memento_lookup(base: str, client: PoliteClient) -> Lookup:
    base = base if base.endswith("/") else base + "/"

    def lookup(target: Target) -> Copy | None:
        moment = target.before
        answer = client.get(f"{base}timemap/link/{target.url}")
        if answer.status == 404:
            return None
        if answer.status == 200:
            chosen = choose(mementos(answer.body.decode("utf-8", "replace")), moment)
        else:
            chosen = _timegate(client, base, target.url, moment)
        if chosen is None:
            return None
        when, uri = chosen
        return Copy(MEMENTO, uri, when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))

    return lookup


def _timegate(client: PoliteClient, base: str, url: str,
              moment: datetime | None) -> tuple[datetime, str] | None:
    headers = {"Accept-Datetime": format_datetime(moment.astimezone(UTC), usegmt=True)} \
        if moment else {}
    answer = client.get(f"{base}timegate/{url}", headers)
    if answer.status == 404:
        return None
    if answer.status not in (200, 302, 303, 307):
        raise LookupUnavailable(f"Memento TimeGate answered {answer.status}")
    found = mementos(answer.headers.get("link", ""))
    location = answer.headers.get("location")
    if location and not any(uri == location for _, uri in found):
        when = answer.headers.get("memento-datetime")
        if when:
            found.append((parsedate_to_datetime(when), location))
    return choose(found, moment)
