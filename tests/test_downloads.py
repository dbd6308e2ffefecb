"""Downloads and the local store against planted files, identical files, oversized objects and paths regops owns.

Every case is judged on bytes on disk: a decoy outside DEST (or the store) keeps its bytes, DEST holds nothing but
verified regular files, the store holds the real bytes.
"""

from __future__ import annotations

import hashlib
import http.server
import os
import threading
import time
from pathlib import Path

import pytest

from regops.adapters.local import LocalStorage
from regops.adapters.metrics import JsonSource, MetricsError
from regops.cli import main
from regops.files import ArtifactFile
from regops.weights import PARTIAL_DIR, Artifact, OversizeError, StorageError, download, hash_files, part_name
from tests import test_faults
from tests.test_faults import Work, cli, objects

HOT = {"backend": "local", "tier": "hot"}
REF = "sentiment@1.0.0"
WEIGHTS = bytes(range(256)) * 1024 + b"tail"
CONFIG = b'{"hidden_size": 768}\n'
DECOY = b"export PATH=$HOME/bin:$PATH\n"

work = test_faults.work  # a training run's output next to a registry with a local store


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _put(tmp_path: Path, files: dict[str, bytes]) -> tuple[LocalStorage, list[Artifact]]:
    source = tmp_path / "run"
    for name, data in files.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes(data)
    storage = LocalStorage(tmp_path / "store")
    artifacts = hash_files(source, sorted(files))
    storage.put(source, artifacts, model="sentiment", version="1.0.0")
    return storage, artifacts


def _dest_files(dest: Path) -> dict[str, bytes]:
    """Every entry of DEST; anything but a regular file (a symlink, a folder link) fails the test."""
    found = {}
    for path in sorted(dest.rglob("*")):
        assert not path.is_symlink(), f"{path} is a symlink in DEST"
        if path.is_file():
            found[path.relative_to(dest).as_posix()] = path.read_bytes()
    return found


@pytest.fixture
def decoy(tmp_path: Path) -> Path:
    path = tmp_path / "home" / ".bashrc"
    path.parent.mkdir()
    path.write_bytes(DECOY)
    return path


# --- finding 1: identical files in one version ---------------------------------------------------------------------


def test_two_files_with_identical_bytes_both_arrive(tmp_path: Path) -> None:
    storage, artifacts = _put(tmp_path, {"config.json": CONFIG, "text/config.json": CONFIG, "w.bin": WEIGHTS})
    dest = tmp_path / "out"

    written = download(storage, artifacts, HOT, dest, ref=REF)

    assert sorted(written) == sorted(dest / a.path for a in artifacts)
    assert _dest_files(dest) == {"config.json": CONFIG, "text/config.json": CONFIG, "w.bin": WEIGHTS}
    assert not (dest / PARTIAL_DIR).exists()


def test_identical_files_through_register_and_the_cli(work: Work, capsys: pytest.CaptureFixture[str]) -> None:
    (work.artifacts / "tokenizer").mkdir()
    (work.artifacts / "tokenizer" / "config.json").write_bytes(CONFIG)  # the same bytes as ./config.json
    assert cli(capsys, work.register())[0] == 0
    dest = work.tree.base / "deploy"

    code, _, err = cli(capsys, ["download", "sentiment@1.5.0", "--dest", str(dest), "--registry", str(work.tree.root)])

    assert code == 0, err
    assert _dest_files(dest) == {
        "config.json": CONFIG,
        "model.safetensors": (work.artifacts / "model.safetensors").read_bytes(),
        "tokenizer/config.json": CONFIG,
    }


# --- finding 4: a body longer than the recorded size -----------------------------------------------------------------


def test_an_oversized_object_is_cut_off_at_the_recorded_size(tmp_path: Path) -> None:
    storage, artifacts = _put(tmp_path, {"config.json": CONFIG})
    obj = LocalStorage.object_path(storage.hot, _sha(CONFIG))
    obj.write_bytes(CONFIG + bytes(8 << 20))  # the store now answers 8 MiB for a 21-byte file
    dest = tmp_path / "out"
    dest.mkdir()
    streamed: list[int] = []

    with pytest.raises(OversizeError) as raised:
        download(storage, artifacts, HOT, dest, ref=REF, progress=streamed.append)

    assert sum(streamed) <= len(CONFIG), "no byte past the recorded size is kept"
    assert list(dest.iterdir()) == [], "DEST as it was: no staging folder, no file"
    assert str(raised.value) == (
        f"config.json: local hot storage at {storage.hot} sent more than the {len(CONFIG)} bytes recorded in the "
        "version file; stopped at the first byte too many and refused it. The stored copy is damaged or was "
        "replaced: nothing was written"
    )


# --- finding 5: planted files -----------------------------------------------------------------------------------------


def test_a_symlink_planted_as_a_part_file_is_never_written_through(tmp_path: Path, decoy: Path) -> None:
    storage, artifacts = _put(tmp_path, {"config.json": CONFIG, "w.bin": WEIGHTS})
    dest = tmp_path / "out"
    (dest / PARTIAL_DIR).mkdir(parents=True)
    for artifact in artifacts:  # at the name this version stages under, and at the digest-only name
        (dest / PARTIAL_DIR / part_name(artifact)).symlink_to(decoy)
        (dest / PARTIAL_DIR / f"{artifact.sha256}.part").symlink_to(decoy)

    download(storage, artifacts, HOT, dest, ref=REF)

    assert decoy.read_bytes() == DECOY, "the file outside DEST keeps its bytes"
    assert _dest_files(dest) == {"config.json": CONFIG, "w.bin": WEIGHTS}, "only verified regular files in DEST"


def test_a_staging_folder_planted_as_a_symlink_is_replaced(tmp_path: Path, decoy: Path) -> None:
    storage, artifacts = _put(tmp_path, {"config.json": CONFIG})
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / PARTIAL_DIR).symlink_to(decoy.parent)
    before = sorted(p.name for p in decoy.parent.iterdir())

    download(storage, artifacts, HOT, dest, ref=REF)

    assert sorted(p.name for p in decoy.parent.iterdir()) == before and decoy.read_bytes() == DECOY
    assert _dest_files(dest) == {"config.json": CONFIG}


def test_a_hard_link_planted_as_a_part_file_is_not_appended_to(tmp_path: Path, decoy: Path) -> None:
    storage, artifacts = _put(tmp_path, {"config.json": CONFIG})
    dest = tmp_path / "out"
    (dest / PARTIAL_DIR).mkdir(parents=True)
    os.link(decoy, dest / PARTIAL_DIR / part_name(artifacts[0]))

    download(storage, artifacts, HOT, dest, ref=REF)

    assert decoy.read_bytes() == DECOY
    assert _dest_files(dest) == {"config.json": CONFIG}


def test_a_folder_in_dest_linked_elsewhere_is_refused(tmp_path: Path, decoy: Path) -> None:
    storage, artifacts = _put(tmp_path, {"config.json": CONFIG, "tokenizer/vocab.txt": b"hello\n"})
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "tokenizer").symlink_to(decoy.parent)

    with pytest.raises(StorageError, match=r"tokenizer is not a folder \(a symlink or file was put there\)"):
        download(storage, artifacts, HOT, dest, ref=REF)

    assert sorted(p.name for p in decoy.parent.iterdir()) == [".bashrc"], "nothing written outside DEST"
    assert not (dest / "config.json").exists(), "DEST is not half-written"


def test_a_symlink_in_dest_with_the_right_bytes_is_replaced_by_a_real_file(tmp_path: Path) -> None:
    storage, artifacts = _put(tmp_path, {"config.json": CONFIG})
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_bytes(CONFIG)
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "config.json").symlink_to(elsewhere)

    download(storage, artifacts, HOT, dest, ref=REF)

    assert _dest_files(dest) == {"config.json": CONFIG}
    assert elsewhere.read_bytes() == CONFIG


def test_a_symlink_at_the_stores_temp_name_is_never_followed(tmp_path: Path, decoy: Path) -> None:
    source = tmp_path / "run"
    source.mkdir()
    (source / "config.json").write_bytes(CONFIG)
    storage = LocalStorage(tmp_path / "store")
    target = LocalStorage.object_path(storage.hot, _sha(CONFIG))
    target.parent.mkdir(parents=True)
    (target.parent / f".{target.name}.{os.getpid()}.tmp").symlink_to(decoy)  # the name regops used to pick

    storage.put(source, hash_files(source, ["config.json"]), model="sentiment", version="1.0.0")

    assert decoy.read_bytes() == DECOY
    assert target.read_bytes() == CONFIG and not target.is_symlink()


def test_a_same_size_impostor_in_the_store_is_replaced_on_register(
    work: Work, capsys: pytest.CaptureFixture[str]
) -> None:
    store = work.tree.base / ".regops/store"
    impostor = LocalStorage.object_path(store, _sha(CONFIG))
    impostor.parent.mkdir(parents=True)
    impostor.write_bytes(b"X" * len(CONFIG))  # same size, other bytes, under the real object's name

    assert cli(capsys, work.register())[0] == 0

    assert impostor.read_bytes() == CONFIG, "the store holds the real bytes after register"
    assert _sha(CONFIG) in objects(work.tree)
    dest = work.tree.base / "deploy"
    assert main(["download", "sentiment@1.5.0", "--dest", str(dest), "--registry", str(work.tree.root)]) == 0
    assert (dest / "config.json").read_bytes() == CONFIG


def test_a_symlink_impostor_in_the_store_is_replaced_not_written_through(tmp_path: Path, decoy: Path) -> None:
    source = tmp_path / "run"
    source.mkdir()
    (source / "config.json").write_bytes(CONFIG)
    storage = LocalStorage(tmp_path / "store")
    target = LocalStorage.object_path(storage.hot, _sha(CONFIG))
    target.parent.mkdir(parents=True)
    target.symlink_to(decoy)

    result = storage.put(source, hash_files(source, ["config.json"]), model="sentiment", version="1.0.0")

    assert (result.uploaded_files, result.present_files) == (1, 0)
    assert decoy.read_bytes() == DECOY
    assert not target.is_symlink() and target.read_bytes() == CONFIG


# --- finding 8: paths under .regops-partial/ --------------------------------------------------------------------------


@pytest.mark.parametrize("path", [".regops-partial/model.bin", ".regops-partial"])
def test_an_artifact_path_under_the_staging_folder_is_invalid(path: str) -> None:
    with pytest.raises(ValueError, match=r"never under \.regops-partial/"):
        ArtifactFile(path=path, size=1, sha256="0" * 64)


@pytest.mark.parametrize("path", ["a/.regops-partial/model.bin", ".regops-partial-old/model.bin"])
def test_a_staging_folder_name_elsewhere_is_a_valid_path(path: str) -> None:
    assert ArtifactFile(path=path, size=1, sha256="0" * 64).path == path


def test_register_refuses_files_under_the_staging_folder_before_storing(
    work: Work, capsys: pytest.CaptureFixture[str]
) -> None:
    (work.artifacts / PARTIAL_DIR).mkdir()
    (work.artifacts / PARTIAL_DIR / "extra.bin").write_bytes(b"staged")

    code, out, err = cli(capsys, work.register())

    assert (code, out) == (1, "")
    assert err.startswith(f"regops: error: {work.artifacts / PARTIAL_DIR / 'extra.bin'}: artifact paths are"), err
    assert "never under .regops-partial/" in err
    assert objects(work.tree) == [], "nothing stored"
    assert not (work.tree.root / "models/sentiment/1.5.0.yaml").exists()


# --- finding 4: metrics requests are bounded too ---------------------------------------------------------------------


class _Drip(http.server.BaseHTTPRequestHandler):
    """A metrics endpoint that answers at once, then sends its JSON body one byte every 0.3 s."""

    def do_GET(self) -> None:
        body = b'{"models": {"sentiment": {"1.0.0": {"errors": {"errors": 1, "requests": 100}}}}}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        for i in range(len(body)):
            time.sleep(0.3)
            try:
                self.wfile.write(body[i : i + 1])
                self.wfile.flush()
            except OSError:
                return

    def log_message(self, *args: object) -> None:
        pass


def test_a_metrics_server_that_drips_fails_within_the_read_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Drip)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("REGOPS_HTTP_TIMEOUT", "1")
    try:
        source = JsonSource(f"http://127.0.0.1:{server.server_port}/canary.json")
        start = time.monotonic()
        with pytest.raises(MetricsError) as raised:
            source.document()
        elapsed = time.monotonic() - start
    finally:
        server.shutdown()
        server.server_close()

    assert elapsed < 4, f"waited {elapsed:.1f} s for a dripping metrics server (the whole body takes ~24 s)"
    assert "(a stalled transfer) within 1 s" in str(raised.value)
    assert "REGOPS_HTTP_TIMEOUT" in str(raised.value)
