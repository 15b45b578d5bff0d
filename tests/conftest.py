"""Real PostgreSQL and Redis for the whole run: throwaway servers, or the LICSRV_TEST_* URLs when set."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from aiohttp import web

from licsrv import fastpath
from licsrv.app import create_app
from licsrv.db import Queries, connect
from licsrv.devstack.postgres import PostgresServer
from licsrv.devstack.redis import RedisServer
from licsrv.migrate import migrate
from licsrv.services.audit import CLI_ACTOR
from licsrv.services.tokens import create_token
from licsrv.settings import Settings

TEST_SECRET_KEY = "test-secret-key-not-for-production"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    external = os.environ.get("LICSRV_TEST_DATABASE_URL")
    name = f"licsrv_test_{secrets.token_hex(4)}"
    if external:
        yield asyncio.run(_create_database(external, name))
        return
    data_dir = Path(tempfile.mkdtemp(prefix="licsrv-test-pg-"))
    server = PostgresServer(data_dir, durable=False).start()
    try:
        yield server.create_database(name)
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


async def _create_database(url: str, name: str) -> str:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    external = os.environ.get("LICSRV_TEST_REDIS_URL")
    if external:
        yield external
        return
    data_dir = Path(tempfile.mkdtemp(prefix="licsrv-test-redis-"))
    server = RedisServer(data_dir).start()
    try:
        yield server.url
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def settings(postgres_url: str, redis_url: str) -> Settings:
    """Migrated once per run; every test builds its app from these."""
    base = Settings()
    test_settings = Settings(
        database_url=postgres_url,
        redis_url=redis_url,
        secret_key=TEST_SECRET_KEY,
        access_log=False,
        db_pool_min=1,
        db_pool_max=5,
        sql_dir=base.sql_dir,
        templates_dir=base.templates_dir,
    )
    asyncio.run(migrate(postgres_url, test_settings.sql_dir, TEST_SECRET_KEY))
    return test_settings


@pytest.fixture
def queries(settings: Settings) -> Queries:
    return Queries.load(settings.sql_dir / "queries")


@pytest.fixture
async def conn(settings: Settings):
    connection = await connect(settings.database_url)
    yield connection
    await connection.close()


@pytest.fixture
def app(settings: Settings):
    return create_app(settings)


@pytest.fixture
def aiohttp_client(aiohttp_client):
    """pytest-aiohttp's client, with the heartbeat fast path in front of the app, as `licsrv serve` has."""

    async def make(app, **kwargs):
        test_client = await aiohttp_client(app, **kwargs)
        if isinstance(app, web.Application):
            fastpath.install(test_client.server.runner.server, app)
        return test_client

    return make


@pytest.fixture
async def client(aiohttp_client, app):
    return await aiohttp_client(app)


@pytest.fixture
async def default_product(conn, queries):
    return await queries.get_product(conn, id=1)


@pytest.fixture
async def api_headers(default_product) -> dict[str, str]:
    return {"X-API-Key": default_product["api_key"]}


@pytest.fixture
async def owner_token(conn, queries) -> str:
    _, token = await create_token(conn, queries, f"test-{secrets.token_hex(3)}", "owner", CLI_ACTOR)
    return token


@pytest.fixture
async def admin_headers(owner_token) -> dict[str, str]:
    return {"Authorization": f"Bearer {owner_token}"}
