#!/usr/bin/env python3
"""Benchmark the regops CLI on synthetic registries; print one Markdown table.

    python benchmarks/run.py [--repeat 5] [--sizes 1k,10k,100k] [--regops PATH] [--before PATH] [--workdir DIR]

Everything in the table comes from this one run. Each measurement is a fresh
subprocess, timed with ``time.perf_counter`` around it; peak RSS is the
``ru_maxrss`` that ``os.wait4`` reports for that child (Linux: the largest
single process in its tree, not the sum). Every command gets one untimed
warm-up run (which also fills the warm parse cache), then ``--repeat`` timed
runs, interleaved round by round so a burst of noise hits every row alike.
Medians are the headline; min and max show the spread.

Cache modes (regops keeps its parse cache in ``$REGOPS_CACHE_DIR``):
cold = a fresh empty cache dir per run; warm = one reused dir, filled by the
warm-up; no cache = ``REGOPS_NO_CACHE=1``.

Exit status: 0 after printing the table; 1 when a regops command fails (its
output is printed: either the generator or regops has a bug); 2 on bad options.
Stdlib only (the floor's subprocess imports PyYAML).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

GENERATOR = Path(__file__).resolve().parent / "generate.py"

SIZES = {"1k": (20, 50), "10k": (100, 100), "100k": (200, 500)}
HELP_TARGET = 0.15  # s, cold `regops --help`
STATUS_TARGET = 0.3  # s, `regops status` on 1k
RSS_TARGET = 300.0  # MB, validate on 10k, and any command on 100k
# Issue #10's rows at 100k: the PR check on a fresh clone, status and full validate warm.
SITE_TARGET = 10.0  # s, `regops site build` on 10k
TARGETS_100K = {"pr": 1.0, "status": 0.5, "validate": 3.0, "generate": 20.0}
SKIPPED_AT_100K = ("`validate`, 100k, no cache", "`status`, 100k, cold cache", "`site build`, 100k")
HISTORY_SINCE = "2026-06-01"  # `history --bots --since`: the last ~5 months of the generated histories

FLOOR = """\
import sys
from pathlib import Path

import yaml

n = 0
for path in sorted(Path(sys.argv[1]).rglob("*.yaml")):
    with open(path, encoding="utf-8") as f:
        yaml.load(f.read(), Loader=yaml.CSafeLoader)
    n += 1
print(n)
"""


class Failed(Exception):
    """A measured command exited non-zero: stop, and show why."""


@dataclass
class Run:
    seconds: float
    rss_mb: float
    code: int
    stdout: str
    stderr: str
    cpu: float = 0.0  # user + system seconds of the child and the children it waited for


@dataclass
class Case:
    """One row that is timed: a command line, an environment, a cache mode."""

    label: str
    argv: list[str]
    cache: str  # "cold" | "warm" | "none" | "-"
    size: str = ""
    target: float | None = None
    floor: str = ""  # label of the floor row to compare with
    expect: str | None = None  # a string the output must contain (a correctness check)
    runs: list[Run] = field(default_factory=list)
    missing: str = ""  # why the row could not be measured


# --- running one child -------------------------------------------------------


def spawn(argv: list[str], env: dict[str, str], scratch: Path) -> Run:
    """Run argv to completion; wall time and the child's peak RSS."""
    out_path, err_path = scratch / "stdout", scratch / "stderr"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        began = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - began
    proc.returncode = os.waitstatus_to_exitcode(status)
    rss_mb = usage.ru_maxrss / 1024 if sys.platform != "darwin" else usage.ru_maxrss / 2**20
    return Run(
        seconds,
        rss_mb,
        proc.returncode,
        out_path.read_text(errors="replace"),
        err_path.read_text(errors="replace"),
        usage.ru_utime + usage.ru_stime,
    )


def tree_pss_peak(argv: list[str], env: dict[str, str], scratch: Path, every: float = 0.01) -> float | None:
    """Peak of the summed PSS (MB) over a child and its descendants, sampled (Linux only, untimed)."""
    if not Path("/proc/self/smaps_rollup").exists():
        return None
    peak = 0
    done = threading.Event()

    def sample(root: int) -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, sum(_pss_kb(pid) for pid in _tree(root)))
            done.wait(every)

    with (scratch / "stdout").open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        sampler = threading.Thread(target=sample, args=(proc.pid,), daemon=True)
        sampler.start()
        proc.wait()
        done.set()
        sampler.join()
    return peak / 1024


def _tree(root: int) -> list[int]:
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        try:
            for task in Path(f"/proc/{pid}/task").iterdir():
                todo += map(int, (task / "children").read_text().split())
        except (OSError, ValueError):
            continue
    return pids


def _pss_kb(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    match = re.search(r"^Pss:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) if match else 0


# --- the benchmark -----------------------------------------------------------


class Bench:
    def __init__(self, work: Path, regops: str, python: str) -> None:
        self.work = work
        self.regops = regops
        self.python = python
        self.scratch = work / "scratch"
        self.scratch.mkdir(parents=True, exist_ok=True)
        # PYTHONDONTWRITEBYTECODE would recompile regops on every run; an installed package has its .pyc files.
        drop = ("REGOPS_", "PYTHONDONTWRITEBYTECODE")
        self.base_env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
        self.cold_runs = 0

    def env(self, case: Case) -> tuple[dict[str, str], Path | None]:
        env = dict(self.base_env)
        fresh = None
        if case.cache == "cold":
            self.cold_runs += 1
            fresh = self.work / f"cache-cold-{self.cold_runs}"
            env["REGOPS_CACHE_DIR"] = str(fresh)
        elif case.cache == "none":
            env["REGOPS_NO_CACHE"] = "1"
            env["REGOPS_CACHE_DIR"] = str(self.work / "cache-unused")
        else:  # warm, or a command that reads nothing
            env["REGOPS_CACHE_DIR"] = str(self.work / f"cache-warm-{case.size or 'none'}")
        return env, fresh

    def once(self, case: Case) -> Run:
        env, fresh = self.env(case)
        try:
            return spawn(case.argv, env, self.scratch)
        finally:
            if fresh is not None:
                shutil.rmtree(fresh, ignore_errors=True)

    def warm_up(self, case: Case) -> None:
        """One untimed run: fills caches, and finds missing verbs, failures and wrong answers."""
        self.inspect(case, self.once(case))

    def inspect(self, case: Case, run: Run) -> None:
        """A missing verb marks the case missing; a failure stops the benchmark; a wrong answer becomes a note."""
        verb = case.argv[1] if case.argv[0] == self.regops and len(case.argv) > 1 else ""
        if run.code == 2 and "invalid choice" in run.stderr and verb and not verb.startswith("-"):
            case.missing = f"`regops {verb}` does not exist yet"
            return
        check(case, run)
        if case.expect is not None and case.expect not in run.stdout:
            NOTES.append(
                f"`{shown(case.argv)}` printed no {case.expect!r} (expected from the generator's history); "
                f"output began: {run.stdout.strip()[:200]!r}"
            )

    def measure(self, cases: list[Case], repeat: int, *, warm_up: str = "all") -> None:
        """Warm up, then ``repeat`` rounds; a case that already has its run (the generator: once) is left alone.
        ``warm_up="warm"``: only rows with a warm cache get the untimed run; the others' first timed run is
        inspected instead (a cold row's warm-up fills nothing, and at 100k each costs a minute)."""
        cases = [c for c in cases if not c.runs]
        cold = {id(c) for c in cases if warm_up != "all" and c.cache != "warm"}
        for case in cases:
            if id(case) not in cold:
                progress(f"warm-up: {case.label}")
                self.warm_up(case)
        for r in range(repeat):
            progress(f"round {r + 1}/{repeat}")
            for case in [c for c in cases if not c.missing]:
                run = self.once(case)
                if r == 0 and id(case) in cold:
                    self.inspect(case, run)
                    if case.missing:
                        continue
                check(case, run)
                case.runs.append(run)
                # A long run (100k) that is stopped early still leaves its figures on stderr.
                progress(f"  {case.label}: {run.seconds:.3f} s, {run.cpu:.3f} s CPU, {run.rss_mb:.0f} MB")


NOTES: list[str] = []


def check(case: Case, run: Run) -> None:
    if run.code != 0:
        raise Failed(
            f"`{shown(case.argv)}` exited {run.code} ({case.label}).\n"
            f"--- stdout ---\n{run.stdout[-6000:]}\n--- stderr ---\n{run.stderr[-6000:]}"
        )


def shown(argv: list[str]) -> str:
    parts = [Path(argv[0]).name, *argv[1:]]
    if parts[0].startswith("python") and len(parts) > 2 and parts[1] == "-c":
        parts[2] = "<floor>"
    return " ".join(parts)


def progress(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def prepare(b: Bench, label: str, size: tuple[int, int, int], reuse: list[Path]) -> tuple[Path, str, list[Case]]:
    """The generated registry for ``size`` (models, versions, seed), committed on main: a ``--reuse`` folder
    generated with the same arguments (read, never written), else generated now in a timed subprocess."""
    models, versions, seed = size
    for folder in reuse:
        manifest = json.loads((folder / "manifest.json").read_text())
        if (manifest["models"], manifest["versions"], manifest["seed"]) == size:
            if git_out("-C", str(folder), "status", "--porcelain", "--untracked-files=no", "registry") != "":
                raise Failed(f"--reuse {folder}: registry/ has uncommitted changes; regenerate it or commit them")
            return folder, f"reused from {folder} (generator not timed here)", []
    repo = b.work / label
    argv = [b.python, str(GENERATOR), "--models", str(models), "--versions", str(versions), "--seed", str(seed)]
    case = Case(f"generator, {label}: `generate.py --models {models} --versions {versions}`", argv, "-", label)
    case.argv += ["--out", str(repo), "--force"]
    case.target = TARGETS_100K["generate"] if label == "100k" else None
    progress(f"generating {label}")
    run = b.once(case)
    check(case, run)
    case.runs.append(run)
    shutil.rmtree(repo / ".git", ignore_errors=True)  # a kept --workdir: the registry was just generated anew
    git("init", "-q", "-b", "main", str(repo))
    git("-C", str(repo), "add", "-A")
    git("-C", str(repo), "commit", "-q", "-m", "registry")
    return repo, f"generated in {run.seconds:.2f} s ({run.cpu:.2f} s CPU)", [case]


def pr_clone(repo: Path, clone: Path) -> Path:
    """A pull request on the generated registry (committed on main in ``repo``), cloned fresh (as a CI checkout),
    and one version file changed on branch ``pr`` (a candidate archived by a person). Returns the clone's registry."""
    shutil.rmtree(clone, ignore_errors=True)
    git("clone", "-q", "--branch", "main", str(repo), str(clone))
    model = sorted((clone / "registry" / "models").iterdir())[0]
    path = next(p for p in sorted(model.glob("*.yaml")) if "\nstage: candidate\n" in p.read_text())
    text = path.read_text().replace("\nstage: candidate\n", "\nstage: archived\n")
    text = text.replace("transitions: []", "transitions:").rstrip("\n")
    path.write_text(f"{text}\n  - {{from: candidate, to: archived, at: 2026-11-30T10:00:00Z, by: alice}}\n")
    git("-C", str(clone), "checkout", "-q", "-b", "pr")
    git("-C", str(clone), "commit", "-q", "-am", "archive")
    return clone / "registry"


def before_cases(cases: list[Case], label: str) -> list[Case]:
    """The same rows run by another regops (``--before``), each with its own warm cache, floor left out."""
    kept = [c for c in cases if not c.label.startswith("floor")]
    for case in kept:
        case.label, case.size, case.target = f"before: {case.label}", f"{label}-before", None
    return kept


def git(*args: str) -> None:
    git_out(*args)


def git_out(*args: str) -> str:
    who = ["-c", "user.name=bench", "-c", "user.email=bench@example.com"]
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}  # `status` on a --reuse folder must not refresh its index
    return subprocess.run(["git", *who, *args], check=True, capture_output=True, text=True, env=env).stdout


def query_cases(label: str, reg: list[str], at: str, regops: str) -> list[Case]:
    """Issue #10's read rows, warm: `status` (now and --at), and the whole-registry `history` filters of #9."""
    status = STATUS_TARGET if label == "1k" else TARGETS_100K["status"] if label == "100k" else None
    target = TARGETS_100K["status"] if label == "100k" else None
    reads = (
        ("`status`", [regops, "status", *reg], status),
        (f"`status --at {at}`", [regops, "status", "--at", at, *reg], target),
        (
            f"`history --bots --since {HISTORY_SINCE}`",
            [regops, "history", "--bots", "--since", HISTORY_SINCE, *reg],
            target,
        ),
        ("`history --kind rollback`", [regops, "history", "--kind", "rollback", *reg], target),
    )
    return [Case(f"{what}, {label}, warm cache", argv, "warm", label, goal) for what, argv, goal in reads]


def cases_for(
    label: str,
    registry: Path,
    manifest: dict[str, Any],
    regops: str,
    python: str,
    *,
    pr: Path | None = None,
    site: Path,
) -> list[Case]:
    reg = ["--registry", str(registry)]
    floor = f"floor {label}"
    big = label == "100k"
    query = manifest["resolve"]
    resolve = [regops, "resolve", f"{query['model']}@{query['stage']}", "--at", query["at"], *reg]
    prs = []
    if pr is not None:
        argv = [regops, "validate", "--base", "main", "--registry", str(pr)]
        what = f"`validate --base main`, {label}, PR changing 1 version file, fresh clone, cold cache"
        prs.append(Case(what, argv, "cold", label, TARGETS_100K["pr"] if big else None))
    rows = [
        *prs,
        *query_cases(label, reg, query["at"], regops),
        Case(f"`validate`, {label}, cold cache", [regops, "validate", *reg], "cold", label, floor=floor),
        Case(
            f"`validate`, {label}, warm cache",
            [regops, "validate", *reg],
            "warm",
            label,
            TARGETS_100K["validate"] if big else None,
            floor=floor,
        ),
        Case(f"`validate`, {label}, no cache", [regops, "validate", *reg], "none", label, floor=floor),
        Case(
            f"`status`, {label}, cold cache",
            [regops, "status", *reg],
            "cold",
            label,
            STATUS_TARGET if label == "1k" else None,
        ),
        Case(
            f"`resolve {query['model']}@prod --at {query['at']}`, {label}, warm cache",
            resolve,
            "warm",
            label,
            expect=query["expect"],
        ),
        Case(
            f"`site build`, {label}, warm cache",
            [regops, "site", "build", *reg, "--out", str(site)],
            "warm",
            label,
            SITE_TARGET if label == "10k" else None,
        ),
        Case(
            f"floor {label}: PyYAML CSafeLoader, {manifest['files']:,} files",
            [python, "-c", FLOOR, str(registry)],
            "-",
            label,
            expect=f"{manifest['files']}\n",
        ),
    ]
    # At 100k only issue #10's rows (and the floor): each other cold read costs minutes on a loaded machine.
    return [c for c in rows if not big or not c.label.startswith(SKIPPED_AT_100K)]


# --- the table ---------------------------------------------------------------


def fmt_s(x: float) -> str:
    return f"{x:.3f}" if x < 10 else f"{x:.2f}"


def row(case: Case, floors: dict[str, float]) -> str:
    if case.missing:
        return f"| {case.label} | n/a | | | | | {target_text(case)} | {case.missing} | |"
    times = [r.seconds for r in case.runs]
    med = statistics.median(times)
    rss = max(r.rss_mb for r in case.runs)
    vs_target = ""
    if case.target is not None:
        vs_target = f"{med / case.target:.2f}× ({'ok' if med <= case.target else 'over'})"
    if case.size == "100k":  # issue #10: any command at 100k stays under RSS_TARGET
        vs_target += f"{'; ' if vs_target else ''}RSS {'ok' if rss <= RSS_TARGET else 'over'}"
    vs_floor = f"{med / floors[case.floor]:.2f}×" if case.floor in floors else ""
    cells = (
        case.label,
        fmt_s(med),
        fmt_s(min(times)),
        fmt_s(max(times)),
        fmt_s(statistics.median(r.cpu for r in case.runs)),
        f"{rss:.0f}",
        target_text(case),
        vs_target,
        vs_floor,
    )
    return "| " + " | ".join(cells) + " |"


def target_text(case: Case) -> str:
    return f"≤ {case.target:g} s" if case.target is not None else ""


def rss_row(label: str, validate: list[Case], pss: float | None) -> list[str]:
    runs = [r for c in validate for r in c.runs]
    if not runs:
        return []
    target = RSS_TARGET if label in ("10k", "100k") else None
    rss = max(r.rss_mb for r in runs)

    def judged(mb: float) -> str:
        return f"{mb / target:.2f}× ({'ok' if mb < target else 'over'})" if target else ""

    goal = f"< {RSS_TARGET:g} MB" if target else ""
    rows = [
        f"| peak RSS of `validate`, {label} (max over its {len(runs)} timed runs) | | | | | "
        f"{rss:.0f} | {goal} | {judged(rss)} | |"
    ]
    if pss is not None:
        rows.append(
            f"| peak PSS of `validate`, {label}, cold cache, whole process tree (sampled, untimed) "
            f"| | | | | {pss:.0f} | {goal} | {judged(pss)} | |"
        )
    return rows


def table(help_case: Case, per_size: dict[str, list[Case]], pss: dict[str, float | None]) -> str:
    floors = {
        c.label.split(":")[0]: statistics.median(r.seconds for r in c.runs)
        for cases in per_size.values()
        for c in cases
        if c.label.startswith("floor") and c.runs
    }
    lines = [
        "| what | median s | min s | max s | median CPU s | peak RSS MB | target | vs target | vs floor |",
        "|---|---:|---:|---:|---:|---:|---|---|---:|",
        row(help_case, floors),
    ]
    for label, cases in per_size.items():
        lines += [row(c, floors) for c in cases]
        lines += rss_row(label, [c for c in cases if c.label.startswith("`validate`")], pss.get(label))
    return "\n".join(lines)


# --- main --------------------------------------------------------------------


def parse_sizes(text: str) -> dict[str, tuple[int, int]]:
    sizes = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        if item in SIZES:
            sizes[item] = SIZES[item]
        elif m := re.fullmatch(r"(\d+)x(\d+)", item):
            sizes[item] = (int(m.group(1)), int(m.group(2)))
        else:
            raise argparse.ArgumentTypeError(f"unknown size {item!r}: use 1k, 10k or MODELSxVERSIONS (e.g. 50x40)")
    if not sizes:
        raise argparse.ArgumentTypeError("no sizes given")
    return sizes


def default_regops() -> str:
    return str(Path(sys.executable).parent / "regops")


def python_for(regops: str) -> str:
    """The interpreter regops runs on (the floor must use the same one)."""
    candidate = Path(regops).parent / "python"
    return str(candidate) if candidate.exists() else sys.executable


def regops_version(bench: Bench) -> str:
    run = spawn([bench.regops, "--version"], dict(bench.base_env), bench.scratch)
    return run.stdout.strip() or run.stderr.strip() or f"(--version exited {run.code})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per row (default 5)")
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        default="1k,10k",
        help="comma-separated: 1k (20x50), 10k (100x100) or MODELSxVERSIONS; default 1k,10k",
    )
    parser.add_argument("--regops", default=default_regops(), help="the regops executable (default: next to python)")
    parser.add_argument("--seed", type=int, default=0, help="generator seed")
    parser.add_argument("--before", help="another regops executable (the one a change started from): its rows too")
    parser.add_argument("--workdir", type=Path, help="generate here and keep it (default: a temp dir, removed)")
    parser.add_argument(
        "--warm-up",
        choices=("all", "warm"),
        default="all",
        help="untimed warm-up run for every row (default), or only for warm-cache rows (saves minutes at 100k)",
    )
    parser.add_argument(
        "--reuse",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="a registry generate.py wrote (DIR/manifest.json, DIR/registry committed on main) to use instead of "
        "generating the size with the same models, versions and seed; only read (repeatable)",
    )
    args = parser.parse_args(argv)
    for folder in args.reuse:
        if not (folder / "manifest.json").is_file() or not (folder / ".git").exists():
            parser.error(f"--reuse {folder}: no manifest.json or no git repository there (generate it, then commit)")
    return run_in_workdir(parser, args, bench, prefix="regops-bench-")


def run_in_workdir(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    bench: Callable[[argparse.Namespace, Path], int],
    *,
    prefix: str,
) -> int:
    """Every runner's last step: check --repeat and --regops, then run in --workdir (kept) or a temp dir."""
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if not Path(args.regops).exists():
        parser.error(f"{args.regops} does not exist; pass --regops PATH")
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        return bench(args, args.workdir.resolve())
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        return bench(args, Path(tmp))


def bench(args: argparse.Namespace, work: Path) -> int:
    b = Bench(work, args.regops, python_for(args.regops))
    made = []
    per_size: dict[str, list[Case]] = {}
    for label, (models, versions) in args.sizes.items():
        try:
            repo, made_by, generated = prepare(b, label, (models, versions, args.seed), args.reuse)
        except Failed as e:
            print(f"benchmark stopped: {e}", file=sys.stderr)
            return 1
        manifest = json.loads((repo / "manifest.json").read_text())
        made.append(
            f"{label} = {models} models × {versions} versions ({models * versions:,} version files, "
            f"{manifest['files']:,} YAML files) {made_by}"
        )
        progress(made[-1])
        pr = pr_clone(repo, work / f"{label}-pr")
        site = work / f"site-{label}"
        per_size[label] = [
            *generated,
            *cases_for(label, repo / "registry", manifest, b.regops, b.python, pr=pr, site=site),
        ]
        if args.before and label != "100k":  # the regops this change started from, in the same run
            again = cases_for(label, repo / "registry", manifest, args.before, b.python, pr=pr, site=site)
            per_size[label] += before_cases(again, label)
    help_case = Case("`regops --help`, cold process", [b.regops, "--help"], "-", target=HELP_TARGET)
    cases = [help_case, *(c for cs in per_size.values() for c in cs)]
    try:
        b.measure(cases, args.repeat, warm_up=args.warm_up)
        if help_case.missing:
            raise Failed(f"`regops --help` failed: {help_case.missing}")
        pss: dict[str, float | None] = {}
        for label, cs in per_size.items():
            cold = next(c for c in cs if c.label.startswith("`validate`") and c.cache == "cold")
            if not cold.missing:
                progress(f"sampling memory: validate {label}, cold cache")
                env, fresh = b.env(cold)
                pss[label] = tree_pss_peak(cold.argv, env, b.scratch)
                if fresh is not None:
                    shutil.rmtree(fresh, ignore_errors=True)
    except Failed as e:
        print(f"benchmark stopped: {e}", file=sys.stderr)
        print(
            "(every command must exit 0 on a generated registry: a bug in benchmarks/generate.py or in regops;"
            " `python benchmarks/check_generated.py DIR/registry` tells which)",
            file=sys.stderr,
        )
        return 1
    print_report(args, b, made=made, help_case=help_case, per_size=per_size, pss=pss)
    return 0


def print_report(
    args: argparse.Namespace,
    b: Bench,
    *,
    made: list[str],
    help_case: Case,
    per_size: dict[str, list[Case]],
    pss: dict[str, float | None],
) -> None:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"## regops benchmarks ({now})\n")
    print(
        f"- {regops_version(b)}; Python {platform.python_version()} on {platform.system()} "
        f"{platform.machine()}, {os.cpu_count()} CPUs"
    )
    warmed = "1 untimed warm-up" if args.warm_up == "all" else "1 untimed warm-up for warm-cache rows only"
    print(f"- each row: median of **{args.repeat}** timed runs (after {warmed}), fresh subprocess each")
    for line in made:
        print(f"- {line}")
    print("- floor = one process that only parses every `*.yaml` under `registry/` with PyYAML's C safe loader")
    print(
        "- `pr check` is not timed here: it reads the pull request and its reviews and sets a commit status through"
        " the GitHub API (the tests run it against tests/servers' GitHub server); its registry work is the"
        " `validate --base main` row's"
    )
    if any(label == "100k" for label in per_size):
        print(f"- not run at 100k (not issue #10's rows, minutes each): {', '.join(SKIPPED_AT_100K)}")
    print(f"- CPU s = user + system time of the command and the children it waited for; RSS target {RSS_TARGET:g} MB")
    print()
    print(table(help_case, per_size, pss))
    if NOTES:
        print("\nNotes:")
        for note in NOTES:
            print(f"- {note}")


if __name__ == "__main__":
    raise SystemExit(main())
