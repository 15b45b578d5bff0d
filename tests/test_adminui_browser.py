"""The admin UI's daily pages in a real browser: charts drawn with data, the Copy button on a plain-HTTP
LAN address, and the screenshots kept in docs/:
`LICSRV_SCREENSHOTS=docs pytest -m browser tests/test_adminui_browser.py`."""

from __future__ import annotations

import math
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from licsrv.web.scope import SCOPE_COOKIE
from test_browser import ARGS, CHROMIUM, SCREENSHOTS, async_playwright, server  # noqa: F401 (fixture)

from admin_helpers import PASSWORD, make_admin
from factories import make_license, make_product

pytestmark = pytest.mark.browser

LAN_HOST = "licsrv.lan"  # resolved to 127.0.0.1 by the browser: a plain-HTTP address that is not localhost


@pytest.fixture
async def browser():
    """test_browser's chromium, with one more name: a plain-HTTP LAN address for the Copy fallback."""
    args = [*ARGS, f"--host-resolver-rules=MAP {LAN_HOST} 127.0.0.1"]
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        yield chromium
        await chromium.close()


async def log_in(browser, base: str, username: str, width: int, product_id: int | None = None):
    context = await browser.new_context(viewport={"width": width, "height": 900})
    if product_id is not None:
        await context.add_cookies([{"name": SCOPE_COOKIE, "value": str(product_id), "url": base}])
    page = await context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    await page.goto(base + "/admin/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url("**/admin/")
    return page


async def shop_with_a_month_of_use(conn, queries, app) -> tuple[dict, list[dict]]:
    """A product with 30 days of hourly peaks, licenses sold, activations and card redemptions."""
    product = await make_product(conn, app, session_timeout=60, heartbeat_interval=30)
    await conn.execute("UPDATE products SET name = 'Fotostudio Pro 写真' WHERE id = $1", product["id"])
    now = datetime.now(UTC)
    hour = now.replace(minute=0, second=0, microsecond=0)
    peaks = [
        (
            product["id"],
            hour - timedelta(hours=h),
            round((9 + h // 24 % 7) * (1.2 + math.sin((hour.hour - h) / 24 * 2 * math.pi))),
        )
        for h in range(30 * 24)
    ]
    await conn.executemany(
        "INSERT INTO usage_hourly (product_id, hour, peak_sessions) VALUES ($1, $2, GREATEST($3, 0))", peaks
    )
    licenses = []
    for day in range(30):
        for n in range(day % 4 + 1):
            lic = await make_license(conn, queries, product, customer_name=f"Kunde {day}-{n}")
            when = now - timedelta(days=day, minutes=n)
            await conn.execute("UPDATE licenses SET created_at = $2 WHERE id = $1", lic["id"], when)
            await conn.execute(
                "INSERT INTO devices (license_id, hardware_id, first_seen_at) VALUES ($1, $2, $3)",
                lic["id"],
                f"hw-{day}-{n}",
                when,
            )
            licenses.append(lic)
    batch = await conn.fetchval(
        "INSERT INTO card_batches (product_id, count, duration_days) VALUES ($1, 20, 30) RETURNING id",
        product["id"],
    )
    for day in range(0, 30, 2):
        await conn.execute(
            "INSERT INTO card_keys (batch_id, code, status, redeemed_at) VALUES ($1, $2, 'redeemed', $3)",
            batch,
            secrets.token_hex(16).upper(),
            now - timedelta(days=day),
        )
    return product, licenses


async def test_dashboard_charts_render_and_the_pages_fit_a_laptop_and_a_phone(
    browser,
    server,  # noqa: F811
    conn,
    queries,
    tmp_path,
):
    shots = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path
    base = str(server.make_url("")).rstrip("/")
    product, licenses = await shop_with_a_month_of_use(conn, queries, server.app)
    lic = licenses[0]
    await conn.execute(
        "UPDATE licenses SET customer_name = 'Sitzung Müller', max_devices = 3, max_sessions = 3"
        " WHERE id = $1",
        lic["id"],
    )
    async with aiohttp.ClientSession() as http:
        for hardware_id in ("laptop-müller", "desktop-müller"):
            start = {"license_key": lic["key"], "hardware_id": hardware_id, "client_version": "2.1.0"}
            async with http.post(
                server.make_url("/api/v1/sessions/start"),
                json=start,
                headers={"X-API-Key": product["api_key"]},
            ) as response:
                assert response.status == 200, await response.text()
    username = await make_admin(conn, queries)

    page = await log_in(browser, base, username, 1366, product["id"])
    charts = page.locator("svg.chart")
    assert await charts.count() == 3
    for i in range(3):
        box = await charts.nth(i).bounding_box()
        assert box and box["width"] > 400 and box["height"] > 150
        assert await charts.nth(i).locator("circle, rect[data-value]").count() >= 24
    assert await page.title() == "Dashboard · licsrv"
    await page.screenshot(path=str(shots / "admin-dashboard.png"), full_page=True)

    await page.goto(base + "/admin/sessions")
    assert await page.locator("tr", has_text="Sitzung Müller").count() == 2
    await page.screenshot(path=str(shots / "admin-sessions.png"), full_page=True)

    await page.goto(base + "/admin/history")
    await page.fill("input[name=license]", lic["key"])
    await page.click("text=Filter")
    await page.wait_for_load_state()
    assert await page.locator("tbody tr", has_text="Sitzung Müller").count() == 2
    await page.screenshot(path=str(shots / "admin-history.png"), full_page=True)

    await page.goto(base + f"/admin/licenses/{lic['id']}")
    await page.click("summary:has-text('Edit')")
    await page.fill("input[name=customer_name]", "张伟 (Müller)")
    await page.fill("input[name=customer_email]", "zhang.wei@example.cn")
    await page.click("button:has-text('Save')")
    await page.wait_for_load_state()
    assert "License saved." in await page.inner_text("[role=status]")
    await page.goto(base + "/admin/audit")
    assert await page.locator("td", has_text="customer_name: Sitzung Müller → 张伟 (Müller)").count() == 1
    await page.screenshot(path=str(shots / "admin-audit.png"), full_page=False)

    phone = await log_in(browser, base, username, 375, product["id"])
    first = phone.locator("svg.chart").first
    box = await first.bounding_box()
    assert box and box["width"] >= 300
    await phone.screenshot(path=str(shots / "admin-dashboard-phone.png"), full_page=True)
    await phone.goto(base + "/admin/sessions")
    terminate = phone.locator("tr", has_text="张伟 (Müller)").first.locator("button:has-text('Terminate')")
    await terminate.scroll_into_view_if_needed()
    assert await terminate.is_visible()  # the row's action is reachable on a phone
    await terminate.click()
    await phone.wait_for_load_state()
    assert await phone.locator("tr", has_text="张伟 (Müller)").count() == 1


async def test_copy_button_copies_on_a_plain_http_lan_address(browser, server, conn, queries):  # noqa: F811
    username = await make_admin(conn, queries)
    base = f"http://{LAN_HOST}:{server.port}"
    page = await log_in(browser, base, username, 1280)
    await page.goto(base + "/admin/products/1")
    assert await page.evaluate("window.isSecureContext") is False
    assert await page.evaluate("typeof navigator.clipboard") == "undefined"
    await page.evaluate(
        """() => document.addEventListener('copy', () => {
             window.copied = document.activeElement.value || String(window.getSelection()); })"""
    )
    api_key = (await page.inner_text("#api-key")).strip()
    await page.click("button[data-copy=api-key]")
    assert await page.inner_text("button[data-copy=api-key]") == "Copied"
    assert await page.evaluate("window.copied") == api_key
    # And the clipboard holds it: pasted into a field of the page.
    await page.evaluate(
        "() => { const t = document.createElement('textarea'); t.id = 'paste'; document.body.append(t); }"
    )
    await page.focus("#paste")
    await page.keyboard.press("Control+V")
    assert await page.input_value("#paste") == api_key
