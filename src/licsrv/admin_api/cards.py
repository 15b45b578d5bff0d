"""Management API: card batches (generate, list, show, export CSV, void) and single cards (find, void)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from licsrv.admin_api.auth import request_actor
from licsrv.bounded import Features
from licsrv.codes import format_card_code
from licsrv.domain import CARD_STATUSES, MAX_DEVICES, MAX_DURATION_DAYS, MAX_SESSIONS
from licsrv.envelope import load_body, load_query, ok, ok_page
from licsrv.openapi import documented
from licsrv.services import card_batches
from licsrv.state import deps_of

ID = validate.Range(min=1, max=2**62)
PLAN_TERMS = ("duration_days", "max_devices", "max_sessions", "features")


class BatchCreateSchema(Schema):
    """Without a plan `duration_days` is required (null: perpetual cards); a plan gives all the terms."""

    class Meta:
        unknown = RAISE

    product_id = fields.Integer(
        load_default=None, allow_none=True, validate=ID, metadata={"description": "default: the plan's, or 1"}
    )
    plan_id = fields.Integer(load_default=None, allow_none=True, validate=ID)
    count = fields.Integer(required=True, validate=validate.Range(min=1, max=100_000))
    duration_days = fields.Integer(
        allow_none=True,
        validate=validate.Range(min=1, max=MAX_DURATION_DAYS),
        metadata={"description": "days from redemption; null = perpetual (永久卡)"},
    )
    max_devices = fields.Integer(validate=validate.Range(min=1, max=MAX_DEVICES))
    max_sessions = fields.Integer(allow_none=True, validate=validate.Range(min=1, max=MAX_SESSIONS))
    features = Features()
    note = fields.String(load_default="", validate=validate.Length(max=500))

    @validates_schema
    def terms_from_one_place(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("plan_id") is not None:
            given = [name for name in PLAN_TERMS if name in data]
            if given:
                raise ValidationError(
                    f"A batch from a plan takes the plan's terms; leave out {', '.join(given)}.", "plan_id"
                )
        elif "duration_days" not in data:
            raise ValidationError("Give the days of validity, or null for perpetual cards.", "duration_days")


class PageQuerySchema(Schema):
    class Meta:
        unknown = RAISE

    cursor = fields.String(load_default=None, validate=validate.Length(max=100))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class BatchListQuerySchema(PageQuerySchema):
    product_id = fields.Integer(load_default=None, validate=ID)


class BatchSchema(Schema):
    id = fields.Integer()
    product_id = fields.Integer()
    product_name = fields.String()
    plan_id = fields.Integer(allow_none=True)
    plan_name = fields.String(allow_none=True)
    count = fields.Integer()
    duration_days = fields.Integer(allow_none=True, metadata={"description": "null = perpetual"})
    max_devices = fields.Integer()
    max_sessions = fields.Integer(allow_none=True)
    features = fields.Dict()
    note = fields.String()
    created_by = fields.String()
    created_at = fields.DateTime()
    new = fields.Integer(metadata={"description": "cards in state new"})
    redeemed = fields.Integer()
    void = fields.Integer()
    cards = fields.List(fields.String(), metadata={"description": "codes, grouped XXXX-XXXX-…"})


class BatchCardSchema(Schema):
    code = fields.String()
    status = fields.String(validate=validate.OneOf(CARD_STATUSES))
    license_id = fields.Integer(allow_none=True)
    license_key = fields.String(allow_none=True)
    recharged = fields.Boolean()
    hardware_id = fields.String(allow_none=True)
    ip = fields.String(allow_none=True)
    redeemed_at = fields.DateTime(allow_none=True)
    voided_at = fields.DateTime(allow_none=True)


class BatchDetailSchema(BatchSchema):
    cards = fields.List(fields.Nested(BatchCardSchema))


class CardBatchSchema(Schema):
    id = fields.Integer()
    note = fields.String()
    product_id = fields.Integer()
    product_name = fields.String()
    plan_id = fields.Integer(allow_none=True)
    plan_name = fields.String(allow_none=True)
    duration_days = fields.Integer(allow_none=True, metadata={"description": "null = perpetual"})
    max_devices = fields.Integer()
    max_sessions = fields.Integer(allow_none=True)
    features = fields.Dict()
    created_by = fields.String()
    created_at = fields.DateTime()


class CardLicenseSchema(Schema):
    id = fields.Integer()
    key = fields.String()
    recharged = fields.Boolean(metadata={"description": "true: the card extended this license"})


class CardSchema(Schema):
    code = fields.String(metadata={"description": "grouped XXXX-XXXX-…"})
    status = fields.String(validate=validate.OneOf(CARD_STATUSES))
    redeemed_at = fields.DateTime(allow_none=True)
    voided_at = fields.DateTime(allow_none=True)
    hardware_id = fields.String(allow_none=True)
    ip = fields.String(allow_none=True)
    license = fields.Nested(CardLicenseSchema, allow_none=True)
    batch = fields.Nested(CardBatchSchema)


class VoidedSchema(Schema):
    code = fields.String()
    status = fields.String()
    batch_id = fields.Integer()
    voided = fields.Integer()


BATCH = BatchSchema()
BATCHES = BatchSchema(many=True, exclude=("cards",))
BATCH_DETAIL = BatchDetailSchema()
CARD = CardSchema()


@documented(
    "Generate a card batch (from a plan, perpetual, multi-device)",
    tag="admin: cards",
    body=BatchCreateSchema,
    answer=BatchSchema,
    status=201,
    errors=("PLAN_NOT_FOUND", "PLAN_ARCHIVED", "PLAN_OF_ANOTHER_PRODUCT", "PRODUCT_ARCHIVED"),
)
async def create_batch(request: web.Request) -> web.Response:
    body = await load_body(request, BatchCreateSchema())
    batch, codes = await card_batches.create_batch(deps_of(request), request_actor(request), **body)
    grouped = [format_card_code(code) for code in codes]
    return ok(
        BATCH.dump({**batch, "cards": grouped, "new": len(codes), "redeemed": 0, "void": 0}), status=201
    )


@documented(
    "List card batches", tag="admin: cards", query=BatchListQuerySchema, answer=BatchSchema(many=True)
)
async def list_batches(request: web.Request) -> web.Response:
    query = load_query(request, BatchListQuerySchema())
    page, cursor = await card_batches.list_batches(
        deps_of(request), query["cursor"], query["limit"], query["product_id"]
    )
    return ok_page(BATCHES.dump(page), cursor)


@documented(
    "A batch with a page of its cards (state and redeemer)",
    tag="admin: cards",
    query=PageQuerySchema,
    answer=BatchDetailSchema,
    errors=("NOT_FOUND",),
)
async def show_batch(request: web.Request) -> web.Response:
    query = load_query(request, PageQuerySchema())
    batch, cards, cursor = await card_batches.batch_detail(
        deps_of(request), int(request.match_info["id"]), query["cursor"], query["limit"]
    )
    return ok_page(BATCH_DETAIL.dump({**batch, "cards": cards}), cursor)


@documented("Export a batch as CSV", tag="admin: cards", content_type="text/csv", errors=("NOT_FOUND",))
async def export_batch(request: web.Request) -> web.Response:
    batch_id = int(request.match_info["id"])
    return csv_download(batch_id, await card_batches.batch_csv(deps_of(request), batch_id))


def csv_download(batch_id: int, text: str) -> web.Response:
    return web.Response(
        text=text,
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="cards-batch-{batch_id}.csv"'},
    )


@documented("Void the new cards of a batch", tag="admin: cards", errors=("NOT_FOUND",))
async def void_batch(request: web.Request) -> web.Response:
    voided = await card_batches.void_whole_batch(
        deps_of(request), int(request.match_info["id"]), request_actor(request)
    )
    return ok({"voided": voided})


@documented(
    "Find a card by its code (with or without dashes, any case)",
    tag="admin: cards",
    answer=CardSchema,
    errors=("CARD_NOT_FOUND",),
)
async def show_card(request: web.Request) -> web.Response:
    return ok(CARD.dump(await card_batches.find_card(deps_of(request), request.match_info["code"])))


@documented(
    "Void one new card", tag="admin: cards", answer=VoidedSchema, errors=("CARD_NOT_FOUND", "CARD_NOT_NEW")
)
async def void_card(request: web.Request) -> web.Response:
    card = await card_batches.void_one_card(
        deps_of(request), request.match_info["code"], request_actor(request)
    )
    return ok(VoidedSchema().dump({**card, "voided": 1}))


CODE = r"{code:[A-Za-z0-9 -]{1,64}}"


def routes() -> list[web.RouteDef]:
    return [
        web.post("/card-batches", create_batch),
        web.get("/card-batches", list_batches),
        web.get(r"/card-batches/{id:\d{1,18}}", show_batch),
        web.get(r"/card-batches/{id:\d{1,18}}/export", export_batch),
        web.post(r"/card-batches/{id:\d{1,18}}/void", void_batch),
        web.get(f"/cards/{CODE}", show_card),
        web.post(f"/cards/{CODE}/void", void_card),
    ]
