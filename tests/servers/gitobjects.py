"""Git's object database read and written in process: the loose objects of a bare repository, byte for byte what
``git hash-object -w``, ``write-tree``, ``commit-tree`` and ``mktag`` would store (SHA-1 ids, zlib-deflated
``"<kind> <size>\\0<body>"`` files under ``objects/xx/``), without a git process per object.

Why: the local Hub answered every request with several git processes (thousands a test run). Objects are immutable,
so reading them in process is exact; an object that is not loose (packed by a hand-run ``git gc``) is left to git:
``read`` answers ``None`` and the caller runs git. Refs are not handled here: they move under writers' feet, and
``git update-ref`` with the expected old value stays the one way they change.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path

TREE_MODE = "040000"  # as ls-tree prints it; a tree object stores "40000"
_Node = dict[str, "_Node | tuple[str, str]"]


class LooseObjects:
    """The ``objects/`` directory of the git directory ``git_dir``."""

    def __init__(self, git_dir: Path) -> None:
        self.root = git_dir / "objects"

    def _path(self, oid: str) -> Path:
        return self.root / oid[:2] / oid[2:]

    def read(self, oid: str) -> tuple[str, bytes] | None:
        """``(kind, body)`` of the loose object ``oid``; None when it is not loose (packed, or missing)."""
        try:
            raw = zlib.decompress(self._path(oid).read_bytes())
        except (FileNotFoundError, NotADirectoryError):
            return None
        header, _, body = raw.partition(b"\0")
        kind, _, size = header.decode("ascii").partition(" ")
        if int(size) != len(body):
            raise ValueError(f"loose object {oid} in {self.root} is {len(body)} bytes, its header says {size}")
        return kind, body

    def header(self, oid: str) -> tuple[str, int] | None:
        """``(kind, size)`` of the loose object ``oid``, inflating only its first bytes; None when not loose."""
        inflate, start = zlib.decompressobj(), b""
        try:
            with self._path(oid).open("rb") as handle:
                while b"\0" not in start and (chunk := handle.read(512)):
                    start += inflate.decompress(chunk, 64 - len(start))
        except (FileNotFoundError, NotADirectoryError):
            return None
        kind, _, size = start.partition(b"\0")[0].decode("ascii").partition(" ")
        return kind, int(size)

    def write(self, kind: str, body: bytes) -> str:
        """Store ``body`` as an object of ``kind`` (what ``git hash-object -w -t kind`` does); its id."""
        raw = f"{kind} {len(body)}\0".encode() + body
        oid = hashlib.sha1(raw, usedforsecurity=False).hexdigest()
        path = self._path(oid)
        if not path.exists():
            path.parent.mkdir(exist_ok=True)
            temporary = path.parent / f"tmp_obj_{os.getpid()}_{threading.get_ident()}_{time.monotonic_ns()}"
            temporary.write_bytes(zlib.compress(raw, 1))
            temporary.chmod(0o444)
            temporary.replace(path)
        return oid

    def write_tree(self, files: Mapping[str, tuple[str, str]]) -> str:
        """The root tree of exactly ``files`` (path -> (mode, blob id)), subtrees written too: ``write-tree``'s id."""
        root: _Node = {}
        for path, entry in sorted(files.items()):
            *folders, name = path.split("/")
            node = root
            for folder in folders:
                child = node.get(folder)
                if not isinstance(child, dict):  # a file there gives way, as in update-index --index-info
                    child = node[folder] = {}
                node = child
            node[name] = entry
        return self._tree(root)

    def _tree(self, node: _Node) -> str:
        entries: list[tuple[bytes, bytes]] = []
        for name, value in node.items():
            raw_name = name.encode("utf-8", "surrogateescape")
            if isinstance(value, dict):
                entries.append((raw_name + b"/", b"40000 " + raw_name + b"\0" + bytes.fromhex(self._tree(value))))
            else:
                mode, oid = value
                entries.append((raw_name, f"{int(mode, 8):o} ".encode() + raw_name + b"\0" + bytes.fromhex(oid)))
        return self.write("tree", b"".join(entry for _, entry in sorted(entries)))

    def tree_entries(self, tree: str) -> list[tuple[str, str, str]] | None:
        """``(mode as ls-tree prints it, object id, name)`` of the loose tree ``tree``; None when it is not loose."""
        found = self.read(tree)
        if found is None or found[0] != "tree":
            return None
        return list(_parse_tree(found[1]))


def _parse_tree(body: bytes) -> Iterator[tuple[str, str, str]]:
    position = 0
    while position < len(body):
        space = body.index(b" ", position)
        nul = body.index(b"\0", space)
        mode = f"{int(body[position:space], 8):06o}"
        name = body[space + 1 : nul].decode("utf-8", "surrogateescape")
        yield mode, body[nul + 1 : nul + 21].hex(), name
        position = nul + 21


def commit_body(tree: str, parent: str | None, *, identity: Mapping[str, str], message: str) -> bytes:
    """A commit object's body as ``git commit-tree`` writes it: now, in the local time zone, the message as given."""
    now = time.time()
    offset = time.localtime(now).tm_gmtoff // 60
    zone = f"{'-' if offset < 0 else '+'}{abs(offset) // 60:02d}{abs(offset) % 60:02d}"
    author = f"{identity['GIT_AUTHOR_NAME']} <{identity['GIT_AUTHOR_EMAIL']}> {int(now)} {zone}"
    committer = f"{identity['GIT_COMMITTER_NAME']} <{identity['GIT_COMMITTER_EMAIL']}> {int(now)} {zone}"
    lines = [f"tree {tree}", *([f"parent {parent}"] if parent else []), f"author {author}", f"committer {committer}"]
    return ("\n".join(lines) + "\n\n" + message).encode()


def header_fields(body: bytes) -> dict[str, str]:
    """The header lines of a commit or tag object (``tree``, ``committer``, ``object``...; the first of each)."""
    fields: dict[str, str] = {}
    for line in body.partition(b"\n\n")[0].decode("utf-8", "replace").splitlines():
        key, _, value = line.partition(" ")
        fields.setdefault(key, value)
    return fields
