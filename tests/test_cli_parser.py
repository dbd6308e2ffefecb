"""The command line as ``regops`` builds it (each verb's parser made when that verb is parsed) against the parser
built whole: the same help, the same errors, the same parsed arguments, for every verb; and what ``regops`` leaves
to its process's exit."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator

import pytest

from regops import __version__
from regops.cli import main
from regops.cli.common import UsageError
from regops.cli.parser import build_parser


def _paths(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every verb and action (``("canary", "check")``), its parent verbs first."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*path, name)
                yield from _paths(sub, (*path, name))


PATHS = list(_paths(build_parser()))
# One of each for the module, as main() keeps one: parsing leaves a parser as it found it.
PARSERS = {lazy: build_parser(lazy=lazy) for lazy in (True, False)}


def _said(argv: list[str], capsys: pytest.CaptureFixture[str], *, lazy: bool) -> tuple[str, str, str]:
    """What parsing ``argv`` gives: the arguments parsed or how it stopped (exit code, usage error), and the output."""
    try:
        parsed = repr(sorted(vars(PARSERS[lazy].parse_args(argv)).items()))
    except SystemExit as e:
        parsed = f"exit {e.code}"
    except UsageError as e:
        parsed = f"usage error: {e.text}"
    out, err = capsys.readouterr()
    return parsed, out, err


def test_every_verb_is_reached_by_the_walk() -> None:
    assert len(PATHS) > 40 and ("history",) in PATHS and ("canary", "check") in PATHS


@pytest.mark.parametrize("path", PATHS, ids=" ".join)
def test_each_verbs_help_and_errors_are_those_of_the_whole_parser(
    path: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    for tail in (["--help"], ["--no-such-flag"], [], ["--registry"], ["--json", "a", "b", "c", "d"]):
        argv = [*path, *tail]
        assert _said(argv, capsys, lazy=True) == _said(argv, capsys, lazy=False), argv


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["--version"],
        [],
        ["histroy"],
        ["history", "sentiment", "--bots", "--since", "2026-06-01", "--kind", "rollback", "--kind", "auto"],
        ["history", "--stage", "prdo"],
        ["dataset", "register", "imdb", "--version", "v1", "data/", "--dry-run"],
        ["promote", "sentiment@1.0.0", "--to", "prod", "--notes", "n", "--by", "me"],
        ["canary", "plan", "sentiment", "--traffic-per-hour", "12.5"],
        ["pr", "check", "--pr", "7", "--head-sha", "abc"],
        ["retention", "apply", "--at", "2027-01-01"],
    ],
)
def test_command_lines_parse_as_with_the_whole_parser(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert _said(argv, capsys, lazy=True) == _said(argv, capsys, lazy=False)


def test_regops_builds_only_the_verb_it_runs(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser(lazy=True)
    verbs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))

    args = parser.parse_args(["history", "--bots"])

    built = sorted(name for name, verb in verbs.choices.items() if getattr(verb, "real", verb) is not None)
    assert built == ["history"] and args.bots and args.func == "reads:cmd_history"
    assert main(["--help"]) == 0 and "history" in capsys.readouterr().out


@pytest.mark.parametrize(("call", "frozen"), [("run()", True), ("main()", False), ("main(['--version'])", False)])
def test_run_as_the_command_main_leaves_its_objects_to_the_process_exit(call: str, frozen: bool) -> None:
    """``regops`` (run(): main() reading sys.argv) freezes what it made, so the interpreter's collections at exit skip
    it; a program that calls main() keeps its collector as it was."""
    probe = f"import gc, sys; from regops.cli import main, run; sys.argv = ['regops', '--version']; {call}; "
    probe += "print(gc.get_freeze_count())"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[0] == f"regops {__version__}"
    assert (int(done.stdout.splitlines()[-1]) > 1000) is frozen
