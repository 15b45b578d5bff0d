"""The portal pages over HTTP: the product's name in the customer's language, CSRF on every form, the nonce
CSP, and the same rules as the API behind every button."""

from __future__ import annotations

import re

import pytest

from licsrv.state import PRODUCTS
from portal_helpers import PASSWORD, count, new_email, start_session

from factories import make_license, make_product


@pytest.fixture
async def product(client, conn):
    row = await make_product(conn, client.app)
    await conn.execute("UPDATE products SET name = 'Bildstudio Pro' WHERE id = $1", row["id"])
    await client.app[PRODUCTS].reload()
    return row


GERMAN = {"Accept-Language": "de-DE,de;q=0.9,en;q=0.8"}


async def csrf_of(client, path: str, headers=GERMAN) -> tuple[str, str]:
    response = await client.get(path, headers=headers)
    html = await response.text()
    assert response.status == 200, html
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1), html


async def test_pages_speak_the_customers_language_and_show_the_products_name(client, product):
    base = f"/portal/{product['slug']}"
    response = await client.get(f"{base}/login", headers=GERMAN)
    html = await response.text()
    assert "Anmelden" in html and "Bildstudio Pro" in html and "licsrv" not in html.lower()
    policy = response.headers["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([^']+)'", policy).group(1)
    assert f'nonce="{nonce}"' in html and "default-src 'none'" in policy
    assert "登录" in await (await client.get(f"{base}/login", headers={"Accept-Language": "zh-CN"})).text()
    assert "Sign in" in await (await client.get(f"{base}/login", headers={"Accept-Language": "fr"})).text()
    assert (await client.get("/portal/no-such-product/login")).status == 404


async def test_register_sign_in_free_a_device_and_sign_out_through_the_pages(client, conn, queries, product):
    base = f"/portal/{product['slug']}"
    lic = await make_license(conn, queries, product, max_devices=1)
    headers = {"X-API-Key": product["api_key"]}
    assert (await start_session(client, headers, "old-pc", license_key=lic["key"], machine_name="Büro-PC"))[
        0
    ] == 200
    csrf, _ = await csrf_of(client, f"{base}/register")
    email = new_email()
    response = await client.post(
        f"{base}/register",
        data={"csrf": csrf, "email": email, "password": PASSWORD, "ticket": lic["key"]},
        headers=GERMAN,
        allow_redirects=False,
    )
    assert response.status == 302 and response.headers["Location"] == f"{base}/"
    assert "HttpOnly" in response.headers.getall("Set-Cookie")[0]
    _, html = await csrf_of(client, f"{base}/")
    assert lic["key"] in html and "Büro-PC" in html and "Gerät freigeben" in html and "Läuft gerade" in html
    device_id = await conn.fetchval("SELECT id FROM devices WHERE license_id = $1", lic["id"])
    # a form without the CSRF token frees nothing
    response = await client.post(f"{base}/devices/{device_id}/free", data={}, allow_redirects=False)
    assert response.status == 302 and "error=" in response.headers["Location"]
    assert await count(conn, "SELECT count(*) FROM devices WHERE id = $1", device_id) == 1
    response = await client.post(
        f"{base}/devices/{device_id}/free", data={"csrf": csrf}, headers=GERMAN, allow_redirects=False
    )
    assert response.headers["Location"] == f"{base}/?done=device_freed"
    assert await count(conn, "SELECT count(*) FROM devices WHERE id = $1", device_id) == 0
    html = await (await client.get(response.headers["Location"], headers=GERMAN)).text()
    assert "Das Gerät wurde freigegeben." in html and "noch 2 Gerät(e)" in html
    response = await client.post(f"{base}/logout", data={"csrf": csrf}, allow_redirects=False)
    assert response.headers["Location"] == f"{base}/login"
    response = await client.get(f"{base}/", allow_redirects=False)
    assert response.status == 302 and response.headers["Location"] == f"{base}/login"


async def test_a_refused_form_says_why_and_keeps_what_was_typed_but_the_password(client, conn, product):
    base = f"/portal/{product['slug']}"
    csrf, _ = await csrf_of(client, f"{base}/register")
    response = await client.post(
        f"{base}/register",
        data={"csrf": csrf, "email": "anna@example.com", "password": PASSWORD, "ticket": "NOPE-NOPE-NOPE"},
        headers=GERMAN,
    )
    html = await response.text()
    assert response.status == 400 and "kein unbenutzter Karten- oder freier Lizenzschlüssel" in html
    assert 'value="anna@example.com"' in html and PASSWORD not in html
    response = await client.post(
        f"{base}/register",
        data={"email": "b@example.com", "password": PASSWORD, "ticket": "X" * 10},
        headers=GERMAN,
    )
    assert response.status == 403 and "Formular war abgelaufen" in await response.text()
    assert await count(conn, "SELECT count(*) FROM portal_accounts WHERE product_id = $1", product["id"]) == 0


async def test_credential_file_downloads_as_text(client, conn, queries, product):
    base = f"/portal/{product['slug']}"
    lic = await make_license(conn, queries, product)
    csrf, _ = await csrf_of(client, f"{base}/register")
    await client.post(
        f"{base}/register",
        data={"csrf": csrf, "email": new_email(), "password": PASSWORD, "ticket": lic["key"]},
    )
    response = await client.post(f"{base}/credential", data={"csrf": csrf, "password": PASSWORD})
    assert response.status == 200 and response.content_type == "text/plain"
    assert "attachment" in response.headers["Content-Disposition"]
    assert "format: licsrv-credential/1" in await response.text()
    response = await client.post(
        f"{base}/credential", data={"csrf": csrf, "password": "wrong one"}, allow_redirects=False
    )
    assert response.headers["Location"].endswith("error=LOGIN_FAILED")
