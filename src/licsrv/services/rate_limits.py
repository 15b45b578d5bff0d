"""Per-product rate limits on the client API, counted per client IP in Redis (`limits`, sliding window).

A product's `rate_limits` maps a call group to a `limits` rate string, e.g.
`{"activate": "10/minute", "start": "60/minute; 1000/hour", "*": "300/minute"}`; `*` applies to every
limited call. Heartbeats are not limited here (they are bounded by the live sessions; nginx limits them per
IP in deploy/). An empty object, the default, limits nothing.
"""

from __future__ import annotations

import math
import time
from typing import Any

import structlog
from limits import RateLimitItem, parse_many
from limits.aio.storage import RedisClusterStorage, RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from redis.asyncio import Redis

from licsrv.errors import ApiError

log = structlog.get_logger(__name__)

# The call groups a client route declares (licsrv.api.rules.client_call); `*` covers every limited call.
GROUPS = frozenset({"activate", "validate", "deactivate", "redeem", "start", "end", "portal", "*"})


def parse_rate_limits(value: Any) -> dict[str, list[RateLimitItem]]:
    """The product setting checked and parsed; VALIDATION_ERROR names what is wrong."""
    if not isinstance(value, dict):
        raise ApiError("VALIDATION_ERROR", "rate_limits must be an object.")
    parsed = {}
    for group, rate in value.items():
        if group not in GROUPS:
            raise ApiError(
                "VALIDATION_ERROR", f"rate_limits: unknown call {group!r}; use {', '.join(sorted(GROUPS))}."
            )
        try:
            items = parse_many(rate) if isinstance(rate, str) else []
        except ValueError:
            items = []
        if not items:
            raise ApiError(
                "VALIDATION_ERROR",
                f"rate_limits.{group}: a rate such as '10/minute' or '5/second; 100/hour'.",
            )
        parsed[group] = items
    return parsed


class RateLimiter:
    """Sliding-window counters on the app's Redis; fails open (logs) when Redis cannot count."""

    def __init__(self, redis_url: str, redis: Redis | None) -> None:
        if redis is not None:  # a single server: count on the app's own connection pool
            storage = RedisStorage(
                "async+redis://", implementation="redispy", connection_pool=redis.connection_pool
            )
        else:
            hosts = redis_url.split("://", 1)[1].split("/", 1)[0]
            storage = RedisClusterStorage(f"async+redis+cluster://{hosts}", implementation="redispy")
        self._limiter = SlidingWindowCounterRateLimiter(storage)
        self._parsed: dict[str, dict[str, list[RateLimitItem]]] = {}

    def _limits(self, product_id: int, settings: dict) -> dict[str, list[RateLimitItem]]:
        key = f"{product_id}:{sorted(settings.items())}"
        parsed = self._parsed.get(key)
        if parsed is None:
            try:
                parsed = parse_rate_limits(settings)
            except ApiError:
                log.warning("rate_limits_ignored", product_id=product_id, rate_limits=settings)
                parsed = {}
            if len(self._parsed) > 1000:
                self._parsed.clear()
            self._parsed[key] = parsed
        return parsed

    async def retry_after(self, product_id: int, settings: dict, group: str, client: str) -> int | None:
        """Counts this call of `group`; seconds to wait when it is over a limit, else None."""
        if not settings:
            return None
        limits = self._limits(product_id, settings)
        items = [*limits.get(group, ()), *limits.get("*", ())]
        wait = None
        try:
            for item in items:
                scope = group if item in limits.get(group, ()) else "*"
                identifiers = (str(product_id), scope, client)
                if not await self._limiter.hit(item, *identifiers):
                    stats = await self._limiter.get_window_stats(item, *identifiers)
                    seconds = max(1, math.ceil(stats.reset_time - time.time()))
                    wait = max(wait or 0, seconds)
        except Exception as exc:  # the store's trouble must not refuse activations
            log.warning("rate_limit_not_counted", error=str(exc))
            return None
        return wait
