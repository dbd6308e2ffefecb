"""Where each field of a YAML file is, from PyYAML's composed nodes (libyaml, under a millisecond a file).

The same 0-based (line, column) that ruamel.yaml's round-trip loader records (about 20 ms a file), for the plain
files regops writes and people hand-edit: a field with a single value is where its value starts, a mapping or list
is where its key starts, a list item is where the item starts. :func:`spots` declines (None) every document
whose positions or keys could come out differently from ruamel's: anchors, aliases, tags, merge keys (``<<``),
directives, tabs, control characters and unusual line breaks, empty values, several documents, a key that is not
plain text or a plain integer, a duplicate key (ruamel refuses the file), a top level that is a single value, text
libyaml refuses. :func:`regops.store.positions` then asks ruamel, as before.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from regops import reader

__all__ = ["Spots", "spots"]

Spot = tuple[int, int]

# A tag (!), an anchor (&) or an alias (*) where a token may start, a merge key, a directive, a tab, a control
# character, a BOM past the start, a line break other than \n and \r (the two scanners take some of these
# differently): ruamel's answer.
_UNUSUAL: Final = re.compile(
    r"(?:^|[\s\[\]{},:?-])[!&*]|<<|^%|[\t\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]",
    re.MULTILINE,
)
# A plain key both readers take for the same int (ruamel also reads 0o, 0x, 0b, 1_000 and 010 its own way).
_INT_KEY: Final = re.compile(r"-?(?:0|[1-9][0-9]*)")
_STR: Final = "tag:yaml.org,2002:str"
_INT: Final = "tag:yaml.org,2002:int"


@dataclass(frozen=True, slots=True)
class Spots:
    """A node's spot, and for a mapping or list each child's: (where the field is, the child's own spots)."""

    spot: Spot
    fields: dict[str | int, tuple[Spot, Spots]] | list[tuple[Spot, Spots]] | None = None

    def find(self, field: Sequence[str | int]) -> Spot:
        """0-based (line, column) of ``field``, or of its nearest existing parent."""
        found, node = self.spot, self
        for part in field:
            child = node.child(part)
            if child is None:
                break
            found, node = child
        return found

    def child(self, part: str | int) -> tuple[Spot, Spots] | None:
        """Where ``part`` is and its spots, or None when this node has no such field (or is a single value)."""
        fields = self.fields
        if isinstance(fields, dict):
            return fields.get(part)
        if isinstance(fields, list) and isinstance(part, int) and 0 <= part < len(fields):
            return fields[part]
        return None


class _Differs(Exception):
    """The document has something ruamel may place or key differently."""


def spots(text: str) -> Spots | None:
    """Every field's spot in ``text``, or None where ruamel's answer could differ (see the module's docstring)."""
    if _UNUSUAL.search(text):
        return None
    # Imported here: PyYAML (~15 ms) only when a file is parsed; a warm read from the cache never imports it.
    from yaml import YAMLError
    from yaml.nodes import ScalarNode

    try:
        root = reader.compose(text)
    except YAMLError:
        return None
    if root is None:
        return Spots((0, 0))  # nothing but comments: ruamel reads None, found at (1, 1)
    if isinstance(root, ScalarNode):
        return None
    try:
        return _build(root)
    except _Differs:
        return None


def _build(node: Any) -> Spots:
    spot = (node.start_mark.line, node.start_mark.column)
    if node.id == "mapping":
        return Spots(spot, _mapping(node))
    if node.id == "sequence":
        return Spots(spot, [(child.spot, child) for child in map(_build, node.value)])
    if not node.style and not node.value:
        raise _Differs  # an empty value (`key:`): ruamel places it where the next token starts
    return Spots(spot)


def _mapping(node: Any) -> dict[str | int, tuple[Spot, Spots]]:
    fields: dict[str | int, tuple[Spot, Spots]] = {}
    for key_node, value_node in node.value:
        key = _key(key_node)
        if key in fields:
            raise _Differs  # ruamel refuses a duplicate key: the file is unreadable to it
        child = _build(value_node)
        mark = key_node.start_mark
        fields[key] = (child.spot, child) if child.fields is None else ((mark.line, mark.column), child)
    return fields


def _key(node: Any) -> str | int:
    """The key as both readers build it: text (quoted, or plain starting with a letter or '_'), or a plain int."""
    if node.id != "scalar":
        raise _Differs
    text: str = node.value
    if node.tag == _STR and (node.style or text[:1].isalpha() or text[:1] == "_"):
        return text
    if node.tag == _INT and _INT_KEY.fullmatch(text):
        return int(text)
    raise _Differs
