"""Writes to the registry: register, promote, rollback, auto-promote, canary results.

Every write is planned first — a :class:`Plan` of whole-file changes, each
with the text before and after — checked against the stage machine and the
policy in ``regops.yaml``, and only then applied by :func:`apply`: under the
registry's lock, refusing if a file changed since it was planned, writing
each file through a temporary file and a rename. Edits are surgical
(:class:`regops.store.Document`): comments, key order and quoting survive.
"""

from __future__ import annotations

import fcntl
import math
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

from regops import store
from regops.errors import RegopsError
from regops.kinds import Stage, version_key
from regops.policy import bot_may_enter, needs_passed_canary, schema_comment, step_allowed
from regops.records import StageRule, VersionRecord
from regops.registry import HOLDER_STAGES, LOCK_FILE, Registry
from regops.weights import Artifact, ArtifactsMissingError, Storage, hash_files

__all__ = [
    "LOCK_FILE",
    "FileChange",
    "LifecycleError",
    "Plan",
    "RegisterResult",
    "RegistryLockedError",
    "apply",
    "auto_promote",
    "bump_version",
    "locked",
    "promote",
    "record_canary",
    "register",
    "rollback",
    "set_storage",
    "stamp",
]

Bump = Literal["major", "minor", "patch", "rc"]


class LifecycleError(RegopsError):
    """A write that the registry's rules do not allow; nothing was changed."""


class RegistryLockedError(LifecycleError):
    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(
            f"another regops command is writing this registry (it holds {path}); "
            "nothing was changed: run again when it has finished"
        )


class ChangedSincePlannedError(LifecycleError):
    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(f"{path} changed while the change was planned; nothing was written: run again")


@dataclass(frozen=True)
class FileChange:
    path: Path
    before: str | None  # None: a new file
    after: str


@dataclass
class Plan:
    """What a command will change, and why, before anything is written."""

    changes: list[FileChange] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)  # one line per change, for people
    notes: list[str] = field(default_factory=list)  # what was left alone, and why

    def __bool__(self) -> bool:
        return bool(self.changes)


# --- lock, apply -----------------------------------------------------------


@contextmanager
def locked(registry_root: Path) -> Iterator[None]:
    """Hold the registry's write lock; fail at once if another regops holds it.

    An OS lock (flock), so a crashed writer never leaves the registry locked.
    """
    path = registry_root / LOCK_FILE
    handle = path.open("a")
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RegistryLockedError(path) from None
        yield
    finally:
        handle.close()


def apply(plan: Plan) -> list[Path]:
    """Write a plan's files; the caller holds the lock. Refuses if a file changed since planning."""
    for change in plan.changes:
        current = change.path.read_text(encoding="utf-8") if change.path.exists() else None
        if current != change.before:
            raise ChangedSincePlannedError(change.path)
    # Every new text is complete before the first rename, so a failure leaves the old files.
    for change in plan.changes:
        change.path.parent.mkdir(parents=True, exist_ok=True)
        store.write_atomic(change.path, change.after)
    return [change.path for change in plan.changes]


# --- helpers shared by the verbs --------------------------------------------------------


def _policy(registry: Registry, stage: Stage) -> StageRule | None:
    return registry.config.stages.get(stage)


def _was_prod(record: VersionRecord) -> bool:
    return any(step.to == "prod" for step in record.steps)


def _transition(source: Stage, target: Stage, *, now: datetime, by: str, **extra: Any) -> dict[str, Any]:
    step: dict[str, Any] = {"from": source, "to": target, "at": now, "by": by}
    step.update({k: v for k, v in extra.items() if v is not None})
    return step


class _Edits:
    """Documents being edited for one plan, each loaded once."""

    def __init__(self) -> None:
        self.documents: dict[Path, store.Document] = {}

    def __call__(self, record: VersionRecord) -> store.Document:
        if record.path not in self.documents:
            self.documents[record.path] = store.Document(record.path)
        return self.documents[record.path]

    def into(self, plan: Plan) -> Plan:
        plan.changes += [FileChange(p, d.before, d.render()) for p, d in self.documents.items()]
        return plan


def _move(edits: _Edits, record: VersionRecord, target: Stage, *, now: datetime, by: str, **extra: Any) -> str:
    doc = edits(record)
    doc.append("transitions", _transition(record.stage, target, now=now, by=by, **extra))
    doc.set("stage", target)
    canary = record.canary
    if canary is not None and canary.get("result") in ("pending", "inconclusive") and target != "staging":
        doc.update("canary", {"result": "aborted", "finished_at": now})
    return f"{record.ref}: {record.stage} -> {target}"


def _displace(
    edits: _Edits, registry: Registry, record: VersionRecord, target: Stage, *, now: datetime, by: str, why: str
) -> list[str]:
    """Move the current holder of ``target`` out (to archived) in the same change."""
    if target not in HOLDER_STAGES:
        return []
    holder = registry.holder(record.model, target)
    if holder is None or holder.version == record.version:
        return []
    previous = registry.version(record.model, holder.version)
    return [_move(edits, previous, "archived", now=now, by=by, notes=why)]


def _check_weights(record: VersionRecord, storage: Storage | None, *, target: Stage) -> None:
    location = record.storage
    ref = record.ref
    if location.get("tier") == "cold":
        raise LifecycleError(
            f"{ref}'s weights are in cold storage; run `regops restore {ref}` before moving it to {target}"
        )
    if storage is not None:
        artifacts = [Artifact.from_record(f) for f in record.raw["artifacts"]["files"]]
        missing = storage.missing(artifacts, location)
        if missing:
            raise ArtifactsMissingError(
                ref, [a.path for a in missing], storage.describe(location), f"; it cannot go to {target}"
            )


# --- promote ----------------------------------------------------------------------------------


def promote(
    registry: Registry,
    ref: str,
    *,
    to: Stage,
    notes: str,
    by: str,
    now: datetime | None = None,
) -> Plan:
    """Plan moving a version to ``to``; the previous holder of that stage is archived in the same change.

    Weights in cold storage are refused (restore first); the bytes themselves
    are checked where they are used: by rollback, and by every download.
    """
    now = now or datetime.now(UTC)
    record = registry.get(ref)
    _check_promotion(registry, record, to, by=by)
    if to in ("staging", "prod"):
        _check_weights(record, None, target=to)
    edits = _Edits()
    plan = Plan()
    plan.steps += _displace(edits, registry, record, to, now=now, by=by, why=f"replaced in {to} by {record.version}")
    plan.steps.append(_move(edits, record, to, now=now, by=by, notes=notes))
    if to == "staging":
        canary = {"traffic_percent": registry.canary_traffic(record.model), "started_at": now, "result": "pending"}
        edits(record).set("canary", canary, after="stage")
        plan.steps.append(f"{record.ref}: canary started at {registry.canary_traffic(record.model):g}% of traffic")
    return edits.into(plan)


def _check_promotion(registry: Registry, record: VersionRecord, to: Stage, *, by: str) -> None:
    ref = record.ref
    if record.stage == to:
        raise LifecycleError(f"{ref} is already in {to}; nothing to do")
    if not step_allowed(record.stage, to, was_prod=_was_prod(record)):
        path = {"dev": "", "staging": " (promote it to dev first)", "prod": " (it must pass staging first)"}
        hint = (
            path.get(to, "")
            if record.stage != "archived"
            else " (only a former prod version can return, as a rollback)"
        )
        raise LifecycleError(f"{ref} cannot go from {record.stage} to {to}: not a legal step{hint}")
    policy = _policy(registry, to)
    if policy is not None and record.stage not in policy.from_:
        allowed = ", ".join(policy.from_)
        raise LifecycleError(f"regops.yaml allows {to} only from {allowed}; {ref} is {record.stage}")
    if registry.config.is_bot(by) and not bot_may_enter(registry.config, to):
        raise LifecycleError(f"{by} is a bot, and bots may not move versions to {to}: a person must promote {ref}")
    canary = record.canary or {}
    if needs_passed_canary(registry.config, record.stage, to) and canary.get("result") != "passed":
        raise LifecycleError(
            f"{ref}'s canary is {canary.get('result', 'missing')}; regops.yaml requires a passed canary before prod "
            f"(record one with `regops canary record {ref} --result passed`)"
        )


# --- rollback ----------------------------------------------------------------------------------


def rollback(
    registry: Registry,
    model: str,
    *,
    to: str | None = None,
    at: datetime | None = None,
    notes: str,
    by: str,
    now: datetime | None = None,
    storage: Storage | None = None,
) -> Plan:
    """Plan bringing a former prod version back to prod (``to``, or whatever was prod ``at``)."""
    now = now or datetime.now(UTC)
    if (to is None) == (at is None):
        raise LifecycleError("say which version to roll back to: --to VERSION or --at TIME")
    former = [r for r in registry.versions(model) if _was_prod(r) and r.stage != "prod"]
    if not former:
        raise LifecycleError(f"{model} has no former prod version to roll back to")
    target = registry.version(model, to) if to else registry.get(f"{model}@prod", at=at)
    if target.stage == "prod":
        raise LifecycleError(f"{target.ref} is in prod now; roll back to a version that was prod before")
    if not _was_prod(target):
        listed = ", ".join(r.version for r in former)
        raise LifecycleError(f"{target.ref} was never in prod, so it cannot be rolled back to (former prod: {listed})")
    _check_weights(target, storage, target="prod")
    edits = _Edits()
    plan = Plan()
    plan.steps += _displace(
        edits, registry, target, "prod", now=now, by=by, why=f"rolled back to {target.version}: {notes}"
    )
    plan.steps.append(_move(edits, target, "prod", now=now, by=by, notes=notes))
    return edits.into(plan)


# --- auto-promote ----------------------------------------------------------------------------


def auto_promote(registry: Registry, model: str | None = None, *, by: str, now: datetime | None = None) -> Plan:
    """Plan moving, per model, the best candidate that beats the current dev into dev.

    Beating means strictly better on the primary metric in its goal's
    direction, with every guard metric within its tolerance; when dev is
    empty the candidate must beat prod instead (or nothing, for a first version). Candidates that
    do not beat dev stay where they are; ``Plan.notes`` says why. Idempotent.
    """
    now = now or datetime.now(UTC)
    plan = Plan()
    edits = _Edits()
    for name in [model] if model else registry.model_names():
        config = registry.model(name)
        holder = registry.holder(name, "dev")
        dev = registry.version(name, holder.version) if holder else None
        # With dev empty, a candidate must still beat what serves traffic.
        prod = registry.holder(name, "prod")
        baseline = dev or (registry.version(name, prod.version) if prod else None)
        verdicts = [(c, _verdict(config.raw, c, baseline)) for c in registry.versions(name) if c.stage == "candidate"]
        winners = [(c, why) for c, (ok, why) in verdicts if ok]
        plan.notes += [f"{c.ref} stays candidate: {why}" for c, (ok, why) in verdicts if not ok]
        if not winners:
            continue
        goal = config.raw["primary_metric"]["goal"]
        best, why = max(winners, key=lambda w: w[0].scores[config.primary_metric] * (1 if goal == "max" else -1))
        plan.notes += [f"{c.ref} stays candidate: {best.version} beats it" for c, _ in winners if c is not best]
        reason = f"auto: {why}"
        if dev is not None:
            plan.steps.append(
                _move(edits, dev, "archived", now=now, by=by, reason=f"auto: superseded in dev by {best.version}")
            )
        plan.steps.append(_move(edits, best, "dev", now=now, by=by, reason=reason))
    return edits.into(plan)


def _verdict(config: Mapping[str, Any], candidate: VersionRecord, dev: VersionRecord | None) -> tuple[bool, str]:
    metric, goal = config["primary_metric"]["name"], config["primary_metric"]["goal"]
    score = candidate.scores.get(metric)
    if score is None or not math.isfinite(score):
        return False, f"no finite {metric} score"
    if dev is None:
        return True, f"{metric} {score:g}, the first version to reach dev"
    current = dev.scores.get(metric)
    if current is not None and not (score > current if goal == "max" else score < current):
        sign = "<=" if goal == "max" else ">="
        return False, f"{metric} {score:g} {sign} {current:g} ({dev.version})"
    for guard in config.get("guard_metrics", ()):
        broken = _guard_broken(guard, candidate.scores.get(guard["name"]), dev.scores.get(guard["name"]))
        if broken:
            return False, f"{broken} ({dev.version})"
    sign = ">" if goal == "max" else "<"
    return True, f"{metric} {score:g} {sign} {current:g} ({dev.version})"


def _guard_broken(guard: Mapping[str, Any], value: float | None, baseline: float | None) -> str | None:
    name, tolerance = guard["name"], guard.get("tolerance", 0.0)
    if baseline is None:
        return None  # nothing to regress from
    if value is None:
        return f"guard metric {name} is missing"
    regressed = value < baseline - tolerance if guard["goal"] == "max" else value > baseline + tolerance
    if regressed:
        return f"guard metric {name} {value:g} regresses past {baseline:g} by more than {tolerance:g}"
    return None


# --- canary results ----------------------------------------------------------------------------


CanaryResult = Literal["pending", "passed", "failed", "inconclusive"]


def record_canary(
    registry: Registry,
    ref: str,
    *,
    result: CanaryResult,
    summary: str | None,
    now: datetime | None = None,
    report: list[dict[str, Any]] | None = None,
) -> Plan:
    """Plan recording a canary verdict on the version in staging.

    With ``report`` (the per-guardrail numbers of ``regops canary check``) it is
    a check: ``checked_at`` is set and the verdict may change at the next check.
    Without, it is a verdict measured elsewhere, final: ``finished_at``.
    """
    now = now or datetime.now(UTC)
    record = registry.get(ref)
    if record.stage != "staging" or record.canary is None:
        raise LifecycleError(f"{record.ref} is {record.stage}; canary results are recorded on the version in staging")
    edits = _Edits()
    update: dict[str, Any] = {"result": result}
    update["checked_at" if report is not None else "finished_at"] = now
    if summary:
        update["summary"] = summary
    if report is not None:
        update["report"] = report
    edits(record).update("canary", update)
    return edits.into(Plan(steps=[f"{record.ref}: canary {result}"]))


def set_storage(record: VersionRecord, location: dict[str, Any]) -> Plan:
    """Plan recording where a version's weights now are (after a restore or a move to cold storage)."""
    edits = _Edits()
    edits(record).update_path(("artifacts", "storage"), location)
    return edits.into(Plan(steps=[f"{record.ref}: weights now {location.get('tier', 'hot')}"]))


def stamp(record: VersionRecord, index: int, *, pr: int, approved_by: list[str]) -> Plan:
    """Plan recording the merged pull request and its approvers on a transition it made."""
    edits = _Edits()
    edits(record).update_path(("transitions", index), {"pr": pr, "approved_by": approved_by})
    who = ", ".join(approved_by) or "nobody"
    return edits.into(Plan(steps=[f"{record.ref}: transition {index} approved in #{pr} by {who}"]))


# --- register ----------------------------------------------------------------------------------


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
) -> RegisterResult:
    """Hash, upload and record a new version as a candidate; the caller holds the lock.

    Everything that can be checked is checked before any byte moves. The
    upload is content-addressed, so when writing the version file fails
    afterwards, running the same command again stores nothing twice.
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
    stored = storage.put(artifacts, hashed, model=model, version=new_version)
    data: dict[str, Any] = {
        "model": model,
        "version": new_version,
        "created_at": now,
        "created_by": by,
        "parent": parent_ref,
        "training": {**training, **({"code": dict(code)} if code else {}), **({"run_url": run_url} if run_url else {})},
        "hyperparameters": dict(params),
        "evals": {**({"dataset": eval_dataset} if eval_dataset else {}), "scores": scores},
        "artifacts": {
            "files": [{"path": a.path, "size": a.size, "sha256": a.sha256} for a in hashed],
            "storage": stored.location,
        },
        "stage": "candidate",
        "transitions": [],
    }
    text = store.render_new(
        data,
        header=schema_comment("version", 3),
        flow=("training.code", "evals.scores", "artifacts.files[]", "artifacts.storage", "transitions"),
    )
    _check_text(text, path, registry)
    try:
        store.write_atomic(path, text)
    except OSError as e:
        raise LifecycleError(
            f"the weights are stored ({stored.uploaded_files} files uploaded), but writing {registry.display(path)} "
            f"failed: {e.strerror or e}. Fix that and run the same command again: nothing is uploaded twice"
        ) from e
    return RegisterResult(path, new_version, stored.uploaded_files, stored.uploaded_bytes, stored.present_files)


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
    from regops.schema import check

    parsed = store.parse_bytes(text.encode(), registry.display(path))
    problems = check("version", parsed.data, registry.display(path)) if parsed.data is not None else [parsed.problem]
    if problems:
        raise RegopsError(f"regops produced an invalid version file: {problems[0]}")
