"""Make the outside world match the registry: Hub tags, stage refs, model cards, the serving manifest.

:func:`compare` lists every :class:`Difference` between what the registry says
and what is out there; :func:`sync` fixes the ones that can be fixed and
returns what it changed. Both are idempotent: run twice, the second run finds
nothing. Weights whose recorded hash no longer matches what the Hub stores
cannot be fixed by sync (the bytes are gone or replaced); they are reported
and make ``regops sync`` exit non-zero.

What the Hub should hold, per model with versions on the Hub (repo ``R``):

* a tag ``v<version>`` on every version's commit, in the repo that holds it
  (``R`` while hot, the archive repo once cold); a ``v<version>`` tag in ``R``
  for a version that moved to cold storage is removed;
* a branch per occupied stage (``dev``, ``staging``, ``prod``) on the commit
  of the version holding it, and no branch for an empty stage;
* ``README.md`` on ``R``'s ``main``: the model card generated from the registry.

The serving manifest (``serving.json`` beside ``registry/``) is regenerated too.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, Protocol

from regops import store
from regops.kinds import Stage
from regops.registry import Registry, VersionRecord

__all__ = [
    "MANIFEST",
    "Difference",
    "Remote",
    "SyncResult",
    "compare",
    "manifest_path",
    "serving_manifest",
    "serving_text",
    "sync",
]

MANIFEST: Final = "serving.json"
STAGE_REFS: Final[tuple[Stage, ...]] = ("dev", "staging", "prod")
CARD: Final = "README.md"

Kind = Literal["tag", "ref", "card", "weights", "manifest"]


class RemoteRefs(Protocol):
    branches: dict[str, str]
    tags: dict[str, str]


class RemoteFile(Protocol):
    path: str
    size: int
    sha256: str | None


class Remote(Protocol):
    """The Hub, as sync sees it (``regops.adapters.hub.Hub``)."""

    def refs(self, repo: str) -> RemoteRefs | None: ...
    def set_branch(self, repo: str, name: str, commit: str, *, current: str | None) -> None: ...
    def delete_branch(self, repo: str, name: str) -> None: ...
    def set_tag(self, repo: str, name: str, commit: str, *, current: str | None) -> None: ...
    def delete_tag(self, repo: str, name: str) -> None: ...
    def read_text(self, repo: str, path: str, revision: str = "main") -> str | None: ...
    def write_text(self, repo: str, path: str, text: str, *, message: str) -> str: ...
    def files(self, repo: str, revision: str) -> dict[str, Any]: ...
    def lfs_objects(self, repo: str, *, fresh: bool = False) -> dict[str, int] | None: ...


@dataclass(frozen=True)
class Difference:
    """One way the outside differs from the registry, and how sync puts it right (``fix`` None: it cannot)."""

    model: str
    kind: Kind
    where: str  # repo (or file) it is in
    name: str  # the tag, branch or file
    found: str | None
    expected: str | None
    message: str
    fix: Callable[[], None] | None = field(default=None, compare=False, repr=False)

    def as_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "kind": self.kind,
            "where": self.where,
            "name": self.name,
            "found": self.found,
            "expected": self.expected,
            "message": self.message,
            "fixable": self.fix is not None,
        }


@dataclass
class SyncResult:
    differences: list[Difference]
    fixed: list[Difference]
    check: bool

    @property
    def unfixed(self) -> list[Difference]:
        return [d for d in self.differences if d not in self.fixed]

    @property
    def ok(self) -> bool:
        return not self.differences if self.check else not self.unfixed


def _short(commit: str | None) -> str | None:
    return commit[:12] if commit else commit


# --- the serving manifest ------------------------------------------------------------------------


def manifest_path(registry: Registry) -> Path:
    return registry.root.parent / MANIFEST


def _served(record: VersionRecord) -> dict[str, Any]:
    storage = {k: v for k, v in record.storage.items() if k != "tier"}
    return {
        "version": record.version,
        "storage": storage,
        "files": [
            {"path": f["path"], "sha256": f["sha256"], "size": f["size"]} for f in record.raw["artifacts"]["files"]
        ],
    }


def serving_manifest(registry: Registry) -> dict[str, Any]:
    """Per model: what serves prod, and the staging canary with its share of traffic (deterministic)."""
    models: dict[str, Any] = {}
    for name in registry.model_names():
        holders = {r.stage: r for r in registry.versions(name) if r.stage in ("staging", "prod")}
        prod, staging = holders.get("prod"), holders.get("staging")
        canary = None
        if staging is not None and staging.canary is not None and _serves_canary(staging.canary):
            canary = {
                **_served(staging),
                "traffic_percent": staging.canary["traffic_percent"],
                "started_at": staging.canary["started_at"],
            }
        models[name] = {"prod": _served(prod) if prod else None, "canary": canary}
    return {"models": models}


def _serves_canary(canary: dict[str, Any]) -> bool:
    """A canary takes traffic until it fails or its version leaves staging (a pass keeps it on until prod)."""
    return canary.get("result") not in ("failed", "aborted")


def serving_text(registry: Registry) -> str:
    return json.dumps(serving_manifest(registry), indent=2, sort_keys=True) + "\n"


KSERVE_API: Final = "serving.kserve.io/v1beta1"


def kserve_text(registry: Registry) -> str:
    """One KServe ``InferenceService`` per model with a version in prod, as YAML documents (deterministic).

    KServe's canary rollout: the spec names the canary's weights with
    ``canaryTrafficPercent``, and KServe keeps the rest of the traffic on the
    last ready revision (prod). Weights outside the Hub cannot be named by a
    ``storageUri``; such models are listed in a comment instead.
    """
    documents, skipped = [], []
    for name, served in serving_manifest(registry)["models"].items():
        prod, canary = served["prod"], served["canary"]
        if prod is None:
            continue
        if any(arm["storage"].get("backend") != "hf" for arm in (prod, canary) if arm):
            skipped.append(name)
            continue
        documents.append(store.dump(_inference_service(name, prod, canary)))
    head = "".join(f"# {n}: weights not on the Hub; KServe needs an hf:// storageUri\n" for n in skipped)
    return head + "---\n".join(documents)


def _inference_service(name: str, prod: dict[str, Any], canary: dict[str, Any] | None) -> dict[str, Any]:
    served = canary or prod
    storage = served["storage"]
    predictor: dict[str, Any] = {}
    annotations = {"regops.dev/prod-version": prod["version"]}
    if canary:
        predictor["canaryTrafficPercent"] = canary["traffic_percent"]
        annotations["regops.dev/canary-version"] = canary["version"]
    predictor["model"] = {
        "modelFormat": {"name": "huggingface"},
        "storageUri": f"hf://{storage['repo']}:{storage['revision']}",
    }
    return {
        "apiVersion": KSERVE_API,
        "kind": "InferenceService",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "regops"}, "annotations": annotations},
        "spec": {"predictor": predictor},
    }


# --- comparing -------------------------------------------------------------------------------------


def compare(
    registry: Registry,
    remote: Remote | None,
    *,
    repo_for: Callable[[str], str | None],
    card: Callable[[Registry, str], str],
    model: str | None = None,
) -> list[Difference]:
    """Every difference between the registry and the Hub (and ``serving.json``), each with its fix."""
    names = [model] if model else registry.model_names()
    differences: list[Difference] = []
    for name in names:
        versions = registry.versions(name)
        on_hub = [r for r in versions if r.storage.get("backend") == "hf"]
        repo = repo_for(name)
        if not on_hub or remote is None or repo is None:
            continue
        differences += _model_differences(registry, remote, name=name, repo=repo, on_hub=on_hub, card=card)
    if model is None:
        differences += _manifest_differences(registry)
    return differences


def _model_differences(
    registry: Registry,
    remote: Remote,
    *,
    name: str,
    repo: str,
    on_hub: Sequence[VersionRecord],
    card: Callable[[Registry, str], str],
) -> list[Difference]:
    out: list[Difference] = []
    by_repo: dict[str, list[VersionRecord]] = {repo: []}
    for record in on_hub:
        by_repo.setdefault(record.storage["repo"], []).append(record)
    known = {f"v{r.version}" for r in registry.versions(name)}
    hot_refs = None
    for where, records in sorted(by_repo.items()):
        refs = remote.refs(where)
        if where == repo:
            hot_refs = refs
        if refs is None:
            if records:
                message = f"{where}: the Hub repo does not exist"
                out.append(Difference(name, "weights", where, "", None, None, message))
            continue
        out += _tags(remote, name, where, refs=refs, records=records, known=known)
        out += _weights(remote, name, where, records)
    if hot_refs is None:
        return out
    out += _stage_refs(registry, remote, name, repo, hot_refs)
    text = card(registry, name)
    current = remote.read_text(repo, CARD)
    if current != text:
        what = "missing" if current is None else "differs from the registry (edited by hand, or stale)"
        fix = _bind(remote.write_text, repo, CARD, text, message="Update model card (regops sync)")
        out.append(Difference(name, "card", repo, CARD, None, None, f"{repo}: model card {CARD} {what}", fix))
    return out


def _tags(
    remote: Remote, name: str, where: str, *, refs: RemoteRefs, records: Sequence[VersionRecord], known: set[str]
) -> list[Difference]:
    """A ``v<version>`` tag on each version's commit; none for versions whose weights moved elsewhere."""
    out: list[Difference] = []
    wanted = {f"v{r.version}": r.storage["revision"] for r in records}
    for tag, commit in sorted(wanted.items()):
        found = refs.tags.get(tag)
        if found != commit:
            what = "missing" if found is None else f"points at {_short(found)}"
            message = f"{where}: tag {tag} {what}, expected {_short(commit)}"
            fix = _bind(remote.set_tag, where, tag, commit, current=found)
            out.append(Difference(name, "tag", where, tag, found, commit, message, fix))
    for tag in sorted(set(refs.tags) & known - set(wanted)):
        message = f"{where}: tag {tag} is left from before its weights moved elsewhere"
        out.append(
            Difference(name, "tag", where, tag, refs.tags[tag], None, message, _bind(remote.delete_tag, where, tag))
        )
    return out


def _stage_refs(registry: Registry, remote: Remote, name: str, repo: str, refs: RemoteRefs) -> list[Difference]:
    """A branch per occupied stage on its holder's commit; no branch for an empty stage."""
    out: list[Difference] = []
    holders = {r.stage: r for r in registry.versions(name) if r.stage in STAGE_REFS}
    for stage in STAGE_REFS:
        holder = holders.get(stage)
        found = refs.branches.get(stage)
        expected = holder.storage["revision"] if holder is not None and holder.storage.get("repo") == repo else None
        if found == expected:
            continue
        if holder is None or expected is None:
            message = f"{repo}: branch {stage} exists at {_short(found)} but no version of {name} is in {stage} here"
            fix = _bind(remote.delete_branch, repo, stage)
        else:
            what = "missing" if found is None else f"points at {_short(found)}"
            message = f"{repo}: branch {stage} {what}, expected {_short(expected)} ({holder.ref})"
            fix = _bind(remote.set_branch, repo, stage, expected, current=found)
        out.append(Difference(name, "ref", repo, stage, found, expected, message, fix))
    return out


def _weights(remote: Remote, name: str, repo: str, records: Sequence[VersionRecord]) -> list[Difference]:
    """Versions whose files at their commit, or whose LFS objects, no longer match the version file."""
    out: list[Difference] = []
    if not records:
        return out
    objects = remote.lfs_objects(repo, fresh=True)
    for record in records:
        try:
            remote_files = remote.files(repo, record.storage["revision"])
        except Exception as e:  # a commit that is gone: report it, do not stop the others
            out.append(Difference(name, "weights", repo, record.ref, None, None, f"{record.ref}: {e}", None))
            continue
        for entry in record.raw["artifacts"]["files"]:
            found = remote_files.get(entry["path"])
            problem = None
            if found is None:
                problem = "is not in the commit"
            elif found.size != entry["size"]:
                problem = f"has {found.size} bytes, the version file says {entry['size']}"
            elif found.sha256 is not None and found.sha256 != entry["sha256"]:
                problem = f"has sha256 {found.sha256}, the version file says {entry['sha256']}"
            elif found.sha256 is not None and objects is not None and found.sha256 not in objects:
                problem = "is no longer stored (its LFS object was deleted)"
            if problem:
                out.append(
                    Difference(
                        name,
                        "weights",
                        repo,
                        f"{record.ref}:{entry['path']}",
                        found.sha256 if found else None,
                        entry["sha256"],
                        f"{repo}@{_short(record.storage['revision'])}: {entry['path']} of {record.ref} {problem}",
                        None,
                    )
                )
    return out


def _manifest_differences(registry: Registry) -> list[Difference]:
    path = manifest_path(registry)
    text = serving_text(registry)
    try:
        current: str | None = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        current = None
    if current == text:
        return []
    what = "is missing" if current is None else "differs from the registry"
    return [
        Difference(
            "*",
            "manifest",
            str(path.parent),
            MANIFEST,
            None,
            None,
            f"{MANIFEST}: the serving manifest {what}",
            lambda: store.write_atomic(path, text),
        )
    ]


def _bind(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[[], None]:
    def run() -> None:
        fn(*args, **kwargs)

    return run


def sync(differences: list[Difference], *, check: bool) -> SyncResult:
    """Fix every fixable difference (none with ``check``), in order: tags, refs, cards, the manifest."""
    fixed: list[Difference] = []
    if not check:
        for difference in differences:
            if difference.fix is not None:
                difference.fix()
                fixed.append(difference)
    return SyncResult(differences, fixed, check)
