"""The offline activation page (DESIGN §6): opened on a phone from the QR code the offline machine shows,
`/offline?r=<request code>`. GET only shows what would be activated (link previews must not bind devices);
the POST activates and shows the response code as text and as a QR code."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import aiohttp_jinja2
import segno
from aiohttp import web

from licsrv.api.rules import checked_product, client_call
from licsrv.envelope import as_api_error
from licsrv.offline_codes import MAX_CODE_LENGTH, OfflineError, parse_request_code
from licsrv.services import offline
from licsrv.services.products import Product
from licsrv.state import DB, KEYRING, PRODUCTS
from licsrv.web.csp import new_nonce, protect

TEMPLATE = "offline/activate.html"


def _page(request: web.Request, context: dict[str, Any], status: int = 200) -> web.Response:
    nonce = new_nonce()
    response = aiohttp_jinja2.render_template(TEMPLATE, request, context, status=status)
    protect(response, nonce)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # the request code is in the URL
    return response


def _masked(license_key: str) -> str:
    """Enough of the key to recognise it on the phone's screen, not enough to copy it."""
    key = license_key.strip().upper()
    return key[:5] + "…" + key[-4:] if len(key) > 12 else key


async def show(request: web.Request) -> web.Response:
    code = request.query.get("r", "")[:MAX_CODE_LENGTH]
    context: dict[str, Any] = {"code": code}
    if code:
        try:
            parsed = parse_request_code(code)
        except OfflineError as exc:
            context["error"] = f"This request code cannot be used: {exc}."
            return _page(request, context, status=400)
        context["request_info"] = {
            "license_key": _masked(parsed.license_key),
            "hardware_id": parsed.hardware_id,
        }
    return _page(request, context)


async def _product_of_code(request: web.Request) -> Product:
    """The phone page has no API key: the license key in the request code names the product."""
    code = str((await request.post()).get("r", ""))[:MAX_CODE_LENGTH]
    offline_request = offline.read_request(code, datetime.now(UTC))
    app = request.config_dict
    return await offline.product_of(app[DB], app[PRODUCTS], offline_request.license_key)


# A phone's browser cannot sign requests: a product that requires signed requests refuses this page.
@client_call("activate", signable=False, product_of=_product_of_code)
async def activate(request: web.Request) -> web.Response:
    form = await request.post()
    code = str(form.get("r", ""))[:MAX_CODE_LENGTH]
    now = datetime.now(UTC)
    app = request.config_dict
    try:
        product = await checked_product(request)
        offline_request = offline.read_request(code, now)
        answer = await offline.activate_offline(app[DB], app[KEYRING], product, offline_request, now)
    except Exception as exc:  # refusals and a missing database alike get the page, with what went wrong
        error = as_api_error(exc, request)
        headers = error.headers
        response = _page(request, {"code": code, "error": error.message}, status=error.status)
        response.headers.update(headers)
        return response
    qr = segno.make(answer["certificate"], error="m")
    context = {
        "certificate": answer["certificate"],
        "license": answer["license"],
        "qr_svg": qr.svg_inline(scale=4, title="Response code"),
    }
    return _page(request, context)


def routes() -> list[web.RouteDef]:
    return [web.get("/offline", show), web.post("/offline", activate)]
