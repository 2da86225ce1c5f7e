"""What one bench scenario came to: passed, failed, errored, or not applicable to this bench."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["NotApplicable", "Outcome", "ScenarioFailed", "ScenarioResult"]


class Outcome(enum.StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"  # the station did not do what the scenario expects
    ERROR = "ERROR"  # the scenario could not run (bench trouble, a crash of the runner)
    NOT_APPLICABLE = "N/A"  # this bench cannot run it (a power cut of a station it does not own)


class ScenarioFailed(AssertionError):
    """The station's behaviour differs from what the scenario expects."""


class NotApplicable(Exception):
    """The scenario cannot run on this bench; the message says why."""


@dataclass(frozen=True, slots=True)
class ScenarioResult:
    name: str
    outcome: Outcome
    seconds: float
    detail: str = ""
    description: str = ""

    @property
    def applicable(self) -> bool:
        return self.outcome is not Outcome.NOT_APPLICABLE

    @property
    def passed(self) -> bool:
        return self.outcome is Outcome.PASS
