"""Read files as they are at a git ref (the base of a pull request), with the git command line.

Two processes whatever the size of the registry: ``git ls-tree`` lists the
blobs under a folder, ``git cat-file --batch`` streams them all.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from regops.errors import RegopsError

__all__ = ["GitError", "files_at", "head_commit"]


class GitError(RegopsError):
    """git could not answer (no repository, an unknown ref)."""


def _git(repo: Path, *args: str, stdin: bytes | None = None) -> bytes:
    try:
        done = subprocess.run(["git", "-C", str(repo), *args], input=stdin, capture_output=True, check=False)
    except FileNotFoundError:
        raise GitError("git is not installed; --base needs it") from None
    if done.returncode != 0:
        raise GitError(f"git {' '.join(args[:2])}: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout


def files_at(repo: Path, ref: str, folder: str) -> dict[str, bytes]:
    """Every file under ``folder`` (relative to ``repo``, which may be below the top of the repository)
    at ``ref``: path relative to ``repo`` → bytes."""
    try:
        _git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except GitError:
        raise GitError(
            f"{ref!r} is not a commit in {repo}: fetch the base first (e.g. `git fetch origin main`, "
            "or actions/checkout with fetch-depth: 0)"
        ) from None
    listing = _git(repo, "ls-tree", "-r", "-z", ref, "--", folder)  # paths relative to ``repo``, as given
    entries: list[tuple[str, bytes]] = []
    for item in listing.split(b"\0"):
        if not item:
            continue
        meta, name = item.split(b"\t", 1)
        _mode, kind, oid = meta.split(b" ")
        if kind == b"blob":
            entries.append((name.decode(), oid))
    if not entries:
        return {}
    out = _git(repo, "cat-file", "--batch", stdin=b"".join(oid + b"\n" for _, oid in entries))
    files: dict[str, bytes] = {}
    at = 0
    for path, _oid in entries:
        end = out.index(b"\n", at)
        size = int(out[at:end].split(b" ")[2])
        files[path] = out[end + 1 : end + 1 + size]
        at = end + 1 + size + 1
    return files


def head_commit(repo: Path) -> str:
    """The commit checked out in ``repo``."""
    return _git(repo, "rev-parse", "HEAD").decode().strip()
