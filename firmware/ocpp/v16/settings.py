"""The station's settings over the OCPP 1.6 configuration keys."""

from __future__ import annotations

from collections.abc import Callable

from firmware.ocpp.v16.configuration import ConfigurationStore
from firmware.settings import Measurands

MEASURAND_KEYS = {
    Measurands.PERIODIC: "MeterValuesSampledData",
    Measurands.ALIGNED: "MeterValuesAlignedData",
    Measurands.STOP_PERIODIC: "StopTxnSampledData",
    Measurands.STOP_ALIGNED: "StopTxnAlignedData",
}

# The key behind each setting; a change of the key is a change of the setting.
KEYS = {
    "connection_timeout_s": "ConnectionTimeOut",
    "stop_on_ev_disconnect": "StopTransactionOnEVSideDisconnect",
    "unlock_on_ev_disconnect": "UnlockConnectorOnEVSideDisconnect",
    "stop_on_invalid_id": "StopTransactionOnInvalidId",
    "max_energy_on_invalid_id_wh": "MaxEnergyOnInvalidId",
    "sample_interval_s": "MeterValueSampleInterval",
    "aligned_interval_s": "ClockAlignedDataInterval",
    "auth_cache_enabled": "AuthorizationCacheEnabled",
    "local_pre_authorize": "LocalPreAuthorize",
    "local_authorize_offline": "LocalAuthorizeOffline",
    "offline_unknown_id_allowed": "AllowOfflineTxForUnknownId",
    "authorize_remote_start": "AuthorizeRemoteTxRequests",
    "smart_charging_enabled": "SupportedFeatureProfiles",
    "charging_rate_units": "ChargingScheduleAllowedChargingRateUnit",
    "max_stack_level": "ChargeProfileMaxStackLevel",
    "max_schedule_periods": "ChargingScheduleMaxPeriods",
    "max_profiles_installed": "MaxChargingProfilesInstalled",
    "reserve_whole_station": "ReserveConnectorZeroSupported",
}


POWER_PATH_CLOSED = frozenset({"PowerPathClosed"})


class ConfigurationSettings:
    """``firmware.settings.StationSettings`` read from the configuration keys."""

    def __init__(self, store: ConfigurationStore) -> None:
        self.store = store

    @property
    def connection_timeout_s(self) -> int:
        return self.store.get_int("ConnectionTimeOut")

    @property
    def stop_on_ev_disconnect(self) -> bool:
        return self.store.get_bool("StopTransactionOnEVSideDisconnect")

    @property
    def unlock_on_ev_disconnect(self) -> bool:
        return self.store.get_bool("UnlockConnectorOnEVSideDisconnect")

    @property
    def tx_start_points(self) -> frozenset[str]:
        return POWER_PATH_CLOSED  # 1.6: plugged in and authorized

    @property
    def tx_stop_points(self) -> frozenset[str]:
        # 1.6: either ends it (an unplug as StopTransactionOnEVSideDisconnect says)
        return POWER_PATH_CLOSED

    @property
    def stop_on_invalid_id(self) -> bool:
        return self.store.get_bool("StopTransactionOnInvalidId")

    @property
    def max_energy_on_invalid_id_wh(self) -> int:
        return self.store.get_int("MaxEnergyOnInvalidId")

    @property
    def sample_interval_s(self) -> int:
        return self.store.get_int("MeterValueSampleInterval")

    @property
    def aligned_interval_s(self) -> int:
        return self.store.get_int("ClockAlignedDataInterval")

    def measurands(self, kind: Measurands) -> list[str]:
        return self.store.get_csl(MEASURAND_KEYS[kind])

    @property
    def auth_cache_enabled(self) -> bool:
        return self.store.get_bool("AuthorizationCacheEnabled")

    @property
    def local_pre_authorize(self) -> bool:
        return self.store.get_bool("LocalPreAuthorize")

    @property
    def local_authorize_offline(self) -> bool:
        return self.store.get_bool("LocalAuthorizeOffline")

    @property
    def offline_unknown_id_allowed(self) -> bool:
        return self.store.get_bool("AllowOfflineTxForUnknownId")

    @property
    def authorize_remote_start(self) -> bool:
        return self.store.get_bool("AuthorizeRemoteTxRequests")

    @property
    def smart_charging_enabled(self) -> bool:
        return "SmartCharging" in self.store.get_csl("SupportedFeatureProfiles")

    @property
    def charging_rate_units(self) -> list[str]:
        return self.store.get_csl("ChargingScheduleAllowedChargingRateUnit")

    @property
    def max_stack_level(self) -> int:
        return self.store.get_int("ChargeProfileMaxStackLevel")

    @property
    def max_schedule_periods(self) -> int:
        return self.store.get_int("ChargingScheduleMaxPeriods")

    @property
    def max_profiles_installed(self) -> int:
        return self.store.get_int("MaxChargingProfilesInstalled")

    @property
    def reserve_whole_station(self) -> bool:
        return self.store.get_bool("ReserveConnectorZeroSupported")

    @property
    def master_pass_group(self) -> str:
        return ""  # OCPP 1.6 has no master pass

    def subscribe(self, callback: Callable[[str], None]) -> None:
        names: dict[str, list[str]] = {}
        for name, key in KEYS.items():
            names.setdefault(key.casefold(), []).append(name)
        names.update({k.casefold(): [f"measurands.{m}"] for m, k in MEASURAND_KEYS.items()})

        def changed(key: str, _value: str) -> None:
            for name in names.get(key.casefold(), ()):
                callback(name)

        self.store.subscribe(changed)
