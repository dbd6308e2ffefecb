#!/usr/bin/env python3
"""Check a generated registry independently of ``regops validate``.

    python benchmarks/check_generated.py DIR/registry

Loads every file with PyYAML (both the C and the pure-Python safe loader,
timestamps left as strings), validates it with the pydantic models in
``regops.files``, and re-checks the cross-file rules of DESIGN.md §4 that the
generator promises: names and paths, dataset refs and hashes, parents, stage ==
last transition, legal steps in strictly increasing time, at most one version
per model in dev, staging and prod at every instant, canary only on versions
that reached staging, timestamps before 2026-11-01. Exits 1 on any problem.

Used to tell a generator bug from a regops bug; needs the project installed.
"""

from __future__ import annotations

import math
import sys
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from regops.files import DatasetVersion, ModelConfig, ModelVersion, RegistryConfig

LIMIT = datetime(2026, 11, 1, tzinfo=UTC)
LEGAL = {("candidate", "dev"), ("dev", "staging"), ("staging", "prod")}
UNIQUE = ("dev", "staging", "prod")
HEADERS = {
    "version": "# yaml-language-server: $schema=../../../schemas/model-version.schema.json",
    "model": "# yaml-language-server: $schema=../../../schemas/model.schema.json",
    "dataset": "# yaml-language-server: $schema=../../../schemas/dataset-version.schema.json",
    "regops": "# yaml-language-server: $schema=../schemas/regops.schema.json",
}


def _loader(base: Any) -> Any:
    """``base`` with the timestamp resolver removed: regops hands timestamps to pydantic as strings."""
    resolvers = {
        k: [(t, r) for t, r in v if t != "tag:yaml.org,2002:timestamp"] for k, v in base.yaml_implicit_resolvers.items()
    }
    return type(f"No{base.__name__}Timestamps", (base,), {"yaml_implicit_resolvers": resolvers})


PURE = _loader(yaml.SafeLoader)
FAST = _loader(yaml.CSafeLoader)


def load(path: Path, header: str, problems: list[str]) -> Any:
    text = path.read_text(encoding="utf-8")
    if text.split("\n", 1)[0] != HEADERS[header]:
        problems.append(f"{path}: first line is not the {header} schema comment")
    data = yaml.load(text, Loader=PURE)
    if yaml.load(text, Loader=FAST) != data:
        problems.append(f"{path}: the C and pure-Python loaders disagree")
    return data


def check(registry: Path) -> list[str]:
    problems: list[str] = []
    RegistryConfig.model_validate(load(registry / "regops.yaml", "regops", problems))
    datasets: dict[str, str] = {}
    for path in sorted((registry / "datasets").glob("*/*.yaml")):
        ds = DatasetVersion.model_validate(load(path, "dataset", problems))
        if (ds.name, ds.version) != (path.parent.name, path.stem):
            problems.append(f"{path}: name/version do not match the path")
        if ds.created_at >= LIMIT:
            problems.append(f"{path}: created_at in the future")
        datasets[f"{ds.name}@{ds.version}"] = ds.hash
    count = 0
    for folder in sorted((registry / "models").iterdir()):
        config = ModelConfig.model_validate(load(folder / "model.yaml", "model", problems))
        if config.name != folder.name:
            problems.append(f"{folder}/model.yaml: name != folder")
        versions: dict[str, ModelVersion] = {}
        for path in sorted(set(folder.glob("*.yaml")) - {folder / "model.yaml"}):
            count += 1
            try:
                v = ModelVersion.model_validate(load(path, "version", problems))
            except ValueError as e:
                problems.append(f"{path}: {e}")
                continue
            versions[v.version] = v
            problems += [f"{path}: {p}" for p in check_version(path, v, datasets, config.primary_metric.name)]
        problems += check_model(folder.name, versions)
    if count == 0:
        problems.append(f"{registry}: no version files")
    return problems


def check_version(path: Path, v: ModelVersion, datasets: dict[str, str], metric: str) -> list[str]:
    problems = []
    if (v.model, v.version) != (path.parent.name, path.stem):
        problems.append("model/version do not match the path")
    if datasets.get(v.training.dataset) != v.training.dataset_hash:
        problems.append("training dataset does not resolve or hash differs")
    if v.evals.dataset not in datasets:
        problems.append("eval dataset does not resolve")
    if metric not in v.evals.scores or not all(map(math.isfinite, v.evals.scores.values())):
        problems.append(f"scores lack {metric} or are not finite")
    if v.artifacts.storage.backend != "local" or v.artifacts.storage.tier != "hot":
        problems.append("storage is not local/hot")
    expected = v.transitions[-1].to if v.transitions else "candidate"
    if v.stage != expected:
        problems.append(f"stage {v.stage} != last transition {expected}")
    if v.created_at >= LIMIT:
        problems.append("created_at in the future")
    problems += check_transitions(v)
    reached_staging = any(t.to == "staging" for t in v.transitions)
    if (v.canary is not None) != reached_staging:
        problems.append("canary present iff the version reached staging")
    if v.canary is not None:
        pending = v.canary.result == "pending"
        if pending != (v.stage == "staging") or (v.canary.finished_at is None) != pending:
            problems.append(f"canary result/finished_at do not fit stage {v.stage}")
    return problems


def check_transitions(v: ModelVersion) -> list[str]:
    problems = []
    previous, last, was_prod = "candidate", v.created_at, False
    for n, t in enumerate(v.transitions):
        if t.from_ != previous:
            problems.append(f"transition {n} from {t.from_}, expected {previous}")
        step = (t.from_, t.to)
        if not (step in LEGAL or t.to == "archived" or (step == ("archived", "prod") and was_prod)):
            problems.append(f"illegal transition {step}")
        if (t.at <= last and n) or t.at < last or t.at >= LIMIT:
            problems.append(f"transition {n} at {t.at} out of order or in the future")
        human = t.to in ("staging", "prod") or t.from_ in ("staging", "prod")
        if human and (t.pr is None or not t.approved_by or t.notes is None or "[bot]" in t.by):
            problems.append(f"human transition {n} lacks pr/approved_by/notes")
        if not human and (t.by != "github-actions[bot]" or not t.reason):
            problems.append(f"bot transition {n} lacks by/reason")
        if t.by in (t.approved_by or []):
            problems.append(f"transition {n} approved by its author")
        was_prod = was_prod or t.to == "prod"
        previous, last = t.to, t.at
    return problems


def check_model(name: str, versions: dict[str, ModelVersion]) -> list[str]:
    problems = []
    ordered = sorted(versions.values(), key=lambda v: v.created_at)
    for i, v in enumerate(ordered):
        parent = ordered[i - 1].version if i else None
        if v.parent != parent:
            problems.append(f"{name}@{v.version}: parent {v.parent}, expected {parent}")
    for stage in UNIQUE:
        if sum(v.stage == stage for v in ordered) > 1:
            problems.append(f"{name}: more than one version in {stage} now")
    # Replay every stage change in time order; simultaneous changes apply together.
    events: dict[datetime, list[tuple[str, str]]] = defaultdict(list)
    for v in ordered:
        for t in v.transitions:
            events[t.at].append((v.version, t.to))
    stage_of: dict[str, str] = {}
    for at in sorted(events):
        for version, to in events[at]:
            stage_of[version] = to
        for stage in UNIQUE:
            holders = [k for k, s in stage_of.items() if s == stage]
            if len(holders) > 1:
                problems.append(f"{name}: {holders} all in {stage} at {at}")
    return problems


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    problems = check(Path(args[0]))
    for problem in problems[:50]:
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s)")
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
