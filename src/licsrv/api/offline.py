"""Client API: offline activation (DESIGN §6) — a request code in, a signed certificate out."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web
from marshmallow import RAISE, Schema, fields, validate

from licsrv.api.auth import request_product
from licsrv.api.licenses import LicenseAnswerSchema
from licsrv.api.rules import client_call
from licsrv.envelope import bind_subject, load_body, ok
from licsrv.offline_codes import MAX_CODE_LENGTH
from licsrv.openapi import documented
from licsrv.services import offline
from licsrv.state import DB, KEYRING


class OfflineActivateSchema(Schema):
    class Meta:
        unknown = RAISE

    request_code = fields.String(required=True, validate=validate.Length(min=1, max=MAX_CODE_LENGTH))


class OfflineAnswerSchema(Schema):
    certificate = fields.String(
        required=True,
        metadata={"description": "LC1.<payload>.<Ed25519 signature>, checked offline with GET /keys"},
    )
    license = fields.Nested(LicenseAnswerSchema, required=True)


@client_call("activate")
@documented(
    "Offline activation: bind the device of a request code and return a signed certificate",
    tag="licenses",
    body=OfflineActivateSchema,
    answer=OfflineAnswerSchema,
    errors=(
        "LICENSE_NOT_FOUND",
        "LICENSE_EXPIRED",
        "LICENSE_SUSPENDED",
        "LICENSE_REVOKED",
        "DEVICE_LIMIT_REACHED",
    ),
)
async def activate(request: web.Request) -> web.Response:
    body = await load_body(request, OfflineActivateSchema())
    now = datetime.now(UTC)
    offline_request = offline.read_request(body["request_code"], now)
    bind_subject(request, license_key=offline_request.license_key, hardware_id=offline_request.hardware_id)
    answer = await offline.activate_offline(
        request.config_dict[DB], request.config_dict[KEYRING], request_product(request), offline_request, now
    )
    return ok(answer)


def routes() -> list[web.RouteDef]:
    return [web.post("/offline/activate", activate)]
