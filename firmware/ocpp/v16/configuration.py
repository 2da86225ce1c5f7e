"""The OCPP configuration key store: GetConfiguration, ChangeConfiguration.

Effective value of a key: for RW and W keys the value the CSMS set (persisted
in the ``config`` table) wins over the YAML ``ocpp.config`` value, which wins
over the default. Read-only keys come from YAML or the default and are never
persisted.

What the CSMS sees: every key of the profiles SupportedFeatureProfiles lists,
the Security Whitepaper's keys, optional keys only once ``ocpp.config`` sets
them, and vendor keys (names under ``ocpp.vendor_key_prefixes``) as read-only
strings. A key of a left-out profile stays readable inside the station (its
value is the default, or the YAML value, with a notice) but is unknown to the
CSMS: GetConfiguration lists it in unknownKey, ChangeConfiguration answers
NotSupported.

``resolve_start`` is the start-up half alone, without a database: what
``chargepoint check-config`` and ``chargepoint run`` both refuse.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from firmware.errors import ConfigError, StorageError
from firmware.ocpp.v16.configuration_keys import (
    CORE_KEYS,
    FEATURE_PROFILES,
    VENDOR,
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
    "StartValues",
    "StationFacts",
    "resolve_start",
]

log = logging.getLogger("firmware.ocpp.configuration")

ACCEPTED = "Accepted"
REJECTED = "Rejected"
REBOOT_REQUIRED = "RebootRequired"
NOT_SUPPORTED = "NotSupported"

MAX_KEY_LENGTH = 50  # CiString50: the key of GetConfiguration and ChangeConfiguration
_KEY_NAME = re.compile(r"[\x21-\x7e]+", re.ASCII)

Subscriber = Callable[[str, str], None]


@dataclass(frozen=True, slots=True)
class StartValues:
    """The keys and their start-up values (defaults and ``ocpp.config``), validated."""

    specs: tuple[KeySpec, ...]  # the standard keys, then the vendor keys of ocpp.config
    values: Mapping[str, str]  # canonical name -> value
    given: frozenset[str]  # canonical names ocpp.config sets
    notices: tuple[str, ...]  # accepted, but worth saying (logged at start, printed by check)


def resolve_start(
    initial: Mapping[str, str],
    facts: StationFacts,
    keys: Sequence[KeySpec] = CORE_KEYS,
    vendor_prefixes: Sequence[str] = (),
) -> StartValues:
    """Validate ``ocpp.config`` against ``keys``; raises ``ConfigError`` naming the key."""
    specs = _spec_table(keys)
    _check_prefixes(specs, vendor_prefixes)
    found: dict[str, str] = {}
    vendor: list[KeySpec] = []
    for key, value in initial.items():
        spec = specs.get(key.casefold())
        if spec is None:
            spec = _vendor_spec(key, specs, vendor_prefixes)
            specs[key.casefold()] = spec
            vendor.append(spec)
        if spec.name in found:
            raise ConfigError(f"ocpp.config.{key}: {spec.name} is given twice")
        found[spec.name] = value
    values: dict[str, str] = {}
    ctx = CheckContext(facts, lambda name: values[specs[name.casefold()].name])
    # A list's item limit must be known before the list is validated.
    for spec in sorted(specs.values(), key=lambda s: s.max_length_key is not None):
        value = spec.default_for(facts)
        if spec.name in found:
            try:
                value = validate(spec, found[spec.name], ctx)
            except InvalidValue as err:
                raise ConfigError(f"ocpp.config.{spec.name}: {err}") from None
        elif value:  # "" is "not set", e.g. AuthorizationKey
            try:
                value = validate(spec, value, ctx)
            except InvalidValue as err:
                raise ConfigError(
                    f"ocpp.config.{spec.name}: the default {value!r} does not fit this "
                    f"station ({err}); set a value"
                ) from None
        values[spec.name] = value
    profiles = frozenset(split_csl(values["SupportedFeatureProfiles"]))
    notices = [
        f"ocpp.config.{name}: accepted but unused: SupportedFeatureProfiles leaves out "
        f"{spec.profile}, so the CSMS does not see this key"
        for name in found
        if (spec := specs[name.casefold()]).profile in FEATURE_PROFILES
        and spec.profile not in profiles
    ]
    notice = password_notice(values["SecurityProfile"], facts)
    if notice is not None:
        notices.append(notice)
    return StartValues(
        specs=tuple(s for s in keys) + tuple(vendor),
        values=values,
        given=frozenset(found),
        notices=tuple(notices),
    )


PASSWORD_NOTICE = (
    "ocpp.password is kept unused while SecurityProfile is 0 (no Basic auth); "
    "it is used once the CSMS raises SecurityProfile to 1"
)


def password_notice(security_profile: str, facts: StationFacts) -> str | None:
    """The notice for ``ocpp.password`` kept unused at security profile 0."""
    return PASSWORD_NOTICE if facts.has_password and security_profile == "0" else None


def _spec_table(keys: Sequence[KeySpec]) -> dict[str, KeySpec]:
    specs: dict[str, KeySpec] = {}
    for spec in keys:
        if spec.name.casefold() in specs:
            raise ValueError(f"configuration key {spec.name} is defined twice")
        specs[spec.name.casefold()] = spec
    for spec in keys:
        if spec.max_length_key is not None and spec.max_length_key.casefold() not in specs:
            raise ValueError(f"{spec.name}: unknown max_length_key {spec.max_length_key}")
    return specs


def _check_prefixes(specs: Mapping[str, KeySpec], prefixes: Sequence[str]) -> None:
    # A prefix that begins a standard name would turn a typo of that key into a vendor key.
    for prefix in prefixes:
        for spec in specs.values():
            if spec.name.casefold().startswith(prefix.casefold()):
                raise ConfigError(
                    f"ocpp.vendor_key_prefixes: {prefix!r} begins the standard key {spec.name}; "
                    "choose a prefix no standard key starts with (e.g. your company name)"
                )


def _vendor_spec(key: str, specs: Mapping[str, KeySpec], prefixes: Sequence[str]) -> KeySpec:
    if not any(key.casefold().startswith(p.casefold()) for p in prefixes):
        names = [s.name for s in specs.values() if s.profile != VENDOR]
        close = difflib.get_close_matches(key, names, n=1)
        if close:
            hint = f", did you mean {close[0]!r}?"
        elif prefixes:
            hint = f" (vendor keys start with {' or '.join(repr(p) for p in prefixes)})"
        else:
            hint = " (vendor keys need ocpp.vendor_key_prefixes)"
        raise ConfigError(f"ocpp.config.{key}: unknown OCPP configuration key{hint}")
    if len(key) > MAX_KEY_LENGTH:
        raise ConfigError(
            f"ocpp.config.{key[:MAX_KEY_LENGTH]}...: a key name has at most "
            f"{MAX_KEY_LENGTH} characters"
        )
    if not _KEY_NAME.fullmatch(key):
        raise ConfigError(f"ocpp.config.{key!r}: a key name is printable ASCII without blanks")
    return KeySpec(key, Access.R, "str", "", profile=VENDOR)


class ConfigurationStore:
    """Configuration keys with their effective values; key names match case-insensitively."""

    def __init__(
        self,
        db: Database,
        initial: Mapping[str, str],
        facts: StationFacts,
        keys: Sequence[KeySpec] = CORE_KEYS,
        *,
        vendor_prefixes: Sequence[str] = (),
    ) -> None:
        self._db = db
        self._facts = facts
        start = resolve_start(initial, facts, keys, vendor_prefixes)
        self._specs: dict[str, KeySpec] = {spec.name.casefold(): spec for spec in start.specs}
        self._given = start.given
        self._values: dict[str, str] = dict(start.values)
        self._subscribers: list[Subscriber] = []
        self._overlay(self._persisted())
        # Read-only, so fixed while the station runs.
        self._profiles = frozenset(self.get_csl("SupportedFeatureProfiles"))
        notices = [n for n in start.notices if n != PASSWORD_NOTICE]
        notice = password_notice(self._values["SecurityProfile"], facts)
        self.notices: tuple[str, ...] = (*notices, *([notice] if notice else []))
        for line in self.notices:
            log.warning("%s", line)

    # ------------------------------------------------------------ start-up

    def _persisted(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for row in self._db.query("SELECT key, value FROM config"):
            key, value = str(row["key"]), str(row["value"])
            spec = self._spec(key)
            if spec is None or spec.readonly or not self._present(spec):
                log.debug("ignoring stored configuration key %s", key)
                continue
            found[spec.name] = value
        return found

    def _overlay(self, persisted: dict[str, str]) -> None:
        ctx = CheckContext(self._facts, self.get, stored=True)
        for name, raw in persisted.items():
            spec = self._known(name)
            try:
                value = validate(spec, raw, ctx)
            except InvalidValue as err:
                log.warning("ignoring the stored value of %s: %s", name, err)
                continue
            if spec.only_raised and int(value) < int(self._values[name]):
                log.info(
                    "%s: the file's %s wins over the stored %s", name, self._values[name], value
                )
                continue
            self._values[name] = value

    # ------------------------------------------------------------ profiles

    def supports(self, profile: str) -> bool:
        """Whether SupportedFeatureProfiles lists ``profile`` (other groups always count)."""
        return profile not in FEATURE_PROFILES or profile in self._profiles

    def _present(self, spec: KeySpec) -> bool:
        return not spec.optional or spec.name in self._given

    def _offered(self, key: str) -> KeySpec | None:
        """The spec of ``key`` as the CSMS sees it: None for a key it must not see."""
        spec = self._spec(key)
        if spec is None or not self._present(spec) or not self.supports(spec.profile):
            return None
        return spec

    # ------------------------------------------------------------ reading

    def _spec(self, key: str) -> KeySpec | None:
        return self._specs.get(key.casefold())

    def _known(self, key: str) -> KeySpec:
        spec = self._spec(key)
        if spec is None:
            raise KeyError(key)
        return spec

    def keys(self) -> list[str]:
        """Every key the CSMS may see, write-only keys included."""
        return [s.name for s in self._specs.values() if self._offered(s.name) is not None]

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

        No keys means every readable key the CSMS may see. Write-only keys are
        never returned; asked for by name they are reported unknown.
        """
        unknown: list[str] = []
        if not keys:
            wanted = [
                s
                for s in self._specs.values()
                if s.access is not Access.W and self._offered(s.name) is not None
            ]
        else:
            wanted = []
            for key in keys:
                spec = self._offered(key)
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
        spec = self._offered(key)
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

    def revert(self, key: str, value: str) -> None:
        """Put ``key`` back to ``value``, a decision of the station itself (a raised
        SecurityProfile that did not work): stored as a CSMS change would be, with the
        key's type checked but not its rules; subscribers are not told. Raises
        ``InvalidValue`` or ``StorageError``."""
        spec = self._known(key)
        new = validate(replace(spec, check=None), value, CheckContext(self._facts, self.get))
        self._db.execute(
            "INSERT INTO config (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (spec.name, new),
        )
        self._values[spec.name] = new
        log.warning("configuration key %s set back to %r", spec.name, new)

    def _notify(self, key: str, value: str) -> None:
        for callback in list(self._subscribers):
            try:
                callback(key, value)
            except Exception:
                log.exception("configuration subscriber failed for %s", key)
