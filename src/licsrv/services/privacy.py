"""Erasing a license's personal data (DESIGN §2 "Personal data"; what and where: docs/personal-data.md).

One transaction blanks the customer's name, email and notes, the machine names and IP addresses of the
license's devices, session history and cards, the personal values inside the security events, audit rows and
webhook events about it, and its mail; its portal account is erased when this was the account's only license,
else the license is detached from it. Rows keep their shape, the license keeps working, and the erasure is
audited with counts only. Running it again finds nothing left and says so with zero counts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import asyncpg

from licsrv.errors import ApiError
from licsrv.services.audit import Actor, record_change
from licsrv.services.portal import logins
from licsrv.services.portal.accounts import erase_account
from licsrv.webhooks.catalogue import iso
from licsrv.webhooks.outbox import emit

if TYPE_CHECKING:
    from licsrv.deps import Deps

# Keys whose values are a person's data wherever they appear in an event's details or an audit row.
PERSONAL_KEYS = frozenset(
    {"customer_name", "customer_email", "email", "notes", "ip", "first_ip", "last_ip", "machine_name"}
)


def scrub(value: Any) -> Any:
    """`value` with every personal key's value blanked ('' for text, None for anything else), same shape."""
    if isinstance(value, dict):
        return {key: (_blank(item) if key in PERSONAL_KEYS else scrub(item)) for key, item in value.items()}
    if isinstance(value, list):
        return [scrub(item) for item in value]
    return value


def _blank(value: Any) -> Any:
    return "" if isinstance(value, str) else None


async def erase_personal_data(deps: Deps, license_id: int, actor: Actor) -> dict[str, Any]:
    """The owner's erasure; answers what was blanked, counted."""
    if not actor.is_owner():
        raise ApiError("FORBIDDEN", "Only an owner erases personal data.")
    erased_account: int | None = None
    async with deps.db.transaction() as conn:
        before = await deps.q.lock_license(conn, id=license_id)
        if before is None:
            raise ApiError("LICENSE_NOT_FOUND")
        account = await deps.q.license_account(conn, license_id=license_id)
        if account is not None and account["licenses"] <= 1:
            erased_account = account["id"]
        counts = await _erase(conn, deps, before, account, erased_account is not None)
        row = await deps.q.erase_license_fields(conn, id=license_id, now=deps.now())
        if erased_account is not None:
            await erase_account(conn, deps, account, actor)
        elif account is not None:
            await deps.q.detach_license(conn, license_id=license_id)
        counts["portal_account"] = (
            "erased" if erased_account is not None else "detached" if account is not None else "none"
        )
        await record_change(
            conn, deps.q, actor, "license.erase_personal_data", "license", license_id, after=counts
        )
        await emit(
            conn,
            deps,
            "license.personal_data_erased",
            {
                "license_id": row["id"],
                "license_key": row["key"],
                "product_id": row["product_id"],
                "erased_at": iso(deps.now()),
            },
        )
    if erased_account is not None:
        await logins.close_other_sessions(deps, erased_account)
    return {"license_id": license_id, **counts}


async def _erase(
    conn: asyncpg.Connection, deps: Deps, license_row: Any, account: Any, account_erased: bool
) -> dict[str, Any]:
    q, license_id = deps.q, license_row["id"]
    codes = [row["code"] for row in await q.license_card_codes(conn, license_id=license_id)]
    emails = sorted(
        {
            email.lower()
            for email in (license_row["customer_email"], account["email"] if account_erased else None)
            if email
        }
    )
    account_id = account["id"] if account_erased else None
    counts = {
        "devices": await q.erase_license_devices(conn, license_id=license_id),
        "session_history": await q.erase_license_history_ips(conn, license_id=license_id),
        "cards": await q.erase_license_card_ips(conn, license_id=license_id),
        "security_events": 0,
        "audit_rows": 0,
        "webhook_events": 0,
        "mail": 0,
    }
    events = await q.license_security_events(
        conn,
        product_id=license_row["product_id"],
        card_marks=[code[:6] + "…" for code in codes],
        emails=emails,
        account_id=account_id,
    )
    for event in events:
        details = scrub(event["details"])
        if details != event["details"] or event["ip"] is not None:
            await q.scrub_security_event(conn, id=event["id"], details=details)
            counts["security_events"] += 1
    for entry in await q.license_audit_rows(
        conn, license_id=license_id, card_codes=codes, account_id=account_id
    ):
        counts["audit_rows"] += await _scrub_audit_row(conn, deps, entry)
    for event in await q.license_webhook_events(conn, license_id=license_id, account_id=account_id):
        data = scrub(event["data"])
        if data != event["data"]:
            await q.scrub_webhook_event(conn, id=event["id"], data=data)
            counts["webhook_events"] += 1
    if license_row["customer_email"]:
        counts["mail"] = await q.count_mail_to(conn, to_addr=license_row["customer_email"])
        await q.erase_mail_to(conn, to_addr=license_row["customer_email"])
    return counts


async def _scrub_audit_row(conn: asyncpg.Connection, deps: Deps, entry: Any) -> int:
    """The customer's own address goes; an admin's address stays (it says who changed what, and it is not
    the customer's data)."""
    before, after = scrub(entry["before"]), scrub(entry["after"])
    blank_ip = entry["actor"].startswith("customer:") and entry["ip"] is not None
    if before == entry["before"] and after == entry["after"] and not blank_ip:
        return 0
    await deps.q.scrub_audit_row(conn, id=entry["id"], before=before, after=after, blank_ip=blank_ip)
    return 1
