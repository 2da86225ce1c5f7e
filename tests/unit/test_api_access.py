"""Who may use the local API (firmware.access), over real HTTP with aiohttp's test server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from firmware.access import COOKIE, session_value
from firmware.api import build_app
from hal.interfaces import BoardSettings
from hal.sim.backend import build

TOKEN = "a-long-enough-token-0123"
HTML = {"Accept": "text/html,application/xhtml+xml"}


def _status() -> dict[str, Any]:
    return {"charge_point_id": "CP", "ocpp": {"connected": False}, "connectors": []}


@pytest.fixture
async def guarded() -> AsyncIterator[TestClient[Any, Any]]:
    backend = build({}, 1, BoardSettings())
    app = build_app(_status, backend.plant, token=TOKEN)
    async with TestClient(TestServer(app)) as client:
        yield client


@pytest.fixture
async def open_api() -> AsyncIterator[TestClient[Any, Any]]:
    backend = build({}, 1, BoardSettings())
    async with TestClient(TestServer(build_app(_status, backend.plant))) as client:
        yield client


async def test_without_a_token_configured_everything_is_open(
    open_api: TestClient[Any, Any],
) -> None:
    assert (await open_api.get("/api/v1/status")).status == 200
    ok = await open_api.post("/api/v1/sim/connectors/1", json={"cp_state": "B"})
    assert ok.status == 200


@pytest.mark.parametrize("path", ["/api/v1/status", "/api/v1/nothing", "/"])
async def test_without_the_token_nothing_answers(guarded: TestClient[Any, Any], path: str) -> None:
    response = await guarded.get(path)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="chargepoint"'
    assert "token" in (await response.json())["error"]
    sim = await guarded.post("/api/v1/sim/connectors/1", json={"cp_state": "B"})
    assert sim.status == 401


@pytest.mark.parametrize(
    "header", [f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", "Bearer ", f"Basic {TOKEN}", TOKEN]
)
async def test_a_wrong_bearer_is_refused(guarded: TestClient[Any, Any], header: str) -> None:
    response = await guarded.get("/api/v1/status", headers={"Authorization": header})
    assert response.status == 401


async def test_the_bearer_token_opens_every_route(guarded: TestClient[Any, Any]) -> None:
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert (await guarded.get("/api/v1/status", headers=bearer)).status == 200
    sim = await guarded.post("/api/v1/sim/connectors/1", json={"cp_state": "B"}, headers=bearer)
    assert sim.status == 200
    missing = await guarded.get("/api/v1/nothing", headers=bearer)
    assert missing.status == 404  # known only once the token is given


async def test_a_browser_gets_the_login_form_and_then_a_cookie(
    guarded: TestClient[Any, Any],
) -> None:
    page = await guarded.get("/", headers=HTML)
    assert page.status == 401 and page.content_type == "text/html"
    assert 'action="/login"' in await page.text()
    wrong = await guarded.post("/login", data={"token": "guess"}, allow_redirects=False)
    assert wrong.status == 401 and "Wrong token." in await wrong.text()
    assert COOKIE not in wrong.cookies
    right = await guarded.post("/login", data={"token": TOKEN}, allow_redirects=False)
    assert right.status == 303 and right.headers["Location"] == "/"
    cookie = right.cookies[COOKIE]
    assert cookie.value == session_value(TOKEN) and TOKEN not in cookie.value
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/"
    status = await guarded.get("/api/v1/status", cookies={COOKIE: cookie.value})
    assert status.status == 200
    forged = await guarded.get("/api/v1/status", cookies={COOKIE: session_value(TOKEN + "x")})
    assert forged.status == 401


async def test_a_token_in_the_address_is_traded_for_the_cookie(
    guarded: TestClient[Any, Any],
) -> None:
    response = await guarded.get(
        "/api/v1/status", params={"token": TOKEN, "x": "1"}, allow_redirects=False
    )
    assert response.status == 303
    assert response.headers["Location"] == "/api/v1/status?x=1"  # the token left out
    assert response.cookies[COOKIE].value == session_value(TOKEN)
    guarded.session.cookie_jar.clear()
    wrong = await guarded.get("/api/v1/status", params={"token": "nope"}, allow_redirects=False)
    assert wrong.status == 401


@pytest.mark.parametrize("token", [TOKEN, None])
async def test_changes_from_another_origin_are_refused(token: str | None) -> None:
    backend = build({}, 1, BoardSettings())
    async with TestClient(TestServer(build_app(_status, backend.plant, token=token))) as client:
        headers = {"Authorization": f"Bearer {TOKEN}", "Origin": "http://evil.example"}
        body = {"cp_state": "B"}
        response = await client.post("/api/v1/sim/connectors/1", json=body, headers=headers)
        assert response.status == 403
        same = {**headers, "Origin": f"http://{client.host}:{client.port}"}
        response = await client.post("/api/v1/sim/connectors/1", json=body, headers=same)
        assert response.status == 200
