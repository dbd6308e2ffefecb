"""What serves: the serving manifest (``serving.json`` beside ``registry/``) and its KServe export.

Per model, the version in prod and the staging canary with its share of traffic, as the registry
says, rendered deterministically (:func:`serving_text`, :func:`kserve_text`). ``sync.py`` compares
the committed manifest with this and rewrites it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

from regops import store
from regops.records import VersionRecord
from regops.registry import Registry

__all__ = [
    "KSERVE_API",
    "MANIFEST",
    "kserve_text",
    "manifest_path",
    "manifest_text",
    "serving_manifest",
    "serving_text",
]


MANIFEST: Final = "serving.json"


def manifest_path(registry: Registry) -> Path:
    return registry.root.parent / MANIFEST


def _served(record: VersionRecord) -> dict[str, Any]:
    storage = {k: v for k, v in record.storage.items() if k != "tier"}
    return {
        "version": record.version,
        "storage": storage,
        "files": [
            {"path": f["path"], "sha256": f["sha256"], "size": f["size"]} for f in record.raw["artifacts"]["files"]
        ],
    }


def serving_manifest(registry: Registry, *, let_go: bool = False) -> dict[str, Any]:
    """Per model: what serves prod, and the staging canary with its share of traffic (deterministic). With
    ``let_go``, each model's folder is let go of once read (``Registry.forget``: memory stays one model's, where
    holding every version of a 100,000-version registry took 1.2 GB); a folder read before is read again if asked."""
    models: dict[str, Any] = {}
    for name in registry.model_names():
        if let_go:
            registry.forget()
        holders = {r.stage: r for r in registry.versions(name) if r.stage in ("staging", "prod")}
        prod, staging = holders.get("prod"), holders.get("staging")
        canary = None
        if staging is not None and staging.canary is not None and _serves_canary(staging.canary):
            canary = {
                **_served(staging),
                "traffic_percent": staging.canary["traffic_percent"],
                "started_at": staging.canary["started_at"],
            }
        models[name] = {"prod": _served(prod) if prod else None, "canary": canary}
    return {"models": models}


def _serves_canary(canary: dict[str, Any]) -> bool:
    """A canary takes traffic until it fails or its version leaves staging (a pass keeps it on until prod)."""
    return canary.get("result") not in ("failed", "aborted")


def serving_text(registry: Registry) -> str:
    return manifest_text(serving_manifest(registry, let_go=True))


def manifest_text(manifest: dict[str, Any]) -> str:
    return json.dumps(manifest, indent=2, sort_keys=True) + "\n"


KSERVE_API: Final = "serving.kserve.io/v1beta1"


def kserve_text(registry: Registry) -> str:
    """One KServe ``InferenceService`` per model with a version in prod, as YAML documents (deterministic).

    KServe's canary rollout: the spec names the canary's weights with
    ``canaryTrafficPercent``, and KServe keeps the rest of the traffic on the
    last ready revision (prod). Weights outside the Hub cannot be named by a
    ``storageUri``; such models are listed in a comment instead.
    """
    documents, skipped = [], []
    for name, served in serving_manifest(registry, let_go=True)["models"].items():
        prod, canary = served["prod"], served["canary"]
        if prod is None:
            continue
        if any(arm["storage"].get("backend") != "hf" for arm in (prod, canary) if arm):
            skipped.append(name)
            continue
        documents.append(store.dump(_inference_service(name, prod, canary)))
    head = "".join(f"# {n}: weights not on the Hub; KServe needs an hf:// storageUri\n" for n in skipped)
    return head + "---\n".join(documents)


def _inference_service(name: str, prod: dict[str, Any], canary: dict[str, Any] | None) -> dict[str, Any]:
    served = canary or prod
    storage = served["storage"]
    predictor: dict[str, Any] = {}
    annotations = {"regops.dev/prod-version": prod["version"]}
    if canary:
        predictor["canaryTrafficPercent"] = canary["traffic_percent"]
        annotations["regops.dev/canary-version"] = canary["version"]
    predictor["model"] = {
        "modelFormat": {"name": "huggingface"},
        "storageUri": f"hf://{storage['repo']}:{storage['revision']}",
    }
    return {
        "apiVersion": KSERVE_API,
        "kind": "InferenceService",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "regops"}, "annotations": annotations},
        "spec": {"predictor": predictor},
    }
