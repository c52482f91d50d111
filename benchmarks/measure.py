"""Run a command and measure it: wall time, CPU seconds and peak memory.

How: the command runs as a child in its own session; we reap it with ``os.wait4``, whose
rusage covers the child *and every descendant it waited for*. ``ru_maxrss`` in that
rusage is the peak resident set of the largest single process of the tree (Linux
semantics, KiB), not the sum; for the tools we measure (one Python or Node process)
that is the tool's peak RSS (with a floor of ~14 MB: the high-water mark includes the
forked parent before it exec'd). CPU is user + system time of the whole tree. This is the
same number ``/usr/bin/time -v`` prints (it also uses wait4), without parsing its text.

Library use (the benchmark scripts)::

    from measure import measure, print_table, record
    result = measure(["linkkeeper", "scan", site], label="scan 20k", cpus="0")
    record(result)           # appends a JSON line to benchmarks/out/results.jsonl
    print_table([result])    # a markdown table

Command line (ad hoc measurements)::

    python benchmarks/measure.py --label "sleep" -- sleep 1
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
OUT_DIR = BENCH_DIR / "out"
RESULTS = OUT_DIR / "results.jsonl"


def measure(
    command: Sequence[str],
    *,
    label: str,
    cpus: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    timeout: float | None = None,
    stdout_path: Path | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Run `command` to completion and return its measurements as a plain dict.

    `cpus` pins the tree with ``taskset -c`` (e.g. "0" for one core). Standard output goes
    to `stdout_path` (or a temporary file whose text is returned under "stdout" when it
    is small); the last lines of standard error are returned under "stderr_tail". On
    `timeout` the whole process group is killed and "timed_out" is true.
    """
    argv = list(command)
    if cpus is not None:
        taskset = shutil.which("taskset")
        if taskset is None:
            raise RuntimeError("taskset not found: cannot pin to CPUs " + cpus)
        argv = [taskset, "-c", cpus, *argv]
    full_env = dict(os.environ if env is None else env)
    with tempfile.TemporaryDirectory(prefix="measure-") as tmp:
        out_file = stdout_path or Path(tmp) / "stdout"
        err_file = Path(tmp) / "stderr"
        with out_file.open("wb") as out, err_file.open("wb") as err:
            started = time.perf_counter()
            proc = subprocess.Popen(
                argv,
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env=full_env,
                cwd=cwd,
                start_new_session=True,  # its own process group, so a timeout kills the tree
            )
            timed_out = threading.Event()

            def kill_tree() -> None:
                timed_out.set()
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)

            timer = threading.Timer(timeout, kill_tree) if timeout else None
            if timer:
                timer.start()
            try:
                _, status, usage = os.wait4(proc.pid, 0)
            finally:
                if timer:
                    timer.cancel()
            wall = time.perf_counter() - started
            proc.returncode = os.waitstatus_to_exitcode(status)
        stderr_text = err_file.read_text(encoding="utf-8", errors="replace")
        stdout_text = None
        if stdout_path is None and out_file.stat().st_size <= 4_000_000:
            stdout_text = out_file.read_text(encoding="utf-8", errors="replace")
    return {
        "label": label,
        "command": argv,
        "exit_code": proc.returncode,
        "timed_out": timed_out.is_set(),
        "wall_s": round(wall, 3),
        "user_s": round(usage.ru_utime, 3),
        "sys_s": round(usage.ru_stime, 3),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "stdout": stdout_text,
        "stderr_tail": "\n".join(stderr_text.splitlines()[-15:]),
        **dict(extra or {}),
    }


def _git_commit() -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=BENCH_DIR,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout.strip()


def machine() -> dict[str, Any]:
    """Where a number was taken: it means little without this."""
    load = os.getloadavg()
    return {
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "loadavg_1m": round(load[0], 2),
        "commit": _git_commit(),
    }


def record(result: Mapping[str, Any], path: Path = RESULTS, **context: Any) -> None:
    """Append one result (without its captured stdout) as a JSON line, with when and where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    row = {k: v for k, v in result.items() if k != "stdout"}
    row |= {"at": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(), **context}
    with path.open("a", encoding="utf-8") as out:
        out.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")


DEFAULT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("label", "run"),
    ("wall_s", "wall s"),
    ("cpu_s", "CPU s"),
    ("peak_rss_mb", "peak RSS MB"),
    ("exit_code", "exit"),
)


def markdown_table(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]] = DEFAULT_COLUMNS
) -> str:
    """Rows as a GitHub markdown table; missing values print as a dash."""

    def cell(value: Any) -> str:
        if value is None:
            return "–"
        if isinstance(value, float):
            return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
        return str(value).replace("|", "\\|")

    lines = [
        "| " + " | ".join(title for _, title in columns) + " |",
        "|" + "|".join("---" for _ in columns) + "|",
    ]
    lines += ["| " + " | ".join(cell(row.get(key)) for key, _ in columns) + " |" for row in rows]
    return "\n".join(lines)


def print_table(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]] = DEFAULT_COLUMNS
) -> None:
    print(markdown_table(rows, columns))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Measure one command (wall, CPU, peak RSS).")
    parser.add_argument("--label", default=None)
    parser.add_argument("--cpus", default=None, help="pin with taskset -c CPUS (e.g. 0)")
    parser.add_argument("--timeout", type=float, default=None)
    parser.add_argument("--no-record", action="store_true", help="do not append to results.jsonl")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given (put it after --)")
    result = measure(
        command, label=args.label or " ".join(command), cpus=args.cpus, timeout=args.timeout
    )
    if result["stdout"]:
        sys.stdout.write(result["stdout"])
    if not args.no_record:
        record(result)
    print_table([result])
    return 0 if result["exit_code"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
