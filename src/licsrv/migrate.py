"""Applies `sql/migrations/*.sql` in order, once each, under an advisory lock, one transaction per file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import asyncpg
import structlog

from licsrv.db import Queries, connect

MIGRATION_LOCK_ID = 0x6C696373  # "lics": shared by every instance that starts at the same time

log = structlog.get_logger(__name__)


class MigrationError(RuntimeError):
    pass


def migration_files(sql_dir: Path) -> list[Path]:
    return sorted((sql_dir / "migrations").glob("*.sql"))


def checksum(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def apply_migrations(conn: asyncpg.Connection, sql_dir: Path, queries: Queries) -> list[str]:
    """Returns the versions applied now; callers hold the advisory lock (see `migrate`)."""
    await queries.create_migrations_table(conn)
    applied = {row["version"]: row["checksum"] for row in await queries.applied_migrations(conn)}
    done: list[str] = []
    for path in migration_files(sql_dir):
        version = path.stem
        digest = checksum(path)
        if version in applied:
            if applied[version] != digest:
                raise MigrationError(f"migration {path.name} was changed after it was applied")
            continue
        async with conn.transaction():
            await conn.execute(path.read_text(encoding="utf-8"))
            await queries.record_migration(conn, version=version, checksum=digest)
        log.info("migration_applied", version=version)
        done.append(version)
    return done


async def migrate(database_url: str, sql_dir: Path, secret_key: str) -> list[str]:
    """Brings the schema up to date and makes sure a signing key exists; safe to run from many instances."""
    from licsrv.services.signing_keys import ensure_signing_key

    queries = Queries.load(sql_dir / "queries")
    conn = await connect(database_url)
    try:
        await queries.lock_migrations(conn, lock_id=MIGRATION_LOCK_ID)
        applied = await apply_migrations(conn, sql_dir, queries)
        if await ensure_signing_key(conn, queries, secret_key):
            log.info("signing_key_created")
        await queries.unlock_migrations(conn, lock_id=MIGRATION_LOCK_ID)
        return applied
    finally:
        await conn.close()  # closing also drops the advisory lock if we failed half-way
