"""Management API: `POST /licenses/import`, a CSV of licenses from an older system (docs/api.md)."""

from __future__ import annotations

from aiohttp import web
from marshmallow import RAISE, Schema, fields, validate

from licsrv.admin_api.auth import request_actor
from licsrv.bounded import read_text_body
from licsrv.envelope import load_query, ok
from licsrv.openapi import documented
from licsrv.services.license_import import import_licenses_csv
from licsrv.state import deps_of


class ImportQuerySchema(Schema):
    class Meta:
        unknown = RAISE

    product_id = fields.Integer(
        load_default=1,
        validate=validate.Range(min=1, max=2**62),
        metadata={"description": "the product of lines without a `product` (slug)"},
    )
    dry_run = fields.Boolean(
        load_default=False, metadata={"description": "check every line and write nothing"}
    )


class RefusalSchema(Schema):
    line = fields.Integer(metadata={"description": "as in the file; the header is line 1"})
    key = fields.String()
    code = fields.String()
    message = fields.String()


class ImportReportSchema(Schema):
    dry_run = fields.Boolean()
    created = fields.Integer()
    updated = fields.Integer()
    unchanged = fields.Integer()
    refused = fields.Integer()
    refusals = fields.List(fields.Nested(RefusalSchema), metadata={"description": "the first 1 000"})
    refusals_truncated = fields.Boolean()


REPORT = ImportReportSchema()


@documented(
    "Import licenses from a CSV file (keys kept; idempotent; dry_run writes nothing)",
    tag="admin: licenses",
    query=ImportQuerySchema,
    answer=ImportReportSchema,
    text_body="text/csv",
    errors=("UNKNOWN_REFERENCE", "PAYLOAD_TOO_LARGE"),
)
async def import_csv(request: web.Request) -> web.Response:
    query = load_query(request, ImportQuerySchema())
    deps = deps_of(request)
    text = await read_text_body(request, deps.settings.max_import_bytes)
    report = await import_licenses_csv(
        deps,
        text,
        default_product_id=query["product_id"],
        dry_run=query["dry_run"],
        actor=request_actor(request),
    )
    return ok(REPORT.dump(report.as_dict()))


def routes() -> list[web.RouteDef]:
    return [web.post("/licenses/import", import_csv)]
