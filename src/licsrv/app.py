"""The application factory: routes, middlewares and the resources owned by `cleanup_ctx`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp_jinja2
import asyncpg
import jinja2
import structlog
from aiohttp import web
from redis.asyncio import Redis

from licsrv import ops
from licsrv.admin_api import create_admin_api_app
from licsrv.api import create_api_app
from licsrv.api import sessions as session_api
from licsrv.api.legacy import create_legacy_app
from licsrv.db import Database, Queries, connect_pool
from licsrv.deps import Deps
from licsrv.envelope import envelope_middleware
from licsrv.live.batcher import Batcher
from licsrv.live.client import make_redis
from licsrv.live.sessions import LiveSessions
from licsrv.live.wire import DirectBatcher
from licsrv.middlewares import request_context
from licsrv.openapi import setup_openapi
from licsrv.portal_api import create_portal_api_app
from licsrv.portal_web import create_portal_web_app
from licsrv.services.mail import mail_sender
from licsrv.services.products import ProductCache
from licsrv.services.rate_limits import RateLimiter
from licsrv.services.session_crypto import SessionCrypto
from licsrv.services.signing_keys import load_keyring
from licsrv.services.usage import ChartCache, run_sampler
from licsrv.settings import Settings
from licsrv.state import (
    CHART_CACHE,
    CRYPTO,
    DB,
    DEPS,
    KEYRING,
    LIVE,
    PRODUCTS,
    RATE_LIMITER,
    REDIS,
    SETTINGS,
    WATCHDOG,
)
from licsrv.supervise import stop as stop_task
from licsrv.supervise import supervise
from licsrv.watchdog import Watchdog, pool_usage
from licsrv.web import create_admin_web_app
from licsrv.web import offline as offline_page
from licsrv.web.csp import CurrentNonce, new_nonce, protect
from licsrv.webhooks.outbox import Subscriptions
from licsrv.webhooks.runner import webhooks_ctx

log = structlog.get_logger(__name__)


class PoolDrain:
    """Closes the pool when the worker drains (SIGTERM): once no request holds or waits for a connection, or
    at the latest after `within` seconds, when the connections still in use are cut so that their requests
    answer 503 before the server gives up on them. A request needing a connection after that answers 503."""

    def __init__(self, pool: asyncpg.Pool, within: float) -> None:
        self._pool = pool
        self._within = within
        self._closing: asyncio.Task | None = None

    def begin(self) -> None:
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._close())

    async def finish(self) -> None:
        self.begin()
        try:
            async with asyncio.timeout(self._within + 5):
                await asyncio.shield(self._closing)
        except TimeoutError:
            self._pool.terminate()

    async def _close(self) -> None:
        in_use, waiting = pool_usage(self._pool)
        log.info("database_pool_draining", in_use=in_use, waiting=waiting)
        for _ in range(max(1, round(self._within / DRAIN_POLL))):  # asyncpg signals no release to wait on
            if not any(pool_usage(self._pool)):
                break
            await asyncio.sleep(DRAIN_POLL)
        in_use, waiting = pool_usage(self._pool)
        if in_use or waiting:
            log.warning("database_pool_terminated", in_use=in_use, waiting=waiting)
            self._pool.terminate()
        else:
            await self._pool.close()


DRAIN_POLL = 0.02
POOL_DRAIN = web.AppKey("pool_drain", PoolDrain)


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    pool = await connect_pool(
        settings.database_url,
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
        lock_timeout=settings.db_lock_timeout,
        idle_in_transaction_timeout=settings.db_idle_in_transaction_timeout,
        command_timeout=settings.db_command_timeout,
    )
    app[DB] = Database(pool, Queries.load(settings.sql_dir / "queries"), settings.db_acquire_timeout)
    app[POOL_DRAIN] = PoolDrain(pool, within=settings.shutdown_timeout)
    yield
    await app[POOL_DRAIN].finish()


async def begin_draining(app: web.Application) -> None:
    if PRODUCTS in app:
        await app[PRODUCTS].stop()  # the cache keeps what it has; its reloads would only fail from now on
    if POOL_DRAIN in app:
        app[POOL_DRAIN].begin()


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    app[REDIS] = make_redis(
        settings.redis_url,
        socket_timeout=settings.redis_timeout,
        max_connections=settings.redis_max_connections,
    )
    app[RATE_LIMITER] = RateLimiter(settings.redis_url, app[REDIS] if isinstance(app[REDIS], Redis) else None)
    yield
    await app[REDIS].aclose()


async def live_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    if settings.redis_url.startswith("redis://"):
        batcher: Batcher | DirectBatcher = DirectBatcher(settings.redis_url, timeout=settings.redis_timeout)
    else:  # Redis Cluster, TLS or a unix socket: redis-py's pipelines
        batcher = Batcher(app[REDIS])
    app[LIVE] = LiveSessions(app[REDIS], batcher, id_key=settings.secret_key.encode())
    app[CRYPTO] = SessionCrypto(settings.secret_key)
    yield
    if isinstance(batcher, DirectBatcher):
        await batcher.close()


async def watchdog_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    watchdog = Watchdog(
        app[DB].pool, loop_block_limit=settings.loop_block_limit, pool_wedge_limit=settings.pool_wedge_limit
    )
    app[WATCHDOG] = watchdog
    task = supervise("watchdog", watchdog.run)
    yield
    await stop_task(task)


async def keyring_ctx(app: web.Application) -> AsyncIterator[None]:
    db = app[DB]
    async with db.connection() as conn:
        app[KEYRING] = await load_keyring(conn, db.q, app[SETTINGS].secret_key)
    yield


async def products_ctx(app: web.Application) -> AsyncIterator[None]:
    db, keyring, secret_key = app[DB], app[KEYRING], app[SETTINGS].secret_key

    async def reload_keyring() -> None:
        async with db.connection() as conn:
            try:
                fresh = await load_keyring(conn, db.q, secret_key)
            except RuntimeError as exc:  # e.g. rotated elsewhere under another LICSRV_SECRET_KEY
                log.error("signing_keys_not_reloaded", error=str(exc), active=keyring.key_id)
                return
        if keyring.adopt(fresh):
            log.info("signing_keys_reloaded", active=keyring.key_id)

    settings = app[SETTINGS]
    cache = ProductCache(
        db, settings.database_url, refresh=settings.product_cache_refresh, also=[reload_keyring]
    )
    await cache.start()
    app[PRODUCTS] = cache
    yield
    await cache.stop()


async def deps_ctx(app: web.Application) -> AsyncIterator[None]:
    app[DEPS] = Deps(
        settings=app[SETTINGS],
        db=app[DB],
        redis=app[REDIS],
        live=app[LIVE],
        products=app[PRODUCTS],
        crypto=app[CRYPTO],
        webhooks=Subscriptions(),
    )
    yield


async def usage_ctx(app: web.Application) -> AsyncIterator[None]:
    deps = app[DEPS]
    app[CHART_CACHE] = ChartCache(ttl=deps.settings.usage_sample_interval)
    task = supervise("usage_sampler", lambda: run_sampler(deps))
    yield
    await stop_task(task)


async def mail_ctx(app: web.Application) -> AsyncIterator[None]:
    async with mail_sender(app[DEPS]):
        yield


async def index(request: web.Request) -> web.Response:
    """The front page: what this server is, and the way to the admin, the API docs, health and the portals."""
    nonce = new_nonce()
    portals = [p for p in request.app[PRODUCTS].all() if getattr(p, "archived_at", None) is None]
    return protect(aiohttp_jinja2.render_template("index.html", request, {"portals": portals}), nonce)


def create_app(settings: Settings) -> web.Application:
    app = web.Application(
        middlewares=[request_context, envelope_middleware],
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    templates = aiohttp_jinja2.setup(
        app, loader=jinja2.FileSystemLoader(settings.templates_dir), autoescape=jinja2.select_autoescape()
    )
    templates.globals["csp_nonce"] = CurrentNonce()
    # German and Chinese stay characters in `|tojson` (still HTML-safe: <, >, & and ' are escaped).
    templates.policies["json.dumps_kwargs"] = {"sort_keys": True, "ensure_ascii": False}
    app.on_shutdown.append(begin_draining)
    app.cleanup_ctx.extend(
        [
            database_ctx,
            watchdog_ctx,
            redis_ctx,
            live_ctx,
            keyring_ctx,
            products_ctx,
            deps_ctx,
            usage_ctx,
            mail_ctx,
            webhooks_ctx,
        ]
    )
    app.add_routes([web.get("/", index), *ops.routes(), *session_api.root_routes(), *offline_page.routes()])
    app.add_subapp("/api/v1/admin", create_admin_api_app())
    app.add_subapp("/api/v1/portal", create_portal_api_app())
    app.add_subapp("/api/v1", create_api_app())
    app.add_subapp("/api/license", create_legacy_app())
    app.add_subapp("/admin", create_admin_web_app())
    app.add_subapp("/portal", create_portal_web_app())
    setup_openapi(app)
    return app
