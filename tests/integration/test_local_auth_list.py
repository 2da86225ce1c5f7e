"""Local Auth List Management end to end: SendLocalList, GetLocalListVersion, authorization."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from hil.csms import CallErrorReceived
from tests.integration.harness import Daemon, wait_until

# Drives the plant (the `hardware` marker in pyproject.toml says what that runs).
pytestmark = pytest.mark.hardware

MakeDaemon = Callable[..., Awaitable[Daemon]]

PAST = "2020-01-01T00:00:00.000Z"


def entry(tag: str, status: str | None = "Accepted", **info: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"idTag": tag}
    if status is not None:
        item["idTagInfo"] = {"status": status, **info}
    return item


async def send_list(
    d: Daemon, version: int, update: str, *items: dict[str, Any], omit: bool = False
) -> str:
    payload: dict[str, Any] = {"listVersion": version, "updateType": update}
    if not omit:
        payload["localAuthorizationList"] = list(items)
    answer = await d.log.call("SendLocalList", payload)
    return str(answer["status"])


async def list_version(d: Daemon) -> int:
    return int((await d.log.call("GetLocalListVersion", {}))["listVersion"])


async def refused(d: Daemon, tag: str, status: str) -> None:
    """The daemon logged that ``tag`` may not charge, for ``status``."""
    line = f"token {tag} not authorized: {status}"
    await wait_until(lambda: line in d.log_path.read_text(errors="replace"), 10, line)


async def go_offline(d: Daemon) -> None:
    d.csms.refuse = True
    await d.csms.drop(d.cp_id)
    for _ in range(200):
        if not (await d.get("/status"))["ocpp"]["connected"]:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the daemon still believes it is connected")


async def test_profile_and_keys_are_advertised(daemon: Daemon) -> None:
    answer = await daemon.log.call(
        "GetConfiguration",
        {
            "key": [
                "SupportedFeatureProfiles",
                "LocalAuthListEnabled",
                "LocalAuthListMaxLength",
                "SendLocalListMaxLength",
            ]
        },
    )
    keys = {k["key"]: k for k in answer["configurationKey"]}
    assert "LocalAuthListManagement" in keys["SupportedFeatureProfiles"]["value"].split(",")
    assert keys["LocalAuthListEnabled"] == {
        "key": "LocalAuthListEnabled",
        "readonly": False,
        "value": "true",
    }
    assert keys["LocalAuthListMaxLength"]["readonly"] is True
    assert keys["LocalAuthListMaxLength"]["value"] == "10000"
    assert keys["SendLocalListMaxLength"]["readonly"] is True
    assert keys["SendLocalListMaxLength"]["value"] == "1000"


async def test_versions_full_differential_and_mismatch(daemon: Daemon) -> None:
    assert await list_version(daemon) == 0
    assert await send_list(daemon, 3, "Full", entry("AB01"), entry("AB02", "Blocked")) == "Accepted"
    assert await list_version(daemon) == 3
    assert await send_list(daemon, 4, "Differential", entry("AB03")) == "Accepted"
    assert await list_version(daemon) == 4
    assert await send_list(daemon, 4, "Differential", entry("AB04")) == "VersionMismatch"
    assert await send_list(daemon, 2, "Differential", entry("AB04")) == "VersionMismatch"
    assert await list_version(daemon) == 4
    # A Differential update without a list changes no entry.
    assert await send_list(daemon, 5, "Differential", omit=True) == "Accepted"
    assert await list_version(daemon) == 5
    # A Full update without a list empties it: an empty list is version 0.
    assert await send_list(daemon, 6, "Full", omit=True) == "Accepted"
    assert await list_version(daemon) == 0


async def test_full_version_zero_clears_the_list(make_daemon: MakeDaemon) -> None:
    d = await make_daemon(ocpp={"config": {"LocalPreAuthorize": True}})
    assert await send_list(d, 7, "Full", entry("AE01"), entry("AE02")) == "Accepted"
    assert await list_version(d) == 7
    assert await send_list(d, 0, "Full") == "Accepted"  # an empty list, version 0
    assert await list_version(d) == 0
    assert await send_list(d, 0, "Full", omit=True) == "Accepted"  # no list at all
    # Version 0 is the empty list's: not for a list with entries, nor for a Differential
    # update (never above the current version); negative versions are refused too.
    assert await send_list(d, 0, "Full", entry("AE03")) == "Failed"
    assert await send_list(d, 0, "Differential", entry("AE03")) == "VersionMismatch"
    assert await send_list(d, -1, "Full") == "Failed"
    assert await send_list(d, -1, "Differential", entry("AE03")) == "VersionMismatch"
    assert await list_version(d) == 0
    # AE01 left the list: with LocalPreAuthorize it is asked about again.
    await d.sim(cp_state="B")
    await d.tap("AE01")
    assert await d.log.wait_for("Authorize") == {"idTag": "AE01"}


async def test_not_supported_while_disabled(daemon: Daemon) -> None:
    assert await send_list(daemon, 1, "Full", entry("AB11")) == "Accepted"
    answer = await daemon.log.call(
        "ChangeConfiguration", {"key": "LocalAuthListEnabled", "value": "false"}
    )
    assert answer["status"] == "Accepted"
    assert await list_version(daemon) == -1
    assert await send_list(daemon, 2, "Full", entry("AB12")) == "NotSupported"
    await daemon.log.call("ChangeConfiguration", {"key": "LocalAuthListEnabled", "value": "true"})
    assert await list_version(daemon) == 1  # kept while disabled


async def test_failed_updates_leave_the_old_list(make_daemon: MakeDaemon) -> None:
    d = await make_daemon(
        ocpp={
            "config": {
                "LocalPreAuthorize": True,
                "LocalAuthListMaxLength": 3,
                "SendLocalListMaxLength": 2,
            }
        }
    )
    three = (entry("AC01"), entry("AC02"), entry("AC03"))
    assert await send_list(d, 1, "Full", *three) == "Failed"  # over SendLocalListMaxLength
    assert await send_list(d, 2, "Full", entry("AC01"), entry("AC02")) == "Accepted"
    # Over LocalAuthListMaxLength once applied, a duplicate, a Full entry without info.
    assert await send_list(d, 3, "Differential", entry("AC03"), entry("AC04")) == "Failed"
    assert await send_list(d, 3, "Full", entry("AC05"), entry("ac05")) == "Failed"
    assert await send_list(d, 3, "Full", entry("AC05"), entry("AC01", None)) == "Failed"
    assert await send_list(d, 0, "Full", entry("AC05")) == "Failed"
    assert await list_version(d) == 2
    # The list of version 2 still authorizes, without asking the CSMS.
    await d.sim(cp_state="B")
    await d.tap("AC02")
    start = await d.log.wait_for("StartTransaction")
    assert start["idTag"] == "AC02"
    assert d.log.calls("Authorize") == []


async def test_bad_payloads_get_callerrors(daemon: Daemon) -> None:
    bad_date = entry("AD01", expiryDate="tomorrow")
    with pytest.raises(CallErrorReceived) as err:
        await send_list(daemon, 1, "Full", bad_date)
    assert err.value.code == "TypeConstraintViolation"
    with pytest.raises(CallErrorReceived) as err:
        await daemon.log.call("SendLocalList", {"listVersion": 1})
    assert err.value.code == "OccurenceConstraintViolation"
    with pytest.raises(CallErrorReceived) as err:
        await daemon.log.call("SendLocalList", {"listVersion": 1, "updateType": "Partial"})
    assert err.value.code == "PropertyConstraintViolation"
    assert await list_version(daemon) == 0


async def test_list_wins_over_cache_online(make_daemon: MakeDaemon) -> None:
    d = await make_daemon(ocpp={"config": {"LocalPreAuthorize": True}})
    # The CSMS accepts AE01: the cache learns Accepted.
    await d.sim(cp_state="B")
    await d.tap("AE01")
    await d.log.wait_for("StartTransaction")
    await d.tap("AE01")
    await d.log.wait_for("StopTransaction")
    await d.sim(cp_state="A")
    await d.wait_connector(lambda c: c["status"] == "Available")
    assert await send_list(d, 1, "Full", entry("AE01", "Blocked"), entry("AE02")) == "Accepted"
    await d.sim(cp_state="B")
    await d.tap("AE01")
    await refused(d, "AE01", "Blocked")
    assert len(d.log.calls("Authorize")) == 1  # only the first, before the list
    assert len(d.log.calls("StartTransaction")) == 1
    # An expired entry counts as Expired.
    assert (
        await send_list(d, 2, "Differential", entry("AE03", "Accepted", expiryDate=PAST))
        == "Accepted"
    )
    await d.tap("AE03")
    await refused(d, "AE03", "Expired")
    await d.tap("AE02")
    start = await d.log.wait_for("StartTransaction", lambda p: p["idTag"] == "AE02")
    assert start["connectorId"] == 1
    assert len(d.log.calls("Authorize")) == 1


async def test_csms_answers_do_not_change_the_list(daemon: Daemon) -> None:
    assert await send_list(daemon, 1, "Full", entry("AF01")) == "Accepted"
    daemon.csms.id_tags["AF01"] = "Blocked"
    await daemon.sim(cp_state="B")
    await daemon.tap("AF01")  # LocalPreAuthorize false: the CSMS decides
    await daemon.log.wait_for("Authorize")
    await refused(daemon, "AF01", "Blocked")
    assert await list_version(daemon) == 1
    # Offline, the list (still Accepted) decides: the answer was not written anywhere.
    await go_offline(daemon)
    await daemon.tap("AF01")
    await daemon.wait_connector(lambda c: c["local_transaction_id"] is not None)


async def test_offline_list_survives_restart(make_daemon: MakeDaemon) -> None:
    d = await make_daemon(ocpp={"config": {"AllowOfflineTxForUnknownId": True}})
    items = (entry("B001"), entry("B002", "Blocked"), entry("B003", "Accepted", expiryDate=PAST))
    assert await send_list(d, 7, "Full", *items) == "Accepted"
    assert await d.stop() == 0
    d.csms.refuse = True
    await d.start(wait_boot=False)
    await d.sim(cp_state="B")
    # Blocked and expired entries never start a session, unknown ids allowed or not.
    await d.tap("B002")
    await refused(d, "B002", "Blocked")
    await d.tap("B003")
    await refused(d, "B003", "Expired")
    assert (await d.connector())["local_transaction_id"] is None
    await d.tap("B001")
    await d.wait_connector(
        lambda c: c["local_transaction_id"] is not None and c["id_tag"] == "B001"
    )
    d.csms.refuse = False
    await d.log.wait_for("StartTransaction", lambda p: p["idTag"] == "B001", timeout=15)
    assert await list_version(d) == 7


async def test_offline_needs_local_authorize_offline(make_daemon: MakeDaemon) -> None:
    d = await make_daemon(ocpp={"config": {"LocalAuthorizeOffline": False}})
    assert await send_list(d, 1, "Full", entry("B101")) == "Accepted"
    await go_offline(d)
    await d.sim(cp_state="B")
    await d.tap("B101")
    await refused(d, "B101", "Invalid")
    assert (await d.connector())["local_transaction_id"] is None


async def test_same_group_in_the_list_stops_without_authorize(make_daemon: MakeDaemon) -> None:
    d = await make_daemon(ocpp={"config": {"LocalPreAuthorize": True}})
    fleet = (entry("B201", parentIdTag="FLEET"), entry("B202", parentIdTag="FLEET"))
    assert await send_list(d, 1, "Full", *fleet, entry("B203")) == "Accepted"
    await d.sim(cp_state="B")
    await d.tap("B201")
    await d.log.wait_for("StartTransaction")
    await d.sim(cp_state="C")
    await d.wait_connector(lambda c: c["relay_closed"])
    await d.tap("B203")  # not of the group
    await wait_until(
        lambda: "token B203 authorized but no connector" in d.log_path.read_text(),
        10,
        "B203 to be turned away",
    )
    assert d.log.calls("StopTransaction") == []
    await d.tap("B202")
    stop = await d.log.wait_for("StopTransaction")
    assert stop["reason"] == "Local" and stop["idTag"] == "B202"
    assert d.log.calls("Authorize") == []
