"""Management API: card batches (generate, list, export CSV, void) and single cards (void)."""

from __future__ import annotations

from aiohttp import web
from marshmallow import RAISE, Schema, fields, validate

from licsrv.admin_api.auth import request_actor
from licsrv.envelope import load_body, load_query, ok, ok_page
from licsrv.openapi import documented
from licsrv.services import cards
from licsrv.state import deps_of


class BatchCreateSchema(Schema):
    class Meta:
        unknown = RAISE

    product_id = fields.Integer(load_default=1, validate=validate.Range(min=1, max=2**62))
    count = fields.Integer(required=True, validate=validate.Range(min=1, max=100_000))
    duration_days = fields.Integer(required=True, validate=validate.Range(min=1, max=36500))
    note = fields.String(load_default="", validate=validate.Length(max=500))


class PageQuerySchema(Schema):
    class Meta:
        unknown = RAISE

    cursor = fields.String(load_default=None, validate=validate.Length(max=100))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class BatchSchema(Schema):
    id = fields.Integer()
    product_id = fields.Integer()
    count = fields.Integer()
    duration_days = fields.Integer()
    note = fields.String()
    created_by = fields.String()
    created_at = fields.DateTime()
    unused = fields.Integer()
    redeemed = fields.Integer()
    void = fields.Integer()
    cards = fields.List(fields.String())


BATCH = BatchSchema()
BATCHES = BatchSchema(many=True, exclude=("cards",))


@documented(
    "Generate a card batch", tag="admin: cards", body=BatchCreateSchema, answer=BatchSchema, status=201
)
async def create_batch(request: web.Request) -> web.Response:
    body = await load_body(request, BatchCreateSchema())
    batch, codes = await cards.create_batch(deps_of(request), request_actor(request), **body)
    return ok(BATCH.dump({**batch, "cards": codes, "unused": len(codes)}), status=201)


@documented(
    "List card batches",
    tag="admin: cards",
    query=PageQuerySchema,
    answer=BatchSchema(many=True, exclude=("cards",)),
)
async def list_batches(request: web.Request) -> web.Response:
    query = load_query(request, PageQuerySchema())
    page, cursor = await cards.list_batches(deps_of(request), query["cursor"], query["limit"])
    return ok_page(BATCHES.dump(page), cursor)


@documented("Export a batch as CSV", tag="admin: cards", content_type="text/csv", errors=("NOT_FOUND",))
async def export_batch(request: web.Request) -> web.Response:
    batch_id = int(request.match_info["id"])
    return csv_download(batch_id, await cards.batch_csv(deps_of(request), batch_id))


def csv_download(batch_id: int, text: str) -> web.Response:
    return web.Response(
        text=text,
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="cards-batch-{batch_id}.csv"'},
    )


@documented("Void the unused cards of a batch", tag="admin: cards", errors=("NOT_FOUND",))
async def void_batch(request: web.Request) -> web.Response:
    voided = await cards.void_whole_batch(
        deps_of(request), int(request.match_info["id"]), request_actor(request)
    )
    return ok({"voided": voided})


@documented("Void one unused card", tag="admin: cards", errors=("CARD_NOT_FOUND",))
async def void_card(request: web.Request) -> web.Response:
    await cards.void_one_card(deps_of(request), request.match_info["code"], request_actor(request))
    return ok({"voided": 1})


def routes() -> list[web.RouteDef]:
    return [
        web.post("/card-batches", create_batch),
        web.get("/card-batches", list_batches),
        web.get(r"/card-batches/{id:\d{1,18}}/export", export_batch),
        web.post(r"/card-batches/{id:\d{1,18}}/void", void_batch),
        web.post(r"/cards/{code:[A-Za-z0-9-]{1,64}}/void", void_card),
    ]
