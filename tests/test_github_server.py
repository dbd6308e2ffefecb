"""The local GitHub (tests/servers/github.py) against the real PyGithub client, through real HTTP only.

Every endpoint regops' GitHub adapter relies on (pull requests, reviews, review requests, labels, issue comments,
commit statuses, check runs, issues, commits, teams, collaborators), the errors the client must type, pagination, and
the test-only switches: the unserved-endpoint detector, faults, and the check of every response against GitHub's
OpenAPI description.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import github
import pytest
from github import Auth, Github, GithubException
from github.PullRequest import PullRequest
from github.Repository import Repository

from tests.servers import openapi
from tests.servers.github import fake_sha
from tests.servers.github_fixtures import (
    GitHubFixture,
    openapi_missing,
)

HEAD = "a" * 40
MARKER = "<!-- regops:promotion-report -->"


def repo(server: GitHubFixture, token: str | None = None) -> Repository:
    return server.client(token).get_repo(server.repo)


def new_pull(server: GitHubFixture, head: str = HEAD, *, files: int = 2, commits: int = 1, user: str = "alice") -> int:
    shas = [fake_sha("commit", head, index) for index in range(commits - 1)] + [head]
    return server.add_pull(
        server.repo,
        title="Promote sentiment 1.2.0 to production",
        head_ref=f"promote/{head[:7]}",
        head_sha=head,
        user=user,
        body="Promotion",
        files=[f"registry/models/sentiment/{index}.yaml" for index in range(files)],
        commits=[{"sha": sha, "author_login": user} for sha in shas],
    )


def pages(server: GitHubFixture, path_end: str) -> list[str]:
    """The query strings of the GET requests whose path ends with ``path_end``."""
    return [record.query for record in server.requests if record.method == "GET" and record.path.endswith(path_end)]


def test_create_a_pull_request_and_read_it_back(github_server: GitHubFixture) -> None:
    github_server.add_branch(github_server.repo, "promote/sentiment", HEAD, files=["registry/models/a.yaml"])
    created = repo(github_server, github_server.alice_token).create_pull(
        base="main", head="promote/sentiment", title="Promote sentiment", body="Moves it to production"
    )
    assert created.number == 1

    pull = repo(github_server).get_pull(created.number)
    assert (pull.number, pull.title, pull.body) == (1, "Promote sentiment", "Moves it to production")
    assert (pull.head.ref, pull.head.sha, pull.base.ref) == ("promote/sentiment", HEAD, "main")
    assert pull.user.login == "alice" and pull.user.type == "User"
    assert (pull.state, pull.merged, pull.mergeable, pull.mergeable_state, pull.draft) == (
        "open",
        False,
        True,
        "clean",
        False,
    )
    assert pull.merge_commit_sha is not None  # GitHub's test merge: not a sign of a merge
    assert (pull.commits, pull.changed_files) == (1, 1)
    assert urlsplit(pull.html_url).netloc == urlsplit(github_server.url).netloc
    assert pull.html_url == f"{github_server.url}/acme/models/pull/1"

    listed = repo(github_server).get_pulls(state="open", head="acme:promote/sentiment", base="main")
    assert [p.number for p in listed] == [1]
    assert list(repo(github_server).get_pulls(head="acme:other")) == []
    assert len(list(repo(github_server).get_pulls(head="other"))) == 1  # without "owner:", GitHub ignores head
    assert list(repo(github_server).get_pulls(state="closed")) == []


def test_pull_request_creation_refusals(github_server: GitHubFixture) -> None:
    github_server.add_branch(github_server.repo, "promote/x", HEAD)
    models = repo(github_server, github_server.alice_token)
    models.create_pull(base="main", head="promote/x", title="first")

    with pytest.raises(GithubException) as again:
        models.create_pull(base="main", head="acme:promote/x", title="twice")
    assert again.value.status == 422
    assert again.value.data["errors"][0]["message"] == "A pull request already exists for acme:promote/x."
    with pytest.raises(GithubException) as same:
        models.create_pull(base="main", head="main", title="nothing")
    assert same.value.data["errors"][0]["message"] == "No commits between main and main"
    with pytest.raises(GithubException) as missing:
        models.create_pull(base="main", head="no-such-branch", title="nothing")
    assert missing.value.data["errors"] == [{"resource": "PullRequest", "field": "head", "code": "invalid"}]
    with pytest.raises(GithubException) as forbidden:
        repo(github_server, github_server.mallory_token).create_pull(base="main", head="promote/x", title="mine")
    assert forbidden.value.status == 403


def test_files_and_commits_are_paginated(github_server: GitHubFixture) -> None:
    number = new_pull(github_server, files=7, commits=5)
    pull = repo(github_server).get_pull(number)

    files = [f.filename for f in pull.get_files()]
    assert files == [f"registry/models/sentiment/{index}.yaml" for index in range(7)]
    assert pages(github_server, f"/pulls/{number}/files") == ["", "page=2", "page=3"]

    commits = list(pull.get_commits())
    assert [c.sha for c in commits][-1] == HEAD and len(commits) == 5
    assert {c.author.login for c in commits} == {"alice"}
    assert commits[-1].commit.author.name == "Alice"
    assert pull.get_commits().totalCount == 5


def test_reviews_keep_their_commit_and_order(github_server: GitHubFixture) -> None:
    number = new_pull(github_server)
    github_server.add_review(github_server.repo, number, "bob", "APPROVED")
    github_server.set_head(github_server.repo, number, "b" * 40)
    github_server.add_review(github_server.repo, number, "carol", "CHANGES_REQUESTED", body="Eval is missing")
    as_carol = repo(github_server, github_server.carol_token).get_pull(number)
    as_carol.create_review(body="Looks good now", event="APPROVE")
    github_server.add_review(github_server.repo, number, "bob", "COMMENTED", body="nit")
    github_server.add_review(github_server.repo, number, "mallory", "DISMISSED")

    reviews = list(repo(github_server).get_pull(number).get_reviews())
    assert [(r.user.login, r.state, r.commit_id) for r in reviews] == [
        ("bob", "APPROVED", HEAD),
        ("carol", "CHANGES_REQUESTED", "b" * 40),
        ("carol", "APPROVED", "b" * 40),
        ("bob", "COMMENTED", "b" * 40),
        ("mallory", "DISMISSED", "b" * 40),
    ]
    assert all(r.submitted_at is not None for r in reviews)
    latest = {r.user.login: r for r in reviews if r.state in ("APPROVED", "CHANGES_REQUESTED", "DISMISSED")}
    assert {login: (r.state, r.commit_id == "b" * 40) for login, r in latest.items()} == {
        "bob": ("APPROVED", False),
        "carol": ("APPROVED", True),
        "mallory": ("DISMISSED", True),
    }

    with pytest.raises(GithubException) as own:
        repo(github_server, github_server.alice_token).get_pull(number).create_review(event="APPROVE")
    assert own.value.status == 422
    assert own.value.data["errors"] == ["Can not approve your own pull request"]


def test_review_requests_and_labels(github_server: GitHubFixture) -> None:
    number = new_pull(github_server)
    pull = repo(github_server).get_pull(number)
    pull.create_review_request(reviewers=["bob", "carol"], team_reviewers=["ml"])
    users, teams = pull.get_review_requests()
    assert [u.login for u in users] == ["bob", "carol"]
    assert [(t.slug, t.organization_id) for t in teams] == [("ml", github_server.client().get_organization("acme").id)]
    github_server.add_review(github_server.repo, number, "bob")
    assert github_server.reviewers(github_server.repo, number) == (["carol"], ["ml"])

    with pytest.raises(GithubException) as author:
        pull.create_review_request(reviewers=["alice"])
    assert author.value.data["errors"][0]["message"] == "Review cannot be requested from pull request author."
    github_server.add_user("stranger")
    with pytest.raises(GithubException) as stranger:
        pull.create_review_request(reviewers=["stranger"])
    assert "may only be requested from collaborators" in stranger.value.data["errors"][0]["message"]

    pull.add_to_labels("promotion", "bug")
    pull.add_to_labels("promotion")
    assert [label.name for label in pull.get_labels()] == ["promotion", "bug"]
    pull.remove_from_labels("bug")
    assert github_server.labels(github_server.repo, number) == ["promotion"]
    models = repo(github_server)
    assert models.get_label("promotion").color == "ededed"
    models.create_label("stage:production", "0e8a16", "Promotions to production")
    assert models.get_labels().totalCount == 11  # GitHub's nine defaults, "promotion" and this one
    with pytest.raises(GithubException) as duplicate:
        models.create_label("Stage:Production", "000000")
    assert duplicate.value.data["errors"] == [{"resource": "Label", "code": "already_exists", "field": "name"}]
    with pytest.raises(GithubException) as read_only:
        repo(github_server, github_server.mallory_token).get_pull(number).add_to_labels("mine")
    assert (read_only.value.status, read_only.value.data["message"]) == (403, "Must have triage access to repository")


def test_issue_comment_found_by_marker_and_edited(github_server: GitHubFixture) -> None:
    number = new_pull(github_server)
    as_alice = repo(github_server, github_server.alice_token).get_pull(number)
    as_alice.create_issue_comment("Please check the eval numbers")
    repo(github_server).get_pull(number).create_issue_comment(f"{MARKER}\nValidation: pending")
    as_alice.create_issue_comment("Thanks")

    comments = list(repo(github_server).get_pull(number).get_issue_comments())
    assert len(comments) == 3
    ours = [c for c in comments if MARKER in c.body]
    assert len(ours) == 1 and ours[0].user.login == "regops-app[bot]" and ours[0].user.type == "Bot"
    ours[0].edit(f"{MARKER}\nValidation: passed")
    assert repo(github_server).get_pull(number).get_issue_comment(ours[0].id).body.endswith("passed")
    assert github_server.comments(github_server.repo, number)[1] == ("regops-app[bot]", f"{MARKER}\nValidation: passed")
    assert ours[0].html_url == f"{github_server.url}/acme/models/pull/{number}#issuecomment-{ours[0].id}"

    with pytest.raises(GithubException) as others:
        repo(github_server, github_server.mallory_token).get_issue(number).get_comment(ours[0].id).edit("mine")
    assert others.value.status == 403
    with pytest.raises(GithubException) as too_long:
        as_alice.create_issue_comment("x" * 65537)
    assert too_long.value.status == 422


def test_commit_statuses_and_combined_status(github_server: GitHubFixture) -> None:
    new_pull(github_server)
    commit = repo(github_server).get_commit(HEAD)
    commit.create_status("pending", description="Validating", context="regops/validate")
    commit.create_status("success", target_url="https://ci.example/1", description="Valid", context="regops/validate")
    combined = commit.get_combined_status()
    assert (combined.state, combined.total_count, combined.sha) == ("success", 1, HEAD)
    assert [(s.context, s.state) for s in combined.statuses] == [("regops/validate", "success")]

    commit.create_status("failure", description="Eval below threshold", context="regops/eval")
    assert commit.get_combined_status().state == "failure"
    assert [(s.context, s.state) for s in commit.get_statuses()] == [
        ("regops/eval", "failure"),
        ("regops/validate", "success"),
        ("regops/validate", "pending"),
    ]
    assert [s.creator.login for s in commit.get_statuses()] == ["regops-app[bot]"] * 3
    assert repo(github_server).get_commit(HEAD[:7]).sha == HEAD

    with pytest.raises(GithubException) as read_only:
        repo(github_server, github_server.mallory_token).get_commit(HEAD).create_status("success")
    assert (read_only.value.status, read_only.value.data["message"]) == (403, "Must have push access to repository")
    with pytest.raises(GithubException) as fine_grained:
        repo(github_server, github_server.alice_read_token).get_commit(HEAD).create_status("success")
    assert fine_grained.value.data["message"] == "Resource not accessible by personal access token"
    with pytest.raises(GithubException) as long_description:
        commit.create_status("success", description="x" * 141)
    assert long_description.value.status == 422
    with pytest.raises(GithubException) as unknown:
        repo(github_server).get_commit("c" * 40)
    assert (unknown.value.status, unknown.value.data["message"]) == (422, f"No commit found for SHA: {'c' * 40}")


def test_a_pull_request_from_a_fork_and_the_read_only_token_of_its_runs(github_server: GitHubFixture) -> None:
    github_server.add_fork(github_server.repo, "mallory/registry")
    number = github_server.add_pull(
        github_server.repo,
        title="Lower the bar",
        head_ref="main",
        head_sha=HEAD,
        user="mallory",
        head_repo="mallory/registry",
    )
    pull = repo(github_server).get_pull(number)
    assert (pull.head.repo.full_name, pull.head.repo.fork, pull.head.label, pull.head.sha) == (
        "mallory/registry",
        True,
        "mallory:main",
        HEAD,
    )
    assert (pull.base.repo.full_name, pull.base.repo.fork) == (github_server.repo, False)
    fork = github_server.client(github_server.mallory_token).get_repo("mallory/registry")
    assert (fork.fork, fork.parent.full_name, fork.source.full_name) == (True, github_server.repo, github_server.repo)
    listed = repo(github_server).get_pulls(state="open", head="mallory:main")
    assert [(p.number, p.head.repo.full_name) for p in listed] == [(number, "mallory/registry")]
    assert list(repo(github_server).get_pulls(state="open", head="acme:main")) == []

    # GitHub's job token for a run on a fork's pull request: read-only on the base repository.
    github_server.add_token("ghs_fork_run", {"login": "github-actions[bot]", "repos": {github_server.repo: "read"}})
    base = repo(github_server, "ghs_fork_run")
    assert base.get_pull(number).head.sha == HEAD
    with pytest.raises(GithubException) as refused:
        base.get_commit(HEAD).create_status("success", context="regops/approvals")
    assert (refused.value.status, refused.value.data["message"]) == (403, "Resource not accessible by integration")
    repo(github_server).get_commit(HEAD).create_status("failure", context="regops/approvals")
    assert [s["state"] for s in github_server.statuses(github_server.repo, HEAD)] == ["failure"]


def test_check_run_created_then_completed_with_output(github_server: GitHubFixture) -> None:
    number = new_pull(github_server)
    models = repo(github_server)
    run = models.create_check_run("regops / validate", HEAD, status="in_progress", external_id="promotion-1")
    assert (run.status, run.app.slug) == ("in_progress", "regops-app")
    assert run.conclusion is None
    assert [p.number for p in run.pull_requests] == [number]

    run.edit(
        conclusion="success",
        output={"title": "2 checks passed", "summary": "All good", "text": "## Details\n- schema: ok"},
    )
    assert (run.status, run.conclusion, run.output.summary) == ("completed", "success", "All good")
    models.create_check_run("regops / eval", HEAD, conclusion="failure", output={"title": "t", "summary": "low"})

    runs = list(models.get_commit(HEAD).get_check_runs())
    assert [(r.name, r.conclusion) for r in runs] == [("regops / eval", "failure"), ("regops / validate", "success")]
    assert runs[1].output.text == "## Details\n- schema: ok"
    assert models.get_check_run(run.id).completed_at is not None
    assert github_server.check_runs(github_server.repo, HEAD)[0]["output"]["title"] == "2 checks passed"
    assert models.get_commit(HEAD).get_combined_status().total_count == 0  # check runs are not statuses

    with pytest.raises(GithubException) as user:
        repo(github_server, github_server.alice_token).create_check_run("mine", HEAD)
    assert (user.value.status, user.value.data["message"]) == (403, "You must authenticate via a GitHub App.")
    with pytest.raises(GithubException) as too_long:
        run.edit(output={"title": "t", "summary": "x" * 65536})
    assert too_long.value.status == 422


def test_pull_requests_of_a_commit_before_and_after_merge(github_server: GitHubFixture) -> None:
    number = new_pull(github_server, commits=2)
    models = repo(github_server)
    assert [p.number for p in models.get_commit(HEAD).get_pulls()] == [number]

    merge_sha = github_server.merge(github_server.repo, number, "d" * 40, merged_by="bob")
    found = list(models.get_commit(merge_sha).get_pulls())
    assert [(p.number, p.merged, p.merge_commit_sha) for p in found] == [(number, True, "d" * 40)]
    assert models.get_commit(merge_sha).parents[1].sha == HEAD
    pull: PullRequest = models.get_pull(number)
    assert (pull.state, pull.merged, pull.merged_by.login) == ("closed", True, "bob")
    assert pull.mergeable is None
    assert [p.number for p in models.get_commit(HEAD).get_pulls()] == [number]
    assert models.get_commit("main").sha == "d" * 40


def test_team_membership(github_server: GitHubFixture) -> None:
    team = github_server.client().get_organization("acme").get_team_by_slug("ml")
    assert (team.slug, team.members_count) == ("ml", 2)
    membership = team.get_team_membership("alice")
    assert (membership.state, membership.role) == ("active", "member")
    with pytest.raises(github.UnknownObjectException):
        team.get_team_membership("carol")
    assert sorted(member.login for member in team.get_members()) == ["alice", "bob"]

    lazy = Github(base_url=github_server.api_url, auth=Auth.Token(github_server.app_token), lazy=True, retry=None)
    assert lazy.get_organization("acme").get_team_by_slug("ml").get_team_membership("bob").state == "active"
    assert pages(github_server, "/orgs/acme/teams/ml/memberships/bob") == [""]

    with pytest.raises(github.UnknownObjectException):
        github_server.client(github_server.mallory_token).get_organization("acme").get_team_by_slug("ml")


def test_issues_open_update_and_close(github_server: GitHubFixture) -> None:
    models = repo(github_server)
    issue = models.create_issue("Retrain sentiment", body="Drift detected", labels=["drift"])
    assert (issue.number, issue.state, [label.name for label in issue.labels]) == (1, "open", ["drift"])
    by_mallory = repo(github_server, github_server.mallory_token).create_issue("Mine", labels=["drift"])
    assert by_mallory.labels == []  # labels are silently dropped without triage access
    number = new_pull(github_server)

    assert [i.number for i in models.get_issues()] == [number, 2, 1]
    assert [i.number for i in models.get_issues(labels=["drift"])] == [1]
    assert [i.number for i in models.get_issues(creator=github_server.client().get_user("mallory"))] == [2]
    assert models.get_issue(number).pull_request is not None

    issue.edit(title="Retrain sentiment now", body="Drift detected twice")
    issue.edit(state="closed", state_reason="not_planned")
    again = models.get_issue(1)
    assert (again.title, again.state, again.state_reason) == ("Retrain sentiment now", "closed", "not_planned")
    assert again.closed_by is not None and again.closed_by.login == "regops-app[bot]"
    assert [i.number for i in models.get_issues(state="closed")] == [1]
    again.edit(state="open")
    assert models.get_issue(1).state == "open"
    with pytest.raises(GithubException) as not_author:
        repo(github_server, github_server.mallory_token).get_issue(1).edit(state="closed")
    assert not_author.value.status == 403


def test_users_collaborators_and_credentials(github_server: GitHubFixture) -> None:
    assert github_server.client(github_server.alice_token).get_user().login == "alice"
    bot = github_server.client().get_user("regops-app[bot]")
    assert (bot.login, bot.type) == ("regops-app[bot]", "Bot")
    models = repo(github_server)
    assert [models.get_collaborator_permission(login) for login in ("alice", "mallory")] == ["write", "read"]
    assert models.get_collaborator_role_name("alice") == "write"
    assert models.has_in_collaborators("carol")
    github_server.add_user("stranger")
    assert not models.has_in_collaborators("stranger")

    with pytest.raises(github.BadCredentialsException) as bad:
        github_server.client("ghp_not_a_token").get_repo(github_server.repo)
    assert (bad.value.status, bad.value.data["message"]) == (401, "Bad credentials")
    with pytest.raises(GithubException) as installation:
        github_server.client().get_user().login  # noqa: B018
    assert installation.value.data["message"] == "Resource not accessible by integration"
    with pytest.raises(GithubException) as read_only:
        repo(github_server, github_server.mallory_token).get_collaborator_permission("alice")
    assert read_only.value.data["message"] == "Must have push access to view repository collaborators."


def test_not_found(github_server: GitHubFixture) -> None:
    client = github_server.client()
    with pytest.raises(github.UnknownObjectException) as repository:
        client.get_repo("acme/nope")
    assert repository.value.data["message"] == "Not Found" and "documentation_url" in repository.value.data
    with pytest.raises(github.UnknownObjectException):
        repo(github_server).get_pull(404)
    github_server.add_token("ghp_eve", "eve")
    with pytest.raises(github.UnknownObjectException):
        repo(github_server, "ghp_eve")  # a private repository one cannot see does not exist
    with pytest.raises(github.UnknownObjectException):
        client.get_user("nobody")


def test_unserved_endpoints_are_detected(github_server: GitHubFixture) -> None:
    with pytest.raises(github.UnknownObjectException):
        repo(github_server).get_branches()[0]
    assert github_server.unserved == ["GET /api/v3/repos/acme/models/branches"]
    github_server.unserved.clear()


def test_pagination_links_carry_the_servers_own_address(github_server: GitHubFixture) -> None:
    client = github_server.client()
    headers, data = client.requester.requestJsonAndCheck("GET", "/repos/acme/models/labels", parameters={"page": 2})
    assert len(data) == 3
    links = {rel: url for url, rel in (part.split("; rel=") for part in headers["link"].split(", "))}
    base = f"<{github_server.api_url}/repos/acme/models/labels?page="
    assert links == {
        '"prev"': base + "1>",
        '"next"': base + "3>",
        '"last"': base + "3>",
        '"first"': base + "1>",
    }
    github_server.page_size = None
    assert "link" not in client.requester.requestJsonAndCheck("GET", "/repos/acme/models/labels")[0]
    assert repo(github_server).get_labels().totalCount == 9


def test_openapi_check_records_a_corrupted_response(github_server: GitHubFixture) -> None:
    if github_server.openapi is None:
        pytest.skip(openapi_missing())
    number = new_pull(github_server)
    checked = github_server.validated
    repo(github_server).get_pull(number)
    assert github_server.validated == checked + 2 and github_server.errors == []

    github_server.corrupt("GET", rf"/pulls/{number}$", "head.sha", 42)
    github_server.corrupt("GET", r"/labels$", "0.color", None)
    repo(github_server).get_pull(number)
    list(repo(github_server).get_labels())
    assert len(github_server.errors) == 2
    assert "$.head.sha: 42 is not of type 'string'" in github_server.errors[0]
    assert "$[0].color: None is not of type 'string'" in github_server.errors[1]
    github_server.errors.clear()


def test_every_concrete_path_finds_the_most_literal_template_that_matches_it() -> None:
    """For a path of every template of the description: of all the templates that match it, the one with fewest
    parameters (then the longest); a path of no template matches none."""
    reason = openapi_missing()
    if reason:
        pytest.skip(reason)
    spec = openapi.load()
    param = re.compile(r"\{[^}]+\}")
    shapes = [(t, re.compile("[^/]+".join(map(re.escape, param.split(t))))) for t in map(str, spec.document["paths"])]
    for template, _ in shapes[::10]:  # a tenth of them: all 800 cost 2 s (checked once, no difference)
        path = param.sub("x1", template)
        best = min((t for t, shape in shapes if shape.fullmatch(path)), key=lambda t: (t.count("{"), -len(t)))
        assert spec.template(path) == best, path
    assert spec.template("/repos/a/b/c/d/e/f/g/h/i") is None


def test_openapi_validation_directly() -> None:
    reason = openapi_missing()
    if reason:
        pytest.skip(reason)
    spec = openapi.load()
    assert spec.template("/repos/acme/models/pulls/7") == "/repos/{owner}/{repo}/pulls/{pull_number}"
    assert spec.template("/repos/acme/models/pulls/comments") == "/repos/{owner}/{repo}/pulls/comments"
    error = {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}
    assert spec.validate_response("GET", "/repos/acme/models/pulls/7", 404, error) == []
    assert spec.validate_response("GET", "/repos/{owner}/{repo}/pulls/{pull_number}", 401, error) == []
    label = {"id": 1, "node_id": "x", "url": "http://h/l", "name": "bug", "color": "fff", "default": True}
    assert spec.validate_response("POST", "/repos/a/b/labels", 201, {**label, "description": None}) == []
    assert spec.validate_response("POST", "/repos/a/b/labels", 201, label) == [
        "POST /repos/a/b/labels -> 201 (/repos/{owner}/{repo}/labels) $: 'description' is a required property"
    ]
    assert spec.validate_response("POST", "/repos/a/b/labels", 200, label) == [
        "POST /repos/a/b/labels -> 200: status 200 is not documented for POST /repos/{owner}/{repo}/labels"
    ]
    assert spec.validate_response("GET", "/no/such/thing", 200, {}) == [
        "GET /no/such/thing -> 200: no such operation in GitHub's REST API description"
    ]


def test_injected_faults_reach_the_client(github_server: GitHubFixture) -> None:
    number = new_pull(github_server)
    github_server.faults.add("GET", rf"/pulls/{number}$", "status", code=502)
    with pytest.raises(GithubException) as failed:
        repo(github_server).get_pull(number)
    assert failed.value.status == 502
    assert repo(github_server).get_pull(number).number == number


def test_repository_settings_read_through_pygithub(github_server: GitHubFixture) -> None:
    """Environments, their secrets and variables, and the organization's app installations, as PyGithub's own
    classes read them; branch protection for admins only, installations for the organization's owners only."""
    server = github_server
    server.add_environment(server.repo, "registry-bot", branches=["main"], secrets=["HF_TOKEN", "A", "B", "C"])
    server.install_app("acme", "regops-app", {"contents": "write"})
    server.add_org_owner("acme", "alice")
    server.add_collaborator(server.repo, "alice", "admin")
    server.protect_branch(server.repo, "main", force_pushes=True)
    alice = server.client(server.alice_token)

    environment = alice.get_repo(server.repo).get_environment("registry-bot")
    assert environment.deployment_branch_policy.custom_branch_policies is True
    assert sorted(s.name for s in environment.get_secrets()) == ["A", "B", "C", "HF_TOKEN"]  # over two pages
    (installation,) = alice.get_organization("acme").get_installations()
    assert (installation.app_slug, installation.permissions["contents"]) == ("regops-app", "write")
    _, protection = alice.requester.requestJsonAndCheck("GET", f"/repos/{server.repo}/branches/main/protection")
    assert protection["allow_force_pushes"] == {"enabled": True}
    assert protection["required_status_checks"]["contexts"] == ["regops/approvals"]

    bob = server.client(server.bob_token)
    with pytest.raises(GithubException) as refused:
        bob.requester.requestJsonAndCheck("GET", f"/repos/{server.repo}/branches/main/protection")
    assert refused.value.status == 403
    with pytest.raises(GithubException) as refused:
        list(bob.get_organization("acme").get_installations())
    assert refused.value.status == 403
    with pytest.raises(GithubException) as missing:
        alice.requester.requestJsonAndCheck("GET", f"/repos/{server.repo}/branches/dev/protection")
    assert (missing.value.status, missing.value.data["message"]) == (404, "Branch not protected")
