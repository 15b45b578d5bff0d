"""Management API: products (create, list, get, update, rename, archive, rotate API key)."""

from __future__ import annotations

import base64

from aiohttp import web

from licsrv.admin_api.auth import request_actor
from licsrv.admin_api.schemas import (
    ContentKeySchema,
    ProductCreateSchema,
    ProductSchema,
    ProductUpdateSchema,
    RotateKeySchema,
)
from licsrv.envelope import load_body, ok
from licsrv.openapi import documented
from licsrv.services import products
from licsrv.state import deps_of


def _shown(request: web.Request, found: products.Product | list[products.Product]) -> dict | list:
    """Owners see the API key; operators and viewers never do (as in the admin UI)."""
    hidden = () if request_actor(request).is_owner() else ("api_key",)
    many = isinstance(found, list)
    schema = ProductSchema(many=many, exclude=hidden)
    return schema.dump([p.public() for p in found] if many else found.public())


def _product_id(request: web.Request) -> int:
    return int(request.match_info["id"])


@documented("List products", tag="admin: products", answer=ProductSchema(many=True))
async def list_products(request: web.Request) -> web.Response:
    return ok(_shown(request, await products.all_products(deps_of(request))))


@documented("Get a product", tag="admin: products", answer=ProductSchema, errors=("NOT_FOUND",))
async def get_product(request: web.Request) -> web.Response:
    return ok(_shown(request, await products.find_product(deps_of(request), _product_id(request))))


@documented(
    "Rotate the client API key (owner); the replaced key stays valid for grace_days",
    tag="admin: products",
    body=RotateKeySchema,
    answer=ProductSchema,
    errors=("NOT_FOUND", "FORBIDDEN"),
)
async def rotate_key(request: web.Request) -> web.Response:
    grace_days = (await load_body(request, RotateKeySchema()))["grace_days"]
    product = await products.rotate_product_key(
        deps_of(request), _product_id(request), request_actor(request), grace_days
    )
    return ok(_shown(request, product))


@documented(
    "Refuse the replaced API key now, before its grace period ends (owner)",
    tag="admin: products",
    answer=ProductSchema,
    errors=("NOT_FOUND", "FORBIDDEN"),
)
async def retire_previous_key(request: web.Request) -> web.Response:
    product = await products.retire_product_key(
        deps_of(request), _product_id(request), request_actor(request)
    )
    return ok(_shown(request, product))


@documented(
    "Change product settings (owner)",
    tag="admin: products",
    body=ProductUpdateSchema,
    answer=ProductSchema,
    errors=("NOT_FOUND", "FORBIDDEN"),
)
async def update_product(request: web.Request) -> web.Response:
    changes = await load_body(request, ProductUpdateSchema())
    product = await products.change_product(
        deps_of(request), _product_id(request), changes, request_actor(request)
    )
    return ok(_shown(request, product))


@documented(
    "Set or clear the product content key (owner)",
    tag="admin: products",
    body=ContentKeySchema,
    answer=ProductSchema,
    errors=("NOT_FOUND", "FORBIDDEN"),
)
async def set_content_key(request: web.Request) -> web.Response:
    key = (await load_body(request, ContentKeySchema()))["content_key"]
    product = await products.change_content_key(
        deps_of(request), _product_id(request), base64.b64decode(key) if key else None, request_actor(request)
    )
    return ok(_shown(request, product))


@documented(
    "Create a product (owner), optionally with the API key its program already has",
    tag="admin: products",
    body=ProductCreateSchema,
    answer=ProductSchema,
    status=201,
    errors=("FORBIDDEN", "SLUG_TAKEN", "API_KEY_TAKEN"),
)
async def create_product(request: web.Request) -> web.Response:
    fields = await load_body(request, ProductCreateSchema())
    product = await products.create_product(deps_of(request), fields, request_actor(request))
    return ok(_shown(request, product), status=201)


@documented(
    "Archive a product (owner): no new licenses, plans or cards; its licenses keep working",
    tag="admin: products",
    answer=ProductSchema,
    errors=("NOT_FOUND", "FORBIDDEN"),
)
async def archive_product(request: web.Request) -> web.Response:
    product = await products.archive_product(deps_of(request), _product_id(request), request_actor(request))
    return ok(_shown(request, product))


@documented("Take a product out of the archive (owner)", tag="admin: products", answer=ProductSchema)
async def unarchive_product(request: web.Request) -> web.Response:
    product = await products.archive_product(
        deps_of(request), _product_id(request), request_actor(request), archived=False
    )
    return ok(_shown(request, product))


def routes() -> list[web.RouteDef]:
    return [
        web.get("/products", list_products),
        web.post("/products", create_product),
        web.post(r"/products/{id:\d{1,18}}/archive", archive_product),
        web.post(r"/products/{id:\d{1,18}}/unarchive", unarchive_product),
        web.patch(r"/products/{id:\d{1,18}}", update_product),
        web.put(r"/products/{id:\d{1,18}}/content-key", set_content_key),
        web.get(r"/products/{id:\d{1,18}}", get_product),
        web.post(r"/products/{id:\d{1,18}}/rotate-key", rotate_key),
        web.post(r"/products/{id:\d{1,18}}/retire-previous-key", retire_previous_key),
    ]
