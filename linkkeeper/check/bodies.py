"""Reading captured bodies within the run's memory budget: in memory, or spooled to disk.

A capture reads a whole body (up to ``capture_max_bytes``, 50 MiB by default) and the
archiver may write it seconds later, after the result has waited in the checker's and
the archiver's queues. Held in memory, 16 endless bodies took a run to 1.3 GB. Here every
body reader first reserves the bytes it wants to keep in memory from the run's one
:class:`ByteBudget` (``--memory-budget``, default 256 MiB); a body longer than
``IN_MEMORY_MAX``, or one the budget cannot take, goes to an unnamed temporary file in the
WARC folder instead (the same disk the WARC will take it to; nothing is left behind by a
crash, the file has no name). The bytes stay exactly those received: the spool is a copy,
its digest computed as it is written.

The budget never makes a reader wait: a reader that cannot reserve spills to disk, so no
reader can hold up another (a waiting reader would keep its connection and its host slot
while the results holding the budget wait behind it in the queues). Bytes not reserved:
at most ``SPOOL_BATCH`` per spilling reader (written to the spool in a worker thread, the
event loop never waits on the disk) and the stream reader's own buffer.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
import threading
from pathlib import Path
from typing import BinaryIO

import aiohttp

from linkkeeper.exchange import CapturedBody, sha1_text

IN_MEMORY_MAX = 1 << 20  # a longer body is always spooled
SPOOL_BATCH = 1 << 18  # bytes gathered before a write to the spool
_READ = 1 << 16


class ByteBudget:
    """Bytes the run's captured bodies may hold in memory, all readers together.

    Like a semaphore counting bytes, but `try_reserve` never waits (see the module
    docstring). Thread-safe: bodies are released from the WARC writer's thread too.
    """

    def __init__(self, limit: int) -> None:
        self.limit = max(0, limit)
        self.held = 0
        self.peak = 0  # most bytes held at once (for tests and the benchmarks)
        self._lock = threading.RLock()  # a finalizer may release while this thread holds it

    def try_reserve(self, count: int) -> bool:
        with self._lock:
            if self.held + count > self.limit:
                return False
            self.held += count
            self.peak = max(self.peak, self.held)
            return True

    def release(self, count: int) -> None:
        with self._lock:
            self.held -= count


class _Spool:
    """The unnamed temporary file a body spills to; the sha1 of what was written."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self.file: BinaryIO | None = None
        self.size = 0
        self.sha1 = hashlib.sha1()
        self.error: OSError | None = None

    def write(self, pieces: list[bytes]) -> None:
        """In a worker thread; on a write error the spool keeps what was written."""
        try:
            if self.file is None:
                if self.folder is not None:
                    self.folder.mkdir(parents=True, exist_ok=True)
                self.file = tempfile.TemporaryFile(  # noqa: SIM115 - the body owns it
                    dir=self.folder, prefix=".linkkeeper-spool-", buffering=0
                )
            for piece in pieces:
                view = memoryview(piece)
                while view:
                    written = os.write(self.file.fileno(), view)
                    self.sha1.update(view[:written])
                    self.size += written
                    view = view[written:]
        except OSError as error:
            where = self.folder or Path(tempfile.gettempdir())
            self.error = OSError(error.errno, error.strerror, str(where))

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


async def read_capture(
    content: aiohttp.StreamReader, limit: int, budget: ByteBudget, folder: Path | None
) -> tuple[CapturedBody, bool]:
    """Read at most `limit` bytes of a body; complete=True when it ended within the limit.

    A spool that cannot be written (disk full) ends the body where the disk did:
    complete=False, so the capture is marked truncated and the transfer stopped.
    """
    chunks: list[bytes] = []
    reserved = size = 0
    spool: _Spool | None = None
    pending: list[bytes] = []
    try:
        while size < limit:
            chunk = await content.read(min(limit - size, _READ))
            if not chunk:
                break
            size += len(chunk)
            if spool is None and size <= IN_MEMORY_MAX and budget.try_reserve(len(chunk)):
                reserved += len(chunk)
                chunks.append(chunk)
                continue
            if spool is None:  # spill: what was kept in memory goes first
                spool, pending, chunks = _Spool(folder), chunks, []
                budget.release(reserved)
                reserved = 0
            pending.append(chunk)
            if sum(map(len, pending)) >= SPOOL_BATCH:
                await asyncio.to_thread(spool.write, pending)
                pending = []
                if spool.error is not None:
                    break
        complete = size < limit or await _ended(content, limit)
        if spool is None:
            data = b"".join(chunks)
            held = reserved
            return CapturedBody(
                data=data, size=len(data), digest=sha1_text(hashlib.sha1(data)),
                release=(lambda: budget.release(held)) if held else None,
            ), complete
        if pending and spool.error is None:
            await asyncio.to_thread(spool.write, pending)
        body = CapturedBody(
            data=b"" if spool.file is None else None, file=spool.file, size=spool.size,
            digest=sha1_text(spool.sha1),
        )
        return body, complete and spool.error is None
    except BaseException:
        budget.release(reserved)
        if spool is not None:
            spool.close()
        raise


async def _ended(content: aiohttp.StreamReader, limit: int) -> bool:
    """A body read up to the limit: did it end there? (one more byte tells)."""
    if content.at_eof():
        return True
    return not (await content.read(1) if limit else b"")
