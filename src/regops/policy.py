"""The rules a registry must satisfy, as pure functions returning problems.

Each rule takes the loaded :class:`~regops.registry.Registry` and yields
:class:`~regops.files.Problem` values naming the file and the field; the line
and column are filled in afterwards, only for files that have problems
(:func:`locate_all`). :func:`check` runs every rule and returns everything,
sorted. The stage machine and the rules over stage histories are in
``stages.py`` (its :func:`step_allowed`, :func:`bot_may_enter` and
:func:`needs_passed_canary` are named here too, where callers look for rules).
The rules of a change against its base are in ``changes.py``; CODEOWNERS in
``codeowners.py``; which variable may carry the metrics token in ``tokens.py``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from regops import stages, store
from regops.codeowners import codeowners
from regops.kinds import Problem, release
from regops.records import ModelEntry, ModelRecord
from regops.registry import CONFIG_FILE, LOCK_FILE, MODEL_FILE, Registry
from regops.retention import archive_repo, each_model, hub_repo, local_stores, overlap
from regops.schema import field_parts
from regops.signing import SigningError, require
from regops.stages import BOT_TARGETS, bot_may_enter, needs_passed_canary, step_allowed
from regops.tokens import canary_token
from regops.verdicts import Facts

__all__ = [
    "BOT_TARGETS",
    "CLOCK_SKEW",
    "RULES",
    "bot_may_enter",
    "check",
    "dataset_uses",
    "fact_parents",
    "hub_claims",
    "locate_all",
    "model_layout",
    "needs_passed_canary",
    "schema_comment",
    "step_allowed",
]

# How far in the future a timestamp may be before it is an error: clocks differ.
CLOCK_SKEW: Final = timedelta(minutes=5)
SCHEMA_FILES: Final = {
    "version": "model-version.schema.json",
    "model": "model.schema.json",
    "dataset": "dataset-version.schema.json",
    "config": "regops.schema.json",
}

Rule = Callable[[Registry, datetime], Iterable[Problem]]


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


def fact_parents(registry: Registry, facts: dict[str, Facts], clean: set[str]) -> Iterator[Problem]:
    """:func:`parents` over every model's facts, reported on the ``clean`` models (the others' by :func:`check`)."""
    crossing = False
    for name, held in facts.items():
        own = f"{name}@"
        for version, parent in held.edges:
            if parent.startswith(own) and name in clean:
                continue  # a clean model's parents in its own folder are there
            crossing = crossing or not parent.startswith(own)
            model, _sep, wanted = parent.partition("@")
            if name in clean and not (model in facts and facts[model].has(wanted)):
                yield Problem(_fact_path(registry, facts, name, version), field="parent", message=_no_parent(parent))
    # A cycle through a clean model leaves its folder (none lies within one): none without a parent elsewhere.
    if crossing:
        yield from _fact_cycles(registry, facts, clean)


def _fact_cycles(registry: Registry, facts: dict[str, Facts], clean: set[str]) -> Iterator[Problem]:
    edges: dict[str, str] = {}
    for name, held in facts.items():
        for version, parent in held.edges:
            model, _sep, wanted = parent.partition("@")
            if model in facts and facts[model].has(wanted):
                edges[f"{name}@{version}"] = parent
    for ref in sorted(_cyclic(edges)):
        model, _sep, version = ref.partition("@")
        if model in clean:
            yield Problem(_fact_path(registry, facts, model, version), field="parent", message=_cycle(ref))


def _fact_path(registry: Registry, facts: dict[str, Facts], model: str, version: str) -> str:
    return registry.display(registry.root / "models" / model / facts[model].versions[version])


def advice(registry: Registry) -> list[Problem]:
    """Warnings, which fail nothing: each model whose canary cannot reach a decision within ``max_duration`` at its
    declared ``traffic_per_hour`` (:func:`regops.canary.unreachable`). Only models whose files load are judged."""
    defaults = registry.config.raw.get("canary")
    if not defaults:
        return []
    # Imported here: the canary's statistics (statistics, fractions) cost every verb's start-up ~30 ms otherwise; from
    # where they are defined, not regops.canary (its monitoring classes, ~8 ms more at the end of `validate`).
    from regops.confidence import unreachable
    from regops.guardrails import CanaryConfigError
    from regops.guardrails import settings as canary_settings

    found = []
    for name in registry.checked_names():
        config = registry.model_config(name)
        if config is None:
            continue
        try:
            settings = canary_settings(defaults, config.raw.get("canary"))
        except CanaryConfigError:  # reported as an error by the canary config rule
            continue
        path = registry.display(registry.root / "models" / name / MODEL_FILE)
        found += [Problem(path, field="canary", message=m, severity="warning") for m in unreachable(settings)]
    return sorted(locate_all(registry, found))


def locate_all(registry: Registry, problems: Iterable[Problem]) -> Iterator[Problem]:
    """Fill in line and column, parsing only the files that have problems, each once."""
    parsed: dict[str, object] = {}
    for problem in problems:
        if problem.line or not problem.field:
            yield problem
            continue
        if problem.path not in parsed:
            parsed[problem.path] = store.positions(registry.root.parent / problem.path)
        line, col = store.position(parsed[problem.path], field_parts(problem.field))
        yield Problem(problem.path, line, col, problem.field, problem.message, problem.severity)


# --- file rules ---------------------------------------------------------------------


LAYOUT: Final = "models/<model>/<version>.yaml, models/<model>/model.yaml, datasets/<dataset>/<version>.yaml"


def layout(registry: Registry, _: datetime) -> Iterator[Problem]:
    """Only regular files and folders, none linked or hidden; .yaml files in known places, nothing else;
    every model folder has model.yaml. (The loader reads no link, so what it skips is reported here.)"""
    skipped = {f"models/{name}" for name in registry.model_names()} - {f"models/{n}" for n in registry.checked_names()}
    yield from _misplaced_under(registry, registry.root, "", skipped)
    for model in registry.entries():
        if model.config is None and not (model.folder / MODEL_FILE).exists():
            yield Problem(
                registry.display(model.folder / MODEL_FILE),
                message=f"model {model.name} has no model.yaml (owners, primary metric); create it",
            )


def _misplaced_under(registry: Registry, folder: Path, relative: str, skipped: set[str]) -> Iterator[Problem]:
    """What does not belong in ``folder`` (``relative``: its path from the registry folder, "" for that folder
    itself), the ``skipped`` folders (paths from the registry folder) left out."""
    for inside, entry in _walk(str(folder), relative, skipped):
        message = _misplaced(inside, entry)
        if message is not None:
            yield Problem(registry.display(Path(entry.path)), message=message)


def model_layout(registry: Registry, folder: Path) -> Iterator[Problem]:
    """:func:`layout` in one model folder: its plain ``.yaml`` files pass without a look at their path."""
    with os.scandir(folder) as it:
        odd = [e for e in it if not (_plain_yaml(e.name) and e.is_file(follow_symlinks=False))]
    relative = folder.relative_to(registry.root).as_posix()
    for entry in sorted(odd, key=lambda e: e.name):
        message = _misplaced(f"{relative}/{entry.name}", entry)
        if message is not None:
            yield Problem(registry.display(Path(entry.path)), message=message)
        if entry.is_dir(follow_symlinks=False) and not entry.name.startswith("."):
            yield from _misplaced_under(registry, Path(entry.path), f"{relative}/{entry.name}", set())


def _plain_yaml(name: str) -> bool:
    return name.endswith(".yaml") and not name.startswith(".")


def _walk(folder: str, relative: str, skipped: set[str]) -> Iterator[tuple[str, os.DirEntry[str]]]:
    """Everything under ``folder`` (``relative`` from the registry folder), by name, each with its path from the
    registry folder; never into a link, a hidden folder or a ``skipped`` one. Paths stay text: a ``Path`` per
    entry cost more than the walk itself."""
    with os.scandir(folder) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        inside = f"{relative}/{entry.name}" if relative else entry.name
        yield inside, entry
        if entry.is_dir(follow_symlinks=False) and not entry.name.startswith(".") and inside not in skipped:
            yield from _walk(entry.path, inside, skipped)


def _misplaced(relative: str, entry: os.DirEntry[str]) -> str | None:
    """What is wrong with one thing in the registry folder (``relative``: its path from there, with '/');
    None when it belongs there."""
    if entry.is_symlink():
        return (
            f"is a symbolic link (to {Path(entry.path).readlink()}): the registry holds only regular files and "
            "folders, and regops never follows a link; put the files themselves here, or remove the link"
        )
    lock = relative == LOCK_FILE and entry.is_file(follow_symlinks=False)
    if entry.name.startswith(".") and not lock:
        return "is hidden: the registry holds no hidden files or folders; remove it"
    if lock or entry.is_dir(follow_symlinks=False):
        return None
    if not entry.is_file(follow_symlinks=False):
        return "is not a regular file or folder (a pipe, socket or device); remove it"
    if entry.name.endswith(".yml"):
        return "use the .yaml extension: regops reads only *.yaml files"
    parts = tuple(relative.split("/"))
    known = parts == (CONFIG_FILE,) or (len(parts) == 3 and parts[0] in ("models", "datasets"))
    known = (known and entry.name.endswith(".yaml")) or attestation_path(relative)
    return None if known else f"not part of the registry layout: {LAYOUT}"


def attestation_path(relative: str) -> bool:
    """Whether ``relative`` (from the registry folder) is where regops keeps a signed attestation:
    ``models/<model>/attestations/<version>/<name>.sigstore.json`` (:mod:`regops.attest`)."""
    parts = relative.split("/")
    return (
        len(parts) == 5 and parts[0] == "models" and parts[2] == "attestations" and parts[4].endswith(".sigstore.json")
    )


def schema_comments(registry: Registry, _: datetime) -> Iterator[Problem]:
    files: list[tuple[Path, str, int]] = [(registry.root / CONFIG_FILE, "config", 1)]
    for entry in registry.entries():
        files += [(r.path, "version", 3) for r in entry.versions.values()]
        if entry.config is not None:
            files.append((entry.config.path, "model", 3))
    files += [(d.path, "dataset", 3) for d in registry.datasets().values()]
    for path, kind, depth in files:
        expected = schema_comment(kind, depth)
        if _first_line(path) != expected:
            yield Problem(registry.display(path), 1, 1, message=f"the first line must be `{expected}`")


_LINE_BREAK: Final = re.compile("[\r\n]")


def _first_line(path: Path) -> str:
    """A file's first line as text (a BOM dropped, undecodable bytes replaced): its bytes up to the first line
    break read without a text stream, which cost more per file than the read itself."""
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = [os.read(fd, 256)]
        while b"\n" not in chunks[-1] and b"\r" not in chunks[-1] and (more := os.read(fd, 65536)):
            chunks.append(more)
    finally:
        os.close(fd)
    # As a text stream's readline: a line ends at \n, \r or \r\n.
    return _LINE_BREAK.split(b"".join(chunks).decode("utf-8-sig", errors="replace"), maxsplit=1)[0]


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
    for record in registry.iter_versions():
        parent = _parent_edge(registry, entries, record.parent)
        if parent is None:
            continue
        if not parent:
            yield Problem(registry.display(record.path), field="parent", message=_no_parent(record.parent))
        else:
            edges[record.ref] = parent
    _follow_parents(registry, entries, edges)
    for ref in sorted(_cyclic(edges)):
        model, _sep, version = ref.partition("@")
        if model in entries and version in entries[model].versions and model in registry.checked_names():
            yield Problem(registry.display(entries[model].versions[version].path), field="parent", message=_cycle(ref))


def _no_parent(parent: str | None) -> str:
    return f"parent {parent} is not in the registry"


def _cycle(ref: str) -> str:
    return f"lineage cycle: following parents from {ref} comes back to it"


def _parent_edge(registry: Registry, entries: dict[str, ModelEntry], parent: str | None) -> str | None:
    """``parent`` when it is a version in the registry, "" when it is missing, None when there is nothing to
    follow (no parent, or an external base). Models outside the checked ones are read when a parent names them."""
    if parent is None or parent.startswith("hf://"):
        return None
    model, _sep, version = parent.partition("@")
    if model not in entries and model in registry.model_names():
        entries[model] = registry.model_entry(model, strict=False)
    owner = entries.get(model)
    if owner is None or (version not in owner.versions and version not in owner.unreadable):
        return ""
    return parent


def _follow_parents(registry: Registry, entries: dict[str, ModelEntry], edges: dict[str, str]) -> None:
    """Add the parent links of the versions the checked ones lead to (a cycle may pass through models that are
    not checked); nothing to add when every model is checked."""
    todo = [parent for parent in edges.values() if parent not in edges]
    while todo:
        ref = todo.pop()
        model, _sep, version = ref.partition("@")
        record = entries[model].versions.get(version) if model in entries else None
        parent = _parent_edge(registry, entries, record.parent) if record is not None else None
        if parent and ref not in edges:
            edges[ref] = parent
            todo.append(parent)


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
        uses = (record.dataset, record.dataset_hash, record.eval_dataset)
        yield from dataset_uses(registry, registry.display(record.path), *uses)


def dataset_uses(registry: Registry, shown: str, ref: str, digest: str, eval_ref: str | None) -> Iterator[Problem]:
    """The problems of one version (shown as ``shown``) training on ``ref`` with hash ``digest``, evaluated on
    ``eval_ref``."""
    found = registry.dataset(ref)
    if found is None:
        yield Problem(shown, field="training.dataset", message=_no_dataset(registry, ref))
    elif found.hash != digest:
        yield Problem(
            shown,
            field="training.dataset_hash",
            message=f"{digest} differs from {found.hash} recorded in {registry.display(found.path)}",
        )
    if eval_ref is not None and registry.dataset(eval_ref) is None:
        yield Problem(shown, field="evals.dataset", message=_no_dataset(registry, eval_ref))


def _no_dataset(registry: Registry, ref: str) -> str:
    name, _, version = ref.partition("@")
    expected = registry.display(registry.root / "datasets" / name / f"{version}.yaml")
    return f"dataset {ref} does not resolve: {expected} does not exist (register it with `regops dataset register`)"


def hub_repos(registry: Registry, _: datetime, *, one_at_a_time: bool = False) -> Iterator[Problem]:
    """Each model's Hub repo and archive repo are its own (the Hub compares names without case), and its
    versions' weights are in one of the two: sync moves the tags and branches of every repo it is pointed at.
    ``one_at_a_time``: hold one model's folder at a time (retention, at 100k), not every checked one at once."""
    names = registry.checked_names()
    yield from hub_claims(registry, set(names))
    checked = (
        (registry.model_entry(name, strict=False) for name, _ in each_model(registry, names))
        if one_at_a_time
        else registry.entries()
    )
    for entry in checked:
        yield from _foreign_storage(registry, entry)


def hub_claims(registry: Registry, names: set[str]) -> Iterator[Problem]:
    """A Hub repo claimed by two models, reported on each of ``names`` that claims it."""
    claims: dict[str, list[tuple[str, str]]] = {}
    # Every model's model.yaml (not its versions): a checked model's repo may be claimed by any other.
    configs = {name: registry.model_config(name) for name in registry.model_names()}
    for name, config in configs.items():
        for repo, role in _repos_of(registry, name, config).items():
            claims.setdefault(repo.lower(), []).append((name, role))
    for repo, holders in sorted(claims.items()):
        for name, role in holders:
            for other, other_role in holders:
                if other != name and name in names:
                    yield _model_problem(
                        registry,
                        name,
                        configs[name],
                        f"{repo} is the {role} of {name} and also the {other_role} of {other}; "
                        "give each model its own Hub repo (hub.repo in its model.yaml)",
                    )


def _repos_of(registry: Registry, name: str, config: ModelRecord | None) -> dict[str, str]:
    """A model's Hub repo and archive repo, each with what it is."""
    hot = hub_repo(registry, name, config.raw.get("hub") if config else None)
    if hot is None:
        return {}
    archive = archive_repo(registry, hot)
    return {hot: "Hub repo", **({archive: "archive repo"} if archive else {})}


def _foreign_storage(registry: Registry, entry: ModelEntry) -> Iterator[Problem]:
    own = {repo.lower() for repo in _repos_of(registry, entry.name, entry.config)}
    for record in entry.versions.values():
        repo = record.storage.get("repo")
        if record.storage.get("backend") == "hf" and str(repo).lower() not in own:
            yield Problem(
                registry.display(record.path),
                field="artifacts.storage.repo",
                message=f"{repo} is not {entry.name}'s Hub repo or archive repo "
                f"({', '.join(sorted(own)) or 'it has none: set hub.repo in its model.yaml'})",
            )


def _model_problem(registry: Registry, name: str, config: ModelRecord | None, message: str) -> Problem:
    has_hub = config is not None and config.raw.get("hub")
    path = registry.root / "models" / name / MODEL_FILE
    return Problem(registry.display(path), field="hub.repo" if has_hub else "", message=message)


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


def signatures(registry: Registry, _: datetime) -> Iterator[Problem]:
    """A version in a stage at or after ``signing.required_from`` records a signature (:func:`regops.signing.require`:
    the bundle itself is verified where it is read, by promote, sync, download and verify)."""
    for entry in registry.entries():
        for record in entry.versions.values():
            try:
                require(record, stage=record.stage, policy=registry.config.signing, action="holding it there")
            except SigningError as e:
                yield Problem(registry.display(record.path), field="artifacts", message=str(e))


RULES: Final[tuple[Rule, ...]] = (
    layout,
    schema_comments,
    names,
    timestamps,
    scores,
    artifact_paths,
    parents,
    datasets,
    stages.single_holders,
    stages.stage_history,
    stages.transitions,
    stages.canary,
    stages.config,
    canary_token,
    codeowners,
    hub_repos,
    store_paths,
    signatures,
)
