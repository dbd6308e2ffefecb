"""The safe YAML 1.2 reader: one file's bytes to plain data, or the one problem that stopped it.

PyYAML's libyaml-based C parser with a resolver and constructor of our own: plain
data only (dict, list, str, int, float, bool, None), YAML 1.2's core schema
(``yes`` and ``no`` are strings, ``010`` is ten), timestamps left as strings for
``files.py`` to check. Safe by construction: no tag builds an object, files over
:data:`MAX_FILE_BYTES` are refused before parsing, aliases may not expand a
document past :data:`MAX_NODES` nodes, duplicate keys are refused, the text must
be UTF-8 and the document one mapping. :mod:`regops.store` reads many files with
it (cache, processes) and writes them back.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, Final

from regops.kinds import Problem

if TYPE_CHECKING:
    # Imported here: PyYAML (~15 ms) only when a file is parsed; a warm read from the cache never imports it.
    import yaml
    from yaml.nodes import Node

__all__ = ["MAX_FILE_BYTES", "MAX_NODES", "SCALARS", "Data", "Parsed", "compose", "parse_bytes", "prepare"]

MAX_FILE_BYTES: Final = 1 << 20
MAX_NODES: Final = 50_000

Data = dict[str, Any]


@dataclass(frozen=True)
class Parsed:
    """A file's data, or the one problem that stopped it from being read."""

    data: Data | None
    problem: Problem | None = None


# --- the safe YAML 1.2 reader ------------------------------------------------


class _Refused(Exception):
    def __init__(self, message: str, node: Node | None = None) -> None:
        self.message = message
        self.node = node


@cache
def _resolver() -> Any:
    """The resolver class: YAML 1.2's core schema, each node's tag found with as little work as can be."""
    # Imported here: PyYAML (~15 ms) only when a file is parsed; a warm read from the cache never imports it.
    from yaml.nodes import ScalarNode, SequenceNode
    from yaml.resolver import BaseResolver

    class Resolver(BaseResolver):
        """YAML 1.2 core schema: no timestamps, no yes/no/on/off, no sexagesimals, no merge keys."""

        # No path resolvers: the parser's calls per node need not track where it is.
        def descend_resolver(self, current_node: Any, current_index: Any) -> None:
            return None

        def ascend_resolver(self) -> None:
            return None

        # BaseResolver.resolve without its path and wildcard resolvers (none here): called for every node.
        def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
            if kind is ScalarNode:
                if implicit[0]:
                    for tag, pattern in implicit_resolvers.get(value[:1], ()):
                        if pattern.match(value):
                            return tag
                return scalar_tag
            return sequence_tag if kind is SequenceNode else mapping_tag

    Resolver.yaml_implicit_resolvers = {}
    for tag, pattern, first in SCALARS:
        Resolver.add_implicit_resolver(f"tag:yaml.org,2002:{tag}", re.compile(pattern), list(first))
    # Looked up once here, not per node (the parser calls resolve for every node).
    implicit_resolvers: dict[str, list[tuple[str, re.Pattern[str]]]] = Resolver.yaml_implicit_resolvers
    scalar_tag: str = Resolver.DEFAULT_SCALAR_TAG
    sequence_tag: str = Resolver.DEFAULT_SEQUENCE_TAG
    mapping_tag: str = Resolver.DEFAULT_MAPPING_TAG

    return Resolver


def prepare() -> None:
    """Import PyYAML and build the loader now (~0.03 s of CPU): before forking parse workers, so that each does
    not do it again, or while waiting on git."""
    _loader()


@cache
def _loader() -> Any:
    """The loader class, built on first use: a warm read never imports PyYAML."""
    # Imported here: PyYAML (~15 ms) only when a file is parsed; a warm read from the cache never imports it.
    from yaml.constructor import ConstructorError, SafeConstructor

    # The libyaml parser: PyYAML builds it when libyaml is present (every wheel has it).
    from yaml.cyaml import CParser  # type: ignore[attr-defined]
    from yaml.nodes import MappingNode, ScalarNode

    class Constructor(SafeConstructor):
        def construct_yaml_int(self, node: ScalarNode) -> int:
            text = str(self.construct_scalar(node))
            if text.startswith(("0o", "0x")):
                return int(text[2:], 8 if text[1] == "o" else 16)
            return int(text, 10)

        def construct_yaml_float(self, node: ScalarNode) -> float:
            text = str(self.construct_scalar(node)).lower()
            if text.endswith(".inf"):
                return -math.inf if text.startswith("-") else math.inf
            if text == ".nan":
                return math.nan
            return float(text)

        def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
            if not isinstance(node, MappingNode):
                raise ConstructorError(None, None, f"expected a mapping, found {node.id}", node.start_mark)
            mapping: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, ScalarNode):
                    raise ConstructorError(None, None, "mapping keys must be plain values", key_node.start_mark)
                key = self.construct_object(key_node, deep=deep)
                if key in mapping:
                    raise ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
                mapping[key] = self.construct_object(value_node, deep=deep)
            return mapping

    Constructor.add_constructor("tag:yaml.org,2002:int", Constructor.construct_yaml_int)  # type: ignore[type-var]
    Constructor.add_constructor("tag:yaml.org,2002:float", Constructor.construct_yaml_float)  # type: ignore[type-var]
    # Even an explicit !!timestamp stays text: files.py parses timestamps, with its own rules.
    Constructor.add_constructor("tag:yaml.org,2002:timestamp", Constructor.construct_yaml_str)  # type: ignore[type-var]

    Resolver = _resolver()

    class Loader(CParser, Constructor, Resolver):  # type: ignore[valid-type,misc]
        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            Constructor.__init__(self)
            Resolver.__init__(self)

    return Loader


SCALARS: Final = (
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    (
        "float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+0123456789.",
    ),
)


class _Unusual(Exception):
    """A node the fast builder leaves to PyYAML's constructor: a tag outside the core schema, or a refusal."""


_FAST_SCALARS: Final = frozenset(f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "timestamp"))
# Plain text as the constructor builds it (an explicit !!timestamp stays text: files.py parses timestamps).
_TEXT: Final = frozenset(("tag:yaml.org,2002:str", "tag:yaml.org,2002:timestamp"))
_SEQ: Final = "tag:yaml.org,2002:seq"
_MAP: Final = "tag:yaml.org,2002:map"


def _plain(loader: Any, root: Node) -> Any:
    """The document's data: built by :class:`_Builder` (each node's constructor called directly, about twice as
    fast as PyYAML's generic walk), or by PyYAML's constructor — the same data, and its refusals, word for word —
    when a node has an unusual tag or the document is refused."""
    try:
        return _Builder(loader).build(root)
    except _Unusual:
        return loader.construct_document(root)


class _Builder:
    """Plain data from composed nodes, as the loader's constructor builds it (an alias's node built once, shared)."""

    def __init__(self, loader: Any) -> None:
        # Imported here: PyYAML (~15 ms) only when a file is parsed; a warm read from the cache never imports it.
        from yaml.nodes import MappingNode, ScalarNode, SequenceNode

        self.loader, self.memo = loader, dict[int, Any]()
        self.kinds = {ScalarNode: "scalar", SequenceNode: _SEQ, MappingNode: _MAP}

    def build(self, node: Node) -> Any:
        tag, kind = node.tag, self.kinds.get(type(node))
        if kind == "scalar" and tag in _TEXT:
            return node.value  # what construct_yaml_str returns for a scalar node; text needs no memo
        key = id(node)
        if key in self.memo:
            return self.memo[key]
        if kind == "scalar" and tag in _FAST_SCALARS:
            value = self.memo[key] = self.loader.yaml_constructors[tag](self.loader, node)
        elif kind == tag == _SEQ:
            value = self.memo[key] = []
            value.extend(self.build(child) for child in node.value)
        elif kind == tag == _MAP:
            value = self.memo[key] = {}
            for key_node, value_node in node.value:
                name = self.build(key_node) if self.kinds.get(type(key_node)) == "scalar" else _unusual()
                value[name] = self.build(value_node) if name not in value else _unusual()
        else:
            _unusual()
        return value


def _unusual() -> Any:
    raise _Unusual


def _expanded_size(root: Node) -> int:
    """Nodes the document has once aliases are expanded (an alias bomb is a tiny file with billions)."""
    # Imported here: PyYAML (~15 ms) only when a file is parsed; a warm read from the cache never imports it.
    from yaml.nodes import MappingNode, SequenceNode

    sizes: dict[int, int] = {}
    busy: set[int] = set()

    def size(node: Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in busy:
            raise _Refused("an alias refers to a node that contains it (a recursive document)", node)
        busy.add(key)
        total = 1
        if isinstance(node, SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        busy.discard(key)
        sizes[key] = min(total, MAX_NODES + 1)
        return sizes[key]

    return size(root)


def parse_bytes(raw: bytes, path: str) -> Parsed:  # noqa: PLR0911 - one return per refusal
    """Parse one file's bytes into plain data, or say why not."""
    if len(raw) > MAX_FILE_BYTES:
        return _refuse(path, f"file is over the {MAX_FILE_BYTES:,}-byte limit for registry files")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        col = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        return _refuse(path, f"not valid UTF-8 (byte 0x{raw[e.start]:02x})", line, col)
    # Imported here: PyYAML (~15 ms) only when a file is parsed; a warm read from the cache never imports it.
    import yaml
    from yaml.constructor import ConstructorError

    loader = _loader()(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return _refuse(path, "file is empty; expected a mapping of fields")
        # Only an alias (*name) can make a small file expand; most files have none.
        if "*" in text and _expanded_size(node) > MAX_NODES:
            raise _Refused(f"aliases expand the document past {MAX_NODES:,} nodes (an alias bomb?)", node)
        data = _plain(loader, node)
    except _Refused as e:
        mark = e.node.start_mark if e.node is not None else None
        return _refuse(path, e.message, *_position(mark))
    except ConstructorError as e:
        return _refuse(path, _constructor_message(e), *_position(e.problem_mark))
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        return _refuse(path, _yaml_message(e, text, mark), *_position(mark))
    except yaml.YAMLError as e:
        return _refuse(path, f"not valid YAML: {e}")
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"a single value ({type(data).__name__})"
        return _refuse(path, f"the top level must be a mapping of fields, found {kind}", 1, 1)
    return Parsed(data)


def compose(text: str) -> Node | None:
    """The one document in ``text`` as PyYAML's nodes (None when it has none), marks and all; raises YAMLError."""
    loader = _loader()(text)
    try:
        return loader.get_single_node()  # type: ignore[no-any-return]
    finally:
        loader.dispose()


def _refuse(path: str, message: str, line: int = 0, col: int = 0) -> Parsed:
    return Parsed(None, Problem(path=path, line=line, col=col, message=message))


def _position(mark: Any) -> tuple[int, int]:
    return (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)


def _yaml_message(error: yaml.MarkedYAMLError, text: str, mark: Any) -> str:
    message = "; ".join(part for part in (error.context, error.problem) if part) or "syntax error"
    if mark is not None and text.splitlines()[mark.line : mark.line + 1] and "\t" in text.splitlines()[mark.line]:
        message += " (a tab: YAML indents with spaces only)"
    return f"not valid YAML: {message}"


def _constructor_message(error: yaml.constructor.ConstructorError) -> str:
    problem = error.problem or "cannot be read"
    if problem.startswith("could not determine a constructor for the tag"):
        tag = problem.rsplit(" ", 1)[-1]
        return f"tag {tag} is not allowed: registry files hold plain data only"
    return problem
