"""The transactional outbox: `emit` writes an event in the caller's transaction, so it exists iff the change
committed. Workers learn of it through NOTIFY at commit (see delivery.py)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import asyncpg

from licsrv.db import Queries

if TYPE_CHECKING:
    from licsrv.deps import Deps

# NOTIFY channels: new deliveries (sent by webhook_emit at commit), and endpoint changes.
EVENTS_CHANNEL = "licsrv_webhooks"
ENDPOINTS_CHANNEL = "licsrv_webhook_endpoints"


class Subscriptions:
    """The event types some enabled endpoint subscribes to, cached per worker (refreshed on NOTIFY and by a
    poll), so a change nobody subscribes to costs no round trip. Until the first load it wants everything:
    the outbox function itself decides then."""

    def __init__(self) -> None:
        self._types: frozenset[str] | None = None
        self.changed = asyncio.Event()

    def wants(self, event_type: str) -> bool:
        return self._types is None or event_type in self._types

    def set(self, types: set[str]) -> None:
        self._types = frozenset(types)

    async def reload(self, conn: asyncpg.Connection, queries: Queries) -> None:
        self.set({row["type"] for row in await queries.subscribed_event_types(conn)})


async def emit(
    conn: asyncpg.Connection, deps_or_queries: Deps | Queries, event_type: str, data: dict
) -> None:
    """Writes `event_type` with `data` to the outbox in the caller's transaction (or as its own statement on a
    connection outside one). With `Deps`, a type no enabled endpoint subscribes to costs nothing."""
    if isinstance(deps_or_queries, Queries):
        queries = deps_or_queries
    else:
        subscriptions = getattr(deps_or_queries, "webhooks", None)
        if subscriptions is not None and not subscriptions.wants(event_type):
            return
        queries = deps_or_queries.q
    await queries.webhook_emit(conn, type=event_type, data=data)


def wanted(deps: Deps, event_type: str, data: dict[str, Any]) -> dict[str, Any] | None:
    """`data` when the event should be written (for statements that write it themselves), else None."""
    subscriptions = getattr(deps, "webhooks", None)
    return data if subscriptions is None or subscriptions.wants(event_type) else None


def event_type_if_wanted(deps: Deps, event_type: str) -> str | None:
    """`event_type` when it should be written (for statements that write it themselves), else None."""
    subscriptions = getattr(deps, "webhooks", None)
    return event_type if subscriptions is None or subscriptions.wants(event_type) else None
