"""The file kinds of a registry, as pydantic models: the one source of truth.

``schemas/*.json`` is generated from these classes (``regops schema export``).
Every constraint here is expressible in JSON Schema, so an editor that reads
the schema rejects exactly what ``regops validate`` rejects per field; rules that
need more than one value or more than one file live in ``policy.py``.

Models are strict (no coercion: ``"3"`` is not an int, ``true`` is not a
number) and forbid unknown keys. The loader hands timestamps over as strings
(see ``store.py``), so a timestamp is parsed here, by one regular expression
that the exported schema carries too.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    WithJsonSchema,
)
from pydantic.json_schema import SkipJsonSchema

from regops.kinds import LOGIN_PATTERN, STAGES, Stage

__all__ = [
    "STAGES",
    "ArtifactFile",
    "Artifacts",
    "Canary",
    "DatasetVersion",
    "GuardMetric",
    "Measure",
    "ModelConfig",
    "ModelVersion",
    "RegistryConfig",
    "Stage",
    "Transition",
]


# SemVer 2.0.0, the regular expression published at semver.org.
SEMVER_PATTERN: Final = (
    r"(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)"
    r"(?:-(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*)?"
    r"(?:\+[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*)?"
)
NAME_PATTERN: Final = r"[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?"
DATASET_VERSION_PATTERN: Final = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62}[A-Za-z0-9])?"
_TZ: Final = r"(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)"
_DATETIME: Final = (
    r"\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"
    r"T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d{1,6})?"
)
TIMESTAMP_PATTERN: Final = f"^{_DATETIME}{_TZ}$"
_NAIVE_TIMESTAMP: Final = re.compile(f"^{_DATETIME}$")
HF_REF_PATTERN: Final = r"hf://[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*@[0-9a-f]{40}"
PARENT_PATTERN: Final = f"^(?:{SEMVER_PATTERN}|{NAME_PATTERN}@{SEMVER_PATTERN}|{HF_REF_PATTERN})$"
DATASET_REF_PATTERN: Final = f"^{NAME_PATTERN}@{DATASET_VERSION_PATTERN}$"
# blake3/sha256/md5 digests of content; iceberg/delta name an immutable snapshot of a table (no data read).
CONTENT_HASH_PATTERN: Final = r"^(?:(?:blake3|sha256):[0-9a-f]{64}|md5:[0-9a-f]{32}|iceberg:[0-9]+|delta:[0-9]+)$"
# Relative, forward slashes only, no empty, "." or ".." segment, no leading slash; never inside `.regops-partial/`,
# the folder `regops download` stages into inside DEST and removes once the files are in place.
ARTIFACT_PATH_PATTERN: Final = (
    r"^(?!.*\\)(?!/)(?!.*//)(?!(?:.*/)?\.\.?(?:/|$))(?!\.regops-partial(?:/|$))[^\x00-\x1f]+$"
)


def _pattern(pattern: str, message: str) -> AfterValidator:
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.match(value):
            raise ValueError(message)
        return value

    return AfterValidator(check)


def _schema(pattern: str) -> Any:
    return Field(json_schema_extra={"pattern": pattern})


def _parse_timestamp(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("expected an ISO 8601 timestamp such as 2026-11-20T10:02:11Z")
    if _NAIVE_TIMESTAMP.match(value):
        raise ValueError(f"timestamp {value!r} has no time zone; add Z or an offset such as +02:00")
    if not re.match(TIMESTAMP_PATTERN, value):
        raise ValueError(f"{value!r} is not an ISO 8601 timestamp such as 2026-11-20T10:02:11Z")
    return datetime.fromisoformat(value)


Timestamp = Annotated[
    datetime,
    BeforeValidator(_parse_timestamp),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": TIMESTAMP_PATTERN}),
]
SemVer = Annotated[
    str,
    _schema(f"^{SEMVER_PATTERN}$"),
    _pattern(
        f"^{SEMVER_PATTERN}$",
        "not a SemVer 2.0 version (expected MAJOR.MINOR.PATCH[-PRE][+BUILD], e.g. 1.4.0-rc.1)",
    ),
]
Name = Annotated[
    str,
    _schema(f"^{NAME_PATTERN}$"),
    _pattern(f"^{NAME_PATTERN}$", "names use lowercase letters, digits, '.', '_' and '-' (at most 64)"),
]
DatasetVersionName = Annotated[
    str,
    _schema(f"^{DATASET_VERSION_PATTERN}$"),
    _pattern(f"^{DATASET_VERSION_PATTERN}$", "dataset versions use letters, digits, '.', '_' and '-'"),
]
DatasetRef = Annotated[
    str,
    _schema(DATASET_REF_PATTERN),
    _pattern(DATASET_REF_PATTERN, "expected a dataset reference NAME@VERSION, e.g. reviews@2025-09-08"),
]
ParentRef = Annotated[
    str,
    _schema(PARENT_PATTERN),
    _pattern(
        PARENT_PATTERN,
        "expected a parent VERSION, MODEL@VERSION or hf://ORG/REPO@<40-hex commit>",
    ),
]
ContentHash = Annotated[
    str,
    _schema(CONTENT_HASH_PATTERN),
    _pattern(
        CONTENT_HASH_PATTERN,
        "expected blake3:<64 hex>, sha256:<64 hex>, md5:<32 hex>, iceberg:<snapshot id> or delta:<version>",
    ),
]
Sha256 = Annotated[
    str,
    _schema(r"^[0-9a-f]{64}$"),
    _pattern(r"^[0-9a-f]{64}$", "expected a sha256 digest: 64 lowercase hex digits"),
]
GitCommit = Annotated[
    str,
    _schema(r"^[0-9a-f]{40}$"),
    _pattern(r"^[0-9a-f]{40}$", "expected a full commit id: 40 lowercase hex digits"),
]
ArtifactPath = Annotated[
    str,
    _schema(ARTIFACT_PATH_PATTERN),
    _pattern(
        ARTIFACT_PATH_PATTERN,
        "artifact paths are relative, use '/', never contain '..', '.', '\\' or control characters, and are never "
        "under .regops-partial/ (the folder `regops download` stages into and removes)",
    ),
]
HUB_REPO_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$"
HubRepo = Annotated[
    str,
    _schema(HUB_REPO_PATTERN),
    _pattern(HUB_REPO_PATTERN, "expected a Hub repository ORG/NAME, e.g. acme-ml/sentiment"),
]
OWNER_PATTERN: Final = r"^@?[A-Za-z0-9][A-Za-z0-9_.-]*(?:/[A-Za-z0-9][A-Za-z0-9_.-]*)?$"
Owner = Annotated[
    str,
    _schema(OWNER_PATTERN),
    _pattern(OWNER_PATTERN, "expected a GitHub user (alice) or team (@acme/ml-team)"),
]
Person = Annotated[str, Field(min_length=1, max_length=100)]
Login = Annotated[
    str,
    _schema(LOGIN_PATTERN),
    _pattern(LOGIN_PATTERN, "expected a GitHub login (letters, digits and '-'; an App as `name[bot]`)"),
]
Percent = Annotated[float, Field(gt=0, le=100)]


class _Strict(BaseModel):
    model_config = ConfigDict(
        strict=True,
        extra="forbid",
        frozen=True,
        regex_engine="python-re",
        populate_by_name=True,
        # Built on first use: a check builds the four file kinds' validators, not one per nested model (~0.05 s).
        defer_build=True,
    )


# --- the version file --------------------------------------------------------


class Code(_Strict):
    repo: Annotated[str, Field(min_length=1)]
    commit: GitCommit


class Training(_Strict):
    dataset: DatasetRef
    dataset_hash: ContentHash
    code: Code | None = None
    run_url: str | None = None


class Evals(_Strict):
    dataset: DatasetRef | None = None
    scores: Annotated[dict[str, float], Field(min_length=1)]


class ArtifactFile(_Strict):
    path: ArtifactPath
    size: Annotated[int, Field(ge=0)]
    sha256: Sha256


class HfStorage(_Strict):
    backend: Literal["hf"]
    repo: HubRepo
    revision: GitCommit
    tier: Literal["hot", "cold"] = "hot"


class LocalStorage(_Strict):
    backend: Literal["local"]
    tier: Literal["hot", "cold"] = "hot"


class Signature(_Strict):
    """``artifacts.signature``: the model-signing bundle stored beside the weights, and who signed it.

    ``key``: the signing public key's fingerprint (``sha256:<hex>`` of its PEM form, model-signing's hint), for
    key and certificate signatures; ``identity``/``issuer``: the certificate's subject and issuer (keyless: the OIDC
    identity and issuer)."""

    path: ArtifactPath
    size: Annotated[int, Field(ge=1)]
    sha256: Sha256
    method: Literal["key", "certificate", "sigstore"]
    key: Annotated[str, Field(pattern=r"^sha256:[0-9a-f]{64}$")] | None = None
    identity: str | None = None
    issuer: str | None = None


class Artifacts(_Strict):
    files: Annotated[list[ArtifactFile], Field(min_length=1)]
    storage: Annotated[HfStorage | LocalStorage, Field(discriminator="backend")]
    signature: Signature | None = None


class Attestation(_Strict):
    """A signed in-toto attestation regops wrote on main (:mod:`regops.attest`): its path from the model's folder
    (``attestations/<version>/<name>.sigstore.json``) and the sha256 of its bytes."""

    path: Annotated[str, Field(pattern=r"^attestations/[^/]+/[a-z0-9-]+\.sigstore\.json$")]
    sha256: Sha256


class Canary(_Strict):
    traffic_percent: Percent
    started_at: Timestamp
    # aborted: the version left staging before the canary reached a verdict.
    # inconclusive: the last check could not read the metrics (never a pass).
    result: Literal["pending", "passed", "failed", "inconclusive", "aborted"]
    finished_at: Timestamp | None = None
    checked_at: Timestamp | None = None
    summary: str | None = None
    # The last `regops canary check`: per guardrail, the numbers behind the verdict. Each entry: metric, kind,
    # verdict, canary, prod, limit (at prod's estimate), n_canary, n_prod, reason; since the anytime-valid
    # canary also lower/upper (the confidence sequence's bounds at that check: the canary's excess over prod
    # as a fraction for relative rules, its value for max/min), method and looks (checks so far); records
    # written before it carry p_value instead (a fixed-sample test: valid history, not re-judged).
    report: list[dict[str, JsonValue]] | None = None
    # The signed attestation of the last final verdict (regops canary check with a signing key).
    attestation: Attestation | None = None


class Measure(_Strict):
    """One metric of auto-promote's comparison, recorded on the transition it made: informative only, for audits
    (the approvals check never reads it, so writing one grants nothing)."""

    metric: Annotated[str, Field(min_length=1)]
    role: Literal["primary", "guard"]
    goal: Literal["max", "min"]
    candidate: float | None
    baseline: SemVer | None = None  # the version compared with (None: nothing held the stage)
    baseline_value: float | None = None
    tolerance: Annotated[float, Field(ge=0)] = 0.0
    eval_dataset: DatasetRef | None = None  # the eval set both sides were measured on
    held: bool


class Transition(_Strict):
    from_: Annotated[Stage, Field(alias="from")]
    to: Stage
    at: Timestamp
    by: Login
    pr: Annotated[int, Field(ge=1)] | None = None
    approved_by: list[Login] | None = None
    # The signed review attestation the stamp wrote with pr and approved_by.
    attestation: Attestation | None = None
    notes: str | None = None
    reason: str | None = None
    evidence: list[Measure] | None = None


class ModelVersion(_Strict):
    """One ``registry/models/<model>/<version>.yaml``."""

    model: Name
    version: SemVer
    created_at: Timestamp
    created_by: Person
    parent: ParentRef | None = None
    training: Training
    hyperparameters: dict[str, JsonValue] = Field(default_factory=dict)
    evals: Evals
    artifacts: Artifacts
    stage: Stage
    canary: Canary | None = None
    transitions: list[Transition] = Field(default_factory=list)


# --- model.yaml --------------------------------------------------------------


class Metric(_Strict):
    name: Annotated[str, Field(min_length=1)]
    goal: Literal["max", "min"]


class GuardMetric(Metric):
    """A metric that must not regress by more than ``tolerance`` (absolute)."""

    tolerance: Annotated[float, Field(ge=0)] = 0.0


# --- canary configuration (regops.yaml ``canary``, model.yaml ``canary``) ------

RELATIVE_PATTERN: Final = r"^(?:0|[1-9]\d*)(?:\.\d+)?%$"
# A bound in the metric's unit: a number, or a string with a unit (250ms, 0.3s, 1.5%).
AMOUNT_PATTERN: Final = r"^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:ms|s|%)$"
Relative = Annotated[
    str,
    _schema(RELATIVE_PATTERN),
    _pattern(RELATIVE_PATTERN, "expected a relative allowance such as 10%"),
]
Amount = (
    float
    | Annotated[
        str,
        _schema(AMOUNT_PATTERN),
        _pattern(AMOUNT_PATTERN, "expected a number, or a number with a unit such as 250ms, 0.3s or 1.5%"),
    ]
)
Confidence = Annotated[float, Field(ge=0.5, lt=1)]
Quantile = Annotated[float, Field(gt=0, lt=1)]
Query = Annotated[str, Field(min_length=1)]


EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class MetricsProvider(_Strict):
    """Where live metrics come from: a Prometheus server's HTTP API, or a JSON document (file or URL).

    Set only in regops.yaml (``canary.metrics``): the admins decide where the canary
    job connects and which credential it sends there.
    """

    provider: Literal["prometheus", "json"]
    url: str | None = None
    path: str | None = None
    # The name of an environment variable holding a bearer token (never the token itself); it must be
    # listed in regops.yaml's canary.allowed_token_envs, and never names a GitHub or Hub credential.
    token_env: EnvName | None = None


class Guardrail(_Strict):
    """A metric the canary must hold against prod.

    ``rate``: errors/requests, compared with a two-proportion test; ``latency``:
    a quantile (``quantile``, default 0.99) of a histogram or samples; ``gauge``: any
    per-request value (a business score), compared at ``quantile`` (default 0.5).
    Rules: ``max_increase``/``max_decrease`` relative to prod, ``max``/``min`` absolute.
    For Prometheus, ``errors``/``requests`` (rate) or ``buckets`` (latency, gauge) are
    PromQL templates with ``{model}``, ``{version}`` and ``{window}`` placeholders.
    """

    metric: Name
    kind: Literal["rate", "latency", "gauge"]
    quantile: Quantile | None = None
    max_increase: Relative | None = None
    max_decrease: Relative | None = None
    max: Amount | None = None
    min: Amount | None = None
    confidence: Confidence | None = None
    # What `regops canary plan` sizes for: prod's usual rate (rates), or for a quantile the share of prod's
    # values between the quantile and the allowance (e.g. 0.4%: slower than p99, faster than p99 +10%).
    baseline: Relative | None = None
    errors: Query | None = None
    requests: Query | None = None
    buckets: Query | None = None


def _refuse_metrics(_: Any) -> None:
    raise ValueError(
        "a model cannot choose where the canary reads metrics or which token it sends: set canary.metrics in "
        "registry/regops.yaml (admin-protected) and remove it here"
    )


class CanaryPolicy(_Strict):
    """A model's overrides of regops.yaml's ``canary`` defaults (a list of guardrails replaces the default list).

    Guardrails (their PromQL included) may differ per model: they shape the queries sent to
    the server regops.yaml configures. The metrics source itself is regops.yaml's alone.
    """

    traffic_percent: Percent | None = None
    min_requests: Annotated[int, Field(ge=0)] | None = None
    min_duration_minutes: Annotated[int, Field(ge=0)] | None = None
    max_requests: Annotated[int, Field(ge=1)] | None = None
    max_duration_minutes: Annotated[int, Field(ge=1)] | None = None
    traffic_per_hour: Annotated[float, Field(gt=0)] | None = None
    confidence: Confidence | None = None
    # Refused, with a message saying where it belongs (left out of the exported schema: editors flag it too).
    metrics: SkipJsonSchema[Annotated[Any, BeforeValidator(_refuse_metrics)]] = None
    guardrails: list[Guardrail] | None = None


class Hub(_Strict):
    repo: HubRepo
    private: bool = True


class RetentionPolicy(_Strict):
    keep_prod: Annotated[int, Field(ge=0)] | None = None
    candidate_ttl_days: Annotated[int, Field(ge=1)] | None = None


class ModelConfig(_Strict):
    """One ``registry/models/<model>/model.yaml``."""

    name: Name
    description: str | None = None
    owners: Annotated[list[Owner], Field(min_length=1)]
    task: str | None = None
    license: str | None = None
    hub: Hub | None = None
    primary_metric: Metric
    guard_metrics: list[GuardMetric] = Field(default_factory=list)
    canary: CanaryPolicy | None = None
    retention: RetentionPolicy | None = None


# --- datasets/<dataset>/<version>.yaml ---------------------------------------


class FilesSource(_Strict):
    """A file or folder hashed by regops (``hash`` is blake3 over its manifest)."""

    kind: Literal["files"]
    path: str


class DvcSource(_Strict):
    """An entry of a ``.dvc`` or ``dvc.lock`` file (``hash`` is DVC's md5)."""

    kind: Literal["dvc"]
    file: str
    path: str


class IcebergSource(_Strict):
    """An Apache Iceberg table snapshot (``hash`` is ``iceberg:<snapshot>``)."""

    kind: Literal["iceberg"]
    table: str
    snapshot: Annotated[int, Field(ge=0)]


class DeltaSource(_Strict):
    """A Delta Lake table version (``hash`` is ``delta:<version>``)."""

    kind: Literal["delta"]
    path: str
    version: Annotated[int, Field(ge=0)]


class DatasetVersion(_Strict):
    """One ``registry/datasets/<dataset>/<version>.yaml``."""

    name: Name
    version: DatasetVersionName
    hash: ContentHash
    created_at: Timestamp
    created_by: Person | None = None
    description: str | None = None
    uri: str | None = None
    size_bytes: Annotated[int, Field(ge=0)] | None = None
    file_count: Annotated[int, Field(ge=0)] | None = None
    source: Annotated[FilesSource | DvcSource | IcebergSource | DeltaSource, Field(discriminator="kind")] | None = None


# --- regops.yaml -------------------------------------------------------------


class StorageConfig(_Strict):
    backend: Literal["local", "hf"]
    path: str | None = None
    org: str | None = None


class StagePolicy(_Strict):
    from_: Annotated[list[Stage], Field(alias="from")]
    approvals: Annotated[int, Field(ge=0)] = 0
    approvers: list[str] = Field(default_factory=list)
    bots: bool = False
    require_canary: bool = False


def _default_stages() -> dict[Literal["dev", "staging", "prod", "archived"], StagePolicy]:
    return {
        "dev": StagePolicy(from_=["candidate"], bots=True),
        "staging": StagePolicy(from_=["dev"], approvals=1),
        "prod": StagePolicy(from_=["staging", "archived"], approvals=1, require_canary=True),
        "archived": StagePolicy(from_=["candidate", "dev", "staging", "prod"], bots=True),
    }


class Retention(_Strict):
    keep_prod: Annotated[int, Field(ge=0)] = 10
    candidate_ttl_days: Annotated[int, Field(ge=1)] = 30


class CanaryDefaults(_Strict):
    traffic_percent: Percent = 5.0
    # Per arm (canary and prod) and per guardrail: below it a guardrail is pending.
    min_requests: Annotated[int, Field(ge=0)] = 1000
    min_duration_minutes: Annotated[int, Field(ge=0)] = 60
    # Still undecided after this many requests per arm, or this long: inconclusive (none: no request cap).
    max_requests: Annotated[int, Field(ge=1)] | None = None
    max_duration_minutes: Annotated[int, Field(ge=1)] = 2880
    # The model's requests per hour (all traffic): `validate` warns when max_duration cannot reach a decision.
    traffic_per_hour: Annotated[float, Field(gt=0)] | None = None
    confidence: Confidence = 0.95
    metrics: MetricsProvider | None = None
    # The variables metrics.token_env may name (GitHub and Hub credentials never, even when listed).
    allowed_token_envs: list[EnvName] = Field(default_factory=list)
    guardrails: list[Guardrail] = Field(default_factory=list)


class SigningIdentity(_Strict):
    identity: Annotated[str, Field(min_length=1)]
    issuer: Annotated[str, Field(min_length=1)]


class SigningPolicy(_Strict):
    """``signing:`` in regops.yaml: from which stage on a version must carry a valid signature, and whose count.

    ``keys``: PEM public key files; ``roots``: PEM CA certificates a signing certificate must chain to; both are paths
    from the repository root (list them under ``protected_paths``). ``identities``: who may sign keylessly (Sigstore)
    or by certificate (subject and issuer)."""

    required_from: Literal["dev", "staging", "prod"] | None = None
    identities: list[SigningIdentity] = Field(default_factory=list)
    keys: list[str] = Field(default_factory=list)
    roots: list[str] = Field(default_factory=list)


class RegistryConfig(_Strict):
    """``registry/regops.yaml``: registry-wide storage, policy and defaults."""

    storage: StorageConfig = StorageConfig(backend="local", path=".regops/store")
    cold_storage: StorageConfig | None = None
    stages: dict[Literal["dev", "staging", "prod", "archived"], StagePolicy] = Field(default_factory=_default_stages)
    bots: list[str] = Field(default_factory=lambda: ["github-actions[bot]"])
    # Who approves what no stage rule covers: regops.yaml itself, .github/, schemas/, new models, repairs.
    # GitHub logins or @org/teams. None listed: such a change can never pass (fail closed).
    admins: list[str] = Field(default_factory=list)
    # Pull requests into these branches are judged by `regops/approvals`; empty: the repository's default branch.
    protected_branches: list[str] = Field(default_factory=list)
    # More paths (globs, from the repository root) that only the admins may change.
    protected_paths: list[str] = Field(default_factory=list)
    # Paths outside registry/ the approvals check does not judge (ordinary code review only), e.g. docs/**.
    unjudged_paths: list[str] = Field(default_factory=list)
    retention: Retention = Retention()
    canary: CanaryDefaults = CanaryDefaults()
    signing: SigningPolicy | None = None
