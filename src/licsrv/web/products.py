"""The products page: every product with a New product form, rename and archive (owner)."""

from __future__ import annotations

from aiohttp import web
from marshmallow import ValidationError

from licsrv.admin_api.schemas import ProductCreateSchema
from licsrv.envelope import as_api_error
from licsrv.errors import ApiError
from licsrv.services import products
from licsrv.state import deps_of
from licsrv.web.render import flash_error, form, page, requires
from licsrv.web.scope import scoped_product_id
from licsrv.web.session import actor_of


async def product_list(request: web.Request, status: int = 200, **extra) -> web.Response:
    found = await products.all_products(deps_of(request))
    return page(request, "admin/products.html", status=status, products=found, typed={}, **extra)


async def settings_of_scope(request: web.Request) -> web.Response:
    """The settings page of the product in scope (the first open product when all are shown)."""
    cache = deps_of(request).products
    scoped = scoped_product_id(request)
    open_products = [p for p in cache.all() if p.archived_at is None] or cache.all()
    product_id = scoped if scoped and cache.by_id(scoped) else min((p.id for p in open_products), default=1)
    raise web.HTTPSeeOther(f"/admin/products/{product_id}")


@requires("owner")
async def product_create(request: web.Request) -> web.Response:
    data = await form(request)
    typed = {name: data.get(name, "") for name in ("name", "slug", "api_key")}
    try:
        fields = ProductCreateSchema().load({**typed, "api_key": typed["api_key"].strip() or None})
        product = await products.create_product(deps_of(request), fields, actor_of(request))
    except (ApiError, ValidationError) as exc:
        error = as_api_error(exc, request)
        found = await products.all_products(deps_of(request))
        return page(
            request,
            "admin/products.html",
            status=error.status,
            products=found,
            typed=typed,
            error=flash_error(error),
        )
    return await product_list(request, message=f"Product {product.name} created; its API key is below.")


@requires("owner")
async def product_rename(request: web.Request) -> web.Response:
    data = await form(request)
    try:
        product = await products.change_product(
            deps_of(request), int(request.match_info["id"]), {"name": data.get("name", "")}, actor_of(request)
        )
    except ApiError as exc:
        return await product_list(request, status=exc.status, error=flash_error(exc))
    return await product_list(request, message=f"Renamed to {product.name}.")


@requires("owner")
async def product_archive(request: web.Request) -> web.Response:
    archived = request.match_info["action"] == "archive"
    product = await products.archive_product(
        deps_of(request), int(request.match_info["id"]), actor_of(request), archived=archived
    )
    if archived:
        message = f"{product.name} is archived: it takes no new licenses or cards; its licenses keep working."
    else:
        message = f"{product.name} is open again."
    return await product_list(request, message=message)
