"""Reservation profile end to end: ReserveNow, CancelReservation, expiry, restarts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from firmware.clock import iso
from hil.csms import CallErrorReceived
from tests.integration.harness import Daemon, charge_session_start, wait_until

# Drives the plant (the `hardware` marker in pyproject.toml says what that runs).
pytestmark = pytest.mark.hardware

MakeDaemon = Callable[..., Awaitable[Daemon]]


def ahead(seconds: float) -> str:
    return iso(datetime.now(UTC) + timedelta(seconds=seconds))


async def reserve(
    d: Daemon,
    reservation_id: int,
    connector: int = 1,
    tag: str = "AA01",
    *,
    seconds: float = 600,
    parent: str | None = None,
) -> str:
    payload: dict[str, Any] = {
        "connectorId": connector,
        "expiryDate": ahead(seconds),
        "idTag": tag,
        "reservationId": reservation_id,
    }
    if parent is not None:
        payload["parentIdTag"] = parent
    answer = await d.log.call("ReserveNow", payload)
    return str(answer["status"])


async def cancel(d: Daemon, reservation_id: int) -> str:
    answer = await d.log.call("CancelReservation", {"reservationId": reservation_id})
    return str(answer["status"])


def starts(d: Daemon) -> list[dict[str, Any]]:
    return d.log.calls("StartTransaction")


@pytest.mark.emulated
async def test_only_the_reserved_tag_starts_and_ends_the_reservation(daemon: Daemon) -> None:
    await daemon.wait_status("Available")
    assert await reserve(daemon, 11) == "Accepted"
    await daemon.wait_status("Reserved")
    await daemon.sim(cp_state="B")
    await daemon.wait_status("Preparing")
    await daemon.tap("BB02")  # another tag: authorized, but refused on the reserved connector
    await daemon.log.wait_for("Authorize", lambda p: p["idTag"] == "BB02")
    await daemon.tap("AA01")
    start = await daemon.log.wait_for("StartTransaction")
    assert start["idTag"] == "AA01" and start["reservationId"] == 11
    assert [s["idTag"] for s in starts(daemon)] == ["AA01"]
    await daemon.sim(cp_state="C")
    await daemon.wait_status("Charging")
    assert await cancel(daemon, 11) == "Rejected"  # the transaction ended it


async def test_reserved_tag_first_then_plug(daemon: Daemon) -> None:
    assert await reserve(daemon, 12) == "Accepted"
    await daemon.wait_status("Reserved")
    await daemon.tap("AA01")
    await daemon.wait_status("Preparing")
    await daemon.sim(cp_state="C")
    start = await daemon.log.wait_for("StartTransaction")
    assert start["reservationId"] == 12
    await daemon.wait_status("Charging")


async def test_occupied_during_a_session_and_with_a_plugged_vehicle(daemon: Daemon) -> None:
    await daemon.sim(cp_state="B")
    await daemon.wait_status("Preparing")
    assert await reserve(daemon, 21) == "Occupied"
    await daemon.sim(cp_state="A")
    await daemon.wait_status("Available")
    await charge_session_start(daemon)
    assert await reserve(daemon, 22) == "Occupied"
    assert await cancel(daemon, 21) == "Rejected"


async def test_faulted_connector_and_a_fault_ends_the_reservation(daemon: Daemon) -> None:
    await daemon.fault("rcd_trip")
    await daemon.wait_status("Faulted")
    assert await reserve(daemon, 31) == "Faulted"
    await daemon.fault("rcd_trip", active=False)
    await daemon.wait_status("Available")
    assert await reserve(daemon, 32) == "Accepted"
    await daemon.wait_status("Reserved")
    await daemon.fault("rcd_trip")
    await daemon.wait_status("Faulted")
    await daemon.fault("rcd_trip", active=False)
    await daemon.wait_status("Available")  # the reservation did not come back
    assert await cancel(daemon, 32) == "Rejected"


async def test_unavailable_connector_refuses_and_ends_reservations(daemon: Daemon) -> None:
    assert await reserve(daemon, 41) == "Accepted"
    await daemon.wait_status("Reserved")
    change = {"connectorId": 1, "type": "Inoperative"}
    assert (await daemon.log.call("ChangeAvailability", change))["status"] == "Accepted"
    await daemon.wait_status("Unavailable")
    assert await reserve(daemon, 42) == "Unavailable"
    assert await cancel(daemon, 41) == "Rejected"
    change["type"] = "Operative"
    await daemon.log.call("ChangeAvailability", change)
    await daemon.wait_status("Available")


async def test_rejected_requests(make_daemon: MakeDaemon) -> None:
    d = await make_daemon(ocpp={"config": {"ReserveConnectorZeroSupported": False}})
    assert await reserve(d, 51, connector=0) == "Rejected"
    assert await reserve(d, 52, connector=2) == "Rejected"  # no such connector
    assert await reserve(d, 53, connector=-1) == "Rejected"
    assert await reserve(d, 54, seconds=-60) == "Rejected"  # already expired
    bad = {"connectorId": 1, "expiryDate": "tomorrow", "idTag": "AA01", "reservationId": 55}
    with pytest.raises(CallErrorReceived) as caught:
        await d.log.call("ReserveNow", bad)
    assert caught.value.code in ("TypeConstraintViolation", "FormationViolation")
    with pytest.raises(CallErrorReceived):
        await d.log.call("ReserveNow", {"connectorId": 1, "idTag": "AA01"})
    keys = await d.log.call(
        "GetConfiguration", {"key": ["ReserveConnectorZeroSupported", "SupportedFeatureProfiles"]}
    )
    values = {k["key"]: (k["value"], k["readonly"]) for k in keys["configurationKey"]}
    assert values["ReserveConnectorZeroSupported"] == ("false", True)
    assert "Reservation" in values["SupportedFeatureProfiles"][0].split(",")
    assert await reserve(d, 56) == "Accepted"  # nothing of the above stuck


async def test_same_id_replaces_and_cancel(daemon: Daemon) -> None:
    assert await reserve(daemon, 61, tag="AA01") == "Accepted"
    await daemon.wait_status("Reserved")
    assert await reserve(daemon, 61, tag="CC03") == "Accepted"  # replaced, not Occupied
    assert await reserve(daemon, 62, tag="CC03") == "Occupied"  # another id on the same connector
    await daemon.sim(cp_state="B")
    await daemon.wait_status("Preparing")  # the station saw the plug
    await daemon.tap("AA01")  # the replaced reservation's tag no longer holds it
    await daemon.log.wait_for("Authorize", lambda p: p["idTag"] == "AA01")
    await daemon.sim(cp_state="A")
    await daemon.wait_status("Reserved")
    assert starts(daemon) == []
    assert await cancel(daemon, 61) == "Accepted"
    await daemon.wait_status("Available")
    assert await cancel(daemon, 61) == "Rejected"
    assert await cancel(daemon, 999) == "Rejected"


async def test_expiry_makes_the_connector_available(daemon: Daemon) -> None:
    assert await reserve(daemon, 71, seconds=2) == "Accepted"
    await daemon.wait_status("Reserved")
    await daemon.wait_status("Available", timeout=10)
    assert await cancel(daemon, 71) == "Rejected"
    await daemon.sim(cp_state="B")
    await daemon.tap("BB02")  # anyone may charge again
    start = await daemon.log.wait_for("StartTransaction")
    assert start["idTag"] == "BB02" and "reservationId" not in start


async def test_parent_id_tag_group_may_use_the_reservation(daemon: Daemon) -> None:
    daemon.csms.parent_id_tags["BB02"] = "FLEET"
    daemon.csms.parent_id_tags["CC03"] = "OTHER"
    assert await reserve(daemon, 81, tag="AA01", parent="FLEET") == "Accepted"
    await daemon.wait_status("Reserved")
    await daemon.sim(cp_state="B")
    await daemon.tap("CC03")  # another group
    await daemon.log.wait_for("Authorize", lambda p: p["idTag"] == "CC03")
    await daemon.tap("BB02")  # same parentIdTag as the reservation
    start = await daemon.log.wait_for("StartTransaction")
    assert start["idTag"] == "BB02" and start["reservationId"] == 81
    assert len(starts(daemon)) == 1


async def test_other_tag_may_use_another_connector(make_daemon: MakeDaemon) -> None:
    d = await make_daemon(connectors=2)
    assert await reserve(d, 91, connector=1) == "Accepted"
    await d.wait_status("Reserved", connector=1)
    await d.tap("BB02", connector=1)  # refused at the reserved connector
    await d.log.wait_for("Authorize", lambda p: p["idTag"] == "BB02")
    await d.sim(2, cp_state="B")
    await d.tap("BB02", connector=2)
    start = await d.log.wait_for("StartTransaction")
    assert start["connectorId"] == 2 and "reservationId" not in start
    assert len(starts(d)) == 1
    held = await d.connector(1)  # no authorization was left waiting there
    assert held["status"] == "Reserved" and held["id_tag"] is None
    assert await cancel(d, 91) == "Accepted"  # still held for AA01


async def test_connector_zero_keeps_one_connector_for_the_tag(make_daemon: MakeDaemon) -> None:
    d = await make_daemon(connectors=2)
    for connector in (1, 2):
        await d.log.wait_for(
            "StatusNotification",
            lambda p, c=connector: p["connectorId"] == c and p["status"] == "Available",
        )
    assert await reserve(d, 101, connector=0) == "Accepted"
    d.mark()
    await d.sim(1, cp_state="B")  # a vehicle takes connector 1: connector 2 is the last one open
    await d.wait_status("Reserved", connector=2)
    assert await reserve(d, 102, connector=0, tag="DD04") == "Occupied"  # kept for 101
    await d.tap("BB02", connector=1)
    first = await d.log.wait_for("StartTransaction")
    assert first["connectorId"] == 1 and "reservationId" not in first
    await d.tap("CC03", connector=2)  # refused: the last open connector is kept for AA01
    await d.log.wait_for("Authorize", lambda p: p["idTag"] == "CC03")
    await d.tap("AA01", connector=2)
    await d.wait_status("Preparing", connector=2)
    await d.sim(2, cp_state="C")
    second = await d.log.wait_for("StartTransaction", lambda p: p["connectorId"] == 2)
    assert second["idTag"] == "AA01" and second["reservationId"] == 101
    assert len(starts(d)) == 2


async def test_remote_start_on_a_reserved_connector(daemon: Daemon) -> None:
    assert await reserve(daemon, 111) == "Accepted"
    await daemon.wait_status("Reserved")
    other = {"idTag": "BB02", "connectorId": 1}
    assert (await daemon.log.call("RemoteStartTransaction", other))["status"] == "Rejected"
    without_connector = {"idTag": "BB02"}
    answer = await daemon.log.call("RemoteStartTransaction", without_connector)
    assert answer["status"] == "Rejected"
    mine = {"idTag": "AA01", "connectorId": 1}
    assert (await daemon.log.call("RemoteStartTransaction", mine))["status"] == "Accepted"
    await daemon.wait_status("Preparing")
    await daemon.sim(cp_state="C")
    start = await daemon.log.wait_for("StartTransaction")
    assert start["idTag"] == "AA01" and start["reservationId"] == 111


def answered_before(d: Daemon, action: str, then: str) -> bool:
    """The station's CALLRESULT to the CSMS's ``action`` went out before its ``then`` CALL."""
    messages = [(f.direction, f.message) for f in d.log.frames if f.message]
    request = next(m for way, m in messages if way == "out" and m[0] == 2 and m[2] == action)
    answer = next(i for i, (way, m) in enumerate(messages) if way == "in" and m[1] == request[1])
    call = next(
        i for i, (way, m) in enumerate(messages) if way == "in" and m[0] == 2 and m[2] == then
    )
    return answer < call


@pytest.mark.parametrize("authorize_remote", [False, True])
async def test_remote_start_learns_the_group_of_an_unknown_tag(
    make_daemon: MakeDaemon, authorize_remote: bool
) -> None:
    d = await make_daemon(ocpp={"config": {"AuthorizeRemoteTxRequests": authorize_remote}})
    d.csms.parent_id_tags["BB02"] = "FLEET"
    assert await reserve(d, 141, tag="AA01", parent="FLEET") == "Accepted"
    await d.wait_status("Reserved")
    remote = {"idTag": "BB02", "connectorId": 1}
    assert (await d.log.call("RemoteStartTransaction", remote))["status"] == "Accepted"
    assert await d.log.wait_for("Authorize") == {"idTag": "BB02"}
    assert answered_before(d, "RemoteStartTransaction", "Authorize")
    await d.wait_status("Preparing")
    await d.sim(cp_state="C")
    start = await d.log.wait_for("StartTransaction")
    assert start["idTag"] == "BB02" and start["reservationId"] == 141
    assert len(d.log.calls("Authorize")) == 1


async def test_remote_start_for_another_group_keeps_the_reservation(
    make_daemon: MakeDaemon,
) -> None:
    d = await make_daemon(ocpp={"config": {"AuthorizeRemoteTxRequests": False}})
    d.csms.parent_id_tags["CC03"] = "OTHER"
    assert await reserve(d, 151, tag="AA01", parent="FLEET") == "Accepted"
    await d.wait_status("Reserved")
    remote = {"idTag": "CC03", "connectorId": 1}
    assert (await d.log.call("RemoteStartTransaction", remote))["status"] == "Accepted"
    assert await d.log.wait_for("Authorize") == {"idTag": "CC03"}
    line = "stays reserved (the tag is not of the reservation's group)"
    await wait_until(lambda: line in d.log_path.read_text(errors="replace"), 10, line)
    c = await d.connector()
    assert (c["status"], c["id_tag"]) == ("Reserved", None) and starts(d) == []
    # Its group is known now (cached): refused at once, without asking again.
    assert (await d.log.call("RemoteStartTransaction", remote))["status"] == "Rejected"
    assert len(d.log.calls("Authorize")) == 1
    # The reservation is still there for its own tag.
    await d.sim(cp_state="B")
    await d.tap("AA01")
    start = await d.log.wait_for("StartTransaction")
    assert start["idTag"] == "AA01" and start["reservationId"] == 151


async def test_reservation_survives_a_restart(daemon: Daemon) -> None:
    assert await reserve(daemon, 121) == "Accepted"
    await daemon.wait_status("Reserved")
    assert await daemon.stop() == 0
    daemon.mark()
    await daemon.start()
    await daemon.wait_status("Reserved")
    await daemon.sim(cp_state="B")
    await daemon.tap("AA01")
    start = await daemon.log.wait_for("StartTransaction")
    assert start["reservationId"] == 121


async def test_reservation_expired_while_down_is_dropped(daemon: Daemon) -> None:
    expiry = datetime.now(UTC) + timedelta(seconds=3)
    answer = await daemon.log.call(
        "ReserveNow",
        {"connectorId": 1, "expiryDate": iso(expiry), "idTag": "AA01", "reservationId": 131},
    )
    assert answer["status"] == "Accepted"
    await daemon.wait_status("Reserved")
    assert await daemon.stop() == 0
    await wait_until(lambda: datetime.now(UTC) > expiry, 10, "the reservation's expiry")
    mark = daemon.mark()
    await daemon.start()
    await daemon.wait_status("Available")
    reported = [  # StatusNotification payloads (those with an errorCode) since the restart
        p["status"] for p in daemon.log.calls()[mark:] if "errorCode" in p and p["connectorId"] == 1
    ]
    assert "Reserved" not in reported
    assert await cancel(daemon, 131) == "Rejected"
