"""Licenses made with a key from an older system: the key's shape and its uniqueness."""

from __future__ import annotations

import re

import asyncpg

from licsrv.db import Queries
from licsrv.errors import ApiError

# The same rule as the licenses_key_shape constraint of migration 0011.
IMPORTED_KEY = re.compile(r"^[!-~]{8,100}$")
IMPORTED_KEY_RULE = "8 to 100 printable ASCII characters, no spaces"


def check_imported_key(key: str) -> str:
    if not isinstance(key, str) or not IMPORTED_KEY.match(key):
        raise ApiError("VALIDATION_ERROR", details={"key": [f"{IMPORTED_KEY_RULE}."]})
    return key


async def ensure_key_free(conn: asyncpg.Connection, queries: Queries, key: str) -> None:
    """The key as given is not yet a license's key (`409 LICENSE_KEY_TAKEN` if it is)."""
    check_imported_key(key)
    if await queries.license_key_exists(conn, key=key):
        raise ApiError("LICENSE_KEY_TAKEN")
