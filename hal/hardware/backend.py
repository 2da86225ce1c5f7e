"""The hardware backend: real drivers for a real board, chosen by name in YAML.

```yaml
hal:
  backend: hardware
  gpio: {factory: lgpio}                 # gpiozero pin factory: lgpio, rpigpio, native, mock
  can: {interface: socketcan, channel: can0}
  relay: {driver: gpio, pin: 17, active_high: false, feedback_pin: 27}
  lock: {driver: gpio, lock_pin: 22, unlock_pin: 23, feedback_pin: 24}  # none: fixed cable
  evse: {driver: can}                    # status/command ids 0x200/0x201, +0x10 per connector
  bms: {driver: none}                    # or {driver: chademo, interface: socketcan, channel: can1}
  meter: {driver: modbus, port: /dev/ttyUSB0, baudrate: 9600, device_id: 1, map: sdm630}
  rfid: [{driver: pn532, port: /dev/serial0}]   # pn532, rdm6300, lines; connector: N
  emergency_stop: {pin: 5, active_high: true}   # optional
  tamper: {pin: 6, active_high: true}           # optional: enclosure switch (a security event)
  connectors:                            # per-connector overrides of the role settings
    2: {relay: {pin: 16, feedback_pin: 26}, meter: {device_id: 2}}
```

Driver modules are imported only when chosen. Every problem (unknown
driver, wrong pin, missing port) is one ``HalConfigError`` naming the key.

``check`` builds the same drivers with the same settings, but on gpiozero's
mock pins and an in-process CAN bus, then gives them back: every error of the
settings (a pin used twice, an unknown setting, a missing port, an unknown pin
factory or CAN interface) without touching the board.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import re
import uuid
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from hal.errors import HalConfigError
from hal.interfaces import BoardSettings, ConnectorHardware, HalEvent, PlantControl
from hal.lifecycle import DriverSet
from hal.registry import BackendCheck, BackendFactory

log = logging.getLogger("hal.hardware")

ROLES = ("relay", "lock", "evse", "bms", "meter")
SECTIONS = frozenset({*ROLES, "gpio", "can", "rfid", "emergency_stop", "tamper", "connectors"})
PIN_FACTORIES = {
    "lgpio": "gpiozero.pins.lgpio:LGPIOFactory",
    "rpigpio": "gpiozero.pins.rpigpio:RPiGPIOFactory",
    "native": "gpiozero.pins.native:NativeFactory",
    "mock": "gpiozero.pins.mock:MockFactory",
}
DEFAULTS: dict[str, dict[str, Any]] = {
    "relay": {"driver": "gpio"},
    "lock": {"driver": "gpio"},
    "evse": {"driver": "can"},
    "bms": {"driver": "none"},
    "meter": {"driver": "modbus"},
}


DRIVERS: dict[str, tuple[str, ...]] = {
    "relay": ("gpio",),
    "lock": ("gpio", "none"),
    "evse": ("can",),
    "bms": ("chademo", "none"),
    "meter": ("modbus",),
}


def _load(target: str, key: str) -> Any:
    module_name, _, attr = target.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except ImportError as err:
        raise HalConfigError(f"hal.{key}: driver cannot be loaded: {err}") from err


def _section(options: Mapping[str, object], key: str) -> dict[Any, Any]:
    value = options.get(key, {})
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise HalConfigError(f"hal.{key}: must be a mapping, got {value!r}")
    return dict(value)


class _Settings:
    """Role settings of one connector: the role section with its connector's overrides."""

    def __init__(self, options: Mapping[str, object], connector_id: int) -> None:
        overrides = _section(options, "connectors").get(connector_id, {})
        if not isinstance(overrides, Mapping):
            raise HalConfigError(f"hal.connectors.{connector_id}: must be a mapping")
        for role, value in overrides.items():
            if not isinstance(value, Mapping):
                raise HalConfigError(f"hal.connectors.{connector_id}.{role}: must be a mapping")
        for role in overrides:
            if role not in ROLES:
                raise HalConfigError(f"hal.connectors.{connector_id}.{role}: unknown role")
        self.connector_id = connector_id
        self._roles = {
            role: {**DEFAULTS[role], **_section(options, role), **dict(overrides.get(role, {}))}
            for role in ROLES
        }
        for role, known in DRIVERS.items():  # checked even for a role the board does not have
            driver = self._roles[role]["driver"]
            if driver not in known:
                raise HalConfigError(
                    f"{self.key(role, 'driver')}: unknown driver {driver!r} "
                    f"(known: {', '.join(known)})"
                )

    def role(self, role: str) -> tuple[str, dict[str, Any]]:
        settings = dict(self._roles[role])
        driver = settings.pop("driver")
        return str(driver), settings

    def key(self, role: str, name: str | None = None) -> str:
        where = f"hal.{role}" + (
            "" if self.connector_id == 1 else f" (connector {self.connector_id})"
        )
        return f"{where}.{name}" if name else where


def _check_port(key: str, settings: Mapping[str, Any]) -> None:
    port = settings.get("port")
    if not isinstance(port, str) or not port:
        raise HalConfigError(f"{key}.port: required (a serial device such as /dev/ttyUSB0)")
    if not os.path.exists(port):
        raise HalConfigError(f"{key}.port: {port} does not exist")


def _construct(key: str, factory: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        return factory(*args, **kwargs)
    except HalConfigError as err:
        if str(err).startswith("hal."):
            raise
        raise HalConfigError(f"{key}: {err}") from err
    except TypeError as err:
        text = str(err)
        if missing := re.search(r"missing \d+ required .*argument[s]?: (.*)$", text):
            names = re.findall(r"'(\w+)'", missing.group(1))
            raise HalConfigError(f"{key}: required setting(s) missing: {', '.join(names)}") from err
        if unknown := re.search(r"unexpected keyword argument '(\w+)'", text):
            raise HalConfigError(f"{key}.{unknown.group(1)}: unknown setting") from err
        raise HalConfigError(f"{key}: {err}") from err
    except Exception as err:  # gpiozero pin errors, serial and CAN errors
        raise HalConfigError(f"{key}: {type(err).__name__}: {err}") from err


class HardwareBackend:
    """``dry_run``: mock pins and in-process CAN buses instead of the board's (``check``)."""

    def __init__(
        self,
        options: Mapping[str, object],
        connectors: int,
        board: BoardSettings,
        *,
        dry_run: bool = False,
    ) -> None:
        self._dry_run = dry_run
        unknown = set(options) - SECTIONS
        if unknown:
            raise HalConfigError(
                f"hal.{sorted(unknown)[0]}: unknown key (known: {', '.join(sorted(SECTIONS))})"
            )
        self._events: asyncio.Queue[HalEvent] = asyncio.Queue()
        hardware: dict[int, ConnectorHardware] = {}
        self._connectors: Mapping[int, ConnectorHardware] = MappingProxyType(hardware)
        self._parts = DriverSet(self._connectors)
        self._runners = self._parts.parts
        self._pin_factory: Any = None
        try:
            self._build(options, connectors, board, hardware)
        except BaseException:
            self._release()
            raise

    def _build(
        self,
        options: Mapping[str, object],
        connectors: int,
        board: BoardSettings,
        hardware: dict[int, ConnectorHardware],
    ) -> None:
        self._pin_factory = self._make_pin_factory(_section(options, "gpio"))
        can_settings = _section(options, "can")
        self._can_bus: Any = None
        for cid in range(1, connectors + 1):
            s = _Settings(options, cid)
            relay = self._relay(s)
            lock = self._lock(s) if board.has_lock else None
            evse = self._evse(s, can_settings)
            meter = self._meter(s)
            bms = self._bms(s) if board.has_bms else None
            hardware[cid] = ConnectorHardware(cid, relay, evse, meter, lock, bms)
            self._runners += [d for d in (relay, lock, evse, meter, bms) if d is not None]
        self._readers(options.get("rfid", []), connectors)
        for key, driver in (("emergency_stop", "GpioEmergencyStop"), ("tamper", "GpioTamper")):
            settings = _section(options, key)
            if settings:
                inputs = _load(f"hal.gpio.inputs:{driver}", key)
                self._runners.append(
                    _construct(
                        f"hal.{key}",
                        inputs,
                        self._events,
                        pin_factory=self._pin_factory,
                        **settings,
                    )
                )

    def _release(self) -> None:
        """Give back pins, ports and buses opened before a failed build (or by a dry run)."""
        for part in self._runners:
            for name in ("release_pins", "close"):
                release = getattr(part, name, None)
                if release is not None and not asyncio.iscoroutinefunction(release):
                    with contextlib.suppress(Exception):
                        release()
                    break
        self._parts.close_buses()
        if self._dry_run and self._pin_factory is not None:
            with contextlib.suppress(Exception):
                self._pin_factory.close()

    # ------------------------------------------------------------ roles

    def _make_pin_factory(self, gpio: Mapping[str, Any]) -> Any:
        name = gpio.get("factory")
        if name is not None and name not in PIN_FACTORIES:
            known = ", ".join(PIN_FACTORIES)
            raise HalConfigError(f"hal.gpio.factory: unknown pin factory {name!r} (known: {known})")
        factory = None if name is None else _load(PIN_FACTORIES[name], "gpio.factory")
        if self._dry_run:
            # Its own pins and reservations: never shared with a factory of the board.
            return _load(PIN_FACTORIES["mock"], "gpio.factory")()
        return None if factory is None else _construct("hal.gpio.factory", factory)

    def _relay(self, s: _Settings) -> Any:
        _, settings = s.role("relay")
        cls = _load("hal.gpio.relay:GpioRelay", "relay")
        return _construct(
            s.key("relay"),
            cls,
            s.connector_id,
            self._events,
            pin_factory=self._pin_factory,
            **settings,
        )

    def _lock(self, s: _Settings) -> Any:
        driver, settings = s.role("lock")
        if driver == "none":
            return None
        cls = _load("hal.gpio.lock:GpioLock", "lock")
        return _construct(
            s.key("lock"),
            cls,
            s.connector_id,
            self._events,
            pin_factory=self._pin_factory,
            **settings,
        )

    def _bus(self, key: str, settings: Mapping[str, Any]) -> Any:
        can = importlib.import_module("can")
        interface = settings.get("interface", "socketcan")
        channel = settings.get("channel", "can0")
        if interface not in can.interfaces.VALID_INTERFACES:
            known = ", ".join(sorted(can.interfaces.VALID_INTERFACES))
            raise HalConfigError(
                f"{key}.interface: unknown CAN interface {interface!r} (known: {known})"
            )
        if interface == "socketcan" and not os.path.exists(f"/sys/class/net/{channel}"):
            raise HalConfigError(f"{key}.channel: no network interface {channel!r} (ip link)")
        if self._dry_run:
            interface, channel = "virtual", f"check-{uuid.uuid4().hex}"
            settings = {}
        bus = _construct(
            key,
            can.Bus,
            interface=interface,
            channel=channel,
            **({"bitrate": settings["bitrate"]} if "bitrate" in settings else {}),
        )
        self._parts.buses.append(bus)
        return bus

    def _evse(self, s: _Settings, can_settings: Mapping[str, Any]) -> Any:
        _, settings = s.role("evse")
        if self._can_bus is None:
            self._can_bus = self._bus("hal.can", can_settings)
        settings.setdefault("status_id", 0x200 + 0x10 * (s.connector_id - 1))
        settings.setdefault("command_id", 0x201 + 0x10 * (s.connector_id - 1))
        cls = _load("hal.can.evse:CanEvseController", "evse")
        return _construct(
            s.key("evse"), cls, s.connector_id, self._events, self._can_bus, **settings
        )

    def _bms(self, s: _Settings) -> Any:
        driver, settings = s.role("bms")
        if driver == "none":
            return None
        bus = self._bus(
            s.key("bms"),
            {k: settings.pop(k) for k in ("interface", "channel", "bitrate") if k in settings},
        )
        cls = _load("hal.can.bms:ChademoBms", "bms")
        return _construct(s.key("bms"), cls, s.connector_id, self._events, bus, **settings)

    def _meter(self, s: _Settings) -> Any:
        _, settings = s.role("meter")
        _check_port(s.key("meter"), settings)
        cls = _load("hal.modbus.meter:ModbusMeter", "meter")
        return _construct(s.key("meter"), cls, s.connector_id, self._events, **settings)

    def _readers(self, readers: object, connectors: int) -> None:
        if not isinstance(readers, list):
            raise HalConfigError(f"hal.rfid: must be a list of readers, got {readers!r}")
        known = {
            "pn532": "hal.serial.pn532:Pn532Reader",
            "rdm6300": "hal.serial.rdm6300:Rdm6300Reader",
            "lines": "hal.serial.line_reader:LineReader",
        }
        for index, reader in enumerate(readers):
            key = f"hal.rfid[{index}]"
            if not isinstance(reader, Mapping):
                raise HalConfigError(f"{key}: must be a mapping")
            settings = dict(reader)
            driver = settings.pop("driver", None)
            if driver not in known:
                raise HalConfigError(
                    f"{key}.driver: unknown driver {driver!r} (known: {', '.join(known)})"
                )
            connector = settings.pop("connector", None)
            if connector is not None and connector not in range(1, connectors + 1):
                raise HalConfigError(f"{key}.connector: no connector {connector!r}")
            _check_port(key, settings)
            cls = _load(known[str(driver)], f"rfid[{index}]")
            self._runners.append(
                _construct(key, cls, self._events, connector_id=connector, **settings)
            )

    @property
    def pin_factory(self) -> Any:
        """The gpiozero pin factory of ``hal.gpio.factory`` (None: gpiozero's default)."""
        return self._pin_factory

    # ------------------------------------------------------------ HalBackend

    @property
    def connectors(self) -> Mapping[int, ConnectorHardware]:
        return self._connectors

    @property
    def events(self) -> asyncio.Queue[HalEvent]:
        return self._events

    @property
    def plant(self) -> PlantControl | None:
        return None

    async def run(self) -> None:
        """Run every driver's background work; on the way out, safe state, then close buses."""
        await self._parts.run()

    async def safe_state(self) -> None:
        await self._parts.safe_state()


def build(options: Mapping[str, object], connectors: int, board: BoardSettings) -> HardwareBackend:
    return HardwareBackend(options, connectors, board)


def check(options: Mapping[str, object], connectors: int, board: BoardSettings) -> None:
    """What ``build`` refuses because of the settings, without opening the board's devices."""
    HardwareBackend(options, connectors, board, dry_run=True)._release()


_FACTORY: BackendFactory = build  # mypy: HardwareBackend must satisfy HalBackend
_CHECK: BackendCheck = check
