"""IP retention (DESIGN §2 "Personal data"): addresses older than the retention period are blanked, a batch
per statement so that no table is locked for long while clients keep starting sessions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import asyncpg

from licsrv.db import Queries
from licsrv.domain import MAX_DURATION_DAYS

BATCH = 10_000

# What is blanked, in the order it runs: the name printed, and the statement that blanks one batch.
PLACES = (
    ("session_history", "blank_old_history_ips"),
    ("card_keys", "blank_old_card_ips"),
    ("security_events", "blank_old_security_event_ips"),
    ("audit_log", "blank_old_audit_ips"),
)


def cutoff(now: datetime, days: int) -> datetime:
    if not 1 <= days <= MAX_DURATION_DAYS:
        raise ValueError(f"the retention period must be between 1 and {MAX_DURATION_DAYS} days")
    return now - timedelta(days=days)


async def blank_old_ips(
    conn: asyncpg.Connection,
    queries: Queries,
    before: datetime,
    *,
    batch: int = BATCH,
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, int]:
    """Rows blanked per table. Outside a transaction: each batch commits on its own, so a run that is stopped
    keeps what it did and the next run goes on from there."""
    counts = {"devices": await _blank_devices(conn, queries, before, batch, progress)}
    for name, statement in PLACES:
        counts[name] = 0
        while True:
            blanked = await getattr(queries, statement)(conn, before=before, batch=batch)
            counts[name] += blanked
            if progress and blanked:
                progress(name, blanked)
            if blanked < batch:
                break
    return counts


async def _blank_devices(
    conn: asyncpg.Connection,
    queries: Queries,
    before: datetime,
    batch: int,
    progress: Callable[[str, int], None] | None,
) -> int:
    bounds = await queries.device_id_bounds(conn)
    if bounds["low"] is None:
        return 0
    total = 0
    for start in range(bounds["low"], bounds["high"] + 1, batch):
        blanked = await queries.blank_old_device_ips(conn, before=before, from_id=start, to_id=start + batch)
        total += blanked
        if progress and blanked:
            progress("devices", blanked)
    return total
