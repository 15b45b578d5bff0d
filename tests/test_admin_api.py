from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from licsrv.services.audit import CLI_ACTOR
from licsrv.services.tokens import create_token, revoke_token
from licsrv.state import PRODUCTS

from factories import make_product


async def test_bearer_token_authorises_product_list(client, admin_headers):
    response = await client.get("/api/v1/admin/products", headers=admin_headers)
    assert response.status == 200
    body = await response.json()
    assert body["status"] == "ok"
    default = next(p for p in body["data"] if p["slug"] == "default")
    assert default["api_key"].startswith("lk_")
    assert default["session_policy"] == "reject"
    assert default["heartbeat_interval"] == 30 and default["session_timeout"] == 60
    assert "X-Licsrv-Signature" not in response.headers


async def test_management_api_refuses_missing_and_unknown_tokens(client):
    for headers in ({}, {"Authorization": "Bearer lst_unknown"}, {"Authorization": "Basic abc"}):
        response = await client.get("/api/v1/admin/products", headers=headers)
        assert response.status == 401
        assert (await response.json())["error"]["code"] == "UNAUTHORIZED"


async def test_revoked_token_stops_working(client, conn, queries):
    token_id, token = await create_token(conn, queries, "short-lived", "operator", CLI_ACTOR)
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/v1/admin/products", headers=headers)).status == 200
    await revoke_token(conn, queries, token_id, CLI_ACTOR)
    assert (await client.get("/api/v1/admin/products", headers=headers)).status == 401


async def test_token_is_stored_only_as_a_hash(conn, queries):
    _, token = await create_token(conn, queries, "hashed", "viewer", CLI_ACTOR)
    stored = await conn.fetchval("SELECT token_hash FROM api_tokens WHERE name = 'hashed'")
    assert token.encode() not in bytes(stored) and len(bytes(stored)) == 32


async def test_viewer_token_changes_nothing(client, conn, queries):
    _, token = await create_token(conn, queries, "viewer", "viewer", CLI_ACTOR)
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/v1/admin/products/1", headers=headers)).status == 200
    response = await client.post("/api/v1/admin/products/1/rotate-key", headers=headers)
    assert response.status == 403
    assert (await response.json())["error"]["code"] == "FORBIDDEN"


async def answers_with(client, api_key: str, want: int) -> int:
    """The status of a client call with this key, once every worker's cache has heard the change (NOTIFY)."""
    for _ in range(100):
        status = (await client.get("/api/v1/keys/none", headers={"X-API-Key": api_key})).status
        if status == want:
            break
        await asyncio.sleep(0.02)
    return status


async def test_a_rotated_api_key_keeps_working_for_its_grace_period_until_retired(
    client, admin_headers, conn
):
    product = await make_product(conn, client.app)
    old_key = product["api_key"]
    response = await client.post(
        f"/api/v1/admin/products/{product['id']}/rotate-key", json={"grace_days": 30}, headers=admin_headers
    )
    assert response.status == 200
    data = (await response.json())["data"]
    new_key = data["api_key"]
    assert new_key != old_key and data["previous_api_key"] == old_key
    assert data["previous_api_key_expires_at"] > (datetime.now(UTC) + timedelta(days=29)).isoformat()
    assert await answers_with(client, new_key, 404) == 404  # accepted (404: no such key id)
    assert await answers_with(client, old_key, 404) == 404  # still accepted: installed programs keep working
    audit = await conn.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'product.rotate_key' AND object_id = $1",
        str(product["id"]),
    )
    assert audit == 1
    response = await client.post(
        f"/api/v1/admin/products/{product['id']}/retire-previous-key", headers=admin_headers
    )
    assert response.status == 200 and (await response.json())["data"]["previous_api_key"] is None
    assert await answers_with(client, old_key, 401) == 401
    assert await answers_with(client, new_key, 404) == 404


async def test_a_grace_period_of_zero_refuses_the_old_key_at_once(client, admin_headers, conn):
    product = await make_product(conn, client.app)
    response = await client.post(
        f"/api/v1/admin/products/{product['id']}/rotate-key", json={"grace_days": 0}, headers=admin_headers
    )
    assert (await response.json())["data"]["previous_api_key"] is None
    assert await answers_with(client, product["api_key"], 401) == 401


async def test_an_expired_grace_period_refuses_the_old_key_without_a_reload(client, admin_headers, conn):
    product = await make_product(conn, client.app)
    await client.post(f"/api/v1/admin/products/{product['id']}/rotate-key", headers=admin_headers)
    assert await answers_with(client, product["api_key"], 404) == 404
    await conn.execute(
        "UPDATE products SET previous_api_key_expires_at = now() + interval '0.3 seconds' WHERE id = $1",
        product["id"],
    )
    await client.app[PRODUCTS].reload()
    assert (await client.get("/api/v1/keys/none", headers={"X-API-Key": product["api_key"]})).status == 404
    # Nothing reloads the cache after this: it must see the expiry by itself.
    assert await answers_with(client, product["api_key"], 401) == 401


@pytest.mark.parametrize("grace_days", [-1, 366, "soon"])
async def test_a_bad_grace_period_is_refused(client, admin_headers, grace_days):
    response = await client.post(
        "/api/v1/admin/products/1/rotate-key", json={"grace_days": grace_days}, headers=admin_headers
    )
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "VALIDATION_ERROR"


async def test_unknown_product_is_404(client, admin_headers):
    response = await client.get("/api/v1/admin/products/999999", headers=admin_headers)
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "NOT_FOUND"


async def test_two_owners_demoting_each_other_at_once_leave_one_owner(settings, conn, queries):
    from licsrv.db import connect
    from licsrv.errors import ApiError
    from licsrv.services.admins import set_role
    from licsrv.services.audit import Actor

    from admin_helpers import make_admin

    names = [await make_admin(conn, queries, "owner") for _ in range(2)]
    ids = [await conn.fetchval("SELECT id FROM admin_users WHERE username = $1", n) for n in names]
    connections = [await connect(settings.database_url) for _ in range(2)]
    try:
        outcomes = await asyncio.gather(
            set_role(connections[0], queries, ids[1], "viewer", False, Actor(names[0], "owner")),
            set_role(connections[1], queries, ids[0], "viewer", False, Actor(names[1], "owner")),
            return_exceptions=True,
        )
    finally:
        for connection in connections:
            await connection.close()
    refused = [o for o in outcomes if isinstance(o, ApiError)]
    assert len(refused) == 1 and refused[0].code == "FORBIDDEN", outcomes
    roles = await conn.fetch("SELECT role FROM admin_users WHERE id = ANY($1::bigint[])", ids)
    assert sorted(row["role"] for row in roles) == ["owner", "viewer"]
