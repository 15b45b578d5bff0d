"""The webhook background work of one worker, each task supervised: the NOTIFY listener (wake-ups and the
subscription cache), delivery, Redis expiry notices and the leader's expiry scan."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import asyncpg
from aiohttp import web

from licsrv.db import connect
from licsrv.state import DEPS
from licsrv.supervise import stop as stop_task
from licsrv.supervise import supervise, wait_set
from licsrv.webhooks import delivery, expiry
from licsrv.webhooks.outbox import ENDPOINTS_CHANNEL, EVENTS_CHANNEL

if TYPE_CHECKING:
    from licsrv.deps import Deps


APPLICATION_NAME = "licsrv-webhooks"


async def own_connection(deps: Deps) -> asyncpg.Connection:
    """A connection of the webhook tasks' own. A stop while connecting waits for the connection and closes
    it (a connect cancelled half-way would leave its socket open)."""
    connecting = asyncio.ensure_future(_connect_named(deps.settings.database_url))
    try:
        return await asyncio.shield(connecting)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await (await connecting).close(timeout=2)
        raise


async def _connect_named(dsn: str) -> asyncpg.Connection:
    conn = await connect(dsn)
    try:
        await conn.execute(f"SET application_name = '{APPLICATION_NAME}'")
    except BaseException:
        conn.terminate()
        raise
    return conn


class WebhookRunner:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.wake = asyncio.Event()
        self.endpoints_changed = asyncio.Event()
        self.tasks: list[asyncio.Task] = []
        self.stopping = asyncio.Event()

    async def start(self) -> None:
        self.session = delivery.new_session(self.deps.settings)
        self.tasks = [
            supervise("webhook-listener", self.listen),
            supervise("webhook-delivery", self.deliver),
            supervise("webhook-leader", lambda: expiry.lead_forever(self.deps)),
            supervise("webhook-expiries", lambda: expiry.listen_on_every_master(self.deps, self.stopping)),
        ]

    async def stop(self) -> None:
        self.stopping.set()
        await asyncio.gather(*(stop_task(task) for task in self.tasks))
        await self.session.close()

    async def listen(self) -> None:
        """A connection of its own (not the request pool's): LISTEN, then reload the subscriptions on every
        endpoint change and every poll interval; its failure restarts it, which reloads and wakes delivery."""
        deps = self.deps
        conn = await own_connection(deps)
        try:
            await conn.add_listener(EVENTS_CHANNEL, lambda *_: self.wake.set())
            await conn.add_listener(ENDPOINTS_CHANNEL, lambda *_: self.endpoints_changed.set())
            while True:
                self.endpoints_changed.clear()
                if deps.webhooks is not None:
                    await deps.webhooks.reload(conn, deps.q)
                else:
                    await deps.q.ping(conn)  # the connection is still alive: a lost one restarts the task
                self.wake.set()
                await wait_set(self.endpoints_changed, deps.settings.webhook_poll_interval)
        finally:
            await conn.close(timeout=2)

    async def deliver(self) -> None:
        conn = await own_connection(self.deps)
        try:
            while True:
                self.wake.clear()
                if await delivery.deliver_due(self.deps, self.session, conn):
                    continue
                await wait_set(self.wake, self.deps.settings.webhook_poll_interval)
        finally:
            await conn.close(timeout=2)


async def webhooks_ctx(app: web.Application) -> AsyncIterator[None]:
    runner = WebhookRunner(app[DEPS])
    await runner.start()
    yield
    await runner.stop()
