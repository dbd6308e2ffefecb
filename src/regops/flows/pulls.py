"""Pull requests judged: check, report, stamp.

The required check ``regops/approvals`` (:func:`pr_check` and its
``head``/``group`` forms) judges a pull request's changes by its base's policy
(:mod:`regops.gate`, :mod:`regops.approvals`); :func:`pr_report` keeps its one
comment; :func:`pr_stamp` records, after the merge, who approved each
transition. Making a change as a pull request (branch, commit, push, open) and
:func:`commit` are in :mod:`regops.flows.branches`, re-exported here.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from regops import approvals, attest, changes, gate, lifecycle, policy, publish, signing
from regops.adapters import git
from regops.approvals import Need, Outcome
from regops.changes import pr_moves
from regops.errors import RegopsError
from regops.flows.branches import as_pull_request, commit, on_branch
from regops.kinds import Problem, Stage
from regops.lifecycle import Plan
from regops.records import VersionRecord
from regops.registry import CONFIG_FILE, Registry
from regops.workspace import open_registry, registry_at, write

if TYPE_CHECKING:
    from regops.adapters.github import GitHub, Pull
    from regops.workspace import RegistryArg

__all__ = [
    "REPORT_MARKER",
    "as_pull_request",
    "commit",
    "merge_group_pull",
    "on_branch",
    "pr_check",
    "pr_check_group",
    "pr_check_head",
    "pr_moves",
    "pr_report",
    "pr_report_head",
    "pr_stamp",
    "protected_branches",
    "registry_at",
]


def _expander(github: GitHub) -> Callable[[Sequence[str]], set[str]]:
    """Approvers as a need lists them (logins, ``@org/team``s) -> logins, each team asked GitHub once."""
    teams: dict[str, set[str]] = {}

    def expand(approvers: Sequence[str]) -> set[str]:
        people: set[str] = set()
        for who in approvers:
            if "/" in who:
                people |= teams.setdefault(who, github.team_members(who))
            else:
                people.add(who.lstrip("@"))
        return people

    return expand


def merge_group_pull(ref: str) -> int:
    """The pull request a merge-queue branch (``gh-readonly-queue/main/pr-42-<sha>``) was made for."""
    return _queue_entry(ref)[1]


def _queue_entry(ref: str) -> tuple[str, int]:
    """(base branch, pull request number) of a merge-queue branch ``gh-readonly-queue/<base>/pr-<N>-<sha>``."""
    found = re.search(r"gh-readonly-queue/(.+)/pr-(\d+)-[0-9a-f]+$", ref)
    if found is None:
        raise RegopsError(f"{ref!r} is not a merge queue branch (gh-readonly-queue/<base>/pr-<N>-<sha>)")
    return found.group(1), int(found.group(2))


def protected_branches(opened: Registry, gh: GitHub) -> tuple[str, ...]:
    """The branches whose pull requests are judged: regops.yaml's ``protected_branches``, else the default branch."""
    return opened.config.protected_branches or (gh.default_branch(),)


def _not_judged(pull: Pull) -> Outcome:
    return Outcome(base_ref=pull.base_ref, skipped=f"into {pull.base_ref}, not a protected branch: not judged")


def pr_check(
    number: int, *, registry: RegistryArg = "registry", github: GitHub | None = None, status_sha: str | None = None
) -> Outcome:
    """The required check ``regops/approvals`` of pull request ``number``, reported as a commit status on its head.

    Every change the PR makes is judged (:mod:`regops.gate`, default deny) by the policy of its base commit, the
    changes read from git (fetch them first), the reviews and commits from GitHub; the head's validation problems
    against the base fail it too. A PR into a branch that is not protected (``protected_branches``) is not
    judged and gets no status. ``status_sha`` reports on another commit.
    """
    # Imported here: PyGithub costs ~0.2 s, paid only by the verbs that talk to GitHub.
    from regops.adapters.github import GitHub

    gh = github or GitHub()
    opened = open_registry(registry)
    pull = gh.pull(number)
    if pull.base_ref not in protected_branches(opened, gh):
        return _not_judged(pull)
    outcome = _approvals(opened, pull, gh)
    gh.set_status(status_sha or pull.head_sha, ok=outcome.ok, description=outcome.summary)
    return outcome


def pr_check_head(
    head_sha: str, *, registry: RegistryArg = "registry", github: GitHub | None = None
) -> dict[int, Outcome]:
    """:func:`pr_check` for the open pull requests into protected branches whose head commit is ``head_sha``.

    For a workflow trusted with a write token (``workflow_run``): the pull
    requests are found by their head among the open ones, and their heads
    (``refs/pull/N/head``) and base commits fetched from ``origin`` as git
    objects, nothing checked out. None open (the branch moved on, or it closed):
    ``{}`` and no status, as the newer head's run decides.

    A commit status belongs to the commit, not to one pull request, so pull requests sharing a head share it:
    it passes when, for each protected base branch they target, at least one of the pull requests into that
    branch passes. A pull request (a fork's, say) sharing an approved head cannot fail it — merging either
    brings the same approved change into that branch — and a pass judged for one branch never stands for
    another, whose policy may be stricter.
    """
    # Imported here: PyGithub costs ~0.2 s, paid only by the verbs that talk to GitHub.
    from regops.adapters.github import GitHub

    gh = github or GitHub()
    opened = open_registry(registry)
    protected = protected_branches(opened, gh)
    pulls = [pull for pull in _pulls_at(opened, head_sha, gh, protected) if pull.base_ref in protected]
    outcomes = {pull.number: _approvals(opened, pull, gh) for pull in pulls}
    if outcomes:
        ok, shown = _shared_status(pulls, outcomes)
        gh.set_status(head_sha, ok=ok, description=shown)
    return outcomes


def _shared_status(pulls: Sequence[Pull], outcomes: Mapping[int, Outcome]) -> tuple[bool, str]:
    """The one status of pull requests sharing a head (see :func:`pr_check_head`): (passes, description)."""
    failing = []
    for base in sorted({pull.base_ref for pull in pulls}):
        into = [pull.number for pull in pulls if pull.base_ref == base]
        if not any(outcomes[n].ok for n in into):
            failing.append(into[0])
    number = failing[0] if failing else next(n for n, o in outcomes.items() if o.ok)
    which = f"#{number}: " if len(outcomes) > 1 else ""
    return not failing, which + outcomes[number].summary


def _pulls_at(opened: Registry, head_sha: str, gh: GitHub, protected: Sequence[str] = ()) -> list[Pull]:
    """The open pull requests whose head is ``head_sha``, with their head (``refs/pull/N/head``, which GitHub keeps
    for forks' pull requests too) and base commits fetched from ``origin``: git objects, never checked out."""
    pulls = gh.open_pulls(head_sha=head_sha)
    wanted = [pull for pull in pulls if not protected or pull.base_ref in protected]
    if wanted:
        heads = [f"+refs/pull/{pull.number}/head:refs/remotes/pull/{pull.number}/head" for pull in wanted]
        # The base branches as they are now too: canary results recorded on them after the PR was opened count.
        bases = [f"+refs/heads/{ref}:refs/remotes/origin/{ref}" for ref in sorted({pull.base_ref for pull in wanted})]
        git.fetch(opened.root.parent, [*heads, *bases, *sorted({pull.base_sha for pull in wanted})])
    return pulls


def _pr_problems(head: Registry, base_files: dict[str, bytes], base_ref: str) -> list[Problem]:
    """What ``regops validate --base`` finds in the pull request's head."""
    return sorted(set(policy.check(head)) | set(changes.against_base(head, base_files, ref=base_ref)))


def _head_changes(opened: Registry, pull: Pull, base_sha: str) -> tuple[set[str], set[str] | None]:
    """The registry's paths the pull request's head changes against ``base_sha`` (git's diff), and the models
    whose folders they are in (None when anything else in the registry differs: every model is then checked)."""
    root = opened.root.parent
    folder = opened.root.relative_to(root).as_posix()
    changed = {c.path for c in git.changes(root, base_sha, pull.head_sha) if c.path.startswith(f"{folder}/")}
    return changed, changes.touched_models(changed, folder)


def _head_problems(
    opened: Registry, head: Registry, pull: Pull, base_sha: str, differs: tuple[set[str], set[str] | None]
) -> list[Problem]:
    """What ``regops validate --base`` finds in the pull request's head (read from ``opened``'s repository), read as
    it reads a working tree: only the models whose folders differ from ``base_sha`` (``differs``: git's diff, as
    :func:`_head_changes` gives it), every model when anything else in the registry differs; the base's bytes of the
    differing paths alone."""
    root = opened.root.parent
    changed, scope = differs
    if scope is None:
        folder = opened.root.relative_to(root).as_posix()
        return _pr_problems(head, git.files_at(root, base_sha, folder), pull.base_ref)
    head.limit(scope)
    before = git.files_at(root, base_sha, *sorted(changed)) if changed else {}
    found = set(policy.check(head)) | set(changes.against_base(head, before, ref=pull.base_ref, changed=changed))
    return sorted(found)


def _approvals(opened: Registry, pull: Pull, gh: GitHub, *, base_sha: str | None = None) -> Outcome:
    """The approvals check of ``pull``: every change it makes judged by its base's policy (``base_sha``, default
    the pull request's base commit), its validation problems included; no status set. Only what differs is read
    from git: the changed paths' bytes, and of the base the folders its judgement reads (``registry_at``)."""
    root = opened.root.parent
    folder = opened.root.relative_to(root).as_posix()
    base_sha = base_sha or pull.base_sha
    # The PR's own changes: from where its head branched off the base (GitHub's "files changed"), not the base's tip.
    fork = git.merge_base(root, base_sha, pull.head_sha)
    made = git.changes(root, fork, pull.head_sha)
    paths = sorted({c.path for c in made if c.path.startswith(f"{folder}/")})
    # The base branch as this clone last fetched it: canary results recorded on it since the PR's base commit count.
    latest = git.resolve(root, f"refs/remotes/origin/{pull.base_ref}") or base_sha
    recorded, forked, ours = (git.files_at(root, ref, *paths) if paths else {} for ref in (latest, fork, pull.head_sha))
    prefix = f"{folder}/models/"
    models = {rest.split("/", 1)[0] for p in paths if "/" in (rest := p.removeprefix(prefix)) and p.startswith(prefix)}
    # The head as validate --base reads a working tree: the changed models' folders whole, any other model read
    # from git when a rule asks for it (a parent); the whole head when the change reaches past model folders.
    differs = _head_changes(opened, pull, base_sha)
    at_head = registry_at(opened, pull.head_sha, models=differs[1], on_demand=True)
    with registry_at(opened, base_sha, models=models) as (base, _), at_head as (head, _):
        needs = gate.needs(
            made,
            base=base,
            folder=folder,
            base_files=forked,
            head_files=ours,
            recorded=recorded,
            author=pull.author,
        )
        needs = _signed_moves(needs, head=head, base=base)
        committers, unlinked = gh.committers(pull.number)
        outcome = approvals.evaluate(
            needs,
            reviews=gh.reviews(pull.number),
            head=pull.head_sha,
            author=pull.author,
            committers=committers,
            expand=_expander(gh),
            is_bot=base.config.is_bot,
            unlinked=unlinked,
        )
        problems = _head_problems(opened, head, pull, base_sha, differs)
    return replace(outcome, problems=tuple(problems), base_ref=pull.base_ref)


def _signed_moves(needs: Sequence[Need], *, head: Registry, base: Registry) -> list[Need]:
    """Each move of the pull request denied when the version records no signature and the base's ``signing:`` asks
    for one in its target stage (:func:`regops.signing.require`; this job holds no Hub token to read the bundle:
    sync verifies it before any ref moves, promote and download before they act)."""
    policy = base.config.signing
    return [_signed(need, head, policy) for need in needs] if policy else list(needs)


def _signed(need: Need, head: Registry, policy: dict[str, Any]) -> Need:
    move = need.move
    if move is None or need.denied or head.find(move.ref) is None:
        return need
    try:
        signing.require(head.get(move.ref), stage=move.target, policy=policy, action=f"moving it to {move.target}")
    except signing.SigningError as e:
        return replace(need, denied=str(e))
    return need


def pr_check_group(
    ref: str,
    *,
    sha: str,
    base_sha: str,
    registry: RegistryArg = "registry",
    github: GitHub | None = None,
) -> Outcome:
    """The required status on a merge-queue group's commit ``sha`` (branch ``ref``, built on ``base_sha``).

    The group commit itself is judged, not only copied from its pull requests: it must validate against
    the queue's base, every pull request in the group (the queue's entries between ``base_sha`` and ``sha``)
    must pass its own approvals check, and the group may change no path that none of them changes.
    """
    # Imported here: PyGithub costs ~0.2 s, paid only by the verbs that talk to GitHub.
    from regops.adapters.github import GitHub

    gh = github or GitHub()
    opened = open_registry(registry)
    root, folder = opened.root.parent, opened.root.relative_to(opened.root.parent).as_posix()
    base_ref, number = _queue_entry(ref)
    numbers = _group_members(root, base_ref, base_sha, sha) or [number]
    pulls = [gh.pull(n) for n in numbers]
    git.fetch(root, [f"+refs/pull/{p.number}/head:refs/remotes/pull/{p.number}/head" for p in pulls])
    outcomes = [_approvals(opened, pull, gh) for pull in pulls]
    covered = {
        c.path for p in pulls for c in git.changes(root, git.merge_base(root, p.base_sha, p.head_sha), p.head_sha)
    }
    stray = [c.path for c in git.changes(root, base_sha, sha) if c.path not in covered]
    with registry_at(opened, sha) as (group, _):
        problems = _pr_problems(group, git.files_at(root, base_sha, folder), base_ref)
    problems += [
        Problem(path, message="the group commit changes it, and none of its pull requests does") for path in stray
    ]
    outcome = _group_outcome(outcomes, problems, base_ref)
    gh.set_status(sha, ok=outcome.ok, description=outcome.summary)
    return outcome


def _group_members(root: Path, base_ref: str, base_sha: str, sha: str) -> list[int]:
    """The pull requests of a merge-queue group: the queue branches whose commits lie between base and group head."""
    entries = set(git.first_parents(root, base_sha, sha))
    branches = git.remote_heads(root, f"refs/heads/gh-readonly-queue/{base_ref}/*")
    return sorted(_queue_entry(ref)[1] for ref, commit in branches.items() if commit in entries)


def _group_outcome(outcomes: Sequence[Outcome], problems: list[Problem], base_ref: str) -> Outcome:
    return Outcome(
        [v for o in outcomes for v in o.verdicts],
        tuple(sorted({*problems, *(p for o in outcomes for p in o.problems)})),
        base_ref,
        tuple(u for o in outcomes for u in o.unlinked),
    )


REPORT_MARKER = "<!-- regops:report -->"


def pr_report(number: int, *, registry: RegistryArg = "registry", github: GitHub | None = None) -> tuple[str, str]:
    """Create or update the pull request's one regops comment: validation, then the review page. (action, body)"""
    # Imported here: PyGithub costs ~0.2 s, paid only by the verbs that talk to GitHub.
    from regops.adapters.github import GitHub

    gh = github or GitHub()
    return _report(open_registry(registry), gh.pull(number), gh)


def pr_report_head(
    head_sha: str, *, registry: RegistryArg = "registry", github: GitHub | None = None
) -> dict[int, str]:
    """:func:`pr_report` for the open pull request whose head commit is ``head_sha`` (found and fetched as
    :func:`pr_check_head` does): what was done to each one's comment, by number; ``{}`` when none is open."""
    # Imported here: PyGithub costs ~0.2 s, paid only by the verbs that talk to GitHub.
    from regops.adapters.github import GitHub

    gh = github or GitHub()
    opened = open_registry(registry)
    return {pull.number: _report(opened, pull, gh)[0] for pull in _pulls_at(opened, head_sha, gh)}


def _report(opened: Registry, pull: Pull, gh: GitHub) -> tuple[str, str]:
    with registry_at(opened, pull.base_sha) as (base, base_files), registry_at(opened, pull.head_sha) as (head, _):
        problems = _pr_problems(head, base_files, pull.base_ref)
        moves = pr_moves(head, base_files)
        # A version the pull request adds is shown from its head; one already on the base as the base has it.
        records = [(base.find(m.ref) or head.version(m.model, m.version), m.source, m.target) for m in moves]
        page = publish.review_page(head, records, before=base) if records else ""
        body = publish.pr_comment(problems, page, marker=REPORT_MARKER)
    return gh.upsert_comment(pull.number, REPORT_MARKER, body), body


def pr_stamp(
    *,
    registry: RegistryArg = "registry",
    since: str = "HEAD^",
    github: GitHub | None = None,
    dry_run: bool = False,
    signing_key: str | Path | None = None,
    signing_key_env: str | None = None,
) -> Plan:
    """Record the merged pull request and who approved it on each transition added since ``since``.

    Run on the default branch after a merge (the sync workflow): the pull
    request is the one GitHub associates with the current commit; each
    transition's approvers are exactly the reviews that counted for it in the
    approvals check (the same decision, :func:`regops.approvals.evaluate`, on the
    pull request's final head and base). Transitions made by bots, or already
    stamped, are left alone. With a signer (``signing_key``, or the key in the variable
    ``signing_key_env``: :func:`regops.signing.chosen`), each stamped transition also gets
    a signed review attestation (:mod:`regops.attest`).
    """
    # Imported here: PyGithub costs ~0.2 s, paid only by the verbs that talk to GitHub.
    from regops.adapters.github import GitHub

    gh = github or GitHub()
    signer = signing.chosen(signing_key, signing_key_env)
    opened = open_registry(registry)
    with registry_at(opened, since) as (base, before):
        pending = [
            (record, step)
            for record, step in changes.added_transitions(opened, before)
            if "pr" not in step and not opened.config.is_bot(step["by"])
        ]
        in_force = _policy_in_force(base, before, opened.root.relative_to(opened.root.parent).as_posix())
    if not pending:
        return lifecycle.Plan(notes=["no transitions to stamp"])
    pulls = gh.merged_pulls(git.head_commit(opened.root.parent))
    if not pulls:
        return lifecycle.Plan(notes=["the current commit came from no merged pull request; nothing stamped"])
    pull = pulls[0]
    counted = _counted_by_move(opened, pull, gh, base_sha=git.resolve(opened.root.parent, since) or since)

    def plan_it(r: Registry) -> Plan:
        plan = lifecycle.Plan()
        for record, step in pending:
            fresh = r.version(record.model, record.version)
            index = fresh.raw["transitions"].index(step)
            approvers = counted.get((record.model, record.version, step["from"], step["to"]), [])
            review = {"pr": pull.number, "head": pull.head_sha, "approvers": approvers, **in_force(step["to"])}
            attested = _attested(fresh, index, review, signer=signer) if signer else None
            stamped = lifecycle.stamp(
                fresh, index, pr=pull.number, approved_by=approvers, attestation=attested[1] if attested else None
            )
            plan.changes += [*([attested[0]] if attested else []), *stamped.changes]
            plan.steps += stamped.steps
        if signer is None:
            plan.notes.append("no signing key: the review attestations were not written (regops verify needs them)")
        return plan

    return write(opened.root, plan_it, dry_run=dry_run)


def _policy_in_force(base: Registry, files: Mapping[str, bytes], folder: str) -> Callable[[str], dict[str, Any]]:
    """The base's policy a review was judged by, for a move into a stage: regops.yaml's sha256 and the approvals the
    stage required."""
    digest = hashlib.sha256(files.get(f"{folder}/{CONFIG_FILE}", b"")).hexdigest()
    stages = base.config.stages

    def for_stage(target: str) -> dict[str, Any]:
        rule = stages.get(cast(Stage, target))
        return {"policy": {"regops.yaml": {"sha256": digest}, "approvals": rule.approvals if rule else 0}}

    return for_stage


def _attested(
    record: VersionRecord, index: int, review: dict[str, Any], *, signer: signing.Signer
) -> tuple[lifecycle.FileChange, dict[str, str]]:
    """The signed review attestation of ``record``'s transition ``index``: the new file, and its record."""
    step = record.raw["transitions"][index]
    moved = {"transition": index, "from": step["from"], "to": step["to"]}
    return attest.signed(record, attest.REVIEW, {**moved, **review}, name=f"review-{index}", signer=signer)


def _counted_by_move(
    opened: Registry, pull: Pull, gh: GitHub, *, base_sha: str
) -> dict[tuple[str, str, str, str], list[str]]:
    """Who counted for each transition of the merged ``pull``, judged against ``base_sha`` (the base branch just
    before the merge); its head is fetched when not at hand (a squash merge leaves it out of the branch)."""
    root = opened.root.parent
    if git.resolve(root, pull.head_sha) is None:
        git.fetch(root, [f"+refs/pull/{pull.number}/head:refs/remotes/pull/{pull.number}/head"])
    outcome = _approvals(opened, pull, gh, base_sha=base_sha)
    return {
        (v.move.model, v.move.version, v.move.source, v.move.target): sorted(v.counted)
        for v in outcome.verdicts
        if v.move is not None
    }
