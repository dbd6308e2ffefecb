"""Bad tokens, foreign namespaces, a failing Hub, tampered weights, hand edits, interrupted retention.

Each test checks the message a user sees and that nothing was lost: the
registry unchanged (or consistent), every version retrievable from somewhere.
Faults are real: the local Hub server answers 500s, drops connections, or has
its stored bytes changed underneath.
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from huggingface_hub import HfApi

from regops import api
from regops.adapters.hub import HubError
from regops.errors import RegopsError
from regops.registry import Registry
from regops.weights import HashMismatchError
from tests.conftest import commit, weights
from tests.pr_fixtures import templated
from tests.servers.hub import FaultKind, HubServer
from tests.test_hub import ARCHIVE, HOT, hf_repo

LATER = (datetime.now(UTC) + timedelta(days=10)).strftime("%Y-%m-%dT%H:%M:%SZ")


def snapshot(repo: Path) -> dict[str, bytes]:
    return {
        p.relative_to(repo).as_posix(): p.read_bytes()
        for p in sorted((repo / "registry").rglob("*"))
        if p.is_file() and p.name != ".regops.lock"
    }


def register(repo: Path, tmp_path: Path, version: str, seed: str | None = None, **kw: object) -> Path:
    out = tmp_path / f"out-{version}"
    if not out.exists():
        weights(out, seed or version)
    evals = tmp_path / "evals.json"
    evals.write_text('{"accuracy": 0.93, "latency_ms": 41}')
    params = tmp_path / "params.json"
    params.write_text('{"epochs": 3}')
    api.register(
        "sentiment",
        registry=repo / "registry",
        artifacts=out,
        evals=evals,
        params=params,
        dataset="reviews@2025-09-08",
        eval_dataset="reviews-eval@v1",
        parent=None,
        version=version,
        bump=None,
        by="training-bot[bot]",
        **kw,  # type: ignore[arg-type]
    )
    return out


def one_version(tmp_path: Path) -> Path:
    """:func:`hf_repo` with sentiment@1.0.0 registered on the local Hub (weights in ``tmp_path/out-1.0.0``): built
    in this process's first test that asks, copied with the Hub's repositories for each later one."""
    templated("hub-one-version", tmp_path, lambda: register(hf_repo(tmp_path), tmp_path, "1.0.0") and None)
    return tmp_path / "models-repo"


def lfs_bytes_sent(server: HubServer) -> int:
    return sum(r.bytes_in for r in server.requests if r.method == "PUT")


# --- tokens and permissions --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (None, r"no token; set HF_TOKEN to a token with write access"),
        ("hf_not_a_real_token", r"the Hub rejected HF_TOKEN \(401: invalid or expired\)"),
        ("read", r"the token lacks write access to 'acme-ml' \(403\)"),
    ],
)
def test_register_without_a_usable_token_says_which_and_registers_nothing(  # noqa: PLR0917 - fixtures
    hub_env: HfApi,
    hub_server: HubServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    token: str | None,
    message: str,
) -> None:
    repo = hf_repo(tmp_path)
    if token is None:
        monkeypatch.delenv("HF_TOKEN")
    else:
        monkeypatch.setenv("HF_TOKEN", hub_server.read_token if token == "read" else token)
    before = snapshot(repo)
    with pytest.raises(HubError, match=message):
        register(repo, tmp_path, "1.0.0")
    assert snapshot(repo) == before
    assert lfs_bytes_sent(hub_server) == 0


def test_a_repo_in_a_namespace_the_token_cannot_write_is_refused_with_the_namespace(
    hub_env: HfApi, hub_server: HubServer, tmp_path: Path
) -> None:
    repo = hf_repo(tmp_path)
    model_yaml = repo / "registry/models/sentiment/model.yaml"
    model_yaml.write_text(model_yaml.read_text().replace("acme-ml/sentiment", "other-org/sentiment"))
    before = snapshot(repo)
    with pytest.raises(HubError, match=r"Hub repo other-org/sentiment .*the token lacks write access to 'other-org'"):
        register(repo, tmp_path, "1.0.0")
    assert snapshot(repo) == before


# --- a failing Hub -------------------------------------------------------------------------------


def test_a_500_during_the_upload_is_retried_and_the_version_registered(
    hub_env: HfApi, hub_server: HubServer, tmp_path: Path
) -> None:
    repo = hf_repo(tmp_path)
    hub_server.faults.add("POST", r"/api/models/acme-ml/sentiment/commit/", "status", code=500, times=2)
    out = register(repo, tmp_path, "1.0.0")
    record = Registry.load(repo / "registry").version("sentiment", "1.0.0")
    assert {t.name: t.target_commit for t in hub_env.list_repo_refs(HOT).tags} == {"v1.0.0": record.storage["revision"]}
    assert [r.status for r in hub_server.requests if "/commit/" in r.path] == [500, 500, 200]
    assert (out / "model.safetensors").stat().st_size == lfs_bytes_sent(hub_server)


def test_a_hub_that_keeps_failing_leaves_the_registry_unchanged_and_a_rerun_sends_nothing_twice(
    hub_env: HfApi, hub_server: HubServer, tmp_path: Path
) -> None:
    repo = hf_repo(tmp_path)
    hub_server.faults.add("POST", r"/api/models/acme-ml/sentiment/commit/", "drop", times=20)
    before = snapshot(repo)
    with pytest.raises(
        HubError, match=r"the Hub kept failing .* run the command again — files already uploaded are not sent again"
    ):
        register(repo, tmp_path, "1.0.0")
    assert snapshot(repo) == before
    sent = lfs_bytes_sent(hub_server)
    assert sent == 1_280_000, "the weights reached the Hub before the commit failed"

    hub_server.faults.clear()
    register(repo, tmp_path, "1.0.0")
    assert lfs_bytes_sent(hub_server) == sent, "the re-run found the uploaded object and did not send it again"
    assert api.validate(registry=repo / "registry") == []


def test_a_connection_dropped_mid_upload_is_retried(hub_env: HfApi, hub_server: HubServer, tmp_path: Path) -> None:
    repo = hf_repo(tmp_path)
    hub_server.faults.add("PUT", r".*", "drop", after_bytes=300_000, times=1)
    register(repo, tmp_path, "1.0.0")
    record = Registry.load(repo / "registry").version("sentiment", "1.0.0")
    dest = tmp_path / "dest"
    api.download("sentiment@1.0.0", registry=repo / "registry", dest=dest)
    recorded = {f["path"]: f["sha256"] for f in record.raw["artifacts"]["files"]}
    assert hashlib.sha256((dest / "model.safetensors").read_bytes()).hexdigest() == recorded["model.safetensors"]


def test_reregistering_identical_files_uploads_nothing(
    hub_env: HfApi,
    hub_server: HubServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from regops.cli import main

    repo = hf_repo(tmp_path)
    monkeypatch.chdir(repo)
    register(repo, tmp_path, "1.0.0")
    sent = lfs_bytes_sent(hub_server)
    out = tmp_path / "out-1.0.0"
    evals = tmp_path / "evals.json"
    assert main([
        "register", "sentiment", "--registry", str(repo / "registry"), "--artifacts", str(out), "--evals", str(evals),
        "--params", str(tmp_path / "params.json"), "--dataset", "reviews@2025-09-08", "--version", "1.0.1", "--by", "training-bot[bot]",
    ]) == 0  # fmt: skip
    assert (
        "registered registry/models/sentiment/1.0.1.yaml as a candidate; 0 files uploaded (0 B), 2 already stored"
        in capsys.readouterr().out
    )
    assert lfs_bytes_sent(hub_server) == sent
    registry = Registry.load(repo / "registry")
    assert (
        registry.version("sentiment", "1.0.1").storage["revision"]
        == registry.version("sentiment", "1.0.0").storage["revision"]
    )


# --- what is on the Hub changed by hand -----------------------------------------------------------


def test_a_tampered_file_on_the_hub_is_refused_on_download(
    hub_env: HfApi, hub_server: HubServer, tmp_path: Path
) -> None:
    repo, out = one_version(tmp_path), tmp_path / "out-1.0.0"
    blob = (out / "model.safetensors").read_bytes()
    oid = hashlib.sha256(blob).hexdigest()
    hub_server.tamper(HOT, oid, b"\x00" * len(blob))
    dest = tmp_path / "serving"
    with pytest.raises(HashMismatchError, match=rf"model.safetensors: sha256 [0-9a-f]{{64}} does not match {oid}"):
        api.download("sentiment@1.0.0", registry=repo / "registry", dest=dest)
    assert not dest.exists(), "nothing half-verified is left for serving to pick up"


def test_a_model_card_edited_by_hand_is_reported_and_regenerated(
    hub_env: HfApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = one_version(tmp_path)
    result = api.sync(registry=repo / "registry")
    assert result.ok
    generated = Path(hub_env.hf_hub_download(HOT, "README.md")).read_text()
    hub_env.upload_file(path_or_fileobj=b"# my own card\n", path_in_repo="README.md", repo_id=HOT)

    check = api.sync(registry=repo / "registry", check=True)
    assert [d.message for d in check.differences] == [
        "acme-ml/sentiment: model card README.md differs from the registry (edited by hand, or stale)"
    ]
    assert not check.ok
    api.sync(registry=repo / "registry")
    assert Path(hub_env.hf_hub_download(HOT, "README.md", force_download=True)).read_text() == generated
    assert api.sync(registry=repo / "registry", check=True).differences == []


def test_sync_check_reports_weights_that_no_longer_match(hub_env: HfApi, hub_server: HubServer, tmp_path: Path) -> None:
    repo, out = one_version(tmp_path), tmp_path / "out-1.0.0"
    oid = hashlib.sha256((out / "model.safetensors").read_bytes()).hexdigest()
    api.sync(registry=repo / "registry")
    infos = [f for f in hub_env.list_lfs_files(HOT) if f.file_oid == oid]
    hub_env.permanently_delete_lfs_files(HOT, infos, rewrite_history=False)
    result = api.sync(registry=repo / "registry")
    assert not result.ok, "sync cannot bring deleted weights back: it says so and exits non-zero"
    assert [d.message for d in result.unfixed] == [
        f"acme-ml/sentiment@{Registry.load(repo / 'registry').version('sentiment', '1.0.0').storage['revision'][:12]}: "
        "model.safetensors of sentiment@1.0.0 is no longer stored (its LFS object was deleted)"
    ]


# --- retention interrupted ------------------------------------------------------------------------


def retrievable(repo: Path, version: str, dest: Path) -> bytes:
    """The version's weights from wherever its file says they are (restoring first if cold)."""
    record = Registry.load(repo / "registry").version("sentiment", version)
    if record.storage["tier"] == "cold":
        api.restore(f"sentiment@{version}", registry=repo / "registry")
    api.download(f"sentiment@{version}", registry=repo / "registry", dest=dest)
    return (dest / "model.safetensors").read_bytes()


@pytest.mark.parametrize(
    ("method", "path", "stops"),
    [
        ("POST", r"/api/models/acme-ml/sentiment-archive/commit/", "before the archive commit"),
        ("POST", r"/api/models/acme-ml/sentiment/lfs-files/batch", "after publishing, before removing the hot copy"),
    ],
)
def test_retention_interrupted_loses_no_version_and_a_rerun_finishes(  # noqa: PLR0917 - fixtures
    hub_env: HfApi, hub_server: HubServer, tmp_path: Path, method: str, path: str, stops: str
) -> None:
    repo, out = one_version(tmp_path), tmp_path / "out-1.0.0"  # a candidate nothing descends from: retention moves it
    blob = (out / "model.safetensors").read_bytes()
    commit(repo, "register 1.0.0")
    if "after publishing" in stops:  # a repository without a remote publishes to HEAD
        api.retention_apply(registry=repo / "registry", now=LATER)
        commit(repo, "retention")
    hub_server.faults.add(method, path, "status", code=503, times=50)
    with pytest.raises(HubError, match="the Hub kept failing"):
        api.retention_apply(registry=repo / "registry", now=LATER)
    hub_server.faults.clear()
    assert api.validate(registry=repo / "registry") == []
    tier = Registry.load(repo / "registry").version("sentiment", "1.0.0").storage["tier"]
    assert tier == ("hot" if "before the archive" in stops else "cold")

    # A run records, the commit publishes, the next run removes.
    api.retention_apply(registry=repo / "registry", now=LATER)
    commit(repo, "retention")
    api.retention_apply(registry=repo / "registry", now=LATER)
    record = Registry.load(repo / "registry").version("sentiment", "1.0.0")
    assert record.storage["repo"] == ARCHIVE and record.storage["tier"] == "cold"
    assert hashlib.sha256(blob).hexdigest() not in {f.file_oid for f in hub_env.list_lfs_files(HOT)}
    assert retrievable(repo, "1.0.0", tmp_path / "back") == blob


def test_restore_of_a_version_that_is_hot_is_refused(hub_env: HfApi, tmp_path: Path) -> None:
    repo = one_version(tmp_path)
    with pytest.raises(RegopsError, match=r"sentiment@1.0.0's weights are already hot; nothing to restore"):
        api.restore("sentiment@1.0.0", registry=repo / "registry")


# --- bounded downloads: timeouts, drips, identical files ------------------------------------------------------------


def _fetch_timed(repo: Path, dest: Path) -> tuple[float, BaseException | None]:
    start = time.monotonic()
    try:
        api.download("sentiment@1.0.0", registry=repo / "registry", dest=dest)
    except RegopsError as e:
        return time.monotonic() - start, e
    return time.monotonic() - start, None


@pytest.mark.usefixtures("hub_env")
@pytest.mark.parametrize(
    "case",
    [
        # config.json never answered: the server sleeps far beyond the 1 s read timeout.
        ("delay", {"seconds": 8}, ("did not answer within 1 s", "REGOPS_HTTP_TIMEOUT")),
        # config.json is ~20 bytes: dripped one byte every 0.4 s it would take ~8 s, far beyond the 1 s read timeout.
        ("drip", {"every": 0.4, "size": 1}, ("(a stalled transfer) within 1 s",)),
    ],
    ids=["never answers", "drips bytes"],
)
def test_a_hub_that_never_answers_or_drips_bytes_fails_within_the_read_timeout_and_a_rerun_completes(
    hub_server: HubServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    case: tuple[FaultKind, dict[str, float], tuple[str, ...]],
) -> None:
    fault, options, said = case
    repo = one_version(tmp_path)
    monkeypatch.setenv("REGOPS_HTTP_TIMEOUT", "1")
    hub_server.faults.add("GET", r"/resolve/[0-9a-f]{40}/config\.json$", fault, **options)
    dest = tmp_path / "deploy"

    elapsed, error = _fetch_timed(repo, dest)

    assert isinstance(error, HubError), error
    assert elapsed < 6, f"waited {elapsed:.1f} s for a server that never answered in full"
    assert all(part in str(error) for part in said), error
    assert not (dest / "config.json").exists(), "no half-written file in DEST"
    hub_server.faults.clear()
    assert _fetch_timed(repo, dest)[1] is None, "a later run against a healthy Hub completes"
    assert (dest / "config.json").read_bytes() == (tmp_path / "out-1.0.0" / "config.json").read_bytes()


def test_a_malformed_timeout_is_refused_with_its_name(
    hub_env: HfApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = one_version(tmp_path)
    monkeypatch.setenv("REGOPS_HTTP_TIMEOUT", "soon")

    _, error = _fetch_timed(repo, tmp_path / "deploy")

    assert str(error) == "REGOPS_HTTP_TIMEOUT='soon' is not a number of seconds greater than 0 (e.g. 60)"
    assert not [p for p in (tmp_path / "deploy").rglob("*") if p.is_file()], "nothing fetched"


def test_identical_files_register_and_download_on_the_hub(hub_env: HfApi, tmp_path: Path) -> None:
    repo = hf_repo(tmp_path)
    out = tmp_path / "out-1.0.0"
    blob = weights(out, "1.0.0")
    (out / "copy").mkdir()
    (out / "copy" / "model.safetensors").write_bytes(blob)  # one LFS object, two paths
    (out / "copy" / "config.json").write_bytes((out / "config.json").read_bytes())
    register(repo, tmp_path, "1.0.0")
    dest = tmp_path / "deploy"

    assert _fetch_timed(repo, dest)[1] is None
    assert {p.relative_to(dest).as_posix(): p.read_bytes() for p in dest.rglob("*") if p.is_file()} == {
        p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()
    }
