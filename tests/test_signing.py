"""Signed weights end to end: register signs, promote/download/sync/verify check, tampering is refused.

Keys and certificates are made here with ``cryptography``; the Hub is the local server (tests/servers/hub.py) that
the real ``huggingface_hub`` client talks to. Every tamper case is judged on its outcome: DEST holds nothing, no Hub
ref moved, the version file is unchanged, and the message says what failed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from huggingface_hub import CommitOperationAdd, HfApi

from regops.cli import main
from regops.registry import Registry
from tests.conftest import Tree, commit, git, registry_repo, run_regops, weights
from tests.servers.github_fixtures import GitHubFixture
from tests.test_hub import HF_CONFIG, HOT, register

SIGNING = """\
signing:
  required_from: staging
  keys: [signing/release.pub]
  roots: [signing/ca.pem]
  identities: [{identity: trainer@acme.example, issuer: Acme Signing CA}]
"""


# --- keys and certificates ---------------------------------------------------------------------------------------


def ec_key(folder: Path, name: str) -> ec.EllipticCurvePrivateKey:
    """A P-256 key pair written as ``name.pem`` (private) and ``name.pub`` (public) in ``folder``."""
    key = ec.generate_private_key(ec.SECP256R1())
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    (folder / f"{name}.pub").write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return key


def certificate(
    folder: Path, name: str, *, subject: str, issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None = None
) -> tuple[x509.Name, ec.EllipticCurvePrivateKey]:
    """``name.crt`` for a new key ``name.pem``: a CA (self-signed) when ``issuer`` is None, else a code-signing leaf
    whose subject alternative name is the email ``subject``."""
    key = ec_key(folder, name)
    now = dt.datetime.now(dt.UTC)
    own = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(own)
        .issuer_name(issuer[0] if issuer else own)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=30))
    )
    if issuer is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        builder = builder.add_extension(_usage(cert_sign=True), critical=True)
    else:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.RFC822Name(subject)]), critical=False)
        builder = builder.add_extension(_usage(cert_sign=False), critical=True)
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
    cert = builder.sign(issuer[1] if issuer else key, hashes.SHA256())
    (folder / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return own, key


def _usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def signed_repo(tmp_path: Path, config: str = HF_CONFIG) -> Path:
    """A registry repository whose regops.yaml trusts signing/release.pub and certificates from signing/ca.pem
    for trainer@acme.example; the keys are committed at the repository root."""
    repo = registry_repo(tmp_path, config + SIGNING)
    keys = repo / "signing"
    ec_key(keys, "release")
    ca = certificate(keys, "ca", subject="Acme Signing CA")
    (keys / "ca.pem").write_bytes((keys / "ca.crt").read_bytes())
    certificate(tmp_path / "trainer", "trainer", subject="trainer@acme.example", issuer=ca)
    ec_key(tmp_path / "attacker", "attacker")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "signing keys")
    return repo


def local_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """:func:`signed_repo` with the test registry's local store, as the working directory."""
    repo = signed_repo(tmp_path, config=(Path(__file__).parent / "data/registry/regops.yaml").read_text())
    monkeypatch.chdir(repo)
    return repo


def refused_download(capsys: pytest.CaptureFixture[str], repo: Path, ref: str, dest: Path) -> str:
    """``regops download REF`` refused: exit 1 and nothing in DEST; what it printed."""
    out = run_regops(capsys, repo, "download", ref, "--dest", str(dest), code=1)
    assert not dest.exists() or not any(dest.iterdir())
    return out


def refused_promotion(capsys: pytest.CaptureFixture[str], repo: Path) -> str:
    """``regops promote sentiment@1.0.0 --to staging`` refused: exit 1, the version file as it was; the output."""
    before = version_file(repo, "1.0.0").read_text()
    out = run_regops(
        capsys, repo, "promote", "sentiment@1.0.0", "--to", "staging", "--notes", "x", "--by", "alice", code=1
    )
    assert version_file(repo, "1.0.0").read_text() == before
    return out


def fingerprint(key: ec.EllipticCurvePrivateKey) -> str:
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return f"sha256:{hashlib.sha256(pem).hexdigest()}"


def version_file(repo: Path, version: str) -> Path:
    return repo / "registry" / "models" / "sentiment" / f"{version}.yaml"


def branches(api: HfApi) -> dict[str, str]:
    return {b.name: b.target_commit for b in api.list_repo_refs(HOT).branches if b.name != "main"}


# --- end to end --------------------------------------------------------------------------------------------------


def test_register_promote_download_verify_with_a_key_on_the_hub(
    hub_env: HfApi, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = signed_repo(tmp_path)
    monkeypatch.chdir(repo)
    blob = weights(tmp_path / "out-a", "1.0.0")
    key = str(repo / "signing" / "release.pem")
    register(capsys, repo, tmp_path, "out-a", "--version", "1.0.0", "--signing-key", key)

    record = Registry.load(repo / "registry").version("sentiment", "1.0.0")
    signature = record.raw["artifacts"]["signature"]
    assert signature["method"] == "key" and signature["path"] == "model.sig"
    public = (repo / "signing" / "release.pub").read_bytes()
    assert signature["key"] == f"sha256:{hashlib.sha256(public).hexdigest()}"
    # The bundle is in the version's own Hub commit, beside the weights, with the sha256 the version file records.
    revision = record.storage["revision"]
    stored = Path(hub_env.hf_hub_download(HOT, "model.sig", revision=revision)).read_bytes()
    assert hashlib.sha256(stored).hexdigest() == signature["sha256"]

    run_regops(capsys, repo, "auto-promote", "--by", "github-actions[bot]")
    run_regops(capsys, repo, "promote", "sentiment@1.0.0", "--to", "staging", "--notes", "ready", "--by", "alice")
    run_regops(capsys, repo, "sync")
    assert branches(hub_env)["staging"] == revision

    out = run_regops(capsys, repo, "download", "sentiment@staging", "--dest", str(tmp_path / "dest"))
    assert "2 files downloaded and verified" in out
    assert (tmp_path / "dest" / "model.safetensors").read_bytes() == blob

    # Promoted from a checkout, not a pull request: the review link is broken until the stamp records approvers.
    out = run_regops(capsys, repo, "verify", "sentiment@staging", code=1)
    assert f"signature ok by key {signature['key']}" in out
    assert "weights ok by training-bot[bot]" in out
    assert "review BROKEN by alice" in out and "needs 1 approval(s); the transition records none stamped" in out
    stamped = version_file(repo, "1.0.0")
    stamped.write_text(stamped.read_text().replace("notes: ready}", "notes: ready, pr: 7, approved_by: [bob]}"))
    git(repo, "commit", "-qam", "a stamp by hand: PR #7 approved by bob")
    # Written by hand, not by the stamp: no signed review attestation (tests/test_attest.py has the stamp's).
    out = run_regops(capsys, repo, "verify", "sentiment@staging", code=1)
    assert "review BROKEN by bob" in out
    assert "the review attestation of transitions[1] (dev -> staging, PR #7) is not recorded" in out

    # A consumer without regops: model_signing verifies the Hub snapshot itself (it re-hashes the files).
    import model_signing

    snapshot = Path(hub_env.snapshot_download(HOT, revision=revision, local_dir=tmp_path / "snapshot"))
    model_signing.verifying.Config().use_elliptic_key_verifier(public_key=repo / "signing" / "release.pub").verify(
        snapshot, snapshot / "model.sig"
    )


def test_a_certificate_signature_names_its_subject_and_issuer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = local_repo(tmp_path, monkeypatch)
    weights(tmp_path / "out-a", "1.0.0")
    trainer = tmp_path / "trainer"
    register(
        capsys,
        repo,
        tmp_path,
        "out-a",
        "--version",
        "1.0.0",
        "--signing-key",
        str(trainer / "trainer.pem"),
        "--signing-cert",
        str(trainer / "trainer.crt"),
    )
    signature = Registry.load(repo / "registry").version("sentiment", "1.0.0").raw["artifacts"]["signature"]
    assert (signature["method"], signature["identity"], signature["issuer"]) == (
        "certificate",
        "trainer@acme.example",
        "Acme Signing CA",
    )
    run_regops(capsys, repo, "auto-promote", "--by", "github-actions[bot]")
    run_regops(capsys, repo, "promote", "sentiment@1.0.0", "--to", "staging", "--notes", "ready", "--by", "alice")
    out = run_regops(capsys, repo, "verify", "sentiment@1.0.0", code=1)  # the review is not stamped here
    assert "signature ok by trainer@acme.example (issuer Acme Signing CA)" in out


# --- tampering ---------------------------------------------------------------------------------------------------


def test_weights_and_digests_swapped_together_are_refused_everywhere(
    hub_env: HfApi, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Hub token holder pushes other weights with the old signature beside them and edits the version file to
    match: the files agree with the record, but the signature does not sign them."""
    repo = signed_repo(tmp_path)
    monkeypatch.chdir(repo)
    weights(tmp_path / "out-a", "1.0.0")
    register(capsys, repo, tmp_path, "out-a", "--version", "1.0.0", "--signing-key", "signing/release.pem")
    run_regops(capsys, repo, "auto-promote", "--by", "github-actions[bot]")
    run_regops(capsys, repo, "promote", "sentiment@1.0.0", "--to", "staging", "--notes", "ready", "--by", "alice")
    run_regops(capsys, repo, "sync")
    good = branches(hub_env)["staging"]

    evil = hashlib.sha256(b"evil").digest() * 40_000
    old_sig = Path(hub_env.hf_hub_download(HOT, "model.sig", revision=good)).read_bytes()
    commit = hub_env.create_commit(
        HOT,
        [CommitOperationAdd("model.safetensors", evil), CommitOperationAdd("model.sig", old_sig)],
        commit_message="planted",
    ).oid
    path = version_file(repo, "1.0.0")
    text = path.read_text()
    original = hashlib.sha256(hashlib.sha256(b"1.0.0").digest() * 40_000).hexdigest()
    path.write_text(text.replace(original, hashlib.sha256(evil).hexdigest()).replace(good, commit))
    git(repo, "commit", "-qam", "swap weights and digests")
    tampered = path.read_text()

    out = refused_download(capsys, repo, "sentiment@staging", tmp_path / "dest")
    assert "sentiment@1.0.0: the signature is for other files than the version file records" in out
    assert "sha256 of model.safetensors differs" in out and "the download is refused" in out

    out = run_regops(capsys, repo, "sync", code=1)
    assert "the signature is for other files" in out
    assert branches(hub_env)["staging"] == good  # the staging ref did not move to the planted commit
    assert "v1.0.0" in {t.name for t in hub_env.list_repo_refs(HOT).tags}
    assert {t.name: t.target_commit for t in hub_env.list_repo_refs(HOT).tags}["v1.0.0"] == good

    out = run_regops(capsys, repo, "verify", "sentiment@staging", code=1)
    assert "signature BROKEN" in out and out.rstrip().endswith("NOT verified: a link is broken")
    assert path.read_text() == tampered


def test_a_signature_from_an_untrusted_key_is_refused_for_promotion_and_download(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = local_repo(tmp_path, monkeypatch)
    weights(tmp_path / "out-a", "1.0.0")
    attacker = str(tmp_path / "attacker" / "attacker.pem")
    register(capsys, repo, tmp_path, "out-a", "--version", "1.0.0", "--signing-key", attacker)
    run_regops(capsys, repo, "auto-promote", "--by", "github-actions[bot]")

    out = refused_promotion(capsys, repo)
    assert "is not from a key or identity regops.yaml's signing trusts" in out
    assert "signing/release.pub: Key mismatch" in out and "the promotion to staging is refused" in out

    out = refused_download(capsys, repo, "sentiment@1.0.0", tmp_path / "dest")
    assert "the download is refused" in out


def test_a_trusted_signature_for_other_files_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """1.0.0's version file made to name 1.1.0's (valid, trusted) signature: it signs other files."""
    repo = local_repo(tmp_path, monkeypatch)
    weights(tmp_path / "out-a", "1.0.0")
    weights(tmp_path / "out-b", "1.1.0")
    register(capsys, repo, tmp_path, "out-a", "--version", "1.0.0", "--signing-key", "signing/release.pem")
    register(capsys, repo, tmp_path, "out-b", "--version", "1.1.0", "--signing-key", "signing/release.pem")
    registry = Registry.load(repo / "registry")
    mine = registry.version("sentiment", "1.0.0").raw["artifacts"]["signature"]
    other = registry.version("sentiment", "1.1.0").raw["artifacts"]["signature"]
    path = version_file(repo, "1.0.0")
    path.write_text(
        path.read_text()
        .replace(mine["sha256"], other["sha256"])
        .replace(
            f"size: {mine['size']}, sha256: {other['sha256']}", f"size: {other['size']}, sha256: {other['sha256']}"
        )
    )
    git(repo, "commit", "-qam", "another version's signature")

    out = refused_download(capsys, repo, "sentiment@1.0.0", tmp_path / "dest")
    assert "the signature is for other files than the version file records" in out


def test_an_unsigned_version_enters_dev_but_never_staging(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = local_repo(tmp_path, monkeypatch)
    weights(tmp_path / "out-a", "1.0.0")
    register(capsys, repo, tmp_path, "out-a", "--version", "1.0.0")
    run_regops(capsys, repo, "auto-promote", "--by", "github-actions[bot]")
    assert Registry.load(repo / "registry").version("sentiment", "1.0.0").stage == "dev"

    out = refused_promotion(capsys, repo)
    assert "sentiment@1.0.0 has no signature (artifacts.signature)" in out
    assert "signing.required_from is staging, so staging needs one: the promotion to staging is refused" in out
    out = run_regops(capsys, repo, "verify", "sentiment@dev", code=1)
    assert "signature BROKEN" in out and "no signature" in out
    chain = json.loads(run_regops(capsys, repo, "verify", "sentiment@dev", "--json", code=1))
    assert (chain["version"], chain["stage"]) == ("sentiment@1.0.0", "dev")
    assert [(link["name"], link["ok"]) for link in chain["links"]] == [
        ("weights", True),
        ("signature", False),
        ("review", True),  # dev needs no approval
        ("canary", True),
    ]


def test_signing_cert_without_a_key_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = local_repo(tmp_path, monkeypatch)
    weights(tmp_path / "out-a", "1.0.0")

    args = ["register", "sentiment", "--artifacts", str(tmp_path / "out-a"), "--evals", str(tmp_path / "e.json")]
    (tmp_path / "e.json").write_text('{"accuracy": 0.9}')
    (tmp_path / "p.json").write_text("{}")
    args += ["--params", str(tmp_path / "p.json"), "--dataset", "reviews@2025-09-08", "--version", "1.0.0"]
    assert main([*args, "--signing-cert", str(tmp_path / "trainer/trainer.crt")]) == 1
    assert "--signing-cert needs --signing-key" in capsys.readouterr().err
    assert not version_file(repo, "1.0.0").exists()
    assert not (repo / ".regops" / "store").exists()


def test_the_approvals_check_refuses_an_unsigned_version_entering_staging(
    history_repo: Path, gh: GitHubFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """alice's staging PR for the unsigned sentiment 1.1.0, approved by an owner, fails once main's regops.yaml
    asks for signatures from staging on; the status says why."""
    from tests.test_github import REPO, check, open_pull, sha

    git(history_repo, "checkout", "-q", "-b", "promote-1.1.0")
    run_regops(
        capsys, history_repo, "promote", "sentiment@1.1.0", "--to", "staging", "--notes", "ready", "--by", "alice"
    )
    git(history_repo, "checkout", "-q", "main")
    ec_key(history_repo / "signing", "release")
    (history_repo / "signing" / "release.pem").unlink()
    config = history_repo / "registry" / "regops.yaml"
    config.write_text(config.read_text() + "signing: {required_from: staging, keys: [signing/release.pub]}\n")
    commit(history_repo, "main asks for signed versions from staging on")
    number = open_pull(gh, history_repo, author="alice", branch="promote-1.1.0")
    gh.add_review(REPO, number, "bob", "APPROVED")

    code, out = check(capsys, number)
    assert code == 1, out
    assert "sentiment@1.1.0 has no signature (artifacts.signature)" in out
    assert "so staging needs one: moving it to staging is refused" in out
    [status] = gh.statuses(REPO, sha(history_repo, "promote-1.1.0"))
    assert status["state"] == "failure"


def test_the_workflow_signs_with_the_key_in_its_environment_and_without_one_or_oidc_not_at_all(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--signing-key-env NAME`` as register.yml passes it: the secret's key when set; unset and no OIDC token
    (outside Actions), the version is registered unsigned."""
    repo = local_repo(tmp_path, monkeypatch)
    weights(tmp_path / "out-a", "1.0.0")
    weights(tmp_path / "out-b", "1.1.0")
    monkeypatch.delenv("ACTIONS_ID_TOKEN_REQUEST_URL", raising=False)
    monkeypatch.setenv("REGOPS_SIGNING_KEY", (repo / "signing" / "release.pem").read_text())
    register(capsys, repo, tmp_path, "out-a", "--version", "1.0.0", "--signing-key-env", "REGOPS_SIGNING_KEY")
    monkeypatch.setenv("REGOPS_SIGNING_KEY", "")
    register(capsys, repo, tmp_path, "out-b", "--version", "1.1.0", "--signing-key-env", "REGOPS_SIGNING_KEY")

    registry = Registry.load(repo / "registry")
    public = (repo / "signing" / "release.pub").read_bytes()
    signed = registry.version("sentiment", "1.0.0").raw["artifacts"]["signature"]
    assert (signed["method"], signed["key"]) == ("key", f"sha256:{hashlib.sha256(public).hexdigest()}")
    assert "signature" not in registry.version("sentiment", "1.1.0").raw["artifacts"]


def test_a_keyless_bundle_names_the_identity_and_issuer_fulcio_certified(tmp_path: Path) -> None:
    """What a Sigstore bundle's certificate says (Fulcio: the SAN URI, the issuer in extension 1.3.6.1.4.1.57264.1.8
    as a DER UTF8String) is who the version file records; a bundle the library cannot load is refused."""
    import base64

    from regops.signing import Signed, SigningError, claimed, verify

    name, ca = certificate(tmp_path, "fulcio", subject="sigstore-intermediate")
    key = ec.generate_private_key(ec.SECP256R1())
    identity = "https://github.com/acme/models/.github/workflows/register.yml@refs/heads/main"
    issuer = b"https://token.actions.githubusercontent.com"
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(minutes=10))
        .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(identity)]), critical=True)
        .add_extension(
            x509.UnrecognizedExtension(
                x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8"), bytes([0x0C, len(issuer)]) + issuer
            ),
            critical=False,
        )
        .sign(ca, hashes.SHA256())
    )
    raw = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
    bundle = {
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {"certificate": {"rawBytes": raw}},
    }
    with pytest.raises(SigningError) as refused:  # no transparency log entries, no envelope: not a bundle
        verify(json.dumps(bundle).encode(), [], policy={"identities": []}, root=tmp_path, ref="sentiment@1.0.0")
    assert str(refused.value).startswith("sentiment@1.0.0: model.sig is not a model-signing bundle (")

    assert claimed(json.dumps(bundle).encode()) == Signed("sigstore", fingerprint(key), identity, issuer.decode())


def test_a_signed_version_keeps_its_signature_through_cold_storage_and_restore_on_the_hub(
    hub_env: HfApi, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Retention copies the bundle with the weights to the archive repo, and restore back: the restored commit
    holds model.sig, so the version still downloads, verified."""
    repo = signed_repo(tmp_path)
    monkeypatch.chdir(repo)
    blob = weights(tmp_path / "out-a", "1.0.0")
    register(capsys, repo, tmp_path, "out-a", "--version", "1.0.0", "--signing-key", "signing/release.pem")
    signature = Registry.load(repo / "registry").version("sentiment", "1.0.0").raw["artifacts"]["signature"]
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(days=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    run_regops(capsys, repo, "retention", "apply", "--at", later)  # copied to cold and recorded
    run_regops(capsys, repo, "retention", "apply", "--at", later)  # the hot copy released
    cold = Registry.load(repo / "registry").version("sentiment", "1.0.0").storage
    assert cold["tier"] == "cold"
    archived = hub_env.hf_hub_download(cold["repo"], "model.sig", revision=cold["revision"])
    assert hashlib.sha256(Path(archived).read_bytes()).hexdigest() == signature["sha256"]

    run_regops(capsys, repo, "restore", "sentiment@1.0.0")
    hot = Registry.load(repo / "registry").version("sentiment", "1.0.0").storage
    assert {f.path for f in hub_env.list_repo_tree(HOT, revision=hot["revision"])} >= {"model.sig", "config.json"}
    run_regops(capsys, repo, "download", "sentiment@1.0.0", "--dest", str(tmp_path / "back"))
    assert (tmp_path / "back" / "model.safetensors").read_bytes() == blob


def test_a_rollback_to_an_unsigned_former_prod_version_is_refused(
    stored_tree: Tree, capsys: pytest.CaptureFixture[str]
) -> None:
    stored_tree.write(
        "regops.yaml", stored_tree.read("regops.yaml") + "signing: {required_from: prod, keys: [signing/release.pub]}\n"
    )
    before = stored_tree.snapshot()
    code = main(
        ["rollback", "sentiment", "--to", "1.0.0", "--notes", "x", "--by", "carol", "--registry", str(stored_tree.root)]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "sentiment@1.0.0 has no signature (artifacts.signature)" in err
    assert "so prod needs one: the rollback to prod is refused" in err
    after = stored_tree.snapshot()
    assert after.pop("registry/.regops.lock") == b""  # the write lock, empty, as every write leaves it
    assert after == before
