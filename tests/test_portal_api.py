"""The portal API of DESIGN §7c end to end: registration with tickets, sign-in, licenses, devices."""

from __future__ import annotations

import asyncio
import time

import pytest

from licsrv.state import REDIS
from portal_helpers import (
    PASSWORD,
    call,
    count,
    make_customer,
    new_card,
    new_email,
    register,
    set_portal,
    start_session,
)

from factories import make_license, make_product


@pytest.fixture
async def product(client, conn):
    return await make_product(conn, client.app)


@pytest.fixture
def headers(product):
    return {"X-API-Key": product["api_key"]}


async def accounts_of(conn, product) -> int:
    return await count(conn, "SELECT count(*) FROM portal_accounts WHERE product_id = $1", product["id"])


async def test_register_with_an_unclaimed_license_key_attaches_it(client, conn, queries, product, headers):
    lic = await make_license(conn, queries, product, max_devices=2)
    status, body = await register(
        client, headers, lic["key"].lower(), "Anna@Example.com", data={"plz": "10115"}
    )
    assert status == 201, body
    data = body["data"]
    assert data["email"] == "Anna@Example.com" and data["verification_required"] is False
    assert data["session_token"].startswith(data["session_id"] + ".")
    stored = await conn.fetchrow("SELECT * FROM portal_accounts WHERE product_id = $1", product["id"])
    assert stored["password_hash"].startswith("$argon2id$") and stored["data"] == {"plz": "10115"}
    status, body = await call(
        client, "GET", "/licenses", {**headers, "Authorization": f"Bearer {data['session_token']}"}
    )
    assert status == 200, body
    [found] = body["data"]["licenses"]
    assert found["license_key"] == lic["key"] and found["frees_left"] == 3 and found["devices"] == []
    # the token is stored hashed in Redis, never as sent
    raw = await client.app[REDIS].hgetall(f"portal:s:{data['session_id']}")
    assert data["session_token"].split(".")[1].encode() not in raw.values()


async def test_register_with_a_card_redeems_it_into_the_account(client, conn, queries, product, headers):
    card = await new_card(conn, queries, product, days=30)
    status, body = await register(client, headers, card)
    assert status == 201, body
    auth = {"Authorization": f"Bearer {body['data']['session_token']}"}
    _, body = await call(client, "GET", "/licenses", headers, **auth)
    [found] = body["data"]["licenses"]
    assert found["duration_days"] == 30 and found["expires_at"] is None
    row = await conn.fetchrow(
        "SELECT status, license_id FROM card_keys WHERE code = $1", card.replace("-", "")
    )
    assert row["status"] == "redeemed" and row["license_id"] is not None


async def test_one_ticket_makes_one_account_under_twenty_concurrent_registrations(
    aiohttp_client, settings, conn, queries
):
    from dataclasses import replace

    from licsrv.app import create_app

    # a pool that lets all twenty wait on the ticket's row lock (a small one would refuse some with 503)
    app = create_app(replace(settings, db_pool_max=22, db_acquire_timeout=60))
    client = await aiohttp_client(app)
    product = await make_product(conn, app)
    headers = {"X-API-Key": product["api_key"]}
    for ticket in (
        await new_card(conn, queries, product),
        (await make_license(conn, queries, product))["key"],
    ):
        before = await accounts_of(conn, product)
        await client.app[REDIS].delete(f"portal:t:{product['id']}:127.0.0.1")
        results = await asyncio.gather(*(register(client, headers, ticket) for _ in range(20)))
        # One told to retry (503, nothing written: seen once on a loaded CI host) tries again, once.
        results = [
            await register(client, headers, ticket) if status == 503 else (status, body)
            for status, body in results
        ]
        assert [status for status, _ in results].count(201) == 1, results
        # the losers find the ticket used (and, past ten wrong tickets, the caller is slowed down)
        codes = {body["error"]["code"] for status, body in results if status != 201}
        assert codes <= {"TICKET_INVALID", "RATE_LIMITED"} and "TICKET_INVALID" in codes
        assert await accounts_of(conn, product) == before + 1


async def test_wrong_tickets_are_refused_counted_and_noted(client, conn, queries, product, headers):
    other = await make_product(conn, client.app)
    foreign = await make_license(conn, queries, other)
    taken = await make_customer(client, conn, queries, product, headers)
    for ticket in ("NOPE-NOPE-NOPE", foreign["key"], taken.license_key):
        status, body = await register(client, headers, ticket)
        assert (status, body["error"]["code"]) == (400, "TICKET_INVALID")
    assert await accounts_of(conn, product) == 1
    events = await count(
        conn,
        "SELECT count(*) FROM security_events WHERE kind = 'portal_bad_ticket' AND product_id = $1",
        product["id"],
    )
    assert events == 3
    for _ in range(7):  # ten wrong tickets from one address: the next is refused before any lookup
        await register(client, headers, "NOPE-NOPE-NOPE")
    lic = await make_license(conn, queries, product)
    status, body = await register(client, headers, lic["key"])
    assert (status, body["error"]["code"]) == (429, "RATE_LIMITED")


async def test_an_address_registers_once_per_product_whatever_its_case(
    client, conn, queries, product, headers
):
    first = await make_customer(client, conn, queries, product, headers)
    lic = await make_license(conn, queries, product)
    status, body = await register(client, headers, lic["key"], first.email.upper())
    assert (status, body["error"]["code"]) == (409, "EMAIL_TAKEN")
    assert (
        await count(conn, "SELECT count(*) FROM portal_account_licenses WHERE license_id = $1", lic["id"])
        == 0
    )


@pytest.mark.parametrize(
    "body",
    [
        {"email": "not-an-address", "password": PASSWORD, "ticket": "X" * 10},
        {"email": "a@example.com", "password": "short", "ticket": "X" * 10},
        {"email": "a@example.com", "password": PASSWORD, "ticket": "X" * 10, "data": {"a": "x" * 5000}},
        {
            "email": "a@example.com",
            "password": PASSWORD,
            "ticket": "X" * 10,
            "data": {"a": {"b": {"c": {"d": {}}}}},
        },
        {"email": "a@example.com", "password": PASSWORD, "ticket": "X" * 10, "admin": True},
    ],
)
async def test_bad_registrations_are_validation_errors(client, conn, product, headers, body):
    status, answer = await call(client, "POST", "/register", headers, body)
    assert (status, answer["error"]["code"]) == (400, "VALIDATION_ERROR")
    assert await accounts_of(conn, product) == 0


async def test_login_rotates_the_session_and_logout_ends_it(client, conn, queries, product, headers):
    customer = await make_customer(client, conn, queries, product, headers)
    status, body = await call(
        client,
        "POST",
        "/login",
        headers,
        {"email": customer.email.upper(), "password": PASSWORD},
        **customer.auth,
    )
    assert status == 200, body
    fresh = body["data"]
    assert fresh["session_id"] != customer.session_id
    status, body = await call(client, "GET", "/licenses", headers, **customer.auth)
    assert (status, body["error"]["code"]) == (401, "PORTAL_SESSION_EXPIRED")
    auth = {"Authorization": f"Bearer {fresh['session_token']}"}
    assert (await call(client, "POST", "/logout", headers, **auth))[0] == 200
    status, body = await call(client, "GET", "/licenses", headers, **auth)
    assert (status, body["error"]["code"]) == (401, "PORTAL_SESSION_EXPIRED")


async def test_a_session_token_of_another_product_names_no_session(client, conn, queries, product, headers):
    customer = await make_customer(client, conn, queries, product, headers)
    other = await make_product(conn, client.app)
    status, body = await call(client, "GET", "/licenses", {"X-API-Key": other["api_key"]}, **customer.auth)
    assert (status, body["error"]["code"]) == (401, "PORTAL_SESSION_EXPIRED")


async def test_a_disabled_account_cannot_sign_in_or_call_anything(client, conn, queries, product, headers):
    customer = await make_customer(client, conn, queries, product, headers)
    await conn.execute(
        "UPDATE portal_accounts SET disabled = true WHERE lower(email) = lower($1)", customer.email
    )
    status, body = await call(client, "GET", "/licenses", headers, **customer.auth)
    assert (status, body["error"]["code"]) == (403, "ACCOUNT_DISABLED")
    status, body = await call(
        client, "POST", "/login", headers, {"email": customer.email, "password": PASSWORD}
    )
    assert (status, body["error"]["code"]) == (403, "ACCOUNT_DISABLED")


async def test_free_a_device_then_start_on_the_new_pc(client, conn, queries, product, headers):
    customer = await make_customer(client, conn, queries, product, headers, max_devices=1)
    status, old = await start_session(client, headers, "old-pc", license_key=customer.license_key)
    assert status == 200, old
    status, body = await start_session(client, headers, "new-pc", license_key=customer.license_key)
    assert (status, body["error"]["code"]) == (409, "DEVICE_LIMIT_REACHED")
    _, body = await call(client, "GET", "/licenses", headers, **customer.auth)
    [lic] = body["data"]["licenses"]
    [device] = lic["devices"]
    [running] = lic["sessions"]
    assert running["id"] == old["data"]["session_id"] and running["device_id"] == device["id"]
    status, body = await call(client, "DELETE", f"/devices/{device['id']}", headers, **customer.auth)
    assert status == 200, body
    assert body["data"]["frees_left"] == 2
    ended = await conn.fetchrow(
        "SELECT end_reason FROM session_history WHERE id = $1", old["data"]["session_id"]
    )
    assert ended["end_reason"] == "forced"
    beat = await client.post(
        "/api/v1/sessions/heartbeat", json={"session_token": old["data"]["session_token"]}, headers=headers
    )
    assert (await beat.json())["error"]["code"] == "SESSION_TERMINATED"
    status, body = await start_session(client, headers, "new-pc", license_key=customer.license_key)
    assert status == 200, body
    _, body = await call(client, "GET", "/licenses", headers, **customer.auth)
    assert body["data"]["licenses"][0]["frees_left"] == 2


async def test_frees_are_limited_per_license_and_thirty_days(client, conn, queries, product, headers):
    await set_portal(conn, product, frees=1)
    customer = await make_customer(client, conn, queries, product, headers, max_devices=5, max_sessions=5)
    for pc in ("pc-a", "pc-b"):
        assert (await start_session(client, headers, pc, license_key=customer.license_key))[0] == 200
    ids = [
        r["id"]
        for r in await conn.fetch(
            "SELECT d.id FROM devices d JOIN licenses l ON l.id = d.license_id"
            " WHERE l.key = $1 ORDER BY d.id",
            customer.license_key,
        )
    ]
    assert (await call(client, "DELETE", f"/devices/{ids[0]}", headers, **customer.auth))[0] == 200
    status, body = await call(client, "DELETE", f"/devices/{ids[1]}", headers, **customer.auth)
    assert (status, body["error"]["code"]) == (429, "FREE_LIMIT_REACHED")
    assert await count(conn, "SELECT count(*) FROM devices WHERE id = $1", ids[1]) == 1
    # a month later the slot frees again
    await conn.execute("UPDATE portal_device_frees SET at = at - interval '31 days'")
    assert (await call(client, "DELETE", f"/devices/{ids[1]}", headers, **customer.auth))[0] == 200


async def test_another_accounts_device_and_session_ids_are_not_found_and_noted(
    client, conn, queries, product, headers
):
    owner = await make_customer(client, conn, queries, product, headers)
    stranger = await make_customer(client, conn, queries, product, headers)
    status, started = await start_session(client, headers, "owner-pc", license_key=owner.license_key)
    assert status == 200
    device_id = await conn.fetchval("SELECT id FROM devices WHERE hardware_id = 'owner-pc'")
    for path in (f"/devices/{device_id}", f"/sessions/{started['data']['session_id']}", "/devices/abc"):
        status, body = await call(client, "DELETE", path, headers, **stranger.auth)
        assert (status, body["error"]["code"]) == (404, "NOT_FOUND"), path
    assert await count(conn, "SELECT count(*) FROM devices WHERE id = $1", device_id) == 1
    history = await conn.fetchrow(
        "SELECT ended_at FROM session_history WHERE id = $1", started["data"]["session_id"]
    )
    assert history["ended_at"] is None
    events = await count(
        conn,
        "SELECT count(*) FROM security_events WHERE kind = 'portal_foreign_id' AND product_id = $1",
        product["id"],
    )
    assert events == 2


async def test_end_one_of_my_running_sessions(client, conn, queries, product, headers):
    customer = await make_customer(client, conn, queries, product, headers)
    _, started = await start_session(client, headers, "office-pc", license_key=customer.license_key)
    session_id = started["data"]["session_id"]
    status, body = await call(client, "DELETE", f"/sessions/{session_id}", headers, **customer.auth)
    assert (status, body["data"]) == (
        200,
        {"id": session_id, "end_reason": "forced", "product": product["slug"]},
    )
    row = await conn.fetchrow("SELECT end_reason FROM session_history WHERE id = $1", session_id)
    assert row["end_reason"] == "forced"
    status, body = await call(client, "DELETE", f"/sessions/{session_id}", headers, **customer.auth)
    assert status == 404


async def test_claim_a_license_a_card_and_recharge(client, conn, queries, product, headers):
    customer = await make_customer(client, conn, queries, product, headers)
    spare = await make_license(conn, queries, product)
    status, body = await call(
        client, "POST", "/licenses/claim", headers, {"license_key": spare["key"]}, **customer.auth
    )
    assert (status, body["data"]["attached"]) == (200, True)
    card = await new_card(conn, queries, product, days=10)
    status, body = await call(client, "POST", "/licenses/claim", headers, {"card_key": card}, **customer.auth)
    assert status == 200, body
    card_license = body["data"]["license_key"]
    refill = await new_card(conn, queries, product, days=5)
    status, body = await call(
        client,
        "POST",
        "/licenses/claim",
        headers,
        {"card_key": refill, "license_key": card_license},
        **customer.auth,
    )
    assert (status, body["data"]["recharged"]) == (200, True), body
    _, body = await call(client, "GET", "/licenses", headers, **customer.auth)
    assert len(body["data"]["licenses"]) == 3
    # another customer's license cannot be claimed, nor recharged through this account
    other = await make_customer(client, conn, queries, product, headers)
    status, body = await call(
        client, "POST", "/licenses/claim", headers, {"license_key": other.license_key}, **customer.auth
    )
    assert (status, body["error"]["code"]) == (404, "LICENSE_NOT_FOUND")
    assert (
        await conn.fetchval(
            "SELECT count(*) FROM portal_account_licenses p JOIN licenses l ON l.id = p.license_id"
            " WHERE l.key = $1",
            other.license_key,
        )
        == 1
    )


async def test_wrong_passwords_are_throttled_per_account_and_address_not_per_account(
    aiohttp_client, settings, conn, queries
):
    from dataclasses import replace
    from ipaddress import ip_network

    from licsrv.app import create_app

    app = create_app(
        replace(settings, trusted_proxies=(ip_network("127.0.0.1/32"),), portal_failures_per_account_ip=3)
    )
    client = await aiohttp_client(app)
    product = await make_product(conn, app)
    headers = {"X-API-Key": product["api_key"]}
    customer = await make_customer(client, conn, queries, product, headers)
    attacker = {"X-Forwarded-For": "203.0.113.9"}
    home = {"X-Forwarded-For": "198.51.100.7"}
    for _ in range(3):
        status, body = await call(
            client, "POST", "/login", headers, {"email": customer.email, "password": "guess!!!"}, **attacker
        )
        assert (status, body["error"]["code"]) == (401, "LOGIN_FAILED")
    status, body = await call(
        client, "POST", "/login", headers, {"email": customer.email, "password": PASSWORD}, **attacker
    )
    assert (status, body["error"]["code"]) == (429, "RATE_LIMITED")
    status, body = await call(
        client, "POST", "/login", headers, {"email": customer.email, "password": PASSWORD}, **home
    )
    assert status == 200, body
    assert (
        await count(
            conn,
            "SELECT count(*) FROM security_events WHERE kind = 'portal_login_throttled' AND product_id = $1",
            product["id"],
        )
        == 1
    )
    # an unknown address is refused the same way as a wrong password
    status, body = await call(
        client, "POST", "/login", headers, {"email": new_email(), "password": PASSWORD}, **home
    )
    assert (status, body["error"]["code"]) == (401, "LOGIN_FAILED")


async def test_password_change_ends_every_other_session(client, conn, queries, product, headers):
    customer = await make_customer(client, conn, queries, product, headers)
    _, body = await call(client, "POST", "/login", headers, {"email": customer.email, "password": PASSWORD})
    other = {"Authorization": f"Bearer {body['data']['session_token']}"}
    status, body = await call(
        client,
        "POST",
        "/password",
        headers,
        {"old_password": "wrong-one", "new_password": "new password 2"},
        **customer.auth,
    )
    assert (status, body["error"]["code"]) == (401, "LOGIN_FAILED")
    assert (await call(client, "GET", "/licenses", headers, **other))[0] == 200
    status, body = await call(
        client,
        "POST",
        "/password",
        headers,
        {"old_password": PASSWORD, "new_password": "new password 2"},
        **customer.auth,
    )
    assert (status, body["data"]["other_sessions_ended"]) == (200, 1)
    assert (await call(client, "GET", "/licenses", headers, **other))[0] == 401
    assert (await call(client, "GET", "/licenses", headers, **customer.auth))[0] == 200
    status, _ = await call(
        client, "POST", "/login", headers, {"email": customer.email, "password": "new password 2"}
    )
    assert status == 200


async def test_sessions_idle_out_and_end_at_their_maximum_age(aiohttp_client, settings, conn, queries):
    from dataclasses import replace

    from licsrv.app import create_app

    app = create_app(replace(settings, portal_idle_timeout=300, portal_max_age=600))
    client = await aiohttp_client(app)
    product = await make_product(conn, app)
    headers = {"X-API-Key": product["api_key"]}
    customer = await make_customer(client, conn, queries, product, headers)
    key = f"portal:s:{customer.session_id}"
    redis = app[REDIS]
    assert 290 < await redis.ttl(key) <= 300  # the idle timeout, not the maximum age
    # used: the idle timer starts again (the key's TTL is the idle timeout; Redis ends it when it runs out)
    await redis.expire(key, 5)
    assert (await call(client, "GET", "/licenses", headers, **customer.auth))[0] == 200
    assert await redis.ttl(key) > 290
    # never past the maximum age: made 590 s ago, a call leaves it 10 s at most
    await redis.hset(key, "c", int(time.time()) - 590)
    assert (await call(client, "GET", "/licenses", headers, **customer.auth))[0] == 200
    assert 0 < await redis.ttl(key) <= 10
    # the session was made 600 s ago: its maximum age is over even though it was used just now
    await redis.hset(key, "c", 0)
    status, body = await call(client, "GET", "/licenses", headers, **customer.auth)
    assert (status, body["error"]["code"]) == (401, "PORTAL_SESSION_EXPIRED")
    assert await redis.exists(key) == 0


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/register", {"email": "a@example.com", "password": PASSWORD, "ticket": "AB\u0000CDEFGHIJ"}),
        (
            "POST",
            "/register",
            {"email": "a@example.com", "password": PASSWORD, "ticket": "X" * 10, "data": {"a": "\u0000"}},
        ),
        ("POST", "/register", ["not", "an", "object"]),
        ("POST", "/login", {"email": "a@example.com", "password": "\u0000" * 8}),
        ("POST", "/password-reset/confirm", {"token": "\u0000" * 30, "new_password": PASSWORD}),
        ("POST", "/password-reset", {"email": "x" * 300 + "@example.com"}),
        ("DELETE", "/sessions/" + "a" * 300, None),
        ("DELETE", "/devices/99999999999999999999999", None),
        ("POST", "/verify", {"code": "12345"}),
    ],
)
async def test_odd_input_is_a_stable_4xx_never_a_500(
    client, conn, queries, product, headers, method, path, body
):
    customer = await make_customer(client, conn, queries, product, headers)
    response = await client.request(
        method, f"/api/v1/portal{path}", json=body, headers={**headers, **customer.auth}
    )
    answer = await response.json()
    assert 400 <= response.status < 500, answer
    assert answer["error"]["code"] in {
        "VALIDATION_ERROR",
        "TICKET_INVALID",
        "LOGIN_FAILED",
        "NOT_FOUND",
        "TOKEN_INVALID",
    }
