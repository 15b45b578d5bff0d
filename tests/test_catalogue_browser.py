"""The catalogue in a real browser: a second product, the header's switcher, a plan made with the key/value
editor, and a license made from that plan carrying its features."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from test_browser import SCREENSHOTS, browser, logged_in_page, server  # noqa: F401 (fixtures)

from admin_helpers import make_admin

pytestmark = pytest.mark.browser


async def test_second_product_switcher_plan_and_license_from_the_plan(
    browser,  # noqa: F811  (the fixtures of test_browser)
    server,  # noqa: F811
    conn,
    queries,
    tmp_path,
):
    shots = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path
    page = await logged_in_page(browser, server, await make_admin(conn, queries))
    await page.wait_for_url("**/admin/")
    await page.goto(str(server.make_url("/admin/products")))
    slug = f"malwerk-{secrets.token_hex(3)}"
    await page.fill("#new-product input[name=name]", "Malwerk Studio 画室")
    await page.fill("#new-product input[name=slug]", slug)
    async with page.expect_navigation():
        await page.click("text=Create product")
    assert "Product Malwerk Studio 画室 created" in await page.inner_text("main")
    product_id = await conn.fetchval("SELECT id FROM products WHERE slug = $1", slug)

    # The header's switcher: choosing the product submits at once and comes back to the same page.
    async with page.expect_navigation():
        await page.select_option("#scope-product", str(product_id))
    assert await page.input_value("#scope-product") == str(product_id)
    await page.goto(str(server.make_url("/admin/licenses")))
    assert "Showing product Malwerk Studio 画室 only" in await page.inner_text("main")
    assert "No licenses found." in await page.inner_text("main")
    await page.goto(str(server.make_url("/admin/products")))
    await page.screenshot(path=str(shots / "admin-products.png"), full_page=True)

    # A plan with features typed into the key/value editor.
    await page.goto(str(server.make_url("/admin/plans")))
    form = page.locator("#new-plan")
    assert await form.locator("select[name=product_id]").input_value() == str(product_id)
    await form.locator("input[name=name]").fill("Pro · 365 Tage · 2 Geräte")
    await form.locator("input[name=max_devices]").fill("2")
    await form.locator("input[name=duration_days]").fill("365")
    names, values = form.locator("input[name='features.name']"), form.locator("input[name='features.value']")
    for row, (name, value) in enumerate((("pro", "true"), ("seats", "5"), ("export", "pdf"))):
        await names.nth(row).fill(name)
        await values.nth(row).fill(value)
    async with page.expect_navigation():
        await form.locator("button[type=submit]").click()
    main = await page.inner_text("main")
    assert "Plan Pro · 365 Tage · 2 Geräte created" in main
    assert "pro: true" in main and "seats: 5" in main and "export: pdf" in main
    await page.screenshot(path=str(shots / "admin-plans.png"), full_page=True)

    # A license from the plan: the plan's slots, duration and features are copied.
    await page.goto(str(server.make_url("/admin/licenses")))
    await page.select_option("select[name=plan_id]", label="Pro · 365 Tage · 2 Geräte")
    await page.fill("input[name=customer_name]", "Plan Kundin 李娜")
    await page.click("text=Create license")
    await page.wait_for_url("**/admin/licenses/*")
    detail = await page.inner_text("main")
    assert "Plan Kundin 李娜" in detail and "from plan Pro · 365 Tage · 2 Geräte" in detail
    assert "pro: true" in detail and "seats: 5" in detail and "export: pdf" in detail
    assert "0 / 2" in detail and "365 days after first use" in detail
    stored = await conn.fetchrow(
        "SELECT product_id, features FROM licenses WHERE customer_name = 'Plan Kundin 李娜'"
    )
    assert stored["product_id"] == product_id and stored["features"] == {
        "pro": True,
        "seats": 5,
        "export": "pdf",
    }
