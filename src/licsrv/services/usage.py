"""Usage over time for the dashboard charts: the sampler that keeps each hour's peak of live sessions per
product, and the series of the last 24 hours and 30 days (sessions, licenses sold, activations,
redemptions)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from licsrv.deps import Deps

HOURS = 24
DAYS = 30

Series = list[tuple[datetime, int]]


@dataclass(frozen=True)
class UsageCharts:
    """Every series is complete (one point per hour or day, zero where nothing happened), oldest first."""

    sessions_per_hour: Series
    sessions_per_day: Series
    licenses_per_day: Series
    activations_per_day: Series
    redemptions_per_day: Series


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _day(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


async def sample_once(deps: Deps) -> dict[int, int]:
    """Counts the live sessions of each product now and raises the current hour's peak where it is higher."""
    async with deps.db.connection() as conn:
        counts = {row["product_id"]: row["live"] for row in await deps.q.count_open_sessions_by_product(conn)}
        if counts:
            await deps.q.record_usage_peaks(
                conn, product_ids=list(counts), peaks=list(counts.values()), hour=_hour(deps.now())
            )
    return counts


async def run_sampler(deps: Deps) -> None:
    """The supervised loop: a sample at start, then one every `usage_sample_interval` seconds."""
    while True:
        await sample_once(deps)
        await asyncio.sleep(deps.settings.usage_sample_interval)


def _filled(rows: list, key: str, start: datetime, steps: int, step: timedelta) -> Series:
    found = {row[0]: row[key] for row in rows}
    return [(start + i * step, found.get(start + i * step, 0)) for i in range(steps)]


async def usage_charts(deps: Deps, product_id: int | None) -> UsageCharts:
    """The charts' data for one product (None: all products), each query a range scan on its time index."""
    now = deps.now()
    first_hour = _hour(now) - timedelta(hours=HOURS - 1)
    first_day = _day(now) - timedelta(days=DAYS - 1)
    hour, day = timedelta(hours=1), timedelta(days=1)
    async with deps.db.connection() as conn:
        per_hour = await deps.q.usage_per_hour(conn, since=first_hour, product_id=product_id)
        per_day = await deps.q.usage_per_day(conn, since=first_day, product_id=product_id)
        sold = await deps.q.licenses_sold_per_day(conn, since=first_day, product_id=product_id)
        activated = await deps.q.activations_per_day(conn, since=first_day, product_id=product_id)
        redeemed = await deps.q.redemptions_per_day(conn, since=first_day, product_id=product_id)
    return UsageCharts(
        sessions_per_hour=_filled(per_hour, "peak", first_hour, HOURS, hour),
        sessions_per_day=_filled(per_day, "peak", first_day, DAYS, day),
        licenses_per_day=_filled(sold, "n", first_day, DAYS, day),
        activations_per_day=_filled(activated, "n", first_day, DAYS, day),
        redemptions_per_day=_filled(redeemed, "n", first_day, DAYS, day),
    )


@dataclass
class ChartCache:
    """The charts' data per product scope for `ttl` seconds: hourly and daily series move slowly, and a shop
    selling 100 000 licenses a month would otherwise count them on every dashboard view."""

    ttl: float
    _entries: dict[int | None, tuple[float, UsageCharts]] = field(default_factory=dict)

    async def charts(self, deps: Deps, product_id: int | None) -> UsageCharts:
        found = self._entries.get(product_id)
        if found and found[0] > time.monotonic():
            return found[1]
        data = await usage_charts(deps, product_id)
        self._entries[product_id] = (time.monotonic() + self.ttl, data)
        return data
