"""The bench scenarios: named coroutines that take a :class:`Bench` and return a detail line.

A scenario starts with the station idle (connected, the connector Available, no transaction)
and leaves the plant as it found it; it raises :class:`hil.results.ScenarioFailed` when the
station misbehaves and :class:`hil.results.NotApplicable` when this bench cannot run it.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from hil.bench import Bench

__all__ = ["SCENARIO_MODULES", "Scenario", "all_scenarios", "scenario", "select"]

ScenarioFn = Callable[[Bench], Awaitable[str]]

# In the order they run: the basics first, then the faults.
SCENARIO_MODULES = ("hil.scenarios", "hil.fault_scenarios")


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    run: ScenarioFn
    description: str


_REGISTRY: dict[str, Scenario] = {}


def scenario(name: str) -> Callable[[ScenarioFn], ScenarioFn]:
    """Register a scenario under ``name``; its docstring's first line describes it."""

    def register(fn: ScenarioFn) -> ScenarioFn:
        if name in _REGISTRY:
            raise ValueError(f"scenario {name!r} registered twice")
        description = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        _REGISTRY[name] = Scenario(name, fn, description)
        return fn

    return register


def all_scenarios() -> list[Scenario]:
    for module in SCENARIO_MODULES:
        importlib.import_module(module)
    return list(_REGISTRY.values())


def select(names: Sequence[str] | None) -> list[Scenario]:
    """The scenarios named (in the standard order), or all; ValueError names unknown ones."""
    scenarios = all_scenarios()
    if not names:
        return scenarios
    known = {s.name for s in scenarios}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(
            f"unknown scenario(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    wanted = set(names)
    return [s for s in scenarios if s.name in wanted]
