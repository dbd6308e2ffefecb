#!/usr/bin/env python3
"""Benchmark the regops write verbs (register, promote); print one Markdown table.

    python benchmarks/lifecycle.py [--repeat 5] [--size-mb 1024] [--regops PATH] [--workdir DIR]

Two questions, answered in one run:

1. ``regops register`` of a version with SIZE MB of weights (one file of random
   bytes plus a few small JSON files), into a fresh registry copy and an empty
   content-addressed store every run, against ``sha256sum`` + ``cp`` of the same
   bytes (one ``sh -c`` per run). Target: regops at most 1.3 times that baseline.
2. ``regops promote MODEL@VERSION --to dev`` in a 10,000-version registry
   (100 models x 100 versions, ``generate.py``), each run promoting the
   candidate of a different model, with a warm parse cache (target ≤ 0.5 s),
   a cold one, and ``--dry-run``. ``regops validate`` must pass afterwards.

Runs are timed as in ``run.py`` (whose helpers this reuses): a fresh subprocess
each, one untimed warm-up per row, then ``--repeat`` rounds, interleaved.
The OS page cache is not dropped (that needs root): the warm-ups leave the
source files in it, so regops and the baselines are all measured warm.

Disk: SIZE for the source files, plus SIZE for the one store or copy that
exists at a time (each is deleted right after its run). Exit status: 0 after
printing the table; 1 when a command fails or the final validate finds
problems (their output is printed); 2 on bad options. Stdlib only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import sys
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import generate
from run import (
    Bench,
    Case,
    Failed,
    Run,
    check,
    default_regops,
    fmt_s,
    progress,
    python_for,
    regops_version,
    run_in_workdir,
    shown,
)

RATIO_TARGET = 1.3  # regops register ÷ sha256sum + cp
PROMOTE_TARGET = 0.5  # s, a real promote on 10k with a warm cache
PROMOTE_SIZE = (100, 100)  # models, versions
MB = 1 << 20
SMALL_FILES = {  # what sits next to the weights in a typical text model's folder
    "config.json": 700,
    "tokenizer.json": 711_000,
    "tokenizer_config.json": 1_200,
    "special_tokens_map.json": 280,
}
EVALS = {"accuracy": 0.9123, "f1": 0.9071, "precision": 0.9102, "recall": 0.9044, "latency_p95_ms": 31.5}
PARAMS = """\
learning_rate: 3.0e-5
epochs: 3
batch_size: 32
weight_decay: 0.01
base_model: distilroberta-base
seed: 1234
"""


# --- rows whose command line changes from run to run -----------------------------


class Scenario:
    """Makes the command line of one run, checks what it did, and cleans up after it."""

    def prepare(self) -> list[str]:
        raise NotImplementedError

    def verify(self, run: Run) -> str | None:
        """Why the run did not do what it should (None: it did)."""
        return None

    def cleanup(self) -> None:
        """Outside the timing; runs even when the command failed."""


@dataclass
class Step(Case):
    scenario: Scenario | None = None


class LifecycleBench(Bench):
    """run.py's Bench, with a fresh command line (and setup/cleanup) per run for Step rows."""

    def once(self, case: Case) -> Run:
        scenario = case.scenario if isinstance(case, Step) else None
        if scenario is None:
            return super().once(case)
        case.argv = scenario.prepare()
        try:
            run = super().once(case)
            if run.code == 0 and (why := scenario.verify(run)):
                raise Failed(f"`{shown(case.argv)}` exited 0 but {why} ({case.label}).\n--- stdout ---\n{run.stdout}")
            return run
        finally:
            scenario.cleanup()


def tree_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


class Register(Scenario):
    """`regops register` into a fresh copy of a 1-version registry, so its store starts empty."""

    def __init__(self, regops: str, pristine: Path, runs: Path, source: Path, spec: dict[str, str]) -> None:
        self.regops, self.pristine, self.runs, self.source, self.spec = regops, pristine, runs, source, spec
        self.total = tree_bytes(source)
        self.n = 0
        self.current: Path | None = None

    def prepare(self) -> list[str]:
        self.n += 1
        self.current = self.runs / f"register-{self.n}"
        shutil.copytree(self.pristine, self.current / "registry")
        s = self.spec
        return [
            self.regops,
            "register",
            s["model"],
            "--registry",
            str(self.current / "registry"),
            "--artifacts",
            str(self.source),
            "--evals",
            s["evals"],
            "--params",
            s["params"],
            "--dataset",
            s["dataset"],
            "--eval-dataset",
            s["eval_dataset"],
            "--version",
            s["version"],
            "--by",
            "bench",
        ]

    def verify(self, run: Run) -> str | None:
        assert self.current is not None
        stored = tree_bytes(self.current / ".regops" / "store")
        written = self.current / "registry" / "models" / self.spec["model"] / f"{self.spec['version']}.yaml"
        if stored != self.total:
            return f"its store holds {stored:,} bytes, not the {self.total:,} of the artifacts"
        if not written.is_file():
            return f"{written} was not written"
        return None

    def cleanup(self) -> None:
        if self.current is not None:
            shutil.rmtree(self.current, ignore_errors=True)
            self.current = None


class Baseline(Scenario):
    """`sha256sum` (or another hasher) over the files, then `cp` of them into a fresh folder: one `sh -c`."""

    def __init__(self, runs: Path, source: Path, name: str, hasher: str, *, sync: bool = False) -> None:
        self.runs, self.source, self.name, self.hasher, self.sync = runs, source, name, hasher, sync
        self.files = sorted(str(p) for p in source.iterdir() if p.is_file())
        self.total = tree_bytes(source)
        self.n = 0
        self.current: Path | None = None

    def prepare(self) -> list[str]:
        self.n += 1
        self.current = self.runs / f"{self.name}-{self.n}"
        files = " ".join(map(shlex.quote, self.files))
        dest = shlex.quote(str(self.current))
        script = f"{self.hasher} {files} >/dev/null && mkdir {dest} && cp -- {files} {dest}/"
        if self.sync:
            copies = " ".join(shlex.quote(str(self.current / Path(f).name)) for f in self.files)
            script += f" && sync -- {copies}"
        return ["sh", "-c", script]

    def verify(self, run: Run) -> str | None:
        assert self.current is not None
        copied = tree_bytes(self.current)
        return None if copied == self.total else f"it copied {copied:,} bytes, not {self.total:,}"

    def cleanup(self) -> None:
        if self.current is not None:
            shutil.rmtree(self.current, ignore_errors=True)
            self.current = None


class Promote(Scenario):
    """`regops promote M@V --to dev`, each real run on the candidate of a model not promoted before."""

    def __init__(self, regops: str, registry: Path, pool: deque[tuple[str, str]], *, dry_run: bool) -> None:
        self.regops, self.registry, self.pool, self.dry_run = regops, registry, pool, dry_run
        self.target: tuple[str, str] | None = None

    def prepare(self) -> list[str]:
        if not self.pool:
            raise Failed("no candidate left to promote (lower --repeat)")
        # A dry run plans the next real promote (it writes nothing, so it needs no model of its own).
        self.target = self.pool[0] if self.dry_run else self.pool.popleft()
        model, version = self.target
        argv = [self.regops, "promote", f"{model}@{version}", "--to", "dev", "--notes", "bench", "--by", "bench"]
        return [*argv, "--registry", str(self.registry), *(["--dry-run"] if self.dry_run else [])]

    def verify(self, run: Run) -> str | None:
        assert self.target is not None
        model, version = self.target
        stage = stage_of(self.registry / "models" / model / f"{version}.yaml")
        expected = "candidate" if self.dry_run else "dev"
        return None if stage == expected else f"{model}@{version} is in {stage}, not {expected}, after it"


def stage_of(path: Path) -> str | None:
    match = re.search(r"^stage: (\S+)$", path.read_text(encoding="utf-8"), re.MULTILINE)
    return match.group(1) if match else None


def candidates(registry: Path) -> deque[tuple[str, str]]:
    """(model, version) of each model's candidate, in model order (the generator leaves one per model)."""
    found = []
    for folder in sorted((registry / "models").iterdir()):
        versions = [p.stem for p in folder.glob("*.yaml") if p.name != "model.yaml" and stage_of(p) == "candidate"]
        if len(versions) != 1:
            raise Failed(f"{folder.name} has {len(versions)} candidates in the generated registry, not 1")
        found.append((folder.name, versions[0]))
    return deque(found)


# --- setup ---------------------------------------------------------------------------


def make_source(folder: Path, size_mb: int) -> None:
    """The artifacts folder: SIZE MB of random weights and a few small JSON files."""
    folder.mkdir(parents=True)
    with (folder / "model.safetensors").open("wb") as out:
        left = size_mb * MB
        while left:
            chunk = min(left, 16 * MB)
            out.write(os.urandom(chunk))
            left -= chunk
    for name, size in SMALL_FILES.items():
        body = json.dumps({"bench": os.urandom(max(1, (size - 16) // 2)).hex()})
        (folder / name).write_text(body + "\n")


def register_spec(work: Path, pristine: Path, model: str) -> dict[str, str]:
    """Evals, params and dataset refs for registering a new version of ``model`` into ``pristine``."""
    existing = next(p for p in (pristine / "models" / model).glob("*.yaml") if p.name != "model.yaml")
    train, evals = re.findall(r"^  dataset: (\S+)$", existing.read_text(encoding="utf-8"), re.MULTILINE)[:2]
    (work / "evals.json").write_text(json.dumps(EVALS, indent=2) + "\n")
    (work / "params.yaml").write_text(PARAMS)
    major = int(existing.stem.split(".")[0])
    return {
        "model": model,
        "evals": str(work / "evals.json"),
        "params": str(work / "params.yaml"),
        "dataset": train,
        "eval_dataset": evals,
        "version": f"{major + 1}.0.0",
    }


# --- the table -----------------------------------------------------------------------


def median(case: Case) -> float:
    return statistics.median(r.seconds for r in case.runs)


def row(case: Case, target: str = "", ratio: str = "") -> str:
    times = [r.seconds for r in case.runs]
    cells = (case.label, fmt_s(median(case)), fmt_s(min(times)), fmt_s(max(times)), target, ratio)
    return "| " + " | ".join(cells) + " |"


def verdict(x: float, limit: float) -> str:
    return "ok" if x <= limit else "over"


def table(register: list[Case], promote: list[Case]) -> str:
    regops, baseline, *others = register
    ratio = median(regops) / median(baseline)
    lines = [
        "| what | median s | min s | max s | target | ratio |",
        "|---|---:|---:|---:|---|---|",
        row(
            regops,
            f"≤ {RATIO_TARGET:g}× baseline",
            f"{ratio:.2f}× baseline ({verdict(ratio, RATIO_TARGET)})",
        ),
        row(baseline, "", "1.00× (the baseline)"),
    ]
    lines += [row(c, "", f"regops = {median(regops) / median(c):.2f}× this") for c in others]
    real = promote[0]
    lines.append(
        row(
            real,
            f"≤ {PROMOTE_TARGET:g} s",
            f"{median(real) / PROMOTE_TARGET:.2f}× target ({verdict(median(real), PROMOTE_TARGET)})",
        )
    )
    lines += [row(c, "", f"{median(c) / median(real):.2f}× the warm real promote") for c in promote[1:]]
    return "\n".join(lines)


# --- main ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per row (default 5)")
    parser.add_argument("--size-mb", type=int, default=1024, help="size of the weights file in MiB (default 1024)")
    parser.add_argument("--regops", default=default_regops(), help="the regops executable (default: next to python)")
    parser.add_argument(
        "--workdir",
        type=Path,
        help="work here and keep the registries (default: a temp dir, removed); weights are always removed",
    )
    args = parser.parse_args(argv)
    models = PROMOTE_SIZE[0]
    if 2 * (args.repeat + 1) > models:
        parser.error(f"--repeat {args.repeat} needs more than the {models} candidates the promote registry has")
    if args.size_mb < 1:
        parser.error("--size-mb must be at least 1")
    return run_in_workdir(parser, args, bench, prefix="regops-lifecycle-")


def bench(args: argparse.Namespace, work: Path) -> int:
    need = (2 * args.size_mb + 200) * MB
    free = shutil.disk_usage(work).free
    if free < need:
        print(f"lifecycle.py: {work} has {free / MB:,.0f} MiB free; this needs about {need / MB:,.0f}", file=sys.stderr)
        return 2
    b = LifecycleBench(work, args.regops, python_for(args.regops))
    source = work / "artifacts"
    try:
        return measure(args, b, work, source)
    except Failed as e:
        print(f"benchmark stopped: {e}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(source, ignore_errors=True)
        shutil.rmtree(work / "runs", ignore_errors=True)


def measure(args: argparse.Namespace, b: LifecycleBench, work: Path, source: Path) -> int:
    progress(f"writing {args.size_mb:,} MiB of random weights + {len(SMALL_FILES)} small files")
    shutil.rmtree(source, ignore_errors=True)
    make_source(source, args.size_mb)
    runs = work / "runs"
    runs.mkdir(exist_ok=True)
    small = generate(work / "register-1x1", 1, 1, force=True)
    model = json.loads((work / "register-1x1" / "manifest.json").read_text())["resolve"]["model"]
    spec = register_spec(work, small, model)
    began = time.perf_counter()
    big = generate(work / "promote-10k", *PROMOTE_SIZE, force=True)
    made = time.perf_counter() - began
    pool = candidates(big)
    progress(f"generated {PROMOTE_SIZE[0]} × {PROMOTE_SIZE[1]} in {made:.2f} s")

    mib = f"{args.size_mb:,} MiB"
    register = [
        Step(f"`regops register`, {mib} + {len(SMALL_FILES)} small files, fresh store", [], "warm", "1x1"),
        Step(f"baseline: `sha256sum` + `cp` of the same files into a fresh folder ({mib})", [], "-"),
        Step("info: `openssl dgst -sha256` + `cp` (the SHA-256 code Python's hashlib uses)", [], "-"),
        Step("info: `openssl dgst -sha256` + `cp` + `sync` of the copies (regops fsyncs what it stores)", [], "-"),
    ]
    register[0].scenario = Register(b.regops, small, runs, source, spec)
    register[1].scenario = Baseline(runs, source, "baseline", "sha256sum --")
    register[2].scenario = Baseline(runs, source, "openssl", "openssl dgst -sha256")
    register[3].scenario = Baseline(runs, source, "openssl-sync", "openssl dgst -sha256", sync=True)
    if shutil.which("openssl") is None:
        register = register[:2]

    n = f"{PROMOTE_SIZE[0] * PROMOTE_SIZE[1] // 1000}k"
    promote = [
        Step(f"`regops promote M@candidate --to dev`, {n}, warm cache", [], "warm", n),
        Step(f"`regops promote M@candidate --to dev`, {n}, cold cache", [], "cold", n),
        Step(f"`regops promote … --dry-run`, {n}, warm cache", [], "warm", n),
        Step(f"`regops promote … --dry-run`, {n}, cold cache", [], "cold", n),
    ]
    for case in promote:
        case.scenario = Promote(b.regops, big, pool, dry_run="--dry-run" in case.label)

    validate = Case(f"`regops validate`, {n}, warm cache", [b.regops, "validate", "--registry", str(big)], "warm", n)
    progress("filling the warm cache: regops validate (untimed)")
    check(validate, b.once(validate))
    b.measure([*register, *promote], args.repeat)
    missing = [c.missing for c in (*register, *promote) if c.missing]
    if missing:
        raise Failed("; ".join(missing))

    progress("regops validate on the promoted registry")
    final = b.once(validate)
    if final.code != 0:
        print(f"`{shown(validate.argv)}` exited {final.code} after the promotes:", file=sys.stderr)
        print(final.stdout + final.stderr, file=sys.stderr)
        return 1
    promoted = PROMOTE_SIZE[0] - len(pool)
    print_report(args, b, register=register, promote=promote, made=made, promoted=promoted)
    return 0


def print_report(
    args: argparse.Namespace,
    b: LifecycleBench,
    *,
    register: list[Case],
    promote: list[Case],
    made: float,
    promoted: int,
) -> None:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"## regops lifecycle benchmarks ({now})\n")
    print(
        f"- {regops_version(b)}; Python {platform.python_version()} on {platform.system()} "
        f"{platform.machine()}, {os.cpu_count()} CPUs"
    )
    print(f"- each row: median of **{args.repeat}** timed runs (after 1 untimed warm-up), fresh subprocess each")
    print(
        f"- register: a {args.size_mb:,} MiB file of random bytes + {len(SMALL_FILES)} small JSON files into a fresh "
        "copy of a 1-model registry with an empty local store every run (copy and store deletion untimed); "
        "page cache not dropped: the warm-ups leave the source files cached, so every row is measured warm"
    )
    print(
        f"- promote: {PROMOTE_SIZE[0]} models × {PROMOTE_SIZE[1]} versions (generated in {made:.2f} s); every real "
        f"run promotes the candidate of another model ({promoted} promoted in all), a dry run plans the next one; "
        "warm = one cache dir filled by an untimed `regops validate`; `regops validate` exits 0 afterwards"
    )
    print()
    print(table(register, promote))


if __name__ == "__main__":
    raise SystemExit(main())
