"""OCPP 2.0.1 registration (B01-B04) over a real 2.0.1 websocket to the bench CSMS.

The bench validates every frame against the OCA 2.0.1 schemas (``violations``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from firmware.clock import Clock
from firmware.config import Identity
from firmware.ocpp.registration import Registration
from firmware.ocpp.rpc import Rpc
from firmware.ocpp.v201.boot import V201Boot, boot_reason
from firmware.ocpp.v201.device_model import DeviceModel
from firmware.ocpp.v201.provisioning import ProvisioningHandlers
from firmware.security.runs import PreviousRun
from hil.csms import BenchCsms, StationLog
from tests.unit.aio import until
from tests.unit.device_model_fixtures import open_model

CP = "CP-BOOT"
IDENTITY = Identity(vendor="OpenChargeFW", model="SimCharger", serial_number="SN-7")


@dataclass
class Linked:
    csms: BenchCsms
    log: StationLog
    registration: Registration
    rpc: Rpc


def spawner(tg: asyncio.TaskGroup) -> Callable[[Coroutine[Any, Any, None]], None]:
    def spawn(coro: Coroutine[Any, Any, None]) -> None:
        tg.create_task(coro)

    return spawn


@contextlib.asynccontextmanager
async def registered(
    model: DeviceModel, *, boot_status: str = "Accepted", interval: int = 300
) -> AsyncIterator[Linked]:
    """A station registering over 2.0.1 with a bench CSMS until the block ends."""
    async with BenchCsms(versions=["2.0.1"]) as csms, asyncio.TaskGroup() as tg:
        csms.boot_status, csms.heartbeat_interval = boot_status, interval
        rpc = Rpc(response_timeout_s=5, max_frame_bytes=65536, spawn=spawner(tg))
        ProvisioningHandlers(model, rpc, Clock()).register(rpc)

        async def online() -> None:
            pass

        registration = Registration(
            rpc,
            V201Boot(model, IDENTITY, lambda: "PowerUp"),
            Clock(),
            boot_retry_s=0.5,
            on_online=online,
        )
        running = tg.create_task(registration.run())
        async with connect(f"{csms.url}/{CP}", subprotocols=[Subprotocol("ocpp2.0.1")]) as ws:
            serving = tg.create_task(rpc.serve(ws, "2.0.1"))
            log = await csms.wait_connected(CP)
            try:
                yield Linked(csms, log, registration, rpc)
            finally:
                await ws.close()
                await serving
                running.cancel()
        assert log.violations == []


async def test_accepted_boot_says_why_and_adopts_the_interval(tmp_path: Path) -> None:
    model, db = open_model(tmp_path)
    async with registered(model, interval=1) as s:
        boot = await s.log.wait_for("BootNotification")
        assert boot == {
            "reason": "PowerUp",
            "chargingStation": {
                "model": "SimCharger",
                "vendorName": "OpenChargeFW",
                "serialNumber": "SN-7",
                "firmwareVersion": IDENTITY.firmware_version,
            },
        }
        await until(s.registration.ready.is_set, timeout_s=15)
        assert model.get_int("OCPPCommCtrlr", "HeartbeatInterval") == 1
        await s.log.wait_for("Heartbeat", timeout=15)
        # A BootNotification the CSMS triggers says so.
        await s.registration.trigger_boot()
        assert s.log.calls("BootNotification")[-1]["reason"] == "Triggered"
    db.close()


async def test_pending_boot_is_retried_after_the_interval_until_accepted(tmp_path: Path) -> None:
    model, db = open_model(tmp_path)
    async with registered(model, boot_status="Pending", interval=1) as s:
        await until(lambda: s.registration.status == "Pending", timeout_s=15)
        assert not s.registration.ready.is_set()
        # Pending: the CSMS may configure the station (B02.FR.02) ...
        answer = await s.log.call(
            "GetVariables",
            {
                "getVariableData": [
                    {
                        "component": {"name": "OCPPCommCtrlr"},
                        "variable": {"name": "OfflineThreshold"},
                    }
                ]
            },
        )
        assert answer["getVariableResult"][0]["attributeStatus"] == "Accepted"
        # ... and the station asks again after the interval.
        await s.log.wait_for("BootNotification", since=1)  # the interval passed: again
        s.csms.boot_status = "Accepted"
        await until(s.registration.ready.is_set, timeout_s=15)
        # Nothing but BootNotification went out before the Accepted one.
        sent = [
            f.message[2]
            for f in s.log.frames
            if f.direction == "in" and f.message and f.message[0] == 2
        ]
        boots = len(s.log.calls("BootNotification"))
        assert boots >= 2 and sent[:boots] == ["BootNotification"] * boots
    db.close()


async def test_rejected_boot_answers_nothing_until_the_interval_passed(tmp_path: Path) -> None:
    model, db = open_model(tmp_path)
    async with registered(model, boot_status="Rejected", interval=30) as s:
        await s.log.wait_for("BootNotification")
        await until(lambda: s.registration.status == "Rejected", timeout_s=15)
        request = {
            "getVariableData": [
                {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}
            ]
        }
        with pytest.raises(TimeoutError):
            await s.log.call("GetVariables", request, timeout=1)
        assert len(s.log.calls("BootNotification")) == 1 and not s.registration.ready.is_set()
    db.close()


async def test_a_heartbeat_interval_the_csms_sets_applies_at_once(tmp_path: Path) -> None:
    model, db = open_model(tmp_path)
    async with registered(model, interval=300) as s:
        await until(s.registration.ready.is_set, timeout_s=15)
        assert s.log.calls("Heartbeat") == []
        answer = await s.log.call(
            "SetVariables",
            {
                "setVariableData": [
                    {
                        "component": {"name": "OCPPCommCtrlr"},
                        "variable": {"name": "HeartbeatInterval"},
                        "attributeValue": "1",
                    }
                ]
            },
        )
        assert answer["setVariableResult"][0]["attributeStatus"] == "Accepted"
        await s.log.wait_for("Heartbeat", timeout=15)
    db.close()


@pytest.mark.parametrize(
    ("previous", "reason"),
    [
        (PreviousRun(True, False, None, None, None), "PowerUp"),
        (PreviousRun(False, False, None, "2026-01-01T00:00:00Z", None), "PowerUp"),
        (PreviousRun(False, True, "SoftReset", None, None), "RemoteReset"),
        (PreviousRun(False, True, "HardReset", None, None), "RemoteReset"),
        (PreviousRun(False, True, "FirmwareUpdate", None, None), "FirmwareUpdate"),
        (PreviousRun(False, True, "Reboot", None, None), "LocalReset"),
        (PreviousRun(False, True, "Other", None, None), "Unknown"),
    ],
)
def test_the_boot_reason_follows_how_the_previous_run_ended(
    previous: PreviousRun, reason: str
) -> None:
    assert boot_reason(previous) == reason
