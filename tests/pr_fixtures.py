"""Setups built once per test process and copied for every later test that asks for them.

A setup that takes a registry through registrations, pull requests and uploads to the local servers costs seconds;
the tests that start from it only read or change their own copy. :func:`templated` runs the setup in the first
test's ``tmp_path`` as before, keeps a copy of what it left there, and gives each later test its own copy of that
(the local Hub keeps its repositories on disk under ``tmp_path``, so they come along), with the first test's folder
written as the new one in every file that named it. What the setup did to a server that keeps its state in memory
(the local GitHub) is re-created by the caller from the copy, with the same helpers.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class _Template:
    folder: Path  # the copy of what the setup left in its tmp_path
    built_in: bytes  # that tmp_path, as the files that name it spell it
    naming: tuple[Path, ...]  # the files (relative) that name it
    value: Any  # what the setup returned


_TEMPLATES: dict[str, _Template] = {}


def templated(key: str, tmp_path: Path, build: Callable[[], T], *, again: Callable[[T], object] | None = None) -> T:
    """``build()``'s result, with ``tmp_path`` holding what it writes there: run the first time this process asks
    for ``key``, a copy of that first run after, then ``again(result)``: what ``build`` did to servers that keep
    their state in memory, re-done for this test's. ``build`` must return nothing that names ``tmp_path`` (return
    paths relative to it) and leave no server address in a file (a later test's servers listen elsewhere)."""
    template = _TEMPLATES.get(key)
    if template is None:
        value = build()
        _TEMPLATES[key] = _keep(key, tmp_path, value)
        return value
    shutil.copytree(template.folder, tmp_path, symlinks=True, dirs_exist_ok=True)
    for relative in template.naming:
        path = tmp_path / relative
        path.write_bytes(path.read_bytes().replace(template.built_in, bytes(tmp_path)))
    if again is not None:
        again(template.value)
    return template.value  # type: ignore[no-any-return]


def _keep(key: str, tmp_path: Path, value: object) -> _Template:
    if str(tmp_path) in repr(value):
        raise ValueError(f"the setup {key!r} returned {value!r}, which names its folder {tmp_path}")
    folder = tmp_path.parent / f"template-{key}"
    shutil.copytree(tmp_path, folder, symlinks=True)
    naming = []
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            if b"127.0.0.1:" in data:
                raise ValueError(f"{path} from the setup {key!r} names a server's address: it cannot be copied")
            if bytes(tmp_path) in data:
                naming.append(path.relative_to(folder))
    return _Template(folder, bytes(tmp_path), tuple(naming), value)
