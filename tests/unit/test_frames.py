"""Frame parsing and the CALLERROR codes of OCPP-J 1.6 and 2.0.1 for bad frames and payloads."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware.ocpp import frames
from firmware.ocpp.errors import CALLERROR_CODES, ProtocolViolation, callerror_code


def test_parse_call_result_and_error() -> None:
    call = frames.parse('[2,"a1","Reset",{"type":"Soft"}]')
    assert call == frames.IncomingCall("a1", "Reset", {"type": "Soft"})
    assert frames.parse('[3,"a1",{}]') == frames.IncomingResult("a1", {})
    err = frames.parse('[4,"a1","NotImplemented","nope",{}]')
    assert isinstance(err, frames.IncomingError) and err.code == "NotImplemented"


@pytest.mark.parametrize(
    ("text", "answerable"),
    [
        ("not json", None),
        ("{}", None),
        ("[]", None),
        ('[9,"x"]', None),
        ('[2,"id-1","Reset"]', "id-1"),
        ('[2,"id-2",5,{}]', "id-2"),
        ('[2,17,"Reset",{}]', None),
        ('[3,"x"]', None),
        ('[4,"x",1,2]', None),
    ],
)
def test_malformed_frames_raise_frame_error(text: str, answerable: str | None) -> None:
    with pytest.raises(frames.FrameError) as info:
        frames.parse(text)
    assert info.value.unique_id == answerable
    assert info.value.code == "FormationViolation"


@pytest.mark.parametrize(
    ("action", "payload", "code"),
    [
        ("Reset", {}, "OccurenceConstraintViolation"),
        ("Reset", {"type": 3}, "TypeConstraintViolation"),
        ("Reset", {"type": "Sometimes"}, "PropertyConstraintViolation"),
        ("Reset", {"type": "Soft", "extra": 1}, "FormationViolation"),
        ("Reset", [], "FormationViolation"),
        ("RemoteStartTransaction", {"idTag": "X" * 21}, "TypeConstraintViolation"),
        (
            "ChangeAvailability",
            {"connectorId": "1", "type": "Operative"},
            "TypeConstraintViolation",
        ),
    ],
)
def test_schema_violations_map_to_16_codes(action: str, payload: object, code: str) -> None:
    with pytest.raises(ProtocolViolation) as info:
        frames.validate_call(action, payload)
    assert info.value.code == code


def test_valid_payloads_pass_including_decimal_schemas() -> None:
    frames.validate_call("Reset", {"type": "Hard"})
    profile = {
        "chargingProfileId": 1,
        "stackLevel": 0,
        "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Relative",
        "chargingSchedule": {
            "chargingRateUnit": "A",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 21.4}],
        },
    }
    frames.validate_call("RemoteStartTransaction", {"idTag": "T", "chargingProfile": profile})


def test_built_frames_round_trip() -> None:
    assert json.loads(frames.call_frame("1", "Heartbeat", {})) == [2, "1", "Heartbeat", {}]
    assert json.loads(frames.result_frame("1", {"a": 1})) == [3, "1", {"a": 1}]
    err = json.loads(frames.error_frame("1", "InternalError", "x" * 400))
    assert err[:3] == [4, "1", "InternalError"] and len(err[3]) == 255 and err[4] == {}


@given(st.text(max_size=300) | st.binary(max_size=300))
def test_parse_never_raises_anything_but_frame_error(data: str | bytes) -> None:
    with contextlib.suppress(frames.FrameError):
        frames.parse(data)


@given(st.dictionaries(st.text(max_size=10), st.integers() | st.text(max_size=5), max_size=4))
def test_validation_never_raises_anything_but_protocol_violation(
    payload: dict[str, object],
) -> None:
    try:
        frames.validate_call("ChangeConfiguration", payload)
    except ProtocolViolation as err:
        assert err.code in {
            "OccurenceConstraintViolation",
            "TypeConstraintViolation",
            "PropertyConstraintViolation",
            "FormationViolation",
        }


# ---------------------------------------------------------------- OCPP-J 2.0.1

V201_CODES = {
    "FormatViolation",
    "GenericError",
    "InternalError",
    "MessageTypeNotSupported",
    "NotImplemented",
    "NotSupported",
    "OccurrenceConstraintViolation",
    "PropertyConstraintViolation",
    "ProtocolError",
    "RpcFrameworkError",
    "SecurityError",
    "TypeConstraintViolation",
}


def test_the_callerror_codes_of_each_version() -> None:
    assert CALLERROR_CODES["2.0.1"] == V201_CODES  # Part 4 §4.3, as its table spells them
    assert {"FormationViolation", "OccurenceConstraintViolation"} <= CALLERROR_CODES["1.6"]
    assert not {"MessageTypeNotSupported", "RpcFrameworkError"} & CALLERROR_CODES["1.6"]


@pytest.mark.parametrize(
    ("code", "version", "sent"),
    [
        ("FormationViolation", "2.0.1", "FormatViolation"),
        ("OccurenceConstraintViolation", "2.0.1", "OccurrenceConstraintViolation"),
        ("OccurrenceConstraintViolation", "2.0.1", "OccurrenceConstraintViolation"),
        ("FormatViolation", "1.6", "FormationViolation"),
        ("OccurrenceConstraintViolation", "1.6", "OccurenceConstraintViolation"),
        ("OccurenceConstraintViolation", "1.6", "OccurenceConstraintViolation"),
        ("RpcFrameworkError", "1.6", "FormationViolation"),
        ("MessageTypeNotSupported", "1.6", "GenericError"),
        ("MadeUp", "2.0.1", "GenericError"),
        ("NotSupported", "2.0.1", "NotSupported"),
        ("PropertyConstraintViolation", "1.6", "PropertyConstraintViolation"),
    ],
)
def test_a_code_is_sent_as_the_version_names_it(code: str, version: str, sent: str) -> None:
    assert callerror_code(code, version) == sent


@pytest.mark.parametrize(
    ("text", "code", "answerable"),
    [
        ("not json", "RpcFrameworkError", None),
        ("{}", "RpcFrameworkError", None),
        ("[]", "RpcFrameworkError", None),
        (b"\xff\xfe", "RpcFrameworkError", None),
        # No CALLRESULTERROR (5) or SEND (6) in 2.0.1: answered, unlike 1.6.
        ('[5,"r1",{}]', "MessageTypeNotSupported", "r1"),
        ('[6,"s1","NotifyPeriodicEventStream",{}]', "MessageTypeNotSupported", "s1"),
        ('[9,"x"]', "MessageTypeNotSupported", "x"),
        ('[9,"' + "x" * 37 + '"]', "MessageTypeNotSupported", None),
        ('["2","t1","Reset",{}]', "RpcFrameworkError", "t1"),
        ('[2,"id-1","Reset"]', "RpcFrameworkError", "id-1"),
        ('[2,"id-2",5,{}]', "RpcFrameworkError", "id-2"),
        ('[2,"' + "y" * 37 + '","Reset",{}]', "RpcFrameworkError", None),
        ('[2,17,"Reset",{}]', "RpcFrameworkError", None),
        ('[3,"x"]', "RpcFrameworkError", None),
        ('[4,"x",1,2]', "RpcFrameworkError", None),
    ],
)
def test_malformed_201_frames(text: str | bytes, code: str, answerable: str | None) -> None:
    with pytest.raises(frames.FrameError) as info:
        frames.parse(text, "2.0.1")
    assert (info.value.code, info.value.unique_id) == (code, answerable)


def test_a_16_connection_still_drops_unknown_message_types() -> None:
    with pytest.raises(frames.FrameError) as info:
        frames.parse('[6,"s1","Anything",{}]')
    assert (info.value.code, info.value.unique_id) == ("FormationViolation", None)


def test_well_formed_201_frames_parse_as_in_16() -> None:
    call = frames.parse('[2,"a1","Reset",{"type":"Immediate"}]', "2.0.1")
    assert call == frames.IncomingCall("a1", "Reset", {"type": "Immediate"})
    assert frames.parse('[3,"a1",{}]', "2.0.1") == frames.IncomingResult("a1", {})
    err = frames.parse('[4,"a1","RpcFrameworkError","bad",{}]', "2.0.1")
    assert isinstance(err, frames.IncomingError) and err.code == "RpcFrameworkError"


TOKEN = {"idToken": "04A1B2C3", "type": "ISO14443"}


@pytest.mark.parametrize(
    ("action", "payload", "code"),
    [
        ("Reset", {}, "OccurrenceConstraintViolation"),
        ("Reset", {"type": 3}, "TypeConstraintViolation"),
        ("Reset", {"type": "Soft"}, "PropertyConstraintViolation"),  # a 1.6 value
        ("Reset", {"type": "Immediate", "extra": 1}, "FormatViolation"),
        ("Reset", [], "FormatViolation"),
        ("Reset", {"type": "OnIdle", "evseId": "1"}, "TypeConstraintViolation"),
        ("GetVariables", {"getVariableData": []}, "OccurrenceConstraintViolation"),
        (
            "RequestStartTransaction",
            {"idToken": {**TOKEN, "idToken": "X" * 37}, "remoteStartId": 1},
            "TypeConstraintViolation",
        ),
        ("RequestStartTransaction", {"idToken": TOKEN}, "OccurrenceConstraintViolation"),
        ("RemoteStartTransaction", {"idTag": "T"}, "NotImplemented"),  # 1.6 only
        ("MakeCoffee", {}, "NotImplemented"),
    ],
)
def test_schema_violations_map_to_201_codes(action: str, payload: object, code: str) -> None:
    with pytest.raises(ProtocolViolation) as info:
        frames.validate_call(action, payload, "2.0.1")
    assert info.value.code == code


def test_201_payloads_are_checked_against_the_201_schemas() -> None:
    frames.validate_call("Reset", {"type": "Immediate", "evseId": 1}, "2.0.1")
    frames.validate_call("RequestStartTransaction", {"idToken": TOKEN, "remoteStartId": 7}, "2.0.1")
    boot = {"status": "Accepted", "currentTime": "2026-01-01T00:00:00Z", "interval": 300}
    frames.validate_result("BootNotification", boot, "2.0.1")
    with pytest.raises(ProtocolViolation) as info:
        frames.validate_result("BootNotification", {**boot, "status": "Maybe"}, "2.0.1")
    assert info.value.code == "PropertyConstraintViolation"
    with pytest.raises(ProtocolViolation):
        frames.validate_call("Authorize", {"idTag": "T"}, "2.0.1")  # the 1.6 shape
    with pytest.raises(ValueError, match="unknown OCPP version"):
        frames.validate_call("Reset", {}, "2.1")


def test_known_actions_come_from_the_schemas_of_each_version() -> None:
    v201 = frames.KNOWN_ACTIONS["2.0.1"]
    assert len(v201) == 64
    assert {"TransactionEvent", "NotifyReport", "GetVariables", "RequestStartTransaction"} <= v201
    assert not {"StartTransaction", "RemoteStartTransaction", "GetConfiguration"} & v201
    # The 1.6 set is the one the station always had (the security whitepaper's included).
    assert frames.KNOWN_ACTIONS["1.6"] == {
        "Authorize", "BootNotification", "CancelReservation", "CertificateSigned",
        "ChangeAvailability", "ChangeConfiguration", "ClearCache", "ClearChargingProfile",
        "DataTransfer", "DeleteCertificate", "DiagnosticsStatusNotification",
        "ExtendedTriggerMessage", "FirmwareStatusNotification", "GetCompositeSchedule",
        "GetConfiguration", "GetDiagnostics", "GetInstalledCertificateIds",
        "GetLocalListVersion", "GetLog", "Heartbeat", "InstallCertificate",
        "LogStatusNotification", "MeterValues", "RemoteStartTransaction",
        "RemoteStopTransaction", "ReserveNow", "Reset", "SecurityEventNotification",
        "SendLocalList", "SetChargingProfile", "SignCertificate",
        "SignedFirmwareStatusNotification", "SignedUpdateFirmware", "StartTransaction",
        "StatusNotification", "StopTransaction", "TriggerMessage", "UnlockConnector",
        "UpdateFirmware",
    }  # fmt: skip


@given(st.text(max_size=300) | st.binary(max_size=300))
def test_201_parse_raises_only_frame_errors_with_201_codes(data: str | bytes) -> None:
    try:
        frames.parse(data, "2.0.1")
    except frames.FrameError as err:
        assert err.code in {"RpcFrameworkError", "MessageTypeNotSupported"}


@given(
    st.dictionaries(
        st.sampled_from(["type", "evseId", "extra"]),
        st.integers() | st.text(max_size=8) | st.lists(st.integers(), max_size=2),
        max_size=3,
    )
)
def test_201_validation_raises_only_201_codes(payload: dict[str, object]) -> None:
    try:
        frames.validate_call("Reset", payload, "2.0.1")
    except ProtocolViolation as err:
        assert err.code in V201_CODES
