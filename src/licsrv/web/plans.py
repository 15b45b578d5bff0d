"""The plans page: a product's license templates, created, edited (features in the key/value editor) and
archived; the list follows the product chosen in the header."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from marshmallow import ValidationError

from licsrv.admin_api.plans import PlanCreateSchema, PlanUpdateSchema
from licsrv.envelope import as_api_error
from licsrv.errors import ApiError
from licsrv.services import plans
from licsrv.state import deps_of
from licsrv.web.forms import kv_rows, load_form, parse_kv
from licsrv.web.render import flash_error, page, requires
from licsrv.web.scope import scoped_product_id
from licsrv.web.session import actor_of

PLAN_FIELDS = ("name", "max_devices", "max_sessions", "duration_days")


async def plan_list(
    request: web.Request,
    status: int = 200,
    typed: dict[str, Any] | None = None,
    editing_id: int | None = None,
    **extra: Any,
) -> web.Response:
    deps = deps_of(request)
    scoped = scoped_product_id(request)
    found = await plans.list_plans(deps, scoped)
    if editing_id is None and request.query.get("edit", "").isdigit() and len(request.query["edit"]) <= 18:
        editing_id = int(request.query["edit"])
    editing = next((p for p in found if p["id"] == editing_id and p["archived_at"] is None), None)
    return page(
        request,
        "admin/plans.html",
        status=status,
        plans=found,
        editing=editing,
        typed=typed or {},
        products=[p for p in deps.products.all() if p.archived_at is None],
        default_product=scoped,
        scoped_page=True,
        **extra,
    )


async def _plan_form(
    request: web.Request, names: tuple[str, ...]
) -> tuple[dict[str, str], list[tuple[str, str]]]:
    data = await request.post()
    return {name: str(data.get(name, "")) for name in names}, kv_rows(data, "features")


def _typed(fields: dict[str, str], features: list[tuple[str, str]]) -> dict[str, Any]:
    return {**fields, "features": features}


@requires("operator")
async def plan_create(request: web.Request) -> web.Response:
    fields, features = await _plan_form(request, (*PLAN_FIELDS, "product_id"))
    try:
        values = load_form(PlanCreateSchema(), fields, (*PLAN_FIELDS, "product_id"))
        values["features"] = parse_kv(features, "Features")
        plan = await plans.create_plan(deps_of(request), values.pop("product_id"), values, actor_of(request))
    except (ApiError, ValidationError) as exc:
        error = as_api_error(exc, request)
        return await plan_list(
            request, error.status, typed=_typed(fields, features), error=flash_error(error)
        )
    return await plan_list(request, message=f"Plan {plan['name']} created.")


@requires("operator")
async def plan_update(request: web.Request) -> web.Response:
    fields, features = await _plan_form(request, PLAN_FIELDS)
    plan_id = int(request.match_info["id"])
    try:
        values = load_form(PlanUpdateSchema(), fields, PLAN_FIELDS)
        values["features"] = parse_kv(features, "Features")
        plan = await plans.change_plan(deps_of(request), plan_id, values, actor_of(request))
    except (ApiError, ValidationError) as exc:
        error = as_api_error(exc, request)
        return await plan_list(
            request,
            error.status,
            typed=_typed(fields, features),
            editing_id=plan_id,
            error=flash_error(error),
        )
    return await plan_list(
        request, message=f"Plan {plan['name']} saved; licenses made from it before keep their values."
    )


@requires("operator")
async def plan_archive(request: web.Request) -> web.Response:
    try:
        plan = await plans.retire_plan(deps_of(request), int(request.match_info["id"]), actor_of(request))
    except ApiError as exc:
        return await plan_list(request, exc.status, error=flash_error(exc))
    return await plan_list(request, message=f"Plan {plan['name']} archived: nothing new is made from it.")
