"""Management API: webhook endpoints (owner only), their delivery attempts, test events and resends."""

from __future__ import annotations

from aiohttp import web
from marshmallow import RAISE, Schema, ValidationError, fields, validate

from licsrv.admin_api.auth import request_actor
from licsrv.envelope import load_body, ok
from licsrv.openapi import documented
from licsrv.state import deps_of
from licsrv.webhooks import endpoints
from licsrv.webhooks.catalogue import EVENT_TYPES

EVENT_NAMES = sorted(EVENT_TYPES)
TAG = "admin: webhooks"


def _known_events(value: list) -> None:
    # A plain function, not validate.ContainsOnly: apispec would turn that into an `enum` on the array itself.
    unknown = [item for item in value if not isinstance(item, str) or item not in EVENT_TYPES]
    if unknown:
        raise ValidationError(f"Unknown event types: {', '.join(map(str, unknown[:5]))}.")


def EventsField(**kwargs) -> fields.List:
    """Checked as a whole, so every refusal names the field (never an item index)."""
    return fields.List(
        fields.Raw(),
        validate=[validate.Length(min=1, max=50), _known_events],
        metadata={"items": {"type": "string", "enum": EVENT_NAMES}},
        **kwargs,
    )


class EndpointCreateSchema(Schema):
    class Meta:
        unknown = RAISE

    url = fields.String(required=True, validate=validate.Length(min=8, max=2000))
    events = EventsField(required=True)
    description = fields.String(load_default="", validate=validate.Length(max=500))


class EndpointUpdateSchema(Schema):
    class Meta:
        unknown = RAISE

    url = fields.String(validate=validate.Length(min=8, max=2000))
    events = EventsField()
    description = fields.String(validate=validate.Length(max=500))
    enabled = fields.Boolean()


class EndpointSchema(Schema):
    id = fields.Integer()
    url = fields.String()
    events = fields.List(fields.String())
    description = fields.String()
    enabled = fields.Boolean()
    disabled_reason = fields.String(metadata={"description": "Why the endpoint was disabled, if it was."})
    failing_since = fields.DateTime(allow_none=True)
    previous_secret_expires_at = fields.DateTime(allow_none=True)
    pending = fields.Integer()
    failed = fields.Integer()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class EndpointWithSecretSchema(EndpointSchema):
    secret = fields.String(
        metadata={"description": "The signing secret (whsec_…), shown only in this answer."}
    )


class AttemptSchema(Schema):
    id = fields.Integer()
    delivery_id = fields.Integer()
    event_id = fields.String()
    type = fields.String()
    delivery_status = fields.String()
    attempted_at = fields.DateTime()
    status_code = fields.Integer(allow_none=True)
    ok = fields.Boolean()
    latency_ms = fields.Integer()
    error = fields.String()
    response_excerpt = fields.String()


class TestEventSchema(Schema):
    event_id = fields.String()
    delivery_id = fields.Integer()


class ResendSchema(Schema):
    delivery_id = fields.Integer()
    status = fields.String()


class EventTypeSchema(Schema):
    type = fields.String()
    description = fields.String()


ENDPOINT = EndpointSchema()
WITH_SECRET = EndpointWithSecretSchema()
ERRORS = ("NOT_FOUND", "FORBIDDEN", "VALIDATION_ERROR")


def _id(request: web.Request) -> int:
    return int(request.match_info["id"])


@documented("Event types a webhook can subscribe to", tag=TAG, answer=EventTypeSchema(many=True))
async def event_types(request: web.Request) -> web.Response:
    return ok([{"type": name, "description": EVENT_TYPES[name]} for name in EVENT_NAMES])


@documented("List webhook endpoints", tag=TAG, answer=EndpointSchema(many=True), errors=("FORBIDDEN",))
async def list_endpoints(request: web.Request) -> web.Response:
    endpoints.require_owner(request_actor(request))
    return ok(EndpointSchema(many=True).dump(await endpoints.list_endpoints(deps_of(request))))


@documented(
    "Create a webhook endpoint (owner); the answer holds its secret, shown once",
    tag=TAG,
    body=EndpointCreateSchema,
    answer=EndpointWithSecretSchema,
    status=201,
    errors=ERRORS,
)
async def create_endpoint(request: web.Request) -> web.Response:
    body = await load_body(request, EndpointCreateSchema())
    created = await endpoints.create_endpoint(deps_of(request), request_actor(request), body)
    return ok(WITH_SECRET.dump(created), status=201)


@documented("Get a webhook endpoint", tag=TAG, answer=EndpointSchema, errors=("NOT_FOUND", "FORBIDDEN"))
async def get_endpoint(request: web.Request) -> web.Response:
    endpoints.require_owner(request_actor(request))
    return ok(ENDPOINT.dump(await endpoints.get_endpoint(deps_of(request), _id(request))))


@documented(
    "Change a webhook endpoint: url, events, description, enabled (owner)",
    tag=TAG,
    body=EndpointUpdateSchema,
    answer=EndpointSchema,
    errors=ERRORS,
)
async def update_endpoint(request: web.Request) -> web.Response:
    body = await load_body(request, EndpointUpdateSchema())
    updated = await endpoints.update_endpoint(deps_of(request), request_actor(request), _id(request), body)
    return ok(ENDPOINT.dump(updated))


@documented(
    "Rotate the signing secret (owner); the old one keeps signing beside it during the overlap",
    tag=TAG,
    answer=EndpointWithSecretSchema,
    errors=("NOT_FOUND", "FORBIDDEN"),
)
async def rotate_secret(request: web.Request) -> web.Response:
    rotated = await endpoints.rotate_secret(deps_of(request), request_actor(request), _id(request))
    return ok(WITH_SECRET.dump(rotated))


@documented("Delete a webhook endpoint (owner)", tag=TAG, errors=("NOT_FOUND", "FORBIDDEN"))
async def delete_endpoint(request: web.Request) -> web.Response:
    await endpoints.delete_endpoint(deps_of(request), request_actor(request), _id(request))
    return ok({"deleted": True})


@documented(
    "Send a webhook.test event to this endpoint (owner)",
    tag=TAG,
    answer=TestEventSchema,
    status=202,
    errors=("NOT_FOUND", "FORBIDDEN", "CONFLICT"),
)
async def send_test(request: web.Request) -> web.Response:
    sent = await endpoints.send_test(deps_of(request), request_actor(request), _id(request))
    return ok(sent, status=202)


@documented(
    "Delivery attempts of an endpoint, newest first (kept 30 days)",
    tag=TAG,
    answer=AttemptSchema(many=True),
    errors=("NOT_FOUND", "FORBIDDEN"),
)
async def list_attempts(request: web.Request) -> web.Response:
    endpoints.require_owner(request_actor(request))
    rows = await endpoints.attempts(deps_of(request), _id(request))
    return ok(AttemptSchema(many=True).dump(rows))


@documented(
    "Send a delivery again (owner): same event id, a fresh retry window",
    tag=TAG,
    answer=ResendSchema,
    status=202,
    errors=("NOT_FOUND", "FORBIDDEN"),
)
async def resend(request: web.Request) -> web.Response:
    delivery_id = int(request.match_info["delivery_id"])
    answer = await endpoints.resend(deps_of(request), request_actor(request), _id(request), delivery_id)
    return ok(answer, status=202)


def routes() -> list[web.RouteDef]:
    one = r"/webhooks/{id:\d{1,18}}"
    return [
        web.get("/webhooks/event-types", event_types),
        web.get("/webhooks", list_endpoints),
        web.post("/webhooks", create_endpoint),
        web.get(one, get_endpoint),
        web.patch(one, update_endpoint),
        web.delete(one, delete_endpoint),
        web.post(one + "/rotate-secret", rotate_secret),
        web.post(one + "/test", send_test),
        web.get(one + "/attempts", list_attempts),
        web.post(one + r"/deliveries/{delivery_id:\d{1,18}}/resend", resend),
    ]
