"""Data files of the HAL (CAN DBC files, meter register maps) found by name or path.

They live in ``config/`` of the source tree (``config/can/*.dbc``,
``config/meters/*.yaml``) and are installed with the package under
``<prefix>/share/chargepoint/config/``. A configuration may name a built-in
file (``map: sdm630``) or give a path to its own.
"""

from __future__ import annotations

import sys
from pathlib import Path

from hal.errors import HalConfigError

_SOURCE = Path(__file__).resolve().parent.parent / "config"
_INSTALLED = Path(sys.prefix) / "share" / "chargepoint" / "config"


def find(kind: str, name: str, suffix: str) -> Path:
    """Path of data file ``name`` of ``kind`` ("can", "meters"); a path is taken as is."""
    candidate = Path(name).expanduser()
    if candidate.suffix or "/" in name:
        if candidate.is_file():
            return candidate
        raise HalConfigError(f"{kind} file {name!r} does not exist")
    for root in (_SOURCE, _INSTALLED):
        path = root / kind / f"{name}{suffix}"
        if path.is_file():
            return path
    known = sorted(
        {p.stem for root in (_SOURCE, _INSTALLED) for p in (root / kind).glob(f"*{suffix}")}
    )
    raise HalConfigError(f"no built-in {kind} file {name!r} (known: {', '.join(known) or 'none'})")
