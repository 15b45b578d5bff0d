"""Auto-pipelining: script calls made by concurrent requests in one loop tick go to Redis in one round trip.

redis-py has no automatic pipelining, and per-request round trips are what limits a Python server here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from hashlib import sha1
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import (
    BusyLoadingError,
    ClusterDownError,
    ConnectionError,
    NoScriptError,
    TimeoutError,
)

from licsrv.live.errors import LiveUnavailable

UNAVAILABLE = (
    ConnectionError,
    TimeoutError,
    BusyLoadingError,
    ClusterDownError,
    OSError,
    asyncio.TimeoutError,
)


class Script:
    """A Lua script known by its SHA; loaded on first use and again after Redis lost it."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = sha1(source.encode()).hexdigest()


Call = tuple[Script, Sequence[str], Sequence[Any], asyncio.Future]


class Batcher:
    def __init__(self, redis: Redis | RedisCluster, max_batch: int = 512) -> None:
        self._redis = redis
        self._max_batch = max_batch
        self._queue: list[Call] = []
        self._scheduled = False
        self.round_trips = 0

    def submit(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Awaitable[Any]:
        """Same as `call` here (the DirectBatcher saves frames with it)."""
        return self.call(script, keys, args)

    async def call(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        future = asyncio.get_running_loop().create_future()
        self._queue.append((script, keys, args, future))
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._start_flush)
        return await future

    def _start_flush(self) -> None:
        self._scheduled = False
        while self._queue:
            batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
            asyncio.get_running_loop().create_task(self._flush(batch))

    async def _flush(self, batch: list[Call]) -> None:
        try:
            results = await self._execute(batch)
            missing = [i for i, result in enumerate(results) if isinstance(result, NoScriptError)]
            if missing:
                # Redis restarted or was flushed: load the scripts again and retry those calls once.
                for script in {batch[i][0].sha: batch[i][0] for i in missing}.values():
                    await self._redis.script_load(script.source)
                retried = await self._execute([batch[i] for i in missing])
                for i, result in zip(missing, retried, strict=True):
                    results[i] = result
        except UNAVAILABLE as exc:
            for *_, future in batch:
                if not future.done():
                    future.set_exception(LiveUnavailable(str(exc) or type(exc).__name__))
            return
        except Exception as exc:
            for *_, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (*_, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, UNAVAILABLE):
                future.set_exception(LiveUnavailable(str(result)))
            elif isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)

    async def _execute(self, batch: list[Call]) -> list[Any]:
        self.round_trips += 1
        pipe = self._redis.pipeline(transaction=False)
        for script, keys, args, _ in batch:
            pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
        return list(await pipe.execute(raise_on_error=False))
