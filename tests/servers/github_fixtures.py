"""Pytest fixtures around ``tests.servers.github``: a fresh local GitHub per test, checked against GitHub's OpenAPI.

Load them with ``pytest_plugins = ["tests.servers.github_fixtures"]`` in the root conftest, or import
``github_server_fixture`` (the fixture named ``github_server``) into a test module. ``github_server`` is a started
:class:`GitHubFixture` with:

- users ``alice``, ``bob``, ``carol`` and ``mallory`` (e-mail ``<login>@example.com``, which links commits), and the bot ``regops-app[bot]`` (a GitHub App);
- the organization ``acme``, its team ``ml`` (alice and bob);
- the private repository ``acme/models`` (default branch ``main``): alice, bob and carol collaborate with write
  access, mallory with read access;
- tokens, as attributes: ``app_token`` (the bot; an installation token granted write on ``acme/models`` only),
  ``alice_token``, ``bob_token``, ``carol_token``, ``mallory_token`` (classic tokens: their user's own access) and
  ``alice_read_token`` (a fine-grained token of alice's, read-only on ``acme/models``);
- every page of every list capped at ``PAGE_SIZE`` items, so that the client's pagination is always exercised
  (``github_server.page_size = None`` restores GitHub's sizes).

Every response is checked against GitHub's OpenAPI description (:mod:`tests.servers.openapi`); the description is
installed with npm once per machine (outside the repository) and parsed once per session. Without npm the checks
are off and :data:`OPENAPI_MISSING` says why. At teardown the test fails if the client called an endpoint the server
does not serve, if the server itself raised, or if a response broke the description.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from github import Auth, Github

from tests.servers import openapi
from tests.servers.github import GitHubServer, TokenSpec

ORG = "acme"
TEAM = "ml"
REPO = "acme/models"
APP = "regops-app[bot]"
PAGE_SIZE = 3
APP_TOKEN = "ghs_regops_app"
ALICE_TOKEN = "ghp_alice"
BOB_TOKEN = "ghp_bob"
CAROL_TOKEN = "ghp_carol"
MALLORY_TOKEN = "ghp_mallory"
ALICE_READ_TOKEN = "github_pat_alice_read"
DEFAULT_TOKENS: dict[str, TokenSpec] = {
    APP_TOKEN: {"login": APP, "repos": {REPO: "write"}},
    ALICE_TOKEN: "alice",
    BOB_TOKEN: "bob",
    CAROL_TOKEN: "carol",
    MALLORY_TOKEN: "mallory",
    ALICE_READ_TOKEN: {"login": "alice", "repos": {REPO: "read"}},
}


@dataclass(frozen=True)
class _Description:
    spec: openapi.GitHubOpenAPI | None
    missing: str = ""
    failure: str = ""


@functools.cache
def _openapi() -> _Description:
    """GitHub's description, installed and parsed once per session; or why there is none (tried once, too)."""
    try:
        return _Description(openapi.load())
    except openapi.SpecUnavailable as exc:
        return _Description(None, missing=str(exc))
    except (OSError, RuntimeError, ValueError) as exc:
        return _Description(None, failure=f"GitHub's OpenAPI description could not be installed or read: {exc}")


def openapi_missing() -> str:
    """Why responses are not checked against GitHub's OpenAPI description ("" when they are)."""
    return _openapi().missing


class GitHubFixture(GitHubServer):
    """A :class:`GitHubServer` with the default state and tokens, and a PyGithub factory pointed at it."""

    org = ORG
    team = TEAM
    repo = REPO
    bot = APP
    app_token = APP_TOKEN
    alice_token = ALICE_TOKEN
    bob_token = BOB_TOKEN
    carol_token = CAROL_TOKEN
    mallory_token = MALLORY_TOKEN
    alice_read_token = ALICE_READ_TOKEN

    def client(self, token: str | None = None, **options: Any) -> Github:
        """The real client on this server; ``token`` defaults to ``app_token``.

        PyGithub waits 0.25 s between requests and 1 s between writes by default; here it does not wait (pass
        ``seconds_between_requests``/``seconds_between_writes`` to override), nor retry (``retry``)."""
        settings: dict[str, Any] = {"seconds_between_requests": None, "seconds_between_writes": None, "retry": None}
        settings.update(options)
        return Github(base_url=self.api_url, auth=Auth.Token(token or self.app_token), **settings)


def seed(server: GitHubServer) -> None:
    """The default state described in this module's docstring."""
    for login in ("alice", "bob", "carol", "mallory"):
        server.add_user(login, name=login.capitalize(), email=f"{login}@example.com")
    server.add_user(APP)
    server.add_team(ORG, TEAM, ["alice", "bob"], name="ML")
    server.add_repo(REPO, description="Model registry", collaborators={"alice": "write", "bob": "write"})
    server.add_collaborator(REPO, "carol", "write")
    server.add_collaborator(REPO, "mallory", "read")


@pytest.fixture(name="github_server")
def github_server_fixture() -> Iterator[GitHubFixture]:
    """A local GitHub for this test; fails the test at teardown on unserved endpoints, server errors or responses
    that break GitHub's OpenAPI description."""
    description = _openapi()
    if description.failure:
        pytest.fail(description.failure)
    server = GitHubFixture(DEFAULT_TOKENS, openapi=description.spec, page_size=PAGE_SIZE)
    seed(server)
    with server:
        yield server
    findings = {
        "the client called endpoints this server does not serve": server.unserved,
        "the server failed, or broke GitHub's OpenAPI description": server.errors,
    }
    report = "\n".join(f"{title}:\n  " + "\n  ".join(items) for title, items in findings.items() if items)
    if report:
        pytest.fail(report)


@pytest.fixture
def gh(github_server: GitHubFixture, monkeypatch: pytest.MonkeyPatch) -> GitHubFixture:
    """regops pointed at the local GitHub as in a workflow: repository, API URL and the app's token from the
    environment."""
    monkeypatch.setenv("GITHUB_REPOSITORY", REPO)
    monkeypatch.setenv("GITHUB_API_URL", github_server.api_url)
    monkeypatch.setenv("GITHUB_TOKEN", github_server.app_token)
    return github_server
