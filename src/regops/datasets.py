"""Dataset identity: a content hash of files, or a reference to data regops does not read.

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

**References.** A ``.dvc`` / ``dvc.lock`` entry (:func:`read_dvc`: DVC's md5),
an Iceberg snapshot and a Delta Lake version are recorded without reading
the data. :func:`register_dataset` writes ``datasets/<name>/<version>.yaml``.

Errors (all :class:`~regops.errors.RegopsError`)::

    DatasetError                 .path, .name, .version where known
    ├── DatasetPathError         a file or folder that cannot be hashed (.file: the culprit)
    │   ├── SymlinkError         a symbolic link in the tree (.target)
    │   └── EmptyTreeError       no regular file at all
    ├── DvcFileError             a DVC file that cannot be read, or has no such output (.candidates)
    ├── DatasetExistsError       that dataset version is registered already
    ├── DatasetWriteError        the version file could not be written (nothing was)
    └── InvalidDatasetError      the record would not pass its schema (.problems)
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Final, NamedTuple

from blake3 import blake3

from regops.errors import RegistryNotFoundError, RegopsError
from regops.store import MarshalCache

if TYPE_CHECKING:
    from datetime import datetime

    from regops.kinds import Problem

__all__ = [
    "LARGE_FILE",
    "DatasetError",
    "DatasetExistsError",
    "DatasetIdentity",
    "DatasetPathError",
    "DatasetWriteError",
    "DvcEntry",
    "DvcFileError",
    "EmptyTreeError",
    "FromDelta",
    "FromDvc",
    "FromFiles",
    "FromIceberg",
    "HashCache",
    "InvalidDatasetError",
    "SymlinkError",
    "TreeHash",
    "hash_path",
    "identify",
    "one_source",
    "read_dvc",
    "register_dataset",
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
SCHEMA_LINE: Final = "# yaml-language-server: $schema=../../../schemas/dataset-version.schema.json"


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


class DvcFileError(DatasetError):
    """A ``.dvc`` or ``dvc.lock`` file that cannot be read, or has no such entry."""

    def __init__(self, path: Path, message: str, *, entry: str | None = None, candidates: Sequence[str] = ()) -> None:
        self.path = path
        self.entry = entry
        self.candidates = tuple(candidates)
        super().__init__(f"{path}: {message}")


class DatasetExistsError(DatasetError):
    def __init__(self, path: Path, name: str, version: str, shown: str) -> None:
        self.path, self.name, self.version = path, name, version
        super().__init__(
            f"dataset version {name}@{version} exists: {shown} (a registered version never changes; "
            "register the new data under a new --version)"
        )


class DatasetWriteError(DatasetError):
    def __init__(self, path: Path, name: str, version: str, message: str) -> None:
        self.path, self.name, self.version = path, name, version
        super().__init__(f"{message}; nothing was written (check the folder's permissions and free space)")


class InvalidDatasetError(DatasetError):
    """The dataset version would not pass its schema; ``problems`` says why, field by field."""

    def __init__(self, name: str, version: str, problems: Sequence[Problem]) -> None:
        self.name, self.version = name, version
        self.problems = tuple(problems)
        listed = "; ".join(f"{p.field}: {p.message}" if p.field else p.message for p in self.problems)
        super().__init__(f"cannot register dataset {name}@{version}: {listed}; nothing was written")


# --- the tree hash ---------------------------------------------------------------


@dataclass(frozen=True)
class TreeHash:
    """The identity of a file or folder: ``blake3:<64 hex>`` over its manifest (see the module docs)."""

    hash: str
    size_bytes: int
    file_count: int


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
    return TreeHash(f"blake3:{digest}", sum(f.size for f in files), len(files))


def _walk(path: Path, root: Path) -> Iterator[_File]:
    try:
        st = os.lstat(root)
    except OSError as e:
        raise DatasetPathError(path, _reason(e)) from e
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
            raise DatasetPathError(path, f"cannot list {folder}: {_reason(e)}", file=Path(folder)) from e
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
        reason = _reason(error)
    return DatasetPathError(path, f"cannot read {file.path}: {reason}", file=Path(file.path))


def _reason(error: OSError) -> str:
    return (error.strerror or str(error)).lower()


# --- the cache -------------------------------------------------------------------

CacheEntry = tuple[int, int, int, bytes]  # size, mtime_ns, inode, blake3 digest


class HashCache(MarshalCache):
    """Per-file BLAKE3 digests keyed by (absolute path, size, mtime_ns, inode), one file per hashed tree.

    Where it lives and how it is written: :class:`regops.store.MarshalCache`.
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


# --- DVC -------------------------------------------------------------------------

_DVC_MD5: Final = re.compile(r"^([0-9a-f]{32})(\.dir)?$")


@dataclass(frozen=True)
class DvcEntry:
    """One output of a ``.dvc`` or ``dvc.lock`` file: its path and DVC's md5 as ``md5:<32 hex>``."""

    file: Path
    path: str
    hash: str
    size_bytes: int | None
    file_count: int | None
    directory: bool
    stage: str | None = None


def read_dvc(file: Path, *, path: str | None = None) -> DvcEntry:
    """The output ``path`` of a ``.dvc`` or ``dvc.lock`` file (the only one, when ``path`` is None)."""
    from regops import store

    try:
        raw = file.read_bytes()
    except OSError as e:
        raise DvcFileError(file, f"cannot read: {_reason(e)}") from e
    parsed = store.parse_bytes(raw, file.as_posix())
    if parsed.data is None:
        assert parsed.problem is not None
        raise DvcFileError(file, f"not a DVC file: {parsed.problem.message}")
    outs = _dvc_outs(file, parsed.data)
    return _dvc_entry(file, _pick(file, outs, path))


def _dvc_outs(file: Path, data: dict[str, Any]) -> list[tuple[str | None, dict[str, Any]]]:
    stages = data.get("stages")
    if stages is None and data and all(isinstance(v, dict) and "cmd" in v for v in data.values()):
        stages = data  # the dvc.lock of DVC 1: stages at the top level
    if "outs" in data:
        groups: list[tuple[str | None, Any]] = [(None, data["outs"])]
    elif isinstance(stages, dict):
        groups = [(str(name), stage.get("outs")) for name, stage in stages.items() if isinstance(stage, dict)]
    else:
        raise DvcFileError(file, "has neither outs (a .dvc file) nor stages (a dvc.lock file)")
    outs: list[tuple[str | None, dict[str, Any]]] = []
    for stage, items in groups:
        if items is None:
            continue
        if not isinstance(items, list) or not all(isinstance(o, dict) and "path" in o for o in items):
            where = f"stage {stage}: " if stage else ""
            raise DvcFileError(file, f"{where}outs must be a list of entries with a path")
        outs += [(stage, out) for out in items]
    if not outs:
        raise DvcFileError(file, "lists no outputs (outs); run `dvc add` or `dvc repro` first")
    return outs


def _pick(
    file: Path, outs: list[tuple[str | None, dict[str, Any]]], path: str | None
) -> tuple[str | None, dict[str, Any]]:
    names = [str(out["path"]) for _, out in outs]
    listed = ", ".join(names)
    if path is None:
        if len(outs) == 1:
            return outs[0]
        raise DvcFileError(file, f"has {len(outs)} outputs ({listed}): say which one by its path", candidates=names)
    wanted = _normal(path)
    for stage, out in outs:
        if _normal(str(out["path"])) == wanted:
            return stage, out
    raise DvcFileError(file, f"has no output {path!r}; its outputs: {listed}", entry=path, candidates=names)


def _normal(path: str) -> str:
    return path.removeprefix("./").rstrip("/")


def _dvc_entry(file: Path, picked: tuple[str | None, dict[str, Any]]) -> DvcEntry:
    stage, out = picked
    name = str(out["path"])
    algorithm = out.get("hash", "md5")
    md5 = out.get("md5")
    if type(md5) is int and 0 <= md5 < 10**32:
        md5 = f"{md5:032d}"  # an all-digit md5 written without quotes reads as a number
    match = _DVC_MD5.match(md5) if isinstance(md5, str) else None
    if algorithm != "md5" or match is None:
        raise DvcFileError(
            file,
            f"output {name!r} has no md5 (found {md5!r}); regops reads DVC's md5 of local outputs: "
            "run `dvc commit` or `dvc add` to record it",
            entry=name,
        )
    directory = match.group(2) is not None
    size, nfiles = out.get("size"), out.get("nfiles")
    return DvcEntry(
        file=file,
        path=name,
        hash=f"md5:{match.group(1)}",
        size_bytes=size if type(size) is int and size >= 0 else None,
        file_count=(nfiles if type(nfiles) is int and nfiles >= 0 else None) if directory else 1,
        directory=directory,
        stage=stage,
    )


# --- sources and identities -------------------------------------------------------


@dataclass(frozen=True)
class FromFiles:
    """A file or folder to hash (recorded as ``source: {kind: files, path}``)."""

    path: Path


@dataclass(frozen=True)
class FromDvc:
    """An output of a ``.dvc`` or ``dvc.lock`` file; ``path`` picks one when there are several."""

    file: Path
    path: str | None = None


@dataclass(frozen=True)
class FromIceberg:
    """An Apache Iceberg table snapshot (the data is not read)."""

    table: str
    snapshot: int


@dataclass(frozen=True)
class FromDelta:
    """A Delta Lake table version (the data is not read)."""

    path: str
    version: int


Source = FromFiles | FromDvc | FromIceberg | FromDelta


@dataclass(frozen=True)
class DatasetIdentity:
    """What a dataset version records about its data: ``hash``, what is known of its size, ``source``."""

    hash: str
    source: dict[str, Any]
    size_bytes: int | None = None
    file_count: int | None = None


def identify(source: Source, *, cache: HashCache | None = None, workers: int | None = None) -> DatasetIdentity:
    """Hash files, read a DVC entry, or name a table snapshot: the data's identity."""
    if isinstance(source, FromFiles):
        tree = hash_path(source.path, cache=cache, workers=workers)
        files = {"kind": "files", "path": source.path.as_posix()}
        return DatasetIdentity(tree.hash, files, tree.size_bytes, tree.file_count)
    if isinstance(source, FromDvc):
        entry = read_dvc(source.file, path=source.path)
        dvc = {"kind": "dvc", "file": source.file.as_posix(), "path": entry.path}
        return DatasetIdentity(entry.hash, dvc, entry.size_bytes, entry.file_count)
    if isinstance(source, FromIceberg):
        iceberg = {"kind": "iceberg", "table": source.table, "snapshot": source.snapshot}
        return DatasetIdentity(f"iceberg:{source.snapshot}", iceberg)
    delta = {"kind": "delta", "path": source.path, "version": source.version}
    return DatasetIdentity(f"delta:{source.version}", delta)


# --- registering -----------------------------------------------------------------


def register_dataset(
    registry_root: Path,
    name: str,
    *,
    version: str,
    source: Source,
    by: str | None = None,
    description: str | None = None,
    uri: str | None = None,
    now: datetime | None = None,
    cache: HashCache | None = None,
    workers: int | None = None,
) -> Path:
    """Write ``datasets/<name>/<version>.yaml`` for the data ``source`` names; returns the new file.

    A bad name or version and a version that exists are refused before any
    data is read; a record that would not pass the schema, before anything is
    written. The file appears whole or not at all, and never replaces another.
    """
    if now is not None and now.tzinfo is None:
        raise ValueError("now must carry a time zone (e.g. datetime.now(UTC))")
    root = _registry_root(registry_root)
    _check_names(name, version)
    target = root / "datasets" / name / f"{version}.yaml"
    shown = _shown(root, target)
    if target.exists():
        raise DatasetExistsError(target, name, version, shown)
    identity = identify(source, cache=cache, workers=workers)
    data = _record(name, version, identity, by=by, description=description, uri=uri, now=now)
    _validate(data, shown)
    text = render(data)
    _check_round_trip(text, data, shown)
    _write_new(target, text, name, version, shown)
    return target


def _registry_root(path: Path) -> Path:
    from regops.registry import CONFIG_FILE

    for candidate in (path, path / "registry"):
        if (candidate / CONFIG_FILE).is_file():
            return candidate
    raise RegistryNotFoundError(path)


def _check_names(name: str, version: str) -> None:
    from regops.files import DATASET_VERSION_PATTERN, NAME_PATTERN
    from regops.kinds import Problem

    problems = []
    if not re.fullmatch(NAME_PATTERN, name):
        problems.append(
            Problem(
                "",
                field="name",
                message=f"{name!r} is not a dataset name: use lowercase letters, digits, '.', '_' and '-' "
                "(at most 64, starting and ending with a letter or digit)",
            )
        )
    if not re.fullmatch(DATASET_VERSION_PATTERN, version):
        problems.append(
            Problem(
                "",
                field="version",
                message=f"{version!r} is not a dataset version: use letters, digits, '.', '_' and '-' "
                "(at most 64, starting and ending with a letter or digit), e.g. 2025-09-08 or v3",
            )
        )
    if problems:
        raise InvalidDatasetError(name, version, problems)


def _record(
    name: str,
    version: str,
    identity: DatasetIdentity,
    *,
    by: str | None,
    description: str | None,
    uri: str | None,
    now: datetime | None,
) -> dict[str, Any]:
    from datetime import UTC, datetime

    moment = now if now is not None else datetime.now(UTC)
    fields: dict[str, Any] = {
        "name": name,
        "version": version,
        "hash": identity.hash,
        "created_at": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "created_by": by,
        "description": description,
        "uri": uri,
        "size_bytes": identity.size_bytes,
        "file_count": identity.file_count,
        "source": identity.source,
    }
    return {k: v for k, v in fields.items() if v is not None}


def _validate(data: dict[str, Any], shown: str) -> None:
    from regops.schema import check

    problems = check("dataset", data, shown)
    if problems:
        raise InvalidDatasetError(data["name"], data["version"], problems)


# --- the file's text ---------------------------------------------------------------

# Plain (unquoted) only when no YAML reader could take the text for anything but that string.
_PLAIN: Final = re.compile(r"[A-Za-z][A-Za-z0-9._/@+:-]*[A-Za-z0-9]|[A-Za-z]")
_RESERVED: Final = frozenset({"true", "false", "null", "yes", "no", "on", "off", "y", "n"})
_TIMESTAMP: Final = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def render(data: dict[str, Any]) -> str:
    """The exact text of a dataset version file: the schema line, then one field a line, block style."""
    import json

    lines = [SCHEMA_LINE]
    for key, value in data.items():
        if isinstance(value, dict):
            lines.append(f"{key}:")
            lines += [f"  {k}: {_scalar(v)}" for k, v in value.items()]
        elif key == "version":
            lines.append(f"{key}: {json.dumps(value)}")  # always a string, whatever it looks like
        else:
            lines.append(f"{key}: {_scalar(value)}")
    return "\n".join(lines) + "\n"


def _scalar(value: Any) -> str:
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    if _TIMESTAMP.fullmatch(text):
        return text  # the loader leaves timestamps as text; they read best unquoted
    if _PLAIN.fullmatch(text) and text.lower() not in _RESERVED:
        return text
    return json.dumps(text, ensure_ascii=False)


def _check_round_trip(text: str, data: dict[str, Any], shown: str) -> None:
    from regops import store

    parsed = store.parse_bytes(text.encode("utf-8"), shown)
    if parsed.data != data:
        raise RuntimeError(f"bug in regops: {shown} would not read back as written ({parsed.problem or parsed.data})")


def _shown(root: Path, path: Path) -> str:
    try:
        return path.relative_to(root.parent).as_posix()
    except ValueError:
        return path.as_posix()


def _write_new(target: Path, text: str, name: str, version: str, shown: str) -> None:
    """Create ``target`` with ``text`` atomically; never replace a file that appeared meanwhile."""
    created = [p for p in (target.parent.parent, target.parent) if not p.exists()]
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        _link(tmp, target, DatasetExistsError(target, name, version, shown))
    except OSError as e:
        _remove(tmp, *reversed(created))  # leave the registry as it was
        raise DatasetWriteError(target, name, version, f"cannot write {shown}: {_reason(e)}") from e
    finally:
        _remove(tmp)


def _remove(tmp: Path, *folders: Path) -> None:
    with contextlib.suppress(OSError):
        tmp.unlink(missing_ok=True)
    for folder in folders:
        with contextlib.suppress(OSError):
            folder.rmdir()


def _link(tmp: Path, target: Path, exists: DatasetExistsError) -> None:
    try:
        os.link(tmp, target)  # fails if the file exists: no check-then-write race
    except FileExistsError as e:
        raise exists from e
    except OSError:  # a file system without hard links
        if target.exists():
            raise exists from None
        tmp.replace(target)


def one_source(
    *,
    path: str | Path | None,
    dvc: str | Path | None,
    dvc_path: str | None,
    iceberg: str | None,
    snapshot: int | None,
    delta: str | None,
    delta_version: int | None,
) -> Source:
    """The one source a dataset version is recorded from; naming none, or more than one, is refused."""
    sources: list[Source] = []
    if path is not None:
        sources.append(FromFiles(Path(path)))
    if dvc is not None:
        sources.append(FromDvc(Path(dvc), dvc_path))
    if iceberg is not None or snapshot is not None:
        if iceberg is None or snapshot is None:
            raise RegopsError("an Iceberg reference needs both --iceberg TABLE and --snapshot ID")
        sources.append(FromIceberg(iceberg, snapshot))
    if delta is not None or delta_version is not None:
        if delta is None or delta_version is None:
            raise RegopsError("a Delta reference needs both --delta PATH and --delta-version N")
        sources.append(FromDelta(delta, delta_version))
    if len(sources) != 1:
        raise RegopsError(
            "name the data once: PATH, --from-dvc FILE, --iceberg TABLE --snapshot ID or --delta PATH --delta-version N"
        )
    return sources[0]
