"""The station's transactions as OCPP 2.0.1 TransactionEvent requests (E01-E15).

``V201Journal`` is ``firmware.connector.journal.TransactionJournal`` in 2.0.1
words, queued durably in the outbox (version 2.0.1) in the database transaction
of the state change it reports:

- ``started``: eventType Started with the token, the EVSE and connector, the
  meter start (context Transaction.Begin) and the reservation;
- ``sampled``: Updated, triggerReason MeterValuePeriodic or MeterValueClock;
- ``ended``: Ended with stoppedReason, the samples kept for the end (the
  SampledDataCtrlr/AlignedDataCtrlr TxEnded measurands, the Transaction.Begin and
  Transaction.End readings among them) and the meter stop (context
  Transaction.End) unless a kept sample already has it;
- ``outside``: a clock-aligned sample of an EVSE without a transaction, as a
  MeterValues request sent while online and never queued (J01).

The transactionId is the station's own, known from the start: a prefix drawn
once per database and the transaction's local number (``"3f9a0c2e-17"``), so a
replaced database never reuses an id the CSMS has seen. The station's core
knows a transaction by that local number, which is also what it keeps as the
id the CSMS knows (``csms_id``) once the Started event is answered. seqNo
counts the events of a transaction from 0, persisted and advanced with the
event it numbers, so a restart continues the count. ``offline`` is true on an
event that happened while the station was not registered with the CSMS
(E04.FR.02).

The moment a transaction starts and ends is the core's, following TxStartPoint and
TxStopPoint (``firmware.connector.controller``); the changes in between it reports
(``authorized``: the token of a transaction the EV started; ``changed``: the EV
plugged in or left, the authorization ended) are Updated events whose
triggerReason says what happened.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from firmware.auth.cache import IdTagInfo
from firmware.clock import iso
from firmware.connector.journal import TxChange
from firmware.connector.transactions import TransactionStore, TxRecord
from firmware.metering import ENERGY, Sample, meter_value, sampled_values
from firmware.ocpp.v201.device_model.topology import Topology
from firmware.ocpp.versions import V201
from firmware.queue import Outbox
from firmware.station import Station
from firmware.storage.db import Database

log = logging.getLogger("firmware.ocpp.transactions")

ACTION = "TransactionEvent"

# The station's stop reasons (OCPP 1.6 words) as 2.0.1 stoppedReason and the
# triggerReason of the Ended event.
STOPPED_REASON = {
    "DeAuthorized": "DeAuthorized",
    "EmergencyStop": "EmergencyStop",
    "EVDisconnected": "EVDisconnected",
    "HardReset": "ImmediateReset",
    "SoftReset": "ImmediateReset",
    "Local": "Local",
    "Other": "Other",
    "PowerLoss": "PowerLoss",
    "Reboot": "Reboot",
    "Remote": "Remote",
    "UnlockCommand": "Other",
    "MasterPass": "MasterPass",
    "Timeout": "Timeout",
}
ENDED_TRIGGER = {
    "DeAuthorized": "Deauthorized",
    "EmergencyStop": "AbnormalCondition",
    "EVDisconnected": "EVCommunicationLost",
    "HardReset": "ResetCommand",
    "SoftReset": "ResetCommand",
    "Local": "StopAuthorized",
    "Other": "AbnormalCondition",
    "PowerLoss": "AbnormalCondition",
    "Reboot": "ResetCommand",
    "Remote": "RemoteStop",
    "UnlockCommand": "UnlockCommand",
    "MasterPass": "StopAuthorized",
    "Timeout": "EVConnectTimeout",
}
# A change within a transaction (TxChange) as the triggerReason of its Updated event; an
# ended authorization takes the Ended event's trigger of its reason.
CHANGE_TRIGGER = {
    TxChange.EV_CONNECTED: "CablePluggedIn",
    TxChange.EV_DISCONNECTED: "EVCommunicationLost",
}
AUTHORIZING = frozenset({"Authorized", "RemoteStart"})
# The connector's status (the station's words) as the chargingState of a transaction with
# a vehicle plugged in (any other: EVConnected; without one: Idle).
CHARGING_STATES = {
    "Charging": "Charging",
    "SuspendedEV": "SuspendedEV",
    "SuspendedEVSE": "SuspendedEVSE",
}
# Statuses that say nothing of the charging state.
NO_CHARGING_STATE = frozenset({"Faulted", "Unavailable"})
SAMPLE_TRIGGER = {"Sample.Periodic": "MeterValuePeriodic", "Sample.Clock": "MeterValueClock"}
# The id token type of an id the station got as a plain string (an RFID card's UID).
DEFAULT_TOKEN_TYPE = "ISO14443"
# 1.6 idTagInfo statuses; 2.0.1's other ones (NoCredit, NotAtThisLocation, ...) are kept
# as they are and count as not accepted.


def sampled_value(entry: dict[str, Any]) -> dict[str, Any]:
    """A 1.6-shaped sampledValue (``firmware.metering``) as a 2.0.1 SampledValueType."""
    out: dict[str, Any] = {"value": float(entry["value"])}
    for key in ("context", "measurand", "phase", "location"):
        if key in entry:
            out[key] = entry[key]
    if "unit" in entry:
        out["unitOfMeasure"] = {"unit": entry["unit"]}
    return out


def meter_values(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """1.6-shaped meterValue entries as 2.0.1 MeterValueType entries."""
    return [
        {"timestamp": e["timestamp"], "sampledValue": [sampled_value(v) for v in e["sampledValue"]]}
        for e in entries
        if e["sampledValue"]
    ]


def _register(at: datetime, wh: int, context: str) -> dict[str, Any]:
    return {
        "timestamp": iso(at),
        "sampledValue": [
            {
                "value": float(wh),
                "context": context,
                "measurand": ENERGY,
                "location": "Outlet",
                "unitOfMeasure": {"unit": "Wh"},
            }
        ],
    }


def id_token_info(info: dict[str, Any] | None) -> IdTagInfo:
    """A TransactionEvent answer's idTokenInfo in the station's words (none: Accepted)."""
    if info is None:
        return IdTagInfo("Accepted")
    converted: dict[str, Any] = {"status": info["status"]}
    if "cacheExpiryDateTime" in info:
        converted["expiryDate"] = info["cacheExpiryDateTime"]
    group = info.get("groupIdToken")
    if isinstance(group, dict) and isinstance(group.get("idToken"), str):
        converted["parentIdTag"] = group["idToken"]
    return IdTagInfo.from_payload(converted)


class TransactionNumbers:
    """The transactionId of each transaction and the seqNo of its next event."""

    def __init__(self, db: Database) -> None:
        self.db = db
        row = db.query_one("SELECT tx_prefix FROM v201_station WHERE id = 1")
        if row is None:
            prefix = secrets.token_hex(4)
            db.execute("INSERT INTO v201_station (id, tx_prefix) VALUES (1, ?)", (prefix,))
        else:
            prefix = str(row["tx_prefix"])
        self.prefix = prefix

    def transaction_id(self, local_id: int) -> str:
        return f"{self.prefix}-{local_id}"

    def local_id(self, transaction_id: str) -> int | None:
        """The local number of one of this station's transactionIds (None: not one)."""
        prefix, _, number = transaction_id.rpartition("-")
        if prefix != self.prefix or not number.isdigit():
            return None
        return int(number)

    def started(self, local_id: int) -> bool:
        """Whether a TransactionEvent of the transaction was written (it is a 2.0.1 one)."""
        row = self.db.query_one("SELECT 1 FROM v201_transactions WHERE local_id = ?", (local_id,))
        return row is not None

    def next_seq_no(self, local_id: int) -> int:
        """The seqNo of the transaction's next event, advanced (inside the caller's
        database transaction)."""
        row = self.db.query_one(
            "SELECT next_seq_no FROM v201_transactions WHERE local_id = ?", (local_id,)
        )
        seq_no = 0 if row is None else int(row["next_seq_no"])
        self.db.execute(
            "INSERT INTO v201_transactions (local_id, next_seq_no) VALUES (?, ?) "
            "ON CONFLICT (local_id) DO UPDATE SET next_seq_no = excluded.next_seq_no",
            (local_id, seq_no + 1),
        )
        return seq_no


class V201Journal:
    def __init__(
        self,
        outbox: Outbox,
        transactions: TransactionStore,
        numbers: TransactionNumbers,
        topology: Topology,
        *,
        online: Callable[[], bool],
        send: Callable[[str, dict[str, Any]], None],
        token_type: Callable[[str], str] = lambda _id: DEFAULT_TOKEN_TYPE,
        remote_start: Callable[[int, str], int | None] = lambda _connector, _id: None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.outbox = outbox
        self.transactions = transactions
        self.numbers = numbers
        self.topology = topology
        self.online = online
        self.send = send  # a 2.0.1 message that is not queued; dropped while offline
        self.token_type = token_type
        # The remoteStartId of a start the CSMS asked for (RequestStartTransaction).
        self.remote_start = remote_start
        self.clock = clock
        self._station: Station | None = None
        # The chargingState last sent for each running transaction (by local number).
        self._charging_state: dict[int, str] = {}

    def answers_to(self, station: Station) -> None:
        """The Started event's answer becomes the station's command; the others' idTokenInfo
        goes to the authorization cache as the station's rules say."""

        def replied(local_id: int | None, request: dict[str, Any], result: dict[str, Any]) -> None:
            if local_id is None:
                return
            info = id_token_info(result.get("idTokenInfo"))
            if request["eventType"] == "Started":
                station.start_answered(local_id, local_id, info)
            elif request["eventType"] == "Updated" and request["triggerReason"] in AUTHORIZING:
                # The answer to the token of a transaction the vehicle started.
                station.start_answered(local_id, local_id, info)
            elif request["eventType"] == "Ended":
                has_info = "idTokenInfo" in result
                station.stop_answered(local_id, info if has_info else None)

        self.outbox.on_reply(ACTION, replied)

    # ------------------------------------------------------------ the journal

    def started(self, record: TxRecord) -> int:
        if record.id_tag:
            payload = self._authorizing(record, "Started", record.started_at)
        else:  # the vehicle started it (TxStartPoint EVConnected): the token comes later
            payload = self._event(record, "Started", "CablePluggedIn", record.started_at)
        payload["meterValue"] = [
            _register(record.started_at, record.meter_start_wh, "Transaction.Begin")
        ]
        if record.reservation_id is not None:
            payload["reservationId"] = record.reservation_id
        return self.outbox.enqueue(ACTION, payload, record.local_id, version=V201)

    def _authorizing(self, record: TxRecord, event_type: str, at: datetime) -> dict[str, Any]:
        """An event that brings the transaction's token: triggerReason Authorized, or
        RemoteStart with the remoteStartId of a RequestStartTransaction."""
        remote_start_id = self.remote_start(record.connector_id, record.id_tag)
        trigger = "Authorized" if remote_start_id is None else "RemoteStart"
        payload = self._event(record, event_type, trigger, at)
        if remote_start_id is not None:
            payload["transactionInfo"]["remoteStartId"] = remote_start_id
        payload["idToken"] = self._token(record.id_tag)
        return payload

    def authorized(self, record: TxRecord, at: datetime) -> int:
        payload = self._authorizing(record, "Updated", at)
        return self.outbox.enqueue(ACTION, payload, record.local_id, version=V201)

    def changed(
        self,
        record: TxRecord,
        change: TxChange,
        at: datetime,
        reason: str | None = None,
        id_tag: str | None = None,
    ) -> None:
        if change is TxChange.DEAUTHORIZED:
            trigger = ENDED_TRIGGER.get(reason or "", "Deauthorized")
        else:
            trigger = CHANGE_TRIGGER[change]
        payload = self._event(record, "Updated", trigger, at)
        if id_tag is not None:
            payload["idToken"] = self._token(id_tag)
        self.outbox.enqueue(ACTION, payload, record.local_id, version=V201)

    async def answered(self, handle: int) -> bool:
        return await self.outbox.delivered(handle)

    def sampled(
        self, record: TxRecord, sample: Sample, measurands: list[str], context: str, at: datetime
    ) -> None:
        values = sampled_values(sample, measurands, context)
        if not values:
            return
        payload = self._event(record, "Updated", SAMPLE_TRIGGER.get(context, "Trigger"), at)
        payload["meterValue"] = meter_values([meter_value(at, values)])
        self.outbox.enqueue(ACTION, payload, record.local_id, version=V201)

    def kept(
        self, local_id: int, sample: Sample, measurands: list[str], context: str, at: datetime
    ) -> None:
        self.transactions.keep_sample(local_id, sample, measurands, context, at)

    def ended(
        self, record: TxRecord, meter_stop_wh: int, at: datetime, reason: str, id_tag: str | None
    ) -> None:
        payload = self._event(record, "Ended", ENDED_TRIGGER.get(reason, "AbnormalCondition"), at)
        payload["transactionInfo"]["stoppedReason"] = STOPPED_REASON.get(reason, "Other")
        if id_tag is not None:
            payload["idToken"] = self._token(id_tag)
        kept = meter_values(self.transactions.samples(record.local_id))
        end_kept = any(
            v.get("context") == "Transaction.End" and v.get("measurand") == ENERGY
            for entry in kept
            for v in entry["sampledValue"]
        )
        end = [] if end_kept else [_register(at, meter_stop_wh, "Transaction.End")]
        payload["meterValue"] = [*kept, *end]
        self.outbox.enqueue(ACTION, payload, record.local_id, version=V201)

    def outside(
        self, connector_id: int, sample: Sample, measurands: list[str], at: datetime
    ) -> None:
        values = sampled_values(sample, measurands, "Sample.Clock")
        if values:
            evse_id, _ = self.topology.address(connector_id)
            entries = meter_values([meter_value(at, values)])
            self.send("MeterValues", {"evseId": evse_id, "meterValue": entries})

    # ------------------------------------------------------------ charging state

    def follow_charging(self, station: Station) -> None:
        """Report each 2.0.1 transaction's chargingState: in its events, and with an
        Updated event (ChargingStateChanged) when the connector's status changes it."""
        self._station = station
        station.subscribe(self._status_changed)

    def charging_state(self, connector_id: int) -> str | None:
        """The chargingState of the transaction on ``connector_id``, from its status (None:
        a status that says nothing of it: Faulted, Unavailable)."""
        controller = self._station.connectors.get(connector_id) if self._station else None
        if controller is None or controller.status is None:
            return None
        status = controller.status.status
        if status in NO_CHARGING_STATE:
            return None
        if not controller.pilot.plugged:
            return "Idle"
        return CHARGING_STATES.get(status, "EVConnected")

    def _status_changed(self, connector_id: int, _status: Any) -> None:
        """A TransactionEvent Updated (ChargingStateChanged) when the chargingState of a
        2.0.1 transaction changes."""
        controller = self._station.connectors.get(connector_id) if self._station else None
        tx = controller.tx if controller is not None else None
        if tx is None or not self.numbers.started(tx.local_id):
            return
        state = self.charging_state(connector_id)
        if state is None or self._charging_state.get(tx.local_id) == state:
            return
        try:
            with self.outbox.db.transaction():
                payload = self._event(tx.record, "Updated", "ChargingStateChanged", None)
                self.outbox.enqueue(ACTION, payload, tx.local_id, version=V201)
        except Exception:
            log.exception("chargingState %s of transaction %d not reported", state, tx.local_id)

    # ------------------------------------------------------------ payloads

    def _event(
        self, record: TxRecord, event_type: str, trigger: str, at: datetime | None
    ) -> dict[str, Any]:
        """The event's common fields (``at`` None: now), with the chargingState of a
        transaction that goes on."""
        evse_id, connector_id = self.topology.address(record.connector_id)
        info: dict[str, Any] = {"transactionId": self.numbers.transaction_id(record.local_id)}
        state = self.charging_state(record.connector_id)
        if event_type == "Ended":
            self._charging_state.pop(record.local_id, None)
        elif state is not None:
            info["chargingState"] = state
            self._charging_state[record.local_id] = state
        payload: dict[str, Any] = {
            "eventType": event_type,
            "timestamp": iso(at if at is not None else self.clock()),
            "triggerReason": trigger,
            "seqNo": self.numbers.next_seq_no(record.local_id),
            "transactionInfo": info,
        }
        if event_type == "Started":
            payload["evse"] = {"id": evse_id, "connectorId": connector_id}
        if not self.online():
            payload["offline"] = True
        return payload

    def _token(self, id_tag: str) -> dict[str, Any]:
        return {"idToken": id_tag, "type": self.token_type(id_tag)}
