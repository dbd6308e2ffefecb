"""Read files as they are at a git ref (the base of a pull request), with the git command line.

Two processes whatever the size of the registry: ``git ls-tree`` lists the
blobs under a folder, ``git cat-file --batch`` streams them all. A pull
request's commits are fetched as data (:func:`fetch`): objects and refs, never
a checkout, so nothing of them runs.
"""

from __future__ import annotations

import base64
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from regops.errors import RegopsError

LOCK_NAME = ".regops.lock"  # the registry's write lock (lifecycle.LOCK_FILE): never committed

__all__ = ["GitError", "commit_paths", "current_branch", "fetch", "files_at", "github_auth", "head_commit", "push"]


class GitError(RegopsError):
    """git could not answer (no repository, an unknown ref)."""


def _git(repo: Path, *args: str, stdin: bytes | None = None, config: Mapping[str, str] | None = None) -> bytes:
    """Run git in ``repo``; ``config`` is passed through git's environment (GIT_CONFIG_*), never the command line,
    so a credential in it shows in no process list and in no error message."""
    env = None
    if config:
        env = {**os.environ, "GIT_CONFIG_COUNT": str(len(config))}
        for index, (key, value) in enumerate(config.items()):
            env |= {f"GIT_CONFIG_KEY_{index}": key, f"GIT_CONFIG_VALUE_{index}": value}
    try:
        done = subprocess.run(["git", "-C", str(repo), *args], input=stdin, capture_output=True, check=False, env=env)
    except FileNotFoundError:
        raise GitError("git is not installed; --base needs it") from None
    if done.returncode != 0:
        command = " ".join(a for a in args[:3] if not a.startswith("user."))
        raise GitError(f"git {command}: {done.stderr.decode(errors='replace').strip()}")
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


def github_auth() -> dict[str, str]:
    """git configuration that authenticates to GitHub with ``GITHUB_TOKEN``, as actions/checkout does, for
    :func:`_git`'s ``config`` (so through git's environment: never on a command line or in ``.git/config``).

    The header is scoped to ``GITHUB_SERVER_URL`` (default https://github.com), so the token goes to GitHub
    only, whatever other remote a command reaches. Without the variable: nothing, and git's own credentials
    apply (a person's clone). The workflows' checkouts keep no credentials, so only a step whose ``env:`` holds
    the token can fetch a private repository or push.
    """
    token = os.environ.get("GITHUB_TOKEN")
    if not token:
        return {}
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    return {f"http.{_github_server()}/.extraheader": f"AUTHORIZATION: basic {basic}"}


def _github_server() -> str:
    return (os.environ.get("GITHUB_SERVER_URL") or "https://github.com").rstrip("/")


def fetch(repo: Path, refspecs: Sequence[str], *, remote: str = "origin") -> None:
    """Fetch ``refspecs`` from ``remote`` into ``repo`` as data: objects and refs, the working tree untouched;
    authenticated by :func:`github_auth` (a private repository needs it once the checkout kept no credentials)."""
    _git(repo, "fetch", "-q", "--no-tags", "--no-recurse-submodules", remote, *refspecs, config=github_auth())


def resolve(repo: Path, ref: str) -> str | None:
    """The commit ``ref`` names in ``repo``, or None when it names none."""
    try:
        return _git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").decode().strip()
    except GitError:
        return None


def head_commit(repo: Path) -> str:
    """The commit checked out in ``repo``."""
    return _git(repo, "rev-parse", "HEAD").decode().strip()


def current_branch(repo: Path) -> str:
    return _git(repo, "rev-parse", "--abbrev-ref", "HEAD").decode().strip()


def commit_paths(repo: Path, paths: list[str], message: str, *, author: str | None = None) -> str | None:
    """Commit what changed under ``paths`` (and only there); the new commit, or None when nothing changed.

    ``author`` (a login) commits as ``login <login@users.noreply.github.com>``
    whatever git's configured user is; without it git's own configuration applies.
    """
    present = [p for p in paths if (repo / p).exists() or _git(repo, "ls-files", "--", p).strip()]
    if not present:
        return None
    _git(repo, "add", "-A", "--", *present, f":(exclude,glob)**/{LOCK_NAME}")
    if not _git(repo, "diff", "--cached", "--name-only", "--", *present).strip():
        return None
    who = ["-c", f"user.name={author}", "-c", f"user.email={author}@users.noreply.github.com"] if author else []
    _git(repo, *who, "commit", "-q", "-m", message, "--", *present)
    return head_commit(repo)


def push(repo: Path, *, branch: str, remote: str = "origin", attempts: int = 3) -> None:
    """Push ``branch``, authenticated by :func:`github_auth`; when the remote moved on, rebase onto it and try
    again (a rebase conflict stops)."""
    auth = github_auth()
    for attempt in range(1, attempts + 1):
        try:
            _push(repo, remote, branch, auth)
            return
        except GitError as e:
            if attempt == attempts or ("rejected" not in str(e) and "fetch first" not in str(e)):
                raise
        try:
            _git(repo, "pull", "-q", "--rebase", remote, branch, config=auth)
        except GitError as e:
            if (repo / ".git" / "rebase-merge").exists():
                _git(repo, "rebase", "--abort")
            raise GitError(
                f"{remote}/{branch} moved on and the change does not rebase onto it cleanly; run the job again ({e})"
            ) from e


def _push(repo: Path, remote: str, branch: str, auth: Mapping[str, str]) -> None:
    """One push of HEAD to ``branch``; a remote that wanted credentials it did not get says how to give them."""
    try:
        _git(repo, "push", "-q", remote, f"HEAD:refs/heads/{branch}", config=auth)
    except GitError as e:
        signs = ("could not read Username", "Authentication failed", "terminal prompts disabled", "error: 403")
        if not any(sign in str(e) for sign in signs):
            raise
        said = (
            f"GITHUB_TOKEN, which goes to {_github_server()} only (GITHUB_SERVER_URL), was not accepted"
            if auth
            else "set GITHUB_TOKEN in this step's env"
        )
        raise GitError(
            f"git push to {remote} ({branch}) was refused for want of credentials: {said} (the workflows' "
            "checkouts keep none), or configure git's own credentials for it"
        ) from e


def changed(repo: Path, path: str) -> list[str]:
    """Uncommitted changes under ``path`` (``git status --porcelain`` lines), the write lock aside."""
    lines = _git(repo, "status", "--porcelain", "--", path).decode().splitlines()
    return [line for line in lines if not line.endswith(LOCK_NAME)]


def checkout(repo: Path, branch: str, *, create: bool = False) -> None:
    _git(repo, "checkout", "-q", *(["-b"] if create else []), branch)
