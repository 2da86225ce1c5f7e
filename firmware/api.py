"""Local HTTP API: station status, and control of the simulated/emulated plant.

Route names and JSON fields are a contract used by tests, the bench and the
web page. Bad input gets a 400 (or 404) with ``{"error": "..."}``, never a crash.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web

from firmware import access
from hal.interfaces import Fault, PilotState, PlantControl
from hal.tokens import id_tag_problem

log = logging.getLogger("firmware.api")

SIM_FAULTS = frozenset(f.value for f in Fault)
MAX_BODY = 16 * 1024

StatusProvider = Callable[[], dict[str, Any]]


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def _body(request: web.Request, allowed: dict[str, tuple[type, ...]]) -> dict[str, Any]:
    raw = await request.read()
    try:
        data = json.loads(raw or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "body must be a JSON object") from None
    if not isinstance(data, dict):
        raise ApiError(400, "body must be a JSON object")
    for key, value in data.items():
        if key not in allowed:
            raise ApiError(400, f"unknown field {key!r} (allowed: {', '.join(sorted(allowed))})")
        types = allowed[key]
        if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
            names = "/".join(t.__name__ for t in types)
            raise ApiError(400, f"field {key!r} must be {names}")
    return data


def _connector_id(request: web.Request) -> int:
    try:
        return int(request.match_info["id"])
    except ValueError:
        raise ApiError(404, f"no connector {request.match_info['id']!r}") from None


def _drive(action: Callable[[], None], connector: object) -> web.Response:
    """Run one plant command; the plant's KeyError/ValueError become 404/400."""
    try:
        action()
    except KeyError:
        raise ApiError(404, f"no connector {connector}") from None
    except ValueError as err:
        raise ApiError(400, str(err)) from None
    return web.json_response({"ok": True})


@web.middleware
async def _errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except ApiError as err:
        return _error(err.status, err.message)
    except web.HTTPException as err:
        if err.status >= 400:
            return _error(err.status, err.reason)
        raise
    except Exception as err:
        log.exception("API request %s %s failed", request.method, request.path)
        return _error(500, f"internal error: {type(err).__name__}")


def build_app(
    status: StatusProvider, plant: PlantControl | None, *, token: str | None = None
) -> web.Application:
    """The API's routes; with ``token`` every route asks for it (``firmware.access``)."""
    app = web.Application(middlewares=[_errors, access.middleware(token)], client_max_size=MAX_BODY)

    async def get_status(_request: web.Request) -> web.Response:
        return web.json_response(status())

    def require_plant() -> PlantControl:
        if plant is None:
            raise ApiError(404, "no simulated or emulated plant on this station")
        return plant

    async def sim_connector(request: web.Request) -> web.Response:
        target = require_plant()
        connector_id = _connector_id(request)
        body = await _body(
            request,
            {"cp_state": (str,), "ev_max_current_a": (int, float), "soc": (int, float)},
        )
        if not body:
            raise ApiError(400, "give at least one of cp_state, ev_max_current_a, soc")
        cp_state = body.get("cp_state")
        if cp_state is not None and cp_state not in PilotState.__members__:
            raise ApiError(400, f"cp_state must be one of A..F, got {cp_state!r}")
        return _drive(
            lambda: target.set_ev(
                connector_id,
                cp_state=PilotState(cp_state) if cp_state is not None else None,
                ev_max_current_a=body.get("ev_max_current_a"),
                soc=body.get("soc"),
            ),
            connector_id,
        )

    async def sim_rfid(request: web.Request) -> web.Response:
        target = require_plant()
        body = await _body(request, {"uid": (str,), "connector": (int,)})
        if "uid" not in body:
            raise ApiError(400, "field 'uid' is required")
        problem = id_tag_problem(body["uid"])
        if problem is not None:
            raise ApiError(400, f"field 'uid' {problem}")
        return _drive(
            lambda: target.present_token(body["uid"], body.get("connector")), body.get("connector")
        )

    async def sim_fault(request: web.Request) -> web.Response:
        target = require_plant()
        connector_id = _connector_id(request)
        body = await _body(request, {"fault": (str,), "active": (bool,)})
        if "fault" not in body or "active" not in body:
            raise ApiError(400, "fields 'fault' and 'active' are required")
        if body["fault"] not in SIM_FAULTS:
            raise ApiError(400, f"fault must be one of {', '.join(sorted(SIM_FAULTS))}")
        fault = Fault(body["fault"])
        return _drive(lambda: target.set_fault(connector_id, fault, body["active"]), connector_id)

    async def no_plant(_request: web.Request) -> web.Response:
        raise ApiError(404, "no simulated or emulated plant on this station")

    app.router.add_get("/api/v1/status", get_status)
    if plant is None:  # a board: nothing can fake its sensors through the API
        app.router.add_route("*", "/api/v1/sim/{tail:.*}", no_plant)
    else:
        app.router.add_post("/api/v1/sim/connectors/{id}", sim_connector)
        app.router.add_post("/api/v1/sim/rfid", sim_rfid)
        app.router.add_post("/api/v1/sim/faults/{id}", sim_fault)
    return app


class ApiServer:
    def __init__(self, app: web.Application, host: str, port: int) -> None:
        # Streams (the web page's push channel) end on shutdown: no long wait for them.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        self.host = host
        self.port = port

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        addresses = self._runner.addresses  # the bound port when 0 was asked for
        if addresses:
            self.port = int(addresses[0][1])
        log.info("local API on http://%s:%d", self.host, self.port)

    async def stop(self) -> None:
        await self._runner.cleanup()
