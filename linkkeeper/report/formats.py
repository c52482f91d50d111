"""Machine-readable reports: Markdown, JSON, CSV, JUnit XML and SARIF 2.1.0.

All render the same `Report` (JSON also re-reads the per-link records of
`check --format json`, so both share one schema), and all stream to a text
file object. Text from posts and servers is data in every format: escaped for
Markdown, quoted for CSV (with spreadsheet-formula guards), stripped of the
control characters XML cannot carry.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Iterable
from typing import Any, TextIO
from urllib.parse import quote
from xml.etree import ElementTree as ET

import sqlite_utils

from linkkeeper import __version__
from linkkeeper.report.links import brief
from linkkeeper.report.model import CHANGE_NEW, LinkView, Report, is_web_url, occurrence_title
from linkkeeper.report.results import SPILL_POSTS, dump_record, link_records
from linkkeeper.vocab import State, Status

FORMATS = ("html", "markdown", "json", "csv", "junit", "sarif")
SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
SARIF_MAX_RESULTS = 25_000  # GitHub code scanning rejects more per run
MARKDOWN_BUDGET = 60_000  # GitHub comments stop at 65,536 characters

RULES: dict[str, tuple[str, str, str]] = {
    # status: (name, description, level)
    Status.BROKEN: ("BrokenLink", "The link is broken: 404/410, another definitive 4xx, a name "
                    "that does not resolve or a refused connection.", "error"),
    Status.SOFT_404: ("Soft404", "The link answers 200 but serves an error page or redirects "
                      "to the home page.", "error"),
    Status.TIMEOUT: ("LinkTimeout", "The server did not answer in time.", "warning"),
    Status.SERVER_ERROR: ("ServerError", "The server answered 5xx after retries.", "warning"),
    Status.TLS_ERROR: ("TlsError", "The TLS certificate or handshake failed.", "warning"),
    Status.NETWORK_ERROR: ("NetworkError", "The connection failed (reset, closed early...).",
                           "warning"),
}


# --- JSON -------------------------------------------------------------------------------------


def write_json(db: sqlite_utils.Database, report: Report, out: TextIO) -> None:
    """`check --format json`'s document plus a "report" object and per-link change/archive keys.

    Streamed: the records (results.link_records) and the report's links come in URL order
    and are merged as they come, so memory does not grow with the number of links."""
    out.write('{"run": ')
    out.write(json.dumps(report.run, ensure_ascii=False))
    out.write(', "report": ')
    out.write(json.dumps(report_header(report), ensure_ascii=False))
    out.write(', "links": [')
    first = True
    shown = brief(report.shown)  # only the change and archive keys are read from it
    link = next(shown, None)
    for rec in link_records(db, report.run.get("id"), spill=SPILL_POSTS):
        while link is not None and link.url < rec["url"]:
            link = next(shown, None)
        if link is None:
            break
        if link.url != rec["url"]:
            continue
        rec["change"] = link.change
        rec["baseline_status"] = link.baseline_status
        rec["archived"] = _archive_dict(link)
        rec["archived_copy"] = link.archive_label
        out.write("\n  " if first else ",\n  ")
        dump_record(rec, out)
        first = False
    out.write("\n]}\n")


def report_header(report: Report) -> dict[str, Any]:
    s = report.summary
    return {
        "generated_at": report.generated_at,
        "since": report.since,
        "baseline_run": report.baseline.get("id") if report.baseline else None,
        "degraded": report.degraded,  # why the run's failures do not count, or null
        "summary": {
            "links": s.links, "checked": s.checked, "alive": s.alive, "failing": s.failing,
            "dead": s.dead, "soft-404": s.soft_404, "drifted": s.drifted, "blocked": s.blocked,
            "flaky": s.flaky, "unchecked": s.unchecked, "newly_broken": s.newly_broken,
            "recovered": s.recovered, "live_with_capture": s.live_with_capture,
            "archive_coverage": s.archive_coverage,
        },
        "newly_broken": [lnk.url for lnk in report.newly_broken],
        "recovered": [lnk.url for lnk in report.recovered],
    }


def _archive_dict(link: LinkView) -> dict[str, Any] | None:
    if not link.archive:
        return None
    return {"timestamp": link.archive.timestamp, "date": link.archive.date,
            "warc_file": link.archive.warc_file, "href": link.archive.href(link.url),
            "source": link.archive.source}


# --- CSV --------------------------------------------------------------------------------------

CSV_COLUMNS = ("post", "post_title", "post_date", "line", "kind", "text", "url", "host", "status",
               "http_status", "reason", "state", "state_since", "failing_since", "last_ok",
               "checked_at", "change", "archived_copy", "archive_timestamp", "archive_label")


def _cell(value: Any) -> Any:
    """Keep spreadsheets from running post text as a formula (=, +, -, @ first)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def write_csv(report: Report, out: TextIO) -> None:
    """One row per link occurrence (a URL cited by three posts gives three rows)."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for link in report.shown:
        for occ in link.occurrences:
            title, pdate = occurrence_title(occ, report.post_meta)
            writer.writerow([
                occ.post, _cell(title), pdate, occ.line, occ.kind, _cell(occ.text), link.url,
                link.host, link.status, link.http_status, _cell(link.reason), link.state,
                link.state_since, link.failing_since, link.last_ok, link.checked_at,
                link.change or "", link.archive.href(link.url) if link.archive else "",
                link.archive.timestamp if link.archive else "",
                link.archive_label,
            ])


# --- JUnit ------------------------------------------------------------------------------------

_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _x(value: Any) -> str:
    return _XML_BAD.sub("\ufffd", "" if value is None else str(value))


def _cited_by(link: LinkView, report: Report) -> str:
    return "\n".join(
        f"{occ.post}:{occ.line or 1} ({occ.kind}) {occurrence_title(occ, report.post_meta)[0]}"
        for occ in link.occurrences
    )


def write_junit(report: Report, out: TextIO) -> None:
    """One test case per link (classname: host); broken/failing links fail, blocked ones skip."""
    suite = ET.Element("testsuite", name="linkkeeper links",
                       timestamp=_x(report.run.get("started_at")), hostname="linkkeeper")
    if (note := report.degraded_note()) is not None:
        props = ET.SubElement(suite, "properties")
        ET.SubElement(props, "property", name="degraded", value=_x(report.degraded))
        ET.SubElement(suite, "system-out").text = _x(note)
    tests = failures = skipped = 0
    for link in report.shown:
        tests += 1
        case = ET.SubElement(suite, "testcase", classname=_x(link.host or "(no host)"),
                             name=_x(link.url), file=_x(link.occurrences[0].post),
                             line=str(link.occurrences[0].line or 1))
        summary = f"{link.status}{f' {link.http_status}' if link.http_status else ''}: {link.reason}"
        if link.is_failure:
            failures += 1
            state = f" ({link.state}{f' since {link.failing_since}' if link.failing_since else ''})"
            fail = ET.SubElement(case, "failure", type=_x(link.status), message=_x(summary + state))
            fail.text = _x(f"{link.url}\n{summary}\narchived copy: {_copy_words(link)}\n"
                           f"cited by:\n{_cited_by(link, report)}")
        elif link.is_blocked or link.status in (Status.EXCLUDED, Status.INVALID) or \
                link.run_id is None:
            skipped += 1
            ET.SubElement(case, "skipped", message=_x(summary))
    suite.set("tests", str(tests))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    suite.set("skipped", str(skipped))
    root = ET.Element("testsuites", name="linkkeeper", tests=str(tests),
                      failures=str(failures), errors="0", skipped=str(skipped))
    root.append(suite)
    ET.indent(root)
    out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    out.write(ET.tostring(root, encoding="unicode"))
    out.write("\n")


# --- SARIF ------------------------------------------------------------------------------------


def sarif_document(report: Report, uri_prefix: str = "") -> dict[str, Any]:
    """SARIF 2.1.0: one result per bad link occurrence, located at the post file and line."""
    rule_ids = [str(s) for s in RULES]
    rules = [
        {"id": sid, "name": RULES[sid][0], "shortDescription": {"text": RULES[sid][1]},
         "defaultConfiguration": {"level": RULES[sid][2]},
         "properties": {"tags": ["links", "link-rot"]}}
        for sid in rule_ids
    ]
    results: list[dict[str, Any]] = []
    truncated = False
    for link in report.shown:
        if not link.is_failure:
            continue
        rule = link.status if link.status in RULES else Status.BROKEN
        level = "error" if link.state == State.DEAD else RULES[rule][2]
        for occ in link.occurrences:
            if len(results) >= SARIF_MAX_RESULTS:
                truncated = True
                break
            code = f" {link.http_status}" if link.http_status else ""
            text = (f"{occ.kind.capitalize()} link {link.url} is {link.status}{code}"
                    f" ({link.state}): {link.reason}.")
            if link.failing_since:
                text += f" Failing since {link.failing_since[:10]}."
            text += f" Archived copy: {_copy_words(link)}."
            results.append({
                "ruleId": str(rule),
                "ruleIndex": rule_ids.index(str(rule)),
                "level": level,
                "message": {"text": text},
                "locations": [{"physicalLocation": {
                    "artifactLocation": {"uri": sarif_uri(uri_prefix + occ.post),
                                         "uriBaseId": "%SRCROOT%"},
                    "region": {"startLine": max(1, occ.line or 1)},
                }}],
                "partialFingerprints": {
                    "linkkeeper/v1": hashlib.sha256(
                        f"{occ.post}\0{link.url}\0{occ.kind}".encode()).hexdigest()[:32],
                },
                "properties": {"url": link.url, "status": link.status, "state": link.state,
                               "kind": occ.kind, "httpStatus": link.http_status,
                               "newlyBroken": link.change == CHANGE_NEW},
            })
    run: dict[str, Any] = {
        "tool": {"driver": {"name": "linkkeeper", "version": __version__,
                            "informationUri": "https://github.com/linkkeeper/linkkeeper",
                            "rules": rules}},
        "automationDetails": {"id": f"linkkeeper/run-{report.run.get('id')}"},
        "results": results,
    }
    if truncated:
        run["properties"] = {"truncated": True, "note": f"only the first {SARIF_MAX_RESULTS} "
                             "results are listed"}
    if (note := report.degraded_note()) is not None:
        run.setdefault("properties", {})["degraded"] = report.degraded
        run["invocations"] = [{"executionSuccessful": False, "toolExecutionNotifications": [
            {"level": "warning", "message": {"text": note}}]}]
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}


def sarif_uri(path: str) -> str:
    """A post path as the relative URI reference SARIF requires (RFC 3986): spaces, CJK and
    `%` percent-encoded as UTF-8, `/` kept."""
    return quote(path, safe="/")


def write_sarif(report: Report, out: TextIO, uri_prefix: str = "") -> None:
    json.dump(sarif_document(report, uri_prefix), out, ensure_ascii=False, indent=1)
    out.write("\n")


# --- Markdown ---------------------------------------------------------------------------------

# Mid-line, only these can start markup (list and heading marks need a line start, and
# every piece of data here follows other text on its line).
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def md_text(value: Any) -> str:
    """Post and server text as inert Markdown: specials backslashed, HTML as entities."""
    text = " ".join(str(value or "").split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", text)


def md_code(value: str) -> str:
    """Text as an inert one-line code span: no backtick to close it, no line break to end the
    list item it sits in (a post's file name may hold both)."""
    return "`" + " ".join(value.replace("`", "'").split()) + "`"


def md_url(url: str) -> str:
    """Web URLs as autolinks; anything else (javascript:, data:...) as an inert code span."""
    if is_web_url(url) and not re.search(r"[\s<>]", url):
        return f"<{url}>"
    return md_code(url)


def _md_where(link: LinkView, report: Report, limit: int = 3) -> str:
    parts = [f"{md_text(occurrence_title(o, report.post_meta)[0])} "
             f"({md_code(f'{o.post}:{o.line or 1}')}, {o.kind})" for o in link.occurrences[:limit]]
    more = len(link.occurrences) - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def _md_status(link: LinkView) -> str:
    return f"**{link.status}{f' {link.http_status}' if link.http_status else ''}**"


def write_markdown(report: Report, out: TextIO) -> None:
    """A summary for a GitHub issue or pull-request comment: newly broken first."""
    s = report.summary
    base = f"run {report.baseline['id']}" if report.baseline else "the first run"
    lines = [
        f"## linkkeeper: {s.newly_broken} newly broken, {s.recovered} recovered "
        f"(run {report.run.get('id')} vs {base})",
        "",
        "| checked | alive | failing | dead | soft-404 | drifted | blocked | archive coverage |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {s.checked:,} | {s.alive:,} | {s.failing:,} | {s.dead:,} | {s.soft_404:,} | "
        f"{s.drifted:,} | {s.blocked:,} | {_coverage(s.archive_coverage)} |",
        "",
    ]
    if (note := report.degraded_note()) is not None:
        lines[1:1] = ["", f"> **Warning:** {md_text(note)}"]
    if report.host_failures:
        lines += [f"Hosts down in run {report.run.get('id')}: " + "; ".join(
            f"{md_text(h['host'])} ({h['links']} links, {md_text(h['reason'])})"
            for h in report.host_failures[:20]) + (
            f"; and {len(report.host_failures) - 20} more" if len(report.host_failures) > 20
            else "") + ".", ""]
    if report.since:
        lines += [f"Only links whose status changed since {md_text(report.since)}.", ""]
    budget = _Budget(MARKDOWN_BUDGET - sum(len(x) + 1 for x in lines))
    lines += _md_section(f"Newly broken ({s.newly_broken})", report.newly_broken, budget, lambda
                         lnk: f"- {_md_status(lnk)} {md_url(lnk.url)} — {md_text(lnk.reason)} · "
                         f"in {_md_where(lnk, report)}"
                         + f" · archived copy: {_md_copy(lnk)}")
    lines += _md_section(f"Recovered ({s.recovered})", report.recovered, budget, lambda lnk:
                         f"- {md_url(lnk.url)} (was {md_text(lnk.baseline_status)})")
    still = [p for p in report.posts if any(b.link.change != CHANGE_NEW for b in p.bad)]
    if still:
        lines += ["<details><summary>Still broken or failing, by post "
                  f"({len(still)} post{'s' * (len(still) != 1)})</summary>", ""]
        for post in still:
            block = [f"**{md_text(post.title)}** — {md_code(post.path)} "
                     f"({md_text(post.date[:10])})"]
            for bad in post.bad:
                lnk = bad.link
                since = f", failing since {lnk.failing_since[:10]}" if lnk.failing_since else ""
                block.append(f"- line {bad.occurrence.line or 1}, {bad.occurrence.kind}: "
                             f"{_md_status(lnk)} {md_url(lnk.url)} — {md_text(lnk.reason)}"
                             f"{since} · archived copy: {_md_copy(lnk)}")
            block.append("")
            if not budget.take(block):
                lines += ["…and more: see the HTML report or `--format csv`.", ""]
                break
            lines += block
        lines += ["</details>", ""]
    if not (report.newly_broken or report.recovered or still):
        lines += ["No link changed status." if report.since else "No broken or failing link.", ""]
    out.write("\n".join(lines).rstrip() + "\n")


def _copy_words(link: LinkView) -> str:
    """'ours 2024-11-19 archive/2024…/url', 'Wayback 2023-05-02 https://…', 'none anywhere'."""
    if not link.archive:
        return link.archive_label
    return f"{link.archive.label} {link.archive.href(link.url)}"


def _md_copy(link: LinkView) -> str:
    """The label, with the address when it is absolute (relative ones mean nothing in an
    issue comment)."""
    if link.archive and is_web_url(link.archive.href(link.url)):
        return f"{md_text(link.archive.label)} {md_url(link.archive.href(link.url))}"
    return md_text(link.archive_label)


class _Budget:
    def __init__(self, chars: int) -> None:
        self.left = chars

    def take(self, lines: Iterable[str]) -> bool:
        lines = list(lines)
        need = sum(len(x) + 1 for x in lines)
        if need > self.left:
            return False
        self.left -= need
        return True


def _md_section(title: str, links: list[LinkView], budget: _Budget, line: Any) -> list[str]:
    if not links:
        return []
    out = [f"### {title}", ""]
    budget.take(out)
    for i, link in enumerate(links):
        text = line(link)
        if not budget.take([text]):
            out.append(f"- …and {len(links) - i} more: see the HTML report.")
            break
        out.append(text)
    out.append("")
    return out


def _coverage(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"

