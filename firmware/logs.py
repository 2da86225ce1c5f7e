"""Structured, journald-friendly log lines on stderr; secrets never logged."""

from __future__ import annotations

import logging
import re
import sys
import time

_AUTH_KEY_CALL = re.compile(r'("key"\s*:\s*"AuthorizationKey"\s*,\s*"value"\s*:\s*)"[^"]*"')
_AUTH_KEY_CALL_REV = re.compile(r'("value"\s*:\s*)"[^"]*"(\s*,\s*"key"\s*:\s*"AuthorizationKey")')
# scheme://user:password@host — an UpdateFirmware or GetDiagnostics location may carry
# FTP or HTTP credentials, and frames are logged.
_URL_PASSWORD = re.compile(r"""([a-zA-Z][a-zA-Z0-9+.-]*://[^\s/?#@:"'<>]*:)[^\s/?#"'<>]*@""")


def redact(text: str) -> str:
    """Hide the value of an AuthorizationKey in an OCPP frame and passwords in URLs."""
    if "://" in text:
        text = _URL_PASSWORD.sub(r"\1***@", text)
    if "AuthorizationKey" not in text:
        return text
    text = _AUTH_KEY_CALL.sub(r'\1"***"', text)
    return _AUTH_KEY_CALL_REV.sub(r'\1"***"\2', text)


class LineFormatter(logging.Formatter):
    """``2026-01-01T10:00:00.123Z INFO connector: message``"""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        component = record.name.removeprefix("firmware.")
        line = f"{stamp}.{int(record.msecs):03d}Z {record.levelname} {component}: "
        line += redact(record.getMessage())
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def setup(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LineFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("websockets", "aiohttp.access", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
