"""The bench run's results as a table for the terminal and as a JUnit XML report.

The XML follows the usual JUnit schema (as Jenkins, GitLab and pytest write it):
``<testsuites><testsuite name tests failures errors skipped time timestamp hostname>`` with
``<properties>``, then one ``<testcase classname name time>`` per scenario holding a
``<failure message type>`` (the station misbehaved), an ``<error message type>`` (the bench
could not run it) or a ``<skipped message>`` for N/A, plus ``<system-out>`` with the OCPP
frames of the scenario when it did not pass.
"""

from __future__ import annotations

import re
import socket
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from hil.results import Outcome, ScenarioResult

__all__ = ["format_table", "junit_xml", "summary", "write_junit"]

DETAIL_WIDTH = 100
# Characters XML 1.0 cannot carry at all (frames from the network may hold them).
_NOT_XML = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(text: str) -> str:
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _one_line(text: str, width: int) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def summary(results: Sequence[ScenarioResult]) -> str:
    counts = {o: sum(1 for r in results if r.outcome is o) for o in Outcome}
    return (
        f"{len(results)} scenarios: {counts[Outcome.PASS]} passed, "
        f"{counts[Outcome.FAIL]} failed, {counts[Outcome.ERROR]} errors, "
        f"{counts[Outcome.NOT_APPLICABLE]} not applicable"
    )


def format_table(results: Sequence[ScenarioResult], *, width: int = DETAIL_WIDTH) -> str:
    """One row per scenario: name, result, seconds, detail (first line, shortened)."""
    name_w = max([len("scenario"), *(len(r.name) for r in results)])
    rows = [f"{'scenario':<{name_w}}  result  seconds  detail"]
    rows.append(f"{'-' * name_w}  ------  -------  {'-' * 6}")
    for r in results:
        rows.append(
            f"{r.name:<{name_w}}  {r.outcome.value:<6}  {r.seconds:7.2f}  "
            f"{_one_line(r.detail, width)}"
        )
    rows.append(summary(results))
    return "\n".join(rows)


def junit_xml(
    results: Sequence[ScenarioResult],
    *,
    suite: str = "hil",
    properties: Mapping[str, str] | None = None,
    outputs: Mapping[str, str] | None = None,
    timestamp: datetime | None = None,
) -> ET.ElementTree[ET.Element]:
    """The report; ``outputs`` maps a scenario name to text for its ``<system-out>``."""
    outputs = outputs or {}
    failures = sum(1 for r in results if r.outcome is Outcome.FAIL)
    errors = sum(1 for r in results if r.outcome is Outcome.ERROR)
    skipped = sum(1 for r in results if r.outcome is Outcome.NOT_APPLICABLE)
    total = sum(r.seconds for r in results)
    root = ET.Element("testsuites", name=suite, tests=str(len(results)))
    root.set("failures", str(failures))
    root.set("errors", str(errors))
    root.set("skipped", str(skipped))
    root.set("time", f"{total:.3f}")
    stamp = (timestamp or datetime.now(UTC)).replace(microsecond=0)
    testsuite = ET.SubElement(
        root,
        "testsuite",
        name=suite,
        tests=str(len(results)),
        failures=str(failures),
        errors=str(errors),
        skipped=str(skipped),
        time=f"{total:.3f}",
        timestamp=stamp.isoformat().replace("+00:00", ""),
        hostname=socket.gethostname(),
    )
    if properties:
        props = ET.SubElement(testsuite, "properties")
        for key, value in properties.items():
            ET.SubElement(props, "property", name=key, value=_xml_text(value))
    for r in results:
        case = ET.SubElement(
            testsuite, "testcase", classname=suite, name=r.name, time=f"{r.seconds:.3f}"
        )
        message = _xml_text(_one_line(r.detail, 500))
        detail = _xml_text(r.detail)
        if r.outcome is Outcome.FAIL:
            ET.SubElement(case, "failure", message=message, type="ScenarioFailed").text = detail
        elif r.outcome is Outcome.ERROR:
            ET.SubElement(case, "error", message=message, type="BenchError").text = detail
        elif r.outcome is Outcome.NOT_APPLICABLE:
            ET.SubElement(case, "skipped", message=f"N/A: {message}")
        failed = r.outcome in (Outcome.FAIL, Outcome.ERROR)
        if failed and outputs.get(r.name):
            ET.SubElement(case, "system-out").text = _xml_text(outputs[r.name])
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(
    path: Path,
    results: Sequence[ScenarioResult],
    *,
    suite: str = "hil",
    properties: Mapping[str, str] | None = None,
    outputs: Mapping[str, str] | None = None,
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tree = junit_xml(results, suite=suite, properties=properties, outputs=outputs)
    tree.write(path, encoding="utf-8", xml_declaration=True)
