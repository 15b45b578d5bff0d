"""Signing keys: created on first migrate, rotated on demand, loaded into a Keyring at start and reloaded by
every worker when a rotation is announced (the configuration channel of the product cache)."""

from __future__ import annotations

import asyncpg

from licsrv.db import Queries
from licsrv.signing import Keyring, new_signing_key


async def ensure_signing_key(conn: asyncpg.Connection, queries: Queries, secret_key: str) -> bool:
    """Creates the first key pair if none is active; True when it did."""
    async with conn.transaction():
        if await queries.count_active_signing_keys(conn):
            return False
        key = new_signing_key(secret_key)
        await queries.insert_signing_key(
            conn, id=key.key_id, public_key=key.public_key, private_key_enc=key.private_key_enc
        )
        return True


async def rotate_signing_key(conn: asyncpg.Connection, queries: Queries, secret_key: str) -> str:
    """Retires the active key (it stays published for verification) and activates a new one."""
    key = new_signing_key(secret_key)
    async with conn.transaction():
        await queries.retire_active_signing_key(conn)
        await queries.insert_signing_key(
            conn, id=key.key_id, public_key=key.public_key, private_key_enc=key.private_key_enc
        )
        await queries.notify_products_changed(conn)  # running servers reload their keyring
    return key.key_id


async def load_keyring(conn: asyncpg.Connection, queries: Queries, secret_key: str) -> Keyring:
    return Keyring.from_rows(await queries.list_signing_keys(conn), secret_key)
