"""Retention: which versions' weights stay hot, which move to cold storage, and why.

Policy (``retention`` in regops.yaml, overridable per model in model.yaml):
``keep_prod`` former prod versions stay hot as rollback targets, and nothing
registered in the last ``candidate_ttl_days`` moves. Never moved: the current
dev, staging and prod; the last ``keep_prod`` versions that left prod; any
version newer than the TTL; every ancestor (across models) of a version kept
hot. Everything else that is hot moves. Version files are never deleted: a
move edits ``artifacts.storage`` (the new location, ``tier: cold``).

A move is copy → verify the copy → record it in the version file → publish
the record → remove the hot copy, so at every point the version is
retrievable from what the published record says. The published record is the
registry at a git ref (:class:`Published`: by default the branch a push from
the checkout goes to, e.g. ``origin/main``): a run removes a hot copy only when
that ref already records the version cold at the same location. So a run
records, the record is pushed, and the next run removes (``finish``); a lost
runner or a refused push leaves the hot copy, and main still names it. A
registry outside git has nothing to publish to: its files are the record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from regops.records import VersionRecord
from regops.registry import Registry
from regops.weights import Artifact, Storage

__all__ = [
    "Decision",
    "Policy",
    "Published",
    "archive_repo",
    "artifacts_of",
    "hot_hashes",
    "hub_repo",
    "leftover",
    "local_stores",
    "overlap",
    "plan",
    "policy_for",
]

Action = Literal["keep", "move", "cold", "finish"]


@dataclass(frozen=True)
class Policy:
    keep_prod: int
    candidate_ttl_days: int


@dataclass(frozen=True)
class Decision:
    """What retention does with one version's weights: ``keep`` hot, ``move`` to cold, leave ``cold``,
    or ``finish`` (cold already; remove the hot copy an interrupted run left)."""

    model: str
    version: str
    action: Action
    reason: str

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.version}"


@dataclass(frozen=True)
class Published:
    """The record as published: the git ref, the ``artifacts.storage`` there of each version not hot there (what
    :meth:`recorded` compares a cold version's with), and the sha256 of every file of a version hot there (what
    must stay hot whatever the working tree says)."""

    ref: str
    storage: Mapping[str, Mapping[str, Any]]
    hot: AbstractSet[str]

    @classmethod
    def of(
        cls,
        ref: str,
        registry: Registry | None,
        *,
        checkout: Registry | None = None,
        same: AbstractSet[str] = frozenset(),
    ) -> Published:
        """``registry`` as read at ``ref`` (None: the ref has no registry yet), one model's folder at a time; the
        ``same`` models, whose folders in ``checkout`` hold exactly their files at ``ref``, read from there."""
        storage: dict[str, Mapping[str, Any]] = {}
        hot: set[str] = set()  # a set, not copied into a frozenset: 430,000 hashes at 100k
        names = registry.model_names() if registry is not None else []
        here = {n for n in names if n in same} if checkout is not None else set()
        sources = ((checkout, [n for n in names if n in here]), (registry, [n for n in names if n not in here]))
        for source, chosen in sources:
            for _, versions in each_model(source, chosen) if source is not None and chosen else ():
                for record in versions:
                    if (files := _hot_files(record)) is None:
                        storage[record.ref] = record.storage
                    else:
                        hot.update(files)
        return cls(ref, storage, hot)

    def recorded(self, record: VersionRecord) -> bool:
        """Whether ``record``'s storage (cold) is what the published ref says: its hot copy may go. (A version hot
        at the ref has no entry here: its storage there, hot, is not a cold one.)"""
        return self.storage.get(record.ref) == record.storage


def hub_repo(registry: Registry, model: str, hub: Mapping[str, Any] | None) -> str | None:
    """The Hub repo of a model's hot weights: ``hub.repo`` of its model.yaml (``hub``), else
    ``<storage.org>/<model>``; None when neither is set."""
    if hub:
        return str(hub["repo"])
    org = registry.config.storage.get("org")
    return f"{org}/{model}" if org else None


def archive_repo(registry: Registry, repo: str) -> str | None:
    """The Hub repo that holds a hot repo's cold weights: ``<cold_storage.org, else the repo's
    namespace>/<name>-archive``; None when cold storage is not on the Hub."""
    cold = registry.config.cold_storage or {}
    if cold.get("backend") != "hf":
        return None
    namespace, name = repo.split("/", 1)
    return f"{cold.get('org') or namespace}/{name}-archive"


def local_stores(registry: Registry) -> tuple[Path | None, Path | None]:
    """The hot and cold local store folders regops.yaml names (relative to the repository holding the
    registry; the hot store defaults to ``.regops/store``); None where that tier is not a local folder."""
    base = registry.root.parent
    hot = registry.config.storage
    cold = registry.config.cold_storage or {}
    hot_path = base / (hot.get("path") or ".regops/store") if hot["backend"] == "local" else None
    cold_path = base / cold["path"] if cold.get("backend") == "local" and cold.get("path") else None
    return hot_path, cold_path


def overlap(a: Path, b: Path) -> str | None:
    """How two store folders overlap once links and spelling are resolved (None: they are apart)."""
    real_a, real_b = a.resolve(), b.resolve()
    if real_a == real_b:
        return f"the same folder as {b} ({real_b})"
    if real_b in real_a.parents:
        return f"inside {b} ({real_b})"
    if real_a in real_b.parents:
        return f"a folder holding {b} ({real_b})"
    return None


def policy_for(registry: Registry, model: str) -> Policy:
    defaults = registry.config.raw["retention"]
    override = registry.model(model).raw.get("retention") or {}
    return Policy(
        override.get("keep_prod", defaults["keep_prod"]),
        override.get("candidate_ttl_days", defaults["candidate_ttl_days"]),
    )


def artifacts_of(record: VersionRecord) -> list[Artifact]:
    """What a version stores: its files, and the signature bundle it records (which moves with them)."""
    signature = record.raw["artifacts"].get("signature")
    files = [Artifact.from_record(f) for f in record.raw["artifacts"]["files"]]
    return files + ([Artifact.from_record(signature)] if signature else [])


def _left_prod(record: VersionRecord) -> datetime | None:
    """When the version last left prod (None: it never did)."""
    left = [step.at for step in record.steps if step.from_ == "prod"]
    return max(left, default=None)


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def plan(
    registry: Registry,
    *,
    now: datetime,
    model: str | None = None,
    held: Callable[[VersionRecord], bool] | None = None,
    published: Published | None = None,
) -> list[Decision]:
    """A decision for every version (of ``model``, or all), newest first per model.

    Ancestry crosses models, so the whole registry is planned and then filtered; one model's folder is held at a
    time (:func:`each_model`), each read twice: what is kept, then the decisions.
    ``held(record)`` says whether hot storage still has a cold version's files
    (for ``finish``, once ``published`` records the move; None: the files are
    the record); without it cold versions are just ``cold``.
    """
    parents: dict[str, str | None] = {}
    kept: dict[str, str] = {}
    for name, versions in each_model(registry):
        parents.update((r.ref, r.parent) for r in versions)
        kept.update(_kept(registry, name, now))
    _keep_ancestors(parents, kept)

    decisions: list[Decision] = []
    for name, versions in each_model(registry, [model] if model else None):
        policy = policy_for(registry, name)
        for record in reversed(versions):
            tier = record.storage.get("tier", "hot")
            if tier == "cold":
                decisions.append(_cold(record, held, published))
            elif record.ref in kept:
                decisions.append(Decision(name, record.version, "keep", kept[record.ref]))
            else:
                decisions.append(Decision(name, record.version, "move", _why_move(record, policy)))
    return decisions


def _cold(record: VersionRecord, held: Callable[[VersionRecord], bool] | None, published: Published | None) -> Decision:
    if held is None or not held(record):
        return Decision(record.model, record.version, "cold", "in cold storage")
    if published is not None and not published.recorded(record):
        return Decision(record.model, record.version, "cold", f"in cold storage; {unpublished(published.ref)}")
    return Decision(record.model, record.version, "finish", "cold; a hot copy is left from an interrupted move")


def unpublished(ref: str) -> str:
    """Why a hot copy stays after its move was recorded, and what to do."""
    return (
        f"the hot copy stays until {ref} records the move: commit and push the version file, "
        "then run `regops retention apply` again"
    )


def _kept(registry: Registry, name: str, now: datetime) -> dict[str, str]:
    """The model's versions kept hot by its own policy (ancestors are added later), with why."""
    policy = policy_for(registry, name)
    versions = registry.versions(name)
    kept = {r.ref: f"current {r.stage}" for r in versions if r.stage in ("dev", "staging", "prod")}
    former = sorted(
        ((left, r) for r in versions if r.stage != "prod" and (left := _left_prod(r)) is not None),
        key=lambda pair: pair[0],
        reverse=True,
    )
    for rank, (left, record) in enumerate(former[: policy.keep_prod], start=1):
        kept.setdefault(
            record.ref,
            f"former prod (left {left:%Y-%m-%d}; {_ordinal(rank)} most recent, keep_prod {policy.keep_prod})",
        )
    cutoff = now - timedelta(days=policy.candidate_ttl_days)
    for record in versions:
        if record.created_at > cutoff:
            age = (now - record.created_at).days
            kept.setdefault(record.ref, f"registered {age} day(s) ago, within the {policy.candidate_ttl_days}-day TTL")
    return kept


def _keep_ancestors(parents: Mapping[str, str | None], kept: dict[str, str]) -> None:
    """Keep every ancestor of each version ``kept`` hot (``parents``: every version's parent), with why: the first
    kept version, in ``kept``'s order, whose line reaches it. A walk stops at a version an earlier walk went through
    (all above it has its reason already), so each line is walked once, not once per kept version on it."""
    walked: set[str] = set()
    for ref in list(kept):
        line = [ref]
        child = ref
        while (parent := parents.get(child)) is not None and parent in parents and parent not in walked:
            if parent in line:
                break
            line.append(parent)
            kept.setdefault(parent, f"ancestor of {ref} (kept hot)")
            child = parent
        walked.update(line)


def _why_move(record: VersionRecord, policy: Policy) -> str:
    if _left_prod(record) is not None:
        return (
            f"former prod, not among the last {policy.keep_prod} kept (keep_prod), "
            f"older than {policy.candidate_ttl_days} days"
        )
    never = "never promoted" if record.stage == "candidate" else record.stage
    return f"{never}, older than {policy.candidate_ttl_days} days, no kept version descends from it"


def hot_hashes(registry: Registry, moving: Iterable[str], *, also: Iterable[str] = ()) -> set[str]:
    """sha256 of every file of a version that stays hot (what removing hot copies must spare), and ``also`` (the
    published record's: one set, a hash both hold kept once, where their union would make a third at 100k)."""
    gone = set(moving)
    kept = set(also)
    for _, versions in each_model(registry):
        for record in versions:
            if record.ref not in gone:
                kept.update(_hot_files(record) or ())
    return kept


def _hot_files(record: VersionRecord) -> list[str] | None:
    """sha256 of each of a hot version's files; None for a version not hot."""
    if record.storage.get("tier", "hot") != "hot":
        return None
    return [f["sha256"] for f in record.raw["artifacts"]["files"]]


def each_model(registry: Registry, names: Iterable[str] | None = None) -> Iterator[tuple[str, list[VersionRecord]]]:
    """Each model's versions (of ``names``, else of every model), one model's folder held at a time: the registry
    lets go of every folder read (``Registry.forget``) before the next is read and after the last, so memory stays
    one model's where holding a 100,000-version registry took 2 GB; a later query reads a folder again."""
    for name in registry.model_names() if names is None else names:
        registry.forget()
        yield name, registry.versions(name)
    registry.forget()


def leftover(storage: Storage, keep: set[str]) -> Callable[[VersionRecord], bool]:
    """``held`` for :func:`plan`: hot storage still has files of a cold version that no hot version shares."""

    def held(record: VersionRecord) -> bool:
        own = [a for a in artifacts_of(record) if a.sha256 not in keep]
        return bool(own) and storage.held(own, model=record.model)

    return held
