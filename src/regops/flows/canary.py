"""The canary run: read the live metrics of each canary and of prod, decide (:mod:`regops.canary`), record the
verdict in the version file (:func:`canary_check`); then commit it and open the pull request it calls for
(:func:`canary_pr`), in another process that holds no metrics token."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from regops import attest, canary, lifecycle, publish, signing
from regops.adapters.metrics import MetricsError, MetricsSource, PrometheusSource, open_metrics
from regops.canary import Checked, MetricResult, Rule, Settings
from regops.flows.pulls import commit, on_branch
from regops.kinds import Stage
from regops.lifecycle import Plan
from regops.records import VersionRecord
from regops.registry import Registry, parse_ref
from regops.workspace import identity, open_registry, when, workflow_bot, write

if TYPE_CHECKING:
    from regops.adapters.github import GitHub
    from regops.workspace import RegistryArg, TimeArg

__all__ = ["canary_check", "canary_pr"]


def canary_check(
    model: str | None = None,
    *,
    registry: RegistryArg = "registry",
    now: TimeArg = None,
    dry_run: bool = False,
    env: Mapping[str, str] | None = None,
    signing_key: str | Path | None = None,
    signing_key_env: str | None = None,
) -> list[Checked]:
    """Check every live canary (the version in staging, or ``model``'s) against prod; record each verdict.

    The result, when it was checked and the per-guardrail numbers go into the
    version file (``dry_run``: nowhere). Nothing is committed and no pull request
    opened: :func:`canary_pr` does that, in a process that holds no metrics token
    (and this one no GitHub token). With a signer (:func:`regops.signing.chosen`), a
    final verdict (passed, failed) also gets a signed attestation (:mod:`regops.attest`).
    """
    moment = when(now) or datetime.now(UTC)
    signer = signing.chosen(signing_key, signing_key_env)
    opened = open_registry(registry)
    checks = [_check_canary(opened, record, now=moment, env=env) for record in _live_canaries(opened, model)]
    if dry_run or not checks:
        return checks
    write(opened.root, lambda r: _record_checks(r, checks, now=moment, signer=signer), dry_run=False)
    return checks


def canary_pr(
    model: str | None = None,
    *,
    registry: RegistryArg = "registry",
    by: str | None = None,
    github: GitHub | None = None,
) -> list[Checked]:
    """Commit and push the canary verdicts the version files record, then open the pull request each calls for.

    Reads no metrics: the verdicts are those ``canary check`` wrote. They are
    committed and pushed as ``by`` (default: github-actions[bot] in Actions); then
    a pass opens the pull request promoting the version to prod (owners must still
    approve it) and a fail the one taking it out of staging, each once per decision.
    """
    # Imported here: PyGithub costs ~0.2 s, paid only by the verbs that talk to GitHub.
    from regops.adapters.github import GitHub

    opened = open_registry(registry)
    checks = [c for c in (_recorded_check(opened, r) for r in _live_canaries(opened, model)) if c is not None]
    if not checks:
        return checks
    who = workflow_bot(by) or identity()
    verdicts = ", ".join(f"{c.ref} {c.decision.verdict}" for c in checks)
    commit(registry=opened.root, message=f"canary: {verdicts}", push=True, by=who)
    gh = github or GitHub()
    return [
        replace(c, pull=_canary_pull(opened.root, c, github=gh, by=who)) if c.decision.verdict in canary.FINAL else c
        for c in checks
    ]


def _recorded_check(opened: Registry, record: VersionRecord) -> Checked | None:
    """A canary as its version file records it (None: no verdict recorded), held against today's prod."""

    decision = canary.recorded(record.canary or {})
    if decision is None:
        return None
    holder = opened.holder(record.model, "prod")
    return canary.Checked(record.ref, record.model, record.version, holder.version if holder else None, decision)


def _live_canaries(opened: Registry, model: str | None) -> Iterator[VersionRecord]:

    for name in [parse_ref(model).model] if model else opened.model_names():
        holder = opened.holder(name, "staging")
        record = opened.version(name, holder.version) if holder else None
        if record is not None and record.canary and record.canary.get("result") != "aborted":
            yield record


def _check_canary(opened: Registry, record: VersionRecord, *, now: datetime, env: Mapping[str, str] | None) -> Checked:

    settings = canary.settings(opened.config.raw["canary"], opened.model(record.model).raw.get("canary"))
    holder = opened.holder(record.model, "prod")
    started = datetime.fromisoformat(record.canary["started_at"]) if record.canary else now
    source, why = _metrics_source(opened, settings, env)
    if holder is None:
        source, why = None, f"no version of {record.model} in prod to compare the canary with"
    clock = started
    if source is None or holder is None:
        results = [canary.unavailable(rule, why) for rule in settings.rules]
    else:
        window = _Window(record.model, (record.version, holder.version), started, now)
        clock = _traffic_start(source, settings, window)
        results = [
            _guardrail(source, pair, settings, window) for pair in zip(settings.guardrails, settings.rules, strict=True)
        ]
    results = _counted(results, record.canary or {})
    decision = canary.decide(
        results, started_at=clock, now=now, min_duration=settings.min_duration, max_duration=settings.max_duration
    )
    return canary.Checked(record.ref, record.model, record.version, holder.version if holder else None, decision)


def _metrics_source(
    opened: Registry, settings: Settings, env: Mapping[str, str] | None
) -> tuple[MetricsSource | None, str]:
    """The source regops.yaml configures, or None and why not (a refused token is a reason, never a pass)."""

    if not settings.metrics:
        return None, "no metrics provider: set canary.metrics in regops.yaml"
    try:
        source = open_metrics(
            settings.metrics, root=opened.root.parent, env=env, allowed_token_envs=settings.allowed_token_envs
        )
    except MetricsError as e:
        return None, str(e)
    return source, ""


@dataclass(frozen=True)
class _Window:
    """What a canary's metrics are read for: the model, its (canary, prod) versions, from the canary's start to now."""

    model: str
    versions: tuple[str, str]
    start: datetime
    end: datetime


def _guardrail(
    source: MetricsSource, guardrail: tuple[Mapping[str, Any], Rule], settings: Settings, window: _Window
) -> MetricResult:
    """One guardrail: both arms observed over the canary's window, then tested; a provider error is inconclusive."""

    raw, rule = guardrail
    try:
        canary_arm, prod_arm = (
            source.observe(raw, model=window.model, version=v, start=window.start, end=window.end)
            for v in window.versions
        )
    except MetricsError as e:
        return canary.unavailable(rule, str(e))
    return canary.check(
        rule, canary_arm, prod_arm, min_requests=settings.min_requests, max_requests=settings.max_requests
    )


def _counted(results: list[MetricResult], recorded: Mapping[str, Any]) -> list[MetricResult]:
    """Each result's look number: one more than the version file's last check of that guardrail recorded."""
    before = {raw.get("metric"): int(raw.get("looks", 0)) for raw in recorded.get("report") or () if "method" in raw}
    return [replace(r, looks=before.get(r.metric, 0) + 1) for r in results]


def _traffic_start(source: MetricsSource, settings: Settings, window: _Window) -> datetime:
    """When the canary's minimum duration starts counting: its first request, where Prometheus can tell.

    The version file says when the canary was configured; traffic may have reached
    it later (a deployer applying the manifest). A canary that served nothing yet
    has not started. Without a rate guardrail's ``requests`` query, the file's start.
    """

    requests = next((raw["requests"] for raw in settings.guardrails if raw.get("requests")), None)
    if not isinstance(source, PrometheusSource) or requests is None:
        return window.start
    try:
        first = source.served_since(
            requests, model=window.model, version=window.versions[0], start=window.start, end=window.end
        )
    except MetricsError:
        return window.start  # the guardrails' own queries report the provider's trouble
    return window.end if first is None else max(window.start, first)


def _record_checks(opened: Registry, checks: list[Checked], *, now: datetime, signer: signing.Signer | None) -> Plan:

    plan = Plan()
    for check in checks:
        report = [m.as_record() for m in check.decision.metrics]
        final = check.decision.verdict in canary.FINAL
        attested = _attested(opened, check, report, now=now, signer=signer) if final and signer else None
        one = lifecycle.record_canary(
            opened,
            check.ref,
            result=canary.RECORDED[check.decision.verdict],
            summary=check.decision.summary,
            now=now,
            report=report,
            attestation=attested[1] if attested else None,
        )
        plan.changes += [*([attested[0]] if attested else []), *one.changes]
        plan.steps += one.steps
    return plan


def _attested(
    opened: Registry, check: Checked, report: list[dict[str, Any]], *, now: datetime, signer: signing.Signer
) -> tuple[lifecycle.FileChange, dict[str, str]]:
    """The signed attestation of ``check``'s final verdict: the new file, and its record."""
    record = opened.get(check.ref)
    metrics = opened.config.raw["canary"].get("metrics") or {}
    verdict = {
        "result": canary.RECORDED[check.decision.verdict],
        "summary": check.decision.summary,
        "prod": check.prod,
        "window": {"started_at": _iso((record.canary or {})["started_at"]), "checked_at": now.isoformat()},
        "provider": {"provider": metrics.get("provider"), "url": metrics.get("url") or metrics.get("path")},
        "numbers": report,
    }
    return attest.signed(record, attest.CANARY, verdict, name=attest.canary_name(now), signer=signer)


def _iso(value: Any) -> str:
    return value if isinstance(value, str) else value.isoformat()


def _canary_pull(root: Path, check: Checked, *, github: GitHub, by: str) -> str:
    """Open the pull request a final verdict calls for, unless one was ever opened for it; what happened, in a line."""

    passed = check.decision.verdict == "pass"
    branch = f"regops/canary-{check.model}-{check.version}-{'prod' if passed else 'rollback'}"
    if existing := github.pulls_from(branch):
        pull, state = existing[0]
        return f"#{pull.number} ({state}) already proposes this: {pull.url}"
    opened = open_registry(root)
    record = opened.version(check.model, check.version)
    # Bots never move a version to prod: the transition is the promotion the person who staged it asked for.
    who = next((s.by for s in reversed(record.steps) if s.to == "staging"), by) if passed else by
    target: Stage = "prod" if passed else "archived"
    notes = f"canary {check.decision.summary}"
    title = (
        f"Promote {check.ref} to prod: canary passed" if passed else f"Take {check.ref} out of staging: canary failed"
    )
    _, pull = on_branch(
        opened,
        lambda: write(root, lambda r: lifecycle.promote(r, check.ref, to=target, notes=notes, by=who), dry_run=False),
        title=title,
        branch=branch,
        labels=["canary", f"stage:{target}", f"model:{check.model}"],
        model=check.model,
        by=who,
        github=github,
        preface=publish.canary_evidence(check),
        author=by,
    )
    return f"opened #{pull.number}: {pull.url}"
