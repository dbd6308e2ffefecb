"""The approvals check (``regops/approvals``): does a pull request's code review sign off every stage change it makes?

Pure: the caller gathers the facts (the transitions the PR adds, the policy
from the base branch, the reviews, the PR's author and committers, team
members) and :func:`evaluate` decides. Policy always comes from the base
branch, so a pull request cannot approve itself by editing owners or
``regops.yaml``.

A review counts when it is the reviewer's latest, says APPROVED, was given on
the PR's current head commit, and comes from an eligible approver (the model's
owners — users, or members of an ``@org/team`` — or the stage's ``approvers``)
who is neither the PR's author, nor one of its committers, nor a bot. An
eligible reviewer whose latest review requests changes blocks the change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from regops.kinds import Problem, Stage

__all__ = ["Move", "Outcome", "Review", "Verdict", "evaluate", "latest_reviews"]

CONTEXT: Final = "regops/approvals"


@dataclass(frozen=True)
class Move:
    """A transition the pull request adds."""

    model: str
    version: str
    source: Stage
    target: Stage
    canary: str | None = None  # the version's canary result as recorded on the base branch (for prod)
    by: str | None = None  # who the transition names as making it (a canary's prod PR: who staged the version)

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.version}"


@dataclass(frozen=True)
class Review:
    user: str
    state: str  # APPROVED | CHANGES_REQUESTED | COMMENTED | DISMISSED
    commit: str
    bot: bool = False


@dataclass(frozen=True)
class Verdict:
    """The check's answer for one move."""

    move: Move
    needed: int
    counted: tuple[str, ...]
    eligible: tuple[str, ...]
    ignored: tuple[tuple[str, str], ...]  # (reviewer, why the review did not count)
    blocking: tuple[str, ...]  # eligible reviewers requesting changes
    canary_missing: bool = False

    @property
    def ok(self) -> bool:
        return len(self.counted) >= self.needed and not self.blocking and not self.canary_missing

    @property
    def missing(self) -> int:
        return max(0, self.needed - len(self.counted))


@dataclass(frozen=True)
class Outcome:
    """The verdicts, and the validation problems of the pull request's head against its base (``base_ref``):
    a change that breaks a rule fails the check whatever its approvals, so the one required status says both."""

    verdicts: list[Verdict] = field(default_factory=list)
    problems: tuple[Problem, ...] = ()
    base_ref: str = "main"

    @property
    def ok(self) -> bool:
        return not self.problems and all(v.ok for v in self.verdicts)

    @property
    def summary(self) -> str:
        """One line for the commit status (GitHub cuts descriptions at 140 characters)."""
        if self.problems:
            count = len(self.problems)
            return f"{count} validation problem{'s' * (count != 1)}: run regops validate --base {self.base_ref}"[:140]
        if not self.verdicts:
            return "no stage changes: nothing to approve"
        failing = [v for v in self.verdicts if not v.ok]
        if not failing:
            moves = ", ".join(f"{v.move.ref} → {v.move.target}" for v in self.verdicts)
            return f"approved: {moves}"[:140]
        first = failing[0]
        if first.blocking:
            why = f"changes requested by {', '.join(first.blocking)}"
        elif first.canary_missing:
            why = "no passed canary"
        else:
            why = f"needs {first.missing} more approval(s) from {', '.join(first.eligible) or 'nobody eligible'}"
        more = f" (+{len(failing) - 1} more)" if len(failing) > 1 else ""
        return f"{first.move.ref} → {first.move.target}: {why}{more}"[:140]


def latest_reviews(reviews: Iterable[Review]) -> dict[str, Review]:
    """Each reviewer's latest review that says something (COMMENTED does not replace an approval)."""
    latest: dict[str, Review] = {}
    for review in reviews:  # oldest first, as GitHub lists them
        if review.state != "COMMENTED":
            latest[review.user] = review
    return latest


def evaluate(
    moves: Sequence[Move],
    *,
    reviews: Sequence[Review],
    head: str,
    author: str,
    committers: Iterable[str],
    approvals: Callable[[Stage], int],
    require_canary: Callable[[Stage], bool],
    eligible: Callable[[Move], set[str]],
    is_bot: Callable[[str], bool],
) -> Outcome:
    """Decide every move; ``eligible(move)`` is the set of logins that may approve it (teams expanded)."""
    latest = latest_reviews(reviews)
    excluded = {author, *committers}
    verdicts = []
    for move in moves:
        allowed = eligible(move)
        counted, ignored, blocking = [], [], []
        for user, review in sorted(latest.items()):
            if review.state == "CHANGES_REQUESTED" and user in allowed:
                blocking.append(user)
                continue
            if review.state != "APPROVED":
                continue
            why = None
            if review.bot or is_bot(user):
                why = "a bot"
            elif user == author:
                why = "the pull request's author"
            elif user == move.by:
                why = f"the transition names {user} as making it"
            elif user in excluded:
                why = "a committer of the pull request"
            elif user not in allowed:
                why = f"not an owner of {move.model} nor an approver for {move.target}"
            elif review.commit != head:
                why = f"approved {review.commit[:7]}, not the head commit {head[:7]}: re-review after the new commits"
            if why:
                ignored.append((user, why))
            else:
                counted.append(user)
        canary_missing = move.target == "prod" and require_canary("prod") and move.canary != "passed"
        verdicts.append(
            Verdict(
                move,
                approvals(move.target),
                tuple(counted),
                tuple(sorted(allowed - excluded - {move.by} - set(counted))),
                tuple(ignored),
                tuple(blocking),
                canary_missing,
            )
        )
    return Outcome(verdicts)
