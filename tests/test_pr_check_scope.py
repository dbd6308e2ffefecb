"""`regops pr check` reads what the pull request changes, as `validate --base` does: the model folders it touches are
checked (with whatever they reach in other models), and the rest of the registry is the full check's business.

Each test opens a real pull request (commits of a real git repository, the PR on the local GitHub server), runs
``regops pr check`` and judges the outcome by the commit status GitHub holds and what the check printed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from regops.cli import main
from tests.conftest import commit, git
from tests.servers.github_fixtures import GitHubFixture
from tests.test_gate import judged, pull_request, staging_branch
from tests.test_github import REPO, open_pull

BROKEN = "registry/models/other/1.0.0.yaml"


def broken_model_on_main(repo: Path) -> None:
    """main gets a second model whose one version file does not parse (committed without any check)."""
    sentiment = (repo / "registry/models/sentiment/model.yaml").read_text()
    other = repo / "registry/models/other"
    other.mkdir()
    (other / "model.yaml").write_text(
        sentiment.replace("name: sentiment", "name: other").replace(
            "hub: {repo: acme-ml/sentiment, private: true}\n", ""
        )
    )
    (repo / BROKEN).write_text("not: [valid\n")
    commit(repo, "broken on main")


def test_a_broken_file_already_on_main_in_another_model_is_not_the_pull_requests(
    history_repo: Path, gh: GitHubFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    staging_branch(capsys, history_repo)
    git(history_repo, "checkout", "-q", "main")
    broken_model_on_main(history_repo)
    git(history_repo, "checkout", "-q", "change")
    git(history_repo, "merge", "-q", "--no-edit", "main")  # the branch is up to date with its base
    number = open_pull(gh, history_repo, author="alice", branch="change")
    gh.add_review(REPO, number, "bob", "APPROVED")  # an owner of sentiment

    state, out = judged(capsys, gh, history_repo, number)

    assert state == "success", out
    assert out.startswith("pass: approved: sentiment@1.1.0 → staging")
    assert BROKEN not in out
    assert main(["validate"]) == 1  # the full check still finds it
    assert BROKEN in capsys.readouterr().out


def test_a_change_outside_the_model_folders_checks_every_model(
    history_repo: Path, gh: GitHubFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    broken_model_on_main(history_repo)
    dataset = "registry/datasets/reviews/2026-01-01.yaml"
    text = (history_repo / "registry/datasets/reviews/2025-09-08.yaml").read_text().replace("2025-09-08", "2026-01-01")
    number = pull_request(gh, history_repo, {dataset: text})
    gh.add_review(REPO, number, "bob", "APPROVED")

    state, out = judged(capsys, gh, history_repo, number)

    assert state == "failure"
    assert BROKEN in out  # a dataset's rules reach every model: the whole registry is checked


def other_model_on_main(repo: Path) -> None:
    """main gets a second, valid model ``other``: sentiment's folder under another name, without a Hub repo."""
    source, other = repo / "registry/models/sentiment", repo / "registry/models/other"
    other.mkdir()
    for path in source.glob("*.yaml"):
        text = path.read_text().replace("hub: {repo: acme-ml/sentiment, private: true}\n", "")
        (other / path.name).write_text(text.replace("sentiment", "other"))
    commit(repo, "another model on main")


def with_parent(repo: Path, parent: str) -> str:
    text = (repo / "registry/models/sentiment/1.1.0.yaml").read_text()
    lines = [line for line in text.splitlines() if not line.startswith("parent:")]
    return "\n".join([*lines[:3], f"parent: {parent}", *lines[3:]]) + "\n"


@pytest.mark.parametrize(("parent", "reported"), [("other@1.0.0", False), ("other@9.9.9", True)])
def test_a_parent_in_a_model_the_pull_request_does_not_touch_is_read_from_its_head(
    history_repo: Path, gh: GitHubFixture, capsys: pytest.CaptureFixture[str], parent: str, reported: bool
) -> None:
    """The head is read in part (the changed model's folder); another model's versions are read from git when a
    rule asks for them: a parent there is found, a missing one reported, as the whole head would."""
    other_model_on_main(history_repo)
    number = pull_request(gh, history_repo, {"registry/models/sentiment/1.1.0.yaml": with_parent(history_repo, parent)})

    state, out = judged(capsys, gh, history_repo, number)

    assert state == "failure"  # parent is fixed at registration
    assert "parent is fixed at registration" in out
    assert (f"parent {parent} is not in the registry" in out) == reported, out


def test_the_head_holds_only_what_a_query_has_read(history_repo: Path) -> None:
    """``registry_at(..., on_demand=True)``: the changed models' folders and everything outside ``models/`` are
    written; another model's versions only once a query reads that model, then byte for byte as git has them."""
    from regops.registry import Registry
    from regops.workspace import registry_at

    other_model_on_main(history_repo)
    opened = Registry.load(history_repo / "registry")
    with registry_at(opened, "main", models={"sentiment"}, on_demand=True) as (head, files):
        other = head.root / "models/other"
        assert sorted(p.name for p in other.iterdir()) == ["model.yaml"]
        assert (head.root / "datasets").is_dir() and (head.root / "models/sentiment/1.1.0.yaml").is_file()
        assert head.model_names() == ["other", "sentiment"]
        assert head.find("other@1.0.0") is not None
        on_disk = sorted(p.name for p in other.iterdir())
        assert on_disk == sorted(p.name for p in (history_repo / "registry/models/other").iterdir())
        assert (other / "1.0.0.yaml").read_bytes() == (history_repo / "registry/models/other/1.0.0.yaml").read_bytes()
        assert "registry/models/other/1.0.0.yaml" not in files
