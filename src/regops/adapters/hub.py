"""The ``hf`` storage backend and the Hub operations sync needs, on ``huggingface_hub.HfApi``.

On the Hub a model is one repository (``hub.repo`` in model.yaml). A version
is one commit on its ``main`` holding exactly that version's files (plus the
model card), recorded as ``artifacts.storage.revision`` and tagged
``v<version>``. Stages are branches (``dev``, ``staging``, ``prod``) pointing
at a version's commit; ``regops sync`` moves them.

* Uploads go through the client's commit API: files the repository already
  holds (same sha256) are not sent again, so a re-run after a failure resumes
  where it stopped; transient failures (5xx, dropped connections) are retried
  with exponential backoff.
* Downloads pin the commit id, never a branch, and are streamed with ``Range``
  so an interrupted one resumes; ``regops.weights.download`` verifies every
  byte against the version file.
* Cold storage is an archive repository (``<repo>-archive`` by default) or a
  local folder. Removing hot copies deletes the repository's LFS objects
  (``permanently_delete_lfs_files``, history kept), never a commit.
* The client reads ``HF_TOKEN`` and ``HF_ENDPOINT``; Xet uploads (the Hub's
  default for new repositories) are the client's business and run unchanged in
  production. Errors become :class:`~regops.weights.StorageError` saying what to do.

The Hub's HTTP API itself (the client, retries, error mapping, the repository operations) is
``adapters/hub_client.py``.
"""

from __future__ import annotations

import importlib
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from regops.weights import Artifact, PutResult, StorageError, download

if TYPE_CHECKING:
    from regops.adapters.hub_client import Hub
    from regops.adapters.local import LocalStorage

__all__ = ["HubError", "HubStorage", "HubTarget"]


class HubError(StorageError):
    """The Hub refused or failed a request; the message says what to do."""


@dataclass(frozen=True)
class HubTarget:
    repo: str
    private: bool = True


class HubStorage:
    """Weights on the Hub: hot in each model's repo, cold in an archive repo or a local folder."""

    backend = "hf"

    def __init__(
        self,
        repos: Callable[[str], HubTarget | None],
        *,
        archive: Callable[[str], str | None],
        cold_local: LocalStorage | None = None,
        hub: Hub | None = None,
    ) -> None:
        self.repos = repos
        self.archive = archive
        self.cold_local = cold_local
        self._hub = hub
        if hub is None:
            # The client takes ~0.4 s to import; a register spends longer hashing first, so import it meanwhile.
            threading.Thread(target=importlib.import_module, args=("huggingface_hub.hf_api",), daemon=True).start()

    @property
    def hub(self) -> Hub:
        if self._hub is None:
            # Imported here: huggingface_hub costs ~0.4 s, paid only by a command that talks to the Hub.
            from regops.adapters.hub_client import Hub

            self._hub = Hub()
        return self._hub

    def target(self, model: str) -> HubTarget:
        target = self.repos(model)
        if target is None:
            raise HubError(
                f"{model} has no Hub repo: set `hub: {{repo: ORG/{model}}}` in its model.yaml "
                "(or `storage: {backend: hf, org: ORG}` in regops.yaml)"
            )
        return target

    def describe(self, location: Mapping[str, Any]) -> str:
        if location.get("backend") == "local":
            return f"local cold storage at {self._local(location).hot}"
        return f"Hub repo {location['repo']} at {str(location['revision'])[:12]} ({location.get('tier', 'hot')})"

    def _local(self, location: Mapping[str, Any]) -> LocalStorage:
        if self.cold_local is None:
            raise HubError("the version is in local cold storage, but regops.yaml sets no cold_storage path")
        return self.cold_local

    # --- Storage protocol ------------------------------------------------------------------------

    def put(self, source: Path, artifacts: Sequence[Artifact], *, model: str, version: str) -> PutResult:
        target = self.target(model)
        return self._put(target.repo, target.private, source, artifacts, version=version, tier="hot")

    def _put(
        self, repo: str, private: bool, source: Path, artifacts: Sequence[Artifact], *, version: str, tier: str
    ) -> PutResult:
        hub = self.hub
        hub.ensure_repo(repo, private=private)
        oid, sent, sent_bytes = hub.commit_files(repo, source, artifacts, message=f"v{version}")
        refs = hub.refs(repo)
        tag = f"v{version}"
        current = refs.tags.get(tag) if refs is not None else None
        if current != oid:
            hub.set_tag(repo, tag, oid, current=current)
        location = {"backend": "hf", "repo": repo, "revision": oid, "tier": tier}
        return PutResult(location, sent, sent_bytes, len(artifacts) - sent)

    def missing(self, artifacts: Sequence[Artifact], location: Mapping[str, Any]) -> list[Artifact]:
        if location.get("backend") == "local":
            return self._local(location).missing(artifacts, {"tier": "hot"})
        repo, revision = location["repo"], location["revision"]
        try:
            remote = self.hub.files(repo, revision)
        except HubError as e:
            if self.hub.revision_missing(e):
                return list(artifacts)
            raise
        stored = self.hub.lfs_objects(repo, fresh=True)
        lost = []
        for artifact in artifacts:
            found = remote.get(artifact.path)
            lfs = found.sha256 if found is not None else None
            damaged = lfs is not None and lfs != artifact.sha256
            gone = lfs is not None and stored is not None and lfs not in stored
            if found is None or found.size != artifact.size or damaged or gone:
                lost.append(artifact)
        return lost

    def open(self, artifact: Artifact, location: Mapping[str, Any], offset: int) -> Iterator[bytes]:
        if location.get("backend") == "local":
            return self._local(location).open(artifact, {"tier": "hot"}, offset)
        return self.hub.stream(location["repo"], location["revision"], artifact.path, offset)

    def to_cold(
        self, artifacts: Sequence[Artifact], location: Mapping[str, Any], *, model: str, version: str
    ) -> dict[str, Any]:
        with self._fetched(artifacts, location, f"{model}@{version}") as folder:
            archive = self.archive(self.target(model).repo)
            if self.cold_local is not None and archive is None:
                self.cold_local.put(folder, artifacts, model=model, version=version)
                return {"backend": "local", "tier": "cold"}
            if archive is None:
                raise HubError("regops.yaml sets no cold_storage")
            stored = self._put(archive, True, folder, artifacts, version=version, tier="cold").location
        self._verify(artifacts, stored, f"{model}@{version}")
        return stored

    def restore(
        self, artifacts: Sequence[Artifact], location: Mapping[str, Any], *, model: str, version: str
    ) -> dict[str, Any]:
        with self._fetched(artifacts, location, f"{model}@{version}") as folder:
            stored = self.put(folder, artifacts, model=model, version=version).location
        self._verify(artifacts, stored, f"{model}@{version}")
        return stored

    def release(self, artifacts: Sequence[Artifact], *, model: str, keep: set[str]) -> int:
        """Delete the hot copies (LFS objects of the model's repo) of ``artifacts`` not in ``keep``."""
        repo = self.target(model).repo
        doomed = {a.sha256 for a in artifacts} - keep
        present = self.hub.lfs_objects(repo)
        if present is None:
            raise HubError(f"cannot delete LFS files of Hub repo {repo}: the token lacks write access to its settings")
        doomed &= set(present)
        return self.hub.delete_lfs(repo, doomed) if doomed else 0

    def held(self, artifacts: Sequence[Artifact], *, model: str) -> bool:
        """Whether the model's hot repo still stores any of ``artifacts``' LFS objects."""
        present = self.hub.lfs_objects(self.target(model).repo) or {}
        return any(a.sha256 in present for a in artifacts)

    # --- helpers -------------------------------------------------------------------------------------

    @contextmanager
    def _fetched(self, artifacts: Sequence[Artifact], location: Mapping[str, Any], ref: str) -> Iterator[Path]:
        """The artifacts downloaded (verified) into a temporary folder; files with identical bytes are fetched once
        and copied to their other paths."""
        first: dict[str, Artifact] = {}
        for artifact in artifacts:
            first.setdefault(artifact.sha256, artifact)
        with tempfile.TemporaryDirectory(prefix="regops-move-") as tmp:
            folder = Path(tmp)
            download(self, list(first.values()), dict(location), folder, ref=ref)
            for artifact in artifacts:
                if (source := first[artifact.sha256]).path != artifact.path:
                    (folder / artifact.path).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(folder / source.path, folder / artifact.path)
            yield folder

    def _verify(self, artifacts: Sequence[Artifact], location: Mapping[str, Any], ref: str) -> None:
        lost = self.missing(artifacts, location)
        if lost:
            raise HubError(
                f"{ref}: after copying, {', '.join(a.path for a in lost)} is not in {self.describe(location)} with "
                "the recorded sha256; the original copy is untouched — run again"
            )
