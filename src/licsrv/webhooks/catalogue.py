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
    "license.personal_data_erased": "An owner erased a license's personal data (the event carries none).",
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


def _props(**types: str) -> dict[str, Any]:
    return {name: {"type": kind.rstrip("?"), "nullable": kind.endswith("?")} for name, kind in types.items()}


_LICENSE = _props(
    license_id="integer",
    license_key="string",
    product_id="integer",
    status="string",
    customer_name="string",
    customer_email="string",
    max_devices="integer",
    max_sessions="integer?",
    expires_at="string?",
)
_SESSION_END = _props(
    session_id="string", license_id="integer", hardware_id="string", end_reason="string", ended_at="string"
)
_DEVICE = _props(
    license_id="integer", license_key="string", device_id="integer", hardware_id="string", ip="string?"
)

DATA_SCHEMAS: dict[str, dict[str, Any]] = {
    "license.created": _LICENSE,
    "license.updated": {**_LICENSE, "changed": {"type": "array", "items": {"type": "string"}}},
    "license.suspended": _LICENSE,
    "license.resumed": _LICENSE,
    "license.revoked": _LICENSE,
    "license.extended": {**_LICENSE, **_props(days="integer?")},
    "license.expired": _LICENSE,
    "license.personal_data_erased": _props(
        license_id="integer", license_key="string", product_id="integer", erased_at="string"
    ),
    "device.activated": _DEVICE,
    "device.deactivated": _DEVICE,
    "card.redeemed": _props(
        card_code="string",
        batch_id="integer",
        outcome="string",
        license_id="integer",
        license_key="string",
        hardware_id="string",
        ip="string?",
    ),
    "session.started": _props(
        session_id="string",
        license_id="integer",
        license_key="string",
        hardware_id="string",
        ip="string?",
        client_version="string",
        started_at="string",
    ),
    "session.ended": _SESSION_END,
    "session.terminated": _SESSION_END,
    "session.replaced": _SESSION_END,
    "session.timed_out": _SESSION_END,
    "security.event": {
        **_props(kind="string", ip="string?", product_id="integer?"),
        "details": {"type": "object"},
    },
    "portal.account.created": _props(
        account_id="integer", product="string", email="string", verified="boolean", license_id="integer"
    ),
}


def add_event_schemas(spec: Any) -> None:
    """Each event's body as a schema of the OpenAPI document (`WebhookEvent_license_created`, …)."""
    for event_type, description in EVENT_TYPES.items():
        data = {"type": "object", "properties": DATA_SCHEMAS.get(event_type, {})}
        spec.components.schema(
            "WebhookEvent_" + event_type.replace(".", "_"),
            {
                "type": "object",
                "description": f"{description} Sent to webhook endpoints subscribed to `{event_type}`.",
                "properties": {
                    "id": {"type": "string", "description": "Stable event id, also the webhook-id header."},
                    "type": {"type": "string", "enum": [event_type]},
                    "timestamp": {"type": "string", "format": "date-time"},
                    "data": data,
                },
            },
        )
