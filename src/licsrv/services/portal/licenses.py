"""What a signed-in customer does with their licenses: list them with devices and live sessions, claim one,
free a device slot (a few per license and 30 days) and end one of their running sessions."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from licsrv.codes import card_code_is_well_formed, normalise
from licsrv.errors import ApiError
from licsrv.services import cards
from licsrv.services.audit import record_change, record_security_event
from licsrv.services.licensing import end_device_sessions, force_end_session
from licsrv.services.portal.accounts import customer, locked_account, portal_settings
from licsrv.services.portal.logins import PortalLogin
from licsrv.services.portal.registration import license_from_card
from licsrv.services.products import Product
from licsrv.services.sessions import to_ms

if TYPE_CHECKING:
    from licsrv.deps import Deps

FREE_WINDOW = timedelta(days=30)


async def list_licenses(deps: Deps, product: Product, login: PortalLogin) -> list[dict[str, Any]]:
    now = deps.now()
    async with deps.db.transaction() as conn:
        await locked_account(conn, deps, login)
        settings = await portal_settings(conn, deps, product.id)
        licenses = await deps.q.account_licenses(conn, account_id=login.account_id)
        devices = await deps.q.account_devices(conn, account_id=login.account_id)
        open_rows = await deps.q.account_open_sessions(conn, account_id=login.account_id)
        frees = {
            row["id"]: await deps.q.count_device_frees(conn, license_id=row["id"], since=now - FREE_WINDOW)
            for row in licenses
        }
    expiries = await deps.live.expiry_of([(row["license_id"], row["id"]) for row in open_rows])
    live = [row for row, expiry in zip(open_rows, expiries, strict=True) if expiry and expiry > to_ms(now)]
    answer = []
    for lic in licenses:
        expires_at = lic["expires_at"]
        answer.append(
            {
                "license_key": lic["key"],
                "status": lic["status"],
                "plan": None,
                "expires_at": expires_at,
                "duration_days": lic["duration"].days if lic["duration"] and expires_at is None else None,
                "expired": expires_at is not None and expires_at <= now,
                "features": lic["features"],
                "max_devices": lic["max_devices"],
                "frees_left": max(settings.device_frees_per_30d - frees[lic["id"]], 0),
                "devices": [
                    {
                        "id": d["id"],
                        "machine_name": d["machine_name"],
                        "client_version": d["client_version"],
                        "first_seen_at": d["first_seen_at"],
                        "last_seen_at": d["last_seen_at"],
                    }
                    for d in devices
                    if d["license_id"] == lic["id"]
                ],
                "sessions": [
                    {
                        "id": s["id"],
                        "device_id": s["device_id"],
                        "machine_name": s["machine_name"] or "",
                        "client_version": s["client_version"],
                        "started_at": s["started_at"],
                    }
                    for s in live
                    if s["license_id"] == lic["id"]
                ],
            }
        )
    return answer


async def claim(
    deps: Deps,
    product: Product,
    login: PortalLogin,
    *,
    license_key: str | None,
    card_key: str | None,
    ip: str | None,
) -> dict[str, Any]:
    """`license_key` alone attaches an unclaimed license; `card_key` alone adds the card's license; both
    recharge the account's own license with the card."""
    now = deps.now()
    async with deps.db.transaction() as conn:
        account = await locked_account(conn, deps, login)
        if card_key and license_key:
            target = await deps.q.get_license_by_key(conn, key=license_key.strip())
            owner = await deps.q.license_owner(conn, license_id=target["id"]) if target else None
            if owner != account["id"]:
                raise ApiError("LICENSE_NOT_FOUND")
            result = await cards.redeem(conn, deps.q, product, card_key, "", ip, now, license_key)
            license_id = target["id"]
        elif card_key:
            code = normalise(card_key)
            card = await deps.q.lock_card(conn, code=code) if card_code_is_well_formed(code) else None
            if card is None or card["product_id"] != product.id or card["status"] != "new":
                raise ApiError("CARD_NOT_FOUND")
            license_id = await license_from_card(conn, deps, product, card, ip, now)
            await deps.q.attach_license(conn, license_id=license_id, account_id=account["id"])
            result = {"attached": True}
        else:
            found = await deps.q.get_license_by_key(conn, key=(license_key or "").strip())
            if found is None or found["product_id"] != product.id:
                raise ApiError("LICENSE_NOT_FOUND")
            owner = await deps.q.license_owner(conn, license_id=found["id"])
            if owner not in (None, account["id"]):
                raise ApiError("LICENSE_NOT_FOUND")
            await deps.q.lock_license(conn, id=found["id"])
            if owner is None and not await deps.q.attach_license(
                conn, license_id=found["id"], account_id=account["id"]
            ):
                raise ApiError("LICENSE_NOT_FOUND")
            license_id, result = found["id"], {"attached": True}
        await record_change(
            conn,
            deps.q,
            customer(account["id"], ip),
            "portal.license.claim",
            "license",
            license_id,
            after={"card": bool(card_key)},
        )
    key = await _key_of(deps, license_id)
    return {"license_key": key, **{k: v for k, v in result.items() if k in ("attached", "recharged")}}


async def _key_of(deps: Deps, license_id: int) -> str:
    async with deps.db.connection() as conn:
        row = await deps.q.get_license(conn, id=license_id)
    return row["key"]


async def _foreign_id(deps: Deps, product: Product, what: str, value: Any, login: PortalLogin, ip) -> None:
    """Someone else's (or no) device or session: NOT_FOUND, and noted, since a customer's own pages never
    ask for one."""
    async with deps.db.connection() as conn:
        await record_security_event(
            conn,
            deps.q,
            "portal_foreign_id",
            {what: str(value)[:100], "account_id": login.account_id},
            ip=ip,
            product_id=product.id,
        )
    raise ApiError("NOT_FOUND", f"No {what} of yours has this id.")


async def free_device(
    deps: Deps, product: Product, login: PortalLogin, device_id: int, ip: str | None
) -> dict[str, Any]:
    now = deps.now()
    async with deps.db.transaction() as conn:
        account = await locked_account(conn, deps, login)
        device = await deps.q.account_device(conn, account_id=account["id"], device_id=device_id)
        if device is not None:
            await deps.q.lock_license(conn, id=device["license_id"])  # serialises frees of one license
            settings = await portal_settings(conn, deps, product.id)
            used = await deps.q.count_device_frees(
                conn, license_id=device["license_id"], since=now - FREE_WINDOW
            )
            if used >= settings.device_frees_per_30d:
                raise ApiError("FREE_LIMIT_REACHED", details={"frees_left": 0})
            await deps.q.delete_device(conn, license_id=device["license_id"], id=device["id"])
            await end_device_sessions(conn, deps, device["license_id"], [device["hardware_id"]], now)
            await deps.q.insert_device_free(
                conn, license_id=device["license_id"], account_id=account["id"], now=now
            )
            await record_change(
                conn,
                deps.q,
                customer(account["id"], ip),
                "portal.device.free",
                "device",
                device["id"],
                before={"license_id": device["license_id"]},
            )
    if device is None:
        await _foreign_id(deps, product, "device", device_id, login, ip)
    return {"freed": True, "device_id": device_id, "frees_left": settings.device_frees_per_30d - used - 1}


async def end_session(
    deps: Deps, product: Product, login: PortalLogin, session_id: str, ip: str | None
) -> dict[str, Any]:
    now = deps.now()
    async with deps.db.transaction() as conn:
        account = await locked_account(conn, deps, login)
        row = await deps.q.account_open_session(conn, account_id=account["id"], session_id=session_id)
        ended = row is not None and await force_end_session(
            conn, deps, row["license_id"], session_id, product.session_timeout, now
        )
        if ended:
            await record_change(
                conn,
                deps.q,
                customer(account["id"], ip),
                "portal.session.end",
                "session",
                session_id,
            )
    if row is None:
        await _foreign_id(deps, product, "session", session_id, login, ip)
    if not ended:
        raise ApiError("SESSION_EXPIRED")
    return {"id": session_id, "end_reason": "forced"}
