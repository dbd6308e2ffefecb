"""Unit tests of changes.py: the rules a change must satisfy against its base branch, on the test registry."""

from __future__ import annotations

import pytest

from regops.changes import against_base, touched_models
from regops.registry import Registry
from tests.conftest import Tree

V130 = "models/sentiment/1.3.0.yaml"  # under the registry, where Tree reads and writes
SHOWN = "registry/models/sentiment/1.3.0.yaml"  # as the problems name it
LAST_STEP = '  - {from: dev, to: staging, at: 2026-05-05T10:00:00Z, by: bob, pr: 9, approved_by: [alice], notes: "bigger batch"}\n'


def base_of(tree: Tree) -> dict[str, bytes]:
    """The registry as it is now, as the base branch's bytes by path under the repository."""
    return {path: data for path, data in tree.snapshot().items() if path.startswith("registry/")}


def check(tree: Tree, base: dict[str, bytes]) -> list[tuple[str, str, str]]:
    """against_base on the tree as it is now: (path, field, message) of each problem."""
    problems = against_base(Registry.load(tree.root), base, ref="main")
    return [(p.path, p.field, p.message) for p in problems]


@pytest.mark.parametrize(
    ("changed", "touched"),
    [
        (["registry/models/sentiment/1.5.0.yaml"], {"sentiment"}),
        (["registry/models/sentiment/1.5.0.yaml", "registry/models/intent/model.yaml"], {"sentiment", "intent"}),
        ([], set()),
        (["registry/regops.yaml"], None),
        (["registry/datasets/reviews/2025-09-08.yaml"], None),
        (["registry/models/stray.yaml"], None),
        (["README.md"], None),
    ],
)
def test_touched_models_names_the_model_folders_or_none_when_a_rule_reaches_every_model(
    changed: list[str], touched: set[str] | None
) -> None:
    assert touched_models(changed, "registry") == touched


def test_touched_models_reads_paths_from_the_repository_root_when_the_registry_is_it() -> None:
    assert touched_models(["models/sentiment/1.5.0.yaml"], ".") == {"sentiment"}
    assert touched_models(["regops.yaml"], "") is None


def test_an_unchanged_registry_breaks_no_rule(tree: Tree) -> None:
    assert check(tree, base_of(tree)) == []


def test_a_deleted_record_is_refused_and_told_to_archive_instead(tree: Tree) -> None:
    base = base_of(tree)
    tree.path(V130).unlink()

    [(path, _, message)] = check(tree, base)
    assert path == SHOWN
    assert message.startswith("deleted: version records are never deleted (they are on main); archive the version")


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("created_by: training-bot[bot]", "created_by: mallory", "created_by"),
        ("parent: 1.2.0", "parent: 1.1.0", "parent"),
        ("scores: {accuracy: 0.94,", "scores: {accuracy: 0.99,", "evals"),
        ("size: 1000,", "size: 1001,", "artifacts.files"),
    ],
)
def test_an_immutable_field_edited_is_refused(tree: Tree, old: str, new: str, field: str) -> None:
    base = base_of(tree)
    tree.replace(V130, old, new)

    assert check(tree, base) == [(SHOWN, field, f"{field} is fixed at registration and differs from main")]


def test_where_the_weights_are_may_change(tree: Tree) -> None:
    base = base_of(tree)
    tree.replace(V130, "storage: {backend: local, tier: hot}", "storage: {backend: local, tier: cold}")

    assert check(tree, base) == []


def test_a_recorded_transition_edited_or_dropped_is_refused(tree: Tree) -> None:
    base = base_of(tree)
    tree.replace(V130, 'notes: "bigger batch"', 'notes: "rewritten"')
    assert check(tree, base) == [
        (SHOWN, "transitions[1]", "transitions are append-only: this one was recorded on main and has been edited")
    ]

    tree.replace(V130, LAST_STEP.replace("bigger batch", "rewritten"), "")
    assert check(tree, base) == [(SHOWN, "transitions", "transitions are append-only: 2 on main, 1 here")]


def test_stamping_a_merged_transition_is_the_one_edit_allowed(tree: Tree) -> None:
    unstamped = LAST_STEP.replace(", pr: 9, approved_by: [alice]", "")
    tree.replace(V130, LAST_STEP, unstamped)
    base = base_of(tree)
    tree.replace(V130, unstamped, LAST_STEP)

    assert check(tree, base) == []


def test_a_new_transition_by_a_bot_beyond_dev_is_refused_and_one_carrying_stamps_too(tree: Tree) -> None:
    base = base_of(tree)
    by_bot = '  - {from: staging, to: prod, at: 2026-07-01T10:00:00Z, by: "github-actions[bot]"}\n'
    tree.write(V130, tree.read(V130) + by_bot)

    [(path, field, message)] = check(tree, base)
    assert (path, field) == (SHOWN, "transitions[2].by")
    assert message.startswith("github-actions[bot] is a bot: bots add candidates, auto-promote to dev and archive")

    tree.replace(V130, by_bot, "  - {from: staging, to: prod, at: 2026-07-01T10:00:00Z, by: alice, pr: 12}\n")
    [(path, field, message)] = check(tree, base)
    assert (path, field) == (SHOWN, "transitions[2].pr")
    assert "a new transition carries no pr: regops records it on main after the merge" in message


def test_a_new_transition_dated_before_the_models_last_one_on_the_base_is_refused(tree: Tree) -> None:
    base = base_of(tree)
    tree.write(V130, tree.read(V130) + "  - {from: staging, to: prod, at: 2026-01-01T00:00:00Z, by: alice}\n")

    [(path, field, message)] = check(tree, base)
    assert (path, field) == (SHOWN, "transitions[2].at")
    assert "is dated 2026-01-01T00:00:00+00:00, before the last transition of this model already on main" in message
