"""What may be in the registry folder: regular .yaml files in their places, and nothing linked, hidden or stray.

A link is the dangerous one: a pull request's diff shows a symlinked model
folder as a one-line file, while a checkout follows it and serves whatever it
points at. The loader never follows a link, and ``validate`` names every one.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from regops.cli import main
from regops.registry import Registry
from tests.conftest import Tree


def problems(tree: Tree, capsys: pytest.CaptureFixture[str]) -> list[str]:
    code = main(["validate", "--registry", str(tree.root)])
    rows = capsys.readouterr().out.splitlines()
    assert code == (1 if rows[-1] != "ok: no problems" else 0)
    return rows[:-1]


def listed_models(tree: Tree, capsys: pytest.CaptureFixture[str]) -> tuple[set[str], set[str]]:
    """The models `status` shows and the ones `serving export` names."""
    assert main(["status", "--json", "--registry", str(tree.root)]) == 0
    status = {row["model"] for row in json.loads(capsys.readouterr().out)}
    assert main(["serving", "export", "--registry", str(tree.root)]) == 0
    served = set(json.loads(capsys.readouterr().out)["models"])
    return status, served


def outside_model(tree: Tree) -> Path:
    """A valid model folder outside the registry: intent's files renamed to `evil`."""
    folder = tree.base / "elsewhere" / "evil"
    shutil.copytree(tree.path("models/intent"), folder)
    for path in folder.iterdir():
        path.write_text(path.read_text().replace("intent", "evil"))
    return folder


@pytest.mark.parametrize("inside", [True, False], ids=["to another model", "out of the registry"])
def test_a_symlinked_model_folder_is_refused_and_never_read_as_a_model(
    tree: Tree, capsys: pytest.CaptureFixture[str], inside: bool
) -> None:
    target = Path("../models/sentiment") if inside else outside_model(tree)
    tree.path("models/evil").symlink_to(target, target_is_directory=True)

    rows = problems(tree, capsys)

    assert rows == [
        f"registry/models/evil: is a symbolic link (to {target}): the registry holds only regular files and folders, "
        "and regops never follows a link; put the files themselves here, or remove the link"
    ]
    status, served = listed_models(tree, capsys)
    assert status == served == {"distilled", "intent", "sentiment"}
    assert "evil" not in Registry.load(tree.root).model_names()


def test_a_symlinked_models_folder_is_not_followed(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    elsewhere = tree.base / "elsewhere"
    outside_model(tree)
    shutil.rmtree(tree.path("models"))
    tree.path("models").symlink_to(elsewhere, target_is_directory=True)

    assert problems(tree, capsys)[0].startswith(f"registry/models: is a symbolic link (to {elsewhere})")
    assert listed_models(tree, capsys) == (set(), set())


def test_a_symlinked_version_file_is_refused_and_not_read(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    # A prod version written outside registry/, where no rule of the registry looks at it.
    outside = tree.base / "elsewhere" / "9.0.0.yaml"
    outside.parent.mkdir()
    outside.write_text(tree.read("models/sentiment/1.2.0.yaml").replace("version: 1.2.0", "version: 9.0.0"))
    tree.path("models/sentiment/1.2.0.yaml").rename(tree.base / "1.2.0.yaml.bak")
    tree.path("models/sentiment/9.0.0.yaml").symlink_to(outside)

    rows = problems(tree, capsys)

    assert any(r.startswith(f"registry/models/sentiment/9.0.0.yaml: is a symbolic link (to {outside})") for r in rows)
    assert "9.0.0" not in {r.version for r in Registry.load(tree.root).versions("sentiment")}
    assert main(["serving", "export", "--registry", str(tree.root)]) == 0
    assert json.loads(capsys.readouterr().out)["models"]["sentiment"]["prod"] is None


@pytest.mark.parametrize(
    ("make", "path", "message"),
    [
        (
            lambda t: t.write("models/.x/1.0.0.yaml", t.read("models/sentiment/1.2.0.yaml")),
            "models/.x",
            "is hidden: the registry holds no hidden files or folders; remove it",
        ),
        (
            lambda t: t.write("models/sentiment/.1.5.0.yaml", t.read("models/sentiment/1.2.0.yaml")),
            "models/sentiment/.1.5.0.yaml",
            "is hidden: the registry holds no hidden files or folders; remove it",
        ),
        (
            lambda t: t.write("models/sentiment/.regops.lock", ""),
            "models/sentiment/.regops.lock",
            "is hidden: the registry holds no hidden files or folders; remove it",
        ),
        (
            lambda t: t.write("datasets/vendored/.git", "gitdir: ../../../.git/modules/vendored\n"),
            "datasets/vendored/.git",
            "is hidden: the registry holds no hidden files or folders; remove it",
        ),
        (
            lambda t: t.write("models/sentiment/notes.txt", "remember to retrain\n"),
            "models/sentiment/notes.txt",
            "not part of the registry layout: models/<model>/<version>.yaml, models/<model>/model.yaml, "
            "datasets/<dataset>/<version>.yaml",
        ),
        (
            lambda t: t.write("README.md", "# the registry\n"),
            "README.md",
            "not part of the registry layout",
        ),
        (
            lambda t: os.mkfifo(t.path("models/sentiment/1.9.0.yaml")),
            "models/sentiment/1.9.0.yaml",
            "is not a regular file or folder (a pipe, socket or device); remove it",
        ),
    ],
    ids=[
        "hidden folder",
        "hidden file",
        "lock file out of place",
        "a submodule checkout",
        "stray text file",
        "stray README",
        "a pipe",
    ],
)
def test_hidden_stray_and_special_files_are_refused(
    tree: Tree, capsys: pytest.CaptureFixture[str], make: object, path: str, message: str
) -> None:
    make(tree)  # type: ignore[operator]

    rows = problems(tree, capsys)

    assert len(rows) == 1 and rows[0].startswith(f"registry/{path}: {message}"), rows
    assert {r.version for r in Registry.load(tree.root).versions("sentiment")} == {
        "1.0.0",
        "1.1.0",
        "1.2.0",
        "1.3.0",
        "1.4.0-rc.1",
        "1.4.0-rc.2",
    }


def test_the_registry_lock_is_the_one_hidden_file_allowed(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    from regops.lifecycle import locked

    with locked(tree.root):
        assert tree.path(".regops.lock").is_file()
        assert problems(tree, capsys) == []
