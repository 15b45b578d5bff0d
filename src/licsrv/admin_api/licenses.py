"""Management API: licenses (create, search, get, update, suspend, resume, revoke, extend, devices)."""

from __future__ import annotations

from datetime import UTC

from aiohttp import web
from marshmallow import RAISE, Schema, fields, validate

from licsrv.admin_api.auth import request_actor
from licsrv.bounded import CUSTOMER_EMAIL, MOMENT, Features
from licsrv.envelope import load_body, load_query, ok, ok_page
from licsrv.openapi import documented
from licsrv.services import licenses, privacy
from licsrv.services.license_keys import IMPORTED_KEY, IMPORTED_KEY_RULE
from licsrv.state import deps_of

NAME = validate.Length(max=200)


class Strict(Schema):
    class Meta:
        unknown = RAISE


class LicenseCreateSchema(Strict):
    """Limits, features and expiry left out come from `plan_id`'s plan, else the defaults (1 device, the
    product's sessions, no features, no expiry); so they have no load_default here."""

    product_id = fields.Integer(load_default=1, validate=validate.Range(min=1, max=2**62))
    key = fields.String(
        load_default=None,
        validate=validate.Regexp(IMPORTED_KEY, error=f"{IMPORTED_KEY_RULE}."),
        metadata={"description": "import an existing key, kept exactly as given (else one is generated)"},
    )
    plan_id = fields.Integer(
        load_default=None,
        allow_none=True,
        validate=validate.Range(min=1, max=2**62),
        metadata={"description": "copy max_devices, max_sessions, duration and features from this plan"},
    )
    customer_name = fields.String(load_default="", validate=NAME)
    customer_email = fields.String(load_default="", validate=CUSTOMER_EMAIL)
    max_devices = fields.Integer(
        load_default=None,
        validate=validate.Range(min=0, max=100000),
        metadata={"description": "1 (or the plan's) when absent"},
    )
    max_sessions = fields.Integer(
        load_default=None, allow_none=True, validate=validate.Range(min=1, max=10000)
    )
    duration_days = fields.Integer(
        load_default=None, allow_none=True, validate=validate.Range(min=1, max=36500)
    )
    expires_at = fields.AwareDateTime(
        load_default=None, allow_none=True, default_timezone=UTC, validate=MOMENT
    )
    features = Features(load_default=None, metadata={"description": "none (or the plan's) when absent"})
    notes = fields.String(load_default="", validate=validate.Length(max=5000))


class LicenseUpdateSchema(Strict):
    customer_name = fields.String(validate=NAME)
    customer_email = fields.String(validate=CUSTOMER_EMAIL)
    max_devices = fields.Integer(validate=validate.Range(min=0, max=100000))
    max_sessions = fields.Integer(allow_none=True, validate=validate.Range(min=1, max=10000))
    expires_at = fields.AwareDateTime(allow_none=True, default_timezone=UTC, validate=MOMENT)
    features = Features()
    notes = fields.String(validate=validate.Length(max=5000))


class ExtendSchema(Strict):
    days = fields.Integer(required=True, validate=validate.Range(min=1, max=36500))


class ListQuerySchema(Strict):
    q = fields.String(load_default=None, validate=validate.Length(max=200))
    cursor = fields.String(load_default=None, validate=validate.Length(max=100))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    product_id = fields.Integer(load_default=None, validate=validate.Range(min=1, max=2**62))


class DeviceSchema(Schema):
    id = fields.Integer()
    hardware_id = fields.String()
    machine_name = fields.String()
    first_ip = fields.String(allow_none=True)
    last_ip = fields.String(allow_none=True)
    client_version = fields.String()
    first_seen_at = fields.DateTime()
    last_seen_at = fields.DateTime()


class LicenseSchema(Schema):
    id = fields.Integer()
    key = fields.String()
    product_id = fields.Integer()
    plan_id = fields.Integer(allow_none=True)
    customer_name = fields.String()
    customer_email = fields.String()
    status = fields.String()
    max_devices = fields.Integer()
    devices_used = fields.Integer()
    max_sessions = fields.Integer(allow_none=True)
    features = fields.Dict()
    notes = fields.String()
    duration_days = fields.Integer(allow_none=True)
    activated_at = fields.DateTime(allow_none=True)
    expires_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    personal_data_erased_at = fields.DateTime(allow_none=True)
    devices = fields.List(fields.Nested(DeviceSchema))


class ErasureSchema(Schema):
    license_id = fields.Integer()
    devices = fields.Integer(metadata={"description": "devices whose machine name and IPs were blanked"})
    session_history = fields.Integer()
    cards = fields.Integer()
    security_events = fields.Integer()
    audit_rows = fields.Integer()
    webhook_events = fields.Integer()
    mail = fields.Integer()
    portal_account = fields.String(metadata={"description": "`erased`, `detached` or `none`"})


LICENSE = LicenseSchema()
LICENSES = LicenseSchema(many=True, exclude=("devices",))


def _id(request: web.Request, name: str = "id") -> int:
    return int(request.match_info[name])


@documented(
    "Create a license",
    tag="admin: licenses",
    body=LicenseCreateSchema,
    answer=LicenseSchema,
    status=201,
    errors=(
        "FORBIDDEN",
        "LICENSE_KEY_TAKEN",
        "UNKNOWN_REFERENCE",
        "PRODUCT_ARCHIVED",
        "PLAN_NOT_FOUND",
        "PLAN_ARCHIVED",
        "PLAN_OF_ANOTHER_PRODUCT",
    ),
)
async def create(request: web.Request) -> web.Response:
    body = await load_body(request, LicenseCreateSchema())
    detail = await licenses.create_license(
        deps_of(request), body.pop("product_id"), body, request_actor(request)
    )
    return ok(LICENSE.dump(detail), status=201)


@documented(
    "Search licenses (key, customer, email) with a cursor",
    tag="admin: licenses",
    query=ListQuerySchema,
    answer=LicenseSchema(many=True, exclude=("devices",)),
)
async def list_licenses(request: web.Request) -> web.Response:
    query = load_query(request, ListQuerySchema())
    page, cursor = await licenses.search_licenses(deps_of(request), **query)
    return ok_page(LICENSES.dump(page), cursor)


@documented(
    "A license with its devices", tag="admin: licenses", answer=LicenseSchema, errors=("LICENSE_NOT_FOUND",)
)
async def get_license(request: web.Request) -> web.Response:
    return ok(LICENSE.dump(await licenses.license_detail(deps_of(request), _id(request))))


@documented(
    "Update a license",
    tag="admin: licenses",
    body=LicenseUpdateSchema,
    answer=LicenseSchema,
    errors=("LICENSE_NOT_FOUND",),
)
async def update(request: web.Request) -> web.Response:
    body = await load_body(request, LicenseUpdateSchema())
    detail = await licenses.update(deps_of(request), _id(request), body, request_actor(request))
    return ok(LICENSE.dump(detail))


def _status_change(status: str):
    verb = {"suspended": "Suspend", "active": "Resume", "revoked": "Revoke"}[status]

    @documented(
        f"{verb} a license (blocking ends its live sessions)",
        tag="admin: licenses",
        answer=LicenseSchema,
        errors=("LICENSE_NOT_FOUND", "CONFLICT"),
    )
    async def handler(request: web.Request) -> web.Response:
        detail = await licenses.set_status(deps_of(request), _id(request), status, request_actor(request))
        return ok(LICENSE.dump(detail))

    return handler


@documented(
    "Extend a license by days",
    tag="admin: licenses",
    body=ExtendSchema,
    answer=LicenseSchema,
    errors=("LICENSE_NOT_FOUND",),
)
async def extend(request: web.Request) -> web.Response:
    days = (await load_body(request, ExtendSchema()))["days"]
    detail = await licenses.extend(deps_of(request), _id(request), days, request_actor(request))
    return ok(LICENSE.dump(detail))


@documented(
    "Remove a device (frees the slot, ends its sessions)",
    tag="admin: licenses",
    answer=LicenseSchema,
    errors=("NOT_FOUND",),
)
async def remove_device(request: web.Request) -> web.Response:
    detail = await licenses.remove_device(
        deps_of(request), _id(request), _id(request, "device_id"), request_actor(request)
    )
    return ok(LICENSE.dump(detail))


@documented(
    "Remove every device of a license",
    tag="admin: licenses",
    answer=LicenseSchema,
    errors=("LICENSE_NOT_FOUND",),
)
async def reset_devices(request: web.Request) -> web.Response:
    detail = await licenses.reset_devices(deps_of(request), _id(request), request_actor(request))
    return ok(LICENSE.dump(detail))


@documented(
    "Erase the license's personal data everywhere (owner only; the license keeps working)",
    tag="admin: licenses",
    answer=ErasureSchema,
    errors=("FORBIDDEN", "LICENSE_NOT_FOUND"),
)
async def erase_personal_data(request: web.Request) -> web.Response:
    erased = await privacy.erase_personal_data(deps_of(request), _id(request), request_actor(request))
    return ok(ErasureSchema().dump(erased))


ID = r"{id:\d{1,18}}"


def routes() -> list[web.RouteDef]:
    return [
        web.post("/licenses", create),
        web.get("/licenses", list_licenses),
        web.get(f"/licenses/{ID}", get_license),
        web.patch(f"/licenses/{ID}", update),
        web.post(f"/licenses/{ID}/suspend", _status_change("suspended")),
        web.post(f"/licenses/{ID}/resume", _status_change("active")),
        web.post(f"/licenses/{ID}/revoke", _status_change("revoked")),
        web.post(f"/licenses/{ID}/extend", extend),
        web.post(f"/licenses/{ID}/reset-devices", reset_devices),
        web.post(f"/licenses/{ID}/erase-personal-data", erase_personal_data),
        web.delete(f"/licenses/{ID}/devices/{{device_id:\\d{{1,18}}}}", remove_device),
    ]
