"""Admin users: creation with argon2id hashes, and the password check behind every login."""

from __future__ import annotations

import functools
import re
import secrets

import asyncpg
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from licsrv.argon2_pool import off_loop
from licsrv.db import Database, Queries
from licsrv.domain import ROLES
from licsrv.errors import ApiError
from licsrv.live import login_lockout
from licsrv.services.audit import Actor, record_change
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
        raise ApiError("VALIDATION_ERROR", "The username may hold 1 to 64 letters, digits or _ . @ -.")
    if role not in ROLES:
        raise ApiError("VALIDATION_ERROR", f"The role must be one of {', '.join(ROLES)}.")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ApiError("VALIDATION_ERROR", f"The password needs at least {MIN_PASSWORD_LENGTH} characters.")
    password_hash = await off_loop(hash_password, password)
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


async def check_login(db: Database, username: str, password: str) -> dict | None:
    """The admin when the password matches and the account is enabled, else None (same time either way).
    No connection is held while the password is checked: a burst of logins waits for the password threads,
    not for the pool that session starts and admin pages need."""
    from licsrv.signing import verify_password

    row = None
    if USERNAME.match(username):
        async with db.connection() as conn:
            row = await db.q.get_admin_by_username(conn, username=username)
    stored = row["password_hash"] if row else _dummy_hash()
    matches = await off_loop(verify_password, stored, password)
    if row is None or not matches or row["disabled"]:
        return None
    async with db.connection() as conn:
        await db.q.record_login(conn, id=row["id"])
    return {"id": row["id"], "username": row["username"], "role": row["role"]}


async def current_admin(
    conn: asyncpg.Connection, queries: Queries, admin_id: int, logged_in_at: float
) -> dict | None:
    """The admin behind a web session, as the database says now: None when disabled, deleted, or when the
    password changed after this login (so a reset or a disable ends every other session at once)."""
    row = await queries.get_admin(conn, id=admin_id)
    if row is None or row["disabled"] or row["password_changed_at"].timestamp() > logged_in_at:
        return None
    return {"id": row["id"], "username": row["username"], "role": row["role"]}


async def change_password(
    conn: asyncpg.Connection, queries: Queries, admin_id: int, new_password: str, actor: Actor
) -> None:
    """Own password for anyone; another admin's only for an owner."""
    row = await queries.get_admin(conn, id=admin_id)
    if row is None:
        raise ApiError("NOT_FOUND", "No such admin.")
    if row["username"] != actor.name and not actor.is_owner():
        raise ApiError("FORBIDDEN", "Only an owner resets another admin's password.")
    if len(new_password) < MIN_PASSWORD_LENGTH:
        raise ApiError("VALIDATION_ERROR", f"The password needs at least {MIN_PASSWORD_LENGTH} characters.")
    password_hash = await off_loop(hash_password, new_password)
    async with conn.transaction():
        await queries.set_admin_password(conn, id=admin_id, password_hash=password_hash)
        await record_change(conn, queries, actor, "admin.password", "admin_user", admin_id)


async def set_role(
    conn: asyncpg.Connection, queries: Queries, admin_id: int, role: str, disabled: bool, actor: Actor
) -> None:
    if not actor.is_owner():
        raise ApiError("FORBIDDEN", "Only an owner manages admins.")
    if role not in ROLES:
        raise ApiError("VALIDATION_ERROR", f"The role must be one of {', '.join(ROLES)}.")
    async with conn.transaction():
        before = await queries.get_admin(conn, id=admin_id)
        if before is None:
            raise ApiError("NOT_FOUND", "No such admin.")
        if before["username"] == actor.name and (role != "owner" or disabled):
            raise ApiError("CONFLICT", "You cannot demote or disable yourself.")
        owners = {row["username"] for row in await queries.lock_enabled_owners(conn)}
        if actor.name not in owners:  # demoted or disabled by another owner a moment ago
            raise ApiError("FORBIDDEN", "Only an owner manages admins.")
        if before["username"] in owners and (role != "owner" or disabled) and len(owners) <= 1:
            raise ApiError("CONFLICT", "The last enabled owner cannot be demoted or disabled.")
        await queries.set_admin_role(conn, id=admin_id, role=role, disabled=disabled)
        await record_change(
            conn,
            queries,
            actor,
            "admin.update",
            "admin_user",
            admin_id,
            before={"role": before["role"], "disabled": before["disabled"]},
            after={"role": role, "disabled": disabled},
        )


async def unlock_admin(
    conn: asyncpg.Connection, queries: Queries, redis: Redis | RedisCluster, username: str, actor: Actor
) -> None:
    """Lifts every login lock and throttle of an admin (licsrv.live.login_lockout); audited."""
    row = await queries.get_admin_by_username(conn, username=username)
    if row is None:
        raise ApiError("NOT_FOUND", f"No admin named {username!r}.")
    await login_lockout.unlock(redis, row["username"])
    await record_change(conn, queries, actor, "admin.unlock", "admin_user", row["id"])


@functools.cache
def _dummy_hash() -> str:
    return hash_password("no such admin: keeps the timing of a failed login the same")
