"""The event types a webhook endpoint can subscribe to, and the payload shape of each (docs/webhooks.md)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

EVENT_TYPES: dict[str, str] = {
    "license.created": "A license was created (admin, management API, CLI, import or a card redemption).",
    "license.updated": "A license's customer, limits, features, notes or expiry were changed.",
    "license.suspended": "A license was suspended; its live sessions ended.",
    "license.resumed": "A suspended license was resumed.",
    "license.revoked": "A license was revoked; its live sessions ended.",
    "license.extended": "A license's expiry was moved later (extend or recharge with a card).",
    "license.expired": "A license's expiry passed (sent within a minute).",
    "device.activated": "A device took a slot of a license.",
    "device.deactivated": "A device gave its slot back (client, admin or device reset).",
    "card.redeemed": "A card key was redeemed: it made a license or recharged one.",
    "session.started": "A run session started.",
    "session.ended": "A run session was ended by its client.",
    "session.terminated": "A run session was ended by the server (admin, device removal, suspension).",
    "session.replaced": "A run session was ended because a newer one replaced it (policy `replace`).",
    "session.timed_out": "A run session stopped heartbeating and expired.",
    "security.event": "A security event was recorded (unknown API key, hardware mismatch, rate limit, …).",
    "portal.account.created": "A customer registered a portal account.",
}

# Sent by the "Send test" button to one endpoint only; not subscribable.
TEST_EVENT = "webhook.test"


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def license_data(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "license_id": row["id"],
        "license_key": row["key"],
        "product_id": row["product_id"],
        "status": row["status"],
        "customer_name": row["customer_name"],
        "customer_email": row["customer_email"],
        "max_devices": row["max_devices"],
        "max_sessions": row["max_sessions"],
        "expires_at": iso(row["expires_at"]),
    }


def session_data(
    session_id: str, license_id: int, *, end_reason: str | None = None, ended_at: datetime | None = None
) -> dict[str, Any]:
    data: dict[str, Any] = {"session_id": session_id, "license_id": license_id}
    if end_reason is not None:
        data["end_reason"] = end_reason
        data["ended_at"] = iso(ended_at)
    return data


def device_data(license_id: int, hardware_id: str, **extra: Any) -> dict[str, Any]:
    return {"license_id": license_id, "hardware_id": hardware_id, **extra}
