"""Per-model verdicts of a full ``regops validate``: a model whose files and inputs are unchanged is not read again.

A full check at 100,000 versions reads every version file, builds every record and runs every rule over them. Most
of those models did not change since the last run, and their files had no problem then. A :class:`VerdictCache`
keeps, per model folder, one signed entry in the parse cache's private folder (:mod:`regops.cache`) saying "no
problem", keyed by everything the model's own problems depend on:

* the folder's files, as the summaries key them (:mod:`regops.summaries`): git's tree for the folder where git
  vouches the files are that tree (:func:`regops.freshness.model_keys`, no ``lstat`` per file), else a digest of
  every file's stat data (:func:`folder_key`), taken *before* the files were read;
* the bytes of ``regops.yaml`` (stages, signing, storage orgs) and of the model's ``model.yaml``;
* this regops: the parse cache's namespace (format, Python, regops version, schema source) and the source of the
  rules (:data:`_RULE_SOURCES`).

With the verdict the entry stores the small facts the registry-wide rules read of the model (:class:`Facts`): its
versions, its parent links, the datasets its versions reference and its latest timestamp. Those rules (parents and
cycles across models, dataset references, Hub repos claimed twice, the layout of the folder) run on every check over
these facts, so a change elsewhere that breaks a clean model is still reported on it, with the same message.

Only a model with no problem at all gets an entry (a model with problems is read every time, so its messages and
lines stay exact); a timestamp that is fine now can only become fine-er as time passes, and an entry whose latest
timestamp would be in the future at the moment checked (an explicit earlier ``now``) is not used. The racy case is
git's, as in :mod:`regops.summaries`: no entry is written while a file of the folder was modified within
:data:`~regops.summaries.RACY_NS` of the moment the entry is made from. A corrupt, truncated, foreign or hand-edited
entry fails its MAC or its shape check and is ignored; the model is read and the entry rebuilt.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any, Final

from regops.cache import MarshalCache
from regops.freshness import Key as TreeKey
from regops.freshness import Stats
from regops.records import ModelEntry
from regops.store import ParseCache
from regops.summaries import SummaryIndex, filed_under, micros, wanted_key

__all__ = ["Facts", "Key", "VerdictCache", "facts_of", "folder_key"]

_FORMAT: Final = "regops-verdict-2"  # 2: keyed by git's tree or a digest of the stat data
# The modules whose rules a verdict stands for: a change to any of them is a different cache.
_RULE_SOURCES: Final = (
    "verdicts.py",
    "fullcheck.py",
    "policy.py",
    "stages.py",
    "codeowners.py",
    "tokens.py",
    "retention.py",
    "signing.py",
)


def folder_key(folder: Path) -> Stats:
    """What says a model folder's files are unchanged: the one place to switch to a cheaper key."""
    return SummaryIndex(None).stats(folder)


@dataclass(frozen=True)
class Key:
    """Everything a model's own problems depend on, besides this regops (the namespace)."""

    tree: TreeKey | None  # git's key for the folder (regops.freshness), None where git cannot vouch
    config: str  # digest of regops.yaml
    model: str  # digest of the model's model.yaml


@dataclass
class Facts:
    """What the registry-wide rules read of one model: its versions (version -> file name), the versions that do
    not load, its parent links (version, MODEL@VERSION), the datasets its versions name (dataset, dataset hash, eval
    dataset, and the versions that name them), its latest timestamp (µs since the epoch) and its model.yaml as read
    (what the rules over every model's model.yaml read: Hub repos, CODEOWNERS)."""

    versions: dict[str, str]
    edges: list[tuple[str, str]]
    data: list[tuple[str, str, str | None, tuple[str, ...]]]
    latest: int
    config: dict[str, Any] | None
    unreadable: set[str] = field(default_factory=set)

    def has(self, version: str) -> bool:
        """Whether ``version`` is there, loaded or not (a parent may name an unreadable one)."""
        return version in self.versions or version in self.unreadable


def facts_of(entry: ModelEntry) -> Facts:
    """A loaded model's facts."""
    versions, edges, latest = {}, [], 0
    uses: dict[tuple[str, str, str | None], list[str]] = {}
    for record in entry.versions.values():
        versions[record.version] = record.path.name
        parent = record.parent
        if parent is not None and not parent.startswith("hf://"):
            edges.append((record.version, parent))
        uses.setdefault((record.dataset, record.dataset_hash, record.eval_dataset), []).append(record.version)
        canary = record.canary or {}
        stamps = [record.created_at, *(t.at for t in record.steps)]
        latest = max([latest, *map(micros, stamps), *(_iso_micros(canary[k]) for k in _CANARY_STAMPS if k in canary)])
    config = entry.config.raw if entry.config is not None else None
    data = [(*use, tuple(named)) for use, named in uses.items()]
    return Facts(versions, edges, data, latest, config, set(entry.unreadable))


_CANARY_STAMPS: Final = ("started_at", "finished_at")


def _iso_micros(text: str) -> int:
    return micros(datetime.fromisoformat(text))


def digest(path: Path) -> str:
    """A file's content digest ("-" when it cannot be read)."""
    try:
        return hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()
    except OSError:
        return "-"


class VerdictCache(MarshalCache):
    """Per model folder, "no problem" and its :class:`Facts`, keyed by its :class:`Key` (module docs)."""

    prefix = "verdict-"

    def namespace(self) -> str:
        return f"{_FORMAT}-{ParseCache(None).namespace()}-{_rules_fingerprint()}"

    def lookup(self, folder: Path, key: Key, stats: Stats | None = None) -> Facts | None:
        """The facts of ``folder``'s clean verdict, if it was made from exactly ``key``: its files by git's tree,
        or, given ``stats``, by their stat data."""
        wanted = wanted_key(stats if stats is not None else key.tree)
        if wanted is None:
            return None
        entry = self.read(folder)
        keys = entry.get("keys")
        if not isinstance(keys, list) or wanted not in keys or entry.get("inputs") != (key.config, key.model):
            return None
        return _facts(entry.get("facts"))

    def store(self, folder: Path, made: int, stats: Stats, key: Key, facts: Facts, *, vouched: TreeKey | None) -> None:
        """Record that ``folder``, read from files whose stat data before reading was ``stats`` (and, under git's
        key ``vouched`` too, when :func:`regops.freshness.vouched` showed the bytes read were its tree's), has no
        problem; not when a file is racy (modified within RACY_NS of ``made``): it could change again with its
        stat data unchanged."""
        keys = filed_under(stats, made, vouched) if stats else None
        if keys is None:
            return
        shape = [facts.versions, facts.edges, facts.data, facts.latest, facts.config]
        self.write(folder, {"keys": keys, "inputs": (key.config, key.model), "facts": shape})


def _facts(shape: Any) -> Facts | None:
    """Facts from an entry's payload, or None when it is not the shape this regops writes."""
    if not isinstance(shape, list) or len(shape) != 5 or not isinstance(shape[3], int):
        return None
    versions, edges, data, latest, config = shape
    names = isinstance(versions, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in versions.items())
    tables = ((edges, 2), (data, 4))
    if not names or not isinstance(config, dict) or not all(isinstance(t, list) and _rows(t, w) for t, w in tables):
        return None
    return Facts(versions, edges, data, latest, config)


def _rows(table: list[Any], width: int) -> bool:
    return all(isinstance(row, tuple) and len(row) == width for row in table)


@cache
def _rules_fingerprint() -> str:
    here = Path(__file__).parent
    signed = hashlib.blake2b(digest_size=8)
    for name in _RULE_SOURCES:
        signed.update(digest(here / name).encode())
    return signed.hexdigest()
