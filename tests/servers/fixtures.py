"""Pytest fixtures around ``tests.servers.hub``: a fresh local Hugging Face Hub per test.

Load them with ``pytest_plugins = ["tests.servers.fixtures"]`` in the root conftest, or import ``hub_server_fixture``
(the fixture named ``hub_server``) into a test module. ``hub_server`` is a started :class:`HubFixture` rooted in the
test's ``tmp_path``, with three tokens: ``write_token`` (user ``alice``, member of org ``acme-ml``), ``read_token``
(user ``bob`` in ``acme-ml``, read-only) and ``mallory_token`` (user ``mallory``, no organization, write). At
teardown the test fails if the client called an endpoint the server does not serve, or if the server itself raised.
Loaded as a plugin, this module also makes the tests that use ``hub_server`` ignore the one deprecation warning the
client raises on every LFS upload (``CLIENT_WARNING_FILTERS``); a test module that imports the fixture instead applies
those filters itself (``pytestmark``).

``huggingface_hub`` reads its environment once, at import: this module sets ``HF_HUB_DISABLE_XET=1`` (the server
speaks git-LFS, not Xet), ``HF_HUB_DISABLE_TELEMETRY=1`` and ``HF_HUB_DISABLE_PROGRESS_BARS=1`` before importing it.
As something may have imported the client earlier, the fixture also sets the first two on
``huggingface_hub.constants``, points ``HF_HOME``, the caches and the token file inside ``tmp_path`` (environment and
constants), and adds 127.0.0.1 to the hosts the client recognizes as a Hub (as ``HF_ENDPOINT`` set at import would).
That is configuration: the client's code and its HTTP traffic are untouched.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_DISABLE_XET", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pytest
from huggingface_hub import HfApi, constants

from tests.servers.hub import HubServer

# Warnings the client itself raises on the calls the Hub backend makes: httpx2 deprecates ``data=<file>`` for raw
# bodies, and huggingface_hub's LFS upload (lfs.py, ``http_backoff("PUT", url, data=fileobj)``) still passes it on
# every non-Xet upload. Tests using ``hub_server`` ignore exactly these (the project turns warnings into errors).
CLIENT_WARNING_FILTERS = ("ignore:Use 'content=<...>' to upload raw bytes/text content:DeprecationWarning",)

USER = "alice"
ORG = "acme-ml"
WRITE_TOKEN = "hf_test_alice_write"
READ_TOKEN = "hf_test_bob_read"
MALLORY_TOKEN = "hf_test_mallory_write"
DEFAULT_TOKENS: dict[str, dict[str, Any]] = {
    WRITE_TOKEN: {"user": USER, "orgs": [ORG], "role": "write"},
    READ_TOKEN: {"user": "bob", "orgs": [ORG], "role": "read"},
    MALLORY_TOKEN: {"user": "mallory", "orgs": [], "role": "write"},
}


class HubFixture(HubServer):
    """A :class:`HubServer` with the default token table, and an ``HfApi`` factory pointed at it."""

    user = USER
    org = ORG
    write_token = WRITE_TOKEN
    read_token = READ_TOKEN
    mallory_token = MALLORY_TOKEN

    def api(self, token: str | Literal[False] | None = None) -> HfApi:
        """The real client on this server; ``token`` defaults to ``write_token``, ``False`` sends none."""
        return HfApi(endpoint=self.url, token=self.write_token if token is None else token)


def _isolate_client(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The client's configuration for a test: no Xet, no telemetry, HF_HOME, caches and token file in ``home``."""
    paths = {
        "HF_HOME": home,
        "HF_HUB_CACHE": home / "hub",
        "HF_ASSETS_CACHE": home / "assets",
        "HF_XET_CACHE": home / "xet",
        "HF_TOKEN_PATH": home / "token",
        "HF_STORED_TOKENS_PATH": home / "stored_tokens",
    }
    for name, path in paths.items():
        monkeypatch.setenv(name, str(path))
        monkeypatch.setattr(constants, name, str(path))
    for name in ("HF_HUB_DISABLE_XET", "HF_HUB_DISABLE_TELEMETRY"):
        monkeypatch.setenv(name, "1")
        monkeypatch.setattr(constants, name, True)
    for name in ("HF_TOKEN", "HF_HUB_OFFLINE", "HF_HUB_ENABLE_HF_TRANSFER"):
        monkeypatch.delenv(name, raising=False)
    # The hosts the client parses web URLs of: what HF_ENDPOINT=http://127.0.0.1:PORT at import would add. Needed
    # where the client builds a RepoUrl without its endpoint (create_repo(exist_ok=True) after a 401/403).
    monkeypatch.setattr(constants, "HF_URL_HOSTS", constants.HF_URL_HOSTS | {"127.0.0.1"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that use ``hub_server`` ignore the client's own warnings listed in ``CLIENT_WARNING_FILTERS``."""
    for item in items:
        if "hub_server" in getattr(item, "fixturenames", ()):
            for spec in CLIENT_WARNING_FILTERS:
                item.add_marker(pytest.mark.filterwarnings(spec))


@pytest.fixture(name="hub_server")
def hub_server_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubFixture]:
    """A local Hub for this test; fails the test at teardown on unserved endpoints or server errors."""
    _isolate_client(tmp_path / "hf-home", monkeypatch)
    with HubFixture(tmp_path / "hub", DEFAULT_TOKENS) as server:
        yield server
    problems: list[str] = []
    if server.unserved:
        problems.append("the client called endpoints this server does not serve: " + ", ".join(server.unserved))
    if server.errors:
        problems.append("the server failed internally:\n" + "\n".join(server.errors))
    if problems:
        pytest.fail("\n".join(problems))
