"""`python -m bench seed` and `python -m bench admin`: large data, then the p95 of admin pages measured over
real HTTP."""

from __future__ import annotations

import asyncio
import secrets
import statistics
import time
from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import quote

import aiohttp
from aiohttp import web

from bench import BENCH_SQL
from licsrv.app import create_app
from licsrv.db import Queries, connect
from licsrv.devstack.postgres import free_port
from licsrv.live.batcher import Batcher
from licsrv.live.client import make_redis
from licsrv.live.sessions import LiveSessions
from licsrv.services.admins import create_admin
from licsrv.services.audit import CLI_ACTOR
from licsrv.services.tokens import create_token
from licsrv.settings import Settings

DEFAULT_PRODUCT_ID = 1
SEED_HISTORY_COLUMNS = (
    "id",
    "license_id",
    "hardware_id",
    "ip",
    "client_version",
    "started_at",
    "last_heartbeat_at",
)

PAGES = {
    "dashboard": "/admin/",
    "licenses (first page)": "/admin/licenses",
    "licenses (search 'Müller 12')": "/admin/licenses?q=M%C3%BCller%2012",
    "license detail": "/admin/licenses/{license_id}",
    "history (last 24 h)": "/admin/history",
    "history (one license, 30 days)": "/admin/history?license_id={license_id}&since={month_ago}",
    "history (a pasted license key)": "/admin/history?license={license_key}",
    "live sessions": "/admin/sessions",
    "card keys": "/admin/cards",
    "products": "/admin/products",
    "plans": "/admin/plans",
    "product settings": "/admin/products/1",
    "tokens": "/admin/tokens",
    "admins": "/admin/admins",
    "audit log": "/admin/audit",
    "security events": "/admin/security",
}
# The management API's listings, with a bearer token; `{sessions_cursor}` is the live listing's second page.
API_PAGES = {
    "API: live sessions (first page)": "/api/v1/admin/sessions",
    "API: live sessions (second page)": "/api/v1/admin/sessions?cursor={sessions_cursor}",
    "API: live sessions (one license)": "/api/v1/admin/sessions?license_id={license_id}",
    "API: licenses (first page)": "/api/v1/admin/licenses",
    "API: plans": "/api/v1/admin/plans",
    "API: history (last 24 h)": "/api/v1/admin/history",
}


async def seed(settings: Settings, licenses: int, history: int) -> tuple[int, int, float]:
    started = time.perf_counter()
    conn = await connect(settings.database_url)
    try:
        queries = Queries.load(settings.sql_dir / "queries", BENCH_SQL)
        prefix = secrets.token_hex(2).upper().replace("0", "A").replace("1", "B")
        made = await queries.seed_licenses(conn, count=licenses, product_id=1, prefix="S" + prefix[:4])
        rows = await queries.seed_history(conn, count=history, prefix=f"seed{prefix}-")
        await queries.analyze_seeded(conn)
    finally:
        await conn.close()
    return made, rows, time.perf_counter() - started


SEED_SESSION_TIMEOUT_S = 3600  # the seeded sessions outlive the measurement without heartbeats
SEED_CHUNK = 5000


async def seed_live_sessions(settings: Settings, sessions: int, licenses: int) -> tuple[int, float]:
    """`sessions` live sessions spread evenly over the first `licenses` seeded licenses: Redis keys made
    through the live layer (as starts make them) and their open history rows, as a busy vendor has."""
    started = time.perf_counter()
    conn = await connect(settings.database_url)
    redis = make_redis(settings.redis_url, socket_timeout=30)
    live = LiveSessions(redis, Batcher(redis), id_key=settings.secret_key.encode())
    try:
        queries = Queries.load(settings.sql_dir / "queries", BENCH_SQL)
        license_ids = [row["id"] for row in await queries.seeded_license_ids(conn, row_limit=licenses)]
        if not license_ids:
            raise RuntimeError("no seeded licenses: run `python -m bench seed --licenses N` first")
        owners = [license_ids[n % len(license_ids)] for n in range(sessions)]
        now = datetime.now(UTC)
        now_ms = int(now.timestamp() * 1000)
        per_license = -(-sessions // len(license_ids))
        for offset in range(0, sessions, SEED_CHUNK):
            chunk = owners[offset : offset + SEED_CHUNK]
            # Each chunk starts a second apart, as real starts spread over time (ids begin with the second).
            started_ms = now_ms - (sessions - offset) // SEED_CHUNK * 1000
            made = await asyncio.gather(
                *(
                    live.start(
                        lid, per_license, "reject", SEED_SESSION_TIMEOUT_S, started_ms, DEFAULT_PRODUCT_ID
                    )
                    for lid in chunk
                )
            )
            await conn.copy_records_to_table(
                "session_history",
                records=[
                    (result.session_id, lid, f"hw-{lid}-{n % per_license}", "10.0.0.2", "2.0.0", now, now)
                    for n, (lid, result) in enumerate(zip(chunk, made, strict=True), start=offset)
                ],
                columns=SEED_HISTORY_COLUMNS,
            )
        await queries.analyze_seeded(conn)
    finally:
        await conn.close()
        await redis.aclose()
    return sessions, time.perf_counter() - started


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[-1] if len(samples) >= 20 else max(samples)


async def _sample(
    http: aiohttp.ClientSession, url: str, count: int, headers: dict | None = None
) -> list[float]:
    samples = []
    for _ in range(count):
        begun = time.perf_counter()
        async with http.get(url, headers=headers) as response:
            await response.read()
            if response.status != 200 or response.url.path == "/admin/login":
                raise RuntimeError(f"{url} answered {response.status} at {response.url.path}")
        samples.append((time.perf_counter() - begun) * 1000)
    return samples


async def measure(settings: Settings, requests_per_page: int) -> dict[str, tuple[float, float]]:
    """{page: (p50 ms, p95 ms)} of the admin pages and the management API listings, against an
    in-process server on a loopback port."""
    conn = await connect(settings.database_url)
    username, password = f"bench-{secrets.token_hex(3)}", secrets.token_urlsafe(16)
    try:
        queries = Queries.load(settings.sql_dir / "queries", BENCH_SQL)
        await create_admin(conn, queries, username, password, "viewer", CLI_ACTOR)
        _, token = await create_token(conn, queries, username, "viewer", CLI_ACTOR)
        license_id = await queries.newest_license_id(conn)
        license_key = await queries.license_key_of(conn, id=license_id)
    finally:
        await conn.close()
    bearer = {"Authorization": f"Bearer {token}"}
    port = free_port()
    runner = web.AppRunner(create_app(replace(settings, access_log=False)), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    base = f"http://127.0.0.1:{port}"
    results: dict[str, tuple[float, float]] = {}
    try:
        # An IP-address host needs the "unsafe" cookie jar, or the login cookie is dropped.
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            form = await (await http.get(f"{base}/admin/login")).text()
            csrf = form.split('name="csrf" value="')[1].split('"')[0]
            await http.post(
                f"{base}/admin/login", data={"username": username, "password": password, "csrf": csrf}
            )
            month_ago = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(time.time() - 30 * 86400))
            ids = {"license_id": license_id, "license_key": quote(license_key), "month_ago": month_ago}
            for name, path in PAGES.items():
                samples = await _sample(http, base + path.format(**ids), requests_per_page)
                results[name] = (statistics.median(samples), p95(samples))
            async with http.get(f"{base}/api/v1/admin/sessions", headers=bearer) as first:
                sessions_cursor = (await first.json()).get("next_cursor") or ""
            for name, path in API_PAGES.items():
                url = base + path.format(license_id=license_id, sessions_cursor=sessions_cursor)
                samples = await _sample(http, url, requests_per_page, bearer)
                results[name] = (statistics.median(samples), p95(samples))
    finally:
        await runner.cleanup()
    return results


def run_seed(settings: Settings, licenses: int, history: int) -> tuple[int, int, float]:
    return asyncio.run(seed(settings, licenses, history))


def run_measure(settings: Settings, requests_per_page: int) -> dict[str, tuple[float, float]]:
    return asyncio.run(measure(settings, requests_per_page))


def run_seed_live(settings: Settings, sessions: int, licenses: int) -> tuple[int, float]:
    return asyncio.run(seed_live_sessions(settings, sessions, licenses))
