"""OCPP 2.0.1 B05-B08 handlers over a real 2.0.1 websocket to the bench CSMS.

The bench validates every frame against the OCA 2.0.1 schemas (``violations``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from firmware.clock import Clock
from firmware.ocpp.rpc import Rpc
from firmware.ocpp.v201.device_model import DeviceModel
from firmware.ocpp.v201.provisioning import ProvisioningHandlers, frame_bytes
from hil.csms import BenchCsms, CallErrorReceived, StationLog
from tests.unit.aio import until
from tests.unit.device_model_fixtures import open_model

CP = "CP-PROV"


def spawner(tg: asyncio.TaskGroup) -> Callable[[Coroutine[Any, Any, None]], None]:
    def spawn(coro: Coroutine[Any, Any, None]) -> None:
        tg.create_task(coro)

    return spawn


@contextlib.asynccontextmanager
async def station(model: DeviceModel) -> AsyncIterator[StationLog]:
    """The handlers serving a 2.0.1 connection to a bench CSMS until the block ends."""
    async with BenchCsms(versions=["2.0.1"]) as csms, asyncio.TaskGroup() as tg:
        rpc = Rpc(response_timeout_s=5, max_frame_bytes=65536, spawn=spawner(tg))
        ProvisioningHandlers(model, rpc, Clock()).register(rpc)
        async with connect(f"{csms.url}/{CP}", subprotocols=[Subprotocol("ocpp2.0.1")]) as ws:
            serving = tg.create_task(rpc.serve(ws, "2.0.1"))
            log = await csms.wait_connected(CP)
            try:
                yield log
            finally:
                await ws.close()
                await serving
        assert log.violations == []


def heartbeat(attribute: str | None = None, value: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "component": {"name": "OCPPCommCtrlr"},
        "variable": {"name": "HeartbeatInterval"},
    }
    if attribute is not None:
        entry["attributeType"] = attribute
    if value is not None:
        entry["attributeValue"] = value
    return entry


async def test_set_then_get_variables(tmp_path: Path) -> None:
    model, db = open_model(tmp_path)
    async with station(model) as log:
        answer = await log.call("SetVariables", {"setVariableData": [heartbeat(value="120")]})
        assert [r["attributeStatus"] for r in answer["setVariableResult"]] == ["Accepted"]
        unknown = {"component": {"name": "NoSuchCtrlr"}, "variable": {"name": "Enabled"}}
        answer = await log.call(
            "GetVariables",
            {"getVariableData": [heartbeat(), unknown, heartbeat("Target")]},
        )
        results = answer["getVariableResult"]
        assert [r["attributeStatus"] for r in results] == [
            "Accepted",
            "UnknownComponent",
            "NotSupportedAttributeType",
        ]
        assert results[0]["attributeValue"] == "120"
    # Stored: a model opened again on the same database reads it.
    assert model.get_int("OCPPCommCtrlr", "HeartbeatInterval") == 120
    db.close()


async def test_a_base_report_follows_its_answer_split_in_seq_no_order(tmp_path: Path) -> None:
    model, db = open_model(
        tmp_path, device_model={"DeviceDataCtrlr": {"ItemsPerMessage[GetReport]": 4}}
    )
    async with station(model) as log:
        answer = await log.call(
            "GetBaseReport", {"requestId": 31, "reportBase": "ConfigurationInventory"}
        )
        assert answer == {"status": "Accepted"}
        await log.wait_for("NotifyReport", lambda p: not p.get("tbc", False))
        reports = log.calls("NotifyReport")
        assert len(reports) > 1
        assert [r["seqNo"] for r in reports] == list(range(len(reports)))
        assert [r.get("tbc", False) for r in reports] == [True] * (len(reports) - 1) + [False]
        assert {r["requestId"] for r in reports} == {31}
        assert all(1 <= len(r["reportData"]) <= 4 for r in reports)
        # The CALLRESULT went out before the first NotifyReport.
        kinds = [
            (f.message[0], f.message[2] if f.message[0] == 2 else None)
            for f in log.frames
            if f.direction == "in" and f.message is not None
        ]
        assert kinds.index((3, None)) < kinds.index((2, "NotifyReport"))
    db.close()


async def test_get_report_filters_and_an_empty_match_sends_nothing(tmp_path: Path) -> None:
    model, db = open_model(tmp_path)
    async with station(model) as log:
        answer = await log.call(
            "GetReport",
            {
                "requestId": 5,
                "componentVariable": [
                    {
                        "component": {"name": "OCPPCommCtrlr"},
                        "variable": {"name": "HeartbeatInterval"},
                    }
                ],
            },
        )
        assert answer == {"status": "Accepted"}
        report = await log.wait_for("NotifyReport")
        assert [d["variable"]["name"] for d in report["reportData"]] == ["HeartbeatInterval"]
        mark = log.mark()
        answer = await log.call(
            "GetReport",
            {"requestId": 6, "componentVariable": [{"component": {"name": "NoSuchCtrlr"}}]},
        )
        assert answer == {"status": "EmptyResultSet"}
        await log.call("GetVariables", {"getVariableData": [heartbeat()]})  # a round trip
        assert log.calls("NotifyReport")[mark:] == [] and len(log.calls("NotifyReport")) == 1
    db.close()


@pytest.mark.parametrize(
    ("limit", "code"),
    [("ItemsPerMessage", "OccurrenceConstraintViolation"), ("BytesPerMessage", "FormatViolation")],
)
async def test_a_request_over_the_limits_is_a_callerror(
    tmp_path: Path, limit: str, code: str
) -> None:
    request = {"getVariableData": [heartbeat(), heartbeat(), heartbeat()]}
    allowed = 2 if limit == "ItemsPerMessage" else frame_bytes("GetVariables", request) - 1
    model, db = open_model(
        tmp_path, device_model={"DeviceDataCtrlr": {f"{limit}[GetVariables]": allowed}}
    )
    async with station(model) as log:
        with pytest.raises(CallErrorReceived) as caught:
            await log.call("GetVariables", request)
        assert caught.value.code == code
        # Within the limits the same station answers.
        answer = await log.call("GetVariables", {"getVariableData": [heartbeat()]})
        assert answer["getVariableResult"][0]["attributeStatus"] == "Accepted"
    db.close()


async def test_a_report_cut_by_a_lost_link_stops_without_harm(tmp_path: Path) -> None:
    model, db = open_model(
        tmp_path, device_model={"DeviceDataCtrlr": {"ItemsPerMessage[GetReport]": 1}}
    )
    async with BenchCsms(versions=["2.0.1"]) as csms, asyncio.TaskGroup() as tg:
        rpc = Rpc(response_timeout_s=5, max_frame_bytes=65536, spawn=spawner(tg))
        ProvisioningHandlers(model, rpc, Clock()).register(rpc)
        async with connect(f"{csms.url}/{CP}", subprotocols=[Subprotocol("ocpp2.0.1")]) as ws:
            serving = tg.create_task(rpc.serve(ws, "2.0.1"))
            log = await csms.wait_connected(CP)
            await log.call("GetBaseReport", {"requestId": 1, "reportBase": "FullInventory"})
            await log.wait_for("NotifyReport", lambda p: p["seqNo"] >= 2)
            await csms.drop(CP)
            await serving
        sent = len(log.calls("NotifyReport"))
        await until(lambda: not rpc.connected, timeout_s=15)
        assert 3 <= sent < len(model.catalog)  # stopped well before the end
        assert log.violations == []
    db.close()
