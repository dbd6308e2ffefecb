"""Writes under real faults: refused input, failed uploads, crashes, killed downloads, racing writers.

Everything runs through ``regops.cli.main`` (or a real ``python -m regops``
subprocess) on a copy of tests/data/registry. Faults are produced for real: a
file where the store folder should be, a folder where the version file should
be, SIGKILL, the registry lock held by this process, two processes at once.
Each case checks the exact message and that nothing was lost or half-written.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from regops import api
from regops.cli import main
from regops.lifecycle import LOCK_FILE, locked
from regops.weights import PARTIAL_DIR, Artifact, part_name
from tests.conftest import Tree

MODEL_DIR = "models/sentiment"
WEIGHTS = os.urandom(200_000)
CONFIG = b'{"hidden_size": 768}\n'
LOCK_MESSAGE = (
    "another regops command is writing this registry (it holds {root}/.regops.lock); "
    "nothing was changed: run again when it has finished"
)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Work:
    """A training run's output, next to the registry: artifacts, evals and params."""

    tree: Tree
    artifacts: Path
    evals: Path
    params: Path

    def register(self, *extra: str, version: str | None = "1.5.0") -> list[str]:
        which = ["--version", version] if version else []
        return [
            "register",
            "sentiment",
            "--artifacts",
            str(self.artifacts),
            "--evals",
            str(self.evals),
            "--params",
            str(self.params),
            "--dataset",
            "reviews@2025-09-08",
            "--by",
            "alice",
            "--registry",
            str(self.tree.root),
            *which,
            *extra,
        ]


@pytest.fixture
def work(tree: Tree, monkeypatch: pytest.MonkeyPatch) -> Work:
    run = tree.base / "run"
    (run / "artifacts").mkdir(parents=True)
    (run / "artifacts" / "model.safetensors").write_bytes(WEIGHTS)
    (run / "artifacts" / "config.json").write_bytes(CONFIG)
    (run / "evals.json").write_text(json.dumps({"accuracy": 0.96, "latency_ms": 40}))
    (run / "params.yaml").write_text("learning_rate: 3.0e-5\nepochs: 4\n")
    monkeypatch.chdir(tree.base)  # the CLI prints paths relative to the working directory
    return Work(tree, run / "artifacts", run / "evals.json", run / "params.yaml")


def cli(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def files(tree: Tree) -> dict[str, bytes]:
    """Every file under the repository (registry, store, run), except the (empty) lock file."""
    return {k: v for k, v in tree.snapshot().items() if k != f"registry/{LOCK_FILE}"}


def objects(tree: Tree) -> list[str]:
    """The stored objects (not the store's OWNER file)."""
    store = tree.base / ".regops/store/sha256"
    return sorted(p.name for p in store.rglob("*") if p.is_file()) if store.is_dir() else []


def version_data(tree: Tree, version: str) -> dict[str, Any]:
    """The version file as regops reads it (YAML 1.2: ``3e-05`` is a float)."""
    return api.show(f"sentiment@{version}", registry=tree.root).raw


def stage_of(tree: Tree, version: str) -> str:
    return str(version_data(tree, version)["stage"])


# --- register -------------------------------------------------------------------------------


def test_register_writes_a_valid_candidate_and_bumps(work: Work, capsys: pytest.CaptureFixture[str]) -> None:
    tree = work.tree

    code, out, err = cli(capsys, work.register("--bump", "minor", version=None))

    assert (code, err) == (0, ""), err
    assert out == "registered registry/models/sentiment/1.5.0-rc.1.yaml as a candidate; 2 files uploaded (200.0 KB)\n"
    data = version_data(tree, "1.5.0-rc.1")
    assert data["model"] == "sentiment"
    assert data["version"] == "1.5.0-rc.1"
    assert (data["stage"], data["transitions"], data["created_by"]) == ("candidate", [], "alice")
    assert data["artifacts"] == {
        "files": [
            {"path": "config.json", "size": len(CONFIG), "sha256": _sha(CONFIG)},
            {"path": "model.safetensors", "size": len(WEIGHTS), "sha256": _sha(WEIGHTS)},
        ],
        "storage": {"backend": "local", "tier": "hot"},
    }
    assert data["evals"] == {"scores": {"accuracy": 0.96, "latency_ms": 40}}
    assert data["hyperparameters"] == {"learning_rate": 3.0e-5, "epochs": 4}
    assert data["training"]["dataset"] == "reviews@2025-09-08"
    assert tree.read(f"{MODEL_DIR}/1.5.0-rc.1.yaml").startswith(
        "# yaml-language-server: $schema=../../../schemas/model-version.schema.json\n"
    )
    assert objects(tree) == sorted([_sha(CONFIG), _sha(WEIGHTS)])
    for blob in (CONFIG, WEIGHTS):
        stored = tree.base / ".regops/store/sha256" / _sha(blob)[:2] / _sha(blob)[2:4] / _sha(blob)
        assert stored.read_bytes() == blob
    assert cli(capsys, ["validate", "--registry", str(tree.root)]) == (0, "ok: no problems\n", "")

    code, out, err = cli(capsys, work.register("--bump", "rc", version=None))
    assert (code, err) == (0, ""), err
    assert out == (
        "registered registry/models/sentiment/1.5.0-rc.2.yaml as a candidate; "
        "0 files uploaded (0 B), 2 already stored\n"
    )
    assert version_data(tree, "1.5.0-rc.2")["version"] == "1.5.0-rc.2"
    assert cli(capsys, ["validate", "--registry", str(tree.root)]) == (0, "ok: no problems\n", "")


def test_bump_rc_after_a_release_is_refused(work: Work, capsys: pytest.CaptureFixture[str]) -> None:
    before = files(work.tree)
    argv = work.register("--bump", "rc", version=None)
    argv[argv.index("sentiment")] = "intent"
    argv[argv.index("reviews@2025-09-08")] = "tickets@v1"

    code, out, err = cli(capsys, argv)

    assert (code, out) == (1, "")
    assert err == (
        "regops: error: --bump rc needs a release candidate to count up, and the latest version is 1.0.0; "
        "use --bump patch, minor or major\n"
    )
    assert files(work.tree) == before
    assert objects(work.tree) == []


@dataclass(frozen=True)
class Refusal:
    id: str
    setup: Callable[[Work], object]
    extra: tuple[str, ...]
    message: Callable[[Work], str]


def _evals(text: str, name: str = "evals.json") -> Callable[[Work], object]:
    def edit(w: Work) -> None:
        w.evals.unlink()
        w.evals = w.evals.with_name(name)
        w.evals.write_text(text)

    return edit


def _empty_artifacts(w: Work) -> None:
    for path in w.artifacts.iterdir():
        path.unlink()
    (w.artifacts / "checkpoints").mkdir()  # a folder, but no file


def _symlink_out(w: Work) -> None:
    secret = w.tree.base / "elsewhere.bin"
    secret.write_bytes(b"not part of the model")
    (w.artifacts / "extra.bin").symlink_to(secret)


REFUSALS = [
    Refusal(
        "version exists",
        lambda w: None,
        ("--version", "1.3.0"),
        lambda w: "sentiment@1.3.0 already exists; versions are immutable: register a new one",
    ),
    Refusal(
        "parent does not resolve",
        lambda w: None,
        ("--parent", "1.1.9"),
        lambda w: "parent sentiment@1.1.9 is not in the registry",
    ),
    Refusal(
        "parent of another model does not resolve",
        lambda w: None,
        ("--parent", "intent@9.0.0"),
        lambda w: "parent intent@9.0.0 is not in the registry",
    ),
    Refusal(
        "dataset does not resolve",
        lambda w: None,
        ("--dataset", "reviews@2030-01-01"),
        lambda w: (
            "dataset reviews@2030-01-01 is not in the registry (expected datasets/reviews/2030-01-01.yaml); "
            "register it with `regops dataset register`"
        ),
    ),
    Refusal(
        "eval dataset does not resolve",
        lambda w: None,
        ("--eval-dataset", "reviews-eval@v9"),
        lambda w: (
            "dataset reviews-eval@v9 is not in the registry (expected datasets/reviews-eval/v9.yaml); "
            "register it with `regops dataset register`"
        ),
    ),
    Refusal(
        "no primary metric",
        _evals('{"f1": 0.9, "latency_ms": 40}'),
        (),
        lambda w: "evals has no 'accuracy', the model's primary metric (model.yaml); add it",
    ),
    Refusal(
        "score n/a",
        _evals('{"accuracy": "n/a"}'),
        (),
        lambda w: "evals: accuracy is 'n/a', not a finite number",
    ),
    Refusal(
        "JSON NaN",
        _evals(json.dumps({"scores": {"accuracy": float("nan")}})),
        (),
        lambda w: "evals: accuracy is 'NaN', not a finite number",
    ),
    Refusal(
        "YAML nan",
        _evals("accuracy: .nan\n", "evals.yaml"),
        (),
        lambda w: "evals: accuracy is nan, not a finite number",
    ),
    Refusal(
        "YAML inf",
        _evals("accuracy: 0.9\nlatency_ms: -.inf\n", "evals.yaml"),
        (),
        lambda w: "evals: latency_ms is -inf, not a finite number",
    ),
    Refusal(
        "empty artifacts folder",
        _empty_artifacts,
        (),
        lambda w: f"{w.artifacts} holds no files; nothing to register",
    ),
    Refusal(
        "symlink out of the artifacts folder",
        _symlink_out,
        (),
        lambda w: (
            f"{w.artifacts / 'extra.bin'} is a symlink to {(w.tree.base / 'elsewhere.bin').resolve()}, "
            f"outside {w.artifacts}; copy the file in instead"
        ),
    ),
]


@pytest.mark.parametrize("case", REFUSALS, ids=[c.id for c in REFUSALS])
def test_register_refusals_write_nothing(work: Work, case: Refusal, capsys: pytest.CaptureFixture[str]) -> None:
    case.setup(work)
    before = files(work.tree)

    code, out, err = cli(capsys, work.register(*case.extra))

    assert (code, out) == (1, "")
    assert err == f"regops: error: {case.message(work)}\n"
    assert files(work.tree) == before, "nothing written to the registry, the store or the run"
    assert objects(work.tree) == [], "nothing uploaded"


def test_upload_failure_writes_no_version_file(work: Work, capsys: pytest.CaptureFixture[str]) -> None:
    tree = work.tree
    (tree.base / ".regops").write_text("a file where the store folder should be\n")
    before = files(tree)

    code, out, err = cli(capsys, work.register())

    assert (code, out) == (1, "")
    assert err == f"regops: error: cannot write to local storage at {tree.base}/.regops/store: Not a directory\n"
    assert files(tree) == before
    assert not tree.path(f"{MODEL_DIR}/1.5.0.yaml").exists()


def test_crash_after_upload_then_rerun_finishes_without_uploading(
    work: Work, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = work.tree
    target = tree.path(f"{MODEL_DIR}/1.5.0.yaml")
    target.mkdir()  # the rename onto the version file fails after the upload
    registry_before = {k: v for k, v in files(tree).items() if k.startswith("registry/")}

    code, out, err = cli(capsys, work.register())

    assert (code, out) == (1, "")
    assert err == (
        "regops: error: the weights are stored (2 files uploaded), but writing registry/models/sentiment/1.5.0.yaml "
        "failed: Is a directory. Fix that and run the same command again: nothing is uploaded twice\n"
    )
    assert {k: v for k, v in files(tree).items() if k.startswith("registry/")} == registry_before, "no temp file"
    assert objects(tree) == sorted([_sha(CONFIG), _sha(WEIGHTS)])
    store = tree.base / ".regops/store"
    stamps = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in store.rglob("*") if p.is_file()}

    target.rmdir()
    code, out, err = cli(capsys, work.register())

    assert (code, err) == (0, ""), err
    assert (
        out
        == "registered registry/models/sentiment/1.5.0.yaml as a candidate; 0 files uploaded (0 B), 2 already stored\n"
    )
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in stamps} == stamps
    assert objects(tree) == sorted([_sha(CONFIG), _sha(WEIGHTS)])
    assert stage_of(tree, "1.5.0") == "candidate"
    assert cli(capsys, ["validate", "--registry", str(tree.root)]) == (0, "ok: no problems\n", "")


# --- download killed half-way ------------------------------------------------------------------

BIG = 64 << 20  # caught half-way by stopping the download to look (_stop_half_way)


def _write_big(path: Path, size: int = BIG) -> str:
    """``size`` bytes, every MiB different (so a resume at a wrong offset cannot pass); returns the sha256."""
    block, digest = os.urandom(1 << 20), hashlib.sha256()
    with path.open("wb") as out:
        for i in range(size >> 20):
            chunk = i.to_bytes(8, "big") + block[8:]
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def _sha_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _stop_half_way(proc: subprocess.Popen[str], part: Path) -> None:
    """Return with ``proc`` stopped (SIGSTOP) once ``part`` holds half of BIG bytes or more, but not all.

    The download is stopped while its file is looked at and let run a moment between looks: what is seen is what
    it holds when killed, however the machine schedules the two (a file of any size is caught mid-way).
    """
    deadline = time.monotonic() + 60
    while True:
        os.kill(proc.pid, signal.SIGSTOP)
        _, status = os.waitpid(proc.pid, os.WUNTRACED)
        assert os.WIFSTOPPED(status), f"the download ended before it could be killed (status {status})"
        if part.exists() and BIG // 2 <= part.stat().st_size < BIG:
            return
        assert time.monotonic() < deadline, "the download never got half-way"
        os.kill(proc.pid, signal.SIGCONT)
        time.sleep(0.001)


def test_killed_download_leaves_only_staging_and_resumes(work: Work, capsys: pytest.CaptureFixture[str]) -> None:
    tree = work.tree
    sha = _write_big(work.artifacts / "model.safetensors")
    assert cli(capsys, work.register())[0] == 0
    dest = tree.base / "deploy"
    part = dest / PARTIAL_DIR / part_name(Artifact("model.safetensors", BIG, sha))
    command = [sys.executable, "-m", "regops", "download", "sentiment@1.5.0", "--dest", str(dest)]
    proc = subprocess.Popen(
        [*command, "--registry", str(tree.root)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        _stop_half_way(proc, part)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL

    kept = part.stat().st_size
    assert 0 < kept < BIG, f"the kill must land mid-file (kept {kept} of {BIG} bytes): make BIG larger"
    assert [p.name for p in dest.iterdir()] == [PARTIAL_DIR], "nothing but the staging folder is visible in DEST"
    staged = sorted(p.name for p in (dest / PARTIAL_DIR).iterdir())
    assert staged == sorted([part_name(Artifact("config.json", len(CONFIG), _sha(CONFIG))), part.name])

    fetched: list[int] = []
    _, written = api.download("sentiment@1.5.0", registry=tree.root, dest=dest, progress=fetched.append)

    assert written == [dest / "config.json", dest / "model.safetensors"]
    assert sum(fetched) == BIG - kept, "the rest of the file is fetched, not the whole file again"
    assert sorted(p.name for p in dest.iterdir()) == ["config.json", "model.safetensors"]
    assert (dest / "config.json").read_bytes() == CONFIG
    assert _sha_file(dest / "model.safetensors") == sha
    for big in (dest / "model.safetensors", work.artifacts / "model.safetensors", *tree.base.glob(".regops/**/" + sha)):
        big.unlink()  # 1.5 GB is too much to leave to pytest's tmp_path retention


# --- the registry lock -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["promote", "sentiment@1.4.0-rc.2", "--to", "dev", "--notes", "better", "--by", "alice"],
        ["rollback", "sentiment", "--to", "1.1.0", "--notes", "regression", "--by", "alice"],
        ["canary", "record", "sentiment@1.3.0", "--result", "passed"],
    ],
    ids=["promote", "rollback", "canary"],
)
def test_a_held_lock_refuses_every_write(tree: Tree, argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with locked(tree.root):
        before = files(tree)
        code, out, err = cli(capsys, [*argv, "--registry", str(tree.root)])

    assert (code, out) == (1, "")
    assert err == f"regops: error: {LOCK_MESSAGE.format(root=tree.root)}\n"
    assert files(tree) == before


def test_a_held_lock_refuses_register_before_any_upload(work: Work, capsys: pytest.CaptureFixture[str]) -> None:
    with locked(work.tree.root):
        before = files(work.tree)
        code, out, err = cli(capsys, work.register())

    assert (code, out) == (1, "")
    assert err == f"regops: error: {LOCK_MESSAGE.format(root=work.tree.root)}\n"
    assert files(work.tree) == before
    assert objects(work.tree) == []


# --- two processes at once -------------------------------------------------------------------

# Each process imports everything, says it is ready, and starts its command once all are ready.
RACER = """\
import sys, time
from pathlib import Path
from regops import api, lifecycle, policy, registry, weights
from regops.adapters import local
from regops.cli import main
ready, me, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
(ready / me).touch()
while len(list(ready.iterdir())) < count:
    time.sleep(0.0005)
raise SystemExit(main(sys.argv[4:]))
"""


def race(folder: Path, commands: dict[str, list[str]]) -> dict[str, tuple[int, str]]:
    """Run the commands as real ``regops`` processes starting together; each one's exit code and stderr."""
    ready = folder / "ready"
    ready.mkdir()
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-c", RACER, str(ready), name, str(len(commands)), *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, argv in commands.items()
    }
    try:
        return {name: (p.communicate(timeout=120)[1], p.returncode)[::-1] for name, p in procs.items()}
    finally:
        for p in procs.values():
            p.kill()  # only one that hung: a finished process is not signalled
            p.wait()


# The same processes racing round after round (an interpreter's start-up paid once): in round N each runs its command
# with "{round}" replaced by N, once all are ready, and leaves its exit code and stderr in round-N/<name>.json. A
# process past the deadline ends instead, and says so (stop): the others, waiting for it, end too.
ROUNDS_RACER = """\
import contextlib, io, json, sys, time, traceback
from pathlib import Path
from regops import api, lifecycle, policy, registry, weights
from regops.adapters import local
from regops.cli import main
folder, me, count, rounds = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
deadline, stop = time.monotonic() + float(sys.argv[5]), folder / "stop"
for n in range(1, rounds + 1):
    ready = folder / f"round-{n}" / "ready"
    ready.mkdir(parents=True, exist_ok=True)
    if n > 1 and time.monotonic() > deadline:
        stop.touch()
    if stop.exists():
        break
    (ready / me).touch()
    while len(list(ready.iterdir())) < count and not stop.exists():
        time.sleep(0.0005)
    if len(list(ready.iterdir())) < count:
        break
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            code = main([arg.replace("{round}", str(n)) for arg in sys.argv[6:]])
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else 1
        except BaseException:
            traceback.print_exc()
            code = 1
    (ready.parent / f"{me}.json").write_text(json.dumps([code, err.getvalue()]))
"""


def race_rounds(folder: Path, names: tuple[str, ...], argv: list[str], rounds: int, seconds: float) -> list[dict]:
    """:func:`race` for ``rounds`` rounds (fewer once ``seconds`` have passed): per round, each one's code and stderr."""
    command = [sys.executable, "-c", ROUNDS_RACER, str(folder), "", str(len(names)), str(rounds), str(seconds), *argv]
    procs = {
        name: subprocess.Popen([*command[:4], name, *command[5:]], stderr=subprocess.PIPE, text=True) for name in names
    }
    try:
        ended = {name: (p.communicate(timeout=seconds + 120)[1], p.returncode) for name, p in procs.items()}
    finally:
        for p in procs.values():
            p.kill()  # only one that hung: a finished process is not signalled
            p.wait()
    assert all(ended_as == ("", 0) for ended_as in ended.values()), ended
    played = sorted(folder.glob("round-*/"), key=lambda round_: int(round_.name.removeprefix("round-")))
    results = [{name: tuple(json.loads((r / f"{name}.json").read_text())) for name in names} for r in played
               if all((r / f"{name}.json").exists() for name in names)]  # fmt: skip
    assert len(results) >= len(played) - 1, "a round every process was ready for was played by all"
    return results


def test_two_promotes_racing(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    # Each is legal alone; together the later one finds the lock held, or rc.1 already archived.
    common = ["--notes", "race", "--by", "alice", "--registry", str(tree.root)]
    results = race(
        tree.base,
        {
            "rc.2 to dev": ["promote", "sentiment@1.4.0-rc.2", "--to", "dev", *common],
            "rc.1 to archived": ["promote", "sentiment@1.4.0-rc.1", "--to", "archived", *common],
        },
    )

    allowed = (
        f"regops: error: {LOCK_MESSAGE.format(root=tree.root)}\n",
        "regops: error: sentiment@1.4.0-rc.1 is already in archived; nothing to do\n",
    )
    for name, (code, err) in results.items():
        assert "Traceback" not in err, f"{name}: {err}"
        assert (code == 0 and err == "") or (code == 1 and err in allowed), f"{name}: exit {code}: {err}"
    assert any(code == 0 for code, _ in results.values()), results
    # Whoever won, rc.1 ends archived exactly once, and rc.2 is in dev exactly when its promote succeeded.
    assert stage_of(tree, "1.4.0-rc.1") == "archived"
    assert tree.read(f"{MODEL_DIR}/1.4.0-rc.1.yaml").count("to: archived") == 1
    assert stage_of(tree, "1.4.0-rc.2") == ("dev" if results["rc.2 to dev"][0] == 0 else "candidate")
    assert not list(tree.root.rglob("*.tmp")), "no temp file left"
    assert cli(capsys, ["validate", "--registry", str(tree.root)]) == (0, "ok: no problems\n", "")


def test_two_downloads_into_one_dest(work: Work) -> None:
    tree = work.tree
    sha = _write_big(work.artifacts / "model.safetensors")
    assert main(work.register()) == 0
    dest = tree.base / "deploy"
    download = ["download", "sentiment@1.5.0", "--dest", str(dest), "--registry", str(tree.root)]

    results = race(tree.base, {"first": download, "second": download})

    for name, (code, err) in results.items():
        assert "Traceback" not in err and code in (0, 1), f"{name}: exit {code}: {err}"
        assert "stored copy is damaged" not in err, f"{name}: the store is intact, yet: {err}"
    assert any(code == 0 for code, _ in results.values()), results
    assert _sha_file(dest / "model.safetensors") == sha
    assert _sha_file(tree.base / ".regops/store/sha256" / sha[:2] / sha[2:4] / sha) == sha


# --- download into a path that cannot take it ------------------------------------------------


def test_download_into_a_file_is_a_clear_error(work: Work, capsys: pytest.CaptureFixture[str]) -> None:
    tree = work.tree
    assert main(work.register()) == 0
    dest = tree.base / "model.bin"
    dest.write_bytes(b"something else\n")
    capsys.readouterr()

    code, out, err = cli(capsys, ["download", "sentiment@1.5.0", "--dest", str(dest), "--registry", str(tree.root)])

    assert (code, out) == (1, ""), err
    assert err.startswith("regops: error: ") and str(dest) in err, err
    assert dest.read_bytes() == b"something else\n"


def test_download_over_a_folder_is_a_clear_error(work: Work, capsys: pytest.CaptureFixture[str]) -> None:
    tree = work.tree
    assert main(work.register()) == 0
    dest = tree.base / "deploy"
    (dest / "model.safetensors").mkdir(parents=True)
    capsys.readouterr()

    code, out, err = cli(capsys, ["download", "sentiment@1.5.0", "--dest", str(dest), "--registry", str(tree.root)])

    assert (code, out) == (1, ""), err
    assert err.startswith("regops: error: ") and "model.safetensors" in err, err
    assert (dest / "model.safetensors").is_dir() and not any((dest / "model.safetensors").iterdir())


# --- promote and rollback refusals ------------------------------------------------------------------


def _cold(tree: Tree) -> None:
    tree.replace(
        f"{MODEL_DIR}/1.4.0-rc.1.yaml", "storage: {backend: local, tier: hot}", "storage: {backend: local, tier: cold}"
    )


WRITE_REFUSALS = [
    (
        "candidate to prod",
        None,
        ["promote", "sentiment@1.4.0-rc.2", "--to", "prod", "--by", "alice"],
        "sentiment@1.4.0-rc.2 cannot go from candidate to prod: not a legal step (it must pass staging first)",
    ),
    (
        "already in the stage",
        None,
        ["promote", "sentiment@1.2.0", "--to", "prod", "--by", "alice"],
        "sentiment@1.2.0 is already in prod; nothing to do",
    ),
    (
        "prod without a passed canary",
        None,
        ["promote", "sentiment@1.3.0", "--to", "prod", "--by", "alice"],
        "sentiment@1.3.0's canary is pending; regops.yaml requires a passed canary before prod "
        "(record one with `regops canary record sentiment@1.3.0 --result passed`)",
    ),
    (
        "bot to staging",
        None,
        ["promote", "sentiment@1.4.0-rc.1", "--to", "staging", "--by", "github-actions[bot]"],
        "github-actions[bot] is a bot, and bots may not move versions to staging: a person must promote "
        "sentiment@1.4.0-rc.1",
    ),
    (
        "weights in cold storage",
        _cold,
        ["promote", "sentiment@1.4.0-rc.1", "--to", "staging", "--by", "alice"],
        "sentiment@1.4.0-rc.1's weights are in cold storage; run `regops restore sentiment@1.4.0-rc.1` "
        "before moving it to staging",
    ),
    (
        "rollback without a former prod",
        None,
        ["rollback", "intent", "--to", "1.0.0", "--by", "alice"],
        "intent has no former prod version to roll back to",
    ),
    (
        "rollback to a version never in prod",
        None,
        ["rollback", "sentiment", "--to", "1.3.0", "--by", "alice"],
        "sentiment@1.3.0 was never in prod, so it cannot be rolled back to (former prod: 1.0.0, 1.1.0)",
    ),
    (
        "rollback to the version in prod",
        None,
        ["rollback", "sentiment", "--to", "1.2.0", "--by", "alice"],
        "sentiment@1.2.0 is in prod now; roll back to a version that was prod before",
    ),
    (
        "rollback to weights not in the store",
        None,
        ["rollback", "sentiment", "--to", "1.1.0", "--by", "alice"],
        "sentiment@1.1.0: model.safetensors, config.json not retrievable from local hot storage at "
        "{base}/.regops/store; it cannot go to prod; nothing was changed: the version file says the weights are "
        "there, so put them back (from a backup, or from the machine that registered sentiment@1.1.0) and run again",
    ),
]


@pytest.mark.parametrize(
    ("edit", "argv", "message"), [c[1:] for c in WRITE_REFUSALS], ids=[c[0] for c in WRITE_REFUSALS]
)
def test_promote_and_rollback_refusals_change_nothing(
    tree: Tree,
    edit: Callable[[Tree], object] | None,
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if edit:
        edit(tree)
    before = files(tree)

    code, out, err = cli(capsys, [*argv, "--notes", "because", "--registry", str(tree.root)])

    assert (code, out) == (1, "")
    assert err == f"regops: error: {message.format(base=tree.base)}\n"
    assert files(tree) == before


def test_rollback_goes_ahead_once_the_weights_are_stored(stored_tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    # The same rollback the refusal above stops, with the weights in the store: the refusal was about them.
    tree = stored_tree
    argv = ["rollback", "sentiment", "--to", "1.1.0", "--notes", "because", "--by", "alice"]

    code, out, err = cli(capsys, [*argv, "--registry", str(tree.root)])

    assert (code, err) == (0, ""), err
    assert out == "sentiment@1.2.0: prod -> archived\nsentiment@1.1.0: archived -> prod\n"
    assert (stage_of(tree, "1.1.0"), stage_of(tree, "1.2.0")) == ("prod", "archived")
    assert cli(capsys, ["validate", "--registry", str(tree.root)]) == (0, "ok: no problems\n", "")


def test_a_registered_version_walks_to_staging(work: Work, capsys: pytest.CaptureFixture[str]) -> None:
    tree = work.tree
    assert cli(capsys, work.register())[0] == 0
    promote = ["promote", "sentiment@1.5.0", "--by", "alice", "--notes", "n", "--registry", str(tree.root)]

    assert cli(capsys, [*promote, "--to", "dev"]) == (
        0,
        "sentiment@1.4.0-rc.1: dev -> archived\nsentiment@1.5.0: candidate -> dev\n",
        "",
    )
    assert cli(capsys, [*promote, "--to", "staging"]) == (
        0,
        "sentiment@1.3.0: staging -> archived\nsentiment@1.5.0: dev -> staging\n"
        "sentiment@1.5.0: canary started at 5% of traffic\n",
        "",
    )
    assert (stage_of(tree, "1.5.0"), stage_of(tree, "1.3.0"), stage_of(tree, "1.4.0-rc.1")) == (
        "staging",
        "archived",
        "archived",
    )
    assert cli(capsys, ["validate", "--registry", str(tree.root)]) == (0, "ok: no problems\n", "")


def test_downloads_racing_into_one_dest_never_report_a_bad_file(work: Work) -> None:
    """Three real processes download into one DEST, again and again (bounded in time): whoever says it succeeded
    left every file with its recorded bytes, and whatever is in DEST outside staging is verified."""
    tree = work.tree
    (work.artifacts / "extra.bin").write_bytes(os.urandom(4 << 20))
    assert main(work.register()) == 0
    expected = {p.name: p.read_bytes() for p in work.artifacts.iterdir()}
    download = [
        "download",
        "sentiment@1.5.0",
        "--dest",
        str(tree.base / "deploy-{round}"),
        "--registry",
        str(tree.root),
    ]
    played = race_rounds(tree.base / "race", ("a", "b", "c"), download, rounds=8, seconds=40)
    assert played, "no round was played"
    for rounds, results in enumerate(played, start=1):
        dest = tree.base / f"deploy-{rounds}"
        for name, (code, err) in results.items():
            assert "Traceback" not in err and code in (0, 1), f"round {rounds}, {name}: exit {code}: {err}"
            if code == 0:
                for file, data in expected.items():
                    assert (dest / file).read_bytes() == data, f"round {rounds}: {name} reported {file} verified"
        assert any(code == 0 for code, _ in results.values()), results
        placed = {p.name: p.read_bytes() for p in dest.iterdir() if p.is_file()}
        assert all(expected[name] == data for name, data in placed.items()), f"round {rounds}: a bad file in DEST"
