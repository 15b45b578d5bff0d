"""Importing licenses from an older system (CSV, DESIGN §7b): new keys are created, known keys updated where
the line differs, devices the older system had activated are bound. Idempotent: the same file again changes
nothing. Lines are written in chunks, one statement per chunk and kind (100 000 lines in seconds); a refused
line never stops the others, and a dry run does everything in a transaction that is rolled back."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import asyncpg

from licsrv.db import Queries
from licsrv.errors import ApiError, refused_by_database
from licsrv.live.sessions import LiveSessions
from licsrv.services.audit import Actor, record_change
from licsrv.services.import_chunks import ChunkOutcome, ImportContext, write_chunk
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
            await write_chunk(conn, context, rows, outcome)
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
