"""Which profiles stay installed: install, replace and clear (pure, no I/O).

OCPP 1.6 edition 2 rules:

- A new profile replaces an installed one with the same chargingProfileId,
  wherever that one is installed (§5.16.3: the id identifies the profile).
- A new profile replaces an installed one of the same purpose and stack
  level on the same connector (§3.13.2: two profiles of one purpose and level
  do not coexist; the newer wins).
- The TxProfile of a RemoteStartTransaction has no transactionId; it gets
  the transaction's id once the CSMS has assigned one (§5.16.2), so the CSMS
  can replace it like any other (same id, or same stack level).
- After replacement, no more than MaxChargingProfilesInstalled profiles; a
  profile that would exceed it is refused and nothing changes.
- ClearChargingProfile (§5.5, §6.11): with an id, the profile with that id
  only (the other criteria are ignored); without one, every profile matching
  all criteria given (connectorId, purpose, stackLevel); none given clears
  all. Nothing matched: Unknown.
- A TxProfile lives as long as its transaction: it goes when that ends.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from ocpp.v16.enums import ChargingProfilePurposeType

from firmware.smart_charging.errors import SmartChargingError
from firmware.smart_charging.profiles import InstalledProfile

Installed = tuple[InstalledProfile, ...]


class TooManyProfiles(SmartChargingError):
    """Installing the profile would exceed MaxChargingProfilesInstalled."""


@dataclass(frozen=True, slots=True)
class Change:
    """The profiles installed after an operation, and the ids that went."""

    installed: Installed
    removed: frozenset[int]


def _replaced_by(old: InstalledProfile, new: InstalledProfile) -> bool:
    a, b = old.profile, new.profile
    if a.charging_profile_id == b.charging_profile_id:
        return True
    return (
        old.connector_id == new.connector_id
        and a.purpose == b.purpose
        and a.stack_level == b.stack_level
    )


def install(
    installed: Sequence[InstalledProfile], new: InstalledProfile, *, maximum: int
) -> Change:
    """``installed`` with ``new`` added; raises TooManyProfiles (nothing changes then)."""
    kept = tuple(item for item in installed if not _replaced_by(item, new))
    if len(kept) + 1 > maximum:
        raise TooManyProfiles(
            f"{len(kept) + 1} profiles would exceed MaxChargingProfilesInstalled ({maximum})"
        )
    removed = frozenset(
        item.profile.charging_profile_id for item in installed if _replaced_by(item, new)
    )
    return Change((*kept, new), removed)


@dataclass(frozen=True, slots=True)
class ClearFilter:
    """The criteria of a ClearChargingProfile.req; None: not given."""

    profile_id: int | None = None
    connector_id: int | None = None
    purpose: ChargingProfilePurposeType | None = None
    stack_level: int | None = None

    def matches(self, item: InstalledProfile) -> bool:
        profile = item.profile
        if self.profile_id is not None:
            return profile.charging_profile_id == self.profile_id
        if self.connector_id is not None and item.connector_id != self.connector_id:
            return False
        if self.purpose is not None and profile.purpose != self.purpose:
            return False
        return self.stack_level is None or profile.stack_level == self.stack_level


def clear(installed: Sequence[InstalledProfile], criteria: ClearFilter) -> Change:
    """The profiles left after ClearChargingProfile; ``removed`` empty means Unknown."""
    return _without(installed, criteria.matches)


def end_transaction(installed: Sequence[InstalledProfile], connector_id: int) -> Change:
    """The transaction on ``connector_id`` ended: its TxProfiles go."""
    return _without(
        installed,
        lambda item: (
            item.connector_id == connector_id
            and item.profile.purpose == ChargingProfilePurposeType.tx_profile
        ),
    )


def bind_transaction(
    installed: Sequence[InstalledProfile], connector_id: int, transaction_id: int
) -> tuple[Installed, tuple[InstalledProfile, ...]]:
    """The TxProfiles on ``connector_id`` without a transactionId get ``transaction_id``.

    Returns every profile, and those that changed (to be saved).
    """
    bound: list[InstalledProfile] = []
    result: list[InstalledProfile] = []
    for item in installed:
        profile = item.profile
        if (
            item.connector_id == connector_id
            and profile.purpose == ChargingProfilePurposeType.tx_profile
            and profile.transaction_id is None
        ):
            item = replace(item, profile=replace(profile, transaction_id=transaction_id))
            bound.append(item)
        result.append(item)
    return tuple(result), tuple(bound)


def _without(
    installed: Sequence[InstalledProfile], gone: Callable[[InstalledProfile], bool]
) -> Change:
    kept = tuple(item for item in installed if not gone(item))
    removed = frozenset(item.profile.charging_profile_id for item in installed if gone(item))
    return Change(kept, removed)
