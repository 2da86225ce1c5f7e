"""IEC 61851-1 current coding of the control pilot PWM, both ways.

The EVSE side (``duty_for_current``): 6..51 A → duty % = I / 0.6;
51..80 A → duty % = I / 2.5 + 64; 0 A → no PWM (``None``).

The vehicle side (``current_for_duty``): 8..10 % → 6 A; 10..85 % → duty x 0.6;
85..96 % → (duty - 64) x 2.5; 96..97 % → 80 A; anything else (no PWM, 5 %
digital communication, out of range) → no valid offer (0 A).

The two codings do not meet at 51 A: an offer between 51 and 52.5 A is sent
as 84.4..85 % and read by the vehicle as 50.6..51 A, always on the safe side
(up to 52.75 A once ``duty_setpoint`` has rounded the duty down to 0.1 %).
"""

from __future__ import annotations

import math

MIN_CURRENT_A = 6.0
MAX_CURRENT_A = 80.0
LOW_RANGE_MAX_A = 51.0
DUTY_STEP_PERCENT = 0.1
_EPSILON = 1e-6


def check_offer(current_a: float) -> float:
    """``current_a`` as a float when it is a valid offer (0 or 6..80 A); ``ValueError`` if not."""
    value = float(current_a)
    if not math.isfinite(value) or value < 0.0 or 0.0 < value < MIN_CURRENT_A:
        raise ValueError(
            f"offered current must be 0 or {MIN_CURRENT_A:g}..{MAX_CURRENT_A:g} A, "
            f"got {current_a!r}"
        )
    if value > MAX_CURRENT_A:
        raise ValueError(f"offered current must be at most {MAX_CURRENT_A:g} A, got {value}")
    return value


def duty_for_current(current_a: float) -> float | None:
    """PWM duty cycle in % that offers ``current_a``; None (no PWM) for 0 A.

    Raises ``ValueError`` for an invalid offer (see ``check_offer``).
    """
    value = check_offer(current_a)
    if value == 0.0:
        return None
    if value <= LOW_RANGE_MAX_A:
        return value / 0.6
    return value / 2.5 + 64.0


def duty_setpoint(current_a: float, step_percent: float = DUTY_STEP_PERCENT) -> float | None:
    """``duty_for_current`` rounded down to the controller's resolution.

    Rounding down keeps the current the vehicle reads at or below the offer.
    """
    duty = duty_for_current(current_a)
    if duty is None:
        return None
    steps = math.floor(duty / step_percent + _EPSILON)
    return round(steps * step_percent, 6)


def current_for_duty(duty_percent: float | None) -> float:
    """Current in A a vehicle reads from a PWM duty cycle in %; 0.0 when there is no valid offer."""
    if duty_percent is None or not math.isfinite(duty_percent):
        return 0.0
    duty = duty_percent
    if 8.0 <= duty < 10.0:
        return MIN_CURRENT_A
    if 10.0 <= duty <= 85.0:
        return duty * 0.6
    if 85.0 < duty <= 96.0:
        return (duty - 64.0) * 2.5
    if 96.0 < duty <= 97.0:
        return MAX_CURRENT_A
    return 0.0
