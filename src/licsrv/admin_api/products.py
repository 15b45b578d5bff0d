"""Management API: products (list, get, rotate API key)."""

from __future__ import annotations

from aiohttp import web

from licsrv.admin_api.auth import request_actor
from licsrv.admin_api.schemas import ProductSchema
from licsrv.envelope import ok
from licsrv.services import products
from licsrv.state import DB

PRODUCT = ProductSchema()
PRODUCTS = ProductSchema(many=True)


def _product_id(request: web.Request) -> int:
    return int(request.match_info["id"])


async def list_products(request: web.Request) -> web.Response:
    db = request.config_dict[DB]
    async with db.connection() as conn:
        found = await products.list_products(conn, db.q)
    return ok(PRODUCTS.dump([p.public() for p in found]))


async def get_product(request: web.Request) -> web.Response:
    db = request.config_dict[DB]
    async with db.connection() as conn:
        product = await products.get_product(conn, db.q, _product_id(request))
    return ok(PRODUCT.dump(product.public()))


async def rotate_key(request: web.Request) -> web.Response:
    db = request.config_dict[DB]
    async with db.connection() as conn:
        product = await products.rotate_api_key(conn, db.q, _product_id(request), request_actor(request))
    return ok(PRODUCT.dump(product.public()))


def routes() -> list[web.RouteDef]:
    return [
        web.get("/products", list_products),
        web.get(r"/products/{id:\d{1,18}}", get_product),
        web.post(r"/products/{id:\d{1,18}}/rotate-key", rotate_key),
    ]
