"""Enforcement under concurrency: a suspend or revoke racing many starts leaves nothing running, admin
actions on many licenses at once never wedge a worker, and a refused start writes nothing."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses

import pytest

from licsrv.app import create_app
from licsrv.live.keys import block_key, sessions_key
from licsrv.state import DB, PRODUCTS, REDIS

from factories import make_license, make_product

ROUNDS = 10
STARTS = 100


@pytest.fixture
async def product(client, conn):
    return await make_product(conn, client.app, max_sessions=1, session_timeout=30, heartbeat_interval=10)


@pytest.fixture
def headers(product):
    return {"X-API-Key": product["api_key"]}


async def start(client, headers, license_key, hardware_id="hw-1", **extra):
    body = {"license_key": license_key, "hardware_id": hardware_id, "client_version": "2.0.0", **extra}
    response = await client.post("/api/v1/sessions/start", json=body, headers=headers)
    return response.status, await response.json()


async def beat(client, headers, token):
    response = await client.post("/api/v1/sessions/heartbeat", json={"session_token": token}, headers=headers)
    return response.status, await response.json()


async def race_starts_against(client, headers, admin_headers, lic, action: str) -> tuple[list, float]:
    """STARTS starts on one license, and the admin action sent while they are in flight."""
    starts = [asyncio.create_task(start(client, headers, lic["key"])) for _ in range(STARTS)]
    await asyncio.sleep(0.005)  # not a TTL: lets a share of the starts get ahead of the action
    response = await client.post(f"/api/v1/admin/licenses/{lic['id']}/{action}", headers=admin_headers)
    assert response.status == 200, await response.text()
    answered_at = asyncio.get_running_loop().time()
    return await asyncio.gather(*starts), answered_at


@pytest.mark.parametrize("action, code", [("suspend", "LICENSE_SUSPENDED"), ("revoke", "LICENSE_REVOKED")])
async def test_a_block_racing_a_hundred_starts_leaves_no_session_alive(
    client, conn, queries, headers, product, admin_headers, action, code
):
    redis = client.app[REDIS]
    survivors = started_total = 0
    for _ in range(ROUNDS):
        lic = await make_license(conn, queries, product, max_devices=1, max_sessions=200)
        results, _ = await race_starts_against(client, headers, admin_headers, lic, action)
        tokens = [body["data"]["session_token"] for status, body in results if status == 200]
        refused = {body["error"]["code"] for status, body in results if status != 200}
        assert refused <= {code}, refused
        started_total += len(tokens)
        beats = await asyncio.gather(*(beat(client, headers, token) for token in tokens))
        survivors += sum(1 for status, _ in beats if status == 200)
        assert {body["error"]["code"] for status, body in beats if status != 200} <= {code}
        # Nothing of the license is left in Redis but its block marker, and no start gets through.
        assert await redis.zcard(sessions_key(lic["id"])) == 0
        assert (await redis.get(block_key(lic["id"]))) == action.replace("suspend", "suspended").replace(
            "revoke", "revoked"
        ).encode()
        status, body = await start(client, headers, lic["key"])
        assert (status, body["error"]["code"]) == (403, code)
    assert survivors == 0, f"{survivors} of {started_total} started sessions still heartbeat"


async def test_resume_lifts_the_block(client, conn, queries, headers, product, admin_headers):
    lic = await make_license(conn, queries, product, max_devices=1)
    await client.post(f"/api/v1/admin/licenses/{lic['id']}/suspend", headers=admin_headers)
    status, body = await start(client, headers, lic["key"])
    assert (status, body["error"]["code"]) == (403, "LICENSE_SUSPENDED")
    response = await client.post(f"/api/v1/admin/licenses/{lic['id']}/resume", headers=admin_headers)
    assert response.status == 200
    assert await client.app[REDIS].exists(block_key(lic["id"])) == 0
    status, body = await start(client, headers, lic["key"])
    assert status == 200, body


async def test_sessions_ended_by_a_suspension_are_recorded_as_suspended(
    client, conn, queries, headers, product, admin_headers
):
    lic = await make_license(conn, queries, product, max_devices=1, max_sessions=3)
    started = [await start(client, headers, lic["key"]) for _ in range(3)]
    await client.post(f"/api/v1/admin/licenses/{lic['id']}/suspend", headers=admin_headers)
    reasons = await conn.fetch("SELECT end_reason FROM session_history WHERE license_id = $1", lic["id"])
    assert [r["end_reason"] for r in reasons] == ["suspended"] * 3
    assert all(status == 200 for status, _ in started)


@pytest.fixture
async def tight_client(aiohttp_client, settings, product):
    """A worker with a small pool and short waits, as a busy production worker would have."""
    tight = dataclasses.replace(
        settings, db_pool_min=1, db_pool_max=3, db_acquire_timeout=1.0, db_lock_timeout=1.0
    )
    tight_client = await aiohttp_client(create_app(tight))
    await tight_client.app[PRODUCTS].reload()
    return tight_client


async def licenses_with_live_sessions(client, conn, queries, product, headers, count):
    made = []
    for n in range(count):
        lic = await make_license(conn, queries, product, max_devices=1)
        status, body = await start(client, headers, lic["key"], hardware_id=f"hw-{n}")
        assert status == 200, body
        made.append((lic, f"hw-{n}", body["data"]["session_token"]))
    return made


async def test_twenty_concurrent_suspends_all_answer_and_the_worker_stays_ready(
    tight_client, conn, queries, product, headers, admin_headers
):
    client = tight_client
    made = await licenses_with_live_sessions(client, conn, queries, product, headers, 20)
    calls = [
        client.post(f"/api/v1/admin/licenses/{lic['id']}/suspend", headers=admin_headers)
        for lic, _, _ in made
    ]
    responses = await asyncio.wait_for(asyncio.gather(*calls), timeout=15)
    assert [r.status for r in responses] == [200] * 20
    beats = await asyncio.gather(*(beat(client, headers, token) for _, _, token in made))
    assert {status for status, _ in beats} == {403}
    assert (await client.get("/ready")).status == 200
    idle = await conn.fetchval(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE state = 'idle in transaction' AND datname = current_database()"
    )
    assert idle == 0


async def test_twenty_concurrent_deactivations_all_answer_and_end_their_sessions(
    tight_client, conn, queries, product, headers
):
    client = tight_client
    made = await licenses_with_live_sessions(client, conn, queries, product, headers, 20)
    calls = [
        client.post(
            "/api/v1/licenses/deactivate",
            json={"license_key": lic["key"], "hardware_id": hw},
            headers=headers,
        )
        for lic, hw, _ in made
    ]
    responses = await asyncio.wait_for(asyncio.gather(*calls), timeout=15)
    assert [r.status for r in responses] == [200] * 20
    beats = await asyncio.gather(*(beat(client, headers, token) for _, _, token in made))
    assert {body["error"]["code"] for _, body in beats} == {"SESSION_TERMINATED"}
    assert (await client.get("/ready")).status == 200


async def test_an_exhausted_pool_answers_503_instead_of_hanging(
    tight_client, conn, queries, product, headers, admin_headers
):
    client = tight_client
    lic = await make_license(conn, queries, product, max_devices=1)
    pool = client.app[DB].pool
    held = []
    with contextlib.suppress(TimeoutError):
        while len(held) < 10:  # every connection the pool will give (the NOTIFY listener may hold one)
            held.append(await pool.acquire(timeout=0.5))
    assert held
    try:
        response = await asyncio.wait_for(
            client.post(f"/api/v1/admin/licenses/{lic['id']}/suspend", headers=admin_headers), timeout=10
        )
        assert response.status == 503
        assert (await response.json())["error"]["code"] == "SERVICE_UNAVAILABLE"
        assert response.headers["Retry-After"]
    finally:
        for connection in held:
            await pool.release(connection)
    status = (await client.post(f"/api/v1/admin/licenses/{lic['id']}/suspend", headers=admin_headers)).status
    assert status == 200


async def test_a_row_lock_held_elsewhere_is_cut_by_lock_timeout(
    tight_client, conn, queries, product, admin_headers
):
    client = tight_client
    lic = await make_license(conn, queries, product, max_devices=1)
    async with conn.transaction():
        await conn.execute("SELECT 1 FROM licenses WHERE id = $1 FOR UPDATE", lic["id"])
        response = await asyncio.wait_for(
            client.post(f"/api/v1/admin/licenses/{lic['id']}/suspend", headers=admin_headers), timeout=10
        )
        assert response.status == 503
    assert await conn.fetchval("SELECT status FROM licenses WHERE id = $1", lic["id"]) == "active"
    # The refused suspension left no block behind: starts still work.
    assert await client.app[REDIS].exists(block_key(lic["id"])) == 0


async def test_a_start_refused_for_the_session_limit_takes_no_device_slot(
    client, conn, queries, product, headers
):
    lic = await make_license(conn, queries, product, max_devices=2, max_sessions=1)
    status, _ = await start(client, headers, lic["key"], hardware_id="hw-first")
    assert status == 200
    status, body = await start(client, headers, lic["key"], hardware_id="hw-second")
    assert (status, body["error"]["code"]) == (409, "SESSION_LIMIT_REACHED")
    devices = await conn.fetch("SELECT hardware_id FROM devices WHERE license_id = $1", lic["id"])
    assert [d["hardware_id"] for d in devices] == ["hw-first"]
    assert await conn.fetchval("SELECT count(*) FROM session_history WHERE license_id = $1", lic["id"]) == 1


async def test_legacy_start_refused_for_the_session_limit_takes_no_device_slot(
    client, conn, queries, product, headers
):
    lic = await make_license(conn, queries, product, max_devices=2, max_sessions=1)
    body = {"license_key": lic["key"], "machine_id": "PC", "version": "2.0.0"}
    first = await client.post(
        "/api/license/session/start", json={**body, "hardware_hash": "a" * 16}, headers=headers
    )
    assert first.status == 200
    second = await client.post(
        "/api/license/session/start", json={**body, "hardware_hash": "b" * 16}, headers=headers
    )
    assert second.status == 409
    assert await conn.fetchval("SELECT count(*) FROM devices WHERE license_id = $1", lic["id"]) == 1


async def test_a_low_order_client_key_is_refused_before_anything_is_written(
    client, conn, queries, product, headers
):
    lic = await make_license(conn, queries, product, max_devices=1)
    low_order = base64.b64encode(bytes(32)).decode()
    status, body = await start(client, headers, lic["key"], client_public_key=low_order)
    assert (status, body["error"]["code"]) == (400, "VALIDATION_ERROR")
    assert await conn.fetchval("SELECT count(*) FROM devices WHERE license_id = $1", lic["id"]) == 0
    assert await conn.fetchval("SELECT count(*) FROM session_history WHERE license_id = $1", lic["id"]) == 0
    assert await client.app[REDIS].zcard(sessions_key(lic["id"])) == 0


@pytest.mark.parametrize("failure", ["OOM", "READONLY"])
async def test_a_redis_that_refuses_writes_answers_503_on_start(
    client, conn, queries, product, headers, failure
):
    redis = client.app[REDIS]
    lic = await make_license(conn, queries, product, max_devices=1)
    status, _ = await start(client, headers, lic["key"])  # the device is known, the script loaded
    assert status == 200
    lic = await make_license(conn, queries, product, max_devices=1, max_sessions=5)
    policy = await redis.config_get("maxmemory*")
    if failure == "OOM":
        await redis.config_set("maxmemory-policy", "noeviction")
        await redis.config_set("maxmemory", "1")
    else:
        await redis.execute_command("REPLICAOF", "127.0.0.1", "1")  # a replica: writes refused with READONLY
    try:
        status, body = await start(client, headers, lic["key"])
    finally:
        if failure == "OOM":
            await redis.config_set("maxmemory", policy["maxmemory"])
            await redis.config_set("maxmemory-policy", policy["maxmemory-policy"])
        else:
            await redis.execute_command("REPLICAOF", "NO", "ONE")
    assert (status, body["error"]["code"]) == (503, "SERVICE_UNAVAILABLE"), body
    assert await conn.fetchval("SELECT count(*) FROM session_history WHERE license_id = $1", lic["id"]) == 0
    assert await conn.fetchval("SELECT count(*) FROM devices WHERE license_id = $1", lic["id"]) == 0


async def test_a_device_removal_racing_starts_leaves_no_session_without_its_device(
    client, conn, queries, headers, product, admin_headers
):
    """Every session still running once the removal has answered belongs to a device that exists: a start
    that loses the race either ends before the removal looks, or re-activates the device it runs on."""
    redis = client.app[REDIS]
    orphans = 0
    for round_ in range(ROUNDS):
        lic = await make_license(conn, queries, product, max_devices=5, max_sessions=200)
        status, _ = await start(client, headers, lic["key"])  # activates hw-1
        assert status == 200
        device_id = await conn.fetchval("SELECT id FROM devices WHERE license_id = $1", lic["id"])
        removal = asyncio.create_task(
            client.delete(f"/api/v1/admin/licenses/{lic['id']}/devices/{device_id}", headers=admin_headers)
        )
        starts = []
        for _ in range(STARTS // 2):  # starts sent before, during and after the removal is at work
            starts.append(asyncio.create_task(start(client, headers, lic["key"])))
            await asyncio.sleep(0.0002 * (round_ % 5))  # not a TTL: spreads the starts over the removal
        response = await removal
        assert response.status == 200, await response.text()
        await asyncio.gather(*starts)
        open_rows = await conn.fetch(
            "SELECT h.id, d.id AS device_id FROM session_history h LEFT JOIN devices d "
            "ON d.license_id = h.license_id AND d.hardware_id = h.hardware_id "
            "WHERE h.license_id = $1 AND h.ended_at IS NULL",
            lic["id"],
        )
        orphans += sum(1 for row in open_rows if row["device_id"] is None)
        assert await redis.zcard(sessions_key(lic["id"])) == len(open_rows)
    assert orphans == 0, f"{orphans} sessions run on a removed device"


async def test_a_start_whose_device_is_removed_under_it_runs_on_a_re_activated_device(
    client, conn, queries, settings, headers, product
):
    """The narrow interleaving, made certain: the start has found its device known when the removal deletes
    the device (and, finding no session yet, ends none) and commits; the start must not record a session on
    the device that is gone. Here the removal holds its row lock until the start is waiting on it."""
    from licsrv.db import connect

    lic = await make_license(conn, queries, product, max_devices=5, max_sessions=10)
    status, _ = await start(client, headers, lic["key"])
    assert status == 200
    remover = await connect(settings.database_url)
    try:
        removal = remover.transaction()
        await removal.start()
        await remover.execute("DELETE FROM devices WHERE license_id = $1", lic["id"])
        racing = asyncio.create_task(start(client, headers, lic["key"]))
        for _ in range(200):  # until the start waits on the deleted row's lock (not a TTL)
            waiting = await conn.fetchval(
                "SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = 'transactionid'"
            )
            if waiting:
                break
            await asyncio.sleep(0.01)
        assert waiting, "the start never reached the device row"
        await removal.commit()
        status, body = await racing
    finally:
        await remover.close()
    assert status == 200, body
    device = await conn.fetchval(
        "SELECT d.id FROM session_history h JOIN devices d "
        "ON d.license_id = h.license_id AND d.hardware_id = h.hardware_id WHERE h.id = $1",
        body["data"]["session_id"],
    )
    assert device is not None, "the racing start runs on a device that no longer exists"
    status, _ = await beat(client, headers, body["data"]["session_token"])
    assert status == 200
