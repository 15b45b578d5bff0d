"""Importing licenses from an older system (CSV, DESIGN §7b): new keys are created, known keys updated where
the line differs, devices the older system had activated are bound. Idempotent: the same file again changes
nothing. Lines are written in chunks, one statement per chunk and kind (100 000 lines in seconds); a refused
line never stops the others, and a dry run does everything in a transaction that is rolled back."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import asyncpg
import orjson

from licsrv.db import Queries
from licsrv.errors import ApiError, refused_by_database
from licsrv.live.sessions import LiveSessions
from licsrv.services.audit import Actor, record_change
from licsrv.services.import_rows import (
    Catalogue,
    ImportRow,
    Refusal,
    RowRefused,
    check_csv,
    read_csv,
    read_row,
)

if TYPE_CHECKING:
    from licsrv.deps import Deps

CHUNK_ROWS = 2000
MAX_REFUSALS_LISTED = 1000
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
class ImportReport:
    dry_run: bool
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    refusals: list[Refusal] = field(default_factory=list)

    def refuse(self, refusal: Refusal) -> None:
        self.refusals.append(refusal)

    def as_dict(self) -> dict[str, Any]:
        listed = sorted(self.refusals, key=lambda r: r.line)[:MAX_REFUSALS_LISTED]
        return {
            "dry_run": self.dry_run,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "refused": len(self.refusals),
            "refusals": [r.as_dict() for r in listed],
            "refusals_truncated": len(self.refusals) > len(listed),
        }


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


async def import_licenses_csv(
    deps: Deps, text: str, *, default_product_id: int, dry_run: bool, actor: Actor
) -> ImportReport:
    """The management API's import: one connection for the whole file."""
    async with deps.db.connection() as conn:
        return await import_licenses(
            conn,
            deps.q,
            text,
            default_product_id=default_product_id,
            dry_run=dry_run,
            actor=actor,
            live=deps.live,
            tombstone_seconds=deps.tombstone_seconds(),
            now=deps.now(),
            wants=lambda event: deps.webhooks is None or deps.webhooks.wants(event),
        )


async def import_licenses(
    conn: asyncpg.Connection,
    queries: Queries,
    text: str,
    *,
    default_product_id: int,
    dry_run: bool,
    actor: Actor,
    live: LiveSessions | None,
    tombstone_seconds: int,
    now: datetime,
    wants: Callable[[str], bool] | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Reads and checks the whole file, then writes it chunk by chunk; one audit entry with the counts."""
    if not actor.can_change():
        raise ApiError("FORBIDDEN")
    catalogue = Catalogue.of(await queries.import_products(conn), await queries.import_plans(conn))
    if default_product_id not in catalogue.products:
        raise ApiError("UNKNOWN_REFERENCE", details={"product_id": ["No product has this id."]})
    if wants is None:  # asked once, not by a function call per line
        subscribed = {row["type"] for row in await queries.import_subscribed_event_types(conn)}
        wants = subscribed.__contains__
    report = ImportReport(dry_run=dry_run)
    await asyncio.to_thread(check_csv, text)  # a file that is not CSV is refused whole, before any write
    context = ImportContext(
        queries,
        now,
        None if dry_run else live,
        tombstone_seconds,
        emit_created=wants("license.created"),
        emit_updated=wants("license.updated"),
        emit_sessions=wants("session.terminated"),
    )
    rollback = conn.transaction() if dry_run else None
    if rollback is not None:
        await rollback.start()
    try:
        reading = _chunks_read_meanwhile(text, catalogue, default_product_id, report)
        async with contextlib.aclosing(reading) as chunks:
            async for chunk, refused in chunks:
                if chunk:
                    _count(report, await _apply_chunk(conn, context, chunk))
                if progress is not None:
                    progress(len(chunk) + refused)
    finally:
        if rollback is not None:
            await rollback.rollback()
    if not dry_run:
        await record_change(
            conn,
            queries,
            actor,
            "license.import",
            "product",
            default_product_id,
            after={k: v for k, v in report.as_dict().items() if k not in ("refusals", "refusals_truncated")},
        )
    return report


async def _chunks_read_meanwhile(
    text: str, catalogue: Catalogue, default_product_id: int, report: ImportReport
) -> AsyncIterator[tuple[list[ImportRow], int]]:
    """Chunks of checked lines (with how many lines were refused since the last one), read in a thread while
    the previous chunk is written: reading takes seconds at 100 000 lines, off the event loop and in parallel
    with PostgreSQL."""
    loop = asyncio.get_running_loop()
    chunks: asyncio.Queue = asyncio.Queue(maxsize=0)
    stop = threading.Event()

    def deliver(item: tuple[list[ImportRow], int] | None) -> None:
        loop.call_soon_threadsafe(chunks.put_nowait, item)

    def read() -> None:
        try:
            rows: list[ImportRow] = []
            refused = 0
            for row in _read_rows(text, catalogue, default_product_id, report):
                if row is None:
                    refused += 1
                    continue
                rows.append(row)
                if len(rows) == CHUNK_ROWS:
                    deliver((rows, refused))
                    rows, refused = [], 0
                    if stop.is_set():
                        return
            if rows or refused:
                deliver((rows, refused))
        finally:
            deliver(None)

    reader = asyncio.ensure_future(asyncio.to_thread(read))
    try:
        while (item := await chunks.get()) is not None:
            yield item
        await reader  # its exception, if it failed
    finally:
        stop.set()


def _read_rows(
    text: str, catalogue: Catalogue, default_product_id: int, report: ImportReport
) -> Iterator[ImportRow | None]:
    """Each line's row, or None for a line refused (the refusal is in the report)."""
    header, lines = read_csv(text)
    first_line: dict[str, int] = {}
    key_at = header.index("key")
    for line, cells in lines:
        key = cells[key_at].strip() if len(cells) > key_at else ""
        try:
            row = read_row(line, header, cells, catalogue, default_product_id)
            if row.key in first_line:
                raise RowRefused("CONFLICT", f"The key is on line {first_line[row.key]} already.")
        except RowRefused as refused:
            report.refuse(Refusal(line, key[:100], refused.code, refused.message))
            yield None
            continue
        first_line[row.key] = line
        yield row


def _count(report: ImportReport, outcome: ChunkOutcome) -> None:
    report.created += outcome.created
    report.updated += outcome.updated
    report.unchanged += outcome.unchanged
    report.refusals.extend(outcome.refusals)


async def _apply_chunk(
    conn: asyncpg.Connection, context: ImportContext, chunk: list[ImportRow]
) -> ChunkOutcome:
    """The chunk in one transaction; if PostgreSQL refuses it (a key created meanwhile by someone else),
    line by line, so that only the offending lines are refused."""
    with contextlib.suppress(asyncpg.IntegrityConstraintViolationError, asyncpg.DataError):
        return await _in_transaction(conn, context, chunk)
    outcome = ChunkOutcome()
    for row in chunk:
        try:
            one = await _in_transaction(conn, context, [row])
        except (asyncpg.IntegrityConstraintViolationError, asyncpg.DataError) as exc:
            error = refused_by_database(exc)
            code = "LICENSE_KEY_TAKEN" if isinstance(exc, asyncpg.UniqueViolationError) else error.code
            one = ChunkOutcome(refusals=[Refusal(row.line, row.key, code, error.in_words())])
        outcome.created += one.created
        outcome.updated += one.updated
        outcome.unchanged += one.unchanged
        outcome.refusals += one.refusals
    return outcome


async def _in_transaction(
    conn: asyncpg.Connection, context: ImportContext, rows: list[ImportRow]
) -> ChunkOutcome:
    outcome = ChunkOutcome()
    try:
        async with conn.transaction():
            await _write(conn, context, rows, outcome)
    except BaseException:
        if context.live is not None:
            for license_id in outcome.blocked:
                with contextlib.suppress(Exception):
                    await context.live.unblock_license(license_id)
        raise
    if context.live is not None:
        for license_id in outcome.resumed:
            await context.live.unblock_license(license_id)
    return outcome


async def _write(
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
