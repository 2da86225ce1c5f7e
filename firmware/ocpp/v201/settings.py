"""The station's settings over the OCPP 2.0.1 device model.

Each setting is the Actual value of one variable (``VARIABLES``). Two are read
differently:
- ``charging_rate_units``: SmartChargingCtrlr.RateUnit lists "A" and "W"; the
  station's words are "Current" and "Power".
- ``max_profiles_installed``: the maxLimit of SmartChargingCtrlr.Entries
  [ChargingProfiles] (its Actual value is the number installed now).
"""

from __future__ import annotations

from collections.abc import Callable

from firmware.ocpp.v201.device_model.catalog import ACTUAL, VariableKey
from firmware.ocpp.v201.device_model.model import Change, DeviceModel
from firmware.settings import Measurands, StationSettings

MEASURAND_VARIABLES = {
    Measurands.PERIODIC: ("SampledDataCtrlr", "TxUpdatedMeasurands"),
    Measurands.ALIGNED: ("AlignedDataCtrlr", "Measurands"),
    Measurands.STOP_PERIODIC: ("SampledDataCtrlr", "TxEndedMeasurands"),
    Measurands.STOP_ALIGNED: ("AlignedDataCtrlr", "TxEndedMeasurands"),
}

# Setting → (component, variable); a change of the variable is a change of the setting.
# 2.0.1 only (C16): 1.6 has no master pass.
MASTER_PASS = ("AuthCtrlr", "MasterPassGroupId")
VARIABLES = {
    "connection_timeout_s": ("TxCtrlr", "EVConnectionTimeOut"),
    "stop_on_ev_disconnect": ("TxCtrlr", "StopTxOnEVSideDisconnect"),
    "unlock_on_ev_disconnect": ("OCPPCommCtrlr", "UnlockOnEVSideDisconnect"),
    "stop_on_invalid_id": ("TxCtrlr", "StopTxOnInvalidId"),
    "max_energy_on_invalid_id_wh": ("TxCtrlr", "MaxEnergyOnInvalidId"),
    "sample_interval_s": ("SampledDataCtrlr", "TxUpdatedInterval"),
    "aligned_interval_s": ("AlignedDataCtrlr", "Interval"),
    "auth_cache_enabled": ("AuthCacheCtrlr", "Enabled"),
    "local_pre_authorize": ("AuthCtrlr", "LocalPreAuthorize"),
    "local_authorize_offline": ("AuthCtrlr", "LocalAuthorizeOffline"),
    "offline_unknown_id_allowed": ("AuthCtrlr", "OfflineTxForUnknownIdEnabled"),
    "authorize_remote_start": ("AuthCtrlr", "AuthorizeRemoteStart"),
    "smart_charging_enabled": ("SmartChargingCtrlr", "Enabled"),
    "charging_rate_units": ("SmartChargingCtrlr", "RateUnit"),
    "max_stack_level": ("SmartChargingCtrlr", "ProfileStackLevel"),
    "max_schedule_periods": ("SmartChargingCtrlr", "PeriodsPerSchedule"),
    "max_profiles_installed": ("SmartChargingCtrlr", "Entries[ChargingProfiles]"),
    "reserve_whole_station": ("ReservationCtrlr", "NonEvseSpecific"),
}

RATE_UNITS = {"A": "Current", "W": "Power"}
TX_POINTS = {
    "tx_start_points": ("TxCtrlr", "TxStartPoint"),
    "tx_stop_points": ("TxCtrlr", "TxStopPoint"),
}


class DeviceModelSettings:
    """``firmware.settings.StationSettings`` read from the device model."""

    def __init__(self, model: DeviceModel) -> None:
        self.model = model

    def _int(self, name: str) -> int:
        return self.model.get_int(*VARIABLES[name])

    def _bool(self, name: str) -> bool:
        return self.model.get_bool(*VARIABLES[name])

    @property
    def connection_timeout_s(self) -> int:
        return self._int("connection_timeout_s")

    @property
    def stop_on_ev_disconnect(self) -> bool:
        return self._bool("stop_on_ev_disconnect")

    @property
    def unlock_on_ev_disconnect(self) -> bool:
        return self._bool("unlock_on_ev_disconnect")

    @property
    def tx_start_points(self) -> frozenset[str]:
        return frozenset(self.model.get_list(*TX_POINTS["tx_start_points"]))

    @property
    def tx_stop_points(self) -> frozenset[str]:
        return frozenset(self.model.get_list(*TX_POINTS["tx_stop_points"]))

    @property
    def stop_on_invalid_id(self) -> bool:
        return self._bool("stop_on_invalid_id")

    @property
    def max_energy_on_invalid_id_wh(self) -> int:
        return self._int("max_energy_on_invalid_id_wh")

    @property
    def sample_interval_s(self) -> int:
        return self._int("sample_interval_s")

    @property
    def aligned_interval_s(self) -> int:
        return self._int("aligned_interval_s")

    def measurands(self, kind: Measurands) -> list[str]:
        return self.model.get_list(*MEASURAND_VARIABLES[kind])

    @property
    def auth_cache_enabled(self) -> bool:
        return self._bool("auth_cache_enabled")

    @property
    def local_pre_authorize(self) -> bool:
        return self._bool("local_pre_authorize")

    @property
    def local_authorize_offline(self) -> bool:
        return self._bool("local_authorize_offline")

    @property
    def offline_unknown_id_allowed(self) -> bool:
        return self._bool("offline_unknown_id_allowed")

    @property
    def authorize_remote_start(self) -> bool:
        return self._bool("authorize_remote_start")

    @property
    def smart_charging_enabled(self) -> bool:
        return self._bool("smart_charging_enabled")

    @property
    def charging_rate_units(self) -> list[str]:
        units = self.model.get_list(*VARIABLES["charging_rate_units"])
        return [RATE_UNITS[unit] for unit in units if unit in RATE_UNITS]

    @property
    def max_stack_level(self) -> int:
        return self._int("max_stack_level")

    @property
    def max_schedule_periods(self) -> int:
        return self._int("max_schedule_periods")

    @property
    def max_profiles_installed(self) -> int:
        limit = self.model.spec(*VARIABLES["max_profiles_installed"]).characteristics.max_limit
        assert limit is not None  # defined with one (controllers.smart_charging)
        return int(limit)

    @property
    def reserve_whole_station(self) -> bool:
        return self._bool("reserve_whole_station")

    @property
    def master_pass_group(self) -> str:
        return self.model.get_str(*MASTER_PASS)

    def subscribe(self, callback: Callable[[str], None]) -> None:
        names: dict[VariableKey, list[str]] = {}
        for name, (component, variable) in VARIABLES.items():
            spec = self.model.spec(component, variable)
            names.setdefault(spec.key, []).append(name)
        for kind, (component, variable) in MEASURAND_VARIABLES.items():
            names.setdefault(self.model.spec(component, variable).key, []).append(
                f"measurands.{kind}"
            )

        def changed(change: Change) -> None:
            if change.attribute is not ACTUAL:
                return
            for name in names.get((change.component.key(), change.variable.key()), ()):
                callback(name)

        self.model.subscribe(changed)


def station_settings(model: DeviceModel) -> StationSettings:
    """The settings the station's rules read, over ``model``."""
    return DeviceModelSettings(model)
