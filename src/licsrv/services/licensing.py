"""The client side of licenses: finding one by key, activation (device slots), validation, deactivation."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import asyncpg

from licsrv.db import Queries
from licsrv.errors import ApiError
from licsrv.services.products import Product
from licsrv.webhooks.outbox import emit, event_type_if_wanted

if TYPE_CHECKING:
    from licsrv.deps import Deps


def _normalise_key(license_key: str) -> str:
    """Surrounding blanks dropped, case kept: the lookup tries the key as given (an imported key keeps the
    case it had at the older system), then upper-cased (a generated key typed in lower case)."""
    return license_key.strip()


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
        await emit(conn, queries, "device.activated", _device_event(license_row, device_id, hardware_id, ip))
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


def _device_event(license_row: Mapping, device_id: int, hardware_id: str, ip: str | None = None) -> dict:
    event = {"license_id": license_row["id"], "license_key": license_row["key"], "device_id": device_id}
    return {**event, "hardware_id": hardware_id, **({"ip": ip} if ip is not None else {})}


async def find_license_for_start(
    conn: asyncpg.Connection, queries: Queries, product: Product, license_key: str, hardware_id: str
) -> asyncpg.Record:
    """The license, with `device_known`: whether `hardware_id` already holds one of its slots."""
    row = await queries.get_license_for_start(conn, key=_normalise_key(license_key), hardware_id=hardware_id)
    if row is None or row["product_id"] != product.id:
        raise ApiError("LICENSE_NOT_FOUND")
    return row


async def validate_license(
    conn: asyncpg.Connection,
    queries: Queries,
    product: Product,
    license_key: str,
    hardware_id: str | None,
    now: datetime,
) -> dict[str, Any]:
    """Valid, or the reason it is not; without a hardware id (the older server's verify) no device check."""
    license_row = await find_client_license(conn, queries, product, license_key)
    ensure_license_usable(license_row, now)
    used = await queries.count_devices(conn, license_id=license_row["id"])
    if hardware_id is not None:
        device = await queries.get_device(conn, license_id=license_row["id"], hardware_id=hardware_id)
        if device is None:
            # Full of other machines: this one cannot simply activate; otherwise it should.
            full = used >= license_row["max_devices"]
            raise ApiError("HARDWARE_MISMATCH" if full else "DEVICE_NOT_ACTIVATED")
    return {**license_view(license_row, used), "valid": True}


async def force_end_session(
    conn: asyncpg.Connection, deps: Deps, license_id: int, session_id: str, timeout_s: int, now: datetime
) -> bool:
    """Ends a live session from the server side (`forced`: its next heartbeat hears SESSION_TERMINATED) and
    closes its history row on the caller's connection; False if it was no longer live."""
    ended = await deps.live.terminate(license_id, session_id, "forced", timeout_s)
    if ended:
        await deps.q.close_session_history(
            conn,
            id=session_id,
            ended_at=now,
            end_reason="forced",
            event=event_type_if_wanted(deps, "session.terminated"),
        )
    return ended


async def end_device_sessions(
    conn: asyncpg.Connection, deps: Deps, license_id: int, hardware_ids: list[str], now: datetime
) -> None:
    """A device's live sessions end with it (as `forced`), on the caller's connection and transaction."""
    for hardware_id in hardware_ids:
        for row in await deps.q.open_sessions_of_device(conn, license_id=license_id, hardware_id=hardware_id):
            if not await force_end_session(conn, deps, license_id, row["id"], deps.tombstone_seconds(), now):
                # Gone from Redis already: its history row is closed all the same.
                await deps.q.close_session_history(
                    conn, id=row["id"], ended_at=now, end_reason="forced", event=None
                )


async def deactivate_device(
    deps: Deps, product: Product, license_key: str, hardware_id: str
) -> dict[str, Any]:
    """Frees the device's slot and ends its live sessions, in one transaction on one connection."""
    async with deps.db.transaction() as conn:
        found = await find_client_license(conn, deps.q, product, license_key)
        license_row = await deps.q.lock_license(conn, id=found["id"])
        removed = await deps.q.delete_device_by_hardware(
            conn, license_id=license_row["id"], hardware_id=hardware_id
        )
        if removed is None:
            raise ApiError("DEVICE_NOT_ACTIVATED")
        await end_device_sessions(conn, deps, license_row["id"], [hardware_id], deps.now())
        await emit(conn, deps, "device.deactivated", _device_event(license_row, removed["id"], hardware_id))
        used = await deps.q.count_devices(conn, license_id=license_row["id"])
    return {**license_view(license_row, used), "deactivated": True}


async def activate(
    deps: Deps,
    product: Product,
    license_key: str,
    hardware_id: str,
    *,
    machine_name: str = "",
    client_version: str = "",
    ip: str | None,
) -> dict[str, Any]:
    """The client's activation as one unit of work: one transaction on one connection."""
    async with deps.db.transaction() as conn:
        return await activate_device(
            conn,
            deps.q,
            product,
            license_key,
            hardware_id,
            machine_name=machine_name,
            client_version=client_version,
            ip=ip,
            now=deps.now(),
        )


async def validate(deps: Deps, product: Product, license_key: str, hardware_id: str | None) -> dict[str, Any]:
    async with deps.db.connection() as conn:
        return await validate_license(conn, deps.q, product, license_key, hardware_id, deps.now())
