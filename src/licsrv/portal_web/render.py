"""Rendering portal pages: the product from the URL, the customer's language, the CSRF cookie and field,
the nonce CSP, the sign-in cookie, and the generic form page every form but the licenses page uses."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from marshmallow import Schema, ValidationError

from licsrv.envelope import as_api_error
from licsrv.errors import ApiError
from licsrv.portal_web.words import Words
from licsrv.services.portal import accounts, logins
from licsrv.services.portal.logins import PortalLogin
from licsrv.services.portal.texts import pick_language
from licsrv.services.products import Product
from licsrv.state import PRODUCTS, deps_of
from licsrv.web.csp import new_nonce, protect
from licsrv.web.session import secure_cookies

SESSION_COOKIE = "portal_session"
CSRF_COOKIE = "portal_csrf"
DONE = frozenset(
    {
        "device_freed",
        "session_ended",
        "license_added",
        "password_changed",
        "reset_sent",
        "reset_done",
        "deleted",
        "code_sent",
    }
)
CSRF_KEY = web.RequestKey("portal_csrf", str)
NEW_CSRF = web.RequestKey("portal_new_csrf", bool)


def product_of(request: web.Request) -> Product:
    slug = request.match_info["slug"]
    for product in request.config_dict[PRODUCTS].all():
        if product.slug == slug:
            return product
    raise web.HTTPNotFound(text="Not found.")


def cookie_path(product: Product) -> str:
    return f"/portal/{product.slug}"


def _csrf(request: web.Request) -> str:
    if CSRF_KEY not in request:
        token = request.cookies.get(CSRF_COOKIE, "")
        request[NEW_CSRF] = len(token) != 43
        request[CSRF_KEY] = token if not request[NEW_CSRF] else secrets.token_urlsafe(32)
    return request[CSRF_KEY]


def render(
    request: web.Request, template: str, product: Product, context: dict[str, Any], status: int = 200
) -> web.Response:
    nonce = new_nonce()
    t = Words(pick_language(request.headers.get("Accept-Language")))
    done = request.query.get("done")
    page = {
        "t": t,
        "lang": t.lang,
        "product": product,
        "base": cookie_path(product),
        "csrf": _csrf(request),
        "message": t(done) if done in DONE else None,
        **context,
    }
    response = aiohttp_jinja2.render_template(template, request, page, status=status)
    protect(response, nonce)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # reset tokens travel in the URL
    if request.get(NEW_CSRF):
        set_cookie(request, response, product, CSRF_COOKIE, request[CSRF_KEY])
    return response


def set_cookie(request: web.Request, response: web.StreamResponse, product: Product, name: str, value: str):
    response.set_cookie(
        name,
        value,
        path=cookie_path(product),
        httponly=True,
        samesite="Strict",
        secure=secure_cookies(request),
    )


def redirect(product: Product, where: str = "", done: str | None = None) -> web.HTTPFound:
    location = cookie_path(product) + where + (f"?done={done}" if done else "")
    return web.HTTPFound(location)


async def read_form(request: web.Request) -> dict[str, str]:
    """The form's fields, after its CSRF token matched the cookie (a form from another site has neither)."""
    form = await request.post()
    sent = str(form.get("csrf", ""))
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not cookie or not hmac.compare_digest(sent.encode(), cookie.encode()):
        raise ApiError("FORBIDDEN", "form_expired")
    return {k: str(v) for k, v in form.items() if k != "csrf" and isinstance(v, str)}


def validated(schema: Schema, form: dict[str, Any]) -> dict[str, Any]:
    return schema.load(form)


def error_words(exc: BaseException, request: web.Request) -> tuple[str, int]:
    if isinstance(exc, ApiError) and exc.message == "form_expired":
        return "form_expired", 403
    if isinstance(exc, ValidationError):
        return "VALIDATION_ERROR", 400
    error = as_api_error(exc, request)
    return (error.code if error.code in KNOWN_CODES else "ERROR"), error.status


KNOWN_CODES = frozenset(
    {
        "TICKET_INVALID",
        "EMAIL_TAKEN",
        "LOGIN_FAILED",
        "RATE_LIMITED",
        "ACCOUNT_DISABLED",
        "CODE_INVALID",
        "TOKEN_INVALID",
        "FREE_LIMIT_REACHED",
        "LICENSE_NOT_FOUND",
        "CARD_NOT_FOUND",
        "VALIDATION_ERROR",
    }
)


async def signed_in(
    request: web.Request, product: Product, *, verified: bool = True
) -> tuple[PortalLogin, Any]:
    """The customer behind the cookie, or off to the sign-in page (or the opt-in page when unverified)."""
    deps = deps_of(request)
    try:
        login = await logins.authenticate(deps, request.cookies.get(SESSION_COOKIE), product.id)
        account = await accounts.signed_in_account(deps, login, verified=verified)
    except ApiError as exc:
        if exc.code == "ACCOUNT_NOT_VERIFIED":
            raise redirect(product, "/verify") from None
        raise redirect(product, "/login") from None
    return login, account


def signed_in_response(request: web.Request, product: Product, token: str, where: str) -> web.HTTPFound:
    response = redirect(product, where)
    set_cookie(request, response, product, SESSION_COOKIE, token)
    return response


# --- pages -----------------------------------------------------------------------------------------------

FORMS: dict[str, dict[str, Any]] = {
    "login": {
        "title": "login",
        "fields": [
            ("email", "email", "email", "username"),
            ("password", "password", "password", "current-password"),
        ],
        "submit": "login",
        "links": [("/register", "no_account", "register"), ("/reset", "forgot", "reset")],
    },
    "register": {
        "title": "register",
        "fields": [
            ("email", "email", "email", "username"),
            ("password", "password", "password", "new-password", "password_hint"),
            ("ticket", "text", "ticket", "off", "ticket_hint"),
        ],
        "submit": "register",
        "links": [("/login", "have_account", "login")],
    },
    "verify": {
        "title": "verify",
        "fields": [("code", "text", "code", "one-time-code")],
        "submit": "confirm",
        "links": [],
    },
    "reset": {
        "title": "reset",
        "intro": "reset_intro",
        "fields": [("email", "email", "email", "username")],
        "submit": "send",
        "links": [("/login", "have_account", "login")],
    },
    "reset_confirm": {
        "title": "reset",
        "fields": [("new_password", "password", "new_password", "new-password", "password_hint")],
        "submit": "save",
        "links": [],
    },
    "password": {
        "title": "change_password",
        "fields": [
            ("old_password", "password", "old_password", "current-password"),
            ("new_password", "password", "new_password", "new-password", "password_hint"),
        ],
        "submit": "save",
        "links": [("/", "back", None)],
    },
    "delete": {
        "title": "delete_account",
        "intro": "delete_intro",
        "fields": [("password", "password", "password", "current-password")],
        "submit": "delete",
        "danger": True,
        "links": [("/", "back", None)],
    },
}


def form_page(
    request: web.Request,
    product: Product,
    name: str,
    *,
    values: dict[str, str] | None = None,
    error: str | None = None,
    status: int = 200,
    **extra: Any,
) -> web.Response:
    spec = FORMS[name]
    kept = {k: v for k, v in (values or {}).items() if "password" not in k}  # never echo a password
    context = {"form": spec, "name": name, "values": kept, "error": error, **extra}
    return render(request, "portal/form.html", product, context, status=status)


Action = Callable[[dict[str, str]], Awaitable[web.StreamResponse]]


async def handle_form(request: web.Request, product: Product, name: str, action: Action, **extra: Any):
    values: dict[str, str] = {}
    try:
        values = await read_form(request)
        result = await action(values)
    except web.HTTPException:
        raise
    except Exception as exc:
        words, status = error_words(exc, request)
        t = Words(pick_language(request.headers.get("Accept-Language")))
        return form_page(request, product, name, values=values, error=t(words), status=status, **extra)
    if isinstance(result, web.HTTPException):  # a redirect carrying cookies
        raise result
    return result
