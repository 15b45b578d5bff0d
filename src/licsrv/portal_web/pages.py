"""Portal page handlers: each reads its form, checks the CSRF token, calls the same service function the
portal API calls, and renders the answer (or the refusal, in the customer's language)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import quote

from aiohttp import web

from licsrv.codes import card_code_is_well_formed, normalise
from licsrv.errors import ApiError
from licsrv.middlewares import get_client_ip
from licsrv.portal_api import schemas as s
from licsrv.portal_web.render import (
    KNOWN_CODES,
    SESSION_COOKIE,
    cookie_path,
    error_words,
    form_page,
    handle_form,
    product_of,
    read_form,
    redirect,
    render,
    signed_in,
    signed_in_response,
    validated,
)
from licsrv.portal_web.words import Words
from licsrv.services.portal import accounts, credential_files, logins, passwords, registration
from licsrv.services.portal import licenses as customer_licenses
from licsrv.services.portal.logins import PortalLogin
from licsrv.services.portal.texts import pick_language
from licsrv.services.products import Product
from licsrv.state import deps_of


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
    context = {"account": account, "licenses": found, "error": t(error) if error in KNOWN_CODES else None}
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
            raise web.HTTPFound(f"{cookie_path(product)}/?error={quote(words)}") from None
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
        raise web.HTTPFound(f"{cookie_path(product)}/?error={quote(words)}") from None
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
        response.del_cookie(SESSION_COOKIE, path=cookie_path(product))
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
    response.del_cookie(SESSION_COOKIE, path=cookie_path(product))
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
