"""The tree hash: one BLAKE3 digest for a file or a folder, and the cache that makes re-hashing cheap.

**The tree hash.** :func:`hash_path` identifies a file or a folder by one
BLAKE3 digest that anyone can recompute with ``b3sum`` and shell tools:

1. Every regular file under the folder gets a line
   ``<relative path>\\t<size in bytes>\\t<blake3 hex of its bytes>\\n``: the
   path is relative to the folder, with ``/`` between parts and no leading
   ``./``; the size is a decimal integer; the hex is lowercase, 64 digits,
   exactly what ``b3sum`` prints for the file.
2. The lines are sorted by the UTF-8 bytes of the path (``LC_ALL=C sort``)
   and concatenated, each ending in ``\\n`` (the last one too): the manifest.
3. The tree hash is ``blake3:`` + the BLAKE3 hex of the manifest's bytes.

A single file is a manifest of one line whose path is the file's name (not
the folder it is in). Folders contribute only through the files in them, so
an empty folder changes nothing, and a tree with no files is an error. A
symbolic link anywhere (the path itself included) is refused, never followed;
so are FIFOs, sockets and devices, file names that are not UTF-8, and names
with control characters (a tab or a newline would break the manifest).

**Speed.** Files are hashed on a pool of threads (BLAKE3 releases the GIL),
largest first; a file of at least :data:`LARGE_FILE` bytes is also hashed by
BLAKE3's own threads. Files are read through one reused buffer per
thread, never memory-mapped (a file cut short while mapped kills the
process with SIGBUS), and opened without following links and without
waiting (``O_NONBLOCK``): a file that was swapped for a FIFO, a link or
another file after the walk, or that changes while it is read, is an error
naming it, never a hang or a wrong hash. A
:class:`HashCache` remembers each file's digest by (absolute path, size,
mtime in ns, inode), so an unchanged tree is re-hashed from a walk that
only stats files.

Errors (all :class:`~regops.errors.RegopsError`)::

    DatasetError                 .path, .name, .version where known (``datasets.py`` adds its own below it)
    └── DatasetPathError         a file or folder that cannot be hashed (.file: the culprit)
        ├── SymlinkError         a symbolic link in the tree (.target)
        └── EmptyTreeError       no regular file at all
"""

from __future__ import annotations

import errno
import os
import re
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Final, NamedTuple

from blake3 import blake3

from regops.cache import MarshalCache
from regops.errors import RegopsError

__all__ = [
    "LARGE_FILE",
    "DatasetError",
    "DatasetPathError",
    "EmptyTreeError",
    "HashCache",
    "SymlinkError",
    "TreeHash",
    "hash_path",
    "os_reason",
]

# At or above this size a file is hashed by BLAKE3's own threads too (measured: a 512 MB file
# hashes ~10 % faster that way on 2 cores; for 1 MB files the per-file thread pool is faster).
LARGE_FILE: Final = 32 << 20
# Files are read through a buffer of this size per thread, never memory-mapped: a file truncated while
# mapped kills the process with SIGBUS. Measured (benchmarks/datasets.py, see the README's Speed section).
_CHUNK: Final = 1 << 20
# A file modified this recently may be modified again without its mtime changing
# (coarse file system clocks; 2 s on FAT), so its digest is not cached ("racy git").
_RACY_NS: Final = 2_000_000_000
_CACHE_FORMAT: Final = "regops-files-1"
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")
_buffers = threading.local()


# --- errors ----------------------------------------------------------------------


class DatasetError(RegopsError):
    """Anything that stops regops from identifying or registering a dataset."""

    path: Path | None = None
    name: str | None = None
    version: str | None = None


class DatasetPathError(DatasetError):
    """A file or folder that cannot be hashed; ``file`` is the culprit inside it."""

    def __init__(self, path: Path, message: str, *, file: Path | None = None) -> None:
        self.path = path
        self.file = file if file is not None else path
        super().__init__(f"cannot hash {path}: {message}")


class SymlinkError(DatasetPathError):
    def __init__(self, path: Path, link: Path) -> None:
        try:
            target = str(link.readlink())
        except OSError:
            target = "?"
        self.target = target
        super().__init__(
            path,
            f"{link} is a symbolic link (to {target}); regops never follows links: "
            "hash the target itself, or replace the link with a copy of the file",
            file=link,
        )


class EmptyTreeError(DatasetPathError):
    def __init__(self, path: Path) -> None:
        super().__init__(
            path,
            "the folder holds no files (empty folders contribute nothing, so there is nothing to identify); "
            "check the path, or add the data first",
        )


# --- the tree hash ---------------------------------------------------------------


@dataclass(frozen=True)
class TreeHash:
    """The identity of a file or folder: ``blake3:<64 hex>`` over its manifest (see the module docs)."""

    hash: str
    size_bytes: int
    file_count: int
    # How many files' bytes this call read (the rest came from the hash cache): not part of the identity.
    files_read: int = field(default=0, compare=False)


class _File(NamedTuple):
    rel: str
    path: str  # absolute: the cache key
    size: int
    mtime_ns: int
    ino: int

    @property
    def key(self) -> tuple[int, int, int]:
        return (self.size, self.mtime_ns, self.ino)


def hash_path(path: Path, *, cache: HashCache | None = None, workers: int | None = None) -> TreeHash:
    """The tree hash of a file or folder (module docs: exactly how it is computed).

    ``cache`` defaults to :meth:`HashCache.from_environment`; pass ``HashCache(None)``
    to read every byte. ``workers`` is the number of hashing threads (default: CPUs + 1).
    """
    # One more than CPUs: a thread is often waiting on a page fault (measured on 2 CPUs: 3 threads ~5 %
    # faster than 2; 4 no faster than 3).
    workers = workers if workers is not None else (os.cpu_count() or 1) + 1
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    cache = cache if cache is not None else HashCache.from_environment()
    root = path.absolute()
    # str order is code point order, which is the order of the UTF-8 bytes.
    files = sorted(_walk(path, root), key=lambda f: f.rel)
    if not files:
        raise EmptyTreeError(path)
    known = cache.read(root)
    digests = {f.path: hit[3] for f in files if (hit := known.get(f.path)) is not None and hit[:3] == f.key}
    misses = [f for f in files if f.path not in digests]
    started = time.time_ns()
    digests.update(_hash_files(path, misses, workers))
    if misses or len(known) != len(files):
        fresh = started - _RACY_NS
        cache.write(root, {f.path: (*f.key, digests[f.path]) for f in files if f.mtime_ns < fresh})
    manifest = "".join(f"{f.rel}\t{f.size}\t{digests[f.path].hex()}\n" for f in files)
    digest = blake3(manifest.encode("utf-8")).hexdigest()
    return TreeHash(f"blake3:{digest}", sum(f.size for f in files), len(files), files_read=len(misses))


def _walk(path: Path, root: Path) -> Iterator[_File]:
    try:
        st = os.lstat(root)
    except OSError as e:
        raise DatasetPathError(path, os_reason(e)) from e
    if stat.S_ISLNK(st.st_mode):
        raise SymlinkError(path, path)
    if stat.S_ISREG(st.st_mode):
        yield _file(path, root.name, str(root), st)
        return
    if not stat.S_ISDIR(st.st_mode):
        raise DatasetPathError(path, "not a regular file or a folder (a FIFO, socket or device)")
    todo = [(str(root), "")]
    while todo:
        folder, prefix = todo.pop()
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError as e:
            raise DatasetPathError(path, f"cannot list {folder}: {os_reason(e)}", file=Path(folder)) from e
        for entry in entries:
            rel = prefix + entry.name
            if entry.is_symlink():
                raise SymlinkError(path, Path(entry.path))
            if entry.is_dir(follow_symlinks=False):
                todo.append((entry.path, rel + "/"))
            elif entry.is_file(follow_symlinks=False):
                yield _file(path, rel, entry.path, entry.stat(follow_symlinks=False))
            else:
                raise DatasetPathError(
                    path, f"{entry.path} is not a regular file (a FIFO, socket or device): move it out of the tree"
                )


def _file(path: Path, rel: str, absolute: str, st: os.stat_result) -> _File:
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError as e:
        raise DatasetPathError(
            path, f"the name {rel!r} is not valid UTF-8: rename the file", file=Path(absolute)
        ) from e
    if _CONTROL.search(rel):
        raise DatasetPathError(
            path,
            f"the name {rel!r} contains a control character (tab, newline, …) that the manifest cannot hold: "
            "rename the file",
            file=Path(absolute),
        )
    return _File(rel, absolute, st.st_size, st.st_mtime_ns, st.st_ino)


def _hash_files(path: Path, files: list[_File], workers: int) -> dict[str, bytes]:
    """Digests by absolute path, on ``workers`` threads (this one included), largest file first."""
    todo = iter(sorted(files, key=lambda f: f.size, reverse=True))  # largest first: the threads finish together
    digests: dict[str, bytes] = {}
    if workers == 1 or len(files) < 2:
        return {file.path: _hash_file(path, file) for file in todo}

    # Plain threads pulling from one iterator: a ThreadPoolExecutor costs ~30 µs a file (60 ms for 2,000).
    lock, stop = threading.Lock(), threading.Event()
    failed: list[Exception] = []

    def work() -> None:
        while not stop.is_set():
            with lock:
                file = next(todo, None)
            if file is None:
                return
            try:
                digests[file.path] = _hash_file(path, file)
            except Exception as e:  # raised again in the calling thread, below
                failed.append(e)
                stop.set()

    helpers = [threading.Thread(target=work, name=f"regops-hash-{n}", daemon=True) for n in range(workers - 1)]
    for thread in helpers:
        thread.start()
    try:
        work()
    finally:
        stop.set()  # after an error or Ctrl-C, each helper finishes its file and stops
        for thread in helpers:
            thread.join()
    if failed:
        raise failed[0]
    return digests


def _hash_file(path: Path, file: _File) -> bytes:
    hasher = blake3(max_threads=blake3.AUTO if file.size >= LARGE_FILE else 1)
    try:
        # O_NONBLOCK: a FIFO swapped in since the walk opens at once (and is refused below) instead of
        # waiting forever for a writer; it changes nothing for a regular file.
        fd = os.open(file.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise _unreadable(path, file, e) from e
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode):
            raise DatasetPathError(
                path,
                f"{file.path} is no longer a regular file (a FIFO, socket or device took its place while the "
                "tree was being hashed): move it out of the tree and hash again",
                file=Path(file.path),
            )
        read = _feed(fd, hasher, file.size) if opened.st_ino == file.ino else -1
        after = os.lstat(file.path)
    except OSError as e:
        raise _unreadable(path, file, e) from e
    finally:
        os.close(fd)
    if read != file.size or (after.st_size, after.st_mtime_ns, after.st_ino) != file.key:
        raise DatasetPathError(
            path,
            f"{file.path} changed while it was being hashed (its size, time or inode moved); "
            "hash again when whatever writes it has finished",
            file=Path(file.path),
        )
    return hasher.digest()


def _feed(fd: int, hasher: blake3, size: int) -> int:
    """Hash what ``fd`` holds, read (never mapped: a file cut short while mapped kills the process with
    SIGBUS) through this thread's buffer; stops a chunk past ``size``. Returns the bytes read."""
    buffer = _buffer()
    total = 0
    with open(fd, "rb", buffering=0, closefd=False) as stream:
        while total <= size:
            count = stream.readinto(buffer)
            if not count:
                break
            hasher.update(buffer[:count])
            total += count
    return total


def _buffer() -> memoryview:
    # One buffer per thread, reused for every file: fresh memory is slow to touch, a reused buffer is not.
    buffer: memoryview | None = getattr(_buffers, "buffer", None)
    if buffer is None:
        buffer = _buffers.buffer = memoryview(bytearray(_CHUNK))
    return buffer


def _unreadable(path: Path, file: _File, error: OSError) -> DatasetPathError:
    if error.errno == errno.ELOOP:
        reason = "it became a symbolic link while the tree was being hashed (regops never follows links)"
    else:
        reason = os_reason(error)
    return DatasetPathError(path, f"cannot read {file.path}: {reason}", file=Path(file.path))


def os_reason(error: OSError) -> str:
    return (error.strerror or str(error)).lower()


# --- the cache -------------------------------------------------------------------

CacheEntry = tuple[int, int, int, bytes]  # size, mtime_ns, inode, blake3 digest


class HashCache(MarshalCache):
    """Per-file BLAKE3 digests keyed by (absolute path, size, mtime_ns, inode), one file per hashed tree.

    Where it lives and how it is written: :class:`regops.cache.MarshalCache`.
    A file changed in place with its size, mtime and inode restored (a
    deliberate ``touch -d``) would be served from the cache: clear it with
    ``rm -r ~/.cache/regops`` in that case.
    """

    prefix: ClassVar[str] = "files-"

    def namespace(self) -> str:
        return _CACHE_FORMAT

    def read(self, key: Path) -> dict[str, CacheEntry]:
        return {k: v for k, v in super().read(key).items() if _is_entry(k, v)}


def _is_entry(key: object, value: object) -> bool:
    return (
        isinstance(key, str)
        and isinstance(value, tuple)
        and len(value) == 4
        and all(type(v) is int for v in value[:3])
        and isinstance(value[3], bytes)
        and len(value[3]) == 32
    )
