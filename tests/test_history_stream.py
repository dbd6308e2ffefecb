"""``regops history`` is written as it is made: a long history's text table, ``--json`` and ``--format csv`` reach
the reader a part at a time (``regops.history_stream``), byte for byte what the whole renderings make of it.

Two registries: tests/data/registry (approvers, notes, an auto-promotion's evidence, a rollback) and a generated one
with a few hundred moves, in tmp_path. The whole renderings are the references: ``report.history_text`` of the
moves, ``report.to_json`` and ``report.history_csv`` of ``api.history``'s entries.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from regops import api, history_stream, report
from regops.cli import main
from regops.registry import Registry
from regops.serving import manifest_text, serving_manifest
from tests.conftest import Tree
from tests.test_summary_queries import edited

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from generate import generate

QUERIES = [
    [],
    ["sentiment"],
    ["sentiment", "--model", "intent"],
    ["--model", "intent"],
    ["--by", "carol"],
    ["--kind", "rollback", "--kind", "register", "--since", "2026-02-15"],
    ["--stage", "prod", "--until", "2026-04-01"],
    ["--kind", "auto"],
]


@pytest.fixture
def generated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("REGOPS_CACHE_DIR", str(tmp_path / "cache"))
    return generate(tmp_path / "generated", 4, 40, seed=3)


@pytest.fixture
def said(tree: Tree) -> Tree:
    """tests/data/registry with an auto-promotion's evidence and a hand-added step with a PR, approvers, notes."""
    edited(tree)
    return tree


@pytest.fixture
def streamed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every history written in parts of 3 moves (text tables too: none is made whole while git looks)."""
    monkeypatch.setattr(history_stream, "PART", 3)
    monkeypatch.setattr(history_stream, "SHORT", 0)


def wholes(registry: Path, argv: list[str]) -> dict[str, str]:
    """What ``regops history`` printed before it streamed: each rendering made whole, then one newline."""
    model, flags = (argv[0], argv[1:]) if argv and not argv[0].startswith("-") else (None, argv)
    filters = dict(zip(flags[::2], flags[1::2], strict=True))
    asked = {
        "models": [filters["--model"]] if "--model" in filters else (),
        "by": filters.get("--by"),
        "stage": filters.get("--stage"),
        "kinds": [v for k, v in zip(flags[::2], flags[1::2], strict=True) if k == "--kind"],
        "since": filters.get("--since"),
        "until": filters.get("--until"),
    }
    moves = api.history_moves(model, registry=str(registry), **asked)  # type: ignore[arg-type]
    one = len({model, *asked["models"]} - {None}) == 1
    return {
        "text": report.history_text(moves, one_model=one) + "\n",
        "json": report.to_json(moves.entries()) + "\n",
        "csv": report.history_csv(moves.entries()) + "\n",
    }


def printed(capsys: pytest.CaptureFixture[str], registry: Path, argv: list[str]) -> dict[str, str]:
    found = {}
    for form, flags in {"text": [], "json": ["--json"], "csv": ["--format", "csv"]}.items():
        assert main(["history", *argv, *flags, "--registry", str(registry)]) == 0
        captured = capsys.readouterr()
        assert captured.err == ""
        found[form] = captured.out
    return found


@pytest.mark.parametrize("argv", QUERIES, ids=" ".join)
def test_a_streamed_history_is_byte_for_byte_the_whole_rendering(
    said: Tree, capsys: pytest.CaptureFixture[str], streamed: None, argv: list[str]
) -> None:
    expected = wholes(said.root, argv)
    assert printed(capsys, said.root, argv) == expected


def test_nested_values_are_indented_as_in_the_whole_document(
    said: Tree, capsys: pytest.CaptureFixture[str], streamed: None
) -> None:
    found = printed(capsys, said.root, ["--since", "2026-06-02"])["json"]
    assert '"evidence": [\n      {\n        "metric": "accuracy",' in found
    assert '"approved_by": [\n      "dave"\n    ],' in found
    assert found == wholes(said.root, ["--since", "2026-06-02"])["json"]


def test_a_long_generated_history_streams_byte_for_byte(
    generated: Path, capsys: pytest.CaptureFixture[str], streamed: None
) -> None:
    lines = []
    for argv in ([], ["--stage", "prod"], ["--kind", "rollback"]):
        expected = wholes(generated, argv)
        assert printed(capsys, generated, argv) == expected
        lines.append(expected["text"].count("\n"))
    assert lines[0] > lines[1] > 30 and lines[2] >= 2  # many parts of 3 moves


def test_an_empty_history_says_so_in_each_form(tree: Tree, capsys: pytest.CaptureFixture[str], streamed: None) -> None:
    found = printed(capsys, tree.root, ["--by", "nobody"])
    assert found == {"text": "no history matches\n", "json": "[]\n", "csv": report.history_csv([]) + "\n"}
    assert found["csv"].startswith("at,model,version,kind,")


class Reader:
    """A reader that takes the first thing written and goes away (``regops history | head``): the next write
    finds the pipe closed."""

    def __init__(self) -> None:
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        if self.writes:
            raise BrokenPipeError(32, "Broken pipe")
        self.writes.append(text)
        return len(text)

    def flush(self) -> None:
        if len(self.writes) > 1:
            raise BrokenPipeError(32, "Broken pipe")

    def fileno(self) -> int:
        return self._null.fileno()

    def __enter__(self) -> Reader:
        self._null = Path("/dev/null").open("w")  # the stand-in file descriptor, closed on exit
        return self

    def __exit__(self, *_: object) -> None:
        self._null.close()


@pytest.mark.parametrize("flags", [[], ["--json"], ["--format", "csv"]], ids=["text", "json", "csv"])
def test_the_first_rows_reach_the_reader_before_the_last_are_made(
    generated: Path, monkeypatch: pytest.MonkeyPatch, flags: list[str]
) -> None:
    whole = wholes(generated, [])["json" if "--json" in flags else "csv" if flags else "text"]
    monkeypatch.setattr(history_stream, "PART", 50)
    monkeypatch.setattr(history_stream, "SHORT", 100)  # a history of more moves than this is not made whole
    with Reader() as reader:
        monkeypatch.setattr(sys, "stdout", reader)
        code = main(["history", *flags, "--registry", str(generated)])
    assert code == 0  # the reader went away: not an error (as `head` expects)
    first = reader.writes[0]
    assert whole.startswith(first)
    assert 0 < len(first) < len(whole) / 4  # the header, or the first part of 50 moves


def test_history_piped_into_head_prints_its_first_lines_and_exits_quietly(generated: Path) -> None:
    whole = wholes(generated, [])["text"]
    command = [sys.executable, "-m", "regops", "history", "--registry", str(generated)]
    shown = subprocess.run(
        f"{subprocess.list2cmdline(command)} | head -n 5; exit ${{PIPESTATUS[0]}}",
        shell=True,
        executable="/bin/bash",
        capture_output=True,
        text=True,
        check=False,
    )
    assert (shown.returncode, shown.stderr) == (0, "")
    assert shown.stdout.splitlines() == whole.splitlines()[:5]


def test_a_cell_holding_a_nul_is_written_as_it_was_said(
    said: Tree, capsys: pytest.CaptureFixture[str], streamed: None
) -> None:
    said.replace("models/intent/1.0.0.yaml", "notes: retired}", 'notes: "re\\0tired"}')  # YAML's escape of NUL
    expected = wholes(said.root, ["intent"])
    assert "re\0tired" in expected["text"]
    assert printed(capsys, said.root, ["intent"]) == expected


def test_serving_export_holds_one_model_at_a_time_and_exports_the_same(generated: Path) -> None:
    """Not history, the same cure: ``serving export`` read every version of every model and held them all (1.2 GB
    at 100k); it lets go of each model's folder once read, and exports what the held registry gives."""
    held = Registry.load(generated)
    expected = manifest_text(serving_manifest(held))
    assert len(held._models) == len(held.model_names()) == 4  # holding: every model read and kept
    assert expected.count('"prod": {') == 4
    for form in ("json", "kserve"):
        opened = Registry.load(generated)
        text = api.serving_export(registry=opened, format=form)  # type: ignore[arg-type]
        assert len(opened._models) <= 1  # the last model read, at most
        assert text == expected if form == "json" else text.count("kind: InferenceService") + text.count("# ") == 4
