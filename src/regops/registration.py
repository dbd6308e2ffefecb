"""Registering a new version: the artifacts folder checked and confined, the version number chosen
(:func:`bump_version`), the weights stored, and ``models/<name>/<version>.yaml`` written
(:func:`register`). The other writes — promote, rollback, auto-promote, canary results — and the one
lock and apply path are in ``lifecycle.py``.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

from regops import signing, store
from regops.errors import RegopsError
from regops.kinds import version_key
from regops.lifecycle import LifecycleError
from regops.policy import schema_comment
from regops.registry import Registry
from regops.schema import check
from regops.weights import Artifact, PutResult, Storage, hash_files

__all__ = ["Bump", "GitMetadataError", "RegisterResult", "artifact_files", "bump_version", "confine", "register"]

Bump = Literal["major", "minor", "patch", "rc"]


@dataclass(frozen=True)
class RegisterResult:
    path: Path
    version: str
    uploaded_files: int
    uploaded_bytes: int
    present_files: int
    pull: str | None = None  # the pull request that carries it (register --pr)


_SEMVER_CORE: Final = re.compile(r"^(\d+)\.(\d+)\.(\d+)")


def bump_version(existing: Sequence[str], bump: Bump) -> str:
    """The next version: major/minor/patch start a release candidate (1.4.0-rc.1); rc counts it up."""
    latest = max(existing, key=version_key, default=None)
    if bump == "rc":
        match = re.match(r"^(.*-rc\.)(\d+)$", latest or "")
        if not match:
            raise LifecycleError(
                f"--bump rc needs a release candidate to count up, and the latest version is {latest or 'none'}; "
                "use --bump patch, minor or major"
            )
        return f"{match[1]}{int(match[2]) + 1}"
    core = _SEMVER_CORE.match(latest or "0.0.0")
    assert core is not None
    major, minor, patch = (int(part) for part in core.groups())
    major, minor, patch = {
        "major": (major + 1, 0, 0),
        "minor": (major, minor + 1, 0),
        "patch": (major, minor, patch + 1),
    }[bump]
    return f"{major}.{minor}.{patch}-rc.1"


def register(
    registry: Registry,
    model: str,
    *,
    artifacts: Path,
    evals: Mapping[str, Any],
    params: Mapping[str, Any],
    dataset: str,
    storage: Storage,
    by: str,
    version: str | None = None,
    bump: Bump | None = None,
    eval_dataset: str | None = None,
    parent: str | None = None,
    code: Mapping[str, str] | None = None,
    run_url: str | None = None,
    now: datetime | None = None,
    progress: Callable[[int], None] | None = None,
    signer: signing.Signer | None = None,
) -> RegisterResult:
    """Hash, upload and record a new version as a candidate; the caller holds the lock.

    Everything that can be checked is checked before any byte moves. The
    upload is content-addressed, so when writing the version file fails
    afterwards, running the same command again stores nothing twice. With
    ``signer``, the files' paths and digests are signed and the bundle is
    stored with them (the same Hub commit) and recorded as ``artifacts.signature``.
    """
    now = now or datetime.now(UTC)
    config = registry.model(model)
    existing = [r.version for r in registry.versions(model)]
    new_version = _new_version(model, existing, version, bump)
    path = registry.root / "models" / model / f"{new_version}.yaml"
    scores = _scores(evals, config.primary_metric)
    files = artifact_files(artifacts)
    _recordable(artifacts, files)
    training = _training(registry, dataset)
    if eval_dataset is not None:
        _dataset_record(registry, eval_dataset)
    parent_ref = _parent(registry, model, parent)
    hashed = hash_files(artifacts, files, progress=progress)
    signed = signing.sign(hashed, name=f"{model}@{new_version}", signer=signer) if signer else None
    stored = _put(storage, artifacts, hashed, signed, model=model, version=new_version)
    data: dict[str, Any] = {
        "model": model,
        "version": new_version,
        "created_at": now,
        "created_by": by,
        "parent": parent_ref,
        "training": {**training, **({"code": dict(code)} if code else {}), **({"run_url": run_url} if run_url else {})},
        "hyperparameters": dict(params),
        "evals": {**({"dataset": eval_dataset} if eval_dataset else {}), "scores": scores},
        "artifacts": _artifacts_entry(hashed, stored.location, signed),
        "stage": "candidate",
        "transitions": [],
    }
    _write_version(registry, path, data, uploaded=stored.uploaded_files)
    return RegisterResult(path, new_version, stored.uploaded_files, stored.uploaded_bytes, stored.present_files)


def _write_version(registry: Registry, path: Path, data: dict[str, Any], *, uploaded: int) -> None:
    """Write the new version file, checked first; a failure says the weights are stored already."""
    text = store.render_new(
        data,
        header=schema_comment("version", 3),
        flow=(
            "training.code",
            "evals.scores",
            "artifacts.files[]",
            "artifacts.storage",
            "artifacts.signature",
            "transitions",
        ),
    )
    _check_text(text, path, registry)
    try:
        store.write_atomic(path, text)
    except OSError as e:
        raise LifecycleError(
            f"the weights are stored ({uploaded} files uploaded), but writing {registry.display(path)} "
            f"failed: {e.strerror or e}. Fix that and run the same command again: nothing is uploaded twice"
        ) from e


def _put(
    storage: Storage,
    source: Path,
    hashed: list[Artifact],
    signed: tuple[bytes, signing.Signed] | None,
    *,
    model: str,
    version: str,
) -> PutResult:
    """Store the files, and the signature beside them (one Hub commit): from a folder that links to the artifacts
    and holds the bundle, so the artifacts folder is never written to."""
    if signed is None:
        return storage.put(source, hashed, model=model, version=version)
    with tempfile.TemporaryDirectory(prefix="regops-signed-") as tmp:
        view = Path(tmp)
        for artifact in hashed:
            (view / artifact.path).parent.mkdir(parents=True, exist_ok=True)
            (view / artifact.path).symlink_to((source / artifact.path).absolute())
        (view / signing.SIGNATURE_FILE).write_bytes(signed[0])
        return storage.put(view, [*hashed, signing.signature_artifact(signed[0])], model=model, version=version)


def _artifacts_entry(
    hashed: Sequence[Artifact], location: dict[str, Any], signed: tuple[bytes, signing.Signed] | None
) -> dict[str, Any]:
    """The version file's ``artifacts``: every file's path, size and sha256, where they are stored, the signature."""
    entry = {"files": [{"path": a.path, "size": a.size, "sha256": a.sha256} for a in hashed], "storage": location}
    return entry | ({"signature": _signature_entry(*signed)} if signed else {})


def _signature_entry(data: bytes, who: signing.Signed) -> dict[str, Any]:
    stored = signing.signature_artifact(data)
    entry = {"path": stored.path, "size": stored.size, "sha256": stored.sha256, "method": who.method}
    return entry | {k: v for k, v in (("key", who.key), ("identity", who.identity), ("issuer", who.issuer)) if v}


def _recordable(folder: Path, files: Sequence[str]) -> None:
    """Refuse, before anything is stored, a file whose path the version file may not record (model.ArtifactPath)."""
    # Imported here: pydantic costs ~0.3 s, which the read verbs (a warm `regops status`) never pay.
    from pydantic import TypeAdapter, ValidationError

    from regops.files import ArtifactPath

    adapter = TypeAdapter(ArtifactPath)
    for path in files:
        try:
            adapter.validate_python(path)
        except ValidationError as e:
            reason = str(e.errors()[0].get("ctx", {}).get("error", e.errors()[0]["msg"]))
            raise LifecycleError(f"{folder / path}: {reason}; rename or remove it and run again") from e


def _new_version(model: str, existing: Sequence[str], version: str | None, bump: Bump | None) -> str:
    if (version is None) == (bump is None):
        raise LifecycleError("give the new version with --version V or --bump major|minor|patch|rc")
    new = version if version is not None else bump_version(existing, bump)  # type: ignore[arg-type]
    if new in existing:
        raise LifecycleError(f"{model}@{new} already exists; versions are immutable: register a new one")
    return new


def _scores(evals: Mapping[str, Any], primary: str) -> dict[str, float]:
    scores = evals.get("scores", evals) if isinstance(evals.get("scores"), Mapping) else evals
    out: dict[str, float] = {}
    for name, value in scores.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise LifecycleError(f"evals: {name} is {value!r}, not a finite number")
        out[str(name)] = value
    if primary not in out:
        raise LifecycleError(f"evals has no {primary!r}, the model's primary metric (model.yaml); add it")
    return out


def confine(paths: Mapping[str, str | Path], root: str | Path) -> None:
    """Refuse any of ``paths`` (option name → path; a relative one is read from the working directory) that does
    not resolve inside ``root``, symlinks followed, or that resolves to a ``.git`` folder or into one.

    The register workflow's paths come from a dispatch: confined to its checkout, they can name neither the
    runner's other files nor the git folder (whose config may hold a credential)."""
    top = Path(root).resolve()
    for name, path in paths.items():
        real = Path(path).resolve()
        if not real.is_relative_to(top):
            raise LifecycleError(
                f"--{name} {path} resolves to {real}, outside {top} (--confine): name a path inside it"
            )
        if ".git" in real.relative_to(top).parts:
            raise LifecycleError(f"--{name} {path} resolves to {real}, in a .git folder: name the files to store")


def artifact_files(folder: Path) -> list[str]:
    """The files of an artifacts folder, relative to it; refused when empty, when a symlink leads out of it, or
    when it is, is inside or holds git's metadata (:func:`_git_metadata`)."""
    if not folder.is_dir():
        raise LifecycleError(f"{folder} is not a folder of artifacts")
    _git_metadata(folder)
    root = folder.resolve()
    files: list[str] = []
    for path in sorted(folder.rglob("*")):
        if path.is_symlink() and not path.resolve().is_relative_to(root):
            raise LifecycleError(f"{path} is a symlink to {path.resolve()}, outside {folder}; copy the file in instead")
        if _is_git_dir(path):
            raise GitMetadataError(folder, path, f"{folder} holds {path}")
        if path.is_file():
            files.append(path.relative_to(folder).as_posix())
    if not files:
        raise LifecycleError(f"{folder} holds no files; nothing to register")
    return files


class GitMetadataError(LifecycleError):
    """An artifacts folder that is, is inside or holds a git directory: never stored, never uploaded."""

    def __init__(self, folder: Path, git_dir: Path, what: str) -> None:
        self.folder, self.git_dir = folder, git_dir
        super().__init__(
            f"{what}: git's metadata, whose config can hold a token (actions/checkout persists one there), is "
            "never stored. Pass a folder of only the model's files (copy them to e.g. out/ and register "
            "--artifacts out/)"
        )


def _git_metadata(folder: Path) -> None:
    """Refuse ``folder`` when it or a folder above it is a git directory (a checkout's own folder is fine: its
    ``.git`` is beside it). Above, as written (``..`` folded) and with symlinks resolved."""
    for start in (Path(os.path.normpath(folder.absolute())), folder.resolve()):
        for path in (start, *start.parents):
            if _is_git_dir(path):
                what = f"{folder} is a git directory" if path == start else f"{folder} is inside git directory {path}"
                raise GitMetadataError(folder, path, what)


def _is_git_dir(path: Path) -> bool:
    """``path`` is git's metadata: named ``.git`` (a folder, or the file a submodule or worktree has), in any case
    (case-insensitive file systems), or a folder shaped as git looks for one (HEAD, objects/, refs/: a bare repo)."""
    if path.name.casefold() == ".git":
        return True
    return (path / "HEAD").is_file() and (path / "objects").is_dir() and (path / "refs").is_dir()


def _dataset_record(registry: Registry, ref: str) -> Any:
    found = registry.dataset(ref)
    if found is None:
        name, _, version = ref.partition("@")
        raise LifecycleError(
            f"dataset {ref} is not in the registry (expected datasets/{name}/{version}.yaml); "
            "register it with `regops dataset register`"
        )
    return found


def _training(registry: Registry, dataset: str) -> dict[str, Any]:
    found = _dataset_record(registry, dataset)
    return {"dataset": dataset, "dataset_hash": found.hash}


def _parent(registry: Registry, model: str, parent: str | None) -> str | None:
    if parent is None or parent.startswith("hf://"):
        return parent
    full = parent if "@" in parent else f"{model}@{parent}"
    if registry.find(full) is None:
        raise LifecycleError(f"parent {full} is not in the registry")
    return parent


def _check_text(text: str, path: Path, registry: Registry) -> None:
    """The file about to be written must read back as a valid version file (a bug guard, never user error)."""
    parsed = store.parse_bytes(text.encode(), registry.display(path))
    problems = check("version", parsed.data, registry.display(path)) if parsed.data is not None else [parsed.problem]
    if problems:
        raise RegopsError(f"regops produced an invalid version file: {problems[0]}")
