"""What the measurements need: a configured product, licenses, live sessions, the baseline's rows; and the
measurements that are not HTTP load (Redis memory per session, card generation)."""

from __future__ import annotations

import asyncio
import base64
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson
from nacl.public import PrivateKey

from bench import BENCH_SQL
from licsrv.db import Queries, connect
from licsrv.devstack.redis import RedisServer
from licsrv.live.batcher import Batcher
from licsrv.live.client import make_redis
from licsrv.live.sessions import LiveSessions
from licsrv.migrate import migrate
from licsrv.services.audit import Actor
from licsrv.services.licenses import insert_license
from licsrv.services.products import update_product

BENCH_ACTOR = Actor(name="bench", role="owner")
DEFAULT_PRODUCT_ID = 1
HARDWARE_ID = "bench-hw"
CLIENT_VERSION = "2.0.0"
# Sessions must outlive the run: nobody heartbeats them between the measurements.
PRODUCT_SETTINGS = {
    "heartbeat_interval": 600,
    "session_timeout": 3600,
    "session_policy": "reject",
    "max_sessions": 10000,
    "minimum_version": "",
}


async def prepare_licsrv(
    database_url: str, sql_dir: Path, secret_key: str, licenses: int
) -> tuple[str, list[str]]:
    """Migrates, configures the default product for long sessions; returns its API key and license keys."""
    await migrate(database_url, sql_dir, secret_key)
    queries = Queries.load(sql_dir / "queries", BENCH_SQL)
    conn = await connect(database_url)
    try:
        product = await update_product(conn, queries, DEFAULT_PRODUCT_ID, PRODUCT_SETTINGS, BENCH_ACTOR)
        keys = []
        for _ in range(licenses):
            async with conn.transaction():
                row = await insert_license(
                    conn, queries, DEFAULT_PRODUCT_ID, {"max_devices": 1, "max_sessions": 10000}, BENCH_ACTOR
                )
            keys.append(row["key"])
        return product.api_key, keys
    finally:
        await conn.close()


async def migrate_only(database_url: str, sql_dir: Path, secret_key: str) -> None:
    await migrate(database_url, sql_dir, secret_key)


def start_body(license_key: str, client_public_key: str | None = None) -> str:
    body = {"license_key": license_key, "hardware_id": HARDWARE_ID, "client_version": CLIENT_VERSION}
    if client_public_key:
        body["client_public_key"] = client_public_key
    return orjson.dumps(body).decode()


def heartbeat_body(token: str) -> str:
    return orjson.dumps({"session_token": token}).decode()


async def start_sessions(
    base_url: str, api_key: str, license_keys: list[str], concurrency: int = 16, mac: bool = False
) -> list[str]:
    """One live session per license through the real HTTP API; returns their tokens. With `mac`, each start
    sends a client public key, as the client libraries do, so its heartbeats are answered with HMAC."""
    limit = asyncio.Semaphore(concurrency)
    headers = {"X-API-Key": api_key, "Content-Type": "application/json"}

    async with aiohttp.ClientSession(base_url, headers=headers) as http:

        async def one(key: str) -> str:
            public = base64.b64encode(bytes(PrivateKey.generate().public_key)).decode() if mac else None
            body = start_body(key, public)
            async with limit, http.post("/api/v1/sessions/start", data=body) as answer:
                body = await answer.json()
                if answer.status != 200:
                    raise RuntimeError(f"session start refused ({answer.status}): {body}")
                return body["data"]["session_token"]

        return await asyncio.gather(*(one(key) for key in license_keys))


async def prepare_rows(rows_url: str, sql_dir: Path, tokens: list[str]) -> None:
    """The baseline's table in its own database, created here and not by the app's migrations."""
    queries = Queries.load(sql_dir / "queries", BENCH_SQL)
    conn = await connect(rows_url)
    try:
        await queries.bench_create_sessions_table(conn)
        await queries.bench_insert_session(conn, [(token,) for token in tokens])
    finally:
        await conn.close()


async def _create_live_sessions(
    live: LiveSessions, count: int, first_license: int, chunk: int = 2000
) -> None:
    # Concurrent starts are pipelined by the batcher: many scripts per round trip, no HTTP.
    now = int(time.time() * 1000)
    for offset in range(0, count, chunk):
        await asyncio.gather(
            *(
                live.start(first_license + i, 1, "reject", 3600, now)
                for i in range(offset, min(offset + chunk, count))
            )
        )


async def redis_bytes_per_session(redis_url: str, counts: list[int]) -> dict[int, float]:
    """used_memory growth divided by sessions, one session per license; counts are cumulative steps."""
    redis = make_redis(redis_url, socket_timeout=30)
    live = LiveSessions(redis, Batcher(redis), id_key=b"bench")
    try:
        await redis.flushall()
        await _create_live_sessions(live, 100, first_license=10**15)  # warm up: scripts loaded
        before = int((await redis.info("memory"))["used_memory"])
        results: dict[int, float] = {}
        made = 0
        for count in sorted(counts):
            await _create_live_sessions(live, count - made, first_license=1 + made)
            made = count
            results[count] = (int((await redis.info("memory"))["used_memory"]) - before) / count
        return results
    finally:
        await redis.aclose()


def measure_redis_memory(counts: list[int]) -> dict[int, float]:
    """On a Redis of its own, so nothing else on the server counts."""
    data_dir = Path(tempfile.mkdtemp(prefix="licsrv-bench-mem-"))
    server = RedisServer(data_dir).start()
    try:
        return asyncio.run(redis_bytes_per_session(server.url, counts))
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def time_card_generation(count: int, env: dict[str, str]) -> tuple[float, str]:
    """Wall time of `licsrv cards generate -n COUNT -d 30 --out …` (includes interpreter start)."""
    with tempfile.TemporaryDirectory(prefix="licsrv-bench-cards-") as tmp:
        out = Path(tmp) / "cards.csv"
        command = [sys.executable, "-m", "licsrv.cli", "cards", "generate", "-n", str(count), "-d", "30"]
        command += ["--out", str(out)]
        started = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"cards generate failed: {(done.stderr or done.stdout).strip()[-1000:]}")
        lines = sum(1 for _ in out.open(encoding="utf-8"))
        if lines < count:
            raise RuntimeError(f"cards generate wrote {lines} lines for {count} cards")
        internal = re.search(r"in ([0-9.]+) s", done.stdout)
        return elapsed, internal.group(1) if internal else "?"
