"""The Redis client: short timeouts so nothing hangs when Redis is away; cluster mode by URL scheme."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster

CLUSTER_SCHEMES = ("redis+cluster://", "rediss+cluster://")


def make_redis(
    url: str, *, socket_timeout: float = 1.0, connect_timeout: float = 0.5, max_connections: int = 50
) -> Redis | RedisCluster:
    """A bounded pool: past `max_connections` a caller waits (up to the socket timeout) for a connection
    instead of failing with "Too many connections"."""
    options = {
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": connect_timeout,
        "decode_responses": False,
    }
    if url.startswith(CLUSTER_SCHEMES):
        return RedisCluster.from_url(
            url.replace("+cluster", "", 1), max_connections=max_connections, **options
        )
    pool = BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=socket_timeout, **options
    )
    return Redis.from_pool(pool)


async def ping(redis: Redis | RedisCluster) -> bool:
    return bool(await redis.ping())
