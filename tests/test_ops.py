from __future__ import annotations

from dataclasses import replace

from licsrv.app import create_app
from licsrv.devstack.postgres import free_port


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
