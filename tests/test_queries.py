"""The read queries (resolve, history, show, status, lineage, diff) against the fixed test registry.

The history of `sentiment` in tests/data/registry, which the expected values come from:

    1.0.0  prod 2026-01-08T10:00Z -> 02-10, rolled back to prod 03-01T10:00Z -> 04-01T10:00Z
    1.1.0  prod 2026-02-10T10:00Z -> 03-01T10:00Z (then archived by the rollback)
    1.2.0  prod since 2026-04-01T10:00Z
    1.3.0  staging since 2026-05-05 (canary pending); 1.4.0-rc.1 dev; 1.4.0-rc.2 candidate

`distilled@1.0.0` has the parent sentiment@1.2.0; `intent@1.0.0` an hf:// base.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime

import pytest

import regops
from regops import Registry, parse_time
from regops.cli import main
from regops.errors import (
    InvalidRegistryError,
    ModelNotFoundError,
    RefError,
    StageEmptyError,
    VersionNotFoundError,
)
from regops.files import ModelVersion
from tests.conftest import Tree

HF_BASE = "hf://distilbert/distilbert-base-uncased@0ca2c732da2fd8cc7e8a29a9d3cb855a3ef431c3"
REVIEWS_HASH = "blake3:3aa7cb0d71a0fa8a247dec5b636b723054ea7f133debbcd6f79a9bbd3813d632"


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def run(capsys: pytest.CaptureFixture[str], tree: Tree, *argv: str) -> tuple[int, str, str]:
    """`regops VERB ... --registry <copy>`: exit code, stdout, stderr."""
    verb, *rest = argv
    code = main([verb, *rest, "--registry", str(tree.root)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def cells(line: str) -> list[str]:
    """A row of a text table, split on the two-space column gaps."""
    return re.split(r"\s{2,}", line.strip())


@pytest.fixture
def registry(tree: Tree) -> Registry:
    return Registry.load(tree.root)


# --- resolve -------------------------------------------------------------------------


def test_resolve_prod_now(registry: Registry) -> None:
    got = registry.resolve("sentiment@prod")

    assert got.version == "1.2.0"
    assert got.since == utc(2026, 4, 1, 10)
    assert got.until is None
    assert got.at is None
    assert got.storage == {"backend": "local", "tier": "hot"}
    assert got.path == "registry/models/sentiment/1.2.0.yaml"


@pytest.mark.parametrize(
    ("stage", "version", "since"),
    [
        ("staging", "1.3.0", utc(2026, 5, 5, 10)),
        ("dev", "1.4.0-rc.1", utc(2026, 6, 1, 11)),
    ],
)
def test_resolve_other_holder_stages_now(registry: Registry, stage: str, version: str, since: datetime) -> None:
    got = registry.resolve(f"sentiment@{stage}")

    assert (got.version, got.since, got.until) == (version, since, None)


@pytest.mark.parametrize(
    ("at", "version", "since", "until"),
    [
        # Inside 1.0.0's first prod spell.
        ("2026-01-20", "1.0.0", utc(2026, 1, 8, 10), utc(2026, 2, 10, 10)),
        ("2026-01-08T10:00:00Z", "1.0.0", utc(2026, 1, 8, 10), utc(2026, 2, 10, 10)),
        # Inside 1.1.0's spell; a second before it ends, 1.1.0 still holds prod.
        ("2026-02-20", "1.1.0", utc(2026, 2, 10, 10), utc(2026, 3, 1, 10)),
        ("2026-03-01T09:59:59Z", "1.1.0", utc(2026, 2, 10, 10), utc(2026, 3, 1, 10)),
        # The rollback: 1.0.0 is prod again.
        ("2026-03-10", "1.0.0", utc(2026, 3, 1, 10), utc(2026, 4, 1, 10)),
        ("2026-03-31T23:59:59Z", "1.0.0", utc(2026, 3, 1, 10), utc(2026, 4, 1, 10)),
        # At a transition's exact moment the stage belongs to the new holder.
        ("2026-02-10T10:00:00Z", "1.1.0", utc(2026, 2, 10, 10), utc(2026, 3, 1, 10)),
        ("2026-03-01T10:00:00Z", "1.0.0", utc(2026, 3, 1, 10), utc(2026, 4, 1, 10)),
        ("2026-03-01T11:00:00+01:00", "1.0.0", utc(2026, 3, 1, 10), utc(2026, 4, 1, 10)),
        ("2026-04-01T10:00:00Z", "1.2.0", utc(2026, 4, 1, 10), None),
        ("2026-06-15", "1.2.0", utc(2026, 4, 1, 10), None),
    ],
)
def test_resolve_prod_at_a_moment(
    registry: Registry, at: str, version: str, since: datetime, until: datetime | None
) -> None:
    got = registry.resolve("sentiment@prod", at=parse_time(at))

    assert (got.version, got.since, got.until) == (version, since, until)
    assert got.at == parse_time(at)
    assert got.path == f"registry/models/sentiment/{version}.yaml"


@pytest.mark.parametrize(
    ("now", "spec", "version"),
    [
        (utc(2026, 3, 31, 12), "3 weeks ago", "1.0.0"),  # 2026-03-10: the rollback
        (utc(2026, 3, 31, 12), "5 weeks ago", "1.1.0"),  # 2026-02-24
        (utc(2026, 3, 31, 12), "2 months ago", "1.0.0"),  # 2026-01-31: the first spell
        (utc(2026, 4, 3, 8), "yesterday", "1.2.0"),  # 2026-04-02T00:00Z
        (utc(2026, 4, 2, 12), "a day ago", "1.2.0"),
    ],
)
def test_resolve_at_a_relative_moment(registry: Registry, now: datetime, spec: str, version: str) -> None:
    assert registry.resolve("sentiment@prod", at=parse_time(spec, now=now)).version == version


def test_yesterday_midnight_is_before_the_promotion_that_day(registry: Registry) -> None:
    # "yesterday" is 00:00 UTC; 1.2.0 became prod at 10:00 that day.
    assert registry.resolve("sentiment@prod", at=parse_time("yesterday", now=utc(2026, 4, 2, 8))).version == "1.0.0"


def test_resolve_before_anything_was_prod(registry: Registry) -> None:
    with pytest.raises(StageEmptyError) as caught:
        registry.resolve("sentiment@prod", at=parse_time("2026-01-08T09:59:59Z"))

    assert str(caught.value) == "no version of sentiment was in prod at 2026-01-08T09:59:59+00:00"
    assert (caught.value.model, caught.value.stage) == ("sentiment", "prod")


def test_resolve_a_stage_empty_at_that_moment(registry: Registry) -> None:
    # Between 1.2.0 leaving staging (04-01) and 1.3.0 entering it (05-05).
    with pytest.raises(StageEmptyError, match="no version of sentiment was in staging at 2026-04-15"):
        registry.resolve("sentiment@staging", at=parse_time("2026-04-15"))


def test_resolve_through_the_api_takes_a_time_string(tree: Tree) -> None:
    from regops import api

    assert api.resolve("sentiment@prod", registry=tree.root, at="2026-03-10").version == "1.0.0"
    assert api.resolve("sentiment@prod", registry=tree.root, at=utc(2026, 2, 20)).version == "1.1.0"


def test_resolve_with_a_naive_datetime_reads_it_as_utc(registry: Registry) -> None:
    assert registry.resolve("sentiment@prod", at=datetime(2026, 3, 10)).version == "1.0.0"


def test_cli_resolve_now(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, tree, "resolve", "sentiment@prod")

    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "sentiment@prod: 1.2.0",
        "  held prod since 2026-04-01T10:00:00+00:00 (still holds it)",
        "  storage: backend=local, tier=hot",
        "  record:  registry/models/sentiment/1.2.0.yaml",
    ]


def test_cli_resolve_at_the_rollback(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, tree, "resolve", "sentiment@prod", "--at", "2026-03-10")

    assert code == 0
    assert out.splitlines()[:2] == [
        "sentiment@prod at 2026-03-10T00:00:00+00:00: 1.0.0",
        "  held prod since 2026-03-01T10:00:00+00:00 until 2026-04-01T10:00:00+00:00",
    ]


def test_cli_resolve_at_a_relative_moment(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    # Every transition in the test registry is months old, so "yesterday" lands in 1.2.0's spell.
    code, out, _ = run(capsys, tree, "resolve", "sentiment@prod", "--at", "yesterday")

    assert code == 0
    assert out.splitlines()[0].endswith(": 1.2.0")


def test_cli_resolve_json(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, tree, "resolve", "sentiment@prod", "--at", "2026-03-10", "--json")

    assert code == 0
    assert json.loads(out) == {
        "model": "sentiment",
        "stage": "prod",
        "at": "2026-03-10T00:00:00Z",
        "version": "1.0.0",
        "since": "2026-03-01T10:00:00Z",
        "until": "2026-04-01T10:00:00Z",
        "storage": {"backend": "local", "tier": "hot"},
        "path": "registry/models/sentiment/1.0.0.yaml",
    }


def test_cli_resolve_json_now_has_no_end(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, tree, "resolve", "sentiment@prod", "--json")

    data = json.loads(out)
    assert code == 0
    assert {k: data[k] for k in ("version", "since", "until", "at")} == {
        "version": "1.2.0",
        "since": "2026-04-01T10:00:00Z",
        "until": None,
        "at": None,
    }


@pytest.mark.parametrize("at", ["2025-12-31", "2026-01-08T09:59:59Z", "20 years ago"])
def test_cli_resolve_before_anything_was_prod(tree: Tree, capsys: pytest.CaptureFixture[str], at: str) -> None:
    code, out, err = run(capsys, tree, "resolve", "sentiment@prod", "--at", at)

    assert code == 1
    assert out == ""
    assert err.startswith("regops: error: no version of sentiment was in prod at ")
    assert "Traceback" not in err


def test_cli_resolve_with_an_unreadable_time(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, tree, "resolve", "sentiment@prod", "--at", "tomorrow")

    assert code == 2
    assert err.startswith("regops: error: cannot read 'tomorrow' as a time: use an ISO 8601 date")


def test_cli_resolve_with_a_time_out_of_range(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, tree, "resolve", "sentiment@prod", "--at", "10000 years ago")

    assert code == 2
    assert err.startswith("regops: error: cannot read '10000 years ago' as a time")


@pytest.mark.parametrize("stage", ["candidate", "archived"])
def test_resolve_a_stage_many_versions_share_is_an_error(
    registry: Registry, tree: Tree, capsys: pytest.CaptureFixture[str], stage: str
) -> None:
    with pytest.raises(RefError, match=f"many versions can be {stage}; name a version instead"):
        registry.resolve(f"sentiment@{stage}")

    code, out, err = run(capsys, tree, "resolve", f"sentiment@{stage}")
    assert (code, out) == (1, "")
    assert err == f"regops: error: many versions can be {stage}; name a version instead\n"


@pytest.mark.parametrize("ref", ["sentiment@1.2.0", "sentiment"])
def test_resolve_takes_a_stage_not_a_version(registry: Registry, ref: str) -> None:
    with pytest.raises(RefError, match=r"resolve takes MODEL@STAGE \(dev, staging or prod\)"):
        registry.resolve(ref)


@pytest.mark.parametrize("ref", ["sentiment@", "@prod"])
def test_a_malformed_reference_is_an_error(tree: Tree, capsys: pytest.CaptureFixture[str], ref: str) -> None:
    code, _, err = run(capsys, tree, "resolve", ref)

    assert code == 1
    assert f"cannot read {ref!r}: expected MODEL, MODEL@VERSION or MODEL@STAGE" in err


def test_an_unknown_model_names_the_models_there_are(
    registry: Registry, tree: Tree, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ModelNotFoundError) as caught:
        registry.resolve("sentimnet@prod")
    assert caught.value.model == "sentimnet"

    for argv in (["resolve", "sentimnet@prod"], ["history", "sentimnet"], ["show", "sentimnet@1.0.0"]):
        code, out, err = run(capsys, tree, *argv)
        assert (code, out) == (1, ""), argv
        assert err == (
            "regops: error: no model 'sentimnet' in the registry (did you mean 'sentiment'?) (known models: distilled, intent, sentiment)\n"
        )


def test_an_unknown_version_says_how_to_list_them(
    registry: Registry, tree: Tree, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(VersionNotFoundError) as caught:
        registry.get("sentiment@9.9.9")
    assert (caught.value.model, caught.value.version) == ("sentiment", "9.9.9")

    code, out, err = run(capsys, tree, "show", "sentiment@9.9.9")
    assert (code, out) == (1, "")
    assert err == "regops: error: no version 9.9.9 of sentiment (list them with `regops history sentiment`)\n"


# --- history -------------------------------------------------------------------------

# (when, version, from, to) of every row of `regops history sentiment`, oldest first.
SENTIMENT_HISTORY = [
    ("2026-01-05T10:00", "1.0.0", None, "candidate"),
    ("2026-01-05T11:00", "1.0.0", "candidate", "dev"),
    ("2026-01-06T10:00", "1.0.0", "dev", "staging"),
    ("2026-01-08T10:00", "1.0.0", "staging", "prod"),
    ("2026-02-01T10:00", "1.1.0", None, "candidate"),
    ("2026-02-01T11:00", "1.1.0", "candidate", "dev"),
    ("2026-02-03T10:00", "1.1.0", "dev", "staging"),
    ("2026-02-10T10:00", "1.0.0", "prod", "archived"),
    ("2026-02-10T10:00", "1.1.0", "staging", "prod"),
    ("2026-03-01T10:00", "1.1.0", "prod", "archived"),  # at one moment, leaving comes first
    ("2026-03-01T10:00", "1.0.0", "archived", "prod"),
    ("2026-03-15T10:00", "1.2.0", None, "candidate"),
    ("2026-03-15T11:00", "1.2.0", "candidate", "dev"),
    ("2026-03-20T10:00", "1.2.0", "dev", "staging"),
    ("2026-04-01T10:00", "1.0.0", "prod", "archived"),
    ("2026-04-01T10:00", "1.2.0", "staging", "prod"),
    ("2026-05-01T10:00", "1.3.0", None, "candidate"),
    ("2026-05-01T11:00", "1.3.0", "candidate", "dev"),
    ("2026-05-05T10:00", "1.3.0", "dev", "staging"),
    ("2026-06-01T10:00", "1.4.0-rc.1", None, "candidate"),
    ("2026-06-01T11:00", "1.4.0-rc.1", "candidate", "dev"),
    ("2026-06-10T10:00", "1.4.0-rc.2", None, "candidate"),
]


def test_history_is_every_registration_and_transition_in_time_order(registry: Registry) -> None:
    rows = registry.history("sentiment")

    assert [(r.at.strftime("%Y-%m-%dT%H:%M"), r.version, r.from_, r.to) for r in rows] == SENTIMENT_HISTORY
    assert [r.at for r in rows] == sorted(r.at for r in rows)
    assert {r.model for r in rows} == {"sentiment"}


def test_history_registration_rows(registry: Registry) -> None:
    registrations = [r for r in registry.history("sentiment") if r.from_ is None]

    assert [r.version for r in registrations] == ["1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0-rc.1", "1.4.0-rc.2"]
    assert {(r.to, r.by, r.pr, r.approved_by, r.notes, r.reason) for r in registrations} == {
        ("candidate", "training-bot[bot]", None, (), None, None)
    }


def test_history_rows_carry_who_pr_approvals_notes_and_reason(registry: Registry) -> None:
    rows = registry.history("sentiment")
    rollback = next(r for r in rows if r.version == "1.0.0" and r.from_ == "archived")
    auto = next(r for r in rows if r.version == "1.1.0" and r.to == "dev")

    assert rollback == regops.HistoryEntry(
        model="sentiment",
        version="1.0.0",
        at=utc(2026, 3, 1, 10),
        from_="archived",
        to="prod",
        by="carol",
        pr=6,
        approved_by=("alice",),
        notes="rollback: 1.1.0 mislabels sarcasm",
        reason=None,
    )
    assert auto == regops.HistoryEntry(
        model="sentiment",
        version="1.1.0",
        at=utc(2026, 2, 1, 11),
        from_="candidate",
        to="dev",
        by="github-actions[bot]",
        reason="auto: accuracy 0.92 > 0.9 (1.0.0)",
    )


def test_history_of_a_model_reference_uses_the_model(tree: Tree) -> None:
    from regops import api

    assert len(api.history("sentiment@1.2.0", registry=tree.root)) == len(SENTIMENT_HISTORY)


def test_cli_history(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, tree, "history", "sentiment")

    lines = out.splitlines()
    assert (code, err) == (0, "")
    assert cells(lines[0]) == ["WHEN (UTC)", "VERSION", "STEP", "BY", "PR", "APPROVED BY", "NOTES / REASON"]
    assert len(lines) == 1 + len(SENTIMENT_HISTORY)
    assert cells(lines[1]) == ["2026-01-05 10:00", "1.0.0", "registered", "training-bot[bot]", "-", "-"]
    assert cells(lines[11]) == [
        "2026-03-01 10:00",
        "1.0.0",
        "archived -> prod",
        "carol",
        "#6",
        "alice",
        "rollback: 1.1.0 mislabels sarcasm",
    ]
    assert cells(lines[6]) == [
        "2026-02-01 11:00",
        "1.1.0",
        "candidate -> dev",
        "github-actions[bot]",
        "-",
        "-",
        "auto: accuracy 0.92 > 0.9 (1.0.0)",
    ]
    assert cells(lines[-1]) == ["2026-06-10 10:00", "1.4.0-rc.2", "registered", "training-bot[bot]", "-", "-"]


def test_cli_history_json(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, tree, "history", "sentiment", "--json")

    rows = json.loads(out)
    assert code == 0
    assert [(r["at"][:16], r["version"], r["from"], r["to"]) for r in rows] == SENTIMENT_HISTORY
    assert rows[10] == {
        "model": "sentiment",
        "version": "1.0.0",
        "at": "2026-03-01T10:00:00Z",
        "from": "archived",
        "to": "prod",
        "by": "carol",
        "pr": 6,
        "approved_by": ["alice"],
        "notes": "rollback: 1.1.0 mislabels sarcasm",
        "reason": None,
        "evidence": [],
        "kind": "rollback",
    }
    assert rows[0]["from"] is None
    assert all("from_" not in r for r in rows)


# --- show ----------------------------------------------------------------------------


def test_show_a_version(registry: Registry) -> None:
    record = registry.get("sentiment@1.2.0")

    assert (record.model, record.version, record.data.stage, record.data.parent) == (
        "sentiment",
        "1.2.0",
        "prod",
        "1.1.0",
    )
    assert record.path == registry.root / "models" / "sentiment" / "1.2.0.yaml"


def test_show_a_stage_at_a_moment(tree: Tree) -> None:
    from regops import api

    record = api.show("sentiment@prod", registry=tree.root, at="2026-03-10")

    assert (record.version, record.data.stage) == ("1.0.0", "archived")


def test_cli_show_a_version(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, tree, "show", "sentiment@1.2.0")

    lines = out.splitlines()
    assert (code, err) == (0, "")
    assert lines[0] == "sentiment@1.2.0  [prod]"
    assert "  created:    2026-03-15T10:00:00+00:00 by training-bot[bot]" in lines
    assert "  parent:     1.1.0" in lines
    assert f"  trained on: reviews@2025-09-08 ({REVIEWS_HASH})" in lines
    assert "  evals:      accuracy=0.93, latency_ms=42 on reviews-eval@v1" in lines
    assert "  params:     learning_rate=3e-05, epochs=3, batch_size=32" in lines
    assert "  artifacts:  2 files, 1.0 KB; backend=local, tier=hot" in lines
    assert lines[-1] == "  2026-04-01 10:00  staging -> prod by alice pr #8 approved by bob: canary held"


def test_cli_show_prod_at_the_rollback(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, tree, "show", "sentiment@prod", "--at", "2026-03-10")

    lines = out.splitlines()
    assert code == 0
    assert lines[0] == "sentiment@1.0.0  [prod at 2026-03-10 00:00 UTC]"  # its stage then, not today's
    assert "  parent:     -" in lines
    assert "  canary:     passed at 5% since 2026-01-06T10:05:00+00:00" in lines
    rollback = (
        "  2026-03-01 10:00  archived -> prod by carol pr #6 approved by alice: rollback: 1.1.0 mislabels sarcasm"
    )
    assert rollback in lines


def test_cli_show_a_model(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, tree, "show", "sentiment")

    lines = out.splitlines()
    assert code == 0
    assert lines[:5] == [
        "sentiment: The sentiment model.",
        "  owners:  alice, @acme/ml",
        "  primary: accuracy (max)",
        "  guards:  latency_ms (min, ±5)",
        "  hub:     acme-ml/sentiment",
    ]
    table = [cells(line) for line in lines[lines.index("") + 1 :]]
    assert table == [
        ["VERSION", "STAGE", "CREATED", "accuracy"],
        ["1.0.0", "archived", "2026-01-05 10:00", "0.9"],
        ["1.1.0", "archived", "2026-02-01 10:00", "0.92"],
        ["1.2.0", "prod", "2026-03-15 10:00", "0.93"],
        ["1.3.0", "staging", "2026-05-01 10:00", "0.94"],
        ["1.4.0-rc.1", "dev", "2026-06-01 10:00", "0.95"],
        ["1.4.0-rc.2", "candidate", "2026-06-10 10:00", "0.949"],
    ]


def test_cli_show_a_model_json(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, tree, "show", "sentiment", "--json")

    config = json.loads(out)
    assert code == 0
    assert config["name"] == "sentiment"
    assert config["primary_metric"] == {"name": "accuracy", "goal": "max"}
    assert config["guard_metrics"] == [{"name": "latency_ms", "goal": "min", "tolerance": 5.0}]


@pytest.mark.parametrize(("argv", "version"), [(["sentiment@1.0.0"], "1.0.0"), (["sentiment@prod"], "1.2.0")])
def test_cli_show_json_round_trips(
    registry: Registry, tree: Tree, capsys: pytest.CaptureFixture[str], argv: list[str], version: str
) -> None:
    code, out, _ = run(capsys, tree, "show", *argv, "--json")

    data = json.loads(out)
    assert code == 0
    assert data["version"] == version
    assert data["transitions"], "every shown version here has transitions"
    assert all("from" in t and "from_" not in t for t in data["transitions"])
    assert ModelVersion.model_validate(data) == registry.version("sentiment", version).data


def test_cli_show_json_of_the_rollback(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, tree, "show", "sentiment@prod", "--at", "2026-03-10", "--json")

    data = json.loads(out)
    assert code == 0
    assert data["version"] == "1.0.0"
    assert data["transitions"][4] == {
        "from": "archived",
        "to": "prod",
        "at": "2026-03-01T10:00:00Z",
        "by": "carol",
        "pr": 6,
        "approved_by": ["alice"],
        "notes": "rollback: 1.1.0 mislabels sarcasm",
    }


# --- status --------------------------------------------------------------------------


def test_status_one_row_per_model(registry: Registry) -> None:
    rows = {r.model: r for r in registry.status()}

    assert list(rows) == ["distilled", "intent", "sentiment"]
    summary = {
        name: (
            r.primary_metric,
            r.prod and (r.prod.version, r.prod.score),
            r.staging and (r.staging.version, r.staging.score),
            r.dev and (r.dev.version, r.dev.score),
            r.prod_since,
            r.candidates,
            r.versions,
        )
        for name, r in rows.items()
    }
    assert summary == {
        "distilled": ("accuracy", ("1.0.0", 0.91), None, None, utc(2026, 4, 15, 10), 0, 1),
        "intent": ("accuracy", ("1.0.0", 0.88), None, None, utc(2026, 4, 25, 10), 0, 1),
        "sentiment": (
            "accuracy",
            ("1.2.0", 0.93),
            ("1.3.0", 0.94),
            ("1.4.0-rc.1", 0.95),
            utc(2026, 4, 1, 10),
            1,
            6,
        ),
    }


def test_cli_status(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, tree, "status")

    assert (code, err) == (0, "")
    assert [cells(line) for line in out.splitlines()] == [
        ["MODEL", "METRIC", "PROD", "PROD SINCE", "STAGING", "DEV", "CANDIDATES", "VERSIONS"],
        ["distilled", "accuracy", "1.0.0 (0.91)", "2026-04-15 10:00", "-", "-", "0", "1"],
        ["intent", "accuracy", "1.0.0 (0.88)", "2026-04-25 10:00", "-", "-", "0", "1"],
        ["sentiment", "accuracy", "1.2.0 (0.93)", "2026-04-01 10:00", "1.3.0 (0.94)", "1.4.0-rc.1 (0.95)", "1", "6"],
    ]


def test_cli_status_json(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, tree, "status", "--json")

    rows = {r["model"]: r for r in json.loads(out)}
    assert code == 0
    assert list(rows) == ["distilled", "intent", "sentiment"]
    assert rows["sentiment"] == {
        "model": "sentiment",
        "primary_metric": "accuracy",
        "dev": {"version": "1.4.0-rc.1", "score": 0.95},
        "staging": {"version": "1.3.0", "score": 0.94},
        "prod": {"version": "1.2.0", "score": 0.93},
        "prod_since": "2026-04-01T10:00:00Z",
        "candidates": 1,
        "versions": 6,
    }
    assert (rows["intent"]["dev"], rows["intent"]["staging"]) == (None, None)


# --- lineage -------------------------------------------------------------------------


def test_lineage_crosses_models_and_stops_at_the_root(registry: Registry) -> None:
    nodes = registry.lineage("distilled@1.0.0")

    assert [(n.ref, n.depth, n.parent) for n in nodes] == [
        ("distilled@1.0.0", 0, "sentiment@1.2.0"),
        ("sentiment@1.2.0", 1, "sentiment@1.1.0"),
        ("sentiment@1.1.0", 2, "sentiment@1.0.0"),
        ("sentiment@1.0.0", 3, None),
    ]
    assert {(n.dataset, n.dataset_hash, n.eval_dataset) for n in nodes} == {
        ("reviews@2025-09-08", REVIEWS_HASH, "reviews-eval@v1")
    }
    assert not any(n.external or n.missing for n in nodes)


def test_lineage_ends_at_an_external_base(registry: Registry) -> None:
    nodes = registry.lineage("intent@1.0.0")

    assert [(n.ref, n.depth, n.external) for n in nodes] == [("intent@1.0.0", 0, False), (HF_BASE, 1, True)]
    assert nodes[0].dataset == "tickets@v1"
    assert nodes[0].parent == HF_BASE
    assert nodes[1].dataset is None


def test_lineage_of_a_stage_at_a_moment(registry: Registry) -> None:
    assert [n.ref for n in registry.lineage("sentiment@prod", at=parse_time("2026-02-20"))] == [
        "sentiment@1.1.0",
        "sentiment@1.0.0",
    ]


def test_lineage_marks_a_parent_that_is_not_in_the_registry(tree: Tree) -> None:
    tree.replace("models/distilled/1.0.0.yaml", "parent: sentiment@1.2.0", "parent: sentiment@0.9.0")

    nodes = Registry.load(tree.root).lineage("distilled@1.0.0")

    assert [(n.ref, n.missing) for n in nodes] == [("distilled@1.0.0", False), ("sentiment@0.9.0", True)]


def test_lineage_stops_on_a_cycle(tree: Tree) -> None:
    tree.replace("models/sentiment/1.0.0.yaml", "parent: null", "parent: 1.2.0")

    nodes = Registry.load(tree.root).lineage("sentiment@1.2.0")

    assert [n.ref for n in nodes] == ["sentiment@1.2.0", "sentiment@1.1.0", "sentiment@1.0.0"]


def test_cli_lineage_text(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, tree, "lineage", "intent@1.0.0")

    assert code == 0
    assert out.splitlines() == [
        "intent@1.0.0  trained on tickets@v1 "
        "(blake3:45a5c62241eec841f042aee5ae4626a40ea31e8393aa44d0f9ce801d0325ae5d), evals on reviews-eval@v1",
        f"  └─ {HF_BASE}  (external base)",
    ]


def test_cli_lineage_text_across_models(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, tree, "lineage", "distilled@1.0.0")

    assert code == 0
    assert [line.split("  trained on ")[0] for line in out.splitlines()] == [
        "distilled@1.0.0",
        "  └─ sentiment@1.2.0",
        "    └─ sentiment@1.1.0",
        "      └─ sentiment@1.0.0",
    ]


def _mermaid(text: str) -> tuple[list[str], set[tuple[str, str]]]:
    """The labels of the version nodes (in order of declaration) and the parent -> child edges, by label."""
    declared = re.findall(r'^\s+(n\d+)\[\[?"([^"]+)"\]\]?$', text, flags=re.MULTILINE)
    labels = dict(declared)
    edges = re.findall(r"^\s+(n\d+) --> (n\d+)$", text, flags=re.MULTILINE)
    return [label for _, label in declared], {(labels[a], labels[b]) for a, b in edges}


def test_cli_lineage_mermaid(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, tree, "lineage", "distilled@1.0.0", "--format", "mermaid")

    nodes, edges = _mermaid(out)
    assert code == 0
    assert out.splitlines()[0].startswith("flowchart ")
    assert nodes == ["distilled@1.0.0", "sentiment@1.2.0", "sentiment@1.1.0", "sentiment@1.0.0"]
    assert edges == {
        ("sentiment@1.2.0", "distilled@1.0.0"),
        ("sentiment@1.1.0", "sentiment@1.2.0"),
        ("sentiment@1.0.0", "sentiment@1.1.0"),
    }


def test_cli_lineage_mermaid_with_an_external_base(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, tree, "lineage", "intent@1.0.0", "--format", "mermaid")

    nodes, edges = _mermaid(out)
    assert code == 0
    assert out.splitlines()[0].startswith("flowchart ")
    assert nodes == ["intent@1.0.0", HF_BASE]
    assert edges == {(HF_BASE, "intent@1.0.0")}


def test_cli_lineage_json(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, tree, "lineage", "intent@1.0.0", "--json")

    assert code == 0
    assert json.loads(out) == [
        {
            "ref": "intent@1.0.0",
            "depth": 0,
            "dataset": "tickets@v1",
            "dataset_hash": "blake3:45a5c62241eec841f042aee5ae4626a40ea31e8393aa44d0f9ce801d0325ae5d",
            "eval_dataset": "reviews-eval@v1",
            "external": False,
            "missing": False,
            "parent": HF_BASE,
            "dataset_source": None,
            "eval_dataset_source": None,
        },
        {
            "ref": HF_BASE,
            "depth": 1,
            "dataset": None,
            "dataset_hash": None,
            "eval_dataset": None,
            "external": True,
            "missing": False,
            "parent": None,
            "dataset_source": None,
            "eval_dataset_source": None,
        },
    ]


# --- diff ----------------------------------------------------------------------------


def test_diff_two_versions(registry: Registry) -> None:
    d = registry.diff("sentiment@1.1.0", "sentiment@1.2.0")

    assert (d.a, d.b, d.primary_metric) == ("sentiment@1.1.0", "sentiment@1.2.0", "accuracy")
    accuracy, latency = d.scores
    assert (accuracy.metric, accuracy.a, accuracy.b, accuracy.goal, accuracy.better) == (
        "accuracy",
        0.92,
        0.93,
        "max",
        True,
    )
    assert accuracy.delta == pytest.approx(0.01)
    assert (latency.metric, latency.a, latency.b, latency.goal, latency.better) == ("latency_ms", 41, 42, "min", False)
    assert latency.delta == pytest.approx(1)
    assert d.params_changed == {"learning_rate": (2.0e-5, 3.0e-5)}
    assert (d.params_added, d.params_removed) == ({}, {})
    assert d.dataset == ("reviews@2025-09-08", "reviews@2025-09-08")
    assert d.dataset_hash == (REVIEWS_HASH, REVIEWS_HASH)
    assert d.eval_dataset == ("reviews-eval@v1", "reviews-eval@v1")
    assert d.parent == ("sentiment@1.0.0", "sentiment@1.1.0")


def test_diff_prod_then_against_prod_now(registry: Registry) -> None:
    d = registry.diff("sentiment@prod", "sentiment@prod", at=parse_time("2026-03-10"))

    assert (d.a, d.b) == ("sentiment@1.0.0", "sentiment@1.2.0")
    assert d.parent == (None, "sentiment@1.1.0")
    assert d.params_changed == {}


def test_cli_diff(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, tree, "diff", "sentiment@1.1.0", "sentiment@1.2.0")

    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "sentiment@1.1.0 -> sentiment@1.2.0",
        "",
        "evals:",
        "  accuracy (primary): 0.92 -> 0.93  +0.01 better",
        "  latency_ms: 41 -> 42  +1 worse",
        "hyperparameters:",
        "  ~ learning_rate: 2e-05 -> 3e-05",
        "dataset: reviews@2025-09-08 (same)",
        "eval dataset: reviews-eval@v1 (same)",
        "parent: sentiment@1.0.0 -> sentiment@1.1.0",
    ]


def test_cli_diff_prod_then_against_prod_now(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, tree, "diff", "sentiment@prod", "sentiment@prod", "--at", "2026-03-10")

    lines = out.splitlines()
    assert code == 0
    assert lines[0] == "sentiment@1.0.0 -> sentiment@1.2.0"
    assert "  accuracy (primary): 0.9 -> 0.93  +0.03 better" in lines
    assert "  latency_ms: 40 -> 42  +2 worse" in lines
    assert "  (same)" in lines
    assert "parent: - -> sentiment@1.1.0" in lines


def test_cli_diff_json(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, tree, "diff", "sentiment@1.1.0", "sentiment@1.2.0", "--json")

    data = json.loads(out)
    assert code == 0
    assert (data["a"], data["b"], data["primary_metric"]) == ("sentiment@1.1.0", "sentiment@1.2.0", "accuracy")
    scores = {s["metric"]: s for s in data["scores"]}
    assert scores["accuracy"]["delta"] == pytest.approx(0.01)
    assert (scores["accuracy"]["goal"], scores["accuracy"]["better"]) == ("max", True)
    assert scores["latency_ms"]["delta"] == pytest.approx(1)
    assert (scores["latency_ms"]["goal"], scores["latency_ms"]["better"]) == ("min", False)
    assert data["params_changed"] == {"learning_rate": [2.0e-5, 3.0e-5]}
    assert data["dataset"] == ["reviews@2025-09-08", "reviews@2025-09-08"]
    assert data["parent"] == ["sentiment@1.0.0", "sentiment@1.1.0"]


# --- a broken file -------------------------------------------------------------------

BREAKS = {
    "invalid yaml": ("stage: staging", "stage: [staging"),
    "unknown field": ("stage: staging\n", "stage: staging\ncolour: blue\n"),
}


@pytest.mark.parametrize("old_new", BREAKS.values(), ids=BREAKS.keys())
def test_a_query_on_a_broken_model_is_an_error(tree: Tree, old_new: tuple[str, str]) -> None:
    tree.replace("models/sentiment/1.3.0.yaml", *old_new)
    registry = Registry.load(tree.root)

    with pytest.raises(InvalidRegistryError) as caught:
        registry.resolve("sentiment@prod")

    assert [p.path for p in caught.value.problems] == ["registry/models/sentiment/1.3.0.yaml"]
    assert "run `regops validate`" in str(caught.value)
    # Lineage that passes through the broken model does not quietly stop short either.
    with pytest.raises(InvalidRegistryError):
        registry.lineage("distilled@1.0.0")
    # Another model is unaffected, on the same loaded registry.
    assert registry.resolve("intent@prod").version == "1.0.0"
    assert [n.ref for n in registry.lineage("intent@1.0.0")] == ["intent@1.0.0", HF_BASE]


def test_cli_query_on_a_broken_model(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    tree.replace("models/sentiment/1.3.0.yaml", *BREAKS["invalid yaml"])

    for argv in (["resolve", "sentiment@prod"], ["history", "sentiment"], ["show", "sentiment@1.2.0"]):
        code, out, err = run(capsys, tree, *argv)
        assert (code, out) == (1, ""), argv
        assert err.startswith("regops: error: the registry has problems: registry/models/sentiment/1.3.0.yaml")
        assert err.rstrip().endswith("run `regops validate` to see them all")
        assert "Traceback" not in err

    code, out, err = run(capsys, tree, "resolve", "intent@prod")
    assert (code, err) == (0, "")
    assert out.startswith("intent@prod: 1.0.0\n")


# --- the command line itself -----------------------------------------------------------


def test_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: regops")
    for verb in ("validate", "status", "show", "history", "resolve", "lineage", "diff"):
        assert verb in out

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"regops {regops.__version__}"


def test_an_unknown_verb_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["promote-everything"]) == 2
    assert "invalid choice: 'promote-everything'" in capsys.readouterr().err


def test_a_verb_without_its_argument_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["resolve"]) == 2
    assert "the following arguments are required" in capsys.readouterr().err


# --- the public API --------------------------------------------------------------------

PUBLIC_API = [
    "DatasetVersion",
    "HistoryEntry",
    "InvalidRegistryError",
    "LineageNode",
    "ModelConfig",
    "ModelNotFoundError",
    "ModelStatus",
    "ModelVersion",
    "Problem",
    "Ref",
    "RefError",
    "Registry",
    "RegistryConfig",
    "RegistryNotFoundError",
    "RegopsError",
    "Resolution",
    "StageEmptyError",
    "TimeSpecError",
    "VersionDiff",
    "VersionNotFoundError",
    "VersionRecord",
    "__version__",
    "parse_ref",
    "parse_time",
    "validate",
]


def test_the_public_api_is_pinned() -> None:
    assert sorted(regops.__all__) == PUBLIC_API


@pytest.mark.parametrize("name", PUBLIC_API)
def test_every_public_name_resolves(name: str) -> None:
    assert getattr(regops, name) is not None


def test_errors_share_one_base() -> None:
    errors = [getattr(regops, n) for n in PUBLIC_API if n.endswith("Error")]

    assert errors
    assert all(issubclass(e, regops.RegopsError) for e in errors)


def test_importing_the_cli_does_not_import_the_heavy_parts() -> None:
    code = (
        "import sys, regops.cli; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic','ruamel','yaml')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert result.stdout.strip() == "[]", result.stdout


def test_lineage_names_where_each_training_set_lives(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    tree.write(
        "datasets/tickets/v1.yaml",
        tree.read("datasets/tickets/v1.yaml").replace(
            "description: tickets v1\n",
            "description: tickets v1\nsource: {kind: iceberg, table: support.tickets, snapshot: 4242}\n",
        ),
    )

    code, out, _ = run(capsys, tree, "lineage", "intent@1.0.0")

    assert code == 0
    assert "trained on tickets@v1 (blake3:" in out
    assert "; Iceberg table support.tickets snapshot 4242)" in out
