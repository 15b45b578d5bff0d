"""License pages: search, create, detail (devices, live sessions, history) and the actions on one license."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiohttp import web

from licsrv.admin_api.licenses import ExtendSchema, LicenseCreateSchema, LicenseUpdateSchema
from licsrv.errors import ApiError
from licsrv.services import licenses, sessions
from licsrv.services.products import list_products
from licsrv.state import DB, LIVE, LIVE_CONTROL, PRODUCTS
from licsrv.web.forms import load_form
from licsrv.web.render import flash_error, form, page, requires
from licsrv.web.session import actor_of

PAGE_SIZE = 50
EDIT_FIELDS = ("customer_name", "customer_email", "max_devices", "max_sessions", "notes")
CREATE_FIELDS = (*EDIT_FIELDS, "duration_days", "product_id")


def _int(value: str, default: int | None = None) -> int | None:
    value = value.strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ApiError("VALIDATION_ERROR", f"{value!r} is not a number.") from None


async def license_list(request: web.Request) -> web.Response:
    db = request.config_dict[DB]
    q = request.query.get("q", "")[:200]
    async with db.connection() as conn:
        try:
            rows, cursor = await licenses.search_licenses(
                conn, db.q, q, request.query.get("cursor"), PAGE_SIZE
            )
        except ApiError:
            rows, cursor = await licenses.search_licenses(conn, db.q, q, None, PAGE_SIZE)
        products = await list_products(conn, db.q)
    return page(request, "admin/licenses.html", licenses=rows, next_cursor=cursor, q=q, products=products)


@requires("operator")
async def license_create(request: web.Request) -> web.Response:
    data = await form(request)
    db = request.config_dict[DB]
    async with db.connection() as conn:
        try:
            fields = load_form(LicenseCreateSchema(), data, CREATE_FIELDS)
            row = await licenses.create_license(
                conn, db.q, fields.pop("product_id"), fields, actor_of(request)
            )
        except ApiError as exc:
            rows, cursor = await licenses.search_licenses(conn, db.q, None, None, PAGE_SIZE)
            products = await list_products(conn, db.q)
            return page(
                request,
                "admin/licenses.html",
                status=exc.status,
                error=flash_error(exc),
                licenses=rows,
                next_cursor=cursor,
                q="",
                products=products,
            )
    raise web.HTTPSeeOther(f"/admin/licenses/{row['id']}")


async def license_detail(request: web.Request, error: str | None = None, status: int = 200) -> web.Response:
    license_id = int(request.match_info["id"])
    db = request.config_dict[DB]
    now = datetime.now(UTC)
    async with db.connection() as conn:
        detail = await licenses.license_detail(conn, db.q, license_id)
    live = await sessions.live_sessions(
        db, request.config_dict[LIVE], request.config_dict[PRODUCTS], now, license_id
    )
    recent = await sessions.history(
        db,
        request.config_dict[LIVE],
        request.config_dict[PRODUCTS],
        now,
        license_id=license_id,
        since=now - timedelta(days=30),
        limit=20,
    )
    return page(
        request, "admin/license.html", status=status, license=detail, live=live, history=recent, error=error
    )


@requires("operator")
async def license_action(request: web.Request) -> web.Response:
    license_id = int(request.match_info["id"])
    action = request.match_info["action"]
    data = await form(request)
    db = request.config_dict[DB]
    actor, live = actor_of(request), request.config_dict[LIVE_CONTROL]
    async with db.connection() as conn:
        try:
            if action in ("suspend", "resume", "revoke"):
                status = {"suspend": "suspended", "resume": "active", "revoke": "revoked"}[action]
                await licenses.set_status(conn, db.q, license_id, status, actor, live)
            elif action == "extend":
                days = load_form(ExtendSchema(), data, ("days",))["days"]
                await licenses.extend(conn, db.q, license_id, days, actor, datetime.now(UTC))
            elif action == "reset-devices":
                await licenses.reset_devices(conn, db.q, license_id, actor, live)
            elif action == "remove-device":
                await licenses.remove_device(
                    conn, db.q, license_id, _int(data.get("device_id", ""), 0), actor, live
                )
            elif action == "edit":
                changes = load_form(LicenseUpdateSchema(), data, EDIT_FIELDS)
                await licenses.update(conn, db.q, license_id, changes, actor)
            else:
                raise web.HTTPNotFound()
        except ApiError as exc:
            return await license_detail(request, error=flash_error(exc), status=exc.status)
    raise web.HTTPSeeOther(f"/admin/licenses/{license_id}")
