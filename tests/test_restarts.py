"""PostgreSQL stopped and started, Redis killed and started, under heartbeat load (DESIGN §9 "restarts"):
afterwards settings, API-key and signing-key rotations take effect again; nothing in PostgreSQL is lost."""

from __future__ import annotations

import asyncio
import shutil
import signal
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pytest

from licsrv.app import create_app
from licsrv.db import Queries, connect
from licsrv.devstack.postgres import PostgresServer
from licsrv.devstack.redis import RedisServer
from licsrv.migrate import migrate
from licsrv.services.audit import CLI_ACTOR
from licsrv.services.signing_keys import rotate_signing_key
from licsrv.services.tokens import create_token
from licsrv.supervise import BACKGROUND_FAILURES
from live_servers import Server, send, until

from factories import make_license, make_product

pytestmark = pytest.mark.ci

SESSIONS = 8


@pytest.fixture
def own_postgres(settings):
    data_dir = Path(tempfile.mkdtemp(prefix="licsrv-restart-pg-"))
    server = PostgresServer(data_dir, durable=False).start()
    url = server.create_database("restarts")
    asyncio.run(migrate(url, settings.sql_dir, settings.secret_key))
    yield server, url
    server.stop()
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def own_redis():
    data_dir = Path(tempfile.mkdtemp(prefix="licsrv-restart-redis-"))
    server = RedisServer(data_dir).start()
    yield server
    server.stop()
    shutil.rmtree(data_dir, ignore_errors=True)


class HeartbeatLoad:
    """Clients heartbeating in a loop, each starting a new session when Redis has lost its own (as the SDK
    does); every answer is recorded with the phase of the test it came in."""

    def __init__(self, client, headers: dict, start_bodies: list[dict]) -> None:
        self.client, self.headers, self.start_bodies = client, headers, start_bodies
        self.tokens: list[str | None] = [None] * len(start_bodies)
        self.phase = "before"
        self.answers: list[tuple[str, int, str | None]] = []
        self.stopped = asyncio.Event()

    async def _post(self, path: str, body: dict) -> tuple[int, dict]:
        response = await self.client.post(path, json=body, headers=self.headers)
        return response.status, await response.json()

    async def start_session(self, n: int) -> None:
        status, body = await self._post("/api/v1/sessions/start", self.start_bodies[n])
        if status == 200:
            self.tokens[n] = body["data"]["session_token"]

    async def run(self, limit: float = 180.0) -> None:
        ends = time.monotonic() + limit
        while not self.stopped.is_set() and time.monotonic() < ends:
            for n, token in enumerate(self.tokens):
                if token is None:
                    await self.start_session(n)
                    continue
                phase = self.phase  # the phase the request was sent in
                status, body = await self._post("/api/v1/sessions/heartbeat", {"session_token": token})
                code = body["error"]["code"] if status != 200 else None
                self.answers.append((phase, status, code))
                if code in ("SESSION_EXPIRED", "SESSION_TERMINATED"):
                    self.tokens[n] = None
            await asyncio.sleep(0.02)

    def seen_all(self, phase: str) -> list[tuple[int, str | None]]:
        return [(status, code) for p, status, code in self.answers if p == phase]

    def seen(self, phase: str) -> set[tuple[int, str | None]]:
        return set(self.seen_all(phase))

    def last_ok(self) -> bool:
        recent = self.answers[-SESSIONS:]
        return len(recent) == SESSIONS and all(status == 200 for _, status, _ in recent)


async def test_settings_and_rotations_apply_after_postgres_and_redis_restarts(
    own_postgres,
    own_redis,
    aiohttp_client,
    settings,  # the servers outlive the app: it closes first
):
    pg, url = own_postgres
    queries = Queries.load(settings.sql_dir / "queries")
    # A long refresh period: only the NOTIFY listener (and its catch-up after reconnecting) can be fast.
    app = create_app(replace(settings, database_url=url, redis_url=own_redis.url, product_cache_refresh=300))
    client = await aiohttp_client(app)
    conn = await connect(url)
    try:
        product = await make_product(conn, app, heartbeat_interval=30, session_timeout=60)
        licenses = [await make_license(conn, queries, product) for _ in range(SESSIONS)]
        _, token = await create_token(conn, queries, "restarts", "owner", CLI_ACTOR)
        kept = await conn.fetch("SELECT id, key FROM licenses ORDER BY id")
    finally:
        await conn.close()
    admin = {"Authorization": f"Bearer {token}"}
    bodies = [
        {"license_key": lic["key"], "hardware_id": f"hw-{n}", "client_version": "2.0.0"}
        for n, lic in enumerate(licenses)
    ]
    load = HeartbeatLoad(client, {"X-API-Key": product["api_key"]}, bodies)
    for n in range(SESSIONS):
        await load.start_session(n)
    assert all(load.tokens)
    failures_before = BACKGROUND_FAILURES.labels("product_cache")._value.get()
    runner = asyncio.create_task(load.run())

    async def ready_status() -> tuple[int, dict]:
        response = await client.get("/ready")
        return response.status, await response.json()

    try:
        load.phase = "stopping postgres"
        await asyncio.to_thread(pg.stop)  # pg_ctl stop -m fast: a real stop, every connection closed
        load.phase = "postgres down"
        status, body = await ready_status()
        assert status == 503 and set(body["failed"]) == {"postgresql"}
        await until(
            lambda: len(load.seen_all("postgres down")) >= 3 * SESSIONS, "heartbeats while PG is down"
        )

        load.phase = "postgres back"
        await asyncio.to_thread(pg.start)  # same data directory, same port
        await until(lambda: _status_is(client, "/ready", 200), "/ready after PostgreSQL came back")

        load.phase = "killing redis"
        await asyncio.to_thread(own_redis.kill)
        load.phase = "redis down"
        await until(lambda: any(s == 503 for s, _ in load.seen("redis down")), "503 while Redis is down")
        status, body = await ready_status()
        assert status == 503 and set(body["failed"]) == {"redis"}

        load.phase = "redis back"
        await asyncio.to_thread(own_redis.start)  # same port, empty
        await until(lambda: _status_is(client, "/ready", 200), "/ready after Redis came back")
        await until(lambda: load.last_ok(), "heartbeats after Redis came back")
    finally:
        load.stopped.set()
        await runner

    assert {status for _, status, _ in load.answers} <= {200, 404, 503}  # never a 500, in any phase
    assert load.seen("postgres down") == {(200, None)}  # the heartbeat path never touches PostgreSQL
    assert load.seen("redis down") <= {(503, "SERVICE_UNAVAILABLE")}
    assert load.seen("redis back") <= {(503, "SERVICE_UNAVAILABLE"), (404, "SESSION_EXPIRED"), (200, None)}
    assert (200, None) in load.seen("redis back")
    restarts = BACKGROUND_FAILURES.labels("product_cache")._value.get() - failures_before
    assert restarts >= 1  # the listener lost its connection and was started again

    # A settings change reaches the running app.
    response = await client.patch(
        f"/api/v1/admin/products/{product['id']}", json={"minimum_version": "3.0.0"}, headers=admin
    )
    assert response.status == 200

    async def old_version_refused() -> bool:
        start = await client.post("/api/v1/sessions/start", json=bodies[0], headers=load.headers)
        return (await start.json()).get("error", {}).get("code") == "VERSION_TOO_OLD"

    await until(old_version_refused, "minimum_version after the restarts")

    # An API-key rotation reaches it.
    response = await client.post(f"/api/v1/admin/products/{product['id']}/rotate-key", headers=admin)
    assert response.status == 200
    new_key = (await response.json())["data"]["api_key"]
    assert new_key != product["api_key"]

    async def new_key_accepted() -> bool:
        response = await client.post(
            "/api/v1/sessions/heartbeat",
            json={"session_token": load.tokens[1]},
            headers={"X-API-Key": new_key},
        )
        return response.status == 200

    await until(new_key_accepted, "the rotated API key after the restarts")

    # A signing-key rotation (`licsrv keys rotate`) reaches it.
    conn = await connect(url)
    try:
        key_id = await rotate_signing_key(conn, queries, settings.secret_key)

        async def signed_with_new_key() -> bool:
            response = await client.get("/api/v1/keys")
            return f"keyid={key_id}," in response.headers.get("X-Licsrv-Signature", "")

        await until(signed_with_new_key, "the rotated signing key after the restarts")

        # Nothing in PostgreSQL was lost.
        assert await conn.fetch("SELECT id, key FROM licenses ORDER BY id") == kept
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM session_history WHERE license_id = ANY($1)",
                [lic["id"] for lic in licenses],
            )
            >= SESSIONS
        )
    finally:
        await conn.close()


async def _status_is(client, path: str, status: int) -> bool:
    return (await client.get(path)).status == status


async def test_the_periodic_refresh_also_survives_a_postgres_restart(own_postgres, aiohttp_client, settings):
    pg, url = own_postgres
    app = create_app(replace(settings, database_url=url, product_cache_refresh=0.5))
    client = await aiohttp_client(app)
    conn = await connect(url)
    try:
        product = await make_product(conn, app)
        await asyncio.to_thread(pg.stop)
        await asyncio.to_thread(pg.start)
        await conn.close()
        conn = await connect(url)
        # Changed behind the app's back: no NOTIFY, so only the periodic reload can bring it in.
        await conn.execute("UPDATE products SET api_key = 'lk_changed_quietly' WHERE id = $1", product["id"])
    finally:
        await conn.close()

    async def quiet_change_seen() -> bool:
        response = await client.post(
            "/api/v1/sessions/heartbeat",
            json={"session_token": "x" * 40},
            headers={"X-API-Key": "lk_changed_quietly"},
        )
        return (await response.json())["error"]["code"] != "INVALID_API_KEY"

    await until(quiet_change_seen, "the periodic reload after PostgreSQL came back", deadline=15)


async def test_requests_in_flight_at_shutdown_that_need_the_pool_answer_503(settings, conn, queries):
    product = dict(await queries.get_product(conn, id=1))
    locked, other = await make_license(conn, queries, product), await make_license(conn, queries, product)
    _, token = await create_token(conn, queries, "shutdown", "owner", CLI_ACTOR)
    # One pooled connection and one second of grace: the activation holds the connection, waiting on a row
    # lock that outlives the grace; the management call waits for the connection.
    server = await Server(
        settings,
        LICSRV_DB_POOL_MIN="1",
        LICSRV_DB_POOL_MAX="1",
        LICSRV_SHUTDOWN_TIMEOUT="1",
        LICSRV_POOL_WEDGE_LIMIT="0",
        LICSRV_LOG_LEVEL="INFO",
    ).start()
    try:
        async with conn.transaction():
            await conn.execute("SELECT 1 FROM licenses WHERE id = $1 FOR UPDATE", locked["id"])
            activation = await send(
                server.port,
                "POST",
                "/api/v1/licenses/activate",
                {"X-API-Key": product["api_key"]},
                {"license_key": locked["key"], "hardware_id": "hw-shutdown"},
            )
            await until(lambda: _waits_for_lock(conn), "the activation to wait on the license row lock")
            extension = await send(
                server.port,
                "POST",
                f"/api/v1/admin/licenses/{other['id']}/extend",
                {"Authorization": f"Bearer {token}"},
                {"days": 1},
            )
            await until(lambda: _pool_has_waiters(server.port), "the management call to wait for the pool")
            server.process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            answers = await asyncio.gather(activation, extension)
            assert time.monotonic() - signalled < 6  # the 1 s grace, then 503s at once (not the 10 s timeout)
        for status, headers, body in answers:  # answered, not dropped, and never 500 "pool is closing"
            assert status == 503, body
            assert body["error"]["code"] == "SERVICE_UNAVAILABLE" and int(headers["Retry-After"]) >= 1
        assert await asyncio.wait_for(server.process.wait(), 30) == 0
    finally:
        await server.stop()
    assert server.logged("database_pool_terminated")
    assert await conn.fetchval("SELECT count(*) FROM devices WHERE license_id = $1", locked["id"]) == 0
    assert (
        await conn.fetchval("SELECT expires_at FROM licenses WHERE id = $1", other["id"])
        == other["expires_at"]
    )


async def _waits_for_lock(conn) -> bool:
    return bool(await conn.fetchval("SELECT count(*) FROM pg_locks WHERE NOT granted"))


async def _pool_has_waiters(port: int) -> bool:
    status, _, body = await (await send(port, "GET", "/health", {}))
    return status == 503 and "postgresql_pool" in body["failed"]
