"""A real aiohttp webhook receiver on 127.0.0.1 for the tests: records what arrives, verified with the
`standardwebhooks` library, and answers as told (fail the first N, or hang)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from standardwebhooks.webhooks import Webhook


@dataclass
class Received:
    webhook_id: str
    headers: dict[str, str]
    body: bytes
    payload: dict[str, Any]


@dataclass
class Receiver:
    url: str = ""
    secret: str = ""
    fail_first: int = 0
    status: int = 200
    hang: asyncio.Event | None = None
    received: list[Received] = field(default_factory=list)
    requests: int = 0
    held: list[str] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        body = await request.read()
        if self.hang is not None and self.requests == 1:  # the first request is held open, then dropped
            self.held.append(request.headers["webhook-id"])
            self.arrived.set()
            await self.hang.wait()
            return web.Response(status=503)
        if self.requests <= self.fail_first:
            return web.Response(status=503, text="not yet")
        payload = Webhook(self.secret).verify(body, dict(request.headers))  # raises if the signature is wrong
        self.received.append(Received(request.headers["webhook-id"], dict(request.headers), body, payload))
        self.arrived.set()
        return web.Response(status=self.status, text="thanks")

    def of_type(self, event_type: str) -> list[Received]:
        return [r for r in self.received if r.payload["type"] == event_type]

    async def wait_for(self, predicate, within: float = 15.0, what: str = "") -> None:
        deadline = time.monotonic() + within
        while not predicate():
            if time.monotonic() > deadline:
                seen = [r.payload["type"] for r in self.received]
                raise AssertionError(f"timed out waiting for {what or predicate}; received {seen}")
            await asyncio.sleep(0.05)


async def start_receiver(receiver: Receiver) -> web.AppRunner:
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    receiver.url = f"http://127.0.0.1:{port}/hook"
    return runner
