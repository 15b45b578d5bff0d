"""The client API's rate limits: the product's `rate_limits`, per client IP (licsrv.services.rate_limits)."""

from __future__ import annotations

import structlog
from aiohttp import web

from licsrv.api.auth import PRODUCT
from licsrv.envelope import Handler
from licsrv.errors import ApiError
from licsrv.middlewares import get_client_ip
from licsrv.services.audit import record_security_event
from licsrv.services.products import Product
from licsrv.state import DB, RATE_LIMITER, REDIS

log = structlog.get_logger(__name__)
REPORT_EVERY_S = 60  # one security event per product, IP and minute, however many calls are refused


async def _report(request: web.Request, product: Product, client: str) -> None:
    try:
        first = await request.config_dict[REDIS].set(
            f"rr:{{{product.id}}}:{client}", 1, nx=True, ex=REPORT_EVERY_S
        )
        if first:
            db = request.config_dict[DB]
            async with db.connection() as conn:
                await record_security_event(
                    conn, db.q, "rate_limited", {"path": request.path}, ip=client, product_id=product.id
                )
    except Exception as exc:
        log.warning("security_event_not_recorded", kind="rate_limited", error=str(exc))


@web.middleware
async def rate_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    product = request.get(PRODUCT)
    if product is not None and product.rate_limits:
        client = get_client_ip(request) or "unknown"
        wait = await request.config_dict[RATE_LIMITER].retry_after(
            product.id, product.rate_limits, request.path, client
        )
        if wait is not None:
            await _report(request, product, client)
            raise ApiError("RATE_LIMITED", headers={"Retry-After": str(wait)})
    return await handler(request)
