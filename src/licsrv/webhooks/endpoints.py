"""Webhook endpoints as owners manage them: create (the secret shown once), update, enable/disable, rotate
the secret with an overlap, delete, send a test, resend a delivery, and the attempts log."""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from licsrv.errors import ApiError
from licsrv.services.audit import Actor, record_change
from licsrv.webhooks.catalogue import EVENT_TYPES
from licsrv.webhooks.targets import check_url

if TYPE_CHECKING:
    from licsrv.deps import Deps

MAX_ENDPOINTS_LISTED = 200
ATTEMPTS_LISTED = 100


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def require_owner(actor: Actor) -> None:
    if not actor.is_owner():
        raise ApiError("FORBIDDEN", "Only an owner manages webhooks.")


def _events(events: list[str]) -> list[str]:
    unknown = sorted(set(events) - set(EVENT_TYPES))
    if unknown or not events:
        raise ApiError("VALIDATION_ERROR", f"Unknown event types: {', '.join(unknown) or '(none given)'}.")
    return sorted(set(events))


def endpoint_view(row: Any) -> dict[str, Any]:
    """Never the secret: it is shown once, when created or rotated."""
    view = {
        name: row[name]
        for name in (
            "id",
            "url",
            "events",
            "description",
            "enabled",
            "disabled_reason",
            "failing_since",
            "previous_secret_expires_at",
            "created_at",
            "updated_at",
        )
    }
    for name in ("pending", "failed"):
        if name in row:
            view[name] = row[name]
    return view


async def create_endpoint(deps: Deps, actor: Actor, fields: dict[str, Any]) -> dict[str, Any]:
    require_owner(actor)
    url = check_url(fields["url"], deps.settings.webhook_allow_private)
    events = _events(fields["events"])
    secret = new_secret()
    async with deps.db.transaction() as conn:
        row = await deps.q.insert_webhook_endpoint(
            conn, url=url, events=events, description=fields.get("description") or "", secret=secret
        )
        await record_change(conn, deps.q, actor, "webhook.create", "webhook", row["id"], after={"url": url})
    return {**endpoint_view(row), "secret": secret}


async def list_endpoints(deps: Deps) -> list[dict[str, Any]]:
    async with deps.db.connection() as conn:
        rows = await deps.q.list_webhook_endpoints(conn)
    return [endpoint_view(row) for row in rows[:MAX_ENDPOINTS_LISTED]]


async def get_endpoint(deps: Deps, endpoint_id: int) -> dict[str, Any]:
    async with deps.db.connection() as conn:
        row = await deps.q.get_webhook_endpoint(conn, id=endpoint_id)
    if row is None:
        raise ApiError("NOT_FOUND", "No such webhook endpoint.")
    return endpoint_view(row)


async def update_endpoint(
    deps: Deps, actor: Actor, endpoint_id: int, changes: dict[str, Any]
) -> dict[str, Any]:
    require_owner(actor)
    async with deps.db.transaction() as conn:
        row = await deps.q.get_webhook_endpoint(conn, id=endpoint_id)
        if row is None:
            raise ApiError("NOT_FOUND", "No such webhook endpoint.")
        url = row["url"]
        if "url" in changes:
            url = check_url(changes["url"], deps.settings.webhook_allow_private)
        events = _events(changes["events"]) if "events" in changes else row["events"]
        updated = await deps.q.update_webhook_endpoint(
            conn,
            id=endpoint_id,
            url=url,
            events=events,
            description=changes.get("description", row["description"]),
            enabled=changes.get("enabled", row["enabled"]),
        )
        after = {k: v for k, v in changes.items() if k in ("url", "events", "enabled")}
        await record_change(conn, deps.q, actor, "webhook.update", "webhook", endpoint_id, after=after)
    return endpoint_view(updated)


async def rotate_secret(deps: Deps, actor: Actor, endpoint_id: int) -> dict[str, Any]:
    """A new secret; the old one keeps signing beside it for `webhook_secret_overlap` seconds."""
    require_owner(actor)
    secret = new_secret()
    async with deps.db.transaction() as conn:
        row = await deps.q.rotate_webhook_secret(
            conn, id=endpoint_id, secret=secret, overlap_seconds=deps.settings.webhook_secret_overlap
        )
        if row is None:
            raise ApiError("NOT_FOUND", "No such webhook endpoint.")
        await record_change(conn, deps.q, actor, "webhook.rotate_secret", "webhook", endpoint_id)
    return {**endpoint_view(row), "secret": secret}


async def delete_endpoint(deps: Deps, actor: Actor, endpoint_id: int) -> None:
    require_owner(actor)
    async with deps.db.transaction() as conn:
        if await deps.q.delete_webhook_endpoint(conn, id=endpoint_id) is None:
            raise ApiError("NOT_FOUND", "No such webhook endpoint.")
        await record_change(conn, deps.q, actor, "webhook.delete", "webhook", endpoint_id)


async def send_test(deps: Deps, actor: Actor, endpoint_id: int) -> dict[str, Any]:
    """A `webhook.test` event for this endpoint only, delivered (and retried) like any other."""
    require_owner(actor)
    event_id = "evt_" + secrets.token_hex(16)
    data = {"message": "A test event from licsrv.", "sent_by": actor.name, "at": datetime.now(UTC)}
    async with deps.db.transaction() as conn:
        endpoint = await deps.q.get_webhook_endpoint(conn, id=endpoint_id)
        if endpoint is None:
            raise ApiError("NOT_FOUND", "No such webhook endpoint.")
        if not endpoint["enabled"]:
            raise ApiError("CONFLICT", "The endpoint is disabled; enable it first.")
        delivery_id = await deps.q.insert_test_event(conn, endpoint_id=endpoint_id, id=event_id, data=data)
    return {"event_id": event_id, "delivery_id": delivery_id}


async def resend(deps: Deps, actor: Actor, endpoint_id: int, delivery_id: int) -> dict[str, Any]:
    """Goes out again (same event id, so receivers can deduplicate), with a fresh retry window."""
    require_owner(actor)
    async with deps.db.transaction() as conn:
        if await deps.q.resend_delivery(conn, endpoint_id=endpoint_id, delivery_id=delivery_id) is None:
            raise ApiError("NOT_FOUND", "No such delivery for this endpoint.")
        await record_change(
            conn, deps.q, actor, "webhook.resend", "webhook", endpoint_id, after={"delivery": delivery_id}
        )
    return {"delivery_id": delivery_id, "status": "pending"}


async def attempts(deps: Deps, endpoint_id: int, limit: int = ATTEMPTS_LISTED) -> list[dict[str, Any]]:
    async with deps.db.connection() as conn:
        if await deps.q.get_webhook_endpoint(conn, id=endpoint_id) is None:
            raise ApiError("NOT_FOUND", "No such webhook endpoint.")
        return [
            dict(row)
            for row in await deps.q.list_webhook_attempts(conn, endpoint_id=endpoint_id, row_limit=limit)
        ]


async def deliveries(deps: Deps, endpoint_id: int, limit: int = ATTEMPTS_LISTED) -> list[dict[str, Any]]:
    async with deps.db.connection() as conn:
        rows = await deps.q.list_webhook_deliveries(conn, endpoint_id=endpoint_id, row_limit=limit)
    return [dict(row) for row in rows]
