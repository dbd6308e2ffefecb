"""What a registry holds, in plain Python: file kinds, stages, SemVer order, problems.

Nothing here imports pydantic or a YAML library, so the read path can use it
without paying for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, NamedTuple

__all__ = [
    "KINDS",
    "LOGIN_PATTERN",
    "STAGES",
    "STEP_KINDS",
    "Change",
    "Kind",
    "Problem",
    "Stage",
    "StepKind",
    "release",
    "version_key",
]

Stage = Literal["candidate", "dev", "staging", "prod", "archived"]
STAGES: Final[tuple[Stage, ...]] = ("candidate", "dev", "staging", "prod", "archived")
# What a step in a model's history was (regops.queries.kind_of decides; `regops history --kind`).
StepKind = Literal["register", "promote", "rollback", "auto", "archive", "canary"]
STEP_KINDS: Final[tuple[StepKind, ...]] = ("register", "promote", "rollback", "auto", "archive", "canary")
# A GitHub login: a user (1-39 letters, digits, '-') or an App's bot account (`<slug>[bot]`).
LOGIN_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}(?:\[bot\])?$"


class Kind(NamedTuple):
    model: str  # the pydantic class in regops.files
    schema: str  # its file in schemas/
    # Keep the data with every default filled in (so readers need no pydantic), not as written.
    normalized: bool = False


KINDS: Final[dict[str, Kind]] = {
    "version": Kind("ModelVersion", "model-version.schema.json"),
    "model": Kind("ModelConfig", "model.schema.json"),
    "dataset": Kind("DatasetVersion", "dataset-version.schema.json"),
    "config": Kind("RegistryConfig", "regops.schema.json", normalized=True),
}


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong in the registry's files: where, which field, what.

    ``line`` and ``col`` are 1-based; 0 when the problem has no position
    (a missing file, a rule about the whole file).
    """

    path: str
    line: int = 0
    col: int = 0
    field: str = ""
    message: str = ""
    # "warning": advice that fails nothing (validate exits 0 on warnings alone); every rule's problem is an "error".
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}:{self.col}" if self.line else self.path
        field = f" {self.field}:" if self.field else ""
        label = " warning:" if self.severity == "warning" else ""
        return f"{where}:{label}{field} {self.message}"


@dataclass(frozen=True, order=True)
class Change:
    """One path a pull request changes, as git records it: ``status`` A (added), M (modified), D (deleted) or T
    (type changed), and the git modes before and after (``100644`` a file, ``100755`` an executable, ``120000`` a
    symlink, ``160000`` a submodule; ``000000`` where there is none)."""

    path: str
    status: str
    old_mode: str = "000000"
    new_mode: str = "100644"


def release(version: str) -> str:
    """A version without build metadata: SemVer gives 1.0.0+a and 1.0.0+b the same precedence."""
    return version.split("+", 1)[0]


def version_key(version: str) -> tuple[int, int, int, tuple[tuple[int, int | str], ...]]:
    """SemVer 2.0 precedence as a sort key (build metadata ignored, as the spec says)."""
    core, _, pre = release(version).partition("-")
    major, minor, patch = (int(part) for part in core.split("."))
    if not pre:
        # A release sorts after all of its pre-releases.
        return (major, minor, patch, ((2, 0),))
    ids = tuple((0, int(p)) if p.isdigit() else (1, p) for p in pre.split("."))
    return (major, minor, patch, ids)
