"""Card keys (卡密): batches made in bulk, redemption bound to one environment, recharge, void, export."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import asyncpg
from marshmallow import ValidationError

from licsrv.bounded import check_features
from licsrv.codes import (
    card_code_is_well_formed,
    new_card_codes,
    new_license_key,
    normalise,
)
from licsrv.db import Queries
from licsrv.domain import MAX_DEVICES, MAX_DURATION_DAYS, MAX_SESSIONS
from licsrv.errors import ApiError
from licsrv.services.audit import Actor, record_change, record_security_event
from licsrv.services.licensing import ensure_license_usable, find_client_license, license_view
from licsrv.services.products import Product
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
    product_id: int | None,
    count: int,
    duration_days: int | None,
    note: str,
    actor: Actor,
    progress: Callable[[int], None] | None = None,
    *,
    plan_id: int | None = None,
    max_devices: int = 1,
    max_sessions: int | None = None,
    features: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """One transaction; codes go in with COPY, so 100 000 cards take a few seconds. A batch from a plan takes
    the plan's duration, devices, sessions and features (copied: editing the plan later changes no card);
    without a plan they are given here, `duration_days` None making perpetual cards (永久卡)."""
    if not actor.can_change():
        raise ApiError("FORBIDDEN")
    if not 1 <= count <= MAX_BATCH:
        raise ApiError("VALIDATION_ERROR", f"count must be between 1 and {MAX_BATCH}.")
    terms = await _batch_terms(
        conn, queries, product_id, plan_id, duration_days, max_devices, max_sessions, features or {}
    )
    codes = await _codes_in_slices(count)  # before the transaction: it stays short, never idle for seconds
    async with conn.transaction():
        batch = await queries.insert_card_batch(conn, count=count, note=note, created_by=actor.name, **terms)
        for start in range(0, count, COPY_CHUNK):
            chunk = codes[start : start + COPY_CHUNK]
            await conn.copy_records_to_table(
                "card_keys", records=((batch["id"], code) for code in chunk), columns=("batch_id", "code")
            )
            if progress:
                progress(len(chunk))
        after = {"count": count, "note": note, **{k: v for k, v in terms.items() if k != "product_id"}}
        await record_change(conn, queries, actor, "cards.generate", "card_batch", batch["id"], after=after)
    return dict(batch), codes


async def _batch_terms(
    conn: asyncpg.Connection,
    queries: Queries,
    product_id: int | None,
    plan_id: int | None,
    duration_days: int | None,
    max_devices: int,
    max_sessions: int | None,
    features: dict[str, Any],
) -> dict[str, Any]:
    """What every card of the batch gives, checked before anything is written."""
    if plan_id is not None:
        plan = await queries.card_batch_plan(conn, id=plan_id)
        if plan is None:
            raise ApiError("PLAN_NOT_FOUND")
        if product_id is not None and plan["product_id"] != product_id:
            raise ApiError("PLAN_OF_ANOTHER_PRODUCT", f"Plan {plan['name']!r} belongs to another product.")
        if plan["archived_at"] is not None:
            raise ApiError(
                "PLAN_ARCHIVED", f"Plan {plan['name']!r} is archived; nothing new is made from it."
            )
        product_id = plan["product_id"]
        duration_days, max_devices = plan["duration_days"], plan["max_devices"]
        max_sessions, features = plan["max_sessions"], plan["features"]
    product_id = 1 if product_id is None else product_id
    product = await queries.card_batch_product(conn, id=product_id)
    if product is None:
        raise ApiError("NOT_FOUND", "The product was not found.")
    if product["archived_at"] is not None:
        raise ApiError("PRODUCT_ARCHIVED")
    check_terms(duration_days, max_devices, max_sessions, features)
    return {
        "product_id": product_id,
        "plan_id": plan_id,
        "duration_days": duration_days,
        "max_devices": max_devices,
        "max_sessions": max_sessions,
        "features": features,
    }


def check_terms(
    duration_days: int | None, max_devices: int, max_sessions: int | None, features: dict[str, Any]
) -> None:
    if duration_days is not None and not 1 <= duration_days <= MAX_DURATION_DAYS:
        raise ApiError("VALIDATION_ERROR", f"Days of validity must be between 1 and {MAX_DURATION_DAYS}.")
    if not 1 <= max_devices <= MAX_DEVICES:
        raise ApiError("VALIDATION_ERROR", f"A card gives between 1 and {MAX_DEVICES} device slots.")
    if max_sessions is not None and not 1 <= max_sessions <= MAX_SESSIONS:
        raise ApiError("VALIDATION_ERROR", f"Concurrent sessions must be between 1 and {MAX_SESSIONS}.")
    try:
        check_features(features)
    except ValidationError as exc:
        raise ApiError("VALIDATION_ERROR", " ".join(map(str, exc.messages))) from None


async def _codes_in_slices(count: int) -> list[str]:
    """Large batches are made a slice at a time, yielding between slices, so the heartbeats this worker
    serves meanwhile wait milliseconds, not the whole batch."""
    codes: list[str] = []
    while len(codes) < count:
        codes.extend(new_card_codes(min(GENERATE_SLICE, count - len(codes))))
        await asyncio.sleep(0)
    return codes


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


async def insert_card_license(
    conn: asyncpg.Connection, queries: Queries, card: Any, notes: str
) -> asyncpg.Record:
    """The license a new card makes: the batch's devices, sessions, features and plan; its duration (none for
    a perpetual card) starts at the first activation."""
    days = card["duration_days"]
    return await queries.insert_card_license(
        conn,
        key=new_license_key(),
        product_id=card["product_id"],
        plan_id=card["plan_id"],
        max_devices=card["max_devices"],
        max_sessions=card["max_sessions"],
        features=card["features"],
        notes=notes,
        duration=None if days is None else timedelta(days=days),
    )


async def _first_redemption(conn, queries, product, card, hardware_id, ip, now) -> dict[str, Any]:
    license_row = await insert_card_license(conn, queries, card, f"card {card['code'][:6]}…")
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
        conn,
        id=card["id"],
        license_id=license_row["id"],
        hardware_id=hardware_id,
        ip=ip,
        now=now,
        recharged=False,
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
        conn, id=card["id"], license_id=target["id"], hardware_id=hardware_id, ip=ip, now=now, recharged=True
    )
    await emit(
        conn, queries, "license.extended", {**license_data(license_row), "days": card["duration_days"]}
    )
    await emit(conn, queries, "card.redeemed", _card_event(card, license_row, hardware_id, ip, "recharged"))
    used = await queries.count_devices(conn, license_id=target["id"])
    return {**license_view(license_row, used), "recharged": True}
