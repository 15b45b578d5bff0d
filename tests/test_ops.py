from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import replace

from licsrv.app import create_app
from licsrv.devstack.postgres import free_port
from licsrv.state import DB


async def test_health_answers_without_io(client):
    response = await client.get("/health")
    assert response.status == 200
    assert (await response.json()) == {"status": "ok"}


async def test_ready_when_postgres_and_redis_answer(client):
    response = await client.get("/ready")
    assert response.status == 200
    assert (await response.json())["status"] == "ready"


async def test_ready_names_redis_when_it_is_down(aiohttp_client, settings):
    dead_redis = replace(settings, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    client = await aiohttp_client(create_app(dead_redis))
    response = await client.get("/ready")
    assert response.status == 503
    body = await response.json()
    assert set(body["failed"]) == {"redis"}


async def test_metrics_count_requests_by_route(client):
    await client.get("/health")
    response = await client.get("/metrics")
    assert response.status == 200
    text = await response.text()
    assert 'licsrv_http_requests_total{method="GET",route="/health",status="200"}' in text
    assert "licsrv_http_request_duration_seconds_bucket" in text


async def test_index_page_is_rendered_from_templates(client):
    response = await client.get("/")
    assert response.status == 200
    assert "licsrv" in await response.text()


async def test_request_id_is_echoed_or_made(client):
    response = await client.get("/health", headers={"X-Request-Id": "abc-123"})
    assert response.headers["X-Request-Id"] == "abc-123"
    response = await client.get("/health", headers={"X-Request-Id": "bad id with spaces"})
    assert response.headers["X-Request-Id"] != "bad id with spaces"
    assert len(response.headers["X-Request-Id"]) == 16


async def wait_for_health(client, status: int, deadline: float = 10.0) -> dict:
    ends = time.monotonic() + deadline
    while True:
        response = await client.get("/health")
        if response.status == status:
            return await response.json()
        assert time.monotonic() < ends, f"/health did not answer {status} within {deadline} s"
        await asyncio.sleep(0.05)


async def test_health_is_unhealthy_after_the_event_loop_was_blocked(aiohttp_client, settings):
    client = await aiohttp_client(create_app(replace(settings, loop_block_limit=0.5)))
    await wait_for_health(client, 200)
    time.sleep(1.5)  # noqa: ASYNC251 -- a worker blocked by synchronous work: this test shares the server's event loop
    body = await wait_for_health(client, 503, deadline=0.5)
    assert body["status"] == "unhealthy" and set(body["failed"]) == {"event_loop"}
    assert "limit 0.5 s" in body["failed"]["event_loop"]
    await wait_for_health(client, 200)  # reported for three limits' time, then healthy again


async def test_health_is_unhealthy_while_the_pool_has_no_free_connection(aiohttp_client, settings):
    client = await aiohttp_client(create_app(replace(settings, pool_wedge_limit=1.0)))
    pool = client.app[DB].pool
    held = []
    with contextlib.suppress(TimeoutError):
        while len(held) < pool.get_max_size():
            held.append(await pool.acquire(timeout=0.2))
    bogus = {"Authorization": "Bearer lst_unknown"}  # checking it needs a connection
    waiting = asyncio.create_task(client.get("/api/v1/admin/products", headers=bogus))
    try:
        assert (await client.get("/health")).status == 200  # exhausted, but not yet for the limit
        body = await wait_for_health(client, 503)
        assert set(body["failed"]) == {"postgresql_pool"}
    finally:
        for conn in held:
            await pool.release(conn)
    assert (await waiting).status == 401  # it got its connection and answered
    await wait_for_health(client, 200)
