"""``/metrics`` text, read back with the prometheus_client parser."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from firmware.connector.transactions import TransactionStore
from firmware.metrics import TapLatency
from firmware.ocpp.call_stats import CallStats
from firmware.prometheus import CONNECTOR_STATUSES, Exposition, StationMetrics
from firmware.storage.db import Database

AT = datetime(2026, 1, 1, tzinfo=UTC)


def samples(text: str) -> dict[str, list[Sample]]:
    """Samples by family name; the parser refuses anything out of format."""
    found: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(text):
        assert family.documentation, family.name
        found[family.name] = list(family.samples)
    return found


def value(
    found: dict[str, list[Sample]], family: str, name: str | None = None, **labels: str
) -> float:
    wanted = name or family
    matching = [
        s.value
        for s in found[family]
        if s.name == wanted and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(matching) == 1, (family, labels, found[family])
    return matching[0]


def test_label_values_are_escaped_and_numbers_written_as_prometheus_reads_them() -> None:
    out = Exposition()
    out.family("x_total", "counter", "Help with a \\ backslash.")
    out.sample("x_total", 3, {"action": 'say "hi"\\\nbye'})
    out.one("y", "gauge", "A float.", 0.25)
    out.one("z", "gauge", "Infinite.", float("inf"))
    found = samples(out.text())
    assert found["x"][0].labels == {"action": 'say "hi"\\\nbye'}
    assert found["x"][0].value == 3
    assert found["y"][0].value == 0.25 and found["z"][0].value == float("inf")


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "state.db")
    yield database
    database.close()


def _status() -> dict[str, Any]:
    connector = {
        "id": 1,
        "status": "Charging",
        "error_code": "NoError",
        "relay_closed": True,
        "offered_current_a": 16.0,
        "limit_a": None,
        "power_w": 11040.0,
        "energy_wh": 1500.5,
        "session_energy_wh": 250.0,
        "faults": [],
    }
    faulted = {
        **connector,
        "id": 2,
        "status": "Faulted",
        "error_code": "GroundFailure",
        "relay_closed": False,
        "power_w": 0.0,
        "energy_wh": None,
        "session_energy_wh": None,
        "limit_a": 10.0,
        "faults": ["rcd_trip"],
    }
    return {
        "charge_point_id": "CP-7",
        "firmware_version": "1.2.3",
        "hal_backend": "simulated",
        "ocpp": {
            "connected": False,
            "registration": "Accepted",
            "queued": 4,
            "dropped": 1,
            "thinned": 2,
            "link": {"state": "offline", "detail": "", "since": "", "retry_at": None},
        },
        "station": {"status": "Available", "error_code": "NoError", "faults": []},
        "connectors": [connector, faulted],
    }


def test_the_station_in_metrics(db: Database) -> None:
    store = TransactionStore(db)
    for reason in ("Local", "Local", "EVDisconnected"):
        tx = store.open(1, "TAG", None, 0, AT)
        store.close(tx.local_id, 10, AT, reason, None)
    store.open(1, "TAG", None, 10, AT)  # running
    calls = CallStats()
    calls.on_sent("Heartbeat")
    calls.on_sent("Heartbeat")
    calls.on_timeout("Heartbeat")
    calls.on_failure("StartTransaction", "callerror")
    taps = TapLatency()
    taps.token_read("TAG", 10.0)
    taps.energized("TAG", 10.02)
    taps.token_read("TAG", 20.0)
    taps.energized("TAG", 21.0)
    metrics = StationMetrics(
        status=_status,
        calls=calls,
        taps=taps.histogram,
        db=db,
        connections=lambda: 3,
        started_at=1_700_000_000.0,
    )
    found = samples(metrics.text())
    assert value(found, "chargepoint_info", charge_point_id="CP-7", firmware_version="1.2.3") == 1
    assert value(found, "chargepoint_ocpp_connected") == 0
    assert value(found, "chargepoint_ocpp_link_state", state="offline") == 1
    assert value(found, "chargepoint_ocpp_link_state", state="connected") == 0
    assert value(found, "chargepoint_ocpp_registration_state", status="Accepted") == 1
    assert value(found, "chargepoint_ocpp_reconnects", "chargepoint_ocpp_reconnects_total") == 2
    sent = "chargepoint_ocpp_calls_sent_total"
    assert value(found, "chargepoint_ocpp_calls_sent", sent, action="Heartbeat") == 2
    timed_out = "chargepoint_ocpp_calls_timed_out_total"
    assert value(found, "chargepoint_ocpp_calls_timed_out", timed_out, action="Heartbeat") == 1
    failed = "chargepoint_ocpp_calls_failed_total"
    labels = {"action": "StartTransaction", "reason": "callerror"}
    assert value(found, "chargepoint_ocpp_calls_failed", failed, **labels) == 1
    assert value(found, "chargepoint_ocpp_queue_messages") == 4
    dropped = "chargepoint_ocpp_queue_dropped_total"
    assert value(found, "chargepoint_ocpp_queue_dropped", dropped) == 1
    for status in CONNECTOR_STATUSES:
        expected = 1 if status == "Charging" else 0
        assert (
            value(found, "chargepoint_connector_status", connector="1", status=status) == expected
        )
    assert value(found, "chargepoint_connector_status", connector="2", status="Faulted") == 1
    assert value(found, "chargepoint_connector_status", connector="0", status="Available") == 1
    error = value(found, "chargepoint_connector_error", connector="2", error_code="GroundFailure")
    assert error == 1
    assert value(found, "chargepoint_connector_faults", connector="2", fault="rcd_trip") == 1
    energy = "chargepoint_connector_energy_joules_total"
    assert (
        value(found, "chargepoint_connector_energy_joules", energy, connector="1") == 1500.5 * 3600
    )
    assert [s.labels["connector"] for s in found["chargepoint_connector_energy_joules"]] == ["1"]
    session = value(found, "chargepoint_connector_session_energy_joules", connector="1")
    assert session == 250 * 3600
    assert value(found, "chargepoint_connector_power_watts", connector="1") == 11040
    assert value(found, "chargepoint_connector_limit_amperes", connector="2") == 10
    started = "chargepoint_sessions_started_total"
    assert value(found, "chargepoint_sessions_started", started, connector="1") == 4
    assert value(found, "chargepoint_sessions_started", started, connector="2") == 0
    stopped = "chargepoint_sessions_stopped_total"
    assert value(found, "chargepoint_sessions_stopped", stopped, connector="1", reason="Local") == 2
    labels = {"connector": "1", "reason": "EVDisconnected"}
    assert value(found, "chargepoint_sessions_stopped", stopped, **labels) == 1
    tap = "chargepoint_tap_to_energize_seconds"
    assert value(found, tap, tap + "_count") == 2
    assert value(found, tap, tap + "_bucket", le="0.025") == 1
    assert value(found, tap, tap + "_bucket", le="1.0") == 2
    assert value(found, tap, tap + "_bucket", le="+Inf") == 2
    assert value(found, tap, tap + "_sum") == pytest.approx(1.02)
    assert value(found, "process_resident_memory_bytes") > 1_000_000
    assert value(found, "process_cpu_seconds", "process_cpu_seconds_total") > 0
