"""Structured, journald-friendly log lines on stderr; secrets never logged.

Every record is one line::

    2026-01-01T10:00:00.123Z INFO connector connector=1 transaction=3 relay closed
    <6>INFO connector connector=1 transaction=3 relay closed          (under journald)

Under journald (stderr is the stream named by ``$JOURNAL_STREAM``) the line
starts with a syslog priority, which journald turns into the entry's level,
and carries no timestamp (the journal has its own). ``connector=`` and
``transaction=`` (the station's local transaction number) come from
``extra=`` or from the context bound with :func:`context`. Line breaks and
other control characters are escaped, so a traceback stays in its record and
text from the network cannot forge lines.

Secrets are removed from the whole line, exception text included: the value
of AuthorizationKey in OCPP frames and Python reprs, ``password=``-like
assignments, credentials in URLs and Basic auth headers, PEM private keys,
and every secret registered with :func:`add_secret` wherever it appears.

idTags are personal data. Log calls pass them wrapped in ``hal.tokens.Tag``;
a handler whose formatter shows idTags (the daemon's stderr at DEBUG) writes
them in full, every other one writes them masked (``****B2C3``) and also
masks the value of idTag-like members (``idTag``, ``parentIdTag``, ``id_tag``,
OCPP 2.0.1's ``idToken`` string inside an IdTokenType,
``uid`` ...) in OCPP frames, JSON and Python reprs (:func:`mask_id_tags`), so
a tag that reaches a line without the wrapper is masked too.
"""

from __future__ import annotations

import ast
import json
import logging
import logging.handlers
import os
import re
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from hal.tokens import Tag, mask_id_tag

MASK = "***"

# ---------------------------------------------------------------- context

TransactionRef = int | Callable[[], int | None]

_connector: ContextVar[int | None] = ContextVar("log_connector", default=None)
_transaction: ContextVar[TransactionRef | None] = ContextVar("log_transaction", default=None)


@contextmanager
def context(
    *, connector: int | None = None, transaction: TransactionRef | None = None
) -> Iterator[None]:
    """Log lines emitted inside carry ``connector=`` / ``transaction=``.

    ``transaction`` may be a callable, asked at each line, for a scope in
    which the transaction starts or ends. Tasks created inside inherit the
    context.
    """
    connector_token = _connector.set(connector) if connector is not None else None
    transaction_token = _transaction.set(transaction) if transaction is not None else None
    try:
        yield
    finally:
        if transaction_token is not None:
            _transaction.reset(transaction_token)
        if connector_token is not None:
            _connector.reset(connector_token)


def _current_transaction() -> int | None:
    ref = _transaction.get()
    return ref() if callable(ref) else ref


# ---------------------------------------------------------------- secrets

_SECRET_MIN_LEN = 4  # shorter values would mask ordinary words; the patterns still apply
_MAX_SECRETS = 32
_secrets: dict[str, None] = {}  # in the order they were added
_longest_first: tuple[str, ...] = ()


def add_secret(value: str | None) -> None:
    """Never log ``value`` (a password, an AuthorizationKey), in any form it is written."""
    global _longest_first
    if not value or len(value) < _SECRET_MIN_LEN:
        return
    for form in (value, json.dumps(value)[1:-1], urllib.parse.quote(value, safe="")):
        _secrets.pop(form, None)
        _secrets[form] = None
    while len(_secrets) > _MAX_SECRETS:
        del _secrets[next(iter(_secrets))]
    _longest_first = tuple(sorted(_secrets, key=len, reverse=True))


def forget_secrets() -> None:
    """Empty the registry (tests)."""
    global _longest_first
    _secrets.clear()
    _longest_first = ()


_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^\s/@:]*:)[^\s/]*@")
_BASIC_AUTH = re.compile(
    r"""(?i)(authorization['"]?\s*[:=,]\s*['"]?(?:basic|bearer)\s+)[^\s'",}]+"""
)
_NAMED = re.compile(
    r"""(?ix)
    (\b(?:password|passwd|authorization_?key)['"]?\s*[=:]\s*)
    ('(?:[^'\\]|\\.)*'? | "(?:[^"\\]|\\.)*"? | [^\s,;&)}\]]+)
    """
)
# A PEM private key (the station's keys are never logged on purpose; this is the net
# under a mistake), also one cut short.
_PRIVATE_KEY = re.compile(
    r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----.*?(?:-----END \1PRIVATE KEY-----|$)", re.S
)
_SECRET_NAMES = frozenset({"password", "passwd", "authorizationkey", "authorization_key"})
# OCPP 2.0.1 device model variables whose value is a secret.
_SECRET_VARIABLES = frozenset({"basicauthpassword"})
# The object scanner below only runs on text that may hold a secret member.
_SCAN_HINT = re.compile(
    r"""(?i)authorization|password|passwd|attributevalue|\\[ux]|["']value["']"""
)


def redact(text: str) -> str:
    """``text`` without secrets (see the module docstring)."""
    if _SCAN_HINT.search(text):
        text = _redact_objects(text)
        text = _NAMED.sub(_mask_named, text)
        text = _BASIC_AUTH.sub(rf"\1{MASK}", text)
    if "://" in text:
        text = _URL_CREDENTIALS.sub(rf"\1{MASK}@", text)
    if "PRIVATE KEY-----" in text:
        text = _PRIVATE_KEY.sub(rf"-----BEGIN \1PRIVATE KEY-----{MASK}", text)
    for secret in _longest_first:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def _mask_named(match: re.Match[str]) -> str:
    value = match.group(2)
    quote = value[0] if value[:1] in ("'", '"') else ""
    return f"{match.group(1)}{quote}{MASK}{quote}"


# A JSON or Python-repr object, e.g. a ChangeConfiguration payload or a
# GetConfiguration entry, may name AuthorizationKey in its "key" member and
# carry the secret in "value", in any order and with other members between.
# The scanner copes with escapes, nesting and frames cut off at the end (the
# frame log shortens long frames): an object cut off before its "key" is
# known loses its "value".
_TOKEN = re.compile(
    r"""
    (?P<string> "(?:[^"\\]|\\.)*(?:(?P<dq>")|\\?\Z)
              | '(?:[^'\\]|\\.)*(?:(?P<sq>')|\\?\Z) )
  | [{}\[\],:]
  | [^\s{}\[\],:"']+
    """,
    re.S | re.X,
)
_OPEN = re.compile(r"[{\[]")


@dataclass(slots=True)
class _Member:
    name: str
    value: str | None = None  # decoded scalar, None for a nested value
    start: int = 0
    end: int = 0
    cut: bool = False  # the text ends inside this value


@dataclass(slots=True)
class _Object:
    members: list[_Member]
    name: str | None = None  # name of the member being read
    state: str = "name"  # name → colon → value → comma
    # An OCPP 2.0.1 SetVariableData whose "variable" is a secret one (BasicAuthPassword).
    secret_variable: bool = False


def _decode(match: re.Match[str]) -> tuple[str, bool]:
    """Scalar text of a token and whether the text ends inside it."""
    token = match.group()
    if match.group("string") is None:
        return token, False
    closed = match.group("dq") is not None or match.group("sq") is not None
    if token[0] == '"' and closed:
        try:
            return str(json.loads(token)), False
        except ValueError:
            pass
    return (token[1:-1] if closed else token[1:]), not closed


def _secret_spans(obj: _Object, closed: bool) -> list[_Member]:
    found = [m for m in obj.members if m.name.casefold() in _SECRET_NAMES and m.end]
    key = next((m for m in obj.members if m.name.casefold() == "key"), None)
    key_name = key.value.casefold() if key is not None and key.value is not None else None
    if key_name == "authorizationkey" or (not closed and (key is None or key.cut)):
        found += [m for m in obj.members if m.name.casefold() == "value" and m.end]
    # 2.0.1: {"variable": {"name": "BasicAuthPassword"}, "attributeValue": ...}; cut off
    # before its variable is known, the value goes too.
    named = any(m.name.casefold() == "variable" for m in obj.members)
    if obj.secret_variable or (not closed and not named):
        found += [m for m in obj.members if m.name.casefold() == "attributevalue" and m.end]
    return found


def _names_a_secret_variable(obj: _Object) -> bool:
    return any(
        m.name.casefold() == "name"
        and m.value is not None
        and m.value.casefold() in _SECRET_VARIABLES
        for m in obj.members
    )


def _redact_objects(text: str) -> str:
    spans: list[_Member] = []
    stack: list[_Object | None] = []  # None for an array
    pos = 0
    while pos < len(text):
        if not stack:
            opening = _OPEN.search(text, pos)
            if opening is None:
                break
            pos = opening.start()
        match = _TOKEN.match(text, pos)
        if match is None:  # white space
            pos += 1
            continue
        token, pos = match.group(), match.end()
        top = stack[-1] if stack else None
        if token in "{[":
            if top is not None and top.state == "value":
                top.members.append(_Member(top.name or ""))
                top.state = "comma"
            stack.append(_Object([]) if token == "{" else None)
        elif token in "}]":
            done = stack.pop()
            if done is not None:
                spans += _secret_spans(done, closed=True)
                parent = stack[-1] if stack else None
                if parent is not None and _names_a_secret_variable(done):
                    parent.secret_variable = True
        elif top is None:
            continue
        elif token == ":":
            top.state = "value" if top.state == "colon" else top.state
        elif token == ",":
            top.state = "name"
        elif top.state == "name":
            top.name, _ = _decode(match)
            top.state = "colon"
        elif top.state == "value":
            value, cut = _decode(match)
            top.members.append(_Member(top.name or "", value, match.start(), match.end(), cut))
            top.state = "comma"
    for obj in stack:
        if obj is not None:
            spans += _secret_spans(obj, closed=False)
    for member in sorted(spans, key=lambda m: m.start, reverse=True):
        original = text[member.start : member.end]
        quote = original[0] if original[0] in "\"'" else ""
        text = f"{text[: member.start]}{quote}{MASK}{quote}{text[member.end :]}"
    return text


# ---------------------------------------------------------------- idTags

# A member or keyword naming an idTag, and its value: JSON and Python-repr
# strings (cut off at the end of a shortened frame too) or a bare word.
_TAG_FIELD = re.compile(
    r"""(?ix)
    (?P<key> \b(?:\w*id_?tag|uid|idtoken)['"]?\s*[:=]\s* )
    (?P<value> "(?:[^"\\]|\\.)*(?P<dq>")?
             | '(?:[^'\\]|\\.)*(?P<sq>')?
             | (?!(?:None|null)\b)[^\s,;&)}\]"'{\[]+ )
    """
)
_CUT_MASK = "****"  # a value cut off by a shortened frame: its end is not the tag's


_TAG_HINT = re.compile(r"(?i)tag|uid|idtoken")  # the full pattern only runs where it can match


def mask_id_tags(text: str) -> str:
    """``text`` with the value of every idTag-like member masked (see the module docstring)."""
    if not _TAG_HINT.search(text):
        return text
    return _TAG_FIELD.sub(_mask_tag_field, text)


def _mask_tag_field(match: re.Match[str]) -> str:
    key, value = match.group("key"), match.group("value")
    quote = value[0] if value[0] in "\"'" else ""
    if not quote:
        return key + mask_id_tag(value)
    if match.group("dq") is None and match.group("sq") is None:
        return key + quote + _CUT_MASK
    try:
        decoded = json.loads(value) if quote == '"' else ast.literal_eval(value)
    except (ValueError, SyntaxError):
        decoded = value[1:-1]
    masked = mask_id_tag(str(decoded))
    return key + (json.dumps(masked) if quote == '"' else repr(masked))


def _render_arg(arg: object, full: bool) -> object:
    return arg.render(full) if isinstance(arg, Tag) else arg


def render_message(record: logging.LogRecord, *, full_id_tags: bool) -> str:
    """``record.getMessage()`` with its ``Tag`` arguments in full or masked."""
    message = str(record.msg)
    args = record.args
    if not args:
        return message
    if isinstance(args, Mapping):
        return message % {key: _render_arg(value, full_id_tags) for key, value in args.items()}
    return message % tuple(_render_arg(arg, full_id_tags) for arg in args)


# ---------------------------------------------------------------- one line

_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029]")
_ESCAPES = {"\n": "\\n", "\r": "\\r"}


def one_line(text: str) -> str:
    """Escape line breaks and control characters (tabs stay)."""
    return _CONTROL.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _ESCAPES:
        return _ESCAPES[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def component(logger_name: str) -> str:
    """``firmware.ocpp.rpc`` → ``ocpp.rpc``; other packages keep their name."""
    name = logger_name.removeprefix("firmware.") or logger_name
    return "".join("_" if c.isspace() else c for c in name)


def priority(levelno: int) -> int:
    """syslog priority of a logging level."""
    if levelno >= logging.CRITICAL:
        return 2
    if levelno >= logging.ERROR:
        return 3
    if levelno >= logging.WARNING:
        return 4
    if levelno >= logging.INFO:
        return 6
    return 7


class LineFormatter(logging.Formatter):
    """``[stamp|<priority>]LEVEL component [connector=N] [transaction=T] message``

    ``full_id_tags``: idTags in full; otherwise ``Tag`` arguments and
    idTag-like members are masked (see the module docstring).
    """

    def __init__(self, *, journald: bool = False, full_id_tags: bool = False) -> None:
        super().__init__()
        self.journald = journald
        self.full_id_tags = full_id_tags

    def format(self, record: logging.LogRecord) -> str:
        parts = [record.levelname, component(record.name)]
        connector = getattr(record, "connector", None)
        if connector is None:
            connector = _connector.get()
        if connector is not None:
            parts.append(f"connector={connector}")
        transaction = getattr(record, "transaction", None)
        if transaction is None:
            transaction = _current_transaction()
        if transaction is not None:
            parts.append(f"transaction={transaction}")
        parts.append(render_message(record, full_id_tags=self.full_id_tags))
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        elif record.exc_text:
            line += "\n" + record.exc_text
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        if not self.full_id_tags:
            line = mask_id_tags(line)
        line = one_line(redact(line))
        if self.journald:
            return f"<{priority(record.levelno)}>{line}"
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        return f"{stamp}.{int(record.msecs):03d}Z {line}"


class LineHandler(logging.StreamHandler[IO[str]]):
    """A stream handler whose own errors are one redacted line too.

    The stock handler prints a traceback and the record's arguments, which
    may hold a secret.
    """

    def handleError(self, record: logging.LogRecord) -> None:
        err = sys.exc_info()[1]
        what = f"{type(err).__name__}: {err}" if err is not None else "unknown error"
        text = f"logging error in {record.name} ({record.pathname}:{record.lineno}): {what}"
        try:
            self.stream.write(one_line(redact(text)) + self.terminator)
            self.flush()
        except Exception:
            pass


def under_journald(stream: IO[Any]) -> bool:
    """True when ``stream`` is the journal stream systemd names in ``$JOURNAL_STREAM``.

    The variable is inherited by children whose stderr may go elsewhere, so
    the device and inode are compared with the stream's.
    """
    value = os.environ.get("JOURNAL_STREAM", "")
    device, _, inode = value.partition(":")
    try:
        stat = os.fstat(stream.fileno())
        return (int(device), int(inode)) == (stat.st_dev, stat.st_ino)
    except (ValueError, OSError, AttributeError):
        return False


def _log_uncaught(kind: type[BaseException], err: BaseException, tb: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, err, tb)
        return
    logging.getLogger("firmware").critical("uncaught exception", exc_info=(kind, err, tb))


def setup(level: str, stream: IO[str] | None = None) -> LineHandler:
    """Send every log record, one line each, to ``stream`` (stderr by default).

    idTags are written in full only when ``level`` is DEBUG.
    """
    stream = sys.stderr if stream is None else stream
    handler = LineHandler(stream)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    full = root.level <= logging.DEBUG
    handler.setFormatter(LineFormatter(journald=under_journald(stream), full_id_tags=full))
    for noisy in ("websockets", "aiohttp.access", "asyncio", "pymodbus"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    return handler


class FileLineHandler(logging.handlers.RotatingFileHandler):
    """The same lines in a rotated file, always with their UTC timestamp
    (GetDiagnostics cuts the file by them); its own errors as one redacted line
    on stderr.
    """

    def handleError(self, record: logging.LogRecord) -> None:
        err = sys.exc_info()[1]
        what = f"{type(err).__name__}: {err}" if err is not None else "unknown error"
        try:
            sys.stderr.write(one_line(redact(f"cannot write log file {self.baseFilename}: {what}")))
            sys.stderr.write("\n")
        except Exception:
            pass


def add_file(
    path: Path, *, max_bytes: int, backups: int, full_id_tags: bool = False
) -> FileLineHandler:
    """Also write every record to ``path``, rotated at ``max_bytes`` with ``backups``
    old files (``path.1`` ...), idTags masked unless ``full_id_tags``. Raises
    OSError when the file cannot be opened.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = FileLineHandler(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
    handler.setFormatter(LineFormatter(journald=False, full_id_tags=full_id_tags))
    logging.getLogger().addHandler(handler)
    return handler
