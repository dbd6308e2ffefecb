"""Writes to the registry: promote, rollback, auto-promote, canary results (register: ``registration.py``).

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
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from regops import signing, store
from regops.errors import RegopsError
from regops.kinds import Stage
from regops.policy import bot_may_enter, needs_passed_canary, step_allowed
from regops.records import StageRule, VersionRecord, comparable
from regops.registry import HOLDER_STAGES, LOCK_FILE, Registry
from regops.weights import Artifact, ArtifactsMissingError, Storage

__all__ = [
    "LOCK_FILE",
    "FileChange",
    "LifecycleError",
    "Plan",
    "RegistryLockedError",
    "apply",
    "auto_promote",
    "locked",
    "promote",
    "record_canary",
    "rollback",
    "set_storage",
    "stamp",
]


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
    direction, with every guard metric within its tolerance, measured on the
    same eval dataset version (:func:`regops.records.comparable`); when dev is
    empty the candidate must beat prod instead (or nothing, for a first version). Candidates that
    do not beat dev stay where they are; ``Plan.notes`` says why. The comparison is recorded on
    the transition as ``evidence`` (metric by metric) and as one line in ``reason``. Idempotent.
    """
    now = now or datetime.now(UTC)
    plan = Plan()
    edits = _Edits()
    for name in [model] if model else registry.model_names():
        registry.forget()  # one model's folder held at a time: every version at once took 1.2 GB at 100k
        _auto_promote_model(registry, name, plan, edits, now=now, by=by)
    return edits.into(plan)


def _auto_promote_model(registry: Registry, name: str, plan: Plan, edits: _Edits, *, now: datetime, by: str) -> None:
    config = registry.model(name)
    holder = registry.holder(name, "dev")
    dev = registry.version(name, holder.version) if holder else None
    # With dev empty, a candidate must still beat what serves traffic.
    prod = registry.holder(name, "prod")
    baseline = dev or (registry.version(name, prod.version) if prod else None)
    candidates = [c for c in registry.versions(name) if c.stage == "candidate"]
    verdicts = [(c, _unsigned(registry, c) or _verdict(config.raw, c, baseline)) for c in candidates]
    winners = [(c, v) for c, v in verdicts if v.ok]
    plan.notes += [f"{c.ref} stays candidate: {v.why}" for c, v in verdicts if not v.ok]
    if not winners:
        return
    goal = config.raw["primary_metric"]["goal"]
    best, verdict = max(winners, key=lambda w: w[0].scores[config.primary_metric] * (1 if goal == "max" else -1))
    plan.notes += [f"{c.ref} stays candidate: {best.version} beats it" for c, _ in winners if c is not best]
    if dev is not None:
        plan.steps.append(
            _move(edits, dev, "archived", now=now, by=by, reason=f"auto: superseded in dev by {best.version}")
        )
    plan.steps.append(
        _move(edits, best, "dev", now=now, by=by, reason=f"auto: {verdict.why}", evidence=verdict.evidence)
    )


@dataclass(frozen=True)
class _Verdict:
    ok: bool
    why: str
    evidence: list[dict[str, Any]] = field(default_factory=list)


def _unsigned(registry: Registry, candidate: VersionRecord) -> _Verdict | None:
    """A candidate dev refuses for want of a signature (``signing.required_from: dev``; :func:`regops.signing.require`:
    the sync verifies the bundle itself before any ref moves, as for the approvals check, which holds no Hub token
    either)."""
    try:
        signing.require(candidate, stage="dev", policy=registry.config.signing, action="the auto-promotion to dev")
    except signing.SigningError as e:
        return _Verdict(False, str(e))
    return None


def _verdict(config: Mapping[str, Any], candidate: VersionRecord, baseline: VersionRecord | None) -> _Verdict:
    metric = config["primary_metric"]["name"]
    score = candidate.scores.get(metric)
    if score is None or not math.isfinite(score):
        return _Verdict(False, f"no finite {metric} score")
    if baseline is not None and not comparable(candidate, baseline):
        unnamed = "an unnamed eval set"
        return _Verdict(
            False,
            f"scores not comparable with {baseline.version}: measured on {candidate.eval_dataset or unnamed}, "
            f"{baseline.version} on {baseline.eval_dataset or unnamed}",
        )
    evidence = _evidence(config, candidate, baseline)
    failed = next((m for m in evidence if not m["held"]), None)
    return _Verdict(failed is None, _measure_text(failed or evidence[0]), evidence)


def _evidence(
    config: Mapping[str, Any], candidate: VersionRecord, baseline: VersionRecord | None
) -> list[dict[str, Any]]:
    """The comparison metric by metric (``files.Measure``): the primary metric, then every guard metric."""
    primary = config["primary_metric"]
    metrics = [(primary, "primary"), *((g, "guard") for g in config.get("guard_metrics", ()))]
    measures = []
    for metric, role in metrics:
        name = metric["name"]
        measure = {
            "metric": name,
            "role": role,
            "goal": metric["goal"],
            "candidate": candidate.scores.get(name),
            "baseline": baseline.version if baseline else None,
            "baseline_value": baseline.scores.get(name) if baseline else None,
            "tolerance": metric.get("tolerance", 0.0) if role == "guard" else None,
            "eval_dataset": candidate.eval_dataset,
        }
        measure = {k: v for k, v in measure.items() if v is not None}
        measures.append({**measure, "held": _held(measure)})
    return measures


def _held(m: Mapping[str, Any]) -> bool:
    value, base, goal = m.get("candidate"), m.get("baseline_value"), m["goal"]
    if m["role"] == "primary":
        return value is not None and (base is None or (value > base if goal == "max" else value < base))
    if base is None:
        return True  # nothing to regress from
    if value is None:
        return False
    tolerance = m["tolerance"]
    return bool(value >= base - tolerance if goal == "max" else value <= base + tolerance)


def _measure_text(m: Mapping[str, Any]) -> str:
    """One measure as the line ``reason`` and the notes carry, e.g. ``accuracy 0.95 > 0.94 (1.3.0)``."""
    name, value, base, version = m["metric"], m.get("candidate"), m.get("baseline_value"), m.get("baseline")
    if version is None:
        return f"{name} {value:g}, the first version to reach dev"
    if m["role"] == "guard":
        if value is None:
            return f"guard metric {name} is missing ({version})"
        return f"guard metric {name} {value:g} regresses past {base:g} by more than {m['tolerance']:g} ({version})"
    if base is None:
        return f"{name} {value:g}; {version} has no {name} ({version})"
    better = {("max", True): ">", ("max", False): "<=", ("min", True): "<", ("min", False): ">="}
    return f"{name} {value:g} {better[m['goal'], m['held']]} {base:g} ({version})"


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
    attestation: dict[str, str] | None = None,
) -> Plan:
    """Plan recording a canary verdict on the version in staging.

    With ``report`` (the per-guardrail numbers of ``regops canary check``) it is
    a check: ``checked_at`` is set and the verdict may change at the next check.
    Without, it is a verdict measured elsewhere, final: ``finished_at``.
    ``attestation``: where the verdict's signed attestation is (:mod:`regops.attest`).
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
    if attestation:
        update["attestation"] = attestation
    edits(record).update("canary", update)
    return edits.into(Plan(steps=[f"{record.ref}: canary {result}"]))


def set_storage(record: VersionRecord, location: dict[str, Any]) -> Plan:
    """Plan recording where a version's weights now are (after a restore or a move to cold storage)."""
    edits = _Edits()
    edits(record).update_path(("artifacts", "storage"), location)
    return edits.into(Plan(steps=[f"{record.ref}: weights now {location.get('tier', 'hot')}"]))


def stamp(
    record: VersionRecord, index: int, *, pr: int, approved_by: list[str], attestation: dict[str, str] | None = None
) -> Plan:
    """Plan recording the merged pull request and its approvers on a transition it made (and where its signed
    review attestation is)."""
    edits = _Edits()
    update: dict[str, Any] = {"pr": pr, "approved_by": approved_by}
    if attestation:
        update["attestation"] = attestation
    edits(record).update_path(("transitions", index), update)
    who = ", ".join(approved_by) or "nobody"
    return edits.into(Plan(steps=[f"{record.ref}: transition {index} approved in #{pr} by {who}"]))


# --- register ----------------------------------------------------------------------------------
