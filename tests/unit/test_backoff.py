from __future__ import annotations

import random

from firmware.ocpp.connection import Backoff, basic_auth, station_url


def test_backoff_grows_and_is_capped_with_jitter() -> None:
    backoff = Backoff(1.0, 30.0, rng=lambda lo, hi: hi)
    assert [backoff.next_delay() for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    backoff.reset()
    assert backoff.next_delay() == 1
    low = Backoff(1.0, 30.0, rng=lambda lo, hi: lo)
    assert [low.next_delay() for _ in range(3)] == [0.5, 1, 2]


def test_first_delay_after_a_stable_link_is_spread_then_backoff_starts_over() -> None:
    drawn: list[tuple[float, float]] = []

    def rng(lo: float, hi: float) -> float:
        drawn.append((lo, hi))
        return hi

    backoff = Backoff(1.0, 30.0, rng, spread_s=10.0)
    # Before any stable link (start-up failures): plain backoff.
    assert [backoff.next_delay() for _ in range(3)] == [1, 2, 4]
    backoff.reset()
    # The loss of a stable link: drawn from [0, spread] ...
    assert backoff.next_delay() == 10.0 and drawn[-1] == (0.0, 10.0)
    # ... and if that reconnect fails, the capped exponential backoff from its start.
    assert [backoff.next_delay() for _ in range(6)] == [1, 2, 4, 8, 16, 30]
    assert drawn[-1] == (15.0, 30.0)


def test_without_a_stable_link_the_backoff_keeps_growing() -> None:
    backoff = Backoff(1.0, 8.0, lambda lo, hi: hi, spread_s=10.0)
    # Connections that drop before they proved stable never call reset().
    assert [backoff.next_delay() for _ in range(6)] == [1, 2, 4, 8, 8, 8]


def test_spread_zero_means_plain_backoff_after_reset() -> None:
    backoff = Backoff(1.0, 8.0, lambda lo, hi: hi, spread_s=0.0)
    backoff.next_delay()
    backoff.reset()
    assert backoff.next_delay() == 1.0


def test_a_thousand_stations_spread_over_the_window() -> None:
    rng = random.Random(7)
    delays = []
    for _ in range(1000):
        backoff = Backoff(1.0, 30.0, rng.uniform, spread_s=10.0)
        backoff.reset()
        delays.append(backoff.next_delay())
    assert all(0.0 <= d <= 10.0 for d in delays)
    per_second = [sum(1 for d in delays if s <= d < s + 1) for s in range(10)]
    assert max(per_second) < 150  # about 100 a second, not 1,000 at once


def test_url_and_basic_auth() -> None:
    assert station_url("ws://h:9000/ocpp/", "CP 1") == "ws://h:9000/ocpp/CP%201"
    assert basic_auth("CP-1", "secret") == "Basic Q1AtMTpzZWNyZXQ="
