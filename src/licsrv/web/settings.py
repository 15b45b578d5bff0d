"""Owner pages: product settings (with the API key, copy and Rotate), management tokens, admin users."""

from __future__ import annotations

from aiohttp import web
from marshmallow import ValidationError

from licsrv.admin_api.schemas import ProductUpdateSchema
from licsrv.domain import API_KEY_GRACE_DAYS
from licsrv.envelope import as_api_error
from licsrv.errors import ApiError
from licsrv.services import admins, products, tokens
from licsrv.services.rate_limits import GROUPS
from licsrv.state import DB, deps_of
from licsrv.web.flash import done
from licsrv.web.forms import kv_rows, parse_kv
from licsrv.web.render import flash_error, form, page, requires
from licsrv.web.session import actor_of


class AsTyped:
    """The product as the refused form had it: what was typed, else the stored value."""

    def __init__(self, product: products.Product, typed: dict[str, str]) -> None:
        self._product, self._typed = product, typed

    def __getattr__(self, name: str):
        if name == "require_signed_requests" and name not in self._typed:
            return False  # an unticked checkbox sends nothing
        return self._typed.get(name, getattr(self._product, name))


async def product_page(
    request: web.Request, error: str | None = None, status: int = 200, typed: dict | None = None, **extra
) -> web.Response:
    deps = deps_of(request)
    product = await products.find_product(deps, int(request.match_info.get("id", "1")))
    all_products = deps.products.all()
    typed = typed or {}
    return page(
        request,
        "admin/product.html",
        status=status,
        product=AsTyped(product, typed) if typed else product,
        products=all_products,
        error=error,
        content_key_fingerprint=deps.crypto.content_key_fingerprint(product),
        rate_limit_calls=sorted(GROUPS),
        **extra,
    )


@requires("owner")
async def product_update(request: web.Request) -> web.Response:
    data = await form(request)
    posted = await request.post()
    product_id = int(request.match_info["id"])
    try:
        # The management API's schema: the form is refused for the same reasons, in the same words.
        changes = ProductUpdateSchema().load(
            {
                **{name: data.get(name, "") for name in TEXT_SETTINGS},
                "session_policy": data.get("session_policy", "reject"),
                "max_sessions": data.get("max_sessions") or 1,
                "heartbeat_interval": data.get("heartbeat_interval") or 30,
                "session_timeout": data.get("session_timeout") or 60,
                "features": parse_kv(kv_rows(posted, "features"), "Feature flags"),
                "rate_limits": parse_kv(
                    kv_rows(posted, "rate_limits"), "Rate limits", typed=False, names=GROUPS
                ),
                "require_signed_requests": data.get("require_signed_requests") == "on",
            }
        )
        await products.change_product(deps_of(request), product_id, changes, actor_of(request))
    except (ApiError, ValidationError) as exc:
        error = as_api_error(exc, request)
        return await product_page(request, error=flash_error(error), status=error.status, typed=data)
    raise done(request, f"/admin/products/{product_id}", "Product settings saved.")


TEXT_SETTINGS = ("current_version", "minimum_version", "download_url", "whats_new")


@requires("owner")
async def product_rotate(request: web.Request) -> web.Response:
    data = await form(request)
    try:
        grace_days = int(data.get("grace_days") or API_KEY_GRACE_DAYS)
        await products.rotate_product_key(
            deps_of(request), int(request.match_info["id"]), actor_of(request), grace_days
        )
    except ValueError:
        return await product_page(request, error="The grace period is a number of days.", status=400)
    except ApiError as exc:
        return await product_page(request, error=flash_error(exc), status=exc.status)
    if grace_days:
        message = f"A new API key is active; the old one keeps working for {grace_days} days."
    else:
        message = "A new API key is active; the old one is refused from now on."
    raise done(request, f"/admin/products/{request.match_info['id']}", message)


@requires("owner")
async def product_retire_previous_key(request: web.Request) -> web.Response:
    await products.retire_product_key(deps_of(request), int(request.match_info["id"]), actor_of(request))
    raise done(
        request, f"/admin/products/{request.match_info['id']}", "The previous API key is refused from now on."
    )


async def token_list(request: web.Request, **extra) -> web.Response:
    db = request.config_dict[DB]
    async with db.connection() as conn:
        rows = await db.q.list_api_tokens(conn)
    return page(request, "admin/tokens.html", tokens=rows, **extra)


@requires("owner")
async def token_create(request: web.Request) -> web.Response:
    data = await form(request)
    db = request.config_dict[DB]
    try:
        async with db.connection() as conn:
            _, token = await tokens.create_token(
                conn, db.q, data.get("name", "")[:100], data.get("role", ""), actor_of(request)
            )
    except ApiError as exc:
        return await token_list(request, error=flash_error(exc), status=exc.status, typed=data)
    return await token_list(request, new_token=token, message="Token created.")


@requires("owner")
async def token_revoke(request: web.Request) -> web.Response:
    db = request.config_dict[DB]
    async with db.connection() as conn:
        await tokens.revoke_token(conn, db.q, int(request.match_info["id"]), actor_of(request))
    raise done(request, "/admin/tokens", "Token revoked; calls with it are refused from now on.")


async def admin_list(request: web.Request, **extra) -> web.Response:
    db = request.config_dict[DB]
    async with db.connection() as conn:
        rows = await db.q.list_admins(conn)
    return page(request, "admin/admins.html", admins=rows, **extra)


@requires("owner")
async def admin_create(request: web.Request) -> web.Response:
    data = await form(request)
    db = request.config_dict[DB]
    try:
        async with db.connection() as conn:
            await admins.create_admin(
                conn,
                db.q,
                data.get("username", ""),
                data.get("password", ""),
                data.get("role", ""),
                actor_of(request),
            )
    except ApiError as exc:
        return await admin_list(request, error=flash_error(exc), status=exc.status, typed=data)
    raise done(request, "/admin/admins", f"Admin {data.get('username', '')} created.")


@requires("owner")
async def admin_update(request: web.Request) -> web.Response:
    data = await form(request)
    db = request.config_dict[DB]
    admin_id = int(request.match_info["id"])
    try:
        async with db.connection() as conn:
            if data.get("new_password"):
                await admins.change_password(conn, db.q, admin_id, data["new_password"], actor_of(request))
            else:
                await admins.set_role(
                    conn,
                    db.q,
                    admin_id,
                    data.get("role", ""),
                    data.get("disabled") == "on",
                    actor_of(request),
                )
    except ApiError as exc:
        return await admin_list(request, error=flash_error(exc), status=exc.status)
    message = "Password changed." if data.get("new_password") else "Admin saved."
    raise done(request, "/admin/admins", message)
