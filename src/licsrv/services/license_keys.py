"""Licenses made with a key from an older system or from a plan: the key's shape, its uniqueness, and the
plan values a new license copies (DESIGN §2: editing a plan later never changes what was sold)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import asyncpg

from licsrv.db import Queries
from licsrv.errors import ApiError

# The same rule as the licenses_key_shape constraint of migration 0011.
IMPORTED_KEY = re.compile(r"^[!-~]{8,100}$")
IMPORTED_KEY_RULE = "8 to 100 printable ASCII characters, no spaces"
# What a plan gives a license made from it, unless the request names the value itself.
PLAN_FIELDS = ("max_devices", "max_sessions", "features")
EXPIRY_FIELDS = ("duration_days", "expires_at")


def check_imported_key(key: str) -> str:
    if not isinstance(key, str) or not IMPORTED_KEY.match(key):
        raise ApiError("VALIDATION_ERROR", details={"key": [f"{IMPORTED_KEY_RULE}."]})
    return key


async def ensure_key_free(conn: asyncpg.Connection, queries: Queries, key: str) -> None:
    """The key as given is not yet a license's key (`409 LICENSE_KEY_TAKEN` if it is)."""
    check_imported_key(key)
    if await queries.license_key_exists(conn, key=key):
        raise ApiError("LICENSE_KEY_TAKEN")


async def plan_of_product(
    conn: asyncpg.Connection, queries: Queries, product_id: int, plan_id: int
) -> asyncpg.Record:
    """The plan, when it is a live plan of this product; refusals name `plan_id`."""
    plan = await queries.plan_for_license(conn, id=plan_id)
    if plan is None or plan["product_id"] != product_id:
        raise ApiError("UNKNOWN_REFERENCE", details={"plan_id": ["No plan of this product has this id."]})
    if plan["archived_at"] is not None:
        raise ApiError("CONFLICT", "The plan is archived: it makes no new licenses.")
    return plan


def with_plan_values(fields: Mapping[str, Any], plan: Mapping[str, Any]) -> dict[str, Any]:
    """`fields` completed with the plan's values for what they do not give explicitly."""
    merged = dict(fields)
    for name in PLAN_FIELDS:
        if name not in merged:
            merged[name] = plan[name]
    if not any(name in merged for name in EXPIRY_FIELDS):
        merged["duration_days"] = plan["duration_days"]  # None: the plan sells perpetual licenses
    return merged
