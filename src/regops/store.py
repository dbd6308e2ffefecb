"""Where YAML is read and written (with :mod:`regops.reader`, the parser itself).

Two readers, each for what it is best at:

* the fast path (:func:`load_many`) parses with :mod:`regops.reader` (PyYAML's
  libyaml-based C parser and a constructor of our own: plain data, YAML 1.2's
  core schema, timestamps left as strings for ``files.py``). Each file is checked against its
  kind's schema right after parsing; files that pass are cached by content
  (see :class:`ParseCache`), and a cold read of many files uses every core.
* when something is wrong, the line and column of a field are found in just
  the offending file (:func:`locate`): from libyaml's nodes (:mod:`regops.spots`),
  or with the round-trip reader (ruamel.yaml) where those could place it differently.

Safe by construction: no tag builds an object, files over 1 MiB are refused
before parsing, aliases may not expand a document past ``MAX_NODES`` nodes,
duplicate keys are refused, the text must be UTF-8, and the document must be
one mapping. Each refusal is a :class:`~regops.kinds.Problem`, never a traceback.
"""

from __future__ import annotations

import gc
import hashlib
import io
import marshal
import math
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import astuple, dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, Final

from regops._version import __version__
from regops.cache import MarshalCache
from regops.errors import RegopsError
from regops.kinds import Problem
from regops.reader import MAX_FILE_BYTES, MAX_NODES, SCALARS, Data, Parsed, parse_bytes
from regops.reader import prepare as prepare_parse
from regops.spots import Spots, spots

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_NODES",
    "Document",
    "Loaded",
    "ParseCache",
    "Parsed",
    "display_path",
    "load_many",
    "locate",
    "parse_bytes",
    "prepare_parse",
    "prepare_pool",
    "read_mapping",
    "render_new",
    "to_node",
    "write_atomic",
]

# Below this many uncached files a process pool (~50 ms of CPU to start, fork and feed) costs more than it saves, or
# below the second while the schema's validators are still to be built (~0.25 s of CPU here): the workers' parse
# (~0.5 ms a file) then runs beside the build instead of after it, and 150 files save ~75 ms of wall on two cores.
_PARALLEL_THRESHOLD: Final = 400
_BESIDE_BUILD_THRESHOLD: Final = 150
# Workers are forked where the platform allows it (they inherit the parser); spawned ones import regops anew (~0.3 s
# each), which only a large batch pays for.
_FORK: Final = sys.platform == "linux"
_CACHE_FORMAT: Final = f"regops-load-1-py{sys.version_info[0]}.{sys.version_info[1]}"

# --- reading many files: validation, cache and processes ----------------------


@dataclass(frozen=True)
class Loaded:
    """A file read and checked against its kind's schema: the data, or every problem."""

    data: Data | None
    problems: tuple[Problem, ...] = ()


def prepare_pool() -> None:
    """Import the parse workers' pool (multiprocessing, concurrent.futures: ~12 ms of CPU) ahead of a batch, e.g.
    while git is still comparing; a batch too small for workers never needs it."""
    # Imported here: as in _load_all.
    import concurrent.futures.process  # noqa: F401
    import multiprocessing  # noqa: F401


def _load(raw: bytes, display: str, kind: str) -> Loaded:
    return _checked(parse_bytes(raw, display), display, kind)


def _checked(parsed: Parsed, display: str, kind: str) -> Loaded:
    # Imported here: the schema check (pydantic) only for a file the cache has not seen.
    from regops.schema import conform

    if parsed.data is None:
        assert parsed.problem is not None
        return Loaded(None, (parsed.problem,))
    data, problems = conform(kind, parsed.data, display)
    return Loaded(data, tuple(problems))


def _parse_chunk(chunk: Sequence[tuple[bytes, str]]) -> bytes:
    """A worker's chunk parsed, sent back as marshal data (each file's data, and its problem's fields): plain values
    the parse cache stores the same way, a third of the CPU of pickled objects to send."""
    parsed = [parse_bytes(raw, display) for raw, display in chunk]
    return marshal.dumps([(one.data, None if one.problem is None else astuple(one.problem)) for one in parsed])


def _unpacked(sent: bytes) -> list[Parsed]:
    return [Parsed(data, None if fields is None else Problem(*fields)) for data, fields in marshal.loads(sent)]


def _load_all(jobs: list[tuple[bytes, str, str]]) -> list[Loaded]:
    workers = min(os.cpu_count() or 1, 8)
    if workers < 2 or len(jobs) < _parallel_threshold({kind for _, _, kind in jobs}):
        return [_load(*job) for job in jobs]
    size = -(-len(jobs) // (workers * 4))
    chunks = [jobs[i : i + size] for i in range(0, len(jobs), size)]
    # Imported here: the worker pool only when enough files are left to parse to pay for it.
    import multiprocessing

    # The workers only parse (the C parser's callbacks are the cost); the schema check is cheap and runs here, as
    # each chunk comes back, so its pydantic models (~0.3 s of imports) are built once, while the workers parse.
    context = multiprocessing.get_context("fork" if _FORK else "spawn")
    prepare_parse()  # forked workers inherit PyYAML and the loader
    # What the parent holds is frozen out of the collector while the workers run: a forked worker's collections
    # would otherwise touch every object it inherited and copy each page (at 100k versions, ~80 MB per worker).
    gc.freeze()
    try:
        return _parse_in(workers, context, jobs, chunks)
    finally:
        gc.unfreeze()


def _parallel_threshold(kinds: set[str]) -> int:
    # Imported here: as in _checked.
    from regops.schema import built

    return _BESIDE_BUILD_THRESHOLD if _FORK and not built(kinds) else _PARALLEL_THRESHOLD


def _parse_in(workers: int, context: Any, jobs: list[tuple[bytes, str, str]], chunks: list[Any]) -> list[Loaded]:
    # Imported here: as in _load_all and _checked.
    from concurrent.futures import ProcessPoolExecutor

    from regops import schema

    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        parsed = pool.map(_parse_chunk, [[(raw, display) for raw, display, _ in chunk] for chunk in chunks])
        schema.prepare({kind for _, _, kind in jobs})
        return [
            _checked(one, display, kind)
            for chunk, sent in zip(chunks, parsed, strict=True)
            for one, (_, display, kind) in zip(_unpacked(sent), chunk, strict=True)
        ]


class ParseCache(MarshalCache):
    """Data of files that passed their schema, keyed by a hash of kind and bytes, one cache file per folder.

    Content-keyed, so an edit, a checkout or a copied tree can never serve
    stale data; the namespace carries regops' version and a hash of the
    schema's source, so a new regops never trusts an old verdict.
    """

    def namespace(self) -> str:
        return _fingerprint()


@cache
def _fingerprint() -> str:
    """What a cached verdict depends on: this format, Python's marshal, regops and its schema source."""
    source = Path(__file__).with_name("files.py")
    digest = hashlib.blake2b(source.read_bytes(), digest_size=8).hexdigest() if source.exists() else "-"
    return f"{_CACHE_FORMAT}-{__version__}-{digest}"


def _digest(raw: bytes, kind: str) -> bytes:
    return hashlib.blake2b(raw, digest_size=16, person=kind.encode()[:16]).digest()


def _read(path: Path) -> bytes | OSError:
    # Read at most one byte past the limit: parse_bytes reports the size, and a huge file costs nothing.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as e:
        return e
    try:
        chunks = [os.read(fd, MAX_FILE_BYTES + 1)]
        while chunks[-1] and sum(map(len, chunks)) <= MAX_FILE_BYTES:  # a short read: keep going
            chunks.append(os.read(fd, MAX_FILE_BYTES + 1))
        return b"".join(chunks)
    except OSError as e:
        return e
    finally:
        os.close(fd)


def _unreadable(path: Path, base: Path, error: OSError) -> Problem:
    return Problem(display_path(path, base), message=f"cannot read: {error.strerror or error}")


def load_many(
    files: Mapping[Path, str],
    *,
    base: Path,
    cache: ParseCache | None = None,
    uncached: Mapping[Path, str] | None = None,
) -> dict[Path, Loaded]:
    """Read, parse and schema-check files (path -> kind); problems show paths relative to ``base``.

    Files whose exact bytes passed before come from the cache without being
    parsed; the rest are parsed (on every core when there are many) and the
    ones that pass are cached. ``uncached`` files are parsed in the same batch,
    never looked up or stored (a few files of a folder, whose cache entry
    holds the whole folder's).
    """
    cache = cache if cache is not None else ParseCache.from_environment()
    results: dict[Path, Loaded] = {}
    misses, entries, dirty = _from_cache(files, base, cache, results)
    jobs = [(path, raw, files[path]) for path, _, raw in misses] + _readable(uncached or {}, base, results)
    loaded = _load_all([(raw, display_path(path, base), kind) for path, raw, kind in jobs])
    results |= {path: result for (path, _, _), result in zip(jobs, loaded, strict=True)}
    for path, digest, _ in misses:
        if (data := results[path].data) is not None:
            entries[path.parent][digest] = data
    for folder in dirty:
        cache.write(folder, entries[folder])
    return results


def _from_cache(
    files: Mapping[Path, str], base: Path, cache: ParseCache, results: dict[Path, Loaded]
) -> tuple[list[tuple[Path, bytes, bytes]], dict[Path, dict[bytes, Data]], set[Path]]:
    """Each file's cached data into ``results`` (or its read error); the misses to parse (path, digest, bytes),
    each folder's entries kept, and the folders whose cache entry must be written again."""
    by_folder: dict[Path, list[Path]] = {}
    for path in files:
        by_folder.setdefault(path.parent, []).append(path)
    misses: list[tuple[Path, bytes, bytes]] = []
    entries: dict[Path, dict[bytes, Data]] = {}
    dirty: set[Path] = set()
    for folder, paths in by_folder.items():
        cached = cache.read(folder)
        entries[folder] = keep = {}
        for path, raw, kind in _readable({path: files[path] for path in paths}, base, results):
            digest = _digest(raw, kind)
            if digest in cached:
                keep[digest] = cached[digest]
                results[path] = Loaded(cached[digest])
            else:
                misses.append((path, digest, raw))
                dirty.add(folder)
        if len(keep) != len(cached):
            dirty.add(folder)  # drop entries of files that changed or went away
    return misses, entries, dirty


def _readable(files: Mapping[Path, str], base: Path, results: dict[Path, Loaded]) -> list[tuple[Path, bytes, str]]:
    """The files read (path, bytes, kind); a read error goes into ``results``."""
    jobs: list[tuple[Path, bytes, str]] = []
    for path, kind in files.items():
        raw = _read(path)
        if isinstance(raw, OSError):
            results[path] = Loaded(None, (_unreadable(path, base, raw),))
        else:
            jobs.append((path, raw, kind))
    return jobs


def display_path(path: Path, base: Path) -> str:
    """``path`` relative to ``base`` when it is inside it, with '/' (cheaper than Path.relative_to)."""
    text, prefix = path.as_posix(), f"{base.as_posix().rstrip('/')}/"
    return text[len(prefix) :] if text.startswith(prefix) else text


# --- finding a field in a file ----------------------------------------------


def locate(path: Path, field: Sequence[str | int]) -> tuple[int, int]:
    """1-based (line, column) of ``field`` in the file, or of its nearest existing parent (see :func:`position`)."""
    return position(positions(path), field)


UNREADABLE: Final = object()  # what :func:`positions` returns for a file that cannot be read


def positions(path: Path) -> Any:
    """Where each field of the file is: from PyYAML's nodes (:func:`regops.spots.spots`), or where those could
    differ, the file parsed with ruamel.yaml's round-trip loader (:func:`round_trip`); :data:`UNREADABLE`.

    Called only for files that have problems, once per file however many it has.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return UNREADABLE
    found = spots(text)
    return round_trip(text) if found is None else found


def round_trip(text: str) -> Any:
    """``text`` parsed with ruamel.yaml's round-trip loader, which keeps positions, or :data:`UNREADABLE`."""
    # Imported here: ruamel (~40 ms) only for the verbs that edit a file; reading never needs it.
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        return YAML(typ="rt").load(text)
    except YAMLError:
        return UNREADABLE


def position(node: Any, field: Sequence[str | int]) -> tuple[int, int]:
    """1-based (line, column) of ``field`` in a parsed file (:func:`positions`), or of its nearest existing
    parent; (0, 0) when the file could not be read."""
    if node is UNREADABLE:
        return (0, 0)
    if isinstance(node, Spots):
        line, col = node.find(field)
        return (line + 1, col + 1)
    lc: Any = getattr(node, "lc", None)
    if lc is None:
        return (1, 1)
    found: tuple[int, int] = (lc.line, lc.col)
    for part in field:
        lc = getattr(node, "lc", None)  # a scalar has none: the loop stops at it
        if isinstance(node, dict) and part in node:
            found = lc.value(part) if _is_scalar(node[part]) else lc.key(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            found = lc.item(part)
        else:
            break
        node = node[part]
    return (found[0] + 1, found[1] + 1)


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, (dict, list))


# --- writing: surgical round-trip edits and new files ---------------------------------


def _round_trip() -> Any:
    # Imported here: ruamel (~40 ms) only for the verbs that edit a file; reading never needs it.
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a long line someone wrote
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.representer.add_representer(float, _represent_float)
    return yaml


def _represent_float(representer: Any, value: float) -> Any:
    # 3.0e-05, not 3e-05: YAML 1.1 readers (PyYAML's safe_load) take a float without a dot for a string.
    if math.isnan(value):
        text = ".nan"
    elif math.isinf(value):
        text = ".inf" if value > 0 else "-.inf"
    else:
        text = repr(value)
        mantissa, e, exponent = text.partition("e")
        if e and "." not in mantissa:
            text = f"{mantissa}.0e{exponent}"
    return representer.represent_scalar("tag:yaml.org,2002:float", text)


def _timestamp(moment: datetime) -> Any:
    """A timestamp node that prints as 2026-11-20T10:02:11Z, the form the schema asks for."""
    text = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return _round_trip().load(f"t: {text}\n")["t"]


def to_node(value: Any, *, flow: bool = True) -> Any:
    """Plain data as ruamel nodes: mappings in flow style, text double-quoted only where YAML needs it."""
    # Imported here: ruamel (~40 ms) only for the verbs that edit a file; reading never needs it.
    from ruamel.yaml.comments import CommentedMap, CommentedSeq
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString

    if isinstance(value, datetime):
        return _timestamp(value)
    if isinstance(value, dict):
        mapping = CommentedMap((k, to_node(v, flow=flow)) for k, v in value.items())
        if flow:
            mapping.fa.set_flow_style()
        return mapping
    if isinstance(value, (list, tuple)):
        # Short lists stay on one line; a list of mappings in a block (a canary's report) is a block of blocks.
        blocks = not flow and any(isinstance(v, dict) for v in value)
        seq = CommentedSeq(to_node(v, flow=not blocks) for v in value)
        if not blocks:
            seq.fa.set_flow_style()
        return seq
    if isinstance(value, str) and _needs_quotes(value, flow=flow):
        return DoubleQuotedScalarString(value)
    return value


_INDICATORS: Final = tuple("-?:,[]{}#&*!|>'\"%@`")
_TIMESTAMP_LIKE: Final = re.compile(r"^\d{4}-\d\d?-\d\d?(?:[Tt ]|$)")


def _needs_quotes(text: str, *, flow: bool) -> bool:
    """Whether ``text`` must be quoted to read back as this same string."""
    if not text or text != text.strip() or "\n" in text or text.startswith(_INDICATORS):
        return True
    if ": " in text or " #" in text or text.endswith(":") or _TIMESTAMP_LIKE.match(text):
        return True
    if flow and any(c in text for c in "[]{},"):
        return True
    parsed = parse_bytes(f"v: {text}\n".encode(), "-").data
    return parsed is None or parsed.get("v") != text


class Document:
    """One YAML file loaded for editing: change what you mean to, keep everything else as written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.before = path.read_text(encoding="utf-8")
        self._yaml = _round_trip()
        self.data: Any = self._yaml.load(self.before)

    def set(self, key: str, value: Any, *, after: str | None = None) -> None:
        """Set a top-level field; a new one goes right after ``after`` (or last)."""
        node = to_node(value, flow=isinstance(value, dict))
        if key not in self.data and after in self.data:
            self.data.insert(list(self.data).index(after) + 1, key, node)
        else:
            self.data[key] = node

    def append(self, key: str, item: Any) -> None:
        """Append to a top-level list (created in block style if missing)."""
        # Imported here: ruamel (~40 ms) only for the verbs that edit a file; reading never needs it.
        from ruamel.yaml.comments import CommentedSeq

        if self.data.get(key) is None or (not self.data[key] and self.data[key].fa.flow_style()):
            self.data[key] = CommentedSeq()
        self.data[key].append(to_node(item))

    def update(self, key: str, fields: dict[str, Any]) -> None:
        """Set fields inside a top-level mapping, keeping its style."""
        flow = self.data[key].fa.flow_style()
        for name, value in fields.items():
            self.data[key][name] = to_node(value, flow=flow)

    def update_path(self, keys: Sequence[str | int], fields: dict[str, Any]) -> None:
        """Set fields inside a nested mapping (``("artifacts", "storage")``, ``("transitions", 2)``), in its style."""
        node = self.data
        for key in keys:
            node = node[key]
        for name, value in fields.items():
            node[name] = to_node(value, flow=node.fa.flow_style())

    def render(self) -> str:
        out = io.StringIO()
        self._yaml.dump(self.data, out)
        return out.getvalue()


def render_new(data: dict[str, Any], *, header: str, flow: Sequence[str] = ()) -> str:
    """A new file's text: ``header`` (the schema comment) first, top level in block style.

    ``flow`` names dotted fields printed in flow style, one line each, as the
    hand-written files in a registry are (``training.code``); ``name[]`` prints
    a list in block style with each item in flow style (``artifacts.files[]``).
    """
    # Imported here: ruamel (~40 ms) only for the verbs that edit a file; reading never needs it.
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    def build(value: Any, name: str) -> Any:
        if name in flow:
            return to_node(value, flow=True)
        if isinstance(value, dict):
            return CommentedMap((k, build(v, f"{name}.{k}" if name else k)) for k, v in value.items())
        if isinstance(value, list) and f"{name}[]" in flow:
            return CommentedSeq(to_node(item, flow=True) for item in value)
        return to_node(value, flow=False)

    out = io.StringIO()
    _round_trip().dump(build(data, ""), out)
    return f"{header}\n{out.getvalue()}"


def dump(data: dict[str, Any]) -> str:
    """Plain block-style YAML of JSON-like ``data``, keys in the given order (front matter, reports).

    Text reads back as text in YAML 1.1 and 1.2 readers alike: a model named
    ``1e5`` or ``0o17`` is quoted, though PyYAML (YAML 1.1) alone would not.
    """
    # Imported here: PyYAML's dumper only when a file is written.
    import yaml

    return yaml.dump(data, Dumper=_dumper(), sort_keys=False, allow_unicode=True, default_flow_style=False, width=1000)


@cache
def _dumper() -> Any:
    """PyYAML's safe dumper, also quoting text that a YAML 1.2 reader (ours, ruamel's) takes for a number."""
    # Imported here: PyYAML's dumper only when a file is written.
    import yaml
    from ruamel.yaml.resolver import implicit_resolvers

    class Dumper(yaml.SafeDumper):
        pass

    # A plain scalar that any of these resolves to another tag than str is written quoted.
    for tag, pattern, first in SCALARS:
        Dumper.add_implicit_resolver(f"tag:yaml.org,2002:{tag}", re.compile(pattern), list(first))
    for _versions, ruamel_tag, regexp, chars in implicit_resolvers:
        Dumper.add_implicit_resolver(ruamel_tag, regexp, chars)
    return Dumper


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename: readers see old or new, never half."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def read_mapping(path: Path) -> dict[str, Any]:
    """A small JSON or YAML file that must hold one mapping (evals, params); raises with the reason."""

    try:
        raw = path.read_bytes()
    except OSError as e:
        raise RegopsError(f"cannot read {path}: {e.strerror or e}") from e
    parsed = parse_bytes(raw, str(path))
    if parsed.data is None:
        assert parsed.problem is not None
        raise RegopsError(str(parsed.problem))
    return parsed.data
