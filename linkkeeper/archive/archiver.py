"""The archiving stage: capture live pages and images into WARC files, once per change.

An :class:`Archiver` rides along a check run (``audit.run_audit_async``) or the
``snapshot`` command. It decides which URLs are *due* for a snapshot, gives the
checker its ``capture`` predicate (so a due URL is fetched once, with GET, and that
same exchange is archived: no second fetch), and writes what comes back through
:class:`~linkkeeper.archive.warc.WarcStore`, recording each capture in the ``snapshots`` table.

Due for a snapshot, among URLs cited with one of the archived kinds (default
``source``, ``related``, ``image``; ``inline``/``embed`` opt-in):

* never captured;
* last capture older than ``max_age`` (``None``, the default: every run, so a change is
  never missed; an unchanged body costs a ``revisit`` record of a few hundred bytes);
* content changed: when ``max_age`` spares a URL its GET, a HEAD check that reports a
  Content-Length or Content-Type different from its last capture queues a capture GET at
  the end of the run.

Only exchanges of a *live* result (``ok`` or ``redirected``) are written: every hop of
the redirect chain, then the final page, so replay follows the same chain. A body equal
to the URL's last capture becomes a ``revisit`` record.

Order of writes, for crash safety: a record is written and flushed by the store before
its ``snapshots`` row exists, and rows are committed in batches afterwards, so after a
kill -9 every row points at a complete record (which the next run's repair keeps); at
worst the last batch of records has no row and is simply captured again.

The store's writes are blocking file I/O: they run in a worker thread, fed by a bounded
queue, so the event loop never blocks on disk and a slow disk slows the checker instead
of filling memory. Results already waiting go to the thread together (up to 16 per trip):
every trip, and every time the worker waits for the GIL, is a hand-over between threads,
and on the capture benchmark one result per trip cost about 0.6 ms of CPU per capture in
futex calls alone.

Memory: the bodies of queued results are held against the run's memory budget or wait in
spool files (check/bodies.py); each result's bodies are released as soon as it is written
or dropped. A spooled body is streamed into the WARC (compress.py), never read whole.

A write error (a full disk, a quota, an I/O error) pauses archiving for the rest of the
run: the store has cut the file back to its last whole capture and the file is left
``.open`` (the next run's repair closes and indexes it), ``ArchiveCounts.paused`` says
"archiving paused at N captures: PATH: reason" (in the summary and the run's JSON record),
no more captures are asked for, and checking goes on to the end.

``respect_robots`` (off by default, like the Internet Archive's own policy: a link
audit archives what a post cites, a reader's request rather than a crawl) fetches each
origin's robots.txt once per run through the checker's own session and politeness, and
then neither captures nor writes what it disallows. RFC 9309 semantics: 4xx means no
rules, 5xx or no answer means everything is disallowed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlite_utils
from protego import Protego
from yarl import URL

from linkkeeper.archive.records import header_value
from linkkeeper.archive.snapshots import (
    Capture,
    PriorCapture,
    checked_but_not_archived,
    insert_captures,
    latest_captures,
    latest_full_responses,
)
from linkkeeper.archive.warc import InvalidExchange, WarcStore, named
from linkkeeper.codings import decoded_prefix
from linkkeeper.db import Transaction
from linkkeeper.exchange import Exchange, body_head
from linkkeeper.vocab import Kind, Status

if TYPE_CHECKING:
    from linkkeeper.check.checker import Checker
    from linkkeeper.check.result import CheckResult

DEFAULT_KINDS: frozenset[str] = frozenset({Kind.SOURCE, Kind.RELATED, Kind.IMAGE})
DEFAULT_MAX_CAPTURE_BYTES = 50 * 2**20
DEFAULT_WARC_MAX_SIZE = 10**9
ROBOTS_MAX_BYTES = 500 * 1024  # what Google reads of a robots.txt; the rest is ignored
_QUEUE_SIZE = 32  # results waiting for the writer (their bodies within the memory budget)
_BATCH_MAX = 16  # results written per trip to the worker thread, at most
_FLUSH_SECONDS = 2.0


@dataclass
class ArchiveOptions:
    """What to capture and where; the CLI's archiving options map onto these fields."""

    folder: Path
    kinds: frozenset[str] = DEFAULT_KINDS
    max_age: timedelta | None = None  # re-capture after this; None = every run
    max_capture_bytes: int = DEFAULT_MAX_CAPTURE_BYTES
    warc_max_size: int = DEFAULT_WARC_MAX_SIZE
    respect_robots: bool = False
    operator: str | None = None
    user_agent: str = ""  # matched against robots.txt groups; the checker's User-Agent
    info: dict[str, str] = field(default_factory=dict)  # extra warcinfo fields
    batch_size: int = 200  # snapshot rows per transaction


@dataclass
class ArchiveCounts:
    """What a run wrote: the numbers the summaries and the JSON run record show."""

    captures: int = 0  # response records (redirect hops included)
    revisits: int = 0  # revisit records: body unchanged since the last capture
    truncations: int = 0  # captures cut at max_capture_bytes (WARC-Truncated: length)
    bytes_written: int = 0  # compressed WARC bytes of all records written
    urls: int = 0  # cited URLs archived (one per live result, however many hops)
    robots_disallowed: int = 0
    errors: int = 0  # exchanges that could not be written (see Archiver.problems)
    paused: str = ""  # why archiving stopped before the end of the run (a full disk)

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "captures": self.captures,
            "revisits": self.revisits,
            "truncations": self.truncations,
            "bytes_written": self.bytes_written,
            "urls": self.urls,
            "robots_disallowed": self.robots_disallowed,
            "errors": self.errors,
        }
        if self.paused:
            data["paused"] = self.paused
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ArchiveCounts:
        names = set(cls.__dataclass_fields__) - {"paused"}
        return cls(**{k: int(v) for k, v in data.items() if k in names},
                   paused=str(data.get("paused") or ""))


@dataclass(slots=True)
class _Last:
    """A URL's latest capture and the original a revisit of it must refer to."""

    date: datetime
    payload_length: int | None
    content_type: str | None
    http_status: int | None
    original: PriorCapture | None  # the last full (non-truncated) response


def parse_kinds(text: str | Iterable[str]) -> frozenset[str]:
    """ "source,related,image" (or a list of such) -> the kinds; ValueError on an unknown one."""
    parts = [text] if isinstance(text, str) else list(text)
    names = {p.strip().lower() for part in parts for p in part.split(",") if p.strip()}
    if "all" in names:
        return frozenset(Kind)
    unknown = names - {k.value for k in Kind}
    if unknown:
        raise ValueError(
            f"unknown link kind(s) {', '.join(sorted(unknown))}; "
            f"choose from {', '.join(k.value for k in Kind)} or all"
        )
    return frozenset(Kind(n) for n in names)


def _origin(url: str) -> str | None:
    try:
        parsed = URL(url)
        return (
            str(parsed.origin()) if parsed.absolute and parsed.scheme in ("http", "https") else None
        )
    except (ValueError, TypeError):
        return None


class Archiver:
    """Plans, captures and records snapshots for one run; see the module docstring.

    Use as ``async with Archiver(db, options, run_id=run.id) as archiver:``; call
    :meth:`plan` before the checker starts, give the checker :meth:`wants` as its capture
    predicate, ``await archiver.submit(result)`` for every result.
    """

    def __init__(
        self,
        db: sqlite_utils.Database,
        options: ArchiveOptions,
        *,
        run_id: int | None = None,
    ) -> None:
        self.db = db
        self.options = options
        self.run_id = run_id
        self.counts = ArchiveCounts()
        if run_id is not None:  # a resumed run keeps counting from what it had recorded
            row = db.execute("SELECT archive FROM runs WHERE id=?", [run_id]).fetchone()
            if row and row[0]:
                self.counts = ArchiveCounts.from_dict(json.loads(row[0]))
        self.problems: list[str] = []  # one line per exchange that could not be written
        self.disallowed: list[str] = []  # due URLs robots.txt kept out
        self.repair_messages: list[str] = []
        self.due: set[str] = set()
        self.captured: dict[str, list[Capture]] = {}  # cited URL -> records written
        self._candidates: set[str] = set()  # URLs of the archived kinds, due or not
        self._forced: set[str] = set()  # captured whatever the plan says (robots, follow-ups)
        self._last: dict[str, _Last] = {}
        self._looked_up: set[str] = set()  # URLs whose latest capture was read from the DB
        self._robots: dict[str, Protego | None] = {}  # origin -> rules (None: allow all)
        self._followups: list[str] = []
        self._store: WarcStore | None = None
        self._queue: asyncio.Queue[CheckResult | None] = asyncio.Queue(maxsize=_QUEUE_SIZE)
        self._writer: asyncio.Task[None] | None = None
        self._rows: list[Capture] = []
        self._last_flush = time.monotonic()
        self._write_error: OSError | None = None  # a write failed: archiving is paused

    # -- planning ------------------------------------------------------------------------------

    def plan(
        self, urls: Iterable[str], *, explicit: bool = False, now: datetime | None = None
    ) -> set[str]:
        """Decide which of `urls` are due for a snapshot (``explicit``: skip the kinds filter)."""
        wanted = list(dict.fromkeys(urls))
        unarchived = (
            checked_but_not_archived(self.db, self.run_id) if self.run_id is not None else []
        )
        known = set(wanted)
        wanted += [u for u in unarchived if u not in known]
        if not explicit:
            kinds = sorted(self.options.kinds)
            if not kinds:
                self.due = set()
                return self.due
            marks = ",".join("?" * len(kinds))
            cited = {
                row[0]
                for row in self.db.execute(
                    f"SELECT DISTINCT url FROM occurrences WHERE kind IN ({marks})", kinds
                )
            }
            wanted = [u for u in wanted if u in cited]
        self._load_last(wanted)
        now = now or datetime.now(UTC)
        max_age = self.options.max_age
        self.due = {
            url
            for url in wanted
            if url not in self._last or max_age is None or now - self._last[url].date >= max_age
        }
        self._candidates = set(wanted)
        # checked live before a crash, snapshot rows lost with it: captured again at the end
        self._followups = sorted(self.due & set(unarchived))
        self.due -= set(unarchived)
        return self.due

    def _load_last(self, urls: list[str]) -> None:
        """Latest capture per URL, and the response a revisit of it would refer to."""
        urls = [u for u in urls if u not in self._looked_up]
        self._looked_up.update(urls)
        originals = latest_full_responses(self.db, urls)
        for url, last in latest_captures(self.db, urls).items():
            self._last[url] = _Last(
                last.date, last.payload_length, last.content_type, last.http_status,
                originals.get(url),
            )

    def wants(self, url: str) -> bool:
        """The checker's capture predicate: GET this URL and hand back its raw exchanges?"""
        return not self.paused and (url in self.due or url in self._forced)

    @property
    def paused(self) -> str:
        """Why archiving stopped for the rest of the run ("" while it goes on)."""
        return self.counts.paused

    def prior_for(self, url: str) -> PriorCapture | None:
        """The capture a new, identical body of `url` would be a revisit of."""
        last = self._last.get(url) or self._last_from_db(url)
        return last.original if last else None

    def _last_from_db(self, url: str) -> _Last | None:
        """For hop URLs the plan did not know (redirect targets); asked once per URL (what
        this run writes is kept in ``_last`` as it goes)."""
        self._load_last([url])
        return self._last.get(url)

    # -- robots.txt ----------------------------------------------------------------------------

    async def load_robots(self, checker: Checker) -> None:
        """Fetch robots.txt of every origin with a due URL (once), drop what it disallows."""
        if not self.options.respect_robots:
            return
        origins = {o for o in (_origin(u) for u in self.due) if o and o not in self._robots}
        targets = {f"{origin}/robots.txt": origin for origin in origins}
        self._forced |= set(targets)
        try:
            async for result in checker.run(sorted(targets)):
                origin = targets.get(result.url)
                if origin is not None:
                    self._robots[origin] = _robots_rules(result)
        finally:
            self._forced -= set(targets)
        blocked = {url for url in self.due if not self.allowed(url)}
        self.disallowed.extend(sorted(blocked))
        self.counts.robots_disallowed += len(blocked)
        self.due -= blocked

    def allowed(self, url: str) -> bool:
        """robots.txt lets us capture `url` (always true without --respect-robots)."""
        if not self.options.respect_robots:
            return True
        origin = _origin(url)
        if origin is None or origin not in self._robots:
            return True  # an origin we never asked (a redirect target): no rules known
        rules = self._robots[origin]
        return True if rules is None else bool(rules.can_fetch(url, self.options.user_agent or "*"))

    # -- writing -------------------------------------------------------------------------------

    async def __aenter__(self) -> Archiver:
        await self.start()
        return self

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        await self.close(abort=exc_type is not None)

    async def start(self) -> None:
        """Open the store (repairing what a crashed run left) and start the writer."""
        info = {"robots": "obey" if self.options.respect_robots else "ignore"}
        if self.options.operator:
            info["operator"] = self.options.operator
        if self.options.user_agent:
            info["http-header-user-agent"] = self.options.user_agent
        info.update(self.options.info)
        try:
            self._store = await asyncio.to_thread(
                WarcStore, self.options.folder, max_file_size=self.options.warc_max_size,
                info=info,
            )
        except OSError as error:  # checking goes on without archiving
            self._pause(named(error, self.options.folder))
        else:
            self.repair_messages = list(self._store.repair_messages)
        self._writer = asyncio.create_task(self._write_loop())

    async def submit(self, result: CheckResult) -> None:
        """Hand over one check result; waits when the writer is behind (back-pressure)."""
        if self._writer is None:
            raise RuntimeError("use `async with Archiver(...)` (or start()) first")
        if self._writer.done():
            self._writer.result()  # the writer died: raise its error here
        self._note_change(result)
        if result.exchanges and result.status.is_alive and not self.paused:
            await self._queue.put(result)
        else:
            _release(result)  # not written: its bodies' memory and spool files go back

    def take_followups(self) -> list[str]:
        """URLs to capture after the check: a HEAD saw them change since their last capture,
        or a crash lost their snapshot rows (a resumed run does not check them again)."""
        urls, self._followups = self._followups, []
        self._forced |= set(urls)
        return urls

    def _note_change(self, result: CheckResult) -> None:
        """A spared URL (max_age) whose HEAD answer differs from its last capture is due."""
        url = result.url
        if (
            result.exchanges
            or url in self.due
            or url not in self._candidates
            or result.status is not Status.OK
            or result.redirects
            or not self.allowed(url)
        ):
            return
        last = self._last.get(url)
        if last is None or last.http_status != 200:
            return
        length_changed = (
            result.content_length is not None
            and last.payload_length is not None
            and result.content_length != last.payload_length
        )
        type_changed = bool(result.content_type and last.content_type) and (
            result.content_type != last.content_type
        )
        if length_changed or type_changed:
            self._followups.append(url)

    async def _write_loop(self) -> None:
        """Write queued results, several per trip to the worker thread when they wait.

        Each trip (and each wait of the worker for the GIL) is a hand-over between threads;
        taking what is already queued in one trip keeps them few when the writer is behind.
        A batch never holds two results that write the same URL, so the second still sees
        the first's capture as its prior (a revisit).
        """
        carried: CheckResult | None = None
        done = False
        while not done:
            first = carried if carried is not None else await self._queue.get()
            carried = None
            if first is None:
                break
            batch = [first]
            urls = {ex.url for ex in first.exchanges}
            while len(batch) < _BATCH_MAX and not self._queue.empty():
                more = self._queue.get_nowait()
                if more is None:
                    done = True
                    break
                hops = {ex.url for ex in more.exchanges}
                if hops & urls:
                    carried = more
                    break
                batch.append(more)
                urls |= hops
            jobs = []
            for result in batch:
                exchanges = [ex for ex in result.exchanges if self.allowed(ex.url)]
                jobs.append((exchanges, [self.prior_for(ex.url) for ex in exchanges]))
            try:
                written_all = await asyncio.to_thread(self._write_batch, jobs)
            finally:
                for result in batch:
                    _release(result)
            if self._write_error is not None and not self.paused:
                await self._pause_writing(self._write_error)
            for result, written in zip(batch, written_all, strict=True):
                for capture, prior in written:
                    self._count(capture, prior)
                if written and result.url not in self.captured:
                    self.counts.urls += 1
                if written:
                    self.captured.setdefault(result.url, []).extend(c for c, _ in written)
            if len(self._rows) >= self.options.batch_size or (
                time.monotonic() - self._last_flush > _FLUSH_SECONDS
            ):
                self.flush()

    def _write_batch(
        self, jobs: list[tuple[list[Exchange], list[PriorCapture | None]]]
    ) -> list[list[tuple[Capture, PriorCapture | None]]]:
        return [self._write_exchanges(exchanges, priors) for exchanges, priors in jobs]

    def _write_exchanges(
        self, exchanges: list[Exchange], priors: list[PriorCapture | None]
    ) -> list[tuple[Capture, PriorCapture | None]]:
        """In the worker thread: append each exchange to the WARC (flushed on return).

        After a write error (disk full) nothing more is written: the store cut the file
        back to its last whole capture, and the event loop pauses archiving.
        """
        written: list[tuple[Capture, PriorCapture | None]] = []
        for exchange, prior in zip(exchanges, priors, strict=True):
            if self._write_error is not None or self._store is None:
                break
            try:
                written.append((self._store.write(exchange, prior=prior), prior))
            except InvalidExchange as error:
                self.problems.append(f"{exchange.url}: not archived: {error}")
                self.counts.errors += 1
            except OSError as error:
                self._write_error = error
        return written

    async def _pause_writing(self, error: OSError) -> None:
        """Stop archiving for the rest of the run, the current file left `.open` whole
        (the next run's repair closes it); checking goes on."""
        store, self._store = self._store, None
        if store is not None:
            await asyncio.to_thread(store.abandon)
        self._pause(error)
        self.flush()  # the rows of what was written, and the pause, recorded now

    def _pause(self, error: OSError) -> None:
        written = self.counts.captures + self.counts.revisits
        where = f"{error.filename}: " if error.filename else ""
        self.counts.paused = (
            f"archiving paused at {written} captures: {where}{error.strerror or error}"
        )  # said in the run's archive summary (and its JSON record)

    def _count(self, capture: Capture, prior: PriorCapture | None) -> None:
        counts = self.counts
        counts.bytes_written += capture.bytes_written
        if capture.record_type == "revisit":
            counts.revisits += 1
        else:
            counts.captures += 1
        if capture.truncated:
            counts.truncations += 1
        original = prior if capture.record_type == "revisit" else None
        if capture.record_type == "response" and not capture.truncated:
            original = capture.as_prior()
        self._last[capture.url] = _Last(
            capture.date,
            capture.payload_length,
            capture.content_type,
            capture.http_status,
            original or (self._last[capture.url].original if capture.url in self._last else None),
        )
        self._rows.append(capture)

    def flush(self) -> None:
        """Commit the pending snapshot rows (their records are already flushed to the file)."""
        self._last_flush = time.monotonic()
        if not self._rows:
            return
        rows, self._rows = self._rows, []
        with Transaction(self.db) as conn:
            insert_captures(conn, rows, self.run_id)
            if self.run_id is not None:
                conn.execute(
                    "UPDATE runs SET archive=? WHERE id=?",
                    (json.dumps(self.counts.as_dict()), self.run_id),
                )

    async def close(self, *, abort: bool = False) -> None:
        """Write what is queued (unless aborting), commit the rows, close and index the file."""
        writer, self._writer = self._writer, None
        if writer is not None:
            if abort:
                writer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await writer
            else:
                await self._queue.put(None)
                await writer
        with contextlib.suppress(Exception) if abort else contextlib.nullcontext():
            self.flush()
        if self._store is not None:
            store, self._store = self._store, None
            try:
                await asyncio.to_thread(store.close)
            except OSError as error:  # what was written stays, repaired by the next run
                if not self.paused:
                    self._pause(error)
                    with contextlib.suppress(Exception) if abort else contextlib.nullcontext():
                        self.flush()

    @property
    def current_file(self) -> str | None:
        return self._store.current_file if self._store else None


def _robots_rules(result: CheckResult) -> Protego | None:
    """RFC 9309: 2xx -> its rules; 4xx -> no rules (None); 5xx or no answer -> disallow all."""
    code = result.http_status
    if code is not None and 400 <= code < 500:
        return None
    if code is None or code >= 500 or not result.status.is_alive:
        return Protego.parse("User-agent: *\nDisallow: /\n")
    final = result.exchanges[-1] if result.exchanges else None
    if final is None:
        return None
    encoding = header_value(final.response_headers, "Content-Encoding")
    head = body_head(final.body, 4 * ROBOTS_MAX_BYTES)  # decoded, at most ROBOTS_MAX_BYTES
    text = decoded_prefix(head, encoding, ROBOTS_MAX_BYTES).decode("utf-8", "replace")
    return Protego.parse(text)


def _release(result: CheckResult) -> None:
    for exchange in result.exchanges:
        exchange.release()


def with_capture(check_options: Any, archiver: Archiver) -> Any:
    """The checker's options with the archiver's predicate, size cap and spool folder
    (bodies past the memory budget wait on the disk the WARC files go to)."""
    return replace(
        check_options,
        capture=archiver.wants,
        capture_max_bytes=archiver.options.max_capture_bytes,
        spool_dir=archiver.options.folder,
    )
