"""TxStartPoint and TxStopPoint other than the default (E01-E03, E06): when the station's
transactions start and end, over a real 2.0.1 websocket to the bench CSMS with the
simulated hardware (tests.unit.v201_rig)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from hal.interfaces import PilotState
from tests.unit.aio import until
from tests.unit.v201_rig import Rig, station_201

TAG = "04A1B2C3D4E5F6"


def trigger(reason: str) -> Callable[[dict[str, Any]], bool]:
    return lambda p: p["triggerReason"] == reason


async def event(rig: Rig, reason: str) -> dict[str, Any]:
    return await rig.log.wait_for("TransactionEvent", trigger(reason))


def events(rig: Rig) -> list[tuple[str, str]]:
    return [(p["eventType"], p["triggerReason"]) for p in rig.log.calls("TransactionEvent")]


async def test_the_vehicle_starts_it_and_energy_waits_for_a_token(tmp_path: Path) -> None:
    async with station_201(tmp_path, TxCtrlr={"TxStartPoint": "EVConnected"}) as rig:
        rig.plug(1)
        started = await rig.event("Started")
        assert started["triggerReason"] == "CablePluggedIn"
        assert "idToken" not in started
        assert not rig.relay(1)
        rig.backend.plant.present_token(TAG, 1)
        authorized = await event(rig, "Authorized")
        assert authorized["eventType"] == "Updated"
        assert authorized["idToken"] == {"idToken": TAG, "type": "ISO14443"}
        tx_id = started["transactionInfo"]["transactionId"]
        assert authorized["transactionInfo"]["transactionId"] == tx_id
        await rig.wait_relay(1, True)
        rig.plug(1, PilotState.A)
        ended = await rig.event("Ended")
        assert ended["transactionInfo"]["stoppedReason"] == "EVDisconnected"
        sent = rig.log.calls("TransactionEvent")
        assert [p["seqNo"] for p in sent] == list(range(len(sent)))
        # Each event says the charging state; energy flowing is a change of it (E01).
        assert [(p["triggerReason"], p["transactionInfo"].get("chargingState")) for p in sent] == [
            ("CablePluggedIn", "EVConnected"),
            ("Authorized", "EVConnected"),
            ("ChargingStateChanged", "Charging"),
            ("EVCommunicationLost", None),
        ]


async def test_a_vehicle_without_a_token_ends_its_transaction_when_it_leaves(
    tmp_path: Path,
) -> None:
    async with station_201(tmp_path, TxCtrlr={"TxStartPoint": "EVConnected,Authorized"}) as rig:
        rig.plug(2)
        await rig.event("Started")
        await until(rig.outbox.is_empty, timeout_s=10)  # the Started event was answered
        assert rig.station.authorizer.known_locally("") is None  # no empty token cached
        rig.plug(2, PilotState.A)
        ended = await rig.event("Ended")
        assert ended["transactionInfo"]["stoppedReason"] == "EVDisconnected"
        assert events(rig) == [("Started", "CablePluggedIn"), ("Ended", "EVCommunicationLost")]
        assert not rig.relay(2)


async def test_a_remote_start_authorizes_the_transaction_the_vehicle_started(
    tmp_path: Path,
) -> None:
    async with station_201(tmp_path, TxCtrlr={"TxStartPoint": "EVConnected"}) as rig:
        rig.plug(1)
        await rig.event("Started")
        answer = await rig.log.call(
            "RequestStartTransaction",
            {"evseId": 1, "remoteStartId": 9, "idToken": {"idToken": TAG, "type": "Central"}},
        )
        assert answer["status"] == "Accepted"
        remote = await event(rig, "RemoteStart")
        assert remote["eventType"] == "Updated"
        assert remote["transactionInfo"]["remoteStartId"] == 9
        await rig.wait_relay(1, True)


async def test_a_token_starts_it_before_the_vehicle(tmp_path: Path) -> None:
    async with station_201(tmp_path, TxCtrlr={"TxStartPoint": "Authorized"}) as rig:
        rig.backend.plant.present_token(TAG, 1)
        started = await rig.event("Started")
        assert started["triggerReason"] == "Authorized"
        assert started["idToken"]["idToken"] == TAG
        assert not rig.relay(1)
        rig.plug(1)
        plugged = await event(rig, "CablePluggedIn")
        assert plugged["eventType"] == "Updated"
        await rig.wait_relay(1, True)
        rig.backend.plant.present_token(TAG, 1)
        ended = await rig.event("Ended")
        assert ended["transactionInfo"]["stoppedReason"] == "Local"
        await rig.wait_relay(1, False)


async def test_no_vehicle_within_the_timeout_ends_it(tmp_path: Path) -> None:
    tx = {"TxStartPoint": "Authorized", "EVConnectionTimeOut": 1}
    async with station_201(tmp_path, TxCtrlr=tx) as rig:
        rig.backend.plant.present_token(TAG, 2)
        await rig.event("Started")
        ended = await rig.event("Ended")
        assert ended["triggerReason"] == "EVConnectTimeout"
        assert ended["transactionInfo"]["stoppedReason"] == "Timeout"
        assert not rig.relay(2)


async def test_without_authorized_as_a_stop_point_a_stop_tap_only_withdraws_energy(
    tmp_path: Path,
) -> None:
    async with station_201(tmp_path, TxCtrlr={"TxStopPoint": "EVConnected"}) as rig:
        rig.backend.plant.present_token(TAG, 1)
        rig.plug(1)
        await rig.event("Started")
        await rig.wait_relay(1, True)
        rig.backend.plant.present_token(TAG, 1)
        stopped = await event(rig, "StopAuthorized")
        assert stopped["eventType"] == "Updated"
        assert stopped["idToken"]["idToken"] == TAG
        await rig.wait_relay(1, False)
        assert "Ended" not in [e for e, _ in events(rig)]
        rig.plug(1, PilotState.A)
        ended = await rig.event("Ended")
        assert ended["triggerReason"] == "EVCommunicationLost"


async def test_without_ev_connected_as_a_stop_point_the_vehicle_may_leave_and_come_back(
    tmp_path: Path,
) -> None:
    async with station_201(tmp_path, TxCtrlr={"TxStopPoint": "Authorized"}) as rig:
        rig.backend.plant.present_token(TAG, 1)
        rig.plug(1)
        await rig.event("Started")
        await rig.wait_relay(1, True)
        rig.plug(1, PilotState.A)
        left = await event(rig, "EVCommunicationLost")
        assert left["eventType"] == "Updated"
        await rig.wait_relay(1, False)
        rig.plug(1)
        await event(rig, "CablePluggedIn")
        await rig.wait_relay(1, True)  # the same transaction charges again
        rig.backend.plant.present_token(TAG, 1)
        ended = await rig.event("Ended")
        assert ended["transactionInfo"]["stoppedReason"] == "Local"
        assert (
            len({p["transactionInfo"]["transactionId"] for p in rig.log.calls("TransactionEvent")})
            == 1
        )
