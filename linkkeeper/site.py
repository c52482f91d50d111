"""Finding a site's posts and its base URL.

A *site* is a Jekyll root (it has `_config.yml` or `_posts/`), any folder of
`.md`/`.markdown`/`.html` files, or a list of such files. Hidden folders,
`_site/` (Jekyll's output) and `node_modules/` are skipped: they hold copies or
vendored files, not posts.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

POST_SUFFIXES = (".md", ".markdown", ".html", ".htm")
SKIPPED_DIRS = frozenset({"_site", "node_modules", "vendor", "__pycache__"})
# `linkkeeper report` marks its output folder: a report is full of links, not a post
REPORT_MARKER = ".linkkeeper-report"


class SiteError(Exception):
    """A site that cannot be read at all (missing folder, unreadable config)."""


@dataclass
class Site:
    root: Path  # folder paths of posts are relative to
    url: str | None  # `url` + `baseurl` from _config.yml, ending with '/'
    files: list[Path] = field(default_factory=list)  # explicit files, else discovered
    config_problem: str | None = None

    def posts(self) -> Iterator[tuple[str, Path]]:
        """(relative path with '/', absolute path) for every post file, sorted."""
        if self.files:
            for f in self.files:
                yield rel_path(f, self.root), f
            return
        found: list[tuple[str, Path]] = []
        root = str(self.root)
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(
                d
                for d in dirnames
                if not d.startswith(".")
                and d not in SKIPPED_DIRS
                and not os.path.exists(os.path.join(dirpath, d, REPORT_MARKER))
            )
            # relative path by string arithmetic: resolve() per file costs more than parsing
            prefix = os.path.relpath(dirpath, root).replace(os.sep, "/")
            prefix = "" if prefix == "." else prefix + "/"
            for name in filenames:
                if name.startswith(".") or not name.lower().endswith(POST_SUFFIXES):
                    continue
                found.append((prefix + name, Path(dirpath, name)))
        found.sort()
        yield from found


def rel_path(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.resolve().as_posix()


def site_url_from_config(config: dict[str, object]) -> str | None:
    """Jekyll's absolute site URL: `url` joined with `baseurl`, or None."""
    url = str(config.get("url") or "").strip()
    if not url.startswith(("http://", "https://")):
        return None
    base = str(config.get("baseurl") or "").strip().strip("/")
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
            else:
                site.config_problem = f"{config_file}: not a YAML mapping"
        except (yaml.YAMLError, UnicodeDecodeError, OSError) as exc:
            line = getattr(getattr(exc, "problem_mark", None), "line", None)
            where = f"{config_file}:{line + 1}" if line is not None else str(config_file)
            site.config_problem = f"{where}: cannot read site config: {exc}".splitlines()[0]
    if site_url:
        site.url = site_url.rstrip("/") + "/"
    return site
