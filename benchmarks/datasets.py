#!/usr/bin/env python3
"""Benchmark dataset hashing: regops against b3sum, sha256sum and `dvc add`; print one Markdown table.

    python benchmarks/datasets.py [--small] [--repeat 3] [--workdir DIR] [--regops PATH] [--dvc PATH | --no-dvc]

Builds a tree of random files in a temp dir (**full**: 2,000 x 1 MiB + one
512 MiB file, 2.6 GB; **--small**: 200 x 1 MiB + one 64 MiB file) and times,
in one run, each a fresh subprocess (start-up included, as a user sees it):

* ``sha256sum`` and ``b3sum`` over the same files (``b3sum`` is the Debian
  package: when it is missing and we are root, this runs
  ``apt-get install -y b3sum``);
* regops with a fresh, empty cache and with the cache of an earlier run
  (``regops dataset hash DIR``; while that verb does not exist,
  ``python -c`` calling ``regops.datasets.hash_path``), and the library call
  ``hash_path()`` alone, timed inside its process (no interpreter start-up, no
  imports: the hashing engine against ``b3sum``);
* ``dvc add data`` in a new ``dvc init --no-scm`` project (the first run:
  md5 of every file plus the copy into ``.dvc/cache``) and again right after
  (the re-run: DVC's own stat cache). DVC is installed into a virtual
  environment of its own under the work dir (``python -m venv`` +
  ``pip install dvc``), never into the environment that runs regops;
  ``--dvc PATH`` uses an existing ``dvc`` instead.

Every command gets one untimed warm-up (the files are then in the page cache
for every tool alike, and Python's bytecode is compiled, as after ``pip
install``), then ``--repeat`` timed rounds, interleaved; the table shows
medians. regops' answer is checked against the hash recomputed from
``b3sum``'s per-file output (the README's definition). The DVC rounds run
last, because DVC moves the data into its project.

Needs about twice the tree's size free in the work dir (DVC copies it into its
cache). Exit status: 0 after printing the table; 1 when a command fails or
regops' hash is wrong; 2 on bad options. Stdlib only.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import run_in_workdir

MIB = 1 << 20
SIZES = {"full": (2000, 512), "small": (200, 64)}  # (files of 1 MiB, MiB of the one large file)
B3SUM_SHARE = 0.90  # regops' throughput ≥ 90 % of b3sum's
DVC_FACTOR = 3.0  # regops at least 3x faster than the first `dvc add`
API_ROW = "regops `hash_path()` alone, fresh cache"
RACY_SECONDS = 2.5  # regops does not cache files modified in the last 2 s
# The library call alone: prints the hash and the seconds hash_path() took (start-up and imports excluded).
SNIPPET = """\
import sys, time
from pathlib import Path
from regops.datasets import hash_path
began = time.perf_counter()
print(hash_path(Path(sys.argv[1])).hash, time.perf_counter() - began)
"""


class Failed(Exception):
    """A measured command failed or gave a wrong answer: stop, and show why."""


@dataclass
class Row:
    label: str
    runs: list[float] = field(default_factory=list)
    missing: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.runs)


def progress(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def run(argv: Sequence[str], *, cwd: Path | None = None, env: dict[str, str] | None = None) -> tuple[float, str]:
    """Run to completion; wall seconds and stdout. Raises Failed on a non-zero exit."""
    began = time.perf_counter()
    proc = subprocess.run(
        list(argv), check=False, cwd=cwd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    seconds = time.perf_counter() - began
    if proc.returncode != 0:
        raise Failed(
            f"`{' '.join(argv)}` exited {proc.returncode}\n--- stdout ---\n{proc.stdout[-4000:]}\n"
            f"--- stderr ---\n{proc.stderr[-4000:]}"
        )
    return seconds, proc.stdout


# --- the tree ------------------------------------------------------------------------


def make_tree(data: Path, files: int, big_mib: int) -> int:
    """Random files: ``files`` x 1 MiB and one of ``big_mib`` MiB; returns the total bytes."""
    data.mkdir(parents=True)
    for i in range(files):
        (data / f"part-{i:05d}.bin").write_bytes(os.urandom(MIB))
    with (data / "large.bin").open("wb") as f:
        for _ in range(big_mib):
            f.write(os.urandom(MIB))
    return (files + big_mib) * MIB


def expected_hash(data: Path, b3sum: str) -> str:
    """The tree hash from b3sum's per-file hashes, as the README defines it."""
    names = sorted(p.name for p in data.iterdir())
    _, out = run([b3sum, "--", *names], cwd=data)
    digests = {line[66:]: line[:64] for line in out.splitlines()}
    manifest = "".join(f"{n}\t{(data / n).stat().st_size}\t{digests[n]}\n" for n in names)
    file = data.parent / "manifest.txt"
    file.write_text(manifest, encoding="utf-8")
    _, out = run([b3sum, "--no-names", str(file)])
    return f"blake3:{out.strip()}"


# --- the tools -----------------------------------------------------------------------


def ensure_b3sum() -> str | None:
    found = shutil.which("b3sum")
    if found or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    progress("b3sum is missing: apt-get install -y b3sum")
    install = ["apt-get", "install", "-y", "b3sum"]
    if subprocess.run(install, capture_output=True, check=False).returncode != 0:
        subprocess.run(["apt-get", "update"], capture_output=True, check=False)  # a stale package list
        subprocess.run(install, capture_output=True, check=False)
    return shutil.which("b3sum")


def ensure_dvc(work: Path) -> str:
    venv = work / "dvc-venv"
    dvc = venv / "bin" / "dvc"
    if not dvc.exists():
        progress(f"installing dvc into {venv} (python -m venv + pip install dvc; a minute or two)")
        run([sys.executable, "-m", "venv", str(venv)])
        run([str(venv / "bin" / "pip"), "install", "--quiet", "dvc"])
    return str(dvc)


def regops_command(regops: str, python: str, data: Path) -> list[str]:
    """`regops dataset hash DIR` when the verb exists, else the library through `python -c`."""
    has_verb = subprocess.run([regops, "dataset", "hash", "--help"], capture_output=True, check=False).returncode == 0
    return [regops, "dataset", "hash", str(data)] if has_verb else [python, "-c", SNIPPET, str(data)]


def version_of(argv: list[str]) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    return (proc.stdout or proc.stderr).strip().splitlines()[0] if proc.returncode == 0 else "?"


# --- measuring -----------------------------------------------------------------------


class Bench:
    def __init__(self, work: Path, data: Path, regops: list[str], python: str, expected: str | None) -> None:
        self.work = work
        self.data = data
        self.regops = regops
        self.api = [python, "-c", SNIPPET, str(data)]
        self.expected = expected
        # Bytecode as after `pip install` (which compiles it): written once by the warm-up, under the work dir.
        skip = ("REGOPS_", "PYTHONDONTWRITEBYTECODE")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(skip)}
        self.env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
        self.fresh_runs = 0

    def tool_once(self, argv: list[str]) -> float:
        return run(argv, cwd=self.data)[0]

    def regops_once(self, cache: str, *, api: bool = False) -> float:
        """Wall seconds of one regops process, or with ``api`` the seconds its hash_path() call took."""
        env = dict(self.env)
        if cache == "fresh":
            self.fresh_runs += 1
            folder = self.work / f"cache-fresh-{self.fresh_runs}"
        else:
            folder = self.work / "cache-kept"
        env["REGOPS_CACHE_DIR"] = str(folder)
        try:
            seconds, out = run(self.api if api else self.regops, env=env)
        finally:
            if cache == "fresh":
                shutil.rmtree(folder, ignore_errors=True)
        found = re.search(r"blake3:[0-9a-f]{64}", out)
        if self.expected is not None and (found is None or found.group(0) != self.expected):
            raise Failed(f"regops printed {out.strip()!r}; recomputed from b3sum's output: {self.expected}")
        return float(out.split()[1]) if api else seconds

    def hash_rounds(self, rows: dict[str, Row], tools: dict[str, list[str]], repeat: int, made_at: float) -> None:
        names = sorted(p.name for p in self.data.iterdir())
        measure: dict[str, Callable[[], float]] = {
            label: partial(self.tool_once, [*argv, "--", *names]) for label, argv in tools.items()
        }
        measure["regops, fresh cache"] = partial(self.regops_once, "fresh")
        measure["regops, cached re-hash"] = partial(self.regops_once, "kept")
        measure[API_ROW] = partial(self.regops_once, "fresh", api=True)
        time.sleep(max(0.0, made_at + RACY_SECONDS - time.time()))
        for label, once in measure.items():
            progress(f"warm-up: {label}")
            once()
        for r in range(repeat):
            progress(f"round {r + 1}/{repeat}")
            for label, once in measure.items():
                rows[label].runs.append(once())

    def dvc_rounds(self, rows: dict[str, Row], dvc: str, repeat: int) -> None:
        env = {**self.env, "DVC_NO_ANALYTICS": "1"}
        for r in range(repeat):
            progress(f"dvc round {r + 1}/{repeat}")
            project = self.work / f"dvc-{r}"
            project.mkdir()
            run([dvc, "init", "--no-scm", "-q"], cwd=project, env=env)
            for key, value in (
                ("core.analytics", "false"),
                ("core.check_update", "false"),
                ("core.site_cache_dir", str(project / ".site")),  # DVC's stat cache: new for every first run
            ):
                run([dvc, "config", key, value], cwd=project, env=env)
            self.data.rename(project / "data")
            try:
                rows["dvc add, first run"].runs.append(run([dvc, "add", "-q", "data"], cwd=project, env=env)[0])
                rows["dvc add, re-run"].runs.append(run([dvc, "add", "-q", "data"], cwd=project, env=env)[0])
            finally:
                (project / "data").rename(self.data)
                shutil.rmtree(project, ignore_errors=True)


# --- the report ----------------------------------------------------------------------

ROW_NOTES = {
    "sha256sum": "one thread",
    "b3sum": "BLAKE3, memory-mapped, all cores per file",
    "regops, fresh cache": "empty `$REGOPS_CACHE_DIR` each run: every byte read",
    "regops, cached re-hash": "cache of an earlier run: a stat walk",
    API_ROW: "the library call, timed inside the process: no start-up, no imports",
    "dvc add, first run": "new `dvc init --no-scm` project: md5 + copy into `.dvc/cache`",
    "dvc add, re-run": "same project, right after: DVC's state db",
}


def fmt(seconds: float) -> str:
    return f"{seconds:.3f}" if seconds < 10 else f"{seconds:.2f}"


def table(rows: dict[str, Row], total: int) -> list[str]:
    lines = ["| what | median s | min s | max s | MB/s | notes |", "|---|---:|---:|---:|---:|---|"]
    for row in rows.values():
        if row.missing or not row.runs:
            lines.append(f"| {row.label} | n/a | | | | {row.missing} |")
            continue
        mbs = total / 1e6 / row.median
        cells = (
            row.label,
            fmt(row.median),
            fmt(min(row.runs)),
            fmt(max(row.runs)),
            f"{mbs:,.0f}",
            ROW_NOTES[row.label],
        )
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def verdicts(rows: dict[str, Row]) -> list[str]:
    def ratio(slow: str, fast: str) -> float | None:
        a, b = rows[slow], rows[fast]
        return a.median / b.median if a.runs and b.runs else None

    checks = [
        ("regops fresh throughput ÷ b3sum's ≥ 90 %", ratio("b3sum", "regops, fresh cache"), B3SUM_SHARE),
        ("`hash_path()` throughput ÷ b3sum's ≥ 90 %", ratio("b3sum", API_ROW), B3SUM_SHARE),
        ("`dvc add` first run ÷ regops fresh ≥ 3×", ratio("dvc add, first run", "regops, fresh cache"), DVC_FACTOR),
        ("`dvc add` re-run ÷ regops cached > 1×", ratio("dvc add, re-run", "regops, cached re-hash"), 1.0),
    ]  # fmt: skip
    lines = ["| target | measured | verdict |", "|---|---:|---|"]
    for label, value, goal in checks:
        if value is None:
            lines.append(f"| {label} | n/a | not measured |")
            continue
        measured = f"{value:.0%}" if goal < 1 else f"{value:.1f}×"
        ok = value >= goal if goal != 1.0 else value > goal
        lines.append(f"| {label} | {measured} | {'ok' if ok else 'MISSED'} |")
    return lines


# --- main ----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="200 × 1 MiB + one 64 MiB file (a quick run)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per row (default 3)")
    parser.add_argument("--workdir", type=Path, help="work here and keep it, dvc's venv too (default: a temp dir)")
    parser.add_argument("--regops", default=str(Path(sys.executable).parent / "regops"), help="the regops executable")
    parser.add_argument("--dvc", help="an existing dvc executable (default: install one under the work dir)")
    parser.add_argument("--no-dvc", action="store_true", help="skip the dvc rows")
    args = parser.parse_args(argv)
    return run_in_workdir(parser, args, bench, prefix="regops-datasets-bench-")


def bench(args: argparse.Namespace, work: Path) -> int:
    files, big = SIZES["small" if args.small else "full"]
    total = (files + big) * MIB
    if shutil.disk_usage(work).free < 2.2 * total:
        print(
            f"not enough space in {work}: need {2.2 * total / 1e9:.1f} GB (try --small or --workdir)", file=sys.stderr
        )
        return 2
    try:
        return measure(args, work, files, big)
    except Failed as e:
        print(f"benchmark stopped: {e}", file=sys.stderr)
        return 1


def measure(args: argparse.Namespace, work: Path, files: int, big: int) -> int:
    data = work / "data"
    shutil.rmtree(data, ignore_errors=True)
    progress(f"writing {files} × 1 MiB + one {big} MiB file into {data}")
    total = make_tree(data, files, big)
    made_at = time.time()
    b3sum = ensure_b3sum()
    python = str(Path(args.regops).parent / "python")
    python = python if Path(python).exists() else sys.executable
    command = regops_command(args.regops, python, data)
    b = Bench(work, data, command, python, expected_hash(data, b3sum) if b3sum else None)
    rows = {label: Row(label) for label in ROW_NOTES}
    tools = {"sha256sum": ["sha256sum"]}
    if b3sum:
        tools["b3sum"] = [b3sum]
    else:
        rows["b3sum"].missing = "b3sum not installed (apt-get install b3sum)"
    b.hash_rounds(rows, tools, args.repeat, made_at)
    dvc = None if args.no_dvc else args.dvc or ensure_dvc(work)
    if dvc:
        b.dvc_rounds(rows, dvc, args.repeat)
    else:
        rows["dvc add, first run"].missing = rows["dvc add, re-run"].missing = "--no-dvc"
    report(args, rows, total=total, files=files, big=big, command=command, b3sum=b3sum, dvc=dvc)
    shutil.rmtree(data, ignore_errors=True)
    return 0


def report(
    args: argparse.Namespace,
    rows: dict[str, Row],
    *,
    total: int,
    files: int,
    big: int,
    command: list[str],
    b3sum: str | None,
    dvc: str | None,
) -> None:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    cpu = next((line.split(":", 1)[1].strip() for line in _cpuinfo() if line.startswith("model name")), "?")
    shown = "`regops dataset hash DIR`" if command[1:3] == ["dataset", "hash"] else "`python -c` → `hash_path(DIR)`"
    print(f"## Dataset hashing ({now})\n")
    print(f"- tree: {files:,} × 1 MiB + one {big} MiB file = {total / 1e9:.2f} GB ({files + 1:,} files), random bytes")
    print(
        f"- {os.cpu_count()} CPUs ({cpu}), {platform.system()} {platform.release()}; Python {platform.python_version()}"
    )
    tools = [version_of([args.regops, "--version"]), version_of([b3sum, "--version"]) if b3sum else "no b3sum"]
    tools += [f"dvc {version_of([dvc, '--version'])}" if dvc else "no dvc", version_of(["sha256sum", "--version"])]
    print(f"- {'; '.join(tools)}; regops timed as {shown}")
    print(f"- median of {args.repeat} timed runs after one untimed warm-up; each a fresh process; files in page cache")
    print("- MB/s = tree bytes ÷ median time (for cached runs: the effective rate)\n")
    print("\n".join(table(rows, total)))
    print()
    print("\n".join(verdicts(rows)))


def _cpuinfo() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []


if __name__ == "__main__":
    raise SystemExit(main())
