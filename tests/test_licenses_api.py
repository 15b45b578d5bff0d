from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from factories import make_license, make_product


@pytest.fixture
async def product(client, conn):
    return await make_product(conn, client.app)


@pytest.fixture
def headers(product):
    return {"X-API-Key": product["api_key"]}


async def call(client, path, headers, body):
    response = await client.post(f"/api/v1/licenses/{path}", json=body, headers=headers)
    return response.status, await response.json()


async def test_activation_binds_slots_and_starts_the_clock_once(client, conn, queries, product, headers):
    lic = await make_license(conn, queries, product, max_devices=2, duration_days=30)
    assert lic["expires_at"] is None
    status, body = await call(
        client,
        "activate",
        headers,
        {"license_key": lic["key"], "hardware_id": "a", "machine_name": "Büro-PC"},
    )
    assert status == 200, body
    data = body["data"]
    assert (data["devices_used"], data["max_devices"]) == (1, 2)
    expires = datetime.fromisoformat(data["expires_at"])
    assert timedelta(days=29, hours=23) < expires - datetime.now(UTC) <= timedelta(days=30)
    status, again = await call(
        client, "activate", headers, {"license_key": lic["key"].lower(), "hardware_id": "a"}
    )
    assert again["data"]["devices_used"] == 1 and again["data"]["expires_at"] == data["expires_at"]
    assert (await call(client, "activate", headers, {"license_key": lic["key"], "hardware_id": "b"}))[
        0
    ] == 200
    status, body = await call(client, "activate", headers, {"license_key": lic["key"], "hardware_id": "c"})
    assert (status, body["error"]["code"]) == (409, "DEVICE_LIMIT_REACHED")
    device = await conn.fetchrow(
        "SELECT * FROM devices WHERE license_id = $1 AND hardware_id = 'a'", lic["id"]
    )
    assert device["machine_name"] == "Büro-PC" and str(device["first_ip"]) == "127.0.0.1"


async def test_concurrent_activations_never_exceed_the_slots(client, conn, queries, product, headers):
    lic = await make_license(conn, queries, product, max_devices=2)
    results = await asyncio.gather(
        *(
            call(client, "activate", headers, {"license_key": lic["key"], "hardware_id": f"hw-{i}"})
            for i in range(20)
        )
    )
    assert sorted(status for status, _ in results).count(200) == 2
    assert await conn.fetchval("SELECT count(*) FROM devices WHERE license_id = $1", lic["id"]) == 2


async def test_validate_and_deactivate(client, conn, queries, product, headers):
    lic = await make_license(conn, queries, product)
    body = {"license_key": lic["key"], "hardware_id": "a"}
    status, reply = await call(client, "validate", headers, body)
    assert (status, reply["error"]["code"]) == (403, "DEVICE_NOT_ACTIVATED")
    await call(client, "activate", headers, body)
    status, reply = await call(client, "validate", headers, body)
    assert (status, reply["data"]["valid"]) == (200, True)
    status, reply = await call(client, "deactivate", headers, body)
    assert (status, reply["data"]["devices_used"]) == (200, 0)
    assert (await call(client, "deactivate", headers, body))[1]["error"]["code"] == "DEVICE_NOT_ACTIVATED"


async def test_validate_on_a_license_full_of_other_machines_is_a_hardware_mismatch(
    client, conn, queries, product, headers
):
    lic = await make_license(conn, queries, product, max_devices=1)
    await call(client, "activate", headers, {"license_key": lic["key"], "hardware_id": "owner-pc"})
    status, reply = await call(
        client, "validate", headers, {"license_key": lic["key"], "hardware_id": "other"}
    )
    assert (status, reply["error"]["code"]) == (403, "HARDWARE_MISMATCH")


async def test_refusals_have_their_codes(client, conn, queries, product, headers):
    other = await make_product(conn, client.app)
    foreign = await make_license(conn, queries, other)
    expired = await make_license(conn, queries, product, expires_at=datetime.now(UTC) - timedelta(days=1))
    suspended = await make_license(conn, queries, product)
    revoked = await make_license(conn, queries, product)
    await conn.execute("UPDATE licenses SET status = 'suspended' WHERE id = $1", suspended["id"])
    await conn.execute("UPDATE licenses SET status = 'revoked' WHERE id = $1", revoked["id"])
    cases = [
        ("NOPE-NOPE", "LICENSE_NOT_FOUND", 404),
        (foreign["key"], "LICENSE_NOT_FOUND", 404),
        (expired["key"], "LICENSE_EXPIRED", 403),
        (suspended["key"], "LICENSE_SUSPENDED", 403),
        (revoked["key"], "LICENSE_REVOKED", 403),
    ]
    for key, code, http_status in cases:
        status, body = await call(client, "activate", headers, {"license_key": key, "hardware_id": "x"})
        assert (status, body["error"]["code"]) == (http_status, code), key
    assert await conn.fetchval("SELECT count(*) FROM devices WHERE license_id = $1", expired["id"]) == 0


async def test_bad_input_is_a_clean_400_and_writes_nothing(client, conn, queries, product, headers):
    lic = await make_license(conn, queries, product)
    bad = [
        {"license_key": lic["key"]},
        {"license_key": lic["key"], "hardware_id": 12},
        {"license_key": lic["key"], "hardware_id": "x" * 300},
        {"license_key": lic["key"], "hardware_id": "a", "admin": True},
        {"license_key": ["x"], "hardware_id": "a"},
    ]
    for body in bad:
        status, reply = await call(client, "activate", headers, body)
        assert (status, reply["error"]["code"]) == (400, "VALIDATION_ERROR"), body
    status, _ = await call(
        client, "activate", headers, {"license_key": lic["key"], "hardware_id": "x" * 100_000}
    )
    assert status == 413
    injection = "'; DELETE FROM licenses; --<script>alert(1)</script>"
    status, reply = await call(
        client, "activate", headers, {"license_key": lic["key"], "hardware_id": injection}
    )
    assert status == 200
    assert (
        await conn.fetchval("SELECT hardware_id FROM devices WHERE license_id = $1", lic["id"]) == injection
    )
    assert await conn.fetchval("SELECT count(*) FROM licenses") > 0
