"""Finding a site's posts and its base URL.

A *site* is a Jekyll root (it has `_config.yml` or `_posts/`), any folder of
`.md`/`.markdown`/`.html` files, or a list of such files. Hidden folders,
`_site/` (Jekyll's output) and `node_modules/` are skipped: they hold copies or
vendored files, not posts.

A folder many people edit holds odd things: `read_post` reads only regular files
(a FIFO would block forever, ``x.md -> /dev/zero`` never ends), only inside the site
when a symlink points away, and at most `MAX_POST_BYTES`; anything else is a
`PostUnreadable` with a one-line reason, and the scan goes on. A file name that is
not UTF-8 is stored with each undecodable byte as ``\\xNN`` (`stored_name`);
`Site.locate` turns the stored name back into the file.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

POST_SUFFIXES = (".md", ".markdown", ".html", ".htm")
SKIPPED_DIRS = frozenset({"_site", "node_modules", "vendor", "__pycache__"})
# `linkkeeper report` marks its output folder: a report is full of links, not a post
REPORT_MARKER = ".linkkeeper-report"
MAX_POST_BYTES = 16 << 20  # a post bigger than this is not read (a problem line instead)


class SiteError(Exception):
    """A site that cannot be read at all (missing folder, unreadable config)."""


class PostUnreadable(Exception):
    """One post file that is not read: a FIFO, a device, too big, outside the site."""


@dataclass
class Site:
    root: Path  # folder paths of posts are relative to
    url: str | None  # `url` + `baseurl` from _config.yml, ending with '/'
    files: list[Path] = field(default_factory=list)  # explicit files, else discovered
    config_problem: str | None = None
    max_post_bytes: int = MAX_POST_BYTES

    def posts(self) -> Iterator[tuple[str, Path]]:
        """(relative path with '/', absolute path) for every post file, sorted, each once."""
        for rel, path in self.post_files():
            yield rel, Path(path)

    def has_posts(self) -> bool:
        """At least one post, found without listing (and sorting) them all."""
        return bool(self.files) or _any_post(str(self.root))

    def post_files(self) -> Iterator[tuple[str, str]]:
        """`posts` with the path as a plain string (what a scan of 130,000 files wants).

        Streamed: a folder's entries are sorted as they are listed (a sub-folder as its
        name plus '/', which is where its paths fall in the sorted whole), so an archive
        is never held as a list of paths before the first is read."""
        if self.files:
            named: set[str] = set()
            for f in self.files:
                rel = stored_name(rel_path(f, self.root))
                if rel not in named:  # a file named twice is one post
                    named.add(rel)
                    yield rel, str(f)
            return
        previous = None
        for rel, path in _walk(str(self.root), ""):
            if rel != previous:  # two odd names stored alike are one post
                previous = rel
                yield rel, path

    def locate(self, stored: str) -> Path:
        """The file a stored post path names (the inverse of `stored_name`)."""
        plain = self.root / stored
        if not _ESCAPED_BYTE.search(stored) or os.path.lexists(plain):
            return plain
        raw = _ESCAPED_BYTE.sub(lambda m: chr(0xDC00 + int(m.group(1), 16)), stored)
        return self.root / raw

    def read_post(self, path: str | Path) -> tuple[bytes, os.stat_result]:
        """A post's bytes and stat, or `PostUnreadable` (see the module docstring)."""
        return read_post(path, self.root, self.max_post_bytes)


_ESCAPED_BYTE = re.compile(r"\\x([89a-f][0-9a-f])")


def _kind(entry: os.DirEntry[str]) -> int:
    """_FOLDER for a folder to enter, _POST for a post file, 0 for anything else."""
    name = entry.name
    if name.startswith("."):
        return 0
    try:
        is_dir = entry.is_dir()
    except OSError:
        is_dir = False
    if is_dir:
        if name in SKIPPED_DIRS or entry.is_symlink() or os.path.exists(
            os.path.join(entry.path, REPORT_MARKER)
        ):
            return 0
        return _FOLDER
    return _POST if name.endswith(POST_SUFFIXES) or name.lower().endswith(POST_SUFFIXES) else 0


_FOLDER, _POST = 1, 2


def _walk(folder: str, prefix: str) -> Iterator[tuple[str, str]]:
    """(stored relative path, path) of the post files under ``folder``, in sorted order.

    Like ``os.walk`` (symlinked folders are listed but not entered, unreadable folders
    skipped), minus hidden and vendored folders and report folders. Only the names of
    one folder are held at a time, as plain strings (``prefix`` is the folder's stored
    relative path: string arithmetic, ``resolve()`` per file costs more than parsing)."""
    keys: list[str] = []  # stored relative paths; a folder's ends with '/'
    names: dict[str, str] = {}  # key -> name, for the names stored otherwise than written
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                kind = _kind(entry)
                if not kind:
                    continue
                name = entry.name
                stored = stored_name(name)
                key = prefix + stored + ("/" if kind == _FOLDER else "")
                if stored != name:
                    names[key] = name
                keys.append(key)
    except OSError:
        return
    keys.sort()
    base = folder if folder.endswith(os.sep) else folder + os.sep
    cut = len(prefix)
    for key in keys:
        if key[-1] == "/":
            name = names.get(key) or key[cut:-1]
            yield from _walk(base + name, key)
        else:
            yield key, base + (names.get(key) or key[cut:])


def _any_post(folder: str) -> bool:
    """Is there a post file under ``folder`` (as `_walk` finds them)? Stops at the first."""
    folders: list[str] = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                kind = _kind(entry)
                if kind == _POST:
                    return True
                if kind == _FOLDER:
                    folders.append(entry.path)
    except OSError:
        return False
    return any(_any_post(sub) for sub in folders)


def stored_name(name: str) -> str:
    """A path as SQLite can store it: bytes that are not UTF-8 (``os.walk`` hands them
    over as lone surrogates, which cannot be encoded) become ``\\xNN``."""
    if name.isascii():
        return name
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def read_post(path: str | Path, root: Path, max_bytes: int = MAX_POST_BYTES
              ) -> tuple[bytes, os.stat_result]:
    """Read one post file safely: only a regular file, at most ``max_bytes``.

    Opened non-blocking (a FIFO must not wait for a writer) and checked again on the
    open descriptor, so a file swapped for something else after the look is caught."""
    try:
        if os.path.islink(path):
            target = os.path.realpath(path)
            if not _inside(target, root):
                raise PostUnreadable(f"symlink to {target}, outside the site: not read")
        mode = os.stat(path).st_mode  # a device is not even opened (a tape would rewind)
        if not stat.S_ISREG(mode):
            raise PostUnreadable(f"not a regular file ({_file_type(mode)}): not read")
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise PostUnreadable(f"cannot read: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise PostUnreadable(f"not a regular file ({_file_type(st.st_mode)}): not read")
        if st.st_size > max_bytes:
            raise PostUnreadable(_too_big(st.st_size, max_bytes))
        data = os.read(fd, st.st_size + 1)
        if len(data) > st.st_size:  # the file grew since stat
            chunks = [data]
            while (got := sum(map(len, chunks))) <= max_bytes and (chunk := os.read(fd, 1 << 16)):
                chunks.append(chunk)
            if got > max_bytes:
                raise PostUnreadable(_too_big(got, max_bytes))
            data = b"".join(chunks)
        return data, st
    except OSError as exc:
        raise PostUnreadable(f"cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def _inside(target: str, root: Path) -> bool:
    base = os.path.realpath(root)
    return target == base or target.startswith(base.rstrip(os.sep) + os.sep)


def _too_big(size: int, max_bytes: int) -> str:
    return f"{size:,} bytes, over the {max_bytes:,}-byte limit for a post: not read"


def _file_type(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISDIR, "a folder")):
        if test(mode):
            return name
    return "not a file"


def rel_path(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.resolve().as_posix()


def site_url_from_config(config: dict[str, object]) -> str | None:
    """Jekyll's absolute site URL: `url` joined with `baseurl`, or None."""
    # only plain strings: str() of an aliased YAML list could be gigabytes
    url, base = (value if isinstance(value := config.get(key), str) else ""
                 for key in ("url", "baseurl"))
    url, base = url.strip(), base.strip().strip("/")
    if not url.startswith(("http://", "https://")):
        return None
    url = url.rstrip("/") + "/"
    if base:
        url += base + "/"
    return url


def open_site(targets: Sequence[Path], site_url: str | None = None) -> Site:
    """Build a Site from the CLI's SITE arguments (a folder, or files)."""
    if not targets:
        targets = [Path(".")]
    for t in targets:
        if not t.exists():
            raise SiteError(f"{t}: no such file or folder")
    if len(targets) == 1 and targets[0].is_dir():
        root = targets[0]
        files: list[Path] = []
    else:
        if any(t.is_dir() for t in targets):
            raise SiteError("give either one site folder or a list of post files")
        files = list(targets)
        root = Path(os.path.commonpath([str(t.resolve().parent) for t in files]))
    site = Site(root=root, url=None, files=files)
    config_file = root / "_config.yml"
    if config_file.is_file():
        try:
            config = yaml.safe_load(config_file.read_text(encoding="utf-8")) or {}
            if isinstance(config, dict):
                site.url = site_url_from_config(config)
                if site.url is None and config.get("url") not in (None, ""):
                    shown = config["url"] if isinstance(config["url"], str | int | float) else (
                        type(config["url"]).__name__)
                    site.config_problem = (
                        f"{config_file}: url {str(shown)[:80]!r} is not an http(s) URL:"
                        " root-relative links stay unresolved (or pass --site-url)")
            else:
                site.config_problem = f"{config_file}: not a YAML mapping"
        except (yaml.YAMLError, UnicodeDecodeError, OSError) as exc:
            line = getattr(getattr(exc, "problem_mark", None), "line", None)
            where = f"{config_file}:{line + 1}" if line is not None else str(config_file)
            site.config_problem = f"{where}: cannot read site config: {exc}".splitlines()[0]
    if site_url:
        site.url = site_url.rstrip("/") + "/"
    return site
