"""The heartbeat served ahead of aiohttp's router and middlewares.

Heartbeats are nearly all of a license server's traffic and each needs only the API key cache, one batched
Redis script call and a signed envelope. Resolving the route and running the root middlewares (request
context, envelope) costs about a tenth of a heartbeat, so the server's request handler answers a plain
`POST /api/v1/sessions/heartbeat` itself, with the same answers, signatures, metrics and refusal log as the
routed handler. Anything else — another method, `Expect: 100-continue`, a sealed body, a product that
requires signed requests — goes through the application as usual.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import hdrs, web

from licsrv.api.sessions import HEARTBEAT_PATH, heartbeat_answer
from licsrv.envelope import ANSWER_MAC_KEY, SUBJECT, Envelope, as_api_error, error_envelope, nonce_of_refused
from licsrv.metrics import observe
from licsrv.services.session_crypto import SEALED_CONTENT_TYPE
from licsrv.state import KEYRING, NONCE, PRODUCTS, SETTINGS

RequestHandler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]

ROUTE = HEARTBEAT_PATH
access_log = structlog.get_logger("licsrv.access")


class HeartbeatFastPath:
    """A `web.Server` request handler: heartbeats here, every other request to the application."""

    def __init__(self, app: web.Application, app_handler: RequestHandler) -> None:
        self._app = app
        self._app_handler = app_handler

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        if request.method != "POST" or request.path != HEARTBEAT_PATH or hdrs.EXPECT in request.headers:
            return await self._app_handler(request)
        if request.headers.get(hdrs.CONTENT_TYPE) == SEALED_CONTENT_TYPE:
            return await self._app_handler(request)  # sealed: unsealed and sealed again by the app
        app = self._app
        started = time.perf_counter()
        product = app[PRODUCTS].by_api_key(request.headers.get("X-API-Key", ""))
        if product is None or product.require_signed_requests:  # the app's rules: events, signatures
            return await self._app_handler(request)
        try:
            response: Envelope = await heartbeat_answer(app, product, request)
        except Exception as exc:
            response = error_envelope(as_api_error(exc, request))
            await nonce_of_refused(request)
        response.finish(request.get(NONCE), app[KEYRING], request.get(SUBJECT), request.get(ANSWER_MAC_KEY))
        status = response.status
        elapsed = time.perf_counter() - started
        observe(ROUTE, "POST", status, elapsed)
        if status >= 400 and app[SETTINGS].access_log:
            access_log.info(
                "request",
                method="POST",
                path=HEARTBEAT_PATH,
                status=status,
                ip=request.remote,
                ms=round(elapsed * 1000, 2),
            )
        return response


def install(server: web.Server, app: web.Application) -> None:
    """Puts the fast path in front of `app` on `server`; before the server accepts its first connection."""
    if not isinstance(server.request_handler, HeartbeatFastPath):
        server.request_handler = HeartbeatFastPath(app, server.request_handler)
