"""The webhooks page in a real browser: create an endpoint, its secret shown once, send a test, see it."""

from __future__ import annotations

import pytest

from licsrv.app import create_app
from test_browser import browser, logged_in_page, server  # noqa: F401 (fixtures)
from test_webhooks import fast, no_endpoints_left, receiver  # noqa: F401 (fixtures)

from admin_helpers import make_admin

pytestmark = pytest.mark.browser


@pytest.fixture
def app(settings):
    return create_app(fast(settings))


async def test_create_endpoint_secret_shown_once_send_test_and_see_the_attempt(
    browser,  # noqa: F811
    server,  # noqa: F811
    conn,
    queries,
    receiver,  # noqa: F811
):
    page = await logged_in_page(browser, server, await make_admin(conn, queries))
    await page.goto(str(server.make_url("/admin/webhooks")))
    assert "No webhook endpoints yet." in await page.inner_text("main")
    await page.fill("#create-webhook input[name=url]", receiver.url)
    await page.check("input[value='license.created']")
    await page.check("input[value='session.timed_out']")
    await page.click("text=Create endpoint")
    secret = await page.inner_text("#new-secret")
    assert secret.startswith("whsec_")
    receiver.secret = secret
    row = page.locator("#endpoints tr", has_text=receiver.url)
    assert "license.created, session.timed_out" in await row.inner_text()

    await page.goto(str(server.make_url("/admin/webhooks")))
    assert secret not in await page.content()  # shown once

    await page.click("text=Send test")
    await page.wait_for_selector("text=Test event queued.")
    await receiver.wait_for(lambda: receiver.of_type("webhook.test"), what="the test event")
    for _ in range(50):  # the attempt is written in the same transaction that got the answer
        await page.reload()
        if await page.locator("#attempts tr", has_text="200 delivered").count():
            break
        await page.wait_for_timeout(100)
    attempt = page.locator("#attempts tr", has_text="webhook.test")
    assert "200 delivered" in await attempt.inner_text() and "thanks" in await attempt.inner_text()

    await attempt.locator("text=Resend").click()
    await page.wait_for_selector("text=Delivery queued again.")
    await receiver.wait_for(lambda: len(receiver.of_type("webhook.test")) == 2, what="the resent event")
    assert receiver.received[0].webhook_id == receiver.received[1].webhook_id
