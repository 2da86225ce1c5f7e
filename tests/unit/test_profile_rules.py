"""Install, replace and clear rules for charging profiles (table-driven)."""

from __future__ import annotations

import pytest
from ocpp.v16.enums import ChargingProfilePurposeType as Purpose

from firmware.smart_charging.profiles import InstalledProfile
from firmware.smart_charging.rules import (
    ClearFilter,
    TooManyProfiles,
    bind_transaction,
    clear,
    end_transaction,
    install,
)
from tests.unit.charging_payloads import install as parsed
from tests.unit.charging_payloads import payload

MAX = "ChargePointMaxProfile"
DEFAULT = "TxDefaultProfile"
TX = "TxProfile"


def item(
    profile_id: int,
    purpose: str = DEFAULT,
    *,
    connector: int = 1,
    stack: int = 0,
    transaction_id: int | None = None,
) -> InstalledProfile:
    kind = "Relative"
    return parsed(
        connector,
        payload(profile_id, purpose, kind=kind, stack=stack, transaction_id=transaction_id),
    )


# Installed before (ids), the new profile, ids installed after.
INSTALL_CASES: dict[str, tuple[list[InstalledProfile], InstalledProfile, list[int]]] = {
    "empty": ([], item(1), [1]),
    "same id replaces, whatever else differs": (
        [item(1, stack=3, connector=2)],
        item(1, stack=0, connector=1),
        [1],
    ),
    "same purpose and stack level on the connector replaces": (
        [item(1, stack=2), item(2, stack=3)],
        item(3, stack=2),
        [2, 3],
    ),
    "same level on another connector stays": (
        [item(1, stack=2, connector=2)],
        item(3, stack=2),
        [1, 3],
    ),
    "same level, other purpose stays": ([item(1, TX, stack=2)], item(3, stack=2), [1, 3]),
    "station maximum on connector 0 replaces its level only": (
        [item(1, MAX, connector=0, stack=1), item(2, MAX, connector=0, stack=2)],
        item(3, MAX, connector=0, stack=1),
        [2, 3],
    ),
    "a TxProfile replaces the remote start one at its stack level": (
        [item(1, TX, stack=0, transaction_id=77), item(2, DEFAULT, stack=0)],
        item(3, TX, stack=0, transaction_id=77),
        [2, 3],
    ),
    "a TxProfile at another stack level stacks": (
        [item(1, TX, stack=0, transaction_id=77)],
        item(3, TX, stack=4, transaction_id=77),
        [1, 3],
    ),
    "a TxProfile on another connector stays": (
        [item(1, TX, stack=0, connector=2)],
        item(3, TX, stack=0, transaction_id=77),
        [1, 3],
    ),
}


@pytest.mark.parametrize("case", sorted(INSTALL_CASES))
def test_install_replaces_by_the_rules(case: str) -> None:
    before, new, after = INSTALL_CASES[case]
    change = install(before, new, maximum=10)
    assert sorted(i.profile.charging_profile_id for i in change.installed) == after
    gone = {i.profile.charging_profile_id for i in before} - set(after)
    if new.profile.charging_profile_id in {i.profile.charging_profile_id for i in before}:
        gone.add(new.profile.charging_profile_id)
    assert change.removed == gone
    assert change.installed[-1] is new


def test_install_beyond_the_maximum_is_refused_but_replacing_is_not() -> None:
    full = [item(1, stack=0), item(2, stack=1)]
    with pytest.raises(TooManyProfiles, match="MaxChargingProfilesInstalled"):
        install(full, item(3, stack=2), maximum=2)
    assert len(install(full, item(3, stack=1), maximum=2).installed) == 2
    assert len(install(full, item(2, stack=7), maximum=2).installed) == 2


INSTALLED = [
    item(1, DEFAULT, connector=1, stack=1),
    item(2, DEFAULT, connector=1, stack=2),
    item(3, DEFAULT, connector=2, stack=1),
    item(4, MAX, connector=0, stack=1),
    item(5, TX, connector=2, stack=1),
    item(6, DEFAULT, connector=0, stack=1),
]

CLEAR_CASES: dict[str, tuple[ClearFilter, set[int]]] = {
    "by id": (ClearFilter(profile_id=3), {3}),
    "by id ignores the other criteria": (
        ClearFilter(profile_id=3, connector_id=1, purpose=Purpose.tx_profile, stack_level=9),
        {3},
    ),
    "unknown id": (ClearFilter(profile_id=99), set()),
    "by connector": (ClearFilter(connector_id=2), {3, 5}),
    "connector 0 is the station's own": (ClearFilter(connector_id=0), {4, 6}),
    "by purpose": (ClearFilter(purpose=Purpose.tx_default_profile), {1, 2, 3, 6}),
    "by stack level": (ClearFilter(stack_level=1), {1, 3, 4, 5, 6}),
    "all criteria together": (
        ClearFilter(connector_id=1, purpose=Purpose.tx_default_profile, stack_level=2),
        {2},
    ),
    "criteria matching nothing": (ClearFilter(connector_id=1, purpose=Purpose.tx_profile), set()),
    "no criteria clears all": (ClearFilter(), {1, 2, 3, 4, 5, 6}),
}


@pytest.mark.parametrize("case", sorted(CLEAR_CASES))
def test_clear_by_criteria(case: str) -> None:
    criteria, removed = CLEAR_CASES[case]
    change = clear(INSTALLED, criteria)
    assert change.removed == removed
    remaining = {i.profile.charging_profile_id for i in change.installed}
    assert remaining == {1, 2, 3, 4, 5, 6} - removed


def test_remote_start_profile_gets_the_transaction_id() -> None:
    installed = [item(1, TX, connector=1), item(2, TX, connector=2), item(3, DEFAULT)]
    after, bound = bind_transaction(installed, 1, 42)
    assert [i.profile.charging_profile_id for i in bound] == [1]
    assert [i.profile.transaction_id for i in after] == [42, None, None]
    assert bind_transaction(after, 1, 43)[1] == ()  # already bound: kept


def test_transaction_end_drops_only_its_tx_profiles() -> None:
    installed = [*INSTALLED, item(7, TX, connector=1, stack=3)]
    change = end_transaction(installed, 2)
    assert change.removed == {5}
    assert end_transaction(change.installed, 2).removed == frozenset()
    assert end_transaction(installed, 1).removed == {7}
