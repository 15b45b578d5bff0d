"""Portal accounts: the signed-in account, sign-in with its password throttle, data change and erasure.
Registration and the opt-in are in `registration`, passwords in `passwords`. Each use case opens the one
transaction it uses; Redis holds only sign-in sessions."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import asyncpg

from licsrv.argon2_pool import off_loop
from licsrv.errors import ApiError
from licsrv.services.audit import Actor, record_change, record_security_event
from licsrv.services.portal import logins
from licsrv.services.portal.logins import PortalLogin
from licsrv.services.products import Product
from licsrv.signing import hash_password, verify_password

if TYPE_CHECKING:
    from licsrv.deps import Deps

# checked when the address is unknown: a wrong address costs what a wrong password does
_DUMMY_HASH = hash_password(secrets.token_hex(16))


@dataclass(frozen=True)
class PortalSettings:
    double_opt_in: bool = False
    device_frees_per_30d: int = 3
    reset_delivery: str = "email"


async def portal_settings(conn: asyncpg.Connection, deps: Deps, product_id: int) -> PortalSettings:
    row = await deps.q.get_portal_settings(conn, product_id=product_id)
    return PortalSettings(**dict(row)) if row else PortalSettings()


def customer(account_id: int, ip: str | None) -> Actor:
    """The customer as the author of their own changes in the audit log (a role that changes no admin
    data)."""
    return Actor(name=f"customer:{account_id}", role="customer", ip=ip)


async def in_executor(func: Any, *args: Any) -> Any:
    return await off_loop(func, *args)


def account_view(account: Any) -> dict[str, Any]:
    return {
        "id": account["id"],
        "email": account["email"],
        "data": account["data"],
        "verified": account["verified"],
        "disabled": account["disabled"],
        "created_at": account["created_at"],
    }


# --- sign-in -----------------------------------------------------------------------------------------------


async def check_password(
    deps: Deps, product: Product, account: Any | None, email: str, password: str, ip: str | None
) -> None:
    """Throttled per account+address and per address; a wrong password is LOGIN_FAILED whoever asks."""
    client = ip or "unknown"
    await logins.check_throttle(deps, product.id, email, client)
    stored = account["password_hash"] if account is not None and account["password_hash"] else _DUMMY_HASH
    if account is not None and await in_executor(verify_password, stored, password):
        await logins.clear_failures(deps, product.id, email, client)
        return
    if account is None:
        await in_executor(verify_password, stored, password)
    if await logins.count_failure(deps, product.id, email, client):
        async with deps.db.connection() as conn:
            await record_security_event(
                conn, deps.q, "portal_login_throttled", {"email": email[:254]}, ip=ip, product_id=product.id
            )
    raise ApiError("LOGIN_FAILED")


async def login(
    deps: Deps, product: Product, email: str, password: str, ip: str | None, previous: str | None = None
) -> dict[str, Any]:
    async with deps.db.connection() as conn:
        account = await deps.q.find_portal_account(conn, product_id=product.id, email=email)
    await check_password(deps, product, account, email, password, ip)
    if account["disabled"]:
        raise ApiError("ACCOUNT_DISABLED")
    async with deps.db.connection() as conn:
        await deps.q.set_portal_login(conn, id=account["id"], now=deps.now())
    if previous:  # ids rotate at sign-in: the session the browser brought along ends
        try:
            old = await logins.authenticate(deps, previous, product.id)
            await logins.close_session(deps, old)
        except ApiError:
            pass
    session = await logins.open_session(deps, account["id"], product.id)
    return {**session, "email": account["email"], "verification_required": not account["verified"]}


async def logout(deps: Deps, login: PortalLogin) -> dict[str, Any]:
    await logins.close_session(deps, login)
    return {"signed_out": True}


async def locked_account(
    conn: asyncpg.Connection, deps: Deps, login: PortalLogin, *, verified: bool = True
) -> Any:
    """The signed-in account, locked for the use case; disabled or erased ends here, unverified too unless
    the call is part of the opt-in."""
    account = await deps.q.lock_portal_account(conn, id=login.account_id)
    if account is None or account["erased_at"] is not None:
        raise ApiError("PORTAL_SESSION_EXPIRED")
    if account["disabled"]:
        raise ApiError("ACCOUNT_DISABLED")
    if verified and not account["verified"]:
        raise ApiError("ACCOUNT_NOT_VERIFIED")
    return account


async def signed_in_account(deps: Deps, login: PortalLogin, *, verified: bool = True) -> Any:
    async with deps.db.transaction() as conn:
        return await locked_account(conn, deps, login, verified=verified)


# --- the account's data -------------------------------------------------------------------------------------


async def update_data(deps: Deps, login: PortalLogin, data: dict, ip: str | None) -> dict[str, Any]:
    async with deps.db.transaction() as conn:
        account = await locked_account(conn, deps, login)
        await deps.q.set_portal_data(conn, id=account["id"], data=data)
        await record_change(
            conn,
            deps.q,
            customer(account["id"], ip),
            "portal.account.update",
            "portal_account",
            account["id"],
            after={"data_keys": sorted(data)[:20]},
        )
        return account_view({**account, "data": data})


async def erase_account(conn: asyncpg.Connection, deps: Deps, account: Any, actor: Actor) -> list[int]:
    """Personal data blanked, licenses detached (they keep working), tokens void; the erasure audited without
    the data it erased. In the caller's transaction; the caller ends the Redis sessions after it commits."""
    detached = [
        row["license_id"] for row in await deps.q.detach_account_licenses(conn, account_id=account["id"])
    ]
    await deps.q.erase_portal_account(conn, id=account["id"], now=deps.now())
    await deps.q.retire_portal_tokens(conn, account_id=account["id"], purpose="reset", now=deps.now())
    await deps.q.retire_portal_tokens(conn, account_id=account["id"], purpose="verify", now=deps.now())
    if account["email"]:
        await deps.q.erase_mail_to(conn, to_addr=account["email"])
    await record_change(
        conn,
        deps.q,
        actor,
        "portal.account.erase",
        "portal_account",
        account["id"],
        after={"licenses_detached": detached},
    )
    return detached


async def delete_own_account(
    deps: Deps, product: Product, login: PortalLogin, password: str, ip: str | None
) -> dict[str, Any]:
    account = await signed_in_account(deps, login, verified=False)
    await check_password(deps, product, account, account["email"], password, ip)
    async with deps.db.transaction() as conn:
        account = await locked_account(conn, deps, login, verified=False)
        detached = await erase_account(conn, deps, account, customer(account["id"], ip))
    await logins.close_other_sessions(deps, account["id"])
    return {"erased": True, "licenses_detached": len(detached)}
