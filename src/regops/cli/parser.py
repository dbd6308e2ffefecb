"""The command line: every verb, its arguments and its help.

Each verb names its function as ``"MODULE:FUNCTION"`` of this package (:func:`regops.cli.run`
imports it when the verb runs), so building the parser, and ``regops --help``, imports no verb.
"""

from __future__ import annotations

import argparse
from typing import Any

from regops import __version__
from regops.cli.common import UsageError
from regops.errors import did_you_mean
from regops.kinds import STAGES, STEP_KINDS


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse's hook: -> NoReturn
        raise UsageError(message, f"{self.format_usage()}{self.prog}: error: {message}")

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        if action.choices is not None and value not in action.choices:
            known = ", ".join(map(str, action.choices))
            hint = did_you_mean(str(value), map(str, action.choices))
            raise argparse.ArgumentError(action, f"invalid choice: {value!r}{hint} (choose from {known})")


class IntermixedParser(Parser):
    """Options and positionals in any order (``NAME --version V PATH`` as well as ``NAME PATH --version V``)."""

    _inner = False

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        if self._inner:  # parse_known_intermixed_args calls back in here, twice
            return super().parse_known_args(args, namespace)
        self._inner = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._inner = False


class _Later:
    """The calls a builder makes on a verb's parser (and on what they return: a group, a verb's own verbs), kept to
    be made on the real one when it is first used: a command line builds its own verb's parser, not all ~40 (each
    asks gettext for its texts) and their ~240 arguments."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any], _Later]] = []

    def __getattr__(self, name: str) -> Any:
        def record(*args: Any, **kwargs: Any) -> _Later:
            later = _Later()
            self.calls.append((name, args, kwargs, later))
            return later

        return record

    def replay(self, real: Any) -> None:
        for name, args, kwargs, later in self.calls:
            later.replay(getattr(real, name)(*args, **kwargs))


class _LaterParser(_Later):
    """A verb's parser: made, and the builder's calls made on it, the first time it parses a command line (its
    name and help are the verbs' own: ``regops --help`` and a wrong verb need no verb's parser)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        self.kwargs = kwargs
        self.real: Parser | None = None

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        if self.real is None:
            self.real = Parser(**self.kwargs)
            self.replay(self.real)
        return self.real.parse_known_args(args, namespace)


def registry_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--registry",
        metavar="DIR",
        help="the registry folder, or a repository with registry/ (default: found from the current folder upwards)",
    )


def json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of text (errors too, on stderr)")


def _common(parser: argparse.ArgumentParser, *, at: bool = False) -> None:
    registry_flag(parser)
    json_flag(parser)
    if at:
        parser.add_argument(
            "--at",
            metavar="TIME",
            help='a moment: 2026-10-01, 2026-10-01T14:30:00Z, "3 weeks ago", yesterday',
        )


def _writer(parser: argparse.ArgumentParser, *, dry_run: bool = True, by: bool = True) -> None:
    _common(parser)
    if by:
        parser.add_argument("--by", metavar="WHO", help="who acts (default: $GITHUB_ACTOR in Actions, else git's user)")
    if dry_run:
        parser.add_argument("--dry-run", action="store_true", help="print the plan and the diff; change nothing")


def _read_verbs(verbs: Any) -> None:
    p = verbs.add_parser("validate", help="check every file and rule; exit 1 on problems")
    _common(p)
    p.add_argument("--format", choices=("text", "json", "github"), default="text")
    p.add_argument(
        "--base",
        metavar="REF",
        help="also check the change against git REF (a PR's base): no record deleted, immutable fields "
        "unchanged, transitions only appended, bots only to dev or archived",
    )
    p.set_defaults(func="reads:cmd_validate")

    p = verbs.add_parser("status", help="one row per model: dev, staging, prod and since when (now or --at TIME)")
    _common(p, at=True)
    p.set_defaults(func="reads:cmd_status")

    p = verbs.add_parser("show", help="one version (MODEL@VERSION or MODEL@STAGE) or a model (MODEL)")
    p.add_argument("ref", metavar="MODEL[@VERSION|@STAGE]")
    _common(p, at=True)
    p.set_defaults(func="reads:cmd_show")

    p = verbs.add_parser(
        "history", help="every registration and transition (of MODEL, else of every model), oldest first"
    )
    p.add_argument("model", metavar="MODEL", nargs="?", help="one model (default: every model)")
    _common(p)
    _history_filters(p)
    p.set_defaults(func="reads:cmd_history")

    p = verbs.add_parser("resolve", help="which version held MODEL@STAGE, now or --at a moment")
    p.add_argument("ref", metavar="MODEL@STAGE")
    _common(p, at=True)
    p.set_defaults(func="reads:cmd_resolve")

    p = verbs.add_parser("lineage", help="a version's ancestors and their datasets")
    p.add_argument("ref", metavar="MODEL@VERSION")
    p.add_argument("--format", choices=("text", "mermaid"), default="text")
    _common(p, at=True)
    p.set_defaults(func="reads:cmd_lineage")

    p = verbs.add_parser("diff", help="evals, hyperparameters, data and parent of B against A")
    p.add_argument("a", metavar="MODEL@A")
    p.add_argument("b", metavar="MODEL@B")
    _common(p, at=True)
    p.set_defaults(func="reads:cmd_diff")


def _history_filters(p: argparse.ArgumentParser) -> None:

    p.add_argument("--model", dest="models", action="append", metavar="MODEL", help="only this model (repeatable)")
    p.add_argument("--by", metavar="LOGIN", help="only steps made by LOGIN")
    p.add_argument("--bots", action="store_true", help="only steps made by bots (regops.yaml bots, …[bot] logins)")
    p.add_argument("--stage", choices=STAGES, help="only steps into or out of STAGE")
    p.add_argument(
        "--kind", dest="kinds", action="append", choices=STEP_KINDS, help="only steps of this kind (repeatable)"
    )
    when = 'e.g. 2026-09-01, 2026-09-01T14:30:00Z, "30 days ago"'
    p.add_argument("--since", metavar="TIME", help=f"only steps at or after TIME ({when})")
    p.add_argument("--until", metavar="TIME", help="only steps before TIME")
    p.add_argument("--format", choices=("text", "csv"), default="text", help="text table or CSV (--json: JSON)")


def _pr_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--pr", action="store_true", help="open a pull request with the change (branch, commit, push, review page)"
    )


def _which_pull(parser: argparse.ArgumentParser, *, merge_group: bool = False) -> None:
    """The pull request a ``pr`` action is about: by number, by head commit (a trusted workflow_run), or merge group."""
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--pr", type=int, metavar="N")
    if merge_group:
        which.add_argument("--merge-group", metavar="REF", help="a merge queue branch (gh-readonly-queue/main/pr-N-…)")
    which.add_argument(
        "--head-sha", metavar="SHA", help="the open pull request whose head commit is SHA, its commits fetched as data"
    )


def _signing_flags(p: argparse.ArgumentParser) -> None:
    signer = p.add_mutually_exclusive_group()
    signer.add_argument("--signing-key", metavar="PEM", help="sign the files with this private EC key")
    signer.add_argument(
        "--signing-keyless", action="store_true", help="sign with Sigstore and the ambient OIDC identity (Actions)"
    )
    signer.add_argument(
        "--signing-key-env",
        metavar="NAME",
        help="sign with the private key (PEM) in environment variable NAME; when it is empty, keylessly if the run "
        "has an OIDC token (GitHub Actions), else not at all",
    )
    p.add_argument("--signing-cert", metavar="PEM", help="with --signing-key: its certificate (the signer's identity)")


def _verify_verb(verbs: Any) -> None:
    p = verbs.add_parser("verify", help="check a version's chain: weights, signature, review, canary")
    p.add_argument("ref", metavar="MODEL@REF")
    _common(p, at=True)
    p.set_defaults(func="setup:cmd_verify")


def _write_verbs(verbs: Any) -> None:
    p = verbs.add_parser("register", help="store a version's files and record it as a candidate")
    p.add_argument("model", metavar="MODEL")
    p.add_argument(
        "--artifacts", required=True, metavar="DIR", help="the folder of files to store (weights, config, …)"
    )
    p.add_argument("--evals", required=True, metavar="FILE", help="JSON or YAML mapping of metric -> score")
    p.add_argument("--params", required=True, metavar="FILE", help="JSON or YAML mapping of hyperparameters")
    p.add_argument("--dataset", required=True, metavar="NAME@VER", help="the training dataset version")
    p.add_argument("--eval-dataset", metavar="NAME@VER", help="the dataset the scores were measured on")
    p.add_argument("--parent", metavar="REF", help="VERSION, MODEL@VERSION or hf://ORG/REPO@COMMIT")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--version", metavar="V", help="the new version, e.g. 1.4.0")
    which.add_argument("--bump", choices=("major", "minor", "patch", "rc"), help="next version from the latest")
    _pr_flag(p)
    p.add_argument("--run-url", metavar="URL", help="the training run, for people")
    p.add_argument(
        "--confine", metavar="DIR", help="refuse --artifacts, --evals, --params outside DIR or in a .git folder"
    )
    _signing_flags(p)
    _writer(p, dry_run=False)
    p.set_defaults(func="registry:cmd_register")

    p = verbs.add_parser("promote", help="move a version to a stage (archiving the previous holder)")
    p.add_argument("ref", metavar="MODEL@VERSION")
    p.add_argument("--to", required=True, choices=("dev", "staging", "prod", "archived"))
    p.add_argument("--notes", required=True, metavar="TEXT", help="why: recorded in the transition")
    _pr_flag(p)
    _writer(p)
    p.set_defaults(func="registry:cmd_promote")

    p = verbs.add_parser("rollback", help="bring a former prod version back to prod")
    p.add_argument("model", metavar="MODEL")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--to", metavar="VERSION", help="the former prod version")
    target.add_argument("--at", metavar="TIME", help="whatever was prod at that moment")
    p.add_argument("--notes", required=True, metavar="TEXT", help="why: recorded in the transition")
    _pr_flag(p)
    _writer(p)
    p.set_defaults(func="registry:cmd_rollback")

    p = verbs.add_parser("auto-promote", help="move candidates that beat dev into dev")
    p.add_argument("model", nargs="?", metavar="MODEL", help="only this model")
    _writer(p)
    p.set_defaults(func="registry:cmd_auto_promote")

    _verify_verb(verbs)
    p = verbs.add_parser("download", help="fetch a version's files, verified (MODEL@VERSION or MODEL@STAGE)")
    p.add_argument("ref", metavar="MODEL@REF")
    p.add_argument("--dest", required=True, metavar="DIR")
    _common(p, at=True)
    p.set_defaults(func="registry:cmd_download")

    p = verbs.add_parser("restore", help="bring a version's weights back from cold storage")
    p.add_argument("ref", metavar="MODEL@VERSION")
    _writer(p, by=False)
    p.set_defaults(func="registry:cmd_restore")

    _canary_verbs(verbs)


def _canary_verbs(verbs: Any) -> None:
    p = verbs.add_parser("canary", help="canary results of the version in staging")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    c = actions.add_parser("record", help="record a canary verdict measured elsewhere")
    c.add_argument("ref", metavar="MODEL@VERSION")
    c.add_argument("--result", required=True, choices=("passed", "failed"))
    c.add_argument("--summary", metavar="TEXT")
    _attesting(c, "sign an attestation of the verdict")
    _writer(c, by=False)
    c.set_defaults(func="pulls:cmd_canary_record")
    c = actions.add_parser(
        "check", help="test each canary's guardrails against prod on live metrics, record the verdict"
    )
    _canary_common(c)
    c.add_argument("--now", metavar="TIME", help="check as of TIME (the end of the metrics window; default now)")
    c.add_argument("--dry-run", action="store_true", help="print the verdicts; record nothing")
    _attesting(c, "sign an attestation of each final verdict")
    c.set_defaults(func="pulls:cmd_canary_check")
    c = actions.add_parser(
        "pr",
        help="commit and push the recorded verdicts, then open the prod PR on a pass or the rollback PR on a fail "
        "(once each; reads no metrics)",
    )
    _canary_common(c)
    c.add_argument(
        "--by", metavar="WHO", help="who commits the results (default: github-actions[bot] in Actions, else git's user)"
    )
    c.set_defaults(func="pulls:cmd_canary_pr")
    c = actions.add_parser("plan", help="the requests per arm and hours each guardrail needs to reach a decision")
    c.add_argument("model", metavar="MODEL")
    c.add_argument("--traffic-per-hour", type=float, metavar="N", help="the model's requests per hour, all arms")
    _common(c)
    c.set_defaults(func="pulls:cmd_canary_plan")


def _canary_common(c: Any) -> None:
    c.add_argument("model", nargs="?", metavar="MODEL", help="only this model (default: every canary in staging)")
    c.add_argument("--format", choices=("text", "markdown", "json"), default="text")
    registry_flag(c)
    json_flag(c)


def _outside_verbs(verbs: Any) -> None:
    p = verbs.add_parser("sync", help="make Hub tags, stage branches, model cards and serving.json match the registry")
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 listing every difference")
    p.add_argument("--model", metavar="MODEL", help="only this model (serving.json is left out)")
    _common(p)
    p.set_defaults(func="pulls:cmd_sync")

    _pr_verb(verbs)

    p = verbs.add_parser("commit", help="commit what regops changed (registry/, serving.json, CODEOWNERS)")
    p.add_argument("-m", "--message", required=True, metavar="TEXT")
    p.add_argument("--push", action="store_true", help="push the branch (rebasing onto it if it moved)")
    p.add_argument(
        "--by", metavar="WHO", help="commit as this login (default: git's user; github-actions[bot] in Actions)"
    )
    _common(p)
    p.set_defaults(func="pulls:cmd_commit")

    p = verbs.add_parser("drift", help="sync --check, and keep one GitHub issue listing the drift (--issue)")
    p.add_argument("--issue", action="store_true", help="open or update the drift issue; close it when clean")
    _common(p)
    p.set_defaults(func="pulls:cmd_drift")

    p = verbs.add_parser("codeowners", help="write .github/CODEOWNERS from the owners in model.yaml")
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 if it is stale")
    _common(p)
    p.set_defaults(func="registry:cmd_codeowners")

    p = verbs.add_parser("serving", help="the serving manifest: what serves prod and the canary")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    e = actions.add_parser("export", help="print the manifest (JSON) or KServe InferenceServices")
    e.add_argument("-o", "--output", metavar="FILE", help="write it to FILE instead")
    e.add_argument(
        "--format", choices=("json", "kserve"), default="json", help="kserve: one InferenceService per model (YAML)"
    )
    _common(e)
    e.set_defaults(func="registry:cmd_serving_export")

    _retention_verb(verbs)
    _site_verb(verbs)


def _site_verb(verbs: Any) -> None:
    p = verbs.add_parser("site", help="the registry website: static pages of models, stages over time, evals")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    b = actions.add_parser("build", help="write the static site (self-contained, works offline)")
    b.add_argument("--out", default="site", metavar="DIR", help="the folder to write it to (default: site/)")
    _common(b)
    b.set_defaults(func="setup:cmd_site_build")


def _pr_verb(verbs: Any) -> None:
    p = verbs.add_parser("pr", help="pull requests: the approvals check, the review comment, stamping approvals")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    c = actions.add_parser("check", help="the required check regops/approvals: set a commit status, exit 1 if missing")
    _which_pull(c, merge_group=True)
    c.add_argument("--sha", metavar="SHA", help="report the status on this commit (the merge group's) instead")
    c.add_argument("--base-sha", metavar="SHA", help="with --merge-group: the commit the group was built on")
    _common(c)
    c.set_defaults(func="pulls:cmd_pr_check")
    c = actions.add_parser("report", help="create or update the pull request's regops comment")
    _which_pull(c)
    _common(c)
    c.set_defaults(func="pulls:cmd_pr_report")
    c = actions.add_parser("stamp", help="record the merged pull request and its approvers on new transitions")
    c.add_argument("--since", default="HEAD^", metavar="REF", help="transitions added since REF (default HEAD^)")
    _attesting(c, "sign a review attestation of each stamped transition")
    _writer(c, by=False)
    c.set_defaults(func="pulls:cmd_pr_stamp")


def _attesting(parser: argparse.ArgumentParser, what: str) -> None:
    """The signer of a job that writes attestations: a key file, or a key in an environment variable."""
    signer = parser.add_mutually_exclusive_group()
    signer.add_argument("--signing-key", metavar="PEM", help=f"{what} with this private key")
    signer.add_argument(
        "--signing-key-env", metavar="NAME", help=f"{what} with the PEM key in variable NAME (as register does)"
    )


def _retention_verb(verbs: Any) -> None:
    p = verbs.add_parser("retention", help="move weights retention no longer keeps hot to cold storage")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, func, text in (
        ("plan", "registry:cmd_retention_plan", "print which weights stay hot and which move, and why"),
        (
            "apply",
            "registry:cmd_retention_apply",
            "move them: copy, verify, record in the version file; remove hot copies whose move is published",
        ),
    ):
        a = actions.add_parser(name, help=text)
        a.add_argument("--model", metavar="MODEL", help="only this model")
        _common(a)
        a.add_argument("--at", metavar="TIME", help="apply the policy as of TIME (default: now), e.g. 2027-01-01")
        a.add_argument(
            "--published",
            metavar="REF",
            help="the git ref whose version files count as published: a hot copy goes only once REF records its "
            "move (default: the branch's upstream, else origin/BRANCH, else HEAD)",
        )
        a.set_defaults(func=func)


def _dataset_verbs(verbs: Any) -> None:
    p = verbs.add_parser("dataset", help="dataset versions: content hashes and references")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=IntermixedParser)
    h = actions.add_parser("hash", help="the content hash of a file or folder (blake3 over a manifest)")
    h.add_argument("path", metavar="PATH")
    h.add_argument("--json", action="store_true", help="print JSON instead of text")
    h.set_defaults(func="registry:cmd_dataset_hash")
    d = actions.add_parser("register", help="record a dataset version under registry/datasets/")
    d.add_argument("name", metavar="NAME")
    d.add_argument("path", nargs="?", metavar="PATH", help="a file or folder to hash")
    d.add_argument("--version", required=True, metavar="V", help="the dataset version, e.g. 2026-06-01 or v3")
    d.add_argument("--from-dvc", metavar="FILE", help="a .dvc or dvc.lock file: record DVC's md5, read no data")
    d.add_argument("--dvc-path", metavar="PATH", help="which output of the DVC file, when it has several")
    d.add_argument("--iceberg", metavar="TABLE", help="an Apache Iceberg table (with --snapshot)")
    d.add_argument("--snapshot", type=int, metavar="ID", help="the Iceberg snapshot id")
    d.add_argument("--delta", metavar="PATH", help="a Delta Lake table (with --delta-version)")
    d.add_argument("--delta-version", type=int, metavar="N", help="the Delta table version")
    d.add_argument("--description", metavar="TEXT")
    d.add_argument("--uri", metavar="URI", help="where the data lives, for people (s3://…)")
    _writer(d, dry_run=False)
    d.set_defaults(func="registry:cmd_dataset_register")


def _setup_verbs(verbs: Any) -> None:
    p = verbs.add_parser("init", help="create a registry repository, or --upgrade its workflows and schemas")
    p.add_argument("dir", nargs="?", default=".", metavar="DIR", help="where (default: the current folder)")
    p.add_argument("--org", metavar="ORG", help="the GitHub organization (admins team, README)")
    p.add_argument("--hub-org", metavar="ORG", help="the Hugging Face organization for weights (default: --org)")
    p.add_argument("--storage", choices=("hf", "local"), default="hf", help="where weights live (default: hf)")
    p.add_argument(
        "--upgrade",
        action="store_true",
        help="rewrite only the workflows, their lock and the schemas for this regops version, showing the diff",
    )
    p.add_argument("--dry-run", action="store_true", help="with --upgrade: show the diff, write nothing")
    json_flag(p)
    p.set_defaults(func="setup:cmd_init")

    p = verbs.add_parser("doctor", help="check the GitHub settings the approvals gate relies on; exit 1 on any")
    p.add_argument("--repo", metavar="OWNER/NAME", help="the repository (default: $GITHUB_REPOSITORY)")
    _common(p)
    p.set_defaults(func="setup:cmd_doctor")


def build_parser(*, lazy: bool = False) -> argparse.ArgumentParser:
    """The command line; ``lazy``: each verb's arguments added when that verb is parsed or its help shown (the
    same parser, help and errors, built for the verb a command line names: what ``regops`` runs)."""
    parser = Parser(
        prog="regops",
        description="A model registry that lives in git: versions as YAML, promotions as pull requests.",
    )
    parser.add_argument("--version", action="version", version=f"regops {__version__}")
    deferred: dict[str, Any] = {"parser_class": _LaterParser} if lazy else {}
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True, **deferred)

    _read_verbs(verbs)
    _write_verbs(verbs)
    _outside_verbs(verbs)
    _dataset_verbs(verbs)
    _setup_verbs(verbs)
    p = verbs.add_parser("schema", help="JSON Schemas of the file kinds")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    e = actions.add_parser("export", help="write schemas/*.json from the models")
    e.add_argument("--dest", default="schemas", metavar="DIR")
    e.add_argument("--check", action="store_true", help="exit 1 if a file had to change (for CI)")
    json_flag(e)
    e.set_defaults(func="setup:cmd_schema_export")
    return parser
