"""Configuration another stack hands over: every standard key, vendor keys, the password rule."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from hil.csms import BenchCsms
from tests.integration.harness import Daemon, wait_until

MakeDaemon = Callable[..., Awaitable[Daemon]]

KEY = "0123456789abcdef0123"
PASSWORD = "station-password-0042"

# Every key of OCPP 1.6 edition 2 chapter 9, of the Security Whitepaper and of the
# ISO 15118 application note, as a YAML file writes them, with the value the
# CSMS then reads (None: write-only, never read).
EVERY_KEY: dict[str, tuple[Any, str | None]] = {
    "AllowOfflineTxForUnknownId": (True, "true"),
    "AuthorizationCacheEnabled": (True, "true"),
    "AuthorizeRemoteTxRequests": (False, "false"),
    "BlinkRepeat": (3, "3"),
    "ClockAlignedDataInterval": (0, "0"),
    "ConnectionTimeOut": (30, "30"),
    "ConnectorPhaseRotation": (["0.RST", "1.RTS"], "0.RST,1.RTS"),
    "ConnectorPhaseRotationMaxLength": (2, "2"),
    "GetConfigurationMaxKeys": (80, "80"),
    "HeartbeatInterval": (300, "300"),
    "LightIntensity": (40, "40"),
    "LocalAuthorizeOffline": (True, "true"),
    "LocalPreAuthorize": (False, "false"),
    "MaxEnergyOnInvalidId": (0, "0"),
    "MeterValuesAlignedData": ("Energy.Active.Import.Register", "Energy.Active.Import.Register"),
    "MeterValuesAlignedDataMaxLength": (6, "6"),
    "MeterValuesSampledData": (
        ["Energy.Active.Import.Register", "Power.Active.Import"],
        "Energy.Active.Import.Register,Power.Active.Import",
    ),
    "MeterValuesSampledDataMaxLength": (6, "6"),
    "MeterValueSampleInterval": (0, "0"),
    "MinimumStatusDuration": (0, "0"),
    "NumberOfConnectors": (1, "1"),
    "ResetRetries": (2, "2"),
    "StopTransactionOnEVSideDisconnect": (True, "true"),
    "StopTransactionOnInvalidId": (True, "true"),
    "StopTxnAlignedData": ("", ""),
    "StopTxnAlignedDataMaxLength": (4, "4"),
    "StopTxnSampledData": ("Energy.Active.Import.Register", "Energy.Active.Import.Register"),
    "StopTxnSampledDataMaxLength": (4, "4"),
    "SupportedFeatureProfiles": (
        "Core,FirmwareManagement,LocalAuthListManagement,RemoteTrigger,Reservation,SmartCharging",
        "Core,FirmwareManagement,LocalAuthListManagement,RemoteTrigger,Reservation,SmartCharging",
    ),
    "SupportedFeatureProfilesMaxLength": (6, "6"),
    "TransactionMessageAttempts": (3, "3"),
    "TransactionMessageRetryInterval": (1, "1"),
    "UnlockConnectorOnEVSideDisconnect": (True, "true"),
    "WebSocketPingInterval": (0, "0"),
    "LocalAuthListEnabled": (True, "true"),
    "LocalAuthListMaxLength": (500, "500"),
    "SendLocalListMaxLength": (50, "50"),
    "ReserveConnectorZeroSupported": (False, "false"),
    "ChargeProfileMaxStackLevel": (5, "5"),
    "ChargingScheduleAllowedChargingRateUnit": ("Current", "Current"),
    "ChargingScheduleMaxPeriods": (12, "12"),
    "ConnectorSwitch3to1PhaseSupported": (False, "false"),
    "MaxChargingProfilesInstalled": (8, "8"),
    "AdditionalRootCertificateCheck": (False, "false"),
    "AuthorizationKey": (KEY, None),
    "CertificateSignedMaxChainSize": (5000, "5000"),
    "CertificateStoreMaxLength": (3, "3"),
    "CpoName": ("ACME Charging", "ACME Charging"),
    "SecurityProfile": (1, "1"),
    "CentralContractValidationAllowed": (False, "false"),
    "CertSigningRepeatTimes": (3, "3"),
    "CertSigningWaitMinimum": (60, "60"),
    "ContractValidationOffline": (False, "false"),
    "ISO15118PnCEnabled": (False, "false"),
    "SupportedFileTransferProtocols": (["HTTP", "HTTPS"], "HTTP,HTTPS"),
}


async def test_a_file_with_every_standard_key_starts_and_registers(
    make_daemon: MakeDaemon, csms: BenchCsms
) -> None:
    from ocpp.v16.enums import ConfigurationKey

    assert {key.value for key in ConfigurationKey} <= set(EVERY_KEY)
    csms.passwords["CP-1"] = KEY  # the AuthorizationKey wins over ocpp.password
    d = await make_daemon(
        ocpp={
            "password": PASSWORD,
            "vendor_key_prefixes": ["ACME"],
            "config": {
                **{key: written for key, (written, _) in EVERY_KEY.items()},
                "ACMEFanMode": "eco",
            },
        }
    )
    assert d.log.basic_auth[-1] == ("CP-1", KEY)
    answer = await d.log.call("GetConfiguration", {})
    reported = {entry["key"]: entry for entry in answer["configurationKey"]}
    expected = {key: read for key, (_, read) in EVERY_KEY.items() if read is not None}
    assert {key: entry["value"] for key, entry in reported.items()} == {
        **expected,
        "ACMEFanMode": "eco",
    }
    assert reported["ACMEFanMode"]["readonly"] is True
    assert reported["CertificateStoreMaxLength"]["readonly"] is True
    assert reported["CpoName"]["readonly"] is False
    assert "unknownKey" not in answer
    # Keys match whatever their case; a vendor key is the vendor's, read-only.
    answer = await d.log.call("GetConfiguration", {"key": ["acmefanmode", "cponame"]})
    assert [e["key"] for e in answer["configurationKey"]] == ["ACMEFanMode", "CpoName"]
    change = await d.log.call("ChangeConfiguration", {"key": "ACMEFanMode", "value": "boost"})
    assert change["status"] == "Rejected"


async def test_password_at_security_profile_0_until_the_csms_raises_it(
    make_daemon: MakeDaemon, csms: BenchCsms
) -> None:
    d = await make_daemon(ocpp={"password": PASSWORD, "config": {"SecurityProfile": 0}})
    assert d.log.basic_auth == [None]  # stored, not sent
    assert "ocpp.password is kept unused while SecurityProfile is 0" in d.tail(200)
    csms.passwords["CP-1"] = PASSWORD  # the CSMS expects it from the next connection on
    answer = await d.log.call("ChangeConfiguration", {"key": "SecurityProfile", "value": "1"})
    assert answer["status"] == "Accepted"
    await wait_until(lambda: d.log.connections == 2 and d.log.connected, 10, "reconnect")
    assert d.log.basic_auth[-1] == ("CP-1", PASSWORD)
    assert csms.station("CP-1").rejections == []
    # The raised profile is the station's now: a restart keeps it, whatever the file says.
    assert await d.stop() == 0
    await d.start()
    assert d.log.basic_auth[-1] == ("CP-1", PASSWORD)
    answer = await d.log.call("GetConfiguration", {"key": ["SecurityProfile"]})
    assert answer["configurationKey"][0]["value"] == "1"
    answer = await d.log.call("ChangeConfiguration", {"key": "SecurityProfile", "value": "0"})
    assert answer["status"] == "Rejected"


async def test_authorization_key_at_profile_0_is_stored_not_sent(
    make_daemon: MakeDaemon, csms: BenchCsms
) -> None:
    d = await make_daemon()
    answer = await d.log.call("ChangeConfiguration", {"key": "AuthorizationKey", "value": KEY})
    assert answer["status"] == "Accepted"
    # No reconnect for a key that is not used: the next CALL goes over the same link.
    answer = await d.log.call("GetConfiguration", {"key": ["SecurityProfile"]})
    assert answer["configurationKey"][0]["value"] == "0"
    assert d.log.connections == 1
    csms.passwords["CP-1"] = KEY
    answer = await d.log.call("ChangeConfiguration", {"key": "SecurityProfile", "value": "1"})
    assert answer["status"] == "Accepted"
    await wait_until(lambda: d.log.connections == 2 and d.log.connected, 10, "reconnect")
    assert d.log.basic_auth == [None, ("CP-1", KEY)]
