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
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
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
    "PutResult",
    "SourceChangedError",
    "Storage",
    "StorageError",
    "download",
    "hash_files",
    "sha256_file",
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
        super().__init__(f"{ref}: {listed} not retrievable from {where}{hint}")


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
    digest = hashlib.sha256()
    with path.open("rb") as handle:
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
    download at a time per ``dest``: a second one stops with a clear error.
    """
    if dest.exists() and not dest.is_dir():
        raise StorageError(f"{dest} is a file; --dest must be a folder (it is created if missing)")
    todo = [a for a in artifacts if not _complete(dest / a.path, a)]
    missing = storage.missing(todo, location)
    if missing:
        raise ArtifactsMissingError(ref, [a.path for a in missing], storage.describe(location))
    created = _first_missing(dest)
    staging = dest / PARTIAL_DIR
    try:
        with _staging_lock(staging):
            for artifact in todo:
                _fetch_verified(storage, artifact, location, staging, progress)
            for artifact in todo:
                if (dest / artifact.path).is_dir():
                    raise StorageError(f"{dest / artifact.path} is a folder where {artifact.path} goes; move it away")
            written = [_place(staging, dest, artifact) for artifact in todo]
    except HashMismatchError:
        # Leave DEST as it was: no staging folder, and none of the folders this call created.
        shutil.rmtree(created or staging, ignore_errors=True)
        raise
    except OSError as e:
        raise StorageError(f"cannot write into {dest}: {e.strerror or e} ({e.filename or dest})") from e
    shutil.rmtree(staging, ignore_errors=True)
    return written


@contextmanager
def _staging_lock(staging: Path) -> Iterator[None]:
    staging.mkdir(parents=True, exist_ok=True)
    with (staging / ".lock").open("a") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StorageError(
                f"another download into {staging.parent} is running; wait for it or choose another --dest"
            ) from None
        yield


def _fetch_verified(
    storage: Storage, artifact: Artifact, location: dict[str, Any], staging: Path, progress: Progress | None
) -> None:
    part = staging / f"{artifact.sha256}.part"
    resumed = part.exists() and part.stat().st_size > 0
    actual = _fetch(storage, artifact, location, part, progress)
    if actual != artifact.sha256 and resumed:
        # What an interrupted run left may be damaged itself: fetch the whole file once more before blaming the store.
        part.unlink()
        actual = _fetch(storage, artifact, location, part, progress)
    if actual != artifact.sha256:
        raise HashMismatchError(artifact.path, artifact.sha256, actual, storage.describe(location))


def _place(staging: Path, dest: Path, artifact: Artifact) -> Path:
    target = dest / artifact.path
    target.parent.mkdir(parents=True, exist_ok=True)
    (staging / f"{artifact.sha256}.part").replace(target)
    return target


def _first_missing(path: Path) -> Path | None:
    """The outermost folder of ``path`` that does not exist yet (what a failed download must remove)."""
    missing = None
    for folder in [path, *path.parents]:
        if folder.exists():
            break
        missing = folder
    return missing


def _complete(path: Path, artifact: Artifact) -> bool:
    try:
        return path.stat().st_size == artifact.size and sha256_file(path) == artifact.sha256
    except OSError:
        return False


def _fetch(
    storage: Storage, artifact: Artifact, location: dict[str, Any], part: Path, progress: Progress | None
) -> str:
    """Append the rest of ``artifact`` to ``part``, durably; the sha256 of the whole part file.

    Bytes are hashed as they arrive (a resumed part's earlier bytes are read once
    from disk), and written back to disk in the background as they come, so the
    closing fsync has little left to wait for.
    """
    offset = part.stat().st_size if part.exists() else 0
    if offset > artifact.size:
        part.unlink()
        offset = 0
    digest = hashlib.sha256()
    if offset:
        with part.open("rb") as done:
            while chunk := done.read(CHUNK):
                digest.update(chunk)
    if offset == artifact.size:
        return digest.hexdigest()
    with part.open("ab") as out, _Writeback(out.fileno()) as writeback:
        for chunk in storage.open(artifact, location, offset):
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
