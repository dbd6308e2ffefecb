"""Caches nobody else can plant into: a private folder, a per-user key, every entry signed.

A cache only ever saves time, so whatever is wrong with one costs time and
nothing else — and nothing in it is believed unless this user's regops wrote it:

* **The folder** (:func:`cache_root`: ``$REGOPS_CACHE_DIR``, else
  ``$XDG_CACHE_HOME/regops``, else ``~/.cache/regops``) is created with mode
  0700. One owned by another user, or writable by its group or by others, is
  not used at all: regops works uncached and says nothing (a library does not
  print; the runs are only slower). A folder of ours that others may read
  (an older regops made it 0755) is narrowed to 0700.
* **The key**: 32 random bytes in ``key`` inside the folder, created 0600
  with ``O_EXCL`` and published whole (a link, never a partial write). A key
  that is missing, unreadable, of another size, not a regular file of ours, or
  readable by others is replaced by a new one, and every entry signed with the
  old key stops verifying.
* **Entries**: each file is ``MAGIC`` + HMAC-SHA256(key, ``MAGIC`` + name +
  NUL + payload) + payload, so an entry bound to another name, edited, planted
  (with no MAC or a MAC under another user's key) or truncated reads as absent
  and is rebuilt. The MAC is checked before the payload is decoded at all.

Everything is opened relative to the folder's descriptor with ``O_NOFOLLOW``:
a symbolic link or a folder swapped in after the check is never followed.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import marshal
import os
import secrets
import stat
import weakref
from pathlib import Path
from typing import Any, ClassVar, Final, Self

__all__ = ["KEY_NAME", "MAGIC", "CacheDir", "MarshalCache", "cache_root"]

MAGIC: Final = b"regops-cache-1\n\0"
KEY_NAME: Final = "key"
_KEY_BYTES: Final = 32
_MAC_BYTES: Final = hashlib.sha256().digest_size
_OPEN: Final = os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK


def cache_root() -> Path | None:
    """Where the caches live (module docs); None when ``REGOPS_NO_CACHE`` turns them off."""
    if os.environ.get("REGOPS_NO_CACHE"):
        return None
    base = os.environ.get("REGOPS_CACHE_DIR")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(xdg) / "regops"


class CacheDir:
    """An opened private cache folder and its key: signed entries, read and written by file name."""

    def __init__(self, root: Path, fd: int, key: bytes) -> None:
        self.root = root
        self._fd = fd
        self._key = key
        weakref.finalize(self, os.close, fd)

    @classmethod
    def open(cls, root: Path) -> CacheDir | None:
        """The folder at ``root``, created if need be; None when it is not safely ours (module docs)."""
        fd = _private_folder(root)
        if fd is None:
            return None
        key = _read_key(fd)
        if key is None:
            _publish_new_key(fd)
            key = _read_key(fd)  # whichever key won, if another process made one meanwhile
        if key is None:
            os.close(fd)
            return None
        return cls(root, fd, key)

    def read(self, name: str) -> bytes | None:
        """The payload of entry ``name``, or None when it is absent, unreadable or fails its check."""
        try:
            raw = _read_all(self._fd, name)
        except OSError:
            return None
        head = len(MAGIC) + _MAC_BYTES
        if len(raw) < head or not raw.startswith(MAGIC):
            return None
        payload = memoryview(raw)[head:]
        if not hmac.compare_digest(raw[len(MAGIC) : head], self._mac(name, payload)):
            return None
        return bytes(payload)

    def write(self, name: str, payload: bytes) -> None:
        """Store ``payload`` as entry ``name``, signed; readers see the old entry or the new one, never half."""
        with contextlib.suppress(OSError):
            _replace(self._fd, name, MAGIC + self._mac(name, payload) + payload)

    def _mac(self, name: str, payload: bytes | memoryview) -> bytes:
        signed = hmac.new(self._key, MAGIC, "sha256")
        signed.update(name.encode(errors="surrogateescape") + b"\0")
        signed.update(payload)
        return signed.digest()


def _private_folder(root: Path) -> int | None:
    """A descriptor of ``root`` when it is a folder of ours that nobody else may write; else None."""
    try:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if st.st_uid != os.geteuid() or st.st_mode & 0o022:
            raise PermissionError(f"{root} is not a private folder of this user")
        if stat.S_IMODE(st.st_mode) != 0o700:
            os.fchmod(fd, 0o700)
    except OSError:
        os.close(fd)
        return None
    return fd


def _read_key(folder: int) -> bytes | None:
    try:
        fd = os.open(KEY_NAME, os.O_RDONLY | _OPEN, dir_fd=folder)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        ours = stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid() and not st.st_mode & 0o077
        key = os.read(fd, _KEY_BYTES + 1) if ours and st.st_size == _KEY_BYTES else b""
    except OSError:
        return None
    finally:
        os.close(fd)
    return key if len(key) == _KEY_BYTES else None


def _publish_new_key(folder: int) -> None:
    """Make a new key, whole: a link to a finished file, or a rename over a bad key."""
    tmp = f"{KEY_NAME}.{secrets.token_hex(8)}.tmp"
    try:
        _write_new(folder, tmp, secrets.token_bytes(_KEY_BYTES))
        try:
            os.link(tmp, KEY_NAME, src_dir_fd=folder, dst_dir_fd=folder, follow_symlinks=False)
        except FileExistsError:
            if _read_key(folder) is None:  # a bad key: replace it (a good one is another process's new key)
                os.replace(tmp, KEY_NAME, src_dir_fd=folder, dst_dir_fd=folder)
    except OSError:
        pass  # no key: the caller works uncached
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=folder)


def _read_all(folder: int, name: str) -> bytes:
    fd = os.open(name, os.O_RDONLY | _OPEN, dir_fd=folder)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return b""
        chunks = [os.read(fd, 1 << 20)]
        while chunks[-1]:
            chunks.append(os.read(fd, 1 << 20))
        return b"".join(chunks)
    finally:
        os.close(fd)


def _write_new(folder: int, name: str, data: bytes) -> None:
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _OPEN, 0o600, dir_fd=folder)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def _replace(folder: int, name: str, data: bytes) -> None:
    tmp = f"{name}.{secrets.token_hex(8)}.tmp"
    try:
        _write_new(folder, tmp, data)
        os.replace(tmp, name, src_dir_fd=folder, dst_dir_fd=folder)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=folder)


class MarshalCache:
    """Plain data that saves work between runs: one signed :mod:`marshal` entry per key (a folder).

    Where the entries live and why none can be planted: :mod:`regops.cache`
    (a private folder, a per-user key, an HMAC on every entry);
    ``REGOPS_NO_CACHE=1`` turns every cache off, and so does a root of None.
    An entry is decoded only once its MAC holds, and marshal reads plain data
    only, so reading a cache runs no code. A cache that cannot be used, read
    or written is ignored, as it only ever saves time.
    """

    prefix: ClassVar[str] = ""

    def __init__(self, root: Path | None) -> None:
        self.root = root
        self._folder: CacheDir | None = None
        self._opened = root is None  # the folder is opened (and checked) on first use

    @classmethod
    def from_environment(cls) -> Self:
        return cls(cache_root())

    def namespace(self) -> str:
        """What the entries depend on; a different namespace is a different cache."""
        return self.prefix

    def name(self, key: Path) -> str:
        """The entry's file name for ``key`` (within the namespace)."""
        text = f"{self.namespace()}\0{key}".encode(errors="surrogateescape")
        return f"{self.prefix}{hashlib.blake2b(text, digest_size=12).hexdigest()}.marshal"

    def file(self, key: Path) -> Path | None:
        """The cache file for ``key``, or None when caching is off."""
        return None if self.root is None else self.root / self.name(key)

    def folder(self) -> CacheDir | None:
        """The opened cache folder, or None when there is none or it is not safely ours."""
        if not self._opened and self.root is not None:
            self._opened = True
            self._folder = CacheDir.open(self.root)
        return self._folder

    def read(self, key: Path) -> dict[Any, Any]:
        folder = self.folder()
        payload = folder.read(self.name(key)) if folder is not None else None
        if payload is None:
            return {}
        try:
            entries = marshal.loads(payload)
        except (EOFError, ValueError, TypeError):
            return {}
        return entries if isinstance(entries, dict) else {}

    def write(self, key: Path, entries: dict[Any, Any]) -> None:
        folder = self.folder()
        if folder is None:
            return
        with contextlib.suppress(ValueError):
            folder.write(self.name(key), marshal.dumps(entries))
