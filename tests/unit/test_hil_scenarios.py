"""The bench runner's scenario set and its selection (``--only``)."""

from __future__ import annotations

import pytest

from hil.scenario import all_scenarios, select

EXPECTED = [
    "boot",
    "tap_plug_first",
    "tap_first",
    "remote_start_stop",
    "offline_replay",
    "power_cut",
    "fault_rcd_trip",
    "fault_contactor_welded",
    "fault_contactor_failed_to_close",
    "fault_overcurrent",
    "fault_lock_failure",
    "fault_meter_offline",
    "fault_reader_offline",
    "fault_diode_fault",
    "fault_ev_communication_lost",
    "fault_over_temperature",
    "fault_pilot_error",
    "fault_tamper",
    "fault_emergency_stop",
]


def test_the_scenario_set_in_running_order() -> None:
    scenarios = all_scenarios()
    assert [s.name for s in scenarios] == EXPECTED
    assert all(s.description and not s.description.endswith(",") for s in scenarios)
    assert all_scenarios() == scenarios  # importing again registers nothing twice


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (None, EXPECTED),
        ([], EXPECTED),
        (["power_cut", "boot"], ["boot", "power_cut"]),  # always in the standard order
        (["fault_rcd_trip"], ["fault_rcd_trip"]),
        (["boot", "boot"], ["boot"]),
    ],
)
def test_select(names: list[str] | None, expected: list[str]) -> None:
    assert [s.name for s in select(names)] == expected


def test_select_names_unknown_scenarios() -> None:
    with pytest.raises(ValueError, match=r"unknown scenario\(s\): bot, fault_x; known: boot"):
        select(["bot", "boot", "fault_x"])
