"""Events no request causes: `session.timed_out` from Redis' expiry notices of session keys (no sweep over the
sessions; the lazy closing of DESIGN §3 stays the guarantee), and `license.expired` from one leader's scan of
the licenses whose expiry passed since its last scan."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import structlog
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ResponseError

from licsrv.live.client import CLUSTER_SCHEMES
from licsrv.live.keys import parse_session_key
from licsrv.services.sessions import close_timed_out, to_ms
from licsrv.webhooks.catalogue import license_data
from licsrv.webhooks.outbox import emit

if TYPE_CHECKING:
    from licsrv.deps import Deps

log = structlog.get_logger(__name__)

EXPIRED_CHANNELS = "__keyevent@*__:expired"
EXPIRY_SCAN_LIMIT = 500


async def enable_expiry_notices(redis: Redis) -> bool:
    """Adds `Ex` to notify-keyspace-events (keeping what is set); False when CONFIG is not allowed."""
    try:
        current = (await redis.config_get("notify-keyspace-events")).get("notify-keyspace-events", "")
        flags = set(current.decode() if isinstance(current, bytes) else current)
        if "E" in flags and ("x" in flags or "A" in flags):
            return True
        await redis.config_set("notify-keyspace-events", "".join(sorted(flags | {"E", "x"})))
    except ResponseError as exc:
        log.warning("redis_expiry_notices_not_enabled", error=str(exc))
        return False
    return True


async def master_clients(deps: Deps) -> list[Redis]:
    """One plain client per Redis master: expiry notices are local to the node whose key expired."""
    url = deps.settings.redis_url
    if not url.startswith(CLUSTER_SCHEMES):
        return [Redis.from_url(url)]
    cluster = deps.redis
    assert isinstance(cluster, RedisCluster)
    await cluster.initialize()  # once: later calls return at once
    plain = urlsplit(url.replace("+cluster", "", 1))
    credentials = plain.netloc.rpartition("@")[0]
    return [
        Redis.from_url(
            urlunsplit(
                plain._replace(netloc=f"{credentials + '@' if credentials else ''}{node.host}:{node.port}")
            )
        )
        for node in cluster.get_primaries()
    ]


async def listen_on_every_master(deps: Deps, stopping: asyncio.Event) -> None:
    """Listens on the masters known now; a failure (a failover, say) restarts it and rediscovers them. A
    notice missed meanwhile is made up by the lazy closing of DESIGN §3."""
    clients = await master_clients(deps)
    try:
        await asyncio.gather(*(listen_for_expired_sessions(deps, client, stopping) for client in clients))
    finally:
        for client in clients:
            await client.aclose()


async def listen_for_expired_sessions(deps: Deps, redis: Redis, stopping: asyncio.Event) -> None:
    """Closes each expired session's history row as `timeout`; the statement that closes it writes its
    event, so however many workers hear the notice, one event goes out."""
    await enable_expiry_notices(redis)
    pubsub = redis.pubsub()
    try:
        await pubsub.psubscribe(EXPIRED_CHANNELS)
        while not stopping.is_set():  # redis-py's get_message may swallow a cancellation: check a flag too
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is None:
                continue
            session = parse_session_key(message["data"])
            if session is not None:
                await close_expired_session(deps, *session)
    finally:
        await pubsub.aclose()


async def close_expired_session(deps: Deps, license_id: int, session_id: str) -> None:
    """Only while some endpoint wants `session.timed_out`: otherwise the lazy closing is enough, and every
    worker would otherwise add PostgreSQL work for each session that ends without a word."""
    if deps.webhooks is not None and not deps.webhooks.wants("session.timed_out"):
        return
    now = deps.now()
    async with deps.db.transaction() as conn:
        product_id = await deps.q.get_license_product_id(conn, id=license_id)
        if product_id is not None:
            await close_timed_out(conn, deps, [(session_id, to_ms(now))], deps.session_timeout_of(product_id))


async def scan_expired_licenses(deps: Deps) -> int:
    """`license.expired` for every license whose expiry passed since the last scan, by whichever worker holds
    the leader lock this time (the others skip); bounded per scan, index-backed."""
    now = deps.now()
    async with deps.db.transaction() as conn:
        if not await deps.q.take_webhook_leadership(conn):
            return 0
        rows = await deps.q.licenses_expired_since_scan(conn, now=now, row_limit=EXPIRY_SCAN_LIMIT)
        for row in rows:
            await emit(conn, deps, "license.expired", license_data(row))
        full = len(rows) == EXPIRY_SCAN_LIMIT
        await deps.q.set_expiry_scanned_to(conn, scanned_to=rows[-1]["expires_at"] if full else now)
        cutoff = now - timedelta(days=deps.settings.webhook_retention_days)
        await deps.q.prune_webhook_attempts(conn, before=cutoff, row_limit=5000)
        await deps.q.prune_webhook_events(conn, before=cutoff, row_limit=5000)
    return len(rows)


async def lead_forever(deps: Deps) -> None:
    while True:
        await scan_expired_licenses(deps)
        await asyncio.sleep(deps.settings.webhook_expiry_scan_interval)
