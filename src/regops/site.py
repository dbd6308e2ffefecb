"""The registry website: static HTML pages built from the registry, viewable offline.

:func:`site_data` (:mod:`regops.site_data`) names everything the pages show; :func:`build` renders it
(:mod:`regops.site_pages`) and writes the pages here: into a fresh folder renamed into place whole, unchanged pages
linked from the previous build, the model and version pages in one forked process per core for a large site, each
process reading one model's folder at a time, and the index and the serving view last, from what each kept.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import shutil
import stat
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from regops.errors import RegopsError
from regops.site_assets import SERVING_SCRIPT, STYLE
from regops.site_data import ANCESTRY, ModelSite, ServingChange, SiteData, site_data, version_files
from regops.site_pages import (
    ModelSummary,
    forget_cached,
    html_text,
    index_page,
    model_page,
    serving_page,
    summary,
    version_page,
)

__all__ = [
    "ANCESTRY",
    "MARKER",
    "ModelSite",
    "ServingChange",
    "SiteData",
    "SiteError",
    "build",
    "html_text",
    "site_data",
]

# Written into every site regops builds: a folder with it may be replaced by a new build; one without it is not ours.
MARKER: Final = ".regops-site"


class SiteError(RegopsError):
    """The site cannot be written where it was asked to go."""

    def __init__(self, path: Path, message: str) -> None:
        self.path = path
        super().__init__(message)


def build(data: SiteData, out: Path, *, workers: int | None = None) -> list[Path]:
    """Write the site into ``out`` (replacing a site regops built there before); the pages written.

    ``workers``: processes that render the model and version pages (default: one per core for a large site)."""
    _check_out(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".site-", dir=out.parent))
    try:
        previous = out if (out / MARKER).is_file() else None
        pages = _write_pages(data, _Tree(staging, previous), workers or _workers(data))
        old = _swap(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old)
    return [out / p for p in pages]


def _swap(staging: Path, out: Path) -> Path | None:
    """Put the new site at ``out`` with two renames; the old one, moved aside, is for the caller to delete."""
    if not out.exists():
        staging.rename(out)
        return None
    old = Path(tempfile.mkdtemp(prefix=".site-old-", dir=out.parent))
    out.rename(old / "site")
    try:
        staging.rename(out)
    except BaseException:
        (old / "site").rename(out)
        old.rmdir()
        raise
    return old


def _check_out(out: Path) -> None:
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise SiteError(out, f"{out} is not a folder: pass --out a folder for the site")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise SiteError(
            out,
            f"{out} has files and no {MARKER}: it is not a site regops built, so nothing was written; "
            "pass --out an empty or new folder",
        )


# A site with fewer pages than this is rendered in one process: starting another costs more than it saves.
PARALLEL_FROM: Final = 2000


def _workers(data: SiteData) -> int:
    pages = sum(version_files(m) + 1 for m in data.models)
    forks = "fork" in multiprocessing.get_all_start_methods()
    return max(1, min(os.cpu_count() or 1, len(data.models))) if forks and pages >= PARALLEL_FROM else 1


Written = list[tuple[list[str], ModelSummary]]  # per model, its pages (relative) and what the index shows of it


def _write_pages(data: SiteData, tree: _Tree, workers: int) -> list[str]:
    """Write every file of the site into ``tree``; the pages written (relative), models in order.

    The model and version pages are rendered in ``workers`` processes, each taking every n-th model and reading
    its folders itself, one at a time (:func:`_write_models`): they are forked, so each reads ``data`` from the
    memory it shares with this one, and sends back only each model's summary. The index and the serving view are
    written last, from those summaries."""
    tree.write({MARKER: "built by regops site build\n"})
    (tree.root / "models").mkdir()
    if workers == 1:
        by_model = _write_models(data, tree, 0, 1)
    else:
        global _FORKED  # noqa: PLW0603 -- what the forked workers read; set only while they run
        _FORKED = data
        try:
            # Not a multiprocessing.Pool: its workers are daemons, which may not start the parse workers a model
            # whose files the cache has not seen is read with (store.load_many).
            with ProcessPoolExecutor(workers - 1, mp_context=multiprocessing.get_context("fork")) as pool:
                shares = [pool.submit(_write_forked, tree, i, workers) for i in range(1, workers)]
                mine = _write_models(data, tree, 0, workers)
                theirs = [share.result() for share in shares]
        finally:
            _FORKED = None
        by_model = [done for done in itertools.chain.from_iterable(itertools.zip_longest(mine, *theirs)) if done]
    summaries = [summary for _, summary in by_model]
    shared = {"index.html": index_page(summaries, data.built_at), "serving.html": serving_page(summaries)}
    written = tree.write({**shared, "style.css": STYLE, "serving.js": SERVING_SCRIPT})
    return written + [page for pages, _ in by_model for page in pages]


_FORKED: SiteData | None = None


def _write_forked(tree: _Tree, share: int, workers: int) -> Written:
    assert _FORKED is not None
    return _write_models(_FORKED, tree, share, workers)


def _write_models(data: SiteData, tree: _Tree, share: int, workers: int) -> Written:
    """The pages of every ``workers``-th model from ``share`` on, written, and its summary; each model's folder
    (and any other its lineage reads) is let go of once its pages are written."""
    written = []
    for model in data.models[share::workers]:
        folder = f"models/{model.name}"
        (tree.root / folder).mkdir()
        pages = {f"{folder}/index.html": model_page(model)}
        pages.update((f"{folder}/{r.version}.html", version_page(model, r)) for r in model.versions)
        written.append((tree.write(pages), summary(model)))
        model.let_go()
        forget_cached()
    return written


@dataclass(frozen=True)
class _Tree:
    """The folder a site is written into, and the site regops built before at ``--out`` (or None)."""

    root: Path
    previous: Path | None

    def write(self, files: dict[str, str]) -> list[str]:
        """Write each file (its folder exists); their names. The site is renamed into place whole: no fsync.
        Paths are plain strings here: 10,000 pages are written, and a ``Path`` per page costs more than its write."""
        folders = {name.rpartition("/")[0] for name in files}
        reuse = self.previous is not None and not any(_symlinked(self.previous, folder) for folder in folders)
        root, previous = os.fspath(self.root), os.fspath(self.previous) if reuse and self.previous else None
        for relative, text in files.items():
            data, path = text.encode(), f"{root}/{relative}"
            if previous is None or not _reused(f"{previous}/{relative}", data, path):
                with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), "wb") as f:
                    f.write(data)
        return list(files)


def _reused(old: str, data: bytes, path: str) -> bool:
    """Link the previous build's copy ``old`` of a page that has not changed to ``path``, rather than write it again:
    a rebuild then writes only what changed, and deleting the old site only drops names. Only a regular file with no
    other name is reused (never a link to something outside the site)."""
    try:
        fd = os.open(old, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1 or info.st_size != len(data):
            return False
        if os.read(fd, len(data) + 1) != data:
            return False
    finally:
        os.close(fd)
    try:
        os.link(old, path, follow_symlinks=False)
    except OSError:
        return False
    return True


def _symlinked(root: Path, folder: str) -> bool:
    """Whether ``folder`` (relative to ``root``) or a folder on the way to it is a symbolic link (it may lead out of
    the site)."""
    parts = Path(folder).parts
    return any((root.joinpath(*parts[: i + 1])).is_symlink() for i in range(len(parts)))
