"""DBC databases and checked encoding/decoding of one message with ``cantools``.

A ``FrameCodec`` binds one DBC message to the arbitration id a connector uses
(the DBC ids are defaults: one bus serves several connectors with their own
ids). ``decode`` accepts a frame only when it is a standard data frame of the
message's exact length whose every signal lies in its DBC range (or is one of
the signal's named values, e.g. ``255 "NotAvailable"``); anything else raises
``BadFrame``.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping
from pathlib import Path

import can
import cantools
from cantools.database.can import Database, Message, Signal
from cantools.database.errors import DecodeError, UnsupportedDatabaseFormatError

from hal import resources
from hal.errors import HalConfigError

STANDARD_ID_MAX = 0x7FF
_DIGITS = 9  # scaled values are rounded to this many decimals (26.700000000000003 -> 26.7)


class BadFrame(ValueError):
    """A received frame is malformed or carries values outside the DBC ranges."""


@functools.lru_cache(maxsize=16)
def _load_path(path: Path) -> Database:
    try:
        db = cantools.database.load_file(path)
    except (OSError, UnsupportedDatabaseFormatError) as err:
        raise HalConfigError(f"cannot load DBC file {str(path)!r}: {err}") from err
    if not isinstance(db, Database):
        raise HalConfigError(f"{str(path)!r} is not a CAN database")
    return db


def load(name: str) -> Database:
    """The CAN database of built-in name ``name`` (``config/can/<name>.dbc``) or a path."""
    return _load_path(resources.find("can", name, ".dbc").resolve())


def check_standard_id(name: str, frame_id: object) -> int:
    """``frame_id`` when it is an 11-bit identifier; ``HalConfigError`` if not."""
    if isinstance(frame_id, bool) or not isinstance(frame_id, int):
        raise HalConfigError(f"{name}: must be a CAN identifier, got {frame_id!r}")
    if not 0 <= frame_id <= STANDARD_ID_MAX:
        raise HalConfigError(f"{name}: must be an 11-bit CAN identifier, got {frame_id:#x}")
    return frame_id


def _in_range(signal: Signal, raw: float, value: float) -> bool:
    if signal.choices is not None and raw in signal.choices:
        return True
    slack = abs(signal.scale) / 2.0
    if signal.minimum is not None and value < signal.minimum - slack:
        return False
    return not (signal.maximum is not None and value > signal.maximum + slack)


class FrameCodec:
    """Encode and decode one DBC message sent under ``frame_id``."""

    def __init__(self, db: Database, message: str, frame_id: int, signals: Collection[str]) -> None:
        try:
            self._message: Message = db.get_message_by_name(message)
        except KeyError:
            raise HalConfigError(f"DBC has no message {message!r}") from None
        have = {signal.name for signal in self._message.signals}
        missing = sorted(set(signals) - have)
        if missing:
            raise HalConfigError(f"DBC message {message!r} lacks signal(s) {', '.join(missing)}")
        self.name = message
        self.frame_id = frame_id
        self.length: int = self._message.length

    def encode(self, values: Mapping[str, float]) -> can.Message:
        """A data frame with ``values`` (physical units); cantools checks the ranges."""
        data = self._message.encode(dict(values), strict=True)
        return can.Message(
            arbitration_id=self.frame_id,
            data=data,
            is_extended_id=False,
            dlc=self.length,
        )

    def decode(self, frame: can.Message) -> dict[str, float]:
        """Physical values of ``frame``'s signals; ``BadFrame`` unless it is well formed."""
        if frame.is_error_frame or frame.is_remote_frame or frame.is_extended_id:
            raise BadFrame(f"{self.name}: not a standard data frame")
        if frame.arbitration_id != self.frame_id:
            raise BadFrame(f"{self.name}: unexpected identifier {frame.arbitration_id:#x}")
        data = bytes(frame.data)
        if len(data) != self.length:
            raise BadFrame(f"{self.name}: {len(data)} data bytes instead of {self.length}")
        try:
            raw = self._message.decode(data, decode_choices=False, scaling=False)
        except DecodeError as err:
            raise BadFrame(f"{self.name}: {err}") from err
        if not isinstance(raw, dict):
            raise BadFrame(f"{self.name}: not a plain message")
        values: dict[str, float] = {}
        for signal in self._message.signals:
            raw_value = raw[signal.name]
            if not isinstance(raw_value, int | float):
                raise BadFrame(f"{self.name}.{signal.name}: undecodable value {raw_value!r}")
            value = signal.raw_to_scaled(raw_value, decode_choices=False)
            if not isinstance(value, int | float):
                raise BadFrame(f"{self.name}.{signal.name}: undecodable value {value!r}")
            if not _in_range(signal, raw_value, value):
                raise BadFrame(
                    f"{self.name}.{signal.name}: {value:g} outside "
                    f"{signal.minimum}..{signal.maximum}"
                )
            values[signal.name] = round(float(value), _DIGITS)
        return values
