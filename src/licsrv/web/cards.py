"""Card key pages: generate a batch, list batches, download a batch's CSV, void unused cards."""

from __future__ import annotations

from aiohttp import web

from licsrv.errors import ApiError
from licsrv.services import cards
from licsrv.services.products import list_products
from licsrv.state import DB
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
        count, days, product_id = (int(data.get(k) or 0) for k in ("count", "duration_days", "product_id"))
        if count > 100_000:
            raise ApiError("VALIDATION_ERROR", "At most 100 000 cards per batch here; use the CLI for more.")
        async with db.connection() as conn:
            batch, _ = await cards.generate_batch(
                conn, db.q, product_id or 1, count, days, data.get("note", "")[:500], actor_of(request)
            )
    except ValueError:
        return await batch_list(request, error="Count and days must be numbers.", status=400)
    except ApiError as exc:
        return await batch_list(request, error=flash_error(exc), status=exc.status)
    raise web.HTTPSeeOther(f"/admin/cards?created={batch['id']}")


async def batch_csv(request: web.Request) -> web.Response:
    db = request.config_dict[DB]
    batch_id = int(request.match_info["id"])
    async with db.connection() as conn:
        text = await cards.export_csv(conn, db.q, batch_id)
    return web.Response(
        text=text,
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="cards-batch-{batch_id}.csv"'},
    )


@requires("operator")
async def batch_void(request: web.Request) -> web.Response:
    db = request.config_dict[DB]
    async with db.connection() as conn:
        await cards.void_batch(conn, db.q, int(request.match_info["id"]), actor_of(request))
    raise web.HTTPSeeOther("/admin/cards")
