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

from regops.cli import main
from regops.registry import Registry
from tests.conftest import git, run_regops, weights
from tests.servers.github_fixtures import GitHubFixture
from tests.test_github import REPO, open_pull, sha
from tests.test_hub import register
from tests.test_signing import ec_key, local_repo, version_file

ATTESTATIONS = Path("registry/models/sentiment/attestations")


def through_pr(capsys: pytest.CaptureFixture[str], repo: Path, gh: GitHubFixture, *, to: str, version: str) -> int:
    """alice promotes ``version`` to ``to`` in a pull request, bob approves, it merges into main; its number."""
    branch = f"promote-{version}-{to}"
    git(repo, "checkout", "-q", "-b", branch)
    run_regops(capsys, repo, "promote", f"sentiment@{version}", "--to", to, "--notes", "ready", "--by", "alice")
    number = open_pull(gh, repo, author="alice", branch=branch)
    gh.add_review(REPO, number, "bob", "APPROVED")
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--no-ff", "-m", f"Merge pull request #{number}", branch)
    gh.merge(REPO, number, sha(repo))
    return number


@pytest.fixture
def staged(
    tmp_path: Path, gh: GitHubFixture, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Path:
    """sentiment@1.0.0 signed, in staging through PR #1 approved by bob, stamped with the trusted key."""
    repo = local_repo(tmp_path, monkeypatch)
    weights(tmp_path / "out-a", "1.0.0")
    key = str(repo / "signing" / "release.pem")
    register(capsys, repo, tmp_path, "out-a", "--version", "1.0.0", "--signing-key", key)
    run_regops(capsys, repo, "auto-promote", "--by", "github-actions[bot]")
    through_pr(capsys, repo, gh, to="staging", version="1.0.0")
    run_regops(capsys, repo, "pr", "stamp", "--signing-key", key)
    return repo


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


def test_a_consumer_verifies_the_review_statement_with_openssl_alone(staged: Path, tmp_path: Path) -> None:
    """README "Provenance": the DSSE signature over PAE(payloadType, payload), checked with the public key."""
    envelope = json.loads(review_file(staged).read_bytes())["dsseEnvelope"]
    payload, kind = base64.b64decode(envelope["payload"]), envelope["payloadType"].encode()
    (tmp_path / "pae.bin").write_bytes(b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload))
    (tmp_path / "sig.der").write_bytes(base64.b64decode(envelope["signatures"][0]["sig"]))
    public = staged / "signing" / "release.pub"
    openssl = ["openssl", "dgst", "-sha256", "-verify", str(public), "-signature", str(tmp_path / "sig.der")]
    assert subprocess.run([*openssl, str(tmp_path / "pae.bin")], capture_output=True, text=True).stdout == (
        "Verified OK\n"
    )
    (tmp_path / "pae.bin").write_bytes((tmp_path / "pae.bin").read_bytes().replace(b'"bob"', b'"eve"'))
    assert subprocess.run([*openssl, str(tmp_path / "pae.bin")], capture_output=True).returncode == 1
