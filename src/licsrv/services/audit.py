"""Who did what: the audit log of admin changes and the security events of suspicious client calls."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from licsrv.db import Queries
from licsrv.webhooks.outbox import emit


@dataclass(frozen=True)
class Actor:
    """The admin, token or CLI user behind a change; `role` decides what it may do."""

    name: str
    role: str
    ip: str | None = None

    def can_change(self) -> bool:
        return self.role in ("owner", "operator")

    def is_owner(self) -> bool:
        return self.role == "owner"


CLI_ACTOR = Actor(name="cli", role="owner")


async def record_change(
    conn: asyncpg.Connection,
    queries: Queries,
    actor: Actor,
    action: str,
    object_type: str,
    object_id: Any,
    *,
    before: dict | None = None,
    after: dict | None = None,
) -> None:
    await queries.insert_audit(
        conn,
        actor=actor.name,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        before=before,
        after=after,
        ip=actor.ip,
    )


async def record_security_event(
    conn: asyncpg.Connection,
    queries: Queries,
    kind: str,
    details: dict,
    *,
    ip: str | None = None,
    product_id: int | None = None,
) -> None:
    async with conn.transaction():  # the event and its webhook outbox row together
        await queries.insert_security_event(conn, kind=kind, details=details, ip=ip, product_id=product_id)
        await emit(
            conn,
            queries,
            "security.event",
            {"kind": kind, "details": details, "ip": ip, "product_id": product_id},
        )
