"""Management API: the audit log and security events, newest first, with cursors."""

from __future__ import annotations

from aiohttp import web
from marshmallow import RAISE, Schema, fields, validate

from licsrv.envelope import load_query, ok_page
from licsrv.openapi import documented
from licsrv.services import records
from licsrv.state import deps_of


class RecordsQuerySchema(Schema):
    class Meta:
        unknown = RAISE

    cursor = fields.String(load_default=None, validate=validate.Length(max=100))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    kind = fields.String(load_default=None, validate=validate.Length(max=64))


class AuditSchema(Schema):
    id = fields.Integer()
    at = fields.DateTime()
    actor = fields.String()
    action = fields.String()
    object_type = fields.String()
    object_id = fields.String()
    before = fields.Raw(allow_none=True)
    after = fields.Raw(allow_none=True)
    ip = fields.String(allow_none=True)


class SecurityEventSchema(Schema):
    id = fields.Integer()
    at = fields.DateTime()
    kind = fields.String()
    details = fields.Dict()
    ip = fields.String(allow_none=True)
    product_id = fields.Integer(allow_none=True)


@documented("Audit log", tag="admin: records", query=RecordsQuerySchema, answer=AuditSchema(many=True))
async def audit(request: web.Request) -> web.Response:
    query = load_query(request, RecordsQuerySchema())
    rows, cursor = await records.audit_page(deps_of(request), query["cursor"], query["limit"])
    return ok_page(AuditSchema(many=True).dump(rows), cursor)


@documented(
    "Security events", tag="admin: records", query=RecordsQuerySchema, answer=SecurityEventSchema(many=True)
)
async def security_events(request: web.Request) -> web.Response:
    query = load_query(request, RecordsQuerySchema())
    rows, cursor = await records.security_page(
        deps_of(request), query["kind"], query["cursor"], query["limit"]
    )
    return ok_page(SecurityEventSchema(many=True).dump(rows), cursor)


def routes() -> list[web.RouteDef]:
    return [web.get("/audit", audit), web.get("/security-events", security_events)]
