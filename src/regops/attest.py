"""Signed in-toto attestations of a version's review and canary verdict, and the rule that checks them.

After a merge the stamp step (``regops pr stamp``) writes, for each transition the pull request made, a Statement
of the review (predicate type :data:`REVIEW`: the PR, its head commit, the approvers that counted, the policy in
force); ``regops canary check`` writes one of each final verdict (:data:`CANARY`: result, window, numbers,
provider). The subject of both is the version's signed manifest: each file's path and sha256, and the signature
bundle's. Each Statement is signed the way the weights are (:func:`regops.signing.sign_statement`: a DSSE envelope
in a Sigstore bundle) and stored in git beside the version file, at
``models/<model>/attestations/<version>/<name>.sigstore.json``; the version file records its path and sha256
(``transitions[i].attestation``, ``canary.attestation``). Only regops on main writes there: the approvals check
denies a pull request that adds or edits an attestation, or a transition's record of one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from regops import signing
from regops.kinds import Stage
from regops.lifecycle import FileChange
from regops.policy import needs_passed_canary
from regops.records import ConfigRecord, VersionRecord

__all__ = [
    "CANARY",
    "FOLDER",
    "REVIEW",
    "AttestationError",
    "canary_name",
    "canary_problem",
    "check",
    "entry",
    "review_problems",
    "signed",
    "statement",
]

REVIEW: Final = "https://regops.dev/attestation/review/v1"
CANARY: Final = "https://regops.dev/attestation/canary/v1"
FOLDER: Final = "attestations"
IN_TOTO: Final = "https://in-toto.io/Statement/v1"


class AttestationError(signing.SigningError):
    """An attestation is missing, altered, signed by nobody the policy trusts, or says other than the record."""


def subject(record: VersionRecord) -> list[dict[str, Any]]:
    """What an attestation is about: the version's files and its signature bundle, by path and sha256."""
    artifacts = record.raw["artifacts"]
    named = [*artifacts["files"], *([artifacts["signature"]] if artifacts.get("signature") else [])]
    return [{"name": f["path"], "digest": {"sha256": f["sha256"]}} for f in named]


def statement(record: VersionRecord, predicate_type: str, predicate: dict[str, Any]) -> dict[str, Any]:
    """The in-toto Statement (v1) of ``predicate`` about ``record``."""
    return {
        "_type": IN_TOTO,
        "subject": subject(record),
        "predicateType": predicate_type,
        "predicate": {"version": record.ref, **predicate},
    }


def entry(record: VersionRecord, name: str, data: bytes) -> tuple[Path, dict[str, str]]:
    """Where the signed attestation ``data`` named ``name`` goes, and what the version file records of it."""
    relative = f"{FOLDER}/{record.version}/{name}.sigstore.json"
    return record.path.parent / relative, {"path": relative, "sha256": hashlib.sha256(data).hexdigest()}


def canary_name(at: datetime) -> str:
    """The name of the attestation of a canary verdict reached at ``at`` (one per verdict)."""
    return f"canary-{at.astimezone(UTC):%Y%m%dt%H%M%S}"


def signed(
    record: VersionRecord, kind: str, predicate: dict[str, Any], *, name: str, signer: signing.Signer
) -> tuple[FileChange, dict[str, str]]:
    """The ``kind`` Statement of ``predicate`` about ``record``, signed: the new file (``name``), and its record."""
    data = signing.sign_statement(statement(record, kind, predicate), signer=signer)
    path, recorded = entry(record, name, data)
    return FileChange(path, None, data.decode()), recorded


# --- checking ----------------------------------------------------------------------------------------------------


def check(record: VersionRecord, *, config: ConfigRecord, move: tuple[Stage, Stage], root: Path, action: str) -> None:
    """The attestations a version moving (or pointed at after moving) ``move`` = (from, to) into a stage at or after
    ``signing.required_from`` must hold, before ``action``: every review attestation (:func:`review_problems`), and
    where the move needs a passed canary, the canary's (:func:`canary_problem`). Refused with
    :class:`AttestationError`."""
    if not signing.required(config.signing, move[1]):
        return
    problems = list(review_problems(record, policy=config.signing, root=root))
    if needs_passed_canary(config, *move):
        problems += filter(None, [canary_problem(record, policy=config.signing, root=root)])
    if problems:
        raise AttestationError(f"{'; '.join(problems)} ({action} is refused). Run regops verify {record.ref}")


def review_problems(record: VersionRecord, *, policy: dict[str, Any] | None, root: Path) -> Iterator[str]:
    """Why each transition into a stage at or after ``signing.required_from`` stamped from a pull request lacks a
    review attestation that holds: present, as recorded, trusted, about this version, naming its PR and approvers."""
    for index, step in enumerate(record.raw["transitions"]):
        target: Stage = step["to"]
        if step.get("pr") is None or not signing.required(policy, target):
            continue
        what = f"the review attestation of transitions[{index}] ({step['from']} -> {target}, PR #{step['pr']})"
        try:
            said = _read(record, step.get("attestation"), policy=policy or {}, root=root, what=what, kind=REVIEW)
        except signing.SigningError as e:
            yield str(e)
            continue
        expected = {"pr": step["pr"], "from": step["from"], "to": target, "approvers": step.get("approved_by") or []}
        if differs := _differences(said, expected):
            yield f"{record.ref}: {what} says {differs}, not what the version file records; refused"


def canary_problem(record: VersionRecord, *, policy: dict[str, Any] | None, root: Path) -> str | None:
    """Why ``record``'s canary attestation does not hold (present, as recorded, trusted, about this version and
    the verdict the version file records); None when it does."""
    canary = record.canary or {}
    what = "the canary attestation"
    try:
        said = _read(record, canary.get("attestation"), policy=policy or {}, root=root, what=what, kind=CANARY)
    except signing.SigningError as e:
        return str(e)
    if differs := _differences(said, {"result": canary.get("result")}):
        return f"{record.ref}: {what} says {differs}, not what the version file records; refused"
    return None


def _read(
    record: VersionRecord, recorded: dict[str, str] | None, *, policy: dict[str, Any], root: Path, what: str, kind: str
) -> dict[str, Any]:
    """The predicate of the attestation ``recorded`` names, checked: the file as recorded, signed by a trusted key or
    identity, a ``kind`` Statement about exactly this version's files."""
    if recorded is None:
        raise AttestationError(
            f"{record.ref}: {what} is not recorded; refused. regops writes one on main when given the signing key "
            "(pr stamp, canary check, canary record: --signing-key-env REGOPS_SIGNING_KEY)"
        )
    path = record.path.parent / recorded["path"]
    try:
        data = path.read_bytes()[: signing.MAX_BUNDLE + 1]
    except OSError as e:
        raise AttestationError(f"{record.ref}: {what} is missing ({path.name}: {e.strerror}); refused") from e
    if hashlib.sha256(data).hexdigest() != recorded["sha256"]:
        raise AttestationError(
            f"{record.ref}: {what} ({recorded['path']}) is not the file the version file records (sha256 "
            f"{hashlib.sha256(data).hexdigest()}, expected {recorded['sha256']}); refused"
        )
    said, _ = signing.verify_statement(data, policy=policy, root=root, ref=record.ref, what=what)
    about = (said.get("predicate") or {}).get("version")
    if said.get("predicateType") != kind or said.get("subject") != subject(record) or about != record.ref:
        raise AttestationError(
            f"{record.ref}: {what} is about another version or kind ({about}, {said.get('predicateType')}): "
            "it does not name this version's files and signature; refused"
        )
    return dict(said.get("predicate") or {})


def _differences(said: dict[str, Any], expected: dict[str, Any]) -> str:
    return "; ".join(
        f"{key} {said.get(key)!r} (recorded {value!r})" for key, value in expected.items() if said.get(key) != value
    )
