"""The live session store: start, heartbeat, end and terminate, each one Lua script through the batcher."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from licsrv.live.batcher import UNAVAILABLE, Batcher, Script
from licsrv.live.errors import LiveUnavailable
from licsrv.live.keys import (
    BadToken,
    TokenCodec,
    block_key,
    member,
    public_id,
    session_key,
    session_prefix,
    sessions_key,
    tombstone_key,
    tombstone_prefix,
)

if TYPE_CHECKING:
    from licsrv.live.wire import DirectBatcher

__all__ = [
    "BadToken",
    "LicenseBlocked",
    "LiveSessions",
    "SessionExpired",
    "SessionLimitReached",
    "SessionTerminated",
    "StartResult",
]

# The per-license index outlives its sessions by a day, so a late start or listing can still tell when an
# expired session ended (its score) and close its history as `timeout`.
INDEX_TTL_MS = 24 * 3600 * 1000


def _script(name: str) -> Script:
    return Script((Path(__file__).parent / name).read_text())


START = _script("start.lua")
HEARTBEAT = _script("heartbeat.lua")
END = _script("end.lua")
TERMINATE = _script("terminate.lua")
BLOCK_LICENSE = _script("block_license.lua")


class SessionLimitReached(Exception):
    pass


class SessionExpired(Exception):
    pass


class LicenseBlocked(Exception):
    """The license was suspended or revoked in Redis while the start was on its way."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SessionTerminated(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class StartResult:
    session_id: str
    token: str
    replaced: list[str]
    expired: list[tuple[str, int]]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _gone(result: object) -> Exception:
    if result in (0, b"0", None):
        return SessionExpired()
    return SessionTerminated(_text(result))


def _heartbeat_call(
    license_id: int, stored: bytes, session_timeout_s: int, now_ms: int
) -> tuple[list[bytes | str], list[Any]]:
    timeout_ms = session_timeout_s * 1000
    keys = [session_key(license_id, stored), sessions_key(license_id), tombstone_key(license_id, stored)]
    return keys, [timeout_ms, now_ms, stored, max(INDEX_TTL_MS, 2 * timeout_ms)]


class LiveSessions:
    def __init__(self, redis: Redis | RedisCluster, batcher: Batcher | DirectBatcher, id_key: bytes) -> None:
        self._redis = redis
        self._batcher = batcher
        self.tokens = TokenCodec(id_key)

    async def start(
        self,
        license_id: int,
        max_sessions: int,
        policy: str,
        session_timeout_s: int,
        now_ms: int,
        scope: int = 0,
        mac: bool = False,
    ) -> StartResult:
        """`scope` (the product id) must be given again with the token, else the token names no session;
        `mac` makes a token whose session is answered with its MAC key only."""
        token, session_id = self.tokens.new_token(license_id, now_ms // 1000, scope, mac)
        stored = member(session_id)
        timeout_ms = session_timeout_s * 1000
        ok, expired, replaced, *blocked = await self._batcher.call(
            START,
            [sessions_key(license_id), session_key(license_id, stored), block_key(license_id)],
            [
                now_ms,
                timeout_ms,
                max_sessions,
                policy,
                stored,
                session_prefix(license_id),
                tombstone_prefix(license_id),
                max(INDEX_TTL_MS, 2 * timeout_ms),
            ],
        )
        if ok == 2:
            raise LicenseBlocked(_text(blocked[0]))
        pairs = [(public_id(expired[i]), int(float(expired[i + 1]))) for i in range(0, len(expired), 2)]
        if not ok:
            raise SessionLimitReached()
        return StartResult(session_id, token, [public_id(r) for r in replaced], pairs)

    async def heartbeat(self, token: str, session_timeout_s: int, now_ms: int, scope: int = 0) -> None:
        license_id, stored = self.tokens.locate(token, scope)
        await self.heartbeat_session(license_id, stored, session_timeout_s, now_ms)

    async def heartbeat_session(
        self, license_id: int, stored: bytes, session_timeout_s: int, now_ms: int
    ) -> None:
        """The heartbeat of a token already located (`stored`: its 12-byte member)."""
        reply = await self.queue_heartbeat(license_id, stored, session_timeout_s, now_ms)
        if reply != 1:
            await self.settle_heartbeat(license_id, stored, session_timeout_s, now_ms, reply)

    def queue_heartbeat(
        self, license_id: int, stored: bytes, session_timeout_s: int, now_ms: int
    ) -> Awaitable[Any]:
        """Queues the heartbeat script (batched with the other calls of this loop tick). Its reply is 1 for a
        live session; any other reply goes to `settle_heartbeat`."""
        keys, args = _heartbeat_call(license_id, stored, session_timeout_s, now_ms)
        return self._batcher.submit(HEARTBEAT, keys, args)

    async def settle_heartbeat(
        self, license_id: int, stored: bytes, session_timeout_s: int, now_ms: int, reply: Any
    ) -> None:
        """A reply other than 1: the script was lost (it is loaded and run again) or failed (raised), else the
        session is gone (SessionExpired, SessionTerminated)."""
        if isinstance(reply, Exception):
            keys, args = _heartbeat_call(license_id, stored, session_timeout_s, now_ms)
            reply = await self._batcher.call(HEARTBEAT, keys, args)
        if reply != 1:
            raise _gone(reply)

    async def end(self, token: str, now_ms: int, scope: int = 0) -> str:
        license_id, session_id = self.tokens.parse(token, scope)
        stored = member(session_id)
        result = await self._batcher.call(
            END,
            [session_key(license_id, stored), sessions_key(license_id), tombstone_key(license_id, stored)],
            [stored],
        )
        if result != 1:
            raise _gone(result)
        return session_id

    async def terminate(self, license_id: int, session_id: str, reason: str, session_timeout_s: int) -> bool:
        try:
            stored = member(session_id)
        except BadToken:
            return False
        result = await self._batcher.call(
            TERMINATE,
            [session_key(license_id, stored), sessions_key(license_id), tombstone_key(license_id, stored)],
            [stored, reason, session_timeout_s * 1000],
        )
        return result == 1

    async def block_license(self, license_id: int, reason: str, session_timeout_s: int) -> list[str]:
        """Mark the license blocked and end its live sessions in one script; returns the ended ids."""
        ended = await self._batcher.call(
            BLOCK_LICENSE,
            [sessions_key(license_id), block_key(license_id)],
            [reason, session_timeout_s * 1000, session_prefix(license_id), tombstone_prefix(license_id)],
        )
        return [public_id(stored) for stored in ended]

    async def unblock_license(self, license_id: int) -> None:
        try:
            await self._redis.delete(block_key(license_id))
        except UNAVAILABLE as exc:
            raise LiveUnavailable(str(exc)) from exc

    async def expiry_of(self, sessions: list[tuple[int, str]]) -> list[int | None]:
        """Each (license id, session id)'s expiry in ms from its license's index, in one round trip; None
        for a session its index no longer holds. Bounded by the caller's page, never by the whole store."""
        if not sessions:
            return []
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for license_id, session_id in sessions:
                    pipe.zscore(sessions_key(license_id), member(session_id))
                scores = await pipe.execute()
        except UNAVAILABLE as exc:
            raise LiveUnavailable(str(exc)) from exc
        return [int(score) if score is not None else None for score in scores]

    async def expiries(self, license_id: int) -> dict[str, int]:
        """Every session id in the license's index with its expiry in ms (past ones included)."""
        try:
            pairs = await self._redis.zrange(sessions_key(license_id), 0, -1, withscores=True)
        except UNAVAILABLE as exc:
            raise LiveUnavailable(str(exc)) from exc
        return {public_id(stored): int(score) for stored, score in pairs}
