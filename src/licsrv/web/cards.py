"""Card key pages: batches (generate from a plan or by hand, list, CSV, void), a batch's cards, one card found
by its code (void it)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import web
from marshmallow import ValidationError

from licsrv.admin_api.cards import BatchCreateSchema, csv_download
from licsrv.codes import format_card_code
from licsrv.domain import PAGE_SIZE
from licsrv.envelope import as_api_error
from licsrv.errors import ApiError
from licsrv.services import card_batches
from licsrv.state import deps_of
from licsrv.web.forms import load_form
from licsrv.web.render import flash_error, form, page, requires
from licsrv.web.scope import scoped_product_id
from licsrv.web.session import actor_of

DONE = {"voided": "Card voided.", "batch-voided": "The batch's new cards are void."}


async def batch_list(
    request: web.Request,
    error: str | None = None,
    status: int = 200,
    typed: dict[str, str] | None = None,
) -> web.Response:
    deps = deps_of(request)
    q = request.query.get("q", "").strip()[:100]
    if q and error is None:
        try:
            card = await card_batches.find_card(deps, q)
        except ApiError:
            error, status = f"No card has the code {q!r}.", 404
        else:
            raise web.HTTPSeeOther(card_path(card["code"]))
    product_id = scoped_product_id(request)
    batches, _ = await card_batches.list_batches(deps, None, 200, product_id)
    message = None
    if request.query.get("created", "").isdigit():
        message = f"Batch #{request.query['created']} generated."
    message = DONE.get(request.query.get("done", ""), message)
    products = [p for p in deps.products.all() if product_id is None or p.id == product_id]
    return page(
        request,
        "admin/cards.html",
        status=status,
        batches=batches,
        products=products,
        plans=await card_batches.open_plans(deps, product_id),
        error=error,
        message=message,
        q=q,
        typed=typed or {},
    )


def card_path(code: str) -> str:
    return f"/admin/cards/code/{quote(format_card_code(code))}"


@requires("operator")
async def batch_create(request: web.Request) -> web.Response:
    data = await form(request)
    try:
        body = load_form(BatchCreateSchema(), _batch_fields(data), _batch_field_names(data))
        batch, _ = await card_batches.create_batch(deps_of(request), actor_of(request), **body)
    except (ApiError, ValidationError) as exc:
        refusal = as_api_error(exc, request)
        return await batch_list(request, error=flash_error(refusal), status=refusal.status, typed=data)
    raise web.HTTPSeeOther(f"/admin/cards?created={batch['id']}")


def _batch_field_names(data: dict[str, str]) -> tuple[str, ...]:
    if data.get("plan_id"):
        return ("product_id", "plan_id", "count", "note")
    return ("product_id", "count", "duration_days", "max_devices", "max_sessions", "note")


def _batch_fields(data: dict[str, str]) -> dict[str, str]:
    """A batch from a plan takes the plan's terms; without one, "perpetual" ticked means no duration and an
    empty duration is a mistake (not a perpetual card by accident)."""
    if data.get("plan_id"):
        return data
    if data.get("perpetual"):
        return {**data, "duration_days": ""}
    if not data.get("duration_days", "").strip():
        raise ApiError("VALIDATION_ERROR", "Give the days of validity, or tick Perpetual.")
    return data


async def batch_detail(request: web.Request) -> web.Response:
    deps = deps_of(request)
    batch_id = int(request.match_info["id"])
    cursor = request.query.get("cursor") or None
    try:
        batch, cards, next_cursor = await card_batches.batch_detail(deps, batch_id, cursor, PAGE_SIZE)
    except ApiError as exc:
        if exc.code != "VALIDATION_ERROR":
            raise
        batch, cards, next_cursor = await card_batches.batch_detail(deps, batch_id, None, PAGE_SIZE)
        cursor = None
    return page(
        request,
        "admin/card_batch.html",
        batch=batch,
        cards=cards,
        next_cursor=next_cursor,
        here=f"/admin/cards/{batch_id}" + (f"?cursor={quote(cursor)}" if cursor else ""),
        message=DONE.get(request.query.get("done", "")),
    )


async def batch_csv(request: web.Request) -> web.Response:
    batch_id = int(request.match_info["id"])
    return csv_download(batch_id, await card_batches.batch_csv(deps_of(request), batch_id))


@requires("operator")
async def batch_void(request: web.Request) -> web.Response:
    await card_batches.void_whole_batch(deps_of(request), int(request.match_info["id"]), actor_of(request))
    raise web.HTTPSeeOther("/admin/cards?done=batch-voided")


async def card_detail(request: web.Request, error: str | None = None, status: int = 200) -> web.Response:
    card = await card_batches.find_card(deps_of(request), request.match_info["code"])
    message = DONE.get(request.query.get("done", ""))
    return page(request, "admin/card.html", status=status, card=card, error=error, message=message)


@requires("operator")
async def card_void(request: web.Request) -> web.Response:
    data = await form(request)
    try:
        card = await card_batches.void_one_card(
            deps_of(request), request.match_info["code"], actor_of(request)
        )
    except ApiError as exc:
        if exc.code == "CARD_NOT_FOUND":
            raise
        return await card_detail(request, error=flash_error(exc), status=exc.status)
    raise web.HTTPSeeOther(_back(data, card) + "done=voided")


def _back(data: dict[str, Any], card: dict[str, Any]) -> str:
    """Back to the batch page the Void button was pressed on, else to the card's own page."""
    back = data.get("back", "")
    if back.startswith(f"/admin/cards/{card['batch_id']}") and "//" not in back and "\\" not in back:
        return back + ("&" if "?" in back else "?")
    return card_path(card["code"]) + "?"


def routes() -> list[web.RouteDef]:
    """The pages beyond the batch list's own (`/cards`, its CSV and void, routed in licsrv.web)."""
    return [
        web.get(r"/cards/{id:\d{1,18}}", batch_detail),
        web.get(r"/cards/code/{code:[A-Za-z0-9 -]{1,64}}", card_detail),
        web.post(r"/cards/code/{code:[A-Za-z0-9 -]{1,64}}/void", card_void),
    ]
