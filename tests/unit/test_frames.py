"""Frame parsing and the OCPP-J 1.6 CALLERROR codes for schema violations."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware.ocpp import frames
from firmware.ocpp.errors import ProtocolViolation


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
