"""`Cache-Control: no-store` on every answer of a sub-app that shows secrets or personal data (the admin UI,
the management API, card CSVs), refusals and redirects included: neither browsers nor proxies keep them."""

from __future__ import annotations

from aiohttp import web


async def _no_store(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Cache-Control"] = "no-store"


def no_store(app: web.Application) -> web.Application:
    # on_response_prepare runs for every app the request was routed through, so it also covers the
    # error envelopes the root app's middleware builds.
    app.on_response_prepare.append(_no_store)
    return app
