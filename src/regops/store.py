"""The only module that reads YAML.

Two readers, each for what it is best at:

* the fast path (:func:`load_many`) parses with PyYAML's libyaml-based C
  parser and a Python constructor of our own; it builds plain data only
  (dict, list, str, int, float, bool, None), follows YAML 1.2's core schema
  (``yes`` and ``no`` are strings, ``010`` is ten) and leaves timestamps as
  strings for ``model.py`` to check. Parsed files are cached by content
  (see :class:`ParseCache`), and a cold parse of many files uses both cores.
* the round-trip reader (ruamel.yaml) is used only when something is wrong:
  it finds the line and column of a field in just the offending file
  (:func:`locate`).

Safe by construction: no tag builds an object, files over 1 MiB are refused
before parsing, aliases may not expand a document past ``MAX_NODES`` nodes,
duplicate keys are refused, the text must be UTF-8, and the document must be
one mapping. Each refusal is a :class:`~regops.model.Problem`, never a traceback.
"""

from __future__ import annotations

import contextlib
import hashlib
import marshal
import math
import os
import re
import sys
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml
from yaml.constructor import ConstructorError, SafeConstructor

# The libyaml parser: PyYAML builds it when libyaml is present (every wheel has it).
from yaml.cyaml import CParser  # type: ignore[attr-defined]
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import BaseResolver

from regops.model import Problem

__all__ = ["MAX_FILE_BYTES", "MAX_NODES", "Parsed", "load_many", "locate", "parse_bytes"]

MAX_FILE_BYTES: Final = 1 << 20
MAX_NODES: Final = 50_000
# Below this many uncached files a process pool costs more than it saves.
_PARALLEL_THRESHOLD: Final = 400
_CACHE_FORMAT: Final = f"regops-parse-1-py{sys.version_info[0]}.{sys.version_info[1]}"

Data = dict[str, Any]


@dataclass(frozen=True)
class Parsed:
    """A file's data, or the one problem that stopped it from being read."""

    data: Data | None
    problem: Problem | None = None


# --- the safe YAML 1.2 reader ------------------------------------------------


class _Resolver(BaseResolver):
    """YAML 1.2 core schema: no timestamps, no yes/no/on/off, no sexagesimals, no merge keys."""


_Resolver.yaml_implicit_resolvers = {}
for _tag, _pattern, _first in (
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    (
        "float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+0123456789.",
    ),
):
    _Resolver.add_implicit_resolver(f"tag:yaml.org,2002:{_tag}", re.compile(_pattern), list(_first))


class _Constructor(SafeConstructor):
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


for _name in ("int", "float"):
    _Constructor.add_constructor(f"tag:yaml.org,2002:{_name}", getattr(_Constructor, f"construct_yaml_{_name}"))
_Constructor.add_constructor("tag:yaml.org,2002:timestamp", _Constructor.construct_yaml_str)  # type: ignore[type-var]


class _Loader(CParser, _Constructor, _Resolver):
    def __init__(self, stream: str) -> None:
        CParser.__init__(self, stream)
        _Constructor.__init__(self)
        _Resolver.__init__(self)


def _expanded_size(root: Node) -> int:
    """Nodes the document has once aliases are expanded (an alias bomb is a tiny file with billions)."""
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


class _Refused(Exception):
    def __init__(self, message: str, node: Node | None = None) -> None:
        self.message = message
        self.node = node


def parse_bytes(raw: bytes, path: str) -> Parsed:  # noqa: PLR0911 - one return per refusal
    """Parse one file's bytes into plain data, or say why not."""
    if len(raw) > MAX_FILE_BYTES:
        return _refuse(path, f"file is {len(raw):,} bytes; registry files are limited to {MAX_FILE_BYTES:,}")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        col = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        return _refuse(path, f"not valid UTF-8 (byte 0x{raw[e.start]:02x})", line, col)
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return _refuse(path, "file is empty; expected a mapping of fields")
        if _expanded_size(node) > MAX_NODES:
            raise _Refused(f"aliases expand the document past {MAX_NODES:,} nodes (an alias bomb?)", node)
        data = loader.construct_document(node)
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


def _refuse(path: str, message: str, line: int = 0, col: int = 0) -> Parsed:
    return Parsed(None, Problem(path=path, line=line, col=col, message=message))


def _position(mark: Any) -> tuple[int, int]:
    return (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)


def _yaml_message(error: yaml.MarkedYAMLError, text: str, mark: Any) -> str:
    message = "; ".join(part for part in (error.context, error.problem) if part) or "syntax error"
    if mark is not None and text.splitlines()[mark.line : mark.line + 1] and "\t" in text.splitlines()[mark.line]:
        message += " (a tab: YAML indents with spaces only)"
    return f"not valid YAML: {message}"


def _constructor_message(error: ConstructorError) -> str:
    problem = error.problem or "cannot be read"
    if problem.startswith("could not determine a constructor for the tag"):
        tag = problem.rsplit(" ", 1)[-1]
        return f"tag {tag} is not allowed: registry files hold plain data only"
    return problem


# --- reading many files: cache and processes ---------------------------------


class ParseCache:
    """Parsed data of files keyed by a hash of their bytes, one cache file per folder.

    Content-keyed, so an edit, a checkout or a copied tree can never serve
    stale data. Stored with :mod:`marshal` (plain data only, nothing it reads
    can run code) under ``$REGOPS_CACHE_DIR`` or ``$XDG_CACHE_HOME/regops``;
    ``REGOPS_NO_CACHE=1`` turns it off. A cache that cannot be read or written
    is ignored: it only ever saves time.
    """

    def __init__(self, root: Path | None) -> None:
        self.root = root

    @classmethod
    def from_environment(cls) -> ParseCache:
        if os.environ.get("REGOPS_NO_CACHE"):
            return cls(None)
        base = os.environ.get("REGOPS_CACHE_DIR")
        if base:
            return cls(Path(base))
        xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        return cls(Path(xdg) / "regops")

    def _file(self, folder: Path) -> Path | None:
        if self.root is None:
            return None
        key = hashlib.blake2b(f"{_CACHE_FORMAT}\0{folder}".encode(), digest_size=12).hexdigest()
        return self.root / f"{key}.marshal"

    def read(self, folder: Path) -> dict[bytes, Data]:
        file = self._file(folder)
        if file is None:
            return {}
        try:
            entries = marshal.loads(file.read_bytes())
        except (OSError, EOFError, ValueError, TypeError):
            return {}
        return entries if isinstance(entries, dict) else {}

    def write(self, folder: Path, entries: dict[bytes, Data]) -> None:
        file = self._file(folder)
        if file is None:
            return
        tmp = file.with_name(f"{file.name}.{os.getpid()}.tmp")
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(marshal.dumps(entries))
            tmp.replace(file)
        except (OSError, ValueError):
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)


def _digest(raw: bytes) -> bytes:
    return hashlib.blake2b(raw, digest_size=16).digest()


def _read(path: Path, display: str) -> bytes | Problem:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            size = path.stat().st_size
            return Problem(display, message=f"file is {size:,} bytes; registry files are limited to {MAX_FILE_BYTES:,}")
        return path.read_bytes()
    except OSError as e:
        return Problem(display, message=f"cannot read: {e.strerror or e}")


def _parse_chunk(chunk: Sequence[tuple[bytes, str]]) -> list[Parsed]:
    return [parse_bytes(raw, display) for raw, display in chunk]


def _parse_all(jobs: list[tuple[bytes, str]]) -> list[Parsed]:
    workers = min(os.cpu_count() or 1, 8)
    if len(jobs) < _PARALLEL_THRESHOLD or workers < 2:
        return _parse_chunk(jobs)
    size = -(-len(jobs) // (workers * 4))
    chunks = [jobs[i : i + size] for i in range(0, len(jobs), size)]
    import multiprocessing

    context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        return [parsed for chunk in pool.map(_parse_chunk, chunks) for parsed in chunk]


def load_many(paths: Iterable[Path], *, base: Path, cache: ParseCache | None = None) -> dict[Path, Parsed]:
    """Read and parse files, shown in problems relative to ``base``; cached by content."""
    cache = cache if cache is not None else ParseCache.from_environment()
    by_folder: dict[Path, list[Path]] = {}
    for path in paths:
        by_folder.setdefault(path.parent, []).append(path)
    results: dict[Path, Parsed] = {}
    misses: list[tuple[Path, bytes, bytes]] = []
    entries: dict[Path, dict[bytes, Data]] = {}
    dirty: set[Path] = set()
    for folder, files in by_folder.items():
        cached = cache.read(folder)
        entries[folder] = keep = {}
        for path in files:
            raw = _read(path, _display(path, base))
            if isinstance(raw, Problem):
                results[path] = Parsed(None, raw)
                continue
            digest = _digest(raw)
            if digest in cached:
                keep[digest] = cached[digest]
                results[path] = Parsed(cached[digest])
            else:
                misses.append((path, digest, raw))
                dirty.add(folder)
        if len(keep) != len(cached):
            dirty.add(folder)  # drop entries of files that changed or went away
    parsed = _parse_all([(raw, _display(path, base)) for path, _, raw in misses])
    for (path, digest, _), result in zip(misses, parsed, strict=True):
        results[path] = result
        if result.data is not None:
            entries[path.parent][digest] = result.data
    for folder in dirty:
        cache.write(folder, entries[folder])
    return results


def _display(path: Path, base: Path) -> str:
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return path.as_posix()


# --- finding a field in a file ----------------------------------------------


def locate(path: Path, field: Sequence[str | int]) -> tuple[int, int]:
    """1-based (line, column) of ``field`` in the file, or of its nearest existing parent.

    Parses the one file with ruamel.yaml's round-trip loader, which keeps
    positions; called only for files that have problems. (0, 0) when the
    file cannot be read that way.
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        node = YAML(typ="rt").load(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, YAMLError):
        return (0, 0)
    lc = getattr(node, "lc", None)
    if lc is None:
        return (1, 1)
    position: tuple[int, int] = (lc.line, lc.col)
    for part in field:
        lc = node.lc
        if isinstance(node, dict) and part in node:
            position = lc.value(part) if _is_scalar(node[part]) else lc.key(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            position = lc.item(part)
        else:
            break
        node = node[part]
    return (position[0] + 1, position[1] + 1)


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, (dict, list))
