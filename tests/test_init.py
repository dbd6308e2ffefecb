"""`regops init` and `regops init --upgrade`: a new registry repository, and the pinned files brought to this version."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from regops import __version__
from regops.cli import main
from regops.scaffold import PIN_HEADER
from tests.conftest import REPO

WORKFLOWS = sorted(path.name for path in (REPO / ".github" / "workflows").glob("*.yml"))
HEADER = PIN_HEADER.format(version=__version__)


def files_of(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def init(tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> Path:
    dest = tmp_path / "acme-models"
    assert main(["init", str(dest), "--org", "acme", *args]) == 0
    capsys.readouterr()
    return dest


def test_init_writes_a_registry_repository_that_validates_clean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = init(tmp_path, capsys)

    assert sorted(files_of(dest)) == sorted(
        [
            ".github/CODEOWNERS",
            ".github/requirements.lock",
            *(f".github/workflows/{name}" for name in WORKFLOWS),
            ".gitignore",
            "README.md",
            "registry/regops.yaml",
            "schemas/dataset-version.schema.json",
            "schemas/model-version.schema.json",
            "schemas/model.schema.json",
            "schemas/regops.schema.json",
        ]
    )
    assert (dest / "registry" / "models").is_dir() and not any((dest / "registry" / "models").iterdir())
    registry = str(dest / "registry")
    assert main(["validate", "--registry", registry]) == 0
    assert main(["codeowners", "--check", "--registry", registry]) == 0
    assert main(["schema", "export", "--check", "--dest", str(dest / "schemas")]) == 0
    config = (dest / "registry" / "regops.yaml").read_text()
    assert "storage: {backend: hf, org: acme}" in config
    assert 'admins: ["@acme/registry-admins"]' in config
    assert "# Add your GitHub App's login" in config  # the defaults come commented
    assert ".regops/" in (dest / ".gitignore").read_text().splitlines()
    assert "## The registry" in (dest / "README.md").read_text()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--hub-org", "acme-ml"], "storage: {backend: hf, org: acme-ml}"),
        (["--storage", "local"], "storage: {backend: local, path: .regops/store}"),
    ],
)
def test_init_storage_choices(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], expected: str
) -> None:
    dest = init(tmp_path, capsys, *args)
    assert expected in (dest / "registry" / "regops.yaml").read_text()
    assert main(["validate", "--registry", str(dest / "registry")]) == 0


def test_init_workflows_are_this_repositorys_own_pinned_to_the_version(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = init(tmp_path, capsys)

    written = sorted(path.name for path in (dest / ".github" / "workflows").iterdir())
    assert written == WORKFLOWS
    for name in WORKFLOWS:
        ours = (REPO / ".github" / "workflows" / name).read_text()
        assert (dest / ".github" / "workflows" / name).read_text() == HEADER + ours, name
    assert (dest / ".github" / "requirements.lock").read_bytes() == (
        REPO / ".github" / "requirements.lock"
    ).read_bytes()


def test_init_refuses_to_overwrite_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dest = tmp_path / "existing"
    (dest / ".github").mkdir(parents=True)
    (dest / "README.md").write_text("# our models\n")
    (dest / ".github" / "CODEOWNERS").write_text("* @acme/platform\n")
    before = files_of(dest)

    assert main(["init", str(dest), "--org", "acme"]) == 1

    err = capsys.readouterr().err
    assert "regops init would overwrite .github/CODEOWNERS, README.md in" in err
    assert "nothing was written" in err and "`regops init --upgrade`" in err
    assert files_of(dest) == before
    assert sorted(p.name for p in dest.iterdir()) == [".github", "README.md"]


def test_init_without_org_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", str(tmp_path / "x")]) == 2
    assert "init needs --org ORG" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_upgrade_rewrites_only_workflows_lock_and_schemas_showing_the_diff_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = init(tmp_path, capsys)
    stale = dest / ".github" / "workflows" / "registry-check.yml"
    pinned = stale.read_text()
    stale.write_text(pinned.replace(HEADER, "# Pinned to regops 0.0.9 by `regops init`.\n") + "# local edit\n")
    (dest / "schemas" / "model.schema.json").unlink()
    (dest / "registry" / "regops.yaml").write_text((dest / "registry" / "regops.yaml").read_text() + "# ours\n")
    (dest / "registry" / "models" / "sentiment").mkdir()
    (dest / "registry" / "models" / "sentiment" / "model.yaml").write_text("name: sentiment\n")
    (dest / ".github" / "CODEOWNERS").write_text("# ours\n")
    (dest / "README.md").write_text("# ours\n")
    before = files_of(dest)

    assert main(["init", str(dest), "--upgrade", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert files_of(dest) == before
    assert "--- a/.github/workflows/registry-check.yml\n+++ b/.github/workflows/registry-check.yml\n" in out
    assert "-# local edit\n" in out and f"+{HEADER}" in out
    assert "+++ b/schemas/model.schema.json" in out
    assert out.endswith("would rewrite 2 files for regops " + __version__ + "\n")

    assert main(["init", str(dest), "--upgrade"]) == 0
    out = capsys.readouterr().out
    assert out.index("-# local edit") < out.index("rewrote 2 files")
    after = files_of(dest)
    assert stale.read_text() == pinned
    assert (dest / "schemas" / "model.schema.json").is_file()
    untouched = {name: data for name, data in before.items() if not name.startswith((".github/workflows", "schemas/"))}
    assert {name: after[name] for name in untouched} == untouched  # registry/, CODEOWNERS, README as they were

    assert main(["init", str(dest), "--upgrade"]) == 0
    assert capsys.readouterr().out == "up to date\n"


def test_upgrade_outside_a_registry_repository_refuses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.txt").write_text("x")
    assert main(["init", str(tmp_path), "--upgrade"]) == 1
    assert f"{tmp_path} has no registry/regops.yaml: run `regops init`" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_the_wheel_ships_the_pinned_workflows(tmp_path: Path) -> None:
    """`pip install .` (what the workflows run) must carry the files init writes, not only the source tree.

    The wheel is built as pip builds it: through the PEP 517 hook of the backend pyproject.toml names, in the
    source tree (pip's own start-up and process hops, ~8 s here, are not what is tested).
    """
    backend = tomllib.loads((REPO / "pyproject.toml").read_text())["build-system"]["build-backend"]
    build = f"import importlib, sys; importlib.import_module({backend!r}).build_wheel(sys.argv[1])"
    subprocess.run([sys.executable, "-c", build, str(tmp_path)], cwd=REPO, check=True, capture_output=True)
    (wheel,) = tmp_path.glob("regops-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        for name in WORKFLOWS:
            shipped = archive.read(f"regops/templates/github/workflows/{name}")
            assert shipped == (REPO / ".github" / "workflows" / name).read_bytes(), name
        assert (
            archive.read("regops/templates/github/requirements.lock")
            == (REPO / ".github" / "requirements.lock").read_bytes()
        )
        assert {"regops/templates/regops.yaml.tmpl", "regops/templates/README.md.tmpl"} <= set(archive.namelist())
