"""Optional per-product request signing: HMAC-SHA256 under the API key over method, path, time, nonce, body.

Stale timestamps (± 5 min) and reused nonces (remembered in Redis with SET NX EX) are refused.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time

import structlog
from aiohttp import web

from licsrv.errors import ApiError
from licsrv.live.batcher import UNAVAILABLE
from licsrv.live.errors import LiveUnavailable
from licsrv.middlewares import get_client_ip
from licsrv.services.audit import record_security_event
from licsrv.services.products import Product
from licsrv.state import DB, REDIS

WINDOW_SECONDS = 300
_NONCE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")

log = structlog.get_logger(__name__)


def request_signature(api_key: str, method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    message = f"{method.upper()}\n{path}\n{timestamp}\n{nonce}\n".encode() + body
    return hmac.new(api_key.encode(), message, hashlib.sha256).hexdigest()


async def _refuse(request: web.Request, code: str, kind: str, product_id: int) -> ApiError:
    db = request.config_dict[DB]
    try:
        async with db.connection() as conn:
            await record_security_event(
                conn, db.q, kind, {"path": request.path}, ip=get_client_ip(request), product_id=product_id
            )
    except Exception as exc:
        log.warning("security_event_not_recorded", kind=kind, error=str(exc))
    return ApiError(code)


async def refuse_unsigned(request: web.Request, product: Product) -> None:
    """A surface whose callers cannot sign (the /offline phone page) is closed to a product requiring it."""
    raise await _refuse(request, "BAD_SIGNATURE", "bad_signature", product.id)


async def check_request_signature(request: web.Request, product: Product) -> None:
    timestamp = request.headers.get("X-Licsrv-Timestamp", "")
    nonce = request.headers.get("X-Licsrv-Nonce", "")
    signature = request.headers.get("X-Licsrv-Request-Signature", "")
    body = await request.read()
    fresh = timestamp.isdigit() and abs(int(timestamp) - time.time()) <= WINDOW_SECONDS
    expected = request_signature(product.api_key, request.method, request.path, timestamp, nonce, body)
    if not (fresh and _NONCE.match(nonce) and hmac.compare_digest(expected, signature.lower())):
        raise await _refuse(request, "BAD_SIGNATURE", "bad_signature", product.id)
    try:
        first_use = await request.config_dict[REDIS].set(
            f"rn:{{{product.id}}}:{nonce}", 1, nx=True, ex=2 * WINDOW_SECONDS
        )
    except UNAVAILABLE as exc:
        raise LiveUnavailable(str(exc)) from exc
    if not first_use:
        raise await _refuse(request, "REPLAYED_REQUEST", "replayed_nonce", product.id)
