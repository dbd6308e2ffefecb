#!/usr/bin/env python3
"""Benchmark the whole-registry audit queries against the per-model loops they replace; print one Markdown table.

    python benchmarks/audit.py [--repeat 5] [--loop-repeat 1] [--regops PATH] [--workdir DIR]

On the 10,000-version registry of ``generate.py`` (100 models x 100 versions, seed 0), with a warm
parse cache, each question is asked once with one command and once as the shell loop a user ran
before those commands existed:

- what held prod for every model at T: ``regops status --at T``, against ``regops resolve M@prod --at T`` per model;
- what bots did since T / every rollback: ``regops history --bots --since T`` and ``regops history --kind
  rollback``, against ``regops history M`` per model (then filtered by eye);
- one model's prod at T, as it was: ``regops show M@prod --at T``, against ``regops resolve M@prod --at T``
  followed by ``regops show M@VERSION``.

T is the middle of the first model's history (the generator's ``manifest.json``), and the one-command
rows' output is checked against the generator's ground truth for that model. Target: each one-command
row ≤ 0.5 s (median, warm). Rows are timed as in ``run.py`` (whose helpers this reuses): a fresh
subprocess each, one untimed warm-up per row, then ``--repeat`` rounds, interleaved. Loops are long
(a hundred processes), so they get ``--loop-repeat`` timed runs (default 1) and no warm-up of their own:
the one-command rows' warm-up has filled the shared warm cache. Reference rows (``--help``, ``resolve --at``,
``status``) are timed in the same rounds, so a busy machine's slowdown can be read off against the README's
Speed table. Exit status: 0 after printing the table;
1 when a command fails (its output is printed); 2 on bad options. Stdlib only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import generate
from run import (
    NOTES,
    Bench,
    Case,
    Failed,
    check,
    default_regops,
    fmt_s,
    progress,
    python_for,
    regops_version,
    run_in_workdir,
)

TARGET = 0.5  # s, median with a warm cache


@dataclass
class Pair:
    """One question: the command that answers it, and the per-model loop it replaces."""

    command: Case
    loop: Case


def loop(label: str, lines: list[list[str]]) -> Case:
    """A shell loop running each command line in turn (output discarded); fails on the first that fails."""
    script = "\n".join(f"{shlex.join(line)} >/dev/null || exit 1" for line in lines)
    return Case(label, ["/bin/sh", "-c", script], "warm", "10k")


def pairs(regops: str, registry: Path, manifest: dict[str, object], models: list[str]) -> list[Pair]:
    reg = ["--registry", str(registry)]
    query = manifest["resolve"]
    assert isinstance(query, dict)
    model, at, expect = query["model"], query["at"], query["expect"]
    n = len(models)
    resolve_each = [[regops, "resolve", f"{m}@prod", "--at", at, *reg] for m in models]
    history_each = loop(f"`history M` for each of {n} models", [[regops, "history", m, *reg] for m in models])
    show_at = [regops, "show", f"{model}@prod", "--at", at, *reg]
    return [
        Pair(
            Case(f"`status --at {at}`", [regops, "status", "--at", at, *reg], "warm", "10k", TARGET, expect=expect),
            loop(f"`resolve M@prod --at {at}` for each of {n} models", resolve_each),
        ),
        Pair(
            Case(
                f"`history --bots --since {at}`",
                [regops, "history", "--bots", "--since", at, *reg],
                "warm",
                "10k",
                TARGET,
            ),
            history_each,
        ),
        Pair(
            Case("`history --kind rollback`", [regops, "history", "--kind", "rollback", *reg], "warm", "10k", TARGET),
            history_each,
        ),
        Pair(
            Case(f"`show {model}@prod --at {at}`", show_at, "warm", "10k", TARGET, expect=f"{model}@{expect}"),
            loop(
                f"`resolve {model}@prod --at {at}` then `show {model}@{expect}`",
                [
                    [regops, "resolve", f"{model}@prod", "--at", at, *reg],
                    [regops, "show", f"{model}@{expect}", *reg],
                ],
            ),
        ),
    ]


def references(regops: str, registry: Path, manifest: dict[str, object]) -> list[Case]:
    """Rows to read the others by on a busy machine: the verbs the README's Speed table already times."""
    reg = ["--registry", str(registry)]
    query = manifest["resolve"]
    assert isinstance(query, dict)
    resolve = [regops, "resolve", f"{query['model']}@prod", "--at", query["at"], *reg]
    return [
        Case("reference: `regops --help`", [regops, "--help"], "-", "10k"),
        Case(f"reference: `resolve {query['model']}@prod --at {query['at']}`", resolve, "warm", "10k"),
        Case("reference: `status` (now)", [regops, "status", *reg], "warm", "10k"),
    ]


def reference_row(case: Case) -> str:
    times = [r.seconds for r in case.runs]
    return f"| {case.label} | {fmt_s(median(case))} | {fmt_s(min(times))} | {fmt_s(max(times))} | | | | | |"


def median(case: Case) -> float:
    return statistics.median(r.seconds for r in case.runs)


def row(pair: Pair) -> str:
    command, per_model = median(pair.command), median(pair.loop)
    times = [r.seconds for r in pair.command.runs]
    verdict = f"{command / TARGET:.2f}× ({'ok' if command <= TARGET else 'over'})"
    cells = (
        pair.command.label,
        fmt_s(command),
        fmt_s(min(times)),
        fmt_s(max(times)),
        f"≤ {TARGET:g} s",
        verdict,
        pair.loop.label,
        fmt_s(per_model),
        f"{per_model / command:.0f}×",
    )
    return "| " + " | ".join(cells) + " |"


def table(found: list[Pair], refs: list[Case]) -> str:
    lines = [
        "| command (10k, warm cache) | median s | min s | max s | target | vs target | the loop it replaces "
        "| loop median s | speed-up |",
        "|---|---:|---:|---:|---|---|---|---:|---:|",
    ]
    return "\n".join([*lines, *(row(p) for p in found), *(reference_row(c) for c in refs)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per command row (default 5)")
    parser.add_argument("--loop-repeat", type=int, default=1, help="timed runs per loop row (default 1)")
    parser.add_argument("--regops", default=default_regops(), help="the regops executable (default: next to python)")
    parser.add_argument("--seed", type=int, default=0, help="generator seed")
    parser.add_argument("--workdir", type=Path, help="generate here and keep it (default: a temp dir, removed)")
    args = parser.parse_args(argv)
    if args.loop_repeat < 1:
        parser.error("--loop-repeat must be at least 1")
    return run_in_workdir(parser, args, bench, prefix="regops-audit-")


def bench(args: argparse.Namespace, work: Path) -> int:
    b = Bench(work, args.regops, python_for(args.regops))
    registry = generate(work / "10k", 100, 100, args.seed, force=True)
    manifest = json.loads((work / "10k" / "manifest.json").read_text())
    models = sorted(p.name for p in (registry / "models").iterdir() if p.is_dir())
    found = pairs(b.regops, registry, manifest, models)
    loops = list({id(p.loop): p.loop for p in found}.values())
    refs = references(b.regops, registry, manifest)
    try:
        b.measure([*(p.command for p in found), *refs], args.repeat)
        for r in range(args.loop_repeat):
            for case in loops:
                progress(f"loop round {r + 1}/{args.loop_repeat}: {case.label}")
                run = b.once(case)
                check(case, run)
                case.runs.append(run)
    except Failed as e:
        print(f"benchmark stopped: {e}", file=sys.stderr)
        return 1
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"## regops audit queries ({now})\n")
    print(f"- {regops_version(b)}; Python {platform.python_version()} on {platform.system()}, {os.cpu_count()} CPUs")
    print(f"- 10k = 100 models × 100 versions (generate.py, seed {args.seed}); warm parse cache")
    print(f"- command rows: median of {args.repeat} runs after 1 warm-up; loops: {args.loop_repeat} run(s) each\n")
    print(table(found, refs))
    for note in NOTES:
        print(f"- note: {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
