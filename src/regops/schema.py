"""The file kinds' schemas: checking data against them, and exporting them as JSON Schema.

The pydantic models in ``files.py`` are the source of truth. :func:`check`
turns their validation errors into :class:`~regops.files.Problem` values with
messages written for people; :func:`export` writes ``schemas/*.json``
(committed, and checked for drift by a test) for editors, which find them
through each file's ``# yaml-language-server: $schema=`` line.

pydantic is imported on first use: a warm read of the registry never needs it
(``store.py`` caches data that passed :func:`check`).
"""

from __future__ import annotations

import functools
import json
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from regops.kinds import KINDS, Problem

if TYPE_CHECKING:
    from pydantic import BaseModel

__all__ = [
    "built",
    "check",
    "conform",
    "defaults",
    "export",
    "field_name",
    "field_parts",
    "model_class",
    "prepare",
    "render",
]


def model_class(kind: str) -> type[BaseModel]:
    """The pydantic model of a file kind (``version``, ``model``, ``dataset``, ``config``)."""
    # Imported here: pydantic (~0.3 s), paid only when a file is checked, not when the cache answers.
    from regops import files

    cls: type[BaseModel] = getattr(files, KINDS[kind].model)
    return cls


def prepare(kinds: Iterable[str] = KINDS) -> None:
    """Build the pydantic models of ``kinds`` now (~0.3 s of CPU), e.g. while waiting on git or on parse workers."""
    for kind in sorted(kinds):
        model_class(kind).model_rebuild()  # the validator too: files.py defers it to first use


def built(kinds: Iterable[str]) -> bool:
    """Whether the validators of ``kinds`` are built, asked without importing pydantic or building them."""
    files = sys.modules.get("regops.files")  # not imported: nothing is built
    return files is not None and all(getattr(files, KINDS[kind].model).__pydantic_complete__ for kind in kinds)


def check(kind: str, data: Any, display: str) -> list[Problem]:
    """Problems of ``data`` against the schema of ``kind``; empty when it conforms."""
    return conform(kind, data, display)[1]


def conform(kind: str, data: Any, display: str) -> tuple[dict[str, Any] | None, list[Problem]]:
    """``data`` checked against the schema of ``kind``: the data to keep (None if it fails), and the problems.

    The data kept is ``data`` itself, or for kinds read with defaults
    (``Kind.normalized``) the same data with every default filled in.
    """
    # Imported here: as model_class, pydantic only when a file is checked.
    from pydantic import ValidationError

    try:
        parsed = model_class(kind).model_validate(data)
    except ValidationError as e:
        return None, [Problem(display, field=field_name(err["loc"]), message=_message(err)) for err in e.errors()]
    return (parsed.model_dump(mode="json", by_alias=True) if KINDS[kind].normalized else data), []


def defaults(kind: str) -> dict[str, Any]:
    """A kind's data with nothing but its defaults (for a file that is missing or broken)."""
    return model_class(kind)().model_dump(mode="json", by_alias=True)


def field_name(loc: Sequence[str | int]) -> str:
    """('transitions', 2, 'at') -> 'transitions[2].at'."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def field_parts(name: str) -> list[str | int]:
    """The inverse of :func:`field_name`."""
    return [int(p[1:-1]) if p.startswith("[") else p for p in re.findall(r"\[\d+\]|[^.\[\]]+", name)]


_TYPE_NAMES: Final = {
    "string_type": "a string",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "dict_type": "a mapping",
    "list_type": "a list",
    "model_type": "a mapping",
}


def _message(error: Any) -> str:
    kind, value = error["type"], error.get("input")
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field (not in the schema: check the spelling)"
    if kind in _TYPE_NAMES:
        shown = f"{type(value).__name__} {value!r}" if value is not None else "null"
        hint = " (quote it to make it a string)" if kind == "string_type" and value is not None else ""
        return f"expected {_TYPE_NAMES[kind]}, found {shown}{hint}"
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind == "literal_error":
        return f"{message[0].lower()}{message[1:]}, found {value!r}"
    return message[0].lower() + message[1:] if message else kind


@functools.cache  # pydantic builds a schema in ~15 ms of CPU; init, upgrade and doctor each want all four
def render(kind: str) -> str:
    """One schema file's exact text."""
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **model_class(kind).model_json_schema(by_alias=True, mode="validation"),
    }
    return json.dumps(schema, indent=2) + "\n"


def export(dest: Path) -> list[Path]:
    """Write every schema into ``dest``; returns the files whose text changed."""
    dest.mkdir(parents=True, exist_ok=True)
    changed: list[Path] = []
    for kind, meta in KINDS.items():
        path = dest / meta.schema
        text = render(kind)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    return changed
