"""`licsrv products …` and `licsrv plans …`: the catalogue from the command line (DESIGN §2)."""

from __future__ import annotations

from typing import Any

import asyncpg
import click

from licsrv.bounded import typed_value
from licsrv.db import Queries
from licsrv.errors import ApiError
from licsrv.services.audit import CLI_ACTOR


def _run(work: Any) -> Any:
    from licsrv.cli_env import cli_settings as _settings
    from licsrv.cli_env import run

    return run(_settings(), work)


async def _product_id(conn: asyncpg.Connection, queries: Queries, slug: str) -> int:
    product_id = await queries.get_product_id_by_slug(conn, slug=slug)
    if product_id is None:
        raise ApiError("NOT_FOUND", f"No product with slug {slug!r}.")
    return product_id


def _features(pairs: tuple[str, ...]) -> dict[str, Any]:
    features: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(
                f"{pair!r}: write a feature as name=value, e.g. pro=true.", param_hint="--feature"
            )
        if name.strip() in features:
            raise click.BadParameter(f"{name.strip()!r} is given twice.", param_hint="--feature")
        features[name.strip()] = typed_value(value.strip())
    return features


@click.group()
def products() -> None:
    """Products: one per program you sell."""


@products.command("create")
@click.option("--name", required=True)
@click.option("--slug", required=True, help="Lower-case letters, digits and dashes.")
@click.option("--api-key", default=None, help="Keep the client API key the program already has.")
def products_create(name: str, slug: str, api_key: str | None) -> None:
    """Create a product and print its id, slug and client API key."""
    from licsrv.services.products import insert_product

    fields = {"name": name, "slug": slug, "api_key": api_key}
    product = _run(lambda conn, q: insert_product(conn, q, fields, CLI_ACTOR))
    click.echo(f"product {product.id} {product.slug}: API key {product.api_key}")


@products.command("list")
def products_list() -> None:
    """Every product: id, slug, state and name."""
    from licsrv.services.products import list_products

    for product in _run(list_products):
        state = "archived" if product.archived_at else "open"
        click.echo(f"{product.id}\t{product.slug}\t{state}\t{product.name}")


@products.command("archive")
@click.argument("slug")
@click.option("--undo", is_flag=True, help="Open the product again.")
def products_archive(slug: str, undo: bool) -> None:
    """Archive the product SLUG: no new licenses, plans or cards; its licenses keep working."""
    from licsrv.services.products import set_archived

    async def work(conn: asyncpg.Connection, queries: Queries) -> Any:
        return await set_archived(conn, queries, await _product_id(conn, queries, slug), not undo, CLI_ACTOR)

    product = _run(work)
    click.echo(f"product {product.slug} {'archived' if product.archived_at else 'open'}")


@click.group()
def plans() -> None:
    """Plans: the license templates of a product."""


@plans.command("create")
@click.option("--product", "product_slug", default="default", show_default=True)
@click.option("--name", required=True)
@click.option("--max-devices", type=int, default=1, show_default=True)
@click.option("--max-sessions", type=int, default=None, help="Empty: the product's default.")
@click.option("--duration-days", type=int, default=None, help="Empty: perpetual.")
@click.option(
    "--feature", "feature_pairs", multiple=True, metavar="NAME=VALUE", help="Repeat for each feature."
)
def plans_create(product_slug: str, feature_pairs: tuple[str, ...], **fields: Any) -> None:
    """Create a plan and print its id."""
    from licsrv.services.plans import insert_plan

    fields["features"] = _features(feature_pairs)

    async def work(conn: asyncpg.Connection, queries: Queries) -> Any:
        return await insert_plan(
            conn, queries, await _product_id(conn, queries, product_slug), fields, CLI_ACTOR
        )

    plan = _run(work)
    click.echo(f"plan {plan['id']}: {plan['name']}")


@plans.command("list")
@click.option("--product", "product_slug", default=None, help="Only this product's plans.")
def plans_list(product_slug: str | None) -> None:
    """Plans: id, product, state, devices, sessions, days, features, name."""
    import orjson

    from licsrv.services.plans import plans_of

    async def work(conn: asyncpg.Connection, queries: Queries) -> Any:
        product_id = await _product_id(conn, queries, product_slug) if product_slug else None
        return await plans_of(conn, queries, product_id)

    for plan in _run(work):
        click.echo(
            "\t".join(
                [
                    str(plan["id"]),
                    plan["product_slug"],
                    "archived" if plan["archived_at"] else "offered",
                    f"{plan['max_devices']} devices",
                    f"{plan['max_sessions'] or 'default'} sessions",
                    f"{plan['duration_days']} days" if plan["duration_days"] else "perpetual",
                    orjson.dumps(plan["features"]).decode(),
                    plan["name"],
                ]
            )
        )


@plans.command("archive")
@click.argument("plan_id", type=int)
def plans_archive(plan_id: int) -> None:
    """Archive the plan PLAN_ID: nothing new is made from it."""
    from licsrv.services.plans import archive_plan

    plan = _run(lambda conn, q: archive_plan(conn, q, plan_id, CLI_ACTOR))
    click.echo(f"plan {plan['id']} archived")
