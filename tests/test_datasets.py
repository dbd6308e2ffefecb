"""Dataset identity: the tree hash recomputed independently, the cache, DVC files, registering.

The hash definition is rebuilt here from the ``blake3`` package and a manifest
of our own, never through regops; every error path checks its message, and
every failed write checks that the registry is byte for byte as before.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from blake3 import blake3

from regops.cli import main
from regops.datasets import (
    LARGE_FILE,
    DatasetExistsError,
    DatasetPathError,
    DatasetWriteError,
    DvcFileError,
    EmptyTreeError,
    FromDelta,
    FromDvc,
    FromFiles,
    FromIceberg,
    HashCache,
    InvalidDatasetError,
    SymlinkError,
    TreeHash,
    hash_path,
    identify,
    read_dvc,
    register_dataset,
)
from regops.errors import RegistryNotFoundError
from regops.registry import Registry
from tests.conftest import Tree

FILES = {
    "a/b/x.txt": b"hello",
    "a-b/y": b"w",  # '-' (0x2d) sorts before '/' (0x2f): a-b/y comes before a/b/x.txt
    "café.txt": "crème\n".encode(),
    "Zebra": b"z" * 100_000,  # uppercase sorts first; large enough to be memory-mapped
    "empty.bin": b"",
}
HOUR_AGO_NS = time.time_ns() - 3600 * 10**9
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def expected_hash(files: dict[str, bytes]) -> str:
    """The definition, independently: sorted manifest of path, size, blake3 hex; blake3 of it."""
    lines = sorted(
        (f"{rel}\t{len(data)}\t{blake3(data).hexdigest()}\n".encode() for rel, data in files.items()),
        key=lambda line: line.split(b"\t", 1)[0],
    )
    return "blake3:" + blake3(b"".join(lines)).hexdigest()


def make(root: Path, files: dict[str, bytes], *, old: bool = True) -> Path:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        if old:  # older than the cache's 2 s "racy" window
            os.utime(path, ns=(HOUR_AGO_NS, HOUR_AGO_NS))
    return root


@pytest.fixture
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small tree outside the registry copy (so tree.snapshot() never sees it)."""
    return make(tmp_path_factory.mktemp("data") / "reviews", FILES)


def no_cache() -> HashCache:
    return HashCache(None)


# --- the definition ---------------------------------------------------------------


def test_hash_is_blake3_of_the_sorted_manifest(data: Path) -> None:
    result = hash_path(data, cache=no_cache())
    assert result == TreeHash(expected_hash(FILES), sum(map(len, FILES.values())), len(FILES))


def test_a_large_file_is_mapped_and_hashed_the_same(tmp_path: Path) -> None:
    files = {"big.bin": os.urandom(LARGE_FILE + 1), "small.txt": b"x"}
    root = make(tmp_path / "large", files)
    assert hash_path(root, cache=no_cache()).hash == expected_hash(files)
    assert hash_path(root / "big.bin", cache=no_cache()).hash == expected_hash({"big.bin": files["big.bin"]})


def test_empty_folders_contribute_nothing(data: Path) -> None:
    before = hash_path(data, cache=no_cache())
    (data / "nothing" / "inside").mkdir(parents=True)
    assert hash_path(data, cache=no_cache()) == before


def test_same_tree_same_hash_whatever_the_creation_order_and_workers(tmp_path: Path) -> None:
    forward = make(tmp_path / "forward", FILES)
    backward = make(tmp_path / "backward", dict(reversed(FILES.items())))
    hashes = {hash_path(root, cache=no_cache(), workers=w).hash for root in (forward, backward) for w in (1, 2, 8)}
    assert hashes == {expected_hash(FILES)}


CHANGES: list[tuple[str, Callable[[Path], object], dict[str, bytes]]] = [
    ("a byte", lambda d: (d / "a/b/x.txt").write_bytes(b"hellO"), {**FILES, "a/b/x.txt": b"hellO"}),
    ("a name", lambda d: (d / "a-b/y").rename(d / "a-b/z"), {**{k: v for k, v in FILES.items() if k != "a-b/y"}, "a-b/z": b"w"}),
    ("a folder name", lambda d: (d / "a/b").rename(d / "a/c"), {**{k: v for k, v in FILES.items() if k != "a/b/x.txt"}, "a/c/x.txt": b"hello"}),
    ("a file gone", lambda d: (d / "empty.bin").unlink(), {k: v for k, v in FILES.items() if k != "empty.bin"}),
    ("a file added", lambda d: (d / "new").write_bytes(b""), {**FILES, "new": b""}),
]  # fmt: skip


@pytest.mark.parametrize(("change", "edit", "after"), CHANGES, ids=[c[0] for c in CHANGES])
def test_the_hash_changes_with_the_content(
    data: Path, change: str, edit: Callable[[Path], object], after: dict[str, bytes]
) -> None:
    before = hash_path(data, cache=no_cache()).hash
    edit(data)
    now = hash_path(data, cache=no_cache()).hash
    assert now != before, change
    assert now == expected_hash(after)


def test_a_single_file_is_a_manifest_of_its_name(tmp_path: Path) -> None:
    one = make(tmp_path / "one", {"train.csv": b"a,b\n1,2\n"}) / "train.csv"
    other = make(tmp_path / "other" / "deeper", {"train.csv": b"a,b\n1,2\n", "ignored": b"x"}) / "train.csv"
    renamed = make(tmp_path / "renamed", {"test.csv": b"a,b\n1,2\n"}) / "test.csv"
    result = hash_path(one, cache=no_cache())
    assert result == TreeHash(expected_hash({"train.csv": b"a,b\n1,2\n"}), 8, 1)
    assert hash_path(other, cache=no_cache()) == result  # the folder it is in does not count
    assert hash_path(one.parent, cache=no_cache()) == result  # a folder holding just that file: the same
    assert hash_path(renamed, cache=no_cache()).hash != result.hash


@pytest.mark.skipif(shutil.which("b3sum") is None, reason="needs b3sum (apt-get install b3sum)")
def test_the_readme_shell_recipe_gives_the_same_hash(data: Path) -> None:
    recipe = (
        "cd \"$1\" && find . -type f -print0 | LC_ALL=C sort -z | while IFS= read -r -d '' f; do f=${f#./}; "
        'printf \'%s\\t%s\\t%s\\n\' "$f" "$(stat -c %s -- "$f")" "$(b3sum --no-names -- "$f")"; '
        "done | b3sum --no-names"
    )
    out = subprocess.run(["bash", "-c", recipe, "recipe", str(data)], capture_output=True, text=True, check=True)
    assert f"blake3:{out.stdout.strip()}" == hash_path(data, cache=no_cache()).hash


# --- what cannot be hashed -----------------------------------------------------------


def test_a_symlink_in_the_tree_is_refused_and_named(data: Path) -> None:
    (data / "a" / "link").symlink_to(data / "a-b" / "y")
    with pytest.raises(SymlinkError) as e:
        hash_path(data, cache=no_cache())
    assert e.value.file == data / "a" / "link"
    assert str(e.value) == (
        f"cannot hash {data}: {data / 'a' / 'link'} is a symbolic link (to {data / 'a-b' / 'y'}); "
        "regops never follows links: hash the target itself, or replace the link with a copy of the file"
    )


def test_a_symlinked_folder_is_refused(data: Path) -> None:
    (data / "more").symlink_to(data / "a")
    with pytest.raises(SymlinkError, match=r"more is a symbolic link \(to .*/a\)"):
        hash_path(data, cache=no_cache())


def test_the_path_itself_being_a_symlink_is_refused(data: Path, tmp_path: Path) -> None:
    link = tmp_path / "current"
    link.symlink_to(data)
    with pytest.raises(SymlinkError) as e:
        hash_path(link, cache=no_cache())
    assert str(e.value).startswith(f"cannot hash {link}: {link} is a symbolic link (to {data})")


def test_an_empty_tree_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(EmptyTreeError) as e:
        hash_path(tmp_path / "empty", cache=no_cache())
    assert str(e.value) == (
        f"cannot hash {tmp_path / 'empty'}: the folder holds no files (empty folders contribute nothing, "
        "so there is nothing to identify); check the path, or add the data first"
    )


def test_a_missing_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetPathError) as e:
        hash_path(tmp_path / "nope", cache=no_cache())
    assert str(e.value) == f"cannot hash {tmp_path / 'nope'}: no such file or directory"


def test_a_fifo_is_refused(data: Path) -> None:
    os.mkfifo(data / "pipe")
    with pytest.raises(DatasetPathError) as e:
        hash_path(data, cache=no_cache())
    assert str(e.value) == (
        f"cannot hash {data}: {data / 'pipe'} is not a regular file (a FIFO, socket or device): move it out of the tree"
    )


def test_a_fifo_as_the_path_is_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(DatasetPathError) as e:
        hash_path(tmp_path / "pipe", cache=no_cache())
    assert str(e.value) == f"cannot hash {tmp_path / 'pipe'}: not a regular file or a folder (a FIFO, socket or device)"


def test_a_name_with_a_tab_is_refused(data: Path) -> None:
    (data / "a\tb").write_bytes(b"")
    with pytest.raises(DatasetPathError) as e:
        hash_path(data, cache=no_cache())
    assert str(e.value) == (
        f"cannot hash {data}: the name 'a\\tb' contains a control character (tab, newline, …) "
        "that the manifest cannot hold: rename the file"
    )


def test_a_name_that_is_not_utf8_is_refused(data: Path) -> None:
    Path(os.fsdecode(os.fsencode(data) + b"/caf\xe9")).write_bytes(b"")
    with pytest.raises(DatasetPathError, match=r"the name 'caf\\udce9' is not valid UTF-8: rename the file"):
        hash_path(data, cache=no_cache())


LINUX_PROC = pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="needs Linux /proc")


@LINUX_PROC
def test_a_file_whose_bytes_disagree_with_its_size_is_refused() -> None:
    # /proc files claim size 0 and hold more: exactly what a file being written looks like.
    with pytest.raises(DatasetPathError) as e:
        hash_path(Path("/proc/self/status"), cache=no_cache())
    assert str(e.value) == (
        "cannot hash /proc/self/status: /proc/self/status changed while it was being hashed "
        "(its size, time or inode moved); hash again when whatever writes it has finished"
    )


@LINUX_PROC
def test_an_unreadable_file_is_named() -> None:
    with pytest.raises(DatasetPathError) as e:
        hash_path(Path("/proc/self/mem"), cache=no_cache())  # reading address 0 fails with EIO
    assert str(e.value) == "cannot hash /proc/self/mem: cannot read /proc/self/mem: input/output error"
    assert e.value.file == Path("/proc/self/mem")


@pytest.mark.skipif(not Path("/proc/sys/kernel/random/uuid").is_file(), reason="needs Linux /proc")
def test_an_error_on_a_hashing_thread_reaches_the_caller() -> None:
    folder = Path("/proc/sys/kernel/random")  # several files, each claiming size 0 and holding more
    with pytest.raises(
        DatasetPathError, match=rf"^cannot hash {folder}: {folder}/\w+ changed while it was being hashed"
    ):
        hash_path(folder, cache=no_cache(), workers=3)


def test_workers_must_be_positive(data: Path) -> None:
    with pytest.raises(ValueError, match="workers must be at least 1, not 0"):
        hash_path(data, workers=0)


def sparse(path: Path, size: int) -> Path:
    """A file of ``size`` zero bytes that takes no disk (and reads at memory speed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        f.truncate(size)
    return path


def wait_until_open(pid: int, path: Path, *, timeout: float = 30.0) -> None:
    """Until process ``pid`` has ``path`` open or mapped (it is being hashed); fails after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if str(path) in _open_files(pid):
            return
        time.sleep(0.001)
    pytest.fail(f"process {pid} never opened {path}")


def _open_files(pid: int) -> set[str]:
    found = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):  # closed since the listing (the listing's own descriptor, for one)
                found.add(str(fd.readlink()))
        found.update(line.split(maxsplit=5)[-1] for line in Path(f"/proc/{pid}/maps").read_text().splitlines())
    return found


@LINUX_PROC
def test_a_file_swapped_for_a_fifo_after_the_walk_fails_fast(tmp_path: Path) -> None:
    root = tmp_path / "data"
    big = sparse(root / "big.bin", 64 << 20)  # hashed first (largest first), long enough to swap meanwhile
    small = root / "small.txt"
    small.write_bytes(b"x")
    outcome: dict[str, object] = {}

    def hash_it() -> None:
        try:
            outcome["result"] = hash_path(root, cache=no_cache(), workers=1)
        except DatasetPathError as e:
            outcome["error"] = e

    worker = threading.Thread(target=hash_it, daemon=True)
    worker.start()
    wait_until_open(os.getpid(), big)  # the walk is over: small.txt was seen as a regular file
    small.unlink()
    os.mkfifo(small)
    worker.join(timeout=30)
    if worker.is_alive():  # blocked opening the FIFO, waiting for a writer: be one, so the test ends
        os.close(os.open(small, os.O_WRONLY | os.O_NONBLOCK))
        worker.join(timeout=10)
        pytest.fail("hashing hung on a FIFO swapped in after the walk")

    error = outcome.get("error")
    assert isinstance(error, DatasetPathError), outcome
    assert str(error) == (
        f"cannot hash {root}: {small} is no longer a regular file (a FIFO, socket or device took its place "
        "while the tree was being hashed): move it out of the tree and hash again"
    )
    assert error.file == small


@LINUX_PROC
def test_a_file_cut_short_while_hashed_is_an_error_not_a_crash(tmp_path: Path) -> None:
    root = tmp_path / "data"
    big = sparse(root / "big.bin", 4 << 30)  # the cut comes long before the end; no disk is used
    env = {**os.environ, "REGOPS_NO_CACHE": "1"}
    command = [sys.executable, "-m", "regops", "dataset", "hash", str(root)]
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            wait_until_open(proc.pid, big)
            os.truncate(big, 4096)
            out, err = proc.communicate(timeout=60)
        finally:
            proc.kill()

    assert proc.returncode == 1, f"exit {proc.returncode} (-7 is SIGBUS): {err}"
    assert out == ""
    assert err == (
        f"regops: error: cannot hash {root}: {big} changed while it was being hashed "
        "(its size, time or inode moved); hash again when whatever writes it has finished\n"
    )


# --- the cache ---------------------------------------------------------------------


def cache_files(root: Path) -> list[Path]:
    return sorted(root.glob("files-*.marshal"))


def test_the_cache_lives_where_the_environment_says(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert HashCache.from_environment().root == Path(os.environ["XDG_CACHE_HOME"]) / "regops"
    monkeypatch.setenv("REGOPS_CACHE_DIR", str(tmp_path / "c"))
    assert HashCache.from_environment().root == tmp_path / "c"
    monkeypatch.setenv("REGOPS_NO_CACHE", "1")
    assert HashCache.from_environment().root is None


def test_an_unchanged_tree_comes_from_the_cache(data: Path, tmp_path: Path) -> None:
    cache = HashCache(tmp_path / "cache")
    first = hash_path(data, cache=cache)
    [file] = cache_files(tmp_path / "cache")
    stored = file.read_bytes()
    assert hash_path(data, cache=cache) == first
    assert file.read_bytes() == stored  # nothing new to remember: not rewritten
    # Proof that no byte was read: the same size, mtime and inode with other content keeps the old answer.
    target = data / "a" / "b" / "x.txt"
    with target.open("r+b") as f:
        f.write(b"HELLO")
    os.utime(target, ns=(HOUR_AGO_NS, HOUR_AGO_NS))
    assert hash_path(data, cache=cache) == first
    assert hash_path(data, cache=no_cache()).hash == expected_hash({**FILES, "a/b/x.txt": b"HELLO"})


def test_a_touched_file_is_hashed_again(data: Path, tmp_path: Path) -> None:
    cache = HashCache(tmp_path / "cache")
    hash_path(data, cache=cache)
    target = data / "a" / "b" / "x.txt"
    target.write_bytes(b"HELLO")
    os.utime(target, ns=(HOUR_AGO_NS + 10**9, HOUR_AGO_NS + 10**9))
    assert hash_path(data, cache=cache).hash == expected_hash({**FILES, "a/b/x.txt": b"HELLO"})


def test_a_replaced_file_with_the_same_size_and_mtime_is_hashed_again(data: Path, tmp_path: Path) -> None:
    cache = HashCache(tmp_path / "cache")
    hash_path(data, cache=cache)
    target = data / "a" / "b" / "x.txt"
    fresh = target.with_name("x.new")
    fresh.write_bytes(b"HELLO")
    os.utime(fresh, ns=(HOUR_AGO_NS, HOUR_AGO_NS))
    fresh.replace(target)  # a new inode: how editors and `cp` over a file usually save
    assert hash_path(data, cache=cache).hash == expected_hash({**FILES, "a/b/x.txt": b"HELLO"})


def test_a_corrupt_cache_is_ignored_and_replaced(data: Path, tmp_path: Path) -> None:
    cache = HashCache(tmp_path / "cache")
    right = hash_path(data, cache=cache)
    [file] = cache_files(tmp_path / "cache")
    junks = (b"\x00garbage", marshal.dumps([1, 2, 3]), marshal.dumps({str(data / "Zebra"): (1, 2)}), b"")
    for junk in junks:
        file.write_bytes(junk)  # unsigned: never decoded
        assert hash_path(data, cache=cache) == right
        assert len(cache.read(data)) == len(FILES)
    signed = cache.folder()
    assert signed is not None
    for junk in junks[1:]:
        signed.write(file.name, junk)  # signed by this user, but not entries: each is dropped
        assert hash_path(data, cache=cache) == right
        assert len(cache.read(data)) == len(FILES)


def test_a_wrong_digest_in_the_cache_is_served_only_for_the_same_stat(data: Path, tmp_path: Path) -> None:
    cache = HashCache(tmp_path / "cache")
    hash_path(data, cache=cache)
    entries = cache.read(data)
    key = str(data / "Zebra")
    size, mtime, ino, _ = entries[key]
    entries[key] = (size, mtime + 1, ino, b"\x00" * 32)  # a stale entry: another mtime
    cache.write(data, entries)
    assert hash_path(data, cache=cache).hash == expected_hash(FILES)


def test_an_unwritable_cache_is_ignored(data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_bytes(b"")
    monkeypatch.setenv("REGOPS_CACHE_DIR", str(blocker / "cache"))
    assert hash_path(data).hash == expected_hash(FILES)
    assert blocker.read_bytes() == b""


def test_no_cache_writes_nothing(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGOPS_NO_CACHE", "1")
    assert hash_path(data).hash == expected_hash(FILES)
    assert not (Path(os.environ["XDG_CACHE_HOME"]) / "regops").exists()


def test_files_modified_just_now_are_not_cached(data: Path, tmp_path: Path) -> None:
    (data / "fresh").write_bytes(b"just written")  # mtime now: it could change again within the same tick
    cache = HashCache(tmp_path / "cache")
    hash_path(data, cache=cache)
    assert len(cache_files(tmp_path / "cache")) == 1
    assert sorted(cache.read(data)) == sorted(str(data / rel) for rel in FILES)


def test_files_that_went_away_leave_the_cache(data: Path, tmp_path: Path) -> None:
    cache = HashCache(tmp_path / "cache")
    hash_path(data, cache=cache)
    (data / "Zebra").unlink()
    hash_path(data, cache=cache)
    assert len(cache_files(tmp_path / "cache")) == 1
    assert str(data / "Zebra") not in cache.read(data)


def test_thousands_of_unchanged_files_are_not_read_again(tmp_path: Path) -> None:
    """The re-hash takes every unchanged file's digest from the cache (its speed: benchmarks/datasets.py)."""
    files = {f"part-{i // 100:02d}/{i:05d}.bin": i.to_bytes(4, "big") for i in range(3000)}
    root = make(tmp_path / "many", files)
    cache = HashCache(tmp_path / "cache")
    first = hash_path(root, cache=cache)
    assert (first.hash, first.files_read) == (expected_hash(files), 3000)
    (root / "part-07" / "00700.bin").write_bytes(b"changed")
    os.utime(root / "part-07" / "00700.bin", ns=(HOUR_AGO_NS, HOUR_AGO_NS))
    again = hash_path(root, cache=cache)
    assert again.files_read == 1
    assert again.hash == expected_hash(files | {"part-07/00700.bin": b"changed"})


# --- DVC ------------------------------------------------------------------------------

DVC3 = """\
outs:
- md5: 22a1a2931c8370d3aeedd7183606fd7f.dir
  size: 14445097
  nfiles: 7
  hash: md5
  path: data
"""
DVC2_FILE = """\
md5: 0f1e2d3c4b5a69788796a5b4c3d2e1f0
outs:
- md5: a304afb96060aad90176268345e10355
  size: 1234
  path: data.xml
"""
TWO_OUTS = """\
outs:
- md5: 11111111111111111111111111111111.dir
  hash: md5
  path: images
- md5: 02222222222222222222222222222222
  hash: md5
  path: labels.csv
"""
LOCK = """\
schema: '2.0'
stages:
  prepare:
    cmd: python src/prepare.py data/data.xml
    deps:
    - path: data/data.xml
      hash: md5
      md5: 33333333333333333333333333333333
      size: 14445097
    outs:
    - path: data/prepared
      hash: md5
      md5: 153aad06d376b6595932470e459ef42a.dir
      size: 8437363
      nfiles: 2
  train:
    cmd: python src/train.py
    outs:
    - path: model.pkl
      hash: md5
      md5: 44444444444444444444444444444444
      size: 6
"""
LOCK_V1 = """\
prepare:
  cmd: python prepare.py
  outs:
  - path: data/prepared
    md5: 55555555555555555555555555555555.dir
"""


def dvc_file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_dvc3_directory_entry(tmp_path: Path) -> None:
    entry = read_dvc(dvc_file(tmp_path, "data.dvc", DVC3))
    assert (entry.path, entry.hash, entry.size_bytes, entry.file_count, entry.directory, entry.stage) == (
        "data",
        "md5:22a1a2931c8370d3aeedd7183606fd7f",
        14445097,
        7,
        True,
        None,
    )


def test_a_dvc2_file_entry_without_a_hash_key(tmp_path: Path) -> None:
    entry = read_dvc(dvc_file(tmp_path, "data.xml.dvc", DVC2_FILE), path="data.xml")
    assert (entry.hash, entry.size_bytes, entry.file_count, entry.directory) == (
        "md5:a304afb96060aad90176268345e10355",
        1234,
        1,
        False,
    )


def test_several_outputs_need_a_path(tmp_path: Path) -> None:
    file = dvc_file(tmp_path, "both.dvc", TWO_OUTS)
    with pytest.raises(DvcFileError) as e:
        read_dvc(file)
    assert str(e.value) == f"{file}: has 2 outputs (images, labels.csv): say which one by its path"
    assert e.value.candidates == ("images", "labels.csv")
    assert read_dvc(file, path="./images/").hash == "md5:11111111111111111111111111111111"
    assert read_dvc(file, path="labels.csv").hash == "md5:02222222222222222222222222222222"  # unquoted: a number


def test_an_unknown_output_lists_the_known_ones(tmp_path: Path) -> None:
    file = dvc_file(tmp_path, "dvc.lock", LOCK)
    with pytest.raises(DvcFileError) as e:
        read_dvc(file, path="data/raw")
    assert str(e.value) == f"{file}: has no output 'data/raw'; its outputs: data/prepared, model.pkl"
    assert e.value.entry == "data/raw"


def test_dvc_lock_outputs_across_stages(tmp_path: Path) -> None:
    file = dvc_file(tmp_path, "dvc.lock", LOCK)
    prepared = read_dvc(file, path="data/prepared")
    assert (prepared.hash, prepared.size_bytes, prepared.file_count, prepared.stage) == (
        "md5:153aad06d376b6595932470e459ef42a",
        8437363,
        2,
        "prepare",
    )
    assert read_dvc(file, path="model.pkl").stage == "train"
    with pytest.raises(DvcFileError, match=r"has 2 outputs \(data/prepared, model.pkl\)"):
        read_dvc(file)


def test_a_dvc1_lock_file(tmp_path: Path) -> None:
    entry = read_dvc(dvc_file(tmp_path, "dvc.lock", LOCK_V1))
    assert (entry.path, entry.hash, entry.file_count) == ("data/prepared", "md5:55555555555555555555555555555555", None)


DVC_ERRORS = [
    ("not yaml", "outs: [\n", "not a DVC file: not valid YAML"),
    ("a list", "- a\n", "not a DVC file: the top level must be a mapping of fields, found a list"),
    ("no outs", "deps: []\n", "has neither outs (a .dvc file) nor stages (a dvc.lock file)"),
    ("empty outs", "outs: []\n", "lists no outputs (outs); run `dvc add` or `dvc repro` first"),
    ("outs not a list", "outs: data\n", "outs must be a list of entries with a path"),
    ("stage outs without path", "stages:\n  s:\n    cmd: x\n    outs: [{md5: x}]\n", "stage s: outs must be a list"),
    (
        "cloud output",
        "outs:\n- etag: '0x8D9'\n  path: s3://bucket/data\n",
        "output 's3://bucket/data' has no md5 (found None); regops reads DVC's md5 of local outputs: "
        "run `dvc commit` or `dvc add` to record it",
    ),
    ("bad md5", "outs:\n- md5: xyz.dir\n  path: d\n", "output 'd' has no md5 (found 'xyz.dir')"),
    ("another algorithm", "outs:\n- md5: 22a1a2931c8370d3aeedd7183606fd7f\n  hash: sha256\n  path: d\n", "output 'd' has no md5"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "text", "message"), DVC_ERRORS, ids=[c[0] for c in DVC_ERRORS])
def test_bad_dvc_files(tmp_path: Path, case: str, text: str, message: str) -> None:
    file = dvc_file(tmp_path, "data.dvc", text)
    with pytest.raises(DvcFileError) as e:
        read_dvc(file)
    assert str(e.value).startswith(f"{file}: {message}"), case
    assert e.value.path == file


def test_a_missing_dvc_file(tmp_path: Path) -> None:
    with pytest.raises(DvcFileError) as e:
        read_dvc(tmp_path / "nope.dvc")
    assert str(e.value) == f"{tmp_path / 'nope.dvc'}: cannot read: no such file or directory"


# --- identities ---------------------------------------------------------------------


def test_references_are_recorded_without_reading_data(tmp_path: Path) -> None:
    iceberg = identify(FromIceberg("warehouse.events", 8744736658442914487))
    assert (iceberg.hash, iceberg.source, iceberg.size_bytes, iceberg.file_count) == (
        "iceberg:8744736658442914487",
        {"kind": "iceberg", "table": "warehouse.events", "snapshot": 8744736658442914487},
        None,
        None,
    )
    delta = identify(FromDelta("s3://lake/events", 12))
    assert (delta.hash, delta.source) == ("delta:12", {"kind": "delta", "path": "s3://lake/events", "version": 12})
    dvc = identify(FromDvc(dvc_file(tmp_path, "data.dvc", DVC3)))
    assert (dvc.hash, dvc.size_bytes, dvc.file_count) == ("md5:22a1a2931c8370d3aeedd7183606fd7f", 14445097, 7)
    assert dvc.source == {"kind": "dvc", "file": (tmp_path / "data.dvc").as_posix(), "path": "data"}


# --- registering --------------------------------------------------------------------


def validate(tree: Tree, capsys: pytest.CaptureFixture[str]) -> str:
    code = main(["validate", "--registry", str(tree.root)])
    out = capsys.readouterr().out
    assert code == 0, out
    return out


def test_register_files_writes_a_valid_version(
    tree: Tree, data: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(data.parent)
    path = register_dataset(
        tree.root,
        "reviews",
        version="2026-01-02",
        source=FromFiles(Path("reviews")),
        by="training-bot[bot]",
        description='all reviews, "cleaned"',
        uri="s3://acme-data/reviews/2026-01-02/",
        now=NOW,
    )
    assert path == tree.path("datasets/reviews/2026-01-02.yaml")
    assert tree.read("datasets/reviews/2026-01-02.yaml") == (
        "# yaml-language-server: $schema=../../../schemas/dataset-version.schema.json\n"
        "name: reviews\n"
        'version: "2026-01-02"\n'
        f"hash: {expected_hash(FILES)}\n"
        "created_at: 2026-01-02T03:04:05Z\n"
        'created_by: "training-bot[bot]"\n'
        'description: "all reviews, \\"cleaned\\""\n'
        'uri: "s3://acme-data/reviews/2026-01-02/"\n'
        f"size_bytes: {sum(map(len, FILES.values()))}\n"
        f"file_count: {len(FILES)}\n"
        "source:\n"
        "  kind: files\n"
        "  path: reviews\n"
    )
    assert validate(tree, capsys) == "ok: no problems\n"
    assert Registry.load(tree.root).dataset("reviews@2026-01-02").hash == expected_hash(FILES)  # type: ignore[union-attr]


SOURCES: list[tuple[str, Callable[[Path], object], str]] = [
    ("iceberg", lambda _: FromIceberg("warehouse.events", 8744736658442914487), "hash: iceberg:8744736658442914487\n"),
    ("delta", lambda _: FromDelta("s3://lake/events", 12), "source:\n  kind: delta\n  path: s3://lake/events\n  version: 12\n"),
    ("dvc", lambda d: FromDvc(dvc_file(d, "data.dvc", DVC3)), "hash: md5:22a1a2931c8370d3aeedd7183606fd7f\n"),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "make_source", "expected"), SOURCES, ids=[s[0] for s in SOURCES])
def test_register_references(
    tree: Tree, capsys: pytest.CaptureFixture[str], kind: str, make_source: Callable[[Path], object], expected: str
) -> None:
    source = make_source(tree.base)
    assert isinstance(source, FromIceberg | FromDelta | FromDvc)
    path = register_dataset(tree.root, "events", version="v1", source=source, by="alice", now=NOW)
    assert expected in path.read_text(encoding="utf-8")
    assert f"  kind: {kind}\n" in path.read_text(encoding="utf-8")
    validate(tree, capsys)


@pytest.mark.parametrize("version", ["2026-01-02", "true", "1.10", "007", "1e3", "null"])
def test_versions_stay_strings(tree: Tree, capsys: pytest.CaptureFixture[str], version: str) -> None:
    path = register_dataset(tree.root, "events", version=version, source=FromDelta("lake", 1), by=None, now=NOW)
    assert f'version: "{version}"\n' in path.read_text(encoding="utf-8")
    validate(tree, capsys)


@pytest.mark.parametrize("text", ["yes", "No", "#hash", "a: b", "- item", "'quoted'", "multi\nline", "tab\tin", "ünï"])
def test_free_text_reads_back_exactly(tree: Tree, capsys: pytest.CaptureFixture[str], text: str) -> None:
    path = register_dataset(tree.root, "events", version="v1", source=FromDelta(text, 1), description=text, now=NOW)
    assert Registry.load(tree.root).dataset("events@v1").raw["description"] == text  # type: ignore[union-attr]
    assert path.exists()
    validate(tree, capsys)


def test_a_registry_folder_or_the_repository_above_it(tree: Tree) -> None:
    path = register_dataset(tree.base, "events", version="v1", source=FromDelta("lake", 1), now=NOW)
    assert path == tree.path("datasets/events/v1.yaml")


# --- refusals: nothing is written ------------------------------------------------------


def test_an_existing_version_is_refused(tree: Tree, data: Path) -> None:
    before = tree.snapshot()
    with pytest.raises(DatasetExistsError) as e:
        register_dataset(tree.root, "reviews", version="2025-09-08", source=FromFiles(data), now=NOW)
    assert str(e.value) == (
        "dataset version reviews@2025-09-08 exists: registry/datasets/reviews/2025-09-08.yaml "
        "(a registered version never changes; register the new data under a new --version)"
    )
    assert (e.value.name, e.value.version) == ("reviews", "2025-09-08")
    assert tree.snapshot() == before


BAD_NAMES = [
    ("Reviews", "v1", "name: 'Reviews' is not a dataset name: use lowercase letters, digits, '.', '_' and '-' (at most 64, starting and ending with a letter or digit)"),
    ("../escape", "v1", "name: '../escape' is not a dataset name"),
    ("reviews", "../../models/x", "version: '../../models/x' is not a dataset version: use letters, digits, '.', '_' and '-' (at most 64, starting and ending with a letter or digit), e.g. 2025-09-08 or v3"),
    ("reviews", "", "version: '' is not a dataset version"),
    ("reviews", "v1.", "version: 'v1.' is not a dataset version"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "version", "message"), BAD_NAMES)
def test_a_bad_name_or_version_is_refused(tree: Tree, data: Path, name: str, version: str, message: str) -> None:
    before = tree.snapshot()
    with pytest.raises(InvalidDatasetError) as e:
        register_dataset(tree.root, name, version=version, source=FromFiles(data), now=NOW)
    assert str(e.value).startswith(f"cannot register dataset {name}@{version}: {message}")
    assert str(e.value).endswith("; nothing was written")
    assert tree.snapshot() == before


def test_data_failing_the_schema_is_refused(tree: Tree) -> None:
    before = tree.snapshot()
    with pytest.raises(InvalidDatasetError) as e:
        register_dataset(tree.root, "events", version="v1", source=FromIceberg("t", -1), by="", now=NOW)
    assert str(e.value) == (
        "cannot register dataset events@v1: hash: expected blake3:<64 hex>, sha256:<64 hex>, md5:<32 hex>, "
        "iceberg:<snapshot id> or delta:<version>; created_by: string should have at least 1 character; "
        "source.iceberg.snapshot: input should be greater than or equal to 0; nothing was written"
    )
    assert [p.field for p in e.value.problems] == ["hash", "created_by", "source.iceberg.snapshot"]
    assert tree.snapshot() == before
    assert not tree.path("datasets/events").exists()


def test_unhashable_data_writes_nothing(tree: Tree, data: Path) -> None:
    (data / "link").symlink_to(data / "Zebra")
    before = tree.snapshot()
    with pytest.raises(SymlinkError):
        register_dataset(tree.root, "events", version="v1", source=FromFiles(data), now=NOW)
    assert tree.snapshot() == before
    assert not tree.path("datasets/events").exists()


def test_a_bad_dvc_reference_writes_nothing(tree: Tree, tmp_path_factory: pytest.TempPathFactory) -> None:
    file = dvc_file(tmp_path_factory.mktemp("dvc"), "both.dvc", TWO_OUTS)
    before = tree.snapshot()
    with pytest.raises(DvcFileError, match="say which one by its path"):
        register_dataset(tree.root, "events", version="v1", source=FromDvc(file), now=NOW)
    assert tree.snapshot() == before


def test_a_failed_write_leaves_the_registry_as_it_was(tree: Tree) -> None:
    tree.write("datasets/events", "a file where the folder should be\n")
    before = tree.snapshot()
    with pytest.raises(DatasetWriteError) as e:
        register_dataset(tree.root, "events", version="v1", source=FromDelta("lake", 1), now=NOW)
    assert str(e.value).startswith("cannot write registry/datasets/events/v1.yaml: ")
    assert str(e.value).endswith("; nothing was written (check the folder's permissions and free space)")
    assert tree.snapshot() == before


@contextlib.contextmanager
def file_size_limit(limit: int) -> Iterator[None]:
    """Writes past ``limit`` bytes fail with EFBIG, as on a full disk (a real failure, nothing patched)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


def test_a_failed_write_removes_the_folder_it_made(tree: Tree) -> None:
    before = tree.snapshot()
    folders = sorted(p for p in tree.base.rglob("*") if p.is_dir())
    with file_size_limit(16), pytest.raises(DatasetWriteError) as e:
        register_dataset(tree.root, "events", version="v1", source=FromDelta("lake", 1), now=NOW)
    assert str(e.value).startswith("cannot write registry/datasets/events/v1.yaml: file too large; nothing was")
    assert tree.snapshot() == before
    assert sorted(p for p in tree.base.rglob("*") if p.is_dir()) == folders


def test_not_a_registry(tmp_path: Path) -> None:
    with pytest.raises(RegistryNotFoundError):
        register_dataset(tmp_path, "events", version="v1", source=FromDelta("lake", 1), now=NOW)
    assert list(tmp_path.iterdir()) == []


def test_now_needs_a_time_zone(tree: Tree) -> None:
    before = tree.snapshot()
    with pytest.raises(ValueError, match="now must carry a time zone"):
        register_dataset(tree.root, "events", version="v1", source=FromDelta("lake", 1), now=datetime(2026, 1, 1))
    assert tree.snapshot() == before
