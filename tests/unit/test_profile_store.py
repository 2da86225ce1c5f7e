"""Installed charging profiles in the state database: round trip, and what no longer fits."""

from __future__ import annotations

from pathlib import Path

from firmware.smart_charging import ProfileLimits
from firmware.smart_charging.store import ProfileStore
from firmware.storage.db import Database
from tests.unit.charging_payloads import LIMITS, T0, install, payload


def test_profiles_round_trip_and_replace_by_id(tmp_path: Path) -> None:
    db = Database(tmp_path / "state.db")
    store = ProfileStore(db)
    first = install(0, payload(1, "ChargePointMaxProfile", start=T0, periods=((0, 20), (60, 10))))
    second = install(
        2, payload(2, "TxDefaultProfile", kind="Recurring", recurrency="Weekly", start=T0)
    )
    store.save([first, second])
    assert store.load(LIMITS) == [first, second]
    newer = install(1, payload(2, "TxDefaultProfile", kind="Relative", stack=3))
    store.save([newer], removed=[2])
    db.close()
    assert ProfileStore(Database(tmp_path / "state.db")).load(LIMITS) == [first, newer]


def test_a_profile_the_limits_no_longer_allow_is_dropped(tmp_path: Path) -> None:
    db = Database(tmp_path / "state.db")
    store = ProfileStore(db)
    high = install(1, payload(1, "TxDefaultProfile", kind="Relative", stack=9))
    low = install(1, payload(2, "TxDefaultProfile", kind="Relative", stack=2))
    store.save([high, low])
    stricter = ProfileLimits(max_stack_level=5, max_periods=LIMITS.max_periods)
    assert store.load(stricter) == [low]
    assert store.load(LIMITS) == [low]  # deleted, not just skipped
