"""GPIO drivers built on gpiozero: contactor, cable lock and emergency-stop input.

- ``hal.gpio.relay.GpioRelay``: contactor coil output with auxiliary-contact
  feedback, weld and failed-to-close detection (``hal.interfaces.Relay``);
- ``hal.gpio.lock.GpioLock``: motorised cable lock driven by lock/unlock pulses
  with a position switch (``hal.interfaces.ConnectorLock``);
- ``hal.gpio.inputs.GpioEmergencyStop``: debounced emergency-stop input that
  reports ``Fault.EMERGENCY_STOP`` on connector 0; ``GpioTamper``, the same
  for a tamper switch (``Fault.TAMPER``).

Every driver takes ``pin_factory``: pass the factory explicitly (see
``make_factory``) rather than relying on gpiozero's global default, so that a
machine without GPIO fails with ``HalConfigError`` instead of guessing.

Input conventions: a contact feedback (auxiliary contact, lock switch)
configured active-high uses the internal pull-down, one configured active-low
the pull-up, so an open contact or a broken wire reads "not closed". The
emergency-stop and tamper inputs pull the other way, towards "active", so that
a normally-closed contact fails safe.
Drivers poll their inputs from asyncio (never from gpiozero's callback
threads), so every state change happens on the event loop.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from hal.errors import HalConfigError

ENTRY_POINT_GROUP = "gpiozero_pin_factories"


def make_factory(kind: str) -> object:
    """Create the gpiozero pin factory named ``kind`` ("lgpio", "rpigpio", "mock", ...).

    The names are gpiozero's own (its ``gpiozero_pin_factories`` entry points).
    Raises ``HalConfigError`` for an unknown name or a factory that cannot be
    created on this machine (missing library, no GPIO chip).
    """
    if not isinstance(kind, str) or not kind:
        raise HalConfigError(f"GPIO pin factory must be a name, got {kind!r}")
    found = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    entry = found.get(kind) or found.get(kind.lower())
    if entry is None:
        known = ", ".join(sorted(found)) or "none installed"
        raise HalConfigError(f"unknown GPIO pin factory {kind!r} (known: {known})")
    try:
        factory_class = entry.load()
        factory: object = factory_class()
    except Exception as err:
        raise HalConfigError(f"GPIO pin factory {kind!r} cannot be used here: {err}") from err
    return factory
