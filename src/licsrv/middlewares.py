"""Request context: a request id and the real client IP (X-Forwarded-For only from trusted proxies)."""

from __future__ import annotations

import ipaddress
import re
import secrets
import time

import structlog
from aiohttp import web

from licsrv.envelope import Handler
from licsrv.metrics import observe_request
from licsrv.settings import Network
from licsrv.state import CLIENT_IP, REQUEST_ID, SETTINGS

_REQUEST_ID_FORMAT = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

access_log = structlog.get_logger("licsrv.access")


def _parse_ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


def client_ip(peer: str | None, forwarded_for: str | None, trusted: tuple[Network, ...]) -> str | None:
    """The rightmost address that is not a trusted proxy, walking X-Forwarded-For from the peer back."""
    address = _parse_ip(peer or "")
    if address is None:
        return None
    if not forwarded_for or not trusted:
        return str(address)
    hops = [_parse_ip(part) for part in forwarded_for.split(",")]
    while any(address in net for net in trusted) and hops:
        candidate = hops.pop()
        if candidate is None:
            break
        address = candidate
    return str(address)


def get_client_ip(request: web.Request) -> str | None:
    return request.get(CLIENT_IP)


FAST_PATHS = frozenset({"/api/v1/sessions/heartbeat"})


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Request id, client IP, access log line and the request metrics, in one layer."""
    started = time.perf_counter()
    if request.path in FAST_PATHS:
        # The hot path (a root route): no request id or client IP; only refused heartbeats are logged.
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        finally:
            elapsed = time.perf_counter() - started
            observe_request(request, status, elapsed)
            if status >= 400 and request.app[SETTINGS].access_log:
                access_log.info(
                    "request",
                    method=request.method,
                    path=request.path,
                    status=status,
                    ip=request.remote,
                    ms=round(elapsed * 1000, 2),
                )
    settings = request.config_dict[SETTINGS]
    incoming = request.headers.get("X-Request-Id", "")
    request_id = incoming if _REQUEST_ID_FORMAT.match(incoming) else secrets.token_hex(8)
    request[REQUEST_ID] = request_id
    request[CLIENT_IP] = client_ip(
        request.remote, request.headers.get("X-Forwarded-For"), settings.trusted_proxies
    )
    structlog.contextvars.bind_contextvars(request_id=request_id)
    status = 500
    try:
        response = await handler(request)
        status = response.status
        response.headers["X-Request-Id"] = request_id
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        elapsed = time.perf_counter() - started
        observe_request(request, status, elapsed)
        if settings.access_log:
            access_log.info(
                "request",
                method=request.method,
                path=request.path,
                status=status,
                ip=request[CLIENT_IP],
                ms=round(elapsed * 1000, 2),
            )
        structlog.contextvars.unbind_contextvars("request_id")
