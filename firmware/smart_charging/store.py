"""The installed charging profiles in the state database (migration 0005).

Each profile is one row: its id, the connector it was set for and the OCPP
ChargingProfile object as JSON. Writes are durable: a profile the CSMS was
told is Accepted survives a power cut.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable

from firmware.smart_charging.errors import ProfileError
from firmware.smart_charging.profiles import (
    InstalledProfile,
    ProfileLimits,
    parse_charging_profile,
    profile_to_ocpp,
)
from firmware.storage.db import Database

log = logging.getLogger("firmware.smart_charging")


class ProfileStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def load(self, limits: ProfileLimits) -> list[InstalledProfile]:
        """Every stored profile that is still valid under ``limits``; others are deleted."""
        found: list[InstalledProfile] = []
        for row in self._db.query(
            "SELECT profile_id, connector_id, payload FROM charging_profiles ORDER BY rowid"
        ):
            try:
                payload = json.loads(row["payload"])
                profile = parse_charging_profile(
                    payload, connector_id=int(row["connector_id"]), limits=limits
                )
            except (ValueError, ProfileError) as err:
                log.warning("stored charging profile %d dropped: %s", row["profile_id"], err)
                self.save((), removed=[int(row["profile_id"])])
                continue
            found.append(InstalledProfile(int(row["connector_id"]), profile))
        return found

    def save(self, added: Iterable[InstalledProfile], removed: Iterable[int] = ()) -> None:
        """Delete ``removed`` ids and write ``added`` in one durable commit."""
        with self._db.transaction():
            for profile_id in removed:
                self._db.execute(
                    "DELETE FROM charging_profiles WHERE profile_id = ?", (profile_id,)
                )
            for item in added:
                self._db.execute(
                    "INSERT OR REPLACE INTO charging_profiles (profile_id, connector_id, payload)"
                    " VALUES (?, ?, ?)",
                    (
                        item.profile.charging_profile_id,
                        item.connector_id,
                        json.dumps(profile_to_ocpp(item.profile), separators=(",", ":")),
                    ),
                )
