"""The connector controller in process: real outbox, RPC and websocket, simulated hardware.

A small in-process CSMS answers the station's CALLs over a real websocket, so a
StartTransaction.conf reaches the controller the way it does in the daemon
(outbox result handler → ``start_confirmed``), and the simulated plant is the
hardware. Each test drives the controller's public coroutines and checks what
it did to the relay, the lock, the queue and its status.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from firmware.auth.cache import IdTagInfo
from firmware.clock import Clock
from firmware.connector.availability import AvailabilityStore
from firmware.connector.context import ConnectorContext
from firmware.connector.controller import ConnectorController
from firmware.connector.status import Status
from firmware.connector.transactions import TransactionStore
from firmware.metering import supported_measurands
from firmware.ocpp.rpc import Rpc
from firmware.ocpp.v16.configuration import ConfigurationStore, StationFacts
from firmware.ocpp.v16.settings import ConfigurationSettings
from firmware.ocpp.v16.transactions import V16Journal
from firmware.queue import Outbox
from firmware.storage.db import Database
from hal.interfaces import BoardSettings, Fault, PilotState
from hal.sim.backend import SimBackend, SimOptions
from tests.unit.aio import until

TAG = "04A1B2C3"
Answer = Callable[[dict[str, Any]], dict[str, Any] | None]


class ManualClock(Clock):
    """Wall time as usual; monotonic time moves only when the test says so."""

    def __init__(self) -> None:
        super().__init__()
        self.mono = 1000.0

    def monotonic(self) -> float:
        return self.mono


@dataclass
class Csms:
    """Answers the station's CALLs; ``answers[action]`` returning None leaves a CALL hanging."""

    answers: dict[str, Answer] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    next_id: int = 100

    def default(self, action: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        if action == "StartTransaction":
            self.next_id += 1
            return {"transactionId": self.next_id, "idTagInfo": {"status": "Accepted"}}
        if action == "StopTransaction":
            return {"idTagInfo": {"status": "Accepted"}}
        return {}

    async def serve(self, ws: ServerConnection) -> None:
        async for text in ws:
            _, uid, action, payload = json.loads(text)
            self.calls.append((action, payload))
            custom = self.answers.get(action)
            answer = custom(payload) if custom else self.default(action, payload)
            if answer is not None:
                await ws.send(json.dumps([3, uid, answer]))

    def actions(self) -> list[str]:
        return [action for action, _ in self.calls]

    def payloads(self, action: str) -> list[dict[str, Any]]:
        return [payload for name, payload in self.calls if name == action]


@dataclass
class Rig:
    controller: ConnectorController
    backend: SimBackend
    csms: Csms
    clock: ManualClock
    outbox: Outbox
    statuses: list[Status]
    offline_allows: list[bool]

    @property
    def world_relay(self) -> bool:
        return self.backend.world.connector(1).contact

    def status(self) -> str:
        return self.statuses[-1].status if self.statuses else ""

    async def pilot(self, state: PilotState) -> None:
        self.backend.world.set_cp_state(1, state)
        await self.controller.on_pilot(state)

    async def authorize(self, status: str = "Accepted", *, offline: bool = False) -> None:
        await self.controller.authorize(TAG, IdTagInfo(status), offline=offline)

    async def delivered(self, action: str, count: int = 1) -> dict[str, Any]:
        await until(lambda: len(self.csms.payloads(action)) >= count, 5)
        await until(lambda: self.outbox.pending() == 0 or action == "StartTransaction", 5)
        return self.csms.payloads(action)[count - 1]


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    db = Database(tmp_path / "state.db")
    facts = StationFacts(1, supported_measurands(has_bms=False))
    config = ConfigurationStore(
        db, {"MeterValueSampleInterval": "0", "ConnectionTimeOut": "30"}, facts
    )
    clock = ManualClock()
    csms = Csms()
    backend = SimBackend(1, BoardSettings(), SimOptions(tick_s=0.01))
    offline_allows = [False]
    async with asyncio.TaskGroup() as tg:

        def spawn(coro: Coroutine[Any, Any, None]) -> None:
            tg.create_task(coro)

        rpc = Rpc(response_timeout_s=1, max_frame_bytes=65536, spawn=spawn)
        ready = asyncio.Event()
        ready.set()
        outbox = Outbox(db, rpc, clock, ready=ready, attempts=lambda: 3, retry_interval_s=lambda: 0)
        transactions = TransactionStore(db)
        ctx = ConnectorContext(
            db=db,
            transactions=transactions,
            journal=V16Journal(outbox, transactions, lambda _action, _message: None),
            settings=ConfigurationSettings(config),
            availability=AvailabilityStore(db),
            clock=clock,
            board=BoardSettings(),
            spawn=spawn,
            online=lambda: True,
            offline_decision=lambda _tag: offline_allows[0],
            response_timeout_s=0.5,
            meter_poll_s=0.05,
        )
        controller = ConnectorController(backend.connectors[1], ctx)
        statuses: list[Status] = []
        controller.subscribe(lambda _cid, status: statuses.append(status))

        def start_result(local_tx: int | None, result: dict[str, Any]) -> None:
            assert local_tx is not None
            info = IdTagInfo.from_payload(result["idTagInfo"])
            controller.start_confirmed(local_tx, int(result["transactionId"]), info)

        outbox.on_result("StartTransaction", start_result)
        async with serve(csms.serve, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            async with connect(f"ws://127.0.0.1:{port}") as ws:
                jobs = [
                    tg.create_task(backend.run()),
                    tg.create_task(rpc.serve(ws)),
                    tg.create_task(outbox.run()),
                ]
                await until(lambda: rpc.connected)
                await controller.start()
                try:
                    yield Rig(controller, backend, csms, clock, outbox, statuses, offline_allows)
                finally:
                    for job in jobs:
                        job.cancel()
    db.close()


async def test_plug_first_energizes_only_after_the_csms_accepts(rig: Rig) -> None:
    assert rig.status() == "Available"
    rig.csms.answers["StartTransaction"] = lambda _p: None  # hold the answer back
    await rig.pilot(PilotState.B)
    assert rig.status() == "Preparing"
    authorizing = asyncio.create_task(rig.authorize())
    start = await rig.delivered("StartTransaction")
    assert start == {
        "connectorId": 1,
        "idTag": TAG,
        "meterStart": 0,
        "timestamp": start["timestamp"],
    }
    await rig.pilot(PilotState.C)
    # Locked and persisted, but no offer and no relay before the CSMS said yes.
    assert rig.controller.hw.lock is not None and rig.controller.hw.lock.locked
    assert rig.controller.hw.evse.offered_current_a == 0
    assert not rig.controller.hw.relay.commanded_closed
    rig.csms.answers.clear()
    await authorizing  # the wait for the answer timed out: offline policy refuses
    assert rig.controller.tx is None
    # The retried StartTransaction is answered, and the stop goes out under its id.
    stop = await rig.delivered("StopTransaction")
    assert (stop["reason"], stop["transactionId"]) == ("DeAuthorized", 101)
    assert len(rig.csms.payloads("StartTransaction")) == 2
    assert not rig.world_relay
    assert [s.status for s in rig.statuses].count("Charging") == 0


async def test_accepted_session_charges_and_stops_locally(rig: Rig) -> None:
    await rig.pilot(PilotState.B)
    await rig.authorize()
    await rig.pilot(PilotState.C)
    await until(lambda: rig.controller.hw.relay.commanded_closed, 2)
    assert rig.controller.hw.evse.offered_current_a == BoardSettings().max_current_a
    await until(lambda: rig.world_relay, 2)
    tx = rig.controller.tx
    assert tx is not None and tx.record.csms_id == 101 and tx.confirmed
    assert rig.status() == "Charging"
    assert await rig.controller.stop("Local", TAG)
    assert not rig.controller.hw.relay.commanded_closed
    assert rig.controller.hw.evse.offered_current_a == 0
    stop = await rig.delivered("StopTransaction")
    assert (stop["reason"], stop["idTag"], stop["transactionId"]) == ("Local", TAG, 101)
    assert rig.status() == "Finishing"
    await rig.pilot(PilotState.A)
    assert rig.status() == "Available"
    assert rig.controller.hw.lock is not None and not rig.controller.hw.lock.locked


async def test_an_invalid_start_answer_stops_without_energy(rig: Rig) -> None:
    rig.csms.answers["StartTransaction"] = lambda _p: {
        "transactionId": 7,
        "idTagInfo": {"status": "Invalid"},
    }
    await rig.pilot(PilotState.C)
    await rig.authorize()
    stop = await rig.delivered("StopTransaction")
    assert (stop["reason"], stop["transactionId"]) == ("DeAuthorized", 7)
    assert rig.controller.tx is None
    assert not rig.controller.hw.relay.commanded_closed
    assert [s.status for s in rig.statuses].count("Charging") == 0


async def test_an_unanswered_start_charges_when_the_offline_policy_allows(rig: Rig) -> None:
    rig.csms.answers["StartTransaction"] = lambda _p: None
    rig.offline_allows[0] = True
    await rig.pilot(PilotState.C)
    await rig.authorize()  # returns after response_timeout_s without an answer
    tx = rig.controller.tx
    assert tx is not None and tx.offline and tx.energy_allowed and not tx.confirmed
    await until(lambda: rig.controller.hw.relay.commanded_closed, 2)
    assert rig.status() == "Charging"


async def test_a_fault_opens_the_relay_and_its_clearing_closes_it_again(rig: Rig) -> None:
    await rig.pilot(PilotState.C)
    await rig.authorize()
    await until(lambda: rig.controller.hw.relay.commanded_closed, 2)
    await rig.controller.on_fault(Fault.RCD_TRIP, True)
    assert not rig.controller.hw.relay.commanded_closed
    assert rig.controller.hw.evse.offered_current_a == 0
    assert (rig.status(), rig.statuses[-1].error_code) == ("Faulted", "GroundFailure")
    assert rig.controller.tx is not None  # a fault does not end the transaction
    await rig.controller.on_fault(Fault.RCD_TRIP, False)
    assert rig.controller.hw.relay.commanded_closed
    assert rig.status() == "Charging"


async def test_unplugging_ends_the_session_and_unlocks(rig: Rig) -> None:
    await rig.pilot(PilotState.C)
    await rig.authorize()
    await until(lambda: rig.controller.hw.relay.commanded_closed, 2)
    await rig.pilot(PilotState.A)
    stop = await rig.delivered("StopTransaction")
    assert stop["reason"] == "EVDisconnected" and "idTag" not in stop
    assert rig.controller.hw.lock is not None and not rig.controller.hw.lock.locked
    assert not rig.controller.hw.relay.commanded_closed
    assert rig.status() == "Available"


async def test_inoperative_during_a_session_is_scheduled_until_it_ends(rig: Rig) -> None:
    await rig.pilot(PilotState.C)
    await rig.authorize()
    await until(lambda: rig.controller.hw.relay.commanded_closed, 2)
    assert await rig.controller.set_availability(False) == "Scheduled"
    assert rig.controller.hw.relay.commanded_closed  # the running session goes on
    await rig.controller.stop("Remote")
    assert rig.status() == "Unavailable"
    assert not rig.controller.can_start()
    assert not await rig.controller.authorize(TAG, IdTagInfo("Accepted"), offline=False)


async def test_tap_first_authorization_expires_after_connection_timeout(rig: Rig) -> None:
    await rig.authorize()
    assert rig.controller.pending is not None
    assert rig.status() == "Preparing"
    rig.clock.mono += 29
    await rig.controller.poll()
    assert rig.controller.pending is not None
    rig.clock.mono += 2
    await rig.controller.poll()
    assert rig.controller.pending is None
    assert rig.status() == "Available"
    assert rig.csms.payloads("StartTransaction") == []  # never plugged: nothing to report


async def test_a_vehicle_plugged_after_a_tap_starts_the_transaction(rig: Rig) -> None:
    await rig.authorize()
    assert rig.csms.payloads("StartTransaction") == []
    await rig.pilot(PilotState.B)
    start = await rig.delivered("StartTransaction")
    assert start["idTag"] == TAG
    await until(lambda: rig.controller.tx is not None and rig.controller.tx.confirmed, 2)
    await rig.pilot(PilotState.C)
    await until(lambda: rig.controller.hw.relay.commanded_closed, 2)
