"""The short message that confirms a change on the page after it (POST, redirect, GET): a signed cookie
that lives a minute and is read once. A handler ends with `raise done(request, location, "Saved.")`."""

from __future__ import annotations

import base64
import hashlib
import hmac

from aiohttp import web

from licsrv.state import SETTINGS
from licsrv.web.session import set_cookie

FLASH_COOKIE = "licsrv_flash"
FLASH_SECONDS = 60
MAX_MESSAGE = 300


def _signature(request: web.Request, payload: str) -> str:
    key = hashlib.sha256(b"licsrv-flash:" + request.config_dict[SETTINGS].secret_key.encode()).digest()
    return base64.urlsafe_b64encode(hmac.digest(key, payload.encode(), "sha256")[:16]).decode().rstrip("=")


def done(request: web.Request, location: str, message: str) -> web.HTTPSeeOther:
    """The redirect after a change, carrying `message` to the next page the admin sees."""
    payload = base64.urlsafe_b64encode(message[:MAX_MESSAGE].encode()).decode().rstrip("=")
    redirect = web.HTTPSeeOther(location)
    set_cookie(request, redirect, FLASH_COOKIE, f"{payload}.{_signature(request, payload)}", FLASH_SECONDS)
    return redirect


def take_flash(request: web.Request) -> str | None:
    """The message the previous change left, if its signature holds (the caller then deletes the cookie)."""
    payload, _, signature = request.cookies.get(FLASH_COOKIE, "").partition(".")
    if not payload or not hmac.compare_digest(signature, _signature(request, payload)):
        return None
    try:
        return base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode()
    except ValueError:
        return None


def forget_flash(request: web.Request, response: web.StreamResponse) -> None:
    if FLASH_COOKIE in request.cookies:
        response.del_cookie(FLASH_COOKIE, path="/admin")
