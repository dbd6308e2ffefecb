#!/usr/bin/env python3
"""Benchmark regops against the local Hub server: upload and download of one version; print one Markdown table.

    python benchmarks/hub.py [--repeat 5] [--size-mb 1024] [--regops PATH] [--workdir DIR]

``tests/servers/hub.py`` (bare git repositories and git-LFS, speaking the
Hugging Face Hub's HTTP API) runs in a process of its own on 127.0.0.1, and
regops talks to it through the real ``huggingface_hub`` client
(``HF_ENDPOINT``, ``HF_HUB_DISABLE_XET=1``). In the same run, on the same
bytes, over the same loopback to the same server:

1. ``regops register`` of a version (one SIZE MB file of random bytes,
   ``model.safetensors``, and a ``config.json``) into a fresh Hub repository
   (a new model every run), against ``curl -T`` of the weights to a fresh LFS
   upload URL (the signed ``PUT`` URL the LFS batch API hands out);
2. ``regops register`` of the same files as a new version of a model whose
   repository already holds them: regops must report 0 bytes sent;
3. ``regops download MODEL@VERSION`` into a fresh folder, against ``curl`` GET
   of the weights at the version's pinned commit.

Target: each regops row at most 1.5 times its curl baseline. Runs are timed as
in ``run.py`` (through ``lifecycle.py``'s per-run scenarios): a fresh
subprocess each, one untimed warm-up per row, then ``--repeat`` rounds,
interleaved. What a run needs (a model folder, a repository, an upload URL) is
made before it and removed after it, untimed; ``sync`` runs before each run,
so none pays for the writeback of another's gigabyte. Each run's loopback
traffic is read from ``/sys/class/net/lo/statistics`` (Linux).

Disk: about three times SIZE at the most (the source file, the repository the
re-register and download rows share, and one fresh repository or download at a
time); the source and the server's storage are removed at the end, even with
``--workdir``. Needs ``curl``, and the test extras (starlette, uvicorn) in the
Python that runs this script. Exit status: 0 after printing the table; 1 when
the server does not start or a command fails or does not do what it should
(its output is printed); 2 on bad options, no curl, or too little free disk.
Stdlib only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lifecycle import EVALS, MB, PARAMS, LifecycleBench, Scenario, Step, median, row, tree_bytes, verdict
from run import Case, Failed, Run, check, default_regops, progress, python_for, regops_version, run_in_workdir

RATIO_TARGET = 1.5  # regops ÷ curl, upload and download
PROJECT = Path(__file__).resolve().parents[1]
ORG = "acme-ml"
SAME = "same"  # the model the re-register and download rows share
WEIGHTS = "model.safetensors"
CONFIG = '{"architectures": ["BenchForSequenceClassification"], "hidden_size": 768, "num_labels": 2}\n'
DATASET = "reviews@2025-09-08"
REGOPS_YAML = "# yaml-language-server: $schema=../schemas/regops.schema.json\nstorage: {backend: hf}\n"
MODEL_YAML = """\
# yaml-language-server: $schema=../../../schemas/model.schema.json
name: {name}
description: A model for benchmarks/hub.py.
owners: [bench]
task: text-classification
hub: {{repo: {org}/{name}, private: true}}
primary_metric: {{name: accuracy, goal: max}}
"""
LOOPBACK = Path("/sys/class/net/lo/statistics/tx_bytes")
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # the server is on loopback: never a proxy


# --- the server ----------------------------------------------------------------------------------


class HubProcess:
    """``python -m tests.servers.hub`` in a child process, and the plain HTTP calls the baselines need."""

    def __init__(self, python: str, root: Path, log: Path) -> None:
        self.python, self.root, self.log = python, root, log
        self.token = f"hf_bench{secrets.token_hex(16)}"
        self.url = ""
        self.proc: subprocess.Popen[str] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        self._log = self.log.open("wb")
        argv = [self.python, "-m", "tests.servers.hub", "--root", str(self.root)]
        argv += ["--token", f"{self.token}:bench:{ORG}:write"]
        self.proc = subprocess.Popen(
            argv, cwd=PROJECT, stdout=subprocess.PIPE, stderr=self._log, stdin=subprocess.DEVNULL, text=True
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http://"):
            self.stop()
            raise Failed(f"the Hub server did not start (`{' '.join(argv)}`):\n{self.tail()}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""

    def call(self, method: str, path: str, body: dict[str, Any], *, lfs: bool = False, absent_ok: bool = False) -> Any:
        media = "application/vnd.git-lfs+json" if lfs else "application/json"
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": media, "Accept": media}
        request = urllib.request.Request(
            self.url + path, data=json.dumps(body).encode(), headers=headers, method=method
        )
        try:
            with DIRECT.open(request, timeout=300) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as e:
            if absent_ok and e.code == 404:
                return None
            raise Failed(f"{method} {path} answered {e.code}: {e.read()[:1000].decode(errors='replace')}") from e

    def create_repo(self, name: str) -> None:
        self.call("POST", "/api/repos/create", {"name": name, "organization": ORG, "private": True})

    def delete_repo(self, name: str) -> None:
        """Through the server's API, which removes the git repository and its LFS objects."""
        self.call("DELETE", "/api/repos/delete", {"name": name, "organization": ORG, "type": "model"}, absent_ok=True)

    def upload_href(self, name: str, oid: str, size: int) -> str:
        """What a git-lfs client asks first: the signed URL to PUT the object to."""
        batch = {"operation": "upload", "transfers": ["basic"], "objects": [{"oid": oid, "size": size}]}
        answer = self.call("POST", f"/{ORG}/{name}.git/info/lfs/objects/batch", batch, lfs=True)
        try:
            return str(answer["objects"][0]["actions"]["upload"]["href"])
        except (KeyError, IndexError, TypeError) as e:
            raise Failed(f"the LFS batch answer for {ORG}/{name} has no upload URL: {answer}") from e

    def stored(self, name: str, oid: str) -> Path:
        """Where the server keeps an LFS object (its docstring: ROOT/lfs/NAMESPACE/NAME/oid[0:2]/oid[2:4]/oid)."""
        return self.root / "lfs" / ORG / name / oid[:2] / oid[2:4] / oid


# --- the rows ------------------------------------------------------------------------------------


def loopback_bytes() -> int | None:
    try:
        return int(LOOPBACK.read_text())
    except (OSError, ValueError):
        return None


class Sources:
    """The files every row moves, and the registry the regops rows use."""

    def __init__(self, work: Path, regops: str) -> None:
        self.work, self.regops = work, regops
        self.artifacts = work / "artifacts"
        self.weights = self.artifacts / WEIGHTS
        self.registry = work / "registry"
        self.runs = work / "runs"
        self.oid = ""
        self.size = 0
        self.total = 0

    def make(self, size_mb: int) -> None:
        shutil.rmtree(self.artifacts, ignore_errors=True)
        self.artifacts.mkdir(parents=True)
        with self.weights.open("wb") as out:
            for _ in range(size_mb):
                out.write(os.urandom(MB))
        (self.artifacts / "config.json").write_text(CONFIG)
        with self.weights.open("rb") as f:
            self.oid = hashlib.file_digest(f, "sha256").hexdigest()
        self.size = self.weights.stat().st_size
        self.total = tree_bytes(self.artifacts)
        (self.work / "evals.json").write_text(json.dumps(EVALS, indent=2) + "\n")
        (self.work / "params.yaml").write_text(PARAMS)
        shutil.rmtree(self.registry, ignore_errors=True)
        dataset = Path("datasets", "reviews", "2025-09-08.yaml")
        (self.registry / dataset).parent.mkdir(parents=True)
        shutil.copyfile(PROJECT / "tests" / "data" / "registry" / dataset, self.registry / dataset)
        (self.registry / "regops.yaml").write_text(REGOPS_YAML)
        shutil.rmtree(self.runs, ignore_errors=True)
        self.runs.mkdir()

    def add_model(self, name: str) -> None:
        folder = self.registry / "models" / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "model.yaml").write_text(MODEL_YAML.format(name=name, org=ORG))

    def version_file(self, model: str, version: str) -> Path:
        return self.registry / "models" / model / f"{version}.yaml"

    def register(self, model: str, version: str) -> list[str]:
        options = {
            "--registry": self.registry,
            "--artifacts": self.artifacts,
            "--evals": self.work / "evals.json",
            "--params": self.work / "params.yaml",
            "--dataset": DATASET,
            "--version": version,
            "--by": "bench",
        }
        return [self.regops, "register", model, *(str(x) for pair in options.items() for x in pair), "--json"]


def revision_of(path: Path) -> str:
    match = re.search(r"revision: ([0-9a-f]{40})", path.read_text(encoding="utf-8"))
    if match is None:
        raise Failed(f"{path} records no Hub revision")
    return match.group(1)


def uploaded(run: Run) -> tuple[int, int]:
    """(files, bytes) that `regops register --json` says it uploaded."""
    try:
        result = json.loads(run.stdout)
        return int(result["uploaded_files"]), int(result["uploaded_bytes"])
    except (ValueError, KeyError, TypeError) as e:
        raise Failed(f"`regops register --json` printed no upload counts:\n{run.stdout[:2000]}") from e


class Counted(Scenario):
    """A row's runs: what each needs is made before it, and the loopback bytes of each successful one recorded."""

    def __init__(self, src: Sources, server: HubProcess) -> None:
        self.src, self.server = src, server
        self.n = 0
        self.moved: list[int] = []
        self._before: int | None = None

    def prepare(self) -> list[str]:
        self.n += 1
        argv = self.command()
        os.sync()  # what earlier runs wrote (the server keeps uploads unsynced) is not written back during this one
        self._before = loopback_bytes()
        return argv

    def command(self) -> list[str]:
        """The command line of run number ``self.n``, after making what it needs."""
        raise NotImplementedError

    def verify(self, run: Run) -> str | None:
        after = loopback_bytes()
        if self._before is not None and after is not None:
            self.moved.append(after - self._before)
        return self.check(run)

    def check(self, run: Run) -> str | None:
        return None


class FreshRegister(Counted):
    """`regops register` of a new model, so regops creates its Hub repo and uploads every byte."""

    model = ""

    def command(self) -> list[str]:
        self.model = f"fresh-{self.n}"
        self.src.add_model(self.model)
        return self.src.register(self.model, "1.0.0")

    def check(self, run: Run) -> str | None:
        files, sent = uploaded(run)
        stored = self.server.stored(self.model, self.src.oid)
        if (files, sent) != (2, self.src.total):
            return f"it reports {files} files and {sent:,} bytes uploaded, not 2 and {self.src.total:,}"
        if not stored.is_file() or stored.stat().st_size != self.src.size:
            return f"the server does not hold the weights ({stored})"
        if not self.src.version_file(self.model, "1.0.0").is_file():
            return "it wrote no version file"
        return None

    def cleanup(self) -> None:
        if self.model:
            self.server.delete_repo(self.model)
            shutil.rmtree(self.src.registry / "models" / self.model, ignore_errors=True)
            self.model = ""


class CurlPut(Counted):
    """`curl -T` of the weights to the upload URL of a new repository's LFS batch answer."""

    repo = ""

    def command(self) -> list[str]:
        self.repo = f"put-{self.n}"
        self.server.create_repo(self.repo)
        href = self.server.upload_href(self.repo, self.src.oid, self.src.size)
        return ["curl", "-sS", "-f", "-T", str(self.src.weights), "-w", "%{size_upload}", href]

    def check(self, run: Run) -> str | None:
        stored = self.server.stored(self.repo, self.src.oid)
        size = stored.stat().st_size if stored.is_file() else None
        return None if size == self.src.size else f"the server stores {size} bytes at {stored}, not {self.src.size:,}"

    def cleanup(self) -> None:
        if self.repo:
            self.server.delete_repo(self.repo)
            self.repo = ""


class Reregister(Counted):
    """`regops register` of the same files as a new version of SAME, whose repo already holds them."""

    version = ""

    def __init__(self, src: Sources, server: HubProcess, revision: str) -> None:
        super().__init__(src, server)
        self.revision = revision
        self.sent: list[int] = []
        self.object = self.identity()

    def identity(self) -> tuple[int, int]:
        stat = self.server.stored(SAME, self.src.oid).stat()
        return stat.st_ino, stat.st_mtime_ns

    def command(self) -> list[str]:
        self.version = f"1.0.{self.n}"
        return self.src.register(SAME, self.version)

    def check(self, run: Run) -> str | None:
        self.sent.append(uploaded(run)[1])
        path = self.src.version_file(SAME, self.version)
        if not path.is_file():
            return "it wrote no version file"
        if revision_of(path) != self.revision:
            return f"it recorded commit {revision_of(path)}, not {self.revision} (the commit that holds these files)"
        if self.identity() != self.object:
            return "the server's copy of the weights was replaced (uploaded again)"
        return None

    def cleanup(self) -> None:
        if self.version:
            self.src.version_file(SAME, self.version).unlink(missing_ok=True)
            self.version = ""


class Download(Counted):
    """`regops download SAME@1.0.0 --dest NEW`."""

    dest: Path | None = None

    def command(self) -> list[str]:
        self.dest = self.src.runs / f"download-{self.n}"
        argv = [self.src.regops, "download", f"{SAME}@1.0.0", "--registry", str(self.src.registry)]
        return [*argv, "--dest", str(self.dest)]

    def check(self, run: Run) -> str | None:
        assert self.dest is not None
        got = {p.name: p.stat().st_size for p in self.dest.iterdir()}
        want = {p.name: p.stat().st_size for p in self.src.artifacts.iterdir()}
        return None if got == want else f"it left {got} in {self.dest}, not {want}"

    def cleanup(self) -> None:
        if self.dest is not None:
            shutil.rmtree(self.dest, ignore_errors=True)
            self.dest = None


class CurlGet(Counted):
    """`curl` GET of the weights from the resolve URL at the version's commit, with the token."""

    out: Path | None = None

    def __init__(self, src: Sources, server: HubProcess, revision: str) -> None:
        super().__init__(src, server)
        self.url = f"{server.url}/{ORG}/{SAME}/resolve/{revision}/{WEIGHTS}"

    def command(self) -> list[str]:
        self.out = self.src.runs / f"get-{self.n}.safetensors"
        auth = f"Authorization: Bearer {self.server.token}"
        return ["curl", "-sS", "-f", "-o", str(self.out), "-H", auth, "-w", "%{size_download}", self.url]

    def check(self, run: Run) -> str | None:
        size = self.out.stat().st_size if self.out is not None and self.out.exists() else None
        return None if size == self.src.size else f"it wrote {size} bytes, not {self.src.size:,}"

    def cleanup(self) -> None:
        if self.out is not None:
            self.out.unlink(missing_ok=True)
            self.out = None


# --- the table -----------------------------------------------------------------------------------


def moved_mb(case: Case) -> str:
    assert isinstance(case, Step) and isinstance(case.scenario, Counted)
    timed = case.scenario.moved[-len(case.runs) :]
    if not timed:
        return "n/a"
    mb = statistics.median(timed) / 1e6
    return f"{mb:,.1f}" if mb >= 1 else f"{mb:.3f}"


def table(rows: Sequence[Case], sent: list[int]) -> str:
    register, put, again, download, get = rows
    up, down = median(register) / median(put), median(download) / median(get)
    limit = f"≤ {RATIO_TARGET:g}× "
    nothing = "ok" if not any(sent) else "over"
    cells = [
        (register, limit + "curl PUT", f"{up:.2f}× curl PUT ({verdict(up, RATIO_TARGET)})"),
        (put, "", "1.00× (the upload baseline)"),
        (
            again,
            "0 bytes sent",
            f"{max(sent):,} bytes sent ({nothing}); {median(again) / median(register):.2f}× a fresh register",
        ),
        (download, limit + "curl GET", f"{down:.2f}× curl GET ({verdict(down, RATIO_TARGET)})"),
        (get, "", "1.00× (the download baseline)"),
    ]
    lines = [
        "| what | median s | min s | max s | target | ratio | loopback MB |",
        "|---|---:|---:|---:|---|---|---:|",
    ]
    lines += [f"{row(case, target, ratio)} {moved_mb(case)} |" for case, target, ratio in cells]
    return "\n".join(lines)


# --- main ----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="size of the weights file in MiB (default 1024)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per row (default 5)")
    parser.add_argument(
        "--workdir", type=Path, help="work here and keep the registry and server log (default: a temp dir, removed)"
    )
    parser.add_argument("--regops", default=default_regops(), help="the regops executable (default: next to python)")
    args = parser.parse_args(argv)
    if args.size_mb < 1:
        parser.error("--size-mb must be at least 1")
    return run_in_workdir(parser, args, bench, prefix="regops-hub-bench-")


def bench(args: argparse.Namespace, work: Path) -> int:
    if shutil.which("curl") is None:
        print("hub.py: curl is not installed; the baselines need it", file=sys.stderr)
        return 2
    need = (3 * args.size_mb + 300) * MB
    if (free := shutil.disk_usage(work).free) < need:
        print(f"hub.py: {work} has {free / MB:,.0f} MiB free; this needs about {need / MB:,.0f}", file=sys.stderr)
        return 2
    b = LifecycleBench(work, args.regops, python_for(args.regops))
    server = HubProcess(sys.executable, work / "hub-root", work / "hub-server.log")
    src = Sources(work, args.regops)
    try:
        return measure(args, b, server, src)
    except Failed as e:
        print(f"benchmark stopped: {e}", file=sys.stderr)
        if tail := server.tail():
            print(f"--- Hub server log ---\n{tail}", file=sys.stderr)
        return 1
    finally:
        server.stop()
        for folder in (src.artifacts, src.runs, server.root):
            shutil.rmtree(folder, ignore_errors=True)


def measure(args: argparse.Namespace, b: LifecycleBench, server: HubProcess, src: Sources) -> int:
    progress(f"writing {args.size_mb:,} MiB of random weights + config.json")
    src.make(args.size_mb)
    shutil.rmtree(server.root, ignore_errors=True)
    server.start()
    progress(f"Hub server at {server.url} (root {server.root})")
    hf = {
        "HF_ENDPOINT": server.url,
        "HF_TOKEN": server.token,
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HOME": str(b.work / "hf-home"),
    }
    # Nothing between the clients and the server: no proxy, whatever the environment says.
    kept = {k: v for k, v in b.base_env.items() if not k.startswith(("HF_", "HUGGING_FACE_"))}
    b.base_env = {k: v for k, v in kept.items() if not k.lower().endswith("_proxy")} | hf

    progress(f"registering {SAME}@1.0.0 (untimed: the re-register and download rows use it)")
    src.add_model(SAME)
    first = Case(f"`regops register {SAME}` 1.0.0 (setup)", src.register(SAME, "1.0.0"), "warm", "hub")
    check(first, b.once(first))
    revision = revision_of(src.version_file(SAME, "1.0.0"))

    mib = f"{args.size_mb:,} MiB"
    again = Reregister(src, server, revision)
    rows: list[Case] = [
        Step(f"`regops register`, {mib} + config.json, fresh Hub repo", [], "warm", "hub"),
        Step(f"baseline: `curl -T` of the {mib} file to a fresh LFS upload URL (one PUT)", [], "-"),
        Step("`regops register` of the same files as a new version, repo already holds them", [], "warm", "hub"),
        Step("`regops download M@V`, fresh dest", [], "warm", "hub"),
        Step(f"baseline: `curl` GET of the {mib} file at the pinned commit", [], "-"),
    ]
    scenarios = (
        FreshRegister(src, server),
        CurlPut(src, server),
        again,
        Download(src, server),
        CurlGet(src, server, revision),
    )
    for step, scenario in zip(rows, scenarios, strict=True):
        assert isinstance(step, Step)
        step.scenario = scenario
    b.measure(rows, args.repeat)
    if missing := [c.missing for c in rows if c.missing]:
        raise Failed("; ".join(missing))
    report(args, b, server=server, src=src, rows=rows, sent=again.sent[-args.repeat :])
    return 0


def version_line(argv: list[str]) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    return (proc.stdout or proc.stderr).strip().splitlines()[0] if proc.returncode == 0 else "?"


def report(
    args: argparse.Namespace, b: LifecycleBench, *, server: HubProcess, src: Sources, rows: list[Case], sent: list[int]
) -> None:
    client = version_line([b.python, "-c", "import huggingface_hub as h; print('huggingface_hub', h.__version__)"])
    machine = f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs"
    lines = [
        f"## regops and the Hub: upload and download ({datetime.now(UTC):%Y-%m-%d %H:%M UTC})",
        "",
        f"- {regops_version(b)}; {client}; {' '.join(version_line(['curl', '--version']).split()[:2])}",
        f"- Python {platform.python_version()} on {machine}",
        f"- every row: median of **{args.repeat}** timed runs after 1 untimed warm-up, a fresh subprocess each, "
        "rounds interleaved; page cache not dropped (the source file is read warm by every row), `sync` before "
        "each run (untimed), so no run pays for writing back what an earlier one wrote",
        f"- server: `python -m tests.servers.hub` in its own process at {server.url} (uvicorn, git-LFS basic "
        "transfer); regops runs with `HF_ENDPOINT` pointing at it, `HF_HUB_DISABLE_XET=1` and "
        "`HF_HUB_DISABLE_TELEMETRY=1`",
        f"- files: `{WEIGHTS}` ({src.size:,} bytes of random data) and `config.json` ({src.total - src.size} bytes)",
        "- fresh register: a new model, so a new Hub repo, every run; after the run (untimed) the repo is deleted "
        "through the server's API. curl PUT: before each run (untimed) a new repo is created and the LFS batch API "
        "asked for the signed upload URL, as a git-lfs client does; the server must then hold the object",
        f"- re-register and download: `{SAME}@1.0.0` is registered once before the warm-ups; each re-register run "
        "writes a new version of the same files (checked: same commit, the server's copy untouched; version file "
        "removed after the run); each download goes to a new folder, each curl GET to a new file (both removed after)",
        "- bytes sent: as `regops register --json` reports them (`uploaded_bytes`). loopback MB: bytes through the "
        "`lo` interface during the run, every request and response with its headers (median of the timed runs)",
        "",
        table(rows, sent),
        "",
        "Notes:",
        "- `regops register` reads every file once to compute its sha256 before anything is sent; the upload reads "
        "the weights again.",
        "- The server computes the sha256 of every upload as it streams it to disk (both upload rows) and keeps it "
        "only when it matches the announced object.",
        "- `regops download` lists the files of the commit and the repo's LFS objects first, streams each file into "
        "a staging folder while hashing it (sha256) and fsyncs it before moving it into place. curl writes the bytes "
        "it receives, with neither fsync nor hash.",
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    raise SystemExit(main())
