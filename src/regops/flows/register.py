"""Registering a version: hash and store its files, record it as a candidate, in the checkout or in a pull request.

The front of ``regops register`` (:func:`regops.api.register`): the signer chosen from the options, the files read,
the registry locked and re-read, then :func:`regops.registration.register` does the work; with ``pr`` on a new
branch whose pull request it opens (:func:`regops.flows.pulls.on_branch`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from regops import lifecycle, registration, signing, store
from regops.flows.pulls import on_branch
from regops.registration import Bump, RegisterResult
from regops.registry import Registry
from regops.workspace import identity, open_registry, open_storage

if TYPE_CHECKING:
    from regops.workspace import RegistryArg

__all__ = ["register"]


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
    signing_key: str | Path | None = None,
    signing_cert: str | Path | None = None,
    signing_keyless: bool = False,
    signing_key_env: str | None = None,
) -> RegisterResult:
    """Hash and store a version's files, then record it as a candidate (``pr``: in a pull request, not the checkout;
    ``confine``: refuse artifacts, evals or params outside that folder or in a ``.git`` folder; ``signing_key``
    (with ``signing_cert``), ``signing_keyless`` or ``signing_key_env``: sign the files and store the signature beside
    them, :func:`regops.signing.signer_from_env` for the last)."""
    signer = _signer(signing_key, signing_cert, keyless=signing_keyless, env=signing_key_env)
    if confine is not None:
        registration.confine({"artifacts": artifacts, "evals": evals, "params": params}, confine)
    scores, hyperparameters = store.read_mapping(Path(evals)), store.read_mapping(Path(params))
    opened = open_registry(registry)
    who = identity(by)

    def change() -> RegisterResult:
        with lifecycle.locked(opened.root):
            fresh = open_registry(opened.root)
            return registration.register(
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
                signer=signer,
            )

    if not pr:
        return change()
    registration.artifact_files(Path(artifacts))  # refused before a branch exists
    return _registration_pull(opened, change, model=model, name=f"{model}-{version or bump or 'next'}", by=who)


def _signer(
    key: str | Path | None, cert: str | Path | None, *, keyless: bool, env: str | None
) -> signing.Signer | None:
    if env:
        return signing.signer_from_env(env)
    if cert is not None and key is None:
        raise signing.SigningError("--signing-cert needs --signing-key, the certificate's private key")
    if key is None:
        return signing.Signer() if keyless else None
    return signing.Signer(Path(key), Path(cert) if cert is not None else None)


def _registration_pull(
    opened: Registry, change: Callable[[], RegisterResult], *, model: str, name: str, by: str
) -> RegisterResult:
    """Register on a new branch ``regops/register-<name>`` and open its pull request."""
    result, pull = on_branch(
        opened,
        change,
        title=f"Register {model}",
        branch=f"regops/register-{name}",
        labels=["registration", f"model:{model}"],
        model=model,
        by=by,
        rename=True,
    )
    return dataclasses.replace(result, pull=pull.url)
