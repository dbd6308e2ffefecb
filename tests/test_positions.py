"""Where a problem is in its file: the fast path (regops.spots, PyYAML's nodes) gives exactly the (line, column)
ruamel.yaml's round-trip loader gives, for every field of every file — or leaves the file to ruamel."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from regops import store
from regops.reader import parse_bytes
from regops.spots import Spots, spots

ROOT = Path(__file__).resolve().parent.parent
CORPUS = sorted(
    p
    for folder in ("tests", "schemas", "registry", ".github", "src/regops/templates")
    for p in (ROOT / folder).rglob("*")
    if p.suffix in (".yaml", ".yml") and p.is_file()
)


def field_paths(data: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every key and list index under ``data``, and a missing child of each (a name, an index, past the end)."""
    yield path
    yield (*path, "no_such_field")
    yield (*path, 0)
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(key, (str, int)) and not isinstance(key, bool):
                yield from field_paths(value, (*path, key))
    elif isinstance(data, list):
        yield (*path, len(data))
        for index, value in enumerate(data):
            yield from field_paths(value, (*path, index))


def round_trip(text: str) -> Any:
    """ruamel's answer, or None where ruamel itself fails outside YAMLError (an impossible date: ValueError)."""
    try:
        return store.round_trip(text)
    except ValueError:
        return None


def assert_same(text: str) -> bool:
    """The fast path gives ruamel's position for every field path; True when it took the file (not ruamel)."""
    fast = spots(text)
    if fast is None:
        return False
    slow = round_trip(text)
    if slow is None:
        return True  # ruamel raises (not a YAMLError): today positions() fails; the fast path answers
    assert slow is not store.UNREADABLE, f"the fast path took a file ruamel cannot read:\n{text}"
    parsed = parse_bytes(text.encode(), "f.yaml").data
    paths = {*field_paths(slow), *field_paths(parsed)}
    for path in paths:
        assert store.position(fast, path) == store.position(slow, path), f"{path} in:\n{text}"
    return True


def mutations(text: str) -> Iterator[str]:
    """The file, and files with problems made from it: a line gone, moved in or out, a value turned into a list or
    mapping, an extra key, a value emptied, a tab, a stray character."""
    yield text
    lines = text.splitlines(keepends=True)
    step = max(1, len(lines) // 6)
    for i in range(0, len(lines), step):
        line = lines[i]
        before, after = "".join(lines[:i]), "".join(lines[i + 1 :])
        yield before + after
        yield before + " " + line + after
        yield before + line.removeprefix(" ") + after
        if ": " in line:
            head, _, _ = line.partition(": ")
            yield before + f"{head}: [x, {{y: 1}}]\n" + after
            yield before + f"{head}:\n" + after
            yield before + f"{head}:\n{head.replace('-', ' ')}  extra_key: 1\n" + after
        yield before + "\t" + line + after
        yield before + line.replace(":", "", 1) + after
    yield text + "extra_key: {a: [1, 2]}\n"


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_field_of_every_file_and_its_mutations_is_where_ruamel_says(path: Path) -> None:
    texts = list(mutations(path.read_text(encoding="utf-8-sig")))
    taken = [assert_same(text) for text in texts]
    # A registry file is plain: the fast path takes it (a workflow's `${{ !x }}` or cron `*` goes to ruamel).
    assert taken[0] or "registry" not in path.parts, f"the fast path left {path} (a plain file) to ruamel"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    out = tmp_path_factory.mktemp("generated")
    command = [sys.executable, str(ROOT / "benchmarks/generate.py"), "--models", "2", "--versions", "2"]
    subprocess.run([*command, "--out", str(out), "--jobs", "1"], check=True, capture_output=True)
    return sorted((out / "registry").rglob("*.yaml"))


def test_a_generated_registry_and_its_mutations(generated: list[Path]) -> None:
    assert len(generated) > 10
    for path in generated:
        texts = list(mutations(path.read_text(encoding="utf-8")))
        taken = [assert_same(text) for text in texts]
        assert taken[0] and sum(taken) > len(taken) // 3, path


# --- the fast path's edges -------------------------------------------------------------


PLAIN = "name: x\nsizes: [1, 2]\nmeta: {a: 1}\n"


@pytest.mark.parametrize(
    "text",
    [
        "a: &anchor 1\nb: 2\n",
        "a: &anchor {x: 1}\nb: *anchor\n",
        "a: !!str 5\nb: {c: 1}\n",
        "a: !custom x\n",
        "base: {x: 1}\nm:\n  <<: {y: 2}\n  z: 3\n",
        "%YAML 1.1\n---\na: yes\nb: 010\n",
        "a: 1\n---\nb: 2\n",
        "? [a, b]\n: 1\nc: 2\n",
        "1_000: x\n0x10: y\nc: 1\n",
        "true: x\nnull: y\n1.5: z\n",
        "2024-01-01: x\n.5: y\n",
        "a:\nb: 1\n",
        "a: x\n\tb: 1\n",
        "a: [1, , 2]\n",
        "just a value\n",
        "a: 1\nb: [1\n",
    ],
)
def test_a_file_with_a_feature_the_fast_path_leaves_gets_ruamels_answer(tmp_path: Path, text: str) -> None:
    path = tmp_path / "f.yaml"
    path.write_text(text)
    assert spots(text) is None
    found, slow = store.positions(path), store.round_trip(text)
    assert not isinstance(found, Spots)
    for field in field_paths(slow):
        assert outcome(found, field) == outcome(slow, field)


def outcome(node: Any, field: tuple[Any, ...]) -> object:
    """The position, or the error today's code raises (ruamel's lc has no entry for a merged key)."""
    try:
        return store.position(node, field)
    except KeyError as e:
        return repr(e)


def test_a_duplicate_key_is_left_to_ruamel_which_cannot_read_the_file(tmp_path: Path) -> None:
    text = "a: 1\nb: {c: 1}\na: 2\n"
    (tmp_path / "f.yaml").write_text(text)
    assert spots(text) is None
    assert store.position(store.positions(tmp_path / "f.yaml"), ["b", "c"]) == (0, 0)


def test_keys_are_found_as_the_reader_builds_them(tmp_path: Path) -> None:
    text = 'name: x\n1: one\n"2": two\nyes: y\nlist:\n  - {a: 1}\n  - [b]\n'
    (tmp_path / "f.yaml").write_text(text)
    found = store.positions(tmp_path / "f.yaml")
    assert isinstance(found, Spots)
    assert store.position(found, [1]) == (2, 4)
    assert store.position(found, ["1"]) == (1, 1)  # "1" is not the key 1: the nearest parent, the document
    assert store.position(found, ["2"]) == (3, 6)
    assert store.position(found, ["yes"]) == (4, 6)
    assert store.position(found, ["list", 1, 0]) == (7, 6)
    assert store.position(found, ["list", 0, "a", "deeper"]) == (6, 9)
    assert store.position(found, ["list", 5]) == (5, 1)
    assert assert_same(text)


def test_an_empty_file_and_an_unreadable_one(tmp_path: Path) -> None:
    for text, want in (("", (1, 1)), ("# only a comment\n", (1, 1))):
        (tmp_path / "f.yaml").write_text(text)
        assert store.position(store.positions(tmp_path / "f.yaml"), ["a", "b"]) == want
        assert store.position(round_trip(text), ["a", "b"]) == want
    (tmp_path / "f.yaml").write_bytes(b"a: \xff\n")
    assert store.position(store.positions(tmp_path / "f.yaml"), ["a"]) == (0, 0)
    assert store.position(store.positions(tmp_path / "missing.yaml"), ["a"]) == (0, 0)


def test_an_impossible_date_ruamel_fails_on_is_found_by_the_fast_path(tmp_path: Path) -> None:
    text = "name: x\ncreated_at: 2022-13-45\n"
    with pytest.raises(ValueError, match="month"):
        store.round_trip(text)
    (tmp_path / "f.yaml").write_text(text)
    assert store.position(store.positions(tmp_path / "f.yaml"), ["created_at"]) == (2, 13)


# --- a property over generated YAML-ish documents --------------------------------------

# Keys and values the fast path takes, several times over, and ones it leaves to ruamel (or that differ).
KEYS = st.sampled_from(
    ["name", "a", "b", "_x", "é", "yes", "no", "on", "1", "0", "-1", '"q"', "'s'", '"1"', "a b", "x:y", "k#"] * 4
    + ["01", "1_0", "0x1", "true", "null", "~", "1.5", ".5", "-a", "2024-01-01", "<<", "=", "🙂"]
)  # fmt: skip
SCALARS = st.sampled_from(
    ["x", "1", "''", '""', "null", "yes", "2024-01-01T00:00:00Z", "1_000", "0o7", "a b", "'multi\n  line'",
     '"esc \\" q"', "|\n  block\n", ">-\n  folded\n", "🙂x", "x # c", "[1, 2]", "{k: v}", "[]", "{}"] * 3
    + ["", "~", "2022-13-45", "&a v", "*a", "!!str 1", "{a: , b}"]
)  # fmt: skip


def document(depth: int) -> st.SearchStrategy[str]:
    """A block mapping, its values scalars, block lists, nested mappings or flow collections, at some indent."""
    leaf = SCALARS.map(lambda s: " " + s if s else s)
    if depth == 0:
        return leaf.map(lambda s: s + "\n")
    child = document(depth - 1)
    nested = child.map(lambda body: "\n" + "".join("  " + line + "\n" for line in body.splitlines()))
    items = st.lists(st.one_of(SCALARS, child), min_size=1, max_size=3).map(
        lambda xs: "\n" + "".join("- " + x.strip().replace("\n", "\n  ") + "\n" for x in xs)
    )
    entry = st.tuples(
        KEYS, st.one_of(leaf.map(lambda s: s + "\n"), nested, items), st.sampled_from(["", "# c\n", "\n"])
    )
    return st.lists(entry, min_size=1, max_size=4).map(lambda es: "".join(c + k + ":" + v for k, v, c in es))


# Line breaks and characters the two scanners could take differently: NEL, LS, PS, controls, a BOM, NBSP, NUL, astral.
ODD = [
    "\x85",
    "\u2028",
    "\u2029",
    "\x07",
    "\x9f",
    "\x7f",
    "\ufeff",
    "\xa0",
    "\x00",
    "\U0001f642",
    '"',
    "?",
    "---\n",
    "...\n",
    "\r",
]


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = draw(document(2))
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(0, len(text)))
        edit = draw(st.sampled_from(["", " ", "  ", "\n", ":", "- ", "\t", "#", "[", "}", ",", "'", "\r\n", *ODD]))
        cut = draw(st.integers(0, 2))
        text = text[:at] + edit + text[at + cut :]
    return text


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
@example("a:\n  - x\n  -\n  - {b: 1}\n")
@example("a: 'x\n\n  y'\nb: |\n  z\nc: 1\n")
def test_generated_documents_get_ruamels_answer(text: str) -> None:
    event("taken by the fast path" if assert_same(text) else "left to ruamel")


# --- what validate pays ---------------------------------------------------------------------

RUN_VALIDATE = """
import sys
sys.argv = ["regops", "validate", "--registry", sys.argv[1]]
from regops.launch import run
code = run()
print("ruamel imported:", any(m.startswith("ruamel") for m in sys.modules))
sys.exit(code)
"""


def test_validate_places_the_problems_of_a_plain_file_without_ruamel(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "tests/data/registry", tmp_path / "registry")
    path = tmp_path / "registry/models/sentiment/1.0.0.yaml"
    lines = path.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("created_by:"))
    lines[at] = "created_by: [x]"
    path.write_text("\n".join([*lines, "extra_key: 1", ""]))
    done = subprocess.run(
        [sys.executable, "-c", RUN_VALIDATE, str(tmp_path / "registry")], check=False, capture_output=True, text=True
    )
    assert done.returncode == 1, done.stderr
    assert f"registry/models/sentiment/1.0.0.yaml:{at + 1}:1: created_by: expected a string" in done.stdout
    assert f"registry/models/sentiment/1.0.0.yaml:{len(lines) + 1}:12: extra_key: unknown field" in done.stdout
    assert "ruamel imported: False" in done.stdout


def test_a_field_below_a_single_value_is_placed_at_the_value(tmp_path: Path) -> None:
    """ruamel's path used to ask the single value for its `lc` (AttributeError); both paths give the value's place."""
    text = "name: x\nmeta: {size: 1.5}\n"
    (tmp_path / "f.yaml").write_text(text)
    assert store.position(store.round_trip(text), ["meta", "size", "unit"]) == (2, 14)
    assert store.position(store.positions(tmp_path / "f.yaml"), ["meta", "size", "unit"]) == (2, 14)
    assert store.position(store.round_trip(text + "x: &a 1\n"), ["name", "first"]) == (1, 7)


@pytest.mark.parametrize("odd", ODD, ids=ascii)
def test_each_odd_character_anywhere_in_a_plain_file(odd: str) -> None:
    text = 'name: é🙂 x\nmeta: {a: "q", b: [1, 2]}\nlist:\n  - k: v\n    n: 1\n'
    taken = [assert_same(text[:at] + odd + text[at:]) for at in range(len(text) + 1)]
    assert any(taken) == (odd not in "\x85\u2028\u2029\x07\x9f\x7f\ufeff\x00")  # those go to ruamel


@pytest.mark.parametrize(
    "text",
    [
        "- a\n- {b: 1}\n- [c]\n",
        "# head\n---\n# more\nname: x\nlist:\n- 1\n-   {k: v}\n...\n",
        "name: >\n  folded\n  text\nnext: |\n  kept\nlast: 'multi\n\n  line'\n",
        "  indented: 1\n  again: {a: [1, {b: 2}]}\n",
        'quoted: "a: b"\n\'key one\': 1\n"key\\ttwo": 2\n? complex\n: value\n',
        "a: x\r\nb:\r\n  c: 1\r\n",
    ],
)
def test_plain_shapes_are_taken_by_the_fast_path_with_ruamels_answer(text: str) -> None:
    assert assert_same(text)
