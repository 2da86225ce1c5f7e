from __future__ import annotations

from firmware.ocpp.connection import Backoff, basic_auth, station_url


def test_backoff_grows_and_is_capped_with_jitter() -> None:
    backoff = Backoff(1.0, 30.0, rng=lambda lo, hi: hi)
    assert [backoff.next_delay() for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    backoff.reset()
    assert backoff.next_delay() == 1
    low = Backoff(1.0, 30.0, rng=lambda lo, hi: lo)
    assert [low.next_delay() for _ in range(3)] == [0.5, 1, 2]


def test_url_and_basic_auth() -> None:
    assert station_url("ws://h:9000/ocpp/", "CP 1") == "ws://h:9000/ocpp/CP%201"
    assert basic_auth("CP-1", "secret") == "Basic Q1AtMTpzZWNyZXQ="
