"""The loaded registry: an index of its files and the queries people ask of it.

``Registry.load(path)`` reads ``regops.yaml`` and lists the model and dataset
folders; a model's files are read the first time a query needs them (or all
at once by :meth:`Registry.load_all`), so ``regops resolve`` on one model
never pays for the other ninety-nine.

A query on a model whose files do not load raises
:class:`~regops.errors.InvalidRegistryError`: an answer about what is in prod
must not silently skip a file it could not read. The record classes (what each file holds)
are in ``records.py``.
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any, Final, Literal, TypeVar, cast

from regops import store
from regops.answers import (
    HistoryEntry,
    LineageNode,
    ModelStatus,
    Ref,
    Resolution,
    ScoreDelta,
    StageSummary,
    VersionDiff,
    current_span,
    history_order,
    parse_ref,
    score_delta,
    status_of,
    status_row,
    version_history,
)
from regops.errors import (
    InvalidRegistryError,
    ModelNotFoundError,
    RefError,
    RegistryNotFoundError,
    StageEmptyError,
    VersionNotFoundError,
)
from regops.freshness import Stats, ask, settled, vouched
from regops.kinds import Problem, Stage, release, version_key
from regops.records import (
    ConfigRecord,
    DatasetRecord,
    Interval,
    ModelEntry,
    ModelRecord,
    VersionRecord,
    comparable,
)
from regops.summaries import Found, Looked, Stamps, Summary, SummaryIndex, now_ns
from regops.timespec import as_utc

__all__ = [
    "HOLDER_STAGES",
    "LOCK_FILE",
    "DatasetRecord",
    "HistoryEntry",
    "Interval",
    "LineageNode",
    "ModelEntry",
    "ModelStatus",
    "Ref",
    "Registry",
    "Resolution",
    "ScoreDelta",
    "StageSummary",
    "VersionDiff",
    "VersionRecord",
    "batches",
    "history_order",
    "parse_ref",
    "status_row",
    "version_history",
]

HOLDER_STAGES: Final[tuple[Stage, ...]] = ("dev", "staging", "prod")
CONFIG_FILE: Final = "regops.yaml"
MODEL_FILE: Final = "model.yaml"
# The registry's write lock (lifecycle.locked): the one hidden file that may be in the registry; never committed.
LOCK_FILE: Final = ".regops.lock"
# Files read in one batch when summaries or verdicts are rebuilt: parallel parsing, and bounded memory at 100,000
# versions (a batch of version files holds ~17 KB each in the parent while its rules run, and the forked parse
# workers share those pages: 2,500 keeps a cold full `validate`'s whole process tree under 300 MB).
BATCH_FILES: Final = 2500
T = TypeVar("T")


# --- the registry ------------------------------------------------------------------


class Registry:
    """A registry folder (``regops.yaml``, ``models/``, ``datasets/``), loaded on demand."""

    def __init__(self, root: Path, config: dict[str, Any] | None = None, problems: list[Problem] | None = None) -> None:
        """``config`` and ``problems``: regops.yaml as read already; without ``problems`` it is read on first use."""
        self.root = root
        self._config_raw = config
        self._problems = problems or []
        self._config_given = problems is not None
        self._models: dict[str, ModelEntry] = {}
        self._datasets: dict[tuple[str, str], DatasetRecord] | None = None
        self._dataset_problems: list[Problem] = []
        self._scope: frozenset[str] | None = None
        self._configs: dict[str, ModelRecord | None] = {}  # model.yaml alone, of models whose folder is not loaded
        self._fill: Callable[[str], None] | None = None

    # loading

    @classmethod
    def load(cls, path: str | Path = "registry") -> Registry:
        """Open the registry at ``path`` (the registry folder, or a repository that has ``registry/``)."""
        return cls(_find_root(Path(path)))

    @cached_property
    def _config_loaded(self) -> store.Loaded:
        # Read on first use, not when the registry is opened: `validate --base` asks git what changed and starts
        # parsing those files before anything needs regops.yaml (and, on a cold cache, its pydantic models).
        if self._config_given:
            return store.Loaded(self._config_raw, tuple(self._problems))
        path = self.root / CONFIG_FILE
        return store.load_many({path: "config"}, base=self.root.parent)[path]

    @cached_property
    def config(self) -> ConfigRecord:
        """regops.yaml, with its defaults filled in (the defaults alone if it has problems)."""
        if self._config_loaded.data is None:
            # Imported here: the pydantic models, only when regops.yaml is missing or broken.
            from regops.schema import defaults

            return ConfigRecord(defaults("config"))
        return ConfigRecord(self._config_loaded.data)

    def display(self, path: Path) -> str:
        """A path as problems show it: relative to the folder that holds the registry."""
        return store.display_path(path, self.root.parent)

    def limit(self, models: Iterable[str] | None) -> None:
        """Check only these models' folders (a pull request's): :meth:`entries`, :meth:`iter_versions` and
        :meth:`load_problems` cover them alone; any other model is still read when a query names it (a parent).
        None checks every model again."""
        self._scope = None if models is None else frozenset(models)

    def forget(self) -> None:
        """Let go of every model folder read so far (a query reads it again): memory stays one batch's."""
        self._models.clear()

    def fill_on_demand(self, fill: Callable[[str], None]) -> None:
        """Call ``fill(name)`` before a model's folder is first listed: a registry written from git in part
        (:func:`regops.workspace.registry_at`) writes a model's files there only when a query reads them."""
        self._fill = fill

    def checked_names(self) -> list[str]:
        """The models the rules check: every model, or the ones :meth:`limit` named."""
        names = self.model_names()
        return names if self._scope is None else [name for name in names if name in self._scope]

    def load_all(self) -> None:
        """Read every checked model's files now, in one batch (parallel when cold)."""
        datasets = self._dataset_files() if self._datasets is None else {}
        # A check limited to some models still reads every other model's model.yaml (Hub repos, CODEOWNERS):
        # in the same batch, so a cold read parses them on every core with the checked models' files.
        names = self.checked_names()
        configs = (
            self._config_paths([n for n in self.model_names() if n not in names]) if self._scope is not None else {}
        )
        loaded = self._load_models(names, datasets, uncached=dict.fromkeys(configs.values(), "model"))
        self._keep_configs(configs, loaded)
        if self._datasets is None:
            self._build_datasets(datasets, loaded)

    def _load_models(
        self, names: list[str], more: dict[Path, str] | None = None, *, uncached: dict[Path, str] | None = None
    ) -> dict[Path, store.Loaded]:
        """Read these models' files (and ``more`` files, and ``uncached`` ones: store.load_many) in one batch,
        parallel when cold."""
        pending = {name: self._model_files(name) for name in names if name not in self._models}
        files = {path: kind for listing in pending.values() for path, kind in listing.items()}
        loaded = store.load_many({**files, **(more or {})}, base=self.root.parent, uncached=uncached)
        for name, listing in pending.items():
            self._models[name] = self._build_model(name, listing, loaded)
        return loaded

    def summaries(
        self, part: Literal["status", "moves", "spans"] = "status", names: Sequence[str] = (), since: int | None = None
    ) -> dict[str, Summary]:
        """Per checked model (or per model of ``names``), its summary (:mod:`regops.summaries`): its ``status``
        record (who holds each stage, counts), ``moves`` (every registration and transition, as ``history``
        shows it) or ``spans`` (who held each stage when, for ``status --at``). From the index where a model's
        files are unchanged (git's word for it, :mod:`regops.freshness`, else their stat data), else read
        (raising on problems, as every query does) and indexed: one record per model, not one per version. Of
        ``moves`` from the index, what was said of the moves at or after ``since`` (µs since the epoch) only."""
        return self.summarised(part, lambda found: found, names, since)

    def summarised(
        self,
        part: Literal["status", "moves", "spans"],
        work: Callable[[dict[str, Summary]], T],
        names: Sequence[str] = (),
        since: int | None = None,
    ) -> T:
        """``work`` of :meth:`summaries`, begun on the stored entries while git looks: kept when git's keys (or the
        stat data) then vouch for every entry it read; else dropped, and ``work`` of the summaries rebuilt."""
        index, folders = SummaryIndex.from_environment(), self._summarised_folders(names)
        made = now_ns()
        asked = ask(self.root / "models") if index.folder() is not None else None
        early: Found = {}
        stamps: Stamps = {}
        for name, folder in folders.items():  # read while git looks; one copy of the rows at a time in memory
            entry = index.entry(folder, part, since)
            early[name], stamps[name] = index.decoded(entry, part), index.stamp(entry)
        ready = all(summary is not None for summary in early.values())
        answer = work(cast(dict[str, Summary], early)) if ready else None
        looked = index.vouched_for(folders, stamps, early, asked(folders) if asked is not None else {})
        if ready and all(summary is not None for summary in looked[0].values()):  # found is early: answer stands
            return cast(T, answer)
        return work(self._rebuilt(index, made, folders, part, looked))

    def _summarised_folders(self, names: Sequence[str]) -> dict[str, Path]:
        missing = [name for name in names if name not in self.model_names()]
        if missing:
            raise ModelNotFoundError(missing[0], self.model_names())
        return {name: self.root / "models" / name for name in names or self.checked_names()}

    def _rebuilt(
        self, index: SummaryIndex, made: int, folders: dict[str, Path], part: str, looked: Looked
    ) -> dict[str, Summary]:
        """The summaries the index ``looked`` found, and those it did not read from the models' files and indexed."""
        found, stats, keys = looked
        for batch in batches([name for name, summary in found.items() if summary is None], stats):
            fresh = [name for name in batch if name not in self._models]
            self._load_models(batch)
            sound = vouched(self.root / "models", {name: keys.get(name) for name in batch}, stats, made)
            for name in batch:
                entry, metric = self.model_entry(name), self.model(name).primary_metric
                summaries = index.store(folders[name], made, stats[name], entry, metric, vouched=sound.get(name))
                found[name] = summaries[part]
            for name in fresh:  # summarised: memory stays one batch's, however long the history
                del self._models[name]
        return {name: summary for name, summary in found.items() if summary is not None}

    def _entry(self, name: str) -> ModelEntry:
        if name not in self._models:
            if name not in self.model_names():
                raise ModelNotFoundError(name, self.model_names())
            listing = self._model_files(name)
            self._models[name] = self._build_model(name, listing, store.load_many(listing, base=self.root.parent))
        return self._models[name]

    def _model_files(self, name: str) -> dict[Path, str]:
        if self._fill is not None:
            self._fill(name)
        return {p: "model" if p.name == MODEL_FILE else "version" for p in _yaml_files(self.root / "models" / name)}

    def _build_model(self, name: str, listing: dict[Path, str], loaded: dict[Path, store.Loaded]) -> ModelEntry:
        entry = ModelEntry(name, self.root / "models" / name, None, {}, [])
        claimed: set[str] = set()
        for path in listing:
            result = loaded[path]
            entry.problems += result.problems
            if path.name == MODEL_FILE:
                entry.config = ModelRecord(result.data, path) if result.data is not None else None
                continue
            record = VersionRecord(result.data, path) if result.data is not None else None
            if record is None:
                entry.unreadable.add(path.stem)
            elif release(record.version) in claimed:
                entry.duplicates.append((path, record.version))
                entry.unreadable.update({path.stem, record.version})
            else:
                claimed.add(release(record.version))
                entry.versions[record.version] = record
        return entry

    def _dataset_files(self) -> dict[Path, str]:
        return {f: "dataset" for d in _subfolders(self.root / "datasets") for f in _yaml_files(d)}

    def _build_datasets(self, listing: dict[Path, str], loaded: dict[Path, store.Loaded]) -> None:
        self._datasets = {}
        for path in listing:
            result = loaded[path]
            self._dataset_problems += result.problems
            if result.data is not None:
                record = DatasetRecord(result.data, path)
                self._datasets.setdefault((record.name, record.version), record)

    # what is there

    def model_names(self) -> list[str]:
        # Names only: the rules ask for them many times over, and a Path per model each time cost ~0.1 s at 200 models.
        return _subfolder_names(self.root / "models")

    def model_entry(self, name: str, *, strict: bool = True) -> ModelEntry:
        """A model's loaded files; with ``strict``, raises if any of them has problems."""
        entry = self._entry(name)
        if strict and entry.problems:
            raise InvalidRegistryError(entry.problems)
        return entry

    def model_config(self, name: str) -> ModelRecord | None:
        """A model's model.yaml alone, without its versions (None when missing or unreadable): what the
        registry-wide rules (Hub repos, CODEOWNERS) read of every model. Parsed uncached, so the folder's cache
        entry (its versions) is left whole."""
        if name in self._models:
            return self._models[name].config
        if name not in self._configs:
            self._read_configs([name, *(n for n in self.model_names() if n not in self._models)])
        return self._configs[name]

    def know_config(self, name: str, raw: dict[str, Any] | None) -> None:
        """Model ``name``'s model.yaml as read before, from a file with the same bytes (a clean verdict's): what
        :meth:`model_config` answers while the folder is not loaded, without reading it again."""
        self._configs[name] = ModelRecord(raw, self.root / "models" / name / MODEL_FILE) if raw is not None else None

    def _read_configs(self, names: list[str]) -> None:
        """The model.yaml of each of ``names`` (that is not read yet) in one batch: a registry-wide rule asks for
        every model's in turn."""
        paths = self._config_paths(names)
        uncached = dict.fromkeys(paths.values(), "model")
        self._keep_configs(
            paths, store.load_many({}, base=self.root.parent, cache=store.ParseCache(None), uncached=uncached)
        )

    def _config_paths(self, names: list[str]) -> dict[str, Path]:
        return {n: self.root / "models" / n / MODEL_FILE for n in names if n not in self._configs}

    def _keep_configs(self, paths: dict[str, Path], loaded: dict[Path, store.Loaded]) -> None:
        for n, path in paths.items():
            data = loaded[path].data
            linked = path.is_symlink() or not path.is_file()
            self._configs[n] = ModelRecord(data, path) if data is not None and not linked else None

    def model(self, name: str) -> ModelRecord:
        config = self.model_entry(name).config
        if config is None:
            problem = Problem(self.display(self.root / "models" / name / MODEL_FILE), message="file is missing")
            raise InvalidRegistryError([problem])
        return config

    def canary_traffic(self, name: str) -> float:
        """The share of traffic a canary of model ``name`` gets: its model.yaml's, else regops.yaml's."""
        override = self.model(name).raw.get("canary") or {}
        value = override.get("traffic_percent")
        percent = float(value if value is not None else self.config.canary_traffic_percent)
        return int(percent) if percent.is_integer() else percent

    def versions(self, name: str) -> list[VersionRecord]:
        """A model's versions in SemVer order."""
        return self.model_entry(name).ordered

    def version(self, name: str, version: str) -> VersionRecord:
        entry = self.model_entry(name)
        if version not in entry.versions:
            raise VersionNotFoundError(name, version)
        return entry.versions[version]

    def datasets(self) -> dict[tuple[str, str], DatasetRecord]:
        if self._datasets is None:
            listing = self._dataset_files()
            self._build_datasets(listing, store.load_many(listing, base=self.root.parent))
        assert self._datasets is not None
        return self._datasets

    def dataset(self, ref: str) -> DatasetRecord | None:
        name, _, version = ref.partition("@")
        return self.datasets().get((name, version))

    def load_problems(self) -> list[Problem]:
        """Problems met while reading files (syntax and schema); loads everything."""
        self.load_all()
        self.datasets()
        problems = list(self._config_loaded.problems) + self._dataset_problems
        for entry in self.entries():
            problems += entry.problems
        return problems

    # queries

    def get(self, ref: str | Ref, *, at: datetime | None = None) -> VersionRecord:
        """The version a reference names: ``MODEL@VERSION``, or ``MODEL@STAGE`` now or ``at``."""
        parsed = parse_ref(ref) if isinstance(ref, str) else ref
        if parsed.version:
            return self.version(parsed.model, parsed.version)
        if parsed.stage is None:
            raise RefError(str(parsed), f"{parsed} names a model; add @VERSION or @STAGE")
        return self.version(parsed.model, self.resolve(parsed, at=at).version)

    def holder(self, model: str, stage: Stage, *, at: datetime | None = None) -> Interval | None:
        """Who held ``stage`` at ``at`` (default: now), from the transition records."""
        if stage not in HOLDER_STAGES:
            raise RefError(f"{model}@{stage}", f"many versions can be {stage}; name a version instead")
        entry = self.model_entry(model)
        if at is None:
            # Now: the files' ``stage`` says it; only the holders' transitions need reading.
            current = [current_span(r) for r in entry.versions.values() if r.stage == stage]
            return max(current, key=lambda i: (i.start, version_key(i.version)), default=None)
        moment = as_utc(at)
        # The last covering one in the intervals' order: found from the end.
        return next((i for i in reversed(entry.intervals_by_stage.get(stage, ())) if i.covers(moment)), None)

    def resolve(self, ref: str | Ref, *, at: datetime | None = None) -> Resolution:
        parsed = parse_ref(ref) if isinstance(ref, str) else ref
        if parsed.stage is None:
            raise RefError(str(parsed), f"resolve takes MODEL@STAGE (dev, staging or prod), not {parsed}")
        span = self.holder(parsed.model, parsed.stage, at=at)
        if span is None:
            raise StageEmptyError(parsed.model, parsed.stage, at.isoformat() if at else None)
        record = self.version(parsed.model, span.version)
        storage = record.storage
        return Resolution(
            parsed.model,
            parsed.stage,
            at,
            span.version,
            span.start,
            span.end,
            storage,
            self.display(record.path),
        )

    def history(self, model: str) -> list[HistoryEntry]:
        """Every registration and transition of a model, oldest first.

        Each version's own records keep their order (timestamps have one-second
        resolution, and several steps can share a second); across versions, at
        one moment a version leaving a stage comes before the one taking its place.
        """
        per_version = [version_history(record) for record in self.versions(model)]
        return list(heapq.merge(*per_version, key=history_order))

    def lineage(self, ref: str | Ref, *, at: datetime | None = None, limit: int | None = None) -> list[LineageNode]:
        """The version and its ancestors, nearest first, across models and to external bases (``limit``: at most
        that many, the nearest)."""
        record: VersionRecord | None = self.get(ref, at=at)
        nodes: list[LineageNode] = []
        seen: set[str] = set()
        while record is not None and (limit is None or len(nodes) < limit):
            name = f"{record.model}@{record.version}"
            if name in seen:
                break
            seen.add(name)
            parent = record.parent
            nodes.append(
                LineageNode(
                    name,
                    len(nodes),
                    record.dataset,
                    record.dataset_hash,
                    record.eval_dataset,
                    parent=parent,
                    dataset_source=self._source(record.dataset),
                    eval_dataset_source=self._source(record.eval_dataset),
                )
            )
            record = None
            if parent is None:
                break
            if parent.startswith("hf://"):
                nodes.append(LineageNode(parent, len(nodes), external=True))
                break
            record = self.find(parent)
            if record is None:
                nodes.append(LineageNode(parent, len(nodes), missing=True))
        return nodes[:limit]

    def _source(self, ref: str | None) -> str | None:
        """Where a dataset version lives, as its record says: its ``source`` described, and its ``uri``."""
        found = self.dataset(ref) if ref else None
        if found is None:
            return None
        source, uri = found.raw.get("source"), found.raw.get("uri")
        where = [self._described(source)] if source else []
        return "; ".join([*where, *([uri] if uri else [])]) or None

    @staticmethod
    def _described(source: dict[str, Any]) -> str:
        described = {
            "files": lambda: f"files at {source['path']}",
            "dvc": lambda: f"DVC {source['file']} ({source['path']})",
            "iceberg": lambda: f"Iceberg table {source['table']} snapshot {source['snapshot']}",
            "delta": lambda: f"Delta table {source['path']} version {source['version']}",
        }
        return described[source["kind"]]()

    def find(self, ref: str) -> VersionRecord | None:
        """The version MODEL@VERSION names, or None (also for models that are not there)."""
        model, _, version = ref.partition("@")
        # A model already loaded is there without listing the folder again (lineage asks once per ancestor).
        if model not in self._models and model not in self.model_names():
            return None
        return self.model_entry(model).versions.get(version)

    def diff(self, a: str | Ref, b: str | Ref, *, at: datetime | None = None) -> VersionDiff:
        """How version ``b`` differs from ``a``: scores, hyperparameters, data, parent."""
        left, right = self.get(a, at=at), self.get(b)
        config = self.model(right.model)
        goals, primary = config.goals, config.primary_metric
        names = sorted(set(left.scores) | set(right.scores), key=lambda n: (n != primary, n))
        same = comparable(left, right)
        scores = [score_delta(n, left.scores.get(n), right.scores.get(n), goals.get(n), same) for n in names]
        pa, pb = left.hyperparameters, right.hyperparameters
        return VersionDiff(
            a=f"{left.model}@{left.version}",
            b=f"{right.model}@{right.version}",
            primary_metric=primary,
            scores=scores,
            params_added={k: pb[k] for k in sorted(pb.keys() - pa.keys())},
            params_removed={k: pa[k] for k in sorted(pa.keys() - pb.keys())},
            params_changed={k: (pa[k], pb[k]) for k in sorted(pa.keys() & pb.keys()) if pa[k] != pb[k]},
            dataset=(left.dataset, right.dataset),
            dataset_hash=(left.dataset_hash, right.dataset_hash),
            eval_dataset=(left.eval_dataset, right.eval_dataset),
            parent=(left.parent, right.parent),
            comparable=same,
        )

    def status(self) -> list[ModelStatus]:
        """One row per model: who holds dev, staging and prod, and since when prod (from the summaries)."""
        return [status_of(name, summary) for name, summary in self.summaries("status").items()]

    def iter_versions(self) -> Iterator[VersionRecord]:
        """Every loaded version of every model (loads everything)."""
        for entry in self.entries():
            yield from entry.ordered

    def entries(self) -> list[ModelEntry]:
        """Every checked model's loaded folder (all of them unless :meth:`limit` named some)."""
        self.load_all()
        return [self._models[name] for name in self.checked_names()]


# --- helpers --------------------------------------------------------------------


def batches(names: list[str], stats: dict[str, Stats]) -> Iterator[list[str]]:
    """Models to read together: about :data:`BATCH_FILES` files a batch (enough to parse on every core)."""
    batch: list[str] = []
    for name in names:
        batch.append(name)
        if sum(len(stats[n]) for n in batch) >= BATCH_FILES:
            yield batch
            batch = []
    if batch:
        yield batch


def _find_root(path: Path) -> Path:
    for candidate in (path, path / "registry"):
        if (candidate / CONFIG_FILE).is_file():
            return candidate.resolve()
    raise RegistryNotFoundError(path)


def _subfolders(folder: Path) -> list[Path]:
    return [folder / name for name in _subfolder_names(folder)]


# Each folder's subfolder names under its stat data taken before the listing (freshness.settled): the rules ask
# for the model names ~60 times a check. An entry created, removed or renamed changes the folder's mtime and ctime.
_NAMES: dict[str, tuple[tuple[int, ...], list[str]]] = {}


def _subfolder_names(folder: Path) -> list[str]:
    """The folders in ``folder``; never a link (a linked folder would add a model or dataset from elsewhere)."""
    key, listed = settled(folder), _NAMES.get(str(folder))
    if key is None or listed is None or listed[0] != key:
        listed = (key or (), [e.name for e in _listing(folder) if e.is_dir(follow_symlinks=False)])
        if key is not None:
            _NAMES[str(folder)] = listed
    return list(listed[1])


def _yaml_files(folder: Path) -> list[Path]:
    """The YAML files in ``folder``; never a link (policy.layout reports links and everything else left out)."""
    return [
        folder / e.name
        for e in _listing(folder)
        if e.name.endswith((".yaml", ".yml")) and e.is_file(follow_symlinks=False)
    ]


def _listing(folder: Path) -> list[os.DirEntry[str]]:
    """What ``folder`` holds, by name, hidden names left out; nothing when ``folder`` is a link or missing."""
    if folder.is_symlink():
        return []
    try:
        with os.scandir(folder) as it:
            return sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return []
