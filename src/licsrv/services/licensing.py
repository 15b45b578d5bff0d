"""Licenses: creation and the rules of activation, validation and deactivation."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from licsrv.codes import new_license_key
from licsrv.db import Queries
from licsrv.errors import ApiError
from licsrv.services.audit import Actor, record_change
from licsrv.services.products import Product


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


def _normalise_key(license_key: str) -> str:
    return license_key.strip().upper()


async def find_client_license(
    conn: asyncpg.Connection, queries: Queries, product: Product, license_key: str
) -> asyncpg.Record:
    row = await queries.get_license_by_key(conn, key=_normalise_key(license_key))
    if row is None or row["product_id"] != product.id:
        raise ApiError("LICENSE_NOT_FOUND")
    return row


def ensure_license_usable(license: Mapping, now: datetime) -> None:
    if license["status"] == "suspended":
        raise ApiError("LICENSE_SUSPENDED")
    if license["status"] == "revoked":
        raise ApiError("LICENSE_REVOKED")
    if license["expires_at"] is not None and license["expires_at"] <= now:
        raise ApiError("LICENSE_EXPIRED")


def license_view(license: Mapping, devices_used: int) -> dict[str, Any]:
    expires_at = license["expires_at"]
    return {
        "license_key": license["key"],
        "status": license["status"],
        "expires_at": expires_at.isoformat() if expires_at else None,
        "features": license["features"],
        "max_devices": license["max_devices"],
        "devices_used": devices_used,
        "max_sessions": license["max_sessions"],
        "customer_name": license["customer_name"],
    }


async def activate_device(
    conn: asyncpg.Connection,
    queries: Queries,
    product: Product,
    license_key: str,
    hardware_id: str,
    *,
    machine_name: str = "",
    client_version: str = "",
    ip: str | None,
    now: datetime,
) -> dict[str, Any]:
    """Binds the device to a slot (idempotent per hardware id); the first activation starts the clock."""
    found = await find_client_license(conn, queries, product, license_key)
    # The license row lock serialises activations: slots hold even when the device set is empty.
    license_row = await queries.lock_license(conn, id=found["id"])
    ensure_license_usable(license_row, now)
    device = await queries.get_device(conn, license_id=license_row["id"], hardware_id=hardware_id)
    if device is None:
        used = await queries.count_devices(conn, license_id=license_row["id"])
        if used >= license_row["max_devices"]:
            raise ApiError("DEVICE_LIMIT_REACHED")
        device_id = await queries.insert_device(
            conn,
            license_id=license_row["id"],
            hardware_id=hardware_id,
            machine_name=machine_name,
            ip=ip,
            client_version=client_version,
            now=now,
        )
    else:
        device_id = device["id"]
        await queries.touch_device(
            conn, id=device_id, machine_name=machine_name, ip=ip, client_version=client_version, now=now
        )
    if license_row["activated_at"] is None:
        license_row = await queries.start_license_clock(conn, id=license_row["id"], now=now)
        ensure_license_usable(license_row, now)
    used = await queries.count_devices(conn, license_id=license_row["id"])
    return {**license_view(license_row, used), "device_id": device_id}


async def require_device(
    conn: asyncpg.Connection, queries: Queries, license_id: int, hardware_id: str
) -> asyncpg.Record:
    device = await queries.get_device(conn, license_id=license_id, hardware_id=hardware_id)
    if device is None:
        raise ApiError("DEVICE_NOT_ACTIVATED")
    return device
