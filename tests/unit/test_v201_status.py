"""OCPP 2.0.1 StatusNotification (G01) from the station's statuses, over a real 2.0.1
websocket to the bench CSMS (which checks every frame against the OCA schemas)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from firmware.clock import Clock
from firmware.connector.status import Status
from firmware.ocpp.rpc import Rpc
from firmware.ocpp.status_notifier import StatusNotifier
from firmware.ocpp.v201.device_model.topology import Evse, Topology, layout
from firmware.ocpp.v201.status import V201Status, connector_status
from hil.csms import BenchCsms
from tests.unit.aio import until

AT = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "reported"),
    [
        ("Available", "Available"),
        ("Preparing", "Occupied"),
        ("Charging", "Occupied"),
        ("SuspendedEV", "Occupied"),
        ("SuspendedEVSE", "Occupied"),
        ("Finishing", "Occupied"),
        ("Reserved", "Reserved"),
        ("Unavailable", "Unavailable"),
        ("Faulted", "Faulted"),
    ],
)
def test_each_station_status_has_its_connector_status(status: str, reported: str) -> None:
    assert connector_status(Status(status)) == reported


def test_a_connector_is_addressed_by_its_evse_and_the_station_is_not_reported() -> None:
    grouped = V201Status(Topology([Evse(1, (1, 2)), Evse(2, (3,))]))
    assert grouped.payloads(2, Status("Charging"), AT) == [
        {
            "timestamp": "2030-01-02T03:04:05.000Z",
            "connectorStatus": "Occupied",
            "evseId": 1,
            "connectorId": 2,
        }
    ]
    assert grouped.payloads(3, Status("Available"), AT)[0]["evseId"] == 2
    assert grouped.payloads(0, Status("Unavailable"), AT) == []


async def test_changes_inside_occupied_send_nothing_new() -> None:
    async with BenchCsms(versions=["2.0.1"]) as csms, asyncio.TaskGroup() as tg:
        rpc = Rpc(response_timeout_s=5, max_frame_bytes=65536, spawn=lambda coro: coro.close())
        ready = asyncio.Event()
        notifier = StatusNotifier(rpc, V201Status(layout(2)), Clock(), ready)
        async with connect(f"{csms.url}/CP-G01", subprotocols=[Subprotocol("ocpp2.0.1")]) as ws:
            serving = tg.create_task(rpc.serve(ws, "2.0.1"))
            running = tg.create_task(notifier.run())
            log = await csms.wait_connected("CP-G01")
            for connector in (0, 1, 2):
                notifier.report(connector, Status("Available"))
            ready.set()
            await notifier.resync()  # registered: the current status of every connector
            await until(lambda: len(log.calls("StatusNotification")) == 2, timeout_s=15)
            notifier.report(2, Status("Preparing"))
            await log.wait_for("StatusNotification", lambda p: p["connectorStatus"] == "Occupied")
            for status in ("Charging", "SuspendedEV", "Charging", "Finishing"):
                notifier.report(2, Status(status))
                await asyncio.sleep(0.05)  # each one lasts: none is superseded
            notifier.report(1, Status("Unavailable"))  # reports go in order: after all those
            await log.wait_for(
                "StatusNotification", lambda p: p["connectorStatus"] == "Unavailable"
            )
            notifier.report(2, Status("Available"))
            await log.wait_for("StatusNotification", lambda p: p["evseId"] == 2, since=3)
            running.cancel()
            await ws.close()
            await serving
        sent = [(p["evseId"], p["connectorId"], p["connectorStatus"]) for p in log.calls()]
        assert sent == [
            (1, 1, "Available"),
            (2, 1, "Available"),
            (2, 1, "Occupied"),
            (1, 1, "Unavailable"),
            (2, 1, "Available"),
        ]
        assert log.violations == []
