"""The rules a registry must satisfy, as pure functions returning problems.

Each rule takes the loaded :class:`~regops.registry.Registry` and yields
:class:`~regops.files.Problem` values naming the file and the field; the line
and column are filled in afterwards, only for files that have problems
(:func:`locate_all`). :func:`check` runs every rule and returns everything,
sorted. The stage machine lives here too (:func:`step_allowed`).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from pathlib import Path
from typing import Final

from regops import store
from regops.kinds import STAGES, Problem, Stage, release
from regops.registry import (
    CONFIG_FILE,
    HOLDER_STAGES,
    LOCK_FILE,
    MODEL_FILE,
    ConfigRecord,
    ModelEntry,
    Registry,
    VersionRecord,
)
from regops.retention import archive_repo, hub_repo, local_stores, overlap
from regops.schema import field_parts

__all__ = [
    "CLOCK_SKEW",
    "IMMUTABLE",
    "RULES",
    "added_transitions",
    "against_base",
    "bot_may_enter",
    "check",
    "locate_all",
    "needs_passed_canary",
    "refused_token_env",
    "schema_comment",
    "step_allowed",
    "token_env_problem",
]

# How far in the future a timestamp may be before it is an error: clocks differ.
CLOCK_SKEW: Final = timedelta(minutes=5)
SCHEMA_FILES: Final = {
    "version": "model-version.schema.json",
    "model": "model.schema.json",
    "dataset": "dataset-version.schema.json",
    "config": "regops.schema.json",
}
# The stage machine. archived -> prod is legal only for a former prod (a rollback).
_FORWARD: Final[set[tuple[Stage, Stage]]] = {
    ("candidate", "dev"),
    ("dev", "staging"),
    ("staging", "prod"),
    ("archived", "prod"),
}
_STEPS: Final[frozenset[tuple[Stage, Stage]]] = frozenset(
    _FORWARD | {(stage, "archived") for stage in STAGES if stage != "archived"}
)

Rule = Callable[[Registry, datetime], Iterable[Problem]]


def step_allowed(source: Stage, target: Stage, *, was_prod: bool) -> bool:
    """Whether the stage machine allows ``source -> target`` for a version."""
    if (source, target) == ("archived", "prod"):
        return was_prod
    return (source, target) in _STEPS


def schema_comment(kind: str, depth: int) -> str:
    """The first line every registry file carries, so editors check it as you type."""
    return f"# yaml-language-server: $schema={'../' * depth}schemas/{SCHEMA_FILES[kind]}"


def check(registry: Registry, *, now: datetime | None = None) -> list[Problem]:
    """Every problem in the registry: load problems and every rule, located and sorted."""
    moment = now or datetime.now(UTC)
    problems = registry.load_problems()
    for rule in RULES:
        problems += rule(registry, moment)
    return sorted(set(locate_all(registry, problems)))


def locate_all(registry: Registry, problems: Iterable[Problem]) -> Iterator[Problem]:
    """Fill in line and column, parsing only the files that have problems."""
    for problem in problems:
        if problem.line or not problem.field:
            yield problem
            continue
        line, col = store.locate(registry.root.parent / problem.path, field_parts(problem.field))
        yield Problem(problem.path, line, col, problem.field, problem.message)


# --- file rules ---------------------------------------------------------------------


LAYOUT: Final = "models/<model>/<version>.yaml, models/<model>/model.yaml, datasets/<dataset>/<version>.yaml"


def layout(registry: Registry, _: datetime) -> Iterator[Problem]:
    """Only regular files and folders, none linked or hidden; .yaml files in known places, nothing else;
    every model folder has model.yaml. (The loader reads no link, so what it skips is reported here.)"""
    for path, entry in _walk(registry.root):
        message = _misplaced(path.relative_to(registry.root), entry)
        if message is not None:
            yield Problem(registry.display(path), message=message)
    for model in registry.entries():
        if model.config is None and not (model.folder / MODEL_FILE).exists():
            yield Problem(
                registry.display(model.folder / MODEL_FILE),
                message=f"model {model.name} has no model.yaml (owners, primary metric); create it",
            )


def _walk(folder: Path) -> Iterator[tuple[Path, os.DirEntry[str]]]:
    """Everything under ``folder``, by name; never into a link or a hidden folder."""
    with os.scandir(folder) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        yield Path(entry.path), entry
        if entry.is_dir(follow_symlinks=False) and not entry.name.startswith("."):
            yield from _walk(Path(entry.path))


def _misplaced(relative: Path, entry: os.DirEntry[str]) -> str | None:
    """What is wrong with one thing in the registry folder; None when it belongs there."""
    if entry.is_symlink():
        return (
            f"is a symbolic link (to {Path(entry.path).readlink()}): the registry holds only regular files and "
            "folders, and regops never follows a link; put the files themselves here, or remove the link"
        )
    lock = relative == Path(LOCK_FILE) and entry.is_file(follow_symlinks=False)
    if entry.name.startswith(".") and not lock:
        return "is hidden: the registry holds no hidden files or folders; remove it"
    if lock or entry.is_dir(follow_symlinks=False):
        return None
    if not entry.is_file(follow_symlinks=False):
        return "is not a regular file or folder (a pipe, socket or device); remove it"
    if entry.name.endswith(".yml"):
        return "use the .yaml extension: regops reads only *.yaml files"
    parts = relative.parts
    known = parts == (CONFIG_FILE,) or (len(parts) == 3 and parts[0] in ("models", "datasets"))
    return None if known and entry.name.endswith(".yaml") else f"not part of the registry layout: {LAYOUT}"


def schema_comments(registry: Registry, _: datetime) -> Iterator[Problem]:
    files: list[tuple[Path, str, int]] = [(registry.root / CONFIG_FILE, "config", 1)]
    for entry in registry.entries():
        files += [(r.path, "version", 3) for r in entry.versions.values()]
        if entry.config is not None:
            files.append((entry.config.path, "model", 3))
    files += [(d.path, "dataset", 3) for d in registry.datasets().values()]
    for path, kind, depth in files:
        expected = schema_comment(kind, depth)
        with path.open(encoding="utf-8-sig", errors="replace") as handle:
            first = handle.readline().rstrip("\r\n")
        if first != expected:
            yield Problem(registry.display(path), 1, 1, message=f"the first line must be `{expected}`")


def names(registry: Registry, _: datetime) -> Iterator[Problem]:
    """The folder and file name say what the file holds; the file must agree."""
    for entry in registry.entries():
        if entry.config is not None and entry.config.name != entry.name:
            path = entry.folder / MODEL_FILE
            yield _mismatch(registry, path, "name", value=entry.config.name, expected=entry.name, where="folder")
        for record in entry.versions.values():
            stem = record.path.stem
            if record.model != entry.name:
                yield _mismatch(registry, record.path, "model", value=record.model, expected=entry.name, where="folder")
            if record.version != stem:
                yield _mismatch(
                    registry, record.path, "version", value=record.version, expected=stem, where="file name"
                )
        for path, version in entry.duplicates:
            first = next(r for r in entry.versions.values() if release(r.version) == release(version))
            for here, claim, other in ((path, version, first.path), (first.path, first.version, path)):
                yield Problem(
                    registry.display(here),
                    field="version",
                    message=f"{entry.name}@{claim} is also claimed by {registry.display(other)}",
                )
    for dataset in registry.datasets().values():
        folder, stem = dataset.path.parent.name, dataset.path.stem
        if dataset.name != folder:
            yield _mismatch(registry, dataset.path, "name", value=dataset.name, expected=folder, where="folder")
        if dataset.version != stem:
            yield _mismatch(registry, dataset.path, "version", value=dataset.version, expected=stem, where="file name")


def _mismatch(registry: Registry, path: Path, field: str, *, value: str, expected: str, where: str) -> Problem:
    return Problem(registry.display(path), field=field, message=f"{value!r} does not match the {where} {expected!r}")


def timestamps(registry: Registry, now: datetime) -> Iterator[Problem]:
    """No timestamp in the future (beyond a few minutes of clock skew)."""
    limit = now + CLOCK_SKEW
    for record in registry.iter_versions():
        stamps: list[tuple[str, datetime]] = [("created_at", record.created_at)]
        stamps += [(f"transitions[{i}].at", t.at) for i, t in enumerate(record.steps)]
        canary = record.canary or {}
        stamps += [
            (f"canary.{k}", datetime.fromisoformat(canary[k])) for k in ("started_at", "finished_at") if k in canary
        ]
        yield from _future(registry, record.path, stamps, limit)
    for dataset in registry.datasets().values():
        yield from _future(registry, dataset.path, [("created_at", dataset.created_at)], limit)


def _future(registry: Registry, path: Path, stamps: list[tuple[str, datetime]], limit: datetime) -> Iterator[Problem]:
    for field, moment in stamps:
        if moment > limit:
            yield Problem(registry.display(path), field=field, message=f"{moment.isoformat()} is in the future")


def scores(registry: Registry, _: datetime) -> Iterator[Problem]:
    """Scores are finite and include the model's primary metric."""
    for entry in registry.entries():
        primary = entry.config.primary_metric if entry.config else None
        for record in entry.versions.values():
            values = record.scores
            for name, value in values.items():
                if not math.isfinite(value):
                    yield Problem(
                        registry.display(record.path),
                        field=f"evals.scores.{name}",
                        message=f"{value} is not a finite number",
                    )
            if primary is not None and primary not in values:
                yield Problem(
                    registry.display(record.path),
                    field="evals.scores",
                    message=f"the primary metric {primary!r} (model.yaml) is missing from the scores",
                )


def artifact_paths(registry: Registry, _: datetime) -> Iterator[Problem]:
    for record in registry.iter_versions():
        seen: set[str] = set()
        for i, path in enumerate(record.artifact_paths):
            if path in seen:
                yield Problem(registry.display(record.path), field=f"artifacts.files[{i}].path", message="listed twice")
            seen.add(path)


# --- cross-file rules ----------------------------------------------------------------


def parents(registry: Registry, _: datetime) -> Iterator[Problem]:
    """Parents exist, and following them never comes back (no cycle)."""
    entries = {entry.name: entry for entry in registry.entries()}
    edges: dict[str, str] = {}
    for entry in entries.values():
        for record in entry.versions.values():
            parent = record.parent
            if parent is None or parent.startswith("hf://"):
                continue
            model, _sep, version = parent.partition("@")
            owner = entries.get(model)
            if owner is None or (version not in owner.versions and version not in owner.unreadable):
                message = f"parent {parent} is not in the registry"
                yield Problem(registry.display(record.path), field="parent", message=message)
            else:
                edges[record.ref] = parent
    for ref in sorted(_cyclic(edges)):
        model, _sep, version = ref.partition("@")
        message = f"lineage cycle: following parents from {ref} comes back to it"
        yield Problem(registry.display(entries[model].versions[version].path), field="parent", message=message)


def _cyclic(edges: dict[str, str]) -> set[str]:
    """Nodes on a cycle of a graph where each node has at most one parent; linear time."""
    state: dict[str, int] = {}  # 1: on the current walk, 2: done
    on_cycle: set[str] = set()
    for start in edges:
        walk: list[str] = []
        node: str | None = start
        while node is not None and node not in state:
            state[node] = 1
            walk.append(node)
            node = edges.get(node)
        if node is not None and state[node] == 1:
            on_cycle.update(walk[walk.index(node) :])
        for visited in walk:
            state[visited] = 2
    return on_cycle


def datasets(registry: Registry, _: datetime) -> Iterator[Problem]:
    """Dataset references resolve, and the recorded hash is the dataset's."""
    for record in registry.iter_versions():
        found = registry.dataset(record.dataset)
        shown = registry.display(record.path)
        if found is None:
            yield Problem(shown, field="training.dataset", message=_no_dataset(registry, record.dataset))
        elif found.hash != record.dataset_hash:
            yield Problem(
                shown,
                field="training.dataset_hash",
                message=f"{record.dataset_hash} differs from {found.hash} recorded in {registry.display(found.path)}",
            )
        eval_ref = record.eval_dataset
        if eval_ref is not None and registry.dataset(eval_ref) is None:
            yield Problem(shown, field="evals.dataset", message=_no_dataset(registry, eval_ref))


def _no_dataset(registry: Registry, ref: str) -> str:
    name, _, version = ref.partition("@")
    expected = registry.display(registry.root / "datasets" / name / f"{version}.yaml")
    return f"dataset {ref} does not resolve: {expected} does not exist (register it with `regops dataset register`)"


def single_holders(registry: Registry, _: datetime) -> Iterator[Problem]:
    """At most one version of a model in each of dev, staging and prod."""
    for entry in registry.entries():
        for stage in HOLDER_STAGES:
            holders = [r for r in entry.ordered if r.stage == stage]
            if len(holders) < 2:
                continue
            listed = ", ".join(r.version for r in holders)
            for record in holders:
                yield Problem(
                    registry.display(record.path),
                    field="stage",
                    message=f"{len(holders)} versions of {entry.name} are in {stage} ({listed}); at most one may be",
                )


def stage_history(registry: Registry, _: datetime) -> Iterator[Problem]:
    """Never two versions of a model in one of dev, staging and prod at the same moment of its history: the spans
    the transitions of all its versions give (what ``resolve --at`` reads) do not overlap. O(n log n) per model."""
    for entry in registry.entries():
        held: dict[Stage, list[_Span]] = {stage: [] for stage in HOLDER_STAGES}
        for version, stage, start, end in entry.spans():
            if stage in held and (end is None or end > start):  # an empty span (time out of order) holds nothing
                held[stage].append((start, _OPEN if end is None else end, version))
        for stage, spans in held.items():
            spans.sort(key=itemgetter(0))  # stable: at one start, SemVer order
            for earlier, later in _overlaps(spans):
                yield from _overlap_problems(registry, entry, stage, earlier, later)


# A span a version held a stage: (start, end, version); a span still open ends at _OPEN.
_Span = tuple[datetime, datetime, str]
_OPEN: Final = datetime.max.replace(tzinfo=UTC)


def _overlaps(spans: list[_Span]) -> Iterator[tuple[_Span, _Span]]:
    """Each span (sorted by start) that begins while another version's earlier one still holds, with the one that
    holds longest: a sweep, linear after the sort. Two spans still open are left to :func:`single_holders`."""
    holding: _Span | None = None
    for span in spans:
        start, end, version = span
        if holding is not None and start < holding[1] and version != holding[2] and min(end, holding[1]) < _OPEN:
            yield holding, span
        if holding is None or end > holding[1]:
            holding = span


def _overlap_problems(
    registry: Registry, entry: ModelEntry, stage: Stage, earlier: _Span, later: _Span
) -> Iterator[Problem]:
    """The overlap, on the transition that entered the stage in one file and the one that left it in the other."""
    until = min(earlier[1], later[1])
    message = (
        f"{entry.name} {earlier[2]} and {later[2]} both held {stage} from {later[0].isoformat()} "
        f"until {until.isoformat()}: a stage has one holder at a time (the old one leaves it as the new one "
        "enters, as `regops promote` records it); a transition is backdated or a handover is missing"
    )
    for version, moment, entering in ((later[2], later[0], True), (earlier[2], earlier[1], False)):
        record = entry.versions[version]
        index = next(
            (i for i, t in enumerate(record.steps) if t.at == moment and (t.to if entering else t.from_) == stage),
            None,
        )
        field = f"transitions[{index}]" if index is not None else "stage"
        yield Problem(registry.display(record.path), field=field, message=message)


def transitions(registry: Registry, _: datetime) -> Iterator[Problem]:
    """Transitions chain, keep time order, follow the stage machine, and end at ``stage``."""
    allowed: dict[str, set[Stage]] = {stage: set(policy.from_) for stage, policy in registry.config.stages.items()}
    for record in registry.iter_versions():
        yield from _transitions(registry, record, allowed)


def _transitions(registry: Registry, record: VersionRecord, allowed: dict[str, set[Stage]]) -> Iterator[Problem]:
    shown = registry.display(record.path)
    current: Stage = "candidate"
    previous = record.created_at
    was_prod = False
    for i, step in enumerate(record.steps):
        field = f"transitions[{i}]"
        if step.from_ != current:
            yield Problem(shown, field=f"{field}.from", message=f"is {step.from_}, but the version was {current} then")
        if step.at < previous:
            yield Problem(
                shown,
                field=f"{field}.at",
                message=f"{step.at.isoformat()} is earlier than {previous.isoformat()} before it",
            )
        if not step_allowed(step.from_, step.to, was_prod=was_prod):
            why = " (only a version that was prod before can return to it)" if step.to == "prod" else ""
            yield Problem(shown, field=field, message=f"{step.from_} -> {step.to} is not a legal step{why}")
        elif step.to in allowed and step.from_ not in allowed[step.to]:
            yield Problem(shown, field=field, message=f"{step.from_} -> {step.to} is not allowed by {CONFIG_FILE}")
        was_prod = was_prod or step.to == "prod"
        current, previous = step.to, max(previous, step.at)
    if record.stage != current:
        yield Problem(shown, field="stage", message=f"is {record.stage}, but the last transition is to {current}")


def canary(registry: Registry, _: datetime) -> Iterator[Problem]:
    """A canary record only on versions that went through staging; pending or inconclusive only while there."""
    for record in registry.iter_versions():
        if record.canary is None:
            continue
        if "staging" not in {t.to for t in record.steps}:
            yield Problem(
                registry.display(record.path),
                field="canary",
                message="only versions that entered staging have a canary",
            )
        elif record.canary["result"] in ("pending", "inconclusive") and record.stage != "staging":
            yield Problem(
                registry.display(record.path),
                field="canary.result",
                message=f"a {record.canary['result']} canary belongs to the version in staging; this one is "
                f"{record.stage} (record aborted when it leaves staging without a verdict)",
            )


def config(registry: Registry, _: datetime) -> Iterator[Problem]:
    """regops.yaml may narrow the stage machine, never widen it; bots never enter staging or prod."""
    shown = registry.display(registry.root / CONFIG_FILE)
    for stage, policy in registry.config.stages.items():
        if policy.bots and stage not in BOT_TARGETS:
            yield Problem(
                shown,
                field=f"stages.{stage}.bots",
                message=f"bots never move a version to {stage}: that takes a person and an approved pull request",
            )
        for i, source in enumerate(policy.from_):
            if (source, stage) not in _STEPS:
                yield Problem(
                    shown,
                    field=f"stages.{stage}.from[{i}]",
                    message=f"{source} -> {stage} is never a legal step",
                )


def hub_repos(registry: Registry, _: datetime) -> Iterator[Problem]:
    """Each model's Hub repo and archive repo are its own (the Hub compares names without case), and its
    versions' weights are in one of the two: sync moves the tags and branches of every repo it is pointed at."""
    claims: dict[str, list[tuple[ModelEntry, str]]] = {}
    for entry in registry.entries():
        for repo, role in _repos_of(registry, entry).items():
            claims.setdefault(repo.lower(), []).append((entry, role))
    for repo, holders in sorted(claims.items()):
        for entry, role in holders:
            for other, other_role in holders:
                if other is not entry:
                    yield _model_problem(
                        registry,
                        entry,
                        f"{repo} is the {role} of {entry.name} and also the {other_role} of {other.name}; "
                        "give each model its own Hub repo (hub.repo in its model.yaml)",
                    )
    for entry in registry.entries():
        yield from _foreign_storage(registry, entry)


def _repos_of(registry: Registry, entry: ModelEntry) -> dict[str, str]:
    """A model's Hub repo and archive repo, each with what it is."""
    hot = hub_repo(registry, entry.name, entry.config.raw.get("hub") if entry.config else None)
    if hot is None:
        return {}
    archive = archive_repo(registry, hot)
    return {hot: "Hub repo", **({archive: "archive repo"} if archive else {})}


def _foreign_storage(registry: Registry, entry: ModelEntry) -> Iterator[Problem]:
    own = {repo.lower() for repo in _repos_of(registry, entry)}
    for record in entry.versions.values():
        repo = record.storage.get("repo")
        if record.storage.get("backend") == "hf" and str(repo).lower() not in own:
            yield Problem(
                registry.display(record.path),
                field="artifacts.storage.repo",
                message=f"{repo} is not {entry.name}'s Hub repo or archive repo "
                f"({', '.join(sorted(own)) or 'it has none: set hub.repo in its model.yaml'})",
            )


def _model_problem(registry: Registry, entry: ModelEntry, message: str) -> Problem:
    has_hub = entry.config is not None and entry.config.raw.get("hub")
    path = entry.folder / MODEL_FILE
    return Problem(registry.display(path), field="hub.repo" if has_hub else "", message=message)


# The credentials regops' workflows hold for GitHub and the Hub (and the runner's own): never a metrics token.
_CREDENTIAL_ENVS: Final = re.compile(r"^(?:GITHUB_|GH_|ACTIONS_|HF_|HUGGING_FACE_)", re.IGNORECASE)


def refused_token_env(name: str) -> bool:
    """Whether ``name`` is a GitHub or Hub credential's variable, which no allow-list can admit."""
    return _CREDENTIAL_ENVS.match(name) is not None


def token_env_problem(name: str, allowed: Collection[str]) -> str | None:
    """Why the metrics provider may not send the variable ``name`` as its bearer token; None when it may.

    The one rule ``validate`` and the metrics adapter both apply: ``name`` is on
    regops.yaml's ``canary.allowed_token_envs`` and is no GitHub or Hub credential.
    """
    if refused_token_env(name):
        return (
            f"{name} holds a GitHub or Hub credential, which regops never sends to a metrics server: give the "
            "metrics server a token of its own (e.g. PROMETHEUS_TOKEN), list it in canary.allowed_token_envs "
            "of regops.yaml and name it here"
        )
    if name not in allowed:
        listed = ", ".join(allowed) or "none"
        return (
            f"{name} is not in canary.allowed_token_envs of regops.yaml (listed: {listed}): "
            "add it there, or name a variable that is"
        )
    return None


def canary_token(registry: Registry, _: datetime) -> Iterator[Problem]:
    """The metrics token comes from a variable regops.yaml allows, and no allow-list admits a GitHub or Hub one."""
    shown = registry.display(registry.root / CONFIG_FILE)
    config = registry.config.raw["canary"]
    allowed = config.get("allowed_token_envs") or []
    for i, name in enumerate(allowed):
        if refused_token_env(name):
            yield Problem(
                shown,
                field=f"canary.allowed_token_envs[{i}]",
                message=f"{name} holds a GitHub or Hub credential, which regops never sends to a metrics server: "
                "remove it, and give the metrics server a token of its own",
            )
    token_env = (config.get("metrics") or {}).get("token_env")
    if token_env and (problem := token_env_problem(token_env, allowed)):
        yield Problem(shown, field="canary.metrics.token_env", message=problem)


CODEOWNERS: Final = ".github/CODEOWNERS"
CODEOWNERS_HEADER: Final = (
    "# Generated by `regops codeowners` from the owners in registry/models/*/model.yaml: edit those, then run it.\n"
    "# GitHub asks these people for review on every change to a model's folder.\n"
)


def codeowners_file(registry: Registry) -> tuple[Path, str]:
    """Where CODEOWNERS is, and what it should say: a line per model folder naming its owners
    (GitHub users, or ``@org/team``) as its model.yaml does."""
    folder = registry.root.relative_to(registry.root.parent).as_posix()
    lines = [CODEOWNERS_HEADER]
    for name in registry.model_names():
        entry = registry.model_entry(name, strict=False)
        if entry.config is not None:
            handles = " ".join(p if p.startswith("@") else f"@{p}" for p in entry.config.raw["owners"])
            lines.append(f"/{folder}/models/{name}/ {handles}\n")
    return registry.root.parent / CODEOWNERS, "".join(lines)


def codeowners(registry: Registry, _: datetime) -> Iterator[Problem]:
    """A CODEOWNERS file, where there is one, names each model's owners as model.yaml does."""
    path, expected = codeowners_file(registry)
    try:
        current = path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return
    if current != expected:
        yield Problem(
            CODEOWNERS,
            message="stale: it does not name the owners model.yaml files give; run `regops codeowners` and commit it",
        )


def store_paths(registry: Registry, _: datetime) -> Iterator[Problem]:
    """The hot and cold local stores are apart however they are spelled (real paths, links resolved):
    retention deletes from the hot store what it copied to the cold one."""
    hot, cold = local_stores(registry)
    how = overlap(cold, hot) if hot is not None and cold is not None else None
    if how is not None:
        yield Problem(
            registry.display(registry.root / CONFIG_FILE),
            field="cold_storage.path",
            message=f"the cold store {cold} is {how}, the hot store (storage.path): retention would delete "
            "the weights it moves; give cold_storage a folder of its own",
        )


RULES: Final[tuple[Rule, ...]] = (
    layout,
    schema_comments,
    names,
    timestamps,
    scores,
    artifact_paths,
    parents,
    datasets,
    single_holders,
    stage_history,
    transitions,
    canary,
    config,
    canary_token,
    codeowners,
    hub_repos,
    store_paths,
)


# --- against the base branch ---------------------------------------------------------------------

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
# What a bot may do to a version (auto-promote to dev, retention and displacement to archived).
BOT_TARGETS: Final[frozenset[Stage]] = frozenset({"dev", "archived"})
# What stamping adds to a transition after its pull request merged.
STAMPED: Final = frozenset({"pr", "approved_by"})


def _record_kind(relative: Path) -> str | None:
    """``version`` or ``dataset`` for a record file under registry/ (a path relative to it), else None."""
    parts = relative.parts
    if len(parts) != 3 or relative.suffix != ".yaml":
        return None
    if parts[0] == "models" and parts[2] != MODEL_FILE:
        return "version"
    return "dataset" if parts[0] == "datasets" else None


def _get(data: dict[str, object], dotted: str) -> object:
    value: object = data
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def against_base(registry: Registry, base: dict[str, bytes], *, ref: str) -> list[Problem]:
    """What a change does to the records on ``ref`` (the base branch): ``base`` maps paths under the
    repository root to their bytes there. Records are never deleted, immutable fields never change,
    transitions are only appended (stamping a merged PR's number and approvers is the one edit), and
    each new transition is one its author may make: bots only auto-promote to dev and archive.
    """
    root = registry.root.parent
    records = _base_records(registry, base)
    latest = _latest_steps(records, ref=ref)
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
        relative = record.path.relative_to(root).as_posix()
        if relative not in records:
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


@dataclass(frozen=True)
class _Latest:
    """The last transition of a model already on the base: new ones may not be dated before it."""

    at: datetime
    what: str  # "1.2.0: candidate → dev"
    ref: str  # the base branch


def _latest_steps(records: dict[str, tuple[str, dict[str, object] | None]], *, ref: str) -> dict[str, _Latest]:
    """Per model folder, the latest transition any of its versions has on the base."""
    latest: dict[str, _Latest] = {}
    for relative, (kind, data) in records.items():
        steps = data.get("transitions") if kind == "version" and data is not None else None
        for step in steps if isinstance(steps, list) else ():
            at = _moment(step.get("at")) if isinstance(step, dict) else None
            model = Path(relative).parent.name
            if at is not None and (model not in latest or at > latest[model].at):
                what = f"{Path(relative).stem}: {step.get('from')} → {step.get('to')}"
                latest[model] = _Latest(at, what, ref)
    return latest


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


def bot_may_enter(config: ConfigRecord, target: Stage) -> bool:
    """Whether a bot may move a version to ``target`` on its own: dev and archived only, and only where
    regops.yaml lets bots (``stages.<stage>.bots``). Never staging or prod, whatever regops.yaml says."""
    rule = config.stages.get(target)
    return target in BOT_TARGETS and rule is not None and rule.bots


def needs_passed_canary(config: ConfigRecord, source: Stage, target: Stage) -> bool:
    """Whether ``source -> target`` needs a passed canary first: staging -> prod where regops.yaml says
    ``require_canary``. A rollback (archived -> prod) brings back a version that served prod before."""
    rule = config.stages.get(target)
    return target == "prod" and source == "staging" and rule is not None and rule.require_canary
