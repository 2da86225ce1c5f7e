"""OperatorPlant: every plant action is a prompt to a person (here, an injected function)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from hal.interfaces import Fault
from hil.plant import FAULT_INSTRUCTIONS, OperatorPlant, PlantError
from hil.results import NotApplicable
from hil.scenario import all_scenarios


class Person:
    """Answers every prompt with the next of ``answers`` (Enter when they run out)."""

    def __init__(self, *answers: str) -> None:
        self.prompts: list[str] = []
        self.answers = list(answers)
        self.threads: set[int] = set()

    def __call__(self, text: str) -> str:
        self.prompts.append(text)
        self.threads.add(threading.get_ident())
        return self.answers.pop(0) if self.answers else ""


async def test_each_action_is_one_prompt() -> None:
    person = Person()
    plant = OperatorPlant(person, card_hint="the blue card")
    await plant.set_pilot(1, "B")
    await plant.tap("04A1B2C3")
    await plant.tap("04A1B2C3", connector=2)
    await plant.set_fault("rcd_trip", True, 1)
    await plant.set_fault("rcd_trip", False, 1)
    await plant.set_fault("emergency_stop", True, 0)
    await plant.wait_relay(1, True, timeout=5)
    await plant.set_pilot(1, "A")
    assert plant.asked == [
        "connector 1: plug the vehicle in, not asking for energy (EV simulator: state B)",
        "tap card 04A1B2C3 (the blue card) on the reader, once",
        "tap card 04A1B2C3 (the blue card) on connector 2's reader, once",
        "connector 1: trip the residual current device (its test button)",
        "connector 1: reset the residual current device",
        "station: press the emergency stop",
        "wait until connector 1's contactor has closed (the EV simulator shows energy)",
        "connector 1: unplug the vehicle (EV simulator: state A)",
    ]
    assert all(p.rstrip().endswith("(or type n/a if this bench cannot):") for p in person.prompts)
    assert person.prompts[0].startswith("\n▶ connector 1: plug the vehicle in")
    assert threading.get_ident() not in person.threads  # never blocks the event loop


@pytest.mark.parametrize("answer", ["n/a", "N/A", " skip ", "na"])
async def test_operator_can_say_not_applicable(answer: str) -> None:
    plant = OperatorPlant(Person(answer))
    with pytest.raises(NotApplicable, match="the operator could not: station: disconnect"):
        await plant.set_fault("reader_offline", True, 0)


async def test_any_other_answer_means_done() -> None:
    plant = OperatorPlant(Person("done", "ok"))
    await plant.set_pilot(1, "C")
    await plant.set_pilot(1, "A")
    assert len(plant.asked) == 2


async def test_end_of_input_is_a_plant_error() -> None:
    def closed(_text: str) -> str:
        raise EOFError

    with pytest.raises(PlantError, match="no operator to ask"):
        await OperatorPlant(closed).tap("AA")


async def test_bad_requests_are_refused_without_asking() -> None:
    person = Person()
    plant = OperatorPlant(person)
    with pytest.raises(PlantError, match=r"one of A\.\.F"):
        await plant.set_pilot(1, "X")
    with pytest.raises(PlantError, match="no instructions"):
        await plant.set_fault("melted", True, 1)
    assert person.prompts == []


async def test_the_bench_keeps_running_while_the_operator_acts() -> None:
    release = threading.Event()

    def slow_person(_text: str) -> str:
        assert release.wait(5)
        return ""

    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            if ticks == 5:
                release.set()
            await asyncio.sleep(0.01)

    task = asyncio.create_task(ticker())
    try:
        await OperatorPlant(slow_person).tap("AA")
    finally:
        task.cancel()
    assert ticks >= 5


def test_every_fault_has_instructions_and_a_scenario() -> None:
    assert set(FAULT_INSTRUCTIONS) == {f.value for f in Fault}
    names = {s.name for s in all_scenarios()}
    assert {f"fault_{f.value}" for f in Fault} <= names
