"""Order of the whole suite: the longest tests first.

pytest-xdist hands tests to its workers in collection order, so a long test
collected last keeps one worker busy after the others are done. The deployment
tests (virtual environments built with pip), the crash test and the bench
runner's runs go first; the rest keeps its order, where the end-to-end tests
(mostly waiting on the daemon) and the unit tests (mostly computing) overlap.
"""

from __future__ import annotations

import pytest

LONG_FIRST = (
    "tests/deploy/",
    "tests/integration/test_crash.py",
    "tests/integration/test_hil_runner.py",
    "tests/integration/test_web_page.py",
)


def _rank(item: pytest.Item) -> int:
    return 0 if item.nodeid.startswith(LONG_FIRST) else 1


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=_rank)  # stable: the order within each rank is kept
