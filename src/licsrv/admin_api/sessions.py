"""Management API: live sessions (list, terminate) and session history."""

from __future__ import annotations

from datetime import UTC

from aiohttp import web
from marshmallow import RAISE, Schema, fields, validate

from licsrv.admin_api.auth import request_actor
from licsrv.domain import END_REASONS, MAX_PAGE_SIZE, PAGE_SIZE
from licsrv.envelope import load_query, ok, ok_page
from licsrv.openapi import documented
from licsrv.services import sessions
from licsrv.state import deps_of


class SessionBaseSchema(Schema):
    id = fields.String()
    license_id = fields.Integer()
    license_key = fields.String()
    customer_name = fields.String()
    hardware_id = fields.String()
    ip = fields.String(allow_none=True)
    client_version = fields.String()
    started_at = fields.DateTime()
    last_heartbeat_at = fields.DateTime(allow_none=True)


class LiveSessionSchema(SessionBaseSchema):
    expires_at = fields.DateTime()


class HistorySchema(SessionBaseSchema):
    ended_at = fields.DateTime(allow_none=True)
    end_reason = fields.String(allow_none=True)


class SessionsQuerySchema(Schema):
    class Meta:
        unknown = RAISE

    license_id = fields.Integer(load_default=None, validate=validate.Range(min=1, max=2**62))
    product_id = fields.Integer(load_default=None, validate=validate.Range(min=1, max=2**62))
    cursor = fields.String(load_default=None, validate=validate.Length(max=200))
    limit = fields.Integer(load_default=PAGE_SIZE, validate=validate.Range(min=1, max=MAX_PAGE_SIZE))


class HistoryQuerySchema(Schema):
    class Meta:
        unknown = RAISE

    license_id = fields.Integer(load_default=None, validate=validate.Range(min=1, max=2**62))
    license_key = fields.String(
        load_default=None,
        validate=validate.Length(min=1, max=100),
        metadata={"description": "the license's key; an unknown key answers 404 LICENSE_NOT_FOUND"},
    )
    since = fields.AwareDateTime(load_default=None, default_timezone=UTC)
    until = fields.AwareDateTime(load_default=None, default_timezone=UTC)
    end_reason = fields.String(load_default=None, validate=validate.OneOf(END_REASONS))
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))


LIVE_SESSIONS = LiveSessionSchema(many=True)
HISTORY = HistorySchema(many=True)


@documented(
    "Live sessions", tag="admin: sessions", query=SessionsQuerySchema, answer=LiveSessionSchema(many=True)
)
async def list_sessions(request: web.Request) -> web.Response:
    query = load_query(request, SessionsQuerySchema())
    found = await sessions.live_sessions(deps_of(request), **query)
    return ok_page(LIVE_SESSIONS.dump(found.sessions), found.next_cursor)


@documented("Terminate a live session (forced)", tag="admin: sessions", errors=("NOT_FOUND", "FORBIDDEN"))
async def terminate(request: web.Request) -> web.Response:
    ended = await sessions.terminate_session(
        deps_of(request), request.match_info["id"], request_actor(request)
    )
    return ok(ended)


@documented(
    "Session history (last 24 h by default)",
    tag="admin: sessions",
    query=HistoryQuerySchema,
    answer=HistorySchema(many=True),
    errors=("LICENSE_NOT_FOUND",),
)
async def list_history(request: web.Request) -> web.Response:
    query = load_query(request, HistoryQuerySchema())
    rows = await sessions.history(deps_of(request), **query)
    return ok(HISTORY.dump(rows))


def routes() -> list[web.RouteDef]:
    return [
        web.get("/sessions", list_sessions),
        web.delete(r"/sessions/{id:[A-Za-z0-9_-]{16}}", terminate),
        web.get("/history", list_history),
    ]
