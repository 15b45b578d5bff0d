"""Client authentication: `X-API-Key` looked up in the in-process product cache, never in PostgreSQL.

A missing or unknown key is a security event (DESIGN §2), recorded at most once a minute per client address
(a Redis SET NX EX marker), so a flood of bad keys cannot flood the table.
"""

from __future__ import annotations

import structlog
from aiohttp import web

from licsrv.errors import ApiError
from licsrv.middlewares import get_client_ip
from licsrv.services.audit import record_security_event
from licsrv.services.products import Product
from licsrv.state import DB, PRODUCTS, REDIS

log = structlog.get_logger(__name__)

PRODUCT = web.RequestKey("product", Product)
UNKNOWN_KEY_REPORT_EVERY_S = 60


def request_product(request: web.Request) -> Product:
    return request[PRODUCT]


async def product_of_api_key(request: web.Request) -> Product:
    api_key = request.headers.get("X-API-Key", "")
    product = request.config_dict[PRODUCTS].by_api_key(api_key)
    if product is None:
        await report_unknown_key(request, api_key)
        raise ApiError("INVALID_API_KEY")
    return product


async def report_unknown_key(request: web.Request, api_key: str) -> None:
    """A security event naming the path and a short prefix of the key (never the whole key)."""
    ip = get_client_ip(request) or request.remote or "unknown"
    try:
        first = await request.config_dict[REDIS].set(f"uk:{ip}", 1, nx=True, ex=UNKNOWN_KEY_REPORT_EVERY_S)
        if not first:
            return
        db = request.config_dict[DB]
        details = {"path": request.path, "key_prefix": api_key[:6], "key_length": len(api_key)}
        async with db.connection() as conn:
            await record_security_event(conn, db.q, "unknown_api_key", details, ip=ip)
    except Exception as exc:  # the refusal stands whether or not it could be recorded
        log.warning("security_event_not_recorded", kind="unknown_api_key", error=str(exc))
