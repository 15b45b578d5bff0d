"""Admin users: creation with argon2id hashes, and the password check behind every login."""

from __future__ import annotations

import asyncio
import re
import secrets

import asyncpg

from licsrv.db import Queries
from licsrv.errors import ApiError
from licsrv.services.audit import Actor, record_change
from licsrv.services.tokens import ROLES
from licsrv.signing import hash_password

USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
MIN_PASSWORD_LENGTH = 10


def new_password() -> str:
    return secrets.token_urlsafe(12)


async def create_admin(
    conn: asyncpg.Connection, queries: Queries, username: str, password: str, role: str, actor: Actor
) -> int:
    if not actor.is_owner():
        raise ApiError("FORBIDDEN", "Only an owner creates admins.")
    if not USERNAME.match(username):
        raise ApiError("VALIDATION_ERROR", "username: 1-64 letters, digits or _ . @ -")
    if role not in ROLES:
        raise ApiError("VALIDATION_ERROR", f"role must be one of {', '.join(ROLES)}.")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ApiError("VALIDATION_ERROR", f"password must have at least {MIN_PASSWORD_LENGTH} characters.")
    password_hash = await asyncio.get_running_loop().run_in_executor(None, hash_password, password)
    async with conn.transaction():
        if await queries.get_admin_by_username(conn, username=username) is not None:
            raise ApiError("CONFLICT", "An admin with this username exists.")
        admin_id = await queries.insert_admin(conn, username=username, password_hash=password_hash, role=role)
        await record_change(
            conn,
            queries,
            actor,
            "admin.create",
            "admin_user",
            admin_id,
            after={"username": username, "role": role},
        )
    return admin_id
