"""The approvals check (``regops/approvals``): does code review sign off every change a pull request makes?

Pure: :mod:`regops.gate` turns what the pull request changes into
:class:`Need` values (the approvals each change takes, by the base branch's
policy); the caller gathers the other facts (reviews, the PR's author and
committers, team members) and :func:`evaluate` decides. The one decision of
who counts, used by the check and by ``pr stamp`` alike.

A review counts for a need when it is the reviewer's latest, says APPROVED,
was given on the PR's current head commit, and comes from one of the need's
approvers (logins, or members of an ``@org/team``) who is neither the PR's
author, nor one of its committers, nor the person the transition names as
making it, nor a bot. An eligible reviewer whose latest review requests
changes blocks it. A commit whose author or committer GitHub ties to no
account fails the check (its people cannot be excluded).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from regops.kinds import Problem, Stage

__all__ = ["ADMINS", "CONTEXT", "Move", "Need", "Outcome", "Review", "Verdict", "evaluate", "latest_reviews"]

CONTEXT: Final = "regops/approvals"
ADMINS: Final = "one of the admins"


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
class Need:
    """One change of the pull request and the approvals it takes, as the base branch's policy says.

    ``approvers`` are as the base lists them (logins and ``@org/team``s); ``denied`` says why no approval can
    allow the change. ``move`` is set for an appended transition: the person it names cannot approve it, and a
    prod move may need a passed canary (``canary_required``).
    """

    subject: str
    approvals: int
    approvers: tuple[str, ...] = ()
    role: str = ""
    paths: tuple[str, ...] = ()
    move: Move | None = None
    canary_required: bool = False
    denied: str = ""


@dataclass(frozen=True)
class Verdict:
    """The check's answer for one need."""

    need: Need
    counted: tuple[str, ...]
    eligible: tuple[str, ...]  # who could still approve
    ignored: tuple[tuple[str, str], ...]  # (reviewer, why the review did not count)
    blocking: tuple[str, ...]  # eligible reviewers requesting changes
    canary_missing: bool = False

    @property
    def move(self) -> Move | None:
        return self.need.move

    @property
    def needed(self) -> int:
        return self.need.approvals

    @property
    def ok(self) -> bool:
        if self.need.denied:
            return False
        return len(self.counted) >= self.needed and not self.blocking and not self.canary_missing

    @property
    def missing(self) -> int:
        return max(0, self.needed - len(self.counted))

    @property
    def why(self) -> str:
        """Why it fails, in a few words ("" when it passes)."""
        if self.ok:
            return ""
        if self.need.denied:
            return self.need.denied
        if self.blocking:
            return f"changes requested by {', '.join(self.blocking)}"
        if self.canary_missing:
            return "no passed canary"
        if not self.need.approvers and self.need.role == ADMINS:
            return "regops.yaml lists no admins, so nobody can approve it"
        return f"needs {self.missing} more approval(s) from {', '.join(self.eligible) or 'nobody eligible'}"


@dataclass(frozen=True)
class Outcome:
    """The verdicts; the validation problems of the pull request's head against its base (``base_ref``), since a
    change that breaks a rule fails whatever its approvals; and commits whose people GitHub cannot name."""

    verdicts: list[Verdict] = field(default_factory=list)
    problems: tuple[Problem, ...] = ()
    base_ref: str = "main"
    unlinked: tuple[str, ...] = ()  # commits whose author or committer is no GitHub account
    skipped: str = ""  # why the pull request was not judged (its base is not a protected branch)

    @property
    def ok(self) -> bool:
        return not self.problems and not self.unlinked and all(v.ok for v in self.verdicts)

    @property
    def summary(self) -> str:
        """One line for the commit status (GitHub cuts descriptions at 140 characters)."""
        if self.skipped:
            return self.skipped
        if self.unlinked:
            return f"{self.unlinked[0]}: tie the e-mail to a GitHub account or re-commit with one"[:140]
        if self.problems:
            count = len(self.problems)
            return f"{count} validation problem{'s' * (count != 1)}: run regops validate --base {self.base_ref}"[:140]
        if not self.verdicts:
            return "no changes to judge"
        failing = [v for v in self.verdicts if not v.ok]
        if not failing:
            return f"approved: {', '.join(v.need.subject for v in self.verdicts)}"[:140]
        more = f" (+{len(failing) - 1} more)" if len(failing) > 1 else ""
        return f"{failing[0].need.subject}: {failing[0].why}{more}"[:140]


def latest_reviews(reviews: Iterable[Review]) -> dict[str, Review]:
    """Each reviewer's latest review that says something (COMMENTED does not replace an approval)."""
    latest: dict[str, Review] = {}
    for review in reviews:  # oldest first, as GitHub lists them
        if review.state != "COMMENTED":
            latest[review.user] = review
    return latest


def evaluate(
    needs: Sequence[Need],
    *,
    reviews: Sequence[Review],
    head: str,
    author: str,
    committers: Iterable[str],
    expand: Callable[[Sequence[str]], set[str]],
    is_bot: Callable[[str], bool],
    unlinked: Sequence[str] = (),
) -> Outcome:
    """Decide every need. ``expand`` turns the approvers a need lists (logins, ``@org/team``s) into logins.

    The one decision of who counts, for the check and for the stamp alike.
    """
    latest = latest_reviews(reviews)
    excluded = {author, *committers}
    verdicts = []
    for need in needs:
        allowed = expand(need.approvers)
        named = need.move.by if need.move else None
        counted, ignored, blocking = [], [], []
        for user, review in sorted(latest.items()):
            if review.state == "CHANGES_REQUESTED" and user in allowed:
                blocking.append(user)
            elif review.state == "APPROVED":
                why = _not_counted(review, need, allowed, head=head, author=author, excluded=excluded, is_bot=is_bot)
                if why:
                    ignored.append((user, why))
                else:
                    counted.append(user)
        canary_missing = need.canary_required and need.move is not None and need.move.canary != "passed"
        remaining = tuple(sorted(allowed - excluded - {named} - set(counted)))
        verdicts.append(Verdict(need, tuple(counted), remaining, tuple(ignored), tuple(blocking), canary_missing))
    return Outcome(verdicts, unlinked=tuple(unlinked))


def _not_counted(
    review: Review,
    need: Need,
    allowed: set[str],
    *,
    head: str,
    author: str,
    excluded: set[str],
    is_bot: Callable[[str], bool],
) -> str:
    """Why an approval does not count for ``need`` ("" when it does): the first reason, in this order."""
    user = review.user
    reasons = (
        (review.bot or is_bot(user), "a bot"),
        (user == author, "the pull request's author"),
        (need.move is not None and user == need.move.by, f"the transition names {user} as making it"),
        (user in excluded, "a committer of the pull request"),
        (user not in allowed, f"not {need.role}"),
        (
            review.commit != head,
            f"approved {review.commit[:7]}, not the head commit {head[:7]}: re-review after the new commits",
        ),
    )
    return next((why for applies, why in reasons if applies), "")
