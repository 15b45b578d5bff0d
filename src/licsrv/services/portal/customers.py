"""Customers as admins see them (admin UI and management API): search, detail, verify, disable, erase,
a reset token for the vendor's own system, and the product's portal settings."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from licsrv.domain import PAGE_SIZE
from licsrv.errors import ApiError
from licsrv.services.audit import Actor, record_change
from licsrv.services.portal import logins
from licsrv.services.portal.accounts import PortalSettings, erase_account, portal_settings
from licsrv.services.portal.passwords import issue_reset_token

if TYPE_CHECKING:
    from licsrv.deps import Deps

RESET_DELIVERIES = ("email", "api")


def _view(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "product_id": row["product_id"],
        "email": row["email"],
        "verified": row["verified"],
        "disabled": row["disabled"],
        "created_at": row["created_at"],
        "last_login_at": row["last_login_at"],
        "erased_at": row["erased_at"],
    }


async def search(
    deps: Deps, *, product_id: int | None, q: str = "", after_id: int | None = None, limit: int = PAGE_SIZE
) -> list[dict[str, Any]]:
    pattern = q.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    async with deps.db.connection() as conn:
        rows = await deps.q.search_portal_accounts(
            conn, product_id=product_id, q=pattern, after_id=after_id, row_limit=limit
        )
    return [{**_view(row), "licenses": row["licenses"]} for row in rows]


async def detail(deps: Deps, account_id: int) -> dict[str, Any]:
    async with deps.db.connection() as conn:
        row = await deps.q.get_portal_account(conn, id=account_id)
        if row is None:
            raise ApiError("NOT_FOUND", "No customer with this id.")
        licenses = await deps.q.account_licenses(conn, account_id=account_id)
    return {
        **_view(row),
        "data": row["data"],
        "licenses": [
            {"id": lic["id"], "key": lic["key"], "status": lic["status"], "expires_at": lic["expires_at"]}
            for lic in licenses
        ],
    }


async def _change(deps: Deps, account_id: int, actor: Actor, action: str, **flags: bool) -> dict[str, Any]:
    if not actor.can_change():
        raise ApiError("FORBIDDEN")
    async with deps.db.transaction() as conn:
        row = await deps.q.lock_portal_account(conn, id=account_id)
        if row is None or row["erased_at"] is not None:
            raise ApiError("NOT_FOUND", "No customer with this id.")
        if "verified" in flags:
            await deps.q.set_portal_verified(conn, id=account_id, verified=flags["verified"])
        if "disabled" in flags:
            await deps.q.set_portal_disabled(conn, id=account_id, disabled=flags["disabled"])
        await record_change(conn, deps.q, actor, action, "portal_account", account_id, after=flags)
    if flags.get("disabled"):
        await logins.close_other_sessions(deps, account_id)
    return await detail(deps, account_id)


async def set_verified(deps: Deps, account_id: int, actor: Actor) -> dict[str, Any]:
    return await _change(deps, account_id, actor, "customer.verify", verified=True)


async def set_disabled(deps: Deps, account_id: int, disabled: bool, actor: Actor) -> dict[str, Any]:
    action = "customer.disable" if disabled else "customer.enable"
    return await _change(deps, account_id, actor, action, disabled=disabled)


async def erase(deps: Deps, account_id: int, actor: Actor) -> dict[str, Any]:
    """An owner's erasure of a customer's personal data (DESIGN §2): the same as the customer's own."""
    if not actor.is_owner():
        raise ApiError("FORBIDDEN", "Only an owner erases personal data.")
    async with deps.db.transaction() as conn:
        row = await deps.q.lock_portal_account(conn, id=account_id)
        if row is None or row["erased_at"] is not None:
            raise ApiError("NOT_FOUND", "No customer with this id.")
        detached = await erase_account(conn, deps, row, actor)
    await logins.close_other_sessions(deps, account_id)
    return {"erased": True, "licenses_detached": len(detached)}


async def reset_token(deps: Deps, account_id: int, actor: Actor) -> dict[str, Any]:
    """For products whose vendor sends the reset mail from their own system."""
    if not actor.can_change():
        raise ApiError("FORBIDDEN")
    async with deps.db.transaction() as conn:
        row = await deps.q.lock_portal_account(conn, id=account_id)
        if row is None or row["erased_at"] is not None or row["disabled"]:
            raise ApiError("NOT_FOUND", "No customer with this id.")
        token = await issue_reset_token(conn, deps, account_id)
        await record_change(conn, deps.q, actor, "customer.reset_token", "portal_account", account_id)
    return {"token": token, "email": row["email"], "valid_seconds": deps.settings.portal_reset_ttl}


async def get_settings(deps: Deps, product_id: int) -> dict[str, Any]:
    async with deps.db.connection() as conn:
        if await deps.q.get_product(conn, id=product_id) is None:
            raise ApiError("NOT_FOUND", "The product was not found.")
        return vars_of(await portal_settings(conn, deps, product_id))


def vars_of(settings: PortalSettings) -> dict[str, Any]:
    return {
        "double_opt_in": settings.double_opt_in,
        "device_frees_per_30d": settings.device_frees_per_30d,
        "reset_delivery": settings.reset_delivery,
    }


async def put_settings(deps: Deps, product_id: int, values: dict[str, Any], actor: Actor) -> dict[str, Any]:
    if not actor.can_change():
        raise ApiError("FORBIDDEN")
    async with deps.db.transaction() as conn:
        if await deps.q.get_product(conn, id=product_id) is None:
            raise ApiError("NOT_FOUND", "The product was not found.")
        before = vars_of(await portal_settings(conn, deps, product_id))
        after = {**before, **values}
        await deps.q.upsert_portal_settings(conn, product_id=product_id, **after)
        await record_change(
            conn, deps.q, actor, "product.portal", "product", product_id, before=before, after=after
        )
    return after
