"""Live progress on standard error: a rich bar on a terminal, plain lines in logs.

Every number shown must be true: the rate is a moving one (the last ~30 s), measured
from the first result (not from the start of the scan that came before), and no ETA
is given until enough URLs and time have passed for it to mean something. The last
line printed is the last state reported, so it agrees with the summary.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Callable
from typing import IO, Any

from linkkeeper.terminal import unfiltered

ETA_MIN_DONE = 20  # URLs finished before an ETA is shown
ETA_MIN_SECONDS = 3.0  # seconds of checking before an ETA is shown
RATE_WINDOW = 30.0  # seconds the moving rate looks back


class Rate:
    """A moving rate over the last `window` seconds of (time, done) samples."""

    def __init__(self, window: float = RATE_WINDOW, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self.window = window
        self.clock = clock
        self.samples: deque[tuple[float, int]] = deque()
        self.first: float | None = None
        self.base = 0  # URLs already done at the first sample (a resumed run's)

    def add(self, done: int) -> None:
        now = self.clock()
        if self.first is None:  # the run's start: a resumed run's earlier work is no rate
            self.first, self.base = now, done
        self.samples.append((now, done))
        while len(self.samples) > 2 and now - self.samples[1][0] > self.window:
            self.samples.popleft()

    def per_second(self) -> float:
        if len(self.samples) < 2:
            return 0.0
        (t0, d0), (t1, d1) = self.samples[0], self.samples[-1]
        return (d1 - d0) / (t1 - t0) if t1 > t0 else 0.0

    def eta(self, done: int, total: int) -> float | None:
        """Seconds left, or None while too little is known."""
        if self.first is None or done - self.base < ETA_MIN_DONE:
            return None
        if self.clock() - self.first < ETA_MIN_SECONDS:
            return None
        rate = self.per_second()
        return (total - done) / rate if rate > 0 else None


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
                 interval: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = unfiltered(stream or sys.stderr)  # a bar of counts: its codes are its own
        self.quiet = quiet
        self.interval = interval
        self.clock = clock
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.rate = Rate(clock=clock)
        self._last_line: float | None = None
        self._last: tuple[int, int, dict[str, int]] | None = None  # last state reported
        self._printed: tuple[int, int] | None = None  # last (done, total) printed
        self._bar: Any = None
        self._task: Any = None
        if not quiet and self.tty:
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn

            self._bar = live_bar(
                self.stream,
                TextColumn("checking"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}/s"),
                TextColumn("{task.fields[eta]}"),
                TextColumn("{task.fields[counts]}"),
            )
            self._task = self._bar.add_task("check", total=None, rate="0", eta="", counts="")

    def update(self, done: int, total: int, counts: dict[str, int]) -> None:
        if self.quiet:
            return
        self.rate.add(done)
        self._last = (done, total, dict(counts))
        if self._bar is not None:
            eta = self.rate.eta(done, total)
            self._bar.update(self._task, completed=done, total=total,
                             rate=f"{self.rate.per_second():.0f}",
                             eta="" if eta is None else f"eta {_duration(eta)}",
                             counts=_counts(counts))
            return
        now = self.clock()
        if self._last_line is None or now - self._last_line >= self.interval or done == total:
            self._last_line = now
            self._print()

    def _print(self) -> None:
        assert self._last is not None
        done, total, counts = self._last
        eta = self.rate.eta(done, total)
        when = "" if eta is None or done >= total else f", eta {_duration(eta)}"
        print(f"[{done}/{total}] {self.rate.per_second():.0f} URLs/s{when}  {_counts(counts)}",
              file=self.stream, flush=True)
        self._printed = (done, total)

    def close(self) -> None:
        """Stop the bar; in logs, print the last state if the last line was older."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        elif not self.quiet and self._last is not None and self._printed != self._last[:2]:
            self._print()


class TransferProgress:
    """Bytes copied (export): a rich bar on a terminal, a line every `interval` s in logs.

    Call it as `progress(done_bytes, total_bytes, records, records_total)`; `close()` at the end.
    """

    def __init__(self, *, quiet: bool = False, stream: IO[str] | None = None,
                 interval: float = 5.0) -> None:
        self.stream = unfiltered(stream or sys.stderr)  # a bar of counts: its codes are its own
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


def _counts(counts: dict[str, int]) -> str:
    return " ".join(f"{k}:{v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))


def _duration(seconds: float) -> str:
    s = round(seconds)
    if s < 90:
        return f"{s}s"
    if s < 5400:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"
