"""The chain behind a version (``regops verify``): weights ← signature ← review ← canary, each link with who and when.

* weights: the stored files are the ones the version file records (paths, sizes, sha256);
* signature: a signature regops.yaml's ``signing:`` trusts, over exactly those files (:func:`regops.signing.check`);
* review: the transition that put the version in its stage, stamped from the pull request that approved it, and
  (from ``signing.required_from`` on) the signed review attestation of every such transition (:mod:`regops.attest`);
* canary: for a version that reached prod from staging where the policy asks for one, the passed canary (from
  ``signing.required_from`` on, its signed attestation naming this version).

Every link is checked; a broken one is reported with why, and the others are still checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from regops import attest, signing
from regops.errors import RegopsError
from regops.policy import needs_passed_canary
from regops.records import ConfigRecord, Step, VersionRecord
from regops.signing import check
from regops.weights import Artifact, Storage

__all__ = ["Chain", "Link", "chain"]


@dataclass(frozen=True)
class Link:
    name: Literal["weights", "signature", "review", "canary"]
    ok: bool
    who: str | None
    when: str | None
    detail: str


@dataclass(frozen=True)
class Chain:
    version: str
    stage: str
    links: tuple[Link, ...]

    @property
    def ok(self) -> bool:
        return all(link.ok for link in self.links)


def chain(record: VersionRecord, *, config: ConfigRecord, storage: Storage, root: Path) -> Chain:
    """Check every link of ``record``'s chain; ``root`` is the repository the signing keys are read from."""
    links = (
        _weights(record, storage),
        _signature(record, config, storage, root),
        _review(record, config, root),
        _canary(record, config, root),
    )
    return Chain(record.ref, record.stage, links)


def _weights(record: VersionRecord, storage: Storage) -> Link:
    artifacts = [Artifact.from_record(f) for f in record.raw["artifacts"]["files"]]
    where = storage.describe(record.storage)
    try:
        missing = storage.missing(artifacts, record.storage)
    except RegopsError as e:
        return Link("weights", False, record.created_by, _iso(record.raw["created_at"]), f"{where}: {e}")
    detail = (
        f"{len(artifacts)} files in {where}, as recorded"
        if not missing
        else f"{', '.join(a.path for a in missing)} not in {where} with the recorded size and sha256"
    )
    return Link("weights", not missing, record.created_by, _iso(record.raw["created_at"]), detail)


def _signature(record: VersionRecord, config: ConfigRecord, storage: Storage, root: Path) -> Link:
    policy = config.signing or {}
    try:
        signed = check(record, stage=record.stage, policy=policy, storage=storage, root=root, action="the chain")
    except RegopsError as e:
        return Link("signature", False, None, None, str(e))
    if signed is None:
        return Link("signature", False, None, None, "no signature (artifacts.signature): nobody vouches for the files")
    return Link("signature", True, signed.describe(), _iso(record.raw["created_at"]), f"{signed.method} signature")


def _entering(record: VersionRecord) -> Step | None:
    return record.steps[-1] if record.steps else None


def _review(record: VersionRecord, config: ConfigRecord, root: Path) -> Link:
    link = _recorded_review(record, config)
    problems = list(attest.review_problems(record, policy=config.signing, root=root)) if link.ok else []
    if problems:
        return Link("review", False, link.who, link.when, "; ".join(problems))
    return link


def _recorded_review(record: VersionRecord, config: ConfigRecord) -> Link:
    step = _entering(record)
    if step is None:
        return Link("review", True, None, None, "a candidate: no stage entered, nothing to review")
    rule = config.stages.get(step.to)
    needed = rule.approvals if rule is not None else 0
    when = step.at.isoformat()
    if needed == 0:
        return Link("review", True, step.by, when, f"{step.from_} -> {step.to} needs no approval ({step.reason or ''})")
    if step.pr is None or len(step.approved_by) < needed:
        detail = f"{step.from_} -> {step.to} needs {needed} approval(s); the transition records none stamped from a PR"
        return Link("review", False, step.by, when, detail)
    return Link("review", True, ", ".join(step.approved_by), when, f"PR #{step.pr}: {step.from_} -> {step.to}")


def _canary(record: VersionRecord, config: ConfigRecord, root: Path) -> Link:
    step = _entering(record)
    needed = step is not None and needs_passed_canary(config, step.from_, step.to)
    link = _recorded_canary(record, needed=needed)
    signed = needed and link.ok and signing.required(config.signing, record.stage)
    problem = attest.canary_problem(record, policy=config.signing, root=root) if signed else None
    return Link("canary", False, link.who, link.when, problem) if problem else link


def _recorded_canary(record: VersionRecord, *, needed: bool) -> Link:
    canary: dict[str, Any] = record.canary or {}
    result = canary.get("result")
    when = _iso(canary.get("finished_at") or canary.get("checked_at"))
    if not needed:
        return Link(
            "canary", True, None, when, f"not required for {record.stage}" + (f" (was {result})" if result else "")
        )
    ok = result == "passed"
    return Link("canary", ok, None, when, f"{result or 'no canary recorded'}: {canary.get('summary') or ''}".strip())


def _iso(value: Any) -> str | None:
    return value if value is None or isinstance(value, str) else value.isoformat()
