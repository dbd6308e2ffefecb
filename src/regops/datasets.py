"""Dataset identity: a content hash of files, or a reference to data regops does not read.

**The tree hash** of files (:func:`hash_path`, a BLAKE3 digest anyone can recompute with ``b3sum``) is
defined and computed in ``treehash.py``; the errors of hashing are defined there and named here.

**References.** A ``.dvc`` / ``dvc.lock`` entry (:func:`read_dvc`: DVC's md5),
an Iceberg snapshot and a Delta Lake version are recorded without reading
the data. :func:`register_dataset` writes ``datasets/<name>/<version>.yaml``.

Errors (all :class:`~regops.errors.RegopsError`)::

    DatasetError                 .path, .name, .version where known
    ├── DatasetPathError         a file or folder that cannot be hashed (.file: the culprit)
    │   ├── SymlinkError         a symbolic link in the tree (.target)
    │   └── EmptyTreeError       no regular file at all
    ├── DvcFileError             a DVC file that cannot be read, or has no such output (.candidates)
    ├── DatasetExistsError       that dataset version is registered already
    ├── DatasetWriteError        the version file could not be written (nothing was)
    └── InvalidDatasetError      the record would not pass its schema (.problems)
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from regops import store
from regops.errors import RegistryNotFoundError, RegopsError
from regops.kinds import Problem
from regops.registry import CONFIG_FILE
from regops.schema import check
from regops.treehash import (
    LARGE_FILE,
    DatasetError,
    DatasetPathError,
    EmptyTreeError,
    HashCache,
    SymlinkError,
    TreeHash,
    hash_path,
    os_reason,
)

__all__ = [
    "LARGE_FILE",
    "DatasetError",
    "DatasetExistsError",
    "DatasetIdentity",
    "DatasetPathError",
    "DatasetWriteError",
    "DvcEntry",
    "DvcFileError",
    "EmptyTreeError",
    "FromDelta",
    "FromDvc",
    "FromFiles",
    "FromIceberg",
    "HashCache",
    "InvalidDatasetError",
    "SymlinkError",
    "TreeHash",
    "hash_path",
    "identify",
    "one_source",
    "read_dvc",
    "register_dataset",
]

SCHEMA_LINE: Final = "# yaml-language-server: $schema=../../../schemas/dataset-version.schema.json"


# --- errors ----------------------------------------------------------------------


class DvcFileError(DatasetError):
    """A ``.dvc`` or ``dvc.lock`` file that cannot be read, or has no such entry."""

    def __init__(self, path: Path, message: str, *, entry: str | None = None, candidates: Sequence[str] = ()) -> None:
        self.path = path
        self.entry = entry
        self.candidates = tuple(candidates)
        super().__init__(f"{path}: {message}")


class DatasetExistsError(DatasetError):
    def __init__(self, path: Path, name: str, version: str, shown: str) -> None:
        self.path, self.name, self.version = path, name, version
        super().__init__(
            f"dataset version {name}@{version} exists: {shown} (a registered version never changes; "
            "register the new data under a new --version)"
        )


class DatasetWriteError(DatasetError):
    def __init__(self, path: Path, name: str, version: str, message: str) -> None:
        self.path, self.name, self.version = path, name, version
        super().__init__(f"{message}; nothing was written (check the folder's permissions and free space)")


class InvalidDatasetError(DatasetError):
    """The dataset version would not pass its schema; ``problems`` says why, field by field."""

    def __init__(self, name: str, version: str, problems: Sequence[Problem]) -> None:
        self.name, self.version = name, version
        self.problems = tuple(problems)
        listed = "; ".join(f"{p.field}: {p.message}" if p.field else p.message for p in self.problems)
        super().__init__(f"cannot register dataset {name}@{version}: {listed}; nothing was written")


# --- DVC -------------------------------------------------------------------------

_DVC_MD5: Final = re.compile(r"^([0-9a-f]{32})(\.dir)?$")


@dataclass(frozen=True)
class DvcEntry:
    """One output of a ``.dvc`` or ``dvc.lock`` file: its path and DVC's md5 as ``md5:<32 hex>``."""

    file: Path
    path: str
    hash: str
    size_bytes: int | None
    file_count: int | None
    directory: bool
    stage: str | None = None


def read_dvc(file: Path, *, path: str | None = None) -> DvcEntry:
    """The output ``path`` of a ``.dvc`` or ``dvc.lock`` file (the only one, when ``path`` is None)."""
    try:
        raw = file.read_bytes()
    except OSError as e:
        raise DvcFileError(file, f"cannot read: {os_reason(e)}") from e
    parsed = store.parse_bytes(raw, file.as_posix())
    if parsed.data is None:
        assert parsed.problem is not None
        raise DvcFileError(file, f"not a DVC file: {parsed.problem.message}")
    outs = _dvc_outs(file, parsed.data)
    return _dvc_entry(file, _pick(file, outs, path))


def _dvc_outs(file: Path, data: dict[str, Any]) -> list[tuple[str | None, dict[str, Any]]]:
    stages = data.get("stages")
    if stages is None and data and all(isinstance(v, dict) and "cmd" in v for v in data.values()):
        stages = data  # the dvc.lock of DVC 1: stages at the top level
    if "outs" in data:
        groups: list[tuple[str | None, Any]] = [(None, data["outs"])]
    elif isinstance(stages, dict):
        groups = [(str(name), stage.get("outs")) for name, stage in stages.items() if isinstance(stage, dict)]
    else:
        raise DvcFileError(file, "has neither outs (a .dvc file) nor stages (a dvc.lock file)")
    outs: list[tuple[str | None, dict[str, Any]]] = []
    for stage, items in groups:
        if items is None:
            continue
        if not isinstance(items, list) or not all(isinstance(o, dict) and "path" in o for o in items):
            where = f"stage {stage}: " if stage else ""
            raise DvcFileError(file, f"{where}outs must be a list of entries with a path")
        outs += [(stage, out) for out in items]
    if not outs:
        raise DvcFileError(file, "lists no outputs (outs); run `dvc add` or `dvc repro` first")
    return outs


def _pick(
    file: Path, outs: list[tuple[str | None, dict[str, Any]]], path: str | None
) -> tuple[str | None, dict[str, Any]]:
    names = [str(out["path"]) for _, out in outs]
    listed = ", ".join(names)
    if path is None:
        if len(outs) == 1:
            return outs[0]
        raise DvcFileError(file, f"has {len(outs)} outputs ({listed}): say which one by its path", candidates=names)
    wanted = _normal(path)
    for stage, out in outs:
        if _normal(str(out["path"])) == wanted:
            return stage, out
    raise DvcFileError(file, f"has no output {path!r}; its outputs: {listed}", entry=path, candidates=names)


def _normal(path: str) -> str:
    return path.removeprefix("./").rstrip("/")


def _dvc_entry(file: Path, picked: tuple[str | None, dict[str, Any]]) -> DvcEntry:
    stage, out = picked
    name = str(out["path"])
    algorithm = out.get("hash", "md5")
    md5 = out.get("md5")
    if type(md5) is int and 0 <= md5 < 10**32:
        md5 = f"{md5:032d}"  # an all-digit md5 written without quotes reads as a number
    match = _DVC_MD5.match(md5) if isinstance(md5, str) else None
    if algorithm != "md5" or match is None:
        raise DvcFileError(
            file,
            f"output {name!r} has no md5 (found {md5!r}); regops reads DVC's md5 of local outputs: "
            "run `dvc commit` or `dvc add` to record it",
            entry=name,
        )
    directory = match.group(2) is not None
    size, nfiles = out.get("size"), out.get("nfiles")
    return DvcEntry(
        file=file,
        path=name,
        hash=f"md5:{match.group(1)}",
        size_bytes=size if type(size) is int and size >= 0 else None,
        file_count=(nfiles if type(nfiles) is int and nfiles >= 0 else None) if directory else 1,
        directory=directory,
        stage=stage,
    )


# --- sources and identities -------------------------------------------------------


@dataclass(frozen=True)
class FromFiles:
    """A file or folder to hash (recorded as ``source: {kind: files, path}``)."""

    path: Path


@dataclass(frozen=True)
class FromDvc:
    """An output of a ``.dvc`` or ``dvc.lock`` file; ``path`` picks one when there are several."""

    file: Path
    path: str | None = None


@dataclass(frozen=True)
class FromIceberg:
    """An Apache Iceberg table snapshot (the data is not read)."""

    table: str
    snapshot: int


@dataclass(frozen=True)
class FromDelta:
    """A Delta Lake table version (the data is not read)."""

    path: str
    version: int


Source = FromFiles | FromDvc | FromIceberg | FromDelta


@dataclass(frozen=True)
class DatasetIdentity:
    """What a dataset version records about its data: ``hash``, what is known of its size, ``source``."""

    hash: str
    source: dict[str, Any]
    size_bytes: int | None = None
    file_count: int | None = None


def identify(source: Source, *, cache: HashCache | None = None, workers: int | None = None) -> DatasetIdentity:
    """Hash files, read a DVC entry, or name a table snapshot: the data's identity."""
    if isinstance(source, FromFiles):
        tree = hash_path(source.path, cache=cache, workers=workers)
        files = {"kind": "files", "path": source.path.as_posix()}
        return DatasetIdentity(tree.hash, files, tree.size_bytes, tree.file_count)
    if isinstance(source, FromDvc):
        entry = read_dvc(source.file, path=source.path)
        dvc = {"kind": "dvc", "file": source.file.as_posix(), "path": entry.path}
        return DatasetIdentity(entry.hash, dvc, entry.size_bytes, entry.file_count)
    if isinstance(source, FromIceberg):
        iceberg = {"kind": "iceberg", "table": source.table, "snapshot": source.snapshot}
        return DatasetIdentity(f"iceberg:{source.snapshot}", iceberg)
    delta = {"kind": "delta", "path": source.path, "version": source.version}
    return DatasetIdentity(f"delta:{source.version}", delta)


# --- registering -----------------------------------------------------------------


def register_dataset(
    registry_root: Path,
    name: str,
    *,
    version: str,
    source: Source,
    by: str | None = None,
    description: str | None = None,
    uri: str | None = None,
    now: datetime | None = None,
    cache: HashCache | None = None,
    workers: int | None = None,
) -> Path:
    """Write ``datasets/<name>/<version>.yaml`` for the data ``source`` names; returns the new file.

    A bad name or version and a version that exists are refused before any
    data is read; a record that would not pass the schema, before anything is
    written. The file appears whole or not at all, and never replaces another.
    """
    if now is not None and now.tzinfo is None:
        raise ValueError("now must carry a time zone (e.g. datetime.now(UTC))")
    root = _registry_root(registry_root)
    _check_names(name, version)
    target = root / "datasets" / name / f"{version}.yaml"
    shown = _shown(root, target)
    if target.exists():
        raise DatasetExistsError(target, name, version, shown)
    identity = identify(source, cache=cache, workers=workers)
    data = _record(name, version, identity, by=by, description=description, uri=uri, now=now)
    _validate(data, shown)
    text = render(data)
    _check_round_trip(text, data, shown)
    _write_new(target, text, name, version, shown)
    return target


def _registry_root(path: Path) -> Path:
    for candidate in (path, path / "registry"):
        if (candidate / CONFIG_FILE).is_file():
            return candidate
    raise RegistryNotFoundError(path)


def _check_names(name: str, version: str) -> None:
    # Imported here: regops.files loads pydantic (~0.3 s), which the read verbs never pay.
    from regops.files import DATASET_VERSION_PATTERN, NAME_PATTERN

    rules = [
        (
            "name",
            name,
            NAME_PATTERN,
            "a dataset name: use lowercase letters, digits, '.', '_' and '-' "
            "(at most 64, starting and ending with a letter or digit)",
        ),
        (
            "version",
            version,
            DATASET_VERSION_PATTERN,
            "a dataset version: use letters, digits, '.', '_' and '-' "
            "(at most 64, starting and ending with a letter or digit), e.g. 2025-09-08 or v3",
        ),
    ]
    problems = [
        Problem("", field=field, message=f"{value!r} is not {what}")
        for field, value, pattern, what in rules
        if not re.fullmatch(pattern, value)
    ]
    if problems:
        raise InvalidDatasetError(name, version, problems)


def _record(
    name: str,
    version: str,
    identity: DatasetIdentity,
    *,
    by: str | None,
    description: str | None,
    uri: str | None,
    now: datetime | None,
) -> dict[str, Any]:
    moment = now if now is not None else datetime.now(UTC)
    fields: dict[str, Any] = {
        "name": name,
        "version": version,
        "hash": identity.hash,
        "created_at": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "created_by": by,
        "description": description,
        "uri": uri,
        "size_bytes": identity.size_bytes,
        "file_count": identity.file_count,
        "source": identity.source,
    }
    return {k: v for k, v in fields.items() if v is not None}


def _validate(data: dict[str, Any], shown: str) -> None:
    problems = check("dataset", data, shown)
    if problems:
        raise InvalidDatasetError(data["name"], data["version"], problems)


# --- the file's text ---------------------------------------------------------------

# Plain (unquoted) only when no YAML reader could take the text for anything but that string.
_PLAIN: Final = re.compile(r"[A-Za-z][A-Za-z0-9._/@+:-]*[A-Za-z0-9]|[A-Za-z]")
_RESERVED: Final = frozenset({"true", "false", "null", "yes", "no", "on", "off", "y", "n"})
_TIMESTAMP: Final = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def render(data: dict[str, Any]) -> str:
    """The exact text of a dataset version file: the schema line, then one field a line, block style."""
    lines = [SCHEMA_LINE]
    for key, value in data.items():
        if isinstance(value, dict):
            lines.append(f"{key}:")
            lines += [f"  {k}: {_scalar(v)}" for k, v in value.items()]
        elif key == "version":
            lines.append(f"{key}: {json.dumps(value)}")  # always a string, whatever it looks like
        else:
            lines.append(f"{key}: {_scalar(value)}")
    return "\n".join(lines) + "\n"


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    if _TIMESTAMP.fullmatch(text):
        return text  # the loader leaves timestamps as text; they read best unquoted
    if _PLAIN.fullmatch(text) and text.lower() not in _RESERVED:
        return text
    return json.dumps(text, ensure_ascii=False)


def _check_round_trip(text: str, data: dict[str, Any], shown: str) -> None:
    parsed = store.parse_bytes(text.encode("utf-8"), shown)
    if parsed.data != data:
        raise RuntimeError(f"bug in regops: {shown} would not read back as written ({parsed.problem or parsed.data})")


def _shown(root: Path, path: Path) -> str:
    try:
        return path.relative_to(root.parent).as_posix()
    except ValueError:
        return path.as_posix()


def _write_new(target: Path, text: str, name: str, version: str, shown: str) -> None:
    """Create ``target`` with ``text`` atomically; never replace a file that appeared meanwhile."""
    created = [p for p in (target.parent.parent, target.parent) if not p.exists()]
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        _link(tmp, target, DatasetExistsError(target, name, version, shown))
    except OSError as e:
        _remove(tmp, *reversed(created))  # leave the registry as it was
        raise DatasetWriteError(target, name, version, f"cannot write {shown}: {os_reason(e)}") from e
    finally:
        _remove(tmp)


def _remove(tmp: Path, *folders: Path) -> None:
    with contextlib.suppress(OSError):
        tmp.unlink(missing_ok=True)
    for folder in folders:
        with contextlib.suppress(OSError):
            folder.rmdir()


def _link(tmp: Path, target: Path, exists: DatasetExistsError) -> None:
    try:
        os.link(tmp, target)  # fails if the file exists: no check-then-write race
    except FileExistsError as e:
        raise exists from e
    except OSError:  # a file system without hard links
        if target.exists():
            raise exists from None
        tmp.replace(target)


def one_source(
    *,
    path: str | Path | None,
    dvc: str | Path | None,
    dvc_path: str | None,
    iceberg: str | None,
    snapshot: int | None,
    delta: str | None,
    delta_version: int | None,
) -> Source:
    """The one source a dataset version is recorded from; naming none, or more than one, is refused."""
    sources: list[Source] = []
    if path is not None:
        sources.append(FromFiles(Path(path)))
    if dvc is not None:
        sources.append(FromDvc(Path(dvc), dvc_path))
    if iceberg is not None or snapshot is not None:
        if iceberg is None or snapshot is None:
            raise RegopsError("an Iceberg reference needs both --iceberg TABLE and --snapshot ID")
        sources.append(FromIceberg(iceberg, snapshot))
    if delta is not None or delta_version is not None:
        if delta is None or delta_version is None:
            raise RegopsError("a Delta reference needs both --delta PATH and --delta-version N")
        sources.append(FromDelta(delta, delta_version))
    if len(sources) != 1:
        raise RegopsError(
            "name the data once: PATH, --from-dvc FILE, --iceberg TABLE --snapshot ID or --delta PATH --delta-version N"
        )
    return sources[0]
