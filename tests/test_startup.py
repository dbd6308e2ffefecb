"""What the read verbs import: the registry, its summaries, the queries and the renderer, and nothing heavier.

A fresh process per command line, as the CLI runs (benchmarks/audit.py times the same four on 10,000 versions).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "registry"

# Third-party packages that cost a read verb its start-up budget, and the rooms of regops that import them.
HEAVY = ("pydantic", "model_signing", "cryptography", "huggingface_hub", "github", "ruamel", "sigstore")
WRITE_ROOMS = ("regops.workspace", "regops.lifecycle", "regops.signing", "regops.attest", "regops.flows")
# The canary's statistics (confidence, statistics): about 0.03 s of a read verb's start-up, used by none of them.
CANARY_ROOMS = ("regops.canary", "regops.confidence", "statistics")

PROBE = """
import contextlib, io, json, sys
from regops.cli import main
with contextlib.redirect_stdout(io.StringIO()) as out:
    code = main(sys.argv[1:])
print(json.dumps({"code": code, "out": out.getvalue(), "modules": sorted(sys.modules)}))
"""


WARM = """
import contextlib, io, json, sys
from regops.cli import main
for argv in json.loads(sys.argv[1]):
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(argv) == 0, argv
"""

READS = [
    (["status", "--at", "2026-09-01"], "support-intent       macro_f1  1.1.0 (0.861)"),
    (["history", "--bots", "--since", "2026-01-01"], "[bot]"),
    (["history", "--kind", "rollback"], "sentiment@1.3.1  archived -> prod  dmitri"),
    (["show", "sentiment@prod", "--at", "2026-09-01"], "sentiment@1.3.1  [prod at 2026-09-01 00:00 UTC]"),
]


@pytest.fixture(scope="module")
def warm_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A parse cache that every read verb below has filled (one process runs them all: a cold run validates the
    files it parses, with pydantic); each test reads a copy of it."""
    cache = tmp_path_factory.mktemp("warm-cache")
    argvs = [[*argv, "--registry", str(EXAMPLE)] for argv, _ in READS]
    env = {**os.environ, "REGOPS_CACHE_DIR": str(cache)}
    subprocess.run([sys.executable, "-c", WARM, json.dumps(argvs)], capture_output=True, check=True, env=env)
    return cache


def loaded(*argv: str, cache: Path) -> tuple[str, list[str]]:
    """Run ``regops ARGV`` in a fresh interpreter with the warm parse ``cache``: what it printed and every module it
    had imported by the end."""
    env = {**os.environ, "REGOPS_CACHE_DIR": str(cache)}
    done = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, check=True, env=env)
    found = json.loads(done.stdout.splitlines()[-1])
    assert found["code"] == 0, done.stderr
    return found["out"], found["modules"]


@pytest.mark.parametrize(("argv", "shown"), READS)
def test_the_read_verbs_import_neither_the_heavy_packages_nor_the_write_rooms(
    argv: list[str], shown: str, warm_cache: Path, tmp_path: Path
) -> None:
    shutil.copytree(warm_cache, tmp_path / "cache")
    out, modules = loaded(*argv, "--registry", str(EXAMPLE), cache=tmp_path / "cache")

    assert shown in out
    assert [m for m in modules if m.split(".")[0] in HEAVY] == []
    assert [m for m in modules if m.startswith(WRITE_ROOMS)] == []
    assert [m for m in modules if m in CANARY_ROOMS] == []


def test_a_write_verb_still_finds_what_the_api_imports_on_first_use() -> None:
    from regops import api
    from regops.flows.register import register
    from regops.flows.stages import promote
    from regops.workspace import open_storage

    assert (api.register, api.promote, api.open_storage) == (register, promote, open_storage)
    with pytest.raises(AttributeError, match="has no attribute 'promotee'"):
        api.promotee  # noqa: B018


OPEN_PROBE = """
import json, sys
from regops.api import open_registry
opened = open_registry(sys.argv[1])
at_open = "pydantic" in sys.modules
print(json.dumps({"at_open": at_open, "bots": opened.config.bots, "after": "pydantic" in sys.modules}))
"""


def test_opening_a_registry_reads_regops_yaml_only_when_it_is_first_needed(tmp_path: Path) -> None:
    """Opening a registry reads nothing: `validate --base` starts git first and builds the schema's pydantic models
    while git says what changed (a full `validate` while its parse workers parse), never before."""
    env = {**os.environ, "REGOPS_CACHE_DIR": str(tmp_path / "cold")}
    done = subprocess.run(
        [sys.executable, "-c", OPEN_PROBE, str(EXAMPLE)], capture_output=True, text=True, check=True, env=env
    )
    found = json.loads(done.stdout.splitlines()[-1])
    assert found == {"at_open": False, "bots": found["bots"], "after": True}
    assert found["bots"]  # regops.yaml read, with its schema, on first use
