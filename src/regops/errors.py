"""Every exception regops raises, in one tree.

    RegopsError                      anything regops cannot continue from
    ├── RegistryNotFoundError        no registry at the given path
    ├── InvalidRegistryError         a file a query needs has problems (.problems)
    ├── RefError              a MODEL@VERSION / MODEL@STAGE that does not parse or resolve
    │   ├── ModelNotFoundError
    │   ├── VersionNotFoundError
    │   └── StageEmptyError          nobody held that stage (at that time)
    ├── TimeSpecError                an --at value that is not a time
    ├── LifecycleError               a write the rules refuse (lifecycle.py)
    │   ├── RegistryLockedError      another writer holds the registry's lock
    │   └── ChangedSincePlannedError a file changed between plan and write
    ├── StorageError                 weights cannot be stored or read (weights.py)
    │   ├── HashMismatchError, SourceChangedError, ArtifactsMissingError
    │   └── HubError                 the Hugging Face Hub refused or failed (adapters/hub.py)
    ├── DatasetError                 a dataset version cannot be hashed or recorded (datasets.py)
    ├── CanaryConfigError            a guardrail that cannot be checked as configured (canary.py)
    ├── MetricsError                 the metrics provider cannot answer (adapters/metrics.py)
    ├── GitError                     a git command failed (adapters/git.py)
    ├── InitError                    `regops init` would overwrite a file, or finds no registry to upgrade (scaffold.py)
    └── GitHubError                  GitHub refused or failed (adapters/github.py)

Errors that belong to one concern live in its module, below this root.

Problems in user data (a bad field, an illegal transition) are not exceptions:
they are ``Problem`` values (``regops.files``), collected and reported together.
Exceptions mean "cannot continue", and each message says what to run next.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from regops.kinds import Problem

__all__ = [
    "InvalidRegistryError",
    "ModelNotFoundError",
    "RefError",
    "RegistryNotFoundError",
    "RegopsError",
    "StageEmptyError",
    "TimeSpecError",
    "VersionNotFoundError",
    "did_you_mean",
]


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` when ``name`` looks like a mistyped one of ``known``, else ``""``."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class RegopsError(Exception):
    """Base class of every error regops raises on purpose."""


class RegistryNotFoundError(RegopsError):
    def __init__(self, path: Path, *, searched: bool = False) -> None:
        self.path = path
        where = f"in {path} or any folder above it (up to the top of its git repository)" if searched else f"at {path}"
        super().__init__(
            f"no registry {where}: expected a folder with regops.yaml and models/ "
            "(pass --registry DIR, or run from inside a repository that has registry/)"
        )


class InvalidRegistryError(RegopsError):
    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        first = self.problems[0] if self.problems else None
        where = f": {first}" if first else ""
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(f"the registry has problems{where}{more}; run `regops validate` to see them all")


class RefError(RegopsError):
    def __init__(self, ref: str, message: str) -> None:
        self.ref = ref
        super().__init__(message)


class ModelNotFoundError(RefError):
    def __init__(self, model: str, known: Sequence[str]) -> None:
        self.model = model
        hint = f"known models: {', '.join(known)}" if known else "the registry has no models yet"
        super().__init__(model, f"no model {model!r} in the registry{did_you_mean(model, known)} ({hint})")


class VersionNotFoundError(RefError):
    def __init__(self, model: str, version: str) -> None:
        self.model = model
        self.version = version
        super().__init__(
            f"{model}@{version}",
            f"no version {version} of {model} (list them with `regops history {model}`)",
        )


class StageEmptyError(RefError):
    def __init__(self, model: str, stage: str, when: str | None) -> None:
        self.model = model
        self.stage = stage
        at = f" at {when}" if when else ""
        super().__init__(f"{model}@{stage}", f"no version of {model} was in {stage}{at}")


class TimeSpecError(RegopsError):
    def __init__(self, text: str) -> None:
        self.text = text
        super().__init__(
            f"cannot read {text!r} as a time: use an ISO 8601 date or datetime "
            "(2026-10-01, 2026-10-01T14:30:00Z), 'now', 'today', 'yesterday' or 'N days ago' "
            "(seconds, minutes, hours, days, weeks, months, years)"
        )
