"""Unit tests of codeowners.py: CODEOWNERS generated from the owners in model.yaml, and the rule that it is current."""

from __future__ import annotations

from datetime import UTC, datetime

from regops.codeowners import CODEOWNERS_HEADER, codeowners, codeowners_file
from regops.registry import Registry
from tests.conftest import Tree

NOW = datetime(2026, 7, 1, tzinfo=UTC)


def test_the_file_names_each_model_folder_and_its_owners_as_model_yaml_does(tree: Tree) -> None:
    tree.replace("models/intent/model.yaml", 'owners: [alice, "@acme/ml"]', 'owners: [dave, "@acme/nlp"]')

    path, text = codeowners_file(Registry.load(tree.root))

    assert path == tree.base / ".github/CODEOWNERS"
    assert text.startswith(CODEOWNERS_HEADER)
    lines = text.removeprefix(CODEOWNERS_HEADER).splitlines()
    assert [line.split()[0] for line in lines] == [
        f"/registry/models/{m}/" for m in ("distilled", "intent", "sentiment")
    ]
    assert "/registry/models/sentiment/ @alice @acme/ml" in lines
    assert "/registry/models/intent/ @dave @acme/nlp" in lines


def test_no_file_is_no_problem_and_a_current_one_neither(tree: Tree) -> None:
    registry = Registry.load(tree.root)
    assert list(codeowners(registry, NOW)) == []

    path, text = codeowners_file(registry)
    tree.write("../.github/CODEOWNERS", text)
    assert path.read_text() == text
    assert list(codeowners(registry, NOW)) == []


def test_a_file_that_no_longer_names_the_owners_is_stale(tree: Tree) -> None:
    registry = Registry.load(tree.root)
    _, text = codeowners_file(registry)
    tree.write("../.github/CODEOWNERS", text.replace("@alice ", ""))

    [problem] = codeowners(registry, NOW)
    assert problem.path == ".github/CODEOWNERS"
    assert problem.message.startswith(
        "stale: it does not name the owners model.yaml files give; run `regops codeowners`"
    )
