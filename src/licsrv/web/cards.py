"""Card key pages: generate a batch, list batches, download a batch's CSV, void unused cards."""

from __future__ import annotations

from aiohttp import web

from licsrv.admin_api.cards import BatchCreateSchema, csv_download
from licsrv.errors import ApiError
from licsrv.services import cards
from licsrv.services.products import list_products
from licsrv.state import DB
from licsrv.web.forms import load_form
from licsrv.web.render import flash_error, form, page, requires
from licsrv.web.session import actor_of


async def batch_list(request: web.Request, error: str | None = None, status: int = 200) -> web.Response:
    db = request.config_dict[DB]
    async with db.connection() as conn:
        batches = await db.q.list_card_batches(conn, after_id=None, row_limit=200)
        products = await list_products(conn, db.q)
    return page(request, "admin/cards.html", status=status, batches=batches, products=products, error=error)


@requires("operator")
async def batch_create(request: web.Request) -> web.Response:
    data = await form(request)
    db = request.config_dict[DB]
    try:
        body = load_form(BatchCreateSchema(), data, ("count", "duration_days", "product_id", "note"))
        async with db.connection() as conn:
            batch, _ = await cards.generate_batch(conn, db.q, actor=actor_of(request), **body)
    except ApiError as exc:
        return await batch_list(request, error=flash_error(exc), status=exc.status)
    raise web.HTTPSeeOther(f"/admin/cards?created={batch['id']}")


async def batch_csv(request: web.Request) -> web.Response:
    db = request.config_dict[DB]
    batch_id = int(request.match_info["id"])
    async with db.connection() as conn:
        return csv_download(batch_id, await cards.export_csv(conn, db.q, batch_id))


@requires("operator")
async def batch_void(request: web.Request) -> web.Response:
    db = request.config_dict[DB]
    async with db.connection() as conn:
        await cards.void_batch(conn, db.q, int(request.match_info["id"]), actor_of(request))
    raise web.HTTPSeeOther("/admin/cards")
