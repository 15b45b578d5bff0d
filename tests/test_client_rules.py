"""One rule set for every client surface (v1, legacy, /offline): API key, request signing, rate limits and
security events, declared on the routes."""

from __future__ import annotations

import ipaddress
import secrets
import time
from dataclasses import replace

import orjson
import pytest

from licsrv.api.request_signing import request_signature
from licsrv.app import create_app
from licsrv.openapi import api_routes
from licsrv.state import PRODUCTS
from licsrv_client.offline import make_request

from factories import make_license, make_product


async def set_product(client, conn, product: dict, **columns) -> None:
    for column, value in columns.items():
        await conn.execute(f"UPDATE products SET {column} = $2 WHERE id = $1", product["id"], value)
    await client.app[PRODUCTS].reload()


def signed_headers(api_key: str, path: str, body: bytes) -> dict[str, str]:
    ts, nonce = str(int(time.time())), f"n-{secrets.token_hex(8)}"
    return {
        "X-API-Key": api_key,
        "Content-Type": "application/json",
        "X-Licsrv-Timestamp": ts,
        "X-Licsrv-Nonce": nonce,
        "X-Licsrv-Request-Signature": request_signature(api_key, "POST", path, ts, nonce, body),
    }


def test_every_client_route_declares_its_rules(app):
    undeclared = [
        (method, path)
        for method, path, handler in api_routes(app)
        if path.startswith(("/api/v1/", "/api/license/", "/offline"))
        and not path.startswith("/api/v1/admin")
        and not (path == "/offline" and method == "GET")  # shows the request, binds nothing
        and getattr(handler, "__client_rules__", None) is None
    ]
    assert undeclared == []


async def test_legacy_api_refuses_unsigned_calls_when_the_product_requires_signatures(client, conn, queries):
    product = await make_product(conn, client.app)
    lic = await make_license(conn, queries, product)
    await set_product(client, conn, product, require_signed_requests=True)
    path = "/api/license/activate"
    body = orjson.dumps({"license_key": lic["key"], "hardware_hash": "hw-legacy"})
    unsigned = await client.post(path, data=body, headers={"X-API-Key": product["api_key"]})
    assert unsigned.status == 401
    assert await unsigned.json() == {
        "success": False,
        "error": "The request signature is not valid.",
        "code": "BAD_SIGNATURE",
    }
    assert await conn.fetchval("SELECT count(*) FROM devices WHERE license_id = $1", lic["id"]) == 0
    signed = await client.post(path, data=body, headers=signed_headers(product["api_key"], path, body))
    assert signed.status == 200 and (await signed.json())["activated"] is True
    events = await conn.fetchval(
        "SELECT count(*) FROM security_events WHERE kind = 'bad_signature' AND product_id = $1", product["id"]
    )
    assert events == 1


async def test_offline_page_honours_the_products_rate_limit(client, conn, queries):
    product = await make_product(conn, client.app)
    await set_product(client, conn, product, rate_limits={"activate": "2/minute"})
    statuses = []
    for n in range(3):
        lic = await make_license(conn, queries, product)
        response = await client.post("/offline", data={"r": make_request(lic["key"], f"hw-{n}").code()})
        statuses.append(response.status)
    assert statuses == [200, 200, 429]
    assert "Too many requests" in await response.text() and 1 <= int(response.headers["Retry-After"]) <= 60
    assert await conn.fetchval("SELECT count(*) FROM devices WHERE license_id = $1", lic["id"]) == 0
    events = await conn.fetchval(
        "SELECT count(*) FROM security_events WHERE kind = 'rate_limited' AND product_id = $1", product["id"]
    )
    assert events == 1


async def test_offline_page_is_closed_to_products_that_require_signed_requests(client, conn, queries):
    product = await make_product(conn, client.app)
    lic = await make_license(conn, queries, product)
    await set_product(client, conn, product, require_signed_requests=True)
    response = await client.post("/offline", data={"r": make_request(lic["key"], "hw-x").code()})
    assert response.status == 401 and "signature" in (await response.text()).lower()
    assert await conn.fetchval("SELECT count(*) FROM devices WHERE license_id = $1", lic["id"]) == 0


@pytest.fixture
async def proxied(aiohttp_client, settings):
    app = create_app(replace(settings, trusted_proxies=(ipaddress.ip_network("127.0.0.1/32"),)))
    return await aiohttp_client(app)


async def unknown_key_events(conn, ip: str) -> int:
    return await conn.fetchval(
        "SELECT count(*) FROM security_events WHERE kind = 'unknown_api_key' AND ip = $1::inet", ip
    )


async def test_unknown_api_keys_are_recorded_at_most_once_a_minute_per_address(proxied, conn):
    ip, other = "203.0.113.61", "203.0.113.62"
    calls = [
        ("/api/v1/licenses/validate", "lk_guess_1"),
        ("/api/v1/sessions/heartbeat", "lk_guess_2"),
        ("/api/license/verify", ""),
        ("/api/v1/offline/activate", "lk_guess_3"),
    ] * 5
    for path, key in calls:
        response = await proxied.post(path, json={}, headers={"X-API-Key": key, "X-Forwarded-For": ip})
        assert response.status == 401, path
    assert await unknown_key_events(conn, ip) == 1  # 20 refusals, one row
    row = await conn.fetchrow("SELECT details FROM security_events WHERE ip = $1::inet", ip)
    assert row["details"] == {"path": calls[0][0], "key_prefix": "lk_gue", "key_length": 10}
    await proxied.post(
        "/api/v1/licenses/validate", json={}, headers={"X-API-Key": "x", "X-Forwarded-For": other}
    )
    assert await unknown_key_events(conn, other) == 1
