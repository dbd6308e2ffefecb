"""Peak memory of every command that goes over the whole registry, at one size (issue #10: ≤ 300 MB at 100k).

    python benchmarks/memory.py                                  # 10k, generated in a temp dir
    python benchmarks/memory.py --size 100k --reuse DIR --repeat 1   # a registry generate.py wrote, committed

Each command runs on a clone of the generated registry (so `retention apply` and `site build` write nowhere
else), after `regops sync` and `regops codeowners` wrote its serving.json and CODEOWNERS (so the `--check`s pass),
with a warm cache: one untimed run each, then ``--repeat`` timed ones. Peak = the largest process's RSS as GNU
time reports it (``%M``), the command started by ``/usr/bin/time`` and its output sent to /dev/null: a process
started straight from this one would begin with this one's RSS as its peak (Linux carries it across fork and exec).
`validate --base` is `run.py`'s row.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import (
    Bench,
    Case,
    Failed,
    Run,
    default_regops,
    fmt_s,
    git,
    parse_sizes,
    prepare,
    progress,
    python_for,
    run_in_workdir,
)

LIMIT_MB = 300
TIME = "/usr/bin/time"  # GNU time


class PeakBench(Bench):
    """A bench whose runs read their peak from GNU time's report (``wrapped``), not from ``wait4``."""

    def once(self, case: Case) -> Run:
        peak = self.scratch / "peak"
        peak.unlink(missing_ok=True)
        run = super().once(case)
        if case.argv[0] == TIME:
            report = peak.read_text().split() if peak.exists() else []
            run.rss_mb = int(report[-1]) / 1024 if report else float("nan")
        return run

    def wrapped(self, argv: list[str]) -> list[str]:
        """``argv`` run by GNU time (its peak written to scratch/peak), its output thrown away."""
        discard = ["/bin/sh", "-c", 'exec "$0" "$@" >/dev/null']
        return [TIME, "-f", "%M", "-o", str(self.scratch / "peak"), *discard, *argv]


def commands(manifest: dict[str, object]) -> list[tuple[str, list[str]]]:
    """Every read that goes over every model (and the whole-registry writes' dry runs), as regops arguments."""
    query = manifest["resolve"]
    assert isinstance(query, dict)
    model, at = query["model"], query["at"]
    return [
        ("status", ["status"]),
        ("status --at", ["status", "--at", at]),
        ("show M", ["show", model]),
        ("history --bots --since", ["history", "--bots", "--since", "2026-06-01"]),
        ("history --kind rollback", ["history", "--kind", "rollback"]),
        ("history (every move)", ["history"]),
        ("history --json", ["history", "--json"]),
        ("history --format csv", ["history", "--format", "csv"]),
        ("validate", ["validate"]),
        ("codeowners --check", ["codeowners", "--check"]),
        ("serving export", ["serving", "export"]),
        ("serving export --format kserve", ["serving", "export", "--format", "kserve"]),
        ("sync --check", ["sync", "--check"]),
        ("auto-promote --dry-run", ["auto-promote", "--dry-run", "--by", "bench-bot"]),
        ("retention plan", ["retention", "plan"]),
        ("retention apply (nothing to move)", ["retention", "apply", "--at", "2020-01-01"]),
        ("site build", ["site", "build", "--out", "SITE"]),
    ]


def bench(args: argparse.Namespace, work: Path) -> int:
    b = PeakBench(work, args.regops, python_for(args.regops))
    [(label, (models, versions))] = args.size.items()
    try:
        repo, made_by, _ = prepare(b, label, (models, versions, args.seed), args.reuse)
        clone = work / f"{label}-clone"
        git("clone", "-q", "--branch", "main", str(repo), str(clone))
        reg = ["--registry", str(clone / "registry")]
        setup = [Case(f"`{verb}`, setup", [b.regops, verb, *reg], "warm", label) for verb in ("sync", "codeowners")]
        manifest = json.loads((repo / "manifest.json").read_text())
        cases = [
            Case(
                what,
                b.wrapped([b.regops, *[str(work / "site") if a == "SITE" else a for a in argv], *reg]),
                "warm",
                label,
            )
            for what, argv in commands(manifest)
        ]
        b.measure(setup, 1)
        b.measure(cases, args.repeat)
    except Failed as e:
        print(f"benchmark stopped: {e}", file=sys.stderr)
        return 1
    progress(f"{label} = {models} models × {versions} versions, {made_by}")
    print(f"## Peak memory, {label} ({models} models × {versions} versions), warm cache, median of {args.repeat}\n")
    print(f"| command | wall | CPU | peak RSS MB | ≤ {LIMIT_MB} MB |\n|---|---:|---:|---:|---|")
    over = 0
    for case in cases:
        peak = max(r.rss_mb for r in case.runs)
        over += peak > LIMIT_MB
        wall, cpu = (statistics.median(getattr(r, f) for r in case.runs) for f in ("seconds", "cpu"))
        verdict = "ok" if peak <= LIMIT_MB else "**over**"
        print(f"| `{case.label}` | {fmt_s(wall)} s | {fmt_s(cpu)} s | {peak:.0f} | {verdict} |")
    return 1 if over else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=parse_sizes, default="10k", help="one size: 1k, 10k, 100k or MODELSxVERSIONS")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per command (default 3)")
    parser.add_argument("--regops", default=default_regops(), help="the regops executable (default: next to python)")
    parser.add_argument("--seed", type=int, default=0, help="generator seed")
    parser.add_argument("--workdir", type=Path, help="generate here and keep it (default: a temp dir, removed)")
    parser.add_argument("--reuse", type=Path, action="append", default=[], metavar="DIR", help="as run.py's")
    args = parser.parse_args(argv)
    if len(args.size) != 1:
        parser.error("--size takes one size")
    if shutil.which(TIME) is None:
        parser.error(f"{TIME} (GNU time) is needed: it reports each command's own peak memory")
    return run_in_workdir(parser, args, bench, prefix="regops-memory-")


if __name__ == "__main__":
    raise SystemExit(main())
