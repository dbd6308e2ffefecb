"""The CLI as a newcomer meets it: finding the registry like git, --json everywhere with stable error codes,
the rough edges of the README tried for real, and the example registry's time travel on a copy of it."""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest

from regops.cli import ERROR_CODES, build_parser, main
from tests.conftest import REPO, git

Capsys = pytest.CaptureFixture[str]


@pytest.fixture
def example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of this repository's example: registry/, its committed weights (.regops/), schemas/, examples/."""
    root = tmp_path / "example"
    for name in ("registry", ".regops", "schemas", "examples"):
        shutil.copytree(REPO / name, root / name)
    monkeypatch.chdir(root)
    return root


def in_git(root: Path) -> Path:
    git(root.parent, "init", "-q", "-b", "main", str(root))
    git(root, "add", "-A")
    git(root, "-c", "user.name=A", "-c", "user.email=a@example.com", "commit", "-q", "-m", "example")
    return root


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(root).parts and p.name != ".regops.lock"  # the lock's file stays
    }


def run(capsys: Capsys, *args: str, code: int) -> tuple[str, str]:
    got = main(list(args))
    out, err = capsys.readouterr()
    assert got == code, f"regops {' '.join(args)} exited {got}, not {code}:\n{out}{err}"
    return out, err


def json_error(err: str) -> dict[str, object]:
    found = json.loads(err)
    assert isinstance(found, dict)
    return found


# --- finding the registry like git ----------------------------------------------------------------------------------


@pytest.mark.parametrize("where", [".", "registry", "registry/models/sentiment", "registry/datasets", "docs/a/b"])
def test_the_registry_is_found_from_any_folder_inside_the_repository(
    example: Path, where: str, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_git(example)
    (example / where).mkdir(parents=True, exist_ok=True)
    monkeypatch.chdir(example / where)
    out, _ = run(capsys, "resolve", "sentiment@prod", "--at", "2026-10-28", code=0)
    assert out.startswith("sentiment@prod at 2026-10-28T00:00:00+00:00: 1.4.0\n")
    assert out.endswith("  record:  registry/models/sentiment/1.4.0.yaml\n")


def test_registry_flag_wins_over_the_folder_it_runs_in(
    example: Path, tmp_path: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "other"
    shutil.copytree(REPO / "tests/data/registry", other / "registry")
    monkeypatch.chdir(example / "registry/models/sentiment")
    out, _ = run(capsys, "status", "--json", "--registry", str(other), code=0)
    theirs = {row["model"] for row in json.loads(out)}
    out, _ = run(capsys, "status", "--json", code=0)
    ours = {row["model"] for row in json.loads(out)}
    assert ours == {"sentiment", "sentiment-distilled", "support-intent"}
    assert theirs == {"distilled", "intent", "sentiment"}


def test_a_folder_outside_any_registry_is_a_clear_error(
    tmp_path: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _, err = run(capsys, "status", code=1)
    assert err == (
        f"regops: error: no registry in {tmp_path.resolve()} or any folder above it (up to the top of its git "
        "repository): expected a folder with regops.yaml and models/ (pass --registry DIR, or run from inside a "
        "repository that has registry/)\n"
    )
    _, err = run(capsys, "status", "--json", code=1)
    assert json_error(err)["code"] == "registry-not-found"


def test_the_walk_stops_at_the_top_of_the_git_repository(
    example: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    inner = example / "vendor" / "other-project"
    inner.mkdir(parents=True)
    git(inner, "init", "-q")
    monkeypatch.chdir(inner)
    _, err = run(capsys, "status", code=1)
    assert f"no registry in {inner.resolve()} or any folder above it" in err


# --- --json everywhere, and errors as JSON with a stable code -------------------------------------------------------


def _leaves(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], object]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _leaves(sub, (*path, name))
    return found or [(path, parser)]


def test_every_verb_accepts_json() -> None:
    leaves = _leaves(build_parser())
    assert len(leaves) > 25
    missing = [" ".join(path) for path, p in leaves if "--json" not in p._option_string_actions]  # type: ignore[attr-defined]
    assert missing == []


def test_read_verbs_print_in_json_what_their_text_shows(example: Path, capsys: Capsys) -> None:
    text, _ = run(capsys, "status", code=0)
    rows = json.loads(run(capsys, "status", "--json", code=0)[0])
    for row in rows:
        assert row["model"] in text and row["prod"]["version"] in text
    text, _ = run(capsys, "history", "sentiment", code=0)
    entries = json.loads(run(capsys, "history", "sentiment", "--json", code=0)[0])
    assert len(entries) == len(text.splitlines()) - 1  # a header line, then one per entry
    assert {e["version"] for e in entries} <= set(re.findall(r"\S+", text))
    text, _ = run(capsys, "show", "sentiment@1.3.1", code=0)
    shown = json.loads(run(capsys, "show", "sentiment@1.3.1", "--json", code=0)[0])
    assert shown["version"] == "1.3.1" and str(shown["evals"]["scores"]["accuracy"]) in text
    text, _ = run(capsys, "diff", "sentiment@1.3.0", "sentiment@1.3.1", code=0)
    assert json.loads(run(capsys, "diff", "sentiment@1.3.0", "sentiment@1.3.1", "--json", code=0)[0])
    text, _ = run(capsys, "lineage", "sentiment@1.3.1", code=0)
    nodes = json.loads(run(capsys, "lineage", "sentiment@1.3.1", "--json", code=0)[0])
    assert all(n["ref"] in text for n in nodes)


def test_validate_serving_codeowners_schema_and_retention_print_json(example: Path, capsys: Capsys) -> None:
    assert run(capsys, "validate", code=0)[0] == "ok: no problems\n"
    assert json.loads(run(capsys, "validate", "--json", code=0)[0]) == []
    manifest = json.loads(run(capsys, "serving", "export", "--json", code=0)[0])
    assert json.loads(run(capsys, "serving", "export", code=0)[0]) == manifest
    text, _ = run(capsys, "codeowners", "--check", code=1)
    assert json.loads(run(capsys, "codeowners", "--check", "--json", code=1)[0])["state"] == "missing"
    out, _ = run(capsys, "schema", "export", "--dest", str(example / "schemas"), "--json", code=0)
    assert json.loads(out) == {"dest": str(example / "schemas"), "written": []}
    text, _ = run(capsys, "retention", "plan", code=0)
    decisions = json.loads(run(capsys, "retention", "plan", "--json", code=0)[0])
    assert all(f"{d['model']}@{d['version']}" in text for d in decisions) and len(decisions) == 23


def test_canary_check_prints_json(example: Path, capsys: Capsys) -> None:
    args = ("canary", "check", "--dry-run", "--now", "2026-12-01T12:00:00Z")
    text, _ = run(capsys, *args, code=1)  # support-intent's canary fails in the example
    checks = json.loads(run(capsys, *args, "--json", code=1)[0])
    assert [c["decision"]["verdict"] for c in checks] == ["pass", "fail"]
    assert all(f"{c['ref']} (canary)" in text for c in checks)


@pytest.mark.parametrize(
    ("args", "code", "exit_code"),
    [
        (["show", "sentimnt"], "model-not-found", 1),
        (["show", "sentiment@9.9.9"], "version-not-found", 1),
        (["resolve", "sentiment@staging", "--at", "2026-01-01"], "stage-empty", 1),
        (["resolve", "sentiment@prod", "--at", "the day after"], "bad-time", 2),
        (["status", "--frobnicate"], "usage", 2),
        (["stauts"], "usage", 2),
        (["pr", "check", "--merge-group", "gh-readonly-queue/main/pr-1-abc"], "usage", 2),  # found by the verb
        (["validate", "--base", "main"], "not-a-git-repository", 1),
        (["restore", "sentiment@1.3.1"], "error", 1),
    ],
)
def test_an_error_under_json_is_one_object_with_a_stable_code(
    example: Path, capsys: Capsys, args: list[str], code: str, exit_code: int
) -> None:
    out, err = run(capsys, *args, "--json", code=exit_code)
    assert out == ""
    found = json_error(err)
    assert found["code"] == code and found["exit"] == exit_code and isinstance(found["message"], str)
    _, text = run(capsys, *args, code=exit_code)  # the same error as text, its message the same
    assert text.rstrip("\n").endswith(f"error: {found['message']}")


def test_the_readme_documents_every_error_code() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### Errors and exit codes") :]
    documented = set(re.findall(r"^\| `([a-z-]+)` \|", section, flags=re.MULTILINE))
    assert documented == {*ERROR_CODES.values(), "usage", "bug", "interrupted"}


# --- rough edges ----------------------------------------------------------------------------------------------------


def test_dataset_register_takes_path_after_version_as_the_readme_writes_it(example: Path, capsys: Capsys) -> None:
    (example / "data").mkdir()
    (example / "data" / "reviews.csv").write_text("text,label\ngood,1\n")
    args = ("dataset", "register", "reviews", "--version", "2026-12-01", "data", "--by", "alice")
    out, _ = run(capsys, *args, code=0)
    assert out == "registered registry/datasets/reviews/2026-12-01.yaml\n"
    hashed = run(capsys, "dataset", "hash", "data", code=0)[0].split()[0]
    assert f"hash: {hashed}" in (example / "registry/datasets/reviews/2026-12-01.yaml").read_text()


def _object(root: Path, tier: str, sha256: str) -> Path:
    return root / ".regops" / tier / "sha256" / sha256[:2] / sha256[2:4] / sha256


def _sha(root: Path, model: str, version: str, path: str) -> str:
    from regops.registry import Registry

    files = Registry.load(root / "registry").version(model, version).raw["artifacts"]["files"]
    return str(next(f["sha256"] for f in files if f["path"] == path))


def test_restore_says_which_cold_weights_are_missing_and_changes_nothing(example: Path, capsys: Capsys) -> None:
    _object(example, "cold", _sha(example, "sentiment", "1.2.0", "model.safetensors")).unlink()
    before = snapshot(example)
    _, err = run(capsys, "restore", "sentiment@1.2.0", code=1)
    assert err == (
        f"regops: error: sentiment@1.2.0: model.safetensors not retrievable from local storage at "
        f"{example / '.regops/cold'} (to copy them to {example / '.regops/store'}); nothing was changed: the version "
        "file says the weights are there, so put them back (from a backup, or from the machine that registered "
        "sentiment@1.2.0) and run again\n"
    )
    assert "No such file" not in err
    assert snapshot(example) == before


def test_retention_apply_says_which_hot_weights_are_missing_and_moves_nothing(example: Path, capsys: Capsys) -> None:
    _object(example, "store", _sha(example, "sentiment", "1.5.0-rc.1", "model.safetensors")).unlink()
    before = snapshot(example)
    out, err = run(capsys, "retention", "apply", "--at", "2028-01-01", code=1)
    assert err.startswith(
        "regops: error: sentiment@1.5.0-rc.1: model.safetensors not retrievable from local hot storage at "
        f"{example / '.regops/store'}, to move to cold storage; nothing was changed: "
    )
    assert "No such file" not in err and out == ""
    assert snapshot(example) == before, "no other version was moved before the missing one was found"


def test_rollback_to_a_version_whose_weights_are_missing_says_what_to_do(example: Path, capsys: Capsys) -> None:
    _object(example, "store", _sha(example, "sentiment", "1.3.0", "config.json")).unlink()
    before = snapshot(example)
    _, err = run(capsys, "rollback", "sentiment", "--to", "1.3.0", "--notes", "n", "--by", "alice", code=1)
    assert err == (
        f"regops: error: sentiment@1.3.0: config.json not retrievable from local hot storage at "
        f"{example / '.regops/store'}; it cannot go to prod; nothing was changed: the version file says the weights "
        "are there, so put them back (from a backup, or from the machine that registered sentiment@1.3.0) and run "
        "again\n"
    )
    assert snapshot(example) == before


def test_pr_check_without_network_is_a_clear_message(
    example: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch, closed_port: int
) -> None:
    in_git(example)
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/models")
    monkeypatch.setenv("GITHUB_TOKEN", "t0ken")
    monkeypatch.setenv("GITHUB_API_URL", f"http://127.0.0.1:{closed_port}")
    out, err = run(capsys, "pr", "check", "--pr", "7", code=1)
    assert err == (
        f"regops: error: cannot read pull request #7 of acme/models: GitHub at http://127.0.0.1:{closed_port} did not "
        "answer ([Errno 111] Connection refused); check the network (or GITHUB_API_URL) and run again\n"
    )
    assert "Traceback" not in out + err and "bug" not in err
    assert json_error(run(capsys, "pr", "check", "--pr", "7", "--json", code=1)[1])["code"] == "github-unreachable"


def test_validate_base_outside_git_says_so(example: Path, capsys: Capsys) -> None:
    _, err = run(capsys, "validate", "--base", "main", code=1)
    assert err == (
        f"regops: error: {example} is not in a git repository, and `git rev-parse --verify --quiet` needs one: run "
        "regops from a clone of the registry's repository (or `git init` this folder and commit the registry first)\n"
    )
    assert "is not a commit" not in err


def test_commit_outside_git_says_so_without_gits_raw_error(example: Path, capsys: Capsys) -> None:
    before = snapshot(example)
    _, err = run(capsys, "commit", "-m", "x", code=1)
    assert err.startswith(f"regops: error: {example} is not in a git repository, and `git ")
    assert "fatal:" not in err
    assert snapshot(example) == before


def test_codeowners_check_says_missing_not_stale(example: Path, capsys: Capsys) -> None:
    out, _ = run(capsys, "codeowners", "--check", code=1)
    assert out == ".github/CODEOWNERS does not exist: run `regops codeowners` to write it\n"
    assert not (example / ".github").exists()
    assert run(capsys, "codeowners", code=0)[0] == "wrote .github/CODEOWNERS\n"
    assert run(capsys, "codeowners", "--check", code=0)[0] == ".github/CODEOWNERS is current\n"
    assert run(capsys, "codeowners", code=0)[0] == ".github/CODEOWNERS is current; nothing to write\n"
    (example / ".github/CODEOWNERS").write_text("* @nobody\n")
    assert run(capsys, "codeowners", "--check", code=1)[0] == ".github/CODEOWNERS is stale: run `regops codeowners`\n"


def test_one_file_is_one_file(example: Path, capsys: Capsys) -> None:
    (example / "one.csv").write_text("a\n")
    assert run(capsys, "dataset", "hash", "one.csv", code=0)[0].endswith("  1 file, 2 B\n")
    (example / "two").mkdir()
    (example / "two" / "a").write_text("a")
    (example / "two" / "b").write_text("b")
    assert run(capsys, "dataset", "hash", "two", code=0)[0].endswith("  2 files, 2 B\n")


def test_a_mistyped_verb_or_model_gets_a_suggestion(example: Path, capsys: Capsys) -> None:
    _, err = run(capsys, "stauts", code=2)
    assert "regops: error: argument VERB: invalid choice: 'stauts' (did you mean 'status'?)" in err
    _, err = run(capsys, "promote", "sentiment@1.4.1", "--to", "prd", "--notes", "n", code=2)
    assert "invalid choice: 'prd' (did you mean 'prod'?)" in err
    _, err = run(capsys, "history", "sentimnt", code=1)
    assert err.startswith("regops: error: no model 'sentimnt' in the registry (did you mean 'sentiment'?) (known")
    _, err = run(capsys, "history", "zzz", code=1)
    assert "did you mean" not in err


# --- the example's time travel ----------------------------------------------------------------------------------------


def _sha256s(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


def _recorded(root: Path, version: str) -> dict[str, str]:
    from regops.registry import Registry

    files = Registry.load(root / "registry").version("sentiment", version).raw["artifacts"]["files"]
    return {f["path"]: f["sha256"] for f in files}


def test_the_example_downloads_rolls_back_and_travels_in_time(example: Path, capsys: Capsys) -> None:
    out, _ = run(capsys, "download", "sentiment@prod", "--dest", "now", code=0)
    assert out == "sentiment@1.3.1: 5 files downloaded and verified\n"
    assert _sha256s(example / "now") == _recorded(example, "1.3.1")
    out, _ = run(capsys, "download", "sentiment@prod", "--at", "2026-10-28", "--dest", "then", code=0)
    assert out == "sentiment@1.4.0: 5 files downloaded and verified\n"
    assert _sha256s(example / "then") == _recorded(example, "1.4.0") != _recorded(example, "1.3.1")
    out, _ = run(capsys, "rollback", "sentiment", "--to", "1.3.0", "--notes", "n", "--by", "alice", code=0)
    assert out == "sentiment@1.3.1: prod -> archived\nsentiment@1.3.0: archived -> prod\n"
    run(capsys, "download", "sentiment@prod", "--dest", "after", code=0)
    assert _sha256s(example / "after") == _recorded(example, "1.3.0")
    assert run(capsys, "validate", code=0)[0] == "ok: no problems\n"


def test_the_repository_commits_every_weight_the_example_records() -> None:
    from regops.registry import Registry

    tracked = set(git(REPO, "ls-files", "--", ".regops").split())
    registry = Registry.load(REPO / "registry")
    for record in registry.iter_versions():
        tier = "cold" if record.storage.get("tier") == "cold" else "store"
        for f in record.raw["artifacts"]["files"]:
            path = _object(Path(), tier, f["sha256"]).as_posix()
            assert path in tracked, f"{record.ref}: {f['path']} is not committed at {path}"
            assert f["size"] < 4096


def test_commit_prints_json(example: Path, capsys: Capsys) -> None:
    in_git(example)
    git(example, "config", "user.name", "A")
    git(example, "config", "user.email", "a@example.com")
    assert json.loads(run(capsys, "commit", "-m", "nothing", "--json", code=0)[0]) == {"commit": None, "pushed": False}
    run(capsys, "codeowners", code=0)
    found = json.loads(run(capsys, "commit", "-m", "owners", "--json", code=0)[0])
    assert found == {"commit": git(example, "rev-parse", "HEAD").strip(), "pushed": False}
    assert git(example, "show", "--name-only", "--format=%s", "HEAD").split() == ["owners", ".github/CODEOWNERS"]
