"""A local GitHub: the real PyGithub client talks HTTP to it (REST API v3), unmodified, and cannot tell.

What it is
    A Starlette application served by uvicorn on 127.0.0.1, laid out like GitHub Enterprise Server: the REST API
    lives under ``/api/v3`` (so ``github.Github(base_url=server.api_url)``, ``api_url == url + "/api/v3"``), web
    pages would be at the root. State is in memory: users and bots (logins ending in ``[bot]``), organizations with
    teams, repositories with collaborators, branches and commits (ids are given by the tests; there is no git),
    pull requests, issues, issue comments, labels, reviews, requested reviewers, commit statuses and check runs.
    Every ``url``, ``html_url``, ``issue_url``, ``comments_url``... it writes carries its own address, as PyGithub
    follows them and refuses any other host.

What of GitHub it speaks (paths relative to ``/api/v3``; GitHub's field names, status codes and error bodies)
    ``GET /user``, ``GET /users/{username}``; ``GET /repos/{owner}/{repo}`` (a fork says ``fork``, ``parent`` and
    ``source``); pull requests: ``GET``/``POST .../pulls`` (``state``, ``head`` as ``owner:branch``, ``base``,
    ``sort``, ``direction``; a pull request's head may be a fork's branch), ``GET``/``PATCH
    .../pulls/{n}``, ``.../files``, ``.../commits``, ``GET``/``POST .../reviews``, ``GET``/``POST
    .../requested_reviewers``; issues: ``GET``/``POST .../issues`` (``state``, ``labels``, ``creator``,
    ``assignee``, ``since``, ``sort``, ``direction``; pull requests are issues too), ``GET``/``PATCH .../issues/{n}``,
    ``GET``/``POST``/``PUT .../issues/{n}/labels``, ``DELETE .../issues/{n}/labels/{name}``, ``GET``/``POST
    .../labels``, ``GET .../labels/{name}``; comments: ``GET``/``POST .../issues/{n}/comments``, ``GET``/``PATCH
    .../issues/comments/{id}``; statuses: ``POST .../statuses/{sha}``, ``GET .../commits/{ref}/statuses`` (and its
    older form ``GET .../statuses/{ref}``, which PyGithub's ``Commit.get_statuses`` uses), ``GET
    .../commits/{ref}/status`` (combined); check runs: ``POST .../check-runs``, ``GET``/``PATCH
    .../check-runs/{id}``, ``GET .../commits/{ref}/check-runs`` (``check_name``, ``status``, ``filter``); commits:
    ``GET .../commits/{ref}``, ``GET .../commits/{sha}/pulls``; organizations and teams: ``GET /orgs/{org}``,
    ``GET /orgs/{org}/teams/{slug}``, ``.../memberships/{username}``, ``.../members``, also under the team ``url``
    GitHub hands out, ``/organizations/{org_id}/team/{team_id}``; collaborators: ``GET
    .../collaborators/{username}`` and ``.../permission``. Of the GraphQL API (``POST /api/graphql``, beside
    ``/api/v3`` as on GitHub Enterprise Server), the one query ``{ viewer { login } }``: whose the token is, which
    app installations' tokens may ask too. Lists are paginated with ``per_page`` and ``page``, and a
    ``Link`` header (``first``, ``prev``, ``next``, ``last``) on the server's own address. Errors are GitHub's:
    ``{"message", "documentation_url", "status"}``, 422 ``Validation Failed`` with an ``errors`` list.

Access
    ``tokens`` maps a token (``Authorization: token X`` or ``Bearer X``) to a login, or to ``{"login": ...,
    "repos": {"owner/name": level}}`` for a token limited per repository (an app installation, a fine-grained
    token): levels are GitHub's ``read < triage < write < maintain < admin``. A user's own level on a repository
    comes from its owner and collaborators (``read`` for anyone on a public one); a bot has only what its token
    grants. Unknown tokens get 401 ``Bad credentials``; repositories a caller cannot read are 404; too low a level is
    403. Only bots create check runs (GitHub Apps), and installation tokens cannot call ``GET /user``.

What it adds for tests
    ``faults``, ``requests`` and ``unserved`` as :mod:`tests.servers.hub` has them; ``errors`` (exceptions raised by
    the server itself, and every response that does not match GitHub's OpenAPI description when ``openapi`` is
    given: see :mod:`tests.servers.openapi`); ``validated`` (how many responses were checked); ``page_size`` (caps
    every page, to exercise pagination); ``corrupt`` (break a field of the next matching response, to prove the
    check works); state helpers that play "someone used GitHub by hand or pushed with git": ``add_token``,
    ``add_user``, ``add_org``, ``add_team``, ``add_repo``, ``add_fork``, ``add_collaborator``, ``add_branch``,
    ``add_pull`` (``head_repo`` for a pull request from a fork), ``set_head``, ``add_review``, ``merge``,
    ``protect_branch``, ``add_ruleset``, ``add_environment``, ``add_org_owner``, ``install_app``; and readers of what clients did: ``comments``, ``labels``,
    ``reviewers``, ``statuses``, ``check_runs``.

What it does not do
    Git (no contents, trees, refs or real merges), creating forks or pull requests from them through the API
    (``add_fork`` and ``add_pull(head_repo=...)`` play them), webhooks, GraphQL beyond ``viewer``, milestones, reactions, review comments,
    enforcing branch protection, rulesets or required checks (they are only reported), rate limiting, conditional
    requests.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol, Self, TypeVar, cast
from urllib.parse import quote, urlencode

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.servers.hub import (
    HTTP_METHODS,
    Faults,
    RequestRecord,
    _Instrumentation,
    _listening_socket,
    _Protocol,
    _Server,
)

if TYPE_CHECKING:
    from tests.servers.hub import _Hub
    from tests.servers.openapi import GitHubOpenAPI

API_PREFIX = "/api/v3"
GRAPHQL_PATH = "/api/graphql"
DOCS = "https://docs.github.com/rest"
DEFAULT_PER_PAGE = 30
MAX_PER_PAGE = 100
BODY_LIMIT = 65536
CHECK_OUTPUT_LIMIT = 65535
STATUS_DESCRIPTION_LIMIT = 140
LEVELS = ("none", "read", "triage", "write", "maintain", "admin")
Level = Literal["none", "read", "triage", "write", "maintain", "admin"]
ReviewState = Literal["APPROVED", "CHANGES_REQUESTED", "COMMENTED", "DISMISSED", "PENDING"]
DEFAULT_LABELS = (
    ("bug", "d73a4a", "Something isn't working"),
    ("documentation", "0075ca", "Improvements or additions to documentation"),
    ("duplicate", "cfd3d7", "This issue or pull request already exists"),
    ("enhancement", "a2eeef", "New feature or request"),
    ("good first issue", "7057ff", "Good for newcomers"),
    ("help wanted", "008672", "Extra attention is needed"),
    ("invalid", "e4e669", "This doesn't seem right"),
    ("question", "d876e3", "Further information is requested"),
    ("wontfix", "ffffff", "This will not be worked on"),
)
# The hypermedia links GitHub writes into every repository and user object, relative to their API url.
REPO_LINKS = {
    "forks": "/forks",
    "keys": "/keys{/key_id}",
    "collaborators": "/collaborators{/collaborator}",
    "teams": "/teams",
    "hooks": "/hooks",
    "issue_events": "/issues/events{/number}",
    "events": "/events",
    "assignees": "/assignees{/user}",
    "branches": "/branches{/branch}",
    "tags": "/tags",
    "blobs": "/git/blobs{/sha}",
    "git_tags": "/git/tags{/sha}",
    "git_refs": "/git/refs{/sha}",
    "trees": "/git/trees{/sha}",
    "statuses": "/statuses/{sha}",
    "languages": "/languages",
    "stargazers": "/stargazers",
    "contributors": "/contributors",
    "subscribers": "/subscribers",
    "subscription": "/subscription",
    "commits": "/commits{/sha}",
    "git_commits": "/git/commits{/sha}",
    "comments": "/comments{/number}",
    "issue_comment": "/issues/comments{/number}",
    "contents": "/contents/{+path}",
    "compare": "/compare/{base}...{head}",
    "merges": "/merges",
    "archive": "/{archive_format}{/ref}",
    "downloads": "/downloads",
    "issues": "/issues{/number}",
    "pulls": "/pulls{/number}",
    "milestones": "/milestones{/number}",
    "notifications": "/notifications{?since,all,participating}",
    "labels": "/labels{/name}",
    "releases": "/releases{/id}",
    "deployments": "/deployments",
}
USER_LINKS = {
    "followers": "/followers",
    "following": "/following{/other_user}",
    "gists": "/gists{/gist_id}",
    "starred": "/starred{/owner}{/repo}",
    "subscriptions": "/subscriptions",
    "organizations": "/orgs",
    "repos": "/repos",
    "events": "/events{/privacy}",
    "received_events": "/received_events",
}
# Paths GitHub serves, and PyGithub follows, that its OpenAPI description lists in another form.
SPEC_ALIASES = {
    ("GET", "/repos/{owner}/{repo}/statuses/{sha}"): "/repos/{owner}/{repo}/commits/{ref}/statuses",
    ("GET", "/organizations/{org_id}/team/{team_id}"): "/teams/{team_id}",
    ("GET", "/organizations/{org_id}/team/{team_id}/members"): "/teams/{team_id}/members",
    ("GET", "/organizations/{org_id}/team/{team_id}/memberships/{username}"): "/teams/{team_id}/memberships/{username}",
}
COMMIT_PARAMS = ("ref", "sha", "commit_sha")
_T = TypeVar("_T")
_REMOVE: Any = object()
_CONVERTOR_RE = re.compile(r":\w+\}")
_VIEWER_LOGIN = re.compile(r"\s*(?:query\s*(?:\w+\s*)?)?\{\s*viewer\s*\{\s*login\s*\}\s*\}\s*")


# -- Errors -----------------------------------------------------------------------------------------------------------


class GitHubError(Exception):
    """An error answered the way GitHub answers it: ``{"message", "documentation_url", "status"[, "errors"]}``."""

    def __init__(self, status: int, message: str, errors: Sequence[Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = list(errors) if errors is not None else None

    def body(self) -> dict[str, Any]:
        data: dict[str, Any] = {"message": self.message, "documentation_url": DOCS, "status": str(self.status)}
        if self.errors is not None:
            data["errors"] = self.errors
        return data


def _not_found(message: str = "Not Found") -> GitHubError:
    return GitHubError(404, message)


def _found(item: _T | None) -> _T:
    """``item``, or GitHub's 404 when there is none."""
    if item is None:
        raise _not_found()
    return item


def _created(rendered: dict[str, Any]) -> _Reply:
    """201 Created, with the new resource's address in ``Location`` as GitHub sends it."""
    return _Reply(rendered, 201, {"Location": rendered["url"]})


def _invalid(resource: str, field_name: str | None, code: str, message: str | None = None) -> GitHubError:
    """422 Validation Failed with one error object, as GitHub's validations answer."""
    error: dict[str, Any] = {"resource": resource, "code": code}
    if field_name is not None:
        error["field"] = field_name
    if message is not None:
        error["message"] = message
    return GitHubError(422, "Validation Failed", [error])


def _level(name: str) -> int:
    if name not in LEVELS:
        raise ValueError(f"unknown permission level {name!r}: expected one of {LEVELS}")
    return LEVELS.index(name)


def _permissions(level: int) -> dict[str, bool]:
    """A level as GitHub's ``permissions`` flags (``push`` is write access)."""
    flags = {"pull": "read", "triage": "triage", "push": "write", "maintain": "maintain", "admin": "admin"}
    return {flag: level >= _level(name) for flag, name in flags.items()}


def _stamp(moment: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if moment is None else moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _node_id(kind: str, number: int) -> str:
    return f"{kind}_" + base64.b64encode(f"{kind}:{number}".encode()).decode().rstrip("=")


def fake_sha(*parts: object) -> str:
    """A stable 40-hex commit id made from ``parts`` (for commits the tests do not name)."""
    return hashlib.sha1("\0".join(map(str, parts)).encode()).hexdigest()


# -- State ------------------------------------------------------------------------------------------------------------


@dataclass
class _Account:
    login: str
    id: int
    type: Literal["User", "Bot", "Organization"]
    name: str | None
    email: str | None
    created_at: str


@dataclass
class _Team:
    id: int
    org: str
    slug: str
    name: str
    description: str | None
    members: dict[str, Literal["member", "maintainer"]]
    created_at: str


@dataclass
class _Commit:
    sha: str
    message: str
    author: str | None
    committer: str | None
    author_name: str
    author_email: str
    date: str
    parents: list[str]
    files: list[dict[str, Any]]


@dataclass
class _Branch:
    name: str
    sha: str
    commits: list[str]
    files: list[dict[str, Any]]


@dataclass
class _Review:
    id: int
    user: str
    state: ReviewState
    body: str
    commit_id: str
    submitted_at: str | None


@dataclass
class _Pull:
    id: int
    head_ref: str
    head_sha: str
    base_ref: str
    commits: list[str]
    files: list[dict[str, Any]]
    draft: bool = False
    merged_at: str | None = None
    merged_by: str | None = None
    merge_commit_sha: str | None = None
    maintainer_can_modify: bool = False
    head_repo: str | None = None  # the fork (``owner/name``) whose branch the head is; None: the same repository
    reviewers: list[str] = field(default_factory=list)
    team_reviewers: list[str] = field(default_factory=list)
    reviews: list[_Review] = field(default_factory=list)


@dataclass
class _Issue:
    number: int
    id: int
    title: str
    body: str | None
    user: str
    created_at: str
    updated_at: str
    state: Literal["open", "closed"] = "open"
    state_reason: str | None = None
    closed_at: str | None = None
    closed_by: str | None = None
    labels: list[str] = field(default_factory=list)
    assignees: list[str] = field(default_factory=list)
    pull: _Pull | None = None


@dataclass
class _Comment:
    id: int
    number: int
    user: str
    body: str
    created_at: str
    updated_at: str


@dataclass
class _Label:
    id: int
    name: str
    color: str
    description: str | None
    default: bool


@dataclass
class _Status:
    id: int
    sha: str
    state: str
    context: str
    description: str | None
    target_url: str | None
    creator: str
    created_at: str


@dataclass
class _CheckRun:
    id: int
    suite_id: int
    head_sha: str
    name: str
    app: str
    status: str
    conclusion: str | None
    details_url: str | None
    external_id: str
    started_at: str | None
    completed_at: str | None
    output: dict[str, str | None]


@dataclass
class _Ruleset:
    id: int
    name: str
    branches: list[str]  # the branch names it targets
    rules: list[dict[str, Any]]  # GitHub's rule objects: {"type", "parameters"?}
    bypass_actors: list[dict[str, Any]]  # {"actor_id", "actor_type", "bypass_mode"}


@dataclass
class _Environment:
    id: int
    name: str
    created_at: str
    protected_branches: bool
    branches: list[str] | None  # custom branch policies (names); None: no custom policy
    secrets: dict[str, str]  # name -> created_at (values are never readable)
    variables: dict[str, str]


@dataclass
class _Repo:
    id: int
    owner: str
    name: str
    default_branch: str
    private: bool
    description: str | None
    created_at: str
    collaborators: dict[str, Level] = field(default_factory=dict)
    branches: dict[str, _Branch] = field(default_factory=dict)
    commits: dict[str, _Commit] = field(default_factory=dict)
    history: dict[str, set[str]] = field(default_factory=dict)
    issues: dict[int, _Issue] = field(default_factory=dict)
    comments: dict[int, _Comment] = field(default_factory=dict)
    labels: dict[str, _Label] = field(default_factory=dict)
    statuses: list[_Status] = field(default_factory=list)
    check_runs: dict[int, _CheckRun] = field(default_factory=dict)
    pushed_at: str = ""
    fork_of: str | None = None  # the parent repository (``owner/name``) of a fork
    protection: dict[str, dict[str, Any]] = field(default_factory=dict)  # branch -> settings (``protect_branch``)
    rulesets: list[_Ruleset] = field(default_factory=list)
    environments: dict[str, _Environment] = field(default_factory=dict)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    def label(self, name: str) -> _Label | None:
        return self.labels.get(name.lower())

    def pull(self, number: int) -> tuple[_Issue, _Pull]:
        issue = self.issues.get(number)
        if issue is None or issue.pull is None:
            raise _not_found()
        return issue, issue.pull

    def resolve(self, ref: str) -> _Commit | None:
        """A commit id, a unique abbreviation of one (7+ characters), or a branch name, to its commit."""
        if ref in self.commits:
            return self.commits[ref]
        if ref in self.branches:
            return self.commits[self.branches[ref].sha]
        if re.fullmatch(r"[0-9a-f]{7,39}", ref):
            found = [commit for sha, commit in self.commits.items() if sha.startswith(ref)]
            if len(found) == 1:
                return found[0]
        return None


@dataclass(frozen=True)
class _Caller:
    token: str
    login: str
    bot: bool
    repos: Mapping[str, Level] | None


@dataclass
class _Corruption:
    method: str
    path_regex: str
    field_path: str
    value: Any
    times: int
    fired: int = 0


@dataclass
class _Reply:
    data: Any
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[["_Call"], _Reply]


def _file_entry(entry: str | Mapping[str, Any]) -> dict[str, Any]:
    """A changed file as the tests give it (a name, or GitHub's diff-entry fields) with GitHub's defaults."""
    data: dict[str, Any] = {"filename": entry} if isinstance(entry, str) else dict(entry)
    if "filename" not in data:
        raise ValueError(f"a changed file needs a filename: {entry!r}")
    data.setdefault("status", "modified")
    data.setdefault("additions", 1)
    data.setdefault("deletions", 0 if data["status"] == "added" else 1)
    data["changes"] = data["additions"] + data["deletions"]
    return data


def _require_fields(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise GitHubError(400, "Problems parsing JSON")
    return data


def _text_limit(resource: str, name: str, value: object, limit: int = BODY_LIMIT) -> None:
    if isinstance(value, str) and len(value) > limit:
        raise _invalid(resource, name, "custom", f"{name} is too long (maximum is {limit} characters)")


def _comment_body(call: _Call) -> str:
    body = call.fields().get("body")
    if not body:
        raise _invalid("IssueComment", "body", "missing_field")
    _text_limit("IssueComment", "body", body)
    return str(body)


# -- Rendering: GitHub's JSON objects ---------------------------------------------------------------------------------


class _View:
    """Renders state as GitHub's JSON for one request: ``api`` and ``web`` are this server's own addresses."""

    def __init__(self, github: _GitHub, api: str, web: str, caller: _Caller | None) -> None:
        self.github, self.api, self.web, self.caller = github, api, web, caller

    def user(self, login: str) -> dict[str, Any]:
        """A ``simple-user``."""
        account = self.github.account(login)
        url = f"{self.api}/users/{quote(login)}"
        slug = login.removesuffix("[bot]")
        data: dict[str, Any] = {
            "login": login,
            "id": account.id,
            "node_id": _node_id({"Bot": "BOT", "Organization": "O"}.get(account.type, "U"), account.id),
            "avatar_url": f"{self.web}/avatars/u/{account.id}?v=4",
            "gravatar_id": "",
            "url": url,
            "html_url": f"{self.web}/apps/{slug}" if account.type == "Bot" else f"{self.web}/{login}",
        }
        data.update({f"{name}_url": url + suffix for name, suffix in USER_LINKS.items()})
        data.update({"type": account.type, "user_view_type": "public", "site_admin": False})
        return data

    def maybe_user(self, login: str | None) -> dict[str, Any] | None:
        return None if login is None else self.user(login)

    def full_user(self, login: str, *, private: bool) -> dict[str, Any]:
        """A ``public-user``, or a ``private-user`` (``GET /user``: the caller's own)."""
        account = self.github.account(login)
        data = self.user(login)
        data.update(
            {
                "name": account.name,
                "company": None,
                "blog": "",
                "location": None,
                "email": account.email,
                "hireable": None,
                "bio": None,
                "twitter_username": None,
                "public_repos": sum(not r.private and r.owner == login for r in self.github.repos.values()),
                "public_gists": 0,
                "followers": 0,
                "following": 0,
                "created_at": account.created_at,
                "updated_at": account.created_at,
            }
        )
        if private:
            owned = [repo for repo in self.github.repos.values() if repo.owner == login and repo.private]
            data.update(
                {
                    "private_gists": 0,
                    "total_private_repos": len(owned),
                    "owned_private_repos": len(owned),
                    "disk_usage": 0,
                    "collaborators": 0,
                    "two_factor_authentication": True,
                    "plan": {"name": "free", "space": 976562499, "collaborators": 0, "private_repos": 10000},
                }
            )
        return data

    def organization(self, login: str) -> dict[str, Any]:
        """An ``organization-full`` (whose description has ``company``, ``email`` and ``location`` as strings, never
        null: unset, they are left out)."""
        account = self.github.account(login)
        url = f"{self.api}/orgs/{login}"
        return {
            "login": login,
            "id": account.id,
            "node_id": _node_id("O", account.id),
            "url": url,
            "repos_url": f"{url}/repos",
            "events_url": f"{url}/events",
            "hooks_url": f"{url}/hooks",
            "issues_url": f"{url}/issues",
            "members_url": f"{url}/members{{/member}}",
            "public_members_url": f"{url}/public_members{{/member}}",
            "avatar_url": f"{self.web}/avatars/u/{account.id}?v=4",
            "description": None,
            "name": account.name,
            "blog": "",
            "twitter_username": None,
            "is_verified": False,
            "has_organization_projects": True,
            "has_repository_projects": True,
            "public_repos": sum(not r.private and r.owner == login for r in self.github.repos.values()),
            "public_gists": 0,
            "followers": 0,
            "following": 0,
            "html_url": f"{self.web}/{login}",
            "created_at": account.created_at,
            "updated_at": account.created_at,
            "archived_at": None,
            "type": "Organization",
        }

    def team_url(self, team: _Team) -> str:
        return f"{self.api}/organizations/{self.github.account(team.org).id}/team/{team.id}"

    def team(self, team: _Team, *, full: bool = False) -> dict[str, Any]:
        """A ``team`` (``team-full`` with ``full``)."""
        url = self.team_url(team)
        data: dict[str, Any] = {
            "name": team.name,
            "id": team.id,
            "node_id": _node_id("T", team.id),
            "slug": team.slug,
            "description": team.description,
            "privacy": "closed",
            "notification_setting": "notifications_enabled",
            "url": url,
            "html_url": f"{self.web}/orgs/{team.org}/teams/{team.slug}",
            "members_url": f"{url}/members{{/member}}",
            "repositories_url": f"{url}/repos",
            "permission": "pull",
            "type": "organization",
            "organization_id": self.github.account(team.org).id,
            "parent": None,
        }
        if full:
            data.update(
                {
                    "members_count": len(team.members),
                    "repos_count": 0,
                    "created_at": team.created_at,
                    "updated_at": team.created_at,
                    "organization": self.organization(team.org),
                }
            )
        else:
            data["permissions"] = {"pull": True, "triage": False, "push": False, "maintain": False, "admin": False}
        return data

    def repo_url(self, repo: _Repo) -> str:
        return f"{self.api}/repos/{repo.full_name}"

    def repo_web(self, repo: _Repo) -> str:
        return f"{self.web}/{repo.full_name}"

    def repository(self, repo: _Repo, *, full: bool = False) -> dict[str, Any]:
        """A ``repository`` (``full-repository`` with ``full``)."""
        url = self.repo_url(repo)
        host = self.web.split("://", 1)[1]
        data: dict[str, Any] = {
            "id": repo.id,
            "node_id": _node_id("R", repo.id),
            "name": repo.name,
            "full_name": repo.full_name,
            "private": repo.private,
            "owner": self.user(repo.owner),
            "html_url": self.repo_web(repo),
            "description": repo.description,
            "fork": repo.fork_of is not None,
            "url": url,
        }
        data.update({f"{name}_url": url + suffix for name, suffix in REPO_LINKS.items()})
        open_issues = sum(issue.state == "open" for issue in repo.issues.values())
        data.update(
            {
                "created_at": repo.created_at,
                "updated_at": repo.pushed_at,
                "pushed_at": repo.pushed_at,
                "git_url": f"git://{host}/{repo.full_name}.git",
                "ssh_url": f"git@{host.split(':')[0]}:{repo.full_name}.git",
                "clone_url": f"{self.repo_web(repo)}.git",
                "svn_url": self.repo_web(repo),
                "homepage": None,
                "size": 0,
                "stargazers_count": 0,
                "watchers_count": 0,
                "language": None,
                "has_issues": True,
                "has_projects": True,
                "has_downloads": True,
                "has_wiki": True,
                "has_pages": False,
                "has_discussions": False,
                "forks_count": 0,
                "mirror_url": None,
                "archived": False,
                "disabled": False,
                "open_issues_count": open_issues,
                "license": None,
                "allow_forking": True,
                "is_template": False,
                "web_commit_signoff_required": False,
                "topics": [],
                "visibility": "private" if repo.private else "public",
                "forks": 0,
                "open_issues": open_issues,
                "watchers": 0,
                "default_branch": repo.default_branch,
            }
        )
        if self.caller is not None:
            level = self.github.level(self.caller, repo)
            data["permissions"] = _permissions(level)
        if full:
            data.update({"network_count": 0, "subscribers_count": 0})
            if repo.fork_of is not None:
                parent = self.github.repos[repo.fork_of.lower()]
                data["parent"] = data["source"] = self.repository(parent)
            if self.github.account(repo.owner).type == "Organization":
                data["organization"] = self.user(repo.owner)
        return data

    def author_association(self, repo: _Repo, login: str) -> str:
        if login == repo.owner:
            return "OWNER"
        if login in self.github.org_members(repo.owner):
            return "MEMBER"
        if login in repo.collaborators:
            return "COLLABORATOR"
        return "NONE"

    def label(self, repo: _Repo, label: _Label) -> dict[str, Any]:
        return {
            "id": label.id,
            "node_id": _node_id("LA", label.id),
            "url": f"{self.repo_url(repo)}/labels/{quote(label.name)}",
            "name": label.name,
            "color": label.color,
            "default": label.default,
            "description": label.description,
        }

    def labels(self, repo: _Repo, issue: _Issue, *, in_pull: bool = False) -> list[dict[str, Any]]:
        """The issue's labels; inside a pull request the description says "" for none (its schema has no null)."""
        labels = [self.label(repo, repo.labels[name.lower()]) for name in issue.labels]
        if in_pull:
            labels = [{**label, "description": label["description"] or ""} for label in labels]
        return labels

    def issue(self, repo: _Repo, issue: _Issue) -> dict[str, Any]:
        """An ``issue`` (a pull request's issue has ``pull_request``)."""
        url = f"{self.repo_url(repo)}/issues/{issue.number}"
        kind = "pull" if issue.pull else "issues"
        data: dict[str, Any] = {
            "url": url,
            "repository_url": self.repo_url(repo),
            "labels_url": f"{url}/labels{{/name}}",
            "comments_url": f"{url}/comments",
            "events_url": f"{url}/events",
            "html_url": f"{self.repo_web(repo)}/{kind}/{issue.number}",
            "id": issue.id,
            "node_id": _node_id("I", issue.id),
            "number": issue.number,
            "title": issue.title,
            "user": self.user(issue.user),
            "labels": self.labels(repo, issue),
            "state": issue.state,
            "locked": False,
            "assignee": self.maybe_user(issue.assignees[0] if issue.assignees else None),
            "assignees": [self.user(login) for login in issue.assignees],
            "milestone": None,
            "comments": sum(comment.number == issue.number for comment in repo.comments.values()),
            "created_at": issue.created_at,
            "updated_at": issue.updated_at,
            "closed_at": issue.closed_at,
            "author_association": self.author_association(repo, issue.user),
            "active_lock_reason": None,
            "body": issue.body,
            "closed_by": self.maybe_user(issue.closed_by),
            "timeline_url": f"{url}/timeline",
            "performed_via_github_app": None,
            "state_reason": issue.state_reason,
        }
        if issue.pull is not None:
            pull_web = f"{self.repo_web(repo)}/pull/{issue.number}"
            data["draft"] = issue.pull.draft
            data["pull_request"] = {
                "url": f"{self.repo_url(repo)}/pulls/{issue.number}",
                "html_url": pull_web,
                "diff_url": f"{pull_web}.diff",
                "patch_url": f"{pull_web}.patch",
                "merged_at": issue.pull.merged_at,
            }
        return data

    def branch_end(self, repo: _Repo, ref: str, sha: str) -> dict[str, Any]:
        return {
            "label": f"{repo.owner}:{ref}",
            "ref": ref,
            "sha": sha,
            "user": self.user(repo.owner),
            "repo": self.repository(repo),
        }

    def pull(self, repo: _Repo, issue: _Issue, *, simple: bool = False) -> dict[str, Any]:
        """A ``pull-request`` (``pull-request-simple`` with ``simple``: lists)."""
        pull = issue.pull
        assert pull is not None
        url = f"{self.repo_url(repo)}/pulls/{issue.number}"
        issue_url = f"{self.repo_url(repo)}/issues/{issue.number}"
        web = f"{self.repo_web(repo)}/pull/{issue.number}"
        base_sha = repo.branches[pull.base_ref].sha if pull.base_ref in repo.branches else pull.head_sha
        merge_sha = pull.merge_commit_sha or fake_sha("test-merge", repo.full_name, issue.number, pull.head_sha)
        data: dict[str, Any] = {
            "url": url,
            "id": pull.id,
            "node_id": _node_id("PR", pull.id),
            "html_url": web,
            "diff_url": f"{web}.diff",
            "patch_url": f"{web}.patch",
            "issue_url": issue_url,
            "commits_url": f"{url}/commits",
            "review_comments_url": f"{url}/comments",
            "review_comment_url": f"{self.repo_url(repo)}/pulls/comments{{/number}}",
            "comments_url": f"{issue_url}/comments",
            "statuses_url": f"{self.repo_url(repo)}/statuses/{pull.head_sha}",
            "number": issue.number,
            "state": issue.state,
            "locked": False,
            "title": issue.title,
            "user": self.user(issue.user),
            "body": issue.body,
            "labels": self.labels(repo, issue, in_pull=True),
            "milestone": None,
            "active_lock_reason": None,
            "created_at": issue.created_at,
            "updated_at": issue.updated_at,
            "closed_at": issue.closed_at,
            "merged_at": pull.merged_at,
            "merge_commit_sha": merge_sha,
            "assignee": self.maybe_user(issue.assignees[0] if issue.assignees else None),
            "assignees": [self.user(login) for login in issue.assignees],
            "requested_reviewers": [self.user(login) for login in pull.reviewers],
            "requested_teams": [self.team(self.github.team(repo.owner, slug)) for slug in pull.team_reviewers],
            "head": self.branch_end(self.github.head_repo(repo, pull), pull.head_ref, pull.head_sha),
            "base": self.branch_end(repo, pull.base_ref, base_sha),
            "_links": {
                name: {"href": href}
                for name, href in {
                    "self": url,
                    "html": web,
                    "issue": issue_url,
                    "comments": f"{issue_url}/comments",
                    "review_comments": f"{url}/comments",
                    "review_comment": f"{self.repo_url(repo)}/pulls/comments{{/number}}",
                    "commits": f"{url}/commits",
                    "statuses": f"{self.repo_url(repo)}/statuses/{pull.head_sha}",
                }.items()
            },
            "author_association": self.author_association(repo, issue.user),
            "auto_merge": None,
            "draft": pull.draft,
        }
        if simple:
            return data
        merged = pull.merged_at is not None
        open_ = issue.state == "open"
        data.update(
            {
                "merged": merged,
                "mergeable": True if open_ else None,
                "rebaseable": True if open_ else None,
                "mergeable_state": ("draft" if pull.draft else "clean") if open_ else "unknown",
                "merged_by": self.maybe_user(pull.merged_by),
                "comments": sum(comment.number == issue.number for comment in repo.comments.values()),
                "review_comments": 0,
                "maintainer_can_modify": pull.maintainer_can_modify,
                "commits": len(pull.commits),
                "additions": sum(entry["additions"] for entry in pull.files),
                "deletions": sum(entry["deletions"] for entry in pull.files),
                "changed_files": len(pull.files),
            }
        )
        return data

    def pull_minimal(self, repo: _Repo, issue: _Issue) -> dict[str, Any]:
        pull = issue.pull
        assert pull is not None
        head = self.github.head_repo(repo, pull)
        small_repo = {"id": repo.id, "url": self.repo_url(repo), "name": repo.name}
        small_head = {"id": head.id, "url": self.repo_url(head), "name": head.name}
        base_sha = repo.branches[pull.base_ref].sha if pull.base_ref in repo.branches else pull.head_sha
        return {
            "id": pull.id,
            "number": issue.number,
            "url": f"{self.repo_url(repo)}/pulls/{issue.number}",
            "head": {"ref": pull.head_ref, "sha": pull.head_sha, "repo": small_head},
            "base": {"ref": pull.base_ref, "sha": base_sha, "repo": small_repo},
        }

    def diff_entry(self, repo: _Repo, ref: str, entry: Mapping[str, Any]) -> dict[str, Any]:
        name = str(entry["filename"])
        data = {
            "sha": None if entry["status"] == "removed" else fake_sha("blob", repo.full_name, ref, name),
            "filename": name,
            "status": entry["status"],
            "additions": entry["additions"],
            "deletions": entry["deletions"],
            "changes": entry["changes"],
            "blob_url": f"{self.repo_web(repo)}/blob/{ref}/{quote(name)}",
            "raw_url": f"{self.repo_web(repo)}/raw/{ref}/{quote(name)}",
            "contents_url": f"{self.repo_url(repo)}/contents/{quote(name)}?ref={ref}",
        }
        data.update({key: entry[key] for key in ("patch", "previous_filename") if key in entry})
        return data

    def git_person(self, commit: _Commit, login: str | None) -> dict[str, Any]:
        if login is not None:
            account = self.github.account(login)
            return {"name": account.name or login, "email": account.email or "", "date": commit.date}
        return {"name": commit.author_name, "email": commit.author_email, "date": commit.date}

    def commit(self, repo: _Repo, commit: _Commit, *, files: bool = False) -> dict[str, Any]:
        """A ``commit`` (with ``files`` and ``stats`` for ``GET .../commits/{ref}``)."""
        url = f"{self.repo_url(repo)}/commits/{commit.sha}"
        data: dict[str, Any] = {
            "sha": commit.sha,
            "node_id": _node_id("C", int(commit.sha[:8], 16)),
            "commit": {
                "author": self.git_person(commit, commit.author),
                "committer": self.git_person(commit, commit.committer),
                "message": commit.message,
                "tree": {
                    "sha": fake_sha("tree", commit.sha),
                    "url": f"{self.repo_url(repo)}/git/trees/{fake_sha('tree', commit.sha)}",
                },
                "url": f"{self.repo_url(repo)}/git/commits/{commit.sha}",
                "comment_count": 0,
                "verification": {
                    "verified": False,
                    "reason": "unsigned",
                    "signature": None,
                    "payload": None,
                    "verified_at": None,
                },
            },
            "url": url,
            "html_url": f"{self.repo_web(repo)}/commit/{commit.sha}",
            "comments_url": f"{url}/comments",
            "author": self.maybe_user(commit.author),
            "committer": self.maybe_user(commit.committer),
            "parents": [
                {
                    "sha": parent,
                    "url": f"{self.repo_url(repo)}/commits/{parent}",
                    "html_url": f"{self.repo_web(repo)}/commit/{parent}",
                }
                for parent in commit.parents
            ],
        }
        if files:
            additions = sum(entry["additions"] for entry in commit.files)
            deletions = sum(entry["deletions"] for entry in commit.files)
            data["stats"] = {"total": additions + deletions, "additions": additions, "deletions": deletions}
            data["files"] = [self.diff_entry(repo, commit.sha, entry) for entry in commit.files]
        return data

    def review(self, repo: _Repo, issue: _Issue, review: _Review) -> dict[str, Any]:
        pull_url = f"{self.repo_url(repo)}/pulls/{issue.number}"
        web = f"{self.repo_web(repo)}/pull/{issue.number}#pullrequestreview-{review.id}"
        data: dict[str, Any] = {
            "id": review.id,
            "node_id": _node_id("PRR", review.id),
            "user": self.user(review.user),
            "body": review.body,
            "state": review.state,
            "html_url": web,
            "pull_request_url": pull_url,
            "author_association": self.author_association(repo, review.user),
            "_links": {"html": {"href": web}, "pull_request": {"href": pull_url}},
            "commit_id": review.commit_id,
        }
        if review.submitted_at is not None:
            data["submitted_at"] = review.submitted_at
        return data

    def comment(self, repo: _Repo, comment: _Comment) -> dict[str, Any]:
        issue = repo.issues[comment.number]
        kind = "pull" if issue.pull else "issues"
        return {
            "id": comment.id,
            "node_id": _node_id("IC", comment.id),
            "url": f"{self.repo_url(repo)}/issues/comments/{comment.id}",
            "html_url": f"{self.repo_web(repo)}/{kind}/{comment.number}#issuecomment-{comment.id}",
            "body": comment.body,
            "user": self.user(comment.user),
            "created_at": comment.created_at,
            "updated_at": comment.updated_at,
            "issue_url": f"{self.repo_url(repo)}/issues/{comment.number}",
            "author_association": self.author_association(repo, comment.user),
            "performed_via_github_app": None,
        }

    def status(self, repo: _Repo, status: _Status, *, simple: bool = False) -> dict[str, Any]:
        """A ``status`` (``simple-commit-status`` with ``simple``: inside a combined status)."""
        data: dict[str, Any] = {
            "url": f"{self.repo_url(repo)}/statuses/{status.sha}",
            "avatar_url": self.user(status.creator)["avatar_url"],
            "id": status.id,
            "node_id": _node_id("SC", status.id),
            "state": status.state,
            "description": status.description,
            "target_url": status.target_url,
            "context": status.context,
            "created_at": status.created_at,
            "updated_at": status.created_at,
        }
        if not simple:
            data["creator"] = self.user(status.creator)
        return data

    def app(self, repo: _Repo, login: str) -> dict[str, Any]:
        """The GitHub App behind a bot: a ``nullable-integration``."""
        account = self.github.account(login)
        slug = login.removesuffix("[bot]")
        return {
            "id": account.id,
            "slug": slug,
            "node_id": _node_id("A", account.id),
            "client_id": f"Iv1.{fake_sha('app', slug)[:16]}",
            "owner": self.user(repo.owner),
            "name": slug,
            "description": None,
            "external_url": f"{self.web}/apps/{slug}",
            "html_url": f"{self.web}/apps/{slug}",
            "created_at": account.created_at,
            "updated_at": account.created_at,
            "permissions": {"checks": "write", "contents": "read", "metadata": "read", "pull_requests": "write"},
            "events": [],
        }

    def check_run(self, repo: _Repo, run: _CheckRun) -> dict[str, Any]:
        url = f"{self.repo_url(repo)}/check-runs/{run.id}"
        pulls = [
            self.pull_minimal(repo, issue)
            for issue in repo.issues.values()
            if issue.pull is not None and issue.state == "open" and issue.pull.head_sha == run.head_sha
        ]
        return {
            "id": run.id,
            "name": run.name,
            "node_id": _node_id("CR", run.id),
            "head_sha": run.head_sha,
            "external_id": run.external_id,
            "url": url,
            "html_url": f"{self.repo_web(repo)}/runs/{run.id}",
            "details_url": run.details_url,
            "status": run.status,
            "conclusion": run.conclusion,
            "started_at": run.started_at,
            "completed_at": run.completed_at,
            "output": {**run.output, "annotations_count": 0, "annotations_url": f"{url}/annotations"},
            "check_suite": {"id": run.suite_id},
            "app": self.app(repo, run.app),
            "pull_requests": pulls,
        }


# -- The application --------------------------------------------------------------------------------------------------


@dataclass
class _Call:
    """One request, its parsed body and caller, handed to a handler running in a worker thread."""

    request: Request
    body: bytes
    caller: _Caller | None
    view: _View
    page_size: int | None

    def param(self, name: str) -> str:
        return str(self.request.path_params[name])

    def number(self, name: str) -> int:
        return int(self.request.path_params[name])

    def query(self, name: str, default: str | None = None) -> str | None:
        return self.request.query_params.get(name, default)

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"{}")
        except ValueError as exc:
            raise GitHubError(400, "Problems parsing JSON") from exc

    def fields(self) -> dict[str, Any]:
        return _require_fields(self.json())

    def login(self) -> str:
        if self.caller is None:
            raise GitHubError(401, "Requires authentication")
        return self.caller.login

    def page(self, items: Sequence[_T]) -> tuple[Sequence[_T], dict[str, str]]:
        """The requested page of ``items`` and GitHub's ``Link`` header (absent when one page holds them all)."""
        try:
            per_page = min(max(int(self.query("per_page") or DEFAULT_PER_PAGE), 1), MAX_PER_PAGE)
            page = max(int(self.query("page") or 1), 1)
        except ValueError:
            per_page, page = DEFAULT_PER_PAGE, 1
        if self.page_size is not None:
            per_page = min(per_page, self.page_size)
        last = max((len(items) + per_page - 1) // per_page, 1)
        if last == 1:
            return items[(page - 1) * per_page : page * per_page], {}
        params = [(key, value) for key, value in self.request.query_params.multi_items() if key != "page"]
        url = f"{self.view.web}{self.request.url.path}"

        def link(target: int, rel: str) -> str:
            return f'<{url}?{urlencode([*params, ("page", str(target))])}>; rel="{rel}"'

        links = []
        if page > 1:
            links.append(link(min(page - 1, last), "prev"))
        if page < last:
            links.append(link(page + 1, "next"))
            links.append(link(last, "last"))
        if page > 1:
            links.append(link(1, "first"))
        return items[(page - 1) * per_page : page * per_page], {"Link": ", ".join(links)}


class _Settings(Protocol):
    """What the application reads from its server at each request, and the count it keeps there."""

    page_size: int | None
    openapi: GitHubOpenAPI | None
    validated: int


class _GitHub:
    """Server state, access rules and the endpoint handlers."""

    def __init__(self, tokens: Mapping[str, str | Mapping[str, Any]], settings: _Settings) -> None:
        self.settings = settings
        self.lock = threading.RLock()
        self.ids = itertools.count(1001)
        self.accounts: dict[str, _Account] = {}
        self.org_teams: dict[str, dict[str, _Team]] = {}
        self.repos: dict[str, _Repo] = {}
        self.tokens: dict[str, _Caller] = {}
        self.faults = Faults()
        self.requests: list[RequestRecord] = []
        self.unserved: list[str] = []
        self.errors: list[str] = []
        self.corruptions: list[_Corruption] = []
        self.installations: dict[str, list[dict[str, Any]]] = {}  # org -> GitHub App installations (``install_app``)
        self.org_owners: dict[str, set[str]] = {}
        for token, spec in tokens.items():
            self.add_token(token, spec)

    # -- state

    def add_token(self, token: str, spec: str | Mapping[str, Any]) -> None:
        login = spec if isinstance(spec, str) else str(spec["login"])
        repos = None if isinstance(spec, str) else spec.get("repos")
        if repos is not None:
            for level in repos.values():
                _level(level)
        self.account(login)
        self.tokens[token] = _Caller(token, login, login.endswith("[bot]"), repos)

    def account(self, login: str, kind: Literal["User", "Bot", "Organization"] | None = None) -> _Account:
        """The account ``login``, created on first mention (a bot when it ends in ``[bot]``)."""
        with self.lock:
            account = self.accounts.get(login)
            if account is None:
                kind = kind or ("Bot" if login.endswith("[bot]") else "User")
                email = None if kind == "Organization" else f"{login.removesuffix('[bot]')}@users.noreply.local"
                account = _Account(login, next(self.ids), kind, login.removesuffix("[bot]"), email, _stamp())
                self.accounts[login] = account
            elif kind is not None and account.type != kind:
                raise ValueError(f"{login!r} is a {account.type}, not a {kind}")
            return account

    def team(self, org: str, slug: str) -> _Team:
        return _found(self.org_teams.get(org, {}).get(slug))

    def team_by_id(self, org_id: int, team_id: int) -> _Team:
        for teams in self.org_teams.values():
            for team in teams.values():
                if team.id == team_id and self.account(team.org).id == org_id:
                    return team
        raise _not_found()

    def org_members(self, org: str) -> set[str]:
        return {login for team in self.org_teams.get(org, {}).values() for login in team.members}

    def repo(self, owner: str, name: str) -> _Repo:
        return _found(self.repos.get(f"{owner}/{name}".lower()))

    def head_repo(self, repo: _Repo, pull: _Pull) -> _Repo:
        """The repository the pull request's head branch is in: ``repo``, or the fork it came from."""
        return repo if pull.head_repo is None else self.repos[pull.head_repo.lower()]

    def add_commit(self, repo: _Repo, sha: str, **details: Any) -> _Commit:
        if not re.fullmatch(r"[0-9a-f]{40}", sha):
            raise ValueError(f"not a commit id (40 lowercase hex digits): {sha!r}")
        author = details.get("author_login")
        committer = details.get("committer_login", author)
        for login in (author, committer):
            if login is not None:
                self.account(login)
        commit = _Commit(
            sha,
            str(details.get("message") or f"Commit {sha[:7]}"),
            author,
            committer,
            str(details.get("author_name") or author or "Someone"),
            str(details.get("author_email") or "someone@example.com"),
            str(details.get("date") or _stamp()),
            list(details.get("parents") or []),
            [_file_entry(entry) for entry in details.get("files") or ()],
        )
        repo.commits[sha] = commit
        repo.pushed_at = _stamp()
        return commit

    # -- access

    def caller(self, request: Request) -> _Caller | None:
        """Who a request's token stands for: None without ``Authorization``, 401 for an unknown token."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if not scheme:
            return None
        caller = self.tokens.get(token.strip()) if scheme.lower() in ("token", "bearer") else None
        if caller is None:
            raise GitHubError(401, "Bad credentials")
        return caller

    def own_level(self, repo: _Repo, login: str) -> int:
        if login == repo.owner:
            return _level("admin")
        level = _level(repo.collaborators.get(login, "none"))
        if level == 0 and not repo.private and not login.endswith("[bot]"):
            return _level("read")
        return level

    def level(self, caller: _Caller | None, repo: _Repo) -> int:
        """What ``caller`` may do in ``repo``: its user's level, capped by the token's grant for that repository."""
        if caller is None:
            return 0 if repo.private else _level("read")
        own = _level("admin") if caller.bot else self.own_level(repo, caller.login)
        grant = _level("admin") if caller.repos is None else _level(caller.repos.get(repo.full_name, "none"))
        level = min(own, grant)
        return level if repo.private else max(level, _level("read"))

    def require(self, call: _Call, repo: _Repo, needed: Level, *, unless: str | None = None) -> None:
        """Refuse the call unless its caller has ``needed`` in ``repo`` (or is ``unless``, e.g. the author)."""
        level = self.level(call.caller, repo)
        if level < _level("read"):
            raise _not_found()
        if call.caller is None and needed != "read":
            raise GitHubError(401, "Requires authentication")
        if level >= _level(needed) or (call.caller is not None and call.caller.login == unless):
            return
        assert call.caller is not None
        if call.caller.bot:
            raise GitHubError(403, "Resource not accessible by integration")
        if call.caller.repos is not None and self.own_level(repo, call.caller.login) >= _level(needed):
            raise GitHubError(403, "Resource not accessible by personal access token")
        raise GitHubError(403, f"Must have {'push' if needed == 'write' else needed} access to repository")

    def visible_repo(self, call: _Call) -> _Repo:
        repo = self.repo(call.param("owner"), call.param("repo"))
        self.require(call, repo, "read")
        return repo

    def org_visible(self, call: _Call, org: str) -> None:
        """Teams are visible to the organization's members and to apps installed on it."""
        caller = call.caller
        if caller is None:
            raise GitHubError(401, "Requires authentication")
        if caller.bot:
            granted = caller.repos is None or any(name.split("/")[0] == org for name in caller.repos)
            if not granted:
                raise GitHubError(403, "Resource not accessible by integration")
        elif caller.login not in self.org_members(org):
            raise _not_found()

    # -- users and repositories

    def get_authenticated(self, call: _Call) -> _Reply:
        login = call.login()
        if self.accounts[login].type == "Bot":
            raise GitHubError(403, "Resource not accessible by integration")
        return _Reply(call.view.full_user(login, private=True))

    def get_user(self, call: _Call) -> _Reply:
        login = call.param("username")
        if login not in self.accounts or self.accounts[login].type == "Organization":
            raise _not_found()
        return _Reply(call.view.full_user(login, private=False))

    def get_repo(self, call: _Call) -> _Reply:
        return _Reply(call.view.repository(self.visible_repo(call), full=True))

    def collaborator_of(self, call: _Call) -> tuple[_Repo, str]:
        """The repository and the user asked about; users need push access to ask, apps read access."""
        repo = self.visible_repo(call)
        caller = call.caller
        if caller is not None and not caller.bot and self.level(caller, repo) < _level("write"):
            raise GitHubError(403, "Must have push access to view repository collaborators.")
        self.require(call, repo, "read")
        login = call.param("username")
        if login not in self.accounts or self.accounts[login].type == "Organization":
            raise _not_found()
        return repo, login

    def check_collaborator(self, call: _Call) -> _Reply:
        repo, login = self.collaborator_of(call)
        return _Reply(None, 204) if self.own_level(repo, login) >= _level("read") else _Reply(_not_found().body(), 404)

    def collaborator_permission(self, call: _Call) -> _Reply:
        repo, login = self.collaborator_of(call)
        role = LEVELS[self.own_level(repo, login)]
        legacy = {"triage": "read", "maintain": "write"}.get(role, role)
        level = _level(role)
        user = call.view.user(login)
        user["permissions"] = _permissions(level)
        user["role_name"] = role
        return _Reply({"permission": legacy, "role_name": role, "user": user})

    # -- pull requests

    def list_pulls(self, call: _Call) -> _Reply:
        repo = self.visible_repo(call)
        state = call.query("state", "open")
        head = call.query("head")
        base = call.query("base")
        found = []
        for issue in repo.issues.values():
            pull = issue.pull
            if pull is None or state not in ("all", issue.state):
                continue
            if head and ":" in head and head != f"{self.head_repo(repo, pull).owner}:{pull.head_ref}":
                continue
            if base and pull.base_ref != base:
                continue
            found.append(issue)
        found = self.sorted_issues(call, found)
        page, headers = call.page(found)
        return _Reply([call.view.pull(repo, issue, simple=True) for issue in page], headers=headers)

    @staticmethod
    def sorted_issues(call: _Call, issues: list[_Issue]) -> list[_Issue]:
        sort = call.query("sort", "created")
        key: Callable[[_Issue], Any] = (lambda i: (i.updated_at, i.id)) if sort == "updated" else (lambda i: i.id)
        default = "desc" if sort in ("created", "updated", None) else "asc"
        return sorted(issues, key=key, reverse=call.query("direction", default) == "desc")

    def create_pull(self, call: _Call) -> _Reply:
        repo = self.visible_repo(call)
        self.require(call, repo, "write")
        data = call.fields()
        head = str(data.get("head") or "")
        owner, _, head_ref = head.rpartition(":")
        base_ref = str(data.get("base") or "")
        if not data.get("title"):
            raise _invalid("PullRequest", "title", "missing_field")
        if (owner and owner.lower() != repo.owner.lower()) or head_ref not in repo.branches:
            raise _invalid("PullRequest", "head", "invalid")
        if base_ref not in repo.branches:
            raise _invalid("PullRequest", "base", "invalid")
        branch = repo.branches[head_ref]
        if branch.sha in repo.history.get(base_ref, set()) or head_ref == base_ref:
            raise _invalid("PullRequest", None, "custom", f"No commits between {base_ref} and {head_ref}")
        for issue in repo.issues.values():
            pull = issue.pull
            if pull and issue.state == "open" and (pull.head_ref, pull.base_ref) == (head_ref, base_ref):
                raise _invalid(
                    "PullRequest", None, "custom", f"A pull request already exists for {repo.owner}:{head_ref}."
                )
        _text_limit("PullRequest", "body", data.get("body"))
        number = self.new_pull(
            repo,
            title=str(data.get("title") or ""),
            head_ref=head_ref,
            base_ref=base_ref,
            user=call.login(),
            body=data.get("body"),
            draft=bool(data.get("draft", False)),
            maintainer_can_modify=bool(data.get("maintainer_can_modify", False)),
        )
        return _created(call.view.pull(repo, repo.issues[number]))

    def new_pull(
        self, repo: _Repo, *, number: int | None = None, head_repo: _Repo | None = None, **details: Any
    ) -> int:
        """A pull request into ``repo`` from a branch of ``head_repo`` (a fork; default ``repo``) and its number.

        A fork's commits are served by ``repo`` too (``commits/{sha}``, statuses on them), as GitHub does."""
        source = head_repo or repo
        branch = source.branches[details["head_ref"]]
        for sha in branch.commits:
            repo.commits.setdefault(sha, source.commits[sha])
        number = number if number is not None else max(repo.issues, default=0) + 1
        if number in repo.issues:
            raise ValueError(f"{repo.full_name}#{number} already exists")
        self.account(details["user"])
        now = _stamp()
        pull = _Pull(
            next(self.ids),
            branch.name,
            branch.sha,
            details["base_ref"],
            list(branch.commits),
            [dict(entry) for entry in branch.files],
            draft=details.get("draft", False),
            maintainer_can_modify=details.get("maintainer_can_modify", False),
            head_repo=None if head_repo is None else head_repo.full_name,
        )
        issue = _Issue(number, next(self.ids), details["title"], details.get("body"), details["user"], now, now)
        issue.pull = pull
        repo.issues[number] = issue
        return number

    def pull_of(self, call: _Call) -> tuple[_Repo, _Issue, _Pull]:
        repo = self.visible_repo(call)
        return (repo, *repo.pull(call.number("pull_number")))

    def get_pull(self, call: _Call) -> _Reply:
        repo, issue, _ = self.pull_of(call)
        return _Reply(call.view.pull(repo, issue))

    def update_pull(self, call: _Call) -> _Reply:
        repo, issue, pull = self.pull_of(call)
        self.require(call, repo, "write", unless=issue.user)
        data = call.fields()
        if "base" in data:
            if data["base"] not in repo.branches:
                raise _invalid("PullRequest", "base", "invalid")
            pull.base_ref = str(data["base"])
        if data.get("state") == "open" and pull.merged_at is not None:
            raise _invalid("PullRequest", "state", "custom", "state cannot be changed. The pull request was merged.")
        if "maintainer_can_modify" in data:
            pull.maintainer_can_modify = bool(data["maintainer_can_modify"])
        self.edit_issue(call, issue, data)
        return _Reply(call.view.pull(repo, issue))

    def edit_issue(self, call: _Call, issue: _Issue, data: Mapping[str, Any]) -> None:
        resource = "PullRequest" if issue.pull else "Issue"
        _text_limit(resource, "body", data.get("body"))
        if "title" in data:
            if not data["title"]:
                raise _invalid(resource, "title", "missing_field")
            issue.title = str(data["title"])
        if "body" in data:
            issue.body = data["body"]
        state = data.get("state")
        if state is not None:
            if state not in ("open", "closed"):
                raise _invalid(resource, "state", "invalid")
            if state != issue.state:
                issue.state = state
                closed = state == "closed"
                issue.closed_at = _stamp() if closed else None
                issue.closed_by = call.login() if closed else None
                issue.state_reason = (data.get("state_reason") or "completed") if closed else "reopened"
        issue.updated_at = _stamp()

    def pull_files(self, call: _Call) -> _Reply:
        repo, _, pull = self.pull_of(call)
        page, headers = call.page(pull.files)
        return _Reply([call.view.diff_entry(repo, pull.head_sha, entry) for entry in page], headers=headers)

    def pull_commits(self, call: _Call) -> _Reply:
        repo, _, pull = self.pull_of(call)
        page, headers = call.page(pull.commits)
        return _Reply([call.view.commit(repo, repo.commits[sha]) for sha in page], headers=headers)

    def list_reviews(self, call: _Call) -> _Reply:
        repo, issue, pull = self.pull_of(call)
        me = call.caller.login if call.caller else None
        reviews = [review for review in pull.reviews if review.state != "PENDING" or review.user == me]
        page, headers = call.page(reviews)
        return _Reply([call.view.review(repo, issue, review) for review in page], headers=headers)

    def create_review(self, call: _Call) -> _Reply:
        repo, issue, pull = self.pull_of(call)
        data = call.fields()
        login = call.login()
        event = data.get("event")
        states: dict[Any, ReviewState] = {
            None: "PENDING",
            "APPROVE": "APPROVED",
            "REQUEST_CHANGES": "CHANGES_REQUESTED",
            "COMMENT": "COMMENTED",
        }
        if event not in states:
            raise GitHubError(422, "Unprocessable Entity", [f"Invalid event: {event}"])
        state = states[event]
        if login == issue.user and state in ("APPROVED", "CHANGES_REQUESTED"):
            verb = "approve" if state == "APPROVED" else "request changes on"
            raise GitHubError(422, "Unprocessable Entity", [f"Can not {verb} your own pull request"])
        if state in ("CHANGES_REQUESTED", "COMMENTED") and not data.get("body"):
            raise GitHubError(422, "Unprocessable Entity", ["Body is required for this type of review"])
        commit_id = str(data.get("commit_id") or pull.head_sha)
        if commit_id not in repo.commits:
            raise GitHubError(422, "Unprocessable Entity", ["Commit not found"])
        review = self.new_review(
            issue, login, state, body=str(data.get("body") or ""), commit_id=commit_id, submitted_at=None
        )
        return _Reply(call.view.review(repo, issue, review))

    def new_review(
        self, issue: _Issue, login: str, state: ReviewState, *, body: str, commit_id: str, submitted_at: str | None
    ) -> _Review:
        pull = issue.pull
        assert pull is not None
        self.account(login)
        submitted = None if state == "PENDING" else (submitted_at or _stamp())
        review = _Review(next(self.ids), login, state, body, commit_id, submitted)
        pull.reviews.append(review)
        if state != "PENDING" and login in pull.reviewers:
            pull.reviewers.remove(login)
        return review

    def request_reviewers(self, call: _Call) -> _Reply:
        repo, issue, pull = self.pull_of(call)
        self.require(call, repo, "triage", unless=issue.user)
        data = call.fields()
        users = [str(login) for login in data.get("reviewers") or []]
        teams = [str(slug) for slug in data.get("team_reviewers") or []]
        if issue.user in users:
            raise _invalid("PullRequest", None, "custom", "Review cannot be requested from pull request author.")
        strangers = [login for login in users if login not in self.accounts or self.own_level(repo, login) < 1]
        unknown_teams = [slug for slug in teams if slug not in self.org_teams.get(repo.owner, {})]
        if strangers or unknown_teams or (repo.private and any(login.endswith("[bot]") for login in users)):
            raise _invalid(
                "PullRequest",
                None,
                "custom",
                "Reviews may only be requested from collaborators. One or more of the users or teams you specified"
                f" is not a collaborator of the {repo.full_name} repository.",
            )
        pull.reviewers.extend(login for login in users if login not in pull.reviewers)
        pull.team_reviewers.extend(slug for slug in teams if slug not in pull.team_reviewers)
        issue.updated_at = _stamp()
        return _Reply(call.view.pull(repo, issue, simple=True), 201)

    def requested_reviewers(self, call: _Call) -> _Reply:
        repo, _, pull = self.pull_of(call)
        return _Reply(
            {
                "users": [call.view.user(login) for login in pull.reviewers],
                "teams": [call.view.team(self.team(repo.owner, slug)) for slug in pull.team_reviewers],
            }
        )

    # -- issues, labels and comments

    def issue_of(self, call: _Call) -> tuple[_Repo, _Issue]:
        repo = self.visible_repo(call)
        return repo, _found(repo.issues.get(call.number("issue_number")))

    def list_issues(self, call: _Call) -> _Reply:
        repo = self.visible_repo(call)
        state = call.query("state", "open")
        wanted = [name.strip().lower() for name in (call.query("labels") or "").split(",") if name.strip()]
        creator = call.query("creator")
        assignee = call.query("assignee")
        since = call.query("since")
        found = [
            issue
            for issue in repo.issues.values()
            if state in ("all", issue.state)
            and all(name in {label.lower() for label in issue.labels} for name in wanted)
            and (creator is None or issue.user == creator)
            and (assignee is None or assignee in issue.assignees or (assignee == "none" and not issue.assignees))
            and (since is None or issue.updated_at >= since)
        ]
        page, headers = call.page(self.sorted_issues(call, found))
        return _Reply([call.view.issue(repo, issue) for issue in page], headers=headers)

    def create_issue(self, call: _Call) -> _Reply:
        repo = self.visible_repo(call)
        data = call.fields()
        login = call.login()
        if not data.get("title"):
            raise _invalid("Issue", "title", "missing_field")
        _text_limit("Issue", "body", data.get("body"))
        now = _stamp()
        number = max(repo.issues, default=0) + 1
        issue = _Issue(number, next(self.ids), str(data["title"]), data.get("body"), login, now, now)
        triage = self.level(call.caller, repo) >= _level("triage")
        if triage:
            issue.labels = self.ensure_labels(repo, data.get("labels") or [])
            issue.assignees = [str(name) for name in data.get("assignees") or []]
        repo.issues[number] = issue
        return _created(call.view.issue(repo, issue))

    def get_issue(self, call: _Call) -> _Reply:
        repo, issue = self.issue_of(call)
        return _Reply(call.view.issue(repo, issue))

    def update_issue(self, call: _Call) -> _Reply:
        repo, issue = self.issue_of(call)
        self.require(call, repo, "triage", unless=issue.user)
        data = call.fields()
        self.edit_issue(call, issue, data)
        if "labels" in data:
            issue.labels = self.ensure_labels(repo, data["labels"] or [])
        if "assignees" in data:
            issue.assignees = [str(name) for name in data["assignees"] or []]
        return _Reply(call.view.issue(repo, issue))

    def ensure_labels(self, repo: _Repo, names: Iterable[Any]) -> list[str]:
        """Label names as given (strings or ``{"name": ...}``), creating the missing ones as GitHub does."""
        result: list[str] = []
        for item in names:
            name = str(item.get("name") if isinstance(item, dict) else item)
            label = repo.label(name)
            if label is None:
                label = _Label(next(self.ids), name, "ededed", None, False)
                repo.labels[name.lower()] = label
            if label.name not in result:
                result.append(label.name)
        return result

    def labels_body(self, call: _Call) -> list[Any]:
        data = call.json()
        names = data.get("labels") if isinstance(data, dict) else data
        if not isinstance(names, list):
            raise _invalid("Label", "labels", "invalid")
        return names

    def issue_labels(self, call: _Call) -> _Reply:
        repo, issue = self.issue_of(call)
        if call.request.method != "GET":
            self.require(call, repo, "triage")
        if call.request.method == "POST":
            issue.labels += [
                name for name in self.ensure_labels(repo, self.labels_body(call)) if name not in issue.labels
            ]
        elif call.request.method == "PUT":
            issue.labels = self.ensure_labels(repo, self.labels_body(call))
        elif call.request.method == "DELETE":
            label = repo.label(call.param("name"))
            if label is None or label.name not in issue.labels:
                raise _not_found("Label does not exist")
            issue.labels.remove(label.name)
        if call.request.method != "GET":
            issue.updated_at = _stamp()
        page, headers = call.page(call.view.labels(repo, issue))
        return _Reply(list(page), headers=headers)

    def list_labels(self, call: _Call) -> _Reply:
        repo = self.visible_repo(call)
        page, headers = call.page(list(repo.labels.values()))
        return _Reply([call.view.label(repo, label) for label in page], headers=headers)

    def get_label(self, call: _Call) -> _Reply:
        repo = self.visible_repo(call)
        return _Reply(call.view.label(repo, _found(repo.label(call.param("name")))))

    def create_label(self, call: _Call) -> _Reply:
        repo = self.visible_repo(call)
        self.require(call, repo, "write")
        data = call.fields()
        name = str(data.get("name") or "")
        color = str(data.get("color") or "ededed").removeprefix("#")
        if not name:
            raise _invalid("Label", "name", "missing_field")
        if not re.fullmatch(r"[0-9a-fA-F]{6}", color):
            raise _invalid("Label", "color", "invalid")
        if repo.label(name) is not None:
            raise _invalid("Label", "name", "already_exists")
        label = _Label(next(self.ids), name, color.lower(), data.get("description"), False)
        repo.labels[name.lower()] = label
        return _created(call.view.label(repo, label))

    def get_comment(self, call: _Call) -> _Reply:
        repo = self.visible_repo(call)
        return _Reply(call.view.comment(repo, _found(repo.comments.get(call.number("comment_id")))))

    def list_comments(self, call: _Call) -> _Reply:
        repo, issue = self.issue_of(call)
        since = call.query("since")
        found = [
            comment
            for comment in repo.comments.values()
            if comment.number == issue.number and (since is None or comment.updated_at >= since)
        ]
        page, headers = call.page(found)
        return _Reply([call.view.comment(repo, comment) for comment in page], headers=headers)

    def create_comment(self, call: _Call) -> _Reply:
        repo, issue = self.issue_of(call)
        login = call.login()
        now = _stamp()
        comment = _Comment(next(self.ids), issue.number, login, _comment_body(call), now, now)
        repo.comments[comment.id] = comment
        issue.updated_at = now
        return _created(call.view.comment(repo, comment))

    def update_comment(self, call: _Call) -> _Reply:
        repo = self.visible_repo(call)
        comment = _found(repo.comments.get(call.number("comment_id")))
        self.require(call, repo, "write", unless=comment.user)
        comment.body = _comment_body(call)
        comment.updated_at = _stamp()
        return _Reply(call.view.comment(repo, comment))

    # -- commits, statuses and check runs

    def commit_of(self, call: _Call) -> tuple[_Repo, _Commit]:
        repo = self.visible_repo(call)
        ref = next(str(value) for name, value in call.request.path_params.items() if name in COMMIT_PARAMS)
        commit = repo.resolve(ref)
        if commit is None:
            raise GitHubError(422, f"No commit found for SHA: {ref}")
        return repo, commit

    def get_commit(self, call: _Call) -> _Reply:
        repo, commit = self.commit_of(call)
        return _Reply(call.view.commit(repo, commit, files=True))

    def commit_pulls(self, call: _Call) -> _Reply:
        repo, commit = self.commit_of(call)
        on_default = commit.sha in repo.history.get(repo.default_branch, set())
        found = []
        for issue in repo.issues.values():
            pull = issue.pull
            if pull is None:
                continue
            if on_default:
                introduced = pull.merge_commit_sha == commit.sha or commit.sha in pull.commits
                merged_here = pull.merged_at is not None and pull.base_ref == repo.default_branch
                associated = merged_here and introduced
            else:
                associated = issue.state == "open" and commit.sha in pull.commits
            if associated:
                found.append(issue)
        page, headers = call.page(found)
        return _Reply([call.view.pull(repo, issue, simple=True) for issue in page], headers=headers)

    def create_status(self, call: _Call) -> _Reply:
        repo, commit = self.commit_of(call)
        self.require(call, repo, "write")
        data = call.fields()
        state = data.get("state")
        if state not in ("error", "failure", "pending", "success"):
            raise _invalid("Status", "state", "custom", f"state is not included in the list ({state!r})")
        _text_limit("Status", "description", data.get("description"), STATUS_DESCRIPTION_LIMIT)
        status = _Status(
            next(self.ids),
            commit.sha,
            state,
            str(data.get("context") or "default"),
            data.get("description"),
            data.get("target_url"),
            call.login(),
            _stamp(),
        )
        repo.statuses.append(status)
        return _created(call.view.status(repo, status))

    def list_statuses(self, call: _Call) -> _Reply:
        repo, commit = self.commit_of(call)
        found = [status for status in reversed(repo.statuses) if status.sha == commit.sha]
        page, headers = call.page(found)
        return _Reply([call.view.status(repo, status) for status in page], headers=headers)

    def combined_status(self, call: _Call) -> _Reply:
        repo, commit = self.commit_of(call)
        latest: dict[str, _Status] = {}
        for status in repo.statuses:
            if status.sha == commit.sha:
                latest[status.context] = status
        states = {status.state for status in latest.values()}
        if states & {"error", "failure"}:
            state = "failure"
        elif not states or "pending" in states:
            state = "pending"
        else:
            state = "success"
        minimal = call.view.repository(repo)
        minimal.pop("permissions", None)
        return _Reply(
            {
                "state": state,
                "statuses": [call.view.status(repo, status, simple=True) for status in latest.values()],
                "sha": commit.sha,
                "total_count": len(latest),
                "repository": minimal,
                "commit_url": f"{call.view.repo_url(repo)}/commits/{commit.sha}",
                "url": f"{call.view.repo_url(repo)}/commits/{commit.sha}/status",
            }
        )

    def check_app(self, call: _Call, repo: _Repo) -> str:
        if call.caller is not None and not call.caller.bot:
            self.require(call, repo, "read")
            raise GitHubError(403, "You must authenticate via a GitHub App.")
        self.require(call, repo, "write")
        return call.login()

    def apply_check_fields(self, run: _CheckRun, data: Mapping[str, Any]) -> None:
        for name in ("name", "details_url", "external_id", "started_at", "completed_at"):
            if name in data:
                setattr(run, name, data[name] if data[name] is not None or name != "external_id" else "")
        status = data.get("status")
        if status is not None:
            if status not in ("queued", "in_progress", "completed", "waiting", "requested", "pending"):
                raise _invalid("CheckRun", "status", "invalid")
            run.status = status
        conclusion = data.get("conclusion")
        if conclusion is not None:
            valid = ("action_required", "cancelled", "failure", "neutral", "success", "skipped", "stale", "timed_out")
            if conclusion not in valid:
                raise _invalid("CheckRun", "conclusion", "invalid")
            run.conclusion, run.status = conclusion, "completed"
        if run.status == "completed":
            if run.conclusion is None:
                raise _invalid("CheckRun", "conclusion", "missing_field")
            run.completed_at = run.completed_at or _stamp()
        elif status is not None:
            run.conclusion = run.completed_at = None
        if data.get("output") is not None:
            run.output = self.check_output(data["output"])

    @staticmethod
    def check_output(output: Any) -> dict[str, str | None]:
        if not isinstance(output, dict) or not output.get("title") or not output.get("summary"):
            raise _invalid("CheckRun", "output", "missing_field", "output needs a title and a summary")
        for key in ("summary", "text"):
            value = output.get(key)
            if isinstance(value, str) and len(value) > CHECK_OUTPUT_LIMIT:
                raise GitHubError(
                    422,
                    f"Invalid request.\n\nOnly {CHECK_OUTPUT_LIMIT} characters are allowed; {len(value)} were"
                    " supplied.",
                )
        return {key: output.get(key) for key in ("title", "summary", "text")}

    def get_check_run(self, call: _Call) -> _Reply:
        repo = self.visible_repo(call)
        return _Reply(call.view.check_run(repo, _found(repo.check_runs.get(call.number("check_run_id")))))

    def create_check_run(self, call: _Call) -> _Reply:
        repo = self.visible_repo(call)
        app = self.check_app(call, repo)
        data = call.fields()
        if not data.get("name"):
            raise _invalid("CheckRun", "name", "missing_field")
        head = repo.resolve(str(data.get("head_sha") or ""))
        if head is None:
            raise GitHubError(422, f"No commit found for SHA: {data.get('head_sha')}")
        suite = next(
            (run.suite_id for run in repo.check_runs.values() if run.head_sha == head.sha and run.app == app),
            next(self.ids),
        )
        run = _CheckRun(
            next(self.ids),
            suite,
            head.sha,
            str(data["name"]),
            app,
            "queued",
            None,
            None,
            "",
            _stamp(),
            None,
            {"title": None, "summary": None, "text": None},
        )
        self.apply_check_fields(run, data)
        repo.check_runs[run.id] = run
        return _created(call.view.check_run(repo, run))

    def update_check_run(self, call: _Call) -> _Reply:
        repo = self.visible_repo(call)
        run = _found(repo.check_runs.get(call.number("check_run_id")))
        if self.check_app(call, repo) != run.app:
            raise GitHubError(
                403, "Invalid app_id `0` - check run can only be modified by the GitHub App that created it."
            )
        self.apply_check_fields(run, call.fields())
        return _Reply(call.view.check_run(repo, run))

    def commit_check_runs(self, call: _Call) -> _Reply:
        repo, commit = self.commit_of(call)
        runs = [run for run in repo.check_runs.values() if run.head_sha == commit.sha]
        if call.query("filter", "latest") == "latest":
            latest: dict[str, _CheckRun] = {}
            for run in runs:
                latest[run.name] = run
            runs = list(latest.values())
        name, status = call.query("check_name"), call.query("status")
        runs = [run for run in runs if (name is None or run.name == name) and (status is None or run.status == status)]
        runs.sort(key=lambda run: run.id, reverse=True)
        page, headers = call.page(runs)
        body = {"total_count": len(runs), "check_runs": [call.view.check_run(repo, run) for run in page]}
        return _Reply(body, headers=headers)

    # -- organizations and teams

    def get_org(self, call: _Call) -> _Reply:
        org = call.param("org")
        if org not in self.accounts or self.accounts[org].type != "Organization":
            raise _not_found()
        return _Reply(call.view.organization(org))

    def team_of(self, call: _Call) -> _Team:
        if "team_slug" in call.request.path_params:
            team = self.team(call.param("org"), call.param("team_slug"))
        else:
            team = self.team_by_id(call.number("org_id"), call.number("team_id"))
        self.org_visible(call, team.org)
        return team

    def get_team(self, call: _Call) -> _Reply:
        return _Reply(call.view.team(self.team_of(call), full=True))

    def team_membership(self, call: _Call) -> _Reply:
        team = self.team_of(call)
        login = call.param("username")
        role = _found(team.members.get(login))
        return _Reply({"url": f"{call.view.team_url(team)}/memberships/{login}", "role": role, "state": "active"})

    def team_members(self, call: _Call) -> _Reply:
        team = self.team_of(call)
        role = call.query("role", "all")
        members = [login for login, member in team.members.items() if role in ("all", member)]
        page, headers = call.page(members)
        return _Reply([call.view.user(login) for login in page], headers=headers)

    # -- repository settings: branch protection, rulesets, environments, app installations

    def branch_protection(self, call: _Call) -> _Reply:
        repo = self.visible_repo(call)
        self.require(call, repo, "admin")
        branch = call.param("branch")
        settings = repo.protection.get(branch)
        if settings is None:
            raise GitHubError(404, "Branch not protected")
        url = f"{call.view.repo_url(repo)}/branches/{quote(branch, safe='')}/protection"
        checks = list(settings["checks"])
        data: dict[str, Any] = {
            "url": url,
            "required_status_checks": {
                "url": f"{url}/required_status_checks",
                "strict": True,
                "contexts": checks,
                "contexts_url": f"{url}/required_status_checks/contexts",
                "checks": [{"context": context, "app_id": None} for context in checks],
            },
            "enforce_admins": {"url": f"{url}/enforce_admins", "enabled": settings["enforce_admins"]},
            "required_linear_history": {"enabled": False},
            "allow_force_pushes": {"enabled": settings["force_pushes"]},
            "allow_deletions": {"enabled": settings["deletions"]},
            "block_creations": {"enabled": False},
            "required_conversation_resolution": {"enabled": False},
            "lock_branch": {"enabled": False},
            "allow_fork_syncing": {"enabled": False},
            "required_signatures": {"url": f"{url}/required_signatures", "enabled": False},
        }
        if settings["approvals"] is not None:
            data["required_pull_request_reviews"] = {
                "url": f"{url}/required_pull_request_reviews",
                "dismiss_stale_reviews": True,
                "require_code_owner_reviews": settings["code_owners"],
                "required_approving_review_count": settings["approvals"],
                "require_last_push_approval": False,
            }
        return _Reply(data)

    def branch_rules(self, call: _Call) -> _Reply:
        """``GET .../rules/branches/{branch}``: every rule of every active ruleset that targets the branch."""
        repo = self.visible_repo(call)
        branch = call.param("branch")
        rules = [
            {**rule, "ruleset_source_type": "Repository", "ruleset_source": repo.full_name, "ruleset_id": ruleset.id}
            for ruleset in repo.rulesets
            if branch in ruleset.branches
            for rule in ruleset.rules
        ]
        page, headers = call.page(rules)
        return _Reply(list(page), headers=headers)

    def get_ruleset(self, call: _Call) -> _Reply:
        repo = self.visible_repo(call)
        self.require(call, repo, "admin")
        ruleset = _found(next((r for r in repo.rulesets if r.id == call.number("ruleset_id")), None))
        return _Reply(
            {
                "id": ruleset.id,
                "name": ruleset.name,
                "target": "branch",
                "source_type": "Repository",
                "source": repo.full_name,
                "enforcement": "active",
                "bypass_actors": ruleset.bypass_actors,
                "conditions": {"ref_name": {"include": [f"refs/heads/{b}" for b in ruleset.branches], "exclude": []}},
                "rules": ruleset.rules,
                "node_id": _node_id("RRS", ruleset.id),
                "_links": {"self": {"href": f"{call.view.repo_url(repo)}/rulesets/{ruleset.id}"}},
            }
        )

    def environment_of(self, call: _Call, needed: Level = "read") -> tuple[_Repo, _Environment]:
        repo = self.visible_repo(call)
        self.require(call, repo, needed)
        environment = repo.environments.get(call.param("environment_name"))
        if environment is None:
            raise _not_found()
        return repo, environment

    def get_environment(self, call: _Call) -> _Reply:
        repo, environment = self.environment_of(call)
        url = f"{call.view.repo_url(repo)}/environments/{quote(environment.name, safe='')}"
        policy = None
        if environment.protected_branches or environment.branches is not None:
            policy = {
                "protected_branches": environment.protected_branches,
                "custom_branch_policies": environment.branches is not None,
            }
        return _Reply(
            {
                "id": environment.id,
                "node_id": _node_id("EN", environment.id),
                "name": environment.name,
                "url": url,
                "html_url": f"{call.view.repo_web(repo)}/deployments/activity_log?environments_filter={environment.name}",
                "created_at": environment.created_at,
                "updated_at": environment.created_at,
                "protection_rules": [],
                "deployment_branch_policy": policy,
            }
        )

    def branch_policies(self, call: _Call) -> _Reply:
        _, environment = self.environment_of(call)
        names = environment.branches or []
        page, headers = call.page(names)
        policies = [
            {"id": 100 + index, "node_id": _node_id("BP", 100 + index), "name": name, "type": "branch"}
            for index, name in enumerate(page)
        ]
        return _Reply({"total_count": len(names), "branch_policies": policies}, headers=headers)

    def environment_secrets(self, call: _Call) -> _Reply:
        _, environment = self.environment_of(call, "admin")
        names = sorted(environment.secrets)
        page, headers = call.page(names)
        secrets = [
            {"name": name, "created_at": environment.secrets[name], "updated_at": environment.secrets[name]}
            for name in page
        ]
        return _Reply({"total_count": len(names), "secrets": secrets}, headers=headers)

    def environment_variables(self, call: _Call) -> _Reply:
        _, environment = self.environment_of(call, "admin")
        names = sorted(environment.variables)
        page, headers = call.page(names)
        stamp = environment.created_at
        variables = [
            {"name": name, "value": environment.variables[name], "created_at": stamp, "updated_at": stamp}
            for name in page
        ]
        return _Reply({"total_count": len(names), "variables": variables}, headers=headers)

    def org_installations(self, call: _Call) -> _Reply:
        """``GET /orgs/{org}/installations``: for the organization's owners only, as on GitHub."""
        org = call.param("org")
        if org not in self.accounts or self.accounts[org].type != "Organization":
            raise _not_found()
        if call.caller is None:
            raise GitHubError(401, "Requires authentication")
        if call.caller.bot or call.caller.login not in self.org_owners.get(org, set()):
            raise GitHubError(403, "You must be an organization owner to list its installations.")
        installations = self.installations.get(org, [])
        page, headers = call.page(installations)
        rendered = [self.installation(call, org, item) for item in page]
        return _Reply({"total_count": len(installations), "installations": rendered}, headers=headers)

    def installation(self, call: _Call, org: str, item: Mapping[str, Any]) -> dict[str, Any]:
        web, api = call.view.web, call.view.api
        return {
            "id": item["id"],
            "account": call.view.user(org),
            "repository_selection": item["repository_selection"],
            "access_tokens_url": f"{api}/app/installations/{item['id']}/access_tokens",
            "repositories_url": f"{api}/installation/repositories",
            "html_url": f"{web}/organizations/{org}/settings/installations/{item['id']}",
            "app_id": item["app_id"],
            "client_id": f"Iv1.{fake_sha('app', item['slug'])[:16]}",
            "target_id": self.accounts[org].id,
            "target_type": "Organization",
            "permissions": dict(item["permissions"]),
            "events": [],
            "created_at": item["created_at"],
            "updated_at": item["created_at"],
            "single_file_name": None,
            "has_multiple_single_files": False,
            "single_file_paths": [],
            "app_slug": item["slug"],
            "suspended_by": None,
            "suspended_at": None,
            "contact_email": None,
        }

    # -- wiring

    def respond(self, request: Request, body: bytes, handler: Callable[[_Call], _Reply], template: str) -> Response:
        web = str(request.base_url).rstrip("/")
        try:
            caller = self.caller(request)
            call = _Call(request, body, caller, _View(self, web + API_PREFIX, web, caller), self.settings.page_size)
            with self.lock:
                reply = handler(call)
        except GitHubError as error:
            reply = _Reply(error.body(), error.status)
        except Exception as exc:
            reply = self.internal_error(request, exc)
        try:
            self.corrupt(request.method, request.url.path, reply)
        except Exception as exc:
            reply = self.internal_error(request, exc)
        spec = self.settings.openapi
        if spec is not None:
            self.settings.validated += 1
            self.errors.extend(spec.validate_response(request.method, template, reply.status, reply.data))
        headers = {
            "X-GitHub-Media-Type": "github.v3; format=json",
            "X-GitHub-Request-Id": f"{len(self.requests):08X}",
            "X-RateLimit-Limit": "5000",
            "X-RateLimit-Remaining": str(max(5000 - len(self.requests) - 1, 0)),
            "X-RateLimit-Reset": str(int(time.time()) + 3600),
            "X-RateLimit-Used": str(len(self.requests) + 1),
            "X-RateLimit-Resource": "core",
            **reply.headers,
        }
        if reply.data is None:
            return Response(status_code=reply.status, headers=headers)
        content = json.dumps(reply.data)
        return Response(content, reply.status, headers, media_type="application/json; charset=utf-8")

    def graphql(self, request: Request, body: bytes) -> Response:
        """``POST /api/graphql``, answering ``{ viewer { login } }`` (also as ``query [Name] { ... }``) as GitHub
        does: the token's login, a user's or a bot's (``GET /user`` is forbidden to app installations, this is not).
        Without a token: 401, as GitHub's GraphQL API answers. Any other query is one this server does not serve:
        recorded in ``unserved`` and answered with a GraphQL error."""
        try:
            caller = self.caller(request)
            if caller is None:
                raise GitHubError(401, "This endpoint requires you to be authenticated.")
            query = json.loads(body or b"{}").get("query")
        except GitHubError as error:
            return Response(json.dumps(error.body()), error.status, media_type="application/json; charset=utf-8")
        except (ValueError, AttributeError):
            return Response(json.dumps(GitHubError(400, "Problems parsing JSON").body()), 400)
        if isinstance(query, str) and _VIEWER_LOGIN.fullmatch(query):
            data: dict[str, Any] = {"data": {"viewer": {"login": caller.login}}}
        else:
            self.unserved.append(f"POST {GRAPHQL_PATH} {query!r}")
            data = {"errors": [{"message": "tests.servers.github answers only { viewer { login } }"}]}
        return Response(json.dumps(data), 200, media_type="application/json; charset=utf-8")

    def internal_error(self, request: Request, exc: Exception) -> _Reply:
        self.errors.append(f"{request.method} {request.url.path}\n{''.join(traceback.format_exception(exc))}")
        return _Reply({"message": f"Internal error in tests.servers.github: {exc!r}"}, 500)

    def corrupt(self, method: str, path: str, reply: _Reply) -> None:
        with self.lock:
            corruption = next(
                (
                    item
                    for item in self.corruptions
                    if item.fired < item.times
                    and item.method in ("*", method)
                    and re.search(item.path_regex, path.removeprefix(API_PREFIX))
                ),
                None,
            )
            if corruption is None:
                return
            corruption.fired += 1
        *parents, last = corruption.field_path.split(".")
        every_item = isinstance(reply.data, list) and not corruption.field_path.split(".")[0].isdigit()
        targets = reply.data if every_item else [reply.data]
        for item in targets:
            target = item
            for part in parents:
                target = target[int(part)] if isinstance(target, list) else target[part]
            if corruption.value is _REMOVE:
                target.pop(last, None)
            else:
                target[last] = corruption.value

    def not_served(self, request: Request) -> Response:
        description = f"{request.method} {request.url.path}"
        self.unserved.append(description)
        body = GitHubError(404, f"Not Found (tests.servers.github does not serve {description})").body()
        return Response(json.dumps(body), 404, media_type="application/json; charset=utf-8")

    def route(self, template: str, handlers: Mapping[str, Handler]) -> Route:
        """``template`` under ``/api/v3``, one handler per method; responses are checked against the description's
        operation for the template (or its ``SPEC_ALIASES`` form)."""
        plain = _CONVERTOR_RE.sub("}", template)

        async def endpoint(request: Request) -> Response:
            method = "GET" if request.method == "HEAD" else request.method
            spec = SPEC_ALIASES.get((method, plain), plain)
            body = await request.body()
            return await run_in_threadpool(self.respond, request, body, handlers[method], spec)

        return Route(API_PREFIX + template, endpoint, methods=list(handlers))

    def application(self) -> Starlette:
        repo = "/repos/{owner}/{repo}"
        pulls = repo + "/pulls/{pull_number:int}"
        issues = repo + "/issues/{issue_number:int}"
        commits = repo + "/commits/{ref:path}"
        team = "/orgs/{org}/teams/{team_slug}"
        legacy_team = "/organizations/{org_id:int}/team/{team_id:int}"
        environment = repo + "/environments/{environment_name}"
        endpoints: dict[str, dict[str, Handler]] = {
            "/user": {"GET": self.get_authenticated},
            "/users/{username}": {"GET": self.get_user},
            repo: {"GET": self.get_repo},
            repo + "/collaborators/{username}": {"GET": self.check_collaborator},
            repo + "/collaborators/{username}/permission": {"GET": self.collaborator_permission},
            repo + "/pulls": {"GET": self.list_pulls, "POST": self.create_pull},
            pulls: {"GET": self.get_pull, "PATCH": self.update_pull},
            pulls + "/files": {"GET": self.pull_files},
            pulls + "/commits": {"GET": self.pull_commits},
            pulls + "/reviews": {"GET": self.list_reviews, "POST": self.create_review},
            pulls + "/requested_reviewers": {"GET": self.requested_reviewers, "POST": self.request_reviewers},
            repo + "/issues": {"GET": self.list_issues, "POST": self.create_issue},
            repo + "/issues/comments/{comment_id:int}": {"GET": self.get_comment, "PATCH": self.update_comment},
            issues: {"GET": self.get_issue, "PATCH": self.update_issue},
            issues + "/labels": dict.fromkeys(("GET", "POST", "PUT"), self.issue_labels),
            issues + "/labels/{name}": {"DELETE": self.issue_labels},
            issues + "/comments": {"GET": self.list_comments, "POST": self.create_comment},
            repo + "/labels": {"GET": self.list_labels, "POST": self.create_label},
            repo + "/labels/{name}": {"GET": self.get_label},
            repo + "/statuses/{sha:path}": {"GET": self.list_statuses, "POST": self.create_status},
            commits + "/statuses": {"GET": self.list_statuses},
            commits + "/status": {"GET": self.combined_status},
            commits + "/check-runs": {"GET": self.commit_check_runs},
            repo + "/commits/{commit_sha}/pulls": {"GET": self.commit_pulls},
            commits: {"GET": self.get_commit},
            repo + "/check-runs": {"POST": self.create_check_run},
            repo + "/check-runs/{check_run_id:int}": {"GET": self.get_check_run, "PATCH": self.update_check_run},
            "/orgs/{org}": {"GET": self.get_org},
            team: {"GET": self.get_team},
            team + "/memberships/{username}": {"GET": self.team_membership},
            team + "/members": {"GET": self.team_members},
            legacy_team: {"GET": self.get_team},
            legacy_team + "/memberships/{username}": {"GET": self.team_membership},
            legacy_team + "/members": {"GET": self.team_members},
            repo + "/branches/{branch:path}/protection": {"GET": self.branch_protection},
            repo + "/rules/branches/{branch:path}": {"GET": self.branch_rules},
            repo + "/rulesets/{ruleset_id:int}": {"GET": self.get_ruleset},
            environment: {"GET": self.get_environment},
            environment + "/deployment-branch-policies": {"GET": self.branch_policies},
            environment + "/secrets": {"GET": self.environment_secrets},
            environment + "/variables": {"GET": self.environment_variables},
            "/orgs/{org}/installations": {"GET": self.org_installations},
        }

        async def not_served(request: Request) -> Response:
            return self.not_served(request)

        async def git_push(request: Request) -> Response:
            """What GitHub learns from a ``git push``: a branch at a commit, whose author and committer it links to
            accounts by e-mail (called by a test remote's hook)."""
            pushed = await request.json()
            server = cast("GitHubServer", self.settings)
            head = {"sha": pushed["sha"]}
            if "author_email" in pushed:
                head |= {
                    "author_login": server.login_of(pushed["author_email"]),
                    "committer_login": server.login_of(pushed["committer_email"]),
                    "author_name": pushed["author_name"],
                    "author_email": pushed["author_email"],
                }
            await run_in_threadpool(server.add_branch, pushed["repo"], pushed["branch"], pushed["sha"], commits=[head])
            return Response(status_code=204)

        async def graphql(request: Request) -> Response:
            body = await request.body()
            return await run_in_threadpool(self.graphql, request, body)

        routes = [self.route(template, handlers) for template, handlers in endpoints.items()]
        routes.append(Route(GRAPHQL_PATH, graphql, methods=["POST"]))
        pushes = Route(GIT_PUSH, git_push, methods=["POST"])
        return Starlette(routes=[*routes, pushes, Route("/{path:path}", not_served, methods=HTTP_METHODS)])


# -- The server -------------------------------------------------------------------------------------------------------

_UVICORN_OPTIONS: dict[str, Any] = {
    "ws": "none",
    "lifespan": "off",
    "log_level": "warning",
    "access_log": False,
    "log_config": None,
    "timeout_graceful_shutdown": 2,
}


# Not GitHub's API: where a test git remote's post-receive hook reports pushed branches (see ``push_hook``).
GIT_PUSH: Final = "/_test/git-push"


def push_hook(server_url: str, repo: str) -> str:
    """A ``post-receive`` hook for a bare test remote: tells the server of every pushed branch, as GitHub knows."""
    return f"""#!/bin/sh
while read -r old new ref; do
  case "$ref" in refs/heads/*) ;; *) continue ;; esac
  people=$(git log -1 --format='"author_email": "%ae", "committer_email": "%ce", "author_name": "%an"' "$new")
  curl -sS -f -X POST -H 'Content-Type: application/json' \\
    -d "{{\\"repo\\": \\"{repo}\\", \\"branch\\": \\"${{ref#refs/heads/}}\\", \\"sha\\": \\"$new\\", $people}}" \\
    '{server_url}{GIT_PUSH}' >/dev/null
done
"""


@dataclass
class _Running:
    """An ASGI application served by uvicorn on 127.0.0.1 from a daemon thread."""

    server: _Server
    thread: threading.Thread
    sock: socket.socket

    @classmethod
    def launch(cls, app: Any, port: int, name: str) -> _Running:
        sock = _listening_socket(port)
        server = _Server(uvicorn.Config(app, http=_Protocol, **_UVICORN_OPTIONS))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=name, daemon=True)
        thread.start()
        deadline = time.monotonic() + 15
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.005)
        if not server.started:
            server.stop()
            sock.close()
            raise RuntimeError(f"the {name} did not start")
        return cls(server, thread, sock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def close(self) -> None:
        self.server.stop()
        self.thread.join(timeout=15)
        self.sock.close()


TokenSpec = str | Mapping[str, Any]


class GitHubServer:
    """A local GitHub for the real PyGithub client: ``github.Github(base_url=server.api_url, auth=...)``.

    ``tokens`` maps each token to a login, or to ``{"login": str, "repos": {"owner/name": level}}`` for a token
    limited to those repositories at those levels (``read``, ``triage``, ``write``, ``maintain``, ``admin``).
    ``openapi`` (a :class:`tests.servers.openapi.GitHubOpenAPI`) checks every response against GitHub's description
    and records violations in ``errors``. ``page_size`` caps every page of every list (GitHub's own default of 30
    and maximum of 100 apply below it). ``start()`` serves on 127.0.0.1 in a background thread.

    Observation: ``faults`` (:class:`tests.servers.hub.Faults`), ``requests`` (every request, a
    :class:`tests.servers.hub.RequestRecord`), ``unserved`` (``"METHOD /path"`` of requests no route matched,
    answered 404), ``errors`` (tracebacks of the server's own exceptions, answered 500, and every response that broke
    the OpenAPI description), ``validated`` (how many responses were checked). ``openapi`` and ``page_size`` may be
    changed at any time.
    """

    def __init__(
        self,
        tokens: Mapping[str, TokenSpec] | None = None,
        *,
        openapi: GitHubOpenAPI | None = None,
        page_size: int | None = None,
    ) -> None:
        self.openapi = openapi
        self.page_size = page_size
        self.validated = 0
        self._github = _GitHub(tokens or {}, self)
        self.faults: Faults = self._github.faults
        self.requests: list[RequestRecord] = self._github.requests
        self.unserved: list[str] = self._github.unserved
        self.errors: list[str] = self._github.errors
        self.app = _Instrumentation(self._github.application(), cast("_Hub", self._github))
        self._running: _Running | None = None

    # -- observation and control

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: where web pages would be (``html_url``)."""
        if self._running is None:
            raise RuntimeError("the GitHubServer is not started")
        return self._running.url

    @property
    def api_url(self) -> str:
        """``url + "/api/v3"``: the REST API, PyGithub's ``base_url`` (GitHub Enterprise Server's layout)."""
        return self.url + API_PREFIX

    def corrupt(self, method: str, path_regex: str, field_path: str, value: Any = _REMOVE, times: int = 1) -> None:
        """Break the next ``times`` responses to ``method`` on paths matching ``path_regex`` (``re.search``, below
        ``/api/v3``): set the dotted ``field_path`` (``"head.sha"``, ``"0.user"``; applied to every item of a list
        response) to ``value``, or remove it. For tests of the OpenAPI check itself."""
        re.compile(path_regex)
        with self._github.lock:
            self._github.corruptions.append(_Corruption(method.upper(), path_regex, field_path, value, times))

    # -- lifecycle

    def start(self, port: int = 0) -> Self:
        if self._running is not None:
            raise RuntimeError("the GitHubServer is already started")
        self._running = _Running.launch(self.app, port, "github-server")
        return self

    def stop(self) -> None:
        running, self._running = self._running, None
        if running is not None:
            running.close()

    def __enter__(self) -> Self:
        return self if self._running is not None else self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- direct state, as if someone used GitHub in a browser or pushed with git

    def _repo(self, full_name: str) -> _Repo:
        owner, _, name = full_name.partition("/")
        try:
            return self._github.repo(owner, name)
        except GitHubError:
            raise KeyError(f"no repository {full_name!r} on this server") from None

    def _pull(self, full_name: str, number: int) -> tuple[_Repo, _Issue, _Pull]:
        repo = self._repo(full_name)
        issue = repo.issues.get(number)
        if issue is None or issue.pull is None:
            raise KeyError(f"no pull request {full_name}#{number} on this server")
        return repo, issue, issue.pull

    def add_token(self, token: str, spec: TokenSpec) -> None:
        with self._github.lock:
            self._github.add_token(token, spec)

    def add_user(
        self,
        login: str,
        type: Literal["User", "Bot"] | None = None,
        *,
        name: str | None = None,
        email: str | None = None,
    ) -> None:
        """A user, or a bot (``type="Bot"``, the default for logins ending in ``[bot]``)."""
        if (type == "Bot") != login.endswith("[bot]") and type is not None:
            raise ValueError(f"GitHub's bots, and only they, have logins ending in [bot]: {login!r} as {type}")
        with self._github.lock:
            account = self._github.account(login, type)
            account.name = name if name is not None else account.name
            account.email = email if email is not None else account.email

    def login_of(self, email: str) -> str | None:
        """The account GitHub links a commit's e-mail to: a user's verified e-mail, or their noreply address
        ``ID+login@users.noreply.github.com`` (the ID-less form belongs to accounts older than July 2017, which
        this server has none of); None for any other."""
        with self._github.lock:
            local, _, domain = email.partition("@")
            if domain == "users.noreply.github.com":
                number, _, login = local.partition("+")
                account = self._github.accounts.get(login)
                return login if account is not None and str(account.id) == number else None
            return next((a.login for a in self._github.accounts.values() if a.email == email), None)

    def add_org(self, login: str, name: str | None = None) -> None:
        with self._github.lock:
            self._github.account(login, "Organization").name = name or login
            self._github.org_teams.setdefault(login, {})

    def add_team(
        self,
        org: str,
        slug: str,
        members: Iterable[str],
        *,
        maintainers: Iterable[str] = (),
        name: str | None = None,
        description: str | None = None,
    ) -> int:
        """A team of ``org`` (created if needed), with its members and maintainers; its id."""
        with self._github.lock:
            self.add_org(org)
            roles: dict[str, Literal["member", "maintainer"]] = dict.fromkeys(members, "member")
            roles.update(dict.fromkeys(maintainers, "maintainer"))
            for login in roles:
                self._github.account(login)
            team = _Team(next(self._github.ids), org, slug, name or slug, description, roles, _stamp())
            self._github.org_teams[org][slug] = team
            return team.id

    def add_repo(
        self,
        full_name: str,
        default_branch: str = "main",
        *,
        private: bool = True,
        description: str | None = None,
        collaborators: Mapping[str, Level] | None = None,
    ) -> str:
        """A repository with GitHub's default labels and one commit on ``default_branch``; that commit's id.

        An owner not seen before is created as an organization."""
        owner, _, name = full_name.partition("/")
        with self._github.lock:
            if full_name.lower() in self._github.repos:
                raise ValueError(f"{full_name} already exists")
            if owner not in self._github.accounts:
                self.add_org(owner)
            now = _stamp()
            repo = _Repo(next(self._github.ids), owner, name, default_branch, private, description, now)
            for label_name, color, text in DEFAULT_LABELS:
                repo.labels[label_name] = _Label(next(self._github.ids), label_name, color, text, True)
            initial = fake_sha("initial", full_name)
            self._github.add_commit(repo, initial, message="Initial commit", author_name=owner)
            repo.branches[default_branch] = _Branch(default_branch, initial, [], [])
            repo.history[default_branch] = {initial}
            self._github.repos[full_name.lower()] = repo
            for login, level in (collaborators or {}).items():
                self.add_collaborator(full_name, login, level)
            return initial

    def add_fork(self, source: str, full_name: str, *, exist_ok: bool = False) -> None:
        """``full_name`` (``owner/name``, its owner a user) forks ``source``: its default branch at the source's, and
        its visibility (a fork of a private repository is private, readable by those who can read the source).
        With ``exist_ok``, a fork of ``source`` already there is left as it is."""
        parent = self._repo(source)
        with self._github.lock:
            existing = self._github.repos.get(full_name.lower())
            if existing is not None and exist_ok and existing.fork_of == parent.full_name:
                return
            self.add_repo(full_name, parent.default_branch, private=parent.private, description=parent.description)
            fork = self._repo(full_name)
            fork.fork_of = parent.full_name
            tip = parent.branches[parent.default_branch].sha
            fork.commits.setdefault(tip, parent.commits[tip])
            fork.branches[fork.default_branch] = _Branch(fork.default_branch, tip, [], [])
            fork.history[fork.default_branch] = set(parent.history[parent.default_branch])
            for login, level in parent.collaborators.items():
                fork.collaborators.setdefault(login, "read" if _level(level) else "none")

    def add_collaborator(self, repo: str, login: str, permission: Level = "write") -> None:
        _level(permission)
        with self._github.lock:
            self._github.account(login)
            self._repo(repo).collaborators[login] = permission

    def add_branch(
        self,
        repo: str,
        name: str,
        sha: str,
        *,
        commits: Sequence[Mapping[str, Any]] | None = None,
        files: Iterable[str | Mapping[str, Any]] = (),
        base: str | None = None,
    ) -> None:
        """Push branch ``name`` at ``sha``, ``commits`` ahead of ``base`` (default branch) changing ``files``.

        Each commit is ``{"sha", "author_login", "committer_login", "message", "files"}`` (only ``sha`` needed;
        without a login, the commit is not linked to a GitHub user); ``commits`` must end with ``sha``, and
        default to that one commit."""
        target = self._repo(repo)
        with self._github.lock:
            base_branch = target.branches[base or target.default_branch]
            listed = [dict(commit) for commit in commits] if commits else [{"sha": sha}]
            if listed[-1]["sha"] != sha:
                raise ValueError(f"the commits of branch {name} must end with its head {sha}")
            parent = base_branch.sha
            for details in listed:
                commit_sha = details.pop("sha")
                if commit_sha not in target.commits:
                    self._github.add_commit(target, commit_sha, parents=[parent], **details)
                parent = commit_sha
                details["sha"] = commit_sha
            shas = [details["sha"] for details in listed]
            target.branches[name] = _Branch(name, sha, shas, [_file_entry(entry) for entry in files])
            target.history[name] = target.history[base_branch.name] | set(shas)

    def add_pull(
        self,
        repo: str,
        number: int | None = None,
        *,
        title: str,
        head_ref: str,
        head_sha: str,
        user: str,
        base_ref: str | None = None,
        body: str | None = "",
        files: Iterable[str | Mapping[str, Any]] = (),
        commits: Sequence[Mapping[str, Any]] | None = None,
        labels: Iterable[str] = (),
        draft: bool = False,
        merged: bool = False,
        merge_commit_sha: str | None = None,
        head_repo: str | None = None,
    ) -> int:
        """An open pull request from branch ``head_ref`` (pushed at ``head_sha`` with ``commits`` and ``files``, see
        ``add_branch``; commits default to one by ``user``), merged at once with ``merged``; its number.

        ``head_repo`` (``owner/name``, made with :meth:`add_fork`): the branch is pushed to that fork, and the pull
        request is one from a fork."""
        target = self._repo(repo)
        base = base_ref or target.default_branch
        with self._github.lock:
            default = [{"sha": head_sha, "author_login": user, "committer_login": user}]
            pushed_to = head_repo or repo
            fork_base = None if head_repo is None else self._repo(head_repo).default_branch
            self.add_branch(
                pushed_to, head_ref, head_sha, commits=commits or default, files=files, base=fork_base or base
            )
            created = self._github.new_pull(
                target,
                number=number,
                head_repo=None if head_repo is None else self._repo(head_repo),
                title=title,
                head_ref=head_ref,
                base_ref=base,
                user=user,
                body=body,
                draft=draft,
            )
            target.issues[created].labels = self._github.ensure_labels(target, labels)
        if merged or merge_commit_sha is not None:
            self.merge(repo, created, merge_commit_sha)
        return created

    def set_head(
        self,
        repo: str,
        number: int,
        sha: str,
        *,
        author_login: str | None = None,
        message: str | None = None,
        files: Iterable[str | Mapping[str, Any]] | None = None,
    ) -> None:
        """A new commit ``sha`` pushed to the pull request's branch (``files``: its changed files from then on)."""
        target, issue, pull = self._pull(repo, number)
        with self._github.lock:
            login = author_login or issue.user
            source = self._github.head_repo(target, pull)
            commit = self._github.add_commit(
                source, sha, parents=[pull.head_sha], author_login=login, message=message or f"Update {sha[:7]}"
            )
            target.commits[sha] = commit
            pull.head_sha = sha
            pull.commits.append(sha)
            if files is not None:
                pull.files = [_file_entry(entry) for entry in files]
            branch = source.branches[pull.head_ref]
            branch.sha, branch.commits, branch.files = sha, list(pull.commits), list(pull.files)
            source.history[pull.head_ref].add(sha)
            issue.updated_at = _stamp()

    def add_review(
        self,
        repo: str,
        number: int,
        user: str,
        state: ReviewState = "APPROVED",
        *,
        commit_id: str | None = None,
        body: str = "",
        submitted_at: str | None = None,
    ) -> int:
        """A review submitted by ``user`` on ``commit_id`` (default: the current head); its id."""
        target, issue, pull = self._pull(repo, number)
        with self._github.lock:
            if (commit_id or pull.head_sha) not in target.commits:
                raise ValueError(f"no commit {commit_id} in {repo}")
            review = self._github.new_review(
                issue, user, state, body=body, commit_id=commit_id or pull.head_sha, submitted_at=submitted_at
            )
            return review.id

    def merge(
        self, repo: str, number: int, merge_commit_sha: str | None = None, *, merged_by: str | None = None
    ) -> str:
        """Merge the pull request into its base branch with a merge commit (``merge_commit_sha``); that commit's id."""
        target, issue, pull = self._pull(repo, number)
        with self._github.lock:
            if pull.merged_at is not None:
                raise ValueError(f"{repo}#{number} is already merged")
            base = target.branches[pull.base_ref]
            sha = merge_commit_sha or fake_sha("merge", repo, number, pull.head_sha)
            merger = merged_by or issue.user
            head_owner = self._github.head_repo(target, pull).owner
            message = f"Merge pull request #{number} from {head_owner}/{pull.head_ref}\n\n{issue.title}"
            self._github.add_commit(
                target, sha, parents=[base.sha, pull.head_sha], author_login=merger, message=message, files=pull.files
            )
            base.sha = sha
            target.history[base.name] |= {*pull.commits, sha}
            now = _stamp()
            pull.merged_at, pull.merged_by, pull.merge_commit_sha = now, merger, sha
            issue.state, issue.closed_at, issue.closed_by, issue.updated_at = "closed", now, merger, now
            return sha

    # -- repository settings, as an admin sets them in the web interface

    def protect_branch(
        self,
        repo: str,
        branch: str,
        *,
        checks: Iterable[str] = ("regops/approvals",),
        approvals: int | None = 1,
        code_owners: bool = True,
        enforce_admins: bool = True,
        force_pushes: bool = False,
        deletions: bool = False,
    ) -> None:
        """Classic branch protection on ``branch``: required status ``checks``, a pull request with ``approvals``
        approving reviews (None: no pull request required), and whether admins are held to it."""
        settings = {
            "checks": list(checks),
            "approvals": approvals,
            "code_owners": code_owners,
            "enforce_admins": enforce_admins,
            "force_pushes": force_pushes,
            "deletions": deletions,
        }
        with self._github.lock:
            self._repo(repo).protection[branch] = settings

    def add_ruleset(
        self,
        repo: str,
        name: str,
        branches: Iterable[str],
        rules: Iterable[Mapping[str, Any]],
        *,
        bypass_actors: Iterable[Mapping[str, Any]] = (),
    ) -> int:
        """An active branch ruleset targeting ``branches``, with GitHub's rule objects (``{"type", "parameters"}``)
        and who may bypass it (``{"actor_id", "actor_type", "bypass_mode"}``); its id."""
        with self._github.lock:
            target = self._repo(repo)
            ruleset = _Ruleset(
                next(self._github.ids),
                name,
                list(branches),
                [dict(rule) for rule in rules],
                [dict(actor) for actor in bypass_actors],
            )
            target.rulesets.append(ruleset)
            return ruleset.id

    def add_environment(
        self,
        repo: str,
        name: str,
        *,
        branches: Iterable[str] | None = None,
        protected_branches: bool = False,
        secrets: Iterable[str] = (),
        variables: Mapping[str, str] | None = None,
    ) -> None:
        """A deployment environment: deployable from the ``branches`` named (a custom policy), from protected
        branches, or (neither) from any branch; with its secrets (names) and variables."""
        with self._github.lock:
            now = _stamp()
            self._repo(repo).environments[name] = _Environment(
                next(self._github.ids),
                name,
                now,
                protected_branches,
                None if branches is None else list(branches),
                dict.fromkeys(secrets, now),
                dict(variables or {}),
            )

    def add_org_owner(self, org: str, login: str) -> None:
        with self._github.lock:
            self.add_org(org)
            self._github.account(login)
            self._github.org_owners.setdefault(org, set()).add(login)

    def install_app(
        self, org: str, slug: str, permissions: Mapping[str, str], *, repository_selection: str = "all"
    ) -> None:
        """The GitHub App ``slug`` (whose bot is ``<slug>[bot]``) installed on ``org`` with ``permissions``."""
        with self._github.lock:
            self.add_org(org)
            app = self._github.account(f"{slug}[bot]")
            item = {
                "id": next(self._github.ids),
                "app_id": app.id,
                "slug": slug,
                "permissions": {"metadata": "read", **permissions},
                "repository_selection": repository_selection,
                "created_at": _stamp(),
            }
            self._github.installations.setdefault(org, []).append(item)

    # -- reading state back

    def comments(self, repo: str, number: int) -> list[tuple[str, str]]:
        """``(login, body)`` of the comments on issue or pull request ``number``, oldest first."""
        with self._github.lock:
            return [(c.user, c.body) for c in self._repo(repo).comments.values() if c.number == number]

    def labels(self, repo: str, number: int) -> list[str]:
        with self._github.lock:
            issue = self._repo(repo).issues.get(number)
            if issue is None:
                raise KeyError(f"no issue {repo}#{number} on this server")
            return list(issue.labels)

    def reviewers(self, repo: str, number: int) -> tuple[list[str], list[str]]:
        """The requested reviewers of a pull request: logins and team slugs."""
        with self._github.lock:
            _, _, pull = self._pull(repo, number)
            return list(pull.reviewers), list(pull.team_reviewers)

    def statuses(self, repo: str, sha: str) -> list[dict[str, Any]]:
        """The statuses of commit ``sha``, oldest first: context, state, description, target_url, creator."""
        with self._github.lock:
            return [
                {key: getattr(s, key) for key in ("context", "state", "description", "target_url", "creator")}
                for s in self._repo(repo).statuses
                if s.sha == sha
            ]

    def check_runs(self, repo: str, sha: str) -> list[dict[str, Any]]:
        """The check runs of commit ``sha``, oldest first: name, app, status, conclusion, output."""
        with self._github.lock:
            return [
                {"name": r.name, "app": r.app, "status": r.status, "conclusion": r.conclusion, "output": dict(r.output)}
                for r in self._repo(repo).check_runs.values()
                if r.head_sha == sha
            ]
