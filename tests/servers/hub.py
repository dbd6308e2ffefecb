"""A local Hugging Face Hub: the real ``huggingface_hub`` client talks HTTP to it, unmodified, and cannot tell.

What it is
    A Starlette application served by uvicorn on 127.0.0.1. Each model repository ``namespace/name`` is a real bare
    git repository, ``ROOT/repos/namespace/name.git``: objects are the loose objects ``hash-object``, ``write-tree``,
    ``commit-tree`` and ``mktag`` would write, written and read in process (:mod:`tests.servers.gitobjects`; a
    packed object is read with git), and refs move with ``git update-ref`` and the expected old value, so that a ref
    never moves under a writer's feet: commits, branches and tags have real ids and can be inspected with git. Large files follow the Hub's git-LFS layout: the git blob is the LFS pointer text
    (``version https://git-lfs.github.com/spec/v1`` / ``oid sha256:<hex>`` / ``size <n>``) and the content lives in
    ``ROOT/lfs/namespace/name/<oid[0:2]>/<oid[2:4]>/<oid>``. New repositories get the Hub's initial commit: a
    ``.gitattributes`` that sends ``*.safetensors``, ``*.bin``, ``*.pt`` and the other weight formats to LFS.

What of the Hub it speaks (model repositories only; every path the client builds for them)
    ``GET /api/whoami-v2``; ``POST /api/repos/create``, ``DELETE /api/repos/delete``; ``POST /api/validate-yaml``;
    ``GET /api/models/{repo}[/revision/{rev}]`` (siblings, ``blobs``, ``expand``, ``cardData`` from the README front
    matter); ``POST .../preupload/{rev}`` (upload mode: LFS when ``.gitattributes`` says so, above 10 MiB, or when the
    sample holds a NUL byte; ``shouldIgnore`` from ``.gitignore``; ``oid`` of the file already there: sha256 for LFS,
    git blob id otherwise, which is what the client compares to skip unchanged files); ``POST .../commit/{branch}``
    (NDJSON: ``header``, ``file``, ``lfsFile``, ``deletedFile``, ``deletedFolder``; ``parentCommit`` checked, 412 when
    the branch moved); ``GET .../refs``; ``POST``/``DELETE .../branch/{branch}``; ``POST .../tag/{rev}``,
    ``DELETE .../tag/{tag}``; ``GET .../tree/{rev}[/{path}]`` and ``POST .../paths-info/{rev}`` (``lfs`` sha256 and
    sizes, ``expand`` adds last commits); ``GET .../commits/{rev}``; ``GET .../lfs-files`` and
    ``POST .../lfs-files/batch`` (deletions without history rewrite); the git-LFS batch API
    ``POST /{repo}.git/info/lfs/objects/batch`` (basic transfer, upload and download) and its ``verify`` action; the
    signed storage URLs it hands out (``PUT``/``GET /lfs-storage/{repo}/{oid}``: uploads are streamed to disk while
    hashed, and only a body with the announced sha256 and size is kept); ``HEAD``/``GET /{repo}/resolve/{rev}/{path}``
    (``X-Repo-Commit``, ``ETag``, ``X-Linked-Etag``/``X-Linked-Size`` for LFS files, ``Range`` requests). Lists are
    paginated with a ``Link: <...>; rel="next"`` header. Errors are ``{"error": message}`` with the Hub's
    ``X-Error-Code`` (``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``) and ``X-Error-Message`` headers, so the
    client raises its typed exceptions. Authentication is ``Authorization: Bearer <token>`` against a token table.

What it adds for tests
    ``server.faults`` (answer with a status, drop the connection mid-transfer, delay, or drip the body), ``server.requests`` (method,
    path, status, bytes in and out of every request), ``server.unserved`` (requests no route matched: the client
    called something new), ``server.errors`` (exceptions raised by the server itself), and direct state helpers that
    play "someone edited the Hub by hand": ``git``, ``lfs_path``, ``tamper``, ``move_branch``.

What it does not do
    Xet storage (the client must run with ``HF_HUB_DISABLE_XET=1``), pull requests, datasets and Spaces, gated repos,
    multipart LFS uploads, cross-repository copies.

Run it standalone with ``python -m tests.servers.hub --root DIR [--port 0] [--token TOKEN:USER:ORG1,ORG2:ROLE ...]``:
the first line on stdout is its URL; it serves until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Final, Literal, Self, TypeVar, cast
from urllib.parse import parse_qs, unquote, urlencode

import anyio
import uvicorn
import yaml
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from tests.servers.gitobjects import TREE_MODE, LooseObjects, commit_body, header_fields

DEFAULT_BRANCH = "main"
# The .gitattributes the Hub commits into every new model repository.
GITATTRIBUTES = """\
*.7z filter=lfs diff=lfs merge=lfs -text
*.arrow filter=lfs diff=lfs merge=lfs -text
*.bin filter=lfs diff=lfs merge=lfs -text
*.bz2 filter=lfs diff=lfs merge=lfs -text
*.ckpt filter=lfs diff=lfs merge=lfs -text
*.ftz filter=lfs diff=lfs merge=lfs -text
*.gz filter=lfs diff=lfs merge=lfs -text
*.h5 filter=lfs diff=lfs merge=lfs -text
*.joblib filter=lfs diff=lfs merge=lfs -text
*.lfs.* filter=lfs diff=lfs merge=lfs -text
*.mlmodel filter=lfs diff=lfs merge=lfs -text
*.model filter=lfs diff=lfs merge=lfs -text
*.msgpack filter=lfs diff=lfs merge=lfs -text
*.npy filter=lfs diff=lfs merge=lfs -text
*.npz filter=lfs diff=lfs merge=lfs -text
*.onnx filter=lfs diff=lfs merge=lfs -text
*.ot filter=lfs diff=lfs merge=lfs -text
*.parquet filter=lfs diff=lfs merge=lfs -text
*.pb filter=lfs diff=lfs merge=lfs -text
*.pickle filter=lfs diff=lfs merge=lfs -text
*.pkl filter=lfs diff=lfs merge=lfs -text
*.pt filter=lfs diff=lfs merge=lfs -text
*.pth filter=lfs diff=lfs merge=lfs -text
*.rar filter=lfs diff=lfs merge=lfs -text
*.safetensors filter=lfs diff=lfs merge=lfs -text
saved_model/**/* filter=lfs diff=lfs merge=lfs -text
*.tar.* filter=lfs diff=lfs merge=lfs -text
*.tar filter=lfs diff=lfs merge=lfs -text
*.tflite filter=lfs diff=lfs merge=lfs -text
*.tgz filter=lfs diff=lfs merge=lfs -text
*.wasm filter=lfs diff=lfs merge=lfs -text
*.xz filter=lfs diff=lfs merge=lfs -text
*.zip filter=lfs diff=lfs merge=lfs -text
*.zst filter=lfs diff=lfs merge=lfs -text
*tfevents* filter=lfs diff=lfs merge=lfs -text
"""
LFS_SPEC = "https://git-lfs.github.com/spec/v1"
# The Hub refuses regular (non-LFS) files above 10 MiB, and its preupload sends anything bigger to LFS.
REGULAR_FILE_LIMIT = 10 * 1024 * 1024
TREE_PAGE_SIZE = 1000
TREE_EXPAND_PAGE_SIZE = 50
LIST_PAGE_SIZE = 1000
COMMITS_PAGE_SIZE = 50
SIGNED_URL_LIFETIME = 3600
ZERO_OID = "0" * 40
HTTP_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_SHORT_OID_RE = re.compile(r"[0-9a-f]{7,40}")
_REPO_PART_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?")
_REF_FORBIDDEN_RE = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//")
_FRONT_MATTER_RE = re.compile(r"\A---[ \t]*\r?\n(.*?)^---[ \t]*\r?$", re.DOTALL | re.MULTILINE)
_RANGE_RE = re.compile(r"bytes=(\d*)-(\d*)")
_TRANSPORT_KEY = "tests.servers.hub.transport"

FaultKind = Literal["status", "drop", "delay", "drip"]
_T = TypeVar("_T")


# -- Errors and responses -----------------------------------------------------------------------------------------


class HubError(Exception):
    """An error answered the way the Hub answers it: ``{"error": message}``, ``X-Error-Code``, ``X-Error-Message``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})

    def response(self) -> Response:
        headers = {"X-Error-Message": _header_value(self.message), **self.headers}
        if self.code:
            headers["X-Error-Code"] = self.code
        return _json({"error": self.message, **self.extra}, self.status, headers)


def _repo_not_found(authenticated: bool) -> HubError:
    # Like the Hub: a missing repository and one the caller may not see look the same; 401 when no token was sent.
    return HubError(404 if authenticated else 401, "Repository not found", code="RepoNotFound")


def _revision_not_found(revision: str) -> HubError:
    return HubError(404, f"Invalid rev id: {revision}", code="RevisionNotFound")


def _entry_not_found(path: str, commit: str, message: str | None = None) -> HubError:
    return HubError(404, message or f"Entry not found: {path}", code="EntryNotFound", headers={"X-Repo-Commit": commit})


def _header_value(text: str) -> str:
    return " ".join(text.encode("ascii", "replace").decode("ascii").split())


def _json(
    data: Any, status: int = 200, headers: Mapping[str, str] | None = None, media_type: str = "application/json"
) -> Response:
    return Response(
        json.dumps(data, default=str), status_code=status, headers=dict(headers or {}), media_type=media_type
    )


def _iso(timestamp: float) -> str:
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _stable_id(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:24]


# -- Accounts -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    """What a token stands for: a user, the organizations they belong to, and the token's role."""

    token: str
    user: str
    orgs: tuple[str, ...] = ()
    role: Literal["read", "write"] = "write"

    @property
    def namespaces(self) -> frozenset[str]:
        return frozenset((self.user, *self.orgs))


def _accounts(tokens: Mapping[str, Mapping[str, Any]] | None) -> dict[str, Account]:
    accounts: dict[str, Account] = {}
    for token, spec in (tokens or {}).items():
        role = spec.get("role", "write")
        if role not in ("read", "write"):
            raise ValueError(f"token {token!r}: role must be 'read' or 'write', not {role!r}")
        accounts[token] = Account(token, str(spec["user"]), tuple(str(o) for o in spec.get("orgs", ())), role)
    return accounts


# -- Git ------------------------------------------------------------------------------------------------------------


class GitError(RuntimeError):
    def __init__(self, args: Sequence[str], returncode: int, stderr: bytes) -> None:
        self.returncode = returncode
        self.stderr = stderr.decode(errors="replace").strip()
        super().__init__(f"git {' '.join(args)} failed with status {returncode}: {self.stderr}")


def _git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"})
    env.update(extra or {})
    return env


def _identity(user: str) -> dict[str, str]:
    email = f"{user}@users.noreply.huggingface.co"
    return {
        "GIT_AUTHOR_NAME": user,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": user,
        "GIT_COMMITTER_EMAIL": email,
    }


def valid_ref_name(name: str) -> bool:
    """Whether ``name`` is acceptable after ``refs/heads/`` or ``refs/tags/`` (the rules of git check-ref-format)."""
    if not name or name == "@" or name.startswith(("-", "/")) or name.endswith(("/", ".")):
        return False
    if _REF_FORBIDDEN_RE.search(name):
        return False
    return all(part and not part.startswith(".") and not part.endswith(".lock") for part in name.split("/"))


@dataclass(frozen=True)
class LfsPointer:
    oid: str
    size: int
    pointer_size: int

    @staticmethod
    def text(oid: str, size: int) -> bytes:
        return f"version {LFS_SPEC}\noid sha256:{oid}\nsize {size}\n".encode()

    @classmethod
    def parse(cls, data: bytes) -> LfsPointer | None:
        if len(data) > 1024 or not data.startswith(f"version {LFS_SPEC}\n".encode()):
            return None
        fields = dict(line.partition(" ")[::2] for line in data.decode("ascii", "replace").splitlines()[1:])
        oid, size = fields.get("oid", ""), fields.get("size", "")
        if not oid.startswith("sha256:") or not _SHA256_RE.fullmatch(oid[7:]) or not size.isdigit():
            return None
        return cls(oid[7:], int(size), len(data))


@dataclass(frozen=True)
class TreeEntry:
    path: str
    kind: Literal["blob", "tree"]
    oid: str
    size: int
    mode: str


def _pointer_of(kind: str, body: bytes) -> LfsPointer | None:
    return LfsPointer.parse(body) if kind == "blob" else None


# What ``GitRepo.run`` may run without a ref moving; anything else empties the listing of refs.
_READS_ONLY: Final = frozenset({"cat-file", "for-each-ref", "log", "ls-tree", "rev-parse", "show"})


class GitRepo:
    """A bare repository: objects read and written in process (:mod:`tests.servers.gitobjects`: exactly what git
    plumbing stores), git for refs and history. Trees and LFS pointers are cached by object id (immutable)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.objects = LooseObjects(path)
        self.lock = threading.RLock()
        self._cache_lock = threading.Lock()
        self._entries: dict[str, tuple[TreeEntry, ...]] = {}
        self._pointers: dict[str, LfsPointer | None] = {}
        # Listings of refs, until the next update-ref (only this class changes the repository's refs).
        self._refs: dict[tuple[str, ...], dict[str, tuple[str, str]]] = {}
        self._refs_generation = 0
        self._commits: set[str] = set()  # full commit ids known to name a commit

    def run(self, *args: str, stdin: bytes | None = None, env: Mapping[str, str] | None = None) -> bytes:
        try:
            return self._git(*args, stdin=stdin, env=env)
        finally:
            if args[0] not in _READS_ONLY:
                self._refs_moved()

    def _git(self, *args: str, stdin: bytes | None = None, env: Mapping[str, str] | None = None) -> bytes:
        proc = subprocess.run(
            ["git", f"--git-dir={self.path}", *args], input=stdin, capture_output=True, env=_git_env(env), check=False
        )
        if proc.returncode:
            raise GitError(args, proc.returncode, proc.stderr)
        return proc.stdout

    def _refs_moved(self, refname: str | None = None, new: str | None = None) -> None:
        """Refs may have moved: the listing is dropped, or, when this class just moved ``refname`` to ``new`` (None:
        deleted) and knows what it peels to, kept with that change (in git's order of refnames)."""
        peeled = self._peeled(new) if new else None
        with self._cache_lock:
            listed = self._refs.get(())
            self._refs.clear()
            self._refs_generation += 1
            if listed is None or refname is None or (new and not peeled):
                return
            changed = {name: found for name, found in listed.items() if name != refname}
            if new and peeled:
                changed[refname] = (new, peeled)
            self._refs[()] = dict(sorted(changed.items()))

    def _peeled(self, oid: str) -> str | None:
        """The commit ``oid`` is or (an annotated tag) names; None when that is not known from loose objects."""
        found = self.objects.read(oid)
        if found is None or found[0] not in ("commit", "tag"):
            return None
        fields = header_fields(found[1]) if found[0] == "tag" else {"object": oid, "type": "commit"}
        return fields["object"] if fields.get("type") == "commit" else None

    def refs(self, *patterns: str) -> dict[str, tuple[str, str]]:
        """Refs under ``patterns`` (literal: a refname or a folder of refs, as for-each-ref matches them): refname ->
        (object id, commit id it peels to). One listing of every ref serves all patterns until a ref moves."""
        if any(char in pattern for pattern in patterns for char in "*?["):
            raise ValueError(f"glob patterns are not listed from the cache: {patterns}")
        folders = tuple(pattern.rstrip("/") + "/" for pattern in patterns)
        return {
            name: found
            for name, found in self._all_refs().items()
            if not patterns or name in patterns or name.startswith(folders)
        }

    def _all_refs(self) -> dict[str, tuple[str, str]]:
        with self._cache_lock:
            cached, generation = self._refs.get(()), self._refs_generation
        if cached is not None:
            return cached
        out = self.run("for-each-ref", "--format=%(refname)%00%(objectname)%00%(*objectname)")
        refs: dict[str, tuple[str, str]] = {}
        for line in out.decode().splitlines():
            name, oid, peeled = line.split("\0")
            refs[name] = (oid, peeled or oid)
        with self._cache_lock:
            if generation == self._refs_generation:  # no ref moved while git listed them
                self._refs[()] = refs
        return refs

    def ref(self, refname: str) -> str | None:
        found = self.refs(refname).get(refname)
        return found[1] if found else None

    def resolve(self, revision: str) -> str | None:
        """A branch, a tag, or a (possibly abbreviated) commit id, to a commit id; the Hub's order: branch first."""
        if revision.startswith(("refs/heads/", "refs/tags/")):
            return self.ref(revision) if valid_ref_name(revision) else None
        if valid_ref_name(revision):
            refs = self.refs(f"refs/heads/{revision}", f"refs/tags/{revision}")
            for refname in (f"refs/heads/{revision}", f"refs/tags/{revision}"):
                if refname in refs:
                    return refs[refname][1]
        if _SHORT_OID_RE.fullmatch(revision):
            return self._commit(revision)
        return None

    def _commit(self, revision: str) -> str | None:
        """The commit a (possibly abbreviated) commit id names; a full id found once is one for good (objects stay)."""
        with self._cache_lock:
            if revision in self._commits:
                return revision
        found = self.objects.header(revision) if len(revision) == 40 else None
        if found is not None and found[0] == "commit":
            with self._cache_lock:
                self._commits.add(revision)
            return revision
        try:
            commit = self.run("rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}").decode().strip()
        except GitError:
            return None
        if commit == revision:
            with self._cache_lock:
                self._commits.add(commit)
        return commit if commit.startswith(revision) else None

    def entries(self, commit: str) -> tuple[TreeEntry, ...]:
        """Every blob and tree of ``commit``, recursively, in git's order."""
        with self._cache_lock:
            cached = self._entries.get(commit)
        if cached is not None:
            return cached
        result = self._loose_entries(commit)
        if result is None:
            result = self._listed_entries(commit)
        with self._cache_lock:
            if len(self._entries) > 256:
                self._entries.clear()
            self._entries[commit] = result
        return result

    def _loose_entries(self, commit: str) -> tuple[TreeEntry, ...] | None:
        """``entries`` read in process, in ls-tree's order (a tree before what it holds); None if an object is packed."""
        found = self.objects.read(commit)
        if found is None or found[0] != "commit":
            return None
        entries: list[TreeEntry] = []
        return tuple(entries) if self._walk(header_fields(found[1])["tree"], "", entries) else None

    def _walk(self, tree: str, prefix: str, into: list[TreeEntry]) -> bool:
        listed = self.objects.tree_entries(tree)
        if listed is None:
            return False
        for mode, oid, name in listed:
            path = prefix + name
            if mode == TREE_MODE:
                into.append(TreeEntry(path, "tree", oid, 0, mode))
                if not self._walk(oid, path + "/", into):
                    return False
            elif mode != "160000":  # a submodule's commit is neither a blob nor a tree
                header = self.objects.header(oid)
                if header is None:
                    return False
                into.append(TreeEntry(path, "blob", oid, header[1], mode))
        return True

    def _listed_entries(self, commit: str) -> tuple[TreeEntry, ...]:
        entries: list[TreeEntry] = []
        for record in self.run("ls-tree", "-r", "-t", "-l", "-z", "--full-tree", commit).split(b"\0"):
            if not record:
                continue
            meta, _, raw_path = record.partition(b"\t")
            mode, kind, oid, size = meta.decode().split()
            if kind in ("blob", "tree"):
                path = raw_path.decode("utf-8", "surrogateescape")
                entries.append(
                    TreeEntry(path, cast(Literal["blob", "tree"], kind), oid, int(size) if size.isdigit() else 0, mode)
                )
        return tuple(entries)

    def files(self, commit: str) -> dict[str, TreeEntry]:
        return {entry.path: entry for entry in self.entries(commit) if entry.kind == "blob"}

    def pointers(self, entries: Iterable[TreeEntry]) -> dict[str, LfsPointer]:
        """The LFS pointers among ``entries``: blob id -> pointer."""
        candidates = {entry.oid for entry in entries if entry.kind == "blob" and entry.size <= 1024}
        with self._cache_lock:
            missing = [oid for oid in candidates if oid not in self._pointers]
        loose = {oid: self.objects.read(oid) for oid in missing}
        parsed = {oid: _pointer_of(*found) for oid, found in loose.items() if found is not None}
        packed = [oid for oid, found in loose.items() if found is None]
        if packed:
            parsed.update(self._packed_pointers(packed))
        with self._cache_lock:
            self._pointers.update(parsed)
            return {oid: pointer for oid in candidates if (pointer := self._pointers.get(oid)) is not None}

    def _packed_pointers(self, oids: Sequence[str]) -> dict[str, LfsPointer | None]:
        parsed: dict[str, LfsPointer | None] = {}
        out = self.run("cat-file", "--batch", stdin="".join(f"{oid}\n" for oid in oids).encode())
        position = 0
        for oid in oids:
            header_end = out.index(b"\n", position)
            header = out[position:header_end].split()
            if len(header) < 3:
                parsed[oid] = None
                position = header_end + 1
                continue
            size = int(header[2])
            parsed[oid] = LfsPointer.parse(out[header_end + 1 : header_end + 1 + size])
            position = header_end + 1 + size + 1
        return parsed

    def read_blob(self, oid: str) -> bytes:
        found = self.objects.read(oid)
        return found[1] if found is not None and found[0] == "blob" else self.run("cat-file", "blob", oid)

    def hash_object(self, data: bytes) -> str:
        return self.objects.write("blob", data)

    def write_commit(self, files: Mapping[str, tuple[str, str]], *, parent: str | None, message: str, user: str) -> str:
        """A commit of exactly ``files`` (path -> (mode, blob id)): the objects ``write-tree`` and ``commit-tree``
        would write."""
        tree = self.objects.write_tree(files)
        return self.objects.write("commit", commit_body(tree, parent, identity=_identity(user), message=message))

    def update_ref(self, refname: str, new: str, old: str) -> bool:
        """Point ``refname`` at ``new`` only if it is still at ``old`` (``ZERO_OID``: only if it does not exist)."""
        return self._move_ref(refname, new, "update-ref", refname, new, old)

    def delete_ref(self, refname: str, old: str) -> bool:
        return self._move_ref(refname, None, "update-ref", "-d", refname, old)

    def _move_ref(self, refname: str, new: str | None, *args: str) -> bool:
        try:
            self._git(*args)
        except GitError:
            self._refs_moved()  # not where this class thought: moved by hand
            return False
        self._refs_moved(refname, new)
        return True

    def commit_time(self, commit: str) -> float:
        found = self.objects.read(commit)
        if found is not None and found[0] == "commit":
            return float(header_fields(found[1])["committer"].rsplit(" ", 2)[1])
        return float(self.run("log", "-1", "--format=%ct", commit).decode().strip() or 0)

    def last_commit(self, commit: str, path: str) -> dict[str, str]:
        out = self.run("log", "-1", "--format=%H%x00%ct%x00%s", commit, "--", path).decode().strip()
        oid, timestamp, title = [*out.split("\0"), "", "0", ""][:3]
        return {"id": oid, "title": title, "date": _iso(float(timestamp or 0))}

    def log(self, commit: str) -> list[dict[str, Any]]:
        out = self.run("log", "--format=%H%x1f%an%x1f%ct%x1f%s%x1f%B%x1e", commit).decode("utf-8", "replace")
        commits: list[dict[str, Any]] = []
        for record in out.split("\x1e"):
            if not record.strip():
                continue
            oid, author, timestamp, title, body = record.lstrip("\n").split("\x1f")
            commits.append(
                {
                    "id": oid,
                    "title": title,
                    "message": body.strip(),
                    "authors": [{"user": author, "avatar": None}],
                    "date": _iso(float(timestamp)),
                }
            )
        return commits


# -- Pattern files: .gitattributes and .gitignore --------------------------------------------------------------------


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """A gitattributes/gitignore glob as a regex matched against a whole repository path."""
    anchored = "/" in pattern.rstrip("/")
    pattern = pattern.lstrip("/")
    parts: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            parts.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            parts.append(".*")
            i += 2
        elif pattern[i] == "*":
            parts.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            parts.append("[^/]")
            i += 1
        elif pattern[i] == "[" and (end := pattern.find("]", i + 2)) != -1:
            chars = pattern[i + 1 : end]
            parts.append("[" + ("^" + chars[1:] if chars.startswith("!") else chars).replace("\\", "\\\\") + "]")
            i = end + 1
        else:
            parts.append(re.escape(pattern[i]))
            i += 1
    body = "".join(parts)
    return re.compile(body if anchored else "(?:.*/)?" + body)


class LfsRules:
    """Which paths a ``.gitattributes`` sends to LFS (``filter=lfs``; the last matching line wins)."""

    def __init__(self, text: str) -> None:
        self.rules: list[tuple[re.Pattern[str], bool]] = []
        for line in text.splitlines():
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                continue
            state: bool | None = None
            for attribute in fields[1:]:
                if attribute == "filter=lfs":
                    state = True
                elif attribute.startswith("filter=") or attribute in ("-filter", "!filter"):
                    state = False
            if state is not None:
                self.rules.append((_glob_regex(fields[0]), state))

    def is_lfs(self, path: str) -> bool:
        result = False
        for regex, state in self.rules:
            if regex.fullmatch(path):
                result = state
        return result


class IgnoreRules:
    """Which paths a ``.gitignore`` ignores (negation and directory-only patterns included)."""

    def __init__(self, text: str) -> None:
        self.rules: list[tuple[re.Pattern[str], bool, bool]] = []
        for raw in text.splitlines():
            line = raw.rstrip()
            if not line or line.startswith("#"):
                continue
            negated = line.startswith("!")
            line = line.removeprefix("!")
            directory_only = line.endswith("/")
            line = line.rstrip("/")
            if line:
                self.rules.append((_glob_regex(line), negated, directory_only))

    def ignored(self, path: str) -> bool:
        parts = path.split("/")
        result = False
        for depth in range(1, len(parts) + 1):
            prefix, is_directory = "/".join(parts[:depth]), depth < len(parts)
            for regex, negated, directory_only in self.rules:
                if (is_directory or not directory_only) and regex.fullmatch(prefix):
                    result = not negated
            if result and is_directory:
                return True
        return result


def _front_matter(text: str) -> dict[str, Any] | None:
    """The YAML metadata block opening a README.md, or None; ValueError when it is not a valid YAML mapping."""
    match = _FRONT_MATTER_RE.match(text)
    if match is None:
        return None
    try:
        data = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        raise ValueError(f"Invalid YAML in the README.md metadata: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError("The README.md metadata must be a YAML mapping")
    return data


def _clean_path(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise HubError(400, f"Invalid path in repository: {value!r}")
    parts = value.split("/")
    if any(part in ("", ".", "..") for part in parts) or parts[0] == ".git" or "\0" in value or len(value) > 4096:
        raise HubError(400, f"Invalid path in repository: {value!r}")
    return value


def _valid_repo_part(text: str) -> bool:
    return bool(_REPO_PART_RE.fullmatch(text)) and "--" not in text and ".." not in text and not text.endswith(".git")


def _truthy(value: object) -> bool:
    return value is True or (isinstance(value, str) and value.lower() in ("1", "true", "yes"))


def _encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _decode_cursor(cursor: str) -> int:
    try:
        offset = json.loads(base64.urlsafe_b64decode(cursor.encode()))["offset"]
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise HubError(400, f"Invalid cursor: {cursor!r}") from exc
    if not isinstance(offset, int) or offset < 0:
        raise HubError(400, f"Invalid cursor: {cursor!r}")
    return offset


def _byte_range(header: str | None, total: int) -> tuple[int, int] | None:
    """The single ``Range: bytes=`` span asked for, inclusive; None to answer the whole body (no or unusable header)."""
    match = _RANGE_RE.fullmatch(header.strip()) if header else None
    if match is None or match.group(1) == match.group(2) == "":
        return None
    first, last = match.groups()
    if first == "":
        start, end = max(total - int(last), 0), total - 1
    else:
        start, end = int(first), min(int(last), total - 1) if last else total - 1
    if start >= total or start > end:
        raise HubError(
            416, f"Range not satisfiable: {header} (size {total})", headers={"Content-Range": f"bytes */{total}"}
        )
    return start, end


# -- Request records and fault injection ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestRecord:
    """One request the server saw. ``status`` is 0 when the connection was dropped before any response."""

    method: str
    path: str
    status: int
    bytes_in: int
    bytes_out: int
    query: str = ""
    dropped: bool = False


@dataclass
class Fault:
    """One armed fault: fires on the next ``times`` requests whose method and path match, then disarms."""

    method: str
    path_regex: str
    kind: FaultKind
    times: int = 1
    code: int = 500
    after_bytes: int | None = None
    seconds: float = 0.0
    every: float = 1.0
    size: int = 1
    fired: int = 0

    def matches(self, method: str, path: str) -> bool:
        return (
            self.fired < self.times
            and self.method in ("*", method.upper())
            and re.search(self.path_regex, path) is not None
        )


class Faults:
    """The fault injection switch.

    ``add(method, path_regex, kind, times=1, **kw)`` arms a fault for requests whose method is ``method`` (``"*"``: any)
    and whose decoded path matches ``path_regex`` (``re.search``). Kinds:

    - ``"status"``: answer ``code`` (default 500) with an error body, without calling the endpoint; the request body
      is read first, so the client sees the answer rather than a broken pipe.
    - ``"drop"``: break the connection mid-transfer. A request with a body (an upload) is read up to ``after_bytes``
      (default half its Content-Length), then the connection is reset: the client sees "Server disconnected without
      sending a response", the endpoint sees the client disconnect and stores nothing. A request without a body gets
      the response headers (with the full Content-Length) and the first ``after_bytes`` of the body (default half;
      0, and always for HEAD: nothing at all), then the connection is closed: the client sees "peer closed
      connection without sending complete message body".
    - ``"delay"``: sleep ``seconds`` before handling the request normally.
    - ``"drip"``: answer normally, but send the response body ``size`` bytes (default 1) at a time, one piece every
      ``every`` seconds (default 1): a server that is up yet too slow to be moving (an overloaded proxy, a tarpit).
    """

    _OPTIONS: Mapping[str, frozenset[str]] = {
        "status": frozenset({"code"}),
        "drop": frozenset({"after_bytes"}),
        "delay": frozenset({"seconds"}),
        "drip": frozenset({"every", "size"}),
    }

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, method: str, path_regex: str, kind: FaultKind, times: int = 1, **kw: Any) -> Fault:
        if kind not in self._OPTIONS:
            raise ValueError(f"unknown fault kind {kind!r}: expected one of {sorted(self._OPTIONS)}")
        if unknown := set(kw) - self._OPTIONS[kind]:
            raise ValueError(f"fault {kind!r} takes {sorted(self._OPTIONS[kind])}, not {sorted(unknown)}")
        re.compile(path_regex)
        fault = Fault(method.upper(), path_regex, kind, times, **kw)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def armed(self) -> list[Fault]:
        with self._lock:
            return [fault for fault in self._faults if fault.fired < fault.times]

    def take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.fired += 1
                    return fault
        return None


class _Dropped(Exception):
    """Raised into the application once its connection has been aborted by a ``drop`` fault."""


class _StoredFile(FileResponse):
    """A stored file sent as starlette sends any file, read in 1 MiB pieces rather than 64 KiB: each piece is a hop
    to a worker thread and back, most of the server's CPU on a download. The client receives the same bytes and
    headers; drop and drip faults cut the body at the same offsets (they split a piece where they need to)."""

    chunk_size = 1 << 20


class _Exchange:
    """One request/response going through the instrumentation: counts bytes, records it, applies a fault."""

    def __init__(self, hub: _Hub, scope: Scope, receive: Receive, send: Send) -> None:
        self.hub, self.scope, self._receive, self._send = hub, scope, receive, send
        self.status = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.recorded = False
        self.dropped = False
        self.drop_in: int | None = None  # request body bytes after which the connection is dropped
        self.drop_response = False  # drop the connection during the response...
        self.drop_after: int | None = None  # ...after this many body bytes (None: half the Content-Length)
        self.drop_out: int | None = None
        self.drip: Fault | None = None  # send the body in small pieces, slowly

    def record(self) -> None:
        if not self.recorded:
            self.recorded = True
            self.hub.requests.append(
                RequestRecord(
                    self.scope["method"],
                    self.scope["path"],
                    self.status,
                    self.bytes_in,
                    self.bytes_out,
                    self.scope.get("query_string", b"").decode("latin-1"),
                    self.dropped,
                )
            )

    async def drop(self) -> None:
        transport = self.scope.get("state", {}).get(_TRANSPORT_KEY)
        if transport is None:
            raise RuntimeError("drop faults need the server's own HTTP protocol (HubServer runs it)")
        self.dropped = True
        self.record()
        if self.status:
            # Mid-response: what was sent reaches the client (it counts those bytes), then the connection ends.
            deadline = time.monotonic() + 10
            while transport.get_write_buffer_size() and time.monotonic() < deadline:
                await asyncio.sleep(0.001)
            transport.close()
        else:
            transport.abort()  # mid-request: reset while the client is still sending
        # Let the event loop deliver connection_lost, so uvicorn knows the client is gone and answers nothing.
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    async def receive(self) -> Message:
        if self.dropped:
            return {"type": "http.disconnect"}
        if self.drop_in == 0:
            await self.drop()
            return {"type": "http.disconnect"}
        message = await self._receive()
        if message["type"] == "http.request":
            self.bytes_in += len(message.get("body", b""))
            if self.drop_in is not None and self.bytes_in >= self.drop_in:
                await self.drop()
                return {"type": "http.disconnect"}
        return message

    async def send(self, message: Message) -> None:
        if self.dropped:
            return
        if message["type"] == "http.response.start":
            if self.drop_response:
                length = next((int(v) for k, v in message.get("headers", []) if k.lower() == b"content-length"), 0)
                self.drop_out = self.drop_after if self.drop_after is not None else length // 2
                if self.drop_out == 0 or self.scope["method"] == "HEAD":
                    await self.drop()
                    raise _Dropped
            self.status = message["status"]
        elif message["type"] == "http.response.body":
            body = message.get("body", b"")
            if self.drop_out is not None and self.bytes_out + len(body) >= self.drop_out:
                part = body[: self.drop_out - self.bytes_out]
                if part:
                    await self._send({"type": "http.response.body", "body": part, "more_body": True})
                    self.bytes_out += len(part)
                await self.drop()
                raise _Dropped
            if self.drip is not None:
                await self._drip(body, more=message.get("more_body", False))
                return
            self.bytes_out += len(body)
            if not message.get("more_body", False):
                self.record()
        await self._send(message)

    async def _drip(self, body: bytes, *, more: bool) -> None:
        assert self.drip is not None
        step = max(self.drip.size, 1)
        pieces = [body[i : i + step] for i in range(0, len(body), step)] or [b""]
        for n, piece in enumerate(pieces):
            await asyncio.sleep(self.drip.every)
            last = n == len(pieces) - 1
            self.bytes_out += len(piece)
            if last and not more:
                self.record()
            await self._send({"type": "http.response.body", "body": piece, "more_body": more or not last})

    async def answer_status(self, code: int) -> None:
        while True:
            message = await self.receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        text = f"Injected fault: HTTP {code} (tests.servers.hub fault injection)"
        body = json.dumps({"error": text}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-error-message", text.encode()),
        ]
        await self.send({"type": "http.response.start", "status": code, "headers": headers})
        await self.send({"type": "http.response.body", "body": body, "more_body": False})

    async def run_dropping(self, app: ASGIApp, after_bytes: int | None) -> None:
        headers = dict(self.scope.get("headers", []))
        length = int(headers.get(b"content-length", b"0") or 0)
        if length > 0 or b"chunked" in headers.get(b"transfer-encoding", b""):
            self.drop_in = after_bytes if after_bytes is not None else max(length // 2, 1)
        else:
            self.drop_response, self.drop_after = True, after_bytes
        try:
            await app(self.scope, self.receive, self.send)
        except BaseException:
            if not self.dropped:
                raise


class _Instrumentation:
    """ASGI middleware in front of the routes: request records, then faults."""

    def __init__(self, app: ASGIApp, hub: _Hub) -> None:
        self.app = app
        self.hub = hub

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        exchange = _Exchange(self.hub, scope, receive, send)
        fault = self.hub.faults.take(scope["method"], scope["path"])
        if fault is not None and fault.kind == "delay":
            await asyncio.sleep(fault.seconds)
        if fault is not None and fault.kind == "status":
            await exchange.answer_status(fault.code)
        elif fault is not None and fault.kind == "drop":
            await exchange.run_dropping(self.app, fault.after_bytes)
        elif fault is not None and fault.kind == "drip":
            exchange.drip = fault
            await self.app(scope, exchange.receive, exchange.send)
        else:
            await self.app(scope, exchange.receive, exchange.send)


class _Protocol(H11Protocol):
    """uvicorn's h11 protocol, handing each request its transport so that a ``drop`` fault can abort it."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.app_state = {**self.app_state, _TRANSPORT_KEY: transport}


# -- The application ------------------------------------------------------------------------------------------------


@dataclass
class _Call:
    """A request whose body has been read, handed to a handler running in a worker thread."""

    request: Request
    body: bytes

    @property
    def base(self) -> str:
        return str(self.request.base_url).rstrip("/")

    def param(self, name: str) -> str:
        return str(self.request.path_params[name])

    def segments(self) -> list[str]:
        """The path's segments as sent, each percent-decoded: keeps a revision's encoded slashes apart."""
        raw = self.request.scope.get("raw_path") or self.request.scope["path"].encode()
        return [unquote(segment) for segment in raw.decode("latin-1").split("/")]

    def json(self) -> dict[str, Any]:
        try:
            data = json.loads(self.body or b"{}")
        except ValueError as exc:
            raise HubError(400, f"Invalid JSON body: {exc}") from exc
        if not isinstance(data, dict):
            raise HubError(400, "The JSON body must be an object")
        return data

    def flag(self, name: str) -> bool:
        return _truthy(self.request.query_params.get(name))


@dataclass(frozen=True)
class _Repo:
    repo_id: str
    namespace: str
    git: GitRepo
    meta: Mapping[str, Any]

    @property
    def private(self) -> bool:
        return bool(self.meta.get("private"))


@dataclass
class _Hub:
    """Server state and the endpoint handlers."""

    root: Path
    accounts: dict[str, Account]
    faults: Faults = field(default_factory=Faults)
    requests: list[RequestRecord] = field(default_factory=list)
    unserved: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    page_size: int | None = None
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    _repos: dict[str, GitRepo] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- storage layout

    def repo_dir(self, repo_id: str) -> Path:
        return self.root / "repos" / f"{repo_id}.git"

    def lfs_dir(self, repo_id: str) -> Path:
        return self.root / "lfs" / repo_id

    def lfs_path(self, repo_id: str, oid: str) -> Path:
        return self.lfs_dir(repo_id) / oid[:2] / oid[2:4] / oid

    def lookup(self, namespace: str, name: str) -> _Repo | None:
        if not (_valid_repo_part(namespace) and _valid_repo_part(name)):
            return None
        repo_id = f"{namespace}/{name}"
        path = self.repo_dir(repo_id)
        try:
            meta = json.loads((path / "hub.json").read_text())
        except FileNotFoundError:
            return None
        with self._lock:
            git = self._repos.get(repo_id)
            if git is None:
                git = self._repos[repo_id] = GitRepo(path)
        return _Repo(repo_id, namespace, git, meta)

    def require(self, repo_id: str) -> _Repo:
        namespace, _, name = repo_id.partition("/")
        repo = self.lookup(namespace, name)
        if repo is None:
            raise KeyError(f"no repository {repo_id!r} on this server")
        return repo

    def create(self, repo_id: str, *, private: bool, user: str) -> bool:
        final = self.repo_dir(repo_id)
        with self._lock:
            if final.exists():
                return False
            final.parent.mkdir(parents=True, exist_ok=True)
            building = Path(tempfile.mkdtemp(prefix=".creating-", dir=final.parent))
            try:
                subprocess.run(
                    ["git", "init", "--bare", "--quiet", f"--initial-branch={DEFAULT_BRANCH}", str(building)],
                    env=_git_env(),
                    check=True,
                    capture_output=True,
                )
                git = GitRepo(building)
                blob = git.hash_object(GITATTRIBUTES.encode())
                commit = git.write_commit(
                    {".gitattributes": ("100644", blob)}, parent=None, message="initial commit", user=user
                )
                git.run("update-ref", f"refs/heads/{DEFAULT_BRANCH}", commit, ZERO_OID)
                meta = {
                    "id": _stable_id(repo_id + str(time.time())),
                    "private": private,
                    "createdAt": _iso(time.time()),
                }
                (building / "hub.json").write_text(json.dumps(meta))
                building.rename(final)
            except BaseException:
                shutil.rmtree(building, ignore_errors=True)
                raise
            self._repos.pop(repo_id, None)
        return True

    # -- authentication and access

    def account(self, request: Request) -> Account | None:
        header = request.headers.get("authorization")
        if not header:
            return None
        scheme, _, credentials = header.partition(" ")
        token = credentials.strip()
        if scheme.lower() == "basic":
            try:
                token = base64.b64decode(token).decode().partition(":")[2]
            except (ValueError, binascii.Error):
                token = ""
        elif scheme.lower() != "bearer":
            token = ""
        account = self.accounts.get(token)
        if account is None:
            raise HubError(401, "Invalid credentials in Authorization header")
        return account

    def readable(self, call: _Call) -> tuple[_Repo, Account | None]:
        account = self.account(call.request)
        repo = self.lookup(call.param("namespace"), call.param("name"))
        if repo is None or (repo.private and (account is None or repo.namespace not in account.namespaces)):
            raise _repo_not_found(account is not None)
        return repo, account

    def writable(self, call: _Call) -> tuple[_Repo, Account]:
        repo, account = self.readable(call)
        return repo, self.writer(repo, account)

    @staticmethod
    def writer(repo: _Repo, account: Account | None) -> Account:
        if account is None:
            raise HubError(401, f"You must be authenticated to write to the model repository {repo.repo_id}")
        if repo.namespace not in account.namespaces:
            raise HubError(
                403,
                f'You don\'t have the rights to write to the model repository "{repo.repo_id}": make sure you have'
                f' write access to the namespace "{repo.namespace}"',
            )
        if account.role != "write":
            raise HubError(
                403,
                f'You don\'t have the rights to write to the model repository "{repo.repo_id}": this access token is'
                ' read-only; make sure you have write access (a token with the "write" role)',
            )
        return account

    @staticmethod
    def commit_of(repo: _Repo, revision: str) -> str:
        commit = repo.git.resolve(revision)
        if commit is None:
            raise _revision_not_found(revision)
        return commit

    def paginate(self, call: _Call, items: Sequence[_T], default_size: int) -> tuple[Sequence[_T], dict[str, str]]:
        size = self.page_size or default_size
        cursor = call.request.query_params.get("cursor")
        start = _decode_cursor(cursor) if cursor else 0
        headers: dict[str, str] = {}
        if start + size < len(items):
            params = [(k, v) for k, v in call.request.query_params.multi_items() if k != "cursor"]
            params.append(("cursor", _encode_cursor(start + size)))
            raw_path = call.request.scope.get("raw_path", b"").decode("latin-1") or call.request.url.path
            headers["Link"] = f'<{call.base}{raw_path}?{urlencode(params)}>; rel="next"'
        return items[start : start + size], headers

    def describe(self, repo: _Repo, commit: str, entries: Sequence[TreeEntry], *, expand: bool) -> list[dict[str, Any]]:
        """Tree entries as ``list_repo_tree`` and ``get_paths_info`` read them."""
        pointers = repo.git.pointers(entries)
        described: list[dict[str, Any]] = []
        for entry in entries:
            item: dict[str, Any]
            if entry.kind == "tree":
                item = {"type": "directory", "oid": entry.oid, "size": 0, "path": entry.path}
            else:
                pointer = pointers.get(entry.oid)
                item = {"type": "file", "oid": entry.oid, "size": pointer.size if pointer else entry.size}
                item["path"] = entry.path
                if pointer:
                    item["lfs"] = {"oid": pointer.oid, "size": pointer.size, "pointerSize": pointer.pointer_size}
                if expand:
                    item["securityFileStatus"] = {
                        "status": "safe",
                        "avScan": {"virusFound": False, "virusNames": None},
                        "pickleImportScan": None,
                    }
            if expand:
                item["lastCommit"] = repo.git.last_commit(commit, entry.path)
            described.append(item)
        return described

    # -- user and repositories

    def whoami(self, call: _Call) -> Response:
        account = self.account(call.request)
        if account is None:
            raise HubError(401, "Invalid credentials in Authorization header")
        orgs = [
            {
                "type": "org",
                "id": _stable_id(org),
                "name": org,
                "fullname": org,
                "email": None,
                "canPay": False,
                "periodEnd": None,
                "avatarUrl": "",
                "roleInOrg": account.role,
                "isEnterprise": False,
            }
            for org in account.orgs
        ]
        return _json(
            {
                "type": "user",
                "id": _stable_id(account.user),
                "name": account.user,
                "fullname": account.user,
                "email": f"{account.user}@users.noreply.huggingface.co",
                "emailVerified": True,
                "canPay": False,
                "isPro": False,
                "periodEnd": None,
                "avatarUrl": "",
                "orgs": orgs,
                "auth": {
                    "type": "access_token",
                    "accessToken": {"displayName": f"{account.user}-{account.role}", "role": account.role},
                },
            }
        )

    def create_repo(self, call: _Call) -> Response:
        account = self.account(call.request)
        payload = call.json()
        repo_type = payload.get("type") or "model"
        if repo_type != "model":
            raise HubError(400, f"This server serves model repositories only, not {repo_type!r} ones")
        if account is None:
            raise HubError(401, "You must be authenticated to create a repository")
        name, organization = payload.get("name"), payload.get("organization")
        namespace = organization or account.user
        if not (isinstance(name, str) and isinstance(namespace, str) and _valid_repo_part(name)):
            raise HubError(400, f"Invalid repository name: {name!r}")
        if namespace not in account.namespaces:
            raise HubError(403, f'You don\'t have the rights to create a model under the namespace "{namespace}"')
        if account.role != "write":
            raise HubError(
                403,
                f'You don\'t have the rights to create a model under the namespace "{namespace}": this access token'
                ' is read-only (a token with the "write" role is needed)',
            )
        visibility = payload.get("visibility")
        private = visibility == "private" or (visibility is None and payload.get("private") is True)
        repo_id = f"{namespace}/{name}"
        url = f"{call.base}/{repo_id}"
        if not self.create(repo_id, private=private, user=account.user):
            raise HubError(409, "You already created this model repo", extra={"url": url})
        return _json({"url": url, "name": repo_id, "id": self.require(repo_id).meta["id"]})

    def delete_repo(self, call: _Call) -> Response:
        account = self.account(call.request)
        payload = call.json()
        name, organization = payload.get("name"), payload.get("organization")
        namespace = organization or (account.user if account else "")
        repo = self.lookup(str(namespace), str(name))
        if repo is None or (repo.private and (account is None or repo.namespace not in account.namespaces)):
            raise _repo_not_found(account is not None)
        self.writer(repo, account)
        with self._lock, repo.git.lock:
            shutil.rmtree(self.repo_dir(repo.repo_id))
            shutil.rmtree(self.lfs_dir(repo.repo_id), ignore_errors=True)
            self._repos.pop(repo.repo_id, None)
        return _json({})

    def validate_yaml(self, call: _Call) -> Response:
        content = call.json().get("content")
        try:
            _front_matter(content if isinstance(content, str) else "")
        except ValueError as exc:
            return _json({"error": str(exc), "errors": [{"message": str(exc)}], "warnings": []}, 400)
        return _json({"errors": [], "warnings": []})

    def model_info(self, call: _Call) -> Response:
        repo, _ = self.readable(call)
        revision = "/".join(call.segments()[6:]) if "revision" in call.request.path_params else DEFAULT_BRANCH
        commit = self.commit_of(repo, revision)
        files = repo.git.files(commit)
        pointers = repo.git.pointers(files.values())
        with_blobs = call.flag("blobs")
        siblings: list[dict[str, Any]] = []
        for path, entry in files.items():
            sibling: dict[str, Any] = {"rfilename": path}
            if with_blobs:
                pointer = pointers.get(entry.oid)
                sibling.update(blobId=entry.oid, size=pointer.size if pointer else entry.size)
                if pointer:
                    sibling["lfs"] = {"sha256": pointer.oid, "size": pointer.size, "pointerSize": pointer.pointer_size}
            siblings.append(sibling)
        card = self.card_data(repo, files)
        tags = [str(tag) for tag in card.get("tags", []) if isinstance(tag, str | int | float)] if card else []
        if card and isinstance(card.get("license"), str):
            tags.append(f"license:{card['license']}")
        info: dict[str, Any] = {
            "_id": repo.meta.get("id"),
            "id": repo.repo_id,
            "modelId": repo.repo_id,
            "author": repo.namespace,
            "sha": commit,
            "lastModified": _iso(repo.git.commit_time(commit)),
            "createdAt": repo.meta.get("createdAt"),
            "private": repo.private,
            "gated": False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": tags,
            "library_name": card.get("library_name") if card else None,
            "pipeline_tag": card.get("pipeline_tag") if card else None,
            "siblings": siblings,
            "spaces": [],
            "usedStorage": sum(p.size for p in pointers.values()) + sum(e.size for e in files.values()),
        }
        if card is not None:
            info["cardData"] = card
        if call.flag("securityStatus"):
            info["securityRepoStatus"] = {"scansDone": True, "filesWithIssues": []}
        expand = call.request.query_params.getlist("expand") + call.request.query_params.getlist("expand[]")
        if expand:
            info = {key: value for key, value in info.items() if key in expand or key in ("_id", "id")}
        return _json(info)

    @staticmethod
    def card_data(repo: _Repo, files: Mapping[str, TreeEntry]) -> dict[str, Any] | None:
        readme = files.get("README.md")
        if readme is None or readme.size > REGULAR_FILE_LIMIT:
            return None
        try:
            return _front_matter(repo.git.read_blob(readme.oid).decode("utf-8", "replace"))
        except ValueError:
            return None

    # -- uploads and commits

    def preupload(self, call: _Call) -> Response:
        repo, _ = self.writable(call)
        commit = self.commit_of(repo, "/".join(call.segments()[6:]))
        payload = call.json()
        files_in = payload.get("files")
        if not isinstance(files_in, list):
            raise HubError(400, "preupload expects {'files': [{'path', 'sample', 'size'}, ...]}")
        files = repo.git.files(commit)
        pointers = repo.git.pointers(files.values())

        def text(path: str) -> str:
            entry = files.get(path)
            return repo.git.read_blob(entry.oid).decode("utf-8", "replace") if entry else ""

        lfs = LfsRules(text(".gitattributes"))
        gitignore = payload.get("gitIgnore")
        ignore = IgnoreRules(gitignore if isinstance(gitignore, str) else text(".gitignore"))
        answer: list[dict[str, Any]] = []
        for item in files_in:
            if not isinstance(item, dict) or not isinstance(item.get("size"), int):
                raise HubError(400, f"Invalid preupload entry: {item!r}")
            path = _clean_path(item.get("path"))
            try:
                sample = base64.b64decode(item.get("sample") or "")
            except (ValueError, binascii.Error) as exc:
                raise HubError(400, f"Invalid sample for {path}: {exc}") from exc
            is_lfs = item["size"] > REGULAR_FILE_LIMIT or lfs.is_lfs(path) or b"\0" in sample
            result: dict[str, Any] = {
                "path": item["path"],
                "uploadMode": "lfs" if is_lfs else "regular",
                "shouldIgnore": ignore.ignored(path),
            }
            if (existing := files.get(path)) is not None:
                pointer = pointers.get(existing.oid)
                result["oid"] = pointer.oid if pointer else existing.oid
            answer.append(result)
        return _json({"files": answer, "commitOid": commit})

    def commit(self, call: _Call) -> Response:
        repo, account = self.writable(call)
        if call.flag("create_pr"):
            raise HubError(400, "Pull requests are not supported by tests.servers.hub")
        branch = "/".join(call.segments()[6:])
        header, operations = _parse_ndjson(call.body)
        with repo.git.lock:
            head = repo.git.ref(f"refs/heads/{branch}") if valid_ref_name(branch) else None
            if head is None:
                if repo.git.resolve(branch):
                    raise HubError(400, f"Invalid rev id: {branch} is not a branch (commits are made on branches)")
                raise _revision_not_found(branch)
            parent = header.get("parentCommit")
            if parent and not head.startswith(str(parent).lower()):
                raise HubError(412, "A commit has happened since. Please refresh and try again.")
            files = {entry.path: (entry.mode, entry.oid) for entry in repo.git.entries(head) if entry.kind == "blob"}
            lfs_names = _Operations(self, repo, files, head, branch).apply(operations)
            summary, description = str(header.get("summary") or ""), str(header.get("description") or "")
            message = f"{summary}\n\n{description}" if description else summary
            commit = repo.git.write_commit(files, parent=head, message=message, user=account.user)
            if not repo.git.update_ref(f"refs/heads/{branch}", commit, head):
                raise HubError(412, "A commit has happened since. Please refresh and try again.")
            self.note_lfs(repo, lfs_names, f"refs/heads/{branch}")
        return _json(
            {
                "success": True,
                "commitOid": commit,
                "commitUrl": f"{call.base}/{repo.repo_id}/commit/{commit}",
                "hookOutput": "",
                "pullRequestUrl": None,
            }
        )

    # -- refs

    def refs(self, call: _Call) -> Response:
        repo, _ = self.readable(call)
        refs = repo.git.refs("refs/heads", "refs/tags")

        def listing(prefix: str) -> list[dict[str, str]]:
            return [
                {"name": name.removeprefix(prefix), "ref": name, "targetCommit": target}
                for name, (_, target) in refs.items()
                if name.startswith(prefix)
            ]

        return _json(
            {"branches": listing("refs/heads/"), "converts": [], "tags": listing("refs/tags/"), "pullRequests": []}
        )

    def create_branch(self, call: _Call) -> Response:
        repo, _ = self.writable(call)
        branch = "/".join(call.segments()[6:])
        if not valid_ref_name(branch) or branch.startswith("refs/"):
            raise HubError(400, f"Invalid reference for a branch: {branch}")
        payload = call.json()
        commit = self.commit_of(repo, str(payload.get("startingPoint") or DEFAULT_BRANCH))
        with repo.git.lock:
            if repo.git.ref(f"refs/heads/{branch}") is not None:
                raise HubError(409, f"Reference refs/heads/{branch} already exists")
            if not repo.git.update_ref(f"refs/heads/{branch}", commit, ZERO_OID):
                raise HubError(400, f"Cannot create refs/heads/{branch}: it clashes with an existing branch")
        return _json({})

    def delete_branch(self, call: _Call) -> Response:
        repo, _ = self.writable(call)
        branch = "/".join(call.segments()[6:])
        if branch == DEFAULT_BRANCH:
            raise HubError(403, f"Cannot delete refs/heads/{DEFAULT_BRANCH}: it is the default branch")
        with repo.git.lock:
            head = repo.git.ref(f"refs/heads/{branch}") if valid_ref_name(branch) else None
            if head is None or not repo.git.delete_ref(f"refs/heads/{branch}", head):
                raise _revision_not_found(branch)
        return _json({})

    def create_tag(self, call: _Call) -> Response:
        repo, account = self.writable(call)
        payload = call.json()
        tag, message = payload.get("tag"), payload.get("message")
        if not isinstance(tag, str) or not valid_ref_name(tag) or tag.startswith("refs/"):
            raise HubError(400, f"Invalid tag name: {tag!r}")
        commit = self.commit_of(repo, "/".join(call.segments()[6:]))
        with repo.git.lock:
            if repo.git.ref(f"refs/tags/{tag}") is not None:
                raise HubError(409, f"Reference refs/tags/{tag} already exists")
            target = commit
            if message:
                email = f"{account.user}@users.noreply.huggingface.co"
                tag_object = (
                    f"object {commit}\ntype commit\ntag {tag}\ntagger {account.user} <{email}> {int(time.time())} +0000"
                    f"\n\n{message}\n"
                )
                target = repo.git.objects.write("tag", tag_object.encode())
            if not repo.git.update_ref(f"refs/tags/{tag}", target, ZERO_OID):
                raise HubError(409, f"Reference refs/tags/{tag} already exists")
        return _json({})

    def delete_tag(self, call: _Call) -> Response:
        repo, _ = self.writable(call)
        tag = "/".join(call.segments()[6:])
        with repo.git.lock:
            found = repo.git.refs(f"refs/tags/{tag}").get(f"refs/tags/{tag}") if valid_ref_name(tag) else None
            if found is None or not repo.git.delete_ref(f"refs/tags/{tag}", found[0]):
                raise _revision_not_found(tag)
        return _json({})

    # -- listings

    def tree(self, call: _Call) -> Response:
        repo, _ = self.readable(call)
        segments = call.segments()
        revision, path = (segments[6] if len(segments) > 6 else ""), "/".join(segments[7:]).strip("/")
        commit = self.commit_of(repo, revision)
        entries = repo.git.entries(commit)
        prefix = ""
        if path:
            folder = next((entry for entry in entries if entry.path == path), None)
            if folder is None or folder.kind != "tree":
                raise _entry_not_found(path, commit)
            prefix = path + "/"
        recursive, expand = call.flag("recursive"), call.flag("expand")
        selected = [
            entry
            for entry in entries
            if entry.path.startswith(prefix) and (recursive or "/" not in entry.path[len(prefix) :])
        ]
        page, headers = self.paginate(call, selected, TREE_EXPAND_PAGE_SIZE if expand else TREE_PAGE_SIZE)
        return _json(self.describe(repo, commit, page, expand=expand), headers=headers)

    def paths_info(self, call: _Call) -> Response:
        repo, _ = self.readable(call)
        commit = self.commit_of(repo, "/".join(call.segments()[6:]))
        if "json" in call.request.headers.get("content-type", ""):
            payload = call.json()
            raw_paths, expand = payload.get("paths", []), _truthy(payload.get("expand"))
        else:
            form = parse_qs(call.body.decode(), keep_blank_values=True)
            raw_paths, expand = form.get("paths", []), _truthy((form.get("expand") or [""])[-1])
        if not isinstance(raw_paths, list):
            raise HubError(400, "'paths' must be a list of paths")
        by_path = {entry.path: entry for entry in repo.git.entries(commit)}
        wanted = dict.fromkeys(str(path).strip("/") for path in raw_paths)
        selected = [by_path[path] for path in wanted if path in by_path]
        return _json(self.describe(repo, commit, selected, expand=expand))

    def commits(self, call: _Call) -> Response:
        repo, _ = self.readable(call)
        commit = self.commit_of(repo, "/".join(call.segments()[6:]))
        history = repo.git.log(commit)
        page, headers = self.paginate(call, history, COMMITS_PAGE_SIZE)
        if "formatted" in call.request.query_params.getlist("expand[]"):
            page = [{**item, "formatted": {"title": item["title"], "message": item["message"]}} for item in page]
        return _json(list(page), headers=headers)

    # -- LFS storage

    def note_lfs(self, repo: _Repo, names: Mapping[str, str], ref: str) -> None:
        """Remember the first path and ref each LFS object was committed under (``list_lfs_files`` shows them)."""
        if not names:
            return
        index_path = self.lfs_dir(repo.repo_id) / "index.json"
        with repo.git.lock:
            index = json.loads(index_path.read_text()) if index_path.is_file() else {}
            for oid, path in names.items():
                index.setdefault(oid, {"filename": path, "ref": ref})
            index_path.parent.mkdir(parents=True, exist_ok=True)
            index_path.write_text(json.dumps(index))

    def lfs_objects(self, repo: _Repo) -> list[dict[str, Any]]:
        base = self.lfs_dir(repo.repo_id)
        index_path = base / "index.json"
        index = json.loads(index_path.read_text()) if index_path.is_file() else {}
        objects: list[dict[str, Any]] = []
        for path in base.glob("??/??/*"):
            if _SHA256_RE.fullmatch(path.name) and path.is_file():
                stat = path.stat()
                meta = index.get(path.name, {})
                objects.append(
                    {
                        "fileOid": path.name,
                        "oid": path.name,
                        "size": stat.st_size,
                        "pushedAt": _iso(stat.st_mtime),
                        "filename": meta.get("filename", ""),
                        "ref": meta.get("ref"),
                    }
                )
        return sorted(objects, key=lambda item: (item["pushedAt"], item["fileOid"]), reverse=True)

    def lfs_files(self, call: _Call) -> Response:
        repo, _ = self.writable(call)
        page, headers = self.paginate(call, self.lfs_objects(repo), LIST_PAGE_SIZE)
        return _json(list(page), headers=headers)

    def lfs_delete(self, call: _Call) -> Response:
        repo, _ = self.writable(call)
        deletions = call.json().get("deletions")
        if not isinstance(deletions, dict) or not isinstance(deletions.get("sha"), list):
            raise HubError(400, "Expected {'deletions': {'sha': [...], 'rewriteHistory': bool}}")
        if deletions.get("rewriteHistory"):
            raise HubError(
                400,
                "rewriteHistory=true is not supported by tests.servers.hub: delete with rewrite_history=False (the"
                " objects are deleted and the git history keeps pointing at them)",
            )
        with repo.git.lock:
            for oid in deletions["sha"]:
                if isinstance(oid, str) and _SHA256_RE.fullmatch(oid):
                    self.lfs_path(repo.repo_id, oid).unlink(missing_ok=True)
        return _json({})

    def sign(self, method: str, repo_id: str, oid: str, size: int, expires: int) -> str:
        message = f"{method} {repo_id} {oid} {size} {expires}".encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()

    def signed_url(self, call: _Call, method: str, repo_id: str, oid: str, size: int) -> str:
        expires = int(time.time()) + SIGNED_URL_LIFETIME
        query = urlencode(
            {"size": size, "expires": expires, "signature": self.sign(method, repo_id, oid, size, expires)}
        )
        return f"{call.base}/lfs-storage/{repo_id}/{oid}?{query}"

    def check_signature(self, request: Request, method: str) -> tuple[str, str, int]:
        params = request.path_params
        repo_id, oid = f"{params['namespace']}/{params['name']}", str(params["oid"])
        query = request.query_params
        try:
            size, expires = int(query["size"]), int(query["expires"])
            signature = query["signature"]
        except (KeyError, ValueError) as exc:
            raise HubError(403, "Storage URL without a valid signature (size, expires, signature)") from exc
        expected = self.sign(method, repo_id, oid, size, expires)
        if expires < time.time() or not hmac.compare_digest(signature, expected):
            raise HubError(403, "Storage URL expired or its signature does not match")
        if not _SHA256_RE.fullmatch(oid):
            raise HubError(400, f"Invalid object id: {oid}")
        return repo_id, oid, size

    def lfs_batch(self, call: _Call) -> Response:
        repo, account = self.readable(call)
        payload = call.json()
        operation = payload.get("operation")
        if operation == "upload":
            self.writer(repo, account)
        elif operation != "download":
            raise HubError(400, f"Unknown LFS batch operation: {operation!r}")
        objects = payload.get("objects")
        if not isinstance(objects, list):
            raise HubError(400, "LFS batch request without an 'objects' list")
        answer = [self.batch_object(call, repo, str(operation), item) for item in objects]
        return _json(
            {"transfer": "basic", "objects": answer, "hash_algo": "sha256"}, media_type="application/vnd.git-lfs+json"
        )

    def batch_object(self, call: _Call, repo: _Repo, operation: str, item: object) -> dict[str, Any]:
        oid = item.get("oid") if isinstance(item, dict) else None
        size = item.get("size") if isinstance(item, dict) else None
        if not (isinstance(oid, str) and _SHA256_RE.fullmatch(oid) and type(size) is int and size >= 0):
            return {
                "oid": str(oid),
                "size": size if type(size) is int else 0,
                "error": {"code": 422, "message": "Invalid object: oid must be a sha256 hex digest, size a count"},
            }
        stored = self.lfs_path(repo.repo_id, oid)
        stored_size = stored.stat().st_size if stored.is_file() else None
        entry: dict[str, Any] = {"oid": oid, "size": size, "authenticated": True}
        if operation == "download":
            if stored_size is None:
                entry["error"] = {"code": 404, "message": "Object does not exist"}
            else:
                href = self.signed_url(call, "GET", repo.repo_id, oid, stored_size)
                entry["actions"] = {"download": {"href": href, "expires_in": SIGNED_URL_LIFETIME}}
        elif stored_size != size:
            entry["actions"] = {
                "upload": {
                    "href": self.signed_url(call, "PUT", repo.repo_id, oid, size),
                    "expires_in": SIGNED_URL_LIFETIME,
                },
                "verify": {
                    "href": f"{call.base}/{repo.repo_id}.git/info/lfs/objects/verify",
                    "expires_in": SIGNED_URL_LIFETIME,
                },
            }
        return entry

    def lfs_verify(self, call: _Call) -> Response:
        repo, _ = self.readable(call)
        payload = call.json()
        oid, size = payload.get("oid"), payload.get("size")
        stored = self.lfs_path(repo.repo_id, oid) if isinstance(oid, str) and _SHA256_RE.fullmatch(oid) else None
        if stored is None or not stored.is_file():
            raise HubError(404, f"LFS object {oid} was not uploaded")
        if stored.stat().st_size != size:
            raise HubError(422, f"LFS object {oid} is {stored.stat().st_size} bytes, not {size}")
        return _json({"message": "Object verified"})

    async def lfs_upload(self, request: Request) -> Response:
        """A signed ``PUT``: the body is streamed to a temporary file while hashed, kept only if it is the object."""
        repo_id, oid, size = self.check_signature(request, "PUT")
        if self.lookup(*repo_id.split("/")) is None:
            raise _repo_not_found(True)
        spool = self.lfs_dir(repo_id) / ".tmp"
        spool.mkdir(parents=True, exist_ok=True)
        descriptor, name = tempfile.mkstemp(dir=spool, prefix=f"{oid}.")
        writer = _HashingWriter(os.fdopen(descriptor, "wb"))
        try:
            buffer = bytearray()
            async for chunk in request.stream():
                buffer += chunk
                if len(buffer) >= 1 << 20:
                    await anyio.to_thread.run_sync(writer.write, bytes(buffer))
                    buffer.clear()
            await anyio.to_thread.run_sync(writer.write, bytes(buffer))
            writer.close()
            digest = writer.sha256.hexdigest()
            if writer.size != size or digest != oid:
                raise HubError(
                    400,
                    f"Uploaded content does not match the object: expected sha256 {oid} and {size} bytes,"
                    f" received sha256 {digest} and {writer.size} bytes",
                )
            target = self.lfs_path(repo_id, oid)
            target.parent.mkdir(parents=True, exist_ok=True)
            Path(name).replace(target)
        finally:
            writer.close()
            Path(name).unlink(missing_ok=True)
        return Response(status_code=200, headers={"ETag": f'"{oid}"'})

    def lfs_download(self, call: _Call) -> Response:
        repo_id, oid, _ = self.check_signature(call.request, "GET")
        stored = self.lfs_path(repo_id, oid)
        if not stored.is_file():
            raise HubError(404, f"LFS object {oid} is not in storage")
        return _StoredFile(stored, media_type="application/octet-stream", headers={"ETag": f'"{oid}"'})

    # -- downloads

    def resolve_file(self, call: _Call) -> Response:
        repo, _ = self.readable(call)
        segments = call.segments()
        revision, path = (segments[4] if len(segments) > 4 else ""), "/".join(segments[5:])
        commit = self.commit_of(repo, revision)
        entry = repo.git.files(commit).get(path)
        if entry is None:
            raise _entry_not_found(path, commit)
        pointer = repo.git.pointers([entry]).get(entry.oid)
        headers = {"X-Repo-Commit": commit, "Accept-Ranges": "bytes"}
        if pointer is None:
            headers["ETag"] = f'"{entry.oid}"'
            if call.request.method == "HEAD":
                return Response(headers={**headers, "Content-Length": str(entry.size)})
            data = repo.git.read_blob(entry.oid)
            span = _byte_range(call.request.headers.get("range"), len(data))
            if span is None:
                return Response(data, headers=headers, media_type="application/octet-stream")
            start, end = span
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            return Response(data[start : end + 1], 206, headers=headers, media_type="application/octet-stream")
        headers.update(
            {"ETag": f'"{pointer.oid}"', "X-Linked-Etag": f'"{pointer.oid}"', "X-Linked-Size": str(pointer.size)}
        )
        if call.request.method == "HEAD":
            return Response(headers={**headers, "Content-Length": str(pointer.size)})
        stored = self.lfs_path(repo.repo_id, pointer.oid)
        if not stored.is_file():
            # What the Hub's storage answers once the object was deleted: the git history still points at it.
            raise HubError(404, f"The content of {path} (LFS object {pointer.oid}) is not in storage")
        return _StoredFile(stored, headers=headers, media_type="application/octet-stream")

    async def not_served(self, request: Request) -> Response:
        description = f"{request.method} {request.url.path}"
        self.unserved.append(description)
        return _json({"error": f"tests.servers.hub does not serve {description}"}, 404)

    # -- wiring

    def internal_error(self, request: Request, exc: BaseException) -> Response:
        self.errors.append(f"{request.method} {request.url.path}\n{''.join(traceback.format_exception(exc))}")
        return _json({"error": f"Internal error in tests.servers.hub: {exc!r}"}, 500)

    def route(self, path: str, handler: Callable[[_Call], Response], methods: list[str]) -> Route:
        """A handler that reads the whole (small) body and runs in a worker thread."""

        async def buffered(request: Request) -> Response:
            return await run_in_threadpool(handler, _Call(request, await request.body()))

        return self.streaming_route(path, buffered, methods)

    def streaming_route(
        self, path: str, handler: Callable[[Request], Awaitable[Response]], methods: list[str]
    ) -> Route:
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except HubError as error:
                return error.response()
            except ClientDisconnect:
                return Response(status_code=499)
            except Exception as exc:
                return self.internal_error(request, exc)

        return Route(path, endpoint, methods=methods)

    def application(self) -> ASGIApp:
        models = "/api/models/{namespace}/{name}"
        route = self.route
        routes = [
            route("/api/whoami-v2", self.whoami, ["GET"]),
            route("/api/repos/create", self.create_repo, ["POST"]),
            route("/api/repos/delete", self.delete_repo, ["DELETE"]),
            route("/api/validate-yaml", self.validate_yaml, ["POST"]),
            route(models, self.model_info, ["GET"]),
            route(models + "/revision/{revision:path}", self.model_info, ["GET"]),
            route(models + "/preupload/{revision:path}", self.preupload, ["POST"]),
            route(models + "/commit/{revision:path}", self.commit, ["POST"]),
            route(models + "/refs", self.refs, ["GET"]),
            route(models + "/branch/{branch:path}", self.create_branch, ["POST"]),
            route(models + "/branch/{branch:path}", self.delete_branch, ["DELETE"]),
            route(models + "/tag/{revision:path}", self.create_tag, ["POST"]),
            route(models + "/tag/{revision:path}", self.delete_tag, ["DELETE"]),
            route(models + "/tree/{rest:path}", self.tree, ["GET"]),
            route(models + "/paths-info/{revision:path}", self.paths_info, ["POST"]),
            route(models + "/commits/{revision:path}", self.commits, ["GET"]),
            route(models + "/lfs-files", self.lfs_files, ["GET"]),
            route(models + "/lfs-files/batch", self.lfs_delete, ["POST"]),
            route("/{namespace}/{name}.git/info/lfs/objects/batch", self.lfs_batch, ["POST"]),
            route("/{namespace}/{name}.git/info/lfs/objects/verify", self.lfs_verify, ["POST"]),
            self.streaming_route("/lfs-storage/{namespace}/{name}/{oid}", self.lfs_upload, ["PUT"]),
            route("/lfs-storage/{namespace}/{name}/{oid}", self.lfs_download, ["GET"]),
            route("/{namespace}/{name}/resolve/{rest:path}", self.resolve_file, ["GET", "HEAD"]),
            Route("/{path:path}", self.not_served, methods=HTTP_METHODS),
        ]
        return _Instrumentation(Starlette(routes=routes), self)


def _parse_ndjson(body: bytes) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any]]]]:
    items: list[tuple[str, dict[str, Any]]] = []
    for number, line in enumerate(body.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise HubError(400, f"Invalid NDJSON line {number}: {exc}") from exc
        if not (isinstance(item, dict) and isinstance(item.get("key"), str) and isinstance(item.get("value"), dict)):
            raise HubError(400, f"Invalid NDJSON line {number}: expected {{'key': ..., 'value': {{...}}}}")
        items.append((item["key"], item["value"]))
    if not items or items[0][0] != "header":
        raise HubError(400, "The commit payload must start with a 'header' line")
    return items[0][1], items[1:]


class _Operations:
    """The operations of one commit, applied in order to the flat file map of its parent."""

    def __init__(self, hub: _Hub, repo: _Repo, files: dict[str, tuple[str, str]], head: str, branch: str) -> None:
        self.hub, self.repo, self.files, self.head, self.branch = hub, repo, files, head, branch
        self.lfs_names: dict[str, str] = {}

    def apply(self, operations: Sequence[tuple[str, dict[str, Any]]]) -> dict[str, str]:
        handlers: Mapping[str, Callable[[dict[str, Any]], None]] = {
            "file": self.add_file,
            "lfsFile": self.add_lfs_file,
            "deletedFile": self.delete_file,
            "deletedFolder": self.delete_folder,
        }
        for key, value in operations:
            handler = handlers.get(key)
            if handler is None:
                raise HubError(400, f"Unknown commit operation {key!r} (this server handles {sorted(handlers)})")
            handler(value)
        self.check_layout()
        return self.lfs_names

    def add_file(self, value: dict[str, Any]) -> None:
        path = _clean_path(value.get("path"))
        content = value.get("content")
        if not isinstance(content, str):
            raise HubError(400, f"File {path} without content")
        try:
            data = base64.b64decode(content) if value.get("encoding", "base64") == "base64" else content.encode()
        except (ValueError, binascii.Error) as exc:
            raise HubError(400, f"Invalid base64 content for {path}: {exc}") from exc
        if len(data) > REGULAR_FILE_LIMIT:
            raise HubError(
                400,
                "Your push was rejected because it contains files larger than 10 MiB. Please use"
                f" https://git-lfs.github.com/ to store large files. Offending files: - {path} (ref:"
                f" refs/heads/{self.branch})",
            )
        self.files[path] = ("100644", self.repo.git.hash_object(data))

    def add_lfs_file(self, value: dict[str, Any]) -> None:
        path = _clean_path(value.get("path"))
        oid = value.get("oid")
        if value.get("algo", "sha256") != "sha256" or not isinstance(oid, str) or not _SHA256_RE.fullmatch(oid):
            raise HubError(400, f"Invalid LFS object for {path}: expected a sha256 oid")
        stored = self.hub.lfs_path(self.repo.repo_id, oid)
        if not stored.is_file():
            raise HubError(
                400,
                "Your push was rejected because an LFS pointer pointed to a file that does not exist. Offending"
                f" file: - {path} (LFS object {oid})",
            )
        size = stored.stat().st_size
        if value.get("size") is not None and value["size"] != size:
            raise HubError(400, f"LFS object {oid} for {path} is {size} bytes in storage, not {value['size']}")
        self.files[path] = ("100644", self.repo.git.hash_object(LfsPointer.text(oid, size)))
        self.lfs_names.setdefault(oid, path)

    def delete_file(self, value: dict[str, Any]) -> None:
        path = _clean_path(value.get("path"))
        if self.files.pop(path, None) is None:
            raise _entry_not_found(path, self.head, f"A file with this name doesn't exist: {path}")

    def delete_folder(self, value: dict[str, Any]) -> None:
        raw = value.get("path")
        folder = _clean_path(raw.rstrip("/") if isinstance(raw, str) else raw)
        victims = [path for path in self.files if path.startswith(folder + "/")]
        if not victims:
            raise _entry_not_found(folder, self.head, f"A folder with this name doesn't exist: {folder}")
        for path in victims:
            del self.files[path]

    def check_layout(self) -> None:
        for path in self.files:
            parts = path.split("/")
            for depth in range(1, len(parts)):
                if (folder := "/".join(parts[:depth])) in self.files:
                    raise HubError(400, f"Invalid commit: {folder} would be both a file and a folder ({path})")


class _HashingWriter:
    def __init__(self, file: BinaryIO) -> None:
        self.file = file
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self.sha256.update(data)
        self.size += len(data)
        self.file.write(data)

    def close(self) -> None:
        self.file.close()


# -- The server -----------------------------------------------------------------------------------------------------


def _listening_socket(port: int) -> socket.socket:
    # IPPROTO_TCP spelled out: asyncio turns Nagle off (TCP_NODELAY) on accepted sockets only when their protocol
    # says TCP; with the default 0, every response written in two parts waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    return sock


class _Server(uvicorn.Server):
    """uvicorn's server, woken at once by ``stop()`` instead of noticing ``should_exit`` at its next 0.1 s tick."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

    async def main_loop(self) -> None:
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.1)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's shutdown as it runs after ``stop()`` (``force_exit``: nothing is waited for), without the fixed
        0.1 s pause it takes before that wait: every test paid it at teardown, once per server."""
        if not self.force_exit:
            await super().shutdown(sockets)
            return
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        await asyncio.sleep(0)  # the closed transports' connection_lost callbacks run
        # A response still streaming (a FileResponse to a client that gave up) closes its file as its task ends: end
        # those (one held by a delay or drip fault sleeps for seconds), then wait for them, briefly, so no open file
        # outlives the server (filterwarnings = error turns it into a failure).
        if self.server_state.tasks:
            for task in self.server_state.tasks:
                task.cancel()
            await asyncio.wait(list(self.server_state.tasks), timeout=1.0)
        for server in self.servers:
            await server.wait_closed()

    def stop(self) -> None:
        self.should_exit = self.force_exit = True
        if self._loop is not None and self._wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                self._loop.call_soon_threadsafe(self._wake.set)


class HubServer:
    """A local Hugging Face Hub rooted in ``root``, for the real ``huggingface_hub`` client.

    ``tokens`` maps each token to ``{"user": str, "orgs": [str, ...], "role": "read" | "write"}``. A token reaches
    its user's and organizations' private repositories; only a ``"write"`` token writes, and only in those
    namespaces. ``start()`` serves on 127.0.0.1 in a background thread; ``url`` is then ``http://127.0.0.1:PORT``.
    """

    def __init__(self, root: Path, tokens: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._hub = _Hub(self.root, _accounts(tokens))
        self.app = self._hub.application()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._url: str | None = None

    # -- observation and control

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the HubServer is not started")
        return self._url

    @property
    def faults(self) -> Faults:
        return self._hub.faults

    @property
    def requests(self) -> list[RequestRecord]:
        return self._hub.requests

    @property
    def unserved(self) -> list[str]:
        """``"METHOD /path"`` of every request no route matched (answered 404)."""
        return self._hub.unserved

    @property
    def errors(self) -> list[str]:
        """Tracebacks of exceptions raised by the server's own code (answered 500)."""
        return self._hub.errors

    @property
    def page_size(self) -> int | None:
        """Entries per page of every paginated listing; None: the Hub's sizes (1000, 50 with ``expand``)."""
        return self._hub.page_size

    @page_size.setter
    def page_size(self, value: int | None) -> None:
        self._hub.page_size = value

    # -- lifecycle

    def _config(self) -> uvicorn.Config:
        return uvicorn.Config(
            self.app,
            http=_Protocol,
            ws="none",
            lifespan="off",
            log_level="warning",
            access_log=False,
            log_config=None,
            timeout_graceful_shutdown=2,
        )

    def start(self, port: int = 0) -> Self:
        if self._server is not None:
            raise RuntimeError("the HubServer is already started")
        sock = _listening_socket(port)
        server = _Server(self._config())
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="hub-server", daemon=True)
        thread.start()
        deadline = time.monotonic() + 15
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                sock.close()
                raise RuntimeError("the HubServer did not start")
            time.sleep(0.005)
        self._server, self._thread, self._socket = server, thread, sock
        self._url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        # Tests are over when this is called: close the remaining (keep-alive) connections without waiting.
        self._server.stop()
        if self._thread is not None:
            self._thread.join(timeout=15)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None
        self._url = None

    def __enter__(self) -> Self:
        return self.start() if self._server is None else self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def serve_forever(self, port: int = 0, announce: Callable[[str], None] | None = None) -> None:
        """Serve in this thread until interrupted (SIGINT/SIGTERM); ``announce`` gets the URL once listening."""
        sock = _listening_socket(port)
        self._url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        (announce or print)(self._url)
        try:
            uvicorn.Server(self._config()).run(sockets=[sock])
        finally:
            sock.close()
            self._url = None

    # -- direct state, as if someone edited the Hub by hand

    def git(self, repo_id: str, *args: str) -> str:
        """Run ``git args`` in the repository's bare git directory; its stdout."""
        return self._hub.require(repo_id).git.run(*args).decode()

    def lfs_path(self, repo_id: str, oid: str) -> Path:
        """Where the content of the LFS object ``oid`` of ``repo_id`` is stored (it may not exist)."""
        if not _SHA256_RE.fullmatch(oid):
            raise ValueError(f"not a sha256 object id: {oid!r}")
        return self._hub.lfs_path(repo_id, oid)

    def tamper(self, repo_id: str, oid: str, data: bytes) -> None:
        """Overwrite the stored bytes of the LFS object ``oid``, as storage corruption would."""
        path = self.lfs_path(repo_id, oid)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def move_branch(self, repo_id: str, branch: str, commit: str) -> None:
        """Point ``branch`` at ``commit`` (any revision), whatever it pointed at: a force-push."""
        git = self._hub.require(repo_id).git
        target = git.run("rev-parse", "--verify", f"{commit}^{{commit}}").decode().strip()
        git.run("update-ref", f"refs/heads/{branch}", target)


# -- Command line ---------------------------------------------------------------------------------------------------


def _token_spec(spec: str) -> tuple[str, dict[str, Any]]:
    parts = spec.split(":")
    if len(parts) != 4 or not parts[0] or not parts[1] or parts[3] not in ("read", "write"):
        raise argparse.ArgumentTypeError(f"expected TOKEN:USER:ORG1,ORG2:read|write, got {spec!r}")
    token, user, orgs, role = parts
    return token, {"user": user, "orgs": [org for org in orgs.split(",") if org], "role": role}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.servers.hub",
        description="Serve a local Hugging Face Hub (model repositories) until killed; prints its URL first.",
    )
    parser.add_argument("--root", type=Path, required=True, help="storage directory (repos/ and lfs/)")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default 0: any free port)")
    parser.add_argument(
        "--token",
        dest="tokens",
        action="append",
        type=_token_spec,
        default=[],
        metavar="TOKEN:USER:ORGS:ROLE",
        help="an access token: TOKEN:USER:ORG1,ORG2:write (or :read); repeat for several",
    )
    args = parser.parse_args(argv)
    server = HubServer(args.root, dict(args.tokens))
    server.serve_forever(args.port, announce=lambda url: print(url, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
