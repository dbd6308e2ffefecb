"""Local content-addressed storage and verified downloads, on real files in tmp_path.

Faults are real: a stored object is overwritten on disk, an object is deleted,
a staging file is left half-written. Each case checks the message a user sees
and that nothing half-written or damaged reaches DEST or the store.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from regops import api
from regops.adapters.local import LocalStorage
from regops.cli import main
from regops.errors import RegopsError
from regops.weights import (
    PARTIAL_DIR,
    Artifact,
    ArtifactsMissingError,
    HashMismatchError,
    SourceChangedError,
    StorageError,
    download,
    hash_files,
    part_name,
)
from tests.conftest import Tree

HOT = {"backend": "local", "tier": "hot"}
COLD = {"backend": "local", "tier": "cold"}
REF = "sentiment@1.0.0"
WEIGHTS = bytes(range(256)) * 4096 + b"tail"  # 1 MiB and a bit: more than one CHUNK
CONFIG = b'{"hidden_size": 768}\n'
VOCAB = b"[PAD]\n[UNK]\nhello\n"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _source(folder: Path, files: dict[str, bytes]) -> tuple[Path, list[Artifact]]:
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder, hash_files(folder, sorted(files))


def _stored(root: Path) -> dict[str, bytes]:
    """Every file under a store root (objects and anything else), by relative path."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _tree(folder: Path) -> dict[str, bytes]:
    return _stored(folder) if folder.exists() else {}


def _objects(*blobs: bytes) -> dict[str, bytes]:
    return {f"sha256/{_sha(b)[:2]}/{_sha(b)[2:4]}/{_sha(b)}": b for b in blobs}


def _artifact(artifacts: list[Artifact], data: bytes) -> Artifact:
    return next(a for a in artifacts if a.sha256 == _sha(data))


class Counter:
    """A progress callback: how many bytes were streamed out of the store."""

    def __init__(self) -> None:
        self.bytes = 0

    def __call__(self, n: int) -> None:
        self.bytes += n


@pytest.fixture
def stored(tmp_path: Path) -> tuple[LocalStorage, list[Artifact]]:
    storage = LocalStorage(tmp_path / "store", tmp_path / "cold")
    source, artifacts = _source(
        tmp_path / "v1", {"model.safetensors": WEIGHTS, "config.json": CONFIG, "tokenizer/vocab.txt": VOCAB}
    )
    result = storage.put(source, artifacts, model="sentiment", version="1.0.0")
    assert (result.uploaded_files, result.present_files) == (3, 0)
    return storage, artifacts


def _tamper(storage: LocalStorage, data: bytes) -> Path:
    """Overwrite a stored object in place with other bytes of the same size."""
    obj = LocalStorage.object_path(storage.hot, _sha(data))
    obj.write_bytes(bytes(b ^ 0xFF for b in data[:64]) + data[64:])
    return obj


# --- put ------------------------------------------------------------------------------------


def test_put_stores_each_file_once_by_sha256(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "store")
    v1, a1 = _source(tmp_path / "v1", {"model.safetensors": WEIGHTS, "config.json": CONFIG})

    first = storage.put(v1, a1, model="sentiment", version="1.0.0")

    assert first.location == HOT
    assert (first.uploaded_files, first.uploaded_bytes, first.present_files) == (2, len(WEIGHTS) + len(CONFIG), 0)
    assert _stored(storage.hot) == _objects(WEIGHTS, CONFIG)
    assert LocalStorage.object_path(storage.hot, _sha(WEIGHTS)) == (
        tmp_path / "store" / "sha256" / _sha(WEIGHTS)[:2] / _sha(WEIGHTS)[2:4] / _sha(WEIGHTS)
    )
    inodes = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in storage.hot.rglob("*") if p.is_file()}

    # A retrained version with the same weights and config: nothing to upload.
    v2, a2 = _source(tmp_path / "v2", {"model.safetensors": WEIGHTS, "config.json": CONFIG})
    second = storage.put(v2, a2, model="sentiment", version="1.0.1")
    assert (second.uploaded_files, second.uploaded_bytes, second.present_files) == (0, 0, 2)

    # New weights, shared config: only the weights are uploaded.
    new_weights = WEIGHTS[::-1]
    v3, a3 = _source(tmp_path / "v3", {"model.safetensors": new_weights, "config.json": CONFIG})
    third = storage.put(v3, a3, model="sentiment", version="1.1.0")
    assert (third.uploaded_files, third.uploaded_bytes, third.present_files) == (1, len(new_weights), 1)

    assert _stored(storage.hot) == _objects(WEIGHTS, CONFIG, new_weights), "one object per content, no temp files"
    after = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in inodes}
    assert after == inodes, "stored objects are never rewritten"


def test_put_never_overwrites_an_object(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "store")
    source, artifacts = _source(tmp_path / "v1", {"config.json": CONFIG})
    storage.put(source, artifacts, model="sentiment", version="1.0.0")
    obj = LocalStorage.object_path(storage.hot, _sha(CONFIG))
    before = (obj.stat().st_ino, obj.stat().st_mtime_ns, obj.read_bytes())

    again = storage.put(source, artifacts, model="sentiment", version="1.0.1")

    assert (again.uploaded_files, again.present_files) == (0, 1)
    assert (obj.stat().st_ino, obj.stat().st_mtime_ns, obj.read_bytes()) == before


def test_put_refuses_a_file_that_changed_after_hashing(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "store")
    source, artifacts = _source(tmp_path / "v1", {"config.json": CONFIG, "model.safetensors": WEIGHTS})
    changed = WEIGHTS[:-4] + b"TAIL"  # same size: the training job rewrote it after regops hashed it
    (source / "model.safetensors").write_bytes(changed)

    with pytest.raises(SourceChangedError) as raised:
        storage.put(source, artifacts, model="sentiment", version="1.0.0")

    error = raised.value
    assert (error.path, error.hashed, error.copied) == ("model.safetensors", _sha(WEIGHTS), _sha(changed))
    # It is the source that changed: the message must not send anyone looking for damage in the store.
    assert str(error) == (
        f"model.safetensors changed while it was being stored (sha256 {_sha(WEIGHTS)} when hashed, "
        f"{_sha(changed)} when copied); nothing was stored for it: make sure nothing is still writing the "
        "artifacts, then run again"
    )
    # config.json (hashed and unchanged) was stored; the changed file under neither hash, and no temp file.
    assert _stored(storage.hot) == _objects(CONFIG)


def test_put_into_an_unwritable_root_is_a_storage_error(tmp_path: Path) -> None:
    (tmp_path / "blocked").write_text("a file where the store folder should be\n")
    storage = LocalStorage(tmp_path / "blocked" / "store")
    source, artifacts = _source(tmp_path / "v1", {"config.json": CONFIG})

    with pytest.raises(StorageError, match=r"^cannot write to local storage at .*/blocked/store: Not a directory$"):
        storage.put(source, artifacts, model="sentiment", version="1.0.0")
    assert (tmp_path / "blocked").read_text() == "a file where the store folder should be\n"


# --- download -------------------------------------------------------------------------------


def test_download_writes_every_file_verified(stored: tuple[LocalStorage, list[Artifact]], tmp_path: Path) -> None:
    storage, artifacts = stored
    dest = tmp_path / "out" / "sentiment"
    fetched = Counter()

    written = download(storage, artifacts, HOT, dest, ref=REF, progress=fetched)

    assert written == [dest / "config.json", dest / "model.safetensors", dest / "tokenizer/vocab.txt"]
    assert _tree(dest) == {"config.json": CONFIG, "model.safetensors": WEIGHTS, "tokenizer/vocab.txt": VOCAB}
    assert fetched.bytes == len(WEIGHTS) + len(CONFIG) + len(VOCAB)
    stamps = {p: p.stat().st_mtime_ns for p in written}

    again = Counter()
    assert download(storage, artifacts, HOT, dest, ref=REF, progress=again) == []
    assert again.bytes == 0, "everything in place: nothing fetched"
    assert {p: p.stat().st_mtime_ns for p in written} == stamps
    assert not (dest / PARTIAL_DIR).exists()


def test_download_replaces_only_the_files_that_are_wrong(
    stored: tuple[LocalStorage, list[Artifact]], tmp_path: Path
) -> None:
    storage, artifacts = stored
    dest = tmp_path / "out"
    download(storage, artifacts, HOT, dest, ref=REF)
    (dest / "config.json").write_bytes(b'{"hidden_size": 1}\n')  # edited locally
    fetched = Counter()

    assert download(storage, artifacts, HOT, dest, ref=REF, progress=fetched) == [dest / "config.json"]
    assert fetched.bytes == len(CONFIG)
    assert _tree(dest) == {"config.json": CONFIG, "model.safetensors": WEIGHTS, "tokenizer/vocab.txt": VOCAB}


def _mismatch_message(storage: LocalStorage, data: bytes, path: str) -> str:
    obj = LocalStorage.object_path(storage.hot, _sha(data))
    return (
        f"{path}: sha256 {_sha(obj.read_bytes())} does not match {_sha(data)} recorded in the version file "
        f"(local hot storage at {storage.hot}); refusing it. The stored copy is damaged or was replaced: "
        "nothing was written"
    )


def test_tampered_blob_is_refused_and_a_missing_dest_is_not_created(
    stored: tuple[LocalStorage, list[Artifact]], tmp_path: Path
) -> None:
    storage, artifacts = stored
    _tamper(storage, WEIGHTS)
    dest = tmp_path / "out"

    with pytest.raises(HashMismatchError) as raised:
        download(storage, artifacts, HOT, dest, ref=REF)

    assert str(raised.value) == _mismatch_message(storage, WEIGHTS, "model.safetensors")
    assert raised.value.expected == _sha(WEIGHTS)
    assert not dest.exists()


def test_tampered_blob_is_refused_and_an_existing_dest_is_untouched(
    stored: tuple[LocalStorage, list[Artifact]], tmp_path: Path
) -> None:
    storage, artifacts = stored
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "README.md").write_text("my notes\n")
    (dest / "config.json").write_bytes(b"an older config\n")
    # An earlier interrupted download left a good half of the weights staged.
    (dest / PARTIAL_DIR).mkdir()
    (dest / PARTIAL_DIR / part_name(_artifact(artifacts, WEIGHTS))).write_bytes(WEIGHTS[:1000])
    _tamper(storage, VOCAB)
    before = {k: v for k, v in _tree(dest).items() if not k.startswith(PARTIAL_DIR)}

    with pytest.raises(HashMismatchError) as raised:
        download(storage, artifacts, HOT, dest, ref=REF)

    assert str(raised.value) == _mismatch_message(storage, VOCAB, "tokenizer/vocab.txt")
    assert _tree(dest) == before, "DEST keeps exactly its own files; no weights, no staging folder"
    assert not (dest / PARTIAL_DIR).exists()


def test_missing_object_is_not_retrievable_and_dest_is_not_created(
    stored: tuple[LocalStorage, list[Artifact]], tmp_path: Path
) -> None:
    storage, artifacts = stored
    LocalStorage.object_path(storage.hot, _sha(WEIGHTS)).unlink()
    dest = tmp_path / "out"

    with pytest.raises(ArtifactsMissingError) as raised:
        download(storage, artifacts, HOT, dest, ref=REF)

    assert str(raised.value) == (
        f"{REF}: model.safetensors not retrievable from local hot storage at {storage.hot}; nothing was changed: the "
        f"version file says the weights are there, so put them back (from a backup, or from the machine that "
        f"registered {REF}) and run again"
    )
    assert raised.value.missing == ["model.safetensors"]
    assert not dest.exists()


def test_resume_completes_a_half_written_part(stored: tuple[LocalStorage, list[Artifact]], tmp_path: Path) -> None:
    storage, artifacts = stored
    dest = tmp_path / "out"
    half = len(WEIGHTS) // 2
    part = dest / PARTIAL_DIR / part_name(_artifact(artifacts, WEIGHTS))
    part.parent.mkdir(parents=True)
    part.write_bytes(WEIGHTS[:half])
    fetched = Counter()

    written = download(storage, artifacts, HOT, dest, ref=REF, progress=fetched)

    assert dest / "model.safetensors" in written
    assert fetched.bytes == len(WEIGHTS) - half + len(CONFIG) + len(VOCAB), "only the missing half is fetched"
    assert hashlib.sha256((dest / "model.safetensors").read_bytes()).hexdigest() == _sha(WEIGHTS)
    assert _tree(dest) == {"config.json": CONFIG, "model.safetensors": WEIGHTS, "tokenizer/vocab.txt": VOCAB}


def test_resume_discards_a_part_longer_than_the_file(
    stored: tuple[LocalStorage, list[Artifact]], tmp_path: Path
) -> None:
    storage, artifacts = stored
    dest = tmp_path / "out"
    part = dest / PARTIAL_DIR / part_name(_artifact(artifacts, CONFIG))
    part.parent.mkdir(parents=True)
    part.write_bytes(CONFIG + b"garbage from somewhere else")
    fetched = Counter()

    download(storage, artifacts, HOT, dest, ref=REF, progress=fetched)

    assert fetched.bytes == len(WEIGHTS) + len(CONFIG) + len(VOCAB), "the long part is refetched from zero"
    assert (dest / "config.json").read_bytes() == CONFIG
    assert not (dest / PARTIAL_DIR).exists()


def test_a_damaged_part_is_refetched_not_blamed_on_the_store(
    stored: tuple[LocalStorage, list[Artifact]], tmp_path: Path
) -> None:
    storage, artifacts = stored
    dest = tmp_path / "out"
    part = dest / PARTIAL_DIR / part_name(_artifact(artifacts, WEIGHTS))
    part.parent.mkdir(parents=True)
    part.write_bytes(bytes(len(WEIGHTS) // 2))

    try:
        download(storage, artifacts, HOT, dest, ref=REF)
    except HashMismatchError as e:
        pytest.fail(f"the store is intact, yet: {e}")

    assert _tree(dest) == {"config.json": CONFIG, "model.safetensors": WEIGHTS, "tokenizer/vocab.txt": VOCAB}


def test_tampered_blob_leaves_no_parent_folders_of_a_new_dest(
    stored: tuple[LocalStorage, list[Artifact]], tmp_path: Path
) -> None:
    storage, artifacts = stored
    _tamper(storage, WEIGHTS)

    with pytest.raises(HashMismatchError):
        download(storage, artifacts, HOT, tmp_path / "out" / "models" / "sentiment", ref=REF)

    assert not (tmp_path / "out").exists()


# --- tiers ----------------------------------------------------------------------------------


def test_to_cold_and_restore_copy_between_tiers(stored: tuple[LocalStorage, list[Artifact]], tmp_path: Path) -> None:
    storage, artifacts = stored
    hot_objects = _stored(storage.hot)

    assert storage.to_cold(artifacts, HOT, model="m", version="1.0.0") == COLD
    assert storage.cold is not None
    assert _stored(storage.cold) == hot_objects
    assert _stored(storage.hot) == hot_objects, "to_cold copies; the hot tier is untouched"

    for obj in storage.hot.rglob("*"):
        if obj.is_file():
            obj.unlink()
    assert storage.describe(COLD) == f"local cold storage at {storage.cold}"
    download(storage, artifacts, COLD, tmp_path / "from-cold", ref=REF)
    assert _tree(tmp_path / "from-cold")["model.safetensors"] == WEIGHTS

    assert storage.restore(artifacts, COLD, model="m", version="1.0.0") == HOT
    assert _stored(storage.hot) == hot_objects
    download(storage, artifacts, HOT, tmp_path / "from-hot", ref=REF)
    assert _tree(tmp_path / "from-hot") == {
        "config.json": CONFIG,
        "model.safetensors": WEIGHTS,
        "tokenizer/vocab.txt": VOCAB,
    }


def test_restore_refuses_a_damaged_cold_copy(stored: tuple[LocalStorage, list[Artifact]]) -> None:
    storage, artifacts = stored
    storage.to_cold(artifacts, HOT, model="m", version="1.0.0")
    assert storage.cold is not None
    weights = LocalStorage.object_path(storage.hot, _sha(WEIGHTS))
    weights.unlink()
    cold_weights = LocalStorage.object_path(storage.cold, _sha(WEIGHTS))
    cold_weights.write_bytes(WEIGHTS[:-4] + b"ROT!")

    with pytest.raises(HashMismatchError) as raised:
        storage.restore(artifacts, COLD, model="m", version="1.0.0")

    assert raised.value.path == "model.safetensors"
    assert str(raised.value) == (
        f"model.safetensors: sha256 {_sha(cold_weights.read_bytes())} does not match {_sha(WEIGHTS)} recorded in "
        f"the version file (local storage at {storage.cold}); refusing it. The stored copy is damaged or was "
        "replaced: nothing was written"
    )
    assert not weights.exists()
    assert sorted(p.name for p in weights.parent.iterdir()) == [], "no temp file left in the hot tier"


def test_to_cold_without_a_cold_tier_is_refused(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "store")
    source, artifacts = _source(tmp_path / "v1", {"config.json": CONFIG})
    storage.put(source, artifacts, model="sentiment", version="1.0.0")

    with pytest.raises(StorageError, match=r"^regops\.yaml sets no cold_storage path$"):
        storage.to_cold(artifacts, HOT, model="m", version="1.0.0")
    with pytest.raises(
        StorageError, match=r"^the version is in cold storage, but regops\.yaml sets no cold_storage path$"
    ):
        storage.missing(artifacts, COLD)


def test_restore_replaces_a_damaged_hot_copy(stored: tuple[LocalStorage, list[Artifact]]) -> None:
    storage, artifacts = stored
    storage.to_cold(artifacts, HOT, model="m", version="1.0.0")
    damaged = _tamper(storage, WEIGHTS)  # the hot copy rotted while the version was cold (same size)

    assert storage.restore(artifacts, COLD, model="m", version="1.0.0") == HOT

    assert damaged.read_bytes() == WEIGHTS, "restore verifies what it vouches for"
    assert _stored(storage.hot) == _objects(WEIGHTS, CONFIG, VOCAB)


# --- api.download and api.restore on a registry ------------------------------------------------


@pytest.fixture
def registered(tree: Tree, tmp_path: Path) -> str:
    tree.replace(
        "regops.yaml",
        "storage: {backend: local, path: .regops/store}\n",
        "storage: {backend: local, path: .regops/store}\ncold_storage: {backend: local, path: .regops/cold}\n",
    )
    _source(tmp_path / "artifacts", {"model.safetensors": WEIGHTS, "config.json": CONFIG})
    (tmp_path / "evals.json").write_text('{"accuracy": 0.96, "latency_ms": 40}\n')
    (tmp_path / "params.yaml").write_text("learning_rate: 3.0e-5\n")
    result = api.register(
        "sentiment",
        registry=tree.root,
        artifacts=tmp_path / "artifacts",
        evals=tmp_path / "evals.json",
        params=tmp_path / "params.yaml",
        dataset="reviews@2025-09-08",
        version="1.5.0",
        by="alice",
    )
    assert result.uploaded_files == 2
    return "sentiment@1.5.0"


def test_api_download_fetches_a_registered_version(tree: Tree, registered: str, tmp_path: Path) -> None:
    record, written = api.download(registered, registry=tree.root, dest=tmp_path / "dl")

    assert record.ref == registered
    assert written == [tmp_path / "dl" / "config.json", tmp_path / "dl" / "model.safetensors"]
    assert _tree(tmp_path / "dl") == {"config.json": CONFIG, "model.safetensors": WEIGHTS}
    assert api.download(registered, registry=tree.root, dest=tmp_path / "dl")[1] == []


def test_api_download_refuses_a_tampered_blob(tree: Tree, registered: str, tmp_path: Path) -> None:
    storage = api.open_storage(api.open_registry(tree.root))
    assert isinstance(storage, LocalStorage)
    assert storage.hot == tree.base / ".regops/store"
    _tamper(storage, WEIGHTS)

    with pytest.raises(HashMismatchError, match=r"^model\.safetensors: sha256 [0-9a-f]{64} does not match "):
        api.download(registered, registry=tree.root, dest=tmp_path / "dl")
    assert not (tmp_path / "dl").exists()


def test_cold_version_is_restored_then_downloadable(
    tree: Tree, registered: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = api.open_storage(api.open_registry(tree.root))
    artifacts = [Artifact.from_record(f) for f in api.show(registered, registry=tree.root).raw["artifacts"]["files"]]
    storage.to_cold(artifacts, HOT, model="m", version="1.0.0")
    for obj in (tree.base / ".regops/store").rglob("*"):
        if obj.is_file():
            obj.unlink()
    tree.replace(
        "models/sentiment/1.5.0.yaml", "storage: {backend: local, tier: hot}", "storage: {backend: local, tier: cold}"
    )

    with pytest.raises(RegopsError, match=r"weights are in cold storage; run `regops restore sentiment@1.5.0` first$"):
        api.download(registered, registry=tree.root, dest=tmp_path / "dl")
    assert not (tmp_path / "dl").exists()

    assert main(["restore", registered, "--registry", str(tree.root)]) == 0
    assert capsys.readouterr().out.strip() == "sentiment@1.5.0: weights now hot"
    assert "storage: {backend: local, tier: hot}" in tree.read("models/sentiment/1.5.0.yaml")
    assert main(["validate", "--registry", str(tree.root)]) == 0

    assert main(["download", registered, "--dest", str(tmp_path / "dl"), "--registry", str(tree.root)]) == 0
    assert capsys.readouterr().out.strip().endswith("sentiment@1.5.0: 2 files downloaded and verified")
    assert _tree(tmp_path / "dl") == {"config.json": CONFIG, "model.safetensors": WEIGHTS}
