"""Plans (license templates, DESIGN §2): a product's named offers. A license or a card batch made from a plan
copies its values at creation, so editing or archiving a plan never changes what was already sold."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import asyncpg
from marshmallow import ValidationError

from licsrv.bounded import check_features
from licsrv.db import Queries
from licsrv.domain import MAX_DEVICES, MAX_DURATION_DAYS, MAX_SESSIONS
from licsrv.errors import ApiError
from licsrv.services.audit import Actor, record_change
from licsrv.services.products import ensure_product_open

if TYPE_CHECKING:
    from licsrv.deps import Deps

PLAN_VALUES = ("name", "max_devices", "max_sessions", "duration_days", "features")


def _checked(values: dict[str, Any]) -> dict[str, Any]:
    """The plan's values within the schema's bounds (VALIDATION_ERROR in words otherwise)."""
    name = str(values.get("name") or "").strip()
    if not 1 <= len(name) <= 200:
        raise ApiError("VALIDATION_ERROR", "A plan's name is 1 to 200 characters.")
    max_devices = values.get("max_devices")
    if max_devices is None:
        max_devices = 1
    if not 0 <= max_devices <= MAX_DEVICES:
        raise ApiError("VALIDATION_ERROR", f"max_devices must be between 0 and {MAX_DEVICES}.")
    max_sessions = values.get("max_sessions")
    if max_sessions is not None and not 1 <= max_sessions <= MAX_SESSIONS:
        raise ApiError(
            "VALIDATION_ERROR", f"max_sessions must be between 1 and {MAX_SESSIONS} (empty: the product's)."
        )
    duration_days = values.get("duration_days")
    if duration_days is not None and not 1 <= duration_days <= MAX_DURATION_DAYS:
        raise ApiError(
            "VALIDATION_ERROR", f"duration_days must be between 1 and {MAX_DURATION_DAYS} (empty: perpetual)."
        )
    try:
        features = check_features(values.get("features") or {})
    except ValidationError as exc:
        raise ApiError("VALIDATION_ERROR", " ".join(map(str, exc.messages))) from None
    return {
        "name": name,
        "max_devices": max_devices,
        "max_sessions": max_sessions,
        "duration_days": duration_days,
        "features": features,
    }


def _audited(row: Any) -> dict[str, Any]:
    return {name: row[name] for name in PLAN_VALUES}


async def insert_plan(
    conn: asyncpg.Connection, queries: Queries, product_id: int, fields: dict[str, Any], actor: Actor
) -> asyncpg.Record:
    if not actor.can_change():
        raise ApiError("FORBIDDEN")
    values = _checked(fields)
    async with conn.transaction():
        if await queries.get_product_archived_at(conn, id=product_id) is None:
            raise ApiError("UNKNOWN_REFERENCE", details={"product_id": ["No product has this id."]})
        await ensure_product_open(conn, queries, product_id)
        await _ensure_name_free(conn, queries, product_id, values["name"], None)
        try:
            row = await queries.insert_plan(conn, product_id=product_id, **values)
        except asyncpg.UniqueViolationError:  # a concurrent create took the name meanwhile
            raise ApiError("PLAN_NAME_TAKEN") from None
        await record_change(conn, queries, actor, "plan.create", "plan", row["id"], after=_audited(row))
        return row


async def _ensure_name_free(
    conn: asyncpg.Connection, queries: Queries, product_id: int, name: str, except_id: int | None
) -> None:
    if await queries.plan_name_taken(conn, product_id=product_id, name=name, except_id=except_id):
        raise ApiError("PLAN_NAME_TAKEN", f"The product has another plan named {name!r}.")


async def get_plan_for_use(
    conn: asyncpg.Connection, queries: Queries, plan_id: int, product_id: int
) -> dict[str, Any]:
    """The plan a new license or card batch of `product_id` copies: PLAN_NOT_FOUND, PLAN_ARCHIVED, or
    PLAN_OF_ANOTHER_PRODUCT when it cannot be used."""
    row = await queries.get_plan(conn, id=plan_id)
    if row is None:
        raise ApiError("PLAN_NOT_FOUND")
    if row["product_id"] != product_id:
        raise ApiError(
            "PLAN_OF_ANOTHER_PRODUCT",
            f"The plan {row['name']!r} belongs to another product than the one chosen.",
        )
    if row["archived_at"] is not None:
        raise ApiError("PLAN_ARCHIVED", f"The plan {row['name']!r} is archived: nothing new is made from it.")
    return dict(row)


async def _locked(conn: asyncpg.Connection, queries: Queries, plan_id: int) -> asyncpg.Record:
    row = await queries.lock_plan(conn, id=plan_id)
    if row is None:
        raise ApiError("PLAN_NOT_FOUND")
    return row


async def update_plan(
    conn: asyncpg.Connection, queries: Queries, plan_id: int, changes: dict[str, Any], actor: Actor
) -> asyncpg.Record:
    """What later licenses and batches copy; those already made keep their values."""
    if not actor.can_change():
        raise ApiError("FORBIDDEN")
    async with conn.transaction():
        before = await _locked(conn, queries, plan_id)
        if before["archived_at"] is not None:
            raise ApiError("PLAN_ARCHIVED", "An archived plan is kept as it was.")
        values = _checked({**_audited(before), **{k: v for k, v in changes.items() if k in PLAN_VALUES}})
        await _ensure_name_free(conn, queries, before["product_id"], values["name"], plan_id)
        row = await queries.update_plan(conn, id=plan_id, **values)
        changed = {k: v for k, v in _audited(row).items() if before[k] != v}
        await record_change(
            conn,
            queries,
            actor,
            "plan.update",
            "plan",
            plan_id,
            before={k: before[k] for k in changed},
            after=changed,
        )
        return row


async def archive_plan(
    conn: asyncpg.Connection, queries: Queries, plan_id: int, actor: Actor
) -> asyncpg.Record:
    """Nothing new is made from an archived plan; its name is free for a new plan."""
    if not actor.can_change():
        raise ApiError("FORBIDDEN")
    async with conn.transaction():
        before = await _locked(conn, queries, plan_id)
        row = await queries.archive_plan(conn, id=plan_id)
        if before["archived_at"] is None:
            await record_change(
                conn, queries, actor, "plan.archive", "plan", plan_id, before={"name": row["name"]}
            )
        return row


async def plans_of(
    conn: asyncpg.Connection, queries: Queries, product_id: int | None, include_archived: bool = True
) -> list[dict[str, Any]]:
    rows = await queries.list_plans(conn, product_id=product_id, include_archived=include_archived)
    return [dict(row) for row in rows]


# The use cases as the admin UI and the management API call them, each on the one connection it uses.


async def create_plan(deps: Deps, product_id: int, fields: dict[str, Any], actor: Actor) -> dict[str, Any]:
    async with deps.db.connection() as conn:
        return dict(await insert_plan(conn, deps.q, product_id, fields, actor))


async def find_plan(deps: Deps, plan_id: int) -> dict[str, Any]:
    async with deps.db.connection() as conn:
        row = await deps.q.get_plan(conn, id=plan_id)
    if row is None:
        raise ApiError("PLAN_NOT_FOUND")
    return dict(row)


async def list_plans(
    deps: Deps, product_id: int | None, include_archived: bool = True
) -> list[dict[str, Any]]:
    async with deps.db.connection() as conn:
        return await plans_of(conn, deps.q, product_id, include_archived)


async def change_plan(deps: Deps, plan_id: int, changes: dict[str, Any], actor: Actor) -> dict[str, Any]:
    async with deps.db.connection() as conn:
        return dict(await update_plan(conn, deps.q, plan_id, changes, actor))


async def retire_plan(deps: Deps, plan_id: int, actor: Actor) -> dict[str, Any]:
    async with deps.db.connection() as conn:
        return dict(await archive_plan(conn, deps.q, plan_id, actor))
