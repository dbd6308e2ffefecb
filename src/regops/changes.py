"""The rules a change must satisfy against its base branch, as pure functions returning problems.

``base`` maps paths under the repository root to their bytes on the base branch. Records are never
deleted, immutable fields never change, transitions are only appended and never backdated, and each
new transition is one its author may make (:func:`against_base`); :func:`added_transitions` lists what
a change adds. The rules over the registry alone are in ``policy.py``.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final

from regops import store
from regops.kinds import Problem
from regops.policy import CLOCK_SKEW, bot_may_enter, locate_all
from regops.records import VersionRecord
from regops.registry import MODEL_FILE, Registry

if TYPE_CHECKING:
    from regops.approvals import Move

__all__ = ["IMMUTABLE", "STAMPED", "added_transitions", "against_base", "pr_moves", "touched_models"]


# Fields of a version file fixed at registration (DESIGN §3); stage, canary, transitions (appended) and
# artifacts.storage (where the weights are) may change.
IMMUTABLE: Final = (
    "model",
    "version",
    "created_at",
    "created_by",
    "parent",
    "training",
    "hyperparameters",
    "evals",
    "artifacts.files",
)


# What stamping adds to a transition after its pull request merged.
STAMPED: Final = frozenset({"pr", "approved_by", "attestation"})


def _record_kind(relative: Path) -> str | None:
    """``version`` or ``dataset`` for a record file under registry/ (a path relative to it), else None."""
    parts = relative.parts
    if len(parts) != 3 or relative.suffix != ".yaml":
        return None
    if parts[0] == "models" and parts[2] != MODEL_FILE:
        return "version"
    return "dataset" if parts[0] == "datasets" else None


def touched_models(changed: Iterable[str], folder: str) -> set[str] | None:
    """The model folders a change touches (``changed``: paths relative to the repository; ``folder``: the
    registry's), so a pull request's check reads those folders and not every version in the registry; None
    when it touches anything else under the registry (regops.yaml, a dataset record, a stray file), whose
    rules reach every model: then every model is checked."""
    models: set[str] = set()
    prefix = f"{folder}/" if folder not in ("", ".") else ""
    for path in changed:
        parts = path.removeprefix(prefix).split("/") if path.startswith(prefix) else []
        if len(parts) < 3 or parts[0] != "models":
            return None
        models.add(parts[1])
    return models


def _get(data: dict[str, object], dotted: str) -> object:
    value: object = data
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def against_base(
    registry: Registry, base: dict[str, bytes], *, ref: str, changed: Collection[str] | None = None
) -> list[Problem]:
    """What a change does to the records on ``ref`` (the base branch): ``base`` maps paths under the
    repository root to their bytes there. Records are never deleted, immutable fields never change,
    transitions are only appended (stamping a merged PR's number and approvers is the one edit), and
    each new transition is one its author may make: bots only auto-promote to dev and archive.

    With ``changed`` (the paths git says differ from ``ref``), ``base`` need hold only those: every other
    file of the checked models is the same on ``ref`` (git compares content hashes), so it is read once,
    from the working tree.
    """
    root = registry.root.parent
    records = _base_records(registry, base)
    same = {} if changed is None else _unchanged_records(registry, changed)
    latest = _latest_steps(dict(sorted({**same, **records}.items())), ref=ref)  # by path, as the full check
    problems: list[Problem] = []
    for relative, (kind, before) in records.items():
        path = root / relative
        if not path.exists():
            problems.append(
                Problem(
                    relative,
                    message=f"deleted: {kind} records are never deleted (they are on {ref}); archive the version "
                    "instead — retention moves only its weights",
                )
            )
            continue
        after = store.parse_bytes(path.read_bytes(), relative).data
        if before is None or after is None:
            continue  # a file that does not parse is reported by the other rules
        problems += _changed_record(registry, path, kind, before, after, ref=ref, latest=latest.get(path.parent.name))
    for record in registry.iter_versions():
        relative = registry.display(record.path)  # relative to the repository, as record.path.relative_to(root)
        if relative not in records and relative not in same:
            steps = record.raw.get("transitions", [])
            problems += _new_transitions(
                registry, record.path, steps, start=0, latest=latest.get(record.path.parent.name)
            )
    return sorted(set(locate_all(registry, problems)))


def _base_records(registry: Registry, base: dict[str, bytes]) -> dict[str, tuple[str, dict[str, object] | None]]:
    """The version and dataset records on the base (path under the repository root -> kind, parsed data)."""
    folder = registry.root.relative_to(registry.root.parent)
    records: dict[str, tuple[str, dict[str, object] | None]] = {}
    for relative, raw in sorted(base.items()):
        kind = _record_kind(Path(relative).relative_to(folder)) if Path(relative).is_relative_to(folder) else None
        if kind is not None:
            records[relative] = (kind, store.parse_bytes(raw, relative).data)
    return records


def _unchanged_records(registry: Registry, changed: Collection[str]) -> dict[str, tuple[str, dict[str, object] | None]]:
    """The checked models' version files that ``ref`` has as they are here (path -> kind, data): as loaded, or
    parsed here when they did not load as a version (a duplicate claim, a schema problem)."""
    root = registry.root.parent
    records: dict[str, tuple[str, dict[str, object] | None]] = {}
    for entry in registry.entries():
        loaded = {str(record.path): record.raw for record in entry.versions.values()}
        folder = entry.folder.relative_to(root).as_posix()
        # What glob("*.yaml") lists (folders and links too), by name: a Path per file cost more than the rest.
        with os.scandir(entry.folder) as it:
            listed = sorted((e for e in it if e.name.endswith(".yaml") and not e.name.startswith(".")), key=_name)
        for found in listed:
            relative = f"{folder}/{found.name}"
            if found.name == MODEL_FILE or relative in changed or found.is_symlink():
                continue
            path = found.path
            data = loaded[path] if path in loaded else store.parse_bytes(Path(path).read_bytes(), relative).data
            records[relative] = ("version", data)
    return records


def _name(entry: os.DirEntry[str]) -> str:
    return entry.name


@dataclass(frozen=True)
class _Latest:
    """The last transition of a model already on the base: new ones may not be dated before it."""

    at: datetime
    what: str  # "1.2.0: candidate → dev"
    ref: str  # the base branch


def _latest_steps(records: dict[str, tuple[str, dict[str, object] | None]], *, ref: str) -> dict[str, _Latest]:
    """Per model folder, the latest transition any of its versions has on the base."""
    found: dict[str, tuple[datetime, str, dict[str, object]]] = {}  # per model: the latest so far, where, which
    for relative, (kind, data) in records.items():
        steps = data.get("transitions") if kind == "version" and data is not None else None
        model = posixpath.basename(posixpath.dirname(relative))  # Path(relative).parent.name, without a Path
        for step in steps if isinstance(steps, list) else ():
            at = _moment(step.get("at")) if isinstance(step, dict) else None
            if at is not None and (model not in found or at > found[model][0]):
                found[model] = (at, relative, step)
    return {
        model: _Latest(at, f"{Path(relative).stem}: {step.get('from')} → {step.get('to')}", ref)
        for model, (at, relative, step) in found.items()
    }


def _moment(text: object) -> datetime | None:
    """A timestamp as a file on the base holds it; None when it is not one with a time zone."""
    try:
        moment = datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        return None
    return moment if moment is not None and moment.tzinfo is not None else None


def added_transitions(registry: Registry, base: dict[str, bytes]) -> list[tuple[VersionRecord, dict[str, str]]]:
    """The transitions the working tree adds to the records on the base (``base``: path → bytes there)."""
    root = registry.root.parent
    added = []
    for record in registry.iter_versions():
        relative = record.path.relative_to(root).as_posix()
        before = store.parse_bytes(base[relative], relative).data if relative in base else None
        start = len((before or {}).get("transitions") or [])
        added += [(record, step) for step in record.raw.get("transitions", [])[start:]]
    return added


def _changed_record(
    registry: Registry,
    path: Path,
    kind: str,
    before: dict[str, object],
    after: dict[str, object],
    *,
    ref: str,
    latest: _Latest | None,
) -> list[Problem]:
    shown = registry.display(path)
    if kind == "dataset":
        if before != after:
            return [Problem(shown, message=f"dataset records are immutable; this one differs from {ref}")]
        return []
    problems = [
        Problem(shown, field=field, message=f"{field} is fixed at registration and differs from {ref}")
        for field in IMMUTABLE
        if _get(before, field) != _get(after, field)
    ]
    old = before.get("transitions") or []
    new = after.get("transitions") or []
    assert isinstance(old, list) and isinstance(new, list)
    for i, recorded in enumerate(old):
        if i >= len(new):
            problems.append(
                Problem(
                    shown,
                    field="transitions",
                    message=f"transitions are append-only: {len(old)} on {ref}, {len(new)} here",
                )
            )
            break
        if new[i] != recorded and not _stamped(recorded, new[i]):
            problems.append(
                Problem(
                    shown,
                    field=f"transitions[{i}]",
                    message=f"transitions are append-only: this one was recorded on {ref} and has been edited",
                )
            )
    return problems + _new_transitions(registry, path, new, start=len(old), latest=latest)


def _stamped(before: dict[str, object], after: dict[str, object]) -> bool:
    """``after`` is ``before`` with the merged PR's number and approvers added (nothing else changed)."""
    added = set(after) - set(before)
    return bool(added) and added <= STAMPED and all(after[k] == v for k, v in before.items())


def _new_transitions(
    registry: Registry, path: Path, transitions: list[dict[str, str]], *, start: int, latest: _Latest | None
) -> list[Problem]:
    problems = []
    shown = registry.display(path)
    for i, step in enumerate(transitions[start:], start=start):
        problems += _backdated(shown, i, step, latest)
        by, target = step.get("by", ""), step.get("to")
        if registry.config.is_bot(by) and not bot_may_enter(registry.config, target):  # type: ignore[arg-type]
            problems.append(
                Problem(
                    shown,
                    field=f"transitions[{i}].by",
                    message=f"{by} is a bot: bots add candidates, auto-promote to dev and archive; "
                    f"moving a version to {target} takes a person and an approved pull request",
                )
            )
        problems += [
            Problem(
                shown,
                field=f"transitions[{i}].{key}",
                message=f"a new transition carries no {key}: regops records it on main after the merge, "
                "from the reviews that counted (`regops pr stamp`)",
            )
            for key in sorted(STAMPED & set(step))
        ]
    return problems


def _backdated(shown: str, index: int, step: dict[str, str], latest: _Latest | None) -> list[Problem]:
    """A new transition dated before the model's last one on the base (beyond clock skew) rewrites history:
    ``resolve --at`` would then name a version that never held the stage at that moment."""
    at = _moment(step.get("at"))
    if latest is None or at is None or at >= latest.at - CLOCK_SKEW:
        return []
    message = (
        f"{step.get('from')} → {step.get('to')} is dated {at.isoformat()}, before the last transition of this "
        f"model already on {latest.ref} ({latest.what} at {latest.at.isoformat()}): history is only appended, "
        "never backdated; record the transition as of now (as `regops promote` and `regops rollback` do)"
    )
    return [Problem(shown, field=f"transitions[{index}].at", message=message)]


def pr_moves(head: Registry, base_files: dict[str, bytes], *, recorded: dict[str, bytes] | None = None) -> list[Move]:
    """The stage changes a pull request makes: transitions its head adds to the base's records.

    A move's canary result is the one recorded on the base branch (``recorded``:
    its files as they are now, default ``base_files``), never the pull request's
    own: a PR cannot pass its own canary, and a canary that failed on main after
    the PR was opened fails it.
    """
    # Imported here: the approval rules' classes (~8 ms) are the gate's, not `validate --base`'s, which imports this.
    from regops.approvals import Move

    root = head.root.parent
    on_base = base_files if recorded is None else recorded

    def canary(record: VersionRecord) -> str | None:
        relative = record.path.relative_to(root).as_posix()
        data = store.parse_bytes(on_base[relative], relative).data if relative in on_base else None
        return ((data or {}).get("canary") or {}).get("result")

    return [
        Move(record.model, record.version, step["from"], step["to"], canary(record), step.get("by"))  # type: ignore[arg-type]
        for record, step in added_transitions(head, base_files)
    ]
