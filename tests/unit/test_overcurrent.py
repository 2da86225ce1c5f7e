from __future__ import annotations

import pytest

from firmware.connector.overcurrent import OvercurrentMonitor


@pytest.mark.parametrize(
    ("samples", "expected"),
    [
        # (time s, measured A, offered A) ... -> trips at the last sample?
        ([(0, 40, 32), (4.9, 40, 32)], False),
        ([(0, 40, 32), (5.0, 40, 32)], True),
        ([(0, 34, 32), (9, 34, 32)], False),  # within the margin
        ([(0, 40, 32), (3, 30, 32), (7, 40, 32)], False),  # it recovered in between
        ([(0, 5, 0), (5, 5, 0)], True),  # current although nothing is offered
        ([(0, 20, 16), (6, 20, 16)], True),
    ],
)
def test_trips_only_after_time_above_margin(
    samples: list[tuple[float, float, float]], expected: bool
) -> None:
    monitor = OvercurrentMonitor(margin_a=2.0, time_s=5.0)
    results = [monitor.update(t, measured, offered) for t, measured, offered in samples]
    assert results[-1] is expected
    assert not any(results[:-1])


def test_reset_starts_over() -> None:
    monitor = OvercurrentMonitor(margin_a=1.0, time_s=1.0)
    monitor.update(0, 10, 6)
    monitor.reset()
    assert monitor.update(0.5, 10, 6) is False
    assert monitor.update(1.5, 10, 6) is True
