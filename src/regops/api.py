"""The library front: one function per CLI verb, keyword arguments, no printing, no flows.

Each function opens the registry (:mod:`regops.finder`, :mod:`regops.workspace`) and returns values;
``cli`` renders them. What talks to GitHub, the Hub or a metrics provider is a flow (:mod:`regops.flows`),
re-exported here under its verb and imported on first use (``_FLOWS``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Unpack

from regops import lazy_exports, queries, store
from regops.errors import RegopsError
from regops.finder import open_registry
from regops.finder import when as _moment
from regops.kinds import Problem, Stage
from regops.queries import HistoryFilters
from regops.records import ModelEntry, VersionRecord
from regops.registry import HistoryEntry, LineageNode, ModelStatus, Registry, Resolution, VersionDiff, parse_ref

if TYPE_CHECKING:
    from regops.canary import SamplePlan
    from regops.doctor import Finding
    from regops.finder import RegistryArg, TimeArg
    from regops.flows.canary import canary_check, canary_pr
    from regops.flows.pulls import (
        commit,
        merge_group_pull,
        pr_check,
        pr_check_group,
        pr_check_head,
        pr_report,
        pr_report_head,
        pr_stamp,
        protected_branches,
    )
    from regops.flows.register import register
    from regops.flows.retention import restore, retention_apply, retention_plan
    from regops.flows.stages import auto_promote, promote, rollback
    from regops.flows.sync import drift, sync
    from regops.lifecycle import Plan
    from regops.provenance import Chain
    from regops.scaffold import Upgrade
    from regops.treehash import TreeHash
    from regops.workspace import open_storage

# Verbs that are flows, and the storage wiring, by the module that holds each: imported on first use. With the
# write verbs' imports below (each marked "deferred"), they are ~0.15 s of start-up (lifecycle, signing, git, the
# weights stores, the flows; pydantic and the Hub client behind some) that status, history and show never need
# (benchmarks/audit.py, tests/test_startup.py).
_FLOWS: dict[str, str] = {
    "auto_promote": "regops.flows.stages",
    "canary_check": "regops.flows.canary",
    "canary_pr": "regops.flows.canary",
    "commit": "regops.flows.pulls",
    "drift": "regops.flows.sync",
    "merge_group_pull": "regops.flows.pulls",
    "open_storage": "regops.workspace",
    "pr_check": "regops.flows.pulls",
    "pr_check_group": "regops.flows.pulls",
    "pr_check_head": "regops.flows.pulls",
    "pr_report": "regops.flows.pulls",
    "pr_report_head": "regops.flows.pulls",
    "pr_stamp": "regops.flows.pulls",
    "promote": "regops.flows.stages",
    "protected_branches": "regops.flows.pulls",
    "register": "regops.flows.register",
    "retention_apply": "regops.flows.retention",
    "retention_plan": "regops.flows.retention",
    "restore": "regops.flows.retention",
    "rollback": "regops.flows.stages",
    "sync": "regops.flows.sync",
}


__getattr__ = lazy_exports(__name__, _FLOWS, globals())


__all__ = [
    "HistoryFilters",
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
    "history_moves",
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
    # deferred (see _FLOWS)
    from regops import changes, fullcheck, policy
    from regops.workspace import changed_at_ref, files_at_ref

    opened = open_registry(registry)
    if base is None:
        return fullcheck.check_full(opened, now=now)
    if full:
        before = files_at_ref(opened, base)
        return sorted(set(policy.check(opened, now=now)) | set(changes.against_base(opened, before, ref=base)))
    # While git stats the working tree: the YAML loader, and the worker pool's modules if git is still at it. The
    # pydantic models (~0.25 s of CPU) are built beside the parse workers (store._parse_in), not idling a core.
    changed, before = changed_at_ref(opened, base, meanwhile=store.prepare_parse, idle=store.prepare_pool)
    scope = changes.touched_models(changed, opened.root.relative_to(opened.root.parent).as_posix())
    if scope is None:
        return validate(registry=opened, now=now, base=base, full=True)
    opened.limit(scope)
    problems = policy.check(opened, now=now)
    return sorted(set(problems) | set(changes.against_base(opened, before, ref=base, changed=changed)))


def advice(*, registry: RegistryArg = "registry") -> list[Problem]:
    """Warnings ``validate`` prints beside its problems, which fail nothing (:func:`regops.policy.advice`)."""
    # deferred (see _FLOWS)
    from regops import policy

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
    model: str | None = None, *, registry: RegistryArg = "registry", **filters: Unpack[HistoryFilters]
) -> list[HistoryEntry]:
    """Every registration and transition, oldest first: of ``model`` (and ``models``), else of every model;
    only those the ``filters`` keep (:class:`HistoryFilters`)."""
    return history_moves(model, registry=registry, **filters).entries()


def history_moves(
    model: str | None = None,
    *,
    registry: RegistryArg = "registry",
    render: Callable[[queries.History], object] | None = None,
    **filters: Unpack[HistoryFilters],
) -> queries.History:
    """:func:`history`'s answer as the summaries' columns it was read from (what ``regops history`` renders as
    text); its ``entries()`` are :func:`history`'s list; ``render``'s text of it in ``rendered``, made while git
    looks at the models (:func:`regops.queries.history_moves`)."""
    asked = [model] if model else []
    names = tuple(dict.fromkeys(parse_ref(m).model for m in [*asked, *filters.get("models", ())]))
    bots, kinds = filters.get("bots", False), tuple(filters.get("kinds", ()))
    since, until = _moment(filters.get("since")), _moment(filters.get("until"))
    query = queries.HistoryQuery(names, filters.get("by"), bots, filters.get("stage"), kinds, since, until)
    return queries.history_moves(open_registry(registry), query, render)


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
    # deferred (see _FLOWS)
    from regops.codeowners import codeowners_file

    path, text = codeowners_file(open_registry(registry))
    current = path.read_text(encoding="utf-8") if path.is_file() else None
    if current != text and not check:
        path.parent.mkdir(parents=True, exist_ok=True)
        store.write_atomic(path, text)
    return path, current != text


def export_schemas(dest: str | Path = "schemas") -> list[Path]:
    """Write ``schemas/*.json`` from the pydantic models; returns the files that changed."""
    # deferred (see _FLOWS)
    from regops import schema

    return schema.export(Path(dest))


def doctor(*, registry: RegistryArg = "registry", repo: str | None = None) -> list[Finding]:
    """Every GitHub setting the approvals gate relies on, each ``ok`` or naming the setting to change
    (:func:`regops.flows.doctor.doctor_checks`)."""
    # deferred (see _FLOWS)
    from regops.flows.doctor import doctor_checks

    return doctor_checks(registry=registry, repo=repo)


def init(
    dest: str | Path = ".", *, org: str, hub_org: str | None = None, storage: Literal["hf", "local"] = "hf"
) -> list[Path]:
    """Create a registry repository in ``dest``: regops.yaml, an empty ``registry/models/``, schemas, the workflows
    pinned to this version, CODEOWNERS, .gitignore and a README; the files written. Refuses to overwrite any file."""
    # deferred (see _FLOWS)
    from regops import scaffold

    return scaffold.init(Path(dest), org=org, hub_org=hub_org, storage=storage)


def init_upgrade(dest: str | Path = ".", *, dry_run: bool = False) -> Upgrade:
    """Rewrite the workflows, their lock and the schemas of the registry repository ``dest`` for this regops
    version (never ``registry/``); the diffs. ``dry_run``: only the diffs."""
    # deferred (see _FLOWS)
    from regops import scaffold

    return scaffold.upgrade(Path(dest), dry_run=dry_run)


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
    # deferred (see _FLOWS)
    from regops import attest, lifecycle, signing
    from regops.workspace import write

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

    return write(registry, plan_it, dry_run=dry_run)


def download(
    ref: str,
    *,
    registry: RegistryArg = "registry",
    dest: str | Path,
    at: TimeArg = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[VersionRecord, list[Path]]:
    """Fetch a version's files (a version, or a stage now or ``at``) into ``dest``, verified."""
    # deferred (see _FLOWS)
    from regops.weights import Artifact, download
    from regops.workspace import open_storage, signed_for

    opened = open_registry(registry)
    record = opened.get(ref, at=_moment(at))
    location = record.storage
    if location.get("tier") == "cold":
        raise RegopsError(f"{record.ref}'s weights are in cold storage; run `regops restore {record.ref}` first")
    artifacts = [Artifact.from_record(f) for f in record.raw["artifacts"]["files"]]
    signed_for(opened, record, record.stage, action="the download")
    return record, download(open_storage(opened), artifacts, location, Path(dest), ref=record.ref, progress=progress)


def verify(ref: str, *, registry: RegistryArg = "registry", at: TimeArg = None) -> Chain:
    """The chain behind a version (a version, or a stage now or ``at``): weights, signature, review, canary."""
    # deferred (see _FLOWS)
    from regops import provenance
    from regops.workspace import open_storage

    opened = open_registry(registry)
    record = opened.get(ref, at=_moment(at))
    return provenance.chain(record, config=opened.config, storage=open_storage(opened), root=opened.root.parent)


def serving_export(*, registry: RegistryArg = "registry", format: Literal["json", "kserve"] = "json") -> str:
    """What serves traffic: per model, the prod version and the staging canary, with where their weights are.

    ``json``: the serving manifest (``serving.json``); ``kserve``: one KServe
    ``InferenceService`` per model, for a GitOps deployer to apply.
    """
    # deferred (see _FLOWS)
    from regops.serving import kserve_text, serving_text

    opened = open_registry(registry)
    return kserve_text(opened) if format == "kserve" else serving_text(opened)


def canary_plan(
    model: str, *, registry: RegistryArg = "registry", traffic_per_hour: float | None = None
) -> list[SamplePlan | str]:
    """What each of ``model``'s guardrails needs to decide: requests per arm and hours (:func:`regops.canary.plans`).

    ``traffic_per_hour`` (all of the model's requests) defaults to the canary config's ``traffic_per_hour``.
    """
    # deferred (see _FLOWS)
    from regops import canary

    opened = open_registry(registry)
    name = parse_ref(model).model
    config = canary.settings(opened.config.raw["canary"], opened.model(name).raw.get("canary"))
    return canary.plans(config, traffic_per_hour=traffic_per_hour)


def dataset_hash(path: str | Path) -> TreeHash:
    """The content hash of a file or folder (see ``regops.datasets``), cached by file stat."""
    # deferred (see _FLOWS)
    from regops.treehash import HashCache, hash_path

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
    # deferred (see _FLOWS)
    from regops import datasets, lifecycle
    from regops.treehash import HashCache
    from regops.workspace import identity

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
