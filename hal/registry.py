"""Backend name → factory, imported lazily.

A backend module is imported only when it is chosen, so a vendor library that
is missing on this machine fails only for the backend that needs it, with a
clear message. Each backend module has ``build`` and ``check``: ``check``
refuses, with the same ``HalConfigError``, what ``build`` would refuse because
of the settings, without opening a device (``chargepoint check-config``, and
``chargepoint run`` before anything starts).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import cast

from hal.errors import HalConfigError
from hal.interfaces import BoardSettings, HalBackend

BACKENDS: dict[str, str] = {
    "simulated": "hal.sim.backend:build",
    "emulated": "hal.emulated.backend:build",
    "hardware": "hal.hardware.backend:build",
}

BackendFactory = Callable[[Mapping[str, object], int, BoardSettings], HalBackend]
BackendCheck = Callable[[Mapping[str, object], int, BoardSettings], None]


def _module(name: str) -> tuple[ModuleType, str]:
    try:
        target = BACKENDS[name]
    except KeyError:
        known = ", ".join(sorted(BACKENDS))
        raise HalConfigError(f"hal.backend: unknown backend {name!r} (known: {known})") from None
    module_name, _, attr = target.partition(":")
    try:
        return importlib.import_module(module_name), attr
    except ImportError as err:
        raise HalConfigError(f"HAL backend {name!r} cannot be loaded: {err}") from err


def load_factory(name: str) -> BackendFactory:
    """Return the ``build`` function of backend ``name``."""
    module, attr = _module(name)
    return cast(BackendFactory, getattr(module, attr))


def check_backend(
    name: str, options: Mapping[str, object], connectors: int, board: BoardSettings
) -> None:
    """Raise the ``HalConfigError`` ``build_backend`` would raise for these settings."""
    module, _ = _module(name)
    check = cast(BackendCheck, module.check)
    check(options, connectors, board)


def build_backend(
    name: str, options: Mapping[str, object], connectors: int, board: BoardSettings
) -> HalBackend:
    """Build backend ``name`` for ``connectors`` connectors (ids 1..N)."""
    return load_factory(name)(options, connectors, board)
