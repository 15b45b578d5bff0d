"""What a use case needs, in one bundle: services take `Deps` and open the one connection they use."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from licsrv.db import Database, Queries
from licsrv.live.sessions import LiveSessions
from licsrv.services.products import ProductCache
from licsrv.services.session_crypto import SessionCrypto
from licsrv.settings import Settings
from licsrv.webhooks.outbox import Subscriptions


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Deps:
    settings: Settings
    db: Database
    redis: Redis | RedisCluster
    live: LiveSessions
    products: ProductCache
    crypto: SessionCrypto
    clock: Callable[[], datetime] = field(default=utc_now)
    webhooks: Subscriptions | None = None

    @property
    def q(self) -> Queries:
        return self.db.q

    def now(self) -> datetime:
        return self.clock()

    def tombstone_seconds(self) -> int:
        """A tombstone must outlive the session it replaces; the longest timeout of any product does."""
        return max((p.session_timeout for p in self.products.all()), default=60)

    def session_timeout_of(self, product_id: int | None) -> int:
        product = self.products.by_id(product_id) if product_id is not None else None
        return product.session_timeout if product else self.tombstone_seconds()
