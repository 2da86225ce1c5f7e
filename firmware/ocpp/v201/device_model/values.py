"""Whether a value fits a variable: its data type, limits, values list and own rule.

Values travel as text (``attributeValue`` is a string); ``check_value`` returns
the value as the station keeps it (``true``/``false`` in lower case, integers
without sign or leading zeros, list members spelled as in the values list) or
raises ``InvalidValue`` with the reason code for ``statusInfo`` and a problem
that reads after the variable's name ("must be an integer of at least 0").
The problem never repeats the value (a password must not travel back).
"""

from __future__ import annotations

import re

from ocpp.v201.enums import DataEnumType, StatusInfoReasonType

from firmware.clock import parse_iso
from firmware.ocpp.v201.device_model.catalog import Characteristics, VariableSpec
from firmware.ocpp.v201.device_model.errors import DeviceModelError

_INTEGER = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")

INVALID = StatusInfoReasonType.invalid_value
TOO_LOW = StatusInfoReasonType.value_too_low
TOO_HIGH = StatusInfoReasonType.value_too_high
TOO_LONG = StatusInfoReasonType.too_large_element


class InvalidValue(DeviceModelError, ValueError):
    """A value that does not fit a variable."""

    def __init__(self, reason: StatusInfoReasonType, problem: str) -> None:
        super().__init__(problem)
        self.reason = reason
        self.problem = problem


def check_value(spec: VariableSpec, raw: str) -> str:
    """``raw`` as the station keeps it; raises InvalidValue."""
    value = check_characteristics(spec.characteristics, raw)
    if spec.check is not None:
        spec.check(value)
    return value


def check_characteristics(c: Characteristics, raw: str) -> str:
    kind = c.data_type
    if kind is DataEnumType.integer:
        return _integer(c, raw)
    if kind is DataEnumType.decimal:
        return _decimal(c, raw)
    if kind is DataEnumType.boolean:
        if raw.strip().lower() not in ("true", "false"):
            raise InvalidValue(INVALID, "must be true or false")
        return raw.strip().lower()
    if kind is DataEnumType.date_time:
        try:
            parse_iso(raw.strip())
        except ValueError:
            raise InvalidValue(
                INVALID, "must be a date-time (RFC 3339, e.g. 2030-01-01T00:00:00Z)"
            ) from None
        return raw.strip()
    if kind is DataEnumType.option_list:
        value = _member(c, raw.strip())
        if value is None:
            raise InvalidValue(INVALID, f"must be one of {', '.join(c.values_list)}")
        return _length(c, value)
    if kind in (DataEnumType.member_list, DataEnumType.sequence_list):
        return _length(c, _list(c, raw))
    return _length(c, raw)


def _bounds(c: Characteristics, what: str) -> str:
    low, high = c.min_limit, c.max_limit
    if low is not None and high is not None:
        return f"{what} between {_show(low)} and {_show(high)}"
    if low is not None:
        return f"{what} of at least {_show(low)}"
    if high is not None:
        return f"{what} of at most {_show(high)}"
    return what


def _show(limit: float) -> str:
    return str(int(limit)) if float(limit).is_integer() else str(limit)


def _in_bounds(c: Characteristics, number: float, what: str) -> None:
    if c.min_limit is not None and number < c.min_limit:
        raise InvalidValue(TOO_LOW, f"must be {_bounds(c, what)}")
    if c.max_limit is not None and number > c.max_limit:
        raise InvalidValue(TOO_HIGH, f"must be {_bounds(c, what)}")


def _integer(c: Characteristics, raw: str) -> str:
    text = raw.strip()
    if not _INTEGER.fullmatch(text):
        raise InvalidValue(INVALID, f"must be {_bounds(c, 'an integer')}")
    number = int(text)
    _in_bounds(c, number, "an integer")
    return str(number)


def _decimal(c: Characteristics, raw: str) -> str:
    text = raw.strip()
    if not _DECIMAL.fullmatch(text):
        raise InvalidValue(INVALID, f"must be {_bounds(c, 'a decimal number')}")
    _in_bounds(c, float(text), "a decimal number")
    return text


def _length(c: Characteristics, value: str) -> str:
    if c.max_limit is not None and len(value) > c.max_limit:
        raise InvalidValue(TOO_LONG, f"must be at most {_show(c.max_limit)} characters long")
    return value


def _member(c: Characteristics, item: str) -> str | None:
    folded = item.casefold()
    for choice in c.values_list:
        if choice.casefold() == folded:
            return choice
    return None


def _list(c: Characteristics, raw: str) -> str:
    if not raw.strip():
        return ""
    members: list[str] = []
    for item in raw.split(","):
        member = _member(c, item.strip())
        if member is None or member in members:
            raise InvalidValue(
                INVALID,
                f"must be a comma-separated list of distinct members of {', '.join(c.values_list)}",
            )
        members.append(member)
    return ",".join(members)


def split_list(value: str) -> list[str]:
    """The members of a MemberList or SequenceList value (in order)."""
    return [item for item in value.split(",") if item]
