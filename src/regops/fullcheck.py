"""A full ``regops validate``: every rule over every model, reading only the models whose verdict no longer holds.

:func:`check_full` looks up each model's clean verdict (:mod:`regops.verdicts`); the models without one are read and
checked by :func:`regops.policy.check` a batch at a time (about :data:`regops.registry.BATCH_FILES` files: parallel
parsing when cold, and memory that does not grow with the history), and each that has no problem gets a verdict. The
rules that reach across models run over the facts of every model (:func:`regops.policy.fact_parents`, dataset uses,
Hub repos claimed twice, and the layout of the clean models' folders, which no key covers), so a clean model that a
change elsewhere breaks is still reported, with the message the rule itself gives.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from regops.freshness import model_keys, vouched
from regops.kinds import Problem
from regops.policy import CLOCK_SKEW, check, dataset_uses, fact_parents, hub_claims, locate_all, model_layout
from regops.registry import CONFIG_FILE, MODEL_FILE, Registry, batches
from regops.summaries import micros, now_ns
from regops.verdicts import Facts, Key, VerdictCache, digest, facts_of, folder_key

__all__ = ["check_full"]


def check_full(registry: Registry, *, now: datetime | None = None) -> list[Problem]:
    """:func:`regops.policy.check` of every model, reading only those whose clean verdict (:mod:`regops.verdicts`)
    does not hold, a batch at a time (memory stays one batch's); the rules across models run over every model's
    facts."""
    moment = now or datetime.now(UTC)
    cache, made = VerdictCache.from_environment(), now_ns()
    keys = _keys(registry, cache)
    limit = micros(moment + CLOCK_SKEW)
    looked = {name: cache.lookup(_folder(registry, name), key) for name, key in keys.items()}
    stats = {name: folder_key(_folder(registry, name)) for name, found in looked.items() if found is None}
    looked |= {name: cache.lookup(_folder(registry, name), keys[name], stats[name]) for name in stats}
    facts = {name: found for name, found in looked.items() if found is not None and found.latest <= limit}
    clean = set(facts)
    for name in clean:
        registry.know_config(name, facts[name].config)
    problems: set[Problem] = set()
    dirty = [name for name in keys if name not in clean]
    stats |= {name: folder_key(_folder(registry, name)) for name in dirty if name not in stats}  # before reading
    for batch in list(batches(dirty, stats)) or [[]]:
        problems.update(_check_batch(registry, batch, moment, facts))
        trees = vouched(registry.root / "models", {name: keys[name].tree for name in batch}, stats, made)
        for name in set(batch) - _owners(registry, problems):
            cache.store(_folder(registry, name), made, stats[name], keys[name], facts[name], vouched=trees.get(name))
    registry.limit(None)
    problems.update(locate_all(registry, _clean_problems(registry, facts, clean)))
    return sorted(problems)


def _keys(registry: Registry, cache: VerdictCache) -> dict[str, Key]:
    """Per model, what its verdict depends on (taken before its files are read): git's tree for its folder where
    git vouches for it (asked only when there is a cache to look in), regops.yaml and its model.yaml."""
    config = digest(registry.root / CONFIG_FILE)
    names = registry.model_names()
    trees = model_keys(registry.root / "models", names) if cache.folder() is not None else {}
    return {name: Key(trees.get(name), config, digest(_folder(registry, name) / MODEL_FILE)) for name in names}


def _folder(registry: Registry, name: str) -> Path:
    return registry.root / "models" / name


def _check_batch(registry: Registry, batch: list[str], moment: datetime, facts: dict[str, Facts]) -> list[Problem]:
    """Every rule over these models, then their facts; their files are let go."""
    registry.limit(batch)
    found = check(registry, now=moment)
    for name in batch:
        facts[name] = facts_of(registry.model_entry(name, strict=False))
    registry.forget()
    return found


def _owners(registry: Registry, problems: Iterable[Problem]) -> set[str]:
    """The models with a problem in their folder."""
    prefix = registry.display(registry.root / "models") + "/"
    return {p.path[len(prefix) :].split("/", 1)[0] for p in problems if p.path.startswith(prefix)}


def _clean_problems(registry: Registry, facts: dict[str, Facts], clean: set[str]) -> Iterator[Problem]:
    """What the rules across models find in models whose own files are clean: Hub repos, anything added to their
    folders, datasets, parents."""
    yield from hub_claims(registry, clean)
    for name in sorted(clean):
        folder, held = registry.root / "models" / name, facts[name]
        yield from model_layout(registry, folder)
        for ref, dataset_hash, eval_ref, named in held.data:
            for problem in dataset_uses(registry, "", ref, dataset_hash, eval_ref):  # judged once per use
                for version in named:
                    yield replace(problem, path=registry.display(folder / held.versions[version]))
    yield from fact_parents(registry, facts, clean)
