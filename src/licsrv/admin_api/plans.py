"""Management API: plans, the license templates of a product (create, list, get, update, archive)."""

from __future__ import annotations

from aiohttp import web
from marshmallow import RAISE, Schema, fields, validate

from licsrv.admin_api.auth import request_actor
from licsrv.bounded import Features
from licsrv.envelope import load_body, load_query, ok
from licsrv.openapi import documented
from licsrv.services import plans
from licsrv.state import deps_of

ID = validate.Range(min=1, max=2**62)


class PlanUpdateSchema(Schema):
    class Meta:
        unknown = RAISE

    name = fields.String(validate=validate.Length(min=1, max=200))
    max_devices = fields.Integer(validate=validate.Range(min=0, max=100000))
    max_sessions = fields.Integer(
        allow_none=True,
        validate=validate.Range(min=1, max=10000),
        metadata={"description": "concurrent runs; null: the product's default"},
    )
    duration_days = fields.Integer(
        allow_none=True,
        validate=validate.Range(min=1, max=36500),
        metadata={"description": "days from the first activation; null: perpetual"},
    )
    features = Features()


class PlanCreateSchema(PlanUpdateSchema):
    product_id = fields.Integer(load_default=1, validate=ID)
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    max_devices = fields.Integer(load_default=1, validate=validate.Range(min=0, max=100000))
    max_sessions = fields.Integer(
        load_default=None, allow_none=True, validate=validate.Range(min=1, max=10000)
    )
    duration_days = fields.Integer(
        load_default=None, allow_none=True, validate=validate.Range(min=1, max=36500)
    )
    features = Features(load_default=dict)


class PlanListQuerySchema(Schema):
    class Meta:
        unknown = RAISE

    product_id = fields.Integer(load_default=None, validate=ID)
    include_archived = fields.Boolean(load_default=True)


class PlanSchema(Schema):
    id = fields.Integer()
    product_id = fields.Integer()
    name = fields.String()
    max_devices = fields.Integer()
    max_sessions = fields.Integer(allow_none=True)
    duration_days = fields.Integer(allow_none=True)
    features = fields.Dict()
    archived_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


PLAN = PlanSchema()
PLANS = PlanSchema(many=True)


def _id(request: web.Request) -> int:
    return int(request.match_info["id"])


@documented(
    "Create a plan",
    tag="admin: plans",
    body=PlanCreateSchema,
    answer=PlanSchema,
    status=201,
    errors=("FORBIDDEN", "PLAN_NAME_TAKEN", "PRODUCT_ARCHIVED", "UNKNOWN_REFERENCE"),
)
async def create(request: web.Request) -> web.Response:
    body = await load_body(request, PlanCreateSchema())
    plan = await plans.create_plan(deps_of(request), body.pop("product_id"), body, request_actor(request))
    return ok(PLAN.dump(plan), status=201)


@documented(
    "List plans (of one product)", tag="admin: plans", query=PlanListQuerySchema, answer=PlanSchema(many=True)
)
async def list_plans(request: web.Request) -> web.Response:
    query = load_query(request, PlanListQuerySchema())
    return ok(PLANS.dump(await plans.list_plans(deps_of(request), **query)))


@documented("Get a plan", tag="admin: plans", answer=PlanSchema, errors=("PLAN_NOT_FOUND",))
async def get_plan(request: web.Request) -> web.Response:
    return ok(PLAN.dump(await plans.find_plan(deps_of(request), _id(request))))


@documented(
    "Change a plan (what is sold from now on; licenses and cards already made keep their values)",
    tag="admin: plans",
    body=PlanUpdateSchema,
    answer=PlanSchema,
    errors=("PLAN_NOT_FOUND", "PLAN_ARCHIVED", "PLAN_NAME_TAKEN", "FORBIDDEN"),
)
async def update(request: web.Request) -> web.Response:
    body = await load_body(request, PlanUpdateSchema())
    return ok(
        PLAN.dump(await plans.change_plan(deps_of(request), _id(request), body, request_actor(request)))
    )


@documented(
    "Archive a plan: nothing new is made from it",
    tag="admin: plans",
    answer=PlanSchema,
    errors=("PLAN_NOT_FOUND",),
)
async def archive(request: web.Request) -> web.Response:
    return ok(PLAN.dump(await plans.retire_plan(deps_of(request), _id(request), request_actor(request))))


def routes() -> list[web.RouteDef]:
    return [
        web.post("/plans", create),
        web.get("/plans", list_plans),
        web.get(r"/plans/{id:\d{1,18}}", get_plan),
        web.patch(r"/plans/{id:\d{1,18}}", update),
        web.post(r"/plans/{id:\d{1,18}}/archive", archive),
    ]
