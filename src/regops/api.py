"""The library facade: one function per CLI verb, keyword arguments, no printing.

Each function opens the registry (a path, or an already loaded
:class:`~regops.registry.Registry`) and returns values; ``cli.py`` renders them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from regops.errors import RegopsError
from regops.kinds import Problem, Stage
from regops.timespec import parse_time

if TYPE_CHECKING:
    from regops.adapters.github import GitHub, Pull
    from regops.adapters.metrics import MetricsSource
    from regops.approvals import Move, Outcome
    from regops.canary import Checked, MetricResult, Rule, Settings
    from regops.datasets import TreeHash
    from regops.lifecycle import Bump, Plan, RegisterResult
    from regops.registry import (
        HistoryEntry,
        LineageNode,
        ModelEntry,
        ModelStatus,
        Registry,
        Resolution,
        VersionDiff,
        VersionRecord,
    )
    from regops.retention import Decision, Published
    from regops.storage import Storage
    from regops.sync import SyncResult

__all__ = [
    "auto_promote",
    "canary_check",
    "canary_pr",
    "codeowners",
    "commit",
    "dataset_hash",
    "diff",
    "download",
    "drift",
    "export_schemas",
    "history",
    "lineage",
    "merge_group_pull",
    "open_registry",
    "open_storage",
    "pr_check",
    "pr_check_group",
    "pr_check_head",
    "pr_report",
    "pr_report_head",
    "pr_stamp",
    "promote",
    "protected_branches",
    "record_canary",
    "register",
    "register_dataset",
    "resolve",
    "restore",
    "retention_apply",
    "retention_plan",
    "rollback",
    "serving_export",
    "show",
    "show_model",
    "status",
    "sync",
    "validate",
]

if TYPE_CHECKING:
    RegistryArg = str | Path | Registry
TimeArg = str | datetime | None


def open_registry(registry: RegistryArg = "registry") -> Registry:
    # Imported here: `regops dataset hash` and the like never need the registry's code.
    from regops.registry import Registry

    return registry if isinstance(registry, Registry) else Registry.load(registry)


def _moment(at: TimeArg) -> datetime | None:
    return parse_time(at) if isinstance(at, str) else at


def validate(
    *, registry: RegistryArg = "registry", now: datetime | None = None, base: str | None = None
) -> list[Problem]:
    """Every problem in the registry, sorted by file, line and column; empty when clean.

    With ``base`` (a git ref, e.g. a pull request's base branch) also what the
    change does to the records there (:func:`regops.policy.against_base`).
    """
    from regops import policy

    opened = open_registry(registry)
    problems = policy.check(opened, now=now)
    if base is not None:
        from regops.adapters.git import files_at

        root = opened.root.parent
        before = files_at(root, base, opened.root.relative_to(root).as_posix())
        problems = sorted(set(problems) | set(policy.against_base(opened, before, ref=base)))
    return problems


def status(*, registry: RegistryArg = "registry") -> list[ModelStatus]:
    return open_registry(registry).status()


def show(ref: str, *, registry: RegistryArg = "registry", at: TimeArg = None) -> VersionRecord:
    """One version: ``MODEL@VERSION``, or ``MODEL@STAGE`` now or ``at``."""
    return open_registry(registry).get(ref, at=_moment(at))


def show_model(model: str, *, registry: RegistryArg = "registry") -> ModelEntry:
    opened = open_registry(registry)
    opened.model(model)
    return opened.model_entry(model)


def history(model: str, *, registry: RegistryArg = "registry") -> list[HistoryEntry]:
    from regops.registry import parse_ref

    return open_registry(registry).history(parse_ref(model).model)


def resolve(ref: str, *, registry: RegistryArg = "registry", at: TimeArg = None) -> Resolution:
    """The version that held ``MODEL@STAGE`` at ``at`` (default: now), from the transitions."""
    return open_registry(registry).resolve(ref, at=_moment(at))


def lineage(ref: str, *, registry: RegistryArg = "registry", at: TimeArg = None) -> list[LineageNode]:
    return open_registry(registry).lineage(ref, at=_moment(at))


def diff(a: str, b: str, *, registry: RegistryArg = "registry", at: TimeArg = None) -> VersionDiff:
    """How ``b`` differs from ``a``; ``at`` applies to ``a`` (e.g. prod three weeks ago vs prod now)."""
    return open_registry(registry).diff(a, b, at=_moment(at))


def codeowners(*, registry: RegistryArg = "registry", check: bool = False) -> tuple[Path, bool]:
    """Write ``.github/CODEOWNERS`` from the model owners; (its path, whether it changed). ``check``: write nothing."""
    from regops import policy, store

    path, text = policy.codeowners_file(open_registry(registry))
    current = path.read_text(encoding="utf-8") if path.is_file() else None
    if current != text and not check:
        path.parent.mkdir(parents=True, exist_ok=True)
        store.write_atomic(path, text)
    return path, current != text


def export_schemas(dest: str | Path = "schemas") -> list[Path]:
    """Write ``schemas/*.json`` from the pydantic models; returns the files that changed."""
    from regops import schema

    return schema.export(Path(dest))


# --- writes ------------------------------------------------------------------------------------


def open_storage(registry: Registry) -> Storage:
    """The storage backend regops.yaml names (local paths are relative to the repository holding the registry)."""
    from regops.adapters.local import LocalStorage
    from regops.retention import archive_repo, hub_repo, local_stores

    config = registry.config
    cold = config.cold_storage or {}
    hot_path, cold_path = local_stores(registry)
    if hot_path is not None:
        if cold.get("backend") == "hf":
            raise RegopsError(
                "cold_storage on the Hub needs `storage: {backend: hf}`: local hot storage has no Hub repo"
            )
        return LocalStorage(hot_path, cold_path, registry=registry.root)
    from regops.adapters.hub import HubStorage, HubTarget

    def repo_for(model: str) -> HubTarget | None:
        hub = registry.model(model).raw.get("hub")
        repo = hub_repo(registry, model, hub)
        return HubTarget(repo, (hub or {}).get("private", True)) if repo else None

    def archive(repo: str) -> str | None:
        return archive_repo(registry, repo)

    cold_local = LocalStorage(cold_path, registry=registry.root) if cold_path else None
    return HubStorage(repo_for, archive=archive, cold_local=cold_local)


def _write(registry: RegistryArg, plan_it: Callable[[Registry], Plan], *, dry_run: bool) -> Plan:
    from regops import lifecycle

    root = open_registry(registry).root
    if dry_run:
        return plan_it(open_registry(root))  # planning only: no lock, nothing written
    with lifecycle.locked(root):
        plan = plan_it(open_registry(root))  # plan on what is on disk now that the lock is held
        lifecycle.apply(plan)
    return plan


def promote(
    ref: str,
    *,
    registry: RegistryArg = "registry",
    to: Stage,
    notes: str,
    by: str | None = None,
    dry_run: bool = False,
    pr: bool = False,
) -> Plan:
    """Move a version to ``to`` (archiving the previous holder); ``dry_run`` only plans; ``pr`` opens a pull
    request with the change instead of leaving it in the working tree (:func:`_as_pull_request`)."""
    from regops import lifecycle

    who = lifecycle.identity(by)

    def plan_it(r: Registry) -> Plan:
        return lifecycle.promote(r, ref, to=to, notes=notes, by=who)

    if pr and not dry_run:
        model, _, version = ref.partition("@")
        return _as_pull_request(
            registry,
            plan_it,
            title=f"Promote {ref} to {to}",
            branch=f"regops/promote-{model}-{version}-{to}",
            labels=["promotion", f"stage:{to}", f"model:{model}"],
            model=model,
            by=who,
        )
    return _write(registry, plan_it, dry_run=dry_run)


def rollback(
    model: str,
    *,
    registry: RegistryArg = "registry",
    to: str | None = None,
    at: TimeArg = None,
    notes: str,
    by: str | None = None,
    dry_run: bool = False,
    pr: bool = False,
) -> Plan:
    """Bring a former prod version back to prod, archiving the current one (``pr``: as a pull request)."""
    from regops import lifecycle

    who, moment = lifecycle.identity(by), _moment(at)

    def plan_it(r: Registry) -> Plan:
        return lifecycle.rollback(r, model, to=to, at=moment, notes=notes, by=who, storage=open_storage(r))

    if pr and not dry_run:
        return _as_pull_request(
            registry,
            plan_it,
            title=f"Roll {model} back to {to or f'prod at {at}'}",
            branch=f"regops/rollback-{model}-{to or 'at'}",
            labels=["promotion", "rollback", "stage:prod", f"model:{model}"],
            model=model,
            by=who,
        )
    return _write(registry, plan_it, dry_run=dry_run)


def auto_promote(
    model: str | None = None, *, registry: RegistryArg = "registry", by: str | None = None, dry_run: bool = False
) -> Plan:
    """Move each model's best candidate that beats dev into dev; idempotent."""
    from regops import lifecycle

    who = lifecycle.identity(by)
    return _write(registry, lambda r: lifecycle.auto_promote(r, model, by=who), dry_run=dry_run)


def record_canary(
    ref: str,
    *,
    registry: RegistryArg = "registry",
    result: Literal["passed", "failed"],
    summary: str | None = None,
    dry_run: bool = False,
) -> Plan:
    from regops import lifecycle

    return _write(registry, lambda r: lifecycle.record_canary(r, ref, result=result, summary=summary), dry_run=dry_run)


def register(
    model: str,
    *,
    registry: RegistryArg = "registry",
    artifacts: str | Path,
    evals: str | Path,
    params: str | Path,
    dataset: str,
    eval_dataset: str | None = None,
    parent: str | None = None,
    version: str | None = None,
    bump: Bump | None = None,
    by: str | None = None,
    run_url: str | None = None,
    progress: Callable[[int], None] | None = None,
    pr: bool = False,
    confine: str | Path | None = None,
) -> RegisterResult:
    """Hash and store a version's files, then record it as a candidate (``pr``: in a pull request, not the checkout;
    ``confine``: refuse artifacts, evals or params outside that folder or in a ``.git`` folder)."""
    import dataclasses

    from regops import lifecycle, store

    if confine is not None:
        lifecycle.confine({"artifacts": artifacts, "evals": evals, "params": params}, confine)
    scores, hyperparameters = store.read_mapping(Path(evals)), store.read_mapping(Path(params))
    opened = open_registry(registry)
    who = lifecycle.identity(by)

    def change() -> RegisterResult:
        with lifecycle.locked(opened.root):
            fresh = open_registry(opened.root)
            return lifecycle.register(
                fresh,
                model,
                artifacts=Path(artifacts),
                evals=scores,
                params=hyperparameters,
                dataset=dataset,
                eval_dataset=eval_dataset,
                parent=parent,
                version=version,
                bump=bump,
                by=who,
                run_url=run_url,
                storage=open_storage(fresh),
                progress=progress,
            )

    if not pr:
        return change()
    lifecycle.artifact_files(Path(artifacts))  # refused before a branch exists
    result, pull = _on_branch(
        opened,
        change,
        title=f"Register {model}",
        branch=f"regops/register-{model}-{version or bump or 'next'}",
        labels=["registration", f"model:{model}"],
        model=model,
        by=who,
        rename=True,
    )
    return dataclasses.replace(result, pull=pull.url)


def download(
    ref: str,
    *,
    registry: RegistryArg = "registry",
    dest: str | Path,
    at: TimeArg = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[VersionRecord, list[Path]]:
    """Fetch a version's files (a version, or a stage now or ``at``) into ``dest``, verified."""
    from regops.storage import Artifact
    from regops.storage import download as fetch

    opened = open_registry(registry)
    record = opened.get(ref, at=_moment(at))
    location = record.storage
    if location.get("tier") == "cold":
        raise RegopsError(f"{record.ref}'s weights are in cold storage; run `regops restore {record.ref}` first")
    artifacts = [Artifact.from_record(f) for f in record.raw["artifacts"]["files"]]
    return record, fetch(open_storage(opened), artifacts, location, Path(dest), ref=record.ref, progress=progress)


def restore(ref: str, *, registry: RegistryArg = "registry", dry_run: bool = False) -> Plan:
    """Copy a version's weights back from cold storage to hot, verified, and record it."""
    from regops import lifecycle
    from regops.storage import Artifact

    def plan_it(r: Registry) -> Plan:
        record = r.get(ref)
        if record.storage.get("tier") != "cold":
            raise RegopsError(f"{record.ref}'s weights are already hot; nothing to restore")
        artifacts = [Artifact.from_record(f) for f in record.raw["artifacts"]["files"]]
        if dry_run:
            location = {**record.storage, "tier": "hot"}
        else:
            location = open_storage(r).restore(artifacts, record.storage, model=record.model, version=record.version)
        return lifecycle.set_storage(record, location)

    return _write(registry, plan_it, dry_run=dry_run)


# --- the outside world: sync, serving, retention ------------------------------------------------


def sync(*, registry: RegistryArg = "registry", check: bool = False, model: str | None = None) -> SyncResult:
    """Make Hub tags, stage branches, model cards and serving.json match the registry (``check``: only compare)."""
    from regops import report
    from regops import sync as syncing
    from regops.adapters.hub import HubStorage

    opened = open_registry(registry)
    if model is not None:
        opened.model(model)  # an unknown model is an error, not "nothing to do"
    storage = open_storage(opened)
    if isinstance(storage, HubStorage):
        hub_storage = storage

        def repo_for(name: str) -> str | None:
            target = hub_storage.repos(name)
            return target.repo if target else None

        differences = syncing.compare(opened, hub_storage.hub, repo_for=repo_for, card=report.model_card, model=model)
    else:
        differences = syncing.compare(opened, None, repo_for=lambda _: None, card=report.model_card, model=model)
    return syncing.sync(differences, check=check)


def serving_export(*, registry: RegistryArg = "registry", format: Literal["json", "kserve"] = "json") -> str:
    """What serves traffic: per model, the prod version and the staging canary, with where their weights are.

    ``json``: the serving manifest (``serving.json``); ``kserve``: one KServe
    ``InferenceService`` per model, for a GitOps deployer to apply.
    """
    from regops.sync import kserve_text, serving_text

    opened = open_registry(registry)
    return kserve_text(opened) if format == "kserve" else serving_text(opened)


def retention_plan(
    *, registry: RegistryArg = "registry", model: str | None = None, now: TimeArg = None, published: str | None = None
) -> list[Decision]:
    """Which versions' weights stay hot and which move to cold storage, and why; changes nothing.

    ``published``: the git ref whose record counts (default: where a push from the checkout goes)."""
    opened = open_registry(registry)
    if model is not None:
        opened.model(model)
    record = _published(opened, published)
    return _retention_decisions(opened, open_storage(opened), record, now=now, model=model)


def retention_apply(
    *,
    registry: RegistryArg = "registry",
    model: str | None = None,
    now: TimeArg = None,
    published: str | None = None,
    on_move: Callable[[Decision, str], None] | None = None,
) -> list[Decision]:
    """Move what :func:`retention_plan` says to cold storage: copy, verify, record; remove a hot copy only once
    the git ref ``published`` (default: where a push from the checkout goes) records the move.

    So a run copies and records, the record is pushed, and the next run removes the hot copies: an
    interruption at any point leaves every version retrievable from what the published record says. A
    registry outside git has nothing to publish to: its files are the record, and one run does it all.
    Refused, with nothing moved, while the hot and cold locations overlap.
    """
    from dataclasses import replace

    from regops import lifecycle, retention
    from regops.adapters.local import LocalStorage

    root = open_registry(registry).root
    now = _moment(now)  # a bad time is a usage error before anything is claimed or moved
    with lifecycle.locked(root):
        opened = open_registry(root)
        _refuse_shared_storage(opened)
        storage = open_storage(opened)
        if isinstance(storage, LocalStorage):
            storage.claim(storage.hot)  # a store another registry owns is refused before anything moves
        record = _published(opened, published)
        decisions = _retention_decisions(opened, storage, record, now=now, model=model)
        moving = [d for d in decisions if d.action == "move"]
        keep = retention.hot_hashes(opened, [d.ref for d in moving]) | (record.hot if record else frozenset())
        for decision in moving:
            location = _move_to_cold(opened, storage, decision)
            if on_move is not None:
                on_move(decision, storage.describe(location))
        recorded = open_registry(root) if moving else opened
        for decision in [d for d in decisions if d.action == "finish" or (d.action == "move" and record is None)]:
            location = _release_hot(recorded, storage, decision, keep=keep)
            if on_move is not None and decision.action == "finish":
                on_move(decision, storage.describe(location))
    if record is None:
        return decisions
    later = retention.unpublished(record.ref)
    return [replace(d, reason=f"{d.reason}; {later}") if d.action == "move" else d for d in decisions]


def _published(opened: Registry, ref: str | None) -> Published | None:
    """The record as published at git ``ref`` (default: where a push goes); None outside git."""
    from regops.adapters import git
    from regops.retention import Published

    root = opened.root.parent
    name = ref or git.published_ref(root)
    if name is None:
        return None
    if ref is None and git.resolve(root, name) is None:
        return Published.of(name, None)  # nothing committed yet: nothing is published
    with _registry_at(opened, name) as (at, files):
        return Published.of(name, at if files else None)


def _retention_decisions(
    opened: Registry, storage: Storage, published: Published | None, *, now: TimeArg, model: str | None
) -> list[Decision]:
    from regops import retention

    keep = retention.hot_hashes(opened, ()) | (published.hot if published else frozenset())
    held = retention.leftover(storage, keep)
    moment = _moment(now) or datetime.now(UTC)
    return retention.plan(opened, now=moment, model=model, held=held, published=published)


def _refuse_shared_storage(opened: Registry) -> None:
    """Retention deletes only what is its own: no Hub repo or local store shared between two roles."""
    from regops import policy

    moment = datetime.now(UTC)
    problems = [*policy.hub_repos(opened, moment), *policy.store_paths(opened, moment)]
    if problems:
        listed = "; ".join(f"{p.path}: {p.field + ': ' if p.field else ''}{p.message}" for p in problems)
        raise RegopsError(f"retention refused, nothing moved: {listed} (`regops validate` lists them)")


def _move_to_cold(opened: Registry, storage: Storage, decision: Decision) -> dict[str, Any]:
    """Copy a version's weights to cold storage, verify the copy, and record it in the version file."""
    from regops import lifecycle, retention

    record = opened.version(decision.model, decision.version)
    artifacts = retention.artifacts_of(record)
    location = storage.to_cold(artifacts, record.storage, model=record.model, version=record.version)
    lifecycle.apply(lifecycle.set_storage(record, location))
    return location


def _release_hot(opened: Registry, storage: Storage, decision: Decision, *, keep: set[str]) -> dict[str, Any]:
    """Remove a cold version's hot copy, once its cold copy is there still (objects in ``keep`` stay)."""
    from regops import retention

    record = opened.version(decision.model, decision.version)
    artifacts = retention.artifacts_of(record)
    if lost := storage.missing(artifacts, record.storage):
        raise RegopsError(
            f"{record.ref}: {', '.join(a.path for a in lost)} not in {storage.describe(record.storage)}, where its "
            "version file says its weights are; its hot copy is kept (nothing removed): find out what removed "
            "them before running retention again"
        )
    storage.release(artifacts, model=record.model, keep=keep)
    return record.storage


# --- pull requests ------------------------------------------------------------------------------


@contextmanager
def _registry_at(opened: Registry, ref: str) -> Iterator[tuple[Registry, dict[str, bytes]]]:
    """The registry as it is at git ``ref`` (read from git into a temporary folder), and its files' bytes."""
    import tempfile

    from regops.adapters.git import files_at
    from regops.registry import Registry

    root = opened.root.parent
    folder = opened.root.relative_to(root).as_posix()
    files = files_at(root, ref, folder)
    with tempfile.TemporaryDirectory(prefix="regops-ref-") as tmp:
        for relative, data in files.items():
            target = Path(tmp) / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        (Path(tmp) / folder).mkdir(parents=True, exist_ok=True)
        yield Registry.load(Path(tmp) / folder), files


def _expander(github: GitHub) -> Callable[[Sequence[str]], set[str]]:
    """Approvers as a need lists them (logins, ``@org/team``s) -> logins, each team asked GitHub once."""
    teams: dict[str, set[str]] = {}

    def expand(approvers: Sequence[str]) -> set[str]:
        people: set[str] = set()
        for who in approvers:
            if "/" in who:
                people |= teams.setdefault(who, github.team_members(who))
            else:
                people.add(who.lstrip("@"))
        return people

    return expand


def pr_moves(head: Registry, base_files: dict[str, bytes], *, recorded: dict[str, bytes] | None = None) -> list[Move]:
    """The stage changes a pull request makes: transitions its head adds to the base's records.

    A move's canary result is the one recorded on the base branch (``recorded``:
    its files as they are now, default ``base_files``), never the pull request's
    own: a PR cannot pass its own canary, and a canary that failed on main after
    the PR was opened fails it.
    """
    from regops import policy, store
    from regops.approvals import Move

    root = head.root.parent
    on_base = base_files if recorded is None else recorded

    def canary(record: VersionRecord) -> str | None:
        relative = record.path.relative_to(root).as_posix()
        data = store.parse_bytes(on_base[relative], relative).data if relative in on_base else None
        return ((data or {}).get("canary") or {}).get("result")

    return [
        Move(record.model, record.version, step["from"], step["to"], canary(record), step.get("by"))  # type: ignore[arg-type]
        for record, step in policy.added_transitions(head, base_files)
    ]


def _as_pull_request(
    registry: RegistryArg,
    plan_it: Callable[[Registry], Plan],
    *,
    title: str,
    branch: str,
    labels: list[str],
    model: str,
    by: str,
    github: GitHub | None = None,
) -> Plan:
    """A write (promote, rollback) made as a pull request: see :func:`_on_branch`."""
    opened = open_registry(registry)
    plan, pull = _on_branch(
        opened,
        lambda: _write(opened.root, plan_it, dry_run=False),
        title=title,
        branch=branch,
        labels=labels,
        model=model,
        by=by,
        github=github,
        rename=True,
    )
    plan.notes.append(f"opened pull request #{pull.number}: {pull.url}")
    return plan


T = TypeVar("T")


def _on_branch(
    opened: Registry,
    change: Callable[[], T],
    *,
    title: str,
    branch: str,
    labels: list[str],
    model: str,
    by: str,
    github: GitHub | None = None,
    preface: str = "",
    author: str | None = None,
    rename: bool = False,
) -> tuple[T, Pull]:
    """Make ``change`` on a new branch, commit and push it, and open the pull request whose body is the review page.

    The branch is one regops creates: when ``branch`` exists already, in the
    checkout or on origin, ``rename`` picks the first free ``branch-2``,
    ``branch-3``, … and otherwise the call is refused (the canary's branch names
    its decision, so it is never renamed). The push is a plain push of that new
    branch, so the pull request carries regops' commit and nothing else. The
    checkout returns to the branch it was on (where the change is not applied);
    when anything fails before the push is done, the new branch is deleted and
    the registry is as it was. The model's owners are asked for review (teams by
    slug), the author aside. New versions (a registration) are shown against the
    current holders as the transitions of a promotion are. ``preface`` goes above
    the review page; ``author`` (a login) makes the commit, else git's configured user.
    """
    from regops import report
    from regops.adapters import git
    from regops.adapters.github import GitHub

    root = opened.root.parent
    folder = opened.root.relative_to(root).as_posix()
    if dirty := git.changed(root, folder):
        raise RegopsError(f"{folder}/ has uncommitted changes ({dirty[0].strip()}, …): commit or stash them first")
    gh = github or GitHub()
    base = git.current_branch(root)
    branch = git.new_branch_name(root, branch, suffix=rename)
    with _new_branch(root, folder, base=base, branch=branch):
        result = change()
        git.commit_paths(root, [folder], title, author=author, email=_noreply(author, gh))
        head = open_registry(opened.root)
        with _registry_at(opened, base) as (before, files):
            shown = [(before.version(m.model, m.version), m.source, m.target) for m in pr_moves(head, files)]
            new = [r for r in head.iter_versions() if r.path.relative_to(root).as_posix() not in files]
            page = (
                report.review_page(before, shown)
                if shown
                else report.review_page(head, [(r, "registered", "candidate") for r in new])
            )
        try:
            git.push_new_branch(root, branch)
        except git.GitError as e:
            raise git.GitError(
                f"{e}; nothing was pushed: regops deleted its branch {branch} and returned to {base}, the registry "
                "as it was. Fix what git says and run the same command again"
            ) from e
    owners = opened.model(model).raw["owners"]
    reviewers = [o for o in owners if "/" not in o and o != by]
    teams = [o.split("/", 1)[1] for o in owners if "/" in o]
    try:
        pull = gh.open_pull(
            head=branch,
            base=base,
            title=title,
            body=f"{preface}\n\n{page}" if preface else page,
            labels=labels,
            reviewers=reviewers,
            teams=teams,
        )
    except RegopsError as e:
        git.delete_branch(root, branch)
        raise RegopsError(
            f"{e}; the change is pushed as branch {branch} of origin: open the pull request from it, or delete it "
            f"(`git push origin --delete {branch}`); running the same command again makes a new branch"
        ) from e
    return result, pull


@contextmanager
def _new_branch(root: Path, folder: str, *, base: str, branch: str) -> Iterator[None]:
    """Work on ``branch``, created from ``base``, and return to ``base``; when the work fails, its changes under
    ``folder`` and the branch are thrown away, so nothing of it is left to block the next run."""
    from regops.adapters import git

    git.checkout(root, branch, create=True)
    done = False
    try:
        yield
        done = True
    finally:
        if not done:
            git.discard(root, folder)
        git.checkout(root, base)
        if not done:
            git.delete_branch(root, branch)


def merge_group_pull(ref: str) -> int:
    """The pull request a merge-queue branch (``gh-readonly-queue/main/pr-42-<sha>``) was made for."""
    return _queue_entry(ref)[1]


def _queue_entry(ref: str) -> tuple[str, int]:
    """(base branch, pull request number) of a merge-queue branch ``gh-readonly-queue/<base>/pr-<N>-<sha>``."""
    import re

    found = re.search(r"gh-readonly-queue/(.+)/pr-(\d+)-[0-9a-f]+$", ref)
    if found is None:
        raise RegopsError(f"{ref!r} is not a merge queue branch (gh-readonly-queue/<base>/pr-<N>-<sha>)")
    return found.group(1), int(found.group(2))


def protected_branches(opened: Registry, gh: GitHub) -> tuple[str, ...]:
    """The branches whose pull requests are judged: regops.yaml's ``protected_branches``, else the default branch."""
    return opened.config.protected_branches or (gh.default_branch(),)


def _not_judged(pull: Pull) -> Outcome:
    from regops.approvals import Outcome

    return Outcome(base_ref=pull.base_ref, skipped=f"into {pull.base_ref}, not a protected branch: not judged")


def pr_check(
    number: int, *, registry: RegistryArg = "registry", github: GitHub | None = None, status_sha: str | None = None
) -> Outcome:
    """The required check ``regops/approvals`` of pull request ``number``, reported as a commit status on its head.

    Every change the PR makes is judged (:mod:`regops.gate`, default deny) by the policy of its base commit, the
    changes read from git (fetch them first), the reviews and commits from GitHub; the head's validation problems
    against the base fail it too. A PR into a branch that is not protected (``protected_branches``) is not
    judged and gets no status. ``status_sha`` reports on another commit.
    """
    from regops.adapters.github import GitHub

    gh = github or GitHub()
    opened = open_registry(registry)
    pull = gh.pull(number)
    if pull.base_ref not in protected_branches(opened, gh):
        return _not_judged(pull)
    outcome = _approvals(opened, pull, gh)
    gh.set_status(status_sha or pull.head_sha, ok=outcome.ok, description=outcome.summary)
    return outcome


def pr_check_head(
    head_sha: str, *, registry: RegistryArg = "registry", github: GitHub | None = None
) -> dict[int, Outcome]:
    """:func:`pr_check` for the open pull requests into protected branches whose head commit is ``head_sha``.

    For a workflow trusted with a write token (``workflow_run``): the pull
    requests are found by their head among the open ones, and their heads
    (``refs/pull/N/head``) and base commits fetched from ``origin`` as git
    objects, nothing checked out. None open (the branch moved on, or it closed):
    ``{}`` and no status, as the newer head's run decides.

    A commit status belongs to the commit, not to one pull request, so pull requests sharing a head share it:
    it passes when, for each protected base branch they target, at least one of the pull requests into that
    branch passes. A pull request (a fork's, say) sharing an approved head cannot fail it — merging either
    brings the same approved change into that branch — and a pass judged for one branch never stands for
    another, whose policy may be stricter.
    """
    from regops.adapters.github import GitHub

    gh = github or GitHub()
    opened = open_registry(registry)
    protected = protected_branches(opened, gh)
    pulls = [pull for pull in _pulls_at(opened, head_sha, gh, protected) if pull.base_ref in protected]
    outcomes = {pull.number: _approvals(opened, pull, gh) for pull in pulls}
    if outcomes:
        ok, shown = _shared_status(pulls, outcomes)
        gh.set_status(head_sha, ok=ok, description=shown)
    return outcomes


def _shared_status(pulls: Sequence[Pull], outcomes: Mapping[int, Outcome]) -> tuple[bool, str]:
    """The one status of pull requests sharing a head (see :func:`pr_check_head`): (passes, description)."""
    failing = []
    for base in sorted({pull.base_ref for pull in pulls}):
        into = [pull.number for pull in pulls if pull.base_ref == base]
        if not any(outcomes[n].ok for n in into):
            failing.append(into[0])
    number = failing[0] if failing else next(n for n, o in outcomes.items() if o.ok)
    which = f"#{number}: " if len(outcomes) > 1 else ""
    return not failing, which + outcomes[number].summary


def _pulls_at(opened: Registry, head_sha: str, gh: GitHub, protected: Sequence[str] = ()) -> list[Pull]:
    """The open pull requests whose head is ``head_sha``, with their head (``refs/pull/N/head``, which GitHub keeps
    for forks' pull requests too) and base commits fetched from ``origin``: git objects, never checked out."""
    from regops.adapters import git

    pulls = gh.open_pulls(head_sha=head_sha)
    wanted = [pull for pull in pulls if not protected or pull.base_ref in protected]
    if wanted:
        heads = [f"+refs/pull/{pull.number}/head:refs/remotes/pull/{pull.number}/head" for pull in wanted]
        # The base branches as they are now too: canary results recorded on them after the PR was opened count.
        bases = [f"+refs/heads/{ref}:refs/remotes/origin/{ref}" for ref in sorted({pull.base_ref for pull in wanted})]
        git.fetch(opened.root.parent, [*heads, *bases, *sorted({pull.base_sha for pull in wanted})])
    return pulls


def _pr_problems(head: Registry, base_files: dict[str, bytes], base_ref: str) -> list[Problem]:
    """What ``regops validate --base`` finds in the pull request's head."""
    from regops import policy

    return sorted(set(policy.check(head)) | set(policy.against_base(head, base_files, ref=base_ref)))


def _approvals(opened: Registry, pull: Pull, gh: GitHub, *, base_sha: str | None = None) -> Outcome:
    """The approvals check of ``pull``: every change it makes judged by its base's policy (``base_sha``, default
    the pull request's base commit), its validation problems included; no status set."""
    from regops import approvals, gate
    from regops.adapters import git

    root = opened.root.parent
    folder = opened.root.relative_to(root).as_posix()
    base_sha = base_sha or pull.base_sha
    # The base branch as this clone last fetched it: canary results recorded on it since the PR's base commit count.
    latest = git.resolve(root, f"refs/remotes/origin/{pull.base_ref}") or base_sha
    recorded = git.files_at(root, latest, folder)
    # The PR's own changes: from where its head branched off the base (GitHub's "files changed"), not the base's tip.
    fork = git.merge_base(root, base_sha, pull.head_sha)
    forked = git.files_at(root, fork, folder)
    with _registry_at(opened, base_sha) as (base, base_files), _registry_at(opened, pull.head_sha) as (head, ours):
        needs = gate.needs(
            git.changes(root, fork, pull.head_sha),
            base=base,
            folder=folder,
            base_files=forked,
            head_files=ours,
            recorded=recorded,
            author=pull.author,
        )
        committers, unlinked = gh.committers(pull.number)
        outcome = approvals.evaluate(
            needs,
            reviews=gh.reviews(pull.number),
            head=pull.head_sha,
            author=pull.author,
            committers=committers,
            expand=_expander(gh),
            is_bot=base.config.is_bot,
            unlinked=unlinked,
        )
        problems = _pr_problems(head, base_files, pull.base_ref)
    return replace(outcome, problems=tuple(problems), base_ref=pull.base_ref)


def pr_check_group(
    ref: str,
    *,
    sha: str,
    base_sha: str,
    registry: RegistryArg = "registry",
    github: GitHub | None = None,
) -> Outcome:
    """The required status on a merge-queue group's commit ``sha`` (branch ``ref``, built on ``base_sha``).

    The group commit itself is judged, not only copied from its pull requests: it must validate against
    the queue's base, every pull request in the group (the queue's entries between ``base_sha`` and ``sha``)
    must pass its own approvals check, and the group may change no path that none of them changes.
    """
    from regops.adapters import git
    from regops.adapters.github import GitHub

    gh = github or GitHub()
    opened = open_registry(registry)
    root, folder = opened.root.parent, opened.root.relative_to(opened.root.parent).as_posix()
    base_ref, number = _queue_entry(ref)
    numbers = _group_members(root, base_ref, base_sha, sha) or [number]
    pulls = [gh.pull(n) for n in numbers]
    git.fetch(root, [f"+refs/pull/{p.number}/head:refs/remotes/pull/{p.number}/head" for p in pulls])
    outcomes = [_approvals(opened, pull, gh) for pull in pulls]
    covered = {
        c.path for p in pulls for c in git.changes(root, git.merge_base(root, p.base_sha, p.head_sha), p.head_sha)
    }
    stray = [c.path for c in git.changes(root, base_sha, sha) if c.path not in covered]
    with _registry_at(opened, sha) as (group, _):
        problems = _pr_problems(group, git.files_at(root, base_sha, folder), base_ref)
    problems += [
        Problem(path, message="the group commit changes it, and none of its pull requests does") for path in stray
    ]
    outcome = _group_outcome(outcomes, problems, base_ref)
    gh.set_status(sha, ok=outcome.ok, description=outcome.summary)
    return outcome


def _group_members(root: Path, base_ref: str, base_sha: str, sha: str) -> list[int]:
    """The pull requests of a merge-queue group: the queue branches whose commits lie between base and group head."""
    from regops.adapters import git

    entries = set(git.first_parents(root, base_sha, sha))
    branches = git.remote_heads(root, f"refs/heads/gh-readonly-queue/{base_ref}/*")
    return sorted(_queue_entry(ref)[1] for ref, commit in branches.items() if commit in entries)


def _group_outcome(outcomes: Sequence[Outcome], problems: list[Problem], base_ref: str) -> Outcome:
    from regops.approvals import Outcome

    return Outcome(
        [v for o in outcomes for v in o.verdicts],
        tuple(sorted({*problems, *(p for o in outcomes for p in o.problems)})),
        base_ref,
        tuple(u for o in outcomes for u in o.unlinked),
    )


REPORT_MARKER = "<!-- regops:report -->"


def pr_report(number: int, *, registry: RegistryArg = "registry", github: GitHub | None = None) -> tuple[str, str]:
    """Create or update the pull request's one regops comment: validation, then the review page. (action, body)"""
    from regops.adapters.github import GitHub

    gh = github or GitHub()
    return _report(open_registry(registry), gh.pull(number), gh)


def pr_report_head(
    head_sha: str, *, registry: RegistryArg = "registry", github: GitHub | None = None
) -> dict[int, str]:
    """:func:`pr_report` for the open pull request whose head commit is ``head_sha`` (found and fetched as
    :func:`pr_check_head` does): what was done to each one's comment, by number; ``{}`` when none is open."""
    from regops.adapters.github import GitHub

    gh = github or GitHub()
    opened = open_registry(registry)
    return {pull.number: _report(opened, pull, gh)[0] for pull in _pulls_at(opened, head_sha, gh)}


def _report(opened: Registry, pull: Pull, gh: GitHub) -> tuple[str, str]:
    from regops import report

    with _registry_at(opened, pull.base_sha) as (base, base_files), _registry_at(opened, pull.head_sha) as (head, _):
        problems = _pr_problems(head, base_files, pull.base_ref)
        moves = pr_moves(head, base_files)
        # A version the pull request adds is shown from its head; one already on the base as the base has it.
        records = [(base.find(m.ref) or head.version(m.model, m.version), m.source, m.target) for m in moves]
        page = report.review_page(head, records, before=base) if records else ""
        body = report.pr_comment(problems, page, marker=REPORT_MARKER)
    return gh.upsert_comment(pull.number, REPORT_MARKER, body), body


def pr_stamp(
    *, registry: RegistryArg = "registry", since: str = "HEAD^", github: GitHub | None = None, dry_run: bool = False
) -> Plan:
    """Record the merged pull request and who approved it on each transition added since ``since``.

    Run on the default branch after a merge (the sync workflow): the pull
    request is the one GitHub associates with the current commit; each
    transition's approvers are exactly the reviews that counted for it in the
    approvals check (the same decision, :func:`regops.approvals.evaluate`, on the
    pull request's final head and base). Transitions made by bots, or already
    stamped, are left alone.
    """
    from regops import lifecycle, policy
    from regops.adapters import git
    from regops.adapters.github import GitHub

    gh = github or GitHub()
    opened = open_registry(registry)
    with _registry_at(opened, since) as (_, before):
        pending = [
            (record, step)
            for record, step in policy.added_transitions(opened, before)
            if "pr" not in step and not opened.config.is_bot(step["by"])
        ]
    if not pending:
        return lifecycle.Plan(notes=["no transitions to stamp"])
    pulls = gh.merged_pulls(git.head_commit(opened.root.parent))
    if not pulls:
        return lifecycle.Plan(notes=["the current commit came from no merged pull request; nothing stamped"])
    pull = pulls[0]
    counted = _counted_by_move(opened, pull, gh, base_sha=git.resolve(opened.root.parent, since) or since)

    def plan_it(r: Registry) -> Plan:
        plan = lifecycle.Plan()
        for record, step in pending:
            fresh = r.version(record.model, record.version)
            index = fresh.raw["transitions"].index(step)
            approvers = counted.get((record.model, record.version, step["from"], step["to"]), [])
            stamped = lifecycle.stamp(fresh, index, pr=pull.number, approved_by=approvers)
            plan.changes += stamped.changes
            plan.steps += stamped.steps
        return plan

    return _write(opened.root, plan_it, dry_run=dry_run)


def _counted_by_move(
    opened: Registry, pull: Pull, gh: GitHub, *, base_sha: str
) -> dict[tuple[str, str, str, str], list[str]]:
    """Who counted for each transition of the merged ``pull``, judged against ``base_sha`` (the base branch just
    before the merge); its head is fetched when not at hand (a squash merge leaves it out of the branch)."""
    from regops.adapters import git

    root = opened.root.parent
    if git.resolve(root, pull.head_sha) is None:
        git.fetch(root, [f"+refs/pull/{pull.number}/head:refs/remotes/pull/{pull.number}/head"])
    outcome = _approvals(opened, pull, gh, base_sha=base_sha)
    return {
        (v.move.model, v.move.version, v.move.source, v.move.target): sorted(v.counted)
        for v in outcome.verdicts
        if v.move is not None
    }


def _workflow_bot(by: str | None) -> str | None:
    """``by``; else, inside GitHub Actions, ``github-actions[bot]``: a workflow's commits and checks are its own
    acts (GITHUB_ACTOR is whoever merged, or last edited a schedule); else None."""
    import os

    return by or ("github-actions[bot]" if os.environ.get("GITHUB_ACTIONS") == "true" else None)


def _noreply(login: str | None, github: GitHub | None = None) -> str | None:
    """The e-mail GitHub ties to ``login`` (see :meth:`GitHub.noreply_email`), asked of ``github`` or of the
    repository the environment names; None without a login, or with no GitHub to ask (a person's own clone:
    ``login@users.noreply.github.com`` then, which GitHub ties only to accounts older than July 2017)."""
    import os

    from regops.adapters.github import GitHub, GitHubError

    if login is None or (github is None and not os.environ.get("GITHUB_REPOSITORY")):
        return None
    try:
        return (github or GitHub()).noreply_email(login)
    except GitHubError:
        return None


def commit(
    *, registry: RegistryArg = "registry", message: str, push: bool = False, by: str | None = None
) -> str | None:
    """Commit what regops changed (registry/, serving.json, CODEOWNERS) and, with ``push``, push it.

    Nothing changed, nothing committed (None). In GitHub Actions without ``by``
    the commit is made as ``github-actions[bot]``. A push that finds the branch
    moved on rebases onto it and tries again.
    """
    from regops import policy, sync
    from regops.adapters import git

    opened = open_registry(registry)
    root = opened.root.parent
    author = _workflow_bot(by)
    paths = [opened.root.relative_to(root).as_posix(), sync.MANIFEST, policy.CODEOWNERS]
    sha = git.commit_paths(root, paths, message, author=author, email=_noreply(author))
    if sha is not None and push:
        git.push(root, branch=git.current_branch(root))
    return sha


DRIFT_MARKER = "<!-- regops:drift -->"


def drift(*, registry: RegistryArg = "registry", issue: bool = False, github: GitHub | None = None) -> SyncResult:
    """``sync --check``; with ``issue``, keep one GitHub issue listing every difference (closed when clean)."""
    from regops import report
    from regops.adapters.github import GitHub

    result = sync(registry=registry, check=True)
    if issue:
        gh = github or GitHub()
        if result.differences:
            body = f"{DRIFT_MARKER}\n{report.drift_issue(result)}"
            gh.upsert_issue(DRIFT_MARKER, title="regops: drift from the registry", body=body, labels=["regops-drift"])
        else:
            gh.close_issue(DRIFT_MARKER, comment="The outside matches the registry again (`regops sync --check`).")
    return result


# --- canary ------------------------------------------------------------------------------------


def canary_check(
    model: str | None = None,
    *,
    registry: RegistryArg = "registry",
    now: TimeArg = None,
    dry_run: bool = False,
    env: Mapping[str, str] | None = None,
) -> list[Checked]:
    """Check every live canary (the version in staging, or ``model``'s) against prod; record each verdict.

    The result, when it was checked and the per-guardrail numbers go into the
    version file (``dry_run``: nowhere). Nothing is committed and no pull request
    opened: :func:`canary_pr` does that, in a process that holds no metrics token
    (and this one no GitHub token).
    """
    moment = _moment(now) or datetime.now(UTC)
    opened = open_registry(registry)
    checks = [_check_canary(opened, record, now=moment, env=env) for record in _live_canaries(opened, model)]
    if dry_run or not checks:
        return checks
    _write(opened.root, lambda r: _record_checks(r, checks, now=moment), dry_run=False)
    return checks


def canary_pr(
    model: str | None = None,
    *,
    registry: RegistryArg = "registry",
    by: str | None = None,
    github: GitHub | None = None,
) -> list[Checked]:
    """Commit and push the canary verdicts the version files record, then open the pull request each calls for.

    Reads no metrics: the verdicts are those ``canary check`` wrote. They are
    committed and pushed as ``by`` (default: github-actions[bot] in Actions); then
    a pass opens the pull request promoting the version to prod (owners must still
    approve it) and a fail the one taking it out of staging, each once per decision.
    """
    from regops import canary, lifecycle
    from regops.adapters.github import GitHub

    opened = open_registry(registry)
    checks = [c for c in (_recorded_check(opened, r) for r in _live_canaries(opened, model)) if c is not None]
    if not checks:
        return checks
    who = _workflow_bot(by) or lifecycle.identity()
    verdicts = ", ".join(f"{c.ref} {c.decision.verdict}" for c in checks)
    commit(registry=opened.root, message=f"canary: {verdicts}", push=True, by=who)
    gh = github or GitHub()
    return [
        replace(c, pull=_canary_pull(opened.root, c, github=gh, by=who)) if c.decision.verdict in canary.FINAL else c
        for c in checks
    ]


def _recorded_check(opened: Registry, record: VersionRecord) -> Checked | None:
    """A canary as its version file records it (None: no verdict recorded), held against today's prod."""
    from regops import canary

    decision = canary.recorded(record.canary or {})
    if decision is None:
        return None
    holder = opened.holder(record.model, "prod")
    return canary.Checked(record.ref, record.model, record.version, holder.version if holder else None, decision)


def _live_canaries(opened: Registry, model: str | None) -> Iterator[VersionRecord]:
    from regops.registry import parse_ref

    for name in [parse_ref(model).model] if model else opened.model_names():
        holder = opened.holder(name, "staging")
        record = opened.version(name, holder.version) if holder else None
        if record is not None and record.canary and record.canary.get("result") != "aborted":
            yield record


def _check_canary(opened: Registry, record: VersionRecord, *, now: datetime, env: Mapping[str, str] | None) -> Checked:
    from regops import canary

    settings = canary.settings(opened.config.raw["canary"], opened.model(record.model).raw.get("canary"))
    holder = opened.holder(record.model, "prod")
    started = datetime.fromisoformat(record.canary["started_at"]) if record.canary else now
    source, why = _metrics_source(opened, settings, env)
    if holder is None:
        source, why = None, f"no version of {record.model} in prod to compare the canary with"
    clock = started
    if source is None or holder is None:
        results = [canary.unavailable(rule, why) for rule in settings.rules]
    else:
        window = _Window(record.model, (record.version, holder.version), started, now)
        clock = _traffic_start(source, settings, window)
        results = [
            _guardrail(source, pair, settings, window) for pair in zip(settings.guardrails, settings.rules, strict=True)
        ]
    decision = canary.decide(results, started_at=clock, now=now, min_duration=settings.min_duration)
    return canary.Checked(record.ref, record.model, record.version, holder.version if holder else None, decision)


def _metrics_source(
    opened: Registry, settings: Settings, env: Mapping[str, str] | None
) -> tuple[MetricsSource | None, str]:
    """The source regops.yaml configures, or None and why not (a refused token is a reason, never a pass)."""
    from regops.adapters.metrics import MetricsError, open_metrics

    if not settings.metrics:
        return None, "no metrics provider: set canary.metrics in regops.yaml"
    try:
        source = open_metrics(
            settings.metrics, root=opened.root.parent, env=env, allowed_token_envs=settings.allowed_token_envs
        )
    except MetricsError as e:
        return None, str(e)
    return source, ""


@dataclass(frozen=True)
class _Window:
    """What a canary's metrics are read for: the model, its (canary, prod) versions, from the canary's start to now."""

    model: str
    versions: tuple[str, str]
    start: datetime
    end: datetime


def _guardrail(
    source: MetricsSource, guardrail: tuple[Mapping[str, Any], Rule], settings: Settings, window: _Window
) -> MetricResult:
    """One guardrail: both arms observed over the canary's window, then tested; a provider error is inconclusive."""
    from regops import canary
    from regops.adapters.metrics import MetricsError

    raw, rule = guardrail
    try:
        canary_arm, prod_arm = (
            source.observe(raw, model=window.model, version=v, start=window.start, end=window.end)
            for v in window.versions
        )
    except MetricsError as e:
        return canary.unavailable(rule, str(e))
    return canary.check(rule, canary_arm, prod_arm, min_requests=settings.min_requests)


def _traffic_start(source: MetricsSource, settings: Settings, window: _Window) -> datetime:
    """When the canary's minimum duration starts counting: its first request, where Prometheus can tell.

    The version file says when the canary was configured; traffic may have reached
    it later (a deployer applying the manifest). A canary that served nothing yet
    has not started. Without a rate guardrail's ``requests`` query, the file's start.
    """
    from regops.adapters.metrics import MetricsError, PrometheusSource

    requests = next((raw["requests"] for raw in settings.guardrails if raw.get("requests")), None)
    if not isinstance(source, PrometheusSource) or requests is None:
        return window.start
    try:
        first = source.served_since(
            requests, model=window.model, version=window.versions[0], start=window.start, end=window.end
        )
    except MetricsError:
        return window.start  # the guardrails' own queries report the provider's trouble
    return window.end if first is None else max(window.start, first)


def _record_checks(opened: Registry, checks: list[Checked], *, now: datetime) -> Plan:
    from regops import canary, lifecycle
    from regops.lifecycle import Plan

    plan = Plan()
    for check in checks:
        one = lifecycle.record_canary(
            opened,
            check.ref,
            result=canary.RECORDED[check.decision.verdict],
            summary=check.decision.summary,
            now=now,
            report=[m.as_record() for m in check.decision.metrics],
        )
        plan.changes += one.changes
        plan.steps += one.steps
    return plan


def _canary_pull(root: Path, check: Checked, *, github: GitHub, by: str) -> str:
    """Open the pull request a final verdict calls for, unless one was ever opened for it; what happened, in a line."""
    from regops import lifecycle, report

    passed = check.decision.verdict == "pass"
    branch = f"regops/canary-{check.model}-{check.version}-{'prod' if passed else 'rollback'}"
    if existing := github.pulls_from(branch):
        pull, state = existing[0]
        return f"#{pull.number} ({state}) already proposes this: {pull.url}"
    opened = open_registry(root)
    record = opened.version(check.model, check.version)
    # Bots never move a version to prod: the transition is the promotion the person who staged it asked for.
    who = next((s.by for s in reversed(record.steps) if s.to == "staging"), by) if passed else by
    target: Stage = "prod" if passed else "archived"
    notes = f"canary {check.decision.summary}"
    title = (
        f"Promote {check.ref} to prod: canary passed" if passed else f"Take {check.ref} out of staging: canary failed"
    )
    _, pull = _on_branch(
        opened,
        lambda: _write(root, lambda r: lifecycle.promote(r, check.ref, to=target, notes=notes, by=who), dry_run=False),
        title=title,
        branch=branch,
        labels=["canary", f"stage:{target}", f"model:{check.model}"],
        model=check.model,
        by=who,
        github=github,
        preface=report.canary_evidence(check),
        author=by,
    )
    return f"opened #{pull.number}: {pull.url}"


# --- datasets ----------------------------------------------------------------------------------


def dataset_hash(path: str | Path) -> TreeHash:
    """The content hash of a file or folder (see ``regops.datasets``), cached by file stat."""
    from regops.datasets import HashCache, hash_path

    return hash_path(Path(path), cache=HashCache.from_environment())


def register_dataset(
    name: str,
    *,
    registry: RegistryArg = "registry",
    version: str,
    path: str | Path | None = None,
    dvc: str | Path | None = None,
    dvc_path: str | None = None,
    iceberg: str | None = None,
    snapshot: int | None = None,
    delta: str | None = None,
    delta_version: int | None = None,
    by: str | None = None,
    description: str | None = None,
    uri: str | None = None,
) -> Path:
    """Record a dataset version: files hashed by regops, a DVC entry, an Iceberg snapshot or a Delta version."""
    from regops import datasets, lifecycle

    sources: list[datasets.Source] = []
    if path is not None:
        sources.append(datasets.FromFiles(Path(path)))
    if dvc is not None:
        sources.append(datasets.FromDvc(Path(dvc), dvc_path))
    if iceberg is not None or snapshot is not None:
        if iceberg is None or snapshot is None:
            raise RegopsError("an Iceberg reference needs both --iceberg TABLE and --snapshot ID")
        sources.append(datasets.FromIceberg(iceberg, snapshot))
    if delta is not None or delta_version is not None:
        if delta is None or delta_version is None:
            raise RegopsError("a Delta reference needs both --delta PATH and --delta-version N")
        sources.append(datasets.FromDelta(delta, delta_version))
    if len(sources) != 1:
        raise RegopsError(
            "name the data once: PATH, --from-dvc FILE, --iceberg TABLE --snapshot ID or --delta PATH --delta-version N"
        )
    root = open_registry(registry).root
    with lifecycle.locked(root):
        return datasets.register_dataset(
            root,
            name,
            version=version,
            source=sources[0],
            by=lifecycle.identity(by),
            description=description,
            uri=uri,
            cache=datasets.HashCache.from_environment(),
        )
