"""The watchdog behind /health: tells a wedged worker (event loop blocked, PostgreSQL pool exhausted) from a
live one, from in-memory measurements only."""

from __future__ import annotations

import asyncio

import asyncpg


def pool_usage(pool: asyncpg.Pool) -> tuple[int, int]:
    """Connections in use and callers waiting for one. asyncpg keeps each free slot (connected or not) in a
    queue, and its waiting callers are that queue's getters; it has no public call for either."""
    queue = getattr(pool, "_queue", None)
    if queue is None:
        return 0, 0
    return pool.get_max_size() - queue.qsize(), len(getattr(queue, "_getters", ()))


class Watchdog:
    """Measures how late the event loop runs a timer (its lag) and how long the PostgreSQL pool has had no
    free connection while callers wait for one. A lag beyond `loop_block_limit` is reported for three limits'
    time, so a liveness probe that must fail several times in a row restarts a worker that keeps blocking, not
    one that blocked once; the pool counts as wedged after `pool_wedge_limit` seconds exhausted."""

    def __init__(self, pool: asyncpg.Pool, *, loop_block_limit: float, pool_wedge_limit: float) -> None:
        self._pool = pool
        self.loop_block_limit = loop_block_limit
        self.pool_wedge_limit = pool_wedge_limit
        self.tick = min(0.5, loop_block_limit / 4)
        self._due = 0.0
        self._blocked_at = float("-inf")
        self._blocked_for = 0.0
        self._exhausted_since: float | None = None

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                self._due = loop.time() + self.tick
                await asyncio.sleep(self.tick)
                now = loop.time()
                self._note_lag(now, now - self._due)
                self._note_pool(now)
        finally:
            self._due = 0.0  # not measuring: a timer that is not set cannot be late

    def _note_lag(self, now: float, lag: float) -> None:
        if lag > self.loop_block_limit:
            self._blocked_at, self._blocked_for = now, lag

    def _note_pool(self, now: float) -> None:
        in_use, waiting = pool_usage(self._pool)
        if not (in_use == self._pool.get_max_size() and waiting):
            self._exhausted_since = None
        elif self._exhausted_since is None:
            self._exhausted_since = now

    def problems(self) -> dict[str, str]:
        now = asyncio.get_running_loop().time()
        if self._due:
            self._note_lag(now, now - self._due)  # the timer may still be waiting behind this request
        self._note_pool(now)
        found = {}
        if now - self._blocked_at < 3 * self.loop_block_limit:
            found["event_loop"] = (
                f"blocked for {self._blocked_for:.1f} s {now - self._blocked_at:.0f} s ago"
                f" (limit {self.loop_block_limit:g} s)"
            )
        if self._exhausted_since is not None and now - self._exhausted_since > self.pool_wedge_limit:
            found["postgresql_pool"] = (
                f"no free connection and callers waiting for {now - self._exhausted_since:.0f} s"
                f" (limit {self.pool_wedge_limit:g} s)"
            )
        return found
