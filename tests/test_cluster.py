"""The session engine once more, against a real three-master Redis Cluster on loopback ports."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest

from licsrv.app import create_app
from licsrv.devstack.redis import RedisCluster
from licsrv.live.keys import sessions_key

from factories import make_license, make_product

pytestmark = pytest.mark.ci


@pytest.fixture(scope="module")
def cluster():
    base = Path(tempfile.mkdtemp(prefix="licsrv-cluster-"))
    with RedisCluster(base) as running:
        yield running
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
async def client(aiohttp_client, settings, cluster):
    return await aiohttp_client(create_app(replace(settings, redis_url=cluster.url)))


async def call(client, path, headers, body):
    response = await client.post(f"/api/v1/sessions/{path}", json=body, headers=headers)
    return response.status, await response.json()


async def test_sessions_on_a_cluster_spread_over_every_master(client, conn, queries):
    from licsrv.state import REDIS

    product = await make_product(conn, client.app, max_sessions=1)
    headers = {"X-API-Key": product["api_key"]}
    licenses = [await make_license(conn, queries, product) for _ in range(12)]
    tokens = []
    for lic in licenses:
        status, body = await call(
            client, "start", headers, {"license_key": lic["key"], "hardware_id": "h", "client_version": "2.0"}
        )
        assert status == 200, body
        tokens.append(body["data"]["session_token"])
        status, body = await call(
            client, "start", headers, {"license_key": lic["key"], "hardware_id": "h", "client_version": "2.0"}
        )
        assert body["error"]["code"] == "SESSION_LIMIT_REACHED"
    redis = client.app[REDIS]
    slots = {redis.keyslot(sessions_key(lic["id"])) for lic in licenses}
    nodes = {redis.nodes_manager.get_node_from_slot(slot).port for slot in slots}
    assert len(nodes) == 3, "the licenses should land on every master"
    for token in tokens:
        assert (await call(client, "heartbeat", headers, {"session_token": token}))[0] == 200
    assert (await call(client, "end", headers, {"session_token": tokens[0]}))[0] == 200
    status, body = await call(client, "heartbeat", headers, {"session_token": tokens[0]})
    assert body["error"]["code"] == "SESSION_EXPIRED"


async def test_replace_and_terminate_on_a_cluster(client, conn, queries, admin_headers):
    product = await make_product(conn, client.app, session_policy="replace")
    headers = {"X-API-Key": product["api_key"]}
    lic = await make_license(conn, queries, product, max_devices=2)
    start = {"license_key": lic["key"], "hardware_id": "a", "client_version": "2.0"}
    _, first = await call(client, "start", headers, start)
    _, second = await call(client, "start", headers, {**start, "hardware_id": "b"})
    status, body = await call(client, "heartbeat", headers, {"session_token": first["data"]["session_token"]})
    assert body["error"]["code"] == "SESSION_TERMINATED"
    response = await client.get(f"/api/v1/admin/sessions?license_id={lic['id']}", headers=admin_headers)
    assert [s["id"] for s in (await response.json())["data"]] == [second["data"]["session_id"]]
    response = await client.delete(
        f"/api/v1/admin/sessions/{second['data']['session_id']}", headers=admin_headers
    )
    assert response.status == 200
    status, body = await call(
        client, "heartbeat", headers, {"session_token": second["data"]["session_token"]}
    )
    assert (status, body["error"]["code"]) == (410, "SESSION_TERMINATED")
    assert (await client.get("/ready")).status == 200


async def test_rate_limits_count_on_the_cluster(client, conn, queries):
    from licsrv.state import PRODUCTS

    product = await make_product(conn, client.app)
    await conn.execute(
        "UPDATE products SET rate_limits = $2 WHERE id = $1", product["id"], {"validate": "2/minute"}
    )
    await client.app[PRODUCTS].reload()
    lic = await make_license(conn, queries, product)
    body = {"license_key": lic["key"], "hardware_id": "h"}
    headers = {"X-API-Key": product["api_key"]}
    statuses = []
    for _ in range(3):
        statuses.append((await client.post("/api/v1/licenses/validate", json=body, headers=headers)).status)
    assert statuses == [403, 403, 429]


async def test_login_lockout_and_unlock_on_a_cluster(client, conn, queries):
    from licsrv.services.admins import unlock_admin
    from licsrv.services.audit import CLI_ACTOR
    from licsrv.state import REDIS

    from admin_helpers import PASSWORD, login, make_admin

    username = await make_admin(conn, queries)
    statuses = [(await login(client, username, "wrong password")).status for _ in range(6)]
    assert statuses == [401] * 5 + [429]
    assert (await login(client, username)).status == 429
    await unlock_admin(conn, queries, client.app[REDIS], username, CLI_ACTOR)
    assert (await login(client, username, PASSWORD)).status == 303
