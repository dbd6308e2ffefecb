"""`regops validate` on bad input: each problem names the file, the line, the field; nothing is written.

Every case breaks one thing in a copy of tests/data/registry and checks the
exact report line a user sees.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from regops.cli import main
from tests.conftest import Tree

V = "models/sentiment/1.2.0.yaml"  # the prod version
STAGING = "models/sentiment/1.3.0.yaml"
DEV = "models/sentiment/1.4.0-rc.1.yaml"
CANDIDATE = "models/sentiment/1.4.0-rc.2.yaml"
SHA = "325beded310ae8dfaf7c59d4c0a3489ec750a0108b2a00e26e2076b679af5006"
BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdef", "bcdefg", strict=True)
)


@dataclass(frozen=True)
class Case:
    id: str
    edit: Callable[[Tree], object]
    path: str  # the file the problem is reported on, relative to the registry
    marker: str | None  # text on the reported line of the edited file; None: no line
    field: str
    fragment: str


def _append(relative: str, text: str) -> Callable[[Tree], object]:
    return lambda t: t.write(relative, t.read(relative) + text)


def _sub(relative: str, old: str, new: str) -> Callable[[Tree], object]:
    return lambda t: t.replace(relative, old, new)


def _promote(relative: str, old_stage: str, new_stage: str, source: str) -> Callable[[Tree], object]:
    step = f"  - {{from: {source}, to: {new_stage}, at: 2026-06-20T10:00:00Z, by: alice, pr: 99, approved_by: [bob]}}\n"

    def edit(t: Tree) -> None:
        text = t.read(relative).replace(f"stage: {old_stage}\n", f"stage: {new_stage}\n", 1)
        text = text.replace("transitions: []\n", "transitions:\n")
        t.write(relative, text + step)

    return edit


CASES = [
    Case("empty file", lambda t: t.write(V, ""), V, None, "", "file is empty"),
    Case("list at top level", lambda t: t.write(V, "- a\n- b\n"), V, "- a", "", "top level must be a mapping"),
    Case("tab indent", _sub(V, "  epochs: 3", "\tepochs: 3"), V, "\tepochs", "", "a tab: YAML indents with spaces"),
    Case("invalid yaml", _sub(V, "stage: prod", "stage: [prod"), V, "transitions:", "", "not valid YAML"),
    Case(
        "duplicate key",
        _sub(V, "stage: prod\n", "stage: prod\nstage: dev\n"),
        V,
        "stage: dev",
        "",
        "duplicate key 'stage'",
    ),
    Case("alias bomb", lambda t: t.write(V, BOMB), V, "a: &a", "", "alias bomb"),
    Case(
        "2 MiB file",
        lambda t: t.write(V, "# " + "x" * (2 << 20) + "\n"),
        V,
        None,
        "",
        "file is over the 1,048,576-byte limit for registry files",
    ),
    Case(
        "invalid UTF-8",
        lambda t: t.write(V, t.read(V).encode().replace(b"alice", b"al\xffce", 1)),
        V,
        "al\ufffdce",
        "",
        "not valid UTF-8 (byte 0xff)",
    ),
    Case(
        "python tag",
        _sub(V, "stage: prod", "stage: !!python/object/apply:os.system [ls]"),
        V,
        "stage:",
        "",
        "tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed: registry files hold plain data only",
    ),
    Case(
        "unknown key", _sub(V, "stage: prod\n", "stage: prod\ncolour: blue\n"), V, "colour", "colour", "unknown field"
    ),
    Case(
        "missing required field",
        _sub(V, "created_by: training-bot[bot]\n", ""),
        V,
        "model:",
        "created_by",
        "required field is missing",
    ),
    Case(
        "wrong type",
        _sub(V, "size: 1000", 'size: "1000"'),
        V,
        'size: "1000"',
        "artifacts.files[0].size",
        "expected an integer, found str '1000'",
    ),
    Case(
        "version not matching file name",
        _sub(V, "version: 1.2.0", "version: 1.2.5"),
        V,
        "version:",
        "version",
        "'1.2.5' does not match the file name '1.2.0'",
    ),
    Case(
        "model not matching folder",
        _sub(V, "model: sentiment", "model: sentimental"),
        V,
        "model:",
        "model",
        "'sentimental' does not match the folder 'sentiment'",
    ),
    Case(
        "invalid semver",
        _sub(V, "version: 1.2.0", 'version: "1.2"'),
        V,
        "version:",
        "version",
        "not a SemVer 2.0 version",
    ),
    Case(
        "two files for one version",
        lambda t: t.write(
            "models/sentiment/1.2.0+build.7.yaml", t.read(V).replace("version: 1.2.0", "version: 1.2.0+build.7")
        ),
        "models/sentiment/1.2.0+build.7.yaml",
        "version:",
        "version",
        "sentiment@1.2.0+build.7 is also claimed by registry/models/sentiment/1.2.0.yaml",
    ),
    Case(
        "naive timestamp",
        _sub(V, "created_at: 2026-03-15T10:00:00Z", "created_at: 2026-03-15T10:00:00"),
        V,
        "created_at:",
        "created_at",
        "timestamp '2026-03-15T10:00:00' has no time zone",
    ),
    Case(
        "timestamp in the future",
        _sub(V, "at: 2026-04-01T10:00:00Z", "at: 2099-04-01T10:00:00Z"),
        V,
        "2099-04-01",
        "transitions[2].at",
        "2099-04-01T10:00:00+00:00 is in the future",
    ),
    Case(
        "artifact path with ..",
        _sub(V, "path: config.json", "path: ../config.json"),
        V,
        "../config.json",
        "artifact_path",
        "artifact paths are relative",
    ),
    Case(
        "absolute artifact path",
        _sub(V, "path: config.json", "path: /etc/config.json"),
        V,
        "/etc/config.json",
        "artifact_path",
        "artifact paths are relative",
    ),
    Case(
        "artifact path with backslash",
        _sub(V, "path: config.json", "path: conf\\config.json"),
        V,
        "conf\\config.json",
        "artifact_path",
        "artifact paths are relative",
    ),
    Case(
        "malformed sha256",
        _sub(V, SHA, SHA[:-2] + "zz"),
        V,
        SHA[:-2],
        "artifacts.files[0].sha256",
        "expected a sha256 digest",
    ),
    Case(
        "NaN score",
        _sub(V, "accuracy: 0.93", "accuracy: .nan"),
        V,
        "scores:",
        "evals.scores.accuracy",
        "nan is not a finite number",
    ),
    Case(
        "infinite score",
        _sub(V, "latency_ms: 42", "latency_ms: -.inf"),
        V,
        "scores:",
        "evals.scores.latency_ms",
        "-inf is not a finite number",
    ),
    Case(
        "primary metric missing",
        _sub(V, "accuracy: 0.93, ", ""),
        V,
        "scores:",
        "evals.scores",
        "the primary metric 'accuracy' (model.yaml) is missing",
    ),
    Case(
        "parent does not exist",
        _sub(STAGING, "parent: 1.2.0", "parent: 1.1.9"),
        STAGING,
        "parent:",
        "parent",
        "parent sentiment@1.1.9 is not in the registry",
    ),
    Case(
        "lineage cycle",
        _sub("models/sentiment/1.0.0.yaml", "parent: null", "parent: 1.2.0"),
        "models/sentiment/1.0.0.yaml",
        "parent:",
        "parent",
        "lineage cycle",
    ),
    Case(
        "dataset does not resolve",
        _sub(V, "dataset: reviews@2025-09-08", "dataset: reviews@2030-01-01"),
        V,
        "dataset: reviews@2030",
        "training.dataset",
        "dataset reviews@2030-01-01 does not resolve: registry/datasets/reviews/2030-01-01.yaml does not exist",
    ),
    Case(
        "dataset hash differs",
        _sub(V, "d3813d632\n", "d3813d633\n"),
        V,
        "dataset_hash:",
        "training.dataset_hash",
        "differs from blake3:3aa7cb0d",
    ),
    Case(
        "two versions in prod",
        lambda t: t.write(
            "models/sentiment/1.1.0.yaml",
            "\n".join(
                line
                for line in t.read("models/sentiment/1.1.0.yaml").replace("stage: archived", "stage: prod").splitlines()
                if "to: archived" not in line
            )
            + "\n",
        ),
        "models/sentiment/1.1.0.yaml",
        "stage:",
        "stage",
        "2 versions of sentiment are in prod (1.1.0, 1.2.0)",
    ),
    Case(
        "two versions in staging",
        _promote(DEV, "dev", "staging", "dev"),
        DEV,
        "stage:",
        "stage",
        "2 versions of sentiment are in staging (1.3.0, 1.4.0-rc.1)",
    ),
    Case(
        "two versions in dev",
        _promote(CANDIDATE, "candidate", "dev", "candidate"),
        CANDIDATE,
        "stage:",
        "stage",
        "2 versions of sentiment are in dev (1.4.0-rc.1, 1.4.0-rc.2)",
    ),
    Case(
        "two versions in prod at one moment of the history",
        _sub(
            "models/sentiment/1.1.0.yaml",
            "to: archived, at: 2026-03-01T10:00:00Z",
            "to: archived, at: 2026-03-05T10:00:00Z",
        ),
        "models/sentiment/1.0.0.yaml",
        "from: archived, to: prod",
        "transitions[4]",
        "sentiment 1.1.0 and 1.0.0 both held prod from 2026-03-01T10:00:00+00:00 until 2026-03-05T10:00:00+00:00",
    ),
    Case(
        "stage differs from last transition",
        _sub(V, "stage: prod", "stage: archived"),
        V,
        "stage:",
        "stage",
        "is archived, but the last transition is to prod",
    ),
    Case(
        "transitions out of time order",
        _sub(V, "at: 2026-03-20T10:00:00Z", "at: 2026-04-20T10:00:00Z"),
        V,
        "to: prod",
        "transitions[2].at",
        "2026-04-01T10:00:00+00:00 is earlier than 2026-04-20T10:00:00+00:00",
    ),
    Case(
        "illegal step candidate -> prod",
        _promote(CANDIDATE, "candidate", "prod", "candidate"),
        CANDIDATE,
        "to: prod",
        "transitions[0]",
        "candidate -> prod is not a legal step",
    ),
    Case(
        "archived -> prod for a version never in prod",
        _sub("models/sentiment/1.0.0.yaml", "{from: staging, to: prod", "{from: staging, to: archived"),
        "models/sentiment/1.0.0.yaml",
        "from: archived, to: prod",
        "transitions[4]",
        "archived -> prod is not a legal step (only a version that was prod before can return to it)",
    ),
    Case(
        "pending canary outside staging",
        _sub(
            V,
            "stage: prod\n",
            "stage: prod\ncanary: {traffic_percent: 5, started_at: 2026-03-20T10:05:00Z, result: pending}\n",
        ),
        V,
        "result: pending",
        "canary.result",
        "a pending canary belongs to the version in staging",
    ),
    Case(
        "missing schema comment",
        _sub(V, "# yaml-language-server: $schema=../../../schemas/model-version.schema.json\n", ""),
        V,
        "model:",
        "",
        "the first line must be `# yaml-language-server: $schema=../../../schemas/model-version.schema.json`",
    ),
    Case(
        "model folder without model.yaml",
        lambda t: t.path("models/intent/model.yaml").unlink(),
        "models/intent/model.yaml",
        None,
        "",
        "model intent has no model.yaml",
    ),
    Case(
        "stray file",
        lambda t: t.write("models/notes.yaml", "a: 1\n"),
        "models/notes.yaml",
        None,
        "",
        "not part of the registry layout",
    ),
    Case(
        ".yml extension",
        lambda t: t.path(V).rename(t.path(V).with_suffix(".yml")),
        "models/sentiment/1.2.0.yml",
        None,
        "",
        "use the .yaml extension",
    ),
    Case(
        "illegal step in regops.yaml",
        _sub("regops.yaml", "prod: {from: [staging, archived]", "prod: {from: [staging, archived, candidate]"),
        "regops.yaml",
        "prod:",
        "stages.prod.from[2]",
        "candidate -> prod is never a legal step",
    ),
]


def _line_of(tree: Tree, case: Case) -> int:
    if case.marker is None:
        return 0
    raw = tree.path(case.path).read_bytes().decode("utf-8", errors="replace")
    for number, line in enumerate(raw.splitlines(), 1):
        if case.marker in line:
            return number
    raise AssertionError(f"marker {case.marker!r} not in {case.path}")


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_reported_with_file_line_and_field(
    tree: Tree, case: Case, capsys: pytest.CaptureFixture[str]
) -> None:
    case.edit(tree)
    before = tree.snapshot()

    code = main(["validate", "--registry", str(tree.root)])

    out = capsys.readouterr().out
    assert code == 1, out
    line = _line_of(tree, case)
    where = f"registry/{case.path}:{line}:" if line else f"registry/{case.path}:"
    field = f" {case.field}:" if case.field and case.field != "artifact_path" else ""
    matching = [
        row
        for row in out.splitlines()
        if row.startswith(where) and case.fragment in row and (not field or field in row)
    ]
    assert matching, f"expected a line starting {where!r}{field} with {case.fragment!r}; got:\n{out}"
    if case.field == "artifact_path":
        assert re.search(r"artifacts\.files\[1\]\.path: ", matching[0]), matching[0]
    assert tree.snapshot() == before, "validate must not write anything"


def test_the_test_registry_is_clean(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--registry", str(tree.root)]) == 0
    assert capsys.readouterr().out.strip() == "ok: no problems"


def test_the_example_registry_is_clean(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import REPO

    assert main(["validate", "--registry", str(REPO / "registry")]) == 0, capsys.readouterr().out


def test_all_problems_in_one_run_sorted(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    tree.replace(V, "stage: prod\n", "stage: prod\ncolour: blue\n")
    tree.replace(STAGING, "parent: 1.2.0", "parent: 1.1.9")
    tree.replace("models/sentiment/1.0.0.yaml", "accuracy: 0.9", "accuracy: .inf")

    assert main(["validate", "--registry", str(tree.root)]) == 1
    rows = capsys.readouterr().out.splitlines()
    assert rows[-1] == "3 problems in 3 files"
    assert [r.split(":")[0] for r in rows[:-1]] == [
        "registry/models/sentiment/1.0.0.yaml",
        "registry/models/sentiment/1.2.0.yaml",
        "registry/models/sentiment/1.3.0.yaml",
    ]


def test_github_format_annotates_the_diff(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    tree.replace(V, "size: 1000", 'size: "1000"')

    assert main(["validate", "--registry", str(tree.root), "--format", "github"]) == 1
    out = capsys.readouterr().out.strip()
    line = _line_of(tree, Case("", lambda t: None, V, 'size: "1000"', "", ""))
    assert out.startswith(f"::error file=registry/models/sentiment/1.2.0.yaml,line={line},col=")
    assert ",title=artifacts.files[0].size::expected an integer, found str '1000'" in out


def test_json_format_is_a_list_of_objects(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    tree.replace(V, "stage: prod", "stage: archived")

    assert main(["validate", "--registry", str(tree.root), "--format", "json"]) == 1
    problems = json.loads(capsys.readouterr().out)
    assert problems == [
        {
            "path": "registry/models/sentiment/1.2.0.yaml",
            "line": 23,
            "col": 8,
            "field": "stage",
            "message": "is archived, but the last transition is to prod",
            "severity": "error",
        }
    ]


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--format", "xml"]) == 2
    assert "invalid choice: 'xml'" in capsys.readouterr().err


def test_missing_registry_is_a_clear_error(tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--registry", str(tmp_path)]) == 1
    assert "no registry at" in capsys.readouterr().err


# --- Hub repos: each model's own ---------------------------------------------------------------------

INTENT, SENTIMENT = "models/intent/model.yaml", "models/sentiment/model.yaml"
ON_THE_HUB = "storage: {backend: hf, org: acme-ml}\ncold_storage: {backend: hf"


def _hub_config(cold: str = "}") -> Callable[[Tree], object]:
    return _sub("regops.yaml", "storage: {backend: local, path: .regops/store}", ON_THE_HUB + cold)


@pytest.mark.parametrize(
    ("edits", "rows", "problems"),
    [
        pytest.param(
            [_sub(INTENT, "repo: acme-ml/intent", "repo: acme-ml/sentiment")],
            [
                f"registry/{INTENT}:6:13: hub.repo: acme-ml/sentiment is the Hub repo of intent and also the Hub repo "
                "of sentiment; give each model its own Hub repo (hub.repo in its model.yaml)",
                f"registry/{SENTIMENT}:6:13: hub.repo: acme-ml/sentiment is the Hub repo of sentiment and also the Hub "
                "repo of intent; give each model its own Hub repo (hub.repo in its model.yaml)",
            ],
            2,
            id="the same hub.repo",
        ),
        pytest.param(
            [_sub(INTENT, "repo: acme-ml/intent", "repo: Acme-ML/Sentiment")],
            ["acme-ml/sentiment is the Hub repo of intent and also the Hub repo of sentiment"],
            2,
            id="the same hub.repo in other case (the Hub ignores case)",
        ),
        pytest.param(
            [_hub_config(), _sub(INTENT, "repo: acme-ml/intent", "repo: acme-ml/sentiment-archive")],
            [
                f"registry/{INTENT}:6:13: hub.repo: acme-ml/sentiment-archive is the Hub repo of intent and also the "
                "archive repo of sentiment",
                f"registry/{SENTIMENT}:6:13: hub.repo: acme-ml/sentiment-archive is the archive repo of sentiment and "
                "also the Hub repo of intent",
            ],
            2,
            id="another model's archive repo",
        ),
        pytest.param(
            [_hub_config(", org: acme-cold}"), _sub(INTENT, "repo: acme-ml/intent", "repo: other-org/sentiment")],
            ["acme-cold/sentiment-archive is the archive repo of intent and also the archive repo of sentiment"],
            2,
            id="two archive repos collide",
        ),
        pytest.param(
            [_hub_config(), _sub(INTENT, "hub: {repo: acme-ml/intent, private: true}\n", ""),
             _sub("models/distilled/model.yaml", "repo: acme-ml/distilled", "repo: acme-ml/intent")],
            [
                f"registry/{INTENT}: acme-ml/intent is the Hub repo of intent and also the Hub repo of distilled",
                "registry/models/distilled/model.yaml:6:13: hub.repo: acme-ml/intent is the Hub repo of distilled and "
                "also the Hub repo of intent",
            ],
            4,
            id="another model's default repo (storage.org)",
        ),
        pytest.param(
            [_sub("models/distilled/1.0.0.yaml", "storage: {backend: local, tier: hot}",
                  f"storage: {{backend: hf, repo: acme-ml/sentiment, revision: {'a' * 40}, tier: hot}}")],
            [
                "registry/models/distilled/1.0.0.yaml:22:32: artifacts.storage.repo: acme-ml/sentiment is not "
                "distilled's Hub repo or archive repo (acme-ml/distilled)"
            ],
            1,
            id="a version's weights in another model's repo",
        ),
    ],
)  # fmt: skip
def test_each_model_has_its_own_hub_repo_and_archive_repo(
    tree: Tree,
    capsys: pytest.CaptureFixture[str],
    edits: list[Callable[[Tree], object]],
    rows: list[str],
    problems: int,
) -> None:
    for edit in edits:
        edit(tree)
    before = tree.snapshot()

    assert main(["validate", "--registry", str(tree.root)]) == 1
    out = capsys.readouterr().out
    for row in rows:
        assert any(row in line for line in out.splitlines()), f"expected {row!r} in:\n{out}"
    assert out.splitlines()[-1].startswith(f"{problems} problem"), out
    assert tree.snapshot() == before
