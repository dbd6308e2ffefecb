"""schemas/*.json: generated from the pydantic models, committed, and in agreement with them."""

from __future__ import annotations

import functools
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import ValidationError

from regops import store
from regops.cli import main
from regops.kinds import KINDS
from regops.schema import model_class, render
from tests.conftest import DATA, REPO, Tree
from tests.test_validate import CASES


def kind_of(path: Path) -> str:
    if path.name == "regops.yaml":
        return "config"
    if path.name == "model.yaml":
        return "model"
    return "dataset" if "datasets" in path.parts else "version"


def test_committed_schemas_match_the_models() -> None:
    for kind, meta in KINDS.items():
        committed = (REPO / "schemas" / meta.schema).read_text(encoding="utf-8")
        assert committed == render(kind), f"schemas/{meta.schema} is stale: run `regops schema export`"


def test_schema_export_writes_and_then_reports_up_to_date(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dest = tmp_path / "schemas"
    assert main(["schema", "export", "--dest", str(dest)]) == 0
    assert sorted(p.name for p in dest.iterdir()) == sorted(k.schema for k in KINDS.values())
    capsys.readouterr()
    assert main(["schema", "export", "--dest", str(dest), "--check"]) == 0
    assert capsys.readouterr().out.strip() == f"{dest}: up to date"
    (dest / "model.schema.json").write_text("{}")
    assert main(["schema", "export", "--dest", str(dest), "--check"]) == 1


def test_every_registry_file_points_editors_at_its_schema() -> None:
    for root in (REPO / "registry", DATA / "registry"):
        for path in root.rglob("*.yaml"):
            first = path.read_text(encoding="utf-8").splitlines()[0]
            target = (path.parent / first.removeprefix("# yaml-language-server: $schema=")).resolve()
            assert first.startswith("# yaml-language-server: $schema="), path
            assert target == (root.parent / "schemas" / KINDS[kind_of(path)].schema).resolve(), path


# --- the corpus: every good file, every bad case, and mutations of the good ones ----


def _good_files() -> list[Path]:
    return sorted([*(REPO / "registry").rglob("*.yaml"), *(DATA / "registry").rglob("*.yaml")])


def _mutations(data: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Remove each field, give each value a wrong type, add an unknown field — at the top and one level down.

    Each mutation is a new document sharing what it leaves unchanged with ``data`` (neither validator writes into
    what it checks)."""
    wrong: list[Any] = ["text", 7, 1.5, True, None, [], {}]
    for key, value in data.items():
        yield f"-{key}", {k: v for k, v in data.items() if k != key}
        for replacement in wrong:
            if type(replacement) is not type(value):
                yield f"{key}={replacement!r}", {**data, key: replacement}
        if isinstance(value, dict) and value:
            inner = next(iter(value))
            yield f"{key}.{inner}={{...}}", {**data, key: {**value, inner: {"unexpected": 1}}}
            yield f"{key}.zz_unknown", {**data, key: {**value, "zz_unknown": 1}}
    yield "+unknown", {**data, "zz_unknown": 1}


def _corpus(tmp: Path) -> Iterator[tuple[str, str, Any]]:
    for path in _good_files():
        parsed = store.parse_bytes(path.read_bytes(), path.name)
        assert parsed.data is not None, parsed.problem
        yield path.as_posix(), kind_of(path), parsed.data
        for label, mutated in _mutations(parsed.data):
            yield f"{path.as_posix()} {label}", kind_of(path), mutated
    for case in CASES:
        root = tmp / case.id.replace(" ", "_").replace("/", "_")
        shutil.copytree(DATA / "registry", root / "registry", copy_function=shutil.copyfile)
        case.edit(Tree(root))
        for path in sorted((root / "registry").rglob("*.y*ml")):
            parsed = _parsed(path.read_bytes(), path.name)
            if parsed.data is not None:
                yield f"{case.id}: {path.name}", kind_of(path), parsed.data


@functools.cache
def _parsed(raw: bytes, name: str) -> store.Parsed:
    """Each file's parse, made once: most bad cases leave most files byte for byte as the good registry has them."""
    return store.parse_bytes(raw, name)


def _distinct(corpus: Iterator[tuple[str, str, Any]]) -> Iterator[tuple[str, str, Any]]:
    """Each document once (most bad cases leave most files as they are): both validators are deterministic, so a
    repeat can only repeat a verdict. ``repr`` tells 1 from True, 1.0 and '1'; key order only costs a repeat."""
    seen = set()
    for label, kind, data in corpus:
        if (key := (kind, repr(data))) not in seen:
            seen.add(key)
            yield label, kind, data


def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with each ``#/$defs/`` reference replaced by what it names, so the validator resolves none (a third
    of its time). The same schema: in draft 2020-12 a $ref with sibling keywords applies both, as ``allOf`` does."""
    defs = schema.get("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, list):
            return [inline(item) for item in node]
        if not isinstance(node, dict):
            return node
        rest = {key: inline(value) for key, value in node.items() if key not in ("$ref", "$defs")}
        if "$ref" not in node:
            return rest
        target = inline(defs[node["$ref"].removeprefix("#/$defs/")])  # KeyError: a reference outside $defs
        return {"allOf": [target], **rest} if rest else target

    inlined: dict[str, Any] = inline(schema)
    return inlined


def test_json_schema_and_pydantic_accept_and_reject_the_same_files(tmp_path: Path) -> None:
    validators = {
        kind: jsonschema.Draft202012Validator(_inlined(json.loads((REPO / "schemas" / meta.schema).read_text())))
        for kind, meta in KINDS.items()
    }
    seen = accepted = 0
    disagreements = []
    for label, kind, data in _distinct(_corpus(tmp_path)):
        try:
            model_class(kind).model_validate(data)
            by_pydantic = True
        except ValidationError:
            by_pydantic = False
        by_schema = validators[kind].is_valid(data)
        seen += 1
        accepted += by_pydantic
        if by_pydantic != by_schema:
            disagreements.append(f"{label}: pydantic {by_pydantic}, JSON Schema {by_schema}")
    assert not disagreements, "\n".join(disagreements[:20])
    # The corpus must hold both kinds in quantity, or the agreement says little.
    assert seen > 1000 and 50 < accepted < seen - 500, (seen, accepted)


def test_the_inlined_schemas_judge_as_the_committed_ones() -> None:
    """What the corpus test validates with is the committed schema: no reference left, the same verdicts."""
    for kind, meta in KINDS.items():
        committed = json.loads((REPO / "schemas" / meta.schema).read_text())
        inlined = _inlined(committed)
        assert "$ref" not in json.dumps(inlined) and committed["$defs"], kind
        raw, flat = jsonschema.Draft202012Validator(committed), jsonschema.Draft202012Validator(inlined)
        for path in (p for p in _good_files() if kind_of(p) == kind):
            data = store.parse_bytes(path.read_bytes(), path.name).data
            verdicts = [(raw.is_valid(d), flat.is_valid(d)) for d in (data, *(m for _, m in _mutations(data)))]
            assert all(a == b for a, b in verdicts) and {a for a, _ in verdicts} == {True, False}, path
            break
