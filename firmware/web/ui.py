"""The station's own web page: ``/``, its assets, and its push channel.

- ``GET /`` the page, ``GET /static/...`` its script and style sheet (package
  data, no build step, no external address).
- ``GET /api/v1/events`` Server-Sent Events: ``hello`` (the bench controls,
  or null on a board), then ``state`` (``view.page_state``) whenever it
  changes, ``frames`` (new OCPP log entries, oldest first) and ``tick`` (the
  station's time, the uptime and the new power samples, each second). A
  change (a status, a frame, the link) is pushed within ``MIN_GAP_S`` of it;
  nothing is sent between ticks when nothing changed. The browser's
  EventSource reconnects by itself (after a restart of the daemon, say), and
  gets everything again.

Every route is behind ``firmware.access`` like the rest of the API.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import web

from firmware.web.frames import FrameRing
from firmware.web.history import KEEP, SAMPLE_S, PowerHistory
from firmware.web.view import controls, page_state

log = logging.getLogger("firmware.web")

MIN_GAP_S = 0.2  # at most five pushes a second to a page, whatever happens
IDLE_S = 5.0  # a tick at least this often, even when sampling stalls
MAX_STREAMS = 8  # pages open at once; more get 503
RETRY_MS = 2000  # how soon EventSource comes back after the stream ends
STATIC = Path(str(resources.files("firmware.web").joinpath("static")))
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
ASSETS = {"app.js": "text/javascript", "app.css": "text/css", "favicon.svg": "image/svg+xml"}


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class WebUi:
    def __init__(
        self,
        *,
        status: Callable[[], dict[str, Any]],
        power: Callable[[], list[float]],
        now: Callable[[], datetime],
        has_plant: bool,
    ) -> None:
        self._status = status
        self._power = power
        self._now = now
        self._controls = controls(has_plant)
        self.frames = FrameRing(lambda: _ms(now()))
        self.history = PowerHistory()
        self._changed = asyncio.Event()
        self._closing = asyncio.Event()
        self._streams = 0

    # ------------------------------------------------------------ what feeds it

    def changed(self) -> None:
        """Something the page shows changed: wake every open stream."""
        self._changed.set()
        self._changed = asyncio.Event()

    def frame(self, direction: str, text: str) -> None:
        self.frames.add(direction, text)
        self.changed()

    async def run(self) -> None:
        """Sample the power of each connector every ``SAMPLE_S`` (in the app's TaskGroup)."""
        while True:
            self.history.add(_ms(self._now()), self._power())
            self.changed()
            await asyncio.sleep(SAMPLE_S)

    # ------------------------------------------------------------ routes

    def install(self, app: web.Application) -> None:
        app.router.add_get("/", self._page)
        app.router.add_get("/static/{name}", self._asset)
        app.router.add_get("/api/v1/events", self._events)
        app.on_shutdown.append(self._close)

    async def _page(self, _request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html", headers=SECURITY_HEADERS)

    async def _asset(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in ASSETS:
            raise web.HTTPNotFound(reason=f"no asset {name!r}")
        headers = {**SECURITY_HEADERS, "Content-Type": ASSETS[name]}
        return web.FileResponse(STATIC / name, headers=headers)

    async def _close(self, _app: web.Application) -> None:
        self._closing.set()
        self.changed()

    async def _events(self, request: web.Request) -> web.StreamResponse:
        if self._streams >= MAX_STREAMS:
            return web.json_response({"error": f"at most {MAX_STREAMS} pages at once"}, status=503)
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        self._streams += 1
        try:
            await self._stream(response)
        except ConnectionError:
            pass  # the page went away
        finally:
            self._streams -= 1
        return response

    async def _stream(self, response: web.StreamResponse) -> None:
        await response.write(f"retry: {RETRY_MS}\n\n".encode())
        hello = {"controls": self._controls, "sample_s": SAMPLE_S, "history": KEEP}
        await _send(response, "hello", hello)
        last_state = ""
        frame_seq = 0
        sample_seq = 0
        while not self._closing.is_set():
            wake = self._changed
            status = self._status()
            state = json.dumps(page_state(status), separators=(",", ":"))
            if state != last_state:
                await _send_text(response, "state", state)
                last_state = state
            frames = self.frames.since(frame_seq)
            if frames:
                frame_seq = frames[-1]["seq"]
                await _send(response, "frames", frames)
            if self.history.seq > sample_seq:
                samples = self.history.since(sample_seq)
                sample_seq = self.history.seq
                await _send(
                    response,
                    "tick",
                    {
                        "now": _ms(self._now()),
                        "uptime_s": status.get("uptime_s"),
                        "power": samples,
                    },
                )
            await asyncio.sleep(MIN_GAP_S)
            try:
                async with asyncio.timeout(IDLE_S):
                    await wake.wait()
            except TimeoutError:
                await response.write(b": idle\n\n")  # finds a page that went away


async def _send(response: web.StreamResponse, event: str, data: object) -> None:
    await _send_text(response, event, json.dumps(data, separators=(",", ":")))


async def _send_text(response: web.StreamResponse, event: str, data: str) -> None:
    # JSON has no raw line breaks: one data line per event.
    await response.write(f"event: {event}\ndata: {data}\n\n".encode())
