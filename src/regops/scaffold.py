"""A new registry repository (``regops init``) and this regops version's pinned files (``regops init --upgrade``).

The workflows and their lock are regops' own ``.github/`` (shipped in the package as ``templates/github``, a link to
it in the source tree): one source of truth, so a registry runs exactly the workflows this version was tested with.
Each workflow ``init`` writes starts with :data:`PIN_HEADER`, naming the version; ``regops doctor`` compares a
repository's files with :func:`pinned_files`.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template
from typing import Final, Literal

from regops import schema, store
from regops._version import __version__
from regops.codeowners import CODEOWNERS, CODEOWNERS_HEADER
from regops.errors import RegopsError
from regops.kinds import KINDS

__all__ = ["PIN_HEADER", "InitError", "Upgrade", "init", "new_files", "pinned_files", "upgrade"]

WORKFLOWS: Final = ".github/workflows"
LOCK: Final = ".github/requirements.lock"
PIN_HEADER: Final = "# Pinned to regops {version} by `regops init`; `regops init --upgrade` rewrites it.\n"
Storage = Literal["hf", "local"]


class InitError(RegopsError):
    """``regops init`` would overwrite files, or ``--upgrade`` finds no registry repository."""


@dataclass(frozen=True)
class Upgrade:
    """What ``init --upgrade`` changes: the unified diff of each file it rewrites (relative path → diff)."""

    diffs: dict[str, str]
    written: bool


def _template(name: str) -> str:
    return (resources.files("regops") / "templates" / name).read_text(encoding="utf-8")


def pinned_files() -> dict[str, str]:
    """The files this regops version pins, by path from the repository root: each workflow (its pin header, then
    regops' own workflow byte for byte), the lock the workflows install from, and the schemas."""
    github = resources.files("regops") / "templates" / "github"
    header = PIN_HEADER.format(version=__version__)
    files = {
        f"{WORKFLOWS}/{item.name}": header + item.read_text(encoding="utf-8")
        for item in sorted((github / "workflows").iterdir(), key=lambda item: item.name)
        if item.name.endswith(".yml")
    }
    files[LOCK] = (github / "requirements.lock").read_text(encoding="utf-8")
    files |= {f"schemas/{meta.schema}": schema.render(kind) for kind, meta in KINDS.items()}
    return files


def _storage(storage: Storage, hub_org: str) -> str:
    if storage == "hf":
        return (
            f"storage: {{backend: hf, org: {hub_org}}}        # {hub_org}/<model> on the Hugging Face Hub\n"
            f"cold_storage: {{backend: hf, org: {hub_org}}}   # {hub_org}/<model>-archive"
        )
    return "storage: {backend: local, path: .regops/store}\ncold_storage: {backend: local, path: .regops/cold}"


def new_files(*, org: str, hub_org: str | None = None, storage: Storage = "hf") -> dict[str, str]:
    """Every file of a new registry repository, by path from its root."""
    values = {"org": org, "version": __version__, "storage": _storage(storage, hub_org or org)}
    return {
        "registry/regops.yaml": Template(_template("regops.yaml.tmpl")).substitute(values),
        **pinned_files(),
        CODEOWNERS: CODEOWNERS_HEADER,
        ".gitignore": _template("gitignore.tmpl"),
        "README.md": Template(_template("README.md.tmpl")).substitute(values),
    }


def init(root: Path, *, org: str, hub_org: str | None = None, storage: Storage = "hf") -> list[Path]:
    """Write a new registry repository into ``root`` (created if needed) and an empty ``registry/models/``; the
    files written. Refuses, writing nothing, when any of them exists."""
    files = new_files(org=org, hub_org=hub_org, storage=storage)
    taken = sorted(name for name in [*files, "registry/models"] if (root / name).exists() or (root / name).is_symlink())
    if taken:
        raise InitError(
            f"regops init would overwrite {', '.join(taken)} in {root}: nothing was written; run it in a new "
            "folder, or `regops init --upgrade` to bring an existing registry's workflows and schemas to this version"
        )
    (root / "registry" / "models").mkdir(parents=True)
    return [_write(root / name, text) for name, text in files.items()]


def upgrade(root: Path, *, dry_run: bool = False) -> Upgrade:
    """Rewrite the workflows, their lock and the schemas in ``root`` as this regops version pins them, never
    anything else; the diffs (computed before anything is written). ``dry_run``: only the diffs."""
    if not (root / "registry" / "regops.yaml").is_file():
        raise InitError(f"{root} has no registry/regops.yaml: run `regops init` to create a registry repository")
    pinned = pinned_files()
    diffs: dict[str, str] = {}
    for name, text in pinned.items():
        path = root / name
        current = path.read_text(encoding="utf-8") if path.is_file() else ""
        if current != text:
            diffs[name] = _diff(name, current, text)
    if not dry_run:
        for name in diffs:
            _write(root / name, pinned[name])
    return Upgrade(diffs, written=not dry_run and bool(diffs))


def _diff(name: str, before: str, after: str) -> str:
    lines = difflib.unified_diff(
        before.splitlines(keepends=True), after.splitlines(keepends=True), f"a/{name}", f"b/{name}"
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    store.write_atomic(path, text)
    return path
