"""The admin UI in a real browser: Debian's chromium driven by Playwright."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import aiohttp
import pytest

from admin_helpers import PASSWORD, make_admin
from factories import make_license, make_product

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
# `LICSRV_SCREENSHOTS=docs pytest tests/test_browser.py` refreshes the screenshots kept in docs/.
SCREENSHOTS = os.environ.get("LICSRV_SCREENSHOTS")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]

if not os.path.exists(CHROMIUM):
    pytest.skip(
        f"BROWSER TESTS SKIPPED: {CHROMIUM} is missing (`make test` installs Debian's chromium with apt-get)",
        allow_module_level=True,
    )

async_playwright = pytest.importorskip("playwright.async_api").async_playwright


@pytest.fixture
async def server(aiohttp_server, app):
    return await aiohttp_server(app)


@pytest.fixture
async def browser():
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield chromium
        await chromium.close()


async def logged_in_page(browser, server, username: str, password: str = PASSWORD):
    context = await browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    await page.goto(str(server.make_url("/admin/login")))
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", password)
    await page.click("button[type=submit]")
    return page


async def test_login_and_wrong_password(browser, server, conn, queries):
    username = await make_admin(conn, queries)
    page = await logged_in_page(browser, server, username, "not the password")
    assert "Wrong username or password" in await page.inner_text("main")
    page = await logged_in_page(browser, server, username)
    await page.wait_for_url("**/admin/")
    assert "Dashboard" in await page.inner_text("h1")


async def test_create_license_generate_batch_and_download_csv(browser, server, conn, queries):
    page = await logged_in_page(browser, server, await make_admin(conn, queries))
    await page.goto(str(server.make_url("/admin/licenses")))
    await page.fill("input[name=customer_name]", "Browser Kunde 王芳")
    await page.click("text=Create license")
    await page.wait_for_url("**/admin/licenses/*")
    assert "Browser Kunde 王芳" in await page.inner_text("main")

    await page.goto(str(server.make_url("/admin/cards")))
    await page.fill("input[name=count]", "12")
    await page.fill("input[name=note]", "browser batch")
    await page.click("text=Generate batch")
    await page.wait_for_selector("text=browser batch")
    async with page.expect_download() as download_info:
        await page.click("tr:has-text('browser batch') >> text=Download CSV")
    download = await download_info.value
    saved = await download.path()
    rows = list(csv.DictReader(io.StringIO(saved.read_text())))
    assert len(rows) == 12 and all(len(r["code"]) == 39 and r["code"].count("-") == 7 for r in rows)


async def test_live_session_appears_and_is_terminated(browser, server, conn, queries, tmp_path):
    shots = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path
    product = await make_product(conn, server.app, session_timeout=60, heartbeat_interval=30)
    headers = {"X-API-Key": product["api_key"]}
    lic = await make_license(conn, queries, product, customer_name="Sitzung Müller")
    async with aiohttp.ClientSession() as http:
        start = {"license_key": lic["key"], "hardware_id": "browser-hw", "client_version": "2.0.0"}
        async with http.post(server.make_url("/api/v1/sessions/start"), json=start, headers=headers) as r:
            session = (await r.json())["data"]
        page = await logged_in_page(browser, server, await make_admin(conn, queries))
        await page.goto(str(server.make_url("/admin/")))
        await page.screenshot(path=str(shots / "admin-dashboard.png"), full_page=True)
        await page.goto(str(server.make_url("/admin/sessions")))
        row = page.locator("tr", has_text="Sitzung Müller")
        assert await row.count() == 1
        await page.screenshot(path=str(shots / "admin-sessions.png"), full_page=True)
        await row.locator("text=Terminate").click()
        await page.wait_for_load_state()
        assert await page.locator("tr", has_text="Sitzung Müller").count() == 0
        beat = {"session_token": session["session_token"]}
        async with http.post(server.make_url("/api/v1/sessions/heartbeat"), json=beat, headers=headers) as r:
            assert (await r.json())["error"]["code"] == "SESSION_TERMINATED"


async def test_viewer_cannot_change_anything(browser, server, conn, queries):
    product = await make_product(conn, server.app)
    lic = await make_license(conn, queries, product, customer_name="Nur Ansicht")
    page = await logged_in_page(browser, server, await make_admin(conn, queries, "viewer"))
    await page.goto(str(server.make_url(f"/admin/licenses/{lic['id']}")))
    text = await page.inner_text("main")
    assert "Nur Ansicht" in text
    for verb in ("Suspend", "Revoke", "Extend", "Save"):
        assert await page.locator(f"button:has-text('{verb}')").count() == 0, verb
    await page.goto(str(server.make_url("/admin/licenses")))
    assert await page.locator("text=Create license").count() == 0
    # Even a hand-made POST with the viewer's own valid CSRF token is refused.
    token = await page.locator("input[name=csrf]").first.get_attribute("value")
    status = await page.evaluate(
        """async (token) => (await fetch('/admin/licenses',
            {method: 'POST', body: new URLSearchParams({csrf: token, customer_name: 'x'})})).status""",
        token,
    )
    assert status == 403


async def test_form_post_without_csrf_token_is_refused(browser, server, conn, queries):
    page = await logged_in_page(browser, server, await make_admin(conn, queries))
    await page.goto(str(server.make_url("/admin/licenses")))
    status = await page.evaluate(
        """async () => (await fetch('/admin/licenses',
            {method: 'POST', body: new URLSearchParams({customer_name: 'no-csrf'})})).status"""
    )
    assert status == 403
    assert await conn.fetchval("SELECT count(*) FROM licenses WHERE customer_name = 'no-csrf'") == 0


async def test_offline_activation_on_a_phone(browser, server, conn, queries, app, tmp_path):
    from licsrv_client.offline import check_certificate, make_request

    product = await make_product(conn, app)
    lic = await make_license(conn, queries, product)
    request = make_request(lic["key"], "hw-phone-browser")
    context = await browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    page = await context.new_page()
    await page.goto(str(server.make_url("/offline").with_query(r=request.code())))
    assert "hw-phone-browser" in await page.inner_text("main")
    await page.click("button[type=submit]")
    await page.wait_for_selector("textarea#certificate")
    assert "device is activated" in await page.inner_text("[role=status]")
    qr = await page.query_selector(".qr svg")
    box = await qr.bounding_box()
    assert 200 <= box["width"] <= 390  # readable on the phone's screen, not wider than it
    certificate = await page.input_value("textarea#certificate")
    shots = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path
    await page.screenshot(path=str(shots / "offline-activation.png"), full_page=True)
    await context.close()
    async with aiohttp.ClientSession() as http, http.get(str(server.make_url("/api/v1/keys"))) as response:
        published = {key["id"]: key["public_key"] for key in (await response.json())["data"]}
    assert check_certificate(certificate, request, published)["hardware_id"] == "hw-phone-browser"


async def test_content_security_policy_leaves_the_pages_working(browser, server, conn, queries):
    product = await make_product(conn, server.app)
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    await page.goto(str(server.make_url("/admin/login")))
    await page.fill("input[name=username]", await make_admin(conn, queries))
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url("**/admin/")
    response = await page.goto(str(server.make_url(f"/admin/products/{product['id']}")))
    assert "script-src 'nonce-" in response.headers["content-security-policy"]
    key_before = await page.inner_text("#api-key")
    # The confirmation comes from the nonce'd script: dismissing it keeps the key.
    dialogs: list[str] = []

    async def answer(dialog, accept: bool) -> None:
        dialogs.append(dialog.message)
        await (dialog.accept() if accept else dialog.dismiss())

    page.once("dialog", lambda dialog: answer(dialog, False))
    await page.click("text=Rotate")
    await page.wait_for_timeout(300)
    assert dialogs and "Rotate the API key" in dialogs[0]
    assert await page.inner_text("#api-key") == key_before
    page.once("dialog", lambda dialog: answer(dialog, True))
    await page.click("text=Rotate")
    await page.wait_for_load_state()
    await page.wait_for_function("k => document.getElementById('api-key').textContent !== k", arg=key_before)
    await page.goto(str(server.make_url("/admin/")))  # the dashboard's live refresh script
    await page.wait_for_timeout(300)
    await context.close()
    assert not [p for p in problems if "Content Security Policy" in p], problems


async def test_api_docs_page_lists_the_operations(browser, server):
    async with aiohttp.ClientSession() as http, http.get(server.make_url("/api/openapi.json")) as r:
        spec = await r.json()
    operations = sum(len(methods) for methods in spec["paths"].values())
    page = await browser.new_page()
    failed = []
    page.on("requestfailed", lambda request: failed.append(request.url))
    response = await page.goto(str(server.make_url("/api/docs")))
    assert response.status == 200
    await page.wait_for_selector(".opblock", timeout=15_000)
    assert await page.locator(".opblock").count() == operations
    assert "/api/v1/licenses/activate" in await page.inner_text("#swagger-ui")
    assert await page.locator(".errors-wrapper").count() == 0  # the document parsed without errors
    assert failed == []
    await page.close()
