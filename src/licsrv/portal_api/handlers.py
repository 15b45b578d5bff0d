"""Portal API handlers: parse, call the one service function, answer in the client API's envelope."""

from __future__ import annotations

from aiohttp import web

from licsrv.api.auth import request_product
from licsrv.api.rules import client_call
from licsrv.envelope import load_body, ok
from licsrv.errors import ApiError
from licsrv.middlewares import get_client_ip
from licsrv.openapi import documented
from licsrv.portal_api import schemas as s
from licsrv.services.portal import accounts, credential_files, logins, passwords, registration
from licsrv.services.portal import licenses as customer_licenses
from licsrv.services.portal.logins import PortalLogin
from licsrv.services.portal.texts import pick_language
from licsrv.state import deps_of

SIGNED_IN = ("PORTAL_SESSION_EXPIRED", "ACCOUNT_NOT_VERIFIED", "ACCOUNT_DISABLED")


def bearer(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def signed_in(request: web.Request) -> PortalLogin:
    return await logins.authenticate(deps_of(request), bearer(request), request_product(request).id)


def lang(request: web.Request) -> str:
    return pick_language(request.headers.get("Accept-Language"))


@client_call("portal")
@documented(
    "Register a customer account with a ticket (unused card key or unclaimed license key)",
    tag="portal",
    body=s.RegisterSchema,
    answer=s.SessionAnswerSchema,
    status=201,
    errors=("INVALID_API_KEY", "TICKET_INVALID", "EMAIL_TAKEN", "RATE_LIMITED"),
)
async def register(request: web.Request) -> web.Response:
    body = await load_body(request, s.RegisterSchema())
    answer = await registration.register(
        deps_of(request), request_product(request), ip=get_client_ip(request), lang=lang(request), **body
    )
    return ok(s.SessionAnswerSchema().dump(answer), status=201)


@client_call("portal")
@documented(
    "Confirm the email address with the six-digit code (double opt-in)",
    tag="portal",
    body=s.VerifySchema,
    errors=("CODE_INVALID", "PORTAL_SESSION_EXPIRED", "ACCOUNT_DISABLED"),
)
async def verify(request: web.Request) -> web.Response:
    body = await load_body(request, s.VerifySchema())
    login = await signed_in(request)
    return ok(await registration.verify(deps_of(request), login, body["code"], get_client_ip(request)))


@client_call("portal")
@documented(
    "Send a new opt-in code (the old one stops working)",
    tag="portal",
    errors=("PORTAL_SESSION_EXPIRED", "ACCOUNT_DISABLED"),
)
async def resend_code(request: web.Request) -> web.Response:
    login = await signed_in(request)
    return ok(
        await registration.resend_code(deps_of(request), request_product(request), login, lang(request))
    )


@client_call("portal")
@documented(
    "Sign in: a new session id and token every time",
    tag="portal",
    body=s.LoginSchema,
    answer=s.SessionAnswerSchema,
    errors=("LOGIN_FAILED", "ACCOUNT_DISABLED", "RATE_LIMITED"),
)
async def login(request: web.Request) -> web.Response:
    body = await load_body(request, s.LoginSchema())
    answer = await accounts.login(
        deps_of(request),
        request_product(request),
        body["email"],
        body["password"],
        get_client_ip(request),
        previous=bearer(request),
    )
    return ok(s.SessionAnswerSchema().dump(answer))


@client_call("portal")
@documented("Sign out", tag="portal", errors=("PORTAL_SESSION_EXPIRED",))
async def logout(request: web.Request) -> web.Response:
    return ok(await accounts.logout(deps_of(request), await signed_in(request)))


@client_call("portal")
@documented(
    "The account's licenses with expiry, devices, live sessions and device frees left",
    tag="portal",
    answer=s.LicensesAnswerSchema,
    errors=SIGNED_IN,
)
async def licenses(request: web.Request) -> web.Response:
    login = await signed_in(request)
    found = await customer_licenses.list_licenses(deps_of(request), request_product(request), login)
    return ok(s.LicensesAnswerSchema().dump({"licenses": found}))


@client_call("portal")
@documented(
    "Attach a license key or a card key to the account (both: recharge the license with the card)",
    tag="portal",
    body=s.ClaimSchema,
    errors=(*SIGNED_IN, "LICENSE_NOT_FOUND", "CARD_NOT_FOUND", "CARD_VOID", "CARD_BOUND_ELSEWHERE"),
)
async def claim(request: web.Request) -> web.Response:
    body = await load_body(request, s.ClaimSchema())
    login = await signed_in(request)
    answer = await customer_licenses.claim(
        deps_of(request), request_product(request), login, ip=get_client_ip(request), **body
    )
    return ok(answer)


def _path_int(request: web.Request, name: str) -> int:
    value = request.match_info[name]
    if not value.isdigit() or len(value) > 18:
        raise ApiError("NOT_FOUND", f"No {name.removesuffix('_id')} of yours has this id.")
    return int(value)


@client_call("portal")
@documented(
    "Free a device slot (its sessions end as forced); a few per license and 30 days",
    tag="portal",
    errors=(*SIGNED_IN, "NOT_FOUND", "FREE_LIMIT_REACHED"),
)
async def free_device(request: web.Request) -> web.Response:
    login = await signed_in(request)
    device_id = _path_int(request, "device_id")
    return ok(
        await customer_licenses.free_device(
            deps_of(request), request_product(request), login, device_id, get_client_ip(request)
        )
    )


@client_call("portal")
@documented(
    "End one of the account's running sessions (as forced)",
    tag="portal",
    errors=(*SIGNED_IN, "NOT_FOUND", "SESSION_EXPIRED"),
)
async def end_session(request: web.Request) -> web.Response:
    login = await signed_in(request)
    session_id = request.match_info["session_id"][:100]
    return ok(
        await customer_licenses.end_session(
            deps_of(request), request_product(request), login, session_id, get_client_ip(request)
        )
    )


@client_call("portal")
@documented(
    "The credential file: an account credential sealed under a key derived from the password",
    tag="portal",
    body=s.PasswordSchema,
    answer=s.CredentialFileSchema,
    errors=(*SIGNED_IN, "LOGIN_FAILED", "RATE_LIMITED"),
)
async def credential(request: web.Request) -> web.Response:
    body = await load_body(request, s.PasswordSchema())
    login = await signed_in(request)
    answer = await credential_files.credential_file(
        deps_of(request), request_product(request), login, body["password"], get_client_ip(request)
    )
    return ok(s.CredentialFileSchema().dump(answer))


@client_call("portal")
@documented(
    "Change the password: every credential file and every other portal session stops working",
    tag="portal",
    body=s.ChangePasswordSchema,
    errors=(*SIGNED_IN, "LOGIN_FAILED", "RATE_LIMITED"),
)
async def change_password(request: web.Request) -> web.Response:
    body = await load_body(request, s.ChangePasswordSchema())
    login = await signed_in(request)
    return ok(
        await passwords.change_password(
            deps_of(request),
            request_product(request),
            login,
            body["old_password"],
            body["new_password"],
            get_client_ip(request),
        )
    )


@client_call("portal")
@documented(
    "Ask for a password reset token (emailed, or fetched by the vendor through the management API)",
    tag="portal",
    body=s.ResetSchema,
)
async def password_reset(request: web.Request) -> web.Response:
    body = await load_body(request, s.ResetSchema())
    return ok(
        await passwords.request_reset(
            deps_of(request), request_product(request), body["email"], lang(request), get_client_ip(request)
        )
    )


@client_call("portal")
@documented(
    "Set a new password with a reset token (once, within its time)",
    tag="portal",
    body=s.ResetConfirmSchema,
    errors=("TOKEN_INVALID",),
)
async def password_reset_confirm(request: web.Request) -> web.Response:
    body = await load_body(request, s.ResetConfirmSchema())
    return ok(
        await passwords.confirm_reset(
            deps_of(request),
            request_product(request),
            body["token"],
            body["new_password"],
            get_client_ip(request),
        )
    )


@client_call("portal")
@documented(
    "The account",
    tag="portal",
    answer=s.AccountSchema,
    errors=SIGNED_IN,
)
async def get_account(request: web.Request) -> web.Response:
    account = await accounts.signed_in_account(deps_of(request), await signed_in(request))
    return ok(s.AccountSchema().dump(accounts.account_view(account)))


@client_call("portal")
@documented(
    "Change the account's data",
    tag="portal",
    body=s.AccountPatchSchema,
    answer=s.AccountSchema,
    errors=SIGNED_IN,
)
async def patch_account(request: web.Request) -> web.Response:
    body = await load_body(request, s.AccountPatchSchema())
    login = await signed_in(request)
    answer = await accounts.update_data(deps_of(request), login, body["data"], get_client_ip(request))
    return ok(s.AccountSchema().dump(answer))


@client_call("portal")
@documented(
    "Delete the account: personal data erased, licenses detached (they keep working)",
    tag="portal",
    body=s.PasswordSchema,
    errors=("PORTAL_SESSION_EXPIRED", "ACCOUNT_DISABLED", "LOGIN_FAILED", "RATE_LIMITED"),
)
async def delete_account(request: web.Request) -> web.Response:
    body = await load_body(request, s.PasswordSchema())
    login = await signed_in(request)
    return ok(
        await accounts.delete_own_account(
            deps_of(request), request_product(request), login, body["password"], get_client_ip(request)
        )
    )


def routes() -> list[web.RouteDef]:
    return [
        web.post("/register", register),
        web.post("/verify", verify),
        web.post("/verify/resend", resend_code),
        web.post("/login", login),
        web.post("/logout", logout),
        web.get("/licenses", licenses),
        web.post("/licenses/claim", claim),
        web.delete("/devices/{device_id}", free_device),
        web.delete("/sessions/{session_id}", end_session),
        web.post("/credential", credential),
        web.post("/password", change_password),
        web.post("/password-reset", password_reset),
        web.post("/password-reset/confirm", password_reset_confirm),
        web.get("/account", get_account),
        web.patch("/account", patch_account),
        web.delete("/account", delete_account),
    ]
