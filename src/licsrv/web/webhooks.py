"""The webhooks page: endpoints (create with the secret shown once, send a test, rotate, enable/disable,
delete) and the delivery attempts of one endpoint, each resendable. Changes are the owner's."""

from __future__ import annotations

from aiohttp import web

from licsrv.errors import ApiError
from licsrv.state import deps_of
from licsrv.web.render import flash_error, page, requires
from licsrv.web.session import actor_of
from licsrv.webhooks import endpoints
from licsrv.webhooks.catalogue import EVENT_TYPES


def _id(request: web.Request) -> int:
    return int(request.match_info["id"])


async def webhook_page(
    request: web.Request,
    *,
    selected: int | None = None,
    secret: dict | None = None,
    error: str | None = None,
    status: int = 200,
) -> web.Response:
    deps = deps_of(request)
    found = await endpoints.list_endpoints(deps)
    if selected is None and request.query.get("endpoint", "").isdigit():
        selected = int(request.query["endpoint"])
    current = next((e for e in found if e["id"] == selected), found[0] if found else None)
    attempts = await endpoints.attempts(deps, current["id"]) if current else []
    return page(
        request,
        "admin/webhooks.html",
        status=status,
        endpoints=found,
        current=current,
        attempts=attempts,
        secret=secret,
        event_types=EVENT_TYPES,
        error=error,
        message=request.query.get("message"),
    )


@requires("owner")
async def create(request: web.Request) -> web.Response:
    data = await request.post()
    fields = {
        "url": str(data.get("url", ""))[:2000],
        "events": [str(e) for e in data.getall("events", [])],
        "description": str(data.get("description", ""))[:500],
    }
    try:
        created = await endpoints.create_endpoint(deps_of(request), actor_of(request), fields)
    except ApiError as exc:
        return await webhook_page(request, error=flash_error(exc), status=exc.status)
    return await webhook_page(request, selected=created["id"], secret=created)


@requires("owner")
async def action(request: web.Request) -> web.Response:
    deps, actor, endpoint_id = deps_of(request), actor_of(request), _id(request)
    name = request.match_info["action"]
    message = ""
    try:
        if name == "test":
            await endpoints.send_test(deps, actor, endpoint_id)
            message = "Test event queued."
        elif name == "rotate":
            rotated = await endpoints.rotate_secret(deps, actor, endpoint_id)
            return await webhook_page(request, selected=endpoint_id, secret=rotated)
        elif name in ("enable", "disable"):
            await endpoints.update_endpoint(deps, actor, endpoint_id, {"enabled": name == "enable"})
        elif name == "delete":
            await endpoints.delete_endpoint(deps, actor, endpoint_id)
            raise web.HTTPSeeOther("/admin/webhooks?message=Endpoint+deleted.")
        else:
            raise web.HTTPNotFound()
    except ApiError as exc:
        return await webhook_page(request, selected=endpoint_id, error=flash_error(exc), status=exc.status)
    raise web.HTTPSeeOther(f"/admin/webhooks?endpoint={endpoint_id}&message={message.replace(' ', '+')}")


@requires("owner")
async def resend(request: web.Request) -> web.Response:
    endpoint_id, delivery_id = _id(request), int(request.match_info["delivery_id"])
    try:
        await endpoints.resend(deps_of(request), actor_of(request), endpoint_id, delivery_id)
    except ApiError as exc:
        return await webhook_page(request, selected=endpoint_id, error=flash_error(exc), status=exc.status)
    raise web.HTTPSeeOther(f"/admin/webhooks?endpoint={endpoint_id}&message=Delivery+queued+again.")


def routes() -> list[web.RouteDef]:
    one = r"/webhooks/{id:\d{1,18}}"
    return [
        web.get("/webhooks", webhook_page),
        web.post("/webhooks", create),
        web.post(one + r"/deliveries/{delivery_id:\d{1,18}}/resend", resend),
        web.post(one + "/{action:[a-z]{1,10}}", action),
    ]
