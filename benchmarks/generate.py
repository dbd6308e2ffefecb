#!/usr/bin/env python3
"""Generate a synthetic, valid regops registry for the benchmarks.

    python benchmarks/generate.py --models 100 --versions 100 --out /tmp/reg [--seed 0]

writes ``/tmp/reg/registry/`` (``regops.yaml``, ``models/<model>/model.yaml``,
``models/<model>/<version>.yaml``, ``datasets/<name>/<version>.yaml``) and
``/tmp/reg/manifest.json`` (sizes, seed, and a ground-truth ``resolve`` query
the runner checks; outside ``registry/`` so regops never reads it).

Every file is meant to pass ``regops validate`` (DESIGN.md §3-4). Each model's
history is simulated in time order, one slot per version: a version is
registered as a candidate, and either gets archived by retention, or goes
candidate → dev (auto-promotion, which archives the previous dev), dev →
staging (a reviewed PR, which archives a previous staging holder), and
staging → prod (a reviewed PR, which archives the old prod at the same
instant). Now and then a prod version is rolled back to the previous prod.
The tail of every history ends with one version each in prod, staging (canary
pending), dev and candidate. All timestamps are before 2026-11-01.

Files are built from string templates, not a YAML dumper: 10,000 versions take
well under a few seconds. Output is a pure function of (models, versions, seed).
Stdlib only.
"""

from __future__ import annotations

import argparse
import calendar
import json
import multiprocessing
import os
import random
import resource
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

__all__ = ["generate"]

END = calendar.timegm((2026, 10, 25, 0, 0, 0))  # every timestamp is before this
MIN_SPAN = int(4.5 * 365 * 86400)  # a history covers at least 4.5 years
DAY = 86400

BOT = '"github-actions[bot]"'
TRAINER = '"training-bot[bot]"'
PEOPLE = (
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
    "mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "yuki",
)  # fmt: skip

# name, dataset family, task, artifact kind
BASES = (
    ("sentiment", 0, "text-classification", "text"),
    ("toxicity", 0, "text-classification", "text"),
    ("spam", 0, "text-classification", "text"),
    ("topic", 1, "text-classification", "text"),
    ("intent", 4, "text-classification", "text"),
    ("ner", 5, "token-classification", "text"),
    ("pii", 5, "token-classification", "text"),
    ("language-id", 4, "text-classification", "text"),
    ("churn", 2, "tabular-classification", "tabular"),
    ("fraud", 2, "tabular-classification", "tabular"),
    ("credit-risk", 2, "tabular-classification", "tabular"),
    ("product-image", 3, "image-classification", "image"),
    ("defect", 3, "image-classification", "image"),
    ("nsfw", 3, "image-classification", "image"),
    ("urgency", 1, "text-classification", "text"),
    ("routing", 1, "text-classification", "text"),
    ("query-category", 4, "text-classification", "text"),
    ("doc-type", 5, "text-classification", "text"),
    ("address-parser", 5, "token-classification", "text"),
    ("chargeback", 2, "tabular-classification", "tabular"),
)
SUFFIXES = ("", "-en", "-de", "-fr", "-es", "-ja", "-pt", "-it", "-nl", "-ko")

# name, description, eval-set versions
FAMILIES = (
    ("reviews", "Product reviews with 3-way sentiment labels, deduplicated."),
    ("tickets", "Support tickets with queue, topic and urgency labels."),
    ("transactions", "Card transactions with fraud, churn and chargeback outcomes."),
    ("images", "Catalogue and line-camera images with class labels."),
    ("queries", "Search queries with intent and language labels."),
    ("documents", "Scanned and born-digital documents with entity spans."),
)
TRAIN_VERSIONS = 5  # per family
EVAL_VERSIONS = 3  # per family: v1, v2, v3

ARTIFACTS = {
    "text": (
        ("model.safetensors", 267_000_000, 40_000_000),
        ("config.json", 700, 80),
        ("tokenizer.json", 711_000, 1_000),
        ("tokenizer_config.json", 1_200, 100),
        ("special_tokens_map.json", 280, 10),
    ),
    "tabular": (
        ("model.onnx", 6_500_000, 3_000_000),
        ("feature_spec.json", 14_000, 2_000),
        ("calibration.json", 3_100, 300),
    ),
    "image": (
        ("model.safetensors", 114_000_000, 20_000_000),
        ("config.json", 900, 80),
        ("preprocessor_config.json", 400, 20),
    ),
}
BASE_MODELS = {
    "text": ("distilroberta-base", "deberta-v3-small", "xlm-roberta-base"),
    "image": ("convnext-tiny-224", "efficientnet-b0", "vit-small-patch16-224"),
}

VERSION_HEADER = "# yaml-language-server: $schema=../../../schemas/model-version.schema.json\n"
MODEL_HEADER = "# yaml-language-server: $schema=../../../schemas/model.schema.json\n"
DATASET_HEADER = "# yaml-language-server: $schema=../../../schemas/dataset-version.schema.json\n"
REGOPS_YAML = """\
# yaml-language-server: $schema=../schemas/regops.schema.json
# Registry-wide policy for the synthetic benchmark registry.
storage: {backend: local, path: .regops/store}
cold_storage: {backend: local, path: .regops/cold}
stages:
  dev: {from: [candidate], approvals: 0, bots: true}
  staging: {from: [dev], approvals: 1}
  prod: {from: [staging, archived], approvals: 2, require_canary: true}
  archived: {from: [candidate, dev, staging, prod], bots: true}
bots: ["github-actions[bot]", "training-bot[bot]"]
retention: {keep_prod: 10, candidate_ttl_days: 30}
canary:
  traffic_percent: 5.0
  min_requests: 1000
  min_duration_minutes: 60
  metrics: {provider: json, path: metrics/canary.json}
"""


_DAYS: dict[int, str] = {}  # day number -> "YYYY-MM-DDT"


def iso(t: int) -> str:
    """``t`` as ``%Y-%m-%dT%H:%M:%SZ`` (UTC); strftime once per day, not once per timestamp."""
    day, rest = divmod(t, DAY)
    prefix = _DAYS.get(day)
    if prefix is None:
        prefix = _DAYS[day] = time.strftime("%Y-%m-%dT", time.gmtime(day * DAY))
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{prefix}{hours:02d}:{minutes:02d}:{seconds:02d}Z"


def q(text: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(text)


# The draws below are the stdlib's own, call for call, without their argument checks (hot: ~40 per version):
# rng.randrange(lo, hi) == lo + rng._randbelow(hi - lo), rng.choice(s) == s[rng._randbelow(len(s))],
# rng.uniform(a, b) == a + (b - a) * rng.random() (random.py, 3.11 to 3.13). The output stays the same bytes.


def randrange(rng: random.Random, lo: int, hi: int) -> int:
    return lo + rng._randbelow(hi - lo)  # type: ignore[attr-defined]


def choice(rng: random.Random, seq: tuple[Any, ...]) -> Any:
    return seq[rng._randbelow(len(seq))]  # type: ignore[attr-defined]


def uniform(rng: random.Random, lo: float, hi: float) -> float:
    return lo + (hi - lo) * rng.random()


@dataclass
class Dataset:
    name: str
    version: str
    created: int
    hash: str

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass
class Version:
    version: str
    created: int
    parent: str | None
    scores: dict[str, float]
    stage: str = "candidate"
    transitions: list[tuple[str, str, int, str]] = field(default_factory=list)
    canary: str | None = None
    canary_started: int = 0
    ever_prod: bool = False

    def move(self, to: str, at: int, who: str) -> None:
        if self.transitions and at <= self.transitions[-1][2]:
            raise AssertionError(f"{self.version}: transitions out of order")
        self.transitions.append((self.stage, to, at, who))
        self.stage = to
        self.ever_prod = self.ever_prod or to == "prod"


@dataclass
class Model:
    name: str
    family: int
    task: str
    kind: str
    owners: list[str]
    versions: list[Version] = field(default_factory=list)


# --- datasets ----------------------------------------------------------------


def make_datasets(rng: random.Random, start: int) -> tuple[list[list[Dataset]], list[list[Dataset]]]:
    """Training and eval dataset versions per family, oldest first; the first predates every model."""
    train: list[list[Dataset]] = []
    evals: list[list[Dataset]] = []
    first = start - 45 * DAY
    step = (END - 60 * DAY - first) // TRAIN_VERSIONS
    for name, _ in FAMILIES:
        versions = []
        for j in range(TRAIN_VERSIONS):
            t = first + j * step + randrange(rng, 0, 10 * DAY)
            t -= t % DAY - 6 * 3600  # 06:00 UTC on that day
            versions.append(Dataset(name, iso(t)[:10], t, f"blake3:{rng.getrandbits(256):064x}"))
        train.append(versions)
        eval_step = (END - 90 * DAY - first) // EVAL_VERSIONS
        evals.append(
            [
                Dataset(
                    f"{name}-eval",
                    f"v{j + 1}",
                    first + j * eval_step + 7200,
                    f"blake3:{rng.getrandbits(256):064x}",
                )
                for j in range(EVAL_VERSIONS)
            ]
        )
    return train, evals


def dataset_file(ds: Dataset, description: str, rng: random.Random) -> str:
    size = randrange(rng, 200_000_000, 40_000_000_000)
    return (
        f"{DATASET_HEADER}"
        f"name: {ds.name}\n"
        f"version: {ds.version}\n"
        f"hash: {ds.hash}\n"
        f"created_at: {iso(ds.created)}\n"
        f'created_by: "data-pipeline[bot]"\n'
        f"description: {q(description)}\n"
        f"uri: s3://acme-data/{ds.name}/{ds.version}/\n"
        f"size_bytes: {size}\n"
        f"file_count: {max(1, size // 250_000_000)}\n"
    )


def latest_before(items: list[Dataset], t: int) -> Dataset:
    best = items[0]
    for item in items:
        if item.created <= t:
            best = item
    return best


# --- versions and history ----------------------------------------------------


def next_version(rng: random.Random, prev: tuple[int, int, int, int] | None) -> tuple[int, int, int, int]:
    """(major, minor, patch, rc) in increasing SemVer precedence; rc 0 means a release."""
    if prev is None:
        return (1, 0, 0, 0) if rng.random() < 0.5 else (0, 1, 0, 0)
    major, minor, patch, rc = prev
    if rc and rng.random() < 0.6:  # another release candidate, or the release itself
        return (major, minor, patch, rc + 1) if rng.random() < 0.5 else (major, minor, patch, 0)
    if rc:
        return (major, minor, patch, 0)
    roll = rng.random()
    if roll < 0.06:
        bumped = (major + 1, 0, 0)
    elif roll < 0.5:
        bumped = (major, minor + 1, 0)
    else:
        bumped = (major, minor, patch + 1)
    return (*bumped, 1 if rng.random() < 0.2 else 0)


def semver(v: tuple[int, int, int, int]) -> str:
    base = f"{v[0]}.{v[1]}.{v[2]}"
    return f"{base}-rc.{v[3]}" if v[3] else base


def fates(rng: random.Random, n: int) -> list[str]:
    """How far each version gets; the tail leaves one version in each live stage."""
    tail = ["prod", "staging", "dev", "candidate"][: max(1, min(n, 4))]
    body = rng.choices(["rejected", "dev", "staging", "prod"], weights=[30, 25, 10, 35], k=n - len(tail))
    return body + tail


class History:
    """Simulates one model's stage changes in time order."""

    def __init__(self, rng: random.Random, model: Model, *, start: int, slot: int, pr_stride: int, pr0: int):
        self.rng = rng
        self.model = model
        self.start = start
        self.slot = slot
        self.holders: dict[str, Version | None] = {"dev": None, "staging": None, "prod": None}
        self.previous_prod: Version | None = None
        self.pr_stride = pr_stride
        self.pr = pr0
        self.accuracy = uniform(rng, 0.72, 0.9)
        self.latency = uniform(rng, 12.0, 60.0)

    def at(self, t0: int, lo: float, hi: float) -> int:
        return t0 + int(self.slot * uniform(self.rng, lo, hi))

    def human(self) -> str:
        """Who, in which PR, approved by whom: shared by every transition of one PR."""
        self.pr += self.pr_stride
        author = choice(self.rng, PEOPLE)
        eligible = [o for o in self.model.owners if o != author and not o.startswith("@")]
        approvers = ", ".join(self.rng.sample(eligible, 2))
        return f"by: {author}, pr: {self.pr}, approved_by: [{approvers}]"

    def scores(self, promoted: bool) -> dict[str, float]:
        rng = self.rng
        if promoted:
            acc = self.accuracy + (1 - self.accuracy) * uniform(rng, 0.004, 0.04)
        else:
            acc = max(0.5, self.accuracy - uniform(rng, 0.001, 0.02))
        self.latency = min(200.0, max(5.0, self.latency + uniform(rng, -2.0, 2.5)))
        f1 = acc - uniform(rng, 0.002, 0.015)
        return {
            "accuracy": acc,
            "f1": f1,
            "precision": f1 + uniform(rng, -0.01, 0.01),
            "recall": f1 + uniform(rng, -0.01, 0.01),
            "latency_p95_ms": self.latency,
        }

    def run(self, versions: list[tuple[str, str | None]]) -> None:
        plan = fates(self.rng, len(versions))
        n = len(versions)
        for i, ((version, parent), fate) in enumerate(zip(versions, plan, strict=True)):
            t0 = self.start + i * self.slot + randrange(self.rng, 0, max(1, self.slot // 20))
            v = Version(version, t0, parent, self.scores(fate != "rejected"))
            self.model.versions.append(v)
            if fate == "rejected":
                self.reject(v, t0)
            elif fate != "candidate":
                self.promote(v, t0, fate, rollback_ok=i < n - 4)

    def reject(self, v: Version, t0: int) -> None:
        at = self.at(t0, 0.45, 0.9)
        reason = f"retention: candidate not promoted (accuracy {v.scores['accuracy']:.4f} did not beat dev)"
        v.move("archived", at, f"by: {BOT}, reason: {q(reason)}")

    def promote(self, v: Version, t0: int, fate: str, *, rollback_ok: bool) -> None:
        acc = v.scores["accuracy"]
        t_dev = self.at(t0, 0.08, 0.16)
        old = self.holders["dev"]
        if old is not None:
            reason = f"auto: accuracy {acc:.4f} > {old.scores['accuracy']:.4f} ({old.version})"
            old.move("archived", t_dev, f"by: {BOT}, reason: {q(f'auto: superseded in dev by {v.version}')}")
        elif self.holders["prod"] is not None:
            prod = self.holders["prod"]
            reason = f"auto: accuracy {acc:.4f} > {prod.scores['accuracy']:.4f} ({prod.version} in prod); dev empty"
        else:
            reason = f"auto: accuracy {acc:.4f}; no version in dev or prod"
        v.move("dev", t_dev, f"by: {BOT}, reason: {q(reason)}")
        self.holders["dev"] = v
        self.accuracy = acc
        if fate == "dev":
            return
        self.to_staging(v, t0)
        if fate == "prod":
            self.to_prod(v, t0)
            if rollback_ok and self.previous_prod is not None and self.rng.random() < 0.04:
                self.rollback(v, t0)

    def to_staging(self, v: Version, t0: int) -> None:
        t_st = self.at(t0, 0.25, 0.33)
        old = self.holders["staging"]
        who = self.human()
        if old is not None:
            # Its canary had passed, but a better version overtook it before its prod PR.
            old.canary = self.finished_canary(old, "passed", old.canary_started + self.span(0.1, 0.2))
            old.move("archived", t_st, f"{who}, notes: {q(f'superseded in staging by {v.version}')}")
        notes = f"promote {v.version}: accuracy {v.scores['accuracy']:.4f} on the eval set"
        v.move("staging", t_st, f"{who}, notes: {q(notes)}")
        self.holders["dev"] = None
        self.holders["staging"] = v
        # Pending until the prod promotion (or for good, for the staging holder at the end).
        v.canary_started = t_st + self.span(0.01, 0.03)
        v.canary = f"{{traffic_percent: 5, started_at: {iso(v.canary_started)}, result: pending}}"

    def span(self, lo: float, hi: float) -> int:
        return max(1, int(self.slot * uniform(self.rng, lo, hi)))

    def finished_canary(self, v: Version, result: str, finished: int) -> str:
        summary = "error rate and p95 latency within guardrails"
        return (
            f"{{traffic_percent: 5, started_at: {iso(v.canary_started)}, result: {result}, "
            f"finished_at: {iso(finished)}, summary: {q(summary)}}}"
        )

    def to_prod(self, v: Version, t0: int) -> None:
        t_pr = self.at(t0, 0.6, 0.68)
        v.canary = self.finished_canary(v, "passed", t_pr - self.span(0.01, 0.05))
        old = self.holders["prod"]
        who = self.human()
        if old is not None:
            old.move("archived", t_pr, f"{who}, notes: {q(f'replaced in prod by {v.version}')}")
            self.previous_prod = old
        v.move("prod", t_pr, f"{who}, notes: {q(f'release {v.version} to prod; canary passed')}")
        self.holders["staging"] = None
        self.holders["prod"] = v

    def rollback(self, v: Version, t0: int) -> None:
        back = self.previous_prod
        assert back is not None and back.ever_prod and back.stage == "archived"
        t_rb = self.at(t0, 0.85, 0.92)
        who = self.human()
        notes = q(f"rollback to {back.version}: p95 latency regression in {v.version}")
        v.move("archived", t_rb, f"{who}, notes: {notes}")
        back.move("prod", t_rb, f"{who}, notes: {notes}")
        self.holders["prod"] = back
        self.previous_prod = None


# --- rendering ---------------------------------------------------------------


def hyperparameters(rng: random.Random, kind: str) -> str:
    if kind == "tabular":
        lines = (
            f"n_estimators: {choice(rng, (200, 400, 800, 1200))}",
            f"max_depth: {randrange(rng, 4, 11)}",
            f"learning_rate: {choice(rng, (0.03, 0.05, 0.1))}",
            f"subsample: {choice(rng, (0.7, 0.8, 0.9))}",
            f"colsample_bytree: {choice(rng, (0.6, 0.8, 1.0))}",
            'objective: "binary:logistic"',
            f"seed: {randrange(rng, 1, 10_000)}",
        )
    else:
        lr = choice(rng, (1.0e-5, 2.0e-5, 3.0e-5, 5.0e-5))
        lines = (
            f"learning_rate: {lr:.1e}",
            f"epochs: {randrange(rng, 2, 7)}",
            f"batch_size: {choice(rng, (16, 32, 64))}",
            f"weight_decay: {choice(rng, (0.0, 0.01, 0.05))}",
            f"warmup_ratio: {choice(rng, (0.0, 0.06, 0.1))}",
            f"base_model: {choice(rng, BASE_MODELS[kind])}",
            f"seed: {randrange(rng, 1, 10_000)}",
        )
    return "".join(f"  {line}\n" for line in lines)


def artifacts(rng: random.Random, kind: str) -> str:
    out = []
    for path, size, spread in ARTIFACTS[kind]:
        real = size + randrange(rng, -spread, spread + 1)
        out.append(f"    - {{path: {path}, size: {real}, sha256: {rng.getrandbits(256):064x}}}\n")
    return "".join(out)


def version_file(rng: random.Random, model: Model, v: Version, train: list[Dataset], evals: list[Dataset]) -> str:
    family = FAMILIES[model.family][0]
    ds = latest_before(train, v.created)
    ev = latest_before(evals, v.created)
    s = v.scores
    if v.transitions:
        transitions = "transitions:\n" + "".join(
            f"  - {{from: {frm}, to: {to}, at: {iso(at)}, {who}}}\n" for frm, to, at, who in v.transitions
        )
    else:
        transitions = "transitions: []\n"
    canary = f"canary: {v.canary}\n" if v.canary else ""
    return (
        f"{VERSION_HEADER}"
        f"model: {model.name}\n"
        f"version: {v.version}\n"
        f"created_at: {iso(v.created)}\n"
        f"created_by: {TRAINER}\n"
        f"parent: {v.parent or 'null'}\n"
        f"training:\n"
        f"  dataset: {ds.ref}\n"
        f"  dataset_hash: {ds.hash}\n"
        f"  code: {{repo: acme/train-{family}, commit: {rng.getrandbits(160):040x}}}\n"
        f"  run_url: https://github.com/acme/train-{family}/actions/runs/{randrange(rng, 10**9, 10**10)}\n"
        f"hyperparameters:\n"
        f"{hyperparameters(rng, model.kind)}"
        f"evals:\n"
        f"  dataset: {ev.ref}\n"
        f"  scores:\n"
        f"    accuracy: {s['accuracy']:.4f}\n"
        f"    f1: {s['f1']:.4f}\n"
        f"    precision: {s['precision']:.4f}\n"
        f"    recall: {s['recall']:.4f}\n"
        f"    latency_p95_ms: {s['latency_p95_ms']:.1f}\n"
        f"artifacts:\n"
        f"  files:\n"
        f"{artifacts(rng, model.kind)}"
        f"  storage: {{backend: local, tier: hot}}\n"
        f"stage: {v.stage}\n"
        f"{canary}"
        f"{transitions}"
    )


def model_file(model: Model) -> str:
    family = FAMILIES[model.family][0]
    owners = ", ".join(q(o) if o.startswith("@") else o for o in model.owners)
    return (
        f"{MODEL_HEADER}"
        f"name: {model.name}\n"
        f"description: {q(f'{model.task} model ({model.name}), trained on {family}.')}\n"
        f"owners: [{owners}]\n"
        f"task: {model.task}\n"
        f"license: apache-2.0\n"
        f"hub: {{repo: acme-ml/{model.name}, private: true}}\n"
        f"primary_metric: {{name: accuracy, goal: max}}\n"
        f"guard_metrics:\n"
        f"  - {{name: f1, goal: max, tolerance: 0.01}}\n"
        f"  - {{name: latency_p95_ms, goal: min, tolerance: 5.0}}\n"
        f"retention: {{keep_prod: 5}}\n"
    )


def model_name(i: int) -> str:
    base = BASES[i % len(BASES)][0]
    k = i // len(BASES)
    return base + (SUFFIXES[k] if k < len(SUFFIXES) else f"-v{k}")


def holder_at(model: Model, stage: str, t: int) -> str | None:
    """The version of ``model`` in ``stage`` at time ``t`` (the ground truth for `resolve --at`)."""
    found = None
    for v in model.versions:
        current = "candidate" if v.created <= t else None
        for _, to, at, _ in v.transitions:
            if at <= t:
                current = to
        if current == stage:
            if found is not None:
                raise AssertionError(f"two versions of {model.name} in {stage} at {iso(t)}")
            found = v.version
    return found


def generate(
    out: Path, models: int, versions: int, seed: int = 0, *, force: bool = False, jobs: int | None = None
) -> Path:
    """Write ``out/registry/`` (and ``out/manifest.json``); return the registry path. ``jobs``: processes that make
    the models (default: one per core, at most 8); the output is the same bytes for any number."""
    if models < 1 or versions < 1:
        raise ValueError("models and versions must be at least 1")
    out = Path(out)
    registry = out / "registry"
    if registry.exists() and any(registry.iterdir()):
        if not force:
            raise FileExistsError(f"{registry} exists and is not empty (use --force to replace it)")
        shutil.rmtree(registry)
    span = max(MIN_SPAN, versions * 4 * 3600)
    start = END - span - 30 * DAY
    rng = random.Random(seed)
    train, evals = make_datasets(rng, start)
    (registry / "models").mkdir(parents=True)
    (registry / "regops.yaml").write_text(REGOPS_YAML)
    files = 1
    for family, (_, description) in enumerate(FAMILIES):
        for ds in train[family] + evals[family]:
            folder = registry / "datasets" / ds.name
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{ds.version}.yaml").write_text(dataset_file(ds, description, rng))
            files += 1
    first = make_models(
        registry, seed, models=models, versions=versions, start=start, span=span, data=(train, evals), jobs=jobs
    )
    files += models * (versions + 1)
    lo, hi = first.versions[0].created, END
    mid = lo + (hi - lo) // 2
    manifest = {
        "models": models,
        "versions": versions,
        "seed": seed,
        "files": files,
        "resolve": {"model": first.name, "stage": "prod", "at": iso(mid), "expect": holder_at(first, "prod", mid)},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return registry


def make_models(
    registry: Path,
    seed: int,
    *,
    models: int,
    versions: int,
    start: int,
    span: int,
    data: tuple[list[list[Dataset]], list[list[Dataset]]],
    jobs: int | None = None,
) -> Model:
    """Build and write every model; returns the first. Each model has its own random streams, so the models are
    made on every core (a process each) and the output is the same as one process's."""
    job = partial(_make_model, registry, seed, models=models, versions=versions, start=start, span=span, data=data)
    workers = min(os.cpu_count() or 1, 8) if jobs is None else jobs
    if models < 8 or workers < 2 or sys.platform != "linux":
        made = [job(i) for i in range(models)]
    else:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            made = list(pool.map(job, range(models), chunksize=max(1, models // (workers * 4))))
    first = made[0]
    assert first is not None
    return first


def _make_model(
    registry: Path,
    seed: int,
    i: int,
    *,
    models: int,
    versions: int,
    start: int,
    span: int,
    data: tuple[list[list[Dataset]], list[list[Dataset]]],
) -> Model | None:
    model, _ = build_model(seed, i, models=models, versions=versions, start=start, span=span)
    write_model(registry, model, data[0], data[1], random.Random(f"{seed}:{i}:render"))
    return model if i == 0 else None  # the manifest's query is about the first model only


def build_model(seed: int, i: int, *, models: int, versions: int, start: int, span: int) -> tuple[Model, int]:
    rng = random.Random(f"{seed}:{i}")
    name, family, task, kind = BASES[i % len(BASES)]
    owners = [*rng.sample(PEOPLE, 3), f"@acme/{name}-owners"]
    model = Model(model_name(i), family, task, kind, owners)
    offset = randrange(rng, 0, 20 * DAY)
    slot = (span - offset) // versions
    numbers: list[tuple[str, str | None]] = []
    prev = None
    for _ in range(versions):
        cur = next_version(rng, prev)
        numbers.append((semver(cur), semver(prev) if prev else None))
        prev = cur
    History(rng, model, start=start + offset, slot=slot, pr_stride=models, pr0=i + 1).run(numbers)
    return model, versions


def write_model(
    registry: Path, model: Model, train: list[list[Dataset]], evals: list[list[Dataset]], rng: random.Random
) -> None:
    folder = f"{registry}/models/{model.name}"
    os.mkdir(folder)  # noqa: PTH102 (str paths throughout: no Path object per file written)
    write(f"{folder}/model.yaml", model_file(model))
    train_, evals_ = train[model.family], evals[model.family]
    for v in model.versions:
        write(f"{folder}/{v.version}.yaml", version_file(rng, model, v, train_, evals_))


WRITE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)


def write(path: str, text: str) -> None:
    """One new file in three syscalls (no buffered file object, no pathlib): 100,000 of them per registry."""
    fd = os.open(path, WRITE, 0o644)
    try:
        data = text.encode()
        if os.write(fd, data) != len(data):
            raise OSError(f"short write to {path} (disk full?)")
    finally:
        os.close(fd)


def cpu_seconds() -> float:
    """User + system CPU of this process and its finished children (the pool's workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, required=True, help="number of models")
    parser.add_argument("--versions", type=int, required=True, help="versions per model")
    parser.add_argument("--out", type=Path, required=True, help="writes OUT/registry/ and OUT/manifest.json")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true", help="replace an existing OUT/registry/")
    parser.add_argument("--jobs", type=int, help="processes (default: one per core, at most 8; 1 = no pool)")
    args = parser.parse_args(argv)
    began, cpu = time.perf_counter(), cpu_seconds()
    try:
        registry = generate(args.out, args.models, args.versions, args.seed, force=args.force, jobs=args.jobs)
    except (FileExistsError, ValueError) as e:
        print(f"generate.py: {e}", file=sys.stderr)
        return 2
    took, cpu = time.perf_counter() - began, cpu_seconds() - cpu
    total = args.models * args.versions
    print(
        f"wrote {registry}: {args.models} models x {args.versions} versions = {total:,} "
        f"in {took:.2f} s ({cpu:.2f} s CPU, user+sys, this process and its workers)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
