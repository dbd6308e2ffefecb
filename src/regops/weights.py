"""Where weights live: the storage interface, hashing, and verified downloads.

A backend (``adapters/local.py``, ``adapters/hub.py``) only moves bytes: it
stores a version's files, says which it lacks, streams one file out, copies
files between its hot and cold tiers and removes hot copies no longer needed. What must never go wrong is here,
shared by every backend:

* :func:`hash_files` — sha256 of every file, streamed, in parallel;
* :func:`download` — every byte re-hashed against the version file; a
  mismatch names the file and both hashes and leaves DEST untouched; files
  appear in DEST only complete and verified (each renamed into place); an
  interrupted download resumes from a staging folder inside DEST.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Final, Protocol

from regops.errors import RegopsError

__all__ = [
    "CHUNK",
    "PARTIAL_DIR",
    "Artifact",
    "ArtifactsMissingError",
    "HashMismatchError",
    "OversizeError",
    "PutResult",
    "SourceChangedError",
    "Storage",
    "StorageError",
    "download",
    "hash_files",
    "holds",
    "part_name",
    "real_folders",
    "sha256_file",
    "sha256_stream",
]

CHUNK: Final = 1 << 20
# Inside DEST, so a resumed download finds it, and hidden, so nothing half-written is mistaken for weights.
PARTIAL_DIR: Final = ".regops-partial"

Progress = Callable[[int], None]


class StorageError(RegopsError):
    """A backend could not store or fetch what it was asked to."""


class HashMismatchError(StorageError):
    def __init__(self, path: str, expected: str, actual: str, where: str) -> None:
        self.path, self.expected, self.actual = path, expected, actual
        super().__init__(
            f"{path}: sha256 {actual} does not match {expected} recorded in the version file "
            f"({where}); refusing it. The stored copy is damaged or was replaced: nothing was written"
        )


class OversizeError(StorageError):
    def __init__(self, path: str, size: int, where: str) -> None:
        self.path, self.size = path, size
        super().__init__(
            f"{path}: {where} sent more than the {size} bytes recorded in the version file; stopped at the first "
            "byte too many and refused it. The stored copy is damaged or was replaced: nothing was written"
        )


class SourceChangedError(StorageError):
    def __init__(self, path: str, hashed: str, copied: str) -> None:
        self.path, self.hashed, self.copied = path, hashed, copied
        super().__init__(
            f"{path} changed while it was being stored (sha256 {hashed} when hashed, {copied} when copied); "
            "nothing was stored for it: make sure nothing is still writing the artifacts, then run again"
        )


class ArtifactsMissingError(StorageError):
    def __init__(self, ref: str, missing: Sequence[str], where: str, hint: str = "") -> None:
        self.ref, self.missing = ref, list(missing)
        listed = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        super().__init__(
            f"{ref}: {listed} not retrievable from {where}{hint}; nothing was changed: the version file says the "
            f"weights are there, so put them back (from a backup, or from the machine that registered {ref}) "
            "and run again"
        )


@dataclass(frozen=True)
class Artifact:
    """One file of a version: its path inside the version, size and sha256."""

    path: str
    size: int
    sha256: str

    @classmethod
    def from_record(cls, entry: dict[str, Any]) -> Artifact:
        return cls(entry["path"], entry["size"], entry["sha256"])


@dataclass(frozen=True)
class PutResult:
    location: dict[str, Any]  # the version file's artifacts.storage
    uploaded_files: int
    uploaded_bytes: int
    present_files: int  # already stored (content-addressed: shared or from an earlier, interrupted run)


class Storage(Protocol):
    """What a backend does. Locations are the version file's ``artifacts.storage`` mappings."""

    def put(self, source: Path, artifacts: Sequence[Artifact], *, model: str, version: str) -> PutResult:
        """Store the files under ``source`` (each verified against its sha256 on the way in)."""
        ...

    def missing(self, artifacts: Sequence[Artifact], location: dict[str, Any]) -> list[Artifact]:
        """The artifacts that cannot be fetched from ``location``."""
        ...

    def open(self, artifact: Artifact, location: dict[str, Any], offset: int) -> Iterable[bytes]:
        """The stored bytes of one artifact, from ``offset`` on."""
        ...

    def describe(self, location: dict[str, Any]) -> str:
        """Where ``location`` is, for people."""
        ...

    def to_cold(
        self, artifacts: Sequence[Artifact], location: dict[str, Any], *, model: str, version: str
    ) -> dict[str, Any]:
        """Copy to cold storage and verify the copy; returns the cold location. The hot copy stays."""
        ...

    def restore(
        self, artifacts: Sequence[Artifact], location: dict[str, Any], *, model: str, version: str
    ) -> dict[str, Any]:
        """Copy back to hot storage and verify; returns the hot location."""
        ...

    def release(self, artifacts: Sequence[Artifact], *, model: str, keep: set[str]) -> int:
        """Remove the hot copies of ``artifacts`` whose sha256 is not in ``keep``; how many were removed."""
        ...

    def held(self, artifacts: Sequence[Artifact], *, model: str) -> bool:
        """Whether hot storage still holds any of ``artifacts`` (a move that stopped before removing them)."""
        ...


def sha256_file(path: Path, progress: Progress | None = None) -> str:
    with path.open("rb") as handle:
        return sha256_stream(handle, progress)


def sha256_stream(handle: BinaryIO, progress: Progress | None = None) -> str:
    """The sha256 of what is left to read in ``handle``."""
    digest = hashlib.sha256()
    while chunk := handle.read(CHUNK):
        digest.update(chunk)
        if progress:
            progress(len(chunk))
    return digest.hexdigest()


def hash_files(root: Path, paths: Sequence[str], *, progress: Progress | None = None) -> list[Artifact]:
    """sha256 and size of each file under ``root``, in parallel (hashlib releases the GIL)."""
    workers = min(len(paths), max(2, os.cpu_count() or 1)) or 1
    with ThreadPoolExecutor(max_workers=workers) as pool:
        digests = list(pool.map(lambda p: sha256_file(root / p, progress), paths))
    return [Artifact(p, (root / p).stat().st_size, d) for p, d in zip(paths, digests, strict=True)]


def part_name(artifact: Artifact) -> str:
    """The staging file of one artifact: keyed by its path and its sha256, so two files with the same bytes never
    share one, and a part left by another version's file of that path is never resumed."""
    where = hashlib.sha256(artifact.path.encode()).hexdigest()[:16]
    return f"{artifact.sha256}.{where}.part"


def download(
    storage: Storage,
    artifacts: Sequence[Artifact],
    location: dict[str, Any],
    dest: Path,
    *,
    ref: str,
    progress: Progress | None = None,
) -> list[Path]:
    """Fetch every artifact into ``dest``, verified; returns the files written.

    Files already in ``dest`` with the right hash are kept; the rest are
    streamed into ``dest/.regops-partial/`` (appending to what an interrupted
    run left), all verified, and only then renamed into place. On a hash
    mismatch ``dest`` is left as it was (the staging folder is removed). One
    download at a time per ``dest``: a second one stops with a clear error; the
    lock is held until the staging folder is gone. Nothing planted in ``dest``
    (a symlink, a FIFO, a hard link) is written through, and only regular files
    this call verified are moved into place.
    """
    if dest.exists() and not dest.is_dir():
        raise StorageError(f"{dest} is a file; --dest must be a folder (it is created if missing)")
    created = _first_missing(dest)
    try:
        dest.mkdir(parents=True, exist_ok=True)
        with _dest_lock(dest):
            try:
                written = _download_locked(storage, artifacts, location, dest, ref=ref, progress=progress)
            except (HashMismatchError, OversizeError):
                # Leave DEST as it was: no staging folder, and none of the folders this call created.
                _remove_tree(created or dest / PARTIAL_DIR)
                raise
            except ArtifactsMissingError:
                if created is not None:
                    _remove_tree(created)
                raise
            _remove_tree(dest / PARTIAL_DIR)
    except OSError as e:
        raise StorageError(f"cannot write into {dest}: {e.strerror or e} ({e.filename or dest})") from e
    return written


def _download_locked(
    storage: Storage,
    artifacts: Sequence[Artifact],
    location: dict[str, Any],
    dest: Path,
    *,
    ref: str,
    progress: Progress | None,
) -> list[Path]:
    todo = [a for a in artifacts if not _complete(dest, a)]
    _check_missing(storage, todo, location, ref)
    staging = _staging(dest)
    fetched = {a.path: _fetch_verified(storage, a, location, staging, progress) for a in todo}
    targets = [_target(dest, a.path) for a in todo]
    return [_place(staging / part_name(a), target, fetched[a.path]) for a, target in zip(todo, targets, strict=True)]


def _check_missing(storage: Storage, artifacts: Sequence[Artifact], location: dict[str, Any], ref: str) -> None:
    missing = storage.missing(artifacts, location) if artifacts else []
    if missing:
        raise ArtifactsMissingError(ref, [a.path for a in missing], storage.describe(location))


@contextmanager
def _dest_lock(dest: Path) -> Iterator[None]:
    """Hold DEST's lock (on the folder itself, so nothing is left behind) for a whole download and its cleanup."""
    fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StorageError(
                f"another download into {dest} is running; wait for it or choose another --dest"
            ) from None
        if not os.path.samestat(os.fstat(fd), dest.stat()):
            raise StorageError(f"{dest} was removed or replaced while this download started; run it again")
        yield
    finally:
        os.close(fd)


def _staging(dest: Path) -> Path:
    """DEST's staging folder, made by regops: whatever else stands at its name (a planted symlink) is removed."""
    staging = dest / PARTIAL_DIR
    try:
        staging.mkdir(0o700)
    except FileExistsError:
        if not stat.S_ISDIR(os.lstat(staging).st_mode):
            staging.unlink()  # a symlink or file: only the link goes, never what it points at
            staging.mkdir(0o700)
    return staging


def _remove_tree(path: Path) -> None:
    if path.is_symlink():
        path.unlink()
    else:
        shutil.rmtree(path, ignore_errors=True)


def _fetch_verified(
    storage: Storage, artifact: Artifact, location: dict[str, Any], staging: Path, progress: Progress | None
) -> tuple[int, int]:
    """Fetch one artifact into its part file and verify it; the part's (device, inode)."""
    part = staging / part_name(artifact)
    where = storage.describe(location)
    with _open_part(part) as out:
        resumed = os.fstat(out.fileno()).st_size > 0
        actual = _fetch(storage, artifact, location, out, where, progress)
        if actual != artifact.sha256 and resumed:
            # What an interrupted run left may be damaged itself: fetch it all once more before blaming the store.
            out.truncate(0)
            actual = _fetch(storage, artifact, location, out, where, progress)
        if actual != artifact.sha256:
            raise HashMismatchError(artifact.path, artifact.sha256, actual, where)
        done = os.fstat(out.fileno())
    return done.st_dev, done.st_ino


def _open_part(part: Path) -> BinaryIO:
    """The part file, for reading and appending; anything but a regular file with one link (a planted symlink,
    FIFO or hard link) is removed, never followed, and a fresh file created exclusively."""
    flags = os.O_RDWR | os.O_APPEND | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(part, flags)
    except FileNotFoundError:
        fd = -1
    except OSError:  # ELOOP: a symlink
        part.unlink()
        fd = -1
    if fd >= 0 and not _private_file(os.fstat(fd)):
        os.close(fd)
        part.unlink()
        fd = -1
    if fd < 0:
        fd = os.open(part, flags | os.O_CREAT | os.O_EXCL, 0o600)
    return os.fdopen(fd, "r+b")


def _private_file(st: os.stat_result) -> bool:
    return stat.S_ISREG(st.st_mode) and st.st_nlink == 1


def _target(dest: Path, path: str) -> Path:
    """Where ``path`` goes in ``dest``; its folders made, none of them a symlink (which would lead out of DEST)."""
    *folders, name = path.split("/")
    target = real_folders(dest, folders) / name
    if target.is_dir() and not target.is_symlink():
        raise StorageError(f"{target} is a folder where {path} goes; move it away")
    return target


def real_folders(root: Path, names: Sequence[str]) -> Path:
    """``root/names…``, each folder made when missing and refused when it is anything but a real folder (a symlink
    planted there would lead what regops writes out of ``root``)."""
    folder = root
    for name in names:
        folder /= name
        with suppress(FileExistsError):
            folder.mkdir()
        if not stat.S_ISDIR(os.lstat(folder).st_mode):
            raise StorageError(f"{folder} is not a folder (a symlink or file was put there); move it away, run again")
    return folder


def _place(part: Path, target: Path, verified: tuple[int, int]) -> Path:
    """Rename the verified part into place, and check that what landed is that very file."""
    part.replace(target)
    landed = os.lstat(target)
    if (landed.st_dev, landed.st_ino) != verified or not stat.S_ISREG(landed.st_mode):
        target.unlink()
        raise StorageError(f"{part} was replaced after it was verified (by another program?); run the download again")
    return target


def _first_missing(path: Path) -> Path | None:
    """The outermost folder of ``path`` that does not exist yet (what a failed download must remove)."""
    missing = None
    for folder in [path, *path.parents]:
        if folder.exists():
            break
        missing = folder
    return missing


def _complete(dest: Path, artifact: Artifact) -> bool:
    """Whether DEST already holds ``artifact``: a regular file, reached through no symlink, with its bytes."""
    *folders, name = artifact.path.split("/")
    path = dest
    try:
        for folder in folders:
            path /= folder
            if not stat.S_ISDIR(os.lstat(path).st_mode):
                return False
    except OSError:
        return False
    return holds(path / name, artifact)


def holds(path: Path, artifact: Artifact) -> bool:
    """Whether ``path`` is a regular file (never followed through a link, never a FIFO) with ``artifact``'s bytes."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    found = os.fstat(fd)
    if not stat.S_ISREG(found.st_mode) or found.st_size != artifact.size:
        os.close(fd)
        return False
    with os.fdopen(fd, "rb") as handle:
        return sha256_stream(handle) == artifact.sha256


def _fetch(  # noqa: PLR0917 - private, called from one place
    storage: Storage,
    artifact: Artifact,
    location: dict[str, Any],
    out: BinaryIO,
    where: str,
    progress: Progress | None,
) -> str:
    """Append the rest of ``artifact`` to the part file ``out``, durably; the sha256 of the whole part file.

    Bytes are hashed as they arrive (a resumed part's earlier bytes are read once
    from disk), and written back to disk in the background as they come, so the
    closing fsync has little left to wait for. A store that sends more than the
    recorded size is cut off at the first byte too many.
    """
    offset = os.fstat(out.fileno()).st_size
    if offset > artifact.size:
        out.truncate(0)
        offset = 0
    out.seek(0)
    digest = hashlib.sha256()
    if offset:
        while chunk := out.read(CHUNK):
            digest.update(chunk)
    if offset == artifact.size:
        return digest.hexdigest()
    with _Writeback(out.fileno()) as writeback:
        for chunk in storage.open(artifact, location, offset):
            offset += len(chunk)
            if offset > artifact.size:
                raise OversizeError(artifact.path, artifact.size, where)
            digest.update(chunk)
            out.write(chunk)
            writeback.wrote(len(chunk), out)
            if progress:
                progress(len(chunk))
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest()


class _Writeback:
    """Flush a file being written every ``every`` bytes from a helper thread, one flush at a time.

    Without it the kernel holds a whole download in dirty pages and the final
    fsync writes it all while the caller waits; with it disk writes overlap
    the network.
    """

    every: Final = 64 * CHUNK

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.pending = 0
        self.pool = ThreadPoolExecutor(max_workers=1)
        self.running: Future[None] | None = None

    def __enter__(self) -> _Writeback:
        return self

    def wrote(self, n: int, handle: BinaryIO) -> None:
        self.pending += n
        if self.pending >= self.every and (self.running is None or self.running.done()):
            handle.flush()
            self.pending = 0
            self.running = self.pool.submit(os.fdatasync, self.fd)

    def __exit__(self, *exc: object) -> None:
        self.pool.shutdown(wait=True)
