"""`licsrv retention`: blank the IP addresses older than the retention period (docs/personal-data.md)."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import click

from licsrv.cli_env import cli_settings, run
from licsrv.db import Queries
from licsrv.domain import MAX_DURATION_DAYS
from licsrv.services.retention import BATCH, blank_old_ips, cutoff


@click.command()
@click.option(
    "--days",
    type=click.IntRange(1, MAX_DURATION_DAYS),
    default=None,
    help="Keep addresses this many days (default LICSRV_IP_RETENTION_DAYS, 90).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(100, 1_000_000),
    default=BATCH,
    show_default=True,
    help="Rows per statement.",
)
def retention(days: int | None, batch_size: int) -> None:
    """Blank IP addresses older than the retention period, a batch of rows per statement (run daily)."""
    settings = cli_settings()
    days = days or settings.ip_retention_days
    before = cutoff(datetime.now(UTC), days)

    async def work(conn: asyncpg.Connection, queries: Queries) -> dict[str, int]:
        return await blank_old_ips(conn, queries, before, batch=batch_size)

    counts = run(settings, work)
    click.echo(f"IP addresses older than {days} days (before {before:%Y-%m-%d %H:%M} UTC) blanked:")
    for name, count in counts.items():
        click.echo(f"  {name:<16} {count}")
