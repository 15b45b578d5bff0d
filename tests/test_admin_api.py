from __future__ import annotations

import asyncio

from licsrv.services.audit import CLI_ACTOR
from licsrv.services.tokens import create_token, revoke_token


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


async def test_rotated_api_key_is_refused_at_once_and_the_new_one_accepted(client, admin_headers, conn):
    old_key = await conn.fetchval("SELECT api_key FROM products WHERE id = 1")
    assert (await client.get("/api/v1/keys/none", headers={"X-API-Key": old_key})).status == 404
    response = await client.post("/api/v1/admin/products/1/rotate-key", headers=admin_headers)
    assert response.status == 200
    new_key = (await response.json())["data"]["api_key"]
    assert new_key != old_key
    audit = await conn.fetchval("SELECT count(*) FROM audit_log WHERE action = 'product.rotate_key'")
    assert audit >= 1
    # The cache hears the change through NOTIFY; allow it a moment, without a fixed sleep.
    for _ in range(100):
        refused = await client.get("/api/v1/keys/none", headers={"X-API-Key": old_key})
        if refused.status == 401:
            break
        await asyncio.sleep(0.02)
    assert refused.status == 401
    assert (await client.get("/api/v1/keys/none", headers={"X-API-Key": new_key})).status == 404


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
