"""`regops validate --base REF`: what a change may do to the records on its base branch."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from regops import api
from regops.adapters.git import GitError, NotARepositoryError, files_at, paths_at
from regops.cli import main
from regops.registry import Registry
from tests.conftest import git, run_regops, weights


@pytest.fixture
def repo(history_repo: Path) -> Path:
    git(history_repo, "checkout", "-q", "-b", "change")
    return history_repo


def problems(repo: Path) -> list[str]:
    return [
        f"{p.path}: {p.field}: {p.message}" if p.field else f"{p.path}: {p.message}"
        for p in api.validate(registry=repo / "registry", base="main")
    ]


V1 = "registry/models/sentiment/1.0.0.yaml"
V2 = "registry/models/sentiment/1.1.0.yaml"


def test_a_promotion_made_by_the_cli_passes(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_regops(capsys, repo, "promote", "sentiment@1.1.0", "--to", "staging", "--notes", "ready", "--by", "bob")
    assert problems(repo) == []
    assert main(["validate", "--base", "main", "--format", "github"]) == 0


def test_editing_evals_or_weights_hashes_is_refused(repo: Path) -> None:
    path = repo / V2
    text = path.read_text()
    path.write_text(text.replace("accuracy: 0.95", "accuracy: 0.99"))
    found = problems(repo)
    assert found == [f"{V2}: evals: evals is fixed at registration and differs from main"]
    digest = text.split("sha256: ")[1][:64]
    path.write_text(text.replace(digest, "0" * 64))
    assert f"{V2}: artifacts.files: artifacts.files is fixed at registration and differs from main" in problems(repo)


def test_editing_a_recorded_transition_is_refused(repo: Path) -> None:
    path = repo / V1
    path.write_text(path.read_text().replace("by: alice", "by: bob", 1))
    assert problems(repo) == [
        f"{V1}: transitions[1]: transitions are append-only: this one was recorded on main and has been edited"
    ]


def test_dropping_a_transition_is_refused(repo: Path) -> None:
    path = repo / V2
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(line for line in lines if "to: dev" not in line).replace("stage: dev", "stage: candidate"))
    assert f"{V2}: transitions: transitions are append-only: 1 on main, 0 here" in problems(repo)


def test_deleting_a_version_file_is_refused(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / V2).unlink()
    assert problems(repo) == [
        f"{V2}: deleted: version records are never deleted (they are on main); archive the version instead "
        "— retention moves only its weights"
    ]
    assert main(["validate", "--base", "main", "--format", "github"]) == 1
    assert (
        f"::error file={V2},title=regops validate::deleted: version records are never deleted"
        in capsys.readouterr().out
    )


@pytest.mark.parametrize("target", ["staging", "prod"])
def test_a_bot_moving_a_version_to_staging_or_prod_is_refused(repo: Path, target: str) -> None:
    """Written by hand as a bot would (the CLI itself refuses a bot): the base rules catch the file."""
    path = repo / V2
    text = path.read_text().replace("stage: dev", f"stage: {target}")
    steps = '  - {from: dev, to: staging, at: 2026-11-20T10:00:00Z, by: "training-bot[bot]", notes: x}\n'
    if target == "prod":
        steps += '  - {from: staging, to: prod, at: 2026-11-20T10:00:01Z, by: "training-bot[bot]", notes: x}\n'
    path.write_text(text + steps)
    found = [p for p in problems(repo) if "is a bot" in p]
    assert found[0] == (
        f"{V2}: transitions[1].by: training-bot[bot] is a bot: bots add candidates, auto-promote to dev and "
        "archive; moving a version to staging takes a person and an approved pull request"
    )
    assert len(found) == (2 if target == "prod" else 1)


def test_stamping_the_merged_pr_onto_a_transition_is_allowed(repo: Path) -> None:
    path = repo / V1
    text = path.read_text()
    marker = "to: prod, at:"
    line = next(line for line in text.splitlines() if marker in line)
    path.write_text(text.replace(line, line.replace("}", ", pr: 12, approved_by: [bob]}")))
    assert problems(repo) == []
    path.write_text(
        text.replace(line, line.replace("}", ", pr: 12, approved_by: [bob]}").replace("by: alice", "by: eve"))
    )
    assert problems(repo)[0].endswith("transitions are append-only: this one was recorded on main and has been edited")


def test_a_base_that_is_not_there_says_to_fetch_it(repo: Path) -> None:
    with pytest.raises(GitError, match=r"'origin/main' is not a commit .*git fetch origin main"):
        api.validate(registry=repo / "registry", base="origin/main")


@pytest.mark.parametrize("read", [files_at, paths_at], ids=["files", "paths"])
def test_reading_a_ref_that_is_no_commit_says_to_fetch_it_and_outside_a_repository_says_so(
    repo: Path, tmp_path: Path, read: Callable[[Path, str, str], object]
) -> None:
    assert read(repo, "main", "registry")  # the listing and the check of the ref are one git: both still answer
    tree = git(repo, "rev-parse", "main^{tree}").strip()
    for ref in ("origin/main", tree):  # unknown here; a tree, not a commit
        with pytest.raises(GitError, match=rf"^'{ref}' is not a commit in .*: fetch the base first"):
            read(repo, ref, "registry")
    (tmp_path / "outside").mkdir()
    with pytest.raises(NotARepositoryError, match=r"is not in a git repository, and `git rev-parse --verify --quiet`"):
        read(tmp_path / "outside", "main", "registry")


def test_a_new_dataset_record_is_fine_an_edited_one_is_not(repo: Path) -> None:
    path = repo / "registry/datasets/reviews/2025-09-08.yaml"
    path.write_text(path.read_text().replace("description: reviews 2025-09-08", "description: edited"))
    assert problems(repo) == [
        "registry/datasets/reviews/2025-09-08.yaml: dataset records are immutable; this one differs from main"
    ]
    new = repo / "registry/datasets/reviews/2026-01-01.yaml"
    new.write_text(path.read_text().replace('"2025-09-08"', '"2026-01-01"').replace("edited", "new"))
    git(repo, "checkout", "-q", "--", "registry/datasets/reviews/2025-09-08.yaml")
    assert problems(repo) == []


def test_two_prod_changes_made_on_one_base_cannot_both_merge(
    history_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two rollback PRs opened from the same main: after the first merges, the second conflicts with the updated
    base (the merge queue cannot build its group), and a merge that keeps both changes fails validation."""
    repo = history_repo
    for version in ("1.1.0",):
        run_regops(capsys, repo, "promote", f"sentiment@{version}", "--to", "staging", "--notes", "n", "--by", "alice")
        run_regops(capsys, repo, "canary", "record", f"sentiment@{version}", "--result", "passed")
        run_regops(capsys, repo, "promote", f"sentiment@{version}", "--to", "prod", "--notes", "n", "--by", "alice")
    # 1.1.0 is prod, 1.0.0 a former prod; a third version goes to prod so that both are rollback targets.
    weights(tmp_path / "out-1.2.0", "1.2.0")
    run_regops(
        capsys, repo, "register", "sentiment", "--artifacts", str(tmp_path / "out-1.2.0"),
        "--evals", str(tmp_path / "evals2.json"), "--params", str(tmp_path / "params.json"),
        "--dataset", "reviews@2025-09-08", "--version", "1.2.0", "--by", "training-bot[bot]",
    )  # fmt: skip
    run_regops(capsys, repo, "promote", "sentiment@1.2.0", "--to", "dev", "--notes", "n", "--by", "alice")
    run_regops(capsys, repo, "promote", "sentiment@1.2.0", "--to", "staging", "--notes", "n", "--by", "alice")
    run_regops(capsys, repo, "canary", "record", "sentiment@1.2.0", "--result", "passed")
    run_regops(capsys, repo, "promote", "sentiment@1.2.0", "--to", "prod", "--notes", "n", "--by", "alice")

    for branch, target in (("rollback-a", "1.0.0"), ("rollback-b", "1.1.0")):
        git(repo, "checkout", "-q", "-b", branch, "main")
        run_regops(capsys, repo, "rollback", "sentiment", "--to", target, "--notes", "latency", "--by", "bob")
        assert main(["validate", "--base", "main"]) == 0, "each PR is fine on its own"
        capsys.readouterr()
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--no-ff", "-m", "Merge rollback-a", "rollback-a")

    merged = subprocess.run(
        ["git", "merge", "--no-ff", "-m", "Merge rollback-b", "rollback-b"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )
    assert merged.returncode != 0 and "CONFLICT" in merged.stdout, "both archive 1.2.0: the second no longer merges"
    git(repo, "merge", "--abort")

    # Had the second been merged keeping both sides (a careless conflict resolution), validation catches it.
    (repo / ".gitattributes").write_text("registry/** merge=union\n")
    git(repo, "merge", "-q", "--no-ff", "-m", "Merge rollback-b", "rollback-b")
    found = [str(p) for p in api.validate(registry=repo / "registry", base="HEAD^")]
    assert any("stage: 2 versions of sentiment are in prod (1.0.0, 1.1.0)" in line for line in found), found


def test_a_new_version_file_cannot_bring_a_backdated_history(repo: Path) -> None:
    """A version file new in the change is all new transitions: none may be dated before the model's last one on
    the base (1.0.0 -> prod, when the fixture ran), however consistent the file is in itself."""
    last = max(e.at for e in Registry.load(repo / "registry").history("sentiment"))
    then = last - timedelta(days=40)
    text = (repo / V2).read_text()
    head = text[: text.index("stage:")].replace("version: 1.1.0", "version: 1.0.1")
    head = re.sub(r"created_at: \S+", f"created_at: {_iso(then)}", head)
    new = repo / "registry/models/sentiment/1.0.1.yaml"
    new.write_text(
        head + "stage: archived\ntransitions:\n"
        f"  - {{from: candidate, to: dev, at: {_iso(then + timedelta(hours=1))}, by: alice}}\n"
        f"  - {{from: dev, to: archived, at: {_iso(then + timedelta(hours=2))}, by: alice}}\n"
    )
    found = [p for p in problems(repo) if "never backdated" in p]
    assert [row.split(", before the last transition of this model already on main (")[0] for row in found] == [
        f"registry/models/sentiment/1.0.1.yaml: transitions[{i}].at: {step} is dated "
        f"{(then + timedelta(hours=i + 1)).isoformat()}"
        for i, step in enumerate(("candidate → dev", "dev → archived"))
    ], found
    assert all(f" at {last.isoformat()}): history is only appended, never backdated" in row for row in found)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
