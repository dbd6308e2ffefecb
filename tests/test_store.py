"""The loader: YAML 1.2 plain data, a content-keyed cache, parallel parsing, and positions."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from regops import api, schema, store
from regops.registry import Registry
from regops.store import Loaded, ParseCache, Parsed, load_many, locate, parse_bytes
from tests.conftest import Tree


def test_yaml_12_core_schema_plain_data_only() -> None:
    text = (
        b"a: yes\nb: no\nc: on\nd: 010\ne: 0x1f\nf: 3e-5\n"
        b"g: 2026-01-01T00:00:00Z\nh: 2025-09-08\ni: .inf\nj: ~\nk: 1:30\n"
    )
    data = parse_bytes(text, "f.yaml").data
    assert data is not None
    assert data == {
        "a": "yes",
        "b": "no",
        "c": "on",
        "d": 10,
        "e": 31,
        "f": 3e-5,
        "g": "2026-01-01T00:00:00Z",
        "h": "2025-09-08",
        "i": math.inf,
        "j": None,
        "k": "1:30",
    }


def test_merge_keys_are_plain_keys_not_expansions() -> None:
    assert parse_bytes(b"base: &b {x: 1}\n<<: *b\n", "f.yaml").data == {"base": {"x": 1}, "<<": {"x": 1}}


def test_recursive_alias_is_refused() -> None:
    parsed = parse_bytes(b"a: &a [*a]\n", "f.yaml")
    assert parsed.data is None and parsed.problem is not None
    assert parsed.problem.path == "f.yaml"


def test_multi_document_file_is_refused_with_position() -> None:
    parsed = parse_bytes(b"a: 1\n---\nb: 2\n", "f.yaml")
    assert parsed.problem is not None
    assert (parsed.problem.line, "expected a single document") == (2, "expected a single document")
    assert "expected a single document" in parsed.problem.message


def _bots(loaded: Loaded) -> object:
    """The one field the test files set (regops.yaml-kind data is kept with its defaults filled in)."""
    return None if loaded.data is None else loaded.data["bots"]


def _files(tmp_path: Path, count: int) -> dict[Path, str]:
    """Small regops.yaml-kind files in 7 folders; file 3 does not parse, file 5 breaks the schema."""
    paths = {}
    for i in range(count):
        path = tmp_path / f"d{i % 7}" / f"{i}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        text = {3: "bots: [unclosed\n", 5: "bots: bot-5\n"}.get(i, f"bots: [bot-{i}]\n")
        path.write_text(text)
        paths[path] = "config"
    return paths


def _by_index(paths: dict[Path, str]) -> list[Path]:
    return sorted(paths, key=lambda p: int(p.stem))


def test_cache_serves_unchanged_files_and_never_stale_ones(tmp_path: Path) -> None:
    paths = _files(tmp_path / "reg", 20)
    files = _by_index(paths)
    cache = ParseCache(tmp_path / "cache")
    first = load_many(paths, base=tmp_path, cache=cache)
    assert len(list((tmp_path / "cache").glob("*.marshal"))) == 7  # one cache file per folder
    files[0].write_text("bots: [changed]\n")
    second = load_many(paths, base=tmp_path, cache=cache)
    assert _bots(second[files[0]]) == ["changed"]
    assert {p: r for p, r in second.items() if p != files[0]} == {p: r for p, r in first.items() if p != files[0]}
    # Files that do not parse or break the schema are never cached: reported again, with position and field.
    assert second[files[3]].data is None and second[files[3]].problems[0].line == 2
    assert [(p.field, p.message) for p in second[files[5]].problems] == [("bots", "expected a list, found str 'bot-5'")]


def test_only_files_that_pass_the_schema_are_cached(tmp_path: Path) -> None:
    paths = _files(tmp_path / "reg", 10)
    cache = ParseCache(tmp_path / "cache")
    load_many(paths, base=tmp_path, cache=cache)
    entries = [v for folder in {p.parent for p in paths} for v in cache.read(folder).values()]
    assert sorted(entry["bots"][0] for entry in entries) == sorted(f"bot-{i}" for i in range(10) if i not in (3, 5))
    # The config kind is kept with its defaults filled in, so readers never need pydantic.
    assert all(entry["stages"]["prod"]["from"] == ["staging", "archived"] for entry in entries)


def test_the_same_bytes_are_cached_per_kind(tmp_path: Path) -> None:
    path = tmp_path / "reg" / "x.yaml"
    path.parent.mkdir()
    path.write_text("bots: [a]\n")
    cache = ParseCache(tmp_path / "cache")
    assert _bots(load_many({path: "config"}, base=tmp_path, cache=cache)[path]) == ["a"]
    as_dataset = load_many({path: "dataset"}, base=tmp_path, cache=cache)[path]
    assert as_dataset.data is None and {p.field for p in as_dataset.problems} >= {"bots", "name", "hash"}


def test_a_corrupt_or_unwritable_cache_only_costs_time(tmp_path: Path) -> None:
    paths = _files(tmp_path / "reg", 5)
    files = _by_index(paths)
    cache_dir = tmp_path / "cache"
    load_many(paths, base=tmp_path, cache=ParseCache(cache_dir))
    for cached in cache_dir.glob("*.marshal"):
        cached.write_bytes(b"\x00garbage")
    assert _bots(load_many(paths, base=tmp_path, cache=ParseCache(cache_dir))[files[0]]) == ["bot-0"]
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    assert _bots(load_many(paths, base=tmp_path, cache=ParseCache(blocker))[files[1]]) == ["bot-1"]


def test_cache_location_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REGOPS_CACHE_DIR", str(tmp_path / "c"))
    assert ParseCache.from_environment().root == tmp_path / "c"
    monkeypatch.setenv("REGOPS_NO_CACHE", "1")
    assert ParseCache.from_environment().root is None


def test_parallel_parse_gives_the_same_answers_as_serial(tmp_path: Path) -> None:
    count = store._PARALLEL_THRESHOLD + 50
    paths = _files(tmp_path / "reg", count)
    parallel = load_many(paths, base=tmp_path, cache=ParseCache(None))
    serial = {
        path: load_many({path: kind}, base=tmp_path, cache=ParseCache(None))[path] for path, kind in paths.items()
    }
    assert parallel == serial
    assert sum(1 for loaded in parallel.values() if loaded.data is None) == 2


def test_uncached_files_are_parsed_in_the_batch_and_never_cached(tmp_path: Path) -> None:
    paths = _files(tmp_path / "reg", 6)
    files = _by_index(paths)
    cache = ParseCache(tmp_path / "cache")
    load_many(dict(list(paths.items())[:4]), base=tmp_path, cache=cache)
    before = {p: p.read_bytes() for p in (tmp_path / "cache").glob("*.marshal")}
    missing = tmp_path / "reg" / "d0" / "gone.yaml"
    extra = {files[4]: "config", files[5]: "config", missing: "config"}
    loaded = load_many(dict(list(paths.items())[:2]), base=tmp_path, cache=cache, uncached=extra)
    assert _bots(loaded[files[0]]) == ["bot-0"] and _bots(loaded[files[4]]) == ["bot-4"]
    assert [(p.field, p.message) for p in loaded[files[5]].problems] == [("bots", "expected a list, found str 'bot-5'")]
    assert loaded[missing].problems[0].message.startswith("cannot read: ")
    # Nothing uncached went in: file 4 passed, and its folder still has no entry.
    assert {p: p.read_bytes() for p in (tmp_path / "cache").glob("*.marshal")} == before
    assert cache.read(files[4].parent) == {} and cache.read(files[0].parent) != {}


def test_a_limited_check_reads_every_other_model_yaml_in_its_batch_and_keeps_their_cache(
    tree: Tree, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("REGOPS_CACHE_DIR", str(tmp_path / "cache"))
    Registry.load(tree.root).model_entry("intent")  # its folder's versions cached
    cached = {p: p.read_bytes() for p in (tmp_path / "cache").iterdir()}
    registry = Registry.load(tree.root)
    registry.limit(["sentiment"])
    registry.load_all()
    tree.write("models/intent/model.yaml", "hub: [broken\n")  # read already, with the checked model's files
    config = registry.model_config("intent")
    assert config is not None and config.raw["hub"]["repo"] == "acme-ml/intent"
    assert "intent" not in registry._models
    assert {p: p.read_bytes() for p in (tmp_path / "cache").iterdir() if p in cached} == cached


def test_locate_finds_nested_fields_flow_values_and_list_items(tree: Tree) -> None:
    path = tree.path("models/sentiment/1.2.0.yaml")
    lines = path.read_text().splitlines()
    assert locate(path, ["stage"]) == (lines.index("stage: prod") + 1, 8)
    row = next(i for i, line in enumerate(lines, 1) if "config.json" in line)
    line, col = locate(path, ["artifacts", "files", 1, "path"])
    assert (line, lines[line - 1][col - 1 :].startswith("config.json")) == (row, True)
    assert locate(path, ["transitions", 2])[0] == len(lines)
    # A field that is not there points at its nearest parent.
    assert locate(path, ["training", "nope"])[0] == lines.index("training:") + 1


def test_registry_load_reads_a_model_only_when_asked(tree: Tree) -> None:
    tree.write("models/intent/1.0.0.yaml", "model: [broken\n")
    registry = Registry.load(tree.root)
    assert registry.resolve("sentiment@prod").version == "1.2.0"
    assert "intent" not in registry._models


ODD_DOCUMENTS = (
    "a: &x [1, {b: 2}]\nb: *x\nc: *x\n",
    "a: !!binary aGk=\n",
    "a: !!set {x}\n",
    "a: !!str 12\nb: !!int '7'\nc: !!bool true\nd: !!float '1'\ne: !!null ''\nf: !!timestamp 2024-01-01\n",
    "a: 1\na: 2\n",
    "a: {b: 1, b: 2}\n",
    "? [a]\n: 1\n",
    "k: !!map [1]\n",
    "k: !!seq {a: 1}\n",
    "a: !!python/object:os.system x\n",
    "{1: a, 1.5: b, null: c, true: d}\n",
    "a: 0o17\nb: .inf\nc: ~\nd: 2024-01-01\ne: [yes, no, 010]\n",
    "- 1\n- 2\n",
    "a: &x text\nb: *x\nc: !!str [1]\n",
    "a: !!str {b: 1}\n",
    "&k a: 1\nb: *k\n",
)


@pytest.mark.parametrize("text", ODD_DOCUMENTS)
def test_the_fast_builder_reads_every_document_as_pyyaml_constructor_does(text: str) -> None:
    """Files are built from the parsed nodes without PyYAML's generic walk; data and refusals stay its own."""
    from regops import reader

    fast = parse_bytes(text.encode(), "f.yaml")
    loader = reader._loader()(text)
    try:
        node = loader.get_single_node()
        data = reader.parse_bytes(text.encode(), "f.yaml") if node is None else loader.construct_document(node)
        expected = parse_bytes(text.encode(), "f.yaml") if not isinstance(data, dict) else Parsed(data)
    except Exception:
        expected = None
    finally:
        loader.dispose()
    if expected is None:  # PyYAML refuses it: so do we, with its message
        assert fast.data is None and fast.problem is not None
    else:
        assert fast == expected


def test_an_alias_is_built_once_and_shared() -> None:
    data = parse_bytes(b"a: &x {b: [1]}\nc: *x\n", "f.yaml").data
    assert data is not None and data["a"] is data["c"] and data == {"a": {"b": [1]}, "c": {"b": [1]}}


def test_a_broken_regops_yaml_read_on_first_use_is_still_reported(tree: Tree) -> None:
    registry = Registry.load(tree.root)  # opened before the edit: regops.yaml is read when first needed
    tree.write("regops.yaml", tree.read("regops.yaml").replace("bots:", "bots_:", 1))
    found = [(p.path, p.field, p.message) for p in api.validate(registry=registry)]
    assert (
        "registry/regops.yaml",
        "stages.dev.bots_",
        "unknown field (not in the schema: check the spelling)",
    ) in found
    assert registry.config.raw == schema.defaults("config")  # the defaults alone, as for any broken regops.yaml
