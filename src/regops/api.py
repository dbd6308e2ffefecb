"""The library front: one function per CLI verb, keyword arguments, no printing, no flows.

Each function opens the registry (:mod:`regops.workspace`) and returns values;
``cli.py`` renders them. What talks to GitHub, the Hub or a metrics provider is
a flow (:mod:`regops.flows`), re-exported here under its verb.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from regops import (
    attest,
    changes,
    datasets,
    lifecycle,
    policy,
    queries,
    registration,
    retention,
    schema,
    signing,
    store,
)
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
from regops.kinds import Problem, Stage, StepKind
from regops.lifecycle import Plan
from regops.records import ModelEntry, VersionRecord
from regops.registration import Bump, RegisterResult
from regops.registry import HistoryEntry, LineageNode, ModelStatus, Registry, Resolution, VersionDiff, parse_ref
from regops.serving import kserve_text, serving_text
from regops.treehash import HashCache, TreeHash, hash_path
from regops.weights import Artifact
from regops.weights import download as fetch
from regops.workspace import changed_at_ref, files_at_ref, identity, open_registry, open_storage
from regops.workspace import when as _moment
from regops.workspace import write as _write

if TYPE_CHECKING:
    from collections.abc import Mapping

    from regops.adapters.github import GitHub
    from regops.canary import Checked, SamplePlan
    from regops.doctor import Finding
    from regops.provenance import Chain
    from regops.scaffold import Upgrade
    from regops.workspace import RegistryArg, TimeArg

__all__ = [
    "advice",
    "auto_promote",
    "canary_check",
    "canary_plan",
    "canary_pr",
    "codeowners",
    "commit",
    "dataset_hash",
    "diff",
    "doctor",
    "download",
    "drift",
    "export_schemas",
    "history",
    "init",
    "init_upgrade",
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
    "site_build",
    "status",
    "sync",
    "validate",
    "versions_at",
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
    changed, before = changed_at_ref(opened, base)
    scope = changes.touched_models(changed, opened.root.relative_to(opened.root.parent).as_posix())
    if scope is None:
        return validate(registry=opened, now=now, base=base, full=True)
    opened.limit(scope)
    problems = policy.check(opened, now=now)
    return sorted(set(problems) | set(changes.against_base(opened, before, ref=base, changed=changed)))


def advice(*, registry: RegistryArg = "registry") -> list[Problem]:
    """Warnings ``validate`` prints beside its problems, which fail nothing (:func:`regops.policy.advice`)."""
    return policy.advice(open_registry(registry))


def status(*, registry: RegistryArg = "registry", at: TimeArg = None) -> list[ModelStatus]:
    """One row per model: who holds dev, staging and prod now, or held them at ``at``."""
    moment = _moment(at)
    opened = open_registry(registry)
    return opened.status() if moment is None else queries.status_at(opened, moment)


def show(ref: str, *, registry: RegistryArg = "registry", at: TimeArg = None) -> VersionRecord:
    """One version: ``MODEL@VERSION``, or ``MODEL@STAGE`` now or ``at``; with ``at``, one that existed then."""
    moment = _moment(at)
    record = open_registry(registry).get(ref, at=moment)
    if moment is not None and queries.stage_at(record, moment) is None:
        raise queries.NotYetRegisteredError(record, moment)
    return record


def show_model(model: str, *, registry: RegistryArg = "registry") -> ModelEntry:
    opened = open_registry(registry)
    opened.model(model)
    return opened.model_entry(model)


def versions_at(model: str, *, registry: RegistryArg = "registry", at: TimeArg) -> list[tuple[VersionRecord, Stage]]:
    """A model's versions that existed at ``at``, each with the stage it was in then."""
    opened = open_registry(registry)
    opened.model(model)
    return queries.versions_at(opened, model, _moment(at) or datetime.now(UTC))


def history(
    model: str | None = None,
    *,
    registry: RegistryArg = "registry",
    models: Sequence[str] = (),
    by: str | None = None,
    bots: bool = False,
    stage: Stage | None = None,
    kinds: Sequence[StepKind] = (),
    since: TimeArg = None,
    until: TimeArg = None,
) -> list[HistoryEntry]:
    """Every registration and transition, oldest first: of ``model`` (and ``models``), else of every model;
    only those made by ``by``, by bots, into or out of ``stage``, of ``kinds``, from ``since`` until ``until``."""
    names = tuple(dict.fromkeys(parse_ref(m).model for m in ([model] if model else []) + list(models)))
    query = queries.HistoryQuery(names, by, bots, stage, tuple(kinds), _moment(since), _moment(until))
    return queries.history(open_registry(registry), query)


def resolve(ref: str, *, registry: RegistryArg = "registry", at: TimeArg = None) -> Resolution:
    """The version that held ``MODEL@STAGE`` at ``at`` (default: now), from the transitions."""
    return open_registry(registry).resolve(ref, at=_moment(at))


def lineage(ref: str, *, registry: RegistryArg = "registry", at: TimeArg = None) -> list[LineageNode]:
    return open_registry(registry).lineage(ref, at=_moment(at))


def diff(a: str, b: str, *, registry: RegistryArg = "registry", at: TimeArg = None) -> VersionDiff:
    """How ``b`` differs from ``a``; ``at`` applies to ``a`` (e.g. prod three weeks ago vs prod now)."""
    return open_registry(registry).diff(a, b, at=_moment(at))


def site_build(
    *, registry: RegistryArg = "registry", out: str | Path = "site", now: datetime | None = None
) -> list[Path]:
    """Write the registry website into ``out`` (a folder regops built before is replaced); the files written."""
    # Imported here, as scaffold, doctor and provenance below: verbs that run them alone pay their imports
    # (site's multiprocessing among them), which every other verb's start-up would otherwise carry.
    from regops import site

    return site.build(site.site_data(open_registry(registry), now=now), Path(out))


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


def doctor(*, registry: RegistryArg = "registry", repo: str | None = None) -> list[Finding]:
    """Every GitHub setting the approvals gate relies on, each ``ok`` or naming the setting to change
    (:func:`regops.flows.doctor.doctor_checks`)."""
    from regops.flows.doctor import doctor_checks

    return doctor_checks(registry=registry, repo=repo)


def init(
    dest: str | Path = ".", *, org: str, hub_org: str | None = None, storage: Literal["hf", "local"] = "hf"
) -> list[Path]:
    """Create a registry repository in ``dest``: regops.yaml, an empty ``registry/models/``, schemas, the workflows
    pinned to this version, CODEOWNERS, .gitignore and a README; the files written. Refuses to overwrite any file."""
    from regops import scaffold

    return scaffold.init(Path(dest), org=org, hub_org=hub_org, storage=storage)


def init_upgrade(dest: str | Path = ".", *, dry_run: bool = False) -> Upgrade:
    """Rewrite the workflows, their lock and the schemas of the registry repository ``dest`` for this regops
    version (never ``registry/``); the diffs. ``dry_run``: only the diffs."""
    from regops import scaffold

    return scaffold.upgrade(Path(dest), dry_run=dry_run)


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
        _signed_for(r, r.get(ref), to, action=f"the promotion to {to}")
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


def _signed_for(r: Registry, record: VersionRecord, stage: Stage, *, action: str) -> None:
    """The signature rule (:func:`regops.signing.check`) and the attestations (:func:`regops.attest.check`) for a
    version about to enter ``stage``."""
    storage = open_storage(r)
    signing.check(record, stage=stage, policy=r.config.signing, storage=storage, root=r.root.parent, action=action)
    attest.check(record, config=r.config, move=(record.stage, stage), root=r.root.parent, action=action)


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
        plan = lifecycle.rollback(r, model, to=to, at=moment, notes=notes, by=who, storage=open_storage(r))
        target = r.version(model, to) if to else r.get(f"{model}@prod", at=moment)
        _signed_for(r, target, "prod", action="the rollback to prod")
        return plan

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
    signing_key: str | Path | None = None,
    signing_key_env: str | None = None,
) -> Plan:
    """Record a canary verdict measured elsewhere; with ``signing_key`` (or the key in variable ``signing_key_env``)
    also a signed attestation of it (:mod:`regops.attest`)."""
    signer = signing.chosen(signing_key, signing_key_env)
    now = datetime.now(UTC)

    def plan_it(r: Registry) -> Plan:
        record = r.get(ref)
        verdict = {"result": result, "summary": summary, "finished_at": now.isoformat(), "measured": "elsewhere"}
        name = attest.canary_name(now)
        attested = attest.signed(record, attest.CANARY, verdict, name=name, signer=signer) if signer else None
        plan = lifecycle.record_canary(
            r, ref, result=result, summary=summary, now=now, attestation=attested[1] if attested else None
        )
        plan.changes[:0] = [attested[0]] if attested else []
        return plan

    return _write(registry, plan_it, dry_run=dry_run)


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
    signing_key: str | Path | None = None,
    signing_cert: str | Path | None = None,
    signing_keyless: bool = False,
    signing_key_env: str | None = None,
) -> RegisterResult:
    """Hash and store a version's files, then record it as a candidate (``pr``: in a pull request, not the checkout;
    ``confine``: refuse artifacts, evals or params outside that folder or in a ``.git`` folder; ``signing_key``
    (with ``signing_cert``), ``signing_keyless`` or ``signing_key_env``: sign the files and store the signature beside
    them, :func:`regops.signing.signer_from_env` for the last)."""
    signer = (
        signing.signer_from_env(signing_key_env)
        if signing_key_env
        else _signer(signing_key, signing_cert, keyless=signing_keyless)
    )

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
                signer=signer,
            )

    if not pr:
        return change()
    registration.artifact_files(Path(artifacts))  # refused before a branch exists
    return _registration_pull(opened, change, model=model, name=f"{model}-{version or bump or 'next'}", by=who)


def _signer(key: str | Path | None, cert: str | Path | None, *, keyless: bool) -> signing.Signer | None:
    if cert is not None and key is None:
        raise signing.SigningError("--signing-cert needs --signing-key, the certificate's private key")
    if key is None:
        return signing.Signer() if keyless else None
    return signing.Signer(Path(key), Path(cert) if cert is not None else None)


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
    _signed_for(opened, record, record.stage, action="the download")
    return record, fetch(open_storage(opened), artifacts, location, Path(dest), ref=record.ref, progress=progress)


def verify(ref: str, *, registry: RegistryArg = "registry", at: TimeArg = None) -> Chain:
    """The chain behind a version (a version, or a stage now or ``at``): weights, signature, review, canary."""
    from regops import provenance

    opened = open_registry(registry)
    record = opened.get(ref, at=_moment(at))
    return provenance.chain(record, config=opened.config, storage=open_storage(opened), root=opened.root.parent)


def restore(ref: str, *, registry: RegistryArg = "registry", dry_run: bool = False) -> Plan:
    """Copy a version's weights back from cold storage to hot, verified, and record it."""
    from regops import lifecycle

    def plan_it(r: Registry) -> Plan:
        record = r.get(ref)
        if record.storage.get("tier") != "cold":
            raise RegopsError(f"{record.ref}'s weights are already hot; nothing to restore")
        artifacts = retention.artifacts_of(record)  # the signature too: the restored commit holds it
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
    signing_key: str | Path | None = None,
    signing_key_env: str | None = None,
) -> list[Checked]:
    """Check every live canary against prod and record each verdict (:func:`regops.flows.canary.canary_check`;
    ``signing_key``/``signing_key_env``: sign an attestation of each final verdict)."""
    # Imported here: the metrics adapter loads pydantic (~0.3 s), which the read verbs never pay.
    from regops.flows import canary

    return canary.canary_check(
        model,
        registry=registry,
        now=now,
        dry_run=dry_run,
        env=env,
        signing_key=signing_key,
        signing_key_env=signing_key_env,
    )


def canary_plan(
    model: str, *, registry: RegistryArg = "registry", traffic_per_hour: float | None = None
) -> list[SamplePlan | str]:
    """What each of ``model``'s guardrails needs to decide: requests per arm and hours (:func:`regops.canary.plans`).

    ``traffic_per_hour`` (all of the model's requests) defaults to the canary config's ``traffic_per_hour``.
    """
    from regops import canary

    opened = open_registry(registry)
    name = parse_ref(model).model
    config = canary.settings(opened.config.raw["canary"], opened.model(name).raw.get("canary"))
    return canary.plans(config, traffic_per_hour=traffic_per_hour)


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
