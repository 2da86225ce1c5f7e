"""The station's web page in a real headless Chromium, against the real daemon.

One daemon per test carries every check of it: a whole session driven from the
page's own buttons (the controls of the simulated or emulated plant), what the
CSMS saw, the OCPP log, the power chart, screenshots at desktop and phone width
(``artifacts/web/``), `chargepoint status` against the page's summary; then the
access rules of a daemon bound off loopback.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Page, Request, expect

from hal.tokens import mask_id_tag
from hil.csms import BenchCsms
from tests.integration.browser import ARTIFACTS, DESKTOP, PHONE, chromium
from tests.integration.harness import Daemon
from tests.integration.test_api_cli import run_cli

# Drives the plant (the `hardware` marker in pyproject.toml says what that runs).
pytestmark = pytest.mark.hardware

MakeDaemon = Callable[..., Awaitable[Daemon]]
TAG = "AABBCCDD"
TOKEN = "test-token-5f0c9a1e7d2b4c83"
PASSWORD = "csms-basic-pass-7731"
NOTHING = "\u2013"  # what the page shows for an empty field
# OCPP 2.0.1 connectorStatus of the station's statuses (Part 2, G01).
CONNECTOR_STATUS_201 = {
    "Available": "Available",
    "Preparing": "Occupied",
    "Charging": "Occupied",
    "SuspendedEV": "Occupied",
    "Faulted": "Faulted",
}
SHOWN_AT = """element => {
  window.shownAt = {};
  new MutationObserver(() => { window.shownAt[element.textContent] ??= Date.now(); })
    .observe(element, {childList: true, characterData: true, subtree: true});
}"""


def base_url(daemon: Daemon) -> str:
    return f"http://127.0.0.1:{daemon.api_port}"


def watch(page: Page) -> tuple[list[str], list[str]]:
    """Every request the page makes, and every script error it raises."""
    requests: list[str] = []
    errors: list[str] = []

    def on_request(request: Request) -> None:
        requests.append(request.url)

    page.on("request", on_request)
    page.on("pageerror", lambda err: errors.append(str(err)))
    return requests, errors


async def check_cli_matches_the_page(daemon: Daemon, page: Page) -> None:
    """`chargepoint status` and the page's station summary say the same things."""
    result = await asyncio.to_thread(run_cli, "status", "--config", str(daemon.config_path))
    assert result.returncode == 0, result.stderr
    head, versions, csms, _station, connector, *_ = result.stdout.splitlines()
    station = page.locator("#station")

    def dd(name: str) -> str:
        return f'[data-field="{name}"]'

    queue = station.locator(dd("queue"))
    numbers = [await queue.get_attribute(f"data-{k}") for k in ("queued", "dropped", "thinned")]
    registration = await station.locator(dd("registration")).inner_text()
    assert head == (
        f"CP-1: connected=True registration={registration} queued={numbers[0]} "
        f"dropped={numbers[1]} thinned={numbers[2]}"
    )
    firmware = await station.locator(dd("firmware_version")).inner_text()
    backend = await station.locator(dd("hal_backend")).inner_text()
    match = re.fullmatch(
        rf"  firmware {firmware}, up (\d+):(\d\d):(\d\d), backend {backend}", versions
    )
    assert match, versions
    cli_uptime = int(match[1]) * 3600 + int(match[2]) * 60 + int(match[3])
    page_uptime = float(await station.locator(dd("uptime")).get_attribute("data-seconds") or "-1")
    assert abs(cli_uptime - page_uptime) < 5, (cli_uptime, page_uptime)
    link = station.locator(dd("link"))
    assert await link.get_attribute("data-state") == "connected"
    assert (await link.inner_text()).startswith("connected since ")
    since = await link.get_attribute("data-since")
    url = await station.locator(dd("csms_url")).inner_text()
    reconnects = await station.locator(dd("reconnects")).inner_text()
    assert csms == f"  CSMS {url}: connected since {since}, {reconnects} reconnect(s)"
    card = page.locator("#connector-1")
    status = await card.get_attribute("data-status")  # the station's own state
    tx = await card.locator(dd("transaction_id")).inner_text()
    assert connector.startswith(f"  connector 1: {status} (NoError) tx={tx} ")


@dataclass(frozen=True)
class Ocpp:
    """What the page and the CSMS show of a session in one OCPP version."""

    version: str

    @property
    def v201(self) -> bool:
        return self.version == "2.0.1"

    def shown(self, status: str) -> str:
        """The connector status the page's pill shows: the one the CSMS is told."""
        return CONNECTOR_STATUS_201[status] if self.v201 else status

    def notified(self, status: str) -> Callable[[dict[str, Any]], bool]:
        if self.v201:
            word = CONNECTOR_STATUS_201[status]
            return lambda p: p["evseId"] == 1 and p["connectorStatus"] == word
        return lambda p: p["connectorId"] == 1 and p["status"] == status

    async def transaction_id(self, d: Daemon, start: dict[str, Any]) -> str:
        """The id the CSMS knows the transaction of ``start`` by."""
        if self.v201:
            return str(start["transactionInfo"]["transactionId"])
        answer = await d.log.wait_answer("StartTransaction", start)
        return str(answer[2]["transactionId"])

    @property
    def start(self) -> tuple[str, Callable[[dict[str, Any]], bool] | None]:
        if self.v201:
            return "TransactionEvent", lambda p: p["eventType"] == "Started"
        return "StartTransaction", None

    @property
    def tx_action(self) -> str:
        return "TransactionEvent" if self.v201 else "StartTransaction"


async def follow_a_session(make_daemon: MakeDaemon, tmp_path: Path, ocpp: Ocpp) -> None:
    """A whole session driven from the page, over ``ocpp``; see the module docstring."""
    if ocpp.v201:
        d = await make_daemon(ocpp={"version": "2.0.1"})
    else:
        d = await make_daemon()
    async with chromium(tmp_path / "profile") as context:
        page = context.pages[0] if context.pages else await context.new_page()
        requests, errors = watch(page)
        await page.goto(base_url(d) + "/")
        card = page.locator("#connector-1")
        status = card.locator('[data-field="status"]')
        state = card.locator('[data-field="state"]')
        await expect(page.locator("#push")).to_have_text("live")
        await expect(status).to_have_text("Available")
        await expect(status).to_have_class(re.compile(r"\bst-Available\b"))
        green = await status.evaluate("e => getComputedStyle(e).color")
        assert green == "rgb(26, 127, 55)"
        await expect(page.locator("#cp-id")).to_have_text("CP-1")
        await expect(page.locator('#station [data-field="registration"]')).to_have_text("Accepted")
        await expect(page.locator('#station [data-field="ocpp_version"]')).to_have_text(
            ocpp.version
        )
        evse = card.locator('[data-field="evse"]')
        if ocpp.v201:  # connector N of the configuration is EVSE N, connector 1
            await expect(evse).to_have_text("EVSE 1, connector 1")
        else:
            await expect(evse).to_be_hidden()

        # The driver plugs in: on the page within a second of the station's change
        # (the page notes when it showed each status; the StatusNotification
        # carries when the station changed, on a clock taken from the bench CSMS).
        await status.evaluate(SHOWN_AT)
        mark = d.mark()
        await card.get_by_role("button", name="Plug in").click()
        changed = await d.log.wait_for("StatusNotification", ocpp.notified("Preparing"), since=mark)
        preparing = ocpp.shown("Preparing")
        await expect(status).to_have_text(preparing)
        shown_at = await page.evaluate(f"window.shownAt.{preparing}")
        delay_ms = shown_at - datetime.fromisoformat(changed["timestamp"]).timestamp() * 1000
        assert -100 < delay_ms < 1000, delay_ms
        await expect(status).to_have_class(re.compile(rf"\bst-{preparing}\b"))
        # Over 2.0.1 the station's own state goes next to what the CSMS is told.
        await expect(state).to_have_text("Preparing" if ocpp.v201 else "")
        await card.get_by_role("button", name="EV requests energy").click()
        await card.get_by_label("idTag").fill(TAG)
        await card.get_by_role("button", name="Tap").click()
        await expect(status).to_have_text(ocpp.shown("Charging"))
        await expect(state).to_have_text("Charging" if ocpp.v201 else "")
        await expect(card).to_have_attribute("data-status", "Charging")
        if not ocpp.v201:
            await d.wait_status("Charging")
        assert (await status.evaluate("e => getComputedStyle(e).color")) == "rgb(11, 87, 208)"
        await expect(card.locator('[data-field="id_tag"]')).to_have_text(mask_id_tag(TAG))
        await expect(card.locator('[data-field="relay"]')).to_have_text("closed")
        # The transaction as the CSMS knows it (2.0.1: the station's own string id).
        start = await d.log.wait_for(*ocpp.start)
        tx_id = await ocpp.transaction_id(d, start)
        await expect(card.locator('[data-field="transaction_id"]')).to_have_text(tx_id)

        # The chart moves: the last sample is the power drawn now.
        await expect(card.locator("svg")).to_have_attribute("data-last-w", re.compile(r"^[1-9]"))
        assert int(await card.locator("svg").get_attribute("data-points") or 0) >= 2

        # The start, its answer, in the log: newest first, idTag masked (2.0.1: then the
        # Updated event of energy flowing, chargingState Charging, and its answer).
        starts = page.locator(f'#log-rows li[data-action="{ocpp.tx_action}"]')
        await expect(starts).to_have_count(4 if ocpp.v201 else 2)
        await expect(starts.first).to_have_attribute("data-kind", "RESULT")
        await expect(starts.last.locator(".payload")).to_contain_text(f'"{mask_id_tag(TAG)}"')
        if ocpp.v201:
            await expect(starts.last.locator(".payload")).to_contain_text(f'"{tx_id}"')
        assert TAG not in await page.locator("#log-rows").inner_text()
        await page.locator("#log-filter").select_option(ocpp.tx_action)
        await expect(page.locator("#log-rows li:visible")).to_have_count(4 if ocpp.v201 else 2)
        await page.locator("#log-filter").select_option("")
        await page.locator("#log-pause").click()
        shown = await page.locator("#log-rows li").count()
        mark = d.mark()
        await card.get_by_role("button", name="Pause").click()  # the vehicle pauses
        await expect(card).to_have_attribute("data-status", "SuspendedEV")
        if ocpp.v201:
            # Still Occupied for the CSMS; the transaction's chargingState says it.
            await expect(status).to_have_text("Occupied")
            await expect(state).to_have_text("SuspendedEV")
            await d.log.wait_for(
                "TransactionEvent",
                lambda p: p["transactionInfo"].get("chargingState") == "SuspendedEV",
                since=mark,
            )
        else:
            await d.wait_status("SuspendedEV")
        await expect(page.locator("#log-count")).to_contain_text(re.compile(r"paused, [1-9]"))
        assert await page.locator("#log-rows li").count() == shown
        await expect(page.locator("#log-pause")).to_have_text("Resume")
        await page.locator("#log-pause").click()
        if ocpp.v201:
            changed = page.locator('#log-rows li[data-action="TransactionEvent"][data-kind="CALL"]')
            await expect(changed.first).to_contain_text("SuspendedEV")
        else:
            notifications = page.locator(
                '#log-rows li[data-action="StatusNotification"][data-kind="CALL"]'
            )
            await expect(notifications.first).to_contain_text("SuspendedEV")
        await card.get_by_role("button", name="EV requests energy").click()
        await expect(card).to_have_attribute("data-status", "Charging")
        await expect(status).to_have_text(ocpp.shown("Charging"))

        await check_cli_matches_the_page(d, page)

        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        name = d.backend + ("-2.0.1" if ocpp.v201 else "")
        await page.screenshot(path=ARTIFACTS / f"{name}-desktop.png", full_page=True)
        await page.set_viewport_size(PHONE)
        assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        await page.screenshot(path=ARTIFACTS / f"{name}-phone.png", full_page=True)
        await page.set_viewport_size(DESKTOP)

        # A fault from the bench controls: Faulted with the station's errorCode, in red;
        # then cleared (2.0.1's StatusNotification has no errorCode: the page has it).
        mark = d.mark()
        rcd = card.locator('[data-fault="rcd_trip"]')
        await rcd.click()
        await expect(status).to_have_text("Faulted")
        await expect(card.locator('[data-field="error_code"]')).to_have_text("GroundFailure")
        assert (await status.evaluate("e => getComputedStyle(e).color")) == "rgb(198, 40, 40)"
        await expect(rcd).to_have_attribute("aria-pressed", "true")
        faulted = await d.log.wait_for("StatusNotification", ocpp.notified("Faulted"), since=mark)
        assert faulted.get("errorCode", "GroundFailure") == "GroundFailure"
        await rcd.click()
        await expect(rcd).to_have_attribute("aria-pressed", "false")
        await card.get_by_role("button", name="Unplug").click()
        await expect(status).to_have_text("Available")
        await expect(state).to_have_text("")
        await expect(card.locator('[data-field="transaction_id"]')).to_have_text(NOTHING)
        if ocpp.v201:
            ended = page.locator('#log-rows li[data-action="TransactionEvent"]').filter(
                has_text=re.compile(r'"eventType":"Ended".*"transactionId":"' + re.escape(tx_id))
            )
            await expect(ended).to_have_count(1)
        else:
            stops = page.locator('#log-rows li[data-action="StopTransaction"]')
            await expect(stops).to_have_count(2)

        # A bad token typed in: the station's reason, on the page.
        await card.get_by_label("idTag").fill("tag\u00e9")
        await card.get_by_role("button", name="Tap").click()
        await expect(card.locator(".message")).to_contain_text("printable ASCII")
        station = page.locator("#station-controls")
        await station.get_by_label("idTag on the station's reader").fill("carte-\u00e9")
        await station.get_by_role("button", name="Tap").click()
        await expect(station.locator(".message")).to_have_text(
            "field 'uid' must be printable ASCII (0x20-0x7E), got '\u00e9' at position 7"
        )

        # The daemon stops with the page open: the stream ends, the page says so.
        assert await d.stop() == 0
        await expect(page.locator("#push")).to_have_text("reconnecting…")

    assert errors == []
    origin = base_url(d) + "/"
    assert all(url.startswith(origin) for url in requests), requests  # nothing from elsewhere
    assert [u for u in requests if u.endswith("/api/v1/events")] == [origin + "api/v1/events"]
    assert not [u for u in requests if "/api/v1/status" in u]  # pushed, never polled


@pytest.mark.emulated
async def test_the_page_follows_a_session(make_daemon: MakeDaemon, tmp_path: Path) -> None:
    await follow_a_session(make_daemon, tmp_path, Ocpp("1.6"))


async def test_the_page_follows_a_2_0_1_session(
    csms: BenchCsms, make_daemon: MakeDaemon, tmp_path: Path
) -> None:
    """The same session over OCPP 2.0.1: the connector as EVSE 1, connector 1, the five
    2.0.1 statuses with the station's own state beside them, the string transactionId."""
    csms.versions = ["2.0.1"]
    await follow_a_session(make_daemon, tmp_path, Ocpp("2.0.1"))


async def test_off_loopback_the_page_needs_the_token(
    make_daemon: MakeDaemon, tmp_path: Path
) -> None:
    """Bound to every interface, nothing answers without ``api.token``."""
    d = await make_daemon(api={"host": "0.0.0.0", "token": TOKEN}, ocpp={"password": PASSWORD})
    base = base_url(d)
    async with aiohttp.ClientSession() as http:
        for path in ("/", "/static/app.js", "/api/v1/status", "/api/v1/events", "/metrics"):
            async with http.get(base + path) as r:
                assert r.status == 401, path
        async with http.post(base + "/api/v1/sim/rfid", json={"uid": TAG}) as r:
            assert r.status == 401
        wrong = {"Authorization": "Bearer " + TOKEN[:-1] + "x"}
        async with http.get(base + "/api/v1/status", headers=wrong) as r:
            assert r.status == 401
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        async with http.get(base + "/metrics", headers=bearer) as r:
            assert r.status == 200 and "chargepoint_ocpp_connected 1" in await r.text()
        # A page of another origin cannot make the browser change anything.
        other = {**bearer, "Origin": "http://127.0.0.1:1"}
        async with http.post(base + "/api/v1/sim/rfid", json={"uid": TAG}, headers=other) as r:
            assert r.status == 403

    async with chromium(tmp_path / "profile") as context:
        page = context.pages[0] if context.pages else await context.new_page()
        _, errors = watch(page)
        refused = await page.goto(base + "/")
        assert refused is not None and refused.status == 401
        await expect(page.get_by_role("button", name="Sign in")).to_be_visible()
        assert await page.locator("#connectors").count() == 0
        await page.get_by_label("Token").fill("not-the-token-at-all")
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_role("alert")).to_have_text("Wrong token.")

        await page.get_by_label("Token").fill(TOKEN)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.locator('#connector-1 [data-field="status"]')).to_have_text("Available")
        await expect(page.locator("#push")).to_have_text("live")
        (cookie,) = await context.cookies()
        assert (
            cookie["httpOnly"] and cookie["sameSite"] == "Strict" and TOKEN not in cookie["value"]
        )

        # ?token= once: the cookie, and the address without the token.
        await context.clear_cookies()
        await page.goto(base + "/?token=" + TOKEN)
        assert page.url == base + "/"
        await expect(page.locator('#station [data-field="registration"]')).to_have_text("Accepted")
        await expect(page.locator("#log-rows li").first).to_be_visible()
        text = await page.content() + await page.locator("body").inner_text()
        assert TOKEN not in text and PASSWORD not in text

        # The CSMS goes away: offline since when, and when the next try comes, on the
        # page and in `chargepoint status` alike.
        d.csms.refuse = True
        await d.csms.drop(d.cp_id)
        link = page.locator('#station [data-field="link"]')
        await expect(page.locator("#link-pill")).to_have_text("offline")
        await expect(link).to_have_text(
            re.compile(r"^offline since \d\d:\d\d:\d\d, next retry in \d+ s$")
        )
        since = await link.get_attribute("data-since")
        result = await asyncio.to_thread(run_cli, "status", "--config", str(d.config_path))
        csms = result.stdout.splitlines()[2]
        assert re.fullmatch(
            rf"  CSMS \S+: offline since {re.escape(since or '?')}(, connecting)?"
            r"(, next retry at \S+ \((cannot connect to \S+: HTTP 503|disconnected from \S+)\))?"
            r", 0 reconnect\(s\)",
            csms,
        ), csms
        d.csms.refuse = False
        await expect(page.locator("#link-pill")).to_have_text("online")
        await expect(page.locator('#station [data-field="reconnects"]')).to_have_text("1")
    assert errors == []

    # The CLI reads the token from the configuration; without it, a clear refusal.
    result = await asyncio.to_thread(run_cli, "status", "--config", str(d.config_path))
    assert result.returncode == 0 and "CP-1: connected=True" in result.stdout, result.stderr
    result = await asyncio.to_thread(run_cli, "status", "--api", base)
    assert result.returncode == 1 and "HTTP 401" in result.stderr
