"""The Hub's HTTP API as regops uses it, on ``huggingface_hub.HfApi``: repositories, refs, files, LFS objects and
commits (:class:`Hub`), every request retried when transient and translated into a
:class:`~regops.adapters.hub.HubError` saying what to do when not, over a shared client with regops' timeouts
(:func:`bounded_session`).

What those operations mean for a version's weights (a commit per version, stage branches, the archive repo) is the
storage backend's business: ``adapters/hub.py``. That module imports this one only when it first talks to the Hub:
huggingface_hub takes ~0.4 s to import, which a command that never reaches the Hub does not pay.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar
from urllib.parse import quote

import httpx2
from huggingface_hub import (
    CommitOperationAdd,
    CommitOperationDelete,
    HfApi,
    get_session,
    hf_raise_for_status,
    set_client_factory,
)
from huggingface_hub.errors import (
    HfHubHTTPError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.hf_api import LFSFileInfo, RepoFile
from huggingface_hub.utils._headers import build_hf_headers
from huggingface_hub.utils._http import hf_request_event_hook

from regops.adapters.hub import HubError
from regops.adapters.timeouts import StalledError, Timeouts, Watchdog, http_timeouts
from regops.weights import Artifact

__all__ = ["Hub", "Refs", "RemoteFile", "bounded_session"]

T = TypeVar("T")

DEFAULT_ENDPOINT: Final = "https://huggingface.co"
# Files on main that belong to the repository, not to a version.
REPO_FILES: Final = frozenset({"README.md", ".gitattributes"})
TOKEN_HELP: Final = "https://huggingface.co/settings/tokens"


@dataclass
class Refs:
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RemoteFile:
    path: str
    size: int
    sha256: str | None  # LFS files: the object's sha256; regular files: None (the Hub gives their git oid)
    blob_id: str


def _backoff_base() -> float:
    try:
        return float(os.environ.get("REGOPS_HUB_BACKOFF", "1.0"))
    except ValueError:
        return 1.0


class Hub:
    """The Hub operations regops uses, each retried when transient and translated when not."""

    attempts: Final = 5
    repo_files: Final = REPO_FILES

    def __init__(self, *, token: str | None = None, endpoint: str | None = None) -> None:

        self.endpoint = (endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
        self.token = token or os.environ.get("HF_TOKEN") or None
        bounded_session(http_timeouts())
        self.api: HfApi = HfApi(endpoint=self.endpoint, token=self.token)
        self._lfs: dict[str, dict[str, int]] = {}
        self._blobs: dict[str, str] = {}  # git blob id -> sha256 of its bytes (a blob id names its content)

    # --- plumbing --------------------------------------------------------------------------------

    def call(self, action: str, repo: str, fn: Callable[[], T]) -> T:
        """Run ``fn``; retry transient failures with backoff; turn the rest into a HubError."""
        delay = _backoff_base()
        for attempt in range(1, self.attempts + 1):
            try:
                return fn()
            except Exception as e:
                if attempt < self.attempts and _transient(e):
                    time.sleep(delay)
                    delay *= 2
                    continue
                raise self.translate(e, action, repo) from e
        raise AssertionError("unreachable")

    def translate(self, e: Exception, action: str, repo: str) -> HubError:  # noqa: PLR0911 - one per kind of refusal

        where = f"Hub repo {repo} ({self.endpoint})"
        status = e.response.status_code if isinstance(e, HfHubHTTPError) and e.response is not None else None
        namespace = repo.split("/", maxsplit=1)[0]
        if status == 401 and not self.token:
            return HubError(
                f"cannot {action} {where}: no token; set HF_TOKEN to a token with write access ({TOKEN_HELP})"
            )
        if status == 401:
            return HubError(
                f"cannot {action} {where}: the Hub rejected HF_TOKEN (401: invalid or expired); "
                f"create a new token at {TOKEN_HELP}"
            )
        if isinstance(e, RepositoryNotFoundError):
            return HubError(
                f"cannot {action} {where}: the repo does not exist or this token cannot see it; create it "
                f"(`hf repos create {repo} --private`) or check that the token's user belongs to the {namespace!r} org"
            )
        if status == 403:
            return HubError(
                f"cannot {action} {where}: the token lacks write access to {namespace!r} (403); give it "
                f"'write' role, or for a fine-grained token 'Write access to contents/settings of all repos' "
                f"under {namespace}"
            )
        if isinstance(e, RevisionNotFoundError):
            return HubError(f"cannot {action} {where}: revision not found ({_first_line(e)})")
        if isinstance(e, RemoteEntryNotFoundError):
            return HubError(f"cannot {action} {where}: file not found ({_first_line(e)})")
        if isinstance(e, HubError):
            return e
        if _transient(e):
            return HubError(
                f"cannot {action} {where}: the Hub kept failing ({_first_line(e)}); run the command again — "
                "files already uploaded are not sent again"
            )
        return HubError(f"cannot {action} {where}: {_first_line(e)}")

    @staticmethod
    def revision_missing(e: HubError) -> bool:
        """Whether ``e`` says the revision asked for is not in the repository (a commit the Hub no longer has)."""
        return isinstance(e.__cause__, RevisionNotFoundError)

    def headers(self) -> dict[str, str]:

        return dict(build_hf_headers(token=self.token or False, library_name="regops"))

    # --- repositories, refs, files ---------------------------------------------------------------

    def ensure_repo(self, repo: str, *, private: bool) -> None:
        self.call("create", repo, lambda: self.api.create_repo(repo, private=private, exist_ok=True))

    def refs(self, repo: str) -> Refs | None:
        """Branches and tags (name → commit), or None when the repo does not exist."""

        def fetch() -> Any:
            try:
                return self.api.list_repo_refs(repo)
            except RepositoryNotFoundError as e:
                if self.token and _status(e) != 401:
                    return None
                raise

        found = self.call("read the refs of", repo, fetch)
        if found is None:
            return None
        return Refs(
            {b.name: b.target_commit for b in found.branches},
            {t.name: t.target_commit for t in found.tags},
        )

    def head(self, repo: str, branch: str = "main") -> str:
        refs = self.refs(repo)
        if refs is None or branch not in refs.branches:
            raise HubError(f"Hub repo {repo} has no branch {branch!r}")
        return refs.branches[branch]

    def set_branch(self, repo: str, name: str, commit: str, *, current: str | None) -> None:
        if current is not None:
            self.call("move a branch of", repo, lambda: self.api.delete_branch(repo, branch=name))
        self.call("create a branch in", repo, lambda: self.api.create_branch(repo, branch=name, revision=commit))

    def delete_branch(self, repo: str, name: str) -> None:
        self.call("delete a branch of", repo, lambda: self.api.delete_branch(repo, branch=name))

    def set_tag(self, repo: str, name: str, commit: str, *, current: str | None) -> None:
        if current is not None:
            self.call("move a tag of", repo, lambda: self.api.delete_tag(repo, tag=name))
        self.call("tag", repo, lambda: self.api.create_tag(repo, tag=name, revision=commit, tag_message=name))

    def delete_tag(self, repo: str, name: str) -> None:
        self.call("delete a tag of", repo, lambda: self.api.delete_tag(repo, tag=name))

    def files(self, repo: str, revision: str) -> dict[str, RemoteFile]:
        """Every file at ``revision`` (path → size, LFS sha256, git blob id)."""

        entries = self.call(
            "list the files of", repo, lambda: list(self.api.list_repo_tree(repo, revision=revision, recursive=True))
        )
        return {
            e.path: RemoteFile(e.path, e.size, e.lfs.sha256 if e.lfs else None, e.blob_id)
            for e in entries
            if isinstance(e, RepoFile)
        }

    def sha256(self, repo: str, revision: str, file: RemoteFile) -> str:
        """The sha256 of a file at ``revision``: an LFS file's from the Hub's metadata; a regular file's (the Hub
        gives only its git blob id) by reading its bytes, at most ``file.size`` of them."""
        if file.sha256 is not None:
            return file.sha256
        if file.blob_id not in self._blobs:
            digest, read = hashlib.sha256(), 0
            for chunk in self.stream(repo, revision, file.path, 0):
                read += len(chunk)
                if read > file.size:
                    raise HubError(f"Hub repo {repo} sent more than the {file.size} bytes it lists for {file.path}")
                digest.update(chunk)
            self._blobs[file.blob_id] = digest.hexdigest()
        return self._blobs[file.blob_id]

    def lfs_objects(self, repo: str, *, fresh: bool = False) -> dict[str, int] | None:
        """The LFS objects the repository stores (sha256 → size); None when the token may not list them.

        Listing a repository's LFS files is a settings-level read on the Hub: a
        read-only token (a serving job downloading weights) gets 403, and then
        only the per-commit checks and the download's own hashing apply.
        """
        if fresh or repo not in self._lfs:
            try:
                listed = self.call("list the LFS files of", repo, lambda: list(self.api.list_lfs_files(repo)))
            except HubError as e:
                cause = e.__cause__
                if isinstance(cause, Exception) and _status(cause) in (401, 403) and self.token:
                    return None
                raise
            self._lfs[repo] = {f.file_oid: f.size for f in listed}
        return self._lfs[repo]

    def delete_lfs(self, repo: str, sha256s: set[str]) -> int:

        doomed: dict[str, LFSFileInfo] = {}
        for info in self.call("list the LFS files of", repo, lambda: list(self.api.list_lfs_files(repo))):
            if info.file_oid in sha256s:
                doomed.setdefault(info.file_oid, info)
        if doomed:
            self.call(
                "delete LFS files of",
                repo,
                lambda: self.api.permanently_delete_lfs_files(repo, list(doomed.values()), rewrite_history=False),
            )
        self._lfs.pop(repo, None)
        return len(doomed)

    def read_text(self, repo: str, path: str, revision: str = "main") -> str | None:
        """A small file's text at ``revision``; None when it is not there."""
        url = f"{self.endpoint}/{repo}/resolve/{quote(revision, safe='')}/{quote(path)}"

        def fetch() -> str | None:

            response = get_session().get(url, headers=self.headers(), follow_redirects=True)
            if response.status_code == 404 and response.headers.get("X-Error-Code") == "EntryNotFound":
                return None
            hf_raise_for_status(response)
            return response.content.decode("utf-8")

        return self.call("read a file of", repo, fetch)

    def write_text(self, repo: str, path: str, text: str, *, message: str) -> str:

        op = CommitOperationAdd(path_in_repo=path, path_or_fileobj=text.encode("utf-8"))
        info = self.call(
            "commit to", repo, lambda: self.api.create_commit(repo, [op], commit_message=message, revision="main")
        )
        return info.oid

    def stream(self, repo: str, revision: str, path: str, offset: int) -> Iterator[bytes]:
        """One file's bytes at a pinned commit, from ``offset``; a dropped connection resumes where it broke."""

        url = f"{self.endpoint}/{repo}/resolve/{revision}/{quote(path)}"
        delay = _backoff_base()
        for attempt in range(1, self.attempts + 1):
            headers = self.headers()
            if offset:
                headers["Range"] = f"bytes={offset}-"
            try:
                with get_session().stream("GET", url, headers=headers, follow_redirects=True) as response:
                    if response.status_code >= 400:
                        response.read()
                        hf_raise_for_status(response)
                    if offset and response.status_code != 206:
                        raise HubError(f"the Hub ignored a range request for {path} in {repo}; cannot resume")
                    for chunk in response.iter_bytes():  # as received: re-chunking costs a copy of every byte
                        offset += len(chunk)
                        yield chunk
                return
            except HubError:
                raise
            except Exception as e:
                if attempt < self.attempts and _transient(e):
                    time.sleep(delay)
                    delay *= 2
                    continue
                raise self.translate(e, f"download {path} from", repo) from e

    def commit_files(
        self,
        repo: str,
        source: Path,
        artifacts: Sequence[Artifact],
        *,
        message: str,
    ) -> tuple[str, int, int]:
        """Make ``main`` hold exactly ``artifacts`` (plus the card); (commit, files sent, bytes sent).

        When ``main`` already holds exactly these files its head is the version's
        commit (nothing is sent). Files the repository already stores are not sent.
        """

        head = self.head(repo)
        current = self.files(repo, head)
        wanted = {a.path: a for a in artifacts}
        versioned = {p: f for p, f in current.items() if p not in REPO_FILES}
        listed = self.lfs_objects(repo, fresh=True)
        stored = set(listed or ())
        # main may point at LFS objects that retention deleted: then the commit must upload them again.
        if (
            listed is not None
            and versioned.keys() == wanted.keys()
            and all(_same(versioned[a.path], a, source) for a in artifacts)
            and all(versioned[a.path].sha256 is None or versioned[a.path].sha256 in stored for a in artifacts)
        ):
            return head, 0, 0
        ops: list[Any] = []
        sent = sent_bytes = 0
        for artifact in artifacts:
            op = CommitOperationAdd(path_in_repo=artifact.path, path_or_fileobj=str(source / artifact.path))
            op.upload_info.sha256 = bytes.fromhex(artifact.sha256)  # hashed already: the client need not re-read
            ops.append(op)
            on_main = current.get(artifact.path)
            if artifact.sha256 not in stored and not (on_main and _same(on_main, artifact, source)):
                sent += 1
                sent_bytes += artifact.size
        ops += [CommitOperationDelete(path_in_repo=p) for p in versioned if p not in wanted]

        def commit() -> str:
            info = self.api.create_commit(
                repo, ops, commit_message=message, revision="main", parent_commit=self.head(repo)
            )
            return info.oid

        # parent_commit: a commit racing ours on main fails ours (412) rather than mixing two versions' files.
        oid = self.call("upload to", repo, commit)
        self._lfs.pop(repo, None)
        return oid, sent, sent_bytes


def _same(remote: RemoteFile, artifact: Artifact, source: Path) -> bool:
    if remote.size != artifact.size:
        return False
    if remote.sha256 is not None:
        return remote.sha256 == artifact.sha256
    return remote.blob_id == _git_blob_id(source / artifact.path)


def _git_blob_id(path: Path) -> str | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


_SESSION: dict[str, Timeouts] = {}


def bounded_session(timeouts: Timeouts) -> None:
    """Give huggingface_hub's shared client (which has no timeout of its own) regops' timeouts, for every request.

    The client's own calls pass ``timeout=None`` in places (pagination), which means "wait forever" to httpx: the
    client regops installs fills every unset timeout, turns a timeout into :class:`StalledError` (never retried:
    the timeout is the wait the operator allowed) and watches every response for a drip (:class:`Watchdog`).
    """
    if _SESSION.get("installed") == timeouts:
        return

    set_client_factory(lambda: _bounded_client(timeouts))
    _SESSION["installed"] = timeouts


def _bounded_client(timeouts: Timeouts) -> Any:

    class Watched(httpx2.SyncByteStream):
        def __init__(self, inner: Any, what: str) -> None:
            self.inner, self.what = inner, what

        def __iter__(self) -> Iterator[bytes]:
            watchdog = Watchdog(self.what, timeouts)
            with _stalls(self.what, timeouts):
                for chunk in self.inner:
                    watchdog.got(len(chunk))
                    yield chunk

        def close(self) -> None:
            self.inner.close()

    class BoundedClient(httpx2.Client):
        def send(self, request: Any, *, stream: bool = False, **kw: Any) -> Any:
            limits = request.extensions.get("timeout") or {}
            request.extensions["timeout"] = {
                key: limits.get(key) or (timeouts.connect if key == "connect" else timeouts.read)
                for key in ("connect", "read", "write", "pool")
            }
            # Never the query: a signed storage URL carries its credential there.
            what = f"{request.method} {request.url.scheme}://{request.url.host}:{request.url.port}{request.url.path}"
            with _stalls(what, timeouts):
                response = super().send(request, stream=True, **kw)
            response.stream = Watched(response.stream, what)
            if not stream:
                try:
                    response.read()
                except BaseException:
                    response.close()
                    raise
            return response

    return BoundedClient(
        event_hooks={"request": [hf_request_event_hook]},
        follow_redirects=True,
        timeout=httpx2.Timeout(timeouts.read, connect=timeouts.connect),
    )


@contextmanager
def _stalls(what: str, timeouts: Timeouts) -> Iterator[None]:

    try:
        yield
    except httpx2.ConnectTimeout as e:
        raise StalledError(what, "could not connect", timeouts.connect) from e
    except httpx2.TimeoutException as e:
        raise StalledError(what, "the server did not answer", timeouts.read) from e


def _status(e: Exception) -> int | None:
    response = getattr(e, "response", None)
    return getattr(response, "status_code", None)


def _first_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0]


def _transient(e: BaseException) -> bool:
    """Worth another try: a 5xx or 429, a dropped or refused connection, a timeout, a moved ``main``."""
    status = _status(e) if isinstance(e, Exception) else None
    if status is not None:
        return status >= 500 or status in (408, 412, 429)
    seen: set[int] = set()
    current: BaseException | None = e
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, StalledError):
            return False  # the wait the operator allowed is over: another try would wait as long again
        name = type(current).__name__
        if isinstance(current, (ConnectionError, TimeoutError)) or name in (
            "RemoteProtocolError",
            "ReadError",
            "WriteError",
            "ConnectError",
            "ReadTimeout",
            "WriteTimeout",
            "ConnectTimeout",
            "PoolTimeout",
            "CloseError",
        ):
            return True
        status = _status(current) if isinstance(current, Exception) else None
        if status is not None:
            return status >= 500 or status in (408, 429)
        current = current.__cause__ or current.__context__
    return False
