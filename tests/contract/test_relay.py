"""Relay contract: command, feedback, welded and failed-to-close contactors."""

from __future__ import annotations

import pytest

from hal.errors import RelayError
from hal.interfaces import Fault, Relay
from tests.contract.rigs import Rig


def relay_of(rig: Rig, connector_id: int = 1) -> Relay:
    return rig.backend.connectors[connector_id].relay


async def test_relay_starts_open(rig: Rig) -> None:
    relay = relay_of(rig)
    assert isinstance(relay, Relay)
    assert relay.commanded_closed is False
    assert relay.feedback_closed in (False, None)


async def test_close_then_open_follow_command_and_feedback(rig: Rig) -> None:
    relay = relay_of(rig)
    await relay.close()
    await rig.settle()
    assert relay.commanded_closed is True
    assert relay.feedback_closed in (True, None)
    await relay.open()
    await rig.settle()
    assert relay.commanded_closed is False
    assert relay.feedback_closed in (False, None)


async def test_close_and_open_are_idempotent(rig: Rig) -> None:
    relay = relay_of(rig)
    await relay.close()
    await relay.close()
    assert relay.commanded_closed is True
    await relay.open()
    await relay.open()
    assert relay.commanded_closed is False


async def test_relays_of_connectors_are_independent(rig: Rig) -> None:
    await relay_of(rig, 1).close()
    await rig.settle()
    assert relay_of(rig, 1).commanded_closed is True
    assert relay_of(rig, 2).commanded_closed is False
    assert relay_of(rig, 2).feedback_closed in (False, None)


async def test_welded_contactor_fails_open_but_releases_coil(rig: Rig) -> None:
    relay = relay_of(rig)
    await relay.close()
    rig.plant.set_fault(1, Fault.CONTACTOR_WELDED, True)
    await rig.settle()
    with pytest.raises(RelayError):
        await relay.open()
    assert relay.commanded_closed is False
    assert relay.feedback_closed is True


async def test_welded_contactor_is_never_energized(rig: Rig) -> None:
    relay = relay_of(rig)
    rig.plant.set_fault(1, Fault.CONTACTOR_WELDED, True)
    await rig.settle()
    assert relay.feedback_closed is True
    with pytest.raises(RelayError):
        await relay.close()
    assert relay.commanded_closed is False


async def test_welded_contactor_usable_again_after_clearing(rig: Rig) -> None:
    relay = relay_of(rig)
    rig.plant.set_fault(1, Fault.CONTACTOR_WELDED, True)
    rig.plant.set_fault(1, Fault.CONTACTOR_WELDED, False)
    await rig.settle()
    assert relay.feedback_closed is False
    await relay.close()
    assert relay.feedback_closed is True
    await relay.open()
    assert relay.feedback_closed is False


async def test_failed_to_close_raises_and_leaves_coil_released(rig: Rig) -> None:
    relay = relay_of(rig)
    rig.plant.set_fault(1, Fault.CONTACTOR_FAILED_TO_CLOSE, True)
    await rig.settle()
    with pytest.raises(RelayError):
        await relay.close()
    assert relay.feedback_closed is False
    assert relay.commanded_closed is False
    await relay.open()  # opening an open contactor verifies fine


async def test_failed_to_close_on_one_connector_spares_the_other(rig: Rig) -> None:
    rig.plant.set_fault(1, Fault.CONTACTOR_FAILED_TO_CLOSE, True)
    await rig.settle()
    await relay_of(rig, 2).close()
    assert relay_of(rig, 2).feedback_closed is True


async def test_close_works_again_after_failure_clears(rig: Rig) -> None:
    relay = relay_of(rig)
    rig.plant.set_fault(1, Fault.CONTACTOR_FAILED_TO_CLOSE, True)
    with pytest.raises(RelayError):
        await relay.close()
    rig.plant.set_fault(1, Fault.CONTACTOR_FAILED_TO_CLOSE, False)
    await rig.settle()
    await relay.close()
    assert relay.commanded_closed is True
    assert relay.feedback_closed is True
