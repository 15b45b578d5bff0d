"""Licenses: creation and the rules of activation, validation and deactivation."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import asyncpg

from licsrv.codes import new_license_key
from licsrv.db import Queries
from licsrv.errors import ApiError
from licsrv.services.audit import Actor, record_change


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
