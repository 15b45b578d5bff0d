"""Client API: license activation, validation and deactivation, and card redemption."""

from __future__ import annotations

from aiohttp import web
from marshmallow import RAISE, Schema, fields, validate

from licsrv.api.auth import request_product
from licsrv.api.rules import client_call
from licsrv.envelope import bind_subject, load_body, ok
from licsrv.middlewares import get_client_ip
from licsrv.openapi import documented
from licsrv.services import cards, licensing
from licsrv.state import deps_of

KEY = validate.Length(min=1, max=100)
HARDWARE_ID = validate.Length(min=1, max=200)


class ClientSchema(Schema):
    class Meta:
        unknown = RAISE


class ActivateSchema(ClientSchema):
    license_key = fields.String(required=True, validate=KEY)
    hardware_id = fields.String(required=True, validate=HARDWARE_ID)
    machine_name = fields.String(load_default="", validate=validate.Length(max=200))
    client_version = fields.String(load_default="", validate=validate.Length(max=40))


class LicenseDeviceSchema(ClientSchema):
    license_key = fields.String(required=True, validate=KEY)
    hardware_id = fields.String(required=True, validate=HARDWARE_ID)


class RedeemSchema(ClientSchema):
    card_key = fields.String(required=True, validate=validate.Length(min=1, max=64))
    hardware_id = fields.String(required=True, validate=HARDWARE_ID)
    license_key = fields.String(load_default=None, allow_none=True, validate=KEY)


class LicenseAnswerSchema(Schema):
    product = fields.String(required=True, metadata={"description": "the product's slug"})
    license_key = fields.String(required=True, metadata={"description": "as sent (redeem: the license's)"})
    hardware_id = fields.String(metadata={"description": "as sent in the request"})
    card_key = fields.String(metadata={"description": "redeem: as sent in the request"})
    status = fields.String(required=True)
    expires_at = fields.String(allow_none=True, metadata={"description": "ISO 8601; null = no expiry"})
    features = fields.Dict()
    max_devices = fields.Integer()
    devices_used = fields.Integer()
    max_sessions = fields.Integer(allow_none=True)
    customer_name = fields.String()
    valid = fields.Boolean()
    device_id = fields.Integer()
    deactivated = fields.Boolean()
    redeemed = fields.Boolean()
    recharged = fields.Boolean()


ANSWER = LicenseAnswerSchema()


@client_call("activate")
@documented(
    "Activate a device on a license (uses a slot; idempotent)",
    tag="licenses",
    body=ActivateSchema,
    answer=LicenseAnswerSchema,
    errors=(
        "LICENSE_NOT_FOUND",
        "LICENSE_EXPIRED",
        "LICENSE_SUSPENDED",
        "LICENSE_REVOKED",
        "DEVICE_LIMIT_REACHED",
    ),
)
async def activate(request: web.Request) -> web.Response:
    body = await load_body(request, ActivateSchema())
    bind_subject(request, license_key=body["license_key"], hardware_id=body["hardware_id"])
    view = await licensing.activate(
        deps_of(request),
        request_product(request),
        body.pop("license_key"),
        body.pop("hardware_id"),
        ip=get_client_ip(request),
        **body,
    )
    return ok(ANSWER.dump(view))


@client_call("validate")
@documented(
    "Is the license valid on this device?",
    tag="licenses",
    body=LicenseDeviceSchema,
    answer=LicenseAnswerSchema,
    errors=(
        "LICENSE_NOT_FOUND",
        "LICENSE_EXPIRED",
        "LICENSE_SUSPENDED",
        "LICENSE_REVOKED",
        "DEVICE_NOT_ACTIVATED",
        "HARDWARE_MISMATCH",
    ),
)
async def validate_license(request: web.Request) -> web.Response:
    body = await load_body(request, LicenseDeviceSchema())
    bind_subject(request, license_key=body["license_key"], hardware_id=body["hardware_id"])
    view = await licensing.validate(
        deps_of(request), request_product(request), body["license_key"], body["hardware_id"]
    )
    return ok(ANSWER.dump(view))


@client_call("deactivate")
@documented(
    "Free this device's slot and end its sessions",
    tag="licenses",
    body=LicenseDeviceSchema,
    answer=LicenseAnswerSchema,
    errors=("LICENSE_NOT_FOUND", "DEVICE_NOT_ACTIVATED"),
)
async def deactivate(request: web.Request) -> web.Response:
    body = await load_body(request, LicenseDeviceSchema())
    bind_subject(request, license_key=body["license_key"], hardware_id=body["hardware_id"])
    view = await licensing.deactivate_device(
        deps_of(request), request_product(request), body["license_key"], body["hardware_id"]
    )
    return ok(ANSWER.dump(view))


@client_call("redeem")
@documented(
    "Redeem a card key (new license, same license again, or recharge)",
    tag="cards",
    body=RedeemSchema,
    answer=LicenseAnswerSchema,
    errors=("CARD_NOT_FOUND", "CARD_VOID", "CARD_BOUND_ELSEWHERE", "LICENSE_NOT_FOUND"),
)
async def redeem(request: web.Request) -> web.Response:
    body = await load_body(request, RedeemSchema())
    bind_subject(request, card_key=body["card_key"], hardware_id=body["hardware_id"])
    if body["license_key"] is not None:
        bind_subject(request, license_key=body["license_key"])
    view = await cards.redeem_card(
        deps_of(request),
        request_product(request),
        body["card_key"],
        body["hardware_id"],
        get_client_ip(request),
        body["license_key"],
    )
    return ok(ANSWER.dump(view))


def routes() -> list[web.RouteDef]:
    return [
        web.post("/licenses/activate", activate),
        web.post("/licenses/validate", validate_license),
        web.post("/licenses/deactivate", deactivate),
        web.post("/cards/redeem", redeem),
    ]
