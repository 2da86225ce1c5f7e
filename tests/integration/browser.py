"""A real headless Chromium for the web page tests: Debian's ``chromium`` driven by Playwright.

Playwright only drives it (``executable_path``); it never downloads a browser of its
own. The profile is new for every test and the browser asks nothing of the network
(no sync, no updates, no QUIC, no proxy): the machine may have none.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from playwright.async_api import BrowserContext, async_playwright

from tests.integration.harness import ROOT

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-proxy-server",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
# Screenshots the test run leaves behind (git-ignored; README, "Web page").
ARTIFACTS = ROOT / "artifacts" / "web"


@asynccontextmanager
async def chromium(profile: Path) -> AsyncIterator[BrowserContext]:
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            headless=True,
            args=ARGS,
            viewport=DESKTOP,
        )
        context.set_default_timeout(15_000)
        try:
            yield context
        finally:
            await context.close()
