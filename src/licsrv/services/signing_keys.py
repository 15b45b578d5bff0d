"""Signing keys: created on first migrate, rotated in two steps (add the next key: published, not signing;
later activate it: it signs, the old one is retired and stays published), loaded into a Keyring at start
and reloaded by every worker when a change is announced (the configuration channel of the product cache)."""

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
            conn, id=key.key_id, public_key=key.public_key, private_key_enc=key.private_key_enc, active=True
        )
        return True


class UnknownNextKey(LookupError):
    """Not a key added with `keys add` that is still waiting to sign."""


async def add_signing_key(conn: asyncpg.Connection, queries: Queries, secret_key: str) -> str:
    """Publishes a new key as the next one (`"next": true` in GET /keys) without signing with it, so
    clients learn it from answers signed by the key they already trust before it is used."""
    key = new_signing_key(secret_key)
    async with conn.transaction():
        await queries.insert_signing_key(
            conn, id=key.key_id, public_key=key.public_key, private_key_enc=key.private_key_enc, active=False
        )
        await queries.notify_products_changed(conn)  # running servers reload their keyring
    return key.key_id


async def activate_signing_key(conn: asyncpg.Connection, queries: Queries, key_id: str) -> None:
    """The next key `key_id` signs from now on; the active one is retired and stays published."""
    async with conn.transaction():
        await queries.retire_active_signing_key(conn)
        if await queries.activate_next_signing_key(conn, id=key_id) is None:
            raise UnknownNextKey(key_id)
        await queries.notify_products_changed(conn)


async def rotate_signing_key(conn: asyncpg.Connection, queries: Queries, secret_key: str) -> str:
    """Add and activate at once: clients that never fetched the new key learn it from the signed keys
    answer when they first see it (it is signed by the new key, which they do not trust yet: pinned
    clients need the two steps)."""
    key_id = await add_signing_key(conn, queries, secret_key)
    await activate_signing_key(conn, queries, key_id)
    return key_id


async def load_keyring(conn: asyncpg.Connection, queries: Queries, secret_key: str) -> Keyring:
    return Keyring.from_rows(await queries.list_signing_keys(conn), secret_key)
