"""Products and the in-process API-key cache that keeps PostgreSQL off every client request."""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import asyncpg
import structlog

from licsrv.db import Database, Queries
from licsrv.domain import API_KEY_GRACE_DAYS
from licsrv.errors import ApiError
from licsrv.services.audit import Actor, record_change
from licsrv.services.rate_limits import parse_rate_limits
from licsrv.supervise import stop as stop_task
from licsrv.supervise import supervise, wait_set

if TYPE_CHECKING:
    from licsrv.deps import Deps

log = structlog.get_logger(__name__)

PRODUCTS_CHANNEL = "licsrv_products"
MAX_API_KEY_GRACE_DAYS = 365


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
    previous_api_key: str | None
    previous_api_key_expires_at: datetime | None
    offline_renewal_days: int
    archived_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Product:
        return cls(**{f.name: row[f.name] for f in fields(cls)})

    def public(self) -> dict[str, Any]:
        """What the management API shows: everything but secret material."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "content_key_enc"}
        data["has_content_key"] = self.content_key_enc is not None
        if not self.previous_key_valid(datetime.now(UTC)):
            data["previous_api_key"] = data["previous_api_key_expires_at"] = None
        return data

    def previous_key_valid(self, now: datetime) -> bool:
        expires = self.previous_api_key_expires_at
        return self.previous_api_key is not None and expires is not None and expires > now


def new_api_key() -> str:
    return "lk_" + secrets.token_hex(32)


class ProductCache:
    """All products by API key, reloaded on NOTIFY from any instance and every `refresh` seconds; `also`
    are further reloads that ride on the same signal (the signing keyring). The listener is supervised: when
    PostgreSQL goes away it is restarted with backoff and, once connected again, reloads at once to catch up
    with what changed meanwhile."""

    def __init__(
        self,
        db: Database,
        dsn: str,
        refresh: float = 60.0,
        also: list[Callable[[], Awaitable[None]]] | None = None,
    ) -> None:
        self._db = db
        self._dsn = dsn
        self._refresh = refresh
        self._also = also or []
        self._by_key: dict[str, Product] = {}
        self._by_previous_key: dict[str, Product] = {}
        self._reloading = asyncio.Lock()
        self._by_id: dict[int, Product] = {}
        self._task: asyncio.Task | None = None

    def by_api_key(self, api_key: str) -> Product | None:
        product = self._by_key.get(api_key)
        if product is None and self._by_previous_key:
            product = self._by_previous_key.get(api_key)
            if product is not None and not product.previous_key_valid(datetime.now(UTC)):
                return None  # its grace period ran out since the last reload
        return product

    def by_id(self, product_id: int) -> Product | None:
        return self._by_id.get(product_id)

    def all(self) -> list[Product]:
        return list(self._by_id.values())

    async def reload(self) -> None:
        # One at a time: a reload that read the table before a change must not land after one that read it
        # afterwards (the periodic refresh racing a NOTIFY would otherwise bring a rotated key back).
        async with self._reloading:
            async with self._db.connection() as conn:
                products = [Product.from_row(row) for row in await self._db.q.list_products(conn)]
            self._by_key = {p.api_key: p for p in products}
            now = datetime.now(UTC)
            self._by_previous_key = {p.previous_api_key: p for p in products if p.previous_key_valid(now)}
            self._by_id = {p.id: p for p in products}
        for reload in self._also:
            await reload()

    async def start(self) -> None:
        await self.reload()
        self._task = supervise("product_cache", self.follow_changes, max_delay=min(10.0, self._refresh))

    async def stop(self) -> None:
        await stop_task(self._task)
        self._task = None

    async def follow_changes(self) -> None:
        """LISTENs on a connection of its own (outside the pool, which is for requests) and reloads on each
        announcement (a burst makes one reload) and every `refresh` seconds. Raises when the connection is
        lost, so its supervisor starts it again."""
        changed, lost = asyncio.Event(), asyncio.Event()

        def on_notify(*_: Any) -> None:
            changed.set()

        def on_lost(*_: Any) -> None:
            lost.set()
            changed.set()

        conn = await asyncpg.connect(self._dsn, timeout=LISTENER_TIMEOUT, command_timeout=LISTENER_TIMEOUT)
        try:
            conn.add_termination_listener(on_lost)
            await conn.add_listener(PRODUCTS_CHANNEL, on_notify)
            await self.reload()  # whatever changed before LISTEN took effect
            while True:
                await wait_set(changed, self._refresh)
                if lost.is_set() or conn.is_closed():
                    raise ConnectionError("the connection listening for product changes was lost")
                changed.clear()
                await self.reload()
        finally:
            conn.remove_termination_listener(on_lost)
            with contextlib.suppress(Exception):
                await conn.close(timeout=1)


LISTENER_TIMEOUT = 5.0  # connecting, and the LISTEN itself: a frozen server must not hang the task


async def list_products(conn: asyncpg.Connection, queries: Queries) -> list[Product]:
    return [Product.from_row(row) for row in await queries.list_products(conn)]


async def get_product(conn: asyncpg.Connection, queries: Queries, product_id: int) -> Product:
    row = await queries.get_product(conn, id=product_id)
    if row is None:
        raise ApiError("NOT_FOUND", "The product was not found.")
    return Product.from_row(row)


async def rotate_api_key(
    conn: asyncpg.Connection,
    queries: Queries,
    product_id: int,
    actor: Actor,
    grace_days: int = API_KEY_GRACE_DAYS,
    now: datetime | None = None,
) -> Product:
    """A new API key at once; the one it replaces keeps working for `grace_days` (0: refused at once),
    because it is compiled into every installed copy of the vendor's program."""
    if not actor.is_owner():
        raise ApiError("FORBIDDEN", "Only an owner rotates API keys.")
    if not 0 <= grace_days <= MAX_API_KEY_GRACE_DAYS:
        raise ApiError("VALIDATION_ERROR", f"grace_days must be between 0 and {MAX_API_KEY_GRACE_DAYS}.")
    now = now or datetime.now(UTC)
    async with conn.transaction():
        row = await queries.lock_product(conn, id=product_id)
        if row is None:
            raise ApiError("NOT_FOUND", "The product was not found.")
        previous, until = (row["api_key"], now + timedelta(days=grace_days)) if grace_days else (None, None)
        await queries.set_product_api_key(
            conn,
            id=product_id,
            api_key=new_api_key(),
            previous_api_key=previous,
            previous_api_key_expires_at=until,
        )
        await record_change(
            conn,
            queries,
            actor,
            "product.rotate_key",
            "product",
            product_id,
            after={"previous_key_valid_until": until.isoformat() if until else None},
        )
        await queries.notify_products_changed(conn)
        return Product.from_row(await queries.get_product(conn, id=product_id))


async def retire_previous_api_key(
    conn: asyncpg.Connection, queries: Queries, product_id: int, actor: Actor
) -> Product:
    """Ends the grace period of the replaced key now (an owner who knows it leaked)."""
    if not actor.is_owner():
        raise ApiError("FORBIDDEN", "Only an owner retires API keys.")
    async with conn.transaction():
        if await queries.lock_product(conn, id=product_id) is None:
            raise ApiError("NOT_FOUND", "The product was not found.")
        await queries.retire_previous_api_key(conn, id=product_id)
        await record_change(conn, queries, actor, "product.retire_previous_key", "product", product_id)
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
EDITABLE = ("name", *PRODUCT_SETTINGS)


def check_settings(settings: dict[str, Any]) -> None:
    """The rules across settings, which no single field's schema can check."""
    if not 1 <= len(settings["name"].strip()) <= 200:
        raise ApiError("VALIDATION_ERROR", "The product's name is 1 to 200 characters.")
    if settings["session_timeout"] < 2 * settings["heartbeat_interval"]:
        raise ApiError("VALIDATION_ERROR", "session_timeout must be at least twice heartbeat_interval.")
    parse_rate_limits(settings["rate_limits"])


async def update_product(
    conn: asyncpg.Connection, queries: Queries, product_id: int, changes: dict[str, Any], actor: Actor
) -> Product:
    """Settings and the name; every worker's cache reloads through NOTIFY when this commits."""
    if not actor.is_owner():
        raise ApiError("FORBIDDEN", "Only an owner changes product settings.")
    async with conn.transaction():
        row = await queries.lock_product(conn, id=product_id)
        if row is None:
            raise ApiError("NOT_FOUND", "The product was not found.")
        before = {name: row[name] for name in EDITABLE}
        merged = {**before, **{k: v for k, v in changes.items() if k in EDITABLE}}
        merged["name"] = merged["name"].strip()
        check_settings(merged)
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


SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
IMPORTED_API_KEY = re.compile(r"^[!-~]{8,200}$")  # the key compiled into a program sold before licsrv
DEFAULT_SETTINGS: dict[str, Any] = {
    "current_version": "1.0.0",
    "minimum_version": "1.0.0",
    "download_url": "",
    "whats_new": "",
    "session_policy": "reject",
    "max_sessions": 1,
    "heartbeat_interval": 30,
    "session_timeout": 60,
    "features": {},
    "rate_limits": {},
    "require_signed_requests": False,
    "offline_renewal_days": 30,
}


async def insert_product(
    conn: asyncpg.Connection, queries: Queries, fields: dict[str, Any], actor: Actor
) -> Product:
    """A new product: `name`, `slug`, any setting, and optionally the `api_key` its program already has
    (SLUG_TAKEN, API_KEY_TAKEN when another product holds either). Every check comes before the write."""
    if not actor.is_owner():
        raise ApiError("FORBIDDEN", "Only an owner creates products.")
    slug = str(fields.get("slug") or "")
    if not SLUG.match(slug):
        raise ApiError(
            "VALIDATION_ERROR",
            "The slug is 1 to 63 lower-case letters, digits and dashes, not starting with a dash.",
        )
    api_key = fields.get("api_key") or new_api_key()
    if not IMPORTED_API_KEY.match(api_key):
        raise ApiError(
            "VALIDATION_ERROR", "An API key is 8 to 200 printable ASCII characters without spaces."
        )
    settings = {**DEFAULT_SETTINGS, **{k: v for k, v in fields.items() if k in PRODUCT_SETTINGS}}
    settings["name"] = str(fields.get("name") or "").strip()
    check_settings(settings)
    async with conn.transaction():
        if await queries.product_slug_taken(conn, slug=slug):
            raise ApiError("SLUG_TAKEN", f"A product with the slug {slug!r} exists already.")
        if await queries.api_key_taken(conn, api_key=api_key):
            raise ApiError("API_KEY_TAKEN")
        try:
            product_id = await queries.insert_product(conn, slug=slug, api_key=api_key, **settings)
        except asyncpg.UniqueViolationError:  # a concurrent create took the slug or the key meanwhile
            raise ApiError("CONFLICT", "Another product took this slug or API key just now.") from None
        await record_change(
            conn,
            queries,
            actor,
            "product.create",
            "product",
            product_id,
            after={"slug": slug, "name": settings["name"], "imported_api_key": bool(fields.get("api_key"))},
        )
        await queries.notify_products_changed(conn)
        return Product.from_row(await queries.get_product(conn, id=product_id))


async def set_archived(
    conn: asyncpg.Connection, queries: Queries, product_id: int, archived: bool, actor: Actor
) -> Product:
    """An archived product refuses new licenses, plans and cards; its licenses keep working on the client
    API (the API-key cache keeps every product) until they expire."""
    if not actor.is_owner():
        raise ApiError("FORBIDDEN", "Only an owner archives products.")
    async with conn.transaction():
        row = await queries.lock_product(conn, id=product_id)
        if row is None:
            raise ApiError("NOT_FOUND", "The product was not found.")
        if (row["archived_at"] is not None) != archived:
            await queries.set_product_archived(conn, id=product_id, archived=archived)
            await record_change(
                conn,
                queries,
                actor,
                "product.archive" if archived else "product.unarchive",
                "product",
                product_id,
                before={"archived": not archived},
                after={"archived": archived},
            )
            await queries.notify_products_changed(conn)
        return Product.from_row(await queries.get_product(conn, id=product_id))


async def ensure_product_open(conn: asyncpg.Connection, queries: Queries, product_id: int) -> None:
    """PRODUCT_ARCHIVED when the product is archived: what makes new licenses, plans and card batches calls
    this before it writes (an unknown product is left to the caller's own refusal)."""
    row = await queries.get_product_archived_at(conn, id=product_id)
    if row is not None and row["archived_at"] is not None:
        raise ApiError("PRODUCT_ARCHIVED")


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


# The use cases as the admin UI and the management API call them: each opens the one connection it uses
# (the functions above take a connection for the CLI, the benchmark and migrations-time callers).


async def all_products(deps: Deps) -> list[Product]:
    async with deps.db.connection() as conn:
        return await list_products(conn, deps.q)


async def find_product(deps: Deps, product_id: int) -> Product:
    async with deps.db.connection() as conn:
        return await get_product(conn, deps.q, product_id)


async def change_product(deps: Deps, product_id: int, changes: dict[str, Any], actor: Actor) -> Product:
    async with deps.db.connection() as conn:
        product = await update_product(conn, deps.q, product_id, changes, actor)
    await deps.products.reload()
    return product


async def create_product(deps: Deps, fields: dict[str, Any], actor: Actor) -> Product:
    """Usable by clients at once: this worker reloads its API-key cache before answering, the others on the
    NOTIFY sent at commit."""
    async with deps.db.connection() as conn:
        product = await insert_product(conn, deps.q, fields, actor)
    await deps.products.reload()
    return product


async def archive_product(deps: Deps, product_id: int, actor: Actor, archived: bool = True) -> Product:
    async with deps.db.connection() as conn:
        product = await set_archived(conn, deps.q, product_id, archived, actor)
    await deps.products.reload()
    return product


async def rotate_product_key(deps: Deps, product_id: int, actor: Actor, grace_days: int) -> Product:
    async with deps.db.connection() as conn:
        return await rotate_api_key(conn, deps.q, product_id, actor, grace_days)


async def retire_product_key(deps: Deps, product_id: int, actor: Actor) -> Product:
    async with deps.db.connection() as conn:
        return await retire_previous_api_key(conn, deps.q, product_id, actor)


async def change_content_key(deps: Deps, product_id: int, content_key: bytes | None, actor: Actor) -> Product:
    """Stores the content key encrypted under the server secret (None clears it)."""
    encrypted = deps.crypto.encrypt_content_key(content_key) if content_key else None
    async with deps.db.connection() as conn:
        await set_content_key(conn, deps.q, product_id, encrypted, actor)
        return await get_product(conn, deps.q, product_id)
