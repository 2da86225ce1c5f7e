"""Nearest-rank percentiles used by `make bench`."""

from __future__ import annotations

import pytest

from tests.bench.stats import percentile

HUNDRED = [float(v) for v in range(100, 0, -1)]  # 1..100, unsorted
TWO_HUNDRED = [float(v) for v in range(1, 201)]


@pytest.mark.parametrize(
    ("values", "p", "expected"),
    [
        ([7.0], 0, 7.0),
        ([7.0], 50, 7.0),
        ([7.0], 100, 7.0),
        ([3.0, 1.0, 2.0], 50, 2.0),
        ([4.0, 1.0, 3.0, 2.0], 50, 2.0),
        (HUNDRED, 0, 1.0),
        (HUNDRED, 1, 1.0),
        (HUNDRED, 50, 50.0),
        (HUNDRED, 99, 99.0),
        (HUNDRED, 100, 100.0),
        (TWO_HUNDRED, 50, 100.0),
        (TWO_HUNDRED, 99, 198.0),
        (TWO_HUNDRED, 99.5, 199.0),
    ],
)
def test_percentile(values: list[float], p: float, expected: float) -> None:
    assert percentile(values, p) == expected


@pytest.mark.parametrize(("values", "p"), [([], 50), ([1.0], -1), ([1.0], 101)])
def test_percentile_rejects(values: list[float], p: float) -> None:
    with pytest.raises(ValueError):
        percentile(values, p)
