"""The heartbeat served ahead of aiohttp's router and middlewares.

Heartbeats are nearly all of a license server's traffic and each needs only the API key cache, one batched
Redis script call and a signed answer. Resolving the route, running the root middlewares (request context,
envelope) and building the answer as a dict cost about a fifth of a heartbeat, so the server's request
handler answers a plain `POST /api/v1/sessions/heartbeat` itself: the same answers, byte for byte, the same
signatures, metrics and refusal log as the routed handler. Its answer body is written from a template per
product (`AnswerTemplates`); every refusal is built by the envelope code the routed handler uses. Anything
else — another method, `Expect: 100-continue`, a sealed body, a product that requires signed requests —
goes through the application as usual.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import structlog
from aiohttp import hdrs, web

from licsrv.api.sessions import HEARTBEAT_PATH, heartbeat_token
from licsrv.envelope import as_api_error, error_envelope, nonce_of_refused, parse_body
from licsrv.live.keys import has_mac, public_id
from licsrv.metrics import HeartbeatTally, observe
from licsrv.services import sessions
from licsrv.services.products import Product
from licsrv.services.session_crypto import SEALED_CONTENT_TYPE
from licsrv.signing import Keyring, mac_signature_header
from licsrv.state import CRYPTO, JSON_BODY, KEYRING, LIVE, NONCE, PRODUCTS, SETTINGS

RequestHandler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]

access_log = structlog.get_logger("licsrv.access")
JSON = "application/json"
SIGNATURE = "X-Licsrv-Signature"


class AnswerTemplates:
    """The bytes of a heartbeat's success answer before its session id, per product and interval.

    The envelope writes `{"status":"ok","data":{"next_heartbeat":N,"product":SLUG,"session_id":ID},
    "server_time":T[,"nonce":X]}` with orjson; this writes the same bytes without building the dicts
    (tests/test_fastpath.py compares the two over generated slugs, intervals and nonces)."""

    def __init__(self) -> None:
        self._heads: dict[tuple[str, int], bytes] = {}

    def body(self, product: Product, session_id: str, nonce: Any) -> bytes:
        head = self._heads.get((product.slug, product.heartbeat_interval))
        if head is None:
            if len(self._heads) > 1000:  # renamed products and changed intervals leave stale heads
                self._heads.clear()
            head = self._heads[(product.slug, product.heartbeat_interval)] = (
                b'{"status":"ok","data":{"next_heartbeat":%d,"product":%s,"session_id":'
                % (product.heartbeat_interval, orjson.dumps(product.slug))
            )
        if nonce is None:
            return b'%s"%s"},"server_time":%d}' % (head, session_id.encode(), int(time.time()))
        return b'%s"%s"},"server_time":%d,"nonce":%s}' % (
            head,
            session_id.encode(),
            int(time.time()),
            orjson.dumps(nonce),
        )


class HeartbeatFastPath:
    """A `web.Server` request handler: heartbeats here, every other request to the application."""

    def __init__(self, app: web.Application, app_handler: RequestHandler) -> None:
        self._app = app
        self._app_handler = app_handler
        self._templates = AnswerTemplates()
        self._tally = HeartbeatTally(HEARTBEAT_PATH)

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        if request.method != "POST" or request.path != HEARTBEAT_PATH:
            return await self._app_handler(request)
        headers = request.headers
        if hdrs.EXPECT in headers or headers.get(hdrs.CONTENT_TYPE) == SEALED_CONTENT_TYPE:
            return await self._app_handler(request)  # sealed: unsealed and sealed again by the app
        app = self._app
        product = app[PRODUCTS].by_api_key(headers.get("X-API-Key", ""))
        if product is None or product.require_signed_requests:  # the app's rules: events, signatures
            return await self._app_handler(request)
        started = time.perf_counter()
        live = app[LIVE]
        body = nonce = session = mac_key = None
        try:
            body, nonce = parse_body(await request.read())
            token = heartbeat_token(body)
            session = sessions.session_of(live, product, token)
            if has_mac(token):
                mac_key = app[CRYPTO].mac_key(token)
            now_ms = int(time.time() * 1000)
            reply = await live.queue_heartbeat(session[0], session[1], product.session_timeout, now_ms)
            if reply != 1:
                await sessions.settle_heartbeat(live, product, session, now_ms, reply)
        except Exception as exc:
            response = await self._refusal(request, exc, product, body, nonce, session, mac_key)
            observe(HEARTBEAT_PATH, "POST", response.status, time.perf_counter() - started)
            self._log_refusal(request, response.status, started)
            return response
        answer = self._templates.body(product, public_id(session[1]), nonce)
        if mac_key is not None:
            signature = mac_signature_header(mac_key, answer)
        else:
            signature = app[KEYRING].signature_header(answer)
        response = web.Response(body=answer, headers={hdrs.CONTENT_TYPE: JSON, SIGNATURE: signature})
        self._tally.answered(time.perf_counter() - started)
        return response

    async def _refusal(
        self,
        request: web.BaseRequest,
        exc: Exception,
        product: Product,
        body: dict | None,
        nonce: Any,
        session: tuple[int, bytes] | None,
        mac_key: bytes | None,
    ) -> web.Response:
        """The envelope's refusal, as the routed handler gives it: naming the product (and the session once
        the token named one), echoing the nonce, signed with the session's MAC key once it is known."""
        if body is not None:
            request[JSON_BODY] = body
            if nonce is not None:
                request[NONCE] = nonce
        subject = {"product": product.slug}
        if session is not None:
            subject["session_id"] = public_id(session[1])
        response = error_envelope(as_api_error(exc, request))
        keyring: Keyring = self._app[KEYRING]
        response.finish(await nonce_of_refused(request), keyring, subject, mac_key)
        return response

    def _log_refusal(self, request: web.BaseRequest, status: int, started: float) -> None:
        if self._app[SETTINGS].access_log:
            access_log.info(
                "request",
                method="POST",
                path=HEARTBEAT_PATH,
                status=status,
                ip=request.remote,
                ms=round((time.perf_counter() - started) * 1000, 2),
            )


def install(server: web.Server, app: web.Application) -> None:
    """Puts the fast path in front of `app` on `server`; before the server accepts its first connection."""
    if not isinstance(server.request_handler, HeartbeatFastPath):
        server.request_handler = HeartbeatFastPath(app, server.request_handler)
