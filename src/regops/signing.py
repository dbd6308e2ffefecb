"""Signatures over a version's files (OpenSSF model-signing), and the one rule that says when one is needed.

What is signed is the version's manifest — every file's path and sha256, as the version file records them — in the
library's own format: an in-toto Statement (predicate ``https://model_signing/signature/v1.0``, serialization
``files``/sha256) in a DSSE envelope, in a Sigstore bundle stored as ``model.sig`` beside the weights (in the
version's Hub commit, in the local store). regops hashes every file once (at registration; again on download) and the
library signs and verifies those digests, so it never re-reads the weights. A consumer without regops checks the
same bundle with ``model_signing verify``, which hashes the downloaded folder itself.

Who counts is ``signing:`` in regops.yaml (files.SigningPolicy): public keys, CA roots for certificates, and the
identities (subject and issuer) a certificate or a keyless Sigstore signature must name.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from regops.errors import RegopsError
from regops.kinds import STAGES, Stage
from regops.records import VersionRecord
from regops.weights import Artifact, Storage, StorageError

__all__ = [
    "SIGNATURE_FILE",
    "Signed",
    "Signer",
    "SigningError",
    "check",
    "chosen",
    "claimed",
    "require",
    "required",
    "sign",
    "sign_statement",
    "signature_artifact",
    "signer_from_env",
    "verify",
    "verify_statement",
]

SIGNATURE_FILE: Final = "model.sig"
# A bundle is a few kilobytes; anything far larger is not one, and is never read whole.
MAX_BUNDLE: Final = 1 << 20
# Files a Hub download holds besides the weights (the model card, LFS rules, the client's .cache/ of a --local-dir
# download): outside the manifest, and named in it as ignored so that `model_signing verify` accepts a snapshot.
_NOT_SIGNED: Final = ("README.md", ".gitattributes", ".cache")

Method = Literal["key", "certificate", "sigstore"]


class SigningError(RegopsError):
    """A signature could not be made, is missing where the policy needs one, or does not verify."""


@dataclass(frozen=True)
class Signer:
    """How register signs: a private key (``key``, or its PEM text ``pem``), with its certificate
    (``certificate``), or keyless (none of them)."""

    key: Path | None = None
    certificate: Path | None = None
    pem: bytes | None = field(default=None, repr=False)


def signer_from_env(name: str) -> Signer | None:
    """The register workflow's signer: the private key (PEM) in environment variable ``name`` (a secret); when it is
    empty, keyless with the run's OIDC token where there is one (GitHub Actions with ``id-token: write``); else
    None (unsigned)."""
    pem = os.environ.get(name, "").strip()
    if pem:
        return Signer(pem=pem.encode() + b"\n")
    return Signer() if os.environ.get("ACTIONS_ID_TOKEN_REQUEST_URL") else None


def chosen(key: str | Path | None, env: str | None) -> Signer | None:
    """The signer of a job that signs attestations: the private key file ``key``, else :func:`signer_from_env`
    over the variable ``env``, else None (it signs nothing)."""
    if key is not None:
        return Signer(Path(key))
    return signer_from_env(env) if env else None


@dataclass(frozen=True)
class Signed:
    """Who a valid signature names: the version file's ``artifacts.signature`` minus the stored file's own fields."""

    method: Method
    key: str | None = None
    identity: str | None = None
    issuer: str | None = None

    def describe(self) -> str:
        if self.identity is not None:
            return f"{self.identity} (issuer {self.issuer})"
        return f"key {self.key}"


def required(policy: dict[str, Any] | None, stage: Stage) -> bool:
    """Whether a version in ``stage`` must carry a valid signature: dev, staging or prod at or after
    ``signing.required_from`` (never a candidate, never archived)."""
    start = (policy or {}).get("required_from")
    if start is None or stage in ("candidate", "archived"):
        return False
    return STAGES.index(stage) >= STAGES.index(start)


# --- signing -----------------------------------------------------------------------------------------------------


def sign(artifacts: Sequence[Artifact], *, name: str, signer: Signer) -> tuple[bytes, Signed]:
    """The bundle over ``artifacts``' paths and digests, and who it names."""
    # Imported here: model-signing loads sigstore and its protobufs (~0.5 s); only signing and verifying pay it.
    from model_signing._signing import signing

    if SIGNATURE_FILE in {a.path for a in artifacts}:
        raise SigningError(
            f"the artifacts hold a file named {SIGNATURE_FILE}, where the signature is stored; rename it"
        )
    payload = signing.Payload(_manifest(artifacts, name))
    try:
        bundle = _signer(signer).sign(payload)
        with _scratch() as folder:
            bundle.write(folder / SIGNATURE_FILE)
            data = (folder / SIGNATURE_FILE).read_bytes()
    except (ValueError, OSError, TypeError) as e:
        raise SigningError(f"cannot sign {name} with {_what(signer)}: {e}; check the key and certificate") from e
    return data, _who(json.loads(data))


def sign_statement(statement: dict[str, Any], *, signer: Signer) -> bytes:
    """An in-toto ``statement`` (an attestation) signed the way :func:`sign` signs a manifest: a DSSE envelope
    (payload type ``application/vnd.in-toto+json``) in a Sigstore bundle."""
    # Imported here: the in-toto protobufs cost ~0.05 s; only signing an attestation pays it.
    from google.protobuf import json_format  # type: ignore[import-untyped]
    from in_toto_attestation.v1 import statement_pb2  # type: ignore[import-untyped]

    payload = _StatementPayload(json_format.ParseDict(statement, statement_pb2.Statement()))
    try:
        with _scratch() as folder:
            _signer(signer).sign(payload).write(folder / "statement.sig")
            return (folder / "statement.sig").read_bytes()
    except (ValueError, OSError, TypeError) as e:
        raise SigningError(f"cannot sign the attestation with {_what(signer)}: {e}; check the key") from e


@dataclass(frozen=True)
class _StatementPayload:
    """What the library's signers read from a payload: ``statement.pb``, the in-toto Statement they sign."""

    pb: Any

    @property
    def statement(self) -> _StatementPayload:
        return self


def verify_statement(data: bytes, *, policy: dict[str, Any], root: Path, ref: str, what: str) -> tuple[Any, Signed]:
    """The in-toto Statement the bundle ``data`` signs, once a key or identity the policy trusts is found to have
    signed it, and who did; refused with :class:`SigningError` otherwise (``what`` names the bundle)."""
    who, bundle = _parsed(data, ref=ref, what=f"{what} is not a Sigstore bundle")
    (kind, payload), key = _trusted(
        lambda verifier: verifier._verify_signed_content(bundle), who, policy=policy, root=root, ref=ref
    )
    if kind != "application/vnd.in-toto+json":
        raise SigningError(f"{ref}: {what} signs a {kind} payload, not an in-toto Statement; refused")
    try:
        return json.loads(payload), dataclasses.replace(who, key=key)
    except ValueError as e:
        raise SigningError(f"{ref}: {what} signs no JSON statement ({_first_line(e)}); refused") from e


def signature_artifact(data: bytes) -> Artifact:
    return Artifact(SIGNATURE_FILE, len(data), hashlib.sha256(data).hexdigest())


def _signer(signer: Signer) -> Any:
    # Imported here: model-signing pulls in sigstore and its protobufs (~0.5 s), which only signing pays.
    from model_signing._signing import sign_certificate, sign_ec_key, sign_sigstore

    if signer.pem is not None:
        # The library reads a key from a file, once, when the signer is made: the file lives only that long.
        with _scratch() as folder:
            (folder / "key.pem").touch(mode=0o600)
            (folder / "key.pem").write_bytes(signer.pem)
            return sign_ec_key.Signer(folder / "key.pem")
    if signer.key is None:
        # Keyless: the ambient OIDC token (GitHub Actions with `id-token: write`), certified by Fulcio, logged in Rekor.
        return sign_sigstore.Signer(use_ambient_credentials=True)
    if signer.certificate is None:
        return sign_ec_key.Signer(signer.key)
    # The file's certificates after the first are its chain (the library refuses an empty chain file).
    return sign_certificate.Signer(signer.key, signer.certificate, [signer.certificate])


def _what(signer: Signer) -> str:
    if signer.pem is not None:
        return "the key from the environment"
    if signer.key is None:
        return "Sigstore (keyless)"
    return f"key {signer.key}" + (f" and certificate {signer.certificate}" if signer.certificate else "")


def _manifest(artifacts: Sequence[Artifact], name: str) -> Any:
    # Imported here: model-signing loads sigstore and its protobufs (~0.5 s); only signing and verifying pay it.
    from model_signing import manifest
    from model_signing._hashing import hashing

    tops = {a.path.split("/")[0] for a in artifacts}
    ignored = [Path(p) for p in (*_NOT_SIGNED, SIGNATURE_FILE) if p not in tops]
    serialization = manifest._FileSerialization("sha256", allow_symlinks=False, ignore_paths=ignored)
    items = [serialization.new_item(a.path, hashing.Digest("sha256", bytes.fromhex(a.sha256))) for a in artifacts]
    return manifest.Manifest(name, items, serialization)


# --- verifying ---------------------------------------------------------------------------------------------------


def verify(data: bytes, artifacts: Sequence[Artifact], *, policy: dict[str, Any], root: Path, ref: str) -> Signed:
    """Check the bundle ``data`` against the policy's keys, roots and identities, and that it signs exactly
    ``artifacts`` (paths and sha256); who signed it. Refused with :class:`SigningError` otherwise."""
    who, bundle = _parsed(data, ref=ref, what=f"{SIGNATURE_FILE} is not a model-signing bundle")
    signed, key = _trusted(lambda verifier: verifier.verify(bundle), who, policy=policy, root=root, ref=ref)
    if signed != _manifest(artifacts, ref):
        raise SigningError(
            f"{ref}: the signature is for other files than the version file records ({_difference(signed, artifacts)})"
            "; refused. The weights or the version file were replaced after signing: register the version again"
        )
    return dataclasses.replace(who, key=key)


def _parsed(data: bytes, *, ref: str, what: str) -> tuple[Signed, Any]:
    """Who the bundle ``data`` claims to be from (unchecked), and the bundle as the library's verifiers read it;
    ``what`` says what it is not when it is no bundle."""
    # Imported here: model-signing loads sigstore and its protobufs (~0.5 s); only signing and verifying pay it.
    from model_signing._signing import sign_sigstore_pb
    from sigstore.models import InvalidBundle

    try:
        who = _who(json.loads(data))
        with _scratch() as folder:
            (folder / SIGNATURE_FILE).write_bytes(data)
            bundle = (_keyless_bundle if who.method == "sigstore" else sign_sigstore_pb.Signature.read)(
                folder / SIGNATURE_FILE
            )
    except (ValueError, KeyError, TypeError, AttributeError, InvalidBundle) as e:
        raise SigningError(f"{ref}: {what} ({_first_line(e)}); refused") from e
    return who, bundle


def _keyless_bundle(path: Path) -> Any:
    # Imported here: model-signing loads sigstore and its protobufs (~0.5 s); only signing and verifying pay it.
    from model_signing._signing import sign_sigstore

    return sign_sigstore.Signature.read(path)


def _trusted(
    use: Callable[[Any], Any], who: Signed, *, policy: dict[str, Any], root: Path, ref: str
) -> tuple[Any, str | None]:
    """What ``use`` returns for the first trusted verifier that accepts the bundle (the signed manifest, the signed
    statement), and the fingerprint of the key that did; refused when none does."""
    reasons: list[str] = []
    for name, verifier in _verifiers(who, policy, root):
        try:
            signed = use(verifier)
        except _refusals() as e:
            reasons.append(f"{name}: {_first_line(e)}")
            continue
        return signed, (_key_file_fingerprint(root / name) if who.method == "key" else who.key)
    trusted = "; ".join(reasons) or f"regops.yaml's signing trusts no {_trust_kind(who.method)}"
    raise SigningError(
        f"{ref}: the signature by {who.describe()} is not from a key or identity regops.yaml's signing trusts "
        f"({trusted}); refused. Sign with a trusted key, or have the admins add it to signing: in regops.yaml"
    )


def _refusals() -> tuple[type[Exception], ...]:
    """What the library's verifiers raise for a signature they refuse: a bad signature, a certificate that does not
    chain, a Sigstore policy or log mismatch (each a ValueError or the library's own error)."""
    # Imported here: cryptography, pyOpenSSL and sigstore (~0.3 s); only verifying pays them.
    from cryptography.exceptions import InvalidSignature
    from OpenSSL.crypto import X509StoreContextError
    from sigstore.errors import VerificationError

    return (ValueError, KeyError, InvalidSignature, X509StoreContextError, VerificationError)


def _key_file_fingerprint(path: Path) -> str:
    # Imported here: cryptography costs ~0.1 s; only verifying with a key file pays it.
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_public_key

    return _fingerprint(
        load_pem_public_key(path.read_bytes()).public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )


def _verifiers(who: Signed, policy: dict[str, Any], root: Path) -> Iterator[tuple[str, Any]]:
    # Imported here: model-signing loads sigstore and its protobufs (~0.5 s); only signing and verifying pay it.
    from model_signing._signing import sign_certificate, sign_ec_key, sign_sigstore

    if who.method == "key":
        for key in policy.get("keys", ()):
            yield key, sign_ec_key.Verifier(_policy_file(root, key))
    elif who.method == "certificate":
        if _identity_trusted(who, policy) and policy.get("roots"):
            yield "roots", sign_certificate.Verifier([_policy_file(root, r) for r in policy["roots"]])
    else:
        for entry in policy.get("identities", ()):
            yield entry["identity"], sign_sigstore.Verifier(identity=entry["identity"], oidc_issuer=entry["issuer"])


def _identity_trusted(who: Signed, policy: dict[str, Any]) -> bool:
    identities = policy.get("identities", ())
    return not identities or any(i["identity"] == who.identity and i["issuer"] == who.issuer for i in identities)


def _trust_kind(method: Method) -> str:
    return {"key": "key (signing.keys)", "certificate": "certificate (signing.roots, signing.identities)"}.get(
        method, "identity (signing.identities)"
    )


def _policy_file(root: Path, name: str) -> Path:
    path = root / name
    if not path.is_file():
        raise SigningError(
            f"signing in regops.yaml names {name}, which is not a file in {root}; add it or fix the path"
        )
    return path


def _difference(signed: Any, artifacts: Sequence[Artifact]) -> str:
    theirs = {d.identifier: d.digest.digest_hex for d in signed.resource_descriptors()}
    ours = {a.path: a.sha256 for a in artifacts}
    changed = sorted(p for p in ours.keys() & theirs.keys() if ours[p] != theirs[p])
    parts = [f"sha256 of {', '.join(changed)} differs"] if changed else []
    if extra := sorted(theirs.keys() - ours.keys()):
        parts.append(f"signs {', '.join(extra)}, which the version file does not list")
    if unsigned := sorted(ours.keys() - theirs.keys()):
        parts.append(f"does not sign {', '.join(unsigned)}")
    return "; ".join(parts)


def claimed(data: bytes) -> Signed:
    """Who the bundle ``data`` claims to be from, unchecked (:func:`verify` checks it)."""
    return _who(json.loads(data))


def _who(bundle: dict[str, Any]) -> Signed:
    """Who a bundle claims to be from (checked only by :func:`verify`)."""
    material = bundle["verificationMaterial"]
    if "publicKey" in material:
        hint = material["publicKey"].get("hint")  # unchecked here: verify records the trusted key that verified
        return Signed("key", key=f"sha256:{hint}" if hint else None)
    if "x509CertificateChain" in material:
        leaf = material["x509CertificateChain"]["certificates"][0]["rawBytes"]
        return _certificate_identity("certificate", leaf)
    return _certificate_identity("sigstore", material["certificate"]["rawBytes"])


def _certificate_identity(method: Method, raw: str) -> Signed:
    # Imported here: cryptography costs ~0.1 s; only reading a signature's certificate pays it.
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    cert = x509.load_der_x509_certificate(base64.b64decode(raw))
    pem = cert.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    return Signed(method, _fingerprint(pem), _subject(cert), _issuer(cert, method))


def _fingerprint(pem: bytes) -> str:
    """A public key's fingerprint as model-signing hints it in a bundle: sha256 of its PEM SubjectPublicKeyInfo."""
    return f"sha256:{hashlib.sha256(pem).hexdigest()}"


def _subject(cert: Any) -> str:
    """The signer as Sigstore names it: the first URI or email of the certificate, else its common name."""
    # Imported here: cryptography costs ~0.1 s; only reading a signature's certificate pays it.
    from cryptography import x509

    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        found = names.get_values_for_type(x509.UniformResourceIdentifier) or names.get_values_for_type(x509.RFC822Name)
        if found:
            return str(found[0])
    except x509.ExtensionNotFound:
        pass
    return _common_name(cert.subject)


def _issuer(cert: Any, method: Method) -> str:
    if method == "sigstore":
        # Fulcio records the OIDC issuer in its own extension (1.3.6.1.4.1.57264.1.8, v2; .1.1, v1).
        from cryptography import x509

        for oid in ("1.3.6.1.4.1.57264.1.8", "1.3.6.1.4.1.57264.1.1"):
            try:
                value = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(oid)).value.value
            except x509.ExtensionNotFound:
                continue
            return _der_string(value)
    return _common_name(cert.issuer)


def _der_string(raw: bytes) -> str:
    """A DER UTF8String or IA5String (Fulcio's v2 extensions), or the raw text (its v1 ones)."""
    if len(raw) >= 2 and raw[0] in (0x0C, 0x16) and raw[1] < 0x80 and len(raw) == raw[1] + 2:
        return raw[2:].decode(errors="replace")
    return raw.decode(errors="replace")


def _common_name(name: Any) -> str:
    # Imported here: cryptography costs ~0.1 s; only reading a signature's certificate pays it.
    from cryptography.x509.oid import NameOID

    found = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(found[0].value) if found else str(name.rfc4514_string())


def _first_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0]


@contextmanager
def _scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="regops-sig-") as tmp:
        yield Path(tmp)


# --- the rule every verb calls -----------------------------------------------------------------------------------


def check(
    record: VersionRecord, *, stage: Stage, policy: dict[str, Any] | None, storage: Storage, root: Path, action: str
) -> Signed | None:
    """Verify ``record``'s signature before ``action`` (e.g. "the download") puts it in, or serves it from, ``stage``;
    ``root`` is the repository the policy's key and root files are read from.

    The one rule for download, promote and sync (the PR check applies :func:`require`): a version that records a
    signature must carry a valid one (whatever the stage); a version entering or in a stage at or after
    ``signing.required_from`` must record one. None when neither applies (no signature, and none required)."""
    entry = require(record, stage=stage, policy=policy, action=action)
    if entry is None or policy is None:
        return None
    data = fetch(storage, record)
    artifacts = [Artifact.from_record(f) for f in record.raw["artifacts"]["files"]]
    try:
        return verify(data, artifacts, policy=policy, root=root, ref=record.ref)
    except SigningError as e:
        raise SigningError(f"{e} ({action} is refused)") from e


def _read_bounded(chunks: Iterable[bytes], size: int) -> bytes:
    """At most ``size`` + 1 bytes: one too many is enough to refuse; an endless stream is never read whole."""
    data = bytearray()
    for chunk in chunks:
        data += chunk
        if len(data) > size:
            break
    return bytes(data)


def require(
    record: VersionRecord, *, stage: Stage, policy: dict[str, Any] | None, action: str
) -> dict[str, Any] | None:
    """The half of :func:`check` that needs no storage: ``record``'s ``artifacts.signature``, refused when it is
    missing and ``stage`` needs one. The approvals check, which holds no Hub token, applies this half; sync verifies
    the signature itself before any ref moves."""
    entry: dict[str, Any] | None = record.raw["artifacts"].get("signature")
    if entry is None and required(policy, stage):
        raise SigningError(
            f"{record.ref} has no signature (artifacts.signature), and regops.yaml's signing.required_from is "
            f"{(policy or {})['required_from']}, so {stage} needs one: {action} is refused. Register it again "
            "with --signing-key (or from the register workflow, which signs)"
        )
    return entry


def fetch(storage: Storage, record: VersionRecord) -> bytes:
    """The stored bundle ``record`` names, checked against its recorded size and sha256."""
    entry = record.raw["artifacts"]["signature"]
    artifact = Artifact(entry["path"], entry["size"], entry["sha256"])
    if entry["size"] > MAX_BUNDLE:
        raise SigningError(f"{record.ref}: artifacts.signature says {entry['size']} bytes; no bundle is that large")
    where = storage.describe(record.storage)
    try:
        data = _read_bounded(storage.open(artifact, record.storage, 0), entry["size"])
    except StorageError as e:
        raise SigningError(f"{record.ref}: cannot read its signature from {where}: {e}") from e
    if signature_artifact(data) != artifact:
        raise SigningError(
            f"{record.ref}: the signature in {where} is not the one the version file records (sha256 "
            f"{hashlib.sha256(data).hexdigest()}, expected {entry['sha256']}); refused"
        )
    return data
