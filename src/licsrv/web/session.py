"""Admin web sessions in Redis (a random id in an HttpOnly, SameSite=Strict cookie), and the middleware
that authenticates every /admin request and checks the CSRF token of every POST.
"""

from __future__ import annotations

import hmac
import secrets
import time
from typing import Any
from urllib.parse import quote

import aiohttp_jinja2
import orjson
from aiohttp import web

from licsrv.envelope import Handler, as_api_error
from licsrv.errors import ApiError
from licsrv.live.batcher import UNAVAILABLE
from licsrv.middlewares import get_client_ip
from licsrv.services import admins
from licsrv.services.audit import Actor
from licsrv.state import DB, REDIS, SETTINGS
from licsrv.web.words import in_words, page_title

COOKIE = "licsrv_admin"
ANON_CSRF_COOKIE = "licsrv_csrf"
PUBLIC_PATHS = ("/admin/login",)
ADMIN = web.RequestKey("admin", dict)
CSRF = web.RequestKey("csrf", str)


def _session_key(session_id: str) -> str:
    return f"as:{session_id}"


async def create_session(request: web.Request, admin: dict[str, Any]) -> str:
    """A new id at every login, so an id planted before login is worthless after it."""
    session_id = secrets.token_urlsafe(32)
    data = {**admin, "csrf": secrets.token_urlsafe(24), "logged_in_at": time.time()}
    settings = request.config_dict[SETTINGS]
    await request.config_dict[REDIS].set(
        _session_key(session_id), orjson.dumps(data), ex=settings.admin_idle_timeout
    )
    return session_id


async def load_session(request: web.Request) -> dict[str, Any] | None:
    session_id = request.cookies.get(COOKIE, "")
    if not 20 <= len(session_id) <= 64:
        return None
    # GETEX slides the idle timeout with the same round trip.
    raw = await request.config_dict[REDIS].getex(
        _session_key(session_id), ex=request.config_dict[SETTINGS].admin_idle_timeout
    )
    return orjson.loads(raw) if raw else None


async def destroy_session(request: web.Request) -> None:
    session_id = request.cookies.get(COOKIE, "")
    if session_id:
        await request.config_dict[REDIS].delete(_session_key(session_id))


def secure_cookies(request: web.Request) -> bool:
    mode = request.config_dict[SETTINGS].cookie_secure
    if mode in ("1", "true", "yes"):
        return True
    if mode in ("0", "false", "no"):
        return False
    forwarded_https = (
        request.headers.get("X-Forwarded-Proto", "") == "https" and get_client_ip(request) != request.remote
    )
    return request.secure or forwarded_https


def set_cookie(
    request: web.Request, response: web.StreamResponse, name: str, value: str, max_age: int | None
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/admin",
        httponly=True,
        samesite="Strict",
        secure=secure_cookies(request),
    )


async def _still_valid(request: web.Request, session: dict[str, Any]) -> dict[str, Any] | None:
    """Sessions end at their maximum age and when the database no longer backs them; roles apply at once."""
    logged_in_at = float(session.get("logged_in_at", 0))
    if time.time() - logged_in_at > request.config_dict[SETTINGS].admin_max_session_age:
        await destroy_session(request)
        return None
    db = request.config_dict[DB]
    async with db.connection() as conn:
        admin = await admins.current_admin(conn, db.q, session["id"], logged_in_at)
    if admin is None:
        await destroy_session(request)
        return None
    return {**session, **admin}


def actor_of(request: web.Request) -> Actor:
    admin = request[ADMIN]
    return Actor(name=admin["username"], role=admin["role"], ip=get_client_ip(request))


def error_page(request: web.Request, error: ApiError) -> web.Response:
    context = {
        "admin": request.get(ADMIN),
        "csrf": request[CSRF],
        "error": in_words(error),
        "path": request.path,
        "page_title": page_title(request.path),
    }
    return aiohttp_jinja2.render_template("admin/error.html", request, context, status=error.status)


def forbidden(request: web.Request, message: str) -> web.HTTPForbidden:
    return web.HTTPForbidden(text=f"403 Forbidden: {message}", content_type="text/plain")


async def _csrf_ok(request: web.Request, expected: str | None) -> bool:
    if not expected:
        return False
    sent = request.headers.get("X-CSRF-Token", "")
    if not sent and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        sent = str((await request.post()).get("csrf", ""))
    return bool(sent) and hmac.compare_digest(sent, expected)


@web.middleware
async def admin_auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        admin = await load_session(request)
    except UNAVAILABLE:
        return web.Response(
            status=503, text="The session store is unavailable; retry shortly.", headers={"Retry-After": "2"}
        )
    public = request.path.startswith(PUBLIC_PATHS)
    if admin is not None:
        admin = await _still_valid(request, admin)
    if admin is None and not public:
        raise web.HTTPSeeOther(f"/admin/login?next={quote(request.path_qs)}")
    if admin is not None:
        request[ADMIN] = admin
        request[CSRF] = admin["csrf"]
    else:
        request[CSRF] = request.cookies.get(ANON_CSRF_COOKIE) or secrets.token_urlsafe(24)
    if request.method == "POST" and not await _csrf_ok(
        request, request[CSRF] if admin or ANON_CSRF_COOKIE in request.cookies else None
    ):
        raise forbidden(request, "the form's CSRF token is missing or wrong; reload the page and try again.")
    try:
        response = await handler(request)
    except web.HTTPException:
        raise
    except Exception as exc:  # a refusal the page did not handle itself: the API's code and words, as a page
        response = error_page(request, as_api_error(exc, request))
    if (
        admin is None
        and request.cookies.get(ANON_CSRF_COOKIE) != request[CSRF]
        and COOKIE not in response.cookies
    ):
        set_cookie(request, response, ANON_CSRF_COOKIE, request[CSRF], None)
    return response
