"""How a variable of the device model is named: component, variable, attribute.

A component is named by ``name``, an optional ``instance`` and its place in the
three tiers: on the station (no EVSE), on EVSE ``evse``, or on connector
``connector`` of EVSE ``evse``. A variable is named by ``name`` and an optional
``instance``. OCPP compares names and instances without regard to case.

The same names are written in text (the YAML ``device_model`` section, the typed
read API): ``TxCtrlr``, ``EVSE.1``, ``Connector.1.2``, ``Name[instance]``,
``Name[instance].1``; variables ``HeartbeatInterval``, ``ItemsPerMessage[GetReport]``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from firmware.ocpp.v201.device_model.errors import DeviceModelError

NAME_MAX = 50  # ComponentType.name, VariableType.name and their instances: string(50)

_COMPONENT_TEXT = re.compile(
    r"(?P<name>[^.\[\]]+)(?:\[(?P<instance>[^\[\]]+)\])?(?P<tiers>(?:\.[^.]*)*)"
)
_VARIABLE_TEXT = re.compile(r"(?P<name>[^\[\]]+)(?:\[(?P<instance>[^\[\]]+)\])?")
_TIER = re.compile(r"[1-9][0-9]{0,8}")


class AddressError(DeviceModelError, ValueError):
    """A component or variable name that cannot be read."""


@dataclass(frozen=True, slots=True)
class Component:
    """A component as OCPP names it (``ComponentType``)."""

    name: str
    instance: str | None = None
    evse: int | None = None
    connector: int | None = None

    def __post_init__(self) -> None:
        if self.connector is not None and self.evse is None:
            raise AddressError(f"{self.name}: a connector is named within an EVSE")

    def key(self) -> tuple[str, str, int | None, int | None]:
        """The identity of the component: names without regard to case."""
        return (self.name.casefold(), (self.instance or "").casefold(), self.evse, self.connector)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.instance is not None:
            out["instance"] = self.instance
        if self.evse is not None:
            evse: dict[str, Any] = {"id": self.evse}
            if self.connector is not None:
                evse["connectorId"] = self.connector
            out["evse"] = evse
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Component:
        """A ``ComponentType`` of a request (already checked against the schema)."""
        evse = data.get("evse")
        return cls(
            name=str(data["name"]),
            instance=data.get("instance"),
            evse=None if evse is None else int(evse["id"]),
            connector=None
            if evse is None or evse.get("connectorId") is None
            else int(evse["connectorId"]),
        )

    @classmethod
    def parse(cls, text: str) -> Component:
        """``Name``, ``Name[instance]``, then ``.evse`` and ``.connector``; raises AddressError."""
        match = _COMPONENT_TEXT.fullmatch(text.strip())
        if match is None:
            raise AddressError(
                f"cannot read {text!r} as a component (Name, Name[instance], EVSE.1, Connector.1.1)"
            )
        tiers = match["tiers"].split(".")[1:]
        if len(tiers) > 2 or not all(_TIER.fullmatch(t) for t in tiers):
            raise AddressError(
                f"cannot read {text!r} as a component: after the name come at most an EVSE id "
                "and a connector id, each a number from 1 (EVSE.1, Connector.1.1)"
            )
        numbers = [int(t) for t in tiers]
        return cls(
            name=match["name"].strip(),
            instance=match["instance"],
            evse=numbers[0] if numbers else None,
            connector=numbers[1] if len(numbers) > 1 else None,
        )

    def __str__(self) -> str:
        text = self.name if self.instance is None else f"{self.name}[{self.instance}]"
        for tier in (self.evse, self.connector):
            if tier is not None:
                text += f".{tier}"
        return text


@dataclass(frozen=True, slots=True)
class Variable:
    """A variable as OCPP names it (``VariableType``)."""

    name: str
    instance: str | None = None

    def key(self) -> tuple[str, str]:
        return (self.name.casefold(), (self.instance or "").casefold())

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.instance is not None:
            out["instance"] = self.instance
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Variable:
        return cls(name=str(data["name"]), instance=data.get("instance"))

    @classmethod
    def parse(cls, text: str) -> Variable:
        """``Name`` or ``Name[instance]``; raises AddressError."""
        match = _VARIABLE_TEXT.fullmatch(text.strip())
        if match is None:
            raise AddressError(f"cannot read {text!r} as a variable (Name or Name[instance])")
        return cls(name=match["name"].strip(), instance=match["instance"])

    def __str__(self) -> str:
        return self.name if self.instance is None else f"{self.name}[{self.instance}]"


def component(value: Component | str) -> Component:
    return value if isinstance(value, Component) else Component.parse(value)


def variable(value: Variable | str) -> Variable:
    return value if isinstance(value, Variable) else Variable.parse(value)
