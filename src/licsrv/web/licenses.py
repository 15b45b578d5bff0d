"""License pages: search, create, detail (devices, live sessions, history) and the actions on one license."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp import web
from marshmallow import ValidationError

from licsrv.admin_api.licenses import ExtendSchema, LicenseCreateSchema, LicenseUpdateSchema
from licsrv.domain import PAGE_SIZE
from licsrv.envelope import as_api_error
from licsrv.errors import ApiError
from licsrv.services import licenses, plans, privacy, sessions
from licsrv.state import deps_of
from licsrv.web.flash import done
from licsrv.web.forms import kv_rows, load_form, parse_kv
from licsrv.web.render import flash_error, form, page, requires
from licsrv.web.scope import scoped_product_id
from licsrv.web.session import actor_of

EDIT_FIELDS = ("customer_name", "customer_email", "max_devices", "max_sessions", "notes")
CREATE_FIELDS = (*EDIT_FIELDS, "duration_days", "product_id", "plan_id")


def _int(value: str, default: int | None = None) -> int | None:
    value = value.strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ApiError("VALIDATION_ERROR", f"{value!r} is not a number.") from None


async def _list_page(
    request: web.Request, q: str, cursor: str | None, status: int = 200, **extra: Any
) -> web.Response:
    deps = deps_of(request)
    scoped = scoped_product_id(request)
    try:
        rows, next_cursor = await licenses.search_licenses(deps, q, cursor, PAGE_SIZE, scoped)
    except ApiError:
        rows, next_cursor = await licenses.search_licenses(deps, q, None, PAGE_SIZE, scoped)
    return page(
        request,
        "admin/licenses.html",
        status=status,
        licenses=rows,
        next_cursor=next_cursor,
        q=q,
        products=[p for p in deps.products.all() if p.archived_at is None],
        plans=await plans.list_plans(deps, scoped, include_archived=False),
        default_product=scoped,
        scoped_page=True,
        **extra,
    )


async def license_list(request: web.Request) -> web.Response:
    return await _list_page(request, request.query.get("q", "")[:200], request.query.get("cursor"))


@requires("operator")
async def license_create(request: web.Request) -> web.Response:
    data = await form(request)
    features = kv_rows(await request.post(), "features")
    deps = deps_of(request)
    try:
        fields = load_form(LicenseCreateSchema(), data, CREATE_FIELDS)
        fields["features"] = parse_kv(features, "Features") or None  # none typed: the plan's, if any
        detail = await licenses.create_license(deps, fields.pop("product_id"), fields, actor_of(request))
    except (ApiError, ValidationError) as exc:  # the form again, as typed, with the reason in words
        error = as_api_error(exc, request)
        return await _list_page(
            request, "", None, error.status, error=flash_error(error), typed={**data, "features": features}
        )
    raise done(request, f"/admin/licenses/{detail['id']}", f"License {detail['key']} created.")


async def license_detail(
    request: web.Request, error: str | None = None, status: int = 200, typed: dict | None = None
) -> web.Response:
    license_id = int(request.match_info["id"])
    deps = deps_of(request)
    detail = await licenses.license_detail(deps, license_id)
    plan = await plans.find_plan(deps, detail["plan_id"]) if detail.get("plan_id") else None
    live = await sessions.live_sessions(deps, license_id=license_id)
    recent = await sessions.history(
        deps, license_id=license_id, since=deps.now() - timedelta(days=30), limit=20
    )
    return page(
        request,
        "admin/license.html",
        status=status,
        license=detail,
        plan=plan,
        live=live.sessions,
        history=recent,
        error=error,
        typed=typed,
    )


STATUS_BY_ACTION = {"suspend": "suspended", "resume": "active", "revoke": "revoked"}
DONE_BY_ACTION = {
    "suspend": "License suspended; its live sessions ended.",
    "resume": "License resumed.",
    "revoke": "License revoked.",
    "reset-devices": "All devices removed; their slots are free.",
    "remove-device": "Device removed; its slot is free.",
    "edit": "License saved.",
    "erase-personal-data": "Personal data erased: customer, notes, machine names and IP addresses.",
}


@requires("operator")
async def license_action(request: web.Request) -> web.Response:
    license_id = int(request.match_info["id"])
    action = request.match_info["action"]
    data = await form(request)
    deps, actor = deps_of(request), actor_of(request)
    message = DONE_BY_ACTION.get(action, "")
    try:
        if action in STATUS_BY_ACTION:
            await licenses.set_status(deps, license_id, STATUS_BY_ACTION[action], actor)
        elif action == "extend":
            days = load_form(ExtendSchema(), data, ("days",))["days"]
            await licenses.extend(deps, license_id, days, actor)
            message = f"License extended by {days} days."
        elif action == "reset-devices":
            await licenses.reset_devices(deps, license_id, actor)
        elif action == "remove-device":
            await licenses.remove_device(deps, license_id, _int(data.get("device_id", ""), 0), actor)
        elif action == "erase-personal-data":
            await privacy.erase_personal_data(deps, license_id, actor)
        elif action == "edit":
            changes = load_form(LicenseUpdateSchema(), data, EDIT_FIELDS)
            posted = await request.post()
            if "features.name" in posted:  # the form's key/value editor (all rows emptied: no features)
                changes["features"] = parse_kv(kv_rows(posted, "features"), "Features")
            await licenses.update(deps, license_id, changes, actor)
        else:
            raise web.HTTPNotFound()
    except (ApiError, ValidationError) as exc:
        error = as_api_error(exc, request)
        typed = data if action == "edit" else None
        return await license_detail(request, error=flash_error(error), status=error.status, typed=typed)
    raise done(request, f"/admin/licenses/{license_id}", message)
