"""Read files as they are at a git ref (the base of a pull request), with the git command line.

Two processes whatever the size of the registry: ``git ls-tree`` lists the
blobs under a folder, ``git cat-file --batch`` streams them all. A pull
request's commits are fetched as data (:func:`fetch`): objects and refs, never
a checkout, so nothing of them runs.
"""

from __future__ import annotations

import base64
import itertools
import os
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from regops.errors import RegopsError
from regops.kinds import Change

LOCK_NAME = ".regops.lock"  # the registry's write lock (lifecycle.LOCK_FILE): never committed

__all__ = [
    "Comparison",
    "GitError",
    "GitMissingError",
    "NotARepositoryError",
    "changed_since",
    "changes",
    "commit_paths",
    "current_branch",
    "fetch",
    "files_at",
    "first_parents",
    "github_auth",
    "head_commit",
    "merge_base",
    "published_ref",
    "push",
    "remote_heads",
]


class GitError(RegopsError):
    """git could not answer (no repository, an unknown ref)."""


class GitMissingError(GitError):
    def __init__(self) -> None:
        super().__init__("git is not installed; --base needs it")


class NotARepositoryError(GitError):
    def __init__(self, repo: Path, command: str) -> None:
        self.repo = repo
        super().__init__(
            f"{repo} is not in a git repository, and `git {command}` needs one: run regops from a clone of the "
            "registry's repository (or `git init` this folder and commit the registry first)"
        )


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
        raise GitMissingError from None
    return _answer(repo, args, done.returncode, done.stdout, done.stderr)


def _answer(repo: Path, args: Sequence[str], returncode: int, stdout: bytes, stderr: bytes) -> bytes:
    """What git printed, or the error that says why it could not answer."""
    if returncode != 0:
        command = " ".join(a for a in args[:3] if not a.startswith("user."))
        if not _in_repository(repo):
            raise NotARepositoryError(repo, command)
        raise GitError(f"git {command}: {stderr.decode(errors='replace').strip()}")
    return stdout


class _Running:
    """git commands started side by side (each in its own process), answered by :meth:`output` once all ended."""

    def __init__(self, repo: Path, *commands: Sequence[str]) -> None:
        self.repo, self.commands = repo, commands
        self.ended: list[tuple[bytes, bytes]] | None = None
        try:
            self.processes = [
                subprocess.Popen(["git", "-C", str(repo), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                for args in commands
            ]
        except FileNotFoundError:
            raise GitMissingError from None

    def output(self, index: int) -> bytes:
        """What the ``index``-th command printed, or its error; asked first, it waits for every one to end."""
        if self.ended is None:
            self.ended = [process.communicate() for process in self.processes]
        out, err = self.ended[index]
        return _answer(self.repo, self.commands[index], self.processes[index].returncode, out, err)

    def busy(self) -> bool:
        """Whether any of the commands is still running."""
        return self.ended is None and any(process.poll() is None for process in self.processes)

    def stop(self) -> None:
        """End the commands unanswered (a look no one asked for)."""
        for process in self.processes:
            process.kill()
            process.communicate()


def _in_repository(repo: Path) -> bool:
    """Whether ``repo`` is inside a git work tree (asked only after a git command failed, to say why)."""
    found = subprocess.run(["git", "-C", str(repo), "rev-parse", "--git-dir"], capture_output=True, check=False)
    return found.returncode == 0


def _commit(repo: Path, ref: str) -> None:
    """Check that ``ref`` names a commit here; the error says how to fetch it."""
    _committed(repo, ref, lambda: _git(repo, *_VERIFY, f"{ref}^{{commit}}"))


_VERIFY = ("rev-parse", "--verify", "--quiet")


def _committed(repo: Path, ref: str, verify: Callable[[], object]) -> None:
    """``verify`` (git's answer to ``rev-parse --verify``), its failure said as how to fetch ``ref``."""
    try:
        verify()
    except (NotARepositoryError, GitMissingError):
        raise
    except GitError:
        raise GitError(
            f"{ref!r} is not a commit in {repo}: fetch the base first (e.g. `git fetch origin main`, "
            "or actions/checkout with fetch-depth: 0)"
        ) from None


def _listing(repo: Path, ref: str, *folders: str, names_only: bool = False) -> bytes:
    """``git ls-tree -r -z`` of ``folders`` at commit ``ref``: one git, as ``ref^{commit}`` checks that ``ref`` is a
    commit. When it fails, :func:`_commit` says why, as it did when it ran first; any other failure is ls-tree's."""
    names = ("--name-only",) if names_only else ()
    try:
        return _git(repo, "ls-tree", "-r", "-z", *names, f"{ref}^{{commit}}", "--", *folders)
    except GitError:
        _commit(repo, ref)
        raise


def files_at(repo: Path, ref: str, folder: str, *more: str) -> dict[str, bytes]:
    """Every file under ``folder`` (and the ``more`` folders; relative to ``repo``, which may be below the top of
    the repository) at ``ref``: path relative to ``repo`` → bytes."""
    listing = _listing(repo, ref, folder, *more)  # paths relative to ``repo``, as given
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


def paths_at(repo: Path, ref: str, folder: str) -> list[str]:
    """The paths of every file under ``folder`` at ``ref`` (relative to ``repo``), none of them read."""
    listing = _listing(repo, ref, folder, names_only=True)
    return [name.decode() for name in listing.split(b"\0") if name]


def trees_at(repo: Path, ref: str, folder: str) -> dict[str, str]:
    """The subfolders of ``folder`` at commit ``ref`` (relative to ``repo``): name → git tree id."""
    listing = _git(repo, "ls-tree", "-z", f"{ref}^{{commit}}", "--", f"{folder}/")
    trees = {}
    for item in listing.split(b"\0"):
        meta, _, path = item.partition(b"\t")
        if meta.split(b" ")[1:2] == [b"tree"]:
            trees[path.decode(errors="surrogateescape").rpartition("/")[2]] = meta.split(b" ")[2].decode()
    return trees


class Comparison:
    """git's comparison of the working tree with a commit (:func:`changed_since`), answered when called."""

    def __init__(self, repo: Path, ref: str, running: _Running) -> None:
        self.repo, self.ref, self.running = repo, ref, running

    def busy(self) -> bool:
        """Whether git is still comparing: a caller with work that only pays while it would wait does it now."""
        return self.running.busy()

    def __call__(self) -> set[str]:
        _committed(self.repo, self.ref, lambda: self.running.output(0))
        return {name.decode() for name in (self.running.output(1) + self.running.output(2)).split(b"\0") if name}


def changed_since(repo: Path, ref: str, folder: str) -> Comparison:
    """The paths under ``folder`` (relative to ``repo``) where the working tree differs from commit ``ref``:
    committed, staged, edited, deleted, untracked or ignored alike. git compares blob ids (content hashes) and
    the index's stat data, so nothing unchanged is read; a file edited in the index's own second is re-read.

    git starts now (or did, in :func:`comparing`'s block) and the answer is collected by calling the result, so
    the caller works while git stats the tree; the check of ``ref``, the diff and the listing of untracked files
    run side by side (each stats or reads the whole folder: together they take the longer one's time, not the sum)."""
    begun = _BEGUN.pop((repo, ref, folder), None)
    return Comparison(repo, ref, begun or _compare(repo, ref, folder))


def _compare(repo: Path, ref: str, folder: str) -> _Running:
    return _Running(
        repo,
        (*_VERIFY, f"{ref}^{{commit}}"),
        ("diff", "--relative", "--name-only", "--no-renames", "-z", ref, "--", folder),
        ("ls-files", "--others", "-z", "--", folder),  # ignored files too: validate reads them
    )


# The comparisons begun by :func:`comparing`, by repository, ref and folder, each for the first
# :func:`changed_since` of the same three within its block.
_BEGUN: dict[tuple[Path, str, str], _Running] = {}


@contextmanager
def comparing(repo: Path, ref: str, folder: str) -> Iterator[None]:
    """:func:`changed_since`'s git processes begun now, for its first call with the same ``repo``, ``ref`` and
    ``folder`` within the block: ``validate --base`` begins them before importing what it runs, so git's lstat
    of every file runs beside regops' start-up (one core idle otherwise). A comparison no call asked for is
    stopped at the block's end: it never answers past its command. Without git, nothing is begun (the command
    says so when it asks)."""
    key = (repo, ref, folder)
    if key in _BEGUN:
        yield
        return
    try:
        _BEGUN[key] = _compare(repo, ref, folder)
    except GitMissingError:
        yield
        return
    try:
        yield
    finally:
        left = _BEGUN.pop(key, None)
        if left is not None:
            left.stop()


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


def published_ref(repo: Path) -> str | None:
    """Where a push from ``repo`` publishes: the branch's upstream (``origin/main``), else ``origin/<branch>``,
    else ``HEAD`` (a repository without a remote, or a detached HEAD); None when ``repo`` is in no git repository."""
    try:
        _git(repo, "rev-parse", "--show-toplevel")
    except NotARepositoryError:
        return None
    try:
        return _git(repo, "rev-parse", "--abbrev-ref", "--symbolic-full-name", "@{upstream}").decode().strip()
    except GitError:
        pass
    branch = _git(repo, "branch", "--show-current").decode().strip()
    return f"origin/{branch}" if branch and resolve(repo, f"origin/{branch}") else "HEAD"


def head_commit(repo: Path) -> str:
    """The commit checked out in ``repo``."""
    return _git(repo, "rev-parse", "HEAD").decode().strip()


def current_branch(repo: Path) -> str:
    """The branch checked out in ``repo``; a detached HEAD (no branch) is an error that says what to do."""
    try:
        return _git(repo, "symbolic-ref", "--quiet", "--short", "HEAD").decode().strip()
    except GitError:
        raise GitError(
            f"{repo} has no branch checked out (a detached HEAD): check out the branch to work on (`git switch main`)"
        ) from None


def commit_paths(
    repo: Path, paths: list[str], message: str, *, author: str | None = None, email: str | None = None
) -> str | None:
    """Commit what changed under ``paths`` (and only there); the new commit, or None when nothing changed.

    ``author`` (a login) commits as ``login <email>`` whatever git's configured user is (``email`` defaults to
    ``login@users.noreply.github.com``; pass the ``ID+login`` form GitHub links to the account); without it git's
    own configuration applies.
    """
    present = [p for p in paths if (repo / p).exists() or _git(repo, "ls-files", "--", p).strip()]
    if not present:
        return None
    _git(repo, "add", "-A", "--", *present, f":(exclude,glob)**/{LOCK_NAME}")
    if not _git(repo, "diff", "--cached", "--name-only", "--", *present).strip():
        return None
    address = email or f"{author}@users.noreply.github.com"
    who = ["-c", f"user.name={author}", "-c", f"user.email={address}"] if author else []
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


def changes(repo: Path, base: str, head: str) -> list[Change]:
    """Every path that differs between commits ``base`` and ``head``, in the whole repository, with its git modes.

    Renames are a delete and an add (``--no-renames``), so each side of one is judged; type changes (a file
    becoming a symlink) and mode changes are reported as git sees them.
    """
    out = _git(repo, "diff", "--raw", "-z", "--no-renames", "--no-ext-diff", "--ignore-submodules=none", base, head)
    fields = out.split(b"\0")
    found = []
    for meta, path in zip(fields[0::2], fields[1::2], strict=False):
        if not meta.startswith(b":"):
            continue
        old_mode, new_mode, _old, _new, status = meta[1:].decode().split(" ")
        found.append(Change(path.decode(errors="surrogateescape"), status[0], old_mode, new_mode))
    return found


def merge_base(repo: Path, a: str, b: str) -> str:
    """The best common ancestor of commits ``a`` and ``b``: where a pull request's head branched from its base."""
    return _git(repo, "merge-base", a, b).decode().strip()


def remote_heads(repo: Path, pattern: str, *, remote: str = "origin") -> dict[str, str]:
    """Branches of ``remote`` matching ``pattern`` (``refs/heads/…`` glob): ref -> commit."""
    out = _git(repo, "ls-remote", "--heads", remote, pattern, config=github_auth()).decode()
    return {ref: sha for sha, ref in (line.split("\t", 1) for line in out.splitlines() if "\t" in line)}


def first_parents(repo: Path, base: str, head: str) -> list[str]:
    """The commits from ``base`` (excluded) to ``head`` along first parents: a merge queue group's entries."""
    return _git(repo, "rev-list", "--first-parent", f"{base}..{head}").decode().split()


# --- the branch of a pull request regops opens -------------------------------------------------------------------


class BranchTakenError(GitError):
    """The branch a pull request was to be made on exists already, in the checkout or on the remote."""

    def __init__(self, branch: str, *, remote: str, where: str) -> None:
        self.branch = branch
        super().__init__(
            f"branch {branch} already exists {where}, and a pull request from it would carry commits regops did "
            f"not make: look at it (`git fetch {remote} {branch} && git log FETCH_HEAD`), delete it if it is stale "
            f"(`git push {remote} --delete {branch}`, `git branch -D {branch}`) and run the command again"
        )


def _heads(repo: Path, remote: str) -> tuple[set[str], set[str]]:
    """The branch names of the checkout, and of ``remote`` as it is now (asked, not the last fetch)."""
    local = _git(repo, "for-each-ref", "--format=%(refname)", "refs/heads/").decode().splitlines()
    listed = _git(repo, "ls-remote", "--heads", remote, config=github_auth()).decode().splitlines()
    remote_refs = [line.split("\t", 1)[1] for line in listed if "\t" in line]
    return {r.removeprefix("refs/heads/") for r in local}, {r.removeprefix("refs/heads/") for r in remote_refs}


def _clashes(name: str, heads: set[str]) -> bool:
    """``name`` cannot be a new branch next to ``heads``: it is one, or one is a folder of it, or it a folder of one."""
    return any(head == name or head.startswith(f"{name}/") or name.startswith(f"{head}/") for head in heads)


def new_branch_name(repo: Path, name: str, *, remote: str = "origin", suffix: bool = True) -> str:
    """``name`` when no branch of the checkout or of ``remote`` has it; else, with ``suffix``, the first free one
    of ``name-2``, ``name-3``, …; without, :class:`BranchTakenError`."""
    local, remote_heads = _heads(repo, remote)
    if not _clashes(name, local | remote_heads):
        return name
    if not suffix:
        where = f"on {remote}" if _clashes(name, remote_heads) else "in this checkout"
        raise BranchTakenError(name, remote=remote, where=where)
    return next(f"{name}-{n}" for n in itertools.count(2) if not _clashes(f"{name}-{n}", local | remote_heads))


def push_new_branch(repo: Path, branch: str, *, remote: str = "origin") -> None:
    """Push ``branch`` to ``remote``, where it is new: a plain push, never forced, never rebased onto what the
    remote has. A branch someone pushed there meanwhile rejects it (unless it is an ancestor of ours: the base's
    history, which the pull request's diff excludes anyway)."""
    try:
        _git(repo, "push", "-q", remote, f"refs/heads/{branch}:refs/heads/{branch}", config=github_auth())
    except GitError as e:
        raise GitError(f"could not push branch {branch} to {remote}: {e}") from e


def discard(repo: Path, path: str) -> None:
    """Throw away uncommitted changes under ``path`` (tracked and untracked files; ignored ones and the lock stay)."""
    _git(repo, "restore", "--source=HEAD", "--staged", "--worktree", "--", path)
    _git(repo, "clean", "-fdq", "-e", LOCK_NAME, "--", path)


def delete_branch(repo: Path, branch: str) -> None:
    """Delete local ``branch`` (not checked out), merged or not."""
    _git(repo, "branch", "-q", "-D", branch)
