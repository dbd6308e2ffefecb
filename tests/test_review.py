"""What a promotion pull request shows its reviewers, and the CODEOWNERS file that picks them."""

from __future__ import annotations

import pytest

from regops import api
from regops.cli import main
from regops.publish import REVIEW_MARKER, review_page
from regops.registry import Registry
from tests.conftest import Tree


def test_the_review_page_compares_with_the_holder_and_prod(tree: Tree) -> None:
    registry = Registry.load(tree.root)
    page = review_page(registry, [(registry.version("sentiment", "1.4.0-rc.1"), "dev", "staging")])
    assert page.startswith(REVIEW_MARKER)
    assert "## `sentiment@1.4.0-rc.1`: dev → staging" in page
    # Better accuracy (goal max) and worse latency (goal min) against staging 1.3.0 and prod 1.2.0.
    assert "| metric | 1.4.0-rc.1 | current staging 1.3.0 | current prod 1.2.0 |" in page
    assert "| **accuracy** (primary) | 0.95 | 0.94 (+0.01 ▲) | 0.93 (+0.02 ▲) |" in page
    assert "| latency_ms | 44 | 43 (+1 ▼) | 42 (+2 ▼) |" in page
    assert "### Weights: 1.0 KB in 2 files" in page
    assert "```mermaid" in page and '"sentiment@1.3.0"' in page
    assert "### Canary" not in page, "the canary matters only on the way to prod"


def test_the_prod_page_shows_the_canary(tree: Tree) -> None:
    registry = Registry.load(tree.root)
    page = review_page(registry, [(registry.version("sentiment", "1.3.0"), "staging", "prod")])
    assert "| metric | 1.3.0 | current prod 1.2.0 |" in page
    assert "### Canary: **pending**" in page


def test_codeowners_is_written_from_model_owners_and_validate_reports_it_stale(
    tree: Tree, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--registry", str(tree.root)]
    assert main(["codeowners", *args]) == 0
    written = (tree.base / ".github/CODEOWNERS").read_text()
    assert "/registry/models/sentiment/ @alice @acme/ml\n" in written
    assert main(["codeowners", "--check", *args]) == 0
    assert api.validate(registry=tree.root) == []

    tree.replace("models/sentiment/model.yaml", 'owners: [alice, "@acme/ml"]', 'owners: [alice, dmitri, "@acme/ml"]')
    assert [str(p) for p in api.validate(registry=tree.root)] == [
        ".github/CODEOWNERS: stale: it does not name the owners model.yaml files give; run `regops codeowners` and commit it"
    ]
    capsys.readouterr()
    assert main(["codeowners", "--check", *args]) == 1
    assert (tree.base / ".github/CODEOWNERS").read_text() == written, "--check writes nothing"
    assert main(["codeowners", *args]) == 0
    assert "/registry/models/sentiment/ @alice @dmitri @acme/ml\n" in (tree.base / ".github/CODEOWNERS").read_text()
