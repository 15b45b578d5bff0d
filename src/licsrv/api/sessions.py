"""Client API: run sessions — start, heartbeat, end."""

from __future__ import annotations

import time

from aiohttp import web
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from licsrv.api.auth import request_product
from licsrv.api.rules import checked_product, client_call
from licsrv.domain import VERSION_PATTERN, VERSION_RULE
from licsrv.envelope import ANSWER_MAC_KEY, SUBJECT, Envelope, bind_subject, load_body, ok, read_json
from licsrv.errors import ApiError
from licsrv.live.keys import has_mac, public_id
from licsrv.middlewares import get_client_ip
from licsrv.openapi import documented
from licsrv.services import sessions
from licsrv.services.products import Product
from licsrv.state import CRYPTO, LIVE, deps_of

TOKEN_LENGTH = validate.Length(min=8, max=200)
HARDWARE_ID = validate.Length(min=1, max=200)
VERSION = validate.Regexp(VERSION_PATTERN, error=f"client_version: {VERSION_RULE}")


class StartSchema(Schema):
    class Meta:
        unknown = RAISE

    license_key = fields.String(load_default=None, validate=validate.Length(min=1, max=100))
    credential = fields.String(
        load_default=None,
        validate=validate.Length(min=8, max=200),
        metadata={"description": "a customer's account credential (portal credential file) for license_key"},
    )
    hardware_id = fields.String(required=True, validate=HARDWARE_ID)
    client_version = fields.String(required=True, validate=VERSION)
    machine_name = fields.String(load_default="", validate=validate.Length(max=200))
    function = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(["open"]))
    client_public_key = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(min=40, max=60)
    )

    @validates_schema
    def license_or_credential(self, data: dict, **_: object) -> None:
        if data.get("license_key") is None and data.get("credential") is None:
            raise ValidationError("Send license_key or credential.", "license_key")


class TokenSchema(Schema):
    class Meta:
        unknown = RAISE

    session_token = fields.String(required=True, validate=TOKEN_LENGTH)


class UpdateNoticeSchema(Schema):
    current_version = fields.String()
    download_url = fields.String()
    whats_new = fields.String()


class SubjectSchema(Schema):
    product = fields.String(required=True, metadata={"description": "the product's slug (every answer)"})


class StartAnswerSchema(SubjectSchema):
    license_key = fields.String(required=True, metadata={"description": "as sent in the request"})
    hardware_id = fields.String(required=True, metadata={"description": "as sent in the request"})
    session_token = fields.String(required=True)
    session_id = fields.String(required=True)
    heartbeat_interval = fields.Integer(required=True)
    session_timeout = fields.Integer(required=True)
    update = fields.Nested(UpdateNoticeSchema, allow_none=True)
    mac_key = fields.String(metadata={"description": "per-session HMAC key sealed to client_public_key"})
    content_key = fields.String(allow_none=True, metadata={"description": "product content key, sealed"})


class SessionAnswerSchema(SubjectSchema):
    session_id = fields.String(required=True, metadata={"description": "the session the token names"})


class HeartbeatAnswerSchema(SessionAnswerSchema):
    next_heartbeat = fields.Integer(required=True)


class EndAnswerSchema(SessionAnswerSchema):
    ended = fields.Boolean(required=True)


START_SCHEMA = StartSchema()
TOKEN_SCHEMA = TokenSchema()
START_ANSWER = StartAnswerSchema()


@client_call("start")
@documented(
    "Start a run session",
    tag="sessions",
    body=StartSchema,
    answer=StartAnswerSchema,
    errors=(
        "INVALID_API_KEY",
        "LICENSE_NOT_FOUND",
        "LICENSE_EXPIRED",
        "LICENSE_SUSPENDED",
        "LICENSE_REVOKED",
        "DEVICE_LIMIT_REACHED",
        "SESSION_LIMIT_REACHED",
        "VERSION_TOO_OLD",
        "CREDENTIAL_INVALID",
        "SERVICE_UNAVAILABLE",
    ),
)
async def start(request: web.Request) -> web.Response:
    body = await load_body(request, START_SCHEMA)
    named = {name: body[name] for name in ("license_key", "credential") if body.get(name) is not None}
    bind_subject(request, hardware_id=body["hardware_id"], **named)
    answer = await sessions.start_session(
        deps_of(request), request_product(request), ip=get_client_ip(request), **body
    )
    return ok(START_ANSWER.dump(answer))


@client_call()
@documented(
    "Keep a session alive (every heartbeat_interval seconds)",
    tag="sessions",
    body=TokenSchema,
    answer=HeartbeatAnswerSchema,
    errors=(
        "SESSION_EXPIRED",
        "SESSION_TERMINATED",
        "LICENSE_SUSPENDED",
        "LICENSE_REVOKED",
        "SERVICE_UNAVAILABLE",
    ),
)
async def heartbeat(request: web.Request) -> web.Response:
    # A route of the root app (no sub-app middlewares); `licsrv serve` answers most heartbeats even earlier,
    # in licsrv.fastpath, which shares `heartbeat_answer`.
    product = await checked_product(request)
    return await heartbeat_answer(request.app, product, request)


async def heartbeat_answer(root: web.Application, product: Product, request: web.BaseRequest) -> Envelope:
    """The hot path: no schema object, no PostgreSQL — one batched Redis script call."""
    request[SUBJECT] = {"product": product.slug}  # a refusal names the product too, as the router's would
    token = heartbeat_token(await read_json(request))
    live = root[LIVE]
    session = sessions.session_of(live, product, token)
    request[SUBJECT] = subject = {"product": product.slug, "session_id": public_id(session[1])}
    if has_mac(token):
        request[ANSWER_MAC_KEY] = root[CRYPTO].mac_key(token)
    await sessions.heartbeat(live, product, token, int(time.time() * 1000), session)
    return ok({"next_heartbeat": product.heartbeat_interval, **subject})


def heartbeat_token(body: dict) -> str:
    """The session token of a heartbeat's body, which must hold nothing else (its nonce taken out)."""
    token = body.get("session_token")
    if len(body) != 1 or not isinstance(token, str) or not 8 <= len(token) <= 200:
        raise ApiError("VALIDATION_ERROR", 'Send exactly {"session_token": "..."}.')
    return token


@client_call("end")
@documented(
    "End a session normally",
    tag="sessions",
    body=TokenSchema,
    answer=EndAnswerSchema,
    errors=("SESSION_EXPIRED", "SESSION_TERMINATED"),
)
async def end(request: web.Request) -> web.Response:
    token = (await load_body(request, TOKEN_SCHEMA))["session_token"]
    product = request_product(request)
    deps = deps_of(request)
    if has_mac(token):
        request[ANSWER_MAC_KEY] = deps.crypto.mac_key(token)
    bind_subject(request, session_id=public_id(sessions.session_of(deps.live, product, token)[1]))
    await sessions.end_session(deps, product, token)
    return ok({"ended": True})


def routes() -> list[web.RouteDef]:
    return [
        web.post("/sessions/start", start),
        web.post("/sessions/end", end),
    ]


HEARTBEAT_PATH = "/api/v1/sessions/heartbeat"


def root_routes() -> list[web.RouteDef]:
    """Routes served by the root app itself, ahead of the /api/v1 sub-app and its middlewares."""
    return [web.post(HEARTBEAT_PATH, heartbeat)]
