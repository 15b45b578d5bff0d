"""An owner erases a customer's personal data on the license page, in a real browser (Debian's chromium)."""

from __future__ import annotations

import os
from pathlib import Path

import aiohttp
import pytest

from test_browser import CHROMIUM, SCREENSHOTS, logged_in_page

from admin_helpers import make_admin
from factories import make_license, make_product

pytestmark = pytest.mark.browser

if not os.path.exists(CHROMIUM):
    pytest.skip(f"BROWSER TESTS SKIPPED: {CHROMIUM} is missing", allow_module_level=True)

from test_browser import browser, server  # noqa: E402, F401  (fixtures)


async def test_owner_erases_a_customers_personal_data_on_the_license_page(browser, server, conn, queries):  # noqa: F811
    product = await make_product(conn, server.app)
    lic = await make_license(
        conn,
        queries,
        product,
        customer_name="Wang Fang 王芳",
        customer_email="wang.fang@example.cn",
        notes="Invoice 2026-117, call before renewal",
    )
    async with aiohttp.ClientSession() as http:
        activated = await http.post(
            server.make_url("/api/v1/licenses/activate"),
            json={"license_key": lic["key"], "hardware_id": "hw-wang", "machine_name": "WANG-DESKTOP"},
            headers={"X-API-Key": product["api_key"]},
        )
        assert activated.status == 200
    page = await logged_in_page(browser, server, await make_admin(conn, queries, "owner"))
    await page.wait_for_url("**/admin/")
    asked: list[str] = []
    page.on("dialog", lambda dialog: asked.append(dialog.message))
    await page.goto(str(server.make_url(f"/admin/licenses/{lic['id']}")))
    main = await page.inner_text("main")
    assert "Wang Fang 王芳" in main and "WANG-DESKTOP" in main and "127.0.0.1" in main

    await page.click("text=Erase personal data")
    await page.wait_for_selector("text=Personal data erased: customer")

    assert asked and "Erase this customer's personal data?" in asked[0]
    main = await page.inner_text("main")
    assert "Personal data erased: customer, notes, machine names and IP addresses." in main
    assert "Personal data erased 20" in main  # with its date
    for personal in ("Wang Fang", "wang.fang@example.cn", "Invoice 2026-117", "WANG-DESKTOP", "127.0.0.1"):
        assert personal not in main
    assert lic["key"] in main and "hw-wang" in main  # the license and its device stay
    if SCREENSHOTS:
        await page.screenshot(path=str(Path(SCREENSHOTS) / "admin-erase.png"), full_page=True)
