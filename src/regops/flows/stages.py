"""Moving versions between stages: promote, rollback and auto-promote, in the checkout or as a pull request.

Each plans its change (:mod:`regops.lifecycle`) on the registry as it is once the lock is held and writes it
(:func:`regops.workspace.write`), or makes it on a new branch and opens its pull request
(:func:`regops.flows.pulls.as_pull_request`). A version entering a stage passes the signature and attestation
rules first (:func:`regops.workspace.signed_for`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from regops import lifecycle
from regops.flows.pulls import as_pull_request
from regops.kinds import Stage
from regops.lifecycle import Plan
from regops.registry import Registry
from regops.workspace import identity, open_storage, signed_for, when, write

if TYPE_CHECKING:
    from regops.workspace import RegistryArg, TimeArg

__all__ = ["auto_promote", "promote", "rollback"]


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
    request with the change instead of leaving it in the working tree (:func:`regops.flows.pulls.as_pull_request`)."""

    who = identity(by)

    def plan_it(r: Registry) -> Plan:
        signed_for(r, r.get(ref), to, action=f"the promotion to {to}")
        return lifecycle.promote(r, ref, to=to, notes=notes, by=who)

    if pr and not dry_run:
        model, _, version = ref.partition("@")
        return as_pull_request(
            registry,
            plan_it,
            title=f"Promote {ref} to {to}",
            branch=f"regops/promote-{model}-{version}-{to}",
            labels=["promotion", f"stage:{to}", f"model:{model}"],
            model=model,
            by=who,
        )
    return write(registry, plan_it, dry_run=dry_run)


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

    who, moment = identity(by), when(at)

    def plan_it(r: Registry) -> Plan:
        plan = lifecycle.rollback(r, model, to=to, at=moment, notes=notes, by=who, storage=open_storage(r))
        target = r.version(model, to) if to else r.get(f"{model}@prod", at=moment)
        signed_for(r, target, "prod", action="the rollback to prod")
        return plan

    if pr and not dry_run:
        return as_pull_request(
            registry,
            plan_it,
            title=f"Roll {model} back to {to or f'prod at {at}'}",
            branch=f"regops/rollback-{model}-{to or 'at'}",
            labels=["promotion", "rollback", "stage:prod", f"model:{model}"],
            model=model,
            by=who,
        )
    return write(registry, plan_it, dry_run=dry_run)


def auto_promote(
    model: str | None = None, *, registry: RegistryArg = "registry", by: str | None = None, dry_run: bool = False
) -> Plan:
    """Move each model's best candidate that beats dev into dev; idempotent."""

    who = identity(by)
    return write(registry, lambda r: lifecycle.auto_promote(r, model, by=who), dry_run=dry_run)
