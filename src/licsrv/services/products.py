"""Products and the in-process API-key cache that keeps PostgreSQL off every client request."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import asyncpg
import structlog

from licsrv.db import Database, Queries
from licsrv.errors import ApiError
from licsrv.services.audit import Actor, record_change
from licsrv.services.rate_limits import parse_rate_limits

log = structlog.get_logger(__name__)

PRODUCTS_CHANNEL = "licsrv_products"


@dataclass(frozen=True, slots=True)
class Product:
    id: int
    slug: str
    name: str
    api_key: str
    heartbeat_interval: int
    session_timeout: int
    current_version: str
    minimum_version: str
    download_url: str
    whats_new: str
    session_policy: str
    max_sessions: int
    features: dict
    rate_limits: dict
    content_key_enc: bytes | None
    require_signed_requests: bool
    offline_renewal_days: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Product:
        return cls(**{f.name: row[f.name] for f in fields(cls)})

    def public(self) -> dict[str, Any]:
        """What the management API shows: everything but secret material."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "content_key_enc"}
        data["has_content_key"] = self.content_key_enc is not None
        return data


def new_api_key() -> str:
    return "lk_" + secrets.token_hex(32)


class ProductCache:
    """All products by API key, reloaded on NOTIFY from any instance and every `refresh` seconds; `also`
    are further reloads that ride on the same signal (the signing keyring)."""

    def __init__(
        self, db: Database, refresh: float = 60.0, also: list[Callable[[], Awaitable[None]]] | None = None
    ) -> None:
        self._db = db
        self._refresh = refresh
        self._also = also or []
        self._by_key: dict[str, Product] = {}
        self._by_id: dict[int, Product] = {}
        self._task: asyncio.Task | None = None
        self._listener: asyncpg.Connection | None = None

    def by_api_key(self, api_key: str) -> Product | None:
        return self._by_key.get(api_key)

    def by_id(self, product_id: int) -> Product | None:
        return self._by_id.get(product_id)

    def all(self) -> list[Product]:
        return list(self._by_id.values())

    async def reload(self) -> None:
        async with self._db.connection() as conn:
            products = [Product.from_row(row) for row in await self._db.q.list_products(conn)]
        self._by_key = {p.api_key: p for p in products}
        self._by_id = {p.id: p for p in products}
        for reload in self._also:
            await reload()

    async def start(self) -> None:
        await self.reload()
        self._task = asyncio.create_task(self._keep_fresh())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._release_listener()

    def _on_notify(self, *_: Any) -> None:
        asyncio.get_running_loop().create_task(self._safe_reload())

    async def _safe_reload(self) -> None:
        try:
            await self.reload()
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            log.warning("product_cache_reload_failed", error=str(exc))

    async def _keep_fresh(self) -> None:
        # PostgreSQL may be away for a while: the cache keeps serving what it has and catches up.
        while True:
            try:
                if self._listener is None or self._listener.is_closed():
                    await self._release_listener()
                    self._listener = await self._db.pool.acquire()
                    await self._listener.add_listener(PRODUCTS_CHANNEL, self._on_notify)
                    await self.reload()
            except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
                log.warning("product_cache_listen_failed", error=str(exc))
                await self._release_listener()
            await asyncio.sleep(self._refresh)
            await self._safe_reload()

    async def _release_listener(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.remove_listener(PRODUCTS_CHANNEL, self._on_notify)
            with contextlib.suppress(Exception):
                await self._db.pool.release(self._listener, timeout=1)
            self._listener = None


async def list_products(conn: asyncpg.Connection, queries: Queries) -> list[Product]:
    return [Product.from_row(row) for row in await queries.list_products(conn)]


async def get_product(conn: asyncpg.Connection, queries: Queries, product_id: int) -> Product:
    row = await queries.get_product(conn, id=product_id)
    if row is None:
        raise ApiError("NOT_FOUND", "The product was not found.")
    return Product.from_row(row)


async def rotate_api_key(
    conn: asyncpg.Connection, queries: Queries, product_id: int, actor: Actor
) -> Product:
    if not actor.is_owner():
        raise ApiError("FORBIDDEN", "Only an owner rotates API keys.")
    async with conn.transaction():
        if await queries.lock_product(conn, id=product_id) is None:
            raise ApiError("NOT_FOUND", "The product was not found.")
        await queries.set_product_api_key(conn, id=product_id, api_key=new_api_key())
        await record_change(conn, queries, actor, "product.rotate_key", "product", product_id)
        await queries.notify_products_changed(conn)
        return Product.from_row(await queries.get_product(conn, id=product_id))


PRODUCT_SETTINGS = (
    "current_version",
    "minimum_version",
    "download_url",
    "whats_new",
    "session_policy",
    "max_sessions",
    "heartbeat_interval",
    "session_timeout",
    "features",
    "rate_limits",
    "require_signed_requests",
    "offline_renewal_days",
)


async def update_product(
    conn: asyncpg.Connection, queries: Queries, product_id: int, changes: dict[str, Any], actor: Actor
) -> Product:
    """Every worker's cache reloads through NOTIFY when this commits."""
    if not actor.is_owner():
        raise ApiError("FORBIDDEN", "Only an owner changes product settings.")
    async with conn.transaction():
        row = await queries.lock_product(conn, id=product_id)
        if row is None:
            raise ApiError("NOT_FOUND", "The product was not found.")
        before = {name: row[name] for name in PRODUCT_SETTINGS}
        merged = {**before, **{k: v for k, v in changes.items() if k in PRODUCT_SETTINGS}}
        if merged["session_timeout"] < 2 * merged["heartbeat_interval"]:
            raise ApiError("VALIDATION_ERROR", "session_timeout must be at least twice heartbeat_interval.")
        parse_rate_limits(merged["rate_limits"])
        await queries.update_product(conn, id=product_id, **merged)
        changed = {k: v for k, v in merged.items() if before[k] != v}
        await record_change(
            conn,
            queries,
            actor,
            "product.update",
            "product",
            product_id,
            before={k: before[k] for k in changed},
            after=changed,
        )
        await queries.notify_products_changed(conn)
        return Product.from_row(await queries.get_product(conn, id=product_id))


async def set_content_key(
    conn: asyncpg.Connection, queries: Queries, product_id: int, content_key_enc: bytes | None, actor: Actor
) -> None:
    if not actor.is_owner():
        raise ApiError("FORBIDDEN", "Only an owner sets the content key.")
    async with conn.transaction():
        if await queries.lock_product(conn, id=product_id) is None:
            raise ApiError("NOT_FOUND", "The product was not found.")
        await queries.set_product_content_key(conn, id=product_id, content_key_enc=content_key_enc)
        await record_change(conn, queries, actor, "product.content_key", "product", product_id)
        await queries.notify_products_changed(conn)
