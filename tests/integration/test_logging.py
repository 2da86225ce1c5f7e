"""The daemon's own log output: journald lines, session context, and no secrets in it."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Awaitable, Callable

import pytest

from hil.csms import BenchCsms
from tests.integration.harness import Daemon, charge_session_start, wait_until

MakeDaemon = Callable[..., Awaitable[Daemon]]

PASSWORD = "first-password-0001"
KEY = 'k3y"Quote+Slash/0099'  # an AuthorizationKey needing JSON escapes


def _basic(password: str) -> str:
    return base64.b64encode(f"CP-1:{password}".encode()).decode()


async def test_journald_log_has_context_and_never_the_key(
    make_daemon: MakeDaemon, csms: BenchCsms, monkeypatch: pytest.MonkeyPatch
) -> None:
    csms.passwords["CP-1"] = PASSWORD
    d = await make_daemon(start=False, ocpp={"password": PASSWORD})
    # stderr of the daemon is this file; systemd would name it in JOURNAL_STREAM.
    d.log_path.touch()
    st = d.log_path.stat()
    monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
    await d.start()

    # The CSMS sets the key with the value first and the key name escaped: the
    # station decodes it as AuthorizationKey, so its frame log must hide it too.
    await d.log.send_raw(
        '[2,"set-key","ChangeConfiguration",{"value":'
        + json.dumps(KEY)
        + ',"key":"\\u0041uthorizationKey"}]'
    )
    await wait_until(
        lambda: any(
            f.message and f.message[1] == "set-key" for f in d.log.frames if f.direction == "in"
        ),
        5,
        "the answer to ChangeConfiguration",
    )
    (answer,) = [f.message for f in d.log.frames if f.message and f.message[1] == "set-key"][1:]
    assert answer == [3, "set-key", {"status": "Accepted"}]
    csms.passwords["CP-1"] = KEY
    await wait_until(
        lambda: d.log.connections == 2 and d.log.connected, 5, "reconnect with the key"
    )
    listed = await d.log.call("GetConfiguration", {})
    assert "AuthorizationKey" not in {k["key"] for k in listed["configurationKey"]}

    d.mark()
    await charge_session_start(d)
    local = (await d.connector())["local_transaction_id"]
    assert isinstance(local, int)
    await d.tap("AABBCCDD")
    await d.log.wait_for("StopTransaction", since=d._since)
    assert await d.stop() == 0

    text = d.log_path.read_text()
    for secret in (KEY, json.dumps(KEY)[1:-1], PASSWORD, _basic(KEY), _basic(PASSWORD)):
        assert secret not in text
    lines = text.splitlines()
    # One record per line, each with a syslog priority and no timestamp.
    head = re.compile(r"<([2-7])>(DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+ ")
    assert lines and all(head.match(line) for line in lines), [
        line for line in lines if not head.match(line)
    ][:5]
    assert not any(re.match(r"<\d>\S+ \d{4}-\d\d-\d\dT", line) for line in lines)
    # The CSMS's frame was logged (DEBUG), with the value masked.
    (frame,) = [line for line in lines if '"set-key","ChangeConfiguration"' in line]
    assert frame.startswith("<7>DEBUG ocpp.frames ") and '{"value":"***"' in frame
    assert any("configuration key AuthorizationKey set to ***" in line for line in lines)
    # Lines of the session carry the connector and the transaction.
    context = f"connector=1 transaction={local} "
    assert any(
        line.startswith(f"<6>INFO connector {context}") and "relay closed" in line for line in lines
    )
    assert any(
        f"transaction={local} " in line and '"StopTransaction"' in line and "→" in line
        for line in lines
    )
    # Lines outside a session carry neither.
    assert any(
        line.startswith("<6>INFO ocpp.registration ") and "transaction=" not in line
        for line in lines
    )
