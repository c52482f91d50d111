"""Post and server text reaches a terminal inert: a post named `a<ESC>]0;PWNED<BEL>.md`
retitled the user's terminal when `scan` printed its problem line."""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys
from pathlib import Path

from helpers import clean_env

from linkkeeper.terminal import TerminalSafe, inert


def test_control_characters_are_written_as_text_but_our_own_live_line_codes() -> None:
    out = io.StringIO()
    safe = TerminalSafe(out)  # type: ignore[arg-type]
    safe.write("post \x1b]0;PWNED\x07 a\rb\tc\x9b\n")
    safe.write("\r\x1b[K[3/9] 12 URLs/s")  # the live line linkkeeper draws itself
    assert out.getvalue() == "post \\x1b]0;PWNED\\x07 a\\x0db\tc\\x9b\n\r\x1b[K[3/9] 12 URLs/s"
    assert inert("línea\n") == "línea\n"


def _on_a_terminal(*args: str, cwd: Path) -> bytes:
    """Run linkkeeper with stdout and stderr on a pseudo-terminal; what the terminal got."""
    leader, follower = pty.openpty()
    with subprocess.Popen([sys.executable, "-m", "linkkeeper", *args], stdout=follower,
                          stderr=follower, stdin=subprocess.DEVNULL, cwd=cwd,
                          env=clean_env()) as proc:
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the process closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        proc.wait(timeout=60)
    os.close(leader)
    return b"".join(chunks)


def test_a_hostile_post_name_reaches_the_terminal_inert_and_a_pipe_as_it_is(tmp_path: Path
                                                                           ) -> None:
    posts = tmp_path / "site" / "_posts"
    posts.mkdir(parents=True)
    (posts / "2020-01-01-a\x1b]0;PWNED\x07b.md").write_text(
        "---\ntitle: [unclosed\n---\n[t](https://news.example/a)\n", encoding="utf-8")
    shown = _on_a_terminal("scan", "site", cwd=tmp_path)
    assert b"a\\x1b]0;PWNED\\x07b.md:" in shown and b"\x1b]0;" not in shown
    piped = subprocess.run([sys.executable, "-m", "linkkeeper", "scan", "site"], cwd=tmp_path,
                           capture_output=True, env=clean_env(), timeout=60)
    assert b"a\x1b]0;PWNED\x07b.md:" in piped.stderr + piped.stdout  # files get the bytes
