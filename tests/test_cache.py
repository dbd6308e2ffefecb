"""The caches trust only what this user's regops wrote: planted, copied, edited or cut entries are rebuilt.

Entries are planted the way someone with write access to the cache folder
would: from the documented format (``MAGIC``, an HMAC-SHA256 of the name and
the payload, the marshal payload), with no MAC, a wrong one, one under
another key, or copied from another user's cache. A positive control signs a
forged entry with the real key, to show that the format the attacks use is
the one regops reads. Outcomes are what the verbs print and exit with, and
what the cache folder holds afterwards.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import marshal
import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from blake3 import blake3

from regops import store
from regops.cli import main
from regops.datasets import HashCache
from regops.store import ParseCache
from tests.conftest import Tree

MAGIC = b"regops-cache-1\n\0"  # the documented entry format: MAGIC + HMAC-SHA256(key, MAGIC+name+NUL+payload) + payload
V = "models/sentiment/1.2.0.yaml"
SHA = "325beded310ae8dfaf7c59d4c0a3489ec750a0108b2a00e26e2076b679af5006"  # model.safetensors of 1.2.0
FORGED_SHA = "f" * 64
OLD_NS = 1_600_000_000 * 10**9  # far outside the hash cache's 2 s "racy" window
ATTACKS = ["unsigned (the format of earlier regops)", "magic without a MAC", "zero MAC", "another key", "copied"]


# --- planting entries as an attacker would ---------------------------------------------------------


def payload(raw: bytes) -> bytes:
    return raw[len(MAGIC) + 32 :] if raw.startswith(MAGIC) else raw


def entries(file: Path) -> dict[Any, Any]:
    """What an entry file holds, read without checking its MAC (as an attacker reads it)."""
    loaded = marshal.loads(payload(file.read_bytes()))
    assert isinstance(loaded, dict)
    return loaded


def sign(key: bytes, name: str, data: bytes) -> bytes:
    return MAGIC + hmac.new(key, MAGIC + name.encode() + b"\0" + data, hashlib.sha256).digest() + data


def trusted(cache_dir: Path, file: Path, forged: dict[Any, Any]) -> None:
    """Write ``forged`` as this user's regops would: signed with the folder's key (unsigned before there was one)."""
    key = cache_dir / "key"
    data = marshal.dumps(forged)
    file.write_bytes(sign(key.read_bytes(), file.name, data) if key.exists() else data)


def plant(file: Path, forged: dict[Any, Any], attack: str, tmp_path: Path) -> None:
    data = marshal.dumps(forged)
    if attack.startswith("unsigned"):
        file.write_bytes(data)
    elif attack == "magic without a MAC":
        file.write_bytes(MAGIC + data)
    elif attack == "zero MAC":
        file.write_bytes(MAGIC + bytes(32) + data)
    elif attack == "another key":
        file.write_bytes(sign(os.urandom(32), file.name, data))
    else:  # another user's regops wrote it, with that user's key; copied here
        other = ParseCache(tmp_path / "other-user").folder()
        assert other is not None
        other.write(file.name, data)
        shutil.copyfile(tmp_path / "other-user" / file.name, file)


def entry_file(cache_dir: Path, match: Callable[[Any], bool]) -> tuple[Path, dict[Any, Any]]:
    """The entry file holding a value that ``match`` picks, and its entries."""
    for file in sorted(cache_dir.glob("*.marshal")):
        found = entries(file)
        if any(match(value) for value in found.values()):
            return file, found
    raise AssertionError(f"no entry in {cache_dir} matches")


def is_sentiment_120(value: Any) -> bool:
    return isinstance(value, dict) and value.get("model") == "sentiment" and value.get("version") == "1.2.0"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def shown_sha(capsys: pytest.CaptureFixture[str], tree: Tree) -> str:
    code, out, err = run(capsys, "show", "sentiment@1.2.0", "--registry", str(tree.root), "--json")
    assert code == 0, err
    [weights] = [f for f in json.loads(out)["artifacts"]["files"] if f["path"] == "model.safetensors"]
    return str(weights["sha256"])


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("REGOPS_CACHE_DIR", str(folder))
    return folder


# --- the parse cache: validate and show ------------------------------------------------------------


@pytest.mark.parametrize("attack", ATTACKS)
def test_a_planted_parse_entry_never_hides_a_schema_problem(
    tree: Tree, cache_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], attack: str
) -> None:
    assert run(capsys, "validate", "--registry", str(tree.root))[0] == 0  # fills the cache
    file, found = entry_file(cache_dir, is_sentiment_120)
    valid = next(value for value in found.values() if is_sentiment_120(value))
    broken = tree.replace(V, f"sha256: {SHA}", "sha256: not-a-hash")
    # The broken file's bytes, mapped to the valid file's data: what a cache that trusted it would serve.
    plant(file, {**found, store._digest(broken.read_bytes(), "version"): valid}, attack, tmp_path)

    code, out, err = run(capsys, "validate", "--registry", str(tree.root))

    assert code == 1, out + err
    assert "registry/models/sentiment/1.2.0.yaml:" in out
    assert "sha256" in out


@pytest.mark.parametrize("attack", ATTACKS)
def test_show_prints_the_sha256_of_the_file_not_of_a_planted_entry(
    tree: Tree, cache_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], attack: str
) -> None:
    assert shown_sha(capsys, tree) == SHA  # fills the cache
    file, found = entry_file(cache_dir, is_sentiment_120)
    forged = {digest: _forge_sha(value) if is_sentiment_120(value) else value for digest, value in found.items()}
    plant(file, forged, attack, tmp_path)

    assert shown_sha(capsys, tree) == SHA
    assert tree.read(V).count(SHA) == 1


def test_the_attacks_use_the_format_regops_reads(
    tree: Tree, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Positive control: the same forgery signed with this user's key is served (so the attacks above are real)."""
    shown_sha(capsys, tree)
    file, found = entry_file(cache_dir, is_sentiment_120)
    forged = {digest: _forge_sha(value) if is_sentiment_120(value) else value for digest, value in found.items()}
    trusted(cache_dir, file, forged)

    assert shown_sha(capsys, tree) == FORGED_SHA


def _forge_sha(value: dict[str, Any]) -> dict[str, Any]:
    files = [
        {**f, "sha256": FORGED_SHA} if f["path"] == "model.safetensors" else f for f in value["artifacts"]["files"]
    ]
    return {**value, "artifacts": {**value["artifacts"], "files": files}}


# --- the dataset-hash cache ------------------------------------------------------------------------


@pytest.fixture
def dataset(tmp_path: Path) -> tuple[Path, str]:
    """A folder of two files, old enough to be cached, and its true hash (computed here, from the bytes)."""
    root = tmp_path / "reviews"
    root.mkdir()
    files = {"a.txt": b"hello", "big.bin": bytes(range(256)) * 200}
    for name, data in files.items():
        (root / name).write_bytes(data)
        os.utime(root / name, ns=(OLD_NS, OLD_NS))
    lines = sorted(f"{name}\t{len(data)}\t{blake3(data).hexdigest()}\n" for name, data in files.items())
    return root, "blake3:" + blake3("".join(lines).encode()).hexdigest()


def dataset_hash(capsys: pytest.CaptureFixture[str], root: Path) -> str:
    code, out, err = run(capsys, "dataset", "hash", str(root), "--json")
    assert code == 0, err
    return str(json.loads(out)["hash"])


def forged_hash_entries(capsys: pytest.CaptureFixture[str], root: Path, cache_dir: Path) -> tuple[Path, dict[Any, Any]]:
    """Hash ``root`` (filling the cache); its entry file, and its entries with big.bin's digest forged."""
    dataset_hash(capsys, root)
    [file] = cache_dir.glob("files-*.marshal")
    found = entries(file)
    key = str(root / "big.bin")
    return file, {**found, key: (*found[key][:3], blake3(b"other bytes").digest())}


@pytest.mark.parametrize("attack", ATTACKS)
def test_dataset_hash_reports_the_bytes_not_a_planted_digest(
    dataset: tuple[Path, str], cache_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], attack: str
) -> None:
    root, truth = dataset
    file, forged = forged_hash_entries(capsys, root, cache_dir)
    plant(file, forged, attack, tmp_path)

    assert dataset_hash(capsys, root) == truth


def test_dataset_hash_cache_attacks_use_the_format_regops_reads(
    dataset: tuple[Path, str], cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, truth = dataset
    file, forged = forged_hash_entries(capsys, root, cache_dir)
    trusted(cache_dir, file, forged)

    assert dataset_hash(capsys, root) != truth


# --- the folder: created private, refused when it is not ---------------------------------------------


def test_the_cache_folder_and_key_are_created_private(
    dataset: tuple[Path, str], cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dataset_hash(capsys, dataset[0])

    assert stat.S_IMODE(cache_dir.stat().st_mode) == 0o700
    key = cache_dir / "key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.stat().st_size == 32
    assert {stat.S_IMODE(f.stat().st_mode) for f in cache_dir.iterdir()} == {0o600}


def test_a_folder_an_older_regops_made_readable_is_narrowed_and_used(
    dataset: tuple[Path, str], cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache_dir.mkdir(mode=0o755)
    cache_dir.chmod(0o755)
    dataset_hash(capsys, dataset[0])

    assert stat.S_IMODE(cache_dir.stat().st_mode) == 0o700
    assert len(list(cache_dir.glob("files-*.marshal"))) == 1


def _refuse_folder(cache_dir: Path, how: str) -> None:
    if how == "foreign owner":
        if os.geteuid() != 0:
            pytest.skip("giving a folder to another user needs root")
        for path in (cache_dir, *cache_dir.iterdir()):
            os.chown(path, 65534, 65534)  # nobody
    else:
        cache_dir.chmod(int(how.rsplit(maxsplit=1)[-1], 8))


REFUSED = ["group-writable 0770", "world-writable 0703", "world-writable 1777", "foreign owner"]


@pytest.mark.parametrize("how", REFUSED)
def test_a_cache_folder_others_control_is_not_used(
    dataset: tuple[Path, str], cache_dir: Path, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    root, truth = dataset
    file, forged = forged_hash_entries(capsys, root, cache_dir)
    # Signed with the folder's own key: were the folder still used, this entry would be served.
    trusted(cache_dir, file, forged)
    _refuse_folder(cache_dir, how)
    before = {p.name: (p.read_bytes(), p.stat().st_mode, p.stat().st_uid) for p in cache_dir.iterdir()}
    folder_before = cache_dir.stat()

    assert dataset_hash(capsys, root) == truth
    assert dataset_hash(capsys, root) == truth

    after = {p.name: (p.read_bytes(), p.stat().st_mode, p.stat().st_uid) for p in cache_dir.iterdir()}
    assert after == before, "nothing is written into a folder others control"
    assert (cache_dir.stat().st_mode, cache_dir.stat().st_uid) == (folder_before.st_mode, folder_before.st_uid)


@pytest.mark.parametrize("how", REFUSED)
def test_validate_does_not_use_a_parse_cache_others_control(
    tree: Tree, cache_dir: Path, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    assert run(capsys, "validate", "--registry", str(tree.root))[0] == 0
    file, found = entry_file(cache_dir, is_sentiment_120)
    valid = next(value for value in found.values() if is_sentiment_120(value))
    broken = tree.replace(V, f"sha256: {SHA}", "sha256: not-a-hash")
    found[store._digest(broken.read_bytes(), "version")] = valid
    trusted(cache_dir, file, found)
    _refuse_folder(cache_dir, how)
    before = sorted(p.name for p in cache_dir.iterdir())

    code, out, _ = run(capsys, "validate", "--registry", str(tree.root))

    assert code == 1
    assert "registry/models/sentiment/1.2.0.yaml:" in out
    assert sorted(p.name for p in cache_dir.iterdir()) == before


def test_a_cache_folder_that_is_a_file_costs_only_time(
    dataset: tuple[Path, str], cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache_dir.write_bytes(b"not a folder")

    assert dataset_hash(capsys, dataset[0]) == dataset[1]
    assert cache_dir.read_bytes() == b"not a folder"


# --- the key ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "damage",
    ["missing", "empty", "too short", "too long", "readable by others", "a folder", "a link to a known key"],
)
def test_a_bad_key_is_replaced_and_what_it_signed_is_rebuilt(
    dataset: tuple[Path, str], cache_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    root, truth = dataset
    file, forged = forged_hash_entries(capsys, root, cache_dir)
    key = cache_dir / "key"
    known = os.urandom(32)  # a key the attacker knows, and the forged entry signed with it
    file.write_bytes(sign(known, file.name, marshal.dumps(forged)))
    outside = tmp_path / "attacker-key"
    outside.write_bytes(known)
    key.unlink()
    if damage == "a folder":
        key.mkdir()
    elif damage == "a link to a known key":
        key.symlink_to(outside)
    elif damage == "readable by others":
        key.write_bytes(known)
        key.chmod(0o644)
    elif damage != "missing":
        key.write_bytes({"empty": b"", "too short": known[:31], "too long": known + b"x"}[damage])

    assert dataset_hash(capsys, root) == truth
    assert outside.read_bytes() == known, "a link is never followed"
    if damage != "a folder":  # a folder in the way leaves the cache unusable: nothing is signed
        assert not key.is_symlink()
        assert key.read_bytes() not in (known, b"")
        assert len(key.read_bytes()) == 32
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert len(HashCache(cache_dir).read(root)) == 2, "the entry is rebuilt under the new key"


# --- damaged entries ------------------------------------------------------------------------------


@pytest.mark.parametrize("cut", [0, 10, len(MAGIC) + 31, -1])
def test_a_truncated_entry_is_ignored_and_rebuilt(
    dataset: tuple[Path, str], tree: Tree, cache_dir: Path, capsys: pytest.CaptureFixture[str], cut: int
) -> None:
    root, truth = dataset
    dataset_hash(capsys, root)
    assert shown_sha(capsys, tree) == SHA
    files = sorted(cache_dir.glob("*.marshal"))
    for file in files:
        raw = file.read_bytes()
        file.write_bytes(raw[:cut])

    assert dataset_hash(capsys, root) == truth
    assert shown_sha(capsys, tree) == SHA
    assert len(HashCache(cache_dir).read(root)) == 2
    parse = ParseCache(cache_dir)
    assert any(
        is_sentiment_120(value) for folder in tree.root.glob("models/*") for value in parse.read(folder).values()
    ), "the parse cache is rebuilt"


def test_one_flipped_bit_anywhere_voids_an_entry(tmp_path: Path) -> None:
    cache = ParseCache(tmp_path / "cache")
    folder = cache.folder()
    assert folder is not None
    folder.write("entry", b"plain data")
    raw = (tmp_path / "cache" / "entry").read_bytes()
    assert folder.read("entry") == b"plain data"
    for i in range(len(raw)):
        (tmp_path / "cache" / "entry").write_bytes(raw[:i] + bytes([raw[i] ^ 1]) + raw[i + 1 :])
        assert folder.read("entry") is None, f"byte {i} flipped"


def test_an_entry_is_bound_to_its_name(tmp_path: Path) -> None:
    """A valid entry moved to another key's name (another folder's cache file) does not verify there."""
    cache = ParseCache(tmp_path / "cache")
    folder = cache.folder()
    assert folder is not None
    cache.write(tmp_path / "a", {b"k": {"bots": ["a"]}})
    cache.write(tmp_path / "b", {b"k": {"bots": ["b"]}})
    shutil.copyfile(tmp_path / "cache" / cache.name(tmp_path / "a"), tmp_path / "cache" / cache.name(tmp_path / "b"))

    assert cache.read(tmp_path / "b") == {}
    assert cache.read(tmp_path / "a") == {b"k": {"bots": ["a"]}}


def test_a_link_planted_as_an_entry_is_not_followed(tmp_path: Path) -> None:
    cache = HashCache(tmp_path / "cache")
    target = tmp_path / "elsewhere"
    target.write_bytes(b"precious")
    cache.write(tmp_path / "data", {})
    entry = tmp_path / "cache" / cache.name(tmp_path / "data")
    entry.unlink()
    entry.symlink_to(target)

    assert cache.read(tmp_path / "data") == {}
    cache.write(tmp_path / "data", {"x": (1, 2, 3, bytes(32))})

    assert target.read_bytes() == b"precious"
    assert not entry.is_symlink()
    assert cache.read(tmp_path / "data") == {"x": (1, 2, 3, bytes(32))}
