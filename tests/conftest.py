"""Shared fixtures: an isolated HOME and cache, and a copy of the test registry to break."""

from __future__ import annotations

import hashlib
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).parent.parent


@pytest.fixture(autouse=True)
def isolate(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the real HOME, cache or git config."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.delenv("REGOPS_CACHE_DIR", raising=False)
    monkeypatch.delenv("REGOPS_NO_CACHE", raising=False)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests may talk to 127.0.0.1 only."""
    real = socket.socket.connect

    def connect(self: socket.socket, address: object) -> None:
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and host not in ("127.0.0.1", "::1", "localhost") and self.family != socket.AF_UNIX:
            raise OSError(f"network access in tests is blocked: {address!r}")
        return real(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", connect)


class Tree:
    """A registry copied into tmp_path, with helpers to break it and to prove nothing changed."""

    def __init__(self, root: Path) -> None:
        self.base = root
        self.root = root / "registry"

    def path(self, relative: str) -> Path:
        return self.root / relative

    def read(self, relative: str) -> str:
        return self.path(relative).read_text(encoding="utf-8")

    def write(self, relative: str, text: str | bytes) -> Path:
        path = self.path(relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return path

    def replace(self, relative: str, old: str, new: str) -> Path:
        text = self.read(relative)
        assert old in text, f"{old!r} not in {relative}"
        return self.write(relative, text.replace(old, new, 1))

    def snapshot(self) -> dict[str, bytes]:
        return {
            p.relative_to(self.base).as_posix(): p.read_bytes() for p in sorted(self.base.rglob("*")) if p.is_file()
        }


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[Tree]:
    """A copy of tests/data/registry; its weights are not in any store."""
    shutil.copytree(DATA / "registry", tmp_path / "registry")
    shutil.copytree(REPO / "schemas", tmp_path / "schemas")
    yield Tree(tmp_path)


def artifact_bytes(model: str, version: str, path: str, size: int) -> bytes:
    """The made-up content of each artifact in tests/data/registry (their sha256 is recorded there)."""
    seed = hashlib.sha256(f"{model}@{version}/{path}".encode()).digest()
    return (seed * (size // 32 + 1))[:size]


@pytest.fixture
def stored_tree(tree: Tree) -> Tree:
    """The test registry with every version's weights in its local store (.regops/store)."""
    from regops.api import open_storage
    from regops.registry import Registry
    from regops.storage import Artifact

    registry = Registry.load(tree.root)
    storage = open_storage(registry)
    for record in registry.iter_versions():
        source = tree.base / "artifacts" / record.model / record.version
        files = [Artifact.from_record(f) for f in record.raw["artifacts"]["files"]]
        for artifact in files:
            (source / artifact.path).parent.mkdir(parents=True, exist_ok=True)
            (source / artifact.path).write_bytes(
                artifact_bytes(record.model, record.version, artifact.path, artifact.size)
            )
        storage.put(source, files, model=record.model, version=record.version)
    return tree
