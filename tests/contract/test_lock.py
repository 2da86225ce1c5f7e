"""Connector lock contract: lock, unlock, motor failure, fixed cable."""

from __future__ import annotations

import pytest

from hal.errors import LockError
from hal.interfaces import BoardSettings, ConnectorLock, Fault
from tests.contract.rigs import MakeRig, Rig


def lock_of(rig: Rig, connector_id: int = 1) -> ConnectorLock:
    lock = rig.backend.connectors[connector_id].lock
    assert lock is not None
    return lock


async def test_lock_present_and_unlocked_at_start(rig: Rig) -> None:
    lock = lock_of(rig)
    assert isinstance(lock, ConnectorLock)
    assert lock.locked is False


async def test_lock_and_unlock(rig: Rig) -> None:
    lock = lock_of(rig)
    await lock.lock()
    assert lock.locked is True
    assert lock_of(rig, 2).locked is False
    await lock.unlock()
    assert lock.locked is False


async def test_lock_and_unlock_are_idempotent(rig: Rig) -> None:
    lock = lock_of(rig)
    await lock.lock()
    await lock.lock()
    assert lock.locked is True
    await lock.unlock()
    await lock.unlock()
    assert lock.locked is False


async def test_lock_failure_raises_and_keeps_position(rig: Rig) -> None:
    lock = lock_of(rig)
    rig.plant.set_fault(1, Fault.LOCK_FAILURE, True)
    await rig.settle()
    with pytest.raises(LockError):
        await lock.lock()
    assert lock.locked is False
    rig.plant.set_fault(1, Fault.LOCK_FAILURE, False)
    await lock.lock()
    rig.plant.set_fault(1, Fault.LOCK_FAILURE, True)
    await rig.settle()
    with pytest.raises(LockError):
        await lock.unlock()
    assert lock.locked is True


async def test_lock_failure_on_one_connector_spares_the_other(rig: Rig) -> None:
    rig.plant.set_fault(1, Fault.LOCK_FAILURE, True)
    await rig.settle()
    await lock_of(rig, 2).lock()
    assert lock_of(rig, 2).locked is True


async def test_lock_works_again_after_failure_clears(rig: Rig) -> None:
    lock = lock_of(rig)
    rig.plant.set_fault(1, Fault.LOCK_FAILURE, True)
    rig.plant.set_fault(1, Fault.LOCK_FAILURE, False)
    await rig.settle()
    await lock.lock()
    assert lock.locked is True


async def test_fixed_cable_has_no_lock(make_rig: MakeRig) -> None:
    rig = await make_rig(connectors=2, board=BoardSettings(has_lock=False))
    assert all(hw.lock is None for hw in rig.backend.connectors.values())
