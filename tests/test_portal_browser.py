"""The portal pages in a real browser on a phone, in German: register, confirm, see the licenses, free a
device, end a session, change the password, reset it, delete the account. Screenshots go to docs/ when
LICSRV_SCREENSHOTS=docs is set (as for the admin UI)."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from licsrv.state import PRODUCTS
from portal_helpers import PASSWORD, set_portal, start_session

from factories import make_license, make_product

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = os.environ.get("LICSRV_SCREENSHOTS")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-sync"]
PHONE = {"width": 390, "height": 844}

if not os.path.exists(CHROMIUM):
    pytest.skip(f"BROWSER TESTS SKIPPED: {CHROMIUM} is missing", allow_module_level=True)

async_playwright = pytest.importorskip("playwright.async_api").async_playwright


@pytest.fixture
async def browser():
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield chromium
        await chromium.close()


async def test_a_customer_walks_the_portal_on_a_phone_in_german(
    browser, aiohttp_server, aiohttp_client, app, conn, queries, tmp_path
):
    server = await aiohttp_server(app)
    client = await aiohttp_client(server)
    product = await make_product(conn, app, heartbeat_interval=30, session_timeout=120)
    await conn.execute("UPDATE products SET name = 'Bildstudio Pro' WHERE id = $1", product["id"])
    await app[PRODUCTS].reload()
    await set_portal(conn, product, double_opt_in=True)
    lic = await make_license(
        conn, queries, product, max_devices=2, max_sessions=2, expires_at=datetime(2027, 12, 31, tzinfo=UTC)
    )
    api = {"X-API-Key": product["api_key"]}
    for pc, name in (("hw-office", "Büro-PC"), ("hw-laptop", "Laptop Anna")):
        started = await start_session(client, api, pc, license_key=lic["key"], machine_name=name)
        assert started[0] == 200, started

    shots = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path
    base = str(server.make_url(f"/portal/{product['slug']}"))
    context = await browser.new_context(
        viewport=PHONE,
        locale="de-DE",
        extra_http_headers={"Accept-Language": "de-DE,de;q=0.9"},
        accept_downloads=True,
    )
    page = await context.new_page()
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("dialog", lambda dialog: dialog.accept())

    await page.goto(f"{base}/register")
    assert await page.inner_text("h1") == "Konto anlegen"
    assert "Bildstudio Pro" in await page.inner_text("header")
    await page.fill("#email", "anna.schmidt@example.de")
    await page.fill("#password", PASSWORD)
    await page.fill("#ticket", lic["key"])
    await page.screenshot(path=str(shots / "portal-register.png"), full_page=True)
    await page.click("main form.card button[type=submit]")
    await page.wait_for_url("**/verify")
    assert "sechsstelligen Code an anna.schmidt@example.de" in await page.inner_text("main")

    body = await conn.fetchval(
        "SELECT body FROM mail_outbox WHERE to_addr = 'anna.schmidt@example.de' ORDER BY id DESC"
    )
    code = re.search(r"\b(\d{6})\b", body).group(1)
    await page.fill("#code", "000000" if code != "000000" else "111111")
    await page.click("form.card button[type=submit]")
    assert "Der Code ist falsch" in await page.inner_text(".error")
    await page.fill("#code", code)
    await page.screenshot(path=str(shots / "portal-verify.png"), full_page=True)
    await page.click("form.card button[type=submit]")
    await page.wait_for_url(f"{base}/")

    main = await page.inner_text("main")
    assert "Meine Lizenzen" in main and lic["key"] in main and "Büro-PC" in main and "Läuft gerade" in main
    assert "31.12.2027" in main and "2 von 2 belegt" in main
    await page.screenshot(path=str(shots / "portal-licenses.png"), full_page=True)

    # "the program is still open on my office PC": end it, then free the old laptop's slot
    await page.locator("li", has_text="Büro-PC").locator("button", has_text="Beenden").first.click()
    await page.wait_for_url("**/?done=session_ended")
    await page.locator("li", has_text="Laptop Anna").locator("button", has_text="Gerät freigeben").click()
    await page.wait_for_url("**/?done=device_freed")
    main = await page.inner_text("main")
    assert "Das Gerät wurde freigegeben." in main and "Laptop Anna" not in main and "noch 2 Gerät(e)" in main
    await page.screenshot(path=str(shots / "portal-device-freed.png"), full_page=True)

    await page.click("text=Passwort ändern")
    await page.fill("#old_password", PASSWORD)
    await page.fill("#new_password", "neues Passwort 1")
    await page.screenshot(path=str(shots / "portal-password.png"), full_page=True)
    await page.click("main form.card button[type=submit]")
    await page.wait_for_url("**/?done=password_changed")

    await page.click("header button")  # Abmelden
    await page.wait_for_url("**/login")
    await page.click("text=Passwort vergessen?")
    await page.fill("#email", "anna.schmidt@example.de")
    await page.click("main form.card button[type=submit]")
    assert "ist eine Nachricht unterwegs" in await page.inner_text("main")
    body = await conn.fetchval(
        "SELECT body FROM mail_outbox WHERE to_addr = 'anna.schmidt@example.de' ORDER BY id DESC"
    )
    link = re.search(r"(http://\S+/reset\?token=\S+)", body).group(1)
    assert link.startswith(
        f"http://127.0.0.1:8080/portal/{product['slug']}/reset?token="
    )  # never the Host header's
    await page.goto(base + link[link.index("/reset?") :])
    await page.fill("#new_password", "zurückgesetzt 2")
    await page.screenshot(path=str(shots / "portal-reset.png"), full_page=True)
    await page.click("main form.card button[type=submit]")
    await page.wait_for_url("**/login?done=reset_done")
    await page.fill("#email", "anna.schmidt@example.de")
    await page.fill("#password", "zurückgesetzt 2")
    await page.click("main form.card button[type=submit]")
    await page.wait_for_url(f"{base}/")

    await page.click("text=Mein Konto löschen")
    await page.fill("#password", "zurückgesetzt 2")
    await page.screenshot(path=str(shots / "portal-delete.png"), full_page=True)
    await page.click("main form.card button[type=submit]")
    await page.wait_for_url("**/login?done=deleted")
    assert "Ihr Konto wurde gelöscht." in await page.inner_text("main")
    assert (
        await conn.fetchval(
            "SELECT count(*) FROM portal_accounts WHERE product_id = $1 AND email IS NOT NULL", product["id"]
        )
        == 0
    )
    assert [p for p in problems if "Content Security Policy" in p] == []
    await context.close()
