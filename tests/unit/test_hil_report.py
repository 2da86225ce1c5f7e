"""The bench runner's reports: the terminal table and the JUnit XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

from hil.report import format_table, junit_xml, summary, write_junit
from hil.results import Outcome, ScenarioResult

RESULTS = [
    ScenarioResult("boot", Outcome.PASS, 0.5, "booted", "BootNotification"),
    ScenarioResult("tap_first", Outcome.FAIL, 20.25, "connector 1 never reported Charging\nmore"),
    ScenarioResult("fault_rcd_trip", Outcome.ERROR, 1.0, "PlantError: HTTP 500"),
    ScenarioResult("power_cut", Outcome.NOT_APPLICABLE, 0.0, "the runner does not own it"),
]


def test_table_has_a_row_per_scenario_and_a_summary() -> None:
    lines = format_table(RESULTS).splitlines()
    assert lines[0].split() == ["scenario", "result", "seconds", "detail"]
    rows = {line.split()[0]: line.split()[1:3] for line in lines[2:-1]}
    assert rows == {
        "boot": ["PASS", "0.50"],
        "tap_first": ["FAIL", "20.25"],
        "fault_rcd_trip": ["ERROR", "1.00"],
        "power_cut": ["N/A", "0.00"],
    }
    assert "never reported Charging more" in lines[3]  # one line per scenario
    assert lines[-1] == summary(RESULTS)
    assert lines[-1] == "4 scenarios: 1 passed, 1 failed, 1 errors, 1 not applicable"


def test_table_shortens_long_details() -> None:
    long = ScenarioResult("x", Outcome.FAIL, 1.0, "y" * 300)
    row = format_table([long], width=40).splitlines()[2]
    assert row.endswith("y" * 39 + "…")


def test_junit_suite_counts_and_cases() -> None:
    tree = junit_xml(
        RESULTS,
        properties={"station": "emulated"},
        outputs={"tap_first": "frames of tap_first", "boot": "frames of boot"},
        timestamp=datetime(2026, 11, 22, 8, 0, 1, 123, tzinfo=UTC),
    )
    root = tree.getroot()
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    for element in (root, suite):
        assert element.get("tests") == "4"
        assert element.get("failures") == "1"
        assert element.get("errors") == "1"
        assert element.get("skipped") == "1"
        assert element.get("time") == "21.750"
    assert suite.get("timestamp") == "2026-11-22T08:00:01"
    assert suite.get("hostname")
    props = suite.find("properties")
    assert props is not None
    assert [(p.get("name"), p.get("value")) for p in props] == [("station", "emulated")]
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert list(cases) == ["boot", "tap_first", "fault_rcd_trip", "power_cut"]
    assert all(c.get("classname") == "hil" for c in cases.values())
    assert cases["boot"].get("time") == "0.500"
    assert list(cases["boot"]) == []  # passed: no child, not even its frames
    failure = cases["tap_first"].find("failure")
    assert failure is not None
    assert failure.get("message") == "connector 1 never reported Charging more"
    assert failure.text == "connector 1 never reported Charging\nmore"
    out = cases["tap_first"].find("system-out")
    assert out is not None and out.text == "frames of tap_first"
    error = cases["fault_rcd_trip"].find("error")
    assert error is not None and error.get("message") == "PlantError: HTTP 500"
    skipped = cases["power_cut"].find("skipped")
    assert skipped is not None and skipped.get("message") == "N/A: the runner does not own it"
    assert cases["power_cut"].find("failure") is None


def test_junit_file_parses_even_with_control_characters(tmp_path: Path) -> None:
    weird = ScenarioResult("odd", Outcome.FAIL, 1.0, "bad \x1b[31m frame \x00 end")
    path = tmp_path / "reports" / "hil.xml"
    write_junit(path, [weird], outputs={"odd": "RAW \x07garbage"})
    assert path.read_bytes().startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    suite = ET.parse(path).getroot().find("testsuite")
    assert suite is not None
    case = suite.find("testcase")
    assert case is not None
    failure = case.find("failure")
    assert failure is not None and failure.text == "bad \\x1b[31m frame \\x00 end"
    out = case.find("system-out")
    assert out is not None and out.text == "RAW \\x07garbage"


def test_empty_run() -> None:
    suite = junit_xml([]).getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "0" and suite.findall("testcase") == []
    assert (
        format_table([]).splitlines()[-1]
        == "0 scenarios: 0 passed, 0 failed, 0 errors, 0 not applicable"
    )
