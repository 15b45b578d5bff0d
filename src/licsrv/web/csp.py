"""Content-Security-Policy for licsrv's HTML: only scripts and styles carrying this response's nonce run,
so an injected tag or handler does nothing even if escaping ever failed. Templates write
`nonce="{{ csp_nonce }}"` on their `<script>` and `<style>` tags and use no inline handlers or style
attributes."""

from __future__ import annotations

import secrets
from contextvars import ContextVar

from aiohttp import web

from licsrv.envelope import Handler

_nonce: ContextVar[str] = ContextVar("csp_nonce", default="")


def policy(nonce: str) -> str:
    return (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )


def new_nonce() -> str:
    """A fresh nonce for the response being made (kept for the templates of this request's task)."""
    nonce = secrets.token_urlsafe(16)
    _nonce.set(nonce)
    return nonce


def protect(response: web.StreamResponse, nonce: str) -> web.StreamResponse:
    if response.content_type == "text/html":
        response.headers["Content-Security-Policy"] = policy(nonce)
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
    return response


@web.middleware
async def csp_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    nonce = new_nonce()
    return protect(await handler(request), nonce)


class CurrentNonce:
    """A Jinja global: `{{ csp_nonce }}` writes the nonce of the response being rendered."""

    def __html__(self) -> str:
        return _nonce.get()

    def __str__(self) -> str:
        return _nonce.get()
