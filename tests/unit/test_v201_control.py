"""OCPP 2.0.1 sessions on the station's core: a tap (C01, E), remote start and stop (F01-F03),
GetTransactionStatus (E14), ChangeAvailability (G03, G04), UnlockConnector (F05),
ClearCache (C11) and DataTransfer (P01), over a real 2.0.1 websocket to the bench CSMS
with the simulated hardware (tests.unit.v201_rig)."""

from __future__ import annotations

from pathlib import Path

from hal.interfaces import PilotState
from tests.unit.aio import until
from tests.unit.v201_rig import station_201

TAG = "04A1B2C3D4E5F6"


async def test_a_tap_then_plug_starts_and_an_unplug_ends(tmp_path: Path) -> None:
    async with station_201(tmp_path) as rig:
        rig.backend.plant.present_token(TAG, 1)
        authorize = await rig.log.wait_for("Authorize")
        assert authorize == {"idToken": {"idToken": TAG, "type": "ISO14443"}}
        rig.plug(1)
        started = await rig.event("Started")
        assert started["triggerReason"] == "Authorized"
        assert started["evse"] == {"id": 1, "connectorId": 1}
        assert started["idToken"]["idToken"] == TAG
        await rig.wait_relay(1, True)
        occupied = await rig.log.wait_for(
            "StatusNotification", lambda p: p["connectorStatus"] == "Occupied"
        )
        assert occupied["evseId"] == 1
        rig.plug(1, PilotState.A)
        ended = await rig.event("Ended")
        assert ended["transactionInfo"]["stoppedReason"] == "EVDisconnected"
        assert (
            ended["transactionInfo"]["transactionId"] == started["transactionInfo"]["transactionId"]
        )
        assert ended["seqNo"] > started["seqNo"] == 0
        await rig.wait_relay(1, False)


async def test_remote_start_carries_its_id_and_remote_stop_ends_it(tmp_path: Path) -> None:
    async with station_201(tmp_path) as rig:
        answer = await rig.log.call(
            "RequestStartTransaction",
            {"evseId": 2, "remoteStartId": 42, "idToken": {"idToken": TAG, "type": "Central"}},
        )
        assert answer == {"status": "Accepted"}
        rig.plug(2)
        started = await rig.event("Started")
        assert started["triggerReason"] == "RemoteStart"
        assert started["transactionInfo"]["remoteStartId"] == 42
        assert started["evse"] == {"id": 2, "connectorId": 1}
        await rig.wait_relay(2, True)
        tx_id = started["transactionInfo"]["transactionId"]
        status = await rig.log.call("GetTransactionStatus", {"transactionId": tx_id})
        assert status["ongoingIndicator"] is True
        # Unlocking under a running session is refused, not a way to end it (F05.FR.02).
        unlock = await rig.log.call("UnlockConnector", {"evseId": 2, "connectorId": 1})
        assert unlock == {"status": "OngoingAuthorizedTransaction"}
        assert await rig.log.call("RequestStopTransaction", {"transactionId": "nope-1"}) == {
            "status": "Rejected"
        }
        answer = await rig.log.call("RequestStopTransaction", {"transactionId": tx_id})
        assert answer == {"status": "Accepted"}
        ended = await rig.event("Ended")
        assert ended["triggerReason"] == "RemoteStop"
        assert ended["transactionInfo"]["stoppedReason"] == "Remote"
        await rig.wait_relay(2, False)
        await until(rig.outbox.is_empty, timeout_s=10)
        status = await rig.log.call("GetTransactionStatus", {"transactionId": tx_id})
        assert status == {"ongoingIndicator": False, "messagesInQueue": False}
        assert await rig.log.call("GetTransactionStatus", {}) == {"messagesInQueue": False}


async def test_a_remote_start_the_station_cannot_take_is_rejected(tmp_path: Path) -> None:
    async with station_201(tmp_path) as rig:
        token = {"idToken": TAG, "type": "Central"}
        unknown_evse = {"evseId": 9, "remoteStartId": 1, "idToken": token}
        assert await rig.log.call("RequestStartTransaction", unknown_evse) == {"status": "Rejected"}
        two_schedules = {
            "evseId": 1,
            "remoteStartId": 2,
            "idToken": token,
            "chargingProfile": {
                "id": 1,
                "stackLevel": 0,
                "chargingProfilePurpose": "TxProfile",
                "chargingProfileKind": "Relative",
                "chargingSchedule": [
                    {
                        "id": n,
                        "chargingRateUnit": "A",
                        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 10.0}],
                    }
                    for n in (1, 2)
                ],
            },
        }
        assert await rig.log.call("RequestStartTransaction", two_schedules) == {
            "status": "Rejected"
        }
        assert rig.log.calls("TransactionEvent") == []


async def test_availability_of_the_station_an_evse_and_a_connector(tmp_path: Path) -> None:
    async with station_201(tmp_path) as rig:
        inoperative = {"operationalStatus": "Inoperative"}
        answer = await rig.log.call("ChangeAvailability", {**inoperative, "evse": {"id": 2}})
        assert answer == {"status": "Accepted"}
        await rig.log.wait_for(
            "StatusNotification",
            lambda p: p["evseId"] == 2 and p["connectorStatus"] == "Unavailable",
        )
        assert await rig.log.call("ChangeAvailability", {**inoperative, "evse": {"id": 9}}) == {
            "status": "Rejected"
        }
        assert await rig.log.call(
            "ChangeAvailability", {**inoperative, "evse": {"id": 1, "connectorId": 2}}
        ) == {"status": "Rejected"}
        # A session on EVSE 1: the change waits for its end.
        rig.backend.plant.present_token(TAG, 1)
        rig.plug(1)
        await rig.event("Started")
        answer = await rig.log.call(
            "ChangeAvailability", {**inoperative, "evse": {"id": 1, "connectorId": 1}}
        )
        assert answer == {"status": "Scheduled"}
        rig.plug(1, PilotState.A)
        await rig.event("Ended")
        await rig.log.wait_for(
            "StatusNotification",
            lambda p: p["evseId"] == 1 and p["connectorStatus"] == "Unavailable",
        )
        # The whole station back in service.
        answer = await rig.log.call("ChangeAvailability", {"operationalStatus": "Operative"})
        assert answer == {"status": "Accepted"}
        for evse in (1, 2):
            await rig.log.wait_for(
                "StatusNotification",
                lambda p, evse=evse: p["evseId"] == evse and p["connectorStatus"] == "Available",
            )


async def test_unlock_clear_cache_and_data_transfer(tmp_path: Path) -> None:
    async with station_201(tmp_path) as rig:
        assert await rig.log.call("UnlockConnector", {"evseId": 1, "connectorId": 1}) == {
            "status": "Unlocked"
        }
        assert await rig.log.call("UnlockConnector", {"evseId": 3, "connectorId": 1}) == {
            "status": "UnknownConnector"
        }
        assert await rig.log.call("ClearCache", {}) == {"status": "Accepted"}
        assert await rig.log.call("DataTransfer", {"vendorId": "com.example"}) == {
            "status": "UnknownVendorId"
        }
