"""`licsrv cards …`: generate a batch (by hand, perpetual or from a plan), show one card, void one card."""

from __future__ import annotations

import sys
import time
from typing import Any

import asyncpg
import click

from licsrv.db import Queries
from licsrv.errors import ApiError


def _run(work: Any) -> Any:
    # licsrv.cli registers this group at its end, so its helpers are imported when a command runs.
    from licsrv.cli_env import cli_settings as _settings
    from licsrv.cli_env import run

    return run(_settings(), work)


@click.group()
def cards() -> None:
    """Card keys (卡密)."""


@cards.command("generate")
@click.option("-n", "--count", type=click.IntRange(1, 1_000_000), required=True, help="How many cards.")
@click.option("-d", "--days", "duration_days", type=click.IntRange(1, 36500), help="Days from redemption.")
@click.option("--perpetual", is_flag=True, help="Cards without expiry (永久卡).")
@click.option(
    "--plan", "plan_id", type=click.IntRange(1), help="Take duration, devices and features from a plan."
)
@click.option("--devices", "max_devices", type=click.IntRange(1, 100_000), help="Device slots per card (1).")
@click.option(
    "--product", "product_slug", default=None, help="Product slug (default: the plan's, or default)."
)
@click.option("--note", default="")
@click.option(
    "--out", type=click.Path(dir_okay=False, writable=True), help="CSV file to write (else codes on stdout)."
)
def cards_generate(
    count: int,
    duration_days: int | None,
    perpetual: bool,
    plan_id: int | None,
    max_devices: int | None,
    product_slug: str | None,
    note: str,
    out: str | None,
) -> None:
    """Generate a batch of one-time card codes; print them grouped (XXXX-XXXX-…) or write them as CSV."""
    from licsrv.codes import format_card_code
    from licsrv.services.audit import CLI_ACTOR
    from licsrv.services.card_batches import export_csv
    from licsrv.services.cards import generate_batch

    terms = _terms(duration_days, perpetual, plan_id, max_devices)
    started = time.perf_counter()

    async def work(conn: asyncpg.Connection, queries: Queries) -> tuple[int, str | list[str]]:
        product_id = None
        if product_slug is not None or plan_id is None:
            product_id = await queries.get_product_id_by_slug(conn, slug=product_slug or "default")
            if product_id is None:
                raise ApiError("NOT_FOUND", f"No product with slug {product_slug!r}.")
        with click.progressbar(length=count, label="Generating cards", file=sys.stderr) as bar:
            batch, codes = await generate_batch(
                conn, queries, product_id, count, note=note, actor=CLI_ACTOR, progress=bar.update, **terms
            )
        if out is None:
            return batch["id"], [format_card_code(code) for code in codes]
        return batch["id"], await export_csv(conn, queries, batch["id"])

    batch_id, result = _run(work)
    elapsed = time.perf_counter() - started
    if out is None:
        click.echo("\n".join(result))
        click.echo(f"batch {batch_id}: {count} cards in {elapsed:.1f} s", err=True)
        return
    with open(out, "w", encoding="utf-8", newline="") as handle:
        handle.write(result)
    click.echo(f"batch {batch_id}: {count} cards written to {out} in {elapsed:.1f} s")


def _terms(
    duration_days: int | None, perpetual: bool, plan_id: int | None, max_devices: int | None
) -> dict[str, Any]:
    if plan_id is not None:
        if duration_days is not None or perpetual or max_devices is not None:
            raise click.UsageError(
                "--plan gives the duration and devices; leave out -d, --perpetual, --devices."
            )
        return {"plan_id": plan_id, "duration_days": None}
    if (duration_days is None) == (not perpetual):
        raise click.UsageError("Give either -d DAYS or --perpetual (or --plan ID).")
    return {"duration_days": duration_days, "max_devices": max_devices or 1}


@cards.command("show")
@click.argument("code")
def cards_show(code: str) -> None:
    """A card by its code (any grouping or case): state, batch and the license it made or recharged."""
    from licsrv.services.card_batches import lookup_card

    card = _run(lambda conn, queries: lookup_card(conn, queries, code))
    batch, license_ = card["batch"], card["license"]
    duration = f"{batch['duration_days']} days" if batch["duration_days"] else "perpetual"
    lines = [
        f"code        {card['code']}",
        f"state       {card['status']}",
        f"batch       #{batch['id']} {batch['note']}".rstrip(),
        f"product     {batch['product_name']}",
        f"plan        {batch['plan_name'] or '-'}",
        f"terms       {duration}, {batch['max_devices']} device(s)",
        f"redeemed    {card['redeemed_at'].isoformat() if card['redeemed_at'] else '-'}",
        f"hardware id {card['hardware_id'] or '-'}",
        f"ip          {card['ip'] or '-'}",
    ]
    if license_:
        lines.append(f"license     {license_['key']} ({'recharged' if license_['recharged'] else 'made'})")
    click.echo("\n".join(lines))


@cards.command("void")
@click.argument("code")
def cards_void(code: str) -> None:
    """Void one new card so it can never be redeemed."""
    from licsrv.services.audit import CLI_ACTOR
    from licsrv.services.card_batches import void_card

    card = _run(lambda conn, queries: void_card(conn, queries, code, CLI_ACTOR))
    click.echo(f"{card['code']} void")
