"""`licsrv seed` and `licsrv bench-admin`: large data, then the p95 of admin pages measured over real HTTP."""

from __future__ import annotations

import asyncio
import secrets
import statistics
import time
from dataclasses import replace

import aiohttp
from aiohttp import web

from licsrv.app import create_app
from licsrv.db import Queries, connect
from licsrv.devstack.postgres import free_port
from licsrv.services.admins import create_admin
from licsrv.services.audit import CLI_ACTOR
from licsrv.settings import Settings

PAGES = {
    "dashboard": "/admin/",
    "licenses (first page)": "/admin/licenses",
    "licenses (search 'Müller 12')": "/admin/licenses?q=M%C3%BCller%2012",
    "license detail": "/admin/licenses/{license_id}",
    "history (last 24 h)": "/admin/history",
    "history (one license, 30 days)": "/admin/history?license_id={license_id}&since={month_ago}",
    "live sessions": "/admin/sessions",
    "card keys": "/admin/cards",
    "product settings": "/admin/products",
    "tokens": "/admin/tokens",
    "admins": "/admin/admins",
    "audit log": "/admin/audit",
    "security events": "/admin/security",
}


async def seed(settings: Settings, licenses: int, history: int) -> tuple[int, int, float]:
    started = time.perf_counter()
    conn = await connect(settings.database_url)
    try:
        queries = Queries.load(settings.sql_dir / "queries")
        prefix = secrets.token_hex(2).upper().replace("0", "A").replace("1", "B")
        made = await queries.seed_licenses(conn, count=licenses, product_id=1, prefix="S" + prefix[:4])
        rows = await queries.seed_history(conn, count=history, prefix=f"seed{prefix}-")
        await queries.analyze_seeded(conn)
    finally:
        await conn.close()
    return made, rows, time.perf_counter() - started


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[-1] if len(samples) >= 20 else max(samples)


async def measure(settings: Settings, requests_per_page: int) -> dict[str, tuple[float, float]]:
    """{page: (p50 ms, p95 ms)} against an in-process server on a loopback port."""
    conn = await connect(settings.database_url)
    username, password = f"bench-{secrets.token_hex(3)}", secrets.token_urlsafe(16)
    try:
        queries = Queries.load(settings.sql_dir / "queries")
        await create_admin(conn, queries, username, password, "viewer", CLI_ACTOR)
        license_id = await queries.newest_license_id(conn)
    finally:
        await conn.close()
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
            for name, path in PAGES.items():
                url = base + path.format(license_id=license_id, month_ago=month_ago)
                samples = []
                for _ in range(requests_per_page):
                    begun = time.perf_counter()
                    async with http.get(url) as response:
                        await response.read()
                        if response.status != 200 or response.url.path == "/admin/login":
                            raise RuntimeError(f"{url} answered {response.status} at {response.url.path}")
                    samples.append((time.perf_counter() - begun) * 1000)
                results[name] = (statistics.median(samples), p95(samples))
    finally:
        await runner.cleanup()
    return results


def run_seed(settings: Settings, licenses: int, history: int) -> tuple[int, int, float]:
    return asyncio.run(seed(settings, licenses, history))


def run_measure(settings: Settings, requests_per_page: int) -> dict[str, tuple[float, float]]:
    return asyncio.run(measure(settings, requests_per_page))
