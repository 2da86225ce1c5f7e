"""Local load balancing: the station maximum shared between sessions (table-driven)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from firmware.smart_charging.balance import Demand, allocate

T0 = datetime(2024, 3, 4, tzinfo=UTC)


def session(connector: int, minute: int, own: float | None = None, least: float = 6.0) -> Demand:
    return Demand(connector, own, T0 + timedelta(minutes=minute), least)


def idle(connector: int, own: float | None = None) -> Demand:
    return Demand(connector, own)


# station limit, demands -> limits
CASES: dict[str, tuple[float | None, list[Demand], dict[int, float | None]]] = {
    "no station maximum: each its own": (
        None,
        [session(1, 0, 16.0), session(2, 1), idle(3, 10.0)],
        {1: 16.0, 2: None, 3: 10.0},
    ),
    "one session takes all": (20.0, [session(1, 0), idle(2)], {1: 20.0, 2: 10.0}),
    "two sessions split equally": (20.0, [session(1, 0), session(2, 1)], {1: 10.0, 2: 10.0}),
    "own limit below the share": (
        20.0,
        [session(1, 0, own=8.0), session(2, 1)],
        {1: 8.0, 2: 10.0},
    ),
    "an idle connector gets the share it would start with": (
        30.0,
        [session(1, 0), session(2, 1), idle(3)],
        {1: 15.0, 2: 15.0, 3: 10.0},
    ),
    "too little for two: the latest session pauses": (
        10.0,
        [session(2, 0), session(1, 5)],
        {1: 0.0, 2: 10.0},
    ),
    "too little for three: the two latest pause": (
        11.0,
        [session(1, 2), session(2, 0), session(3, 1)],
        {1: 0.0, 2: 11.0, 3: 0.0},
    ),
    "12 A is enough for two": (12.0, [session(1, 0), session(2, 1)], {1: 6.0, 2: 6.0}),
    "a minimum charging rate above 6 A counts": (
        14.0,
        [session(1, 0), session(2, 1, least=8.0)],
        {1: 14.0, 2: 0.0},
    ),
    "below 6 A for a single session pauses it": (5.0, [session(1, 0)], {1: 0.0}),
    "zero": (0.0, [session(1, 0), idle(2)], {1: 0.0, 2: 0.0}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_allocate(case: str) -> None:
    station, demands, expected = CASES[case]
    assert allocate(station, demands) == expected
