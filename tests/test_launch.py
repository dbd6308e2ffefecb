"""The ``regops`` command's entry point (regops.launch): what it sets up before the verb runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

# Run as the ``regops`` command: reports at exit whether the cyclic collector was on during the command.
LAUNCH = """
import atexit, gc, sys
atexit.register(lambda: print("collector on:", gc.isenabled(), file=sys.stderr))
from regops.launch import run
raise SystemExit(run())
"""


def launched(cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", LAUNCH, *argv], cwd=cwd, capture_output=True, text=True, check=False)


@pytest.mark.parametrize(
    ("argv", "collecting"),
    [
        (["status"], False),
        (["history", "--bots", "--json"], False),
        (["validate"], True),
        (["show", "status"], True),  # a model named like a verb: the verb is the first word
        (["--help"], True),
    ],
)
def test_status_and_history_run_without_the_collector_every_other_verb_with_it(
    tmp_path: Path, argv: list[str], collecting: bool
) -> None:
    """``status`` and ``history`` make what lives until they end, and no cycles: the command turns the collector
    off for them (and only them)."""
    done = launched(tmp_path, *argv, "--registry", str(tmp_path / "none"))
    assert done.stderr.splitlines()[-1] == f"collector on: {collecting}"
    if argv[-1] != "--help":
        assert done.returncode != 0  # no registry there: the verb says so, as it did
        assert "none" in done.stderr
