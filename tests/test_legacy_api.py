from __future__ import annotations

import pytest

from factories import make_license, make_product

SINGLE_SESSION = "Es ist nur eine Sitzung erlaubt, stelle sicher, dass nirgendwo sonst das Programm läuft"


@pytest.fixture
async def product(client, conn):
    return await make_product(conn, client.app, current_version="1.2.0", minimum_version="1.0.0")


@pytest.fixture
def headers(product):
    return {"X-API-Key": product["api_key"]}


async def post(client, path, headers, body):
    response = await client.post(f"/api/license/{path}", json=body, headers=headers)
    return response.status, await response.json()


async def test_old_client_flow_start_heartbeat_end(client, conn, queries, product, headers):
    lic = await make_license(conn, queries, product, max_devices=2)
    start = {
        "license_key": lic["key"],
        "machine_id": "PC-Büro",
        "hardware_hash": "abc123",
        "version": "1.1.0",
    }
    status, body = await post(client, "session/start", headers, start)
    assert status == 200 and body["success"] is True
    assert body["update_available"] is True and body["current_version"] == "1.2.0"
    token = body["session_token"]

    status, body = await post(client, "session/start", headers, {**start, "hardware_hash": "other"})
    assert status == 409
    assert body == {"success": False, "error": SINGLE_SESSION, "code": "SESSION_LIMIT_REACHED"}

    status, body = await post(
        client, "session/heartbeat", headers, {"session_token": token, "license_key": lic["key"]}
    )
    assert (status, body["success"]) == (200, True)
    status, body = await post(client, "session/end", headers, {"session_token": token})
    assert (status, body["success"]) == (200, True)
    ended = await conn.fetchval("SELECT end_reason FROM session_history WHERE license_id = $1", lic["id"])
    assert ended == "normal"
    machine = await conn.fetchval("SELECT machine_name FROM devices WHERE license_id = $1", lic["id"])
    assert machine == "PC-Büro"


async def test_old_client_verify_and_activate(client, conn, queries, product, headers):
    lic = await make_license(conn, queries, product, duration_days=30)
    status, body = await post(
        client, "verify", headers, {"license_key": lic["key"], "hardware_hash": "dev-1"}
    )
    assert (status, body["code"]) == (403, "DEVICE_NOT_ACTIVATED")
    status, body = await post(
        client, "activate", headers, {"license_key": lic["key"], "hardware_hash": "dev-1"}
    )
    assert (status, body["activated"]) == (200, True)
    assert body["expires_at"] is not None  # the clock started at the first activation
    status, body = await post(
        client, "verify", headers, {"license_key": lic["key"], "hardware_hash": "dev-1"}
    )
    assert (status, body["valid"]) == (200, True)


async def test_old_client_errors_keep_the_flat_shape(client, headers):
    status, body = await post(
        client, "session/start", headers, {"license_key": "NOPE", "hardware_hash": "x", "version": "1.1.0"}
    )
    assert (status, body["success"], body["code"]) == (404, False, "LICENSE_NOT_FOUND")
    status, body = await post(client, "session/start", {"X-API-Key": "wrong"}, {})
    assert (status, body["code"]) == (401, "INVALID_API_KEY")
    response = await client.post("/api/license/session/heartbeat", data=b"{oops", headers=headers)
    assert response.status == 400
    assert (await response.json())["code"] == "VALIDATION_ERROR"


async def test_old_client_activate_needs_a_hardware_hash_and_verify_may_omit_it(
    client, conn, queries, product, headers
):
    lic = await make_license(conn, queries, product)
    status, body = await post(client, "activate", headers, {"license_key": lic["key"]})
    assert (status, body["code"]) == (400, "VALIDATION_ERROR")
    assert await conn.fetchval("SELECT count(*) FROM devices WHERE license_id = $1", lic["id"]) == 0
    status, body = await post(client, "verify", headers, {"license_key": lic["key"]})
    assert (status, body["valid"]) == (200, True)
