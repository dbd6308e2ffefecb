"""Make the outside world match the registry: Hub tags, stage refs, model cards, the serving manifest.

:func:`compare` lists every :class:`Difference` between what the registry says
and what is out there; :func:`sync` fixes the ones that can be fixed and
returns what it changed. Both are idempotent: run twice, the second run finds
nothing. Weights whose recorded hash no longer matches what the Hub stores
cannot be fixed by sync (the bytes are gone or replaced); they are reported
and make ``regops sync`` exit non-zero.

Nothing is pointed at bytes the record does not name: every version's files
at its recorded commit are verified first (the paths, sizes and sha256 the
version file lists, nothing else but the model card and ``.gitattributes``,
and each LFS object still stored). A version that fails gets no tag, no stage
branch, no new ``serving.json`` entry and no model card naming it; what pointed
elsewhere stays there.

What the Hub should hold, per model with versions on the Hub (repo ``R``):

* a tag ``v<version>`` on every (verified) version's commit, in the repo that holds it
  (``R`` while hot, the archive repo once cold); a ``v<version>`` tag in ``R``
  for a version that moved to cold storage is removed;
* a branch per occupied stage (``dev``, ``staging``, ``prod``) on the (verified)
  commit of the version holding it, and no branch for an empty stage;
* ``README.md`` on ``R``'s ``main``: the model card generated from the registry.

The serving manifest (``serving.json`` beside ``registry/``, built in ``serving.py``) is regenerated too.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol

from regops import store
from regops.errors import RegopsError
from regops.kinds import Stage
from regops.records import VersionRecord
from regops.registry import HOLDER_STAGES, Registry
from regops.serving import MANIFEST, manifest_path, manifest_text, serving_manifest

__all__ = [
    "Difference",
    "Remote",
    "SyncResult",
    "compare",
    "sync",
]

# The Hub keeps a branch per stage a single version holds.
STAGE_REFS: Final[tuple[Stage, ...]] = HOLDER_STAGES
CARD: Final = "README.md"

Kind = Literal["tag", "ref", "card", "weights", "manifest"]


class RemoteRefs(Protocol):
    branches: dict[str, str]
    tags: dict[str, str]


class RemoteFile(Protocol):
    path: str
    size: int
    sha256: str | None


class Remote(Protocol):
    """The Hub, as sync sees it (``regops.adapters.hub_client.Hub``)."""

    def refs(self, repo: str) -> RemoteRefs | None: ...
    def set_branch(self, repo: str, name: str, commit: str, *, current: str | None) -> None: ...
    def delete_branch(self, repo: str, name: str) -> None: ...
    def set_tag(self, repo: str, name: str, commit: str, *, current: str | None) -> None: ...
    def delete_tag(self, repo: str, name: str) -> None: ...
    def read_text(self, repo: str, path: str, revision: str = "main") -> str | None: ...
    def write_text(self, repo: str, path: str, text: str, *, message: str) -> str: ...
    def files(self, repo: str, revision: str) -> dict[str, Any]: ...
    def lfs_objects(self, repo: str, *, fresh: bool = False) -> dict[str, int] | None: ...
    def sha256(self, repo: str, revision: str, file: Any) -> str: ...

    @property
    def repo_files(self) -> frozenset[str]:
        """Files a repository's commits hold besides a version's (the model card, ``.gitattributes``)."""
        ...


@dataclass(frozen=True)
class Difference:
    """One way the outside differs from the registry, and how sync puts it right (``fix`` None: it cannot)."""

    model: str
    kind: Kind
    where: str  # repo (or file) it is in
    name: str  # the tag, branch or file
    found: str | None
    expected: str | None
    message: str
    fix: Callable[[], None] | None = field(default=None, compare=False, repr=False)

    def as_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "kind": self.kind,
            "where": self.where,
            "name": self.name,
            "found": self.found,
            "expected": self.expected,
            "message": self.message,
            "fixable": self.fix is not None,
        }


@dataclass
class SyncResult:
    differences: list[Difference]
    fixed: list[Difference]
    check: bool

    @property
    def unfixed(self) -> list[Difference]:
        return [d for d in self.differences if d not in self.fixed]

    @property
    def ok(self) -> bool:
        return not self.differences if self.check else not self.unfixed


def _short(commit: str | None) -> str | None:
    return commit[:12] if commit else commit


# --- comparing -------------------------------------------------------------------------------------


def compare(
    registry: Registry,
    remote: Remote | None,
    *,
    repo_for: Callable[[str], str | None],
    card: Callable[[Registry, str], str],
    model: str | None = None,
    unsigned: Callable[[VersionRecord], str | None] = lambda _: None,
) -> list[Difference]:
    """Every difference between the registry and the Hub (and ``serving.json``), each with its fix.

    A version's files are verified at its commit first, and its signature (``unsigned``: why it is refused, or
    None); a version that fails gets no fix that points anything at it (tag, stage branch, serving.json).
    """
    names = [model] if model else registry.model_names()
    differences: list[Difference] = []
    refused: set[str] = set()
    for name in names:
        repo = repo_for(name) if remote is not None else None
        if remote is None or repo is None:
            continue
        registry.forget()  # one model's folder held at a time: every version at once took 1.2 GB at 100k
        on_hub = [r for r in registry.versions(name) if r.storage.get("backend") == "hf"]
        if not on_hub:
            continue
        found, bad = _model_differences(
            registry, remote, name=name, repo=repo, on_hub=on_hub, card=card, unsigned=unsigned
        )
        differences += found
        refused |= bad
    if model is None:
        differences += _manifest_differences(registry, refused)
    return differences


def _model_differences(
    registry: Registry,
    remote: Remote,
    *,
    name: str,
    repo: str,
    on_hub: Sequence[VersionRecord],
    card: Callable[[Registry, str], str],
    unsigned: Callable[[VersionRecord], str | None],
) -> tuple[list[Difference], set[str]]:
    """A model's differences, and the versions whose files did not verify (nothing may point at them)."""
    out: list[Difference] = []
    refused: set[str] = set()
    by_repo: dict[str, list[VersionRecord]] = {repo: []}
    for record in on_hub:
        by_repo.setdefault(record.storage["repo"], []).append(record)
    known = {f"v{r.version}" for r in registry.versions(name)}
    hot_refs = None
    for where, records in sorted(by_repo.items()):
        refs = remote.refs(where)
        if where == repo:
            hot_refs = refs
        if refs is None:
            if records:
                message = f"{where}: the Hub repo does not exist"
                out.append(Difference(name, "weights", where, "", None, None, message))
                refused.update(r.ref for r in records)
            continue
        mismatches = _weights(remote, name, where, records)
        refused.update(ref for ref, found in mismatches.items() if found)
        out += [d for found in mismatches.values() for d in found]
        out += _signatures(name, where, records, refused, unsigned)
        out += _tags(remote, name, where, refs=refs, records=records, known=known, refused=refused)
    if hot_refs is None:
        return out, refused
    out += _stage_refs(registry, remote, name, repo, hot_refs, refused=refused)
    out += _card(registry, remote, name, repo, card(registry, name), refused=refused)
    return out, refused


def _signatures(
    name: str,
    where: str,
    records: Sequence[VersionRecord],
    refused: set[str],
    unsigned: Callable[[VersionRecord], str | None],
) -> list[Difference]:
    """The verified versions whose signature is refused (missing where required, or invalid): refused too."""
    out: list[Difference] = []
    for record in records:
        if record.ref not in refused and (why := unsigned(record)) is not None:
            refused.add(record.ref)
            out.append(Difference(name, "weights", where, f"{record.ref}:signature", None, None, why))
    return out


def _card(
    registry: Registry, remote: Remote, name: str, repo: str, text: str, *, refused: set[str]
) -> list[Difference]:
    """The model card on ``main``; not rewritten while it would name a stage holder's unverified commit."""
    current = remote.read_text(repo, CARD)
    if current == text:
        return []
    what = "missing" if current is None else "differs from the registry (edited by hand, or stale)"
    message = f"{repo}: model card {CARD} {what}"
    blocked = [r.ref for r in registry.versions(name) if r.stage in STAGE_REFS and r.ref in refused]
    if blocked:
        message += f"; not updated: it would name {blocked[0]}, whose files on the Hub do not match its version file"
        return [Difference(name, "card", repo, CARD, None, None, message)]
    fix = _bind(remote.write_text, repo, CARD, text, message="Update model card (regops sync)")
    return [Difference(name, "card", repo, CARD, None, None, message, fix)]


def _refused(where: str, what: str, commit: str, ref: str) -> str:
    return (
        f"{where}: {what} not moved to {_short(commit)} ({ref}): the files there do not match its version file; "
        "nothing points at a commit until they do"
    )


def _tags(
    remote: Remote,
    name: str,
    where: str,
    *,
    refs: RemoteRefs,
    records: Sequence[VersionRecord],
    known: set[str],
    refused: set[str],
) -> list[Difference]:
    """A ``v<version>`` tag on each verified version's commit; none for versions whose weights moved elsewhere."""
    out: list[Difference] = []
    wanted = {f"v{r.version}": r for r in records}
    for tag, record in sorted(wanted.items()):
        commit, found = record.storage["revision"], refs.tags.get(tag)
        if found == commit:
            continue
        if record.ref in refused:
            out.append(
                Difference(name, "tag", where, tag, found, commit, _refused(where, f"tag {tag}", commit, record.ref))
            )
            continue
        what = "missing" if found is None else f"points at {_short(found)}"
        message = f"{where}: tag {tag} {what}, expected {_short(commit)}"
        fix = _bind(remote.set_tag, where, tag, commit, current=found)
        out.append(Difference(name, "tag", where, tag, found, commit, message, fix))
    for tag in sorted(set(refs.tags) & known - set(wanted)):
        message = f"{where}: tag {tag} is left from before its weights moved elsewhere"
        out.append(
            Difference(name, "tag", where, tag, refs.tags[tag], None, message, _bind(remote.delete_tag, where, tag))
        )
    return out


def _stage_refs(
    registry: Registry, remote: Remote, name: str, repo: str, refs: RemoteRefs, *, refused: set[str]
) -> list[Difference]:
    """A branch per occupied stage on its holder's commit (once verified); no branch for an empty stage."""
    out: list[Difference] = []
    holders = {r.stage: r for r in registry.versions(name) if r.stage in STAGE_REFS}
    for stage in STAGE_REFS:
        holder = holders.get(stage)
        found = refs.branches.get(stage)
        expected = holder.storage["revision"] if holder is not None and holder.storage.get("repo") == repo else None
        if found == expected:
            continue
        fix: Callable[[], None] | None
        if holder is None or expected is None:
            message = f"{repo}: branch {stage} exists at {_short(found)} but no version of {name} is in {stage} here"
            fix = _bind(remote.delete_branch, repo, stage)
        elif holder.ref in refused:
            message, fix = _refused(repo, f"branch {stage}", expected, holder.ref), None
        else:
            what = "missing" if found is None else f"points at {_short(found)}"
            message = f"{repo}: branch {stage} {what}, expected {_short(expected)} ({holder.ref})"
            fix = _bind(remote.set_branch, repo, stage, expected, current=found)
        out.append(Difference(name, "ref", repo, stage, found, expected, message, fix))
    return out


def _weights(remote: Remote, name: str, repo: str, records: Sequence[VersionRecord]) -> dict[str, list[Difference]]:
    """Per version: how its files at its commit (paths, sizes, sha256, LFS objects) differ from the version file."""
    if not records:
        return {}
    objects = remote.lfs_objects(repo, fresh=True)
    return {record.ref: _verify(remote, name, repo, record, objects) for record in records}


# (path, sha256 found, sha256 recorded, what is wrong) for one file of a version
FileProblem = tuple[str, str | None, str | None, str]


def _verify(
    remote: Remote, name: str, repo: str, record: VersionRecord, objects: dict[str, int] | None
) -> list[Difference]:
    revision = record.storage["revision"]
    entries = record.raw["artifacts"]["files"]

    def hash_of(found: RemoteFile) -> str:
        return remote.sha256(repo, revision, found)

    try:
        remote_files = remote.files(repo, revision)
        problems = [_file_problem(e, remote_files.get(e["path"]), hash_of, objects) for e in entries]
    except RegopsError as e:  # a commit that is gone: report it, do not stop the others
        return [Difference(name, "weights", repo, record.ref, None, None, f"{record.ref}: {e}", None)]
    signature = record.raw["artifacts"].get("signature") or {}
    extra = sorted(set(remote_files) - {e["path"] for e in entries} - {signature.get("path")} - remote.repo_files)
    problems += [
        (path, remote_files[path].sha256, None, "is in the commit but not in the version file") for path in extra
    ]
    where = f"{repo}@{_short(revision)}"
    return [
        Difference(
            name, "weights", repo, f"{record.ref}:{path}", found, expected, f"{where}: {path} of {record.ref} {what}"
        )
        for path, found, expected, what in (p for p in problems if p is not None)
    ]


def _file_problem(
    entry: dict[str, Any],
    found: RemoteFile | None,
    hash_of: Callable[[RemoteFile], str],
    objects: dict[str, int] | None,
) -> FileProblem | None:
    """What is wrong with one file of a version at its commit; None when it matches the version file."""
    path, expected = entry["path"], entry["sha256"]
    if found is None:
        return path, None, expected, "is not in the commit"
    if found.size != entry["size"]:
        return path, found.sha256, expected, f"has {found.size} bytes, the version file says {entry['size']}"
    actual = hash_of(found)
    if actual != expected:
        return path, actual, expected, f"has sha256 {actual}, the version file says {expected}"
    if found.sha256 is not None and objects is not None and found.sha256 not in objects:
        return path, actual, expected, "is no longer stored (its LFS object was deleted)"
    return None


def _manifest_differences(registry: Registry, refused: set[str]) -> list[Difference]:
    """serving.json as the registry says, except that a model whose served version did not verify keeps its entry."""
    path = manifest_path(registry)
    try:
        current: str | None = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        current = None
    manifest = serving_manifest(registry, let_go=True)
    held = _hold(manifest, current, refused)
    text = manifest_text(manifest)
    out = [
        Difference(
            model,
            "manifest",
            str(path.parent),
            MANIFEST,
            None,
            ref,
            f"{MANIFEST}: {model} not moved to {ref}: its files on the Hub do not match its version file",
        )
        for model, ref in held
    ]
    if current != text:
        what = "is missing" if current is None else "differs from the registry"
        fix = _bind(store.write_atomic, path, text)
        out.append(
            Difference(
                "*", "manifest", str(path.parent), MANIFEST, None, None, f"{MANIFEST}: the serving manifest {what}", fix
            )
        )
    return out


def _hold(manifest: dict[str, Any], current: str | None, refused: set[str]) -> list[tuple[str, str]]:
    """Put back, in ``manifest``, the current entry of each model that would serve a refused version."""
    held = []
    for model, served in manifest["models"].items():
        bad = [f"{model}@{arm['version']}" for arm in (served["prod"], served["canary"]) if arm]
        bad = [ref for ref in bad if ref in refused]
        before = _entries(current).get(model, {"prod": None, "canary": None})
        if bad and before != served:
            manifest["models"][model] = before
            held.append((model, bad[0]))
    return held


def _entries(text: str | None) -> dict[str, Any]:
    try:
        models = json.loads(text or "{}").get("models")
    except (ValueError, AttributeError):
        return {}
    return models if isinstance(models, dict) else {}


def _bind(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[[], None]:
    def run() -> None:
        fn(*args, **kwargs)

    return run


def sync(differences: list[Difference], *, check: bool) -> SyncResult:
    """Fix every fixable difference (none with ``check``), in order: tags, refs, cards, the manifest."""
    fixed: list[Difference] = []
    if not check:
        for difference in differences:
            if difference.fix is not None:
                difference.fix()
                fixed.append(difference)
    return SyncResult(differences, fixed, check)
