"""Log lines through the real handler and formatter: shape, journald, context, secrets."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware import logs
from firmware.logs import redact
from firmware.security.keys import generate_key, private_pem
from hal.interfaces import TokenPresented
from hal.tokens import Tag

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
KEY = "0f1e2d3c4b5a69788796a5b4"  # an AuthorizationKey
PASSWORD = "s3cret-basic-pw"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level, sys.excepthook
    yield
    root.handlers[:], level, sys.excepthook = saved
    root.setLevel(level)
    logging.captureWarnings(False)
    logs.forget_secrets()


def _capture(level: str = "DEBUG") -> io.StringIO:
    stream = io.StringIO()
    logs.setup(level, stream)
    return stream


def _lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


# ---------------------------------------------------------------- shape


def test_line_shape_with_timestamp_level_and_component() -> None:
    stream = _capture()
    logging.getLogger("firmware.ocpp.rpc").info("connected to %s", "ws://csms/CP-1")
    logging.getLogger("hal.gpio").warning("relay feedback slow")
    logging.getLogger("firmware").error("top level")
    rpc, gpio, top = _lines(stream)
    assert re.fullmatch(rf"{STAMP} INFO ocpp\.rpc connected to ws://csms/CP-1", rpc)
    assert re.fullmatch(rf"{STAMP} WARNING hal\.gpio relay feedback slow", gpio)
    assert re.fullmatch(rf"{STAMP} ERROR firmware top level", top)


def test_context_fields_from_context_and_from_extra() -> None:
    stream = _capture()
    log = logging.getLogger("firmware.connector")
    tx: list[int | None] = [None]
    with logs.context(connector=2, transaction=lambda: tx[0]):
        log.info("pilot A -> B")
        tx[0] = 17
        log.info("relay closed")
    log.info("outside")
    log.info("power loss", extra={"connector": 1, "transaction": 5})
    with logs.context(transaction=9):
        log.info("queued only")
    lines = [line.split(" ", 1)[1] for line in _lines(stream)]
    assert lines == [
        "INFO connector connector=2 pilot A -> B",
        "INFO connector connector=2 transaction=17 relay closed",
        "INFO connector outside",
        "INFO connector connector=1 transaction=5 power loss",
        "INFO connector transaction=9 queued only",
    ]


async def test_context_follows_tasks_created_inside_and_not_others() -> None:
    stream = _capture()
    log = logging.getLogger("firmware.station")

    async def work(name: str) -> None:
        await asyncio.sleep(0)
        log.info("%s", name)

    outside = asyncio.create_task(work("before"))
    with logs.context(connector=3, transaction=4):
        inside = asyncio.create_task(work("inside"))
    await asyncio.gather(outside, inside)
    lines = {line.rsplit(" ", 1)[1]: line for line in _lines(stream)}
    assert "connector=" not in lines["before"]
    assert "connector=3 transaction=4 inside" in lines["inside"]


def test_one_line_per_record_even_with_tracebacks_and_forged_lines() -> None:
    stream = _capture()
    log = logging.getLogger("firmware.api")
    try:
        raise ValueError("first line\nsecond line")
    except ValueError:
        log.exception("request failed")
    log.info("idTag %s", "AB\n<0>EMERG fake line\r\x1b[2J\u2028")
    log.info("stack here", stack_info=True)
    failed, forged, stack = _lines(stream)
    assert "ERROR api request failed\\nTraceback (most recent call last):\\n" in failed
    assert failed.endswith("ValueError: first line\\nsecond line")
    assert forged.endswith("idTag AB\\n<0>EMERG fake line\\r\\x1b[2J\\u2028")
    assert "stack here\\nStack (most recent call last):" in stack


def test_journald_lines_have_priority_and_no_timestamp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "journal-stream"
    with path.open("w") as stream:
        st = os.fstat(stream.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
        logs.setup("DEBUG", stream)
        log = logging.getLogger("firmware.app")
        log.debug("d")
        log.info("i")
        log.warning("w")
        with logs.context(connector=1, transaction=2):
            log.error("e")
        log.critical("c")
    assert path.read_text().splitlines() == [
        "<7>DEBUG app d",
        "<6>INFO app i",
        "<4>WARNING app w",
        "<3>ERROR app connector=1 transaction=2 e",
        "<2>CRITICAL app c",
    ]


def test_inherited_journal_stream_for_another_file_keeps_timestamps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = tmp_path / "journal"
    journal.write_text("")
    st = journal.stat()
    monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
    path = tmp_path / "redirected.log"
    with path.open("w") as stream:
        logs.setup("INFO", stream)
        logging.getLogger("firmware.app").info("redirected")
    assert re.fullmatch(rf"{STAMP} INFO app redirected\n", path.read_text())
    assert logs.under_journald(io.StringIO()) is False


# ---------------------------------------------------------------- secrets


def _change_configuration(payload: dict[str, object]) -> str:
    return json.dumps([2, "42", "ChangeConfiguration", payload], separators=(",", ":"))


SECRET_TEXTS = {
    "call": "← " + _change_configuration({"key": "AuthorizationKey", "value": KEY}),
    "call, value first, spaced": '← [2, "1", "ChangeConfiguration", {"value" : "'
    + KEY
    + '", "key" : "AuthorizationKey"}]',
    "call, key in other case": "← "
    + _change_configuration({"key": "authorizationkey", "value": KEY}),
    "call, escaped key name": "← "
    + _change_configuration({"key": "AUTH", "value": KEY}).replace(
        "AUTH", "\\u0041uthorizationKey"
    ),
    "call, quotes and braces in the value": "← "
    + _change_configuration({"key": "AuthorizationKey", "value": KEY + '"}{,'}),
    "call, non-ASCII escaped": "← "
    + json.dumps([2, "1", "ChangeConfiguration", {"key": "AuthorizationKey", "value": KEY + "é"}]),
    "call, cut off by the frame log": "← "
    + _change_configuration({"key": "AuthorizationKey", "value": KEY * 3})[:80]
    + "…",
    "call, cut off before the key": '← [2,"1","ChangeConfiguration",{"value":"' + KEY + "…",
    "GetConfiguration result": "→ "
    + json.dumps(
        [
            3,
            "7",
            {
                "configurationKey": [
                    {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
                    {"key": "AuthorizationKey", "readonly": False, "value": KEY},
                ]
            },
        ]
    ),
    "python repr": f"payload {{'key': 'AuthorizationKey', 'value': '{KEY}'}}",
    "dataclass repr": f"OcppSettings(csms_url='ws://csms', password='{KEY}')",
    "assignment": f"AuthorizationKey={KEY}&x=1",
    "URL credentials": f"cannot connect to wss://CP-1:{KEY}@csms.example.com/ocpp/CP-1: refused",
    "Basic auth header": "headers {'Authorization': 'Basic "
    + "Q1AtMTowZjFlMmQzYzRiNWE2OTc4ODc5NmE1YjQ="
    + "'}",
}


@pytest.mark.parametrize("text", SECRET_TEXTS.values(), ids=SECRET_TEXTS.keys())
def test_patterns_hide_secrets_in_messages(text: str) -> None:
    stream = _capture()
    logging.getLogger("firmware.ocpp.frames").debug("%s", text)
    (line,) = _lines(stream)
    assert KEY not in line and "Q1AtMTow" not in line
    assert "***" in line
    assert re.fullmatch(rf"{STAMP} DEBUG ocpp\.frames \S.*", line)


def test_only_the_secret_goes() -> None:
    stream = _capture()
    text = SECRET_TEXTS["GetConfiguration result"]
    logging.getLogger("firmware.ocpp.frames").debug("%s", text)
    other = "← " + _change_configuration({"key": "HeartbeatInterval", "value": "300"})
    logging.getLogger("firmware.ocpp.frames").debug("%s", other)
    hidden, shown = _lines(stream)
    assert hidden.endswith(text.replace(KEY, "***"))
    assert shown.endswith(other)


def test_secrets_hidden_in_exception_text_and_logging_errors() -> None:
    stream = _capture()
    logs.add_secret(PASSWORD)
    log = logging.getLogger("firmware.ocpp.connection")
    try:
        raise ConnectionError(f"server said: bad password {PASSWORD} for ws://CP-1@csms")
    except ConnectionError:
        log.exception("cannot connect")
    try:
        raise KeyError({"key": "AuthorizationKey", "value": KEY})
    except KeyError:
        log.error("handler failed", exc_info=True)
    log.info("%d", f"password={PASSWORD}")  # a formatting error: the stock handler prints args
    connect, handler, broken = _lines(stream)
    for line in (connect, handler, broken):
        assert PASSWORD not in line and KEY not in line
    assert "ConnectionError: server said: bad password *** for ws://CP-1@csms" in connect
    assert "KeyError: {'key': 'AuthorizationKey', 'value': '***'}" in handler
    assert broken.startswith("logging error in firmware.ocpp.connection (")
    assert "TypeError" in broken


def test_registered_secrets_hidden_in_their_escaped_forms() -> None:
    stream = _capture()
    secret = 'pa"ss/wörd'
    logs.add_secret(secret)
    log = logging.getLogger("firmware.cli")
    log.info("raw %s", secret)
    log.info("json %s", json.dumps({"p": secret}))
    log.info("url ws://h/?p=%s", "pa%22ss%2Fw%C3%B6rd")
    assert [line.split(" ", 3)[3] for line in _lines(stream)] == [
        "raw ***",
        'json {"p": "***"}',
        "url ws://h/?p=***",
    ]


def test_short_registered_values_are_not_masked_everywhere() -> None:
    stream = _capture()
    logs.add_secret("ab")
    logging.getLogger("firmware.cli").info("table and cable")
    assert _lines(stream)[0].endswith("table and cable")


def test_uncaught_exceptions_and_warnings_become_one_redacted_line() -> None:
    stream = _capture()
    logs.add_secret(PASSWORD)
    try:
        raise RuntimeError(f"boom {PASSWORD}")
    except RuntimeError as err:
        sys.excepthook(type(err), err, err.__traceback__)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn(f"deprecated password={PASSWORD}", UserWarning, stacklevel=1)
    uncaught, warned = _lines(stream)
    assert re.match(rf"{STAMP} CRITICAL firmware uncaught exception\\nTraceback", uncaught)
    assert uncaught.endswith("RuntimeError: boom ***")
    assert re.match(
        rf"{STAMP} WARNING py\.warnings .*UserWarning: deprecated password=\*\*\*", warned
    )
    assert PASSWORD not in stream.getvalue()


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
        # OCPP 2.0.1 SetVariables: the password's entry, in any member order; not the others.
        (
            '[{"component":{"name":"SecurityCtrlr"},"variable":{"name":"BasicAuthPassword"},'
            '"attributeValue":"fedcba9876543210"},{"variable":{"name":"HeartbeatInterval"},'
            '"attributeValue":"30"}]',
            '[{"component":{"name":"SecurityCtrlr"},"variable":{"name":"BasicAuthPassword"},'
            '"attributeValue":"***"},{"variable":{"name":"HeartbeatInterval"},'
            '"attributeValue":"30"}]',
        ),
        (
            '{"attributeValue":"fedcba9876543210","variable":{"name":"basicauthpassword"}}',
            '{"attributeValue":"***","variable":{"name":"basicauthpassword"}}',
        ),
        # Cut off before the variable is known: the value goes too.
        ('[{"attributeValue":"fedcba98765', '[{"attributeValue":"***"'),
    ],
)
def test_redact_urls_and_keys(text: str, expected: str) -> None:
    assert redact(text) == expected


# ---------------------------------------------------------------- idTags

FRAME = (
    '→ [2,"f9","StartTransaction",{"connectorId":1,"idTag":"RFID_valid1",'
    '"meterStart":0,"timestamp":"2026-01-01T00:00:00Z"}]'
)
ANSWER = (
    '← [3,"f9",{"idTagInfo":{"status":"Accepted","parentIdTag":"FLEET-0042"},"transactionId":7}]'
)


def test_tags_are_masked_at_info_and_in_full_at_debug() -> None:
    tag = Tag("RFID_valid1")
    for level, shown in (("INFO", "*******lid1"), ("DEBUG", "RFID_valid1")):
        stream = _capture(level)
        log = logging.getLogger("firmware.station")
        log.info("token %s presented (connector %s)", tag, 1)
        log.info("repr %r", tag)
        log.warning("%(who)s stopped %(what)s", {"who": tag, "what": Tag("04A1B2C3")})
        presented, quoted, mapping = (line.split(" ", 3)[3] for line in _lines(stream))
        assert presented == f"token {shown} presented (connector 1)"
        assert quoted == f"repr {shown!r}"
        assert mapping == f"{shown} stopped " + ("04A1B2C3" if level == "DEBUG" else "****B2C3")


def test_frames_show_full_tags_only_at_debug() -> None:
    stream = _capture("DEBUG")
    logging.getLogger("firmware.ocpp.frames").debug("%s", FRAME)
    logging.getLogger("firmware.ocpp.frames").debug("%s", ANSWER)
    assert [line.split(" ", 3)[3] for line in _lines(stream)] == [FRAME, ANSWER]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (FRAME, FRAME.replace('"RFID_valid1"', '"*******lid1"')),
        (ANSWER, ANSWER.replace('"FLEET-0042"', '"******0042"')),
        (  # JSON escapes: the tag is decoded, masked and written again
            '{"idTag": "a\\"b\\\\c-9876"}',
            '{"idTag": "******9876"}',
        ),
        (  # a shortened frame cut inside the tag: its end is not the tag's
            '[2,"1","Authorize",{"idTag":"RFID_VAL…',
            '[2,"1","Authorize",{"idTag":"****',
        ),
        (
            "TokenPresented(uid='user-42', connector_id=None, read_at=3.5)",
            "TokenPresented(uid='****-42', connector_id=None, read_at=3.5)",
        ),
        (
            "IdTagInfo(status='Accepted', expiry_date=None, parent_id_tag='GROUP-1')",
            "IdTagInfo(status='Accepted', expiry_date=None, parent_id_tag='****P-1')",
        ),
        ("stop_id_tag=04A1B2C3, reason=Local", "stop_id_tag=****B2C3, reason=Local"),
        (
            "malformed frame from CSMS: idTag: 'ABCDEFGHIJKLMNOPQRSTUVW' is too long",
            "malformed frame from CSMS: idTag: '****************TUVW' is too long",
        ),
        ('{"uid": "abc", "connector": 1}', '{"uid": "**c", "connector": 1}'),
        ('{"idTag": null, "idTagInfo": {"status": "Invalid"}}', None),
        (  # OCPP 2.0.1: the idToken string of an IdTokenType, the group's too
            '{"idToken":{"idToken":"04A1B2C3D4","type":"ISO14443"},'
            '"groupIdToken":{"idToken":"FLEET1234","type":"Central"}}',
            '{"idToken":{"idToken":"******C3D4","type":"ISO14443"},'
            '"groupIdToken":{"idToken":"*****1234","type":"Central"}}',
        ),
        ("parent_id_tag=None uuid='0f1e2d3c' idTags 12", None),
    ],
)
def test_id_tag_members_are_masked(text: str, expected: str | None) -> None:
    assert logs.mask_id_tags(text) == (text if expected is None else expected)


def test_lines_without_the_wrapper_still_mask_tag_members() -> None:
    stream = _capture("INFO")
    log = logging.getLogger("firmware.station")
    log.error("error while handling %s", TokenPresented("RFID_valid1", 1, 0.0))
    try:
        raise ValueError('unexpected answer {"idTagInfo": {"parentIdTag": "FLEET-0042"}}')
    except ValueError:
        log.exception("Authorize failed")
    handled, failed = stream.getvalue().splitlines()
    assert "uid='*******lid1'" in handled
    assert '"parentIdTag": "******0042"' in failed and "FLEET-0042" not in failed


def test_the_log_file_masks_tags_unless_asked_even_at_debug(tmp_path: Path) -> None:
    stream = _capture("DEBUG")
    masked = logs.add_file(tmp_path / "masked.log", max_bytes=1 << 20, backups=1)
    full = logs.add_file(tmp_path / "full.log", max_bytes=1 << 20, backups=1, full_id_tags=True)
    log = logging.getLogger("firmware.ocpp.frames")
    log.debug("%s", FRAME)
    logging.getLogger("firmware.station").info("token %s presented", Tag("RFID_valid1"))
    for handler in (masked, full):
        handler.close()
        logging.getLogger().removeHandler(handler)
    masked_text = (tmp_path / "masked.log").read_text()
    assert "RFID_valid1" not in masked_text
    assert '"idTag":"*******lid1"' in masked_text and "token *******lid1 presented" in masked_text
    assert (tmp_path / "full.log").read_text().count("RFID_valid1") == 2
    assert stream.getvalue().count("RFID_valid1") == 2


def test_private_keys_never_reach_a_line() -> None:
    pem = private_pem(generate_key()).decode()
    body = pem.splitlines()[1]
    stream = _capture()
    log = logging.getLogger("firmware.security.store")
    log.error("oops %s", pem)
    log.error("cut short %s", pem[:80])
    try:
        raise ValueError(f"bad key {pem}")
    except ValueError:
        log.exception("failed")
    text = stream.getvalue()
    assert body not in text and body[:40] not in text
    assert text.count("-----BEGIN PRIVATE KEY-----***") == 3
