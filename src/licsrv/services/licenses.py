"""Licenses as admins manage them: create, update, suspend, resume, revoke, extend, devices, search."""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import asyncpg

from licsrv.codes import new_license_key
from licsrv.db import Queries
from licsrv.domain import BLOCKING_STATUSES, MAX_DEVICES, MAX_DURATION_DAYS, MAX_SESSIONS
from licsrv.errors import ApiError
from licsrv.paging import decode_cursor, encode_cursor
from licsrv.services.audit import Actor, record_change
from licsrv.services.license_keys import ensure_key_free
from licsrv.services.licensing import end_device_sessions, license_view
from licsrv.services.plans import get_plan_for_use
from licsrv.services.products import ensure_product_open
from licsrv.webhooks.catalogue import device_data, license_data
from licsrv.webhooks.outbox import emit, event_type_if_wanted

if TYPE_CHECKING:
    from licsrv.deps import Deps


def _license_fields(fields: dict[str, Any]) -> dict[str, Any]:
    duration_days = fields.get("duration_days")
    expires_at: datetime | None = fields.get("expires_at")
    if duration_days is not None and expires_at is not None:
        raise ApiError("VALIDATION_ERROR", "Give duration_days or expires_at, not both.")
    if duration_days is not None and not 1 <= duration_days <= MAX_DURATION_DAYS:
        raise ApiError("VALIDATION_ERROR", f"duration_days must be between 1 and {MAX_DURATION_DAYS}.")
    max_devices = fields.get("max_devices")
    if max_devices is None:
        max_devices = 1
    if not 0 <= max_devices <= MAX_DEVICES:
        raise ApiError("VALIDATION_ERROR", f"max_devices must be between 0 and {MAX_DEVICES}.")
    max_sessions = fields.get("max_sessions")
    if max_sessions is not None and not 1 <= max_sessions <= MAX_SESSIONS:
        raise ApiError("VALIDATION_ERROR", f"max_sessions must be between 1 and {MAX_SESSIONS}.")
    return {
        "customer_name": fields.get("customer_name") or "",
        "customer_email": fields.get("customer_email") or "",
        "max_devices": max_devices,
        "max_sessions": max_sessions,
        "features": fields.get("features") or {},
        "notes": fields.get("notes") or "",
        "expires_at": expires_at,
        "duration": timedelta(days=duration_days) if duration_days is not None else None,
    }


def apply_plan(fields: dict[str, Any], plan: dict[str, Any]) -> dict[str, Any]:
    """The license's fields with the plan's values wherever they were not given: device slots, sessions,
    features, and its duration unless an expiry or a duration was given (a plan without one: perpetual)."""
    merged = dict(fields)
    for name in ("max_devices", "max_sessions", "features"):
        if merged.get(name) is None:
            merged[name] = plan[name]
    if merged.get("duration_days") is None and merged.get("expires_at") is None:
        merged["duration_days"] = plan["duration_days"]
    return merged


async def insert_license(
    conn: asyncpg.Connection, queries: Queries, product_id: int, fields: dict[str, Any], actor: Actor
) -> asyncpg.Record:
    """The new license and its audit row, in the caller's transaction (the CLI calls this directly).
    `key` imports a key from an older system (kept exactly as given); `plan_id` copies the plan's values
    where `fields` does not give them."""
    if not actor.can_change():
        raise ApiError("FORBIDDEN")
    if await queries.get_product(conn, id=product_id) is None:
        raise ApiError("UNKNOWN_REFERENCE", details={"product_id": ["No product has this id."]})
    await ensure_product_open(conn, queries, product_id)
    plan_id = fields.get("plan_id")
    if plan_id is not None:
        fields = apply_plan(fields, await get_plan_for_use(conn, queries, plan_id, product_id))
    values = _license_fields(fields)
    key = fields.get("key")
    if key is None:
        key = new_license_key()
    else:
        await ensure_key_free(conn, queries, key)
    try:
        row = await queries.insert_license(conn, key=key, product_id=product_id, plan_id=plan_id, **values)
    except asyncpg.UniqueViolationError:  # taken by a concurrent import since the check above
        raise ApiError("LICENSE_KEY_TAKEN") from None
    await record_change(
        conn,
        queries,
        actor,
        "license.create",
        "license",
        row["id"],
        after={
            "key": row["key"],
            "customer_name": row["customer_name"],
            "max_devices": row["max_devices"],
            **({"plan_id": plan_id} if plan_id is not None else {}),
            **({"imported_key": True} if fields.get("key") is not None else {}),
        },
    )
    await emit(conn, queries, "license.created", license_data(row))
    return row


async def create_license(deps: Deps, product_id: int, fields: dict[str, Any], actor: Actor) -> dict[str, Any]:
    async with deps.db.transaction() as conn:
        row = await insert_license(conn, deps.q, product_id, fields, actor)
        return await _detail(conn, deps.q, row["id"])


async def create_license_for_product_slug(
    conn: asyncpg.Connection, queries: Queries, slug: str, fields: dict[str, Any], actor: Actor
) -> asyncpg.Record:
    product_id = await queries.get_product_id_by_slug(conn, slug=slug)
    if product_id is None:
        raise ApiError("NOT_FOUND", f"No product with slug {slug!r}.")
    async with conn.transaction():
        return await insert_license(conn, queries, product_id, fields, actor)


def _snapshot(row: Any) -> dict[str, Any]:
    return {
        "status": row["status"],
        "expires_at": row["expires_at"].isoformat() if row["expires_at"] else None,
        "max_devices": row["max_devices"],
        "max_sessions": row["max_sessions"],
        "customer_name": row["customer_name"],
        "customer_email": row["customer_email"],
    }


async def _locked(conn: asyncpg.Connection, queries: Queries, license_id: int) -> asyncpg.Record:
    row = await queries.lock_license(conn, id=license_id)
    if row is None:
        raise ApiError("LICENSE_NOT_FOUND")
    return row


async def license_detail(deps: Deps, license_id: int) -> dict[str, Any]:
    async with deps.db.connection() as conn:
        return await _detail(conn, deps.q, license_id)


async def _detail(conn: asyncpg.Connection, queries: Queries, license_id: int) -> dict[str, Any]:
    row = await queries.get_license(conn, id=license_id)
    if row is None:
        raise ApiError("LICENSE_NOT_FOUND")
    devices = [dict(d) for d in await queries.list_devices(conn, license_id=license_id)]
    return {**admin_view(row, len(devices)), "devices": devices}


def admin_view(row: Any, devices_used: int) -> dict[str, Any]:
    return {
        **license_view(row, devices_used),
        "id": row["id"],
        "key": row["key"],
        "product_id": row["product_id"],
        "plan_id": row["plan_id"],
        "customer_email": row["customer_email"],
        "notes": row["notes"],
        "duration_days": row["duration"].days if row["duration"] else None,
        "activated_at": row["activated_at"],
        "expires_at": row["expires_at"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "personal_data_erased_at": row.get("personal_data_erased_at"),
    }


async def search_licenses(
    deps: Deps,
    q: str | None,
    cursor: str | None,
    limit: int,
    product_id: int | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    text = (q or "").strip()
    after_id = decode_cursor(cursor)
    async with deps.db.connection() as conn:
        rows = await _search(conn, deps.q, text, after_id, limit, product_id)
    page = [admin_view(row, row["devices_used"]) for row in rows[:limit]]
    return page, encode_cursor(rows[limit - 1]["id"]) if len(rows) > limit else None


# A search walks this many of the newest licenses (a few ms) before it asks the trigram indexes for the
# rest: walking finds frequent matches at once, the indexes find rare ones wherever they lie. Either alone
# took 100-200 ms for some searches at 200 000 licenses (tests/test_admin_licenses.py checks the pages).
SEARCH_WINDOW = 5_000


async def _search(
    conn: asyncpg.Connection,
    queries: Queries,
    text: str,
    after_id: int | None,
    limit: int,
    product_id: int | None,
) -> list[asyncpg.Record]:
    if text:
        escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        async with conn.transaction():  # planned for this pattern, never with the generic plan
            await queries.plan_for_these_values(conn)
            rows = await queries.search_recent_licenses(
                conn,
                key=text,
                pattern=pattern,
                product_id=product_id,
                after_id=after_id,
                window_size=SEARCH_WINDOW,
                row_limit=limit + 1,
            )
            if len(rows) > limit:
                return rows
            window = await queries.search_window(
                conn, product_id=product_id, after_id=after_id, window_size=SEARCH_WINDOW
            )
            if window["walked"] < SEARCH_WINDOW:  # the walk saw every license below the cursor
                return rows
            older = await queries.search_older_licenses(
                conn,
                key=text,
                pattern=pattern,
                product_id=product_id,
                before_id=window["floor_id"],
                row_limit=limit + 1 - len(rows),
            )
            return [*rows, *older]
    return await queries.list_licenses(conn, product_id=product_id, after_id=after_id, row_limit=limit + 1)


async def set_status(deps: Deps, license_id: int, status: str, actor: Actor) -> dict[str, Any]:
    """Suspend (`suspended`), resume (`active`) or revoke (`revoked`). Blocking is enforced in Redis first,
    in the script that ends the live sessions, so once this answers no session of the license runs and
    none starts, whatever read the license as active meanwhile; a change that does not commit lifts it."""
    if not actor.can_change():
        raise ApiError("FORBIDDEN")
    now = deps.now()
    newly_blocked = False
    try:
        async with deps.db.transaction() as conn:
            before = await _locked(conn, deps.q, license_id)
            if before["status"] == "revoked" and status != "revoked":
                raise ApiError("CONFLICT", "A revoked license stays revoked.")
            if status in BLOCKING_STATUSES:
                await deps.live.block_license(license_id, status, deps.tombstone_seconds())
                newly_blocked = before["status"] == "active"
                await deps.q.close_license_sessions(
                    conn,
                    license_id=license_id,
                    ended_at=now,
                    end_reason=status,
                    emit=event_type_if_wanted(deps, "session.terminated") is not None,
                )
            else:
                await deps.live.unblock_license(license_id)
            row = await deps.q.set_license_status(conn, id=license_id, status=status)
            action = {"suspended": "suspend", "active": "resume", "revoked": "revoke"}[status]
            await record_change(
                conn,
                deps.q,
                actor,
                f"license.{action}",
                "license",
                license_id,
                before=_snapshot(before),
                after=_snapshot(row),
            )
            await emit(
                conn,
                deps,
                f"license.{status}" if status != "active" else "license.resumed",
                license_data(row),
            )
            return await _detail(conn, deps.q, license_id)
    except BaseException:
        if newly_blocked:
            with contextlib.suppress(Exception):
                await deps.live.unblock_license(license_id)
        raise


async def extend(deps: Deps, license_id: int, days: int, actor: Actor) -> dict[str, Any]:
    if not actor.can_change():
        raise ApiError("FORBIDDEN")
    if not 1 <= days <= MAX_DURATION_DAYS:
        raise ApiError("VALIDATION_ERROR", f"days must be between 1 and {MAX_DURATION_DAYS}.")
    async with deps.db.transaction() as conn:
        before = await _locked(conn, deps.q, license_id)
        row = await deps.q.extend_license(conn, id=license_id, days=days, now=deps.now())
        await record_change(
            conn,
            deps.q,
            actor,
            "license.extend",
            "license",
            license_id,
            before=_snapshot(before),
            after={**_snapshot(row), "days": days},
        )
        await emit(conn, deps, "license.extended", {**license_data(row), "days": days})
        return await _detail(conn, deps.q, license_id)


UPDATABLE = (
    "customer_name",
    "customer_email",
    "max_devices",
    "max_sessions",
    "features",
    "notes",
    "expires_at",
)


async def update(deps: Deps, license_id: int, changes: dict[str, Any], actor: Actor) -> dict[str, Any]:
    if not actor.can_change():
        raise ApiError("FORBIDDEN")
    async with deps.db.transaction() as conn:
        before = await _locked(conn, deps.q, license_id)
        merged = {name: changes.get(name, before[name]) for name in UPDATABLE}
        if merged["max_devices"] < 0 or (merged["max_sessions"] is not None and merged["max_sessions"] < 1):
            raise ApiError("VALIDATION_ERROR", "max_devices must be ≥ 0 and max_sessions ≥ 1.")
        row = await deps.q.update_license(conn, id=license_id, **merged)
        await record_change(
            conn,
            deps.q,
            actor,
            "license.update",
            "license",
            license_id,
            before=_snapshot(before),
            after=_snapshot(row),
        )
        await emit(conn, deps, "license.updated", {**license_data(row), "changed": sorted(changes)})
        return await _detail(conn, deps.q, license_id)


async def remove_device(deps: Deps, license_id: int, device_id: int, actor: Actor) -> dict[str, Any]:
    """Frees the slot and ends the device's live sessions, in one transaction on one connection."""
    if not actor.can_change():
        raise ApiError("FORBIDDEN")
    async with deps.db.transaction() as conn:
        await _locked(conn, deps.q, license_id)
        removed = await deps.q.delete_device(conn, license_id=license_id, id=device_id)
        if removed is None:
            raise ApiError("NOT_FOUND", "No such device on this license.")
        await end_device_sessions(conn, deps, license_id, [removed["hardware_id"]], deps.now())
        await emit(
            conn,
            deps,
            "device.deactivated",
            device_data(license_id, removed["hardware_id"], device_id=device_id),
        )
        await record_change(
            conn,
            deps.q,
            actor,
            "license.remove_device",
            "license",
            license_id,
            before={"device_id": device_id, "hardware_id": removed["hardware_id"]},
        )
        return await _detail(conn, deps.q, license_id)


async def reset_devices(deps: Deps, license_id: int, actor: Actor) -> dict[str, Any]:
    if not actor.can_change():
        raise ApiError("FORBIDDEN")
    async with deps.db.transaction() as conn:
        await _locked(conn, deps.q, license_id)
        removed = await deps.q.delete_all_devices(conn, license_id=license_id)
        hardware_ids = [d["hardware_id"] for d in removed]
        await end_device_sessions(conn, deps, license_id, hardware_ids, deps.now())
        for device in removed:
            await emit(
                conn,
                deps,
                "device.deactivated",
                device_data(license_id, device["hardware_id"], device_id=device["id"]),
            )
        await record_change(
            conn,
            deps.q,
            actor,
            "license.reset_devices",
            "license",
            license_id,
            before={"devices": hardware_ids},
        )
        return await _detail(conn, deps.q, license_id)
