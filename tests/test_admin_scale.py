"""The admin with many licenses that have live sessions: every page answers, listings page through all of
them without one Redis call per license and without exceeding a small Redis pool."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from licsrv.app import create_app
from licsrv.state import PRODUCTS

from admin_helpers import login, make_admin
from factories import make_license, make_product

LICENSES = 300  # the old admin failed from about 100 licenses with live sessions


@pytest.fixture
async def product(client, conn):
    return await make_product(conn, client.app, session_timeout=60, heartbeat_interval=20)


@pytest.fixture
async def small_pools_client(aiohttp_client, settings, product):
    """A worker whose Redis pool is far smaller than the number of licenses with sessions."""
    small = dataclasses.replace(settings, redis_max_connections=4, db_pool_max=3)
    test_client = await aiohttp_client(create_app(small))
    await test_client.app[PRODUCTS].reload()
    return test_client


async def start_many(client, conn, queries, product) -> set[str]:
    headers = {"X-API-Key": product["api_key"]}
    licenses = [await make_license(conn, queries, product, max_devices=1) for _ in range(LICENSES)]

    async def start(lic):
        body = {"license_key": lic["key"], "hardware_id": f"hw-{lic['id']}", "client_version": "2.0.0"}
        response = await client.post("/api/v1/sessions/start", json=body, headers=headers)
        assert response.status == 200, await response.text()
        return (await response.json())["data"]["session_id"]

    return set(await asyncio.gather(*(start(lic) for lic in licenses)))


async def test_the_management_listing_pages_through_every_live_session_once(
    small_pools_client, conn, queries, product, admin_headers
):
    client = small_pools_client
    started = await start_many(client, conn, queries, product)
    seen: list[str] = []
    cursor = ""
    for _ in range(LICENSES):  # bounded: at most one page per session
        query = f"product_id={product['id']}&limit=50" + (f"&cursor={cursor}" if cursor else "")
        response = await client.get(f"/api/v1/admin/sessions?{query}", headers=admin_headers)
        assert response.status == 200, await response.text()
        body = await response.json()
        assert len(body["data"]) <= 50
        seen += [s["id"] for s in body["data"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) and set(seen) == started


async def test_every_admin_page_answers_with_hundreds_of_licenses_live(
    small_pools_client, conn, queries, product
):
    client = small_pools_client
    await start_many(client, conn, queries, product)
    await login(client, await make_admin(conn, queries, "viewer"))
    for path in ("/admin/", "/admin/sessions", "/admin/history", "/admin/licenses", "/admin/api/summary"):
        response = await client.get(path)
        assert response.status == 200, (path, response.status)
    page = await (await client.get("/admin/sessions")).text()
    assert "Older sessions" in page  # more live sessions than one page shows


async def test_a_session_gone_from_redis_is_closed_as_timeout_when_a_listing_meets_it(
    client, conn, queries, product, admin_headers
):
    from licsrv.live.keys import sessions_key
    from licsrv.state import REDIS

    lic = await make_license(conn, queries, product, max_devices=1)
    headers = {"X-API-Key": product["api_key"]}
    body = {"license_key": lic["key"], "hardware_id": "hw-gone", "client_version": "2.0.0"}
    session_id = (await (await client.post("/api/v1/sessions/start", json=body, headers=headers)).json())[
        "data"
    ]["session_id"]
    await client.app[REDIS].delete(sessions_key(lic["id"]))  # Redis lost it
    response = await client.get(f"/api/v1/admin/sessions?license_id={lic['id']}", headers=admin_headers)
    assert (await response.json())["data"] == []
    row = await conn.fetchrow("SELECT ended_at, end_reason FROM session_history WHERE id = $1", session_id)
    assert row["end_reason"] == "timeout" and row["ended_at"] is not None


@pytest.mark.slow
def test_every_admin_page_and_listing_answers_with_a_million_live_sessions():
    """`make bench` measures this stack's p95; here every page must simply answer, paged."""
    from bench.admin import run_measure, run_seed, run_seed_live
    from bench.servers import Stack

    from licsrv.migrate import migrate
    from licsrv.settings import Settings

    stack = Stack().start()
    try:
        settings = Settings.from_env(
            {
                "LICSRV_DATABASE_URL": stack.database_url,
                "LICSRV_REDIS_URL": stack.redis.url,
                "LICSRV_SECRET_KEY": "scale-test-secret",
            }
        )
        asyncio.run(migrate(settings.database_url, settings.sql_dir, settings.secret_key))
        run_seed(settings, 200_000, 100_000)
        made, _ = run_seed_live(settings, 1_000_000, 200_000)
        assert made == 1_000_000
        pages = run_measure(settings, 5)  # raises on any answer but 200
        assert "API: live sessions (second page)" in pages and "dashboard" in pages
    finally:
        stack.stop()
