"""Portal accounts over time: credential files, password resets, the opt-in gate, data change and erasure."""

from __future__ import annotations

import pytest

from licsrv.state import REDIS
from licsrv_client.credential import CredentialFileError, open_credential_file
from licsrv_client.sdk import LicenseClient, LicsrvError
from portal_helpers import PASSWORD, call, count, make_customer, new_card, register, set_portal, start_session

from factories import make_license, make_product


@pytest.fixture
async def product(client, conn):
    return await make_product(conn, client.app)


@pytest.fixture
def headers(product):
    return {"X-API-Key": product["api_key"]}


async def credential_file(client, headers, customer, password=PASSWORD):
    return await call(client, "POST", "/credential", headers, {"password": password}, **customer.auth)


async def test_credential_file_starts_sessions_then_fails_after_a_password_change(
    client, conn, queries, product, headers
):
    customer = await make_customer(client, conn, queries, product, headers, max_devices=2)
    status, body = await credential_file(client, headers, customer, "not my password")
    assert (status, body["error"]["code"]) == (401, "LOGIN_FAILED")
    status, body = await credential_file(client, headers, customer)
    assert status == 200, body
    text = body["data"]["file"]
    assert PASSWORD not in text and customer.license_key not in text
    with pytest.raises(CredentialFileError):
        open_credential_file(text, "wrong password")
    credential = open_credential_file(text, PASSWORD)

    async with LicenseClient(str(client.make_url("")), product["api_key"], product=product["slug"]) as sdk:
        session = await sdk.start_session(None, "laptop", "2.0.0", credential=credential)
        assert await session.heartbeat() == product["heartbeat_interval"]
        await session.end()
        history = await conn.fetchrow(
            "SELECT license_id FROM session_history WHERE id = $1", session.session_id
        )
        assert history["license_id"] == (
            await conn.fetchval("SELECT id FROM licenses WHERE key = $1", customer.license_key)
        )

        status, body = await call(
            client,
            "POST",
            "/password",
            headers,
            {"old_password": PASSWORD, "new_password": "a new password"},
            **customer.auth,
        )
        assert status == 200, body
        with pytest.raises(LicsrvError) as refused:
            await sdk.start_session(None, "laptop", "2.0.0", credential=credential)
        assert (refused.value.code, refused.value.status) == ("CREDENTIAL_INVALID", 401)
    assert (
        await count(
            conn,
            "SELECT count(*) FROM security_events WHERE kind = 'portal_bad_credential' AND product_id = $1",
            product["id"],
        )
        == 1
    )
    # the old file still opens with the old password, but what it holds is worthless: a new file works
    status, body = await credential_file(client, headers, customer, "a new password")
    fresh = open_credential_file(body["data"]["file"], "a new password")
    assert fresh != credential
    assert (await start_session(client, headers, "laptop", credential=fresh))[0] == 200


async def test_a_credential_of_another_product_or_forged_is_refused(client, conn, queries, product, headers):
    customer = await make_customer(client, conn, queries, product, headers)
    _, body = await credential_file(client, headers, customer)
    credential = open_credential_file(body["data"]["file"], PASSWORD)
    other = await make_product(conn, client.app)
    account_id, generation = credential.split(".")[1:3]
    for headers_, forged in (
        ({"X-API-Key": other["api_key"]}, credential),
        (headers, f"pc1.{account_id}.{generation}.{'A' * 43}"),
        (headers, "pc1.x.y.z-and-more"),
    ):
        status, answer = await start_session(client, headers_, "pc", credential=forged)
        assert (status, answer["error"]["code"]) == (401, "CREDENTIAL_INVALID"), forged
    status, answer = await start_session(client, headers, "pc")
    assert (status, answer["error"]["code"]) == (400, "VALIDATION_ERROR")
    assert await count(conn, "SELECT count(*) FROM session_history WHERE hardware_id = 'pc'") == 0


async def test_password_reset_by_mail_token_once_and_only_in_time(client, conn, queries, product, headers):
    customer = await make_customer(client, conn, queries, product, headers)
    _, body = await call(client, "POST", "/login", headers, {"email": customer.email, "password": PASSWORD})
    elsewhere = {"Authorization": f"Bearer {body['data']['session_token']}"}
    status, body = await call(client, "POST", "/password-reset", headers, {"email": customer.email.upper()})
    assert (status, body["data"]) == (200, {"requested": True, "product": product["slug"]})
    # an unknown address gets the same answer and no mail
    status, body = await call(client, "POST", "/password-reset", headers, {"email": "nobody@example.com"})
    assert (status, body["data"]) == (200, {"requested": True, "product": product["slug"]})
    mails = await conn.fetch("SELECT * FROM mail_outbox WHERE product_id = $1", product["id"])
    assert [m["to_addr"] for m in mails] == [customer.email]
    token = mails[0]["body"].split("token=")[1].split()[0]
    assert (
        await count(
            conn, "SELECT count(*) FROM portal_tokens WHERE token_hash = convert_to($1, 'UTF8')", token
        )
        == 0
    )

    confirm = {"token": token, "new_password": "reset password 1"}
    status, body = await call(client, "POST", "/password-reset/confirm", headers, confirm)
    assert (status, body["data"]["changed"]) == (200, True)
    for auth in (customer.auth, elsewhere):  # every portal session ended
        assert (await call(client, "GET", "/licenses", headers, **auth))[0] == 401
    status, body = await call(
        client, "POST", "/password-reset/confirm", headers, {**confirm, "new_password": "again 12345"}
    )
    assert (status, body["error"]["code"]) == (400, "TOKEN_INVALID")
    assert (
        await call(
            client, "POST", "/login", headers, {"email": customer.email, "password": "reset password 1"}
        )
    )[0] == 200

    # a second request within the minute mails nothing (nobody floods an inbox through the form) …
    await call(client, "POST", "/password-reset", headers, {"email": customer.email})
    assert await count(conn, "SELECT count(*) FROM mail_outbox WHERE product_id = $1", product["id"]) == 1
    # … a minute later it does
    await client.app[REDIS].delete(*await client.app[REDIS].keys(f"portal:r:{product['id']}:*"))
    await call(client, "POST", "/password-reset", headers, {"email": customer.email})
    late = (
        await conn.fetch("SELECT body FROM mail_outbox WHERE product_id = $1 ORDER BY id", product["id"])
    )[-1]
    late_token = late["body"].split("token=")[1].split()[0]
    await conn.execute(
        "UPDATE portal_tokens SET expires_at = now() - interval '1 second' WHERE used_at IS NULL"
    )
    status, body = await call(
        client,
        "POST",
        "/password-reset/confirm",
        headers,
        {"token": late_token, "new_password": "too late 123"},
    )
    assert (status, body["error"]["code"]) == (400, "TOKEN_INVALID")
    assert (
        await call(
            client, "POST", "/login", headers, {"email": customer.email, "password": "reset password 1"}
        )
    )[0] == 200
    assert (
        await count(
            conn,
            "SELECT count(*) FROM security_events WHERE kind = 'portal_bad_reset_token' AND product_id = $1",
            product["id"],
        )
        == 2
    )


async def test_reset_token_handed_to_the_vendor_through_the_management_api(
    client, conn, queries, product, headers, admin_headers
):
    await set_portal(conn, product, reset_delivery="api")
    customer = await make_customer(client, conn, queries, product, headers)
    await call(client, "POST", "/password-reset", headers, {"email": customer.email})
    assert await count(conn, "SELECT count(*) FROM mail_outbox WHERE product_id = $1", product["id"]) == 0
    account_id = await conn.fetchval("SELECT id FROM portal_accounts WHERE email = $1", customer.email)
    response = await client.post(
        f"/api/v1/admin/customers/{account_id}/password-reset", headers=admin_headers
    )
    assert response.status == 200, await response.text()
    token = (await response.json())["data"]["token"]
    status, body = await call(
        client, "POST", "/password-reset/confirm", headers, {"token": token, "new_password": "vendor reset 1"}
    )
    assert status == 200, body


async def test_an_unverified_account_can_only_verify(client, conn, queries, product, headers):
    await set_portal(conn, product, double_opt_in=True)
    lic = await make_license(conn, queries, product)
    status, body = await register(client, headers, lic["key"])
    assert (status, body["data"]["verification_required"]) == (201, True)
    auth = {"Authorization": f"Bearer {body['data']['session_token']}"}
    for method, path, json in (
        ("GET", "/licenses", None),
        ("POST", "/licenses/claim", {"license_key": lic["key"]}),
        ("POST", "/credential", {"password": PASSWORD}),
        ("POST", "/password", {"old_password": PASSWORD, "new_password": "whatever 123"}),
        ("PATCH", "/account", {"data": {"a": 1}}),
        ("DELETE", "/devices/1", None),
        ("DELETE", "/sessions/abc", None),
    ):
        status, answer = await call(client, method, path, headers, json, **auth)
        assert (status, answer["error"]["code"]) == (403, "ACCOUNT_NOT_VERIFIED"), path
    status, answer = await call(client, "POST", "/verify", headers, {"code": "000000"}, **auth)
    assert (status, answer["error"]["code"]) == (400, "CODE_INVALID")
    row = await conn.fetchrow(
        "SELECT verified, data FROM portal_accounts WHERE product_id = $1", product["id"]
    )
    assert row["verified"] is False and row["data"] == {}


async def test_change_data_then_erase_the_account(client, conn, queries, product, headers):
    customer = await make_customer(client, conn, queries, product, headers)
    card = await new_card(conn, queries, product)
    await call(client, "POST", "/licenses/claim", headers, {"card_key": card}, **customer.auth)
    status, body = await call(
        client, "PATCH", "/account", headers, {"data": {"name": "Jörg"}}, **customer.auth
    )
    assert (status, body["data"]["data"]) == (200, {"name": "Jörg"})
    await call(client, "POST", "/password-reset", headers, {"email": customer.email})
    status, body = await call(
        client, "DELETE", "/account", headers, {"password": "wrong password"}, **customer.auth
    )
    assert (status, body["error"]["code"]) == (401, "LOGIN_FAILED")
    status, body = await call(client, "DELETE", "/account", headers, {"password": PASSWORD}, **customer.auth)
    assert (status, body["data"]) == (
        200,
        {"erased": True, "licenses_detached": 2, "product": product["slug"]},
    )
    row = await conn.fetchrow("SELECT * FROM portal_accounts WHERE product_id = $1", product["id"])
    assert row["email"] is None and row["data"] == {} and row["password_hash"] == "" and row["erased_at"]
    assert (
        await count(conn, "SELECT count(*) FROM portal_account_licenses WHERE account_id = $1", row["id"])
        == 0
    )
    assert await count(conn, "SELECT count(*) FROM mail_outbox WHERE to_addr = $1", customer.email) == 0
    audit = await conn.fetchrow(
        "SELECT * FROM audit_log WHERE action = 'portal.account.erase' AND object_id = $1", str(row["id"])
    )
    assert customer.email not in str(dict(audit))
    # the licenses keep working, and can be claimed again by a new account
    assert (await start_session(client, headers, "pc-e", license_key=customer.license_key))[0] == 200
    assert (await call(client, "GET", "/licenses", headers, **customer.auth))[0] == 401
    status, body = await call(
        client, "POST", "/login", headers, {"email": customer.email, "password": PASSWORD}
    )
    assert (status, body["error"]["code"]) == (401, "LOGIN_FAILED")
    status, body = await register(client, headers, customer.license_key, customer.email)
    assert status == 201, body
