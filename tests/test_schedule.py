"""The suite's own scheduling (tests/conftest.py): every long test it names to start first is a test that exists."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

from tests.conftest import LONG_TESTS, REPO, TOGETHER, _slice_sizes, pytest_collection_modifyitems


@pytest.mark.parametrize("entry", LONG_TESTS)
def test_each_long_test_named_for_scheduling_is_defined(entry: str) -> None:
    """A renamed or removed test would leave its entry matching nothing, and its slot to a short one."""
    path, _, name = entry.partition("::")
    source = (REPO / path).read_text(encoding="utf-8")
    assert re.search(rf"^def {re.escape(name)}\w*\(", source, re.MULTILINE), f"{entry} names no test in {path}"


def test_no_long_test_is_named_twice() -> None:
    assert len(set(LONG_TESTS)) == len(LONG_TESTS)


def test_the_tests_kept_together_name_a_test_file() -> None:
    assert (REPO / TOGETHER.removesuffix("::")).is_file(), f"{TOGETHER} names no test file"


def test_the_tests_kept_together_are_in_one_worker_s_slice_early_and_none_is_lost() -> None:
    """Each worker that draws a browser test launches its own Chromium: all of them go to one worker's slice, before
    its short tests (worksteal takes a slice's tail), and every test is still scheduled once."""
    ids = [f"tests/test_a.py::test_{n}" for n in range(300)] + [f"{TOGETHER}test_{n}" for n in range(13)]
    ids += [*LONG_TESTS, *(f"tests/test_z.py::test_{n}" for n in range(300))]
    items = [SimpleNamespace(nodeid=nodeid) for nodeid in ids]
    pytest_collection_modifyitems(SimpleNamespace(workerinput={"workercount": 4}), items)  # type: ignore[arg-type]

    assert sorted(item.nodeid for item in items) == sorted(ids)
    slices, start = [], 0
    for size in _slice_sizes(len(items), 4):
        slices.append([item.nodeid for item in items[start : start + size]])
        start += size
    holding = [n for n, mine in enumerate(slices) if any(nodeid.startswith(TOGETHER) for nodeid in mine)]
    assert len(holding) == 1, f"browser tests in the slices of workers {holding}"
    mine = slices[holding[0]]
    assert max(n for n, nodeid in enumerate(mine) if nodeid.startswith(TOGETHER)) < len(mine) // 4
