"""Portal accounts: registration with a ticket, double opt-in, sign-in, password change and reset, data
change and erasure. Each use case opens the one transaction it uses; Redis holds only sign-in sessions."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import asyncpg

from licsrv.codes import card_code_is_well_formed, new_license_key, normalise
from licsrv.errors import ApiError
from licsrv.services.audit import Actor, record_change, record_security_event
from licsrv.services.mail import queue_mail
from licsrv.services.portal import logins
from licsrv.services.portal.logins import PortalLogin
from licsrv.services.portal.texts import mail_text
from licsrv.services.products import Product
from licsrv.signing import hash_password, verify_password

if TYPE_CHECKING:
    from licsrv.deps import Deps

# checked when the address is unknown: a wrong address costs what a wrong password does
_DUMMY_HASH = hash_password(secrets.token_hex(16))
MAX_CODE_ATTEMPTS = 5


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
    return await asyncio.get_running_loop().run_in_executor(None, func, *args)


def _code_hash(secret_key: str, account_id: int, purpose: str, code: str) -> bytes:
    return hmac.new(secret_key.encode(), f"{purpose}|{account_id}|{code}".encode(), hashlib.sha256).digest()


def _reset_hash(token: str) -> bytes:
    return hashlib.sha256(b"reset|" + token.encode()).digest()


def account_view(account: Any) -> dict[str, Any]:
    return {
        "id": account["id"],
        "email": account["email"],
        "data": account["data"],
        "verified": account["verified"],
        "disabled": account["disabled"],
        "created_at": account["created_at"],
    }


# --- registration ----------------------------------------------------------------------------------------


async def register(
    deps: Deps,
    product: Product,
    *,
    email: str,
    password: str,
    ticket: str,
    data: dict | None,
    ip: str | None,
    lang: str = "en",
) -> dict[str, Any]:
    client = ip or "unknown"
    await logins.check_ticket_throttle(deps, product.id, client)
    password_hash = await in_executor(hash_password, password)
    now = deps.now()
    try:
        async with deps.db.transaction() as conn:
            settings = await portal_settings(conn, deps, product.id)
            license_id = await _take_ticket(conn, deps, product, ticket, ip, now)
            if await deps.q.portal_email_taken(conn, product_id=product.id, email=email):
                raise ApiError("EMAIL_TAKEN")
            account = await deps.q.insert_portal_account(
                conn,
                product_id=product.id,
                email=email,
                password_hash=password_hash,
                data=data or {},
                verified=not settings.double_opt_in,
            )
            if account is None:  # a concurrent registration took the address
                raise ApiError("EMAIL_TAKEN")
            if await deps.q.attach_license(conn, license_id=license_id, account_id=account["id"]) is None:
                raise _BadTicket()
            if settings.double_opt_in:
                await _send_code(conn, deps, product, account["id"], email, lang)
            await record_change(
                conn,
                deps.q,
                customer(account["id"], ip),
                "portal.account.create",
                "portal_account",
                account["id"],
                after={"license_id": license_id},
            )
            # TODO(webhooks): emit(conn, deps, "portal.account.created", {"account_id": account["id"]})
    except _BadTicket:
        await _refuse_ticket(deps, product, ticket, client)
    login = await logins.open_session(deps, account["id"], product.id)
    return {**login, "email": email, "verification_required": settings.double_opt_in}


class _BadTicket(Exception):
    pass


async def _refuse_ticket(deps: Deps, product: Product, ticket: str, client: str) -> None:
    """Recorded outside the refused transaction, so the evidence survives; counted against the caller."""
    await logins.count_bad_ticket(deps, product.id, client)
    async with deps.db.connection() as conn:
        await record_security_event(
            conn,
            deps.q,
            "portal_bad_ticket",
            {"ticket": ticket[:6] + "…"},
            ip=None if client == "unknown" else client,
            product_id=product.id,
        )
    raise ApiError("TICKET_INVALID") from None


async def _take_ticket(
    conn: asyncpg.Connection, deps: Deps, product: Product, ticket: str, ip: str | None, now: Any
) -> int:
    """The license the ticket gives: an unused card redeemed into a new license, or an unclaimed license.
    Row locks serialise concurrent registrations with one ticket; the loser finds it used."""
    code = normalise(ticket)
    if card_code_is_well_formed(code):
        card = await deps.q.lock_card(conn, code=code)
        if card is None or card["product_id"] != product.id or card["status"] != "new":
            raise _BadTicket()
        return await _license_from_card(conn, deps, product, card, ip, now)
    found = await deps.q.get_license_by_key(conn, key=ticket.strip().upper())
    if found is None or found["product_id"] != product.id:
        raise _BadTicket()
    license_row = await deps.q.lock_license(conn, id=found["id"])
    if license_row["status"] == "revoked" or await deps.q.license_owner(conn, license_id=found["id"]):
        raise _BadTicket()
    return license_row["id"]


async def _license_from_card(conn, deps: Deps, product: Product, card: Any, ip: str | None, now: Any) -> int:
    """Like a redemption on a device, but no device yet: the clock starts at the first activation."""
    license_row = await deps.q.insert_license(
        conn,
        key=new_license_key(),
        product_id=product.id,
        customer_name="",
        customer_email="",
        max_devices=1,
        max_sessions=None,
        features={},
        notes=f"card {card['code'][:6]}… (portal)",
        expires_at=None,
        duration=timedelta(days=card["duration_days"]),
    )
    await deps.q.redeem_card(
        conn, id=card["id"], license_id=license_row["id"], hardware_id=None, ip=ip, now=now
    )
    return license_row["id"]


# --- opt-in ------------------------------------------------------------------------------------------------


async def _send_code(conn, deps: Deps, product: Product, account_id: int, email: str, lang: str) -> None:
    code = f"{secrets.randbelow(1_000_000):06d}"
    now = deps.now()
    await deps.q.retire_portal_tokens(conn, account_id=account_id, purpose="verify", now=now)
    await deps.q.insert_portal_token(
        conn,
        account_id=account_id,
        purpose="verify",
        token_hash=_code_hash(deps.settings.secret_key, account_id, "verify", code),
        expires_at=now + timedelta(seconds=deps.settings.portal_code_ttl),
    )
    subject, body = mail_text(lang, "verify", product=product.name, code=code)
    await queue_mail(conn, deps.q, product.id, email, subject, body)


async def resend_code(deps: Deps, product: Product, login: PortalLogin, lang: str) -> dict[str, Any]:
    async with deps.db.transaction() as conn:
        account = await _account(conn, deps, login, verified=False)
        if account["verified"]:
            return {"verified": True, "sent": False}
        await _send_code(conn, deps, product, account["id"], account["email"], lang)
    return {"verified": False, "sent": True}


async def verify(deps: Deps, login: PortalLogin, code: str, ip: str | None) -> dict[str, Any]:
    async with deps.db.transaction() as conn:
        account = await _account(conn, deps, login, verified=False)
        if account["verified"]:
            return {"verified": True}
        row = await deps.q.lock_open_verify_code(conn, account_id=account["id"])
        wanted = _code_hash(deps.settings.secret_key, account["id"], "verify", code)
        usable = row is not None and row["expires_at"] > deps.now() and row["attempts"] < MAX_CODE_ATTEMPTS
        if not usable or not hmac.compare_digest(bytes(row["token_hash"]), wanted):
            if row is not None:
                await deps.q.count_portal_token_attempt(conn, id=row["id"])  # committed: guesses count
            wrong = True
        else:
            wrong = False
            await deps.q.use_portal_token(conn, id=row["id"], now=deps.now())
            await deps.q.set_portal_verified(conn, id=account["id"], verified=True)
            await record_change(
                conn,
                deps.q,
                customer(account["id"], ip),
                "portal.account.verify",
                "portal_account",
                account["id"],
            )
    if wrong:
        raise ApiError("CODE_INVALID")
    return {"verified": True}


# --- sign-in -----------------------------------------------------------------------------------------------


async def _check_password(
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
    await _check_password(deps, product, account, email, password, ip)
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


async def _account(conn: asyncpg.Connection, deps: Deps, login: PortalLogin, *, verified: bool = True) -> Any:
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
        return await _account(conn, deps, login, verified=verified)


# --- passwords ----------------------------------------------------------------------------------------------


async def change_password(
    deps: Deps, product: Product, login: PortalLogin, old_password: str, new_password: str, ip: str | None
) -> dict[str, Any]:
    account = await signed_in_account(deps, login)
    await _check_password(deps, product, account, account["email"], old_password, ip)
    new_hash = await in_executor(hash_password, new_password)
    async with deps.db.transaction() as conn:
        await _account(conn, deps, login)
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


# --- the account's data -------------------------------------------------------------------------------------


async def update_data(deps: Deps, login: PortalLogin, data: dict, ip: str | None) -> dict[str, Any]:
    async with deps.db.transaction() as conn:
        account = await _account(conn, deps, login)
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
    await _check_password(deps, product, account, account["email"], password, ip)
    async with deps.db.transaction() as conn:
        account = await _account(conn, deps, login, verified=False)
        detached = await erase_account(conn, deps, account, customer(account["id"], ip))
    await logins.close_other_sessions(deps, account["id"])
    return {"erased": True, "licenses_detached": len(detached)}
