"""What the bench expects from a station and sends to it, in each OCPP version.

The scenarios speak one language, the bench's: a connector's status in 1.6 words
(Preparing, Charging, ...), a session with its transaction id, meter start and
idTag, a stop with its reason and meter stop, a setting by its 1.6 key name. A
:class:`Wire` turns that into the messages of the version the run speaks and
reads the station's messages back into it, so one scenario body serves both:

- a connector's status: 1.6 StatusNotification ``connectorId``, ``status``,
  ``errorCode``; 2.0.1 StatusNotification ``evseId``, ``connectorId``,
  ``connectorStatus`` (no error code); the station as a whole: 1.6 connector 0,
  none in 2.0.1;
- a session starts: StartTransaction, its transactionId from the CSMS's answer;
  TransactionEvent Started, with the station's own transactionId;
- energy flows: MeterValues of the transaction; TransactionEvent Updated;
- a session stops: StopTransaction ``reason``, ``meterStop``; TransactionEvent
  Ended ``stoppedReason`` and its Transaction.End reading;
- remote start and stop: RemoteStartTransaction, RemoteStopTransaction;
  RequestStartTransaction (``remoteStartId``), RequestStopTransaction;
- a setting: Get/ChangeConfiguration; Get/SetVariables (:data:`SETTINGS_201`);
- a reset: Reset Soft or Hard; Reset Immediate.

The bench's connector N is, in 2.0.1, connector 1 of EVSE N.

What 2.0.1 cannot say, the bench does not pretend to check: its StatusNotification
has no error code and reports Preparing, Charging, SuspendedEV, SuspendedEVSE and
Finishing all as Occupied, a change among them sending nothing. A wait for one of
them is met by the connector being Occupied, with the contactor closed for
Charging and open for SuspendedEVSE (what the 1.6 status would have said about
it, read through the plant). A lock failure must come with the NotifyEvent that
OCPP 2.0.1 G05 asks for.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

from hil.csms import StationLog
from hil.results import ScenarioFailed
from hil.versions import V16, V201

__all__ = [
    "SETTINGS_201",
    "Session",
    "Status",
    "Stop",
    "Wire",
    "wire_for",
]

Payload = dict[str, Any]
Call = Callable[[str, Payload], Awaitable[Payload]]
Predicate = Callable[[Payload], bool]

ENERGY: Final = "Energy.Active.Import.Register"
OCCUPIED: Final = "Occupied"
# The 2.0.1 ConnectorStatus of each 1.6 connector status (OCPP 2.0.1 Part 2, G01: the
# five statuses of a connector in use are Occupied).
CONNECTOR_STATUS_201: Final = {
    "Available": "Available",
    "Preparing": OCCUPIED,
    "Charging": OCCUPIED,
    "SuspendedEV": OCCUPIED,
    "SuspendedEVSE": OCCUPIED,
    "Finishing": OCCUPIED,
    "Reserved": "Reserved",
    "Unavailable": "Unavailable",
    "Faulted": "Faulted",
}
# The contactor in the 1.6 statuses that say it (2.0.1 says Occupied for both).
CONTACTOR_OF: Final = {"Charging": True, "SuspendedEVSE": False}
# The bench's settings (1.6 key names) as 2.0.1 device model variables.
SETTINGS_201: Final = {
    "HeartbeatInterval": ("OCPPCommCtrlr", "HeartbeatInterval"),
    "MeterValueSampleInterval": ("SampledDataCtrlr", "TxUpdatedInterval"),
    "AllowOfflineTxForUnknownId": ("AuthCtrlr", "OfflineTxForUnknownIdEnabled"),
}
# triggerReasons OCPP 2.0.1 gives for the event that completes a local start, and for
# the Ended event of each stoppedReason the scenarios expect.
LOCAL_START_TRIGGERS: Final = frozenset(
    {"Authorized", "CablePluggedIn", "EVDetected", "ChargingStateChanged"}
)
ENDED_TRIGGERS: Final = {
    "Local": frozenset({"StopAuthorized"}),
    "Remote": frozenset({"RemoteStop"}),
    "EVDisconnected": frozenset({"EVCommunicationLost", "EVDeparted"}),
    "PowerLoss": frozenset({"AbnormalCondition"}),
    "EmergencyStop": frozenset({"AbnormalCondition"}),
}
SAMPLE_TRIGGERS: Final = frozenset({"MeterValuePeriodic", "MeterValueClock"})
# A bench card is an RFID card's UID (OCPP 2.0.1 IdTokenEnumType).
TOKEN_TYPE: Final = "ISO14443"
UNKNOWN_TRANSACTION_201: Final = "hil-no-such-transaction"


@dataclass(frozen=True, slots=True)
class Status:
    """One StatusNotification in the bench's words."""

    connector: int | None  # the bench's connector (0: the station); None: not one of them
    status: str  # as the version says it (2.0.1: connectorStatus)
    error_code: str | None  # 1.6 errorCode; None in 2.0.1, which has none
    payload: Payload

    def __str__(self) -> str:
        return self.status if self.error_code is None else f"{self.status}/{self.error_code}"


@dataclass(frozen=True, slots=True)
class Session:
    """A transaction as the CSMS learnt of it."""

    start: Payload  # StartTransaction / TransactionEvent Started
    transaction_id: int | str
    id_tag: str
    connector: int | None
    meter_start: float  # Wh
    timestamp: str


@dataclass(frozen=True, slots=True)
class Stop:
    """The end of a transaction as the CSMS learnt of it."""

    payload: Payload  # StopTransaction / TransactionEvent Ended
    reason: str
    meter_stop: float  # Wh
    id_tag: str | None
    timestamp: str


class Wire(abc.ABC):
    """One OCPP version, as the bench uses it (see the module docstring)."""

    version: str
    station_status: bool  # a status of the station as a whole exists (1.6 connector 0)
    error_codes: bool  # StatusNotification carries an error code
    units: str  # what the station's count of connectors counts

    # ------------------------------------------------------------ statuses

    @abc.abstractmethod
    def status(self, payload: Payload) -> Status: ...

    def status_word(self, status: str) -> str:
        """How this version says the 1.6 status ``status``."""
        return status

    def silent(self, status: str) -> bool:
        """Whether reaching ``status`` may send no StatusNotification (it reads the same)."""
        return False

    def contactor_in(self, status: str) -> bool | None:
        """The contactor a wait for ``status`` must also see (None: the status says it)."""
        return None

    def fault_report(self, error_code: str, connector: int) -> tuple[str, Predicate] | None:
        """The CALL that must report a fault this version's status cannot name."""
        return None

    # ------------------------------------------------------------ sessions

    @abc.abstractmethod
    def authorizes(self, payload: Payload, tag: str) -> bool:
        """Whether an Authorize request asks about the card ``tag`` (a UID) and nothing else."""

    start_action: str
    sample_action: str
    stop_action: str

    @abc.abstractmethod
    def is_start(self, payload: Payload) -> bool: ...

    @abc.abstractmethod
    def start_tag(self, payload: Payload) -> str | None: ...

    @abc.abstractmethod
    async def transaction_id(self, log: StationLog, start: Payload, timeout: float) -> int | str:
        """The id the CSMS knows the transaction of ``start`` by."""

    @abc.abstractmethod
    def session(self, start: Payload, transaction_id: int | str) -> Session: ...

    def start_problems(self, session: Session, remote_start_id: int | None) -> list[str]:
        return []

    @abc.abstractmethod
    def sample_energy(self, payload: Payload, session: Session) -> float | None:
        """The energy register (Wh) of a sample of ``session``; None: not one."""

    @abc.abstractmethod
    def is_stop(self, payload: Payload, session: Session) -> bool: ...

    @abc.abstractmethod
    def stop(self, payload: Payload) -> Stop: ...

    def stop_problems(self, sent: list[Payload], session: Session, stop: Stop) -> list[str]:
        """What is wrong with how ``session`` was reported, ``sent`` being every
        :attr:`stop_action` CALL the station sent so far."""
        return []

    def offline_problems(self, session: Session, stop: Stop) -> list[str]:
        """What is wrong with how a session that ran offline was reported."""
        return []

    @abc.abstractmethod
    def starts(self, log: StationLog) -> int:
        """How many transactions the station has started so far."""

    @abc.abstractmethod
    def open_transactions(self, log: StationLog) -> list[int | str]:
        """Transactions the CSMS knows that have not ended."""

    # ------------------------------------------------------------ CSMS → station

    @abc.abstractmethod
    def remote_start(
        self, connector: int, tag: str, remote_start_id: int
    ) -> tuple[str, Payload]: ...

    @abc.abstractmethod
    def remote_stop(self, transaction_id: int | str) -> tuple[str, Payload]: ...

    @abc.abstractmethod
    def unknown_transaction(self, transaction_id: int | str) -> int | str:
        """A transaction id the station does not have."""

    @abc.abstractmethod
    def reset(self, kind: str) -> Payload:
        """The Reset request for a 1.6 ``kind`` (Soft, Hard)."""

    @abc.abstractmethod
    async def read_setting(self, call: Call, key: str) -> str | None: ...

    @abc.abstractmethod
    async def write_setting(self, call: Call, key: str, value: str) -> str:
        """Set ``key``; returns the station's status word (Accepted, Rejected, ...)."""

    @abc.abstractmethod
    async def connector_count(self, call: Call) -> int: ...

    @abc.abstractmethod
    def boot_connectors(self, count: int) -> range:
        """The connectors that report a status after a boot."""

    @abc.abstractmethod
    def boot_identity(self, boot: Payload) -> str: ...

    def boot_problems(self, boot: Payload, reset: bool) -> list[str]:
        return []


# ---------------------------------------------------------------- OCPP 1.6


class Wire16(Wire):
    version = V16
    station_status = True
    error_codes = True
    units = "connector(s)"
    start_action = "StartTransaction"
    sample_action = "MeterValues"
    stop_action = "StopTransaction"

    def status(self, payload: Payload) -> Status:
        return Status(payload["connectorId"], payload["status"], payload.get("errorCode"), payload)

    def authorizes(self, payload: Payload, tag: str) -> bool:
        return payload == {"idTag": tag}

    def is_start(self, payload: Payload) -> bool:
        return True

    def start_tag(self, payload: Payload) -> str | None:
        return str(payload["idTag"])

    async def transaction_id(self, log: StationLog, start: Payload, timeout: float) -> int:
        answer = await log.wait_answer("StartTransaction", start, timeout=timeout)
        if answer[0] != 3:
            raise ScenarioFailed(f"StartTransaction was answered with {answer}")
        return int(answer[2]["transactionId"])

    def session(self, start: Payload, transaction_id: int | str) -> Session:
        return Session(
            start,
            transaction_id,
            str(start["idTag"]),
            start["connectorId"],
            float(start["meterStart"]),
            str(start["timestamp"]),
        )

    def sample_energy(self, payload: Payload, session: Session) -> float | None:
        if payload.get("transactionId") != session.transaction_id:
            return None
        return _energy(payload["meterValue"], unit_key="unit")

    def is_stop(self, payload: Payload, session: Session) -> bool:
        return bool(payload["transactionId"] == session.transaction_id)

    def stop(self, payload: Payload) -> Stop:
        return Stop(
            payload,
            # StopTransaction without a reason means Local (OCPP 1.6, 6.49).
            str(payload.get("reason", "Local")),
            float(payload["meterStop"]),
            payload.get("idTag"),
            str(payload["timestamp"]),
        )

    def starts(self, log: StationLog) -> int:
        return len(log.calls("StartTransaction"))

    def open_transactions(self, log: StationLog) -> list[int | str]:
        stopped = {p["transactionId"] for p in log.calls("StopTransaction")}
        starts: list[Any] = []
        answers: dict[Any, Any] = {}
        for frame in log.frames:
            msg = frame.message
            if not msg or len(msg) < 3 or not isinstance(msg[1], str):
                continue
            if frame.direction == "in" and msg[0] == 2 and msg[2] == "StartTransaction":
                starts.append(msg[1])
            elif frame.direction == "out" and msg[0] == 3:
                answers[msg[1]] = msg[2]
        started = [answers[uid]["transactionId"] for uid in starts if uid in answers]
        return [int(t) for t in started if t not in stopped]

    def remote_start(self, connector: int, tag: str, remote_start_id: int) -> tuple[str, Payload]:
        return "RemoteStartTransaction", {"connectorId": connector, "idTag": tag}

    def remote_stop(self, transaction_id: int | str) -> tuple[str, Payload]:
        return "RemoteStopTransaction", {"transactionId": transaction_id}

    def unknown_transaction(self, transaction_id: int | str) -> int:
        return int(transaction_id) + 100_000

    def reset(self, kind: str) -> Payload:
        return {"type": kind}

    async def read_setting(self, call: Call, key: str) -> str | None:
        got = await call("GetConfiguration", {"key": [key]})
        known = {k["key"]: k.get("value") for k in got.get("configurationKey", [])}
        value = known.get(key)
        return None if value is None else str(value)

    async def write_setting(self, call: Call, key: str, value: str) -> str:
        answer = await call("ChangeConfiguration", {"key": key, "value": value})
        return str(answer["status"])

    async def connector_count(self, call: Call) -> int:
        return int(await self.read_setting(call, "NumberOfConnectors") or 1)

    def boot_connectors(self, count: int) -> range:
        return range(count + 1)  # connector 0, the station, first

    def boot_identity(self, boot: Payload) -> str:
        keys = ("chargePointVendor", "chargePointModel", "firmwareVersion")
        return " ".join(str(boot[k]) for k in keys if k in boot)


# ---------------------------------------------------------------- OCPP 2.0.1


def _variable(component: str, variable: str, **evse: int) -> Payload:
    where: Payload = {"name": component}
    if evse:
        where["evse"] = evse
    return {"component": where, "variable": {"name": variable}}


class Wire201(Wire):
    version = V201
    station_status = False
    error_codes = False
    units = "EVSE(s)"
    start_action = sample_action = stop_action = "TransactionEvent"

    def status(self, payload: Payload) -> Status:
        # The bench's connector N is connector 1 of EVSE N.
        connector = payload["evseId"] if payload["connectorId"] == 1 else None
        return Status(connector, payload["connectorStatus"], None, payload)

    def status_word(self, status: str) -> str:
        return CONNECTOR_STATUS_201.get(status, status)

    def silent(self, status: str) -> bool:
        return self.status_word(status) == OCCUPIED

    def contactor_in(self, status: str) -> bool | None:
        return CONTACTOR_OF.get(status)

    def fault_report(self, error_code: str, connector: int) -> tuple[str, Predicate] | None:
        if error_code != "ConnectorLockFailure":
            return None

        def lock_problem(payload: Payload) -> bool:
            return any(
                e["component"]["name"] == "ConnectorPlugRetentionLock"
                and e["component"].get("evse", {}).get("id") == connector
                and e["variable"]["name"] == "Problem"
                and e["actualValue"] == "true"
                for e in payload["eventData"]
            )

        return "NotifyEvent", lock_problem

    def authorizes(self, payload: Payload, tag: str) -> bool:
        return payload == {"idToken": {"idToken": tag, "type": TOKEN_TYPE}}

    def is_start(self, payload: Payload) -> bool:
        return bool(payload["eventType"] == "Started")

    def start_tag(self, payload: Payload) -> str | None:
        token = payload.get("idToken")
        return str(token["idToken"]) if isinstance(token, dict) else None

    async def transaction_id(self, log: StationLog, start: Payload, timeout: float) -> str:
        return str(start["transactionInfo"]["transactionId"])

    def session(self, start: Payload, transaction_id: int | str) -> Session:
        begin = _energy(start.get("meterValue", []), context="Transaction.Begin")
        if begin is None:
            raise ScenarioFailed(
                f"TransactionEvent Started without an {ENERGY} reading (Transaction.Begin): {start}"
            )
        evse = start.get("evse", {})
        return Session(
            start,
            transaction_id,
            self.start_tag(start) or "",
            evse.get("id") if evse.get("connectorId", 1) == 1 else None,
            begin,
            str(start["timestamp"]),
        )

    def start_problems(self, session: Session, remote_start_id: int | None) -> list[str]:
        start = session.start
        problems = []
        trigger = start["triggerReason"]
        info = start["transactionInfo"]
        if remote_start_id is None:
            if trigger not in LOCAL_START_TRIGGERS:
                problems.append(f"Started with triggerReason {trigger} for a local start")
        else:
            if trigger != "RemoteStart":
                problems.append(f"Started with triggerReason {trigger}, not RemoteStart")
            if info.get("remoteStartId") != remote_start_id:
                problems.append(
                    f"Started with remoteStartId {info.get('remoteStartId')}, not {remote_start_id}"
                )
        return problems

    def _of(self, payload: Payload, session: Session) -> bool:
        return bool(payload["transactionInfo"]["transactionId"] == session.transaction_id)

    def sample_energy(self, payload: Payload, session: Session) -> float | None:
        if payload["eventType"] != "Updated" or not self._of(payload, session):
            return None
        if payload["triggerReason"] not in SAMPLE_TRIGGERS:
            return None
        return _energy(payload.get("meterValue", []))

    def is_stop(self, payload: Payload, session: Session) -> bool:
        return payload["eventType"] == "Ended" and self._of(payload, session)

    def stop(self, payload: Payload) -> Stop:
        readings = payload.get("meterValue", [])
        end = _energy(readings, context="Transaction.End")
        if end is None:
            end = _energy(reversed(readings))
        if end is None:
            raise ScenarioFailed(f"TransactionEvent Ended without an {ENERGY} reading: {payload}")
        token = payload.get("idToken")
        return Stop(
            payload,
            # stoppedReason absent means Local (OCPP 2.0.1 TransactionType).
            str(payload["transactionInfo"].get("stoppedReason", "Local")),
            end,
            str(token["idToken"]) if isinstance(token, dict) else None,
            str(payload["timestamp"]),
        )

    def stop_problems(self, sent: list[Payload], session: Session, stop: Stop) -> list[str]:
        problems = []
        allowed = ENDED_TRIGGERS.get(stop.reason)
        trigger = stop.payload["triggerReason"]
        if allowed is not None and trigger not in allowed:
            problems.append(
                f"Ended ({stop.reason}) with triggerReason {trigger}, not "
                f"{' or '.join(sorted(allowed))}"
            )
        events = [e for e in sent if self._of(e, session)]
        order: list[int] = []  # each seqNo once, as it first arrived (a resend repeats one)
        for event in events:
            if event["seqNo"] not in order:
                order.append(event["seqNo"])
        first = session.start["seqNo"]
        if order != list(range(first, first + len(order))):
            problems.append(f"seqNo of the transaction's events, in arrival order: {order}")
        last = stop.payload["seqNo"]
        if order and order[-1] != last:
            problems.append(f"Ended has seqNo {last}, not the last of {order}")
        types = [e["eventType"] for e in events]
        if types.count("Started") != 1 or types.index("Started") != 0:
            problems.append(f"the transaction's events: {types}")
        return problems

    def offline_problems(self, session: Session, stop: Stop) -> list[str]:
        return [
            f"{name} event of a session run offline without offline=true"
            for name, event in (("Started", session.start), ("Ended", stop.payload))
            if event.get("offline") is not True
        ]

    def starts(self, log: StationLog) -> int:
        return sum(1 for p in log.calls("TransactionEvent") if p["eventType"] == "Started")

    def open_transactions(self, log: StationLog) -> list[int | str]:
        seen: list[int | str] = []
        ended = set()
        for event in log.calls("TransactionEvent"):
            transaction_id = event["transactionInfo"]["transactionId"]
            if transaction_id not in seen:
                seen.append(transaction_id)
            if event["eventType"] == "Ended":
                ended.add(transaction_id)
        return [t for t in seen if t not in ended]

    def remote_start(self, connector: int, tag: str, remote_start_id: int) -> tuple[str, Payload]:
        return "RequestStartTransaction", {
            "evseId": connector,
            "remoteStartId": remote_start_id,
            "idToken": {"idToken": tag, "type": TOKEN_TYPE},
        }

    def remote_stop(self, transaction_id: int | str) -> tuple[str, Payload]:
        return "RequestStopTransaction", {"transactionId": str(transaction_id)}

    def unknown_transaction(self, transaction_id: int | str) -> str:
        return UNKNOWN_TRANSACTION_201

    def reset(self, kind: str) -> Payload:
        return {"type": "Immediate"}  # 2.0.1 has no Soft or Hard

    async def read_setting(self, call: Call, key: str) -> str | None:
        component, variable = SETTINGS_201[key]
        got = await call("GetVariables", {"getVariableData": [_variable(component, variable)]})
        result = got["getVariableResult"][0]
        if result["attributeStatus"] != "Accepted":
            return None
        value = result.get("attributeValue")
        return None if value is None else str(value)

    async def write_setting(self, call: Call, key: str, value: str) -> str:
        component, variable = SETTINGS_201[key]
        data = {**_variable(component, variable), "attributeValue": value}
        answer = await call("SetVariables", {"setVariableData": [data]})
        return str(answer["setVariableResult"][0]["attributeStatus"])

    async def connector_count(self, call: Call) -> int:
        """The EVSEs the device model knows (EVSE n's AvailabilityState, n = 1, 2, ...)."""
        count, batch = 0, 8
        while True:
            ids = range(count + 1, count + batch + 1)
            asked = [_variable("EVSE", "AvailabilityState", id=n) for n in ids]
            got = await call("GetVariables", {"getVariableData": asked})
            known = {
                r["component"]["evse"]["id"]
                for r in got["getVariableResult"]
                if r["attributeStatus"] == "Accepted" and "evse" in r["component"]
            }
            for n in ids:
                if n not in known:
                    return count
                count = n

    def boot_connectors(self, count: int) -> range:
        return range(1, count + 1)  # no status of the station as a whole

    def boot_identity(self, boot: Payload) -> str:
        station = boot["chargingStation"]
        keys = ("vendorName", "model", "firmwareVersion")
        what = " ".join(str(station[k]) for k in keys if k in station)
        return f"{what} (reason {boot['reason']})"

    def boot_problems(self, boot: Payload, reset: bool) -> list[str]:
        if reset and boot["reason"] != "RemoteReset":
            return [f"BootNotification after a Reset with reason {boot['reason']}, not RemoteReset"]
        return []


def _energy(
    meter_values: Iterable[Payload], *, context: str | None = None, unit_key: str | None = None
) -> float | None:
    """The first energy register reading (Wh) of the whole station side (no phase) among
    ``meter_values`` (of ``context`` if given; 2.0.1 by default, 1.6 with ``unit_key``)."""
    for entry in meter_values:
        for value in entry["sampledValue"]:
            if value.get("measurand", ENERGY) != ENERGY or "phase" in value:
                continue
            if context is not None and value.get("context") != context:
                continue
            if unit_key is not None:  # 1.6: "unit", the value a string
                unit, multiplier = value.get(unit_key, "Wh"), 0
            else:
                measure = value.get("unitOfMeasure", {})
                unit, multiplier = measure.get("unit", "Wh"), measure.get("multiplier", 0)
            scale = 1000.0 if unit == "kWh" else 1.0
            return float(value["value"]) * scale * 10.0 ** int(multiplier)
    return None


WIRES: Final[dict[str, Wire]] = {V16: Wire16(), V201: Wire201()}


def wire_for(version: str) -> Wire:
    try:
        return WIRES[version]
    except KeyError:
        raise ValueError(f"the bench speaks OCPP {' and '.join(WIRES)}, not {version!r}") from None
