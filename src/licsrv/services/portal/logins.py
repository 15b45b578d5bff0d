"""Portal sign-in sessions in Redis: a session id and a session token whose hash is kept, a sliding idle
timeout and a maximum age (the key's TTL is never set past it); and the throttle of wrong passwords."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from licsrv.errors import ApiError

if TYPE_CHECKING:
    from licsrv.deps import Deps


@dataclass(frozen=True)
class PortalLogin:
    session_id: str
    account_id: int
    product_id: int


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _key(session_id: str) -> str:
    return f"portal:s:{session_id}"


def _index(account_id: int) -> str:
    return f"portal:a:{account_id}"


async def open_session(deps: Deps, account_id: int, product_id: int) -> dict[str, str]:
    """A fresh id on every sign-in (never one the browser brought along); only the token's hash is stored."""
    settings = deps.settings
    session_id = secrets.token_urlsafe(18)
    secret = secrets.token_urlsafe(32)
    now = int(time.time())
    ttl = min(settings.portal_idle_timeout, settings.portal_max_age)
    async with deps.redis.pipeline(transaction=False) as pipe:
        pipe.hset(
            _key(session_id),
            mapping={"a": account_id, "p": product_id, "h": _hash(secret), "c": now},
        )
        pipe.expire(_key(session_id), ttl)
        pipe.sadd(_index(account_id), session_id)
        pipe.expire(_index(account_id), settings.portal_max_age)
        await pipe.execute()
    return {"session_id": session_id, "session_token": f"{session_id}.{secret}"}


async def authenticate(deps: Deps, token: str | None, product_id: int) -> PortalLogin:
    """The session behind a bearer token, its idle timer restarted; any doubt is PORTAL_SESSION_EXPIRED."""
    session_id, _, secret = (token or "").partition(".")
    if not session_id or not secret or len(token or "") > 200:
        raise ApiError("PORTAL_SESSION_EXPIRED")
    raw = await deps.redis.hgetall(_key(session_id))
    fields = {k.decode() if isinstance(k, bytes) else k: v for k, v in raw.items()}
    if not fields or not hmac.compare_digest(_as_str(fields.get("h")), _hash(secret)):
        raise ApiError("PORTAL_SESSION_EXPIRED")
    if int(fields["p"]) != product_id:
        raise ApiError("PORTAL_SESSION_EXPIRED")
    settings = deps.settings
    left = int(fields["c"]) + settings.portal_max_age - int(time.time())
    if left <= 0:
        await deps.redis.delete(_key(session_id))
        raise ApiError("PORTAL_SESSION_EXPIRED")
    await deps.redis.expire(_key(session_id), min(settings.portal_idle_timeout, left))
    return PortalLogin(session_id, int(fields["a"]), product_id)


def _as_str(value: bytes | str | None) -> str:
    if isinstance(value, bytes):
        return value.decode()
    return value or ""


async def close_session(deps: Deps, login: PortalLogin) -> None:
    await deps.redis.delete(_key(login.session_id))
    await deps.redis.srem(_index(login.account_id), login.session_id)


async def close_other_sessions(deps: Deps, account_id: int, keep: str | None = None) -> int:
    """Every portal session of the account but `keep` (a password change keeps the caller signed in)."""
    members = [_as_str(m) for m in await deps.redis.smembers(_index(account_id))]
    ending = [m for m in members if m != keep]
    for session_id in ending:  # one key each: on Redis Cluster they live on different slots
        await deps.redis.delete(_key(session_id))
        await deps.redis.srem(_index(account_id), session_id)
    return len(ending)


# --- wrong passwords -------------------------------------------------------------------------------------
# Counted per account and address and per address alone, never per account: a stranger's guesses slow the
# stranger's address down, and the customer signing in from their own address is never locked out by them.


def _account_ip_key(product_id: int, email: str, ip: str) -> str:
    return f"portal:f:{product_id}:{_hash(email.lower())[:24]}:{ip}"


def _ip_key(product_id: int, ip: str) -> str:
    return f"portal:fi:{product_id}:{ip}"


async def check_throttle(deps: Deps, product_id: int, email: str, ip: str) -> None:
    settings = deps.settings
    keys = (_account_ip_key(product_id, email, ip), _ip_key(product_id, ip))
    limits = (settings.portal_failures_per_account_ip, settings.portal_failures_per_ip)
    for key, limit in zip(keys, limits, strict=True):
        count = await deps.redis.get(key)
        if count is not None and int(count) >= limit:
            wait = max(await deps.redis.ttl(key), 1)
            raise ApiError("RATE_LIMITED", headers={"Retry-After": str(wait)})


async def count_failure(deps: Deps, product_id: int, email: str, ip: str) -> bool:
    """Counts a wrong password; True when this failure reached a limit (worth one security event)."""
    settings = deps.settings
    reached = False
    for key, limit in (
        (_account_ip_key(product_id, email, ip), settings.portal_failures_per_account_ip),
        (_ip_key(product_id, ip), settings.portal_failures_per_ip),
    ):
        count = await deps.redis.incr(key)
        if count == 1:
            await deps.redis.expire(key, settings.portal_failure_window)
        reached = reached or count == limit
    return reached


async def clear_failures(deps: Deps, product_id: int, email: str, ip: str) -> None:
    await deps.redis.delete(_account_ip_key(product_id, email, ip))


async def count_bad_ticket(deps: Deps, product_id: int, ip: str, limit: int = 10) -> None:
    """Wrong tickets (the captcha of 001) slow the caller down like wrong passwords."""
    key = f"portal:t:{product_id}:{ip}"
    count = await deps.redis.incr(key)
    if count == 1:
        await deps.redis.expire(key, deps.settings.portal_failure_window)


async def check_ticket_throttle(deps: Deps, product_id: int, ip: str, limit: int = 10) -> None:
    key = f"portal:t:{product_id}:{ip}"
    count = await deps.redis.get(key)
    if count is not None and int(count) >= limit:
        raise ApiError("RATE_LIMITED", headers={"Retry-After": str(max(await deps.redis.ttl(key), 1))})
