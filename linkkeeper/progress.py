"""Live progress on standard error: a rich bar on a terminal, plain lines in logs."""

from __future__ import annotations

import sys
import time
from typing import IO, Any


def live_bar(stream: IO[str], *columns: Any) -> Any:
    """A started, transient rich progress bar on `stream` (imported only on a terminal)."""
    from rich.console import Console
    from rich.progress import Progress

    bar = Progress(*columns, console=Console(file=stream), transient=True)
    bar.start()
    return bar


class ProgressReporter:
    """Call `update(done, total, counts)` as results arrive; `close()` at the end."""

    def __init__(self, *, quiet: bool = False, stream: IO[str] | None = None,
                 interval: float = 5.0) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.interval = interval
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.started = time.monotonic()
        # URLs already done when this process began (a resumed run): not part of the rate
        self._baseline: int | None = None
        self._last_line = 0.0
        self._bar: Any = None
        self._task: Any = None
        if not quiet and self.tty:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeRemainingColumn,
            )

            self._bar = live_bar(
                self.stream,
                TextColumn("checking"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}/s"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[counts]}"),
            )
            self._task = self._bar.add_task("check", total=None, rate="0", counts="")

    def update(self, done: int, total: int, counts: dict[str, int]) -> None:
        if self.quiet:
            return
        if self._baseline is None:
            self._start(done, total)
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = (done - (self._baseline or 0)) / elapsed
        summary = " ".join(f"{k}:{v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))
        if self._bar is not None:
            self._bar.update(self._task, completed=done, total=total, rate=f"{rate:.0f}",
                             counts=summary)
            return
        now = time.monotonic()
        if now - self._last_line >= self.interval or done == total:
            self._last_line = now
            eta = (total - done) / rate if rate > 0 else 0
            print(f"[{done}/{total}] {rate:.0f} URLs/s, eta {eta:.0f}s  {summary}",
                  file=self.stream, flush=True)

    def _start(self, done: int, total: int) -> None:
        """The first update: what a resumed run had finished before is the baseline.

        The rate and the ETA count only URLs finished in this process; the bar starts at
        `done` without counting the jump as progress (rich estimates from its samples).
        """
        self._baseline = done
        self.started = self._last_line = time.monotonic()
        if self._bar is not None:
            self._bar.reset(self._task, total=total, completed=done)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


class TransferProgress:
    """Bytes copied (export): a rich bar on a terminal, a line every `interval` s in logs.

    Call it as `progress(done_bytes, total_bytes, records, records_total)`; `close()` at the end.
    """

    def __init__(self, *, quiet: bool = False, stream: IO[str] | None = None,
                 interval: float = 5.0) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.interval = interval
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.started = self._last = time.monotonic()
        self._bar: Any = None
        self._task: Any = None

    def __call__(self, done: int, total: int, records: int, records_total: int) -> None:
        if self.quiet:
            return
        if self.tty:
            if self._bar is None:
                from rich.progress import (
                    BarColumn,
                    DownloadColumn,
                    TextColumn,
                    TimeRemainingColumn,
                    TransferSpeedColumn,
                )

                self._bar = live_bar(self.stream, TextColumn("exporting"), BarColumn(),
                                     DownloadColumn(), TransferSpeedColumn(),
                                     TimeRemainingColumn())
                self._task = self._bar.add_task("export", total=total)
            self._bar.update(self._task, completed=done, total=total)
            return
        now = time.monotonic()
        if now - self._last >= self.interval or records == records_total:
            self._last = now
            rate = done / max(now - self.started, 1e-6) / 1e6
            print(f"[{records}/{records_total} captures] {done / 1e6:.1f}/{total / 1e6:.1f}"
                  f" MB, {rate:.1f} MB/s", file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
