"""A WARC file's CDXJ index made while the file is written, by cdxj-indexer in a child process.

Indexing a closed file means reading it back, after the last capture: at 3,000 pages (214 MB)
that was 0.6-1.0 s of CPU in the writing process, all of it after the fetching had ended.
:class:`LiveIndex` starts a child process when a file is opened; the child runs the same
cdxj-indexer (:func:`linkkeeper.archive.cdx.cdxj_indexer`, ``sort=True``, the same
``filename``) over the same bytes, read from the file as it grows, on the other core while
the capture goes on. When the file is closed, the child has little left to read; its lines
(byte for byte those of :func:`linkkeeper.archive.cdx.index_warc`, which reads the same
bytes from offset 0) are written to the index file by the writer, atomically as before.
As it reads every byte of the file once, the child also digests them (sha256 and CRC-32, the
file's digest sidecar, archive/digests.py), which the writer then need not do itself.

The writer starts the child once a file passes ``warc.LIVE_INDEX_FROM`` bytes (a smaller
file is indexed at close as before: a process costs more than reading it back); the child
reads from offset 0 all the same. It reads only what the writer says is whole: after each capture the store announces
its committed size (:meth:`LiveIndex.grow`, at most every ``_ANNOUNCE_BYTES``), never a
record being written or one a failed write is cut back from. It is handed a read-only
descriptor of the file (so the rename at close does not matter) and nothing else: no lock,
no other descriptor. Its control channel is its stdin; when that ends without a final
size (the writing process died, even by kill -9) the child exits without output, and the
``.open`` file is left to the next run's repair as before.

Anything unexpected (no child, a child that died or said something odd) makes
:meth:`LiveIndex.finish` return None and the writer indexes the closed file the old way:
the index is always cdxj-indexer's reading of the file.

The child: ``python -m linkkeeper.archive.live_index FD FILENAME``.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import threading
from pathlib import Path

from linkkeeper.archive.cdx import replacing
from linkkeeper.archive.digests import FileDigest, RunningDigest

_ANNOUNCE_BYTES = 1 << 20  # announce the committed size once it grew by this much
_PIPE_PIECE = 1 << 20
_FINISH_TIMEOUT = 300.0  # seconds the writer waits for the last lines before indexing itself
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])  # the folder holding `linkkeeper/`


class _ChildFailed(Exception):
    """The child's output is not a whole index of the file: it is not used."""


class LiveIndex:
    """The writing side: start the child, tell it the committed size, collect its lines."""

    def __init__(self, path: Path, warc_file: str) -> None:
        self._announced = 0
        self._proc: subprocess.Popen[bytes] | None = None
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH")) if p
            )
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "linkkeeper.archive.live_index", str(fd), warc_file],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                pass_fds=(fd,),
                env=env,
            )
        except OSError:
            self._proc = None
        finally:
            os.close(fd)
        if self._proc is not None and self._proc.stdin is not None:
            os.set_blocking(self._proc.stdin.fileno(), False)

    @property
    def alive(self) -> bool:
        return self._proc is not None

    def grow(self, size: int) -> None:
        """The file holds `size` whole bytes now (announced when it grew enough)."""
        if self._proc is not None and size - self._announced >= _ANNOUNCE_BYTES:
            self._send(f"size {size}\n", blocking=False)
            self._announced = size

    def _send(self, line: str, *, blocking: bool) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        fd = self._proc.stdin.fileno()
        try:
            if blocking:
                os.set_blocking(fd, True)
            os.write(fd, line.encode("ascii"))
        except BlockingIOError:
            pass  # the child is behind: a later (larger) size says the same and more
        except OSError:
            self.abandon()  # the child is gone: the file is indexed at close instead

    def finish(self, size: int, index: Path) -> FileDigest | None:
        """Write the index of the file, whole at `size` bytes, to `index` (streamed, renamed
        into place) and return the digest of those bytes (``mtime_ns`` 0: the caller's to
        set); None, and `index` untouched: index the file the old way."""
        proc = self._proc
        if proc is None:
            return None
        self._send(f"end {size}\n", blocking=True)
        if self._proc is None or proc.stdout is None:
            return None
        watchdog = threading.Timer(_FINISH_TIMEOUT, self._kill, (proc,))
        watchdog.start()
        try:
            fields = proc.stdout.readline().decode("ascii", "replace").split()
            if len(fields) != 4 or fields[0] != "#read" or int(fields[1]) != size:
                raise _ChildFailed(f"unexpected head {fields!r}")
            with replacing(index, "wb") as out:
                last = b"\n"
                while piece := proc.stdout.read(_PIPE_PIECE):
                    out.write(piece)
                    last = piece[-1:]
                if proc.wait() != 0 or last != b"\n":
                    raise _ChildFailed(f"exit {proc.returncode}")
        except (_ChildFailed, OSError, ValueError):
            self.abandon()
            return None
        finally:
            watchdog.cancel()
        self._proc = None
        proc.stdout.close()
        return FileDigest(size, fields[2], int(fields[3]))

    @staticmethod
    def _kill(proc: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(OSError):
            proc.kill()

    def abandon(self) -> None:
        """Stop the child without its lines (a failed write, an error): it exits at once."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError):
            proc.kill()
        with contextlib.suppress(OSError, ValueError, subprocess.TimeoutExpired):
            proc.communicate(timeout=10)


class _GrowingFile(io.RawIOBase):
    """The child's view of the file: its bytes up to the size last announced on `control`,
    waiting for more until the final size is known."""

    def __init__(self, fd: int, control: io.BufferedReader) -> None:
        self._fd = fd
        self._control = control
        self._pos = 0
        self._limit = 0
        self._final = False
        self.digest = RunningDigest()  # of every byte read (each is read once, in order)

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def read(self, size: int = -1) -> bytes:
        while self._pos >= self._limit:
            if self._final:
                return b""
            self._wait()
        want = self._limit - self._pos if size is None or size < 0 else size
        data = os.pread(self._fd, min(want, self._limit - self._pos), self._pos)
        if not data:
            raise OSError(f"the file ends at {self._pos}, before the {self._limit} announced")
        self._pos += len(data)
        self.digest.update(data)
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def _wait(self) -> None:
        line = self._control.readline()
        if not line:
            raise SystemExit(1)  # the writer is gone: no index
        kind, _, number = line.decode("ascii").partition(" ")
        size = int(number)
        if size < self._limit or kind not in ("size", "end"):
            raise ValueError(f"bad announcement {line!r}")
        self._limit = size
        self._final = kind == "end"


def _child(argv: list[str]) -> int:
    from linkkeeper.archive.cdx import cdxj_indexer

    fd, warc_file = int(argv[0]), argv[1]
    CDXJIndexer = cdxj_indexer()
    source = _GrowingFile(fd, sys.stdin.buffer)
    out = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="")
    lines = io.StringIO()
    CDXJIndexer(output=lines, inputs=[source], filename=warc_file, sort=True).process_all()
    digest = source.digest.result(0)
    out.write(f"#read {digest.size} {digest.sha256} {digest.crc32}\n")
    out.write(lines.getvalue())
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
