"""Factories for tests: products and licenses made through the real services."""

from __future__ import annotations

import secrets
from typing import Any

from licsrv.services.audit import CLI_ACTOR
from licsrv.services.licenses import insert_license
from licsrv.state import PRODUCTS

PRODUCT_COLUMNS = (
    "heartbeat_interval",
    "session_timeout",
    "session_policy",
    "max_sessions",
    "current_version",
    "minimum_version",
    "download_url",
    "whats_new",
)


async def make_product(conn, app=None, **overrides: Any) -> dict:
    """A product of its own (so tests never share sessions); the app's API-key cache is reloaded."""
    values = {
        "heartbeat_interval": 1,
        "session_timeout": 2,
        "session_policy": "reject",
        "max_sessions": 1,
        "current_version": "2.0.0",
        "minimum_version": "1.0.0",
        "download_url": "https://example.com/dl",
        "whats_new": "Neu: 更快",
    }
    values.update(overrides)
    slug = f"p-{secrets.token_hex(4)}"
    api_key = "lk_" + secrets.token_hex(24)
    row = await conn.fetchrow(
        """INSERT INTO products (slug, name, api_key, heartbeat_interval, session_timeout, session_policy,
                                 max_sessions, current_version, minimum_version, download_url, whats_new)
           VALUES ($1, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING *""",
        slug,
        api_key,
        *(values[c] for c in PRODUCT_COLUMNS),
    )
    if app is not None:
        await app[PRODUCTS].reload()
    return dict(row)


async def make_license(conn, queries, product: dict, **fields: Any) -> dict:
    async with conn.transaction():
        return dict(await insert_license(conn, queries, product["id"], fields, CLI_ACTOR))
