"""Start-up cost of the daemon's imports.

Loading the firmware builds a few hundred thousand objects (classes, dataclass
methods, compiled patterns) and no garbage; a cyclic collection while they load
only costs time (a tenth of the start-up on a Raspberry Pi). What they build
lives as long as the process, so it is frozen out of every later collection.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def imports() -> Iterator[None]:
    """No cyclic garbage collection while the block imports; freeze what it built."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()
