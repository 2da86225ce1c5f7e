"""The tap-to-energize instrument: read instants per idTag turned into figures."""

from __future__ import annotations

import pytest

from firmware.metrics import MAX_PENDING, TapLatency


def test_read_then_close_gives_one_figure_in_ms() -> None:
    taps = TapLatency()
    taps.token_read("04A1", 10.0)
    assert taps.energized("04A1", 10.0125) == pytest.approx(12.5)
    assert taps.snapshot() == {"count": 1, "tap_to_energize_ms": [12.5]}
    # The read was used up: a second close for the same tag is no tap.
    assert taps.energized("04A1", 11.0) is None
    assert taps.count == 1


@pytest.mark.parametrize(
    ("steps", "figures"),
    [
        # a close without a tap (remote start)
        ([("close", "AA", 5.0)], []),
        # a close for another tag's session
        ([("read", "AA", 1.0), ("close", "BB", 2.0)], []),
        # a tap that stopped a session or was refused is forgotten
        ([("read", "AA", 1.0), ("forget", "AA", 0.0), ("close", "AA", 2.0)], []),
        # a second read of the same tag counts from the latest read
        ([("read", "AA", 1.0), ("read", "AA", 1.5), ("close", "AA", 1.502)], [2.0]),
        # two tags pending on two connectors
        (
            [("read", "AA", 1.0), ("read", "BB", 1.1), ("close", "BB", 1.2), ("close", "AA", 1.3)],
            [100.0, 300.0],
        ),
    ],
)
def test_sequences(steps: list[tuple[str, str, float]], figures: list[float]) -> None:
    taps = TapLatency()
    for kind, tag, at in steps:
        if kind == "read":
            taps.token_read(tag, at)
        elif kind == "forget":
            taps.forget(tag)
        else:
            taps.energized(tag, at)
    assert taps.snapshot()["tap_to_energize_ms"] == pytest.approx(figures)


def test_bounded() -> None:
    taps = TapLatency(keep=3)
    for i in range(5):
        taps.token_read("AA", float(i))
        taps.energized("AA", i + 0.001 * (i + 1))
    assert taps.count == 5
    assert taps.snapshot()["tap_to_energize_ms"] == pytest.approx([3.0, 4.0, 5.0])
    for i in range(MAX_PENDING + 1):
        taps.token_read(f"T{i}", 0.0)
    assert taps.energized("T0", 1.0) is None  # the oldest pending read was dropped
    assert taps.energized(f"T{MAX_PENDING}", 1.0) == pytest.approx(1000.0)
