"""Card keys in a real browser (Debian's chromium driven by Playwright): a batch from a plan made in the form,
a card found with the search box, one card voided from its page."""

from __future__ import annotations

import os
from pathlib import Path

import aiohttp
import pytest

from licsrv.codes import normalise

from admin_helpers import make_admin
from card_helpers import FEATURES, make_plan
from factories import make_product

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
# `LICSRV_SCREENSHOTS=docs pytest tests/test_cards_browser.py` refreshes docs/admin-cards.png, admin-card.png.
SCREENSHOTS = os.environ.get("LICSRV_SCREENSHOTS")

if not os.path.exists(CHROMIUM):
    pytest.skip(
        f"BROWSER TESTS SKIPPED: {CHROMIUM} is missing (`make test` installs Debian's chromium with apt-get)",
        allow_module_level=True,
    )

pytest.importorskip("playwright.async_api")

from test_browser import browser, logged_in_page, server  # noqa: E402, F401 (fixtures)


async def redeem(http, base, product, card, hardware_id):
    body = {"card_key": card, "hardware_id": hardware_id}
    headers = {"X-API-Key": product["api_key"]}
    async with http.post(base.make_url("/api/v1/cards/redeem"), json=body, headers=headers) as response:
        return await response.json()


async def test_batch_from_a_plan_find_a_card_by_code_and_void_it(
    browser,  # noqa: F811
    server,  # noqa: F811
    conn,
    queries,
    tmp_path,
):
    shots = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path
    product = await make_product(conn, server.app)
    plan = await make_plan(conn, product, name="Pro · 30 days · 2 devices")
    page = await logged_in_page(browser, server, await make_admin(conn, queries))
    await page.wait_for_url("**/admin/")
    await page.context.add_cookies(
        [{"name": "licsrv_product", "value": str(product["id"]), "url": str(server.make_url("/admin/"))}]
    )

    await page.goto(str(server.make_url("/admin/cards")))
    await page.select_option("select[name=plan_id]", str(plan["id"]))
    await page.fill("input[name=count]", "6")
    await page.fill("input[name=note]", "Messe 2026 · 展会")
    await page.click("text=Generate batch")
    await page.wait_for_selector("text=generated.")
    row = page.locator("tr", has_text="Messe 2026 · 展会")
    assert "Pro · 30 days · 2 devices" in await row.inner_text()
    await row.locator("text=Cards").click()
    await page.wait_for_url("**/admin/cards/*")
    codes = await page.locator("td.mono a[href^='/admin/cards/code/']").all_inner_texts()
    assert len(codes) == 6 and all(len(code) == 39 for code in codes)

    async with aiohttp.ClientSession() as http:
        redeemed = await redeem(http, server, product, codes[0], "browser-hw-1")
        assert redeemed["data"]["features"] == FEATURES and redeemed["data"]["max_devices"] == 2
        await redeem(http, server, product, codes[1], "browser-hw-2")
        await page.reload()
        assert await page.locator("td", has_text="browser-hw-1").count() == 1
        await page.goto(str(server.make_url("/admin/cards")))
        await page.screenshot(path=str(shots / "admin-cards.png"), full_page=True)

        # The search box takes the code as a customer reads it out: no dashes, lower case.
        await page.fill("input[name=q]", normalise(codes[0]).lower())
        await page.click("text=Find card")
        await page.wait_for_url(f"**/admin/cards/code/{codes[0]}")
        facts = await page.inner_text("main")
        assert "Redeemed" in facts and "browser-hw-1" in facts and redeemed["data"]["license_key"] in facts
        assert "made by this card" in facts and "Messe 2026 · 展会" in facts
        await page.screenshot(path=str(shots / "admin-card.png"), full_page=True)

        await page.fill("input[name=q]", codes[2])
        await page.click("text=Find card")
        await page.wait_for_url(f"**/admin/cards/code/{codes[2]}")
        await page.click("button:has-text('Void')")  # the confirmation is accepted by logged_in_page
        await page.wait_for_selector("text=Card voided.")
        assert "Void" in await page.inner_text("h1")
        refused = await redeem(http, server, product, codes[2], "browser-hw-3")
        assert refused["error"]["code"] == "CARD_VOID"
