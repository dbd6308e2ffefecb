"""Shared fixtures: an isolated HOME and cache, and a copy of the test registry to break."""

from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import json
import os
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from huggingface_hub import HfApi

    from tests.servers.hub import HubServer

pytest_plugins = ["tests.servers.fixtures", "tests.servers.github_fixtures", "tests.servers.prometheus"]

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).parent.parent
TMPFS = Path("/dev/shm")  # a memory-backed folder Linux offers every user


def pytest_configure(config: pytest.Config) -> None:
    """The tests' temporary folders on a tmpfs where there is one, unless ``--basetemp`` or the environment chose.

    regops syncs every file it writes (measured: ~29 s of the suite's time on disk); on a tmpfs that sync costs
    nothing, and regops' durability stays as it is. A run that passes removes its folders (pyproject.toml), as the
    tmpfs is memory; pytest keeps those of its last three that failed.
    Set in the controlling process only: xdist gives each worker a folder inside the controller's.
    """
    if (
        config.option.basetemp is None
        and not hasattr(config, "workerinput")
        and "PYTEST_DEBUG_TEMPROOT" not in os.environ
        and TMPFS.is_dir()
        and os.access(TMPFS, os.W_OK | os.X_OK)
    ):
        os.environ["PYTEST_DEBUG_TEMPROOT"] = str(TMPFS)  # where pytest's default basetemp goes (its own variable)


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: two workers per core. Much of a test's time is waiting (git and regops subprocesses, the local
    servers, Chromium, the racy window): measured on 2 cores, quiet, `pytest -m "not act"`: 2 workers 144 s, 3
    workers 122 s, 4 workers 116 s (the same ~205 s of CPU)."""
    return 2 * (os.cpu_count() or 1)


# The longest tests (measured: `pytest -m "not act" --durations=80`, each test's call, at w-suite-b 3ca1f84+), longest
# first. xdist's worksteal scheduler hands each worker one contiguous slice of the collection and idle workers steal
# from the ends of the others': each slice starting with its share of these keeps a long test from starting last and
# leaving a core idle.
LONG_TESTS = (
    "tests/test_schema.py::test_json_schema_and_pydantic_accept_and_reject_the_same_files",
    "tests/test_verdicts.py::test_warm_and_cold_report_the_same_problems",
    "tests/test_hub.py::test_register_promote_sync_drift_retention_restore_on_the_hub",
    "tests/test_incremental.py::test_the_pr_check_reports_what_the_full_check_reports_for_what_changed",
    "tests/test_canary_sequential.py::test_latency_canary_at_the_allowance_edge_fails_in_at_most_alpha_plus_1_percent",
    "tests/test_canary_check.py::test_a_prod_pr_whose_canary_failed_on_main_since_it_opened_fails_its_check",
    "tests/test_faults.py::test_two_downloads_into_one_dest",
    "tests/test_canary_sequential.py::test_a_gaussian_random_walk_crosses_the_boundary_in_at_most_alpha_of_runs",
    "tests/test_architecture.py::test_a_module_crossing_a_contract_breaks_it",
    "tests/test_lifecycle.py::test_register_shows_progress_on_a_terminal_and_none_in_ci",
    "tests/test_summary_queries.py::test_summary_fed_answers_equal_the_file_fed_ones_after_edits",
    "tests/test_summary_queries.py::test_the_text_table_from_the_columns_is_the_table_of_the_entries",
    "tests/test_site_browser.py::test_axe_finds_nothing_serious_on_any_kind_of_page",
    "tests/test_canary.py::test_twice_the_latency_quantile_fails",
    "tests/test_canary.py::test_identical_rates_fail_at_most_at_the_configured_rate",
    "tests/test_site_browser.py::test_every_page_loads_cleanly_and_every_link_resolves",
    "tests/test_canary.py::test_identical_latencies_fail_at_most_at_the_configured_rate",
    "tests/test_retention_faults.py::test_a_runner_lost_between_steps_leaves_main_retrievable_and_the_next_run_finishes",
    "tests/test_canary.py::test_more_rate_data_never_turns_a_fail_into_a_pass",
    "tests/test_retention_faults.py::test_retention_killed_at_each_step_loses_no_version_and_the_next_run_finishes",
    "tests/test_verdicts.py::test_a_timestamp_in_the_future_of_an_earlier_now_is_reported",
    "tests/test_lifecycle.py::test_the_whole_path_register_to_rollback_and_download_back_in_time",
    "tests/test_faults.py::test_killed_download_leaves_only_staging_and_resumes",
    "tests/test_faults.py::test_two_promotes_racing",
    "tests/test_canary.py::test_more_latency_data_never_turns_a_fail_into_a_pass",
    "tests/test_signing.py::test_register_promote_download_verify_with_a_key_on_the_hub",
    "tests/test_summary_queries.py::test_the_columns_answer_as_the_files_do",
    "tests/test_base.py::test_two_prod_changes_made_on_one_base_cannot_both_merge",
    "tests/test_canary_config.py::test_the_pr_step_reads_no_metrics_and_opens_the_pull_request_the_recorded_verdict",
    "tests/test_faults.py::test_downloads_racing_into_one_dest_never_report_a_bad_file",
    "tests/test_init.py::test_the_wheel_ships_the_pinned_workflows",
    "tests/test_branches.py::test_the_canary_refuses_a_branch_it_did_not_make_and_opens_its_pull_request_once_it_is",
)


def _rank(item: pytest.Item) -> int | None:
    """The place of ``item`` among :data:`LONG_TESTS` (a prefix of its node id), or None."""
    nodeid = item.nodeid  # a property pytest builds on each read: once per item, not once per entry
    return next((i for i, prefix in enumerate(LONG_TESTS) if nodeid.startswith(prefix)), None)


def _slice_sizes(total: int, workers: int) -> list[int]:
    """How worksteal first splits ``total`` tests over ``workers``: each gets the rest // workers still waiting."""
    sizes = []
    for waiting in range(workers, 0, -1):
        sizes.append((total - sum(sizes)) // waiting)
    return sizes


# Tests sharing a session fixture that costs seconds to set up in each worker that draws one of them: Chromium
# (tests/test_site_browser.py, ~1.5 s CPU and 4-9 s wall to launch, and the example site it builds).
TOGETHER = "tests/test_site_browser.py::"


@pytest.hookimpl(trylast=True)  # after ``-m``/``-k`` deselect: the slices are of the tests that run
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Each worker's slice starts with its round-robin share of the long tests; the last worker's then has the
    :data:`TOGETHER` tests (its long ones first), early in the slice, where worksteal (which takes a slice's tail)
    leaves them to it; everything else keeps its order."""
    workers = int(getattr(config, "workerinput", {}).get("workercount", 1))
    ranked = {id(item): rank for item in items if (rank := _rank(item)) is not None}
    together = [item for item in items if item.nodeid.startswith(TOGETHER)]
    together.sort(key=lambda item: ranked.get(id(item), len(LONG_TESTS)))
    grouped = {id(item) for item in together}
    long = sorted((it for it in items if id(it) in ranked and id(it) not in grouped), key=lambda it: ranked[id(it)])
    rest = iter([item for item in items if id(item) not in ranked and id(item) not in grouped])
    ordered: list[pytest.Item] = []
    for worker, size in enumerate(_slice_sizes(len(items), workers)):
        mine = long[worker::workers] + (together if worker == workers - 1 else [])
        ordered += mine + list(itertools.islice(rest, max(0, size - len(mine))))
    items[:] = ordered + list(rest)


@pytest.fixture(scope="session")
def git_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What ``git init`` copies into a new repository (GIT_TEMPLATE_DIR): git's own template (taken from a
    repository it makes) without its dozen sample hooks, which every test repository would otherwise write, copy
    and delete; hooks/ stays, empty, for the hooks tests add."""
    folder = tmp_path_factory.mktemp("git-template")
    quiet = os.environ | {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    subprocess.run(["git", "init", "-q", str(folder / "probe")], check=True, env=quiet)
    made, template = folder / "probe" / ".git", folder / "template"
    shutil.copytree(
        made, template, ignore=lambda where, _: ["HEAD", "config", "objects", "refs"] if where == str(made) else []
    )
    for sample in (template / "hooks").iterdir():
        sample.unlink()
    # Every repository a test makes (init, bare init, clone) starts with this config: no `git maintenance run --auto`
    # after each commit and no `gc --auto` after each push, about 700 processes a run that change nothing tested.
    (template / "config").write_text("[maintenance]\n\tauto = false\n[gc]\n\tauto = 0\n[receive]\n\tautogc = false\n")
    return template


@pytest.fixture(autouse=True)
def isolate(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, git_template: Path) -> None:
    """No test reads or writes the real HOME, cache or git config."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("GIT_TEMPLATE_DIR", str(git_template))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.delenv("REGOPS_CACHE_DIR", raising=False)
    monkeypatch.delenv("REGOPS_NO_CACHE", raising=False)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests may talk to 127.0.0.1 only."""
    real = socket.socket.connect

    def connect(self: socket.socket, address: object) -> None:
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and host not in ("127.0.0.1", "::1", "localhost") and self.family != socket.AF_UNIX:
            raise OSError(f"network access in tests is blocked: {address!r}")
        return real(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", connect)


@pytest.fixture
def closed_port() -> int:
    """A local port nothing listens on: a server that is down, or no network."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens on it once the socket is closed


class AgedPool:
    """Copies made in batches and aged past the racy window together: one wait per batch, not one per test.

    Each :meth:`take` hands out a copy no other test gets (its own folder, whose parent is its alone). ``make``
    builds a copy in the folder it is given; ``age`` waits until every copy of a batch is out of the window.
    """

    def __init__(
        self, folder: Path, make: Callable[[Path], Path], age: Callable[[list[Path]], None], batch: int = 8
    ) -> None:
        self.folder, self.make, self.age, self.batch = folder, make, age, batch
        self.made = itertools.count()
        self.ready: list[Path] = []

    def take(self) -> Path:
        if not self.ready:
            self.ready = [self.make(self.folder / str(next(self.made))) for _ in range(self.batch)]
            self.age(self.ready)
        return self.ready.pop(0)


class Tree:
    """A registry copied into tmp_path, with helpers to break it and to prove nothing changed."""

    def __init__(self, root: Path) -> None:
        self.base = root
        self.root = root / "registry"

    def path(self, relative: str) -> Path:
        return self.root / relative

    def read(self, relative: str) -> str:
        return self.path(relative).read_text(encoding="utf-8")

    def write(self, relative: str, text: str | bytes) -> Path:
        path = self.path(relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return path

    def replace(self, relative: str, old: str, new: str) -> Path:
        text = self.read(relative)
        assert old in text, f"{old!r} not in {relative}"
        return self.write(relative, text.replace(old, new, 1))

    def snapshot(self) -> dict[str, bytes]:
        return {
            p.relative_to(self.base).as_posix(): p.read_bytes() for p in sorted(self.base.rglob("*")) if p.is_file()
        }


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[Tree]:
    """A copy of tests/data/registry; its weights are not in any store."""
    shutil.copytree(DATA / "registry", tmp_path / "registry")
    shutil.copytree(REPO / "schemas", tmp_path / "schemas")
    yield Tree(tmp_path)


def artifact_bytes(model: str, version: str, path: str, size: int) -> bytes:
    """The made-up content of each artifact in tests/data/registry (their sha256 is recorded there)."""
    seed = hashlib.sha256(f"{model}@{version}/{path}".encode()).digest()
    return (seed * (size // 32 + 1))[:size]


@pytest.fixture
def stored_tree(tree: Tree) -> Tree:
    """The test registry with every version's weights in its local store (.regops/store)."""
    from regops.api import open_storage
    from regops.registry import Registry
    from regops.weights import Artifact

    registry = Registry.load(tree.root)
    storage = open_storage(registry)
    for record in registry.iter_versions():
        source = tree.base / "artifacts" / record.model / record.version
        files = [Artifact.from_record(f) for f in record.raw["artifacts"]["files"]]
        for artifact in files:
            (source / artifact.path).parent.mkdir(parents=True, exist_ok=True)
            (source / artifact.path).write_bytes(
                artifact_bytes(record.model, record.version, artifact.path, artifact.size)
            )
        storage.put(source, files, model=record.model, version=record.version)
    return tree


@pytest.fixture
def hub_env(hub_server: HubServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> HfApi:
    """regops pointed at the local Hub server with a write token (as HF_ENDPOINT/HF_TOKEN); a client to check it."""
    from huggingface_hub import HfApi

    monkeypatch.setenv("HF_ENDPOINT", hub_server.url)
    monkeypatch.setenv("HF_TOKEN", hub_server.write_token)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("REGOPS_HUB_BACKOFF", "0.01")
    return HfApi(endpoint=hub_server.url, token=hub_server.write_token)


# --- a registry in a real git repository, driven through the CLI ------------------------------------


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def commit(repo: Path, message: str) -> None:
    """Commit everything regops wrote (nothing when it wrote nothing)."""
    git(repo, "add", "-A")
    untranslated = os.environ | {"LC_ALL": "C"}
    done = subprocess.run(
        ["git", "commit", "-q", "-m", message], cwd=repo, env=untranslated, capture_output=True, text=True, check=False
    )
    if done.returncode and "nothing to commit" not in done.stdout:  # git says so on stdout, with status 1
        raise subprocess.CalledProcessError(done.returncode, done.args, done.stdout, done.stderr)


_REGISTRY_TEMPLATES: dict[str | None, Path] = {}  # this process's registry_repo()s, built once per config
_TEMPLATES_FOLDER: list[Path] = []  # where they are built (the session's temporary folder)


@pytest.fixture(autouse=True, scope="session")
def _registry_templates(tmp_path_factory: pytest.TempPathFactory) -> None:
    _TEMPLATES_FOLDER[:] = [tmp_path_factory.mktemp("registry-templates")]


def registry_repo(tmp_path: Path, config: str | None = None) -> Path:
    """A git repository with a registry of one model (sentiment) and its datasets, no versions yet.

    ``config`` replaces the test registry's regops.yaml. A copy of the one built the first time (per config).
    """
    if not _TEMPLATES_FOLDER:  # outside a pytest session
        return _build_registry_repo(tmp_path / "models-repo", config)
    template = _REGISTRY_TEMPLATES.get(config)
    if template is None:
        template = _build_registry_repo(_TEMPLATES_FOLDER[0] / str(len(_REGISTRY_TEMPLATES)), config)
        _REGISTRY_TEMPLATES[config] = template
    return Path(shutil.copytree(template, tmp_path / "models-repo", symlinks=True))


def _build_registry_repo(repo: Path, config: str | None) -> Path:
    registry = repo / "registry"
    for relative in (
        "regops.yaml",
        "models/sentiment/model.yaml",
        "datasets/reviews/2025-09-08.yaml",
        "datasets/reviews-eval/v1.yaml",
    ):
        (registry / relative).parent.mkdir(parents=True, exist_ok=True)
        (registry / relative).write_text((DATA / "registry" / relative).read_text())
    if config is not None:
        (registry / "regops.yaml").write_text(config)
    (repo / ".gitignore").write_text(".regops/\nregistry/.regops.lock\n")
    git(repo.parent, "init", "-q", "-b", "main", str(repo))
    with (repo / ".git" / "config").open("a") as config_file:  # as `git config` writes them, without three gits
        config_file.write("[user]\n\tname = Alice Example\n\temail = alice@example.com\n")
        config_file.write("[regops]\n\tlogin = alice\n")  # who regops records as acting, without --by
    commit(repo, "an empty registry")
    return repo


def weights(folder: Path, seed: str) -> bytes:
    """A version's output folder: 1.28 MB of weights (different per seed) and a config; returns the weights."""
    folder.mkdir(parents=True)
    blob = hashlib.sha256(seed.encode()).digest() * 40_000
    (folder / "model.safetensors").write_bytes(blob)
    (folder / "config.json").write_text(json.dumps({"seed": seed}))
    return blob


def run_regops(capsys: pytest.CaptureFixture[str], repo: Path, *args: str, code: int = 0) -> str:
    """Run the CLI as a person or a workflow does, from the repository; commit what it wrote; its output.

    A run expected to succeed must leave the registry valid.
    """
    from regops.cli import main

    got = main(list(args))
    out, err = capsys.readouterr()
    assert got == code, f"regops {' '.join(args)} exited {got}:\n{out}{err}"
    if code == 0:
        assert main(["validate"]) == 0, capsys.readouterr().out
        capsys.readouterr()
    commit(repo, f"regops {' '.join(args)}")
    return out + err


@contextlib.contextmanager
def isolated_build(home: Path, git_template: Path) -> Iterator[None]:
    """A template built outside any test (a session or module fixture), isolated as every test is, quietly."""
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(io.StringIO()):
        for name, value in {
            "HOME": home,
            "XDG_CACHE_HOME": home / ".cache",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_TEMPLATE_DIR": git_template,
        }.items():
            patch.setenv(name, str(value))
        for name in ("REGOPS_CACHE_DIR", "REGOPS_NO_CACHE", "GITHUB_ACTIONS", "GITHUB_ACTOR", "REGOPS_LOGIN"):
            patch.delenv(name, raising=False)
        yield


def replay(repo: Path, steps: list[list[str]]) -> None:
    """Run each CLI step in ``repo`` (the current folder) as :func:`run_regops` does, for a template: each must
    succeed and leave the registry valid; what it wrote is committed."""
    from regops.cli import main

    for args in steps:
        assert main(args) == 0, f"regops {' '.join(args)} failed building a template"
        assert main(["validate"]) == 0
        commit(repo, f"regops {' '.join(args)}")


def copy_history(template: Path, tmp_path: Path) -> Path:
    """A copy of a history template's folder (the repository and the files beside it) in ``tmp_path``; the copy
    of its repository."""
    for entry in template.iterdir():
        target = tmp_path / entry.name
        if entry.is_dir():
            shutil.copytree(entry, target, symlinks=True)
        else:
            shutil.copy2(entry, target)
    return tmp_path / "models-repo"


@pytest.fixture(scope="session")
def _history_template(tmp_path_factory: pytest.TempPathFactory, git_template: Path) -> Path:
    """:func:`history_repo` built once per session (through the CLI, isolated as every test is); tests get copies."""
    folder = tmp_path_factory.mktemp("history-template")
    with isolated_build(tmp_path_factory.mktemp("history-home"), git_template), pytest.MonkeyPatch.context() as patch:
        repo = registry_repo(folder)
        patch.chdir(repo)
        (folder / "evals.json").write_text('{"accuracy": 0.93, "latency_ms": 41}')
        (folder / "evals2.json").write_text('{"accuracy": 0.95, "latency_ms": 40}')
        (folder / "params.json").write_text('{"epochs": 3}')
        for version, evals in (("1.0.0", "evals.json"), ("1.1.0", "evals2.json")):
            weights(folder / f"out-{version}", version)
            steps = [
                ["register", "sentiment", "--artifacts", str(folder / f"out-{version}"), "--evals",
                 str(folder / evals), "--params", str(folder / "params.json"), "--dataset", "reviews@2025-09-08",
                 "--version", version, "--by", "training-bot[bot]"],
                ["auto-promote", "--by", "github-actions[bot]"],
            ]  # fmt: skip
            if version == "1.0.0":
                steps += [
                    ["promote", "sentiment@1.0.0", "--to", "staging", "--notes", "n", "--by", "alice"],
                    ["canary", "record", "sentiment@1.0.0", "--result", "passed"],
                    ["promote", "sentiment@1.0.0", "--to", "prod", "--notes", "n", "--by", "alice"],
                ]
            replay(repo, steps)
    return folder


@pytest.fixture
def history_repo(_history_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """main: sentiment 1.0.0 in prod, 1.1.0 in dev (registered and promoted through the CLI), with the training
    outputs and eval files beside it in ``tmp_path``: a copy of the session's template."""
    repo = copy_history(_history_template, tmp_path)
    monkeypatch.chdir(repo)
    return repo
