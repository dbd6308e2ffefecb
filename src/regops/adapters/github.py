"""GitHub, through PyGithub: pull requests, reviews, commit statuses, comments, issues, teams.

The repository is ``GITHUB_REPOSITORY`` (``owner/name``), the API ``GITHUB_API_URL``
(GitHub Enterprise, or a local server in tests) and the token ``GITHUB_TOKEN`` —
what GitHub Actions sets. Errors become :class:`GitHubError` saying which
permission the token lacks.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Final, TypeVar
from urllib.parse import quote

from regops.approvals import CONTEXT, Review
from regops.doctor import BranchRules, Environment, Installation
from regops.errors import RegopsError

if TYPE_CHECKING:
    from github.Repository import Repository

__all__ = ["GitHub", "GitHubError", "GitHubUnreachableError", "Pull"]

T = TypeVar("T")
DEFAULT_API: Final = "https://api.github.com"
VIEWER_QUERY: Final = "query { viewer { login } }"


class GitHubError(RegopsError):
    """GitHub refused or failed a request."""


class GitHubUnreachableError(GitHubError):
    """No answer from GitHub at all: the network, DNS, a proxy or GITHUB_API_URL."""


@dataclass(frozen=True)
class Pull:
    number: int
    title: str
    author: str
    head_sha: str
    head_ref: str
    base_ref: str
    base_sha: str
    merged: bool
    url: str


class GitHub:
    """One repository on GitHub."""

    def __init__(self, repo: str | None = None, *, token: str | None = None, api_url: str | None = None) -> None:
        self.name = repo or os.environ.get("GITHUB_REPOSITORY") or ""
        if "/" not in self.name:
            raise GitHubError("which repository? set GITHUB_REPOSITORY=owner/name (GitHub Actions sets it)")
        self.token = token or os.environ.get("GITHUB_TOKEN") or os.environ.get("GH_TOKEN")
        self.api_url = (api_url or os.environ.get("GITHUB_API_URL") or DEFAULT_API).rstrip("/")

    @cached_property
    def client(self) -> Any:
        # Imported here: PyGithub (with requests) costs ~0.2 s, paid only by the verbs that call GitHub.
        from github import Auth, Github

        auth = Auth.Token(self.token) if self.token else None
        # lazy: objects are fetched when read, not when named (fewer requests); no client-side pacing: a check
        # makes a handful of requests, far from GitHub's secondary rate limits.
        return Github(
            base_url=self.api_url,
            auth=auth,
            retry=3,
            lazy=True,
            seconds_between_requests=None,
            seconds_between_writes=None,
        )

    @cached_property
    def repo(self) -> Repository:
        return self._call("read", lambda: self.client.get_repo(self.name))  # type: ignore[no-any-return]

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        # Imported here: PyGithub (with requests) costs ~0.2 s, paid only by the verbs that call GitHub.
        from github import BadCredentialsException, GithubException, UnknownObjectException
        from requests import RequestException

        try:
            yield
        except RequestException as e:
            raise GitHubUnreachableError(
                f"cannot {action} {self.name}: GitHub at {self.api_url} did not answer ({_reason(e)}); check the "
                "network (or GITHUB_API_URL) and run again"
            ) from None
        except BadCredentialsException:
            raise GitHubError(f"cannot {action} {self.name}: GitHub rejected GITHUB_TOKEN (401)") from None
        except UnknownObjectException as e:
            raise GitHubError(
                f"cannot {action} {self.name}: not found (404) — check GITHUB_REPOSITORY and that the token can see "
                f"it ({_message(e)})"
            ) from None
        except GithubException as e:
            if e.status == 403:
                raise GitHubError(
                    f"cannot {action} {self.name}: the token lacks permission (403: {_message(e)}); the workflow job "
                    "needs `pull-requests: write` for comments and PRs, `statuses: write` for the check, "
                    "`issues: write` for the drift issue"
                ) from None
            raise GitHubError(f"cannot {action} {self.name}: GitHub answered {e.status}: {_message(e)}") from None

    def _call(self, action: str, fn: Callable[[], T]) -> T:
        with self._errors(action):
            return fn()

    # --- pull requests -----------------------------------------------------------------------------

    def pull(self, number: int) -> Pull:
        with self._errors(f"read pull request #{number} of"):
            pr = self.repo.get_pull(number)
            return Pull(
                pr.number,
                pr.title,
                pr.user.login,
                pr.head.sha,
                pr.head.ref,
                pr.base.ref,
                pr.base.sha,
                pr.merged,
                pr.html_url,
            )

    def open_pulls(self, *, head_sha: str) -> list[Pull]:
        """The open pull requests whose head commit is ``head_sha``, from a branch of this repository or of a fork.

        Found by listing every open pull request, since a ``workflow_run`` event
        names none for a fork's pull request.
        """
        with self._errors(f"list the open pull requests of {head_sha[:7]} in"):
            numbers = [p.number for p in self.repo.get_pulls(state="open") if p.head.sha == head_sha]
        # Each read whole (a listing leaves fields out), and dropped if its head moved on meanwhile.
        return [pull for pull in map(self.pull, numbers) if pull.head_sha == head_sha]

    def reviews(self, number: int) -> list[Review]:
        """Every review, oldest first."""
        with self._errors(f"read the reviews of #{number} in"):
            return [
                Review(r.user.login, r.state, r.commit_id, bot=r.user.type == "Bot")
                for r in self.repo.get_pull(number).get_reviews()
                if r.user is not None
            ]

    def committers(self, number: int) -> tuple[set[str], list[str]]:
        """Logins of everyone who authored or committed a commit of the pull request, and the commits whose author
        or committer GitHub ties to no account (their e-mail is on none): who they are cannot be known."""
        people: set[str] = set()
        unlinked: list[str] = []
        with self._errors(f"read the commits of #{number} in"):
            for commit in self.repo.get_pull(number).get_commits():
                for role, user, person in (
                    ("author", commit.author, commit.commit.author),
                    ("committer", commit.committer, commit.commit.committer),
                ):
                    if user is not None and user.login:
                        people.add(user.login)
                    else:
                        who = f"{person.name} <{person.email}>" if person is not None else "unknown"
                        unlinked.append(f"commit {commit.sha[:7]}'s {role} {who} is linked to no GitHub account")
        return people, unlinked

    def noreply_email(self, login: str) -> str:
        """The e-mail GitHub links to ``login``'s account whatever its settings: ``ID+login@users.noreply.github.com``.

        A commit regops makes as a login carries it, so GitHub names its author and the approvals check, which
        fails on commits it cannot tie to an account, can judge it."""
        with self._errors(f"look up {login} for"):
            return f"{self.client.get_user(login).id}+{login}@users.noreply.github.com"

    def default_branch(self) -> str:
        with self._errors("read"):
            return str(self.repo.default_branch)

    def team_members(self, team: str) -> set[str]:
        """Members of ``@org/team`` (or ``org/team``)."""
        org, _, slug = team.lstrip("@").partition("/")
        with self._errors(f"read team {team} for"):
            return {m.login for m in self.client.get_organization(org).get_team_by_slug(slug).get_members()}

    def set_status(self, sha: str, *, ok: bool, description: str, target_url: str | None = None) -> None:
        state = "success" if ok else "failure"
        with self._errors("set the commit status on"):
            kwargs: dict[str, str] = {"target_url": target_url} if target_url else {}
            self.repo.get_commit(sha).create_status(state, description=description[:140], context=CONTEXT, **kwargs)

    @cached_property
    def login(self) -> str:
        """The login this token writes as, as GitHub says (GraphQL ``viewer``): a user's, an app's ``<slug>[bot]``,
        or ``github-actions[bot]`` for a workflow's token — the two for which ``GET /user`` is forbidden."""
        with self._errors("find out which login GITHUB_TOKEN writes as in"):
            _, data = self.client.requester.graphql_query(VIEWER_QUERY, {})
        login = ((data.get("data") or {}).get("viewer") or {}).get("login")
        if not isinstance(login, str) or not login:
            raise GitHubError(f"cannot tell which login GITHUB_TOKEN writes as: GitHub answered {data!r}")
        return login

    def upsert_comment(self, number: int, marker: str, body: str) -> str:
        """Create or update the one comment carrying ``marker`` that this token's login wrote; "created",
        "updated" or "unchanged". Comments anyone else wrote are never edited, whatever they carry."""
        me = self.login  # first: a token whose login is unknown edits nothing
        with self._errors(f"comment on #{number} in"):
            issue = self.repo.get_issue(number)
            comment = next((c for c in issue.get_comments() if _ours(c, me, marker)), None)
            if comment is None:
                issue.create_comment(body)
                return "created"
            if comment.body == body:
                return "unchanged"
            comment.edit(body)
            return "updated"

    def upsert_issue(self, marker: str, *, title: str, body: str, labels: list[str]) -> tuple[int, str]:
        """Open the one issue carrying ``marker`` that this token's login opened, or update it; (its number,
        "created"/"updated"/"unchanged"). Issues anyone else opened are never edited, whatever they carry."""
        me = self.login
        with self._errors("open an issue in"):
            issue = _find_issue(self.repo, marker, me)
            if issue is None:
                created = self.repo.create_issue(title=title, body=body, labels=labels)
                return created.number, "created"
            if issue.body == body and issue.title == title:
                return issue.number, "unchanged"
            issue.edit(title=title, body=body)
            return issue.number, "updated"

    def close_issue(self, marker: str, *, comment: str) -> int | None:
        """Close the open issue carrying ``marker`` that this token's login opened, with ``comment``; its number, or
        None when there is none."""
        me = self.login
        with self._errors("close an issue in"):
            issue = _find_issue(self.repo, marker, me)
            if issue is None:
                return None
            issue.create_comment(comment)
            issue.edit(state="closed")
            return int(issue.number)

    def open_pull(
        self, *, head: str, base: str, title: str, body: str, labels: list[str], reviewers: list[str], teams: list[str]
    ) -> Pull:
        """Open a pull request from branch ``head``, label it and ask for reviews."""
        with self._errors("open a pull request in"):
            pr = self.repo.create_pull(base=base, head=head, title=title, body=body)
            if labels:
                pr.add_to_labels(*labels)
            if reviewers or teams:
                pr.create_review_request(reviewers=reviewers, team_reviewers=teams)
            return self.pull(pr.number)

    def merged_pulls(self, sha: str) -> list[Pull]:
        """The merged pull requests that brought commit ``sha`` (a merge or squash commit on the default branch)."""
        with self._errors(f"find the pull request of {sha[:7]} in"):
            found = self.repo.get_commit(sha).get_pulls()
            return [self.pull(p.number) for p in found if p.merged]

    def pulls_from(self, branch: str) -> list[tuple[Pull, str]]:
        """Every pull request ever opened from ``branch`` of this repository, with its state (open, closed, merged)."""
        with self._errors(f"list the pull requests from {branch} in"):
            found = self.repo.get_pulls(state="all", head=f"{self.repo.owner.login}:{branch}")
            return [(self.pull(p.number), "merged" if p.merged_at else p.state) for p in found]

    # --- settings the gate relies on (``regops doctor``) ----------------------------------------------------------

    def _json(self, path: str) -> Any:
        _, data = self.client.requester.requestJsonAndCheck("GET", f"/repos/{self.name}{path}")
        return data

    def _listed(self, path: str, key: str | None = None) -> list[dict[str, Any]]:
        """Every item of a paginated listing (under ``key`` of each page, or each page itself), page after page
        until an empty one."""
        items: list[dict[str, Any]] = []
        for page in range(1, 1000):
            _, data = self.client.requester.requestJsonAndCheck("GET", path, parameters={"per_page": 100, "page": page})
            found = data if key is None else data[key]
            if not found:
                break
            items += found
        return items

    def branch_rules(self, branch: str) -> BranchRules:
        """What branch protection and the rulesets enforce on ``branch``, together (needs an admin's token)."""
        # Imported here: PyGithub (with requests) costs ~0.2 s, paid only by the verbs that call GitHub.
        from github import GithubException

        ref = quote(branch, safe="")
        with self._errors(f"read the protection of branch {branch} of"):
            try:
                classic: dict[str, Any] | None = self._json(f"/branches/{ref}/protection")
            except GithubException as e:
                if e.status != 404:  # GitHub's 404 "Branch not protected" (PyGithub keeps 404 "Not Found" apart)
                    raise
                classic = None
            rules = self._listed(f"/repos/{self.name}/rules/branches/{ref}")
            ids = sorted({r["ruleset_id"] for r in rules if r.get("ruleset_source_type") == "Repository"})
            bypassed = [bool(self._json(f"/rulesets/{i}").get("bypass_actors")) for i in ids]
        # A ruleset of the organization's is not readable here: who may bypass it is unknown, so it holds nobody.
        unread = any(r.get("ruleset_source_type") != "Repository" for r in rules)
        return _combined_rules(classic, rules, rulesets_hold_all=bool(bypassed) and not any(bypassed) and not unread)

    def environment(self, name: str) -> Environment | None:
        """The deployment environment ``name`` with the branches it admits and its secrets' and variables' names;
        None when the repository has none of that name."""
        # Imported here: PyGithub (with requests) costs ~0.2 s, paid only by the verbs that call GitHub.
        from github import UnknownObjectException

        path = f"/repos/{self.name}/environments/{quote(name, safe='')}"
        with self._errors(f"read the environment {name} of"):
            try:
                data = self._json(path.removeprefix(f"/repos/{self.name}"))
            except UnknownObjectException:
                return None
            policy = data.get("deployment_branch_policy") or {}
            branches = None
            if policy.get("custom_branch_policies"):
                listed = self._listed(f"{path}/deployment-branch-policies", "branch_policies")
                branches = tuple(p["name"] for p in listed if p.get("type", "branch") == "branch")
            secrets = frozenset(s["name"] for s in self._listed(f"{path}/secrets", "secrets"))
            variables = frozenset(v["name"] for v in self._listed(f"{path}/variables", "variables"))
        return Environment(name, branches, bool(policy.get("protected_branches")), secrets, variables)

    def installations(self) -> list[Installation]:
        """The GitHub Apps installed on the repository's organization (needs an organization owner's token)."""
        org = self.name.partition("/")[0]
        with self._errors(f"list the GitHub Apps installed on {org} for"):
            listed = self._listed(f"/orgs/{quote(org, safe='')}/installations", "installations")
        return [Installation(f"{item['app_slug']}[bot]", dict(item.get("permissions") or {})) for item in listed]


def _combined_rules(
    classic: dict[str, Any] | None, rules: list[dict[str, Any]], *, rulesets_hold_all: bool
) -> BranchRules:
    """One view of classic branch protection and the ruleset rules: a setting holds when either enforces it, and
    nobody bypasses when classic protection includes administrators or every ruleset has an empty bypass list."""
    checks: set[str] = set()
    approvals = 0
    force_pushes = deletions = admins_bypass = True
    if classic is not None:
        status = classic.get("required_status_checks") or {}
        checks |= set(status.get("contexts") or []) | {c["context"] for c in status.get("checks") or []}
        reviews = classic.get("required_pull_request_reviews") or {}
        approvals = int(reviews.get("required_approving_review_count") or 0) if reviews else 0
        force_pushes = bool((classic.get("allow_force_pushes") or {}).get("enabled"))
        deletions = bool((classic.get("allow_deletions") or {}).get("enabled"))
        admins_bypass = not (classic.get("enforce_admins") or {}).get("enabled")
    admins_bypass = admins_bypass and not rulesets_hold_all
    for rule in rules:
        parameters = rule.get("parameters") or {}
        kind = rule.get("type")
        if kind == "required_status_checks":
            checks |= {c["context"] for c in parameters.get("required_status_checks") or []}
        elif kind == "pull_request":
            approvals = max(approvals, int(parameters.get("required_approving_review_count") or 0))
        force_pushes = force_pushes and kind != "non_fast_forward"
        deletions = deletions and kind != "deletion"
    protected = classic is not None or bool(rules)
    return BranchRules(protected, frozenset(checks), approvals, force_pushes, deletions, admins_bypass)


def _message(e: Any) -> str:
    data = getattr(e, "data", None)
    if isinstance(data, dict) and data.get("message"):
        return str(data["message"])
    return str(e)


def _ours(item: Any, login: str, marker: str) -> bool:
    """Whether a comment or an issue is regops' own: ``login`` wrote it and it carries ``marker`` (which anyone can
    write, so it alone proves nothing)."""
    user = item.user
    return user is not None and user.login.lower() == login.lower() and marker in (item.body or "")


def _find_issue(repo: Any, marker: str, login: str) -> Any:
    """The open issue (not pull request) that ``login`` opened and whose body carries ``marker``, or None."""
    return next((i for i in repo.get_issues(state="open") if i.pull_request is None and _ours(i, login, marker)), None)


def _reason(error: Exception) -> str:
    """The innermost cause of a requests failure, e.g. ``[Errno 111] Connection refused``."""
    while error.__context__ is not None and isinstance(error.__context__, Exception):
        error = error.__context__
    return str(getattr(error, "reason", None) or error)
