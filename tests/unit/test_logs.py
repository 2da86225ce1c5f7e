"""Secrets never reach a log line."""

from __future__ import annotations

import pytest

from firmware.logs import redact


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[2,"7","UpdateFirmware",{"location":"ftp://cp:s3cret@fw.example/a.bin"}]',
            '[2,"7","UpdateFirmware",{"location":"ftp://cp:***@fw.example/a.bin"}]',
        ),
        ("ftp://user:p@ss@host/x a@b", "ftp://user:***@host/x a@b"),
        (
            "http://host:8080/a@b and ftp://anon@host/f",
            "http://host:8080/a@b and ftp://anon@host/f",
        ),
        ("https://u:v@h/ and ftps://w:x@h:990/", "https://u:***@h/ and ftps://w:***@h:990/"),
        (
            '{"key": "AuthorizationKey", "value": "00112233"}',
            '{"key": "AuthorizationKey", "value": "***"}',
        ),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected
