"""Portal page handlers: each reads its form, checks the CSRF token, calls the same service function the
portal API calls, and renders the answer (or the refusal, in the customer's language)."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import aiohttp_jinja2
from aiohttp import web
from marshmallow import Schema, ValidationError

from licsrv.codes import card_code_is_well_formed, normalise
from licsrv.envelope import as_api_error
from licsrv.errors import ApiError
from licsrv.middlewares import get_client_ip
from licsrv.portal_api import schemas as s
from licsrv.portal_web.words import Words
from licsrv.services.portal import accounts, credential_files, logins, passwords, registration
from licsrv.services.portal import licenses as customer_licenses
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


def _cookie_path(product: Product) -> str:
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
        "base": _cookie_path(product),
        "csrf": _csrf(request),
        "message": t(done) if done in DONE else None,
        **context,
    }
    response = aiohttp_jinja2.render_template(template, request, page, status=status)
    protect(response, nonce)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # reset tokens travel in the URL
    if request.get(NEW_CSRF):
        _set_cookie(request, response, product, CSRF_COOKIE, request[CSRF_KEY])
    return response


def _set_cookie(request: web.Request, response: web.StreamResponse, product: Product, name: str, value: str):
    response.set_cookie(
        name,
        value,
        path=_cookie_path(product),
        httponly=True,
        samesite="Strict",
        secure=secure_cookies(request),
    )


def redirect(product: Product, where: str = "", done: str | None = None) -> web.HTTPFound:
    location = _cookie_path(product) + where + (f"?done={done}" if done else "")
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
    return (error.code if error.code in _KNOWN else "ERROR"), error.status


_KNOWN = frozenset(
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
    _set_cookie(request, response, product, SESSION_COOKIE, token)
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


async def login_page(request: web.Request) -> web.StreamResponse:
    product = product_of(request)
    if request.method == "GET":
        return form_page(request, product, "login")

    async def act(form: dict[str, str]) -> web.StreamResponse:
        body = validated(s.LoginSchema(), form)
        answer = await accounts.login(
            deps_of(request),
            product,
            body["email"],
            body["password"],
            get_client_ip(request),
            previous=request.cookies.get(SESSION_COOKIE),
        )
        where = "/verify" if answer["verification_required"] else "/"
        return signed_in_response(request, product, answer["session_token"], where)

    return await handle_form(request, product, "login", act)


async def register_page(request: web.Request) -> web.StreamResponse:
    product = product_of(request)
    if request.method == "GET":
        return form_page(
            request, product, "register", values={"ticket": request.query.get("ticket", "")[:100]}
        )

    async def act(form: dict[str, str]) -> web.StreamResponse:
        body = validated(s.RegisterSchema(), form)
        answer = await registration.register(
            deps_of(request),
            product,
            ip=get_client_ip(request),
            lang=pick_language(request.headers.get("Accept-Language")),
            **body,
        )
        where = "/verify" if answer["verification_required"] else "/"
        return signed_in_response(request, product, answer["session_token"], where)

    return await handle_form(request, product, "register", act)


async def verify_page(request: web.Request) -> web.StreamResponse:
    product = product_of(request)
    login, account = await signed_in(request, product, verified=False)
    if account["verified"]:
        raise redirect(product)
    intro = {
        "intro_text": Words(pick_language(request.headers.get("Accept-Language")))(
            "verify_intro", email=account["email"]
        )
    }
    if request.method == "GET":
        return form_page(request, product, "verify", account=account, **intro)

    async def act(form: dict[str, str]) -> web.StreamResponse:
        if form.get("resend"):
            await registration.resend_code(
                deps_of(request), product, login, pick_language(request.headers.get("Accept-Language"))
            )
            raise redirect(product, "/verify", "code_sent")
        body = validated(s.VerifySchema(), {"code": form.get("code", "").strip()})
        await registration.verify(deps_of(request), login, body["code"], get_client_ip(request))
        raise redirect(product)

    return await handle_form(request, product, "verify", act, account=account, **intro)


async def licenses_page(request: web.Request) -> web.StreamResponse:
    product = product_of(request)
    login, account = await signed_in(request, product)
    found = await customer_licenses.list_licenses(deps_of(request), product, login)
    error = request.query.get("error")
    t = Words(pick_language(request.headers.get("Accept-Language")))
    context = {"account": account, "licenses": found, "error": t(error) if error in _KNOWN else None}
    return render(request, "portal/licenses.html", product, context)


def _action(run: Callable[[web.Request, Product, PortalLogin, dict[str, str]], Awaitable[str]]):
    """A button on the licenses page: done → back with a message; refused → back with the reason."""

    async def handler(request: web.Request) -> web.StreamResponse:
        product = product_of(request)
        login, _ = await signed_in(request, product)
        try:
            form = await read_form(request)
            done = await run(request, product, login, form)
        except web.HTTPException:
            raise
        except Exception as exc:
            words, _ = error_words(exc, request)
            raise web.HTTPFound(f"{_cookie_path(product)}/?error={quote(words)}") from None
        raise redirect(product, "/", done)

    return handler


async def _free(request: web.Request, product: Product, login: PortalLogin, form: dict[str, str]) -> str:
    device_id = request.match_info["id"]
    await customer_licenses.free_device(
        deps_of(request), product, login, int(device_id), get_client_ip(request)
    )
    return "device_freed"


async def _end(request: web.Request, product: Product, login: PortalLogin, form: dict[str, str]) -> str:
    await customer_licenses.end_session(
        deps_of(request), product, login, request.match_info["id"], get_client_ip(request)
    )
    return "session_ended"


async def _claim(request: web.Request, product: Product, login: PortalLogin, form: dict[str, str]) -> str:
    key = form.get("key", "").strip()
    fields = {"card_key": key} if card_code_is_well_formed(normalise(key)) else {"license_key": key}
    body = validated(s.ClaimSchema(), fields)
    await customer_licenses.claim(deps_of(request), product, login, ip=get_client_ip(request), **body)
    return "license_added"


async def credential_download(request: web.Request) -> web.StreamResponse:
    product = product_of(request)
    login, _ = await signed_in(request, product)
    try:
        form = await read_form(request)
        body = validated(s.PasswordSchema(), {"password": form.get("password", "")})
        answer = await credential_files.credential_file(
            deps_of(request), product, login, body["password"], get_client_ip(request)
        )
    except Exception as exc:
        words, _ = error_words(exc, request)
        raise web.HTTPFound(f"{_cookie_path(product)}/?error={quote(words)}") from None
    return web.Response(
        text=answer["file"],
        content_type="text/plain",
        headers={
            "Content-Disposition": f'attachment; filename="{answer["filename"]}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


async def password_page(request: web.Request) -> web.StreamResponse:
    product = product_of(request)
    login, account = await signed_in(request, product)
    if request.method == "GET":
        return form_page(request, product, "password", account=account)

    async def act(form: dict[str, str]) -> web.StreamResponse:
        body = validated(s.ChangePasswordSchema(), form)
        await passwords.change_password(
            deps_of(request),
            product,
            login,
            body["old_password"],
            body["new_password"],
            get_client_ip(request),
        )
        raise redirect(product, "/", "password_changed")

    return await handle_form(request, product, "password", act, account=account)


async def reset_page(request: web.Request) -> web.StreamResponse:
    product = product_of(request)
    token = request.query.get("token", "")[:100]
    name = "reset_confirm" if token else "reset"
    if request.method == "GET":
        return form_page(request, product, name, token=token)

    async def act(form: dict[str, str]) -> web.StreamResponse:
        if token:
            body = validated(
                s.ResetConfirmSchema(), {"token": token, "new_password": form.get("new_password", "")}
            )
            await passwords.confirm_reset(
                deps_of(request), product, body["token"], body["new_password"], get_client_ip(request)
            )
            raise redirect(product, "/login", "reset_done")
        body = validated(s.ResetSchema(), form)
        lang = pick_language(request.headers.get("Accept-Language"))
        await passwords.request_reset(deps_of(request), product, body["email"], lang, get_client_ip(request))
        raise redirect(product, "/reset", "reset_sent")

    return await handle_form(request, product, name, act, token=token)


async def delete_page(request: web.Request) -> web.StreamResponse:
    product = product_of(request)
    login, account = await signed_in(request, product, verified=False)
    if request.method == "GET":
        return form_page(request, product, "delete", account=account)

    async def act(form: dict[str, str]) -> web.StreamResponse:
        body = validated(s.PasswordSchema(), form)
        await accounts.delete_own_account(
            deps_of(request), product, login, body["password"], get_client_ip(request)
        )
        response = redirect(product, "/login", "deleted")
        response.del_cookie(SESSION_COOKIE, path=_cookie_path(product))
        return response

    return await handle_form(request, product, "delete", act, account=account)


async def logout(request: web.Request) -> web.StreamResponse:
    product = product_of(request)
    try:
        await read_form(request)
        login = await logins.authenticate(deps_of(request), request.cookies.get(SESSION_COOKIE), product.id)
        await accounts.logout(deps_of(request), login)
    except ApiError:
        pass
    response = redirect(product, "/login")
    response.del_cookie(SESSION_COOKIE, path=_cookie_path(product))
    raise response


async def _to_slash(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound(request.path + "/")


def routes() -> list[web.RouteDef]:
    slug = "/{slug:[a-z0-9][a-z0-9-]{0,62}}"
    both = [
        ("/login", login_page),
        ("/register", register_page),
        ("/verify", verify_page),
        ("/password", password_page),
        ("/reset", reset_page),
        ("/delete", delete_page),
    ]
    return [
        web.get(slug, _to_slash),
        web.get(slug + "/", licenses_page),
        *(web.get(slug + path, handler) for path, handler in both),
        *(web.post(slug + path, handler) for path, handler in both),
        web.post(slug + "/logout", logout),
        web.post(slug + "/claim", _action(_claim)),
        web.post(slug + r"/devices/{id:\d{1,18}}/free", _action(_free)),
        web.post(slug + r"/sessions/{id:[A-Za-z0-9_-]{1,100}}/end", _action(_end)),
        web.post(slug + "/credential", credential_download),
    ]
