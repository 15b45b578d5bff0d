"""`licsrv import licenses FILE.csv`: licenses from an older system, with their keys and activated devices
(the same import as `POST /api/v1/admin/licenses/import`; docs/migrating-from-000.md)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import click

from licsrv.db import Queries
from licsrv.services.license_import import ImportReport


@click.group("import")
def import_group() -> None:
    """Bring data over from an older system."""


@import_group.command("licenses")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--product", "product_slug", default="default", show_default=True, help="For lines without one."
)
@click.option("--dry-run", is_flag=True, help="Check every line and write nothing.")
def import_licenses_command(csv_file: Path, product_slug: str, dry_run: bool) -> None:
    """Import licenses from CSV_FILE (columns in docs/api.md); the same file again changes nothing.
    Exits 1 when a line was refused (the others are imported)."""
    from licsrv.cli_env import cli_settings as _settings
    from licsrv.cli_env import run

    try:
        text = csv_file.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise click.ClickException(f"{csv_file} is not UTF-8 text.") from None
    settings = _settings()

    async def work(conn: asyncpg.Connection, queries: Queries) -> ImportReport:
        return await _import(settings, conn, queries, text, product_slug, dry_run)

    # A file may suspend or revoke licenses: their live sessions must end and their starts be blocked in
    # Redis, as an admin's suspension would, so a writing import does not run without it.
    report = run(settings, work, needs=() if dry_run else ("redis_url", "secret_key"))
    _summary(report)
    if report.refusals:
        sys.exit(1)


async def _import(settings, conn, queries, text: str, product_slug: str, dry_run: bool) -> ImportReport:
    from licsrv.errors import ApiError
    from licsrv.live.batcher import Batcher
    from licsrv.live.client import make_redis
    from licsrv.live.sessions import LiveSessions
    from licsrv.services.audit import CLI_ACTOR
    from licsrv.services.license_import import import_licenses

    product_id = await queries.get_product_id_by_slug(conn, slug=product_slug)
    if product_id is None:
        raise ApiError("NOT_FOUND", f"No product with slug {product_slug!r}.")
    timeout = max((p["session_timeout"] for p in await queries.list_products(conn)), default=60)
    # Redis for licenses the file suspends or revokes: their live sessions end, as an admin's would.
    redis = None if dry_run else make_redis(settings.redis_url)
    live = LiveSessions(redis, Batcher(redis), id_key=settings.secret_key.encode()) if redis else None
    lines = max(text.count("\n"), 1)
    try:
        with click.progressbar(length=lines, label="Importing licenses", file=sys.stderr) as bar:
            return await import_licenses(
                conn,
                queries,
                text,
                default_product_id=product_id,
                dry_run=dry_run,
                actor=CLI_ACTOR,
                live=live,
                tombstone_seconds=timeout,
                now=datetime.now(UTC),
                progress=bar.update,
            )
    finally:
        if redis is not None:
            await redis.aclose()


def _summary(report: ImportReport) -> None:
    result = report.as_dict()
    for refusal in result["refusals"]:
        click.echo(
            f"line {refusal['line']} ({refusal['key']}): {refusal['code']} {refusal['message']}", err=True
        )
    if result["refusals_truncated"]:
        click.echo(f"… {result['refused'] - len(result['refusals'])} more refusals not listed", err=True)
    prefix = "dry run, nothing written: " if report.dry_run else ""
    click.echo(
        f"{prefix}created {report.created}, updated {report.updated}, unchanged {report.unchanged}, "
        f"refused {len(report.refusals)}"
    )
