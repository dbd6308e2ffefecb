"""The suite's own scheduling (tests/conftest.py): every long test it names to start first is a test that exists."""

from __future__ import annotations

import re

import pytest

from tests.conftest import LONG_TESTS, REPO


@pytest.mark.parametrize("entry", LONG_TESTS)
def test_each_long_test_named_for_scheduling_is_defined(entry: str) -> None:
    """A renamed or removed test would leave its entry matching nothing, and its slot to a short one."""
    path, _, name = entry.partition("::")
    source = (REPO / path).read_text(encoding="utf-8")
    assert re.search(rf"^def {re.escape(name)}\w*\(", source, re.MULTILINE), f"{entry} names no test in {path}"


def test_no_long_test_is_named_twice() -> None:
    assert len(set(LONG_TESTS)) == len(LONG_TESTS)
