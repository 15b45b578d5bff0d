from __future__ import annotations

import asyncio
import secrets
import shutil

import pytest

from licsrv.db import Queries, connect
from licsrv.migrate import MigrationError, apply_migrations, migrate


async def _fresh_database(postgres_url: str) -> str:
    name = f"licsrv_mig_{secrets.token_hex(4)}"
    admin = await connect(postgres_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return postgres_url.rsplit("/", 1)[0] + "/" + name


async def test_instances_starting_together_apply_each_migration_once(postgres_url, settings):
    url = await _fresh_database(postgres_url)
    results = await asyncio.gather(*(migrate(url, settings.sql_dir, "k" * 20) for _ in range(4)))
    shipped = sorted(path.stem for path in (settings.sql_dir / "migrations").glob("*.sql"))
    assert sorted(results, key=len) == [[], [], [], shipped]
    conn = await connect(url)
    try:
        versions = await conn.fetch("SELECT version FROM schema_migrations")
        assert len(versions) == len(list((settings.sql_dir / "migrations").glob("*.sql")))
        assert await conn.fetchval("SELECT count(*) FROM signing_keys WHERE active") == 1
        assert await conn.fetchval("SELECT slug FROM products WHERE id = 1") == "default"
    finally:
        await conn.close()


async def test_second_run_applies_nothing(settings):
    assert await migrate(settings.database_url, settings.sql_dir, settings.secret_key) == []


async def test_a_changed_migration_is_refused(postgres_url, settings, tmp_path):
    url = await _fresh_database(postgres_url)
    sql_dir = tmp_path / "sql"
    shutil.copytree(settings.sql_dir, sql_dir)
    await migrate(url, sql_dir, "k" * 20)
    first = sorted((sql_dir / "migrations").glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited afterwards\n")
    conn = await connect(url)
    try:
        with pytest.raises(MigrationError, match="changed after it was applied"):
            await apply_migrations(conn, sql_dir, Queries.load(sql_dir / "queries"))
    finally:
        await conn.close()
