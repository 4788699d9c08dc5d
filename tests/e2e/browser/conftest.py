"""Real-browser tests of the trading screen: fixtures.

One world for the module (``tests/integration/gateway/world.py`` with execution and the
position monitor: ``full=True``), plus a gateway of these tests' own on a fixed port
with the pages mounted (`services.gateway.web.mount_web`), so that it can be stopped and
started again at the same address while a page is open. Headless Debian chromium,
driven by Playwright's async API on the test session's event loop (the services run on
that loop too, so the sync API cannot be used). Playwright never downloads a browser:
chromium comes from Debian (``apt-get install chromium``; installed here when missing
and allowed).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from libs.runtime.metrics import ServiceMetrics
from libs.runtime.runner import ServiceContext
from libs.runtime.settings import Settings
from libs.runtime.settings import TradingMode as SystemMode
from services.gateway.bootstrap import GatewayDependencies
from services.gateway.service import GatewayService
from services.gateway.settings import GatewaySettings
from services.gateway.web import WEB_ROOT, mount_web
from tests.integration.gateway.world import PASSWORD, World, running_world
from tests.integration.risk.harness import broker_settings

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
#: A phone-sized viewport is used by one test; the rest use a laptop's.
DESKTOP = {"width": 1400, "height": 1000}


def _ensure_chromium() -> str:
    """Debian's chromium; installed with apt-get when missing and we are root."""
    if Path(CHROMIUM).exists():
        return CHROMIUM
    if shutil.which("apt-get") and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env, timeout=300)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "chromium"], check=False, env=env, timeout=600
        )
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: run `apt-get install -y chromium` (make test does)")
    return CHROMIUM


def _node_modules_ready() -> None:
    if not (WEB_ROOT / "node_modules" / "uplot").is_dir():
        # The pages cannot load their CSS framework and charts without them.
        subprocess.run(["npm", "ci", "--prefix", str(WEB_ROOT)], check=True, timeout=300)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class WebGateway:
    """A gateway with the pages, on a fixed port so a restart keeps the address."""

    world: World
    port: int
    service: GatewayService | None = None
    starts: int = field(default=0)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        service = GatewayService(
            GatewayDependencies(
                GatewaySettings(
                    host="127.0.0.1",
                    port=self.port,
                    login_attempts_per_address=1000,
                    ws_recheck_s=1.0,
                ),
                broker_settings(self.world.simulator),
                clock=self.world.clock,
            )
        )
        ctx = ServiceContext(
            name="gateway",
            settings=Settings(
                nats_url=self.world.nats_url, database_url=self.world.dsn, mode=SystemMode.PAPER
            ),
            clock=self.world.clock,
            metrics=ServiceMetrics(f"gateway-web-{self.starts}"),
            request_stop=lambda: None,
        )
        await service.start(ctx)
        assert service.app is not None
        # Until app.py calls mount_web itself (idempotent either way).
        mount_web(service.app, WEB_ROOT)
        self.service = service
        self.starts += 1

    async def stop(self) -> None:
        if self.service is not None:
            service, self.service = self.service, None
            await service.stop()

    async def restart(self) -> None:
        await self.stop()
        await self.start()


@pytest.fixture(scope="module")
async def world(server_root: Path, database_url: str) -> AsyncIterator[World]:
    async with running_world(server_root, database_url, full=True) as w:
        yield w


@pytest.fixture(scope="module")
async def web(world: World) -> AsyncIterator[WebGateway]:
    _node_modules_ready()
    gateway = WebGateway(world, _free_port())
    await gateway.start()
    try:
        yield gateway
    finally:
        await gateway.stop()


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    executable = _ensure_chromium()
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


class Screen:
    """One user's browser (its own context: cookies, storage) and helpers."""

    def __init__(self, context: BrowserContext, page: Page, base: str, artifacts: Path, tag: str):
        self.context = context
        self.page = page
        self.base = base
        self.artifacts = artifacts
        self.tag = tag
        self.console_errors: list[str] = []
        page.on(
            "console", lambda m: self.console_errors.append(m.text) if m.type == "error" else None
        )
        page.on("pageerror", lambda e: self.console_errors.append(str(e)))

    async def shot(self, name: str) -> Path:
        path = self.artifacts / f"{self.tag}-{name}.png"
        await self.page.screenshot(path=str(path), full_page=True)
        return path

    async def login(self, user: str, password: str = PASSWORD) -> None:
        await self.page.goto(f"{self.base}/trading/")
        await self.page.wait_for_url("**/login/**")
        await self.page.fill("#username", user)
        await self.page.fill("#password", password)
        await self.page.click("#loginBtn")
        await self.page.wait_for_url(f"{self.base}/trading/")
        await self.ready()
        # The 401 of the first visit (no session yet) is how the page found out.
        self.console_errors.clear()

    async def ready(self) -> None:
        await self.page.wait_for_selector("body[data-ready=true]", timeout=30_000)
        await self.page.wait_for_selector("#wsState[data-state=open]", timeout=30_000)


@pytest.fixture
async def screens() -> AsyncIterator[list[Screen]]:
    """The test's browser screens (opened with `open_screen`); all closed afterwards."""
    opened: list[Screen] = []
    yield opened
    for screen in opened:
        await screen.context.close()


async def open_screen(
    browser: Browser,
    web: WebGateway,
    artifacts: Path,
    screens: list[Screen],
    tag: str,
    viewport: dict[str, int] | None = None,
) -> Screen:
    context = await browser.new_context(viewport=viewport or DESKTOP)  # type: ignore[arg-type]
    page = await context.new_page()
    page.set_default_timeout(20_000)
    screen = Screen(context, page, web.url, artifacts, tag)
    screens.append(screen)
    return screen
