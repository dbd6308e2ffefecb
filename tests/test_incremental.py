"""`regops validate --base REF` at scale: it reads the model folders a change touches, never the whole registry,
and still finds everything the full check finds there, across the rules that reach past those folders."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from regops import api
from regops.adapters.git import GitError
from regops.kinds import Problem
from regops.workspace import changed_at_ref
from tests.conftest import git

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from generate import generate


def _template(root: Path) -> Path:
    """A generated registry of 3 models x 4 versions, committed on main."""
    repo = root / "repo"
    generate(repo, 3, 4, seed=1)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "base")
    return repo


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _template(tmp_path_factory.mktemp("generated"))


@pytest.fixture
def repo(template: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "repo"
    shutil.copytree(template, copy, symlinks=True)
    git(copy, "checkout", "-q", "-b", "change")
    return copy


def models(repo: Path) -> list[Path]:
    return sorted(p for p in (repo / "registry" / "models").iterdir())


def versions(model: Path) -> list[Path]:
    return sorted(p for p in model.iterdir() if p.name != "model.yaml")


def shown(problems: list[Problem]) -> list[str]:
    return [f"{p.path}: {p.field}: {p.message}" for p in problems]


def pr_check(repo: Path) -> list[Problem]:
    return api.validate(registry=repo / "registry", base="main", now=NOW)


def full_check(repo: Path) -> list[Problem]:
    return api.validate(registry=repo / "registry", base="main", now=NOW, full=True)


NOW = __import__("datetime").datetime(2026, 12, 1, tzinfo=__import__("datetime").UTC)


def test_other_models_folders_are_not_read(repo: Path) -> None:
    """A broken file already on main in another model is the full check's business, not this change's."""
    first, second = models(repo)[:2]
    versions(second)[0].write_text("not: [valid\n")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qam", "broken on main")
    git(repo, "branch", "-f", "main")
    path = versions(first)[0]
    path.write_text(path.read_text().replace("accuracy: ", "accuracy: 1", 1))
    ours = [p.path for p in pr_check(repo)]
    everything = [p.path for p in full_check(repo)]
    relative = path.relative_to(repo).as_posix()
    assert relative in ours and relative in everything
    broken = versions(second)[0].relative_to(repo).as_posix()
    assert broken in everything and broken not in ours


def test_an_untracked_new_version_file_is_checked(repo: Path) -> None:
    model = models(repo)[0]
    copy = model / "99.0.0.yaml"
    copy.write_text(versions(model)[0].read_text())
    found = shown(pr_check(repo))
    assert any(line.startswith(f"{copy.relative_to(repo).as_posix()}: version: ") for line in found)
    assert found == shown(full_check(repo))


def test_a_parent_in_an_unchanged_model_is_found_and_a_missing_one_reported(repo: Path) -> None:
    first, second = models(repo)[:2]
    path = versions(first)[-1]
    text = path.read_text()
    target = versions(second)[0]
    other = f"{second.name}@{target.stem}"
    # An edited parent is an immutable-field problem either way; only whether it resolves differs.
    path.write_text(_replace_line(text, "parent:", f"parent: {other}"))
    assert not any("not in the registry" in line for line in shown(pr_check(repo)))
    path.write_text(_replace_line(text, "parent:", f"parent: {second.name}@77.0.0"))
    found = shown(pr_check(repo))
    assert f"{path.relative_to(repo).as_posix()}: parent: parent {second.name}@77.0.0 is not in the registry" in found
    assert found == shown(full_check(repo))


def test_a_hub_repo_another_models_folder_claims_is_reported(repo: Path) -> None:
    first, second = models(repo)[:2]
    config = first / "model.yaml"
    config.write_text(config.read_text().replace(f"acme-ml/{first.name}", f"acme-ml/{second.name}"))
    found = shown(pr_check(repo))
    clash = f"acme-ml/{second.name} is the Hub repo of {first.name} and also the Hub repo of {second.name}"
    assert any(clash in line and line.startswith(config.relative_to(repo).as_posix()) for line in found)
    # The other model's model.yaml is not this change's: the full check reports it there too.
    assert set(found) <= set(shown(full_check(repo)))


def test_a_change_to_regops_yaml_checks_every_model(repo: Path) -> None:
    """regops.yaml's rules reach every version: a change to it is judged as a whole registry."""
    config = repo / "registry" / "regops.yaml"
    config.write_text(config.read_text() + "\n")
    last = versions(models(repo)[-1])[0]
    last.write_text(last.read_text().replace("accuracy:", "acc_uracy:", 1))  # the primary metric missing
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qam", "change")
    git(repo, "branch", "-f", "main")
    config.write_text(config.read_text() + "\n")
    assert any(p.path == last.relative_to(repo).as_posix() for p in pr_check(repo))


def _replace_line(text: str, start: str, line: str) -> str:
    return "\n".join(line if old.startswith(start) else old for old in text.split("\n"))


# --- incremental == full, for what changed ---------------------------------------------------------


MUTATIONS = (
    "append",
    "stage",
    "immutable",
    "delete",
    "corrupt",
    "duplicate",
    "hub",
    "parent",
    "schema",
    "backdate",
    "dataset",
)


def _mutate(repo: Path, kind: str, model_index: int, version_index: int) -> None:
    model = models(repo)[model_index % len(models(repo))]
    path = versions(model)[version_index % len(versions(model))]
    text = path.read_text()
    step = "  - {from: %s, to: archived, at: %s, by: alice, notes: done}\n"
    edits = {
        "append": lambda: _appended(text, step, "2026-11-30T10:00:00Z"),
        "backdate": lambda: _appended(text, step, "2020-01-01T00:00:00Z"),
        "stage": lambda: _stage(text),
        "immutable": lambda: text.replace("created_by: ", "created_by: mallory-", 1),
        "corrupt": lambda: text[: len(text) // 2],
        "schema": lambda: text.replace("created_at:", "created_on:", 1),
        "parent": lambda: _replace_line(text, "parent:", "parent: nobody@1.0.0"),
    }
    if kind == "delete":
        path.unlink()
    elif kind == "duplicate":
        (model / "0.0.1.yaml").write_text(text)
    elif kind == "dataset":  # a record unchanged models reference: their dataset_hash no longer matches
        ref = next((line.split(": ", 1)[1] for line in text.splitlines() if line.startswith("  dataset: ")), "-@-")
        record = repo / "registry" / "datasets" / ref.split("@")[0] / f"{ref.split('@')[1]}.yaml"
        if record.is_file():  # not when an earlier mutation cut the line off
            record.write_text(
                re.sub(r"(?m)^hash: blake3:[0-9a-f]{64}$", f"hash: blake3:{'0' * 64}", record.read_text())
            )
    elif kind == "hub":
        config = model / "model.yaml"
        other = models(repo)[(model_index + 1) % len(models(repo))].name
        config.write_text(config.read_text().replace(f"acme-ml/{model.name}", f"acme-ml/{other}"))
    else:
        path.write_text(edits[kind]())


def _stage_of(text: str) -> str | None:
    """The file's stage; None when an earlier mutation cut the line off (the edit then leaves the file as it is)."""
    return next((line.split(": ", 1)[1] for line in text.splitlines() if line.startswith("stage: ")), None)


def _appended(text: str, step: str, at: str) -> str:
    stage = _stage_of(text)
    if stage is None:
        return text
    text = text.replace("transitions: []", "transitions:").replace(f"stage: {stage}\n", "stage: archived\n", 1)
    return text.rstrip("\n") + "\n" + step % (stage, at)


def _stage(text: str) -> str:
    stage = _stage_of(text)
    if stage is None:
        return text
    return text.replace(f"stage: {stage}\n", f"stage: {'dev' if stage != 'dev' else 'prod'}\n", 1)


def _in_scope(problem: Problem, touched: set[str]) -> bool:
    parts = problem.path.split("/")
    return len(parts) >= 3 and parts[1] == "models" and parts[2] in touched


# No shrinking: each example runs two checks over a generated registry (a failure prints its mutations whole).
# 4 drawn examples beside the explicit ones, each of which fails on a defect the property found or exists for:
# with a dataset change, a Hub repo clash or a backdated transition left out of the PR check (checked by hand).
@settings(
    max_examples=4,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.lists(
        st.tuples(st.sampled_from(MUTATIONS), st.integers(0, 2), st.integers(0, 3)),
        min_size=1,
        max_size=3,
    )
)
@example([("duplicate", 0, 2), ("backdate", 0, 0)])  # two transitions at one moment: the same one is named
@example([("dataset", 1, 1)])  # a dataset record changed: every model that references it is checked
@example([("hub", 0, 0)])  # a Hub repo another model's folder claims: that model.yaml is read too
@example([("corrupt", 1, 1), ("stage", 1, 1), ("append", 1, 1)])  # edits of a file cut short leave it cut short
def test_the_pr_check_reports_what_the_full_check_reports_for_what_changed(
    template: Path, tmp_path_factory: pytest.TempPathFactory, mutations: list[tuple[str, int, int]]
) -> None:
    repo = tmp_path_factory.mktemp("case") / "repo"
    shutil.copytree(template, repo, symlinks=True)
    touched = set()
    for kind, model_index, version_index in mutations:
        touched.add(models(repo)[model_index % 3].name)  # a Hub repo clash shows on the other model.yaml too
        _mutate(repo, kind, model_index, version_index)
    ours = pr_check(repo)
    everything = full_check(repo)
    assert bool(ours) == bool(everything), "the PR check and the full check disagree on whether the change passes"
    assert [p for p in everything if _in_scope(p, touched)] == [p for p in ours if _in_scope(p, touched)]
    assert set(ours) <= set(everything)


def test_the_generator_writes_the_same_registry_on_every_core_as_in_one_process(tmp_path: Path) -> None:
    """The benchmark registries these tests and benchmarks/run.py use: models made in parallel (each with its own
    random streams) are byte for byte the models made one after another, in one process."""
    parallel = generate(tmp_path / "parallel", 9, 4, seed=3, jobs=2)
    serial = generate(tmp_path / "serial", 9, 4, seed=3, jobs=1)
    files = sorted(p.relative_to(parallel) for p in parallel.rglob("*.yaml"))
    assert len(files) == 1 + 9 * 5 + sum(1 for _ in (parallel / "datasets").rglob("*.yaml"))
    assert files == sorted(p.relative_to(serial) for p in serial.rglob("*.yaml"))
    assert all((parallel / f).read_bytes() == (serial / f).read_bytes() for f in files)
    assert (parallel.parent / "manifest.json").read_bytes() == (serial.parent / "manifest.json").read_bytes()


# sha256 of every file (path and bytes, sorted) that generate(OUT, 9, 30, seed=5) wrote at 6cc188a, before the
# generator was made faster: the benchmark registries, and so every figure in benchmarks/README.md, stay comparable.
GENERATED_AT_6CC188A = "aee12c396457cc3bab983e881e1e0013d8cb78d9f8eff69f87a106b8a3c63c56"


@pytest.mark.parametrize("jobs", [1, 2])
def test_the_generator_writes_the_same_bytes_as_before_it_was_made_faster(tmp_path: Path, jobs: int) -> None:
    generate(tmp_path / "out", 9, 30, seed=5, jobs=jobs)
    digest = hashlib.sha256()
    for path in sorted(p for p in (tmp_path / "out").rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(tmp_path / "out")).encode() + b"\0" + path.read_bytes() + b"\0")
    assert digest.hexdigest() == GENERATED_AT_6CC188A


# --- what changed, asked of git while regops works ------------------------------------------------------------

# git, gated: the three commands that say what changed (the base's commit, the diff, the untracked files) each wait
# until all three have started, so they pass only when started side by side; one left alone says so in a file.
GATED_GIT = """#!/bin/sh
case "$3 $4" in
  "rev-parse --verify"|"diff --relative"|"ls-files --others") gated=1 ;;
esac
if [ -n "$gated" ] && [ ! -e "{marks}/open" ]; then
  touch "{marks}/started-$3"
  tries=0
  while [ "$(ls "{marks}" | grep -c '^started-')" -lt 3 ]; do
    tries=$((tries + 1))
    if [ "$tries" -gt 100 ]; then touch "{marks}/alone-$3"; break; fi
    sleep 0.03
  done
  touch "{marks}/open"
fi
exec {git} "$@"
"""


def _gated_git(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``git`` on PATH that runs the real one behind :data:`GATED_GIT`'s gate; the folder of its marks."""
    real, marks, bin_dir = shutil.which("git"), folder / "marks", folder / "bin"
    marks.mkdir(parents=True)
    bin_dir.mkdir()
    (bin_dir / "git").write_text(GATED_GIT.format(marks=marks, git=real))
    (bin_dir / "git").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return marks


def test_git_says_what_changed_while_the_caller_works(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`validate --base` asks git what changed with three commands started side by side, and works (builds the
    schema's pydantic models) while they stat the tree: not one after another, nor after git answered."""
    model = models(repo)[0]
    edited, added = versions(model)[0], model / "99.0.0.yaml"
    edited.write_text(edited.read_text().replace("accuracy: ", "accuracy: 1", 1))
    added.write_text(versions(model)[1].read_text())
    opened = api.open_registry(repo / "registry")
    marks = _gated_git(tmp_path / "gate", monkeypatch)
    seen: list[list[str]] = []

    def meanwhile() -> None:
        for _ in range(300):
            if len(started := sorted(p.name for p in marks.glob("started-*"))) == 3:
                break
            time.sleep(0.01)
        seen.append(started)

    changed, before = changed_at_ref(opened, "main", meanwhile=meanwhile)

    assert seen == [["started-diff", "started-ls-files", "started-rev-parse"]]
    assert sorted(p.name for p in marks.glob("alone-*")) == []
    relative = {path.relative_to(repo).as_posix() for path in (edited, added)}
    assert changed == relative
    assert set(before) == {edited.relative_to(repo).as_posix()}
    assert (
        before[edited.relative_to(repo).as_posix()]
        == git(repo, "show", f"main:{edited.relative_to(repo).as_posix()}").encode()
    )


def test_the_pr_check_asks_git_side_by_side_and_reports_the_same(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = versions(models(repo)[1])[0]
    path.write_text(path.read_text().replace("created_by: ", "created_by: mallory-", 1))
    marks = _gated_git(tmp_path / "gate", monkeypatch)
    found = shown(pr_check(repo))
    assert sorted(p.name for p in marks.glob("alone-*")) == []
    assert (
        f"{path.relative_to(repo).as_posix()}: created_by: created_by is fixed at registration and differs from main"
        in found
    )
    assert found == shown(full_check(repo))


def test_a_base_git_does_not_have_is_said_once_every_git_command_ended(repo: Path) -> None:
    """The base's commit is checked beside the diff: when it is missing, the message is the one that says to fetch
    it (not the diff's own complaint), and the working tree is as it was."""
    before = git(repo, "status", "--porcelain")
    with pytest.raises(
        GitError, match=r"^'origin/main' is not a commit in .*: fetch the base first \(e\.g\. `git fetch"
    ):
        pr_check_at(repo, "origin/main")
    assert git(repo, "status", "--porcelain") == before


@pytest.mark.parametrize("full", [False, True])
def test_without_git_the_pr_check_says_git_is_needed_not_that_the_base_is_missing(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, full: bool
) -> None:
    empty = tmp_path / "no-git"
    empty.mkdir()
    before = sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*") if ".git" not in p.parts)
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(GitError, match=r"^git is not installed; --base needs it$"):
        api.validate(registry=repo / "registry", base="main", now=NOW, full=full)
    assert sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*") if ".git" not in p.parts) == before


def pr_check_at(repo: Path, base: str) -> list[Problem]:
    return api.validate(registry=repo / "registry", base=base, now=NOW)
