"""JSON Schema export of the file kinds in ``model.py``.

``schemas/*.json`` is generated, committed, and checked for drift by a test;
editors pick it up from each file's ``# yaml-language-server: $schema=`` line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel

from regops.model import DatasetVersion, ModelConfig, ModelVersion, RegistryConfig

__all__ = ["SCHEMAS", "export", "render"]

SCHEMAS: Final[dict[str, type[BaseModel]]] = {
    "model-version.schema.json": ModelVersion,
    "model.schema.json": ModelConfig,
    "dataset-version.schema.json": DatasetVersion,
    "regops.schema.json": RegistryConfig,
}


def render(kind: type[BaseModel], name: str) -> str:
    """One schema file's exact text."""
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **kind.model_json_schema(by_alias=True, mode="validation"),
    }
    return json.dumps(schema, indent=2, sort_keys=False) + "\n"


def export(dest: Path) -> list[Path]:
    """Write every schema into ``dest``; returns the files whose text changed."""
    dest.mkdir(parents=True, exist_ok=True)
    changed: list[Path] = []
    for name, kind in SCHEMAS.items():
        path = dest / name
        text = render(kind, name)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    return changed
