"""Events delivered per second (slow, not in `make test`): `pytest tests/test_webhooks_bench.py -m slow -s`.

One process holds the workers and the receiver on one event loop, so the figure is a floor for one core."""

from __future__ import annotations

import time

import pytest
from aiohttp import web

from licsrv.app import create_app
from licsrv.state import DEPS
from test_webhooks import fast, no_endpoints_left, subscribe, wait_until  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow

EVENTS = 3000


class CountingReceiver:
    """Counts deliveries by webhook-id (signatures are checked by the functional tests, not here)."""

    def __init__(self) -> None:
        self.ids: set[str] = set()
        self.requests = 0
        self.url = ""
        self.secret = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        await request.read()
        self.ids.add(request.headers["webhook-id"])
        return web.Response(status=204)


@pytest.mark.parametrize("workers", [1, 2])
async def test_events_delivered_per_second(
    aiohttp_client, aiohttp_server, settings, conn, admin_headers, workers
):
    receiver = CountingReceiver()
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    server = await aiohttp_server(app)
    receiver.url = str(server.make_url("/hook"))
    clients = [await aiohttp_client(create_app(fast(settings))) for _ in range(workers)]
    await subscribe(clients[0], admin_headers, receiver, ["license.created"], *(c.app for c in clients[1:]))

    began = time.monotonic()
    await conn.execute(  # one transaction: every event becomes due at the same commit
        "SELECT webhook_emit('license.created', jsonb_build_object('n', n)) FROM generate_series(1, $1) AS n",
        EVENTS,
    )

    async def all_arrived() -> bool:
        return len(receiver.ids) >= EVENTS

    await wait_until(all_arrived, within=300, what=f"{EVENTS} deliveries")
    elapsed = time.monotonic() - began
    assert receiver.requests == EVENTS  # none twice
    rate = EVENTS / elapsed
    print(
        f"\nwebhooks: {EVENTS} events, {workers} worker(s): {elapsed:.2f} s = {rate:.0f} events/s delivered"
    )
    assert clients[0].app[DEPS].webhooks.wants("license.created")
