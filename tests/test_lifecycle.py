"""Writes: exact text of surgical edits, auto-promotion, and the whole path on a real git repository."""

from __future__ import annotations

import json
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from regops import api, lifecycle
from regops.cli import main
from regops.registry import Registry
from tests.conftest import Tree, git, registry_repo, run_regops, weights

NOW = datetime(2026, 6, 20, 12, 0, 0, tzinfo=UTC)

COMMENTED_DEV = """\
# yaml-language-server: $schema=../../../schemas/model-version.schema.json
# Retrained after the sarcasm fixes; see the run for the loss curves.
model: sentiment
version: 1.4.0-rc.1
created_at: 2026-06-01T10:00:00Z
created_by: 'training-bot[bot]'   # single quotes, kept
parent: "1.3.0"
training:
  dataset: reviews@2025-09-08
  dataset_hash: blake3:3aa7cb0d71a0fa8a247dec5b636b723054ea7f133debbcd6f79a9bbd3813d632
hyperparameters:
  learning_rate: 3.0e-5   # the sweep's best
  epochs: 3
evals:
  dataset: reviews-eval@v1
  scores: {accuracy: 0.95, latency_ms: 44}
artifacts:
  files:
    - {path: model.safetensors, size: 1000, sha256: 0a3c2e4e8ebdf2b8ca6dbc3a7e1c6b2b1c0e4f2e9b8a6d4c2e0f1a3b5c7d9e1f}
  storage: {backend: local, tier: hot}
stage: dev   # set by auto-promote
transitions:
  - {from: candidate, to: dev, at: 2026-06-01T11:00:00Z, by: "github-actions[bot]", reason: "auto: accuracy 0.95 > 0.94 (1.3.0)"}
"""


def test_promote_edits_surgically_golden(tree: Tree) -> None:
    tree.write("models/sentiment/1.4.0-rc.1.yaml", COMMENTED_DEV)
    staging_before = tree.read("models/sentiment/1.3.0.yaml")

    plan = lifecycle.promote(
        Registry.load(tree.root),
        "sentiment@1.4.0-rc.1",
        to="staging",
        notes="sarcasm: fixed, [finally]",
        by="alice",
        now=NOW,
    )

    after = {change.path.name: change.after for change in plan.changes}
    assert after["1.4.0-rc.1.yaml"] == COMMENTED_DEV.replace(
        "stage: dev   # set by auto-promote\n",
        "stage: staging # set by auto-promote\n"
        "canary: {traffic_percent: 5, started_at: 2026-06-20T12:00:00Z, result: pending}\n",
    ) + ('  - {from: dev, to: staging, at: 2026-06-20T12:00:00Z, by: alice, notes: "sarcasm: fixed, [finally]"}\n')
    assert after["1.3.0.yaml"] == staging_before.replace("stage: staging\n", "stage: archived\n").replace(
        "result: pending}", "result: aborted, finished_at: 2026-06-20T12:00:00Z}"
    ) + (
        "  - {from: staging, to: archived, at: 2026-06-20T12:00:00Z, by: alice, "
        "notes: replaced in staging by 1.4.0-rc.1}\n"
    )
    assert plan.steps == [
        "sentiment@1.3.0: staging -> archived",
        "sentiment@1.4.0-rc.1: dev -> staging",
        "sentiment@1.4.0-rc.1: canary started at 5% of traffic",
    ]


def test_dry_run_prints_the_diff_and_writes_nothing(stored_tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    tree = stored_tree
    before = tree.snapshot()
    code = main(
        [
            "promote",
            "sentiment@1.4.0-rc.1",
            "--to",
            "staging",
            "--notes",
            "n",
            "--by",
            "alice",
            "--dry-run",
            "--registry",
            str(tree.root),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "dry run: nothing was written" in out
    assert "-stage: dev\n+stage: staging" in out
    assert tree.snapshot() == before


def test_promote_to_prod_archives_the_old_prod_in_the_same_change(stored_tree: Tree) -> None:
    tree = stored_tree
    tree.replace("models/sentiment/1.3.0.yaml", "result: pending}", "result: passed}")
    api.promote("sentiment@1.3.0", registry=tree.root, to="prod", notes="canary held", by="bob")

    registry = Registry.load(tree.root)
    assert registry.resolve("sentiment@prod").version == "1.3.0"
    assert registry.version("sentiment", "1.2.0").stage == "archived"
    assert registry.version("sentiment", "1.2.0").steps[-1].notes == "replaced in prod by 1.3.0"
    assert api.validate(registry=tree.root) == []


# --- auto-promote ------------------------------------------------------------------------


def _candidate(tree: Tree, version: str, accuracy: float, latency: float) -> None:
    text = tree.read("models/sentiment/1.4.0-rc.2.yaml").replace("1.4.0-rc.2", version)
    text = text.replace("accuracy: 0.949", f"accuracy: {accuracy}").replace("latency_ms: 44", f"latency_ms: {latency}")
    tree.write(f"models/sentiment/{version}.yaml", text)


def test_auto_promote_moves_the_best_candidate_that_beats_dev_and_says_why(tree: Tree) -> None:
    _candidate(tree, "1.5.0-rc.1", 0.96, 44)  # beats dev (0.95)
    _candidate(tree, "1.5.0-rc.2", 0.97, 44)  # beats it more
    _candidate(tree, "1.5.0-rc.3", 0.99, 60)  # best accuracy, but latency regresses past the 5 ms tolerance

    plan = lifecycle.auto_promote(Registry.load(tree.root), by="github-actions[bot]", now=NOW)

    assert plan.steps == ["sentiment@1.4.0-rc.1: dev -> archived", "sentiment@1.5.0-rc.2: candidate -> dev"]
    assert sorted(plan.notes) == [
        "sentiment@1.4.0-rc.2 stays candidate: accuracy 0.949 <= 0.95 (1.4.0-rc.1)",
        "sentiment@1.5.0-rc.1 stays candidate: 1.5.0-rc.2 beats it",
        "sentiment@1.5.0-rc.3 stays candidate: guard metric latency_ms 60 regresses past 44 by more than 5 (1.4.0-rc.1)",
    ]
    lifecycle.apply(plan)
    promoted = Registry.load(tree.root).version("sentiment", "1.5.0-rc.2")
    assert promoted.steps[-1].reason == "auto: accuracy 0.97 > 0.95 (1.4.0-rc.1)"
    assert promoted.steps[-1].by == "github-actions[bot]"


def test_auto_promote_is_idempotent(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    _candidate(tree, "1.5.0-rc.1", 0.96, 44)
    args = ["auto-promote", "--registry", str(tree.root), "--by", "github-actions[bot]"]
    assert main(args) == 0
    capsys.readouterr()
    after_first = tree.snapshot()

    assert main(args) == 0
    out = capsys.readouterr().out
    assert tree.snapshot() == after_first
    assert "nothing to change" in out
    assert "sentiment@1.4.0-rc.2 stays candidate: accuracy 0.949 <= 0.96 (1.5.0-rc.1)" in out


def test_auto_promote_with_goal_min(tree: Tree) -> None:
    tree.replace(
        "models/sentiment/model.yaml",
        "primary_metric: {name: accuracy, goal: max}",
        "primary_metric: {name: latency_ms, goal: min}",
    )
    tree.replace(
        "models/sentiment/model.yaml",
        "  - {name: latency_ms, goal: min, tolerance: 5.0}\n",
        "  - {name: accuracy, goal: max, tolerance: 0.0}\n",
    )
    _candidate(tree, "1.5.0-rc.1", 0.95, 30)  # faster, same accuracy

    plan = lifecycle.auto_promote(Registry.load(tree.root), "sentiment", by="github-actions[bot]", now=NOW)

    assert "sentiment@1.5.0-rc.1: candidate -> dev" in plan.steps
    assert "sentiment@1.4.0-rc.2 stays candidate: latency_ms 44 >= 44 (1.4.0-rc.1)" in plan.notes


# --- the whole path on a real git repository -------------------------------------------------


def _run(capsys: pytest.CaptureFixture[str], repo: Path, *args: str) -> str:
    return run_regops(capsys, repo, *args)


def _next_second() -> None:
    """Wait until the clock enters its next whole second: what regops records next has a timestamp of its own."""
    time.sleep(1 - time.time() % 1 + 0.01)


def test_the_whole_path_register_to_rollback_and_download_back_in_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = registry_repo(tmp_path)
    monkeypatch.chdir(repo)  # as a person or a workflow runs it: from the repository, with the default --registry
    (tmp_path / "evals-1.3.json").write_text('{"accuracy": 0.93, "latency_ms": 41}')
    (tmp_path / "evals-1.4.json").write_text('{"accuracy": 0.95, "latency_ms": 42}')
    (tmp_path / "params.yaml").write_text("learning_rate: 3.0e-5\nepochs: 3\n")
    old = weights(tmp_path / "out-1.3", "1.3.0")
    new = weights(tmp_path / "out-1.4", "1.4.0-rc.1")
    common = [
        "--params",
        str(tmp_path / "params.yaml"),
        "--dataset",
        "reviews@2025-09-08",
        "--eval-dataset",
        "reviews-eval@v1",
    ]

    # 1.3.0 reaches prod the way every version does.
    _run(
        capsys,
        repo,
        "register",
        "sentiment",
        "--artifacts",
        str(tmp_path / "out-1.3"),
        "--evals",
        str(tmp_path / "evals-1.3.json"),
        *common,
        "--version",
        "1.3.0",
        "--by",
        "training-bot[bot]",
    )
    _run(capsys, repo, "auto-promote", "--by", "github-actions[bot]")
    _run(capsys, repo, "promote", "sentiment@1.3.0", "--to", "staging", "--notes", "first model", "--by", "alice")
    _run(capsys, repo, "canary", "record", "sentiment@1.3.0", "--result", "passed")
    _run(capsys, repo, "promote", "sentiment@1.3.0", "--to", "prod", "--notes", "canary held", "--by", "alice")

    # 1.4.0-rc.1: registered by the training job, auto-promoted, promoted by people.
    out = _run(
        capsys,
        repo,
        "register",
        "sentiment",
        "--artifacts",
        str(tmp_path / "out-1.4"),
        "--evals",
        str(tmp_path / "evals-1.4.json"),
        *common,
        "--parent",
        "1.3.0",
        "--bump",
        "minor",
        "--by",
        "training-bot[bot]",
    )
    assert out.startswith("registered registry/models/sentiment/1.4.0-rc.1.yaml as a candidate; 2 files uploaded")
    assert "sentiment@1.4.0-rc.1: candidate -> dev" in _run(capsys, repo, "auto-promote", "--by", "github-actions[bot]")
    _run(
        capsys,
        repo,
        "promote",
        "sentiment@1.4.0-rc.1",
        "--to",
        "staging",
        "--notes",
        "better on sarcasm",
        "--by",
        "bob",
    )
    _run(capsys, repo, "canary", "record", "sentiment@1.4.0-rc.1", "--result", "passed", "--summary", "30k requests")
    _next_second()  # a canary takes a while; it also puts prod's change in a second of its own
    _run(capsys, repo, "promote", "sentiment@1.4.0-rc.1", "--to", "prod", "--notes", "canary held", "--by", "bob")
    while_new_was_prod = datetime.now(UTC).isoformat()
    _next_second()  # timestamps have one-second resolution: the rollback comes clearly after that moment
    assert Registry.load(repo / "registry").version("sentiment", "1.3.0").stage == "archived"

    _run(capsys, repo, "rollback", "sentiment", "--to", "1.3.0", "--notes", "latency spike in eu-west", "--by", "carol")

    registry = Registry.load(repo / "registry")
    assert registry.resolve("sentiment@prod").version == "1.3.0"
    dest = tmp_path / "serving"
    _run(capsys, repo, "download", "sentiment@prod", "--at", while_new_was_prod, "--dest", str(dest))
    assert (dest / "model.safetensors").read_bytes() == new
    assert (dest / "model.safetensors").read_bytes() != old
    assert sorted(p.name for p in dest.iterdir()) == ["config.json", "model.safetensors"]

    history = json.loads(_run(capsys, repo, "history", "sentiment", "--json"))
    steps = [
        (row["version"], f"{row['from']} -> {row['to']}" if row["from"] else "registered", row["by"]) for row in history
    ]
    assert steps == [
        ("1.3.0", "registered", "training-bot[bot]"),
        ("1.3.0", "candidate -> dev", "github-actions[bot]"),
        ("1.3.0", "dev -> staging", "alice"),
        ("1.3.0", "staging -> prod", "alice"),
        ("1.4.0-rc.1", "registered", "training-bot[bot]"),
        ("1.4.0-rc.1", "candidate -> dev", "github-actions[bot]"),
        ("1.4.0-rc.1", "dev -> staging", "bob"),
        ("1.3.0", "prod -> archived", "bob"),
        ("1.4.0-rc.1", "staging -> prod", "bob"),
        ("1.4.0-rc.1", "prod -> archived", "carol"),
        ("1.3.0", "archived -> prod", "carol"),
    ]
    why = {(row["version"], row["to"]): row["notes"] or row["reason"] for row in history if row["from"]}
    assert why[("1.3.0", "prod")] == "latency spike in eu-west"
    assert why[("1.4.0-rc.1", "archived")] == "rolled back to 1.3.0: latency spike in eu-west"
    assert why[("1.4.0-rc.1", "dev")] == "auto: accuracy 0.95 > 0.93 (1.3.0)"
    # Every write is a commit (reads change nothing): git log answers "who changed what, when" too.
    assert len(git(repo, "log", "--oneline").splitlines()) == 1 + 11
    assert git(repo, "status", "--porcelain") == ""


# --- datasets from the command line ---------------------------------------------------------------


def test_dataset_verbs_hash_register_and_refuse(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    data = tree.base / "data" / "train"
    data.mkdir(parents=True)
    (data / "a.txt").write_text("hello\n")
    (data / "b.txt").write_text("world\n")

    assert main(["dataset", "hash", str(data), "--json"]) == 0
    tree_hash = json.loads(capsys.readouterr().out)
    assert tree_hash["file_count"] == 2 and tree_hash["size_bytes"] == 12
    assert tree_hash["hash"].startswith("blake3:")

    registry = ["--registry", str(tree.root), "--by", "carol"]
    assert main(["dataset", "register", "reviews", str(data), "--version", "2026-11-26", *registry]) == 0
    iceberg = ["v7", "--iceberg", "db.clicks", "--snapshot", "88"]
    delta = ["v8", "--delta", "s3://lake/clicks", "--delta-version", "12"]
    for table in (iceberg, delta):
        assert main(["dataset", "register", "clicks", "--version", *table, *registry]) == 0, table
    capsys.readouterr()
    assert Registry.load(tree.root).dataset("reviews@2026-11-26").hash == tree_hash["hash"]  # type: ignore[union-attr]
    assert Registry.load(tree.root).dataset("clicks@v7").hash == "iceberg:88"  # type: ignore[union-attr]
    assert main(["validate", "--registry", str(tree.root)]) == 0

    before = tree.snapshot()  # the registry's lock file exists by now: every later refusal leaves all as it is
    assert main(["dataset", "register", "clicks", "--version", "v9", *registry]) == 1
    assert "name the data once" in capsys.readouterr().err
    assert main(["dataset", "register", "clicks", "--version", "v9", "--iceberg", "db.clicks", *registry]) == 1
    assert "needs both --iceberg TABLE and --snapshot ID" in capsys.readouterr().err
    assert main(["dataset", "register", "reviews", str(data), "--version", "2026-11-26", *registry]) == 1
    assert "dataset version reviews@2026-11-26 exists" in capsys.readouterr().err
    assert tree.snapshot() == before


def test_register_shows_progress_on_a_terminal_and_none_in_ci(tree: Tree, tmp_path: Path) -> None:
    import os
    import pty
    import sys

    artifacts = tmp_path / "out"
    artifacts.mkdir()
    (artifacts / "model.safetensors").write_bytes(b"w" * 3_000_000)
    (tmp_path / "evals.json").write_text('{"accuracy": 0.96, "latency_ms": 40}')
    (tmp_path / "params.json").write_text('{"epochs": 3}')

    def stderr_of(version: str, ci: bool) -> bytes:
        primary, secondary = pty.openpty()
        env = {k: v for k, v in os.environ.items() if k != "CI"} | ({"CI": "true"} if ci else {})
        args = ["register", "sentiment", "--artifacts", str(artifacts), "--evals", str(tmp_path / "evals.json")]
        args += ["--params", str(tmp_path / "params.json"), "--dataset", "reviews@2025-09-08", "--version", version]
        proc = subprocess.run(
            [sys.executable, "-m", "regops", *args, "--registry", str(tree.root), "--by", "training-bot[bot]"],
            stdout=subprocess.PIPE,
            stderr=secondary,
            env=env,
            check=True,
            timeout=60,
        )
        os.close(secondary)
        captured = b""
        while True:
            try:
                chunk = os.read(primary, 4096)
            except OSError:  # the terminal closed: all read
                break
            if not chunk:
                break
            captured += chunk
        os.close(primary)
        assert proc.stdout.startswith(b"registered")
        return captured

    assert b"hashing and storing: " in stderr_of("1.5.0", ci=False)
    assert stderr_of("1.5.1", ci=True) == b""
