"""The older server's client API (`/api/license/...`), kept unchanged on top of the same services.

Field names and the single-session message are that server's; answers are flat `{"success": ...}` objects.
"""

from __future__ import annotations

import time

from aiohttp import web
from marshmallow import EXCLUDE, Schema, fields, validate

from licsrv.api.auth import request_product
from licsrv.api.rules import client_call, client_rules_middleware
from licsrv.envelope import Handler, as_api_error, read_json
from licsrv.middlewares import get_client_ip
from licsrv.openapi import documented
from licsrv.services import licensing, sessions
from licsrv.state import deps_of

SINGLE_SESSION_MESSAGE = (
    "Es ist nur eine Sitzung erlaubt, stelle sicher, dass nirgendwo sonst das Programm läuft"
)
SHORT = validate.Length(min=1, max=200)


class LegacySchema(Schema):
    class Meta:
        unknown = EXCLUDE  # old clients may send more than we read


class LegacyStartSchema(LegacySchema):
    license_key = fields.String(required=True, validate=SHORT)
    machine_id = fields.String(load_default="", validate=validate.Length(max=200))
    hardware_hash = fields.String(required=True, validate=SHORT)
    version = fields.String(load_default="0", validate=validate.Length(min=1, max=40))


class LegacyHeartbeatSchema(LegacySchema):
    session_token = fields.String(required=True, validate=validate.Length(min=8, max=200))
    license_key = fields.String(load_default="", validate=validate.Length(max=200))


class LegacyLicenseSchema(LegacySchema):
    license_key = fields.String(required=True, validate=SHORT)
    hardware_hash = fields.String(load_default=None, validate=SHORT)
    machine_id = fields.String(load_default="", validate=validate.Length(max=200))
    version = fields.String(load_default="", validate=validate.Length(max=40))


class LegacyActivateSchema(LegacyLicenseSchema):
    hardware_hash = fields.String(required=True, validate=SHORT)


def success(**data: object) -> web.Response:
    return web.json_response({"success": True, **data})


@web.middleware
async def legacy_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        error = as_api_error(exc, request)
    except Exception as exc:
        error = as_api_error(exc, request)
    message = SINGLE_SESSION_MESSAGE if error.code == "SESSION_LIMIT_REACHED" else error.message
    payload = {"success": False, "error": message, "code": error.code}
    return web.json_response(payload, status=error.status, headers=error.headers)


async def _body(request: web.Request, schema: Schema) -> dict:
    return schema.load(await read_json(request))


@client_call("start")
@documented(
    "Legacy: start a session (older server's fields)",
    tag="legacy",
    legacy=True,
    body=LegacyStartSchema,
    errors=("SESSION_LIMIT_REACHED", "LICENSE_NOT_FOUND", "VERSION_TOO_OLD"),
)
async def session_start(request: web.Request) -> web.Response:
    body = await _body(request, LegacyStartSchema())
    answer = await sessions.start_session(
        deps_of(request),
        request_product(request),
        license_key=body["license_key"],
        hardware_id=body["hardware_hash"],
        client_version=body["version"],
        machine_name=body["machine_id"],
        ip=get_client_ip(request),
    )
    update = answer["update"] or {}
    product = request_product(request)
    return success(
        session_token=answer["session_token"],
        heartbeat_interval=answer["heartbeat_interval"],
        session_timeout=answer["session_timeout"],
        update_available=bool(update),
        current_version=product.current_version,
        whats_new=update.get("whats_new"),
        download_url=update.get("download_url"),
    )


@client_call()
@documented(
    "Legacy: heartbeat",
    tag="legacy",
    legacy=True,
    body=LegacyHeartbeatSchema,
    errors=("SESSION_EXPIRED", "SESSION_TERMINATED"),
)
async def session_heartbeat(request: web.Request) -> web.Response:
    body = await _body(request, LegacyHeartbeatSchema())
    product = request_product(request)
    await sessions.heartbeat(deps_of(request).live, product, body["session_token"], int(time.time() * 1000))
    return success(heartbeat_interval=product.heartbeat_interval)


@client_call("end")
@documented(
    "Legacy: end a session",
    tag="legacy",
    legacy=True,
    body=LegacyHeartbeatSchema,
    errors=("SESSION_EXPIRED",),
)
async def session_end(request: web.Request) -> web.Response:
    body = await _body(request, LegacyHeartbeatSchema())
    await sessions.end_session(deps_of(request), request_product(request), body["session_token"])
    return success()


@client_call("validate")
@documented(
    "Legacy: verify a license",
    tag="legacy",
    legacy=True,
    body=LegacyLicenseSchema,
    errors=("LICENSE_NOT_FOUND", "DEVICE_NOT_ACTIVATED", "HARDWARE_MISMATCH"),
)
async def verify(request: web.Request) -> web.Response:
    body = await _body(request, LegacyLicenseSchema())
    view = await licensing.validate(
        deps_of(request), request_product(request), body["license_key"], body["hardware_hash"]
    )
    return success(valid=True, expires_at=view["expires_at"])


@client_call("activate")
@documented(
    "Legacy: activate a device",
    tag="legacy",
    legacy=True,
    body=LegacyActivateSchema,
    errors=("LICENSE_NOT_FOUND", "DEVICE_LIMIT_REACHED"),
)
async def activate(request: web.Request) -> web.Response:
    body = await _body(request, LegacyActivateSchema())
    view = await licensing.activate(
        deps_of(request),
        request_product(request),
        body["license_key"],
        body["hardware_hash"],
        machine_name=body["machine_id"],
        client_version=body["version"],
        ip=get_client_ip(request),
    )
    return success(
        activated=True,
        expires_at=view.get("expires_at"),
        devices_used=view.get("devices_used"),
        max_devices=view.get("max_devices"),
    )


def create_legacy_app() -> web.Application:
    legacy = web.Application(middlewares=[legacy_errors, client_rules_middleware])
    legacy.add_routes(
        [
            web.post("/session/start", session_start),
            web.post("/session/heartbeat", session_heartbeat),
            web.post("/session/end", session_end),
            web.post("/verify", verify),
            web.post("/activate", activate),
        ]
    )
    return legacy
