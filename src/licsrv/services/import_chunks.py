"""One chunk of a license import written with one statement per kind: new licenses, changed licenses, the
devices they gain; each line compared with what is stored (unchanged lines are read without a row lock)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import orjson

from licsrv.db import Queries
from licsrv.live.sessions import LiveSessions
from licsrv.services.import_rows import ImportRow, Refusal, RowRefused

COMPARED = (
    "plan_id",
    "customer_name",
    "customer_email",
    "max_devices",
    "max_sessions",
    "features",
    "notes",
    "status",
    "expires_at",
    "duration_days",
)


@dataclass
class ImportContext:
    """What writing a chunk needs besides the connection: Redis for licenses the import suspends or revokes
    (None in a dry run: nothing is blocked), and which webhook events to write."""

    queries: Queries
    now: datetime
    live: LiveSessions | None
    tombstone_seconds: int
    emit_created: bool = True
    emit_updated: bool = True
    emit_sessions: bool = True


@dataclass
class ChunkOutcome:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    refusals: list[Refusal] = field(default_factory=list)
    blocked: list[int] = field(default_factory=list)  # newly blocked in Redis: lifted if the chunk fails
    resumed: list[int] = field(default_factory=list)  # to unblock in Redis once the chunk committed


async def write_chunk(
    conn: asyncpg.Connection, context: ImportContext, rows: list[ImportRow], outcome: ChunkOutcome
) -> None:
    queries = context.queries
    keys = [row.key for row in rows]
    plan = _Plan()
    _classify(rows, {r["key"]: r for r in await queries.import_read_licenses(conn, keys=keys)}, plan, outcome)
    if plan.changing:  # read again, locked: what is compared is what is overwritten
        changing, plan.changing = plan.changing, []
        locked = await queries.import_lock_licenses(conn, keys=[row.key for row in changing])
        _classify(changing, {r["key"]: r for r in locked}, plan, outcome, final=True)
    if plan.creates:
        made = await queries.import_insert_licenses(
            conn, *_columns([values for _, values in plan.creates], key=True), emit=context.emit_created
        )
        ids = {r["key"]: r["id"] for r in made}
        plan.devices += [(ids[row.key], hw) for row, _ in plan.creates for hw in row.hardware_ids]
        outcome.created += len(made)
    if plan.updates:
        await _block_or_resume(conn, context, plan.updates, outcome)
        await queries.import_update_licenses(
            conn,
            [stored["id"] for stored, _ in plan.updates],
            *_columns([values for _, values in plan.updates], key=False),
            emit=context.emit_updated,
        )
        outcome.updated += len(plan.updates)
    if plan.devices:
        await queries.import_insert_devices(
            conn, [license_id for license_id, _ in plan.devices], [hw for _, hw in plan.devices], context.now
        )


@dataclass
class _Plan:
    creates: list[tuple[ImportRow, dict[str, Any]]] = field(default_factory=list)
    updates: list[tuple[Mapping[str, Any], dict[str, Any]]] = field(default_factory=list)
    devices: list[tuple[int, str]] = field(default_factory=list)
    changing: list[ImportRow] = field(default_factory=list)  # to compare again under the row lock


def _classify(
    rows: list[ImportRow],
    stored_by_key: Mapping[str, Mapping[str, Any]],
    plan: _Plan,
    outcome: ChunkOutcome,
    *,
    final: bool = False,
) -> None:
    """Each line: created, unchanged, or (once `final`, i.e. read under lock) updated; or refused."""
    for row in rows:
        stored = stored_by_key.get(row.key)
        try:
            if stored is None:
                plan.creates.append((row, _new_values(row)))
                continue
            wanted, new_devices = _changed_values(row, stored)
        except RowRefused as refused:
            outcome.refusals.append(Refusal(row.line, row.key, refused.code, refused.message))
            continue
        changed = wanted != _current(stored)
        if not changed and not new_devices:
            outcome.unchanged += 1
        elif not final:
            plan.changing.append(row)
        else:
            plan.devices += [(stored["id"], hardware_id) for hardware_id in new_devices]
            if changed:
                plan.updates.append((stored, wanted))
            else:
                outcome.updated += 1


def _new_values(row: ImportRow) -> dict[str, Any]:
    if row.product_archived:
        raise RowRefused("CONFLICT", "The product is archived: it takes no new licenses.")
    if row.plan_archived:
        raise RowRefused("CONFLICT", "The plan is archived: it makes no new licenses.")
    values = row.new_license()
    if len(row.hardware_ids) > values["max_devices"]:
        raise RowRefused(
            "DEVICE_LIMIT_REACHED", f"{len(row.hardware_ids)} hardware ids, {values['max_devices']} slots."
        )
    kind = row.expiry or ("never",)
    values["expires_at"] = kind[1] if kind[0] == "at" else None
    values["duration_days"] = kind[1] if kind[0] == "days" else None
    return {**values, "key": row.key, "product_id": row.product_id}


def _current(stored: Mapping[str, Any]) -> dict[str, Any]:
    values = {name: stored[name] for name in COMPARED if name != "duration_days"}
    values["duration_days"] = stored["duration"].days if stored["duration"] is not None else None
    return values


def _changed_values(row: ImportRow, stored: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The stored license's values as the line wants them, and the hardware ids it does not hold yet."""
    if stored["product_id"] != row.product_id:
        raise RowRefused("LICENSE_KEY_TAKEN", "The key is a license of another product.")
    current = _current(stored)
    wanted = {**current, **row.values}
    if row.plan_archived and wanted["plan_id"] != current["plan_id"]:
        raise RowRefused("CONFLICT", "The plan is archived: no license moves to it.")
    if current["status"] == "revoked" and wanted["status"] != "revoked":
        raise RowRefused("CONFLICT", "A revoked license stays revoked.")
    if row.expiry is not None:
        kind = row.expiry
        if kind[0] == "days" and kind[1] != current["duration_days"]:
            activated = stored["activated_at"]
            wanted["expires_at"] = activated + timedelta(days=kind[1]) if activated else None
        elif kind[0] != "days":
            wanted["expires_at"] = kind[1] if kind[0] == "at" else None
        wanted["duration_days"] = kind[1] if kind[0] == "days" else None
    held = set(stored["hardware_ids"])
    new_devices = [hardware_id for hardware_id in row.hardware_ids if hardware_id not in held]
    if new_devices and len(held) + len(new_devices) > wanted["max_devices"]:
        raise RowRefused(
            "DEVICE_LIMIT_REACHED",
            f"{len(held)} devices held and {len(new_devices)} more listed, {wanted['max_devices']} slots.",
        )
    return wanted, new_devices


async def _block_or_resume(
    conn: asyncpg.Connection,
    context: ImportContext,
    updates: list[tuple[Mapping[str, Any], dict[str, Any]]],
    outcome: ChunkOutcome,
) -> None:
    """A license the import suspends or revokes is blocked in Redis first, as an admin's suspension is (its
    live sessions end); one it resumes is unblocked once the chunk committed."""
    for stored, wanted in updates:
        before, after = stored["status"], wanted["status"]
        if before == after or context.live is None:
            continue
        if after == "active":
            outcome.resumed.append(stored["id"])
            continue
        await context.live.block_license(stored["id"], after, context.tombstone_seconds)
        if before == "active":
            outcome.blocked.append(stored["id"])
        await context.queries.close_license_sessions(
            conn, license_id=stored["id"], ended_at=context.now, end_reason=after, emit=context.emit_sessions
        )


def _columns(rows: list[dict[str, Any]], *, key: bool) -> list[list[Any]]:
    """The rows as the column arrays the chunk statements take (unnest), in their parameter order."""
    names = ["key", "product_id"] if key else []
    names += ["plan_id", "customer_name", "customer_email", "max_devices", "max_sessions", "features"]
    names += ["notes", "status", "expires_at", "duration_days"]
    columns = [[row[name] for row in rows] for name in names]
    features = names.index("features")
    columns[features] = [orjson.dumps(value).decode() for value in columns[features]]
    return columns
