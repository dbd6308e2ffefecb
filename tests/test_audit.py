"""Whole-registry audits: stages at a moment, history across models with filters, evidence and comparability.

The answers come from tests/data/registry (see tests/test_queries.py for sentiment's history):

    sentiment  1.0.0 prod 01-08 -> 02-10, rolled back to prod 03-01T10:00Z (by carol) -> 04-01T10:00Z
               1.1.0 prod 02-10 -> 03-01; 1.2.0 dev 03-15T11:00Z, staging 03-20, prod since 04-01T10:00Z
               1.3.0 staging since 05-05; 1.4.0-rc.1 dev since 06-01; 1.4.0-rc.2 candidate (06-10)
    distilled  1.0.0 registered 04-10, dev 04-10T11:00Z, staging 04-11T10:00Z, prod 04-15T10:00Z
    intent     1.0.0 registered 04-20, prod 04-25T10:00Z

So at 2026-03-15T12:00Z (inside the rollback) sentiment's prod was 1.0.0 and its dev 1.2.0, and neither other model
existed; at 2026-04-12 distilled was in staging with no prod. 8 registrations and 22 transitions in all.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from regops import publish
from regops.cli import main
from regops.lifecycle import LOCK_FILE
from regops.registry import Registry
from tests.conftest import Tree, commit, git, run_regops, weights
from tests.servers.github_fixtures import GitHubFixture
from tests.test_gate import judged, pull_request, refused_with_an_owner_s_approval, staging_branch
from tests.test_github import REPO, open_pull


def run(capsys: pytest.CaptureFixture[str], tree: Tree, *argv: str) -> tuple[int, str, str]:
    code = main([*argv, "--registry", str(tree.root)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def as_json(capsys: pytest.CaptureFixture[str], tree: Tree, *argv: str) -> Any:
    code, out, err = run(capsys, tree, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def files(tree: Tree) -> dict[str, bytes]:
    """The registry's files (the write lock left out)."""
    return {k: v for k, v in tree.snapshot().items() if k != f"registry/{LOCK_FILE}"}


def cells(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


def steps(rows: list[dict[str, Any]]) -> list[tuple[str, str, str | None, str]]:
    return [(r["model"], r["version"], r["from"], r["to"]) for r in rows]


# --- status --at ----------------------------------------------------------------------------------


def test_status_at_a_moment_inside_a_rollback(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    rows = as_json(capsys, tree, "status", "--at", "2026-03-15T12:00:00Z")

    assert [r["model"] for r in rows] == ["sentiment"]  # distilled and intent did not exist yet
    (row,) = rows
    assert row["prod"] == {"version": "1.0.0", "score": 0.9}
    assert row["prod_since"] == "2026-03-01T10:00:00Z"  # since the rollback, not since January
    assert row["dev"]["version"] == "1.2.0"
    assert row["staging"] is None
    assert (row["candidates"], row["versions"]) == (0, 3)
    code, out, _ = run(capsys, tree, "status", "--at", "2026-03-15T12:00:00Z")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "as of 2026-03-15 12:00 UTC"
    assert cells(lines[2])[:6] == ["sentiment", "accuracy", "1.0.0 (0.9)", "2026-03-01 10:00", "-", "1.2.0 (0.93)"]


def test_status_at_shows_a_model_that_had_no_prod(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    rows = {r["model"]: r for r in as_json(capsys, tree, "status", "--at", "2026-04-12")}

    assert set(rows) == {"distilled", "sentiment"}
    assert rows["distilled"]["prod"] is None
    assert rows["distilled"]["prod_since"] is None
    assert rows["distilled"]["staging"]["version"] == "1.0.0"
    assert rows["sentiment"]["prod"]["version"] == "1.2.0"
    assert rows["sentiment"]["prod_since"] == "2026-04-01T10:00:00Z"


def test_status_at_before_anything_and_now(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, tree, "status", "--at", "2025-01-01")
    assert (code, out.strip()) == (0, "no model had a version at 2025-01-01 00:00 UTC")
    now = {r["model"]: r["prod"]["version"] for r in as_json(capsys, tree, "status")}
    assert now == {"distilled": "1.0.0", "intent": "1.0.0", "sentiment": "1.2.0"}


@pytest.mark.parametrize(
    "argv",
    [("status", "--at"), ("history", "--since"), ("history", "--until"), ("show", "sentiment", "--at")],
)
def test_a_moment_that_names_nothing_is_a_usage_error(
    tree: Tree, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]
) -> None:
    before = tree.snapshot()
    code, out, err = run(capsys, tree, *argv, "the day after")
    assert code == 2
    assert out == ""
    assert "the day after" in err
    assert tree.snapshot() == before


# --- history across models ---------------------------------------------------------------------------


def test_history_without_a_model_covers_every_model_oldest_first(
    tree: Tree, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = as_json(capsys, tree, "history")

    assert len(rows) == 30
    assert {r["model"] for r in rows} == {"sentiment", "distilled", "intent"}
    assert [r["at"] for r in rows] == sorted(r["at"] for r in rows)
    assert sum(r["kind"] == "register" for r in rows) == 8
    # Mid-April the three models interleave.
    april = [(r["model"], r["to"]) for r in rows if "2026-04-10" <= r["at"] < "2026-04-26"]
    assert april == [
        ("distilled", "candidate"),
        ("distilled", "dev"),
        ("distilled", "staging"),
        ("distilled", "prod"),
        ("intent", "candidate"),
        ("intent", "dev"),
        ("intent", "staging"),
        ("intent", "prod"),
    ]


def test_history_kind_rollback_finds_every_rollback(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    rows = as_json(capsys, tree, "history", "--kind", "rollback")

    assert steps(rows) == [("sentiment", "1.0.0", "archived", "prod")]
    assert (rows[0]["by"], rows[0]["pr"], rows[0]["at"]) == ("carol", 6, "2026-03-01T10:00:00Z")
    # Asked of every model, the text names the model even when one model answers; asked of one, it need not.
    assert cells(run(capsys, tree, "history", "--kind", "rollback")[1].splitlines()[1])[1] == "sentiment@1.0.0"
    assert cells(run(capsys, tree, "history", "sentiment", "--kind", "rollback")[1].splitlines()[1])[1] == "1.0.0"


def test_history_by_a_login(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    rows = as_json(capsys, tree, "history", "--by", "carol")

    assert steps(rows) == [("sentiment", "1.1.0", "prod", "archived"), ("sentiment", "1.0.0", "archived", "prod")]
    assert [r["kind"] for r in rows] == ["archive", "rollback"]


def test_history_bots_since(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    rows = as_json(capsys, tree, "history", "--bots", "--since", "2026-04-15")

    assert {r["by"] for r in rows} == {"training-bot[bot]", "github-actions[bot]"}
    assert steps(rows) == [
        ("intent", "1.0.0", None, "candidate"),
        ("intent", "1.0.0", "candidate", "dev"),
        ("sentiment", "1.3.0", None, "candidate"),
        ("sentiment", "1.3.0", "candidate", "dev"),
        ("sentiment", "1.4.0-rc.1", None, "candidate"),
        ("sentiment", "1.4.0-rc.1", "candidate", "dev"),
        ("sentiment", "1.4.0-rc.2", None, "candidate"),
    ]
    assert [r["kind"] for r in rows if r["from"]] == ["auto", "auto", "auto"]


def test_history_stage_model_and_window(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    rows = as_json(
        capsys, tree, "history", "--stage", "prod", "--model", "sentiment", "--since", "2026-02-10T10:00:00Z",
        "--until", "2026-04-01T10:00:00Z",
    )  # fmt: skip

    # Into or out of prod, from the moment 1.1.0 took it until (not including) 1.2.0 taking it.
    assert steps(rows) == [
        ("sentiment", "1.0.0", "prod", "archived"),
        ("sentiment", "1.1.0", "staging", "prod"),
        ("sentiment", "1.1.0", "prod", "archived"),
        ("sentiment", "1.0.0", "archived", "prod"),
    ]


def test_history_kinds_combine_and_the_positional_model_still_works(
    tree: Tree, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = as_json(capsys, tree, "history", "distilled", "--kind", "auto", "--kind", "promote")
    assert [(r["kind"], r["to"]) for r in rows] == [("auto", "dev"), ("promote", "staging"), ("promote", "prod")]

    code, out, _ = run(capsys, tree, "history", "sentiment", "--by", "nobody")
    assert (code, out.strip()) == (0, "no history matches")


def test_history_of_an_unknown_model_says_so(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, tree, "history", "--model", "sentimnet")
    assert code == 1
    assert out == ""
    assert "sentimnet" in err


def test_history_text_names_the_model_when_several_are_shown(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, tree, "history", "--kind", "rollback", "--kind", "register", "--since", "2026-02-15")
    assert code == 0
    lines = out.splitlines()
    assert cells(lines[0])[:4] == ["WHEN (UTC)", "VERSION", "STEP", "BY"]
    assert [cells(line)[:4] for line in lines[1:]] == [
        ["2026-03-01 10:00", "sentiment@1.0.0", "archived -> prod", "carol"],
        ["2026-03-15 10:00", "sentiment@1.2.0", "registered", "training-bot[bot]"],
        ["2026-04-10 10:00", "distilled@1.0.0", "registered", "training-bot[bot]"],
        ["2026-04-20 10:00", "intent@1.0.0", "registered", "training-bot[bot]"],
        ["2026-05-01 10:00", "sentiment@1.3.0", "registered", "training-bot[bot]"],
        ["2026-06-01 10:00", "sentiment@1.4.0-rc.1", "registered", "training-bot[bot]"],
        ["2026-06-10 10:00", "sentiment@1.4.0-rc.2", "registered", "training-bot[bot]"],
    ]


def test_history_csv_has_the_same_rows_as_json(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    rows = as_json(capsys, tree, "history", "--by", "carol")
    code, out, _ = run(capsys, tree, "history", "--by", "carol", "--format", "csv")

    assert code == 0
    table = list(csv.DictReader(io.StringIO(out)))
    assert list(table[0]) == [
        "at", "model", "version", "kind", "from", "to", "by", "pr", "approved_by", "notes", "reason", "evidence",
    ]  # fmt: skip
    assert [(t["at"], t["version"], t["kind"], t["from"], t["to"], t["pr"]) for t in table] == [
        (r["at"], r["version"], r["kind"], r["from"], r["to"], str(r["pr"])) for r in rows
    ]
    assert table[1]["notes"] == "rollback: 1.1.0 mislabels sarcasm"
    assert table[1]["approved_by"] == "alice"


# --- show --at ------------------------------------------------------------------------------------------


def test_show_model_at_lists_the_versions_there_were_in_their_stages_then(
    tree: Tree, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, tree, "show", "sentiment", "--at", "2026-03-15T12:00:00Z")

    assert code == 0
    table = out.split("\n\n", 1)[1].splitlines()
    assert [cells(line)[:2] for line in table[1:]] == [["1.0.0", "prod"], ["1.1.0", "archived"], ["1.2.0", "dev"]]
    got = as_json(capsys, tree, "show", "sentiment", "--at", "2026-03-15T12:00:00Z")
    assert got["versions"] == [
        {"version": "1.0.0", "stage": "prod"},
        {"version": "1.1.0", "stage": "archived"},
        {"version": "1.2.0", "stage": "dev"},
    ]
    assert got["model"]["name"] == "sentiment"


def test_show_prod_at_shows_that_version_as_it_was(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, tree, "show", "sentiment@prod", "--at", "2026-03-15T12:00:00Z")

    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "sentiment@1.0.0  [prod at 2026-03-15 12:00 UTC]"
    moves = [line.split("  ", 2)[2].split(" by ")[0] for line in lines if line.startswith("  2026-")]
    assert moves == ["candidate -> dev", "dev -> staging", "staging -> prod", "prod -> archived", "archived -> prod"]
    assert lines[-1] == "  (1 later transition not shown: after 2026-03-15 12:00 UTC)"
    # Without --at: today's prod, every transition.
    assert run(capsys, tree, "show", "sentiment@prod")[1].splitlines()[0] == "sentiment@1.2.0  [prod]"


def test_show_a_version_at_a_moment_before_it_existed_says_so(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    before = tree.snapshot()
    code, out, err = run(capsys, tree, "show", "sentiment@1.3.0", "--at", "2026-03-15")

    assert code == 1
    assert out == ""
    assert "sentiment@1.3.0 did not exist at 2026-03-15T00:00:00+00:00" in err
    assert "registered at 2026-05-01T10:00:00+00:00" in err
    assert "regops show sentiment --at 2026-03-15T00:00:00+00:00" in err
    assert tree.snapshot() == before


# --- evidence -------------------------------------------------------------------------------------------


def better_candidate(tree: Tree, *, eval_set: str = "reviews-eval@v1") -> None:
    """1.4.0-rc.2 beats dev (1.4.0-rc.1: accuracy 0.95, latency 44) on accuracy, within latency's tolerance (5)."""
    path = "models/sentiment/1.4.0-rc.2.yaml"
    tree.replace(path, "scores: {accuracy: 0.949, latency_ms: 44}", "scores: {accuracy: 0.97, latency_ms: 48}")
    tree.replace(path, "dataset: reviews-eval@v1", f"dataset: {eval_set}")


def test_auto_promote_records_its_comparison_as_evidence(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    better_candidate(tree)
    code, _, err = run(capsys, tree, "auto-promote", "--by", "github-actions[bot]")
    assert code == 0, err

    step = Registry.load(tree.root).version("sentiment", "1.4.0-rc.2").data.transitions[-1]
    assert step.reason == "auto: accuracy 0.97 > 0.95 (1.4.0-rc.1)"
    assert [m.model_dump() for m in step.evidence or ()] == [
        {"metric": "accuracy", "role": "primary", "goal": "max", "candidate": 0.97, "baseline": "1.4.0-rc.1",
         "baseline_value": 0.95, "tolerance": 0.0, "eval_dataset": "reviews-eval@v1", "held": True},
        {"metric": "latency_ms", "role": "guard", "goal": "min", "candidate": 48.0, "baseline": "1.4.0-rc.1",
         "baseline_value": 44.0, "tolerance": 5.0, "eval_dataset": "reviews-eval@v1", "held": True},
    ]  # fmt: skip
    assert run(capsys, tree, "validate")[0] == 0

    superseded, auto = as_json(capsys, tree, "history", "--kind", "auto", "--since", "2026-06-02")
    assert (superseded["version"], superseded["to"], superseded["evidence"]) == ("1.4.0-rc.1", "archived", [])
    assert (auto["version"], auto["to"], auto["by"]) == ("1.4.0-rc.2", "dev", "github-actions[bot]")
    assert auto["evidence"][0]["baseline_value"] == 0.95
    out = run(capsys, tree, "show", "sentiment@1.4.0-rc.2")[1]
    assert "      evidence: accuracy (primary, max) 0.97 vs 0.95 (1.4.0-rc.1) on reviews-eval@v1: held" in out
    assert "      evidence: latency_ms (guard, min, ±5) 48 vs 44 (1.4.0-rc.1) on reviews-eval@v1: held" in out
    text = run(capsys, tree, "history", "--kind", "auto", "--since", "2026-06-02")[1]
    assert "auto: accuracy 0.97 > 0.95 (1.4.0-rc.1) [evidence: accuracy (primary, max) 0.97 vs 0.95" in text


def test_evidence_is_schema_checked(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    path = "models/sentiment/1.4.0-rc.1.yaml"
    tree.replace(
        path,
        'reason: "auto: accuracy 0.95 > 0.94 (1.3.0)"}',
        'reason: "auto: accuracy 0.95 > 0.94 (1.3.0)", evidence: [{metric: accuracy, role: primary, goal: max, '
        "candidate: 0.95, held: probably}]}",
    )
    code, out, _ = run(capsys, tree, "validate")
    assert code == 1
    assert f"registry/{path}:" in out
    assert "transitions[0].evidence[0].held: expected true or false" in out


# --- comparable or not --------------------------------------------------------------------------------


def test_auto_promote_does_not_promote_on_scores_from_another_eval_set(
    tree: Tree, capsys: pytest.CaptureFixture[str]
) -> None:
    better_candidate(tree, eval_set="reviews-eval@v2")
    before = files(tree)

    code, out, err = run(capsys, tree, "auto-promote", "--by", "github-actions[bot]")

    assert code == 0, err
    assert (
        "sentiment@1.4.0-rc.2 stays candidate: scores not comparable with 1.4.0-rc.1: measured on reviews-eval@v2, "
        "1.4.0-rc.1 on reviews-eval@v1"
    ) in out
    assert files(tree) == before


def test_diff_marks_scores_on_different_eval_sets_not_comparable(
    tree: Tree, capsys: pytest.CaptureFixture[str]
) -> None:
    better_candidate(tree, eval_set="reviews-eval@v2")

    got = as_json(capsys, tree, "diff", "sentiment@1.4.0-rc.1", "sentiment@1.4.0-rc.2")
    assert got["comparable"] is False
    assert [(s["metric"], s["a"], s["b"], s["delta"], s["better"]) for s in got["scores"]] == [
        ("accuracy", 0.95, 0.97, None, None),
        ("latency_ms", 44, 48, None, None),
    ]
    out = run(capsys, tree, "diff", "sentiment@1.4.0-rc.1", "sentiment@1.4.0-rc.2")[1]
    assert (
        "  not comparable: sentiment@1.4.0-rc.1 was measured on reviews-eval@v1, sentiment@1.4.0-rc.2 on reviews-eval@v2"
        in out
    )
    assert "  accuracy (primary): 0.95 -> 0.97  -" in out.splitlines()
    assert "better" not in out
    # On the same set the delta is back.
    same = as_json(capsys, tree, "diff", "sentiment@1.3.0", "sentiment@1.4.0-rc.1")
    assert same["comparable"] is True
    assert same["scores"][0]["better"] is True


def test_the_review_page_marks_scores_on_different_eval_sets_not_comparable(tree: Tree) -> None:
    better_candidate(tree, eval_set="reviews-eval@v2")
    registry = Registry.load(tree.root)
    record = registry.version("sentiment", "1.4.0-rc.2")

    page = publish.review_page(registry, [(record, "dev", "staging")])

    rows = [line for line in page.splitlines() if line.startswith("| ")]
    assert rows[0] == "| metric | 1.4.0-rc.2 | current staging 1.3.0 | current prod 1.2.0 |"
    not_comparable = "(not comparable: on `reviews-eval@v1`, this version on `reviews-eval@v2`)"
    assert rows[1] == f"| **accuracy** (primary) | 0.97 | 0.94 {not_comparable} | 0.93 {not_comparable} |"
    assert "▲" not in page
    assert "▼" not in page


def test_lineage_shows_where_each_dataset_lives(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    tree.replace("datasets/reviews-eval/v1.yaml", "description:", "uri: s3://acme/reviews-eval/v1/\ndescription:")
    code, out, _ = run(capsys, tree, "lineage", "sentiment@1.2.0")
    assert code == 0
    assert "evals on reviews-eval@v1 (s3://acme/reviews-eval/v1/)" in out.splitlines()[0]
    (node, *_) = as_json(capsys, tree, "lineage", "sentiment@prod")
    assert node["eval_dataset_source"] == "s3://acme/reviews-eval/v1/"


# --- the gate and evidence --------------------------------------------------------------------------


def test_a_bots_auto_promotion_with_evidence_passes_the_gate_as_before(
    history_repo: Path, gh: GitHubFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """regops' own auto-promote, in a bot's pull request: its evidence is data the gate does not need to allow."""
    outputs = history_repo.parent
    (outputs / "evals3.json").write_text('{"accuracy": 0.96, "latency_ms": 40}')
    weights(outputs / "out-1.2.0", "1.2.0")
    git(history_repo, "checkout", "-q", "-b", "change", "main")
    run_regops(
        capsys, history_repo, "register", "sentiment", "--artifacts", str(outputs / "out-1.2.0"), "--evals",
        str(outputs / "evals3.json"), "--params", str(outputs / "params.json"), "--dataset", "reviews@2025-09-08",
        "--version", "1.2.0", "--by", "github-actions[bot]",
    )  # fmt: skip
    run_regops(capsys, history_repo, "auto-promote", "--by", "github-actions[bot]")
    step = Registry.load(history_repo).version("sentiment", "1.2.0").steps[-1]
    assert (step.to, [m["held"] for m in step.evidence]) == ("dev", [True, True])

    number = open_pull(gh, history_repo, author="github-actions[bot]", branch="change")

    state, out = judged(capsys, gh, history_repo, number)
    assert state == "success", out


def test_forged_evidence_grants_nothing(
    history_repo: Path, gh: GitHubFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """alice moves sentiment 1.1.0 to staging and adds to her transition the evidence of an auto-promotion."""
    staging_branch(capsys, history_repo)
    path = history_repo / "registry/models/sentiment/1.1.0.yaml"
    claim = (
        ', reason: "auto: accuracy 0.99 > 0.5", evidence: [{metric: accuracy, role: primary, goal: max, '
        "candidate: 0.99, baseline: 1.0.0, baseline_value: 0.5, held: true}]}"
    )
    lines = path.read_text().splitlines()
    assert lines[-1].startswith("  - {from: dev, to: staging") and lines[-1].endswith("}")
    path.write_text("\n".join([*lines[:-1], lines[-1][:-1] + claim, ""]))
    commit(history_repo, "evidence, by hand")
    assert main(["validate"]) == 0
    number = open_pull(gh, history_repo, author="alice", branch="change")

    state, out = judged(capsys, gh, history_repo, number)

    assert state == "failure"
    assert "sentiment@1.1.0 → staging" in out
    assert "needs 1 more" in out
    gh.add_review(REPO, number, "bob", "APPROVED")  # an owner: what staging always needed, evidence or not
    assert judged(capsys, gh, history_repo, number)[0] == "success"


def test_recorded_evidence_cannot_be_rewritten_in_a_pull_request(
    history_repo: Path, gh: GitHubFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    path = "registry/models/sentiment/1.1.0.yaml"
    text = (history_repo / path).read_text()
    assert "baseline_value: 0.93" in text  # written by the template's auto-promote (1.1.0 over 1.0.0)
    number = pull_request(gh, history_repo, {path: text.replace("baseline_value: 0.93", "baseline_value: 0.5")})

    out = refused_with_an_owner_s_approval(capsys, gh, history_repo, number)

    assert f"changes {path}: transitions (recorded ones) changed" in out
