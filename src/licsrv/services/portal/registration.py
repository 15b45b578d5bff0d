"""Registration with a ticket (the captcha of reference 001) and the double opt-in code."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import asyncpg

from licsrv.codes import card_code_is_well_formed, normalise
from licsrv.errors import ApiError
from licsrv.services.audit import record_change, record_security_event
from licsrv.services.cards import insert_card_license
from licsrv.services.mail import queue_mail
from licsrv.services.portal import logins
from licsrv.services.portal.accounts import (
    customer,
    in_executor,
    locked_account,
    portal_settings,
)
from licsrv.services.portal.logins import PortalLogin
from licsrv.services.portal.texts import mail_text
from licsrv.services.products import Product
from licsrv.signing import hash_password
from licsrv.webhooks.outbox import emit

if TYPE_CHECKING:
    from licsrv.deps import Deps


MAX_CODE_ATTEMPTS = 5


def _code_hash(secret_key: str, account_id: int, purpose: str, code: str) -> bytes:
    return hmac.new(secret_key.encode(), f"{purpose}|{account_id}|{code}".encode(), hashlib.sha256).digest()


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
            await emit(
                conn,
                deps,
                "portal.account.created",
                {
                    "account_id": account["id"],
                    "product": product.slug,
                    "email": email,
                    "verified": not settings.double_opt_in,
                    "license_id": license_id,
                },
            )
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
        return await license_from_card(conn, deps, product, card, ip, now)
    found = await deps.q.get_license_by_key(conn, key=ticket.strip())
    if found is None or found["product_id"] != product.id:
        raise _BadTicket()
    license_row = await deps.q.lock_license(conn, id=found["id"])
    if license_row["status"] == "revoked" or await deps.q.license_owner(conn, license_id=found["id"]):
        raise _BadTicket()
    return license_row["id"]


async def license_from_card(conn, deps: Deps, product: Product, card: Any, ip: str | None, now: Any) -> int:
    """Like a redemption on a device, but no device yet: the clock starts at the first activation."""
    license_row = await insert_card_license(conn, deps.q, card, f"card {card['code'][:6]}… (portal)")
    await deps.q.redeem_card(
        conn, id=card["id"], license_id=license_row["id"], hardware_id=None, ip=ip, now=now, recharged=False
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
        account = await locked_account(conn, deps, login, verified=False)
        if account["verified"]:
            return {"verified": True, "sent": False}
        await _send_code(conn, deps, product, account["id"], account["email"], lang)
    return {"verified": False, "sent": True}


async def verify(deps: Deps, login: PortalLogin, code: str, ip: str | None) -> dict[str, Any]:
    async with deps.db.transaction() as conn:
        account = await locked_account(conn, deps, login, verified=False)
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
