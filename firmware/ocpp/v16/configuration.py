"""The OCPP configuration key store: GetConfiguration, ChangeConfiguration.

Effective value of a key: for RW and W keys the value the CSMS set (persisted
in the ``config`` table) wins over the YAML ``ocpp.config`` value, which wins
over the default. Read-only keys come from YAML or the default and are never
persisted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence

from firmware.errors import ConfigError, StorageError
from firmware.ocpp.v16.configuration_keys import (
    CORE_KEYS,
    Access,
    CheckContext,
    InvalidValue,
    KeySpec,
    StationFacts,
    split_csl,
    validate,
)
from firmware.storage.db import Database

__all__ = [
    "CORE_KEYS",
    "Access",
    "ConfigurationStore",
    "KeySpec",
    "StationFacts",
]

log = logging.getLogger("firmware.ocpp.configuration")

ACCEPTED = "Accepted"
REJECTED = "Rejected"
REBOOT_REQUIRED = "RebootRequired"
NOT_SUPPORTED = "NotSupported"

Subscriber = Callable[[str, str], None]


class ConfigurationStore:
    """Configuration keys with their effective values; key names match case-insensitively."""

    def __init__(
        self,
        db: Database,
        initial: Mapping[str, str],
        facts: StationFacts,
        keys: Sequence[KeySpec] = CORE_KEYS,
    ) -> None:
        self._db = db
        self._facts = facts
        self._specs: dict[str, KeySpec] = {}
        for spec in keys:
            if spec.name.casefold() in self._specs:
                raise ValueError(f"configuration key {spec.name} is defined twice")
            self._specs[spec.name.casefold()] = spec
        for spec in keys:
            if spec.max_length_key is not None and self._spec(spec.max_length_key) is None:
                raise ValueError(f"{spec.name}: unknown max_length_key {spec.max_length_key}")
        self._values: dict[str, str] = {}
        self._subscribers: list[Subscriber] = []
        self._load(self._initial(initial), self._persisted())

    # ------------------------------------------------------------ start-up

    def _initial(self, initial: Mapping[str, str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for key, value in initial.items():
            spec = self._spec(key)
            if spec is None:
                raise ConfigError(f"ocpp.config.{key}: unknown OCPP configuration key")
            if spec.name in found:
                raise ConfigError(f"ocpp.config.{key}: {spec.name} is given twice")
            found[spec.name] = value
        return found

    def _persisted(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for row in self._db.query("SELECT key, value FROM config"):
            key, value = str(row["key"]), str(row["value"])
            spec = self._spec(key)
            if spec is None or spec.readonly:
                log.debug("ignoring stored configuration key %s", key)
                continue
            found[spec.name] = value
        return found

    def _load(self, initial: dict[str, str], persisted: dict[str, str]) -> None:
        # A list's item limit must be known before the list is validated.
        specs = sorted(self._specs.values(), key=lambda s: s.max_length_key is not None)
        ctx = CheckContext(self._facts, self.get)
        for spec in specs:
            value = spec.default_for(self._facts)
            if spec.name not in initial and value:  # "" is "not set", e.g. AuthorizationKey
                try:
                    value = validate(spec, value, ctx)
                except InvalidValue as err:
                    raise ConfigError(
                        f"ocpp.config.{spec.name}: the default {value!r} does not fit this "
                        f"station ({err}); set a value"
                    ) from None
            if spec.name in initial:
                try:
                    value = validate(spec, initial[spec.name], ctx)
                except InvalidValue as err:
                    raise ConfigError(f"ocpp.config.{spec.name}: {err}") from None
            if spec.name in persisted:
                try:
                    value = validate(spec, persisted[spec.name], ctx)
                except InvalidValue as err:
                    log.warning("ignoring the stored value of %s: %s", spec.name, err)
            self._values[spec.name] = value

    # ------------------------------------------------------------ reading

    def _spec(self, key: str) -> KeySpec | None:
        return self._specs.get(key.casefold())

    def _known(self, key: str) -> KeySpec:
        spec = self._spec(key)
        if spec is None:
            raise KeyError(key)
        return spec

    def keys(self) -> list[str]:
        """Every key name, write-only keys included."""
        return [spec.name for spec in self._specs.values()]

    def get(self, key: str) -> str:
        """The effective value; raises ``KeyError`` for an unknown key."""
        return self._values[self._known(key).name]

    def _typed(self, key: str, kind: str) -> str:
        spec = self._known(key)
        if spec.kind != kind:
            raise TypeError(f"{spec.name} is a {spec.kind} key, not {kind}")
        return self._values[spec.name]

    def get_bool(self, key: str) -> bool:
        return self._typed(key, "bool") == "true"

    def get_int(self, key: str) -> int:
        return int(self._typed(key, "int"))

    def get_csl(self, key: str) -> list[str]:
        return split_csl(self._typed(key, "csl"))

    def get_configuration(
        self, keys: Sequence[str] | None = None
    ) -> tuple[list[dict[str, object]], list[str]]:
        """GetConfiguration: (configurationKey entries, unknownKey names).

        No keys means every readable key. Write-only keys are never returned;
        asked for by name they are reported unknown.
        """
        unknown: list[str] = []
        if not keys:
            wanted = [s for s in self._specs.values() if s.access is not Access.W]
        else:
            wanted = []
            for key in keys:
                spec = self._spec(key)
                if spec is None or spec.access is Access.W:
                    if key not in unknown:
                        unknown.append(key)
                elif spec not in wanted:
                    wanted.append(spec)
        entries: list[dict[str, object]] = [
            {"key": s.name, "readonly": s.readonly, "value": self._values[s.name]} for s in wanted
        ]
        return entries, unknown

    # ------------------------------------------------------------ changing

    def subscribe(self, callback: Subscriber) -> None:
        """Call ``callback(key, new_value)`` after every change that altered a value."""
        self._subscribers.append(callback)

    def change(self, key: str, value: str) -> str:
        """ChangeConfiguration: Accepted, Rejected, RebootRequired or NotSupported."""
        spec = self._spec(key)
        if spec is None:
            log.info("ChangeConfiguration of unknown key %r: NotSupported", key[:60])
            return NOT_SUPPORTED
        if spec.readonly:
            log.info("ChangeConfiguration of read-only key %s: Rejected", spec.name)
            return REJECTED
        old = self._values[spec.name]
        try:
            new = validate(spec, value, CheckContext(self._facts, self.get, current=old))
        except InvalidValue as err:
            log.info("ChangeConfiguration of %s rejected: %s", spec.name, err)
            return REJECTED
        try:
            self._db.execute(
                "INSERT INTO config (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (spec.name, new),
            )
        except StorageError as err:
            log.error("cannot store configuration key %s: %s", spec.name, err)
            return REJECTED
        self._values[spec.name] = new
        shown = "***" if spec.access is Access.W else repr(new)
        log.info("configuration key %s set to %s", spec.name, shown)
        if new != old:
            self._notify(spec.name, new)
        return REBOOT_REQUIRED if spec.reboot_required else ACCEPTED

    def _notify(self, key: str, value: str) -> None:
        for callback in list(self._subscribers):
            try:
                callback(key, value)
            except Exception:
                log.exception("configuration subscriber failed for %s", key)
