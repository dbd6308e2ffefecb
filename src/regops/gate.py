"""What a pull request changes, and the approvals each change takes: the approvals check's default deny.

Every path the pull request changes (git's view: adds, edits, deletes, type and
mode changes, anywhere in the repository) becomes a :class:`Need`, decided by
a rule read from the **base** branch — never from the pull request:

====================================================  =====================================================
change                                                allowed when
====================================================  =====================================================
a new version file, a plain ``candidate``             always (serves nothing); a new dataset version too
a transition appended to a version                    the target stage's approvals (owners or approvers)
any other edit of a recorded version                  the admins (a repair: regops' jobs on main write it)
``models/<m>/model.yaml`` edited                      the model's owners, as many as the strictest stage
a new model; ``regops.yaml``; ``.github/**``,         the admins (``admins:``), as many as the strictest
``CODEOWNERS``, ``schemas/**``, ``serving.json``,     stage
``protected_paths``; any path no rule covers
``unjudged_paths`` (outside ``registry/``)            always: ordinary code review only
deletions, symlinks, submodules, odd files under      never
``registry/``; a transition naming someone else;
an attestation (``models/<m>/attestations/**``)
====================================================  =====================================================

:func:`needs` is pure over loaded data; :func:`regops.approvals.evaluate` then
decides which reviews count for each need.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, cast

from regops import store
from regops.approvals import ADMINS, Move, Need
from regops.changes import STAMPED
from regops.kinds import Change, Stage
from regops.policy import attestation_path, needs_passed_canary
from regops.registry import CONFIG_FILE, MODEL_FILE, Registry

__all__ = ["ADMIN_PATHS", "needs"]

# Paths outside registry/ that steer the gate, the workflows or what serves traffic: the admins approve them.
ADMIN_PATHS: Final = (".github/**", "CODEOWNERS", "docs/CODEOWNERS", "schemas/**", "serving.json")
REGULAR_FILE: Final = "100644"
LINKS: Final = {"120000": "a symlink", "160000": "a submodule"}
# What a transition may change besides itself: the stage, and the canary record as promote writes it.
_MOVED: Final = {"transitions", "stage", "canary"}


@dataclass(frozen=True)
class _Facts:
    base: Registry
    folder: str  # the registry folder, relative to the repository root ("registry")
    base_files: Mapping[str, bytes]  # the base commit's registry files (path from the root -> bytes)
    head_files: Mapping[str, bytes]  # the head commit's
    recorded: Mapping[str, bytes]  # the base branch as it is now: canary results recorded since count
    author: str
    # Who moved to staging each version the pull request takes to prod: a bot's PR (the canary's) may name them.
    stagers: set[str] = field(default_factory=set)

    def data(self, files: Mapping[str, bytes], path: str) -> dict[str, Any] | None:
        return store.parse_bytes(files[path], path).data if path in files else None


def needs(
    changes: Sequence[Change],
    *,
    base: Registry,
    folder: str,
    base_files: Mapping[str, bytes],
    head_files: Mapping[str, bytes],
    recorded: Mapping[str, bytes] | None = None,
    author: str,
) -> list[Need]:
    """The needs of every change, the admins' ones gathered into one (they take the same reviews)."""
    facts = _Facts(base, folder, base_files, head_files, base_files if recorded is None else recorded, author)
    facts.stagers.update(_stagers(facts, changes))
    found: list[Need] = []
    admin: list[str] = []
    for change in sorted(changes):
        for need in _judge(facts, change):
            if need.role == ADMINS and not need.denied:
                admin += need.paths
            else:
                found.append(need)
    if admin:
        found.append(_admins(base, tuple(admin)))
    return found


def _admins(base: Registry, paths: tuple[str, ...]) -> Need:
    more = f" (+{len(paths) - 1} more)" if len(paths) > 1 else ""
    first = paths[0].split(": ", 1)[0]
    return Need(f"{first}{more}", base.config.strictest, base.config.admins, ADMINS, paths)


def _admin(path: str, why: str) -> Need:
    """A change only the admins may approve (gathered by :func:`needs`)."""
    return Need(path, 0, role=ADMINS, paths=(f"{path}: {why}",))


def _denied(path: str, why: str) -> Need:
    return Need(path, 0, paths=(path,), denied=why)


def _judge(facts: _Facts, change: Change) -> Iterator[Need]:
    prefix = f"{facts.folder}/"
    if change.path.startswith(prefix):
        yield from _registry_change(facts, change, change.path[len(prefix) :])
    elif _matches(change.path, (*ADMIN_PATHS, *facts.base.config.protected_paths)):
        yield _admin(change.path, "protected (regops.yaml, .github/, schemas/, protected_paths)")
    elif not _matches(change.path, facts.base.config.unjudged_paths):
        yield _admin(change.path, "no rule of regops.yaml covers it (list it under unjudged_paths if none should)")


def _matches(path: str, patterns: Sequence[str]) -> bool:
    """``dir/**`` matches everything under ``dir``; other patterns are fnmatch globs over the whole path."""
    return any(
        path.startswith(pattern[:-2]) if pattern.endswith("/**") else fnmatch.fnmatchcase(path, pattern)
        for pattern in patterns
    )


def _registry_change(facts: _Facts, change: Change, relative: str) -> Iterator[Need]:
    path = change.path
    if change.status == "D":
        yield _denied(path, "deleted: registry files are never deleted (archive a version; retention moves weights)")
        return
    if change.new_mode != REGULAR_FILE:
        kind = LINKS.get(change.new_mode, f"not a plain file (git mode {change.new_mode})")
        yield _denied(path, f"{kind}: never allowed under {facts.folder}/")
        return
    parts = relative.split("/")
    if attestation_path(relative):
        yield _denied(path, "a signed attestation: only regops on main writes one (the stamp, the canary check)")
    elif parts == [CONFIG_FILE]:
        yield _admin(path, "the registry's policy")
    elif len(parts) == 3 and parts[0] == "models" and parts[2] == MODEL_FILE:
        yield _model_file(facts, path, parts[1])
    elif len(parts) == 3 and parts[0] == "models" and parts[2].endswith(".yaml"):
        yield from _version_file(facts, path, parts[1])
    elif len(parts) == 3 and parts[0] == "datasets" and parts[2].endswith(".yaml"):
        if change.status != "A":
            yield _denied(path, "dataset records are immutable once registered")
    else:
        yield _denied(path, f"not part of the registry layout ({facts.folder}/models/<model>/…, datasets/…)")


def _model_file(facts: _Facts, path: str, model: str) -> Need:
    if model not in facts.base.model_names():
        return _admin(path, f"a new model ({model})")
    owners = tuple(facts.base.model(model).raw.get("owners", ()))
    return Need(path, facts.base.config.strictest, owners, f"an owner of {model}", (path,))


def _version_file(facts: _Facts, path: str, model: str) -> Iterator[Need]:
    before, after = facts.data(facts.base_files, path), facts.data(facts.head_files, path)
    if after is None:
        yield _denied(path, "does not parse: run regops validate")
        return
    old = (before or {}).get("transitions") or []
    steps = list((after.get("transitions") or [])[len(old) :])
    if before is not None and (edited := _edited(facts, model, before, after, steps)):
        yield _admin(path, f"{', '.join(edited)} changed: regops' jobs on main write these, not a pull request")
    if before is None and not steps and (after.get("stage") != "candidate" or after.get("canary") is not None):
        yield _admin(path, "a new version that is not a plain candidate")
    if before is None and steps and _canary_after(facts, model, None, steps) != after.get("canary"):
        yield _admin(path, "canary set on a new version")
    for index, step in enumerate(steps, start=len(old)):
        yield _move_need(facts, path, after, index, step)


def _edited(
    facts: _Facts, model: str, before: dict[str, Any], after: dict[str, Any], steps: list[dict[str, Any]]
) -> list[str]:
    """The fields an edit changed that its appended transitions do not account for."""
    edited = sorted(k for k in (set(before) | set(after)) - _MOVED if before.get(k) != after.get(k))
    expected_stage = steps[-1].get("to") if steps else before.get("stage")
    if after.get("stage") != expected_stage:
        edited.append("stage")
    if after.get("canary") != _canary_after(facts, model, before.get("canary"), steps):
        edited.append("canary")
    old = before.get("transitions") or []
    if (after.get("transitions") or [])[: len(old)] != old:
        edited.append("transitions (recorded ones)")
    return edited


def _canary_after(
    facts: _Facts, model: str, canary: dict[str, Any] | None, steps: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """The canary record as ``regops promote`` leaves it after ``steps``: started on entering staging (at the
    model's traffic share), aborted on leaving it before a verdict; nothing else."""
    for step in steps:
        if step.get("to") == "staging":
            traffic = facts.base.canary_traffic(model) if model in facts.base.model_names() else None
            canary = {"traffic_percent": traffic, "started_at": step.get("at"), "result": "pending"}
        elif canary is not None and canary.get("result") in ("pending", "inconclusive"):
            canary = {**canary, "result": "aborted", "finished_at": step.get("at")}
    return canary


def _move_need(facts: _Facts, path: str, after: dict[str, Any], index: int, step: dict[str, Any]) -> Need:
    base, model, version = facts.base, str(after.get("model")), str(after.get("version"))
    source, target = step.get("from"), step.get("to")
    recorded = facts.data(facts.recorded, path) or {}
    canary = (recorded.get("canary") or {}).get("result")
    move = Move(model, version, cast("Stage", source), cast("Stage", target), canary, step.get("by"))
    rule = base.config.stages.get(target)  # type: ignore[arg-type]
    owners = tuple(base.model(model).raw.get("owners", ())) if model in base.model_names() else ()
    return Need(
        f"{move.ref} → {target}",
        rule.approvals if rule else 0,
        (*owners, *(rule.approvers if rule else ())),
        f"an owner of {model} nor an approver for {target}",
        (path,),
        move,
        needs_passed_canary(base.config, source, target),  # type: ignore[arg-type]
        _named(facts, path, index, step),
    )


def _named(facts: _Facts, path: str, index: int, step: dict[str, Any]) -> str:
    """Why the transition may not name who it names ("" when it may): a pull request records its author. A bot's
    pull request (the canary's) may name a bot for what bots may do, or the person who moved to staging the
    version it takes to prod (for that move and the archiving of the prod it replaces)."""
    by, author, config = step.get("by"), facts.author, facts.base.config
    if STAMPED & set(step):
        return (
            f"transitions[{index}] carries {', '.join(sorted(STAMPED & set(step)))}: only the stamp on main writes it"
        )
    if by == author:
        return ""
    if config.is_bot(author) and isinstance(by, str):
        if config.is_bot(by) and step.get("to") not in ("staging", "prod"):
            return ""
        if by in facts.stagers:
            return ""
    return (
        f"transitions[{index}].by is {by}, but the pull request is {author}'s: a transition records who made "
        f"it (run regops with --by {author})"
    )


def _stagers(facts: _Facts, changes: Sequence[Change]) -> set[str]:
    """Who moved to staging (as the base records it) each version the pull request takes from staging to prod."""
    found = set()
    for change in changes:
        before, after = facts.data(facts.base_files, change.path), facts.data(facts.head_files, change.path)
        if not (before and after and change.path.endswith(".yaml")):
            continue
        old = before.get("transitions") or []
        if not any(s.get("to") == "prod" for s in (after.get("transitions") or [])[len(old) :]):
            continue
        staged = [s.get("by") for s in old if s.get("to") == "staging"]
        found |= {staged[-1]} if staged and isinstance(staged[-1], str) else set()
    return found
