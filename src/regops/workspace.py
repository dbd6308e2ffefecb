"""The workspace: opening a registry and its storage, writing to it under its lock, and who is acting.

Every verb of :mod:`regops.api` and every flow (:mod:`regops.flows`) starts here:
the registry argument (a path, an already loaded
:class:`~regops.registry.Registry`, or None: found from the current folder as git
finds a repository, :func:`find_registry`), the storage backend regops.yaml names, and
the one answer to "who is acting" — the login a transition records
(:func:`identity`), the workflow's own bot for commits made in GitHub Actions
(:func:`workflow_bot`) and the e-mail GitHub ties to a login (:func:`noreply`).
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from regops import attest, freshness, lifecycle, signing
from regops.adapters import git
from regops.adapters.git import files_at
from regops.adapters.local import LocalStorage
from regops.errors import RegopsError
from regops.finder import RegistryArg, TimeArg, find_registry, open_registry, when
from regops.kinds import LOGIN_PATTERN, Stage
from regops.lifecycle import LifecycleError, Plan
from regops.records import VersionRecord
from regops.registry import MODEL_FILE, Registry
from regops.retention import Published, archive_repo, hub_repo, local_stores
from regops.weights import Storage

if TYPE_CHECKING:
    from regops.adapters.github import GitHub

__all__ = [
    "RegistryArg",
    "TimeArg",
    "files_at_ref",
    "find_registry",
    "identity",
    "noreply",
    "open_registry",
    "open_storage",
    "signed_for",
    "when",
    "workflow_bot",
    "write",
]


def open_storage(registry: Registry) -> Storage:
    """The storage backend regops.yaml names (local paths are relative to the repository holding the registry)."""
    config = registry.config
    cold = config.cold_storage or {}
    hot_path, cold_path = local_stores(registry)
    if hot_path is not None:
        if cold.get("backend") == "hf":
            raise RegopsError(
                "cold_storage on the Hub needs `storage: {backend: hf}`: local hot storage has no Hub repo"
            )
        return LocalStorage(hot_path, cold_path, registry=registry.root)
    # Imported here: huggingface_hub costs ~0.3 s, which a local-storage registry never pays.
    from regops.adapters.hub import HubStorage, HubTarget

    def repo_for(model: str) -> HubTarget | None:
        hub = registry.model(model).raw.get("hub")
        repo = hub_repo(registry, model, hub)
        return HubTarget(repo, (hub or {}).get("private", True)) if repo else None

    def archive(repo: str) -> str | None:
        return archive_repo(registry, repo)

    cold_local = LocalStorage(cold_path, registry=registry.root) if cold_path else None
    return HubStorage(repo_for, archive=archive, cold_local=cold_local)


def signed_for(r: Registry, record: VersionRecord, stage: Stage, *, action: str) -> None:
    """The signature rule (:func:`regops.signing.check`) and the attestations (:func:`regops.attest.check`) for a
    version about to enter ``stage`` (its weights' signature read from the storage regops.yaml names)."""
    storage = open_storage(r)
    signing.check(record, stage=stage, policy=r.config.signing, storage=storage, root=r.root.parent, action=action)
    attest.check(record, config=r.config, move=(record.stage, stage), root=r.root.parent, action=action)


def write(registry: RegistryArg, plan_it: Callable[[Registry], Plan], *, dry_run: bool) -> Plan:
    root = open_registry(registry).root
    if dry_run:
        return plan_it(open_registry(root))  # planning only: no lock, nothing written
    with lifecycle.locked(root):
        plan = plan_it(open_registry(root))  # plan on what is on disk now that the lock is held
        lifecycle.apply(plan)
    return plan


def identity(explicit: str | None = None) -> str:
    """Who is acting, as a GitHub login. In GitHub Actions the event's actor (``GITHUB_ACTOR``), or ``--by`` naming
    the workflow's own bot identity (an App login, ``…[bot]``); elsewhere ``--by``, else a configured login
    (``REGOPS_LOGIN``, or ``git config regops.login``). Never git's ``user.name``, a display name anyone sets:
    the approvals check excludes the person a transition names, so it must be a login.
    """
    actor = os.environ.get("GITHUB_ACTOR") if os.environ.get("GITHUB_ACTIONS") == "true" else None
    if actor and explicit and explicit != actor and not explicit.endswith("[bot]"):
        raise LifecycleError(
            f"in GitHub Actions regops records the event's actor ({actor}) or the workflow's bot; "
            f"--by {explicit} would record someone else"
        )
    found = explicit or actor or os.environ.get("REGOPS_LOGIN") or _git_login()
    if not found:
        raise LifecycleError(
            "who is acting? regops records a GitHub login: pass --by LOGIN, or set it once with "
            "`git config --global regops.login LOGIN` (or REGOPS_LOGIN)"
        )
    if not re.match(LOGIN_PATTERN, found):
        raise LifecycleError(f"{found!r} is not a GitHub login (letters, digits and '-'; an App as name[bot])")
    return found


def _git_login() -> str:
    try:
        return subprocess.run(
            ["git", "config", "regops.login"], capture_output=True, text=True, check=False, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def workflow_bot(by: str | None) -> str | None:
    """``by``; else, inside GitHub Actions, ``github-actions[bot]``: a workflow's commits and checks are its own
    acts (GITHUB_ACTOR is whoever merged, or last edited a schedule); else None."""
    return by or ("github-actions[bot]" if os.environ.get("GITHUB_ACTIONS") == "true" else None)


def noreply(login: str | None, github: GitHub | None = None) -> str | None:
    """The e-mail GitHub ties to ``login`` (see :meth:`GitHub.noreply_email`), asked of ``github`` or of the
    repository the environment names; None without a login, or with no GitHub to ask (a person's own clone:
    ``login@users.noreply.github.com`` then, which GitHub ties only to accounts older than July 2017)."""
    # Imported here: PyGithub costs ~0.2 s, and only a commit made as a login asks GitHub.
    from regops.adapters.github import GitHub, GitHubError

    if login is None or (github is None and not os.environ.get("GITHUB_REPOSITORY")):
        return None
    try:
        return (github or GitHub()).noreply_email(login)
    except GitHubError:
        return None


def files_at_ref(opened: Registry, ref: str) -> dict[str, bytes]:
    """The registry folder's files as git ``ref`` has them (paths relative to the repository), read as git objects."""
    root = opened.root.parent
    return files_at(root, ref, opened.root.relative_to(root).as_posix())


def changed_at_ref(
    opened: Registry,
    ref: str,
    *,
    meanwhile: Callable[[], object] = lambda: None,
    idle: Callable[[], object] = lambda: None,
) -> tuple[set[str], dict[str, bytes]]:
    """What differs in the registry folder between git ``ref`` and the working tree (paths relative to the
    repository; git compares content hashes, so nothing unchanged is read), and those paths' bytes at ``ref``.
    ``idle`` runs first if git is still comparing (work that pays only when the caller would otherwise wait), then
    ``meanwhile``, while git compares (git's stat of every file leaves the caller's core idle)."""
    root = opened.root.parent
    answer = git.changed_since(root, ref, opened.root.relative_to(root).as_posix())
    if answer.busy():
        idle()
    meanwhile()
    changed = answer()
    return changed, (git.files_at(root, ref, *sorted(changed)) if changed else {})


@contextmanager
def registry_at(
    opened: Registry, ref: str, *, models: Collection[str] | None = None, on_demand: bool = False
) -> Iterator[tuple[Registry, dict[str, bytes]]]:
    """The registry as it is at git ``ref`` (read from git into a temporary folder), and its files' bytes.

    With ``models``, a partial registry that reads as the whole one for what a pull request's judgement asks of its
    base: regops.yaml, every model's model.yaml (so every model is there, with its owners and settings) and these
    models' folders whole; every other file is neither read from git nor written. With ``on_demand`` too, every
    file outside ``models/`` is there as well, and another model's folder is read from git and written the first
    time a query lists it (a parent in another model): it reads as the whole registry for every query."""
    root = opened.root.parent
    folder = opened.root.relative_to(root).as_posix()
    files, folders = (
        (git.files_at(root, ref, folder), set())
        if models is None
        else _files_for(root, ref, folder, models, rest=on_demand)
    )
    with tempfile.TemporaryDirectory(prefix="regops-ref-") as tmp:
        for relative in folders:
            (Path(tmp) / relative).mkdir(parents=True, exist_ok=True)
        _write_files(Path(tmp), files)
        (Path(tmp) / folder).mkdir(parents=True, exist_ok=True)
        at = Registry.load(Path(tmp) / folder)
        if models is not None and on_demand:
            at.fill_on_demand(_filler(root, ref, f"{folder}/models/", Path(tmp), set(models)))
        yield at, files


def _write_files(tmp: Path, files: dict[str, bytes]) -> None:
    for relative, data in files.items():
        target = tmp / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def _filler(root: Path, ref: str, prefix: str, tmp: Path, done: set[str]) -> Callable[[str], None]:
    """Writes model ``name``'s folder at ``ref`` into ``tmp`` (once; not the ``done`` ones, written already)."""

    def fill(name: str) -> None:
        if name not in done:
            done.add(name)
            _write_files(tmp, git.files_at(root, ref, f"{prefix}{name}"))

    return fill


def _files_for(
    root: Path, ref: str, folder: str, models: Collection[str], *, rest: bool = False
) -> tuple[dict[str, bytes], set[str]]:
    """regops.yaml, every model.yaml and the ``models``' folders at ``ref`` (:func:`registry_at`), and every model's
    folder (one without a model.yaml is there too, as it is in the whole registry); with ``rest``, every file
    outside ``models/`` too."""
    prefix = f"{folder}/models/"
    listing = git.paths_at(root, ref, folder if rest else f"{folder}/models")
    under = {p: p[len(prefix) :].split("/") for p in listing if p.startswith(prefix)}
    folders = {prefix + parts[0] for parts in under.values() if len(parts) > 1}
    wanted = [p for p in listing if p not in under or under[p][0] in models or under[p][1:] == [MODEL_FILE]]
    return git.files_at(root, ref, f"{folder}/regops.yaml", *wanted), folders


def published_record(opened: Registry, ref: str | None) -> Published | None:
    """The record as published at git ``ref`` (default: where a push from the checkout goes); None outside git."""
    root = opened.root.parent
    name = ref or git.published_ref(root)
    if name is None:
        return None
    if ref is None and git.resolve(root, name) is None:
        return Published.of(name, None)  # nothing committed yet: nothing is published
    # Each model's folder is read from git when Published.of reaches it, not the whole registry at once; a folder
    # that holds exactly its files at the ref is read from the checkout instead (warm: at 100k, ~50 s of parsing less).
    with registry_at(opened, name, models=(), on_demand=True) as (at, files):
        if not files:
            return Published.of(name, None)
        return Published.of(name, at, checkout=opened, same=_as_published(opened, name))


def _as_published(opened: Registry, ref: str) -> set[str]:
    """The models whose folder in the checkout holds exactly the files it holds at ``ref``: git vouches that its
    tracked files are HEAD's tree (``freshness.model_keys``), that tree is the folder's at ``ref``, and the folder
    holds no other file (untracked or ignored). The checkout's ``retention apply`` holds the registry's lock."""
    root, models = opened.root.parent, opened.root / "models"
    prefix = f"{models.relative_to(root).as_posix()}/"
    keys = freshness.model_keys(models, opened.model_names())
    trees = git.trees_at(root, ref, prefix.rstrip("/"))
    candidates = {name for name, key in keys.items() if key is not None and trees.get(name) == key[0]}
    listed: dict[str, set[str]] = {name: set() for name in candidates}
    for path in git.paths_at(root, ref, prefix.rstrip("/")) if candidates else ():
        name, _, rest = path.removeprefix(prefix).partition("/")
        if name in listed:
            listed[name].add(rest)
    return {name for name, files in listed.items() if {p.name for p in (models / name).iterdir()} == files}


def owned_storage(registry: Registry) -> Storage:
    """:func:`open_storage`, refusing (before anything moves) a local store another registry owns."""
    storage = open_storage(registry)
    if isinstance(storage, LocalStorage):
        storage.claim(storage.hot)
    return storage
