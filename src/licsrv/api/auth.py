"""Client authentication: `X-API-Key` looked up in the in-process product cache, never in PostgreSQL."""

from __future__ import annotations

from aiohttp import web

from licsrv.envelope import Handler, bind_subject
from licsrv.errors import ApiError
from licsrv.services.products import Product
from licsrv.state import PRODUCTS

PRODUCT = web.RequestKey("product", Product)
PUBLIC_PATHS = frozenset({"/api/v1/keys"})


def request_product(request: web.Request) -> Product:
    return request[PRODUCT]


def authenticate(request: web.Request) -> Product:
    product = request.config_dict[PRODUCTS].by_api_key(request.headers.get("X-API-Key", ""))
    if product is None:
        raise ApiError("INVALID_API_KEY")
    request[PRODUCT] = product
    bind_subject(request, product=product.slug)
    return product


@web.middleware
async def api_key_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path not in PUBLIC_PATHS:
        authenticate(request)
    return await handler(request)
