"""The trading screen in a real browser (issue 14), against the real services.

Login -> quotes tick -> Generate -> legs match the simulator -> change the credit ->
P&L changes -> Approve & Execute (Ctrl+Enter, confirm) -> filled -> the position with
its three exits; the companion pages. A restarted gateway: the page reconnects by itself
and resumes. Bad credit input: refused with a message, nothing sent. A second user's
browser never shows the first user's data. Screenshots: ``artifacts/``.
"""

from __future__ import annotations

import asyncio
import re
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

from playwright.async_api import Browser, Page, Request, WebSocket, expect

from tests.e2e.browser.conftest import Screen, WebGateway, open_screen
from tests.integration.gateway.world import World
from tests.integration.market_data.helpers import control, set_price

CENT = Decimal("0.01")
PHONE = {"width": 390, "height": 844}


def dec(text: str) -> Decimal:
    """A figure as shown ("$1,234.56", "2.35") as a Decimal."""
    return Decimal(re.sub(r"[$,+\s]", "", text))


async def text(page: Page, selector: str) -> str:
    return (await page.locator(selector).first.inner_text()).strip()


async def tick_spy(world: World, page: Page) -> Decimal:
    """Move SPY's price and wait until the screen shows the new quote; the new mid."""
    card = page.locator("#quote-SPY")
    shown = await card.get_attribute("data-mid")
    base = Decimal(shown) if shown else Decimal("500.00")
    new = (base + Decimal("0.37")).quantize(CENT)
    await set_price(world.simulator, "SPY", str(new))
    await expect(card.locator("[data-field=mid]")).to_have_text(f"{new:,.2f}", timeout=20_000)
    await expect(card).to_have_attribute("data-source", "live")
    return new


async def generate(screen: Screen, symbol: str = "QQQ") -> str:
    page = screen.page
    await page.select_option("#symbolSelect", symbol)
    await page.click("#generateBtn")
    card = page.locator("#suggestionCard")
    await expect(card).to_be_visible(timeout=30_000)
    sid = await page.locator("#suggestionContainer").get_attribute("data-suggestion-id")
    assert sid
    return sid


async def test_login_generate_review_execute_fill_and_position(
    world: World, web: WebGateway, browser: Browser, artifacts: Path, screens: list[Screen]
) -> None:
    screen = await open_screen(browser, web, artifacts, screens, "flow")
    page = screen.page
    await screen.login("alice")
    await screen.shot("01-logged-in")

    # --- quotes tick on screen ------------------------------------------------------
    await tick_spy(world, page)
    await tick_spy(world, page)
    await expect(page.locator("#quote-QQQ [data-field=mid]")).not_to_have_text("—")
    await screen.shot("02-quotes-ticking")

    # --- generate: the legs are the simulator's quotes ------------------------------
    await generate(screen)
    rows = page.locator("#legsTable tr[data-occ]")
    assert await rows.count() == 6  # 2 put spreads + the call spread, two legs each
    for i in range(await rows.count()):
        row = rows.nth(i)
        occ = await row.get_attribute("data-occ")
        assert occ
        sim = await control(world.simulator, "GET", f"/sim/quotes/{quote(occ)}")
        for field in ("bid", "mid", "ask"):
            shown = await row.locator(f"[data-field={field}]").inner_text()
            assert dec(shown) == Decimal(sim[field]), (occ, field, shown, sim)
    await expect(page.locator("#riskCheck")).to_have_attribute("data-passed", "true")
    await expect(page.locator("#reasonTrail ol li").first).not_to_have_text(re.compile("arriving"))
    await screen.shot("03-suggestion")

    # --- the credit drives the P&L at once ------------------------------------------
    pnl = page.locator("#pnl")
    max_profit_at_mid = await text(page, "#pnl [data-field=maxProfit]")
    max_risk_at_mid = await text(page, "#pnl [data-field=maxRisk]")
    natural = dec(await text(page, "#totalNatural")).quantize(CENT, rounding=ROUND_FLOOR)
    assert natural > 0
    await page.fill("#creditInput", str(natural))  # marketable: fills at once
    await expect(pnl.locator("[data-field=maxProfit]")).to_have_text(f"${natural * 100:,.2f}")
    assert await text(page, "#pnl [data-field=maxProfit]") != max_profit_at_mid
    assert await text(page, "#pnl [data-field=maxRisk]") != max_risk_at_mid
    required = dec(await text(page, "#pnl [data-field=requiredCapital]"))
    assert dec(await text(page, "#pnl [data-field=maxRisk]")) == required - natural * 100
    await expect(page.locator("#payoffChart")).to_have_attribute("data-credit", str(natural))
    await screen.shot("04-credit-changed")

    # --- approve with Ctrl+Enter, confirm; the order fills --------------------------
    await page.focus("#creditInput")  # typed the credit, then the shortcut
    await page.keyboard.press("Control+Enter")
    dialog = page.locator("#confirmDialog")
    await expect(dialog).to_be_visible()
    await screen.shot("05-confirm")
    await dialog.locator("[data-action=confirm]").click()
    warning = page.locator("#warningDialog")
    if await warning.count():
        await warning.locator("[data-action=confirm]").click()
    status = page.locator("#orderStatus")
    await expect(status).to_have_attribute("data-status", "FILLED", timeout=60_000)
    await expect(page.locator("#suggestionStatus")).to_have_attribute("data-status", "APPROVED")
    await screen.shot("06-filled")

    # --- the position with its three live exits --------------------------------------
    await expect(page.locator("#progressSteps li[data-step=POSITION]")).to_have_class(
        re.compile("done"), timeout=60_000
    )
    await expect(page.locator("#progressSteps li[data-step=EXITS]")).to_have_class(
        re.compile("done"), timeout=60_000
    )
    await page.click("#positionsLink")
    await page.wait_for_url("**/trading/positions/")
    await screen.ready()
    position = page.locator("[data-position-id][data-status=OPEN]").first
    await expect(position).to_be_visible()
    exits = position.locator("tr[data-spread] [data-field=exit] [data-exit=PROFIT_TARGET]")
    await expect(exits).to_have_count(3)
    await screen.shot("07-position-exits")

    # --- the companion pages --------------------------------------------------------
    await page.goto(f"{web.url}/trading/orders/")
    await screen.ready()
    await expect(page.locator("#ordersTable tr[data-status=FILLED]").first).to_be_visible()
    await screen.shot("08-orders")
    await page.goto(f"{web.url}/trading/audit/")
    await page.wait_for_selector("body[data-ready=true]")
    await expect(page.locator("#eventsTable tbody tr").first).to_be_visible()
    await page.click("#verifyBtn")
    await expect(page.locator("#verifyResult")).to_have_attribute("data-ok", "true", timeout=60_000)
    await page.fill("#typeFilter", "SuggestionApproved")
    await page.click("#applyFilters")
    await expect(page.locator("#eventsTable tbody tr")).to_have_count(1)
    await page.locator("#eventsTable .chain-btn").first.click()
    chain_types = page.locator("#chainTable tbody tr")
    await expect(chain_types.first).to_be_visible()
    types = {
        await chain_types.nth(i).get_attribute("data-type")
        for i in range(await chain_types.count())
    }
    assert {"SuggestionApproved", "OrderFilled"} <= types, types
    await screen.shot("09-audit-chain")
    assert not screen.console_errors, screen.console_errors


async def test_gateway_restart_page_reconnects_and_resumes(
    world: World, web: WebGateway, browser: Browser, artifacts: Path, screens: list[Screen]
) -> None:
    screen = await open_screen(browser, web, artifacts, screens, "restart")
    page = screen.page
    await screen.login("alice")
    await tick_spy(world, page)
    assert await page.evaluate("window.senexSocket.connections") == 1

    try:
        await _restart_while_watching(world, web, screen)
    finally:
        if web.service is None:  # leave the gateway up for the tests after this one
            await web.start()


async def until_true(page: Page, expression: str, timeout: float = 15.0) -> None:
    """Poll ``expression`` in the page (wait_for_function would need eval, which the
    page's Content-Security-Policy forbids)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await page.evaluate(expression):
        assert asyncio.get_running_loop().time() < deadline, f"never true: {expression}"
        await asyncio.sleep(0.1)


async def _restart_while_watching(world: World, web: WebGateway, screen: Screen) -> None:
    page = screen.page
    await web.stop()
    badge = page.locator("#wsState")
    await expect(badge).to_have_attribute("data-state", re.compile("reconnecting|connecting"))
    await expect(badge).to_have_text(re.compile("Reconnecting in"))
    await screen.shot("01-gateway-down")
    # The backoff doubles from 1 s while the gateway is away.
    await until_true(page, "window.senexSocket.attempt >= 2")

    await web.start()
    await expect(badge).to_have_attribute("data-state", "open", timeout=30_000)
    assert await page.evaluate("window.senexSocket.connections") == 2
    assert await page.evaluate("window.senexSocket.attempt") == 0
    # Updates resume: the re-subscribed quotes reach the screen again.
    await tick_spy(world, page)
    await screen.shot("02-reconnected")
    # The page itself still works against the new gateway (same session cookie).
    await expect(page.locator("#generateBtn")).to_be_enabled()


async def test_bad_credit_is_refused_and_nothing_is_sent(
    world: World, web: WebGateway, browser: Browser, artifacts: Path, screens: list[Screen]
) -> None:
    screen = await open_screen(browser, web, artifacts, screens, "credit")
    page = screen.page
    await screen.login("bob")
    await generate(screen)
    await expect(page.locator("#riskCheck")).to_have_attribute("data-passed", "true")

    sent: list[str] = []

    def on_request(request: Request) -> None:
        sent.append(f"{request.method} {request.url}")

    page.on("request", on_request)
    # Frames the page sends on its socket from now on.
    await page.evaluate(
        """() => {
        window.__sent = [];
        const ws = window.senexSocket.ws;
        const original = ws.send.bind(ws);
        ws.send = (data) => { window.__sent.push(data); return original(data); };
    }"""
    )
    width = Decimal((await text(page, "#creditHelp")).split(" and ")[1].split(" ")[0])
    cases = {
        "-1.00": "cannot be negative",
        "abc": "as a number",
        "2.4x": "as a number",
        "0": "above zero",
        str(width + CENT): "above the natural width",
        "1000": "above the natural width",
    }
    for value, message in cases.items():
        await page.fill("#creditInput", value)
        error = page.locator("#creditError")
        await expect(error).to_contain_text(message)
        await expect(page.locator("#creditInput")).to_have_attribute("aria-invalid", "true")
        await expect(page.locator("#pnl [data-field=maxProfit]")).to_have_text("—")
        await page.click("#approveBtn")
        await expect(page.locator("#creditRefused")).to_contain_text(message)
        await page.keyboard.press("Control+Enter")
        await expect(page.locator("#confirmDialog")).to_have_count(0)
    await screen.shot("01-refused")
    await page.wait_for_timeout(500)  # anything the clicks might have started has gone out
    frames: list[str] = await page.evaluate("window.__sent")
    commands = [f for f in frames if '"type":"ping"' not in f.replace(" ", "")]
    assert not sent, sent
    assert not commands, commands
    await expect(page.locator("#suggestionStatus")).to_have_attribute("data-status", "PENDING")


async def test_a_second_user_never_sees_the_first_users_data(
    world: World, web: WebGateway, browser: Browser, artifacts: Path, screens: list[Screen]
) -> None:
    alice_account = world.accounts["alice"]
    alice = await open_screen(browser, web, artifacts, screens, "alice")
    await alice.login("alice")
    alice_sid = await generate(alice)

    carol = await open_screen(browser, web, artifacts, screens, "carol", viewport=PHONE)
    received: list[str] = []

    def on_frame(payload: bytes | str) -> None:
        received.append(payload if isinstance(payload, str) else payload.decode())

    def on_socket(ws: WebSocket) -> None:
        ws.on("framereceived", on_frame)

    carol.page.on("websocket", on_socket)
    await carol.login("carol")
    await carol.shot("01-phone-trading")
    # Phone-sized: nothing wider than the screen.
    overflow = await carol.page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 1, overflow
    # Alice acts while Carol watches: quotes flow to both, Alice's events only to her.
    await tick_spy(world, alice.page)
    await alice.page.fill("#creditInput", "0.05")
    await alice.page.click("#rejectBtn")
    await alice.page.locator("#rejectDialog [data-action=confirm]").click()
    await expect(alice.page.locator("#suggestionStatus")).to_have_attribute(
        "data-status", "REJECTED"
    )

    pages: list[tuple[str, str]] = [
        ("/trading/", "02-trading"),
        ("/trading/positions/", "03-positions"),
        ("/trading/orders/", "04-orders"),
        ("/trading/settings/", "05-settings"),
        ("/trading/audit/", "06-audit"),
    ]
    for path, name in pages:
        await carol.page.goto(f"{web.url}{path}")
        await carol.page.wait_for_selector("body[data-ready=true]")
        await carol.page.wait_for_timeout(300)
        content = await carol.page.content()
        assert alice_account not in content, path
        assert alice_sid not in content, path
        assert world.accounts["carol"] in content or path != "/trading/settings/"
        await carol.shot(name)
    assert received, "carol's socket received nothing at all"
    leaked: list[Any] = [f for f in received if alice_account in f or alice_sid in f]
    assert not leaked, leaked
    assert await carol.page.locator("#userName").inner_text() == "carol"
