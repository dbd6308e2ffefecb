"""The stage machine, who may move a version, and the rules over a version's stage history.

:func:`step_allowed` is the machine (candidate -> dev -> staging -> prod, archived from anywhere, back to prod only
for a former prod); :func:`bot_may_enter` and :func:`needs_passed_canary` say who and what a move needs. The rules
here (:func:`single_holders`, :func:`stage_history`, :func:`transitions`, :func:`canary`, :func:`config`) check that
the recorded stages and transitions keep to it; :data:`regops.policy.RULES` runs them with every other rule.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from operator import itemgetter
from typing import Final

from regops.kinds import STAGES, Problem, Stage
from regops.records import ConfigRecord, ModelEntry, VersionRecord
from regops.registry import CONFIG_FILE, HOLDER_STAGES, Registry

__all__ = [
    "BOT_TARGETS",
    "bot_may_enter",
    "canary",
    "config",
    "needs_passed_canary",
    "single_holders",
    "stage_history",
    "step_allowed",
    "transitions",
]

# The stage machine. archived -> prod is legal only for a former prod (a rollback).
_FORWARD: Final[set[tuple[Stage, Stage]]] = {
    ("candidate", "dev"),
    ("dev", "staging"),
    ("staging", "prod"),
    ("archived", "prod"),
}
_STEPS: Final[frozenset[tuple[Stage, Stage]]] = frozenset(
    _FORWARD | {(stage, "archived") for stage in STAGES if stage != "archived"}
)


def step_allowed(source: Stage, target: Stage, *, was_prod: bool) -> bool:
    """Whether the stage machine allows ``source -> target`` for a version."""
    if (source, target) == ("archived", "prod"):
        return was_prod
    return (source, target) in _STEPS


# What a bot may do to a version (auto-promote to dev, retention and displacement to archived).
BOT_TARGETS: Final[frozenset[Stage]] = frozenset({"dev", "archived"})


def bot_may_enter(config: ConfigRecord, target: Stage) -> bool:
    """Whether a bot may move a version to ``target`` on its own: dev and archived only, and only where
    regops.yaml lets bots (``stages.<stage>.bots``). Never staging or prod, whatever regops.yaml says."""
    rule = config.stages.get(target)
    return target in BOT_TARGETS and rule is not None and rule.bots


def needs_passed_canary(config: ConfigRecord, source: Stage, target: Stage) -> bool:
    """Whether ``source -> target`` needs a passed canary first: staging -> prod where regops.yaml says
    ``require_canary``. A rollback (archived -> prod) brings back a version that served prod before."""
    rule = config.stages.get(target)
    return target == "prod" and source == "staging" and rule is not None and rule.require_canary


# --- the rules over stages -------------------------------------------------------------------------


def single_holders(registry: Registry, _: datetime) -> Iterator[Problem]:
    """At most one version of a model in each of dev, staging and prod."""
    for entry in registry.entries():
        for stage in HOLDER_STAGES:
            holders = [r for r in entry.ordered if r.stage == stage]
            if len(holders) < 2:
                continue
            listed = ", ".join(r.version for r in holders)
            for record in holders:
                yield Problem(
                    registry.display(record.path),
                    field="stage",
                    message=f"{len(holders)} versions of {entry.name} are in {stage} ({listed}); at most one may be",
                )


def stage_history(registry: Registry, _: datetime) -> Iterator[Problem]:
    """Never two versions of a model in one of dev, staging and prod at the same moment of its history: the spans
    the transitions of all its versions give (what ``resolve --at`` reads) do not overlap. O(n log n) per model."""
    for entry in registry.entries():
        held: dict[Stage, list[_Span]] = {stage: [] for stage in HOLDER_STAGES}
        for version, stage, start, end in entry.spans():
            if stage in held and (end is None or end > start):  # an empty span (time out of order) holds nothing
                held[stage].append((start, _OPEN if end is None else end, version))
        for stage, spans in held.items():
            spans.sort(key=itemgetter(0))  # stable: at one start, SemVer order
            for earlier, later in _overlaps(spans):
                yield from _overlap_problems(registry, entry, stage, earlier, later)


# A span a version held a stage: (start, end, version); a span still open ends at _OPEN.
_Span = tuple[datetime, datetime, str]
_OPEN: Final = datetime.max.replace(tzinfo=UTC)


def _overlaps(spans: list[_Span]) -> Iterator[tuple[_Span, _Span]]:
    """Each span (sorted by start) that begins while another version's earlier one still holds, with the one that
    holds longest: a sweep, linear after the sort. Two spans still open are left to :func:`single_holders`."""
    holding: _Span | None = None
    for span in spans:
        start, end, version = span
        if holding is not None and start < holding[1] and version != holding[2] and min(end, holding[1]) < _OPEN:
            yield holding, span
        if holding is None or end > holding[1]:
            holding = span


def _overlap_problems(
    registry: Registry, entry: ModelEntry, stage: Stage, earlier: _Span, later: _Span
) -> Iterator[Problem]:
    """The overlap, on the transition that entered the stage in one file and the one that left it in the other."""
    until = min(earlier[1], later[1])
    message = (
        f"{entry.name} {earlier[2]} and {later[2]} both held {stage} from {later[0].isoformat()} "
        f"until {until.isoformat()}: a stage has one holder at a time (the old one leaves it as the new one "
        "enters, as `regops promote` records it); a transition is backdated or a handover is missing"
    )
    for version, moment, entering in ((later[2], later[0], True), (earlier[2], earlier[1], False)):
        record = entry.versions[version]
        index = next(
            (i for i, t in enumerate(record.steps) if t.at == moment and (t.to if entering else t.from_) == stage),
            None,
        )
        field = f"transitions[{index}]" if index is not None else "stage"
        yield Problem(registry.display(record.path), field=field, message=message)


def transitions(registry: Registry, _: datetime) -> Iterator[Problem]:
    """Transitions chain, keep time order, follow the stage machine, and end at ``stage``."""
    allowed: dict[str, set[Stage]] = {stage: set(policy.from_) for stage, policy in registry.config.stages.items()}
    for record in registry.iter_versions():
        yield from _transitions(registry, record, allowed)


def _transitions(registry: Registry, record: VersionRecord, allowed: dict[str, set[Stage]]) -> Iterator[Problem]:
    shown = registry.display(record.path)
    current: Stage = "candidate"
    previous = record.created_at
    was_prod = False
    for i, step in enumerate(record.steps):
        field = f"transitions[{i}]"
        if step.from_ != current:
            yield Problem(shown, field=f"{field}.from", message=f"is {step.from_}, but the version was {current} then")
        if step.at < previous:
            yield Problem(
                shown,
                field=f"{field}.at",
                message=f"{step.at.isoformat()} is earlier than {previous.isoformat()} before it",
            )
        if not step_allowed(step.from_, step.to, was_prod=was_prod):
            why = " (only a version that was prod before can return to it)" if step.to == "prod" else ""
            yield Problem(shown, field=field, message=f"{step.from_} -> {step.to} is not a legal step{why}")
        elif step.to in allowed and step.from_ not in allowed[step.to]:
            yield Problem(shown, field=field, message=f"{step.from_} -> {step.to} is not allowed by {CONFIG_FILE}")
        was_prod = was_prod or step.to == "prod"
        current, previous = step.to, max(previous, step.at)
    if record.stage != current:
        yield Problem(shown, field="stage", message=f"is {record.stage}, but the last transition is to {current}")


def canary(registry: Registry, _: datetime) -> Iterator[Problem]:
    """A canary record only on versions that went through staging; pending or inconclusive only while there."""
    for record in registry.iter_versions():
        if record.canary is None:
            continue
        if "staging" not in {t.to for t in record.steps}:
            yield Problem(
                registry.display(record.path),
                field="canary",
                message="only versions that entered staging have a canary",
            )
        elif record.canary["result"] in ("pending", "inconclusive") and record.stage != "staging":
            yield Problem(
                registry.display(record.path),
                field="canary.result",
                message=f"a {record.canary['result']} canary belongs to the version in staging; this one is "
                f"{record.stage} (record aborted when it leaves staging without a verdict)",
            )


def config(registry: Registry, _: datetime) -> Iterator[Problem]:
    """regops.yaml may narrow the stage machine, never widen it; bots never enter staging or prod."""
    shown = registry.display(registry.root / CONFIG_FILE)
    for stage, policy in registry.config.stages.items():
        if policy.bots and stage not in BOT_TARGETS:
            yield Problem(
                shown,
                field=f"stages.{stage}.bots",
                message=f"bots never move a version to {stage}: that takes a person and an approved pull request",
            )
        for i, source in enumerate(policy.from_):
            if (source, stage) not in _STEPS:
                yield Problem(
                    shown,
                    field=f"stages.{stage}.from[{i}]",
                    message=f"{source} -> {stage} is never a legal step",
                )
