"""The library front: one function per CLI verb, keyword arguments, no printing, no flows.

Each function opens the registry (:mod:`regops.workspace`) and returns values;
``cli.py`` renders them. What talks to GitHub, the Hub or a metrics provider is
a flow (:mod:`regops.flows`), re-exported here under its verb.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from regops import changes, datasets, lifecycle, policy, registration, schema, store
from regops.adapters import git
from regops.codeowners import codeowners_file
from regops.errors import RegopsError
from regops.flows.pulls import (
    as_pull_request,
    commit,
    merge_group_pull,
    on_branch,
    pr_check,
    pr_check_group,
    pr_check_head,
    pr_report,
    pr_report_head,
    pr_stamp,
    protected_branches,
)
from regops.flows.retention import retention_apply, retention_plan
from regops.flows.sync import drift, sync
from regops.kinds import Problem, Stage
from regops.lifecycle import Plan
from regops.records import ModelEntry, VersionRecord
from regops.registration import Bump, RegisterResult
from regops.registry import HistoryEntry, LineageNode, ModelStatus, Registry, Resolution, VersionDiff, parse_ref
from regops.serving import kserve_text, serving_text
from regops.treehash import HashCache, TreeHash, hash_path
from regops.weights import Artifact
from regops.weights import download as fetch
from regops.workspace import files_at_ref, identity, open_registry, open_storage
from regops.workspace import when as _moment
from regops.workspace import write as _write

if TYPE_CHECKING:
    from collections.abc import Mapping

    from regops.adapters.github import GitHub
    from regops.canary import Checked
    from regops.workspace import RegistryArg, TimeArg

__all__ = [
    "auto_promote",
    "canary_check",
    "canary_pr",
    "codeowners",
    "commit",
    "dataset_hash",
    "diff",
    "download",
    "drift",
    "export_schemas",
    "history",
    "lineage",
    "merge_group_pull",
    "open_registry",
    "open_storage",
    "pr_check",
    "pr_check_group",
    "pr_check_head",
    "pr_report",
    "pr_report_head",
    "pr_stamp",
    "promote",
    "protected_branches",
    "record_canary",
    "register",
    "register_dataset",
    "resolve",
    "restore",
    "retention_apply",
    "retention_plan",
    "rollback",
    "serving_export",
    "show",
    "show_model",
    "status",
    "sync",
    "validate",
]


def validate(
    *, registry: RegistryArg = "registry", now: datetime | None = None, base: str | None = None, full: bool = False
) -> list[Problem]:
    """Every problem in the registry, sorted by file, line and column; empty when clean.

    With ``base`` (a git ref, e.g. a pull request's base branch) also what the
    change does to the records there (:func:`regops.changes.against_base`), and
    only what the change touches is checked: the model folders it changes
    (:func:`regops.changes.touched_models`; git tells which, by content hash),
    with every rule that reaches past them (parents, datasets, Hub repos, CODEOWNERS).
    ``full`` checks every model all the same.
    """
    opened = open_registry(registry)
    if base is None:
        return policy.check(opened, now=now)
    if full:
        before = files_at_ref(opened, base)
        return sorted(set(policy.check(opened, now=now)) | set(changes.against_base(opened, before, ref=base)))
    root = opened.root.parent
    folder = opened.root.relative_to(root).as_posix()
    changed = git.changed_since(root, base, folder)
    scope = changes.touched_models(changed, folder)
    if scope is None:
        return validate(registry=opened, now=now, base=base, full=True)
    opened.limit(scope)
    problems = policy.check(opened, now=now)
    before = git.files_at(root, base, *sorted(changed)) if changed else {}
    return sorted(set(problems) | set(changes.against_base(opened, before, ref=base, changed=changed)))


def status(*, registry: RegistryArg = "registry") -> list[ModelStatus]:
    return open_registry(registry).status()


def show(ref: str, *, registry: RegistryArg = "registry", at: TimeArg = None) -> VersionRecord:
    """One version: ``MODEL@VERSION``, or ``MODEL@STAGE`` now or ``at``."""
    return open_registry(registry).get(ref, at=_moment(at))


def show_model(model: str, *, registry: RegistryArg = "registry") -> ModelEntry:
    opened = open_registry(registry)
    opened.model(model)
    return opened.model_entry(model)


def history(model: str, *, registry: RegistryArg = "registry") -> list[HistoryEntry]:
    return open_registry(registry).history(parse_ref(model).model)


def resolve(ref: str, *, registry: RegistryArg = "registry", at: TimeArg = None) -> Resolution:
    """The version that held ``MODEL@STAGE`` at ``at`` (default: now), from the transitions."""
    return open_registry(registry).resolve(ref, at=_moment(at))


def lineage(ref: str, *, registry: RegistryArg = "registry", at: TimeArg = None) -> list[LineageNode]:
    return open_registry(registry).lineage(ref, at=_moment(at))


def diff(a: str, b: str, *, registry: RegistryArg = "registry", at: TimeArg = None) -> VersionDiff:
    """How ``b`` differs from ``a``; ``at`` applies to ``a`` (e.g. prod three weeks ago vs prod now)."""
    return open_registry(registry).diff(a, b, at=_moment(at))


def codeowners(*, registry: RegistryArg = "registry", check: bool = False) -> tuple[Path, bool]:
    """Write ``.github/CODEOWNERS`` from the model owners; (its path, whether it changed). ``check``: write nothing."""
    path, text = codeowners_file(open_registry(registry))
    current = path.read_text(encoding="utf-8") if path.is_file() else None
    if current != text and not check:
        path.parent.mkdir(parents=True, exist_ok=True)
        store.write_atomic(path, text)
    return path, current != text


def export_schemas(dest: str | Path = "schemas") -> list[Path]:
    """Write ``schemas/*.json`` from the pydantic models; returns the files that changed."""
    return schema.export(Path(dest))


def promote(
    ref: str,
    *,
    registry: RegistryArg = "registry",
    to: Stage,
    notes: str,
    by: str | None = None,
    dry_run: bool = False,
    pr: bool = False,
) -> Plan:
    """Move a version to ``to`` (archiving the previous holder); ``dry_run`` only plans; ``pr`` opens a pull
    request with the change instead of leaving it in the working tree (:func:`_as_pull_request`)."""
    who = identity(by)

    def plan_it(r: Registry) -> Plan:
        return lifecycle.promote(r, ref, to=to, notes=notes, by=who)

    if pr and not dry_run:
        model, _, version = ref.partition("@")
        return as_pull_request(
            registry,
            plan_it,
            title=f"Promote {ref} to {to}",
            branch=f"regops/promote-{model}-{version}-{to}",
            labels=["promotion", f"stage:{to}", f"model:{model}"],
            model=model,
            by=who,
        )
    return _write(registry, plan_it, dry_run=dry_run)


def rollback(
    model: str,
    *,
    registry: RegistryArg = "registry",
    to: str | None = None,
    at: TimeArg = None,
    notes: str,
    by: str | None = None,
    dry_run: bool = False,
    pr: bool = False,
) -> Plan:
    """Bring a former prod version back to prod, archiving the current one (``pr``: as a pull request)."""
    who, moment = identity(by), _moment(at)

    def plan_it(r: Registry) -> Plan:
        return lifecycle.rollback(r, model, to=to, at=moment, notes=notes, by=who, storage=open_storage(r))

    if pr and not dry_run:
        return as_pull_request(
            registry,
            plan_it,
            title=f"Roll {model} back to {to or f'prod at {at}'}",
            branch=f"regops/rollback-{model}-{to or 'at'}",
            labels=["promotion", "rollback", "stage:prod", f"model:{model}"],
            model=model,
            by=who,
        )
    return _write(registry, plan_it, dry_run=dry_run)


def auto_promote(
    model: str | None = None, *, registry: RegistryArg = "registry", by: str | None = None, dry_run: bool = False
) -> Plan:
    """Move each model's best candidate that beats dev into dev; idempotent."""
    who = identity(by)
    return _write(registry, lambda r: lifecycle.auto_promote(r, model, by=who), dry_run=dry_run)


def record_canary(
    ref: str,
    *,
    registry: RegistryArg = "registry",
    result: Literal["passed", "failed"],
    summary: str | None = None,
    dry_run: bool = False,
) -> Plan:
    return _write(registry, lambda r: lifecycle.record_canary(r, ref, result=result, summary=summary), dry_run=dry_run)


def register(
    model: str,
    *,
    registry: RegistryArg = "registry",
    artifacts: str | Path,
    evals: str | Path,
    params: str | Path,
    dataset: str,
    eval_dataset: str | None = None,
    parent: str | None = None,
    version: str | None = None,
    bump: Bump | None = None,
    by: str | None = None,
    run_url: str | None = None,
    progress: Callable[[int], None] | None = None,
    pr: bool = False,
    confine: str | Path | None = None,
) -> RegisterResult:
    """Hash and store a version's files, then record it as a candidate (``pr``: in a pull request, not the checkout;
    ``confine``: refuse artifacts, evals or params outside that folder or in a ``.git`` folder)."""

    if confine is not None:
        registration.confine({"artifacts": artifacts, "evals": evals, "params": params}, confine)
    scores, hyperparameters = store.read_mapping(Path(evals)), store.read_mapping(Path(params))
    opened = open_registry(registry)
    who = identity(by)

    def change() -> RegisterResult:
        with lifecycle.locked(opened.root):
            fresh = open_registry(opened.root)
            return registration.register(
                fresh,
                model,
                artifacts=Path(artifacts),
                evals=scores,
                params=hyperparameters,
                dataset=dataset,
                eval_dataset=eval_dataset,
                parent=parent,
                version=version,
                bump=bump,
                by=who,
                run_url=run_url,
                storage=open_storage(fresh),
                progress=progress,
            )

    if not pr:
        return change()
    registration.artifact_files(Path(artifacts))  # refused before a branch exists
    return _registration_pull(opened, change, model=model, name=f"{model}-{version or bump or 'next'}", by=who)


def _registration_pull(
    opened: Registry, change: Callable[[], RegisterResult], *, model: str, name: str, by: str
) -> RegisterResult:
    """Register on a new branch ``regops/register-<name>`` and open its pull request."""
    result, pull = on_branch(
        opened,
        change,
        title=f"Register {model}",
        branch=f"regops/register-{name}",
        labels=["registration", f"model:{model}"],
        model=model,
        by=by,
        rename=True,
    )
    return dataclasses.replace(result, pull=pull.url)


def download(
    ref: str,
    *,
    registry: RegistryArg = "registry",
    dest: str | Path,
    at: TimeArg = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[VersionRecord, list[Path]]:
    """Fetch a version's files (a version, or a stage now or ``at``) into ``dest``, verified."""
    opened = open_registry(registry)
    record = opened.get(ref, at=_moment(at))
    location = record.storage
    if location.get("tier") == "cold":
        raise RegopsError(f"{record.ref}'s weights are in cold storage; run `regops restore {record.ref}` first")
    artifacts = [Artifact.from_record(f) for f in record.raw["artifacts"]["files"]]
    return record, fetch(open_storage(opened), artifacts, location, Path(dest), ref=record.ref, progress=progress)


def restore(ref: str, *, registry: RegistryArg = "registry", dry_run: bool = False) -> Plan:
    """Copy a version's weights back from cold storage to hot, verified, and record it."""
    from regops import lifecycle
    from regops.weights import Artifact

    def plan_it(r: Registry) -> Plan:
        record = r.get(ref)
        if record.storage.get("tier") != "cold":
            raise RegopsError(f"{record.ref}'s weights are already hot; nothing to restore")
        artifacts = [Artifact.from_record(f) for f in record.raw["artifacts"]["files"]]
        if dry_run:
            location = {**record.storage, "tier": "hot"}
        else:
            location = open_storage(r).restore(artifacts, record.storage, model=record.model, version=record.version)
        return lifecycle.set_storage(record, location)

    return _write(registry, plan_it, dry_run=dry_run)


def serving_export(*, registry: RegistryArg = "registry", format: Literal["json", "kserve"] = "json") -> str:
    """What serves traffic: per model, the prod version and the staging canary, with where their weights are.

    ``json``: the serving manifest (``serving.json``); ``kserve``: one KServe
    ``InferenceService`` per model, for a GitOps deployer to apply.
    """
    opened = open_registry(registry)
    return kserve_text(opened) if format == "kserve" else serving_text(opened)


def canary_check(
    model: str | None = None,
    *,
    registry: RegistryArg = "registry",
    now: TimeArg = None,
    dry_run: bool = False,
    env: Mapping[str, str] | None = None,
) -> list[Checked]:
    """Check every live canary against prod and record each verdict (:func:`regops.flows.canary.canary_check`)."""
    # Imported here: the metrics adapter loads pydantic (~0.3 s), which the read verbs never pay.
    from regops.flows import canary

    return canary.canary_check(model, registry=registry, now=now, dry_run=dry_run, env=env)


def canary_pr(
    model: str | None = None, *, registry: RegistryArg = "registry", by: str | None = None, github: GitHub | None = None
) -> list[Checked]:
    """Commit the recorded canary verdicts and open the pull requests they call for (:mod:`regops.flows.canary`)."""
    # Imported here: the metrics adapter loads pydantic (~0.3 s), which the read verbs never pay.
    from regops.flows import canary

    return canary.canary_pr(model, registry=registry, by=by, github=github)


def dataset_hash(path: str | Path) -> TreeHash:
    """The content hash of a file or folder (see ``regops.datasets``), cached by file stat."""
    return hash_path(Path(path), cache=HashCache.from_environment())


def register_dataset(
    name: str,
    *,
    registry: RegistryArg = "registry",
    version: str,
    path: str | Path | None = None,
    dvc: str | Path | None = None,
    dvc_path: str | None = None,
    iceberg: str | None = None,
    snapshot: int | None = None,
    delta: str | None = None,
    delta_version: int | None = None,
    by: str | None = None,
    description: str | None = None,
    uri: str | None = None,
) -> Path:
    """Record a dataset version: files hashed by regops, a DVC entry, an Iceberg snapshot or a Delta version."""
    source = datasets.one_source(
        path=path,
        dvc=dvc,
        dvc_path=dvc_path,
        iceberg=iceberg,
        snapshot=snapshot,
        delta=delta,
        delta_version=delta_version,
    )
    root = open_registry(registry).root
    with lifecycle.locked(root):
        return datasets.register_dataset(
            root,
            name,
            version=version,
            source=source,
            by=identity(by),
            description=description,
            uri=uri,
            cache=HashCache.from_environment(),
        )
