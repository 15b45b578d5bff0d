"""The rules every client surface shares, declared on its routes with `@client_call(...)`.

The v1 client API, the legacy API (`/api/license/...`) and the `/offline` phone page all go through
`checked_product`: the caller's product (from `X-API-Key`, or from what the route says names it), unknown keys
recorded as security events (at most one per address a minute), request signing where the product sets
`require_signed_requests`, and the product's rate limit for the route's call group. A route that declares no
rules is refused, so a new client route cannot skip them by being forgotten.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import structlog
from aiohttp import web

from licsrv.api.auth import PRODUCT, product_of_api_key
from licsrv.api.request_signing import check_request_signature, refuse_unsigned
from licsrv.envelope import Handler, bind_subject
from licsrv.errors import ApiError
from licsrv.middlewares import get_client_ip
from licsrv.services.audit import record_security_event
from licsrv.services.products import Product
from licsrv.services.rate_limits import GROUPS
from licsrv.state import DB, RATE_LIMITER, REDIS

log = structlog.get_logger(__name__)

ProductOf = Callable[[web.Request], Awaitable[Product]]
H = TypeVar("H", bound=Callable)
RATE_LIMIT_REPORT_EVERY_S = 60  # one security event per product, IP and minute, however many are refused


@dataclass(frozen=True, slots=True)
class ClientRules:
    group: str | None  # the rate-limit call group; None: not limited per call (e.g. heartbeats)
    signable: bool  # the caller can sign requests; if not, a product requiring signatures refuses the route
    public: bool  # no product, no key (GET /keys)
    product_of: ProductOf  # how the route names its product


def client_call(
    group: str | None = None,
    *,
    signable: bool = True,
    public: bool = False,
    product_of: ProductOf = product_of_api_key,
) -> Callable[[H], H]:
    if group is not None and group not in GROUPS:
        raise ValueError(f"unknown rate-limit group {group!r}")
    rules = ClientRules(group, signable, public, product_of)

    def mark(handler: H) -> H:
        handler.__client_rules__ = rules  # type: ignore[attr-defined]
        return handler

    return mark


def rules_of(request: web.Request) -> ClientRules | None:
    return getattr(request.match_info.route.handler, "__client_rules__", None)


async def checked_product(request: web.Request) -> Product:
    """The product of a client call once the route's rules allow it (not for public routes)."""
    rules = rules_of(request)
    if rules is None or rules.public:
        log.error("client_route_without_rules", path=request.path)
        raise ApiError("NOT_FOUND")
    product = await rules.product_of(request)
    request[PRODUCT] = product
    bind_subject(request, product=product.slug)
    if product.require_signed_requests:
        if rules.signable:
            await check_request_signature(request, product)
        else:
            await refuse_unsigned(request, product)
    if rules.group is not None and product.rate_limits:
        await _check_rate_limit(request, product, rules.group)
    return product


async def _check_rate_limit(request: web.Request, product: Product, group: str) -> None:
    client = get_client_ip(request) or "unknown"
    wait = await request.config_dict[RATE_LIMITER].retry_after(product.id, product.rate_limits, group, client)
    if wait is not None:
        await _report_rate_limited(request, product, client)
        raise ApiError("RATE_LIMITED", headers={"Retry-After": str(wait)})


async def _report_rate_limited(request: web.Request, product: Product, client: str) -> None:
    try:
        first = await request.config_dict[REDIS].set(
            f"rr:{{{product.id}}}:{client}", 1, nx=True, ex=RATE_LIMIT_REPORT_EVERY_S
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
async def client_rules_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The client sub-apps' one middleware: the rules of the matched route, then the handler."""
    if request.match_info.http_exception is None:
        rules = rules_of(request)
        if rules is None or not rules.public:
            await checked_product(request)
    else:  # no such route: the key is checked first all the same, then 404/405
        await product_of_api_key(request)
    return await handler(request)
