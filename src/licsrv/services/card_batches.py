"""Card batches as admins see them: list, a batch's cards, one card found by its code, CSV export, void."""

from __future__ import annotations

import asyncio
import csv
import io
from typing import TYPE_CHECKING, Any

import asyncpg

from licsrv.codes import card_code_is_well_formed, format_card_code, normalise
from licsrv.db import Queries
from licsrv.errors import ApiError
from licsrv.paging import decode_cursor, encode_cursor
from licsrv.services.audit import Actor, record_change
from licsrv.services.cards import GENERATE_SLICE, generate_batch

if TYPE_CHECKING:
    from licsrv.deps import Deps

CSV_COLUMNS = (
    "code",
    "status",
    "duration_days",
    "license_key",
    "hardware_id",
    "ip",
    "redeemed_at",
    "recharged",
    "plan",
    "max_devices",
)


async def export_csv(conn: asyncpg.Connection, queries: Queries, batch_id: int) -> str:
    """Codes printed in groups; `duration_days` empty for perpetual cards; status new, redeemed or void."""
    batch = await queries.get_card_batch(conn, id=batch_id)
    if batch is None:
        raise ApiError("NOT_FOUND", "The card batch was not found.")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    duration = "" if batch["duration_days"] is None else batch["duration_days"]
    plan = batch["plan_name"] or ""
    for number, card in enumerate(await queries.batch_cards(conn, batch_id=batch_id)):
        if number % GENERATE_SLICE == GENERATE_SLICE - 1:
            await asyncio.sleep(0)
        redeemed = card["redeemed_at"].isoformat() if card["redeemed_at"] else ""
        writer.writerow(
            [
                format_card_code(card["code"]),
                card["status"],
                duration,
                card["license_key"] or "",
                card["hardware_id"] or "",
                card["ip"] or "",
                redeemed,
                "yes" if card["recharged"] else "",
                plan,
                batch["max_devices"],
            ]
        )
    return out.getvalue()


async def void_batch(conn: asyncpg.Connection, queries: Queries, batch_id: int, actor: Actor) -> int:
    if not actor.can_change():
        raise ApiError("FORBIDDEN")
    async with conn.transaction():
        if await queries.get_card_batch(conn, id=batch_id) is None:
            raise ApiError("NOT_FOUND", "The card batch was not found.")
        voided = await queries.void_batch_cards(conn, batch_id=batch_id)
        await record_change(
            conn, queries, actor, "cards.void_batch", "card_batch", batch_id, after={"voided": voided}
        )
    return voided


async def void_card(conn: asyncpg.Connection, queries: Queries, code: str, actor: Actor) -> dict[str, Any]:
    """Only a `new` card can be voided; a redeemed or void one is refused and says which it is."""
    if not actor.can_change():
        raise ApiError("FORBIDDEN")
    code = normalise(code)
    async with conn.transaction():
        card = await queries.void_card(conn, code=code)
        if card is None:
            found = await queries.find_card(conn, code=code) if card_code_is_well_formed(code) else None
            if found is None:
                raise ApiError("CARD_NOT_FOUND")
            raise ApiError("CARD_NOT_NEW", f"Only a new card can be voided; this one is {found['status']}.")
        await record_change(
            conn,
            queries,
            actor,
            "cards.void",
            "card",
            format_card_code(card["code"]),
            before={"status": "new"},
            after={"status": "void"},
        )
    return {"code": format_card_code(card["code"]), "status": "void", "batch_id": card["batch_id"]}


# The use cases as the admin UI, the management API and the CLI call them, each on the one connection it uses.


async def create_batch(deps: Deps, actor: Actor, **fields: Any) -> tuple[dict[str, Any], list[str]]:
    async with deps.db.connection() as conn:
        return await generate_batch(conn, deps.q, actor=actor, **{"duration_days": None, **fields})


async def list_batches(
    deps: Deps, cursor: str | None, limit: int, product_id: int | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    async with deps.db.connection() as conn:
        rows = await deps.q.list_card_batches(
            conn, after_id=decode_cursor(cursor), row_limit=limit + 1, product_id=product_id
        )
    page = [dict(row) for row in rows[:limit]]
    return page, encode_cursor(page[-1]["id"]) if len(rows) > limit else None


async def batch_csv(deps: Deps, batch_id: int) -> str:
    async with deps.db.connection() as conn:
        return await export_csv(conn, deps.q, batch_id)


async def void_whole_batch(deps: Deps, batch_id: int, actor: Actor) -> int:
    async with deps.db.connection() as conn:
        return await void_batch(conn, deps.q, batch_id, actor)


async def void_one_card(deps: Deps, code: str, actor: Actor) -> dict[str, Any]:
    async with deps.db.connection() as conn:
        return await void_card(conn, deps.q, code, actor)


async def find_card(deps: Deps, code: str) -> dict[str, Any]:
    """A card by its code in any grouping or case: its batch, state and the license it made or recharged."""
    async with deps.db.connection() as conn:
        return await lookup_card(conn, deps.q, code)


async def lookup_card(conn: asyncpg.Connection, queries: Queries, code: str) -> dict[str, Any]:
    code = normalise(code)
    row = await queries.find_card(conn, code=code) if card_code_is_well_formed(code) else None
    if row is None:
        raise ApiError("CARD_NOT_FOUND")
    return card_view(row)


def card_view(row: Any) -> dict[str, Any]:
    license_ = None
    if row["license_id"] is not None:
        license_ = {"id": row["license_id"], "key": row["license_key"], "recharged": row["recharged"]}
    return {
        "code": format_card_code(row["code"]),
        "status": row["status"],
        "redeemed_at": row["redeemed_at"],
        "voided_at": row["voided_at"],
        "hardware_id": row["hardware_id"],
        "ip": row["ip"],
        "license": license_,
        "batch": {
            "id": row["batch_id"],
            "note": row["batch_note"],
            "product_id": row["product_id"],
            "product_name": row["product_name"],
            "plan_id": row["plan_id"],
            "plan_name": row["plan_name"],
            "duration_days": row["duration_days"],
            "max_devices": row["max_devices"],
            "max_sessions": row["max_sessions"],
            "features": row["features"],
            "created_by": row["created_by"],
            "created_at": row["created_at"],
        },
    }


async def batch_detail(
    deps: Deps, batch_id: int, cursor: str | None, limit: int
) -> tuple[dict[str, Any], list[dict[str, Any]], str | None]:
    """A batch and one page of its cards in the order they were made, each with its state and redeemer."""
    async with deps.db.connection() as conn:
        batch = await deps.q.get_card_batch(conn, id=batch_id)
        if batch is None:
            raise ApiError("NOT_FOUND", "The card batch was not found.")
        rows = await deps.q.batch_cards_page(
            conn, batch_id=batch_id, after_id=decode_cursor(cursor), row_limit=limit + 1
        )
    page = [{**dict(row), "code": format_card_code(row["code"])} for row in rows[:limit]]
    return dict(batch), page, encode_cursor(rows[limit - 1]["id"]) if len(rows) > limit else None


async def open_plans(deps: Deps, product_id: int | None) -> list[dict[str, Any]]:
    """The plans a new batch can come from: not archived, of an open product (of `product_id` if given)."""
    async with deps.db.connection() as conn:
        return [dict(row) for row in await deps.q.card_batch_open_plans(conn, product_id=product_id)]
