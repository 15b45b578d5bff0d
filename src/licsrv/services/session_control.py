"""The Redis-backed LiveSessionControl: how suspending, revoking or deactivating ends live sessions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

from licsrv.db import Database
from licsrv.live.sessions import LiveSessions
from licsrv.services.products import ProductCache


class LiveSessionControl(Protocol):
    """What license changes need from the live store; tests may pass a recording stand-in."""

    async def end_license_sessions(self, license_id: int, reason: str) -> None: ...

    async def end_device_sessions(self, license_id: int, hardware_id: str) -> None: ...


class RedisSessionControl:
    def __init__(self, db: Database, live: LiveSessions, products: ProductCache) -> None:
        self._db = db
        self._live = live
        self._products = products

    def _tombstone_seconds(self) -> int:
        # The tombstone must outlive the session it replaces; the longest timeout of any product does.
        return max((p.session_timeout for p in self._products.all()), default=60)

    async def end_license_sessions(self, license_id: int, reason: str) -> None:
        await self._live.terminate_license(license_id, reason, self._tombstone_seconds())
        async with self._db.transaction() as conn:
            await self._db.q.close_license_sessions(
                conn, license_id=license_id, ended_at=datetime.now(UTC), end_reason="revoked"
            )

    async def end_device_sessions(self, license_id: int, hardware_id: str) -> None:
        async with self._db.transaction() as conn:
            for row in await self._db.q.open_sessions_of_device(
                conn, license_id=license_id, hardware_id=hardware_id
            ):
                await self._live.terminate(license_id, row["id"], "forced", self._tombstone_seconds())
                await self._db.q.close_session_history(
                    conn, id=row["id"], ended_at=datetime.now(UTC), end_reason="forced"
                )
