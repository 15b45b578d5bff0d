"""Password change and reset: both end every other portal session and every credential file."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import asyncpg

from licsrv.errors import ApiError
from licsrv.services.audit import record_change, record_security_event
from licsrv.services.mail import queue_mail
from licsrv.services.portal import logins
from licsrv.services.portal.accounts import (
    check_password,
    customer,
    in_executor,
    locked_account,
    portal_settings,
    signed_in_account,
)
from licsrv.services.portal.logins import PortalLogin
from licsrv.services.portal.texts import mail_text
from licsrv.services.products import Product
from licsrv.signing import hash_password

if TYPE_CHECKING:
    from licsrv.deps import Deps


def _reset_hash(token: str) -> bytes:
    return hashlib.sha256(b"reset|" + token.encode()).digest()


# --- passwords ----------------------------------------------------------------------------------------------


async def change_password(
    deps: Deps, product: Product, login: PortalLogin, old_password: str, new_password: str, ip: str | None
) -> dict[str, Any]:
    account = await signed_in_account(deps, login)
    await check_password(deps, product, account, account["email"], old_password, ip)
    new_hash = await in_executor(hash_password, new_password)
    async with deps.db.transaction() as conn:
        await locked_account(conn, deps, login)
        await deps.q.set_portal_password(conn, id=account["id"], password_hash=new_hash)
        await deps.q.retire_portal_tokens(conn, account_id=account["id"], purpose="reset", now=deps.now())
        await record_change(
            conn,
            deps.q,
            customer(account["id"], ip),
            "portal.password.change",
            "portal_account",
            account["id"],
        )
    ended = await logins.close_other_sessions(deps, account["id"], keep=login.session_id)
    return {"changed": True, "other_sessions_ended": ended}


async def issue_reset_token(conn: asyncpg.Connection, deps: Deps, account_id: int) -> str:
    token = secrets.token_urlsafe(32)
    now = deps.now()
    await deps.q.retire_portal_tokens(conn, account_id=account_id, purpose="reset", now=now)
    await deps.q.insert_portal_token(
        conn,
        account_id=account_id,
        purpose="reset",
        token_hash=_reset_hash(token),
        expires_at=now + timedelta(seconds=deps.settings.portal_reset_ttl),
    )
    return token


def public_url(deps: Deps) -> str:
    """Where customers reach the server: configured, never taken from the request's Host header (a forged
    Host would otherwise send a victim's reset link to the forger's site)."""
    settings = deps.settings
    return settings.public_url.rstrip("/") or f"http://{settings.host}:{settings.port}"


async def request_reset(
    deps: Deps, product: Product, email: str, lang: str, ip: str | None
) -> dict[str, Any]:
    """The same answer whether or not the address has an account: nobody learns who is a customer here.
    One mail per address a minute at most, so the form cannot flood someone's inbox."""
    first = await deps.redis.set(
        f"portal:r:{product.id}:{hashlib.sha256(email.lower().encode()).hexdigest()[:24]}", 1, nx=True, ex=60
    )
    if not first:
        return {"requested": True}
    async with deps.db.transaction() as conn:
        settings = await portal_settings(conn, deps, product.id)
        account = await deps.q.find_portal_account(conn, product_id=product.id, email=email)
        if account is not None and not account["disabled"] and settings.reset_delivery == "email":
            token = await issue_reset_token(conn, deps, account["id"])
            link = f"{public_url(deps)}/portal/{product.slug}/reset?token={token}"
            subject, body = mail_text(
                lang,
                "reset",
                product=product.name,
                token=token,
                link=link,
                minutes=deps.settings.portal_reset_ttl // 60,
            )
            await queue_mail(conn, deps.q, product.id, account["email"], subject, body)
    return {"requested": True}


async def confirm_reset(
    deps: Deps, product: Product, token: str, new_password: str, ip: str | None
) -> dict[str, Any]:
    new_hash = await in_executor(hash_password, new_password)
    async with deps.db.transaction() as conn:
        row = await deps.q.lock_portal_token(conn, token_hash=_reset_hash(token))
        account = await deps.q.lock_portal_account(conn, id=row["account_id"]) if row else None
        bad = (
            row is None
            or row["purpose"] != "reset"
            or row["used_at"] is not None
            or row["expires_at"] <= deps.now()
            or account is None
            or account["product_id"] != product.id
            or account["disabled"]
        )
        if not bad:
            await deps.q.use_portal_token(conn, id=row["id"], now=deps.now())
            await deps.q.set_portal_password(conn, id=account["id"], password_hash=new_hash)
            await record_change(
                conn,
                deps.q,
                customer(account["id"], ip),
                "portal.password.reset",
                "portal_account",
                account["id"],
            )
    if bad:
        async with deps.db.connection() as conn:
            used = row is not None and row["used_at"] is not None
            await record_security_event(
                conn,
                deps.q,
                "portal_bad_reset_token",
                {"used": used, "known": row is not None},
                ip=ip,
                product_id=product.id,
            )
        raise ApiError("TOKEN_INVALID")
    await logins.close_other_sessions(deps, account["id"])
    return {"changed": True, "email": account["email"]}
