"""OCPP 2.0.1 network profiles through the daemon: B09 (SetNetworkProfile), B10
(migrate to another CSMS after a Reset, and fall back to the old one when the new
one is gone) and A05 (a security profile raised that way), against two bench
CSMSs speaking 2.0.1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hil.csms import BenchCsms
from tests.integration.harness import wait_until
from tests.integration.test_v201_daemon import MakeDaemon, daemon_201
from tests.integration.tls_bench import TlsBench

PASSWORD = "0123456789abcdef"


def profile(url: str, security_profile: int = 1, **changes: Any) -> dict[str, Any]:
    return {
        "ocppVersion": "OCPP20",
        "ocppTransport": "JSON",
        "ocppCsmsUrl": url,
        "messageTimeout": 5,
        "securityProfile": security_profile,
        "ocppInterface": "Wired0",
        **changes,
    }


def priority(value: str) -> dict[str, Any]:
    return {
        "setVariableData": [
            {
                "component": {"name": "OCPPCommCtrlr"},
                "variable": {"name": "NetworkConfigurationPriority"},
                "attributeValue": value,
            }
        ]
    }


ACTIVE = {
    "getVariableData": [
        {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "ActiveNetworkProfile"}}
    ]
}


async def test_a_csms_migration_and_the_fallback_to_the_old_csms(
    csms: BenchCsms, make_daemon: MakeDaemon
) -> None:
    async with BenchCsms(heartbeat_interval=300, versions=["2.0.1"]) as new:
        for bench in (csms, new):
            bench.passwords["CP-1"] = PASSWORD
        d = await daemon_201(
            csms,
            make_daemon,
            ocpp={"password": PASSWORD},
            device_model={"OCPPCommCtrlr": {"NetworkProfileConnectionAttempts": 2}},
        )
        old = d.log

        async def set_profile(slot: int, data: dict[str, Any]) -> dict[str, Any]:
            return await old.call(
                "SetNetworkProfile", {"configurationSlot": slot, "connectionData": data}
            )

        # B09: what the station cannot use is Rejected, with the reason.
        for slot, data, reason in (
            (4, profile(new.url), "InvalidConfSlot"),
            (2, profile(new.url, 0), "NoSecurityDowngrade"),
            (2, profile(new.url, ocppVersion="OCPP16"), "InvalidNetworkConf"),
            (2, profile(new.url, ocppTransport="SOAP"), "InvalidNetworkConf"),
            (2, profile(new.url, 2), "InvalidNetworkConf"),  # profile 2 over ws://
            (2, profile("http://127.0.0.1/ocpp"), "InvalidNetworkConf"),
            (
                2,
                profile(new.url, apn={"apn": "x", "apnAuthentication": "AUTO"}),
                "InvalidNetworkConf",
            ),
        ):
            answer = await set_profile(slot, data)
            assert answer["status"] == "Rejected", (slot, data)
            assert answer["statusInfo"]["reasonCode"] == reason, (slot, data)
        # A slot without a profile cannot be in the priority list.
        refused = await old.call("SetVariables", priority("3,1"))
        assert refused["setVariableResult"][0]["attributeStatus"] == "Rejected"

        assert await set_profile(2, profile(new.url)) == {"status": "Accepted"}
        accepted = await old.call("SetVariables", priority("2,1"))
        assert accepted["setVariableResult"][0]["attributeStatus"] == "Accepted"
        active = await old.call("GetVariables", ACTIVE)
        assert active["getVariableResult"][0]["attributeValue"] == "1"

        # B10: after the Reset the station starts on the first entry: the new CSMS.
        assert await old.call("Reset", {"type": "Immediate"}) == {"status": "Accepted"}
        moved = await new.wait_connected("CP-1", timeout=30)
        boot = await moved.wait_for("BootNotification", timeout=15)
        assert boot["reason"] == "RemoteReset"
        assert moved.basic_auth[-1] == ("CP-1", PASSWORD)
        active = await moved.call("GetVariables", ACTIVE)
        assert active["getVariableResult"][0]["attributeValue"] == "2"
        boots_on_old = len(old.calls("BootNotification"))

        # The new CSMS goes away: two attempts on slot 2, then slot 1, where the
        # station registers again although it did not restart (B10.FR.10).
        await new.stop()
        await wait_until(
            lambda: len(old.calls("BootNotification")) > boots_on_old, 30, "a boot on slot 1"
        )
        active = await old.call("GetVariables", ACTIVE)
        assert active["getVariableResult"][0]["attributeValue"] == "1"
        assert await d.wait_log(r"network profile 2 .* failed 2 time\(s\); trying profile 1")


def variables(*names: tuple[str, str]) -> dict[str, Any]:
    return {
        "getVariableData": [{"component": {"name": c}, "variable": {"name": v}} for c, v in names]
    }


async def test_a_profile_raised_by_a_new_network_profile_is_never_lowered_again(
    csms: BenchCsms, make_daemon: MakeDaemon, tmp_path: Path
) -> None:
    pki = TlsBench(tmp_path / "pki")
    async with BenchCsms(heartbeat_interval=300, versions=["2.0.1"], tls=pki.server()) as secure:
        for bench in (csms, secure):
            bench.passwords["CP-1"] = PASSWORD
        d = await daemon_201(
            csms,
            make_daemon,
            ocpp={"password": PASSWORD},
            security={"csms_root_ca": pki.root_file()},
        )
        old = d.log
        # A05: security profile 2 on slot 2, first in the priority list, then a Reset.
        answer = await old.call(
            "SetNetworkProfile", {"configurationSlot": 2, "connectionData": profile(secure.url, 2)}
        )
        assert answer == {"status": "Accepted"}
        accepted = await old.call("SetVariables", priority("2,1"))
        assert accepted["setVariableResult"][0]["attributeStatus"] == "Accepted"
        assert await old.call("Reset", {"type": "Immediate"}) == {"status": "Accepted"}

        moved = await secure.wait_connected("CP-1", timeout=30)
        await moved.wait_for("BootNotification", timeout=15)
        assert moved.tls_versions[-1] in ("TLSv1.2", "TLSv1.3")
        assert moved.basic_auth[-1] == ("CP-1", PASSWORD)
        got = await moved.call(
            "GetVariables",
            variables(
                ("SecurityCtrlr", "SecurityProfile"),
                ("OCPPCommCtrlr", "NetworkConfigurationPriority"),
            ),
        )
        # Raised, and slot 1 (profile 1) is out of the list for good (A05.FR.06).
        assert [r["attributeValue"] for r in got["getVariableResult"]] == ["2", "2"]
        # In the security log (not a critical event: not sent).
        await d.wait_log(
            r"security event ReconfigurationOfSecurityParameters: SecurityProfile raised "
            r"from 1 to 2"
        )
        downgrade = await moved.call(
            "SetNetworkProfile", {"configurationSlot": 3, "connectionData": profile(csms.url)}
        )
        assert downgrade["statusInfo"]["reasonCode"] == "NoSecurityDowngrade"
        back = await moved.call("SetVariables", priority("2,1"))
        assert back["setVariableResult"][0]["attributeStatus"] == "Rejected"
