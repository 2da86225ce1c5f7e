"""Start-up cost of the daemon's imports.

Loading the firmware builds many long-lived objects (classes, dataclass methods,
compiled patterns) and no garbage; cyclic collections while they load only cost
time (about a tenth of the start-up, measured on x86). What they build lives as
long as the process, so it is frozen out of every later collection.
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
