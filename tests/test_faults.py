"""Redis killed and restarted, PostgreSQL stopped: what clients and load balancers see."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pytest

from licsrv.app import create_app
from licsrv.devstack.postgres import PostgresServer
from licsrv.devstack.redis import RedisServer
from licsrv.migrate import migrate

from factories import make_license, make_product

pytestmark = pytest.mark.ci


@pytest.fixture
def own_redis():
    data_dir = Path(tempfile.mkdtemp(prefix="licsrv-fault-redis-"))
    server = RedisServer(data_dir).start()
    yield server
    server.stop()
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def own_postgres(settings):
    data_dir = Path(tempfile.mkdtemp(prefix="licsrv-fault-pg-"))
    server = PostgresServer(data_dir, durable=False).start()
    url = server.create_database("faults")
    asyncio.run(migrate(url, settings.sql_dir, settings.secret_key))
    yield server, url
    server.stop()
    shutil.rmtree(data_dir, ignore_errors=True)


async def start_session(client, conn, queries):
    product = await make_product(conn, client.app, session_timeout=60, heartbeat_interval=30)
    headers = {"X-API-Key": product["api_key"]}
    lic = await make_license(conn, queries, product)
    body = {"license_key": lic["key"], "hardware_id": "hw", "client_version": "2.0.0"}
    response = await client.post("/api/v1/sessions/start", json=body, headers=headers)
    assert response.status == 200
    return headers, (await response.json())["data"]["session_token"], body


async def heartbeat(client, headers, token):
    started = time.monotonic()
    response = await client.post("/api/v1/sessions/heartbeat", json={"session_token": token}, headers=headers)
    return response, time.monotonic() - started


async def test_redis_killed_then_restarted(aiohttp_client, settings, own_redis, conn, queries):
    client = await aiohttp_client(create_app(replace(settings, redis_url=own_redis.url)))
    headers, token, start_body = await start_session(client, conn, queries)
    history_before = await conn.fetchval("SELECT count(*) FROM session_history")

    own_redis.stop()
    response, took = await heartbeat(client, headers, token)
    assert response.status == 503 and took < 2.0
    assert (await response.json())["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert int(response.headers["Retry-After"]) >= 1
    response = await client.post("/api/v1/sessions/start", json=start_body, headers=headers)
    assert response.status == 503
    ready = await client.get("/ready")
    assert ready.status == 503 and "redis" in (await ready.json())["failed"]

    own_redis.start()  # same port, empty: the live state is gone
    response, _ = await heartbeat(client, headers, token)
    assert (await response.json())["error"]["code"] == "SESSION_EXPIRED"
    response = await client.post("/api/v1/sessions/start", json=start_body, headers=headers)
    assert response.status == 200
    assert (await client.get("/ready")).status == 200
    assert await conn.fetchval("SELECT count(*) FROM session_history") == history_before + 1


async def test_heartbeats_go_on_while_postgres_is_down(aiohttp_client, settings, own_postgres):
    server, url = own_postgres
    from licsrv.db import Queries, connect

    client = await aiohttp_client(create_app(replace(settings, database_url=url)))
    conn = await connect(url)
    try:
        headers, token, _ = await start_session(client, conn, Queries.load(settings.sql_dir / "queries"))
    finally:
        await conn.close()

    server.stop()
    for _ in range(5):
        response, _ = await heartbeat(client, headers, token)
        assert response.status == 200
    ready = await client.get("/ready")
    assert ready.status == 503 and set((await ready.json())["failed"]) == {"postgresql"}

    server.start()
    for _ in range(50):
        if (await client.get("/ready")).status == 200:
            break
        await asyncio.sleep(0.1)
    assert (await client.get("/ready")).status == 200
    response, _ = await heartbeat(client, headers, token)
    assert response.status == 200


def _postgres_processes(postmaster: int) -> list[int]:
    """The postmaster and its backends (children), from /proc."""
    found = [postmaster]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == postmaster:
                    found.append(int(entry.name))
    return found


async def test_a_frozen_postgres_answers_starts_503_within_the_command_timeout(
    aiohttp_client, settings, own_postgres, own_redis
):
    server, url = own_postgres
    from licsrv.db import Queries, connect

    # A Redis of its own too: this database's license ids start at 1 again.
    frozen_settings = replace(settings, database_url=url, redis_url=own_redis.url, db_command_timeout=1.0)
    client = await aiohttp_client(create_app(frozen_settings))
    conn = await connect(url)
    try:
        headers, _, start_body = await start_session(client, conn, Queries.load(settings.sql_dir / "queries"))
    finally:
        await conn.close()
    frozen = _postgres_processes(server.pid)
    for pid in frozen:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGSTOP)
    try:
        response = await asyncio.wait_for(
            client.post("/api/v1/sessions/start", json=start_body, headers=headers), timeout=8
        )
    finally:
        # Backends first, the postmaster last: a backend that was already exiting when it was frozen (the
        # connection closed just above) is reaped by the postmaster as soon as that runs again, and must
        # not stop the others from being resumed.
        for pid in reversed(frozen):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
    assert response.status == 503
    assert (await response.json())["error"]["code"] == "SERVICE_UNAVAILABLE"
