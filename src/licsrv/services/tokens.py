"""Management API bearer tokens: shown once, stored as a hash, revocable."""

from __future__ import annotations

import secrets

import asyncpg

from licsrv.db import Queries
from licsrv.domain import ROLES
from licsrv.errors import ApiError
from licsrv.services.audit import Actor, record_change
from licsrv.signing import token_hash

TOKEN_PREFIX = "lst_"


async def create_token(
    conn: asyncpg.Connection, queries: Queries, name: str, role: str, actor: Actor
) -> tuple[int, str]:
    """Returns (id, token); the token itself is never stored."""
    if not actor.is_owner():
        raise ApiError("FORBIDDEN", "Only an owner creates management tokens.")
    if role not in ROLES:
        raise ApiError("VALIDATION_ERROR", f"The role must be one of {', '.join(ROLES)}.")
    if not 1 <= len(name) <= 100:
        raise ApiError("VALIDATION_ERROR", "The name must be 1 to 100 characters.")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    async with conn.transaction():
        token_id = await queries.insert_api_token(
            conn, name=name, token_hash=token_hash(token), role=role, created_by=actor.name
        )
        await record_change(
            conn, queries, actor, "token.create", "api_token", token_id, after={"name": name, "role": role}
        )
    return token_id, token


async def authenticate_token(
    conn: asyncpg.Connection, queries: Queries, token: str, ip: str | None
) -> Actor | None:
    if not token.startswith(TOKEN_PREFIX) or len(token) > 100:
        return None
    row = await queries.find_api_token(conn, token_hash=token_hash(token))
    if row is None:
        return None
    await queries.touch_api_token(conn, id=row["id"])
    return Actor(name=f"token:{row['name']}", role=row["role"], ip=ip)


async def revoke_token(conn: asyncpg.Connection, queries: Queries, token_id: int, actor: Actor) -> None:
    if not actor.is_owner():
        raise ApiError("FORBIDDEN", "Only an owner revokes management tokens.")
    async with conn.transaction():
        row = await queries.revoke_api_token(conn, id=token_id)
        if row is None:
            raise ApiError("NOT_FOUND", "The token was not found or is already revoked.")
        await record_change(
            conn, queries, actor, "token.revoke", "api_token", token_id, before={"name": row["name"]}
        )
