"""The retention run: which versions' weights stay hot (:func:`retention_plan`), and moving the rest to cold
storage — copy, verify, record, and remove a hot copy only once the published record says it moved
(:func:`retention_apply`). The rules that decide are in ``retention.py``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from regops import lifecycle, policy, retention
from regops.errors import RegopsError
from regops.lifecycle import Plan
from regops.records import VersionRecord
from regops.registry import Registry
from regops.retention import Decision, Published
from regops.weights import ArtifactsMissingError, Storage
from regops.workspace import open_registry, open_storage, owned_storage, published_record, write
from regops.workspace import when as _moment

if TYPE_CHECKING:
    from regops.workspace import RegistryArg, TimeArg

__all__ = ["restore", "retention_apply", "retention_plan"]


def retention_plan(
    *, registry: RegistryArg = "registry", model: str | None = None, now: TimeArg = None, published: str | None = None
) -> list[Decision]:
    """Which versions' weights stay hot and which move to cold storage, and why; changes nothing.

    ``published``: the git ref whose record counts (default: where a push from the checkout goes)."""
    opened = open_registry(registry)
    if model is not None:
        opened.model(model)
    record = published_record(opened, published)
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
    root = open_registry(registry).root
    now = _moment(now)  # a bad time is a usage error before anything is claimed or moved
    with lifecycle.locked(root):
        opened = open_registry(root)
        _refuse_shared_storage(opened)
        storage = owned_storage(opened)
        record = published_record(opened, published)
        decisions = _retention_decisions(opened, storage, record, now=now, model=model)
        moving = [d for d in decisions if d.action == "move"]
        keep = retention.hot_hashes(opened, [d.ref for d in moving], also=record.hot if record else ())
        _check_movable(opened, storage, moving)
        for decision, version in _records(opened, moving):
            location = _move_to_cold(storage, version)
            if on_move is not None:
                on_move(decision, storage.describe(location))
        recorded = open_registry(root) if moving else opened
        releasing = [d for d in decisions if d.action == "finish" or (d.action == "move" and record is None)]
        for decision, version in _records(recorded, releasing):
            location = _release_hot(storage, version, keep=keep)
            if on_move is not None and decision.action == "finish":
                on_move(decision, storage.describe(location))
    if record is None:
        return decisions
    later = retention.unpublished(record.ref)
    return [dataclasses.replace(d, reason=f"{d.reason}; {later}") if d.action == "move" else d for d in decisions]


def _retention_decisions(
    opened: Registry, storage: Storage, published: Published | None, *, now: TimeArg, model: str | None
) -> list[Decision]:
    keep = retention.hot_hashes(opened, (), also=published.hot if published else ())
    held = retention.leftover(storage, keep)
    moment = _moment(now) or datetime.now(UTC)
    return retention.plan(opened, now=moment, model=model, held=held, published=published)


def _refuse_shared_storage(opened: Registry) -> None:
    """Retention deletes only what is its own: no Hub repo or local store shared between two roles."""
    moment = datetime.now(UTC)
    problems = [*policy.hub_repos(opened, moment, one_at_a_time=True), *policy.store_paths(opened, moment)]
    if problems:
        listed = "; ".join(f"{p.path}: {p.field + ': ' if p.field else ''}{p.message}" for p in problems)
        raise RegopsError(f"retention refused, nothing moved: {listed} (`regops validate` lists them)")


def _check_movable(opened: Registry, storage: Storage, moving: list[Decision]) -> None:
    """Every version to move still has its hot weights: checked for all before the first moves."""
    for _, record in _records(opened, moving):
        if lost := storage.missing(retention.artifacts_of(record), record.storage):
            raise ArtifactsMissingError(
                record.ref, [a.path for a in lost], storage.describe(record.storage), ", to move to cold storage"
            )


def _records(opened: Registry, decisions: list[Decision]) -> Iterator[tuple[Decision, VersionRecord]]:
    """Each decision and its version's record, one model's folder held at a time (decisions come model by model):
    at 100k, moving most versions would otherwise hold every folder."""
    last = None
    for decision in decisions:
        if decision.model != last:
            opened.forget()
            last = decision.model
        yield decision, opened.version(decision.model, decision.version)


def _move_to_cold(storage: Storage, record: VersionRecord) -> dict[str, Any]:
    """Copy a version's weights to cold storage, verify the copy, and record it in the version file."""
    artifacts = retention.artifacts_of(record)
    location = storage.to_cold(artifacts, record.storage, model=record.model, version=record.version)
    lifecycle.apply(lifecycle.set_storage(record, location))
    return location


def _release_hot(storage: Storage, record: VersionRecord, *, keep: set[str]) -> dict[str, Any]:
    """Remove a cold version's hot copy, once its cold copy is there still (objects in ``keep`` stay)."""
    artifacts = retention.artifacts_of(record)
    if lost := storage.missing(artifacts, record.storage):
        raise RegopsError(
            f"{record.ref}: {', '.join(a.path for a in lost)} not in {storage.describe(record.storage)}, where its "
            "version file says its weights are; its hot copy is kept (nothing removed): find out what removed "
            "them before running retention again"
        )
    storage.release(artifacts, model=record.model, keep=keep)
    return record.storage


def restore(ref: str, *, registry: RegistryArg = "registry", dry_run: bool = False) -> Plan:
    """Copy a version's weights back from cold storage to hot, verified, and record it."""

    def plan_it(r: Registry) -> Plan:
        record = r.get(ref)
        if record.storage.get("tier") != "cold":
            raise RegopsError(f"{record.ref}'s weights are already hot; nothing to restore")
        artifacts = retention.artifacts_of(record)  # the signature too: the restored commit holds it
        if dry_run:
            location = {**record.storage, "tier": "hot"}
        else:
            location = open_storage(r).restore(artifacts, record.storage, model=record.model, version=record.version)
        return lifecycle.set_storage(record, location)

    return write(registry, plan_it, dry_run=dry_run)
