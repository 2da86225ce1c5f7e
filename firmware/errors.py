"""Exception root of the firmware package."""

from __future__ import annotations


class FirmwareError(Exception):
    """Root of every error the firmware raises on purpose."""


class ConfigError(FirmwareError, ValueError):
    """The configuration file (or a value in it) is invalid.

    The message names the key and the problem, e.g.
    ``config.yaml: ocpp.csms_url: must start with ws:// or wss://``.
    """


class StorageError(FirmwareError):
    """The state database cannot be opened, migrated or written."""
