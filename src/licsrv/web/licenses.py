"""License pages: search, create, detail (devices, live sessions, history) and the actions on one license."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from licsrv.admin_api.licenses import ExtendSchema, LicenseCreateSchema, LicenseUpdateSchema
from licsrv.domain import PAGE_SIZE
from licsrv.errors import ApiError
from licsrv.services import licenses, privacy, sessions
from licsrv.state import deps_of
from licsrv.web.forms import load_form
from licsrv.web.render import flash_error, form, page, requires
from licsrv.web.session import actor_of

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
    deps = deps_of(request)
    q = request.query.get("q", "")[:200]
    try:
        rows, cursor = await licenses.search_licenses(deps, q, request.query.get("cursor"), PAGE_SIZE)
    except ApiError:
        rows, cursor = await licenses.search_licenses(deps, q, None, PAGE_SIZE)
    return page(
        request, "admin/licenses.html", licenses=rows, next_cursor=cursor, q=q, products=deps.products.all()
    )


@requires("operator")
async def license_create(request: web.Request) -> web.Response:
    data = await form(request)
    deps = deps_of(request)
    try:
        fields = load_form(LicenseCreateSchema(), data, CREATE_FIELDS)
        detail = await licenses.create_license(deps, fields.pop("product_id"), fields, actor_of(request))
    except ApiError as exc:
        rows, cursor = await licenses.search_licenses(deps, None, None, PAGE_SIZE)
        return page(
            request,
            "admin/licenses.html",
            status=exc.status,
            error=flash_error(exc),
            licenses=rows,
            next_cursor=cursor,
            q="",
            products=deps.products.all(),
        )
    raise web.HTTPSeeOther(f"/admin/licenses/{detail['id']}")


async def license_detail(request: web.Request, error: str | None = None, status: int = 200) -> web.Response:
    license_id = int(request.match_info["id"])
    deps = deps_of(request)
    detail = await licenses.license_detail(deps, license_id)
    live = await sessions.live_sessions(deps, license_id=license_id)
    recent = await sessions.history(
        deps, license_id=license_id, since=deps.now() - timedelta(days=30), limit=20
    )
    return page(
        request,
        "admin/license.html",
        status=status,
        license=detail,
        live=live.sessions,
        history=recent,
        error=error,
        message=DONE.get(request.query.get("done", "")),
    )


STATUS_BY_ACTION = {"suspend": "suspended", "resume": "active", "revoke": "revoked"}
DONE = {"erase-personal-data": "Personal data erased: customer, notes, machine names and IP addresses."}


@requires("operator")
async def license_action(request: web.Request) -> web.Response:
    license_id = int(request.match_info["id"])
    action = request.match_info["action"]
    data = await form(request)
    deps, actor = deps_of(request), actor_of(request)
    try:
        if action in STATUS_BY_ACTION:
            await licenses.set_status(deps, license_id, STATUS_BY_ACTION[action], actor)
        elif action == "extend":
            days = load_form(ExtendSchema(), data, ("days",))["days"]
            await licenses.extend(deps, license_id, days, actor)
        elif action == "reset-devices":
            await licenses.reset_devices(deps, license_id, actor)
        elif action == "remove-device":
            await licenses.remove_device(deps, license_id, _int(data.get("device_id", ""), 0), actor)
        elif action == "erase-personal-data":
            await privacy.erase_personal_data(deps, license_id, actor)
        elif action == "edit":
            changes = load_form(LicenseUpdateSchema(), data, EDIT_FIELDS)
            await licenses.update(deps, license_id, changes, actor)
        else:
            raise web.HTTPNotFound()
    except ApiError as exc:
        return await license_detail(request, error=flash_error(exc), status=exc.status)
    done = f"?done={action}" if action in DONE else ""
    raise web.HTTPSeeOther(f"/admin/licenses/{license_id}{done}")
