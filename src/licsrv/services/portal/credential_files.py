"""Credential files for signed-in customers, and a credential resolved to a license at session start."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import asyncpg

from licsrv.errors import ApiError
from licsrv.services.audit import record_change, record_security_event
from licsrv.services.licensing import ensure_license_usable
from licsrv.services.portal import credentials
from licsrv.services.portal.accounts import check_password, customer, in_executor, signed_in_account
from licsrv.services.portal.logins import PortalLogin
from licsrv.services.products import Product

if TYPE_CHECKING:
    from licsrv.deps import Deps


async def credential_file(
    deps: Deps, product: Product, login: PortalLogin, password: str, ip: str | None
) -> dict[str, Any]:
    account = await signed_in_account(deps, login)
    await check_password(deps, product, account, account["email"], password, ip)
    credential = credentials.account_credential(
        deps.settings.secret_key, product.id, account["id"], account["credential_generation"]
    )
    text = await in_executor(
        lambda: credentials.seal_file(credential, password, product=product.slug, email=account["email"])
    )
    async with deps.db.connection() as conn:
        await record_change(
            conn,
            deps.q,
            customer(account["id"], ip),
            "portal.credential.issue",
            "portal_account",
            account["id"],
            after={"generation": account["credential_generation"]},
        )
    return {"filename": f"{product.slug}-credential.txt", "file": text}


async def license_key_for_credential(
    conn: asyncpg.Connection,
    deps: Deps,
    product: Product,
    credential: str,
    license_key: str | None,
    ip: str | None,
) -> str:
    """The account's first license valid for the product (or the one named, if it is the account's); a
    credential from before a password change, or of another product, is CREDENTIAL_INVALID and noted."""
    parsed = credentials.parse_credential(credential)
    account = await deps.q.get_portal_account(conn, id=parsed[0]) if parsed else None
    valid = (
        parsed is not None
        and account is not None
        and account["product_id"] == product.id
        and account["erased_at"] is None
        and not account["disabled"]
        and account["verified"]
        and account["credential_generation"] == parsed[1]
        and credentials.credential_matches(
            deps.settings.secret_key, product.id, parsed[0], parsed[1], parsed[2]
        )
    )
    if not valid:
        await record_security_event(
            conn,
            deps.q,
            "portal_bad_credential",
            {"account_id": parsed[0] if parsed else None, "generation": parsed[1] if parsed else None},
            ip=ip,
            product_id=product.id,
        )
        raise ApiError("CREDENTIAL_INVALID")
    rows = await deps.q.account_licenses(conn, account_id=account["id"])
    if license_key:
        named = [r for r in rows if r["key"] in (license_key.strip(), license_key.strip().upper())]
        if not named:
            raise ApiError("LICENSE_NOT_FOUND")
        return named[0]["key"]
    now = deps.now()
    for row in rows:
        if row["product_id"] != product.id:
            continue
        try:
            ensure_license_usable(row, now)
        except ApiError:
            continue
        return row["key"]
    if rows:
        ensure_license_usable(rows[0], now)  # the reason the only ones there are are not usable
    raise ApiError("LICENSE_NOT_FOUND")
