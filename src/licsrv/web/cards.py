"""Card key pages: generate a batch, list batches, download a batch's CSV, void unused cards."""

from __future__ import annotations

from aiohttp import web

from licsrv.admin_api.cards import BatchCreateSchema, csv_download
from licsrv.errors import ApiError
from licsrv.services import cards
from licsrv.state import deps_of
from licsrv.web.forms import load_form
from licsrv.web.render import flash_error, form, page, requires
from licsrv.web.session import actor_of


async def batch_list(request: web.Request, error: str | None = None, status: int = 200) -> web.Response:
    deps = deps_of(request)
    batches, _ = await cards.list_batches(deps, None, 200)
    return page(
        request, "admin/cards.html", status=status, batches=batches, products=deps.products.all(), error=error
    )


@requires("operator")
async def batch_create(request: web.Request) -> web.Response:
    data = await form(request)
    try:
        body = load_form(BatchCreateSchema(), data, ("count", "duration_days", "product_id", "note"))
        batch, _ = await cards.create_batch(deps_of(request), actor_of(request), **body)
    except ApiError as exc:
        return await batch_list(request, error=flash_error(exc), status=exc.status)
    raise web.HTTPSeeOther(f"/admin/cards?created={batch['id']}")


async def batch_csv(request: web.Request) -> web.Response:
    batch_id = int(request.match_info["id"])
    return csv_download(batch_id, await cards.batch_csv(deps_of(request), batch_id))


@requires("operator")
async def batch_void(request: web.Request) -> web.Response:
    await cards.void_whole_batch(deps_of(request), int(request.match_info["id"]), actor_of(request))
    raise web.HTTPSeeOther("/admin/cards")
