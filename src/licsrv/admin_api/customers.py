"""Management API: the portal's customers (search, detail, verify, disable, erase, reset token) and each
product's portal settings."""

from __future__ import annotations

from aiohttp import web
from marshmallow import RAISE, Schema, fields, validate

from licsrv.admin_api.auth import request_actor
from licsrv.domain import MAX_PAGE_SIZE, PAGE_SIZE
from licsrv.envelope import load_body, load_query, ok
from licsrv.openapi import documented
from licsrv.services.portal import customers
from licsrv.state import deps_of

TAG = "admin: customers"


class CustomerQuerySchema(Schema):
    class Meta:
        unknown = RAISE

    q = fields.String(load_default="", validate=validate.Length(max=254))
    product_id = fields.Integer(load_default=None, validate=validate.Range(min=1, max=2**62))
    after_id = fields.Integer(load_default=None, validate=validate.Range(min=1, max=2**62))
    limit = fields.Integer(load_default=PAGE_SIZE, validate=validate.Range(min=1, max=MAX_PAGE_SIZE))


class CustomerSchema(Schema):
    id = fields.Integer()
    product_id = fields.Integer()
    email = fields.String(allow_none=True)
    verified = fields.Boolean()
    disabled = fields.Boolean()
    created_at = fields.DateTime()
    last_login_at = fields.DateTime(allow_none=True)
    erased_at = fields.DateTime(allow_none=True)
    licenses = fields.Raw(metadata={"description": "a count in lists, the licenses in the detail"})
    data = fields.Dict()


class DisableSchema(Schema):
    class Meta:
        unknown = RAISE

    disabled = fields.Boolean(required=True)


class PortalSettingsSchema(Schema):
    class Meta:
        unknown = RAISE

    double_opt_in = fields.Boolean()
    device_frees_per_30d = fields.Integer(validate=validate.Range(min=0, max=1000))
    reset_delivery = fields.String(validate=validate.OneOf(customers.RESET_DELIVERIES))


class ResetTokenSchema(Schema):
    token = fields.String()
    email = fields.String()
    valid_seconds = fields.Integer()


def _id(request: web.Request) -> int:
    return int(request.match_info["id"])


@documented(
    "Portal customers (search by email prefix)",
    tag=TAG,
    query=CustomerQuerySchema,
    answer=CustomerSchema(many=True),
)
async def list_customers(request: web.Request) -> web.Response:
    query = load_query(request, CustomerQuerySchema())
    return ok(CustomerSchema(many=True).dump(await customers.search(deps_of(request), **query)))


@documented("A customer with their licenses", tag=TAG, answer=CustomerSchema, errors=("NOT_FOUND",))
async def get_customer(request: web.Request) -> web.Response:
    return ok(CustomerSchema().dump(await customers.detail(deps_of(request), _id(request))))


@documented(
    "Mark a customer's email as verified", tag=TAG, answer=CustomerSchema, errors=("NOT_FOUND", "FORBIDDEN")
)
async def verify_customer(request: web.Request) -> web.Response:
    found = await customers.set_verified(deps_of(request), _id(request), request_actor(request))
    return ok(CustomerSchema().dump(found))


@documented(
    "Disable or enable a customer (disabling signs them out)",
    tag=TAG,
    body=DisableSchema,
    answer=CustomerSchema,
    errors=("NOT_FOUND", "FORBIDDEN"),
)
async def disable_customer(request: web.Request) -> web.Response:
    body = await load_body(request, DisableSchema())
    found = await customers.set_disabled(
        deps_of(request), _id(request), body["disabled"], request_actor(request)
    )
    return ok(CustomerSchema().dump(found))


@documented(
    "Erase a customer's personal data (owner); licenses stay, detached",
    tag=TAG,
    errors=("NOT_FOUND", "FORBIDDEN"),
)
async def erase_customer(request: web.Request) -> web.Response:
    return ok(await customers.erase(deps_of(request), _id(request), request_actor(request)))


@documented(
    "A password reset token for the vendor's system to send",
    tag=TAG,
    answer=ResetTokenSchema,
    errors=("NOT_FOUND", "FORBIDDEN"),
)
async def reset_token(request: web.Request) -> web.Response:
    answer = await customers.reset_token(deps_of(request), _id(request), request_actor(request))
    return ok(ResetTokenSchema().dump(answer))


@documented("A product's portal settings", tag=TAG, answer=PortalSettingsSchema, errors=("NOT_FOUND",))
async def get_portal_settings(request: web.Request) -> web.Response:
    return ok(await customers.get_settings(deps_of(request), _id(request)))


@documented(
    "Change a product's portal settings",
    tag=TAG,
    body=PortalSettingsSchema,
    answer=PortalSettingsSchema,
    errors=("NOT_FOUND", "FORBIDDEN"),
)
async def put_portal_settings(request: web.Request) -> web.Response:
    body = await load_body(request, PortalSettingsSchema())
    return ok(await customers.put_settings(deps_of(request), _id(request), body, request_actor(request)))


ID = r"{id:\d{1,18}}"


def routes() -> list[web.RouteDef]:
    return [
        web.get("/customers", list_customers),
        web.get(f"/customers/{ID}", get_customer),
        web.post(f"/customers/{ID}/verify", verify_customer),
        web.post(f"/customers/{ID}/disable", disable_customer),
        web.post(f"/customers/{ID}/erase", erase_customer),
        web.post(f"/customers/{ID}/password-reset", reset_token),
        web.get(f"/products/{ID}/portal", get_portal_settings),
        web.put(f"/products/{ID}/portal", put_portal_settings),
    ]
