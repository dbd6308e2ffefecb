"""The approvals decision: which reviews count for which stage change, and why the others do not."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from regops.approvals import ADMINS, Move, Need, Outcome, Review, evaluate

HEAD, OLD = "a" * 40, "b" * 40
TEAM = {"@acme/ml": {"bob", "carol"}}  # sentiment's owners: alice and a team


def need(move: Move, *, prod_approvals: int = 2) -> Need:
    """What the gate asks of a move (see tests/test_gate.py for how it is derived from the files)."""
    approvals = {"staging": 1, "prod": prod_approvals}.get(move.target, 0)
    role = f"an owner of sentiment nor an approver for {move.target}"
    canary = move.target == "prod" and move.source == "staging"
    return Need(
        f"{move.ref} → {move.target}", approvals, ("alice", "@acme/ml"), role, move=move, canary_required=canary
    )


def expand(approvers: Sequence[str]) -> set[str]:
    return set().union(*(TEAM.get(who, {who}) for who in approvers))


def decide(
    moves: list[Move | Need],
    reviews: list[Review],
    *,
    author: str = "alice",
    committers: tuple[str, ...] = ("alice",),
    prod_approvals: int = 2,
    unlinked: tuple[str, ...] = (),
) -> Outcome:
    return evaluate(
        [m if isinstance(m, Need) else need(m, prod_approvals=prod_approvals) for m in moves],
        reviews=reviews,
        head=HEAD,
        author=author,
        committers=committers,
        expand=expand,
        is_bot=lambda login: login.endswith("[bot]"),
        unlinked=unlinked,
    )


STAGING = Move("sentiment", "1.4.0", "dev", "staging")
PROD = Move("sentiment", "1.4.0", "staging", "prod", canary="passed")


def test_no_review_fails_and_an_owner_on_the_head_commit_passes() -> None:
    outcome = decide([STAGING], [])
    assert not outcome.ok
    assert outcome.summary == "sentiment@1.4.0 → staging: needs 1 more approval(s) from bob, carol"
    outcome = decide([STAGING], [Review("bob", "APPROVED", HEAD)])
    assert outcome.ok and outcome.verdicts[0].counted == ("bob",)
    assert outcome.summary == "approved: sentiment@1.4.0 → staging"


@pytest.mark.parametrize(
    ("review", "why"),
    [
        (Review("alice", "APPROVED", HEAD), "the pull request's author"),
        (Review("mallory", "APPROVED", HEAD), "not an owner of sentiment nor an approver for staging"),
        (
            Review("bob", "APPROVED", OLD),
            "approved bbbbbbb, not the head commit aaaaaaa: re-review after the new commits",
        ),
        (Review("regops-app[bot]", "APPROVED", HEAD, bot=True), "a bot"),
        (Review("carol", "APPROVED", HEAD), "a committer of the pull request"),
    ],
)
def test_reviews_that_do_not_count_say_why(review: Review, why: str) -> None:
    outcome = decide([STAGING], [review], committers=("alice", "carol"))
    assert not outcome.ok
    assert outcome.verdicts[0].ignored == ((review.user, why),)


def test_changes_requested_by_another_owner_blocks_an_approval() -> None:
    outcome = decide([STAGING], [Review("bob", "APPROVED", HEAD), Review("carol", "CHANGES_REQUESTED", HEAD)])
    assert not outcome.ok
    assert outcome.summary == "sentiment@1.4.0 → staging: changes requested by carol"
    # carol approves afterwards: her latest review is what counts; a comment does not replace it.
    later = [
        Review("bob", "APPROVED", HEAD),
        Review("carol", "CHANGES_REQUESTED", HEAD),
        Review("carol", "APPROVED", HEAD),
        Review("carol", "COMMENTED", HEAD),
    ]
    assert decide([STAGING], later).ok


def test_prod_needs_two_owners_and_a_passed_canary() -> None:
    one = decide([PROD], [Review("bob", "APPROVED", HEAD)])
    assert not one.ok and one.verdicts[0].missing == 1
    two = [Review("bob", "APPROVED", HEAD), Review("carol", "APPROVED", HEAD)]
    assert decide([PROD], two).ok
    no_canary = Move("sentiment", "1.4.0", "staging", "prod", canary="pending")
    outcome = decide([no_canary], two)
    assert not outcome.ok and outcome.summary == "sentiment@1.4.0 → prod: no passed canary"


def test_every_move_of_the_pull_request_must_hold() -> None:
    archive = Move("sentiment", "1.3.0", "prod", "archived")
    outcome = decide([PROD, archive], [Review("bob", "APPROVED", HEAD)])
    assert [v.ok for v in outcome.verdicts] == [False, True]
    assert not outcome.ok
    assert decide([], []).summary == "no changes to judge"


def test_who_the_transition_names_cannot_approve_it_even_when_someone_else_opened_the_pull_request() -> None:
    """The canary's prod PR is the bot's, and its transition names the person who staged the version: a promotion
    that person asked for, which others approve."""
    staged_by_bob = Move("sentiment", "1.4.0", "staging", "prod", canary="passed", by="bob")
    two = [Review("bob", "APPROVED", HEAD), Review("carol", "APPROVED", HEAD)]
    outcome = decide([staged_by_bob], two)
    assert not outcome.ok
    assert outcome.verdicts[0].ignored == (("bob", "the transition names bob as making it"),)
    assert outcome.verdicts[0].counted == ("carol",)


def test_a_denied_change_fails_whatever_the_approvals() -> None:
    symlink = Need("registry/models/evil", 0, paths=("registry/models/evil",), denied="a symlink: never allowed")
    outcome = decide([symlink], [Review("bob", "APPROVED", HEAD), Review("carol", "APPROVED", HEAD)])
    assert not outcome.ok
    assert outcome.summary == "registry/models/evil: a symlink: never allowed"


def test_only_the_admins_count_for_an_admin_change_and_none_listed_means_nobody_can() -> None:
    policy = Need("registry/regops.yaml", 2, ("dmitri", "@acme/ml"), ADMINS, ("registry/regops.yaml: the policy",))
    reviews = [Review("bob", "APPROVED", HEAD), Review("erin", "APPROVED", HEAD)]
    outcome = decide([policy], reviews)
    assert outcome.verdicts[0].counted == ("bob",)
    assert outcome.verdicts[0].ignored == (("erin", "not one of the admins"),)
    assert decide([policy], [*reviews, Review("dmitri", "APPROVED", HEAD)]).ok
    nobody = Need("registry/regops.yaml", 1, (), ADMINS, ("registry/regops.yaml: the policy",))
    assert decide([nobody], reviews).summary == (
        "registry/regops.yaml: regops.yaml lists no admins, so nobody can approve it"
    )


def test_a_commit_github_ties_to_no_account_fails_closed() -> None:
    unlinked = ("commit 1234567's author Bob <bob@laptop.local> is linked to no GitHub account",)
    outcome = decide([STAGING], [Review("bob", "APPROVED", HEAD)], unlinked=unlinked)
    assert outcome.verdicts[0].ok and not outcome.ok
    assert outcome.summary.startswith("commit 1234567's author Bob <bob@laptop.local> is linked to no GitHub account")
