"""Admins and the portal: the Customers page and its management API twin, the mail Outbox page."""

from __future__ import annotations

import pytest

from portal_helpers import PASSWORD, call, count, make_customer

from admin_helpers import login, make_admin, page_csrf
from factories import make_product


@pytest.fixture
async def product(client, conn):
    return await make_product(conn, client.app)


@pytest.fixture
def headers(product):
    return {"X-API-Key": product["api_key"]}


async def test_customers_page_finds_disables_and_erases(client, conn, queries, product, headers):
    customer = await make_customer(client, conn, queries, product, headers)
    await login(client, await make_admin(conn, queries, "owner"))
    html = await (await client.get(f"/admin/customers?q={customer.email[:10]}")).text()
    assert customer.email in html
    account_id = await conn.fetchval("SELECT id FROM portal_accounts WHERE email = $1", customer.email)
    html = await (await client.get(f"/admin/customers/{account_id}")).text()
    assert customer.license_key in html and "Disable" in html and "Erase" in html
    csrf = await page_csrf(client, f"/admin/customers/{account_id}")
    response = await client.post(
        f"/admin/customers/{account_id}/disable", data={"csrf": csrf}, allow_redirects=False
    )
    assert response.status == 303
    assert (await call(client, "GET", "/licenses", headers, **customer.auth))[1]["error"]["code"] in (
        "PORTAL_SESSION_EXPIRED",
        "ACCOUNT_DISABLED",
    )
    status, body = await call(
        client, "POST", "/login", headers, {"email": customer.email, "password": PASSWORD}
    )
    assert (status, body["error"]["code"]) == (403, "ACCOUNT_DISABLED")
    response = await client.post(
        f"/admin/customers/{account_id}/erase", data={"csrf": csrf}, allow_redirects=False
    )
    assert response.status == 303
    assert await conn.fetchval("SELECT email FROM portal_accounts WHERE id = $1", account_id) is None
    assert (
        await count(
            conn,
            "SELECT count(*) FROM audit_log WHERE action = 'portal.account.erase' AND object_id = $1",
            str(account_id),
        )
        == 1
    )


async def test_an_operator_cannot_erase_and_a_viewer_changes_nothing(client, conn, queries, product, headers):
    customer = await make_customer(client, conn, queries, product, headers)
    account_id = await conn.fetchval("SELECT id FROM portal_accounts WHERE email = $1", customer.email)
    await login(client, await make_admin(conn, queries, "operator"))
    csrf = await page_csrf(client, f"/admin/customers/{account_id}")
    response = await client.post(f"/admin/customers/{account_id}/erase", data={"csrf": csrf})
    assert response.status == 403
    assert (
        await conn.fetchval("SELECT email FROM portal_accounts WHERE id = $1", account_id) == customer.email
    )


async def test_management_api_lists_verifies_and_erases_customers(
    client, conn, queries, product, headers, admin_headers
):
    customer = await make_customer(client, conn, queries, product, headers)
    response = await client.get(
        "/api/v1/admin/customers",
        params={"q": customer.email.upper(), "product_id": product["id"]},
        headers=admin_headers,
    )
    [found] = (await response.json())["data"]
    assert found["email"] == customer.email and found["licenses"] == 1
    detail = await (await client.get(f"/api/v1/admin/customers/{found['id']}", headers=admin_headers)).json()
    assert detail["data"]["licenses"][0]["key"] == customer.license_key
    response = await client.put(
        f"/api/v1/admin/products/{product['id']}/portal",
        json={"double_opt_in": True, "device_frees_per_30d": 5},
        headers=admin_headers,
    )
    assert (await response.json())["data"] == {
        "double_opt_in": True,
        "device_frees_per_30d": 5,
        "reset_delivery": "email",
    }
    response = await client.post(f"/api/v1/admin/customers/{found['id']}/verify", headers=admin_headers)
    assert (await response.json())["data"]["verified"] is True
    response = await client.post(f"/api/v1/admin/customers/{found['id']}/erase", headers=admin_headers)
    assert (await response.json())["data"] == {"erased": True, "licenses_detached": 1}
    response = await client.post(f"/api/v1/admin/customers/{found['id']}/erase", headers=admin_headers)
    assert (response.status, (await response.json())["error"]["code"]) == (404, "NOT_FOUND")
    response = await client.get("/api/v1/admin/customers/999999999", headers=admin_headers)
    assert response.status == 404


async def test_outbox_page_shows_the_mail_that_dev_mode_keeps(client, conn, queries, product, headers):
    customer = await make_customer(client, conn, queries, product, headers)
    await call(client, "POST", "/password-reset", headers, {"email": customer.email})
    await login(client, await make_admin(conn, queries, "viewer"))
    html = await (await client.get("/admin/outbox")).text()
    assert "No LICSRV_SMTP_URL is set" in html and customer.email in html and "reset your password" in html
