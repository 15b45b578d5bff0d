"""Admin login, logout and password changes."""

from __future__ import annotations

from aiohttp import web

from licsrv.db import Database
from licsrv.errors import ApiError
from licsrv.live.login_lockout import Attempt, LoginLockout, Verdict
from licsrv.middlewares import get_client_ip
from licsrv.services import admins
from licsrv.services.audit import record_security_event
from licsrv.state import DB, REDIS, SETTINGS
from licsrv.web.render import flash_error, form, page
from licsrv.web.session import (
    ADMIN,
    COOKIE,
    actor_of,
    create_session,
    destroy_session,
    set_cookie,
)


def _safe_next(target: str) -> str:
    return target if target.startswith("/admin") and not target.startswith("//") else "/admin/"


async def login_form(request: web.Request) -> web.Response:
    if request.get(ADMIN):
        raise web.HTTPSeeOther("/admin/")
    return page(request, "admin/login.html", next=_safe_next(request.query.get("next", "/admin/")))


async def login(request: web.Request) -> web.Response:
    data = await form(request)
    username, password = data.get("username", "")[:64], data.get("password", "")[:1024]
    target = _safe_next(data.get("next", "/admin/"))
    ip = get_client_ip(request)
    settings = request.config_dict[SETTINGS]
    lockout = LoginLockout(request.config_dict[REDIS], settings)
    attempt = await lockout.attempt(username, ip)
    db = request.config_dict[DB]
    if attempt.verdict is not Verdict.CHECK:
        await _report_lock(db, lockout, attempt, username, ip)
        seconds = {
            Verdict.ADDRESS_LOCKED: settings.login_lockout_seconds,
            Verdict.USER_THROTTLED: settings.login_user_window_seconds,
            Verdict.ADDRESS_THROTTLED: settings.login_address_window_seconds,
        }[attempt.verdict]
        message = f"Too many failed logins. Try again in {max(1, seconds // 60)} minutes."
        return page(request, "admin/login.html", status=429, error=message, next=target, username=username)
    admin = await admins.check_login(db, username, password)
    if admin is None:
        async with db.connection() as conn:
            await record_security_event(conn, db.q, "admin_login_failed", {"username": username}, ip=ip)
        await _report_lock(db, lockout, attempt, username, ip)
        return page(
            request,
            "admin/login.html",
            status=401,
            error="Wrong username or password.",
            next=target,
            username=username,
        )
    await lockout.succeeded(username, ip)
    await destroy_session(request)
    response = web.HTTPSeeOther(target)
    session_id = await create_session(request, admin)
    set_cookie(request, response, COOKIE, session_id, None)
    raise response


async def _report_lock(
    db: Database, lockout: LoginLockout, attempt: Attempt, username: str, ip: str | None
) -> None:
    """One security event when a user+address lock, the per-user or the per-address throttle starts."""
    kinds = [
        kind
        for kind, started in (
            ("admin_login_locked", lockout.newly_locked(attempt)),
            ("admin_login_throttled", lockout.newly_throttled(attempt)),
            ("admin_login_address_throttled", lockout.newly_address_throttled(attempt)),
        )
        if started
    ]
    if kinds:
        async with db.connection() as conn:
            for kind in kinds:
                await record_security_event(conn, db.q, kind, {"username": username}, ip=ip)


async def logout(request: web.Request) -> web.Response:
    await destroy_session(request)
    response = web.HTTPSeeOther("/admin/login")
    response.del_cookie(COOKIE, path="/admin")
    raise response


async def password_form(request: web.Request) -> web.Response:
    return page(request, "admin/password.html")


async def change_password(request: web.Request) -> web.Response:
    data = await form(request)
    db = request.config_dict[DB]
    actor = actor_of(request)
    check = await admins.check_login(db, actor.name, data.get("current_password", ""))
    if check is None:
        return page(request, "admin/password.html", status=400, error="The current password is wrong.")
    if data.get("new_password") != data.get("repeat_password"):
        return page(request, "admin/password.html", status=400, error="The new passwords differ.")
    async with db.connection() as conn:
        try:
            await admins.change_password(
                conn, db.q, request[ADMIN]["id"], data.get("new_password", ""), actor
            )
        except ApiError as exc:
            return page(request, "admin/password.html", status=exc.status, error=flash_error(exc))
    # The change ended every session of this admin, this one too: continue in a fresh one.
    await destroy_session(request)
    session_id = await create_session(request, {k: request[ADMIN][k] for k in ("id", "username", "role")})
    response = page(request, "admin/password.html", message="Password changed.")
    set_cookie(request, response, COOKIE, session_id, None)
    return response
