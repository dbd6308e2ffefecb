"""The outside world kept in step with the registry: Hub tags, stage branches, model cards and serving.json
(:func:`sync`), and the drift issue that lists what is not (:func:`drift`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from regops import attest, publish, signing
from regops import sync as syncing
from regops.signing import SigningError
from regops.workspace import open_registry, open_storage

if TYPE_CHECKING:
    from regops.adapters.github import GitHub
    from regops.records import VersionRecord
    from regops.registry import Registry
    from regops.sync import SyncResult
    from regops.weights import Storage
    from regops.workspace import RegistryArg

__all__ = ["DRIFT_MARKER", "drift", "sync"]


def sync(*, registry: RegistryArg = "registry", check: bool = False, model: str | None = None) -> SyncResult:
    """Make Hub tags, stage branches, model cards and serving.json match the registry (``check``: only compare)."""
    # Imported here: a client library (PyGithub, huggingface_hub) costs ~0.2-0.3 s, paid only where it is used.
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

        differences = syncing.compare(
            opened,
            hub_storage.hub,
            repo_for=repo_for,
            card=publish.model_card,
            model=model,
            unsigned=_unsigned(opened, hub_storage),
        )
    else:
        differences = syncing.compare(opened, None, repo_for=lambda _: None, card=publish.model_card, model=model)
    return syncing.sync(differences, check=check)


def _unsigned(opened: Registry, storage: Storage) -> Callable[[VersionRecord], str | None]:
    """Why a hot version's signature or attestations refuse it (:func:`regops.signing.check`,
    :func:`regops.attest.check`), or None: nothing points at it then.
    A cold copy is not checked: retention copies the weights, not the signature, to cold storage."""

    def why(record: VersionRecord) -> str | None:
        if record.storage.get("tier") != "hot":
            return None
        action = "pointing a tag or stage ref at it"
        entered = record.steps[-1] if record.steps else None
        try:
            signing.check(
                record,
                stage=record.stage,
                policy=opened.config.signing,
                storage=storage,
                root=opened.root.parent,
                action=action,
            )
            if entered is not None:
                move = (entered.from_, entered.to)
                attest.check(record, config=opened.config, move=move, root=opened.root.parent, action=action)
        except SigningError as e:
            return str(e)
        return None

    return why


DRIFT_MARKER = "<!-- regops:drift -->"


def drift(*, registry: RegistryArg = "registry", issue: bool = False, github: GitHub | None = None) -> SyncResult:
    """``sync --check``; with ``issue``, keep one GitHub issue listing every difference (closed when clean)."""
    # Imported here: a client library (PyGithub, huggingface_hub) costs ~0.2-0.3 s, paid only where it is used.
    from regops.adapters.github import GitHub

    result = sync(registry=registry, check=True)
    if issue:
        gh = github or GitHub()
        if result.differences:
            body = f"{DRIFT_MARKER}\n{publish.drift_issue(result)}"
            gh.upsert_issue(DRIFT_MARKER, title="regops: drift from the registry", body=body, labels=["regops-drift"])
        else:
            gh.close_issue(DRIFT_MARKER, comment="The outside matches the registry again (`regops sync --check`).")
    return result
