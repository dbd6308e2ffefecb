"""The layering (README "Architecture"), as import-linter checks it: the contracts in pyproject.toml's
[tool.importlinter] hold for the source, and each one breaks, naming the import, when a module crosses it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
# The contracts' names, as pyproject.toml's [tool.importlinter] gives them.
LAYERS = "Imports flow cli -> api -> flows -> workspace/adapters -> domain -> store/weights -> files/kinds"
ADAPTERS = "Only workspace and flows import adapters (and the adapters each other)"
NO_IO = "No domain module runs a subprocess, opens a socket or speaks HTTP (the adapters do)"
STORE_FRONT = "store does not import the package front (regops/__init__.py imports api, which imports store)"


def lint_imports(src: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` on the package in ``src`` with this repository's contracts; import-linter's own output."""
    env = {**os.environ, "PYTHONPATH": str(src), "COLUMNS": "200"}
    command = [str(LINT_IMPORTS), "--config", str(ROOT / "pyproject.toml"), "--cache-dir", str(cache)]
    return subprocess.run(command, cwd=src, env=env, capture_output=True, text=True, check=False)


def test_the_source_keeps_every_contract(tmp_path: Path) -> None:
    result = lint_imports(ROOT / "src", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 4 kept, 0 broken." in result.stdout


# One import per contract, each crossing it directly: (module, the line added, the contract, what it must name).
CROSSINGS = [
    ("policy.py", "from regops.adapters import git", ADAPTERS, "regops.policy -> regops.adapters.git"),
    ("store.py", "import subprocess", NO_IO, "regops.store -> subprocess"),
    ("signing.py", "import http.client", NO_IO, "regops.signing -> http"),
    ("store.py", "import regops", STORE_FRONT, "regops.store -> regops"),
    ("policy.py", "from regops import api", LAYERS, "regops.policy -> regops.api"),
    ("files.py", "from regops import registry", LAYERS, "regops.files -> regops.registry"),
]


def test_a_module_crossing_a_contract_breaks_it(tmp_path: Path) -> None:
    """Every contract breaks and names the import that crossed it; a module in no layer breaks the layers."""
    src = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "regops", src / "regops", ignore=shutil.ignore_patterns("__pycache__"))
    for module, line, _contract, _named in CROSSINGS:
        with (src / "regops" / module).open("a", encoding="utf-8") as handle:
            handle.write(f"\n{line}\n")
    (src / "regops" / "stray.py").write_text('"""A module no layer holds."""\n', encoding="utf-8")
    result = lint_imports(src, tmp_path / "cache")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Contracts: 0 kept, 4 broken." in result.stdout
    broken = sections(result.stdout)
    assert sorted(broken) == sorted({ADAPTERS, NO_IO, STORE_FRONT, LAYERS})
    for _module, _line, contract, named in CROSSINGS:
        assert named in broken[contract], (named, contract)
    assert "- regops.stray" in broken[LAYERS]


def sections(output: str) -> dict[str, str]:
    """The "Broken contracts" part of import-linter's output, by contract name (each a title underlined by dashes)."""
    part = output[output.index("Broken contracts") :].split("\n", 2)[2]
    pieces = re.split(r"^(.+)\n-{3,}$", part, flags=re.MULTILINE)
    return {pieces[i].strip(): pieces[i + 1] for i in range(1, len(pieces) - 1, 2)}
