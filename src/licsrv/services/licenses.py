"""Licenses as admins manage them: create, update, suspend, resume, revoke, extend, devices, search."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from licsrv.codes import new_license_key
from licsrv.db import Queries
from licsrv.errors import ApiError
from licsrv.services.audit import Actor, record_change
from licsrv.services.licensing import license_view


def _license_fields(fields: dict[str, Any]) -> dict[str, Any]:
    duration_days = fields.get("duration_days")
    expires_at: datetime | None = fields.get("expires_at")
    if duration_days is not None and expires_at is not None:
        raise ApiError("VALIDATION_ERROR", "Give duration_days or expires_at, not both.")
    if duration_days is not None and not 1 <= duration_days <= 36500:
        raise ApiError("VALIDATION_ERROR", "duration_days must be between 1 and 36500.")
    max_devices = fields.get("max_devices", 1)
    if max_devices is None or not 0 <= max_devices <= 100000:
        raise ApiError("VALIDATION_ERROR", "max_devices must be between 0 and 100000.")
    max_sessions = fields.get("max_sessions")
    if max_sessions is not None and not 1 <= max_sessions <= 10000:
        raise ApiError("VALIDATION_ERROR", "max_sessions must be between 1 and 10000.")
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


async def create_license(
    conn: asyncpg.Connection, queries: Queries, product_id: int, fields: dict[str, Any], actor: Actor
) -> asyncpg.Record:
    if not actor.can_change():
        raise ApiError("FORBIDDEN")
    values = _license_fields(fields)
    async with conn.transaction():
        row = await queries.insert_license(conn, key=new_license_key(), product_id=product_id, **values)
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
            },
        )
    return row


async def create_license_for_product_slug(
    conn: asyncpg.Connection, queries: Queries, slug: str, fields: dict[str, Any], actor: Actor
) -> asyncpg.Record:
    product_id = await queries.get_product_id_by_slug(conn, slug=slug)
    if product_id is None:
        raise ApiError("NOT_FOUND", f"No product with slug {slug!r}.")
    return await create_license(conn, queries, product_id, fields, actor)


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


async def license_detail(conn: asyncpg.Connection, queries: Queries, license_id: int) -> dict[str, Any]:
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
        "customer_email": row["customer_email"],
        "notes": row["notes"],
        "duration_days": row["duration"].days if row["duration"] else None,
        "activated_at": row["activated_at"],
        "expires_at": row["expires_at"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode()


def decode_cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        kind, _, value = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        if kind != "id":
            raise ValueError(kind)
        return int(value)
    except (ValueError, UnicodeDecodeError):
        raise ApiError("VALIDATION_ERROR", "cursor is not valid.") from None


async def search_licenses(
    conn: asyncpg.Connection,
    queries: Queries,
    q: str | None,
    cursor: str | None,
    limit: int,
    product_id: int | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    text = (q or "").strip()
    after_id = decode_cursor(cursor)
    if text:
        escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = await queries.search_licenses(
            conn,
            key=text.upper(),
            pattern=f"%{escaped}%",
            product_id=product_id,
            after_id=after_id,
            row_limit=limit + 1,
        )
    else:
        rows = await queries.list_licenses(
            conn, product_id=product_id, after_id=after_id, row_limit=limit + 1
        )
    page = [admin_view(row, row["devices_used"]) for row in rows[:limit]]
    return page, encode_cursor(rows[limit - 1]["id"]) if len(rows) > limit else None


async def set_status(
    conn: asyncpg.Connection, queries: Queries, license_id: int, status: str, actor: Actor, live: Any
) -> dict[str, Any]:
    """Suspend (`suspended`), resume (`active`) or revoke (`revoked`); blocking ends live sessions at once."""
    if not actor.can_change():
        raise ApiError("FORBIDDEN")
    async with conn.transaction():
        before = await _locked(conn, queries, license_id)
        if before["status"] == "revoked" and status != "revoked":
            raise ApiError("CONFLICT", "A revoked license stays revoked.")
        row = await queries.set_license_status(conn, id=license_id, status=status)
        if status in ("suspended", "revoked"):
            await live.end_license_sessions(license_id, status)
        action = {"suspended": "suspend", "active": "resume", "revoked": "revoke"}[status]
        await record_change(
            conn,
            queries,
            actor,
            f"license.{action}",
            "license",
            license_id,
            before=_snapshot(before),
            after=_snapshot(row),
        )
    return await license_detail(conn, queries, license_id)


async def extend(
    conn: asyncpg.Connection, queries: Queries, license_id: int, days: int, actor: Actor, now: datetime
) -> dict[str, Any]:
    if not actor.can_change():
        raise ApiError("FORBIDDEN")
    if not 1 <= days <= 36500:
        raise ApiError("VALIDATION_ERROR", "days must be between 1 and 36500.")
    async with conn.transaction():
        before = await _locked(conn, queries, license_id)
        row = await queries.extend_license(conn, id=license_id, days=days, now=now)
        await record_change(
            conn,
            queries,
            actor,
            "license.extend",
            "license",
            license_id,
            before=_snapshot(before),
            after={**_snapshot(row), "days": days},
        )
    return await license_detail(conn, queries, license_id)


async def update(
    conn: asyncpg.Connection, queries: Queries, license_id: int, changes: dict[str, Any], actor: Actor
) -> dict[str, Any]:
    if not actor.can_change():
        raise ApiError("FORBIDDEN")
    async with conn.transaction():
        before = await _locked(conn, queries, license_id)
        merged = {
            name: changes.get(name, before[name])
            for name in (
                "customer_name",
                "customer_email",
                "max_devices",
                "max_sessions",
                "features",
                "notes",
                "expires_at",
            )
        }
        if merged["max_devices"] < 0 or (merged["max_sessions"] is not None and merged["max_sessions"] < 1):
            raise ApiError("VALIDATION_ERROR", "max_devices must be ≥ 0 and max_sessions ≥ 1.")
        row = await queries.update_license(conn, id=license_id, **merged)
        await record_change(
            conn,
            queries,
            actor,
            "license.update",
            "license",
            license_id,
            before=_snapshot(before),
            after=_snapshot(row),
        )
    return await license_detail(conn, queries, license_id)


async def remove_device(
    conn: asyncpg.Connection, queries: Queries, license_id: int, device_id: int, actor: Actor, live: Any
) -> dict[str, Any]:
    if not actor.can_change():
        raise ApiError("FORBIDDEN")
    async with conn.transaction():
        await _locked(conn, queries, license_id)
        removed = await queries.delete_device(conn, license_id=license_id, id=device_id)
        if removed is None:
            raise ApiError("NOT_FOUND", "No such device on this license.")
        await live.end_device_sessions(license_id, removed["hardware_id"])
        await record_change(
            conn,
            queries,
            actor,
            "license.remove_device",
            "license",
            license_id,
            before={"device_id": device_id, "hardware_id": removed["hardware_id"]},
        )
    return await license_detail(conn, queries, license_id)


async def reset_devices(
    conn: asyncpg.Connection, queries: Queries, license_id: int, actor: Actor, live: Any
) -> dict[str, Any]:
    if not actor.can_change():
        raise ApiError("FORBIDDEN")
    async with conn.transaction():
        await _locked(conn, queries, license_id)
        removed = await queries.delete_all_devices(conn, license_id=license_id)
        for device in removed:
            await live.end_device_sessions(license_id, device["hardware_id"])
        await record_change(
            conn,
            queries,
            actor,
            "license.reset_devices",
            "license",
            license_id,
            before={"devices": [d["hardware_id"] for d in removed]},
        )
    return await license_detail(conn, queries, license_id)
