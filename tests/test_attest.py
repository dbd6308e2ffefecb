"""Signed review and canary attestations: the stamp and the canary check write them, `verify`, `promote` and `sync`
check them, the approvals check denies a pull request that plants one, and every tamper is refused on its outcome.

The registry trusts signing/release.pub from staging on (tests/test_signing.py's policy); sentiment@1.0.0 is
registered signed, moved to dev, then to staging in alice's pull request that bob approves; after the merge
`regops pr stamp --signing-key` writes the review attestation, as the sync workflow does on main.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from regops.registry import Registry
from tests.conftest import git, run_regops, weights
from tests.pr_fixtures import templated
from tests.servers.github_fixtures import GitHubFixture
from tests.test_canary_check import on_prometheus  # noqa: F401 (a fixture)
from tests.test_github import REPO, open_pull, sha
from tests.test_hub import register
from tests.test_signing import ec_key, local_repo, version_file

ATTESTATIONS = Path("registry/models/sentiment/attestations")


def through_pr(capsys: pytest.CaptureFixture[str], repo: Path, gh: GitHubFixture, *, to: str, version: str) -> int:
    """alice promotes ``version`` to ``to`` in a pull request, bob approves, it merges into main; its number."""
    branch = f"promote-{version}-{to}"
    git(repo, "checkout", "-q", "-b", branch)
    run_regops(capsys, repo, "promote", f"sentiment@{version}", "--to", to, "--notes", "ready", "--by", "alice")
    number = approved_pull(gh, repo, branch=branch)
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--no-ff", "-m", f"Merge pull request #{number}", branch)
    gh.merge(REPO, number, sha(repo))
    return number


def approved_pull(gh: GitHubFixture, repo: Path, *, branch: str, main: str = "main") -> int:
    """alice's pull request of ``branch`` opened on GitHub (main pushed as it is at ``main``), approved by bob."""
    number = open_pull(gh, repo, author="alice", branch=branch, main=main)
    gh.add_review(REPO, number, "bob", "APPROVED")
    return number


def staging_pr_on_github(gh: GitHubFixture, repo: Path) -> None:
    """GitHub's side of :func:`to_staging`, made again for a copy of its repository (HEAD: the stamp, on the merge)."""
    number = approved_pull(gh, repo, branch="promote-1.0.0-staging", main="HEAD^^1")
    gh.merge(REPO, number, sha(repo, "HEAD^"))


@pytest.fixture
def staged(
    tmp_path: Path, gh: GitHubFixture, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Path:
    """sentiment@1.0.0 signed, in staging through PR #1 approved by bob, stamped with the trusted key. Built once
    per process; later tests get a copy of the repository and GitHub's side of PR #1 made again."""
    repo = tmp_path / "models-repo"
    templated(
        "attest-staged",
        tmp_path,
        lambda: to_staging(capsys, local_repo(tmp_path, monkeypatch), gh),
        again=lambda _: staging_pr_on_github(gh, repo),
    )
    monkeypatch.chdir(repo)
    return repo


def to_staging(capsys: pytest.CaptureFixture[str], repo: Path, gh: GitHubFixture) -> None:
    """Register sentiment@1.0.0 signed, take it to staging in PR #1 (bob approves), stamp it with the key."""
    weights(repo.parent / "out-a", "1.0.0")
    key = str(repo / "signing" / "release.pem")
    register(capsys, repo, repo.parent, "out-a", "--version", "1.0.0", "--signing-key", key)
    run_regops(capsys, repo, "auto-promote", "--by", "github-actions[bot]")
    through_pr(capsys, repo, gh, to="staging", version="1.0.0")
    run_regops(capsys, repo, "pr", "stamp", "--signing-key", key)


def review_file(repo: Path) -> Path:
    return repo / ATTESTATIONS / "1.0.0" / "review-1.sigstore.json"


def statement(path: Path) -> dict[str, object]:
    envelope = json.loads(path.read_bytes())["dsseEnvelope"]
    return dict(json.loads(base64.b64decode(envelope["payload"])))


def test_the_stamp_writes_a_signed_review_statement_that_verify_checks(
    staged: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = Registry.load(staged / "registry").version("sentiment", "1.0.0")
    step = record.raw["transitions"][1]
    data = review_file(staged).read_bytes()
    assert step["attestation"] == {
        "path": "attestations/1.0.0/review-1.sigstore.json",
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    said = statement(review_file(staged))
    files = record.raw["artifacts"]["files"] + [record.raw["artifacts"]["signature"]]
    assert said["_type"] == "https://in-toto.io/Statement/v1"
    assert said["predicateType"] == "https://regops.dev/attestation/review/v1"
    assert said["subject"] == [{"name": f["path"], "digest": {"sha256": f["sha256"]}} for f in files]
    predicate = said["predicate"]
    assert isinstance(predicate, dict)
    config = (staged / "registry" / "regops.yaml").read_bytes()
    assert (predicate["version"], predicate["pr"], predicate["approvers"]) == ("sentiment@1.0.0", 1, ["bob"])
    assert (predicate["from"], predicate["to"], predicate["head"]) == ("dev", "staging", sha(staged, "HEAD^^2"))
    assert predicate["policy"] == {"regops.yaml": {"sha256": hashlib.sha256(config).hexdigest()}, "approvals": 1}

    out = run_regops(capsys, staged, "verify", "sentiment@staging")
    assert "review ok by bob" in out and out.rstrip().endswith("verified: every link holds")


def test_a_consumer_verifies_the_review_statement_with_the_readme_s_jq_and_openssl(
    staged: Path, tmp_path: Path
) -> None:
    """README "Provenance": the commands, as printed there, verify the statement with the public key alone."""
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    recipe = readme.split("An attestation signed by key verifies with `jq` and `openssl` alone")[1]
    lines = [line[2:] for line in recipe.split("```console\n")[1].split("```")[0].splitlines() if line.startswith("$ ")]
    lines[0] = f"a={review_file(staged)}"
    script = "\n".join(lines).replace("signing/release.pub", str(staged / "signing" / "release.pub"))
    shown = subprocess.run(["bash", "-ec", script], cwd=tmp_path, check=True, capture_output=True, text=True)
    assert shown.stdout.startswith("Verified OK\n"), shown.stdout + shown.stderr
    assert json.loads(shown.stdout.removeprefix("Verified OK\n"))["approvers"] == ["bob"]
    # The same commands over a statement naming eve instead of bob: openssl refuses it.
    (tmp_path / "statement.json").write_text((tmp_path / "statement.json").read_text().replace('"bob"', '"eve"'))
    tampered = "\n".join(lines[3:5])  # the pre-authentication encoding again, and the check
    tampered = tampered.replace("signing/release.pub", str(staged / "signing" / "release.pub"))
    assert subprocess.run(["bash", "-ec", tampered], cwd=tmp_path, check=False, capture_output=True).returncode == 1


# --- tampering -----------------------------------------------------------------------------------------------------


def canary_attested(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    """sentiment@1.0.0's canary passed, measured elsewhere and recorded with an attestation signed by the key."""
    key = str(repo / "signing" / "release.pem")
    run_regops(capsys, repo, "canary", "record", "sentiment@1.0.0", "--result", "passed", "--signing-key", key)


def canary_planted(repo: Path, *, about: str) -> None:
    """sentiment@1.0.0's canary passed, with the trusted key's attestation of ``about``'s canary planted on it."""
    from regops import attest, signing

    registry = Registry.load(repo / "registry")
    record = registry.version("sentiment", "1.0.0")
    said = attest.statement(registry.version("sentiment", about), attest.CANARY, {"result": "passed"})
    data = signing.sign_statement(said, signer=signing.Signer(repo / "signing" / "release.pem"))
    path, recorded = attest.entry(record, "canary-1", data)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    entry = f"attestation: {{path: {recorded['path']}, sha256: {recorded['sha256']}}}"
    text = version_file(repo, "1.0.0").read_text()
    version_file(repo, "1.0.0").write_text(text.replace("result: pending}", f"result: passed, {entry}}}"))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "canary: sentiment@1.0.0 passed")


def refused_prod(capsys: pytest.CaptureFixture[str], repo: Path) -> str:
    """``regops promote sentiment@1.0.0 --to prod`` refused: exit 1, nothing changed in the registry; its output."""
    before = {p: p.read_bytes() for p in (repo / "registry").rglob("*") if p.is_file()}
    out = run_regops(
        capsys, repo, "promote", "sentiment@1.0.0", "--to", "prod", "--notes", "x", "--by", "alice", code=1
    )
    assert {p: p.read_bytes() for p in (repo / "registry").rglob("*") if p.is_file()} == before
    assert git(repo, "status", "--porcelain") == ""
    return out


def drop(repo: Path) -> str:
    git(repo, "rm", "-q", str(review_file(repo)))
    return "the review attestation of transitions[1] (dev -> staging, PR #1) is missing"


def alter(repo: Path) -> str:
    data = review_file(repo).read_bytes()
    review_file(repo).write_bytes(data.replace(b'"tlogEntries":[]', b'"tlogEntries": []'))
    return "is not the file the version file records (sha256 "


def resign(repo: Path) -> str:
    """Re-signed by a key regops.yaml does not trust, the version file updated to the new file's digest."""
    from regops import signing

    path = review_file(repo)
    envelope = json.loads(path.read_bytes())["dsseEnvelope"]
    said = json.loads(base64.b64decode(envelope["payload"]))
    ec_key(repo.parent / "attacker", "other")
    data = signing.sign_statement(said, signer=signing.Signer(repo.parent / "attacker" / "other.pem"))
    return rewrite(repo, path, data) or "is not from a key or identity regops.yaml's signing trusts"


def other_approvers(repo: Path) -> str:
    """Signed by the trusted key (a leaked one), naming eve where the record says bob."""
    from regops import signing

    path = review_file(repo)
    said = json.loads(base64.b64decode(json.loads(path.read_bytes())["dsseEnvelope"]["payload"]))
    said["predicate"]["approvers"] = ["eve"]
    data = signing.sign_statement(said, signer=signing.Signer(repo / "signing" / "release.pem"))
    rewrite(repo, path, data)
    return "says approvers ['eve'] (recorded ['bob']), not what the version file records"


def rewrite(repo: Path, path: Path, data: bytes) -> str:
    old = hashlib.sha256(path.read_bytes()).hexdigest()
    path.write_bytes(data)
    text = version_file(repo, "1.0.0").read_text()
    version_file(repo, "1.0.0").write_text(text.replace(old, hashlib.sha256(data).hexdigest()))
    return ""


@pytest.mark.parametrize("tamper", [drop, alter, resign, other_approvers])
def test_a_tampered_review_attestation_breaks_the_chain_and_refuses_the_promotion(
    staged: Path, capsys: pytest.CaptureFixture[str], tamper: object
) -> None:
    canary_attested(capsys, staged)
    assert callable(tamper)
    expected = tamper(staged)
    git(staged, "commit", "-qam", "tampered")

    out = run_regops(capsys, staged, "verify", "sentiment@staging", code=1)
    assert "review BROKEN by bob" in out and expected in out, out
    assert "weights ok" in out and "signature ok" in out
    out = refused_prod(capsys, staged)
    assert expected in out and "(the promotion to prod is refused)" in out, out


def test_an_untampered_chain_lets_the_promotion_to_prod_through(
    staged: Path, gh: GitHubFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """The control of the tamper tests: the same steps, nothing tampered, go through to a verified prod."""
    canary_attested(capsys, staged)
    through_pr(capsys, staged, gh, to="prod", version="1.0.0")
    run_regops(capsys, staged, "pr", "stamp", "--signing-key", str(staged / "signing" / "release.pem"))
    out = run_regops(capsys, staged, "verify", "sentiment@prod")
    assert "review ok by bob" in out and "canary ok" in out and out.rstrip().endswith("every link holds")
    assert (staged / ATTESTATIONS / "1.0.0" / "review-2.sigstore.json").is_file()


def test_a_canary_attestation_of_another_version_is_refused(
    staged: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    weights(tmp_path / "out-b", "1.1.0")
    key = str(staged / "signing" / "release.pem")
    register(capsys, staged, tmp_path, "out-b", "--version", "1.1.0", "--signing-key", key)
    canary_planted(staged, about="1.1.0")

    out = refused_prod(capsys, staged)
    assert "the canary attestation is about another version or kind (sentiment@1.1.0, " in out, out
    assert "(the promotion to prod is refused)" in out


def test_a_pull_request_planting_or_editing_an_attestation_is_denied_even_with_the_admins(
    staged: Path, gh: GitHubFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.test_gate import judged, pull_request

    planted = review_file(staged).read_text()
    number = pull_request(
        gh,
        staged,
        {
            str(ATTESTATIONS / "1.0.0" / "review-1.sigstore.json"): planted.replace('"tlogEntries":[]', '"x":1'),
            str(ATTESTATIONS / "1.0.0" / "canary-1.sigstore.json"): planted,
        },
    )
    for reviewer in ("bob", "carol"):  # an owner, and an admin
        gh.add_review(REPO, number, reviewer, "APPROVED")
    state, out = judged(capsys, gh, staged, number)
    assert state == "failure"
    for name in ("review-1", "canary-1"):
        denied = f"{ATTESTATIONS}/1.0.0/{name}.sigstore.json: not allowed: a signed attestation: only regops on main"
        assert denied in out, out


def test_the_canary_check_signs_an_attestation_of_its_final_verdict(
    history_repo: Path,
    on_prometheus: object,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    from regops import attest
    from tests.test_canary_check import HEALTHY, NOW, START, canary, check

    assert callable(on_prometheus)
    on_prometheus(history_repo, capsys, HEALTHY)
    ec_key(history_repo / "signing", "canary")
    out = check(capsys, "--signing-key", str(history_repo / "signing" / "canary.pem"))
    assert "sentiment@1.1.0 (canary) vs prod 1.0.0: pass" in out, out
    recorded = canary(history_repo)["attestation"]
    data = (history_repo / "registry/models/sentiment" / recorded["path"]).read_bytes()
    assert recorded["sha256"] == hashlib.sha256(data).hexdigest()
    said = statement(history_repo / "registry/models/sentiment" / recorded["path"])
    predicate = said["predicate"]
    assert isinstance(predicate, dict)
    assert said["predicateType"] == attest.CANARY
    assert (predicate["version"], predicate["result"], predicate["prod"]) == ("sentiment@1.1.0", "passed", "1.0.0")
    assert predicate["window"] == {
        "started_at": f"{START:%Y-%m-%dT%H:%M:%SZ}",
        "checked_at": NOW.replace("Z", "+00:00"),
    }
    assert predicate["provider"]["provider"] == "prometheus" and predicate["provider"]["url"].startswith("http://")
    assert [m["metric"] for m in predicate["numbers"]] == [m["metric"] for m in canary(history_repo)["report"]]
    # A bot may commit it straight to main, and `regops validate` accepts the file where it is.
    git(history_repo, "add", "-A")
    git(history_repo, "commit", "-q", "-m", "canary: sentiment@1.1.0 passed")
    run_regops(capsys, history_repo, "validate", "--base", "HEAD^")
    registry = Registry.load(history_repo / "registry")
    trusted = {"keys": ["signing/canary.pub"]}
    record = registry.version("sentiment", "1.1.0")
    assert attest.canary_problem(record, policy=trusted, root=history_repo) is None
    ec_key(history_repo / "signing", "other")
    untrusted = attest.canary_problem(record, policy={"keys": ["signing/other.pub"]}, root=history_repo)
    assert "is not from a key or identity regops.yaml's signing trusts" in str(untrusted)


# --- the signature rule in validate and auto-promote ---------------------------------------------------------------


def require_from_dev(repo: Path) -> None:
    config = repo / "registry" / "regops.yaml"
    config.write_text(config.read_text().replace("required_from: staging", "required_from: dev"))
    git(repo, "commit", "-qam", "signatures from dev on")


def test_auto_promote_leaves_an_unsigned_candidate_out_of_dev_when_signing_is_required_from_dev(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = local_repo(tmp_path, monkeypatch)
    require_from_dev(repo)
    weights(tmp_path / "out-a", "1.0.0")
    weights(tmp_path / "out-b", "1.1.0")
    register(capsys, repo, tmp_path, "out-a", "--version", "1.0.0")  # unsigned, the better score (0.95)
    key = str(repo / "signing" / "release.pem")
    register(capsys, repo, tmp_path, "out-b", "--version", "1.1.0", "--signing-key", key)

    out = run_regops(capsys, repo, "auto-promote", "--by", "github-actions[bot]")
    registry = Registry.load(repo / "registry")
    assert registry.version("sentiment", "1.0.0").stage == "candidate"
    assert registry.version("sentiment", "1.1.0").stage == "dev"
    assert "sentiment@1.0.0 stays candidate: sentiment@1.0.0 has no signature (artifacts.signature)" in out, out
    assert "so dev needs one: the auto-promotion to dev is refused" in out


def test_validate_refuses_an_unsigned_version_in_a_stage_that_needs_a_signature(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = local_repo(tmp_path, monkeypatch)
    weights(tmp_path / "out-a", "1.0.0")
    register(capsys, repo, tmp_path, "out-a", "--version", "1.0.0")
    run_regops(capsys, repo, "auto-promote", "--by", "github-actions[bot]")  # dev: no signature needed yet
    before = version_file(repo, "1.0.0").read_bytes()
    require_from_dev(repo)

    out = run_regops(capsys, repo, "validate", code=1)
    assert "registry/models/sentiment/1.0.0.yaml" in out
    assert "sentiment@1.0.0 has no signature (artifacts.signature), and regops.yaml's signing.required_from" in out
    assert "is dev, so dev needs one: holding it there is refused" in out
    assert version_file(repo, "1.0.0").read_bytes() == before


def test_sync_points_no_stage_branch_at_a_version_whose_review_attestation_was_dropped(
    hub_env: object,
    gh: GitHubFixture,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from huggingface_hub import HfApi

    from tests.test_signing import branches, signed_repo

    assert isinstance(hub_env, HfApi)
    repo = signed_repo(tmp_path)
    monkeypatch.chdir(repo)
    to_staging(capsys, repo, gh)
    revision = Registry.load(repo / "registry").version("sentiment", "1.0.0").storage["revision"]
    expected = drop(repo)
    git(repo, "commit", "-qm", "the review attestation dropped")
    dropped = sha(repo)

    out = run_regops(capsys, repo, "sync", code=1)
    assert expected in out and "(pointing a tag or stage ref at it is refused)" in out, out
    assert "staging" not in branches(hub_env)
    git(repo, "checkout", f"{dropped}^", "--", str(review_file(repo)))
    git(repo, "commit", "-qm", "the review attestation back")
    run_regops(capsys, repo, "sync")
    assert branches(hub_env)["staging"] == revision


def test_a_canary_verdict_recorded_unsigned_does_not_open_prod(
    staged: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_regops(capsys, staged, "canary", "record", "sentiment@1.0.0", "--result", "passed")
    assert "attestation" not in Registry.load(staged / "registry").version("sentiment", "1.0.0").raw["canary"]

    out = refused_prod(capsys, staged)
    assert "sentiment@1.0.0: the canary attestation is not recorded; refused. regops writes one on main" in out, out
    assert "(the promotion to prod is refused)" in out
