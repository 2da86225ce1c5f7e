"""The local API over real HTTP: status, and the sim routes without a plant."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from firmware.api import build_app
from hal.interfaces import BoardSettings, TokenPresented
from hal.sim.backend import SimBackend, build


def _status() -> dict[str, Any]:
    return {"charge_point_id": "CP", "ocpp": {"connected": False}, "connectors": []}


@pytest.fixture
async def no_plant() -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(build_app(_status, None))) as client:
        yield client


@pytest.mark.parametrize(
    "path", ["/api/v1/sim/connectors/1", "/api/v1/sim/rfid", "/api/v1/sim/faults/1"]
)
async def test_sim_routes_are_404_without_a_plant(
    no_plant: TestClient[Any, Any], path: str
) -> None:
    response = await no_plant.post(path, json={"cp_state": "B"})
    assert response.status == 404
    assert "no simulated" in (await response.json())["error"]
    # Not registered at all: no sim route is even resolved without a plant.
    assert not any(
        "/sim/connectors" in (r.resource.canonical if r.resource else "")
        for r in no_plant.app.router.routes()
    )


async def test_status_and_unknown_route(no_plant: TestClient[Any, Any]) -> None:
    response = await no_plant.get("/api/v1/status")
    assert response.status == 200 and (await response.json())["charge_point_id"] == "CP"
    missing = await no_plant.get("/api/v1/nothing")
    assert missing.status == 404 and "error" in await missing.json()


async def test_oversized_body_is_rejected() -> None:
    backend = build({}, 1, BoardSettings())
    async with TestClient(TestServer(build_app(_status, backend.plant))) as client:
        response = await client.post("/api/v1/sim/rfid", data=b"{" + b" " * 20000 + b"}")
        assert response.status == 413
        ok = await client.post("/api/v1/sim/connectors/1", json={"cp_state": "B"})
        assert ok.status == 200
        assert backend.connectors[1].evse.pilot.value == "B"


@pytest.fixture
async def sim_plant() -> AsyncIterator[tuple[TestClient[Any, Any], SimBackend]]:
    backend = build({}, 2, BoardSettings())
    async with TestClient(TestServer(build_app(_status, backend.plant))) as client:
        yield client, backend


@pytest.mark.parametrize(
    ("uid", "connector"),
    [("RFID_VALID1", None), ("TAG0001", 1), ("user-42", 2), ("abc", None), ("a b~{}", None)],
)
async def test_any_id_tag_is_presented_exactly_as_given(
    sim_plant: tuple[TestClient[Any, Any], SimBackend], uid: str, connector: int | None
) -> None:
    client, backend = sim_plant
    body: dict[str, Any] = {"uid": uid}
    if connector is not None:
        body["connector"] = connector
    response = await client.post("/api/v1/sim/rfid", json=body)
    assert response.status == 200, await response.text()
    assert backend.events.get_nowait() == TokenPresented(uid, connector)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({}, "field 'uid' is required"),
        ({"uid": ""}, "field 'uid' must be 1 to 20 characters, got 0"),
        ({"uid": "A" * 21}, "field 'uid' must be 1 to 20 characters, got 21"),
        (
            {"uid": "04A1\r\n"},
            "field 'uid' must be printable ASCII (0x20-0x7E), got '\\r' at position 5",
        ),
        (
            {"uid": "carte-\u00e9"},
            "field 'uid' must be printable ASCII (0x20-0x7E), got '\u00e9' at position 7",
        ),
        ({"uid": " 04A1"}, "field 'uid' must not start or end with a blank"),
        ({"uid": 1234}, "field 'uid' must be str"),
        ({"uid": None}, "field 'uid' must be str"),
        ({"uid": ["04A1"]}, "field 'uid' must be str"),
        ({"uid": "04A1", "connector": "1"}, "field 'connector' must be int"),
    ],
)
async def test_bad_id_tags_get_400_with_the_reason(
    sim_plant: tuple[TestClient[Any, Any], SimBackend], body: dict[str, Any], error: str
) -> None:
    client, backend = sim_plant
    response = await client.post("/api/v1/sim/rfid", json=body)
    assert response.status == 400
    assert (await response.json()) == {"error": error}
    assert backend.events.empty()
