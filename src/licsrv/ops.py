"""What load balancers and Prometheus poll: /health (no I/O), /ready (PostgreSQL and Redis), /metrics."""

from __future__ import annotations

import asyncio

from aiohttp import web

from licsrv.live.client import ping
from licsrv.metrics import BACKEND_ERRORS, metrics_handler
from licsrv.state import DB, REDIS, SETTINGS, WATCHDOG


async def health(request: web.Request) -> web.Response:
    """Liveness: 503 when this worker is wedged (its loop blocked, or its pool exhausted for too long)."""
    watchdog = request.app.get(WATCHDOG)
    failed = watchdog.problems() if watchdog is not None else {}
    if failed:
        return web.json_response({"status": "unhealthy", "failed": failed}, status=503)
    return web.json_response({"status": "ok"})


async def _check(what: str, probe, limit: float) -> tuple[str, str | None]:
    try:
        async with asyncio.timeout(limit):
            await probe()
    except Exception as exc:
        BACKEND_ERRORS.labels(what).inc()
        return what, f"{type(exc).__name__}: {exc}"[:200] or type(exc).__name__
    return what, None


async def ready(request: web.Request) -> web.Response:
    timeout = request.app[SETTINGS].ready_timeout
    db = request.app[DB]

    async def probe_postgres() -> None:
        async with db.pool.acquire(timeout=timeout) as conn:
            await db.q.ping(conn)

    results = await asyncio.gather(
        _check("postgresql", probe_postgres, timeout),
        _check("redis", lambda: ping(request.app[REDIS]), timeout),
    )
    failed = {what: error for what, error in results if error}
    if failed:
        return web.json_response({"status": "unavailable", "failed": failed}, status=503)
    return web.json_response({"status": "ready"})


def routes() -> list[web.RouteDef]:
    return [
        web.get("/health", health),
        web.get("/ready", ready),
        web.get("/metrics", metrics_handler()),
    ]
