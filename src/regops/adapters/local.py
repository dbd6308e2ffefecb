"""The ``local`` storage backend: a content-addressed folder.

Each file is stored once, by its sha256, at ``<root>/sha256/<aa>/<bb>/<digest>``,
written to a temporary name in the same folder and renamed into place, so a
reader never sees half a file and identical files are shared between
versions. Stored objects are never overwritten. The hot tier is the
registry's ``storage.path``; the cold tier is ``cold_storage.path``.

A store belongs to one registry: the first write (or removal) by a registry
leaves ``OWNER`` in the store, naming that registry's folder relative to the
store, and another registry is refused before it writes or removes anything —
its retention would delete objects the owner's versions still need.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final

from regops.weights import (
    CHUNK,
    Artifact,
    ArtifactsMissingError,
    HashMismatchError,
    PutResult,
    SourceChangedError,
    StorageError,
    holds,
    real_folders,
)

__all__ = ["OWNER_FILE", "LocalStorage", "StoreOwnedError"]

OWNER_FILE: Final = "OWNER"


class StoreOwnedError(StorageError):
    def __init__(self, root: Path, owner: str, registry: Path) -> None:
        self.root, self.owner = root, owner
        super().__init__(
            f"local storage at {root} belongs to another registry ({owner}, says {root / OWNER_FILE}); "
            f"{registry} must not write to it or delete from it, or one registry's retention deletes weights "
            "the other's versions need: give this registry a store of its own (storage.path, cold_storage.path "
            "in regops.yaml); nothing was written or removed"
        )


class LocalStorage:
    """Hot and (optionally) cold content-addressed folders; ``registry``: the registry folder that owns them."""

    backend = "local"

    def __init__(self, hot: Path, cold: Path | None = None, *, registry: Path | None = None) -> None:
        self.hot = hot
        self.cold = cold
        self.registry = registry

    def _root(self, location: dict[str, Any]) -> Path:
        if location.get("tier", "hot") == "hot":
            return self.hot
        if self.cold is None:
            raise StorageError("the version is in cold storage, but regops.yaml sets no cold_storage path")
        return self.cold

    @staticmethod
    def object_path(root: Path, sha256: str) -> Path:
        return root / "sha256" / sha256[:2] / sha256[2:4] / sha256

    def describe(self, location: dict[str, Any]) -> str:
        return f"local {location.get('tier', 'hot')} storage at {self._root(location)}"

    def put(self, source: Path, artifacts: Sequence[Artifact], *, model: str, version: str) -> PutResult:
        uploaded = present = size = 0
        for artifact in artifacts:
            if self._store(self.hot, source / artifact.path, artifact):
                uploaded += 1
                size += artifact.size
            else:
                present += 1
        return PutResult({"backend": "local", "tier": "hot"}, uploaded, size, present)

    def _store(self, root: Path, source: Path, artifact: Artifact, *, stored_in: Path | None = None) -> bool:
        """Copy ``source`` in under its hash; False when the object is already there with the right bytes.

        An object already there is trusted only when it is a regular file whose
        bytes hash to its name; anything else at that name (a damaged copy, a
        planted file or symlink) is replaced, atomically. ``stored_in`` says the
        source is another tier's copy (so a mismatch means that copy is damaged).
        """
        target = self.object_path(root, artifact.sha256)
        if holds(target, artifact):
            return False
        self.claim(root)
        try:
            root.mkdir(parents=True, exist_ok=True)
            real_folders(root, target.parent.relative_to(root).parts)
            # Exclusive create under an unpredictable name: a link planted at a guessable temp name is never followed.
            fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        except OSError as e:
            raise StorageError(f"cannot write to local storage at {root}: {e.strerror or e}") from e
        tmp = Path(name)
        try:
            actual = _copy(source, fd)
            if actual != artifact.sha256:
                # The file changed since it was hashed: storing it would record a lie.
                if stored_in is not None:
                    raise HashMismatchError(artifact.path, artifact.sha256, actual, f"local storage at {stored_in}")
                raise SourceChangedError(artifact.path, artifact.sha256, actual)
            tmp.replace(target)
        except OSError as e:
            raise StorageError(f"cannot store {artifact.path} in {root}: {e.strerror or e}") from e
        finally:
            tmp.unlink(missing_ok=True)
        return True

    def missing(self, artifacts: Sequence[Artifact], location: dict[str, Any]) -> list[Artifact]:
        root = self._root(location)
        return [a for a in artifacts if not self.object_path(root, a.sha256).is_file()]

    def open(self, artifact: Artifact, location: dict[str, Any], offset: int) -> Iterator[bytes]:
        path = self.object_path(self._root(location), artifact.sha256)
        try:
            handle = path.open("rb")
        except OSError as e:
            raise StorageError(f"{artifact.path}: cannot read {path}: {e.strerror or e}") from e
        with handle:
            handle.seek(offset)
            while chunk := handle.read(CHUNK):
                yield chunk

    def to_cold(
        self, artifacts: Sequence[Artifact], location: dict[str, Any], *, model: str, version: str
    ) -> dict[str, Any]:
        if self.cold is None:
            raise StorageError("regops.yaml sets no cold_storage path")
        self._copy_tier(artifacts, self.hot, self.cold, ref=f"{model}@{version}")
        return {**location, "tier": "cold"}

    def restore(
        self, artifacts: Sequence[Artifact], location: dict[str, Any], *, model: str, version: str
    ) -> dict[str, Any]:
        self._copy_tier(artifacts, self._root(location), self.hot, ref=f"{model}@{version}")
        return {**location, "tier": "hot"}

    def release(self, artifacts: Sequence[Artifact], *, model: str, keep: set[str]) -> int:
        """Delete the hot copies of ``artifacts`` that no version kept hot needs (objects are shared)."""
        removed = 0
        self.claim(self.hot)
        for sha256 in {a.sha256 for a in artifacts} - keep:
            try:
                self.object_path(self.hot, sha256).unlink()
                removed += 1
            except FileNotFoundError:
                pass
            except OSError as e:
                raise StorageError(f"cannot remove {sha256[:12]}… from {self.hot}: {e.strerror or e}") from e
        return removed

    def held(self, artifacts: Sequence[Artifact], *, model: str) -> bool:
        """Whether the hot tier still stores any of ``artifacts``."""
        return any(self.object_path(self.hot, a.sha256).is_file() for a in artifacts)

    def claim(self, root: Path) -> None:
        """Mark ``root`` as this registry's store (exclusive create, no link followed), or refuse a store
        another registry marked; a store used without a registry (``registry`` None) is not marked."""
        if self.registry is None:
            return
        mine = os.path.relpath(self.registry.resolve(), root.resolve())
        marker = root / OWNER_FILE
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StorageError(f"cannot write to local storage at {root}: {e.strerror or e}") from e
        try:
            fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        except FileExistsError:
            owner = _owner(marker)
            if owner != mine:
                raise StoreOwnedError(root, os.path.normpath(root.resolve() / owner), self.registry) from None
            return
        except OSError as e:
            raise StorageError(f"cannot write to local storage at {root}: {e.strerror or e}") from e
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(f"{mine}\n")

    def _copy_tier(self, artifacts: Sequence[Artifact], source: Path, target: Path, *, ref: str) -> None:
        """Copy every artifact from tier ``source`` to tier ``target``; none if ``source`` lacks one (checked first)."""
        gone = [
            a.path
            for a in artifacts
            if not holds(self.object_path(target, a.sha256), a) and not self.object_path(source, a.sha256).is_file()
        ]
        if gone:
            raise ArtifactsMissingError(ref, gone, f"local storage at {source}", f" (to copy them to {target})")
        for artifact in artifacts:
            self._store(target, self.object_path(source, artifact.sha256), artifact, stored_in=source)


def _copy(source: Path, fd: int) -> str:
    """Copy into the open file ``fd`` (closed afterwards) while hashing; the sha256 of what was written."""
    digest = hashlib.sha256()
    with source.open("rb") as src, os.fdopen(fd, "wb") as out:
        os.fchmod(fd, 0o644)
        while chunk := src.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest()


def _owner(marker: Path) -> str:
    """The registry an ``OWNER`` file names (a link or anything but a small regular file names none we accept)."""
    try:
        fd = os.open(marker, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as e:
        return f"unreadable: {e.strerror or e}"
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return "not a regular file"
        return handle.read(4096).decode("utf-8", errors="replace").strip()
