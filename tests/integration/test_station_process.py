"""The bench's station process: what a test gets from ``start``."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable

from tests.integration.harness import Daemon

MakeDaemon = Callable[..., Awaitable[Daemon]]


async def test_an_api_port_taken_before_the_start_is_replaced(make_daemon: MakeDaemon) -> None:
    d = await make_daemon(start=False)
    taken = d.api_port
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", taken))
        squatter.listen()
        await d.start()
        assert d.api_port != taken
        assert (await d.get("/status"))["ocpp"]["registration"] == "Accepted"
    assert f"{taken}): address already in use" in d.log_path.read_text()
