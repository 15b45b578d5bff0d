"""Erasing a license's personal data: every place blanked, owner only, audited without the data, idempotent,
and the customer's program keeps working."""

from __future__ import annotations

import asyncio
import secrets
import time

import pytest

from licsrv.services.audit import CLI_ACTOR, record_security_event
from licsrv.services.cards import generate_batch
from licsrv.services.privacy import scrub
from licsrv.services.tokens import create_token
from licsrv.state import DEPS
from portal_helpers import make_customer, start_session

from admin_helpers import login, make_admin, page_csrf
from factories import make_product

NAME, NOTES = "Jürgen Groß", "Rechnung 2026-11 张伟"


@pytest.fixture
async def product(client, conn):
    return await make_product(conn, client.app, max_sessions=2)


@pytest.fixture
def headers(product):
    return {"X-API-Key": product["api_key"]}


async def token(conn, queries, role: str) -> dict[str, str]:
    _, value = await create_token(conn, queries, f"{role}-{secrets.token_hex(3)}", role, CLI_ACTOR)
    return {"Authorization": f"Bearer {value}"}


async def erase(client, license_id: int, auth: dict) -> tuple[int, dict]:
    response = await client.post(f"/api/v1/admin/licenses/{license_id}/erase-personal-data", headers=auth)
    return response.status, await response.json()


async def customer_with_traces(client, conn, queries, product, headers, admin_headers) -> tuple[dict, str]:
    """A portal customer's license used everywhere personal data is kept: returns (license row, email)."""
    customer = await make_customer(
        client, conn, queries, product, headers, customer_name=NAME, notes=NOTES, max_devices=2
    )
    lic = dict(await conn.fetchrow("SELECT * FROM licenses WHERE key = $1", customer.license_key))
    email = customer.email
    updated = await client.patch(
        f"/api/v1/admin/licenses/{lic['id']}", json={"customer_email": email}, headers=admin_headers
    )
    assert updated.status == 200
    activated = await client.post(
        "/api/v1/licenses/activate",
        json={"license_key": lic["key"], "hardware_id": "pc-1", "machine_name": "JÜRGENS-LAPTOP"},
        headers=headers,
    )
    assert activated.status == 200, await activated.text()
    status, body = await start_session(client, headers, license_key=lic["key"])
    assert status == 200, body
    _, codes = await generate_batch(conn, queries, product["id"], 1, 30, "privacy", CLI_ACTOR)
    recharged = await client.post(
        "/api/v1/cards/redeem",
        json={"card_key": codes[0], "hardware_id": "pc-1", "license_key": lic["key"]},
        headers=headers,
    )
    assert recharged.status == 200, await recharged.text()
    async with conn.transaction():
        await record_security_event(
            conn,
            queries,
            "card_bound_elsewhere",
            {"card": codes[0][:6] + "…", "hardware_id": "other", "ip": "198.51.100.7"},
            ip="198.51.100.7",
            product_id=product["id"],
        )
        await record_security_event(
            conn, queries, "portal_login_throttled", {"email": email.upper()}, ip="198.51.100.8"
        )
    await queries.queue_mail(conn, product_id=product["id"], to_addr=email, subject="Hallo", body="Hi Jürgen")
    await conn.execute(
        "INSERT INTO webhook_events (id, type, data) VALUES ($1, 'license.updated', $2)",
        f"evt_{secrets.token_hex(8)}",
        {"license_id": lic["id"], "customer_name": NAME, "customer_email": email, "status": "active"},
    )
    return lic, email


async def test_erasure_blanks_every_place_and_the_license_keeps_working(
    client, conn, queries, product, headers, admin_headers
):
    lic, email = await customer_with_traces(client, conn, queries, product, headers, admin_headers)
    license_id = lic["id"]

    status, body = await erase(client, license_id, admin_headers)

    assert status == 200, body
    counts = body["data"]
    assert counts["devices"] == 1 and counts["session_history"] >= 1 and counts["cards"] == 1
    assert counts["security_events"] == 2 and counts["mail"] >= 1 and counts["webhook_events"] >= 1
    assert counts["portal_account"] == "erased"
    row = await conn.fetchrow("SELECT * FROM licenses WHERE id = $1", license_id)
    assert (row["customer_name"], row["customer_email"], row["notes"]) == ("", "", "")
    assert row["personal_data_erased_at"] is not None and row["status"] == "active"
    device = await conn.fetchrow("SELECT * FROM devices WHERE license_id = $1", license_id)
    assert (device["machine_name"], device["first_ip"], device["last_ip"]) == ("", None, None)
    assert device["hardware_id"] == "pc-1"  # the slot stays bound to the machine
    assert (
        await conn.fetchval(
            "SELECT count(*) FROM session_history WHERE license_id = $1 AND ip IS NOT NULL", license_id
        )
        == 0
    )
    assert await conn.fetchval("SELECT count(*) FROM session_history WHERE license_id = $1", license_id) >= 1
    assert await conn.fetchval("SELECT ip FROM card_keys WHERE license_id = $1", license_id) is None
    events = await conn.fetch(
        "SELECT kind, details, ip FROM security_events WHERE details::text LIKE '%198.51.100.7%'"
        " OR ip = '198.51.100.8' OR lower(details->>'email') = lower($1)",
        email,
    )
    assert events == []
    bound = await conn.fetchrow(
        "SELECT details, ip FROM security_events WHERE kind = 'card_bound_elsewhere' AND product_id = $1",
        product["id"],
    )
    assert bound["details"]["ip"] == "" and bound["details"]["hardware_id"] == "other" and bound["ip"] is None
    audit = await conn.fetch(
        "SELECT action, before, after FROM audit_log WHERE object_type = 'license' AND object_id = $1",
        str(license_id),
    )
    text = str([dict(a) for a in audit])
    assert NAME not in text and email not in text and "license.update" in text
    update = next(a for a in audit if a["action"] == "license.update")
    assert update["before"]["customer_name"] == "" and "customer_email" in update["after"]  # the shape stays
    account = await conn.fetchrow(
        "SELECT email, erased_at FROM portal_accounts WHERE id = (SELECT id FROM"
        " portal_accounts WHERE erased_at IS NOT NULL ORDER BY erased_at DESC LIMIT 1)"
    )
    assert account["email"] is None
    assert (
        await conn.fetchval("SELECT count(*) FROM portal_account_licenses WHERE license_id = $1", license_id)
        == 0
    )
    assert (
        await conn.fetchval("SELECT count(*) FROM mail_outbox WHERE lower(to_addr) = lower($1)", email) == 0
    )
    assert (
        await conn.fetchval(
            "SELECT count(*) FROM webhook_events WHERE data->>'license_id' = $1 AND data::text LIKE '%Groß%'",
            str(license_id),
        )
        == 0
    )

    # The program on the machine goes on: a new session starts with the same key and hardware.
    status, started = await start_session(client, headers, license_key=lic["key"])
    assert status == 200, started
    activated = await client.post(
        "/api/v1/licenses/activate", json={"license_key": lic["key"], "hardware_id": "pc-1"}, headers=headers
    )
    assert activated.status == 200


async def test_the_erasure_is_audited_without_personal_data_and_runs_again_with_nothing_left(
    client, conn, queries, product, headers, admin_headers
):
    lic, email = await customer_with_traces(client, conn, queries, product, headers, admin_headers)
    assert (await erase(client, lic["id"], admin_headers))[0] == 200

    status, again = await erase(client, lic["id"], admin_headers)

    assert status == 200
    assert {k: v for k, v in again["data"].items() if k not in ("license_id", "portal_account")} == {
        "devices": 0,
        "session_history": 0,
        "cards": 0,
        "security_events": 0,
        "audit_rows": 0,
        "webhook_events": 0,
        "mail": 0,
    }
    assert again["data"]["portal_account"] == "none"
    entries = await conn.fetch(
        "SELECT actor, after::text AS after FROM audit_log"
        " WHERE action = 'license.erase_personal_data' AND object_id = $1",
        str(lic["id"]),
    )
    assert len(entries) == 2
    assert all(
        NAME not in e["after"] and email not in e["after"] and "JÜRGENS" not in e["after"] for e in entries
    )
    detail = await client.get(f"/api/v1/admin/licenses/{lic['id']}", headers=admin_headers)
    assert (await detail.json())["data"]["personal_data_erased_at"] is not None


async def test_only_an_owner_erases(client, conn, queries, product, headers, admin_headers):
    lic, _ = await customer_with_traces(client, conn, queries, product, headers, admin_headers)
    for role in ("operator", "viewer"):
        status, body = await erase(client, lic["id"], await token(conn, queries, role))
        assert (status, body["error"]["code"]) == (403, "FORBIDDEN")
    assert await conn.fetchval("SELECT customer_name FROM licenses WHERE id = $1", lic["id"]) == NAME
    status, body = await erase(client, 10**17, admin_headers)
    assert (status, body["error"]["code"]) == (404, "LICENSE_NOT_FOUND")


async def test_an_account_with_other_licenses_is_kept_and_this_license_detached(
    client, conn, queries, product, headers, admin_headers
):
    lic, email = await customer_with_traces(client, conn, queries, product, headers, admin_headers)
    account_id = await conn.fetchval(
        "SELECT account_id FROM portal_account_licenses WHERE license_id = $1", lic["id"]
    )
    other = await client.post(
        "/api/v1/admin/licenses", json={"product_id": product["id"]}, headers=admin_headers
    )
    other_id = (await other.json())["data"]["id"]
    await conn.execute(
        "INSERT INTO portal_account_licenses (license_id, account_id) VALUES ($1, $2)", other_id, account_id
    )

    status, body = await erase(client, lic["id"], admin_headers)

    assert (status, body["data"]["portal_account"]) == (200, "detached")
    assert await conn.fetchval("SELECT email FROM portal_accounts WHERE id = $1", account_id) == email
    assert await conn.fetchval(
        "SELECT array_agg(license_id) FROM portal_account_licenses WHERE account_id = $1", account_id
    ) == [other_id]


async def test_the_erasure_is_announced_to_webhooks_without_personal_data(
    client, conn, queries, product, headers, admin_headers
):
    lic, email = await customer_with_traces(client, conn, queries, product, headers, admin_headers)
    created = await client.post(
        "/api/v1/admin/webhooks",
        json={"url": "https://shop.example.com/hook", "events": ["license.personal_data_erased"]},
        headers=admin_headers,
    )
    assert created.status == 201
    endpoint = (await created.json())["data"]["id"]
    try:
        deadline = time.monotonic() + 10
        while not client.app[DEPS].webhooks.wants("license.personal_data_erased"):
            assert time.monotonic() < deadline, "the subscription cache never learnt of the endpoint"
            await asyncio.sleep(0.05)
        assert (await erase(client, lic["id"], admin_headers))[0] == 200
    finally:
        await client.delete(f"/api/v1/admin/webhooks/{endpoint}", headers=admin_headers)
    data = await conn.fetchval(
        "SELECT data FROM webhook_events"
        " WHERE type = 'license.personal_data_erased' AND data->>'license_id' = $1",
        str(lic["id"]),
    )
    assert set(data) == {"license_id", "license_key", "product_id", "erased_at"}
    assert email not in str(data) and NAME not in str(data)


async def test_the_license_page_has_an_erase_button_for_owners_only(
    client, conn, queries, product, headers, admin_headers
):
    lic, _ = await customer_with_traces(client, conn, queries, product, headers, admin_headers)
    await login(client, await make_admin(conn, queries, "operator"))
    page = f"/admin/licenses/{lic['id']}"
    assert "Erase personal data" not in await (await client.get(page)).text()
    response = await client.post(
        f"{page}/erase-personal-data", data={"csrf": await page_csrf(client, page)}, allow_redirects=False
    )
    assert response.status == 403
    assert await conn.fetchval("SELECT customer_name FROM licenses WHERE id = $1", lic["id"]) == NAME

    client.session.cookie_jar.clear()
    await login(client, await make_admin(conn, queries, "owner"))
    html = await (await client.get(page)).text()
    assert "Erase personal data" in html and NAME in html
    response = await client.post(
        f"{page}/erase-personal-data", data={"csrf": await page_csrf(client, page)}, allow_redirects=False
    )
    assert response.status == 303
    html = await (await client.get(response.headers["Location"])).text()
    assert "Personal data erased" in html and NAME not in html and "JÜRGENS-LAPTOP" not in html


def test_scrub_keeps_the_shape_and_blanks_personal_values():
    before = {"customer_name": "Ann", "ip": None, "max_devices": 2, "nested": [{"email": "a@b.c", "id": 4}]}
    assert scrub(before) == {
        "customer_name": "",
        "ip": None,
        "max_devices": 2,
        "nested": [{"email": "", "id": 4}],
    }
