"""Card keys (卡密): batches made in bulk, redemption bound to one environment, recharge, void, export."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import asyncpg

from licsrv.codes import card_code_is_well_formed, new_card_codes, new_license_key, normalise
from licsrv.db import Queries
from licsrv.errors import ApiError
from licsrv.paging import decode_cursor, encode_cursor
from licsrv.services.audit import Actor, record_change, record_security_event
from licsrv.services.licensing import ensure_license_usable, find_client_license, license_view
from licsrv.services.products import Product, ensure_product_open
from licsrv.webhooks.catalogue import device_data, license_data
from licsrv.webhooks.outbox import emit

if TYPE_CHECKING:
    from licsrv.deps import Deps

MAX_BATCH = 1_000_000
COPY_CHUNK = 20_000
GENERATE_SLICE = 2_000


async def generate_batch(
    conn: asyncpg.Connection,
    queries: Queries,
    product_id: int,
    count: int,
    duration_days: int,
    note: str,
    actor: Actor,
    progress: Callable[[int], None] | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """One transaction; codes go in with COPY, so 100 000 cards take a few seconds."""
    if not actor.can_change():
        raise ApiError("FORBIDDEN")
    if not 1 <= count <= MAX_BATCH:
        raise ApiError("VALIDATION_ERROR", f"count must be between 1 and {MAX_BATCH}.")
    if not 1 <= duration_days <= 36500:
        raise ApiError("VALIDATION_ERROR", "duration_days must be between 1 and 36500.")
    codes = await _codes_in_slices(count)
    async with conn.transaction():
        if await queries.get_product(conn, id=product_id) is None:
            raise ApiError("NOT_FOUND", "The product was not found.")
        await ensure_product_open(conn, queries, product_id)
        batch = await queries.insert_card_batch(
            conn,
            product_id=product_id,
            count=count,
            duration_days=duration_days,
            note=note,
            created_by=actor.name,
        )
        for start in range(0, count, COPY_CHUNK):
            chunk = codes[start : start + COPY_CHUNK]
            await conn.copy_records_to_table(
                "card_keys", records=((batch["id"], code) for code in chunk), columns=("batch_id", "code")
            )
            if progress:
                progress(len(chunk))
        await record_change(
            conn,
            queries,
            actor,
            "cards.generate",
            "card_batch",
            batch["id"],
            after={"count": count, "duration_days": duration_days, "note": note},
        )
    return dict(batch), codes


async def _codes_in_slices(count: int) -> list[str]:
    """Large batches are made a slice at a time, yielding between slices, so the heartbeats this worker
    serves meanwhile wait milliseconds, not the whole batch."""
    codes: list[str] = []
    while len(codes) < count:
        codes.extend(new_card_codes(min(GENERATE_SLICE, count - len(codes))))
        await asyncio.sleep(0)
    return codes


async def export_csv(conn: asyncpg.Connection, queries: Queries, batch_id: int) -> str:
    batch = await queries.get_card_batch(conn, id=batch_id)
    if batch is None:
        raise ApiError("NOT_FOUND", "The card batch was not found.")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["code", "status", "duration_days", "license_key", "hardware_id", "ip", "redeemed_at"])
    for number, card in enumerate(await queries.batch_cards(conn, batch_id=batch_id)):
        if number % GENERATE_SLICE == GENERATE_SLICE - 1:
            await asyncio.sleep(0)
        redeemed = card["redeemed_at"].isoformat() if card["redeemed_at"] else ""
        writer.writerow(
            [
                card["code"],
                card["status"],
                batch["duration_days"],
                card["license_key"] or "",
                card["hardware_id"] or "",
                card["ip"] or "",
                redeemed,
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


async def void_card(conn: asyncpg.Connection, queries: Queries, code: str, actor: Actor) -> None:
    if not actor.can_change():
        raise ApiError("FORBIDDEN")
    async with conn.transaction():
        card = await queries.void_card(conn, code=normalise(code))
        if card is None:
            raise ApiError("CARD_NOT_FOUND", "No unused card with this code.")
        await record_change(conn, queries, actor, "cards.void", "card", card["code"])


class _BoundElsewhere(Exception):
    pass


async def redeem_card(
    deps: Deps,
    product: Product,
    card_key: str,
    hardware_id: str,
    ip: str | None,
    license_key: str | None = None,
) -> dict[str, Any]:
    """The client's redemption as one unit of work on one connection."""
    async with deps.db.connection() as conn:
        return await redeem(conn, deps.q, product, card_key, hardware_id, ip, deps.now(), license_key)


async def redeem(
    conn: asyncpg.Connection,
    queries: Queries,
    product: Product,
    card_key: str,
    hardware_id: str,
    ip: str | None,
    now: datetime,
    license_key: str | None = None,
) -> dict[str, Any]:
    code = normalise(card_key)
    if not card_code_is_well_formed(code):
        raise ApiError("CARD_NOT_FOUND")  # a typo: caught by the check character, no lookup needed
    try:
        async with conn.transaction():
            card = await queries.lock_card(conn, code=code)
            if card is None or card["product_id"] != product.id:
                raise ApiError("CARD_NOT_FOUND")
            if card["status"] == "void":
                raise ApiError("CARD_VOID")
            if license_key:
                return await _recharge(conn, queries, product, card, license_key, hardware_id, ip, now)
            if card["status"] == "new":
                return await _first_redemption(conn, queries, product, card, hardware_id, ip, now)
            return await _redeem_again(conn, queries, card, hardware_id, ip, now)
    except _BoundElsewhere:
        # Recorded outside the refused transaction, so the evidence survives the refusal.
        await record_security_event(
            conn,
            queries,
            "card_bound_elsewhere",
            {"card": code[:6] + "…", "hardware_id": hardware_id[:200], "ip": ip},
            ip=ip,
            product_id=product.id,
        )
        raise ApiError("CARD_BOUND_ELSEWHERE") from None


async def _first_redemption(conn, queries, product, card, hardware_id, ip, now) -> dict[str, Any]:
    license_row = await queries.insert_license(
        conn,
        key=new_license_key(),
        product_id=product.id,
        customer_name="",
        customer_email="",
        max_devices=1,
        max_sessions=None,
        features={},
        notes=f"card {card['code'][:6]}…",
        expires_at=None,
        duration=timedelta(days=card["duration_days"]),
        plan_id=None,
    )
    license_row = await queries.start_license_clock(conn, id=license_row["id"], now=now)
    device_id = await queries.insert_device(
        conn,
        license_id=license_row["id"],
        hardware_id=hardware_id,
        machine_name="",
        ip=ip,
        client_version="",
        now=now,
    )
    await queries.redeem_card(
        conn, id=card["id"], license_id=license_row["id"], hardware_id=hardware_id, ip=ip, now=now
    )
    await emit(conn, queries, "license.created", license_data(license_row))
    device = {"license_key": license_row["key"], "device_id": device_id, "ip": ip}
    await emit(conn, queries, "device.activated", device_data(license_row["id"], hardware_id, **device))
    await emit(conn, queries, "card.redeemed", _card_event(card, license_row, hardware_id, ip, "created"))
    return {**license_view(license_row, 1), "redeemed": True}


def _card_event(card: Any, license_row: Any, hardware_id: str, ip: str | None, outcome: str) -> dict:
    return {
        "card_code": card["code"],
        "batch_id": card["batch_id"],
        "outcome": outcome,
        "license_id": license_row["id"],
        "license_key": license_row["key"],
        "hardware_id": hardware_id,
        "ip": ip,
    }


async def _redeem_again(conn, queries, card, hardware_id, ip, now) -> dict[str, Any]:
    same_hardware = card["hardware_id"] == hardware_id
    same_ip = card["ip"] == ip
    if not same_hardware and not same_ip:
        raise _BoundElsewhere()
    if not same_hardware:
        await queries.rebind_device(
            conn,
            license_id=card["license_id"],
            old_hardware_id=card["hardware_id"],
            new_hardware_id=hardware_id,
            ip=ip,
            now=now,
        )
    if not (same_hardware and same_ip):
        await queries.rebind_card(conn, id=card["id"], hardware_id=hardware_id, ip=ip)
    license_row = await queries.get_license(conn, id=card["license_id"])
    used = await queries.count_devices(conn, license_id=license_row["id"])
    return {**license_view(license_row, used), "redeemed": True}


async def _recharge(conn, queries, product, card, license_key, hardware_id, ip, now) -> dict[str, Any]:
    target = await find_client_license(conn, queries, product, license_key)
    if card["status"] == "redeemed":
        if card["license_id"] != target["id"]:
            raise ApiError("CARD_BOUND_ELSEWHERE")
        used = await queries.count_devices(conn, license_id=target["id"])
        return {**license_view(target, used), "recharged": True}
    locked = await queries.lock_license(conn, id=target["id"])
    if locked["status"] == "revoked":
        ensure_license_usable(locked, now)
    license_row = await queries.recharge_license(conn, id=target["id"], days=card["duration_days"], now=now)
    await queries.redeem_card(
        conn, id=card["id"], license_id=target["id"], hardware_id=hardware_id, ip=ip, now=now
    )
    await emit(
        conn, queries, "license.extended", {**license_data(license_row), "days": card["duration_days"]}
    )
    await emit(conn, queries, "card.redeemed", _card_event(card, license_row, hardware_id, ip, "recharged"))
    used = await queries.count_devices(conn, license_id=target["id"])
    return {**license_view(license_row, used), "recharged": True}


# The use cases as the admin UI and the management API call them: each opens the one connection it uses.


async def create_batch(deps: Deps, actor: Actor, **fields: Any) -> tuple[dict[str, Any], list[str]]:
    async with deps.db.connection() as conn:
        return await generate_batch(conn, deps.q, actor=actor, **fields)


async def list_batches(deps: Deps, cursor: str | None, limit: int) -> tuple[list[dict[str, Any]], str | None]:
    async with deps.db.connection() as conn:
        rows = await deps.q.list_card_batches(conn, after_id=decode_cursor(cursor), row_limit=limit + 1)
    page = [dict(row) for row in rows[:limit]]
    return page, encode_cursor(page[-1]["id"]) if len(rows) > limit else None


async def batch_csv(deps: Deps, batch_id: int) -> str:
    async with deps.db.connection() as conn:
        return await export_csv(conn, deps.q, batch_id)


async def void_whole_batch(deps: Deps, batch_id: int, actor: Actor) -> int:
    async with deps.db.connection() as conn:
        return await void_batch(conn, deps.q, batch_id, actor)


async def void_one_card(deps: Deps, code: str, actor: Actor) -> None:
    async with deps.db.connection() as conn:
        await void_card(conn, deps.q, code, actor)
