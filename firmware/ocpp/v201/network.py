"""OCPP 2.0.1 network connection profiles: B09 (SetNetworkProfile), B10 (migrate to
another CSMS, with fallback) and A05 (raise the security profile).

The rules followed (Part 2 B09, B10 and A05, with the OCA errata of 2025):

- Slots are the valuesList of OCPPCommCtrlr.NetworkConfigurationPriority. Slot 1 is
  the configuration file's profile (``ocpp.csms_url``, the file's
  SecurityCtrlr.SecurityProfile, ``ocpp.response_timeout_s``) until the CSMS writes
  slot 1; what the CSMS writes is stored and wins over the file from then on.
- SetNetworkProfile: a slot outside the valuesList is Rejected with reasonCode
  InvalidConfSlot (B09.FR.05); a profile below the active security profile
  (SecurityCtrlr.SecurityProfile) with NoSecurityDowngrade (B09.FR.04); content the
  station cannot use with InvalidNetworkConf (B09.FR.02): an ocppVersion other than
  OCPP20, SOAP, a URL that is not ws:// or wss://, profile 2 or 3 without wss://, an
  apn or vpn (the board's operating system sets its network up). A profile that
  cannot be stored is Failed (B09.FR.03). Any slot may be written, the one in use
  too: the connection that is up stays, the next attempt on that slot uses the new
  content, and the copy of the last profile that worked stays the fallback.
- NetworkConfigurationPriority (SetVariables): each slot at most once, each with a
  profile, none below the active security profile (A05.FR.10), and the
  prerequisites of profiles 2 and 3 met (a CSMS root certificate; a charging station
  certificate): otherwise Rejected. The order is dialled from the next start
  (B10.FR.04: the CSMS follows it with a Reset), and when a connection is lost.
- Dialling: after a start, the first entry; NetworkProfileConnectionAttempts failed
  attempts on an entry, then the next one (B10.FR.03); after the last entry, the
  profile of the last connection that worked when it is not in the list any more
  (B10.FR.07), then the list again from its first entry, read anew (B10.FR.08): the
  station never stops trying (B10.FR.09). A lost connection is dialled again on the
  profile it was on before the others are tried.
- Connected on another profile than the last one that worked: a BootNotification
  again, even without a restart (B10.FR.10). OCPPCommCtrlr.ActiveNetworkProfile is the
  slot, and the profile's messageTimeout the CALL timeout.
- Connected with a securityProfile above SecurityCtrlr.SecurityProfile (A05): the
  variable is raised and stored, a security event is raised, and every profile below
  the new one is removed, from the stored slots and from NetworkConfigurationPriority
  (A05.FR.06), so the station never goes back to it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ocpp.v201.enums import StatusInfoReasonType

from firmware.errors import StorageError
from firmware.ocpp.rpc import Reply, Rpc
from firmware.ocpp.v201.device_model import Component, DeviceModel
from firmware.ocpp.v201.device_model.values import InvalidValue
from firmware.ocpp.versions import V201
from firmware.storage.db import Database

log = logging.getLogger("firmware.ocpp.network")

COMM = Component("OCPPCommCtrlr")
SECURITY = Component("SecurityCtrlr")
PRIORITY = "NetworkConfigurationPriority"
OCPP20 = "OCPP20"
CONFIGURED_SLOT = 1

INVALID_SLOT = "InvalidConfSlot"
INVALID_PROFILE = "InvalidNetworkConf"
NO_DOWNGRADE = "NoSecurityDowngrade"


@dataclass(frozen=True, slots=True)
class NetworkProfile:
    """Where and how to reach a CSMS: one NetworkConnectionProfile."""

    url: str  # the CSMS's URL; the station's identity is appended to it
    security_profile: int
    message_timeout_s: float
    interface: str = "Wired0"

    @property
    def tls(self) -> bool:
        return self.url.startswith("wss://")

    def connection_data(self) -> dict[str, Any]:
        return {
            "ocppVersion": OCPP20,
            "ocppTransport": "JSON",
            "ocppCsmsUrl": self.url,
            # Kept as given (a float from ocpp.response_timeout_s): this is what is
            # stored, never sent.
            "messageTimeout": self.message_timeout_s,
            "securityProfile": self.security_profile,
            "ocppInterface": self.interface,
        }

    @classmethod
    def from_connection_data(cls, data: Mapping[str, Any]) -> NetworkProfile:
        return cls(
            url=str(data["ocppCsmsUrl"]),
            security_profile=int(data["securityProfile"]),
            message_timeout_s=float(data["messageTimeout"]),
            interface=str(data.get("ocppInterface", "Wired0")),
        )


class Refused(Exception):
    def __init__(self, reason: str, info: str) -> None:
        super().__init__(info)
        self.reason = reason
        self.info = info


def usable(data: Mapping[str, Any], active_profile: int) -> NetworkProfile:
    """The profile in ``data`` (a schema-valid connectionData); raises Refused."""
    if data["ocppVersion"] != OCPP20:
        raise Refused(INVALID_PROFILE, "only OCPP20 (OCPP 2.0.1) profiles are used here")
    if data["ocppTransport"] != "JSON":
        raise Refused(INVALID_PROFILE, "only the JSON transport is offered")
    for unmanaged in ("apn", "vpn"):
        if unmanaged in data:
            raise Refused(INVALID_PROFILE, f"{unmanaged} is set up by the board's system")
    url = str(data["ocppCsmsUrl"])
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise Refused(INVALID_PROFILE, "ocppCsmsUrl must be a ws:// or wss:// URL")
    profile = int(data["securityProfile"])
    if not 0 <= profile <= 3:
        raise Refused(INVALID_PROFILE, "securityProfile must be 1, 2 or 3")
    if profile >= 2 and parts.scheme != "wss":
        raise Refused(INVALID_PROFILE, f"security profile {profile} needs a wss:// URL")
    if profile < active_profile:
        raise Refused(NO_DOWNGRADE, f"the active security profile is {active_profile}")
    if int(data["messageTimeout"]) < 1:
        raise Refused(INVALID_PROFILE, "messageTimeout must be at least 1 s")
    return NetworkProfile.from_connection_data(data)


class NetworkProfiles:
    """The profiles of the configuration slots, stored in the database."""

    def __init__(self, db: Database, model: DeviceModel, configured: NetworkProfile) -> None:
        self.db = db
        self.model = model
        self.configured = configured
        # What profiles 2 and 3 need; the app's certificate store tells (see ``attach``).
        self.has_csms_root: Callable[[], bool] = lambda: False
        self.has_client_certificate: Callable[[], bool] = lambda: False

    def slots(self) -> list[int]:
        spec = self.model.spec(COMM, PRIORITY)
        return [int(v) for v in spec.characteristics.values_list]

    def active_security_profile(self) -> int:
        return self.model.get_int(SECURITY, "SecurityProfile")

    def get(self, slot: int) -> NetworkProfile | None:
        row = self.db.query_one("SELECT data FROM network_profiles WHERE slot = ?", (slot,))
        if row is not None:
            try:
                return NetworkProfile.from_connection_data(json.loads(row["data"]))
            except (ValueError, KeyError, TypeError) as err:
                log.error("ignoring the unreadable network profile of slot %d: %s", slot, err)
        return self.configured if slot == CONFIGURED_SLOT else None

    def store(self, slot: int, profile: NetworkProfile) -> None:
        """Raises StorageError."""
        data = json.dumps(profile.connection_data())
        with self.db.transaction():
            self.db.execute(
                "INSERT INTO network_profiles (slot, data) VALUES (?, ?) "
                "ON CONFLICT (slot) DO UPDATE SET data = excluded.data",
                (slot, data),
            )

    def remove(self, slot: int) -> None:
        with self.db.transaction():
            self.db.execute("DELETE FROM network_profiles WHERE slot = ?", (slot,))

    def priority(self) -> list[int]:
        return [int(s) for s in self.model.get_list(COMM, PRIORITY)]

    def check_priority(self, value: str) -> None:
        """The guard of NetworkConfigurationPriority; raises InvalidValue."""
        slots = [int(s) for s in value.split(",") if s]
        if len(set(slots)) != len(slots):
            raise InvalidValue(StatusInfoReasonType.invalid_value, "names a slot twice")
        active = self.active_security_profile()
        for slot in slots:
            profile = self.get(slot)
            if profile is None:
                raise InvalidValue(
                    StatusInfoReasonType.invalid_value, f"slot {slot} has no network profile"
                )
            if profile.security_profile < active:
                raise InvalidValue(
                    StatusInfoReasonType.invalid_value,
                    f"slot {slot} is below the active security profile {active}",
                )
            if profile.security_profile >= 2 and not self.has_csms_root():
                raise InvalidValue(
                    StatusInfoReasonType.missing_device_model_info,
                    f"slot {slot}'s security profile needs a CSMS root certificate first",
                )
            if profile.security_profile == 3 and not self.has_client_certificate():
                raise InvalidValue(
                    StatusInfoReasonType.missing_device_model_info,
                    f"slot {slot}'s security profile 3 needs a charging station certificate first",
                )

    def last_connected(self) -> tuple[int, NetworkProfile] | None:
        row = self.db.query_one("SELECT slot, data FROM network_last_connected WHERE id = 1")
        if row is None:
            return None
        try:
            return int(row["slot"]), NetworkProfile.from_connection_data(json.loads(row["data"]))
        except (ValueError, KeyError, TypeError) as err:
            log.error("ignoring the unreadable last connected network profile: %s", err)
            return None

    def record_connected(self, slot: int, profile: NetworkProfile) -> None:
        data = json.dumps(profile.connection_data())
        with self.db.transaction():
            self.db.execute(
                "INSERT INTO network_last_connected (id, slot, data) VALUES (1, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET slot = excluded.slot, data = excluded.data",
                (slot, data),
            )


class NetworkHandlers:
    """SetNetworkProfile (B09)."""

    def __init__(self, profiles: NetworkProfiles) -> None:
        self.profiles = profiles

    def register(self, rpc: Rpc) -> None:
        rpc.on("SetNetworkProfile", self.set_network_profile, version=V201)

    async def set_network_profile(self, req: dict[str, Any]) -> Reply:
        slot = int(req["configurationSlot"])
        try:
            if slot not in self.profiles.slots():
                raise Refused(INVALID_SLOT, f"the slots are {self.profiles.slots()}")
            profile = usable(req["connectionData"], self.profiles.active_security_profile())
        except Refused as err:
            log.warning("SetNetworkProfile for slot %d rejected: %s", slot, err.info)
            return Reply(
                {
                    "status": "Rejected",
                    "statusInfo": {"reasonCode": err.reason, "additionalInfo": err.info},
                }
            )
        try:
            self.profiles.store(slot, profile)
        except StorageError as err:
            log.error("cannot store the network profile of slot %d: %s", slot, err)
            return Reply({"status": "Failed"})
        log.info(
            "network profile of slot %d set: %s, security profile %d",
            slot,
            profile.url,
            profile.security_profile,
        )
        return Reply({"status": "Accepted"})


@dataclass(frozen=True, slots=True)
class _Candidate:
    slot: int
    fallback: NetworkProfile | None = None  # the last connection's copy (B10.FR.07)


class Dialer:
    """Which network profile each connection attempt uses (the connection's route)."""

    def __init__(self, profiles: NetworkProfiles, model: DeviceModel) -> None:
        self.profiles = profiles
        self.model = model
        self._round = self._new_round()
        self._at = 0
        self._failures = 0
        # Told when a connection came up on another profile than the last one that worked.
        self.on_switch: Callable[[], None] = lambda: None
        # Told when a connection raised the active security profile (old, new, slot).
        self.on_raise: Callable[[int, int, int], None] = lambda _old, _new, _slot: None
        # Told the profile's CALL timeout once its connection is up.
        self.on_timeout: Callable[[float], None] = lambda _seconds: None

    def _new_round(self) -> list[_Candidate]:
        candidates = [
            _Candidate(slot)
            for slot in self.profiles.priority()
            if self.profiles.get(slot) is not None
        ]
        last = self.profiles.last_connected()
        if last is not None:
            listed = {self.profiles.get(c.slot) for c in candidates}
            if last[1] not in listed:
                candidates.append(_Candidate(last[0], last[1]))
        return candidates or [_Candidate(CONFIGURED_SLOT)]

    def target(self) -> tuple[int, NetworkProfile]:
        """The slot and profile of the next attempt."""
        candidate = self._round[self._at]
        profile = candidate.fallback or self.profiles.get(candidate.slot)
        if profile is None:  # removed since the round began
            profile = self.profiles.configured
        return candidate.slot, profile

    def csms_url(self) -> str:
        return self.target()[1].url

    def security_profile(self) -> int:
        return self.target()[1].security_profile

    def failed(self) -> None:
        """An attempt on the current target failed."""
        self._failures += 1
        attempts = max(1, self.model.get_int(COMM, "NetworkProfileConnectionAttempts"))
        if self._failures < attempts:
            return
        slot, profile = self.target()
        self._failures = 0
        self._at += 1
        if self._at >= len(self._round):
            self._round, self._at = self._new_round(), 0
        next_slot, next_profile = self.target()
        if (next_slot, next_profile) != (slot, profile):
            log.warning(
                "network profile %d (%s) failed %d time(s); trying profile %d (%s)",
                slot,
                profile.url,
                attempts,
                next_slot,
                next_profile.url,
            )

    def connected(self) -> None:
        """The attempt on the current target worked."""
        self._failures = 0
        slot, profile = self.target()
        last = self.profiles.last_connected()
        if last != (slot, profile):
            try:
                self.profiles.record_connected(slot, profile)
            except StorageError as err:
                log.error("cannot record the network profile in use: %s", err)
            if last is not None:
                log.info(
                    "connected on network profile %d (%s): registering again", slot, profile.url
                )
                self.on_switch()
        try:
            self.model.update(COMM, "ActiveNetworkProfile", str(slot))
        except (InvalidValue, StorageError) as err:
            log.error("cannot update ActiveNetworkProfile: %s", err)
        self.on_timeout(profile.message_timeout_s)
        self._raise(slot, profile)

    def _raise(self, slot: int, profile: NetworkProfile) -> None:
        """A05: the security profile only goes up, and what is below it goes."""
        active = self.profiles.active_security_profile()
        if profile.security_profile <= active:
            return
        try:
            self.model.update(SECURITY, "SecurityProfile", str(profile.security_profile))
        except (InvalidValue, StorageError) as err:
            log.error("cannot raise SecurityProfile: %s", err)
            return
        for other in self.profiles.slots():
            stored = self.profiles.get(other)
            if stored is not None and stored.security_profile < profile.security_profile:
                try:
                    self.profiles.remove(other)
                except StorageError as err:
                    log.error("cannot remove network profile %d: %s", other, err)
        kept = []
        for s in self.profiles.priority():
            p = self.profiles.get(s)
            if p is not None and p.security_profile >= profile.security_profile:
                kept.append(str(s))
        if not kept:
            kept = [str(slot)]
        try:
            self.model.update(COMM, PRIORITY, ",".join(kept))
        except (InvalidValue, StorageError) as err:
            log.error("cannot update NetworkConfigurationPriority: %s", err)
        log.warning(
            "security profile raised from %d to %d on network profile %d; "
            "NetworkConfigurationPriority is now %s",
            active,
            profile.security_profile,
            slot,
            ",".join(kept),
        )
        self.on_raise(active, profile.security_profile, slot)
