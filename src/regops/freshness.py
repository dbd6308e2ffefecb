"""Which model folders hold exactly the files of a commit, asked of git: a key per model without stat-ing every file.

At 100,000 versions a stat-keyed lookup (:mod:`regops.summaries`) pays one ``lstat`` per file. Git already keeps
a stat index of the same files, checked in C on every core, with its racy-git handling. So a model folder gets a
content-addressed key, ``(T, folder stat)``, when:

* ``git ls-tree HEAD`` names its tree ``T`` (a tree of regular files only: no link, submodule or subfolder);
* ``git diff-index HEAD`` reports nothing under it (no staged or unstaged change, no deleted file), and no entry
  under it is marked assume-unchanged or skip-worktree (``git ls-files -v``), which git would not look at;
* the folder's own stat data (mtime, ctime, inode) is part of the key: adding, removing or renaming a file, even
  one git ignores or does not track, changes it.

An entry made from files read is stored under such a key only when :func:`vouched` shows the bytes read were T's:
each file's git blob id equals T's, and its stat data did not move between before the read and after the hash
(and is not racy). Anything unusual (no git, not a repository, a stale index that reports every file, a command
that fails) gives no key: the caller falls back to the stat key. Never wrong, at worst slow.

Git runs read-only with the repository's config overridden where a key could make it run a program or stop
looking at files (``core.fsmonitor``, ``core.trustctime``, ``core.checkStat``, ``core.ignoreStat``), with no
optional locks (it never writes the index) and without the caller's ``GIT_*`` variables (a hook's
``GIT_DIR`` or ``GIT_INDEX_FILE`` must not point it at another repository or index). These commands run no hooks.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import stat
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Final

__all__ = ["RACY_NS", "Key", "Stats", "ask", "blob_id", "looking", "model_keys", "models_folder", "settled", "vouched"]

# A file modified this close to the moment its entry was made is re-read: coarse file system clocks.
RACY_NS: Final = 1_000_000_000

Stats = dict[str, tuple[int, int, int, int]]  # file name -> size, mtime_ns, ctime_ns, inode
Key = tuple[str, int, int, int]  # git tree id, the folder's mtime_ns, ctime_ns, inode

_GIT: Final = (
    "git",
    "--no-optional-locks",
    *("-c", "core.fsmonitor=false", "-c", "core.trustctime=true", "-c", "core.checkStat=default"),
    *("-c", "core.ignoreStat=false"),
)
_REGULAR: Final = (b"100644", b"100755")
# ls-files -v: any tag but "H" (assume-unchanged is lower case, skip-worktree "S", unmerged "M")
_UNWATCHED: Final = re.compile(rb"(?:^|\0)(?!H )[^\0] ([^/\0]+)/")


def _environment() -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    return {**keep, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}


def _start(cwd: Path, *args: str, feed: bool = False) -> subprocess.Popen[bytes]:
    """Git begun; its output goes to an anonymous file where the system has them (a pipe elsewhere), so a command
    begun ahead (``ls-files``: 5 MB at 100,000 versions) runs to its end instead of waiting to be read."""
    spill = _spill()
    try:
        process = subprocess.Popen(
            [*_GIT, *args],
            cwd=cwd,
            env=_environment(),
            stdin=subprocess.PIPE if feed else subprocess.DEVNULL,
            stdout=subprocess.PIPE if spill is None else spill,
            stderr=subprocess.DEVNULL,
        )
    except BaseException:
        _close(spill)
        raise
    if spill is not None:
        _SPILLED[process] = spill
    return process


# The anonymous files git's output went to (:func:`_start`), by process, until :func:`_output` reads them.
_SPILLED: dict[subprocess.Popen[bytes], int] = {}


def _spill() -> int | None:
    try:
        return os.memfd_create("regops-git", os.MFD_CLOEXEC)
    except (AttributeError, OSError):  # not Linux, or no room: a pipe
        return None


def _close(spill: int | None) -> None:
    if spill is not None:
        os.close(spill)


def _output(process: subprocess.Popen[bytes], feed: bytes = b"") -> bytes | None:
    spill = _SPILLED.pop(process, None)
    try:
        out, _ = process.communicate(feed or None)
        if spill is not None:
            out = _read_spill(spill)
    finally:
        _close(spill)
    return out if process.returncode == 0 else None


def _read_spill(spill: int) -> bytes:
    size = os.fstat(spill).st_size
    os.lseek(spill, 0, os.SEEK_SET)
    chunks = [os.read(spill, size + 1)]
    while chunks[-1]:
        chunks.append(os.read(spill, 1 << 20))
    return b"".join(chunks)


def _ask(cwd: Path, *args: str) -> bytes | None:
    try:
        return _output(_start(cwd, *args))
    except OSError:  # no git, or the folder went away
        return None


def _commit(models: Path) -> str | None:
    """HEAD's commit, when git's work tree holds ``models`` where ``models`` is (not a ``core.worktree`` or a
    ``.git`` folder elsewhere: what git compares must be the files regops reads)."""
    said = _ask(models, "rev-parse", "--show-toplevel", "--show-prefix", "HEAD^{commit}")
    lines = said.decode(errors="surrogateescape").split("\n") if said is not None else []
    if len(lines) != 4 or not lines[0]:
        return None
    try:
        same = (Path(lines[0]) / lines[1]).resolve() == models.resolve()
    except OSError:
        return None
    return lines[2] if same else None


def _start_view(models: Path) -> list[subprocess.Popen[bytes]] | None:
    """The three git processes that describe ``models`` at HEAD's commit, started (:func:`_view` reads them)."""
    commit = _commit(models)
    if commit is None:
        return None
    started: list[subprocess.Popen[bytes]] = []
    try:
        started.append(_start(models, "ls-tree", "-z", commit, "--", "."))
        started.append(_start(models, "diff-index", "--relative", "--name-only", "-z", commit, "--"))
        started.append(_start(models, "ls-files", "-v", "-z", "--", "."))
    except OSError:
        _stop(started)
        return None
    return started


def _stop(processes: Iterable[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.kill()
        process.communicate()
        _close(_SPILLED.pop(process, None))


def _view(processes: list[subprocess.Popen[bytes]] | None) -> tuple[dict[str, str], set[str]] | None:
    """Of ``models``, per folder its tree id at HEAD, and the folders git cannot vouch for; None without git."""
    if processes is None:
        return None
    try:
        outputs = [_output(process) for process in processes]
    except OSError:
        _stop(processes)
        return None
    if any(out is None for out in outputs):
        return None
    tree_out, changed_out, flagged_out = (out or b"" for out in outputs)
    trees = _folders(tree_out)
    dirty = {path.split(b"/", 1)[0] for path in changed_out.split(b"\0") if path}
    dirty |= _unwatched(flagged_out)
    return trees, {name.decode(errors="surrogateescape") for name in dirty}


def _folders(listing: bytes) -> dict[str, str]:
    """The subfolders (trees) in ``ls-tree -z`` output, name -> tree id; records split on NUL, never searched
    for (a file's name may hold a tab or text that looks like a record)."""
    found = {}
    for record in listing.split(b"\0"):
        meta, _, name = record.partition(b"\t")
        if meta.split(b" ")[:2] == [b"040000", b"tree"] and name:
            found[name.decode(errors="surrogateescape")] = meta.split(b" ")[2].decode()
    return found


def _unwatched(listing: bytes) -> set[bytes]:
    """Folders with an entry git does not look at, from ``ls-files -v -z``: every tag "H" (the usual case, two
    counts over the bytes) or else the folders of the others."""
    if listing.count(b"\0H ") + listing.startswith(b"H ") == listing.count(b"\0"):
        return set()
    return set(_UNWATCHED.findall(listing))


def _folder_stat(folder: Path) -> tuple[int, int, int] | None:
    try:
        st = os.lstat(folder)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def model_keys(models: Path, names: Iterable[str]) -> dict[str, Key | None]:
    """Per model folder of ``models`` (the registry's ``models/``), its content key: its tree id at HEAD and its
    folder's stat data, when git vouches that the folder's tracked files are T's (module docs); else None (the
    caller keys by stat data). One batch: four short git processes, whatever the number of models."""
    return ask(models)(names)


def ask(models: Path) -> Callable[[Iterable[str]], dict[str, Key | None]]:
    """:func:`model_keys`, begun: git's processes start now (or were, by :func:`looking`) and run while the caller
    reads; the function returned waits for them and makes the keys of the folders it is given (call it once)."""
    begun = _resolved(models)
    started = _BEGUN.pop(begun) if begun is not None and begun in _BEGUN else _start_view(models)
    return lambda names: _keys(models, names, _view(started))


# The looks begun by :func:`looking`, by the resolved folder, each waiting for the first :func:`ask` in its block.
_BEGUN: dict[Path, list[subprocess.Popen[bytes]] | None] = {}


@contextmanager
def looking(models: Path) -> Iterator[None]:
    """Git's look at ``models`` (:func:`ask`'s three processes) begun now, for the first :func:`ask` of that folder
    within the block: a command begins it before importing what it runs, so git's ``lstat`` of every file runs
    beside regops' start-up. Unasked at the block's end, it is stopped: a look never answers past its command."""
    begun = _resolved(models)
    if begun is None or begun in _BEGUN:
        yield
        return
    _BEGUN[begun] = _start_view(begun)
    try:
        yield
    finally:
        _stop(_BEGUN.pop(begun, None) or [])


def models_folder(registry: str | None) -> Path:
    """Where ``--registry`` (or the current folder) most likely keeps its models: a guess, as a look at a folder the
    verb does not ask about is never used (:func:`looking`); a wrong one costs git's time only."""
    folder = Path(registry or ".")
    with contextlib.suppress(OSError, ValueError):  # the verb says what is wrong with the folder
        if (folder / "regops.yaml").is_file():
            return folder / "models"
    return folder / "registry" / "models"


def _resolved(folder: Path) -> Path | None:
    """``folder`` resolved, when it is one."""
    try:
        found = folder.resolve()
        return found if found.is_dir() else None
    except (OSError, ValueError):  # ValueError: a NUL in the name
        return None


def _keys(models: Path, names: Iterable[str], view: tuple[dict[str, str], set[str]] | None) -> dict[str, Key | None]:
    names = list(names)
    if view is None:
        return dict.fromkeys(names)
    trees, dirty = view
    keys: dict[str, Key | None] = {}
    for name in names:
        tree, folder = trees.get(name), _folder_stat(models / name)
        keys[name] = None if tree is None or folder is None or name in dirty else (tree, *folder)
    return keys


def blob_id(raw: bytes, *, digest: str = "sha1") -> str:
    """Git's object id of a file holding ``raw`` (``sha1``, or ``sha256`` in a SHA-256 repository)."""
    hashed = hashlib.new(digest, b"blob %d\0" % len(raw))
    hashed.update(raw)
    return hashed.hexdigest()


def _parse_tree(raw: bytes, width: int) -> dict[str, tuple[bytes, str]] | None:
    """A raw tree object's entries, name -> (mode, object id); None when it is not one git wrote."""
    entries: dict[str, tuple[bytes, str]] = {}
    at = 0
    while at < len(raw):
        space, nul = raw.find(b" ", at), raw.find(b"\0", at)
        if space < 0 or nul < space or nul + 1 + width > len(raw):
            return None
        name = raw[space + 1 : nul].decode(errors="surrogateescape")
        entries[name] = (raw[at:space], raw[nul + 1 : nul + 1 + width].hex())
        at = nul + 1 + width
    return entries


def _trees(models: Path, ids: Iterable[str]) -> dict[str, dict[str, tuple[bytes, str]]]:
    """The entries of the tree objects ``ids`` (one ``git cat-file --batch``); a tree git cannot show is left out."""
    wanted = sorted(set(ids))
    try:
        out = _output(_start(models, "cat-file", "--batch", feed=True), "".join(f"{i}\n" for i in wanted).encode())
    except OSError:
        return {}
    found: dict[str, dict[str, tuple[bytes, str]]] = {}
    at = 0
    while out and at < len(out):
        end = out.index(b"\n", at)
        header = out[at:end].split(b" ")
        if len(header) != 3 or header[1] != b"tree":
            return found  # missing or not a tree: the rest cannot be framed safely
        size = int(header[2])
        entries = _parse_tree(out[end + 1 : end + 1 + size], len(header[0]) // 2)
        if entries is not None:
            found[header[0].decode()] = entries
        at = end + 1 + size + 1
    return found


def vouched(models: Path, keys: Mapping[str, Key | None], stats: Mapping[str, Stats], made: int) -> dict[str, Key]:
    """Of the models just read, those whose files were exactly their key's tree while they were read: per file,
    its stat data before the read (``stats``) still holds after its blob id is checked against the tree, and
    nothing (file or folder) is racy at ``made``. An entry may be stored under these keys, and only these."""
    candidates = {name: key for name, key in keys.items() if key is not None and name in stats}
    trees = _trees(models, (key[0] for key in candidates.values())) if candidates else {}
    return {
        name: key
        for name, key in candidates.items()
        if key[0] in trees and _holds(models / name, key, trees[key[0]], stats[name], made)
    }


def _holds(folder: Path, key: Key, tree: dict[str, tuple[bytes, str]], stats: Stats, made: int) -> bool:
    if any(mode not in _REGULAR for mode, _ in tree.values()) or _folder_stat(folder) != key[1:]:
        return False
    if {name for name in tree if name.endswith((".yaml", ".yml"))} != set(stats) or max(key[1:3]) >= made - RACY_NS:
        return False
    digest = "sha1" if len(key[0]) == 40 else "sha256"
    return all(_same(f"{folder}/{name}", tree[name][1], stats[name], made, digest) for name in stats)


def _same(path: str, blob: str, before: tuple[int, int, int, int], made: int, digest: str) -> bool:
    """The file holds ``blob`` and was not written since ``before`` was taken (ctime moves on every write): the
    stat data of the very file read (never through a link), after the read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        raw = os.read(fd, before[0] + 1)
        st = os.fstat(fd)
    except OSError:
        return False
    finally:
        os.close(fd)
    after = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    return after == before and max(before[1:3]) < made - RACY_NS and blob_id(raw, digest=digest) == blob


def settled(folder: Path) -> tuple[int, ...] | None:
    """A folder's stat data (device, inode, mtime, ctime) when it last changed more than RACY_NS ago; else None:
    it may change again within the same timestamp granule, unseen (git's racy case), so nothing is keyed by it."""
    made = time.time_ns()
    try:
        found = os.lstat(folder)
    except OSError:
        return None
    if not stat.S_ISDIR(found.st_mode) or max(found.st_mtime_ns, found.st_ctime_ns) >= made - RACY_NS:
        return None
    return (found.st_dev, found.st_ino, found.st_mtime_ns, found.st_ctime_ns)
