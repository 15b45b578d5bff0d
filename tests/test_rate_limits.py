"""Per-product rate limits on the client API: RATE_LIMITED with Retry-After, counted per client IP."""

from __future__ import annotations

from licsrv.state import PRODUCTS

from factories import make_license, make_product


async def limited_product(client, conn, rate_limits: dict) -> dict:
    product = await make_product(conn, client.app)
    await conn.execute("UPDATE products SET rate_limits = $2 WHERE id = $1", product["id"], rate_limits)
    await client.app[PRODUCTS].reload()
    return product


async def validate(client, product, license_key, ip="198.51.100.7"):
    response = await client.post(
        "/api/v1/licenses/validate",
        json={"license_key": license_key, "hardware_id": "hw"},
        headers={"X-API-Key": product["api_key"], "X-Forwarded-For": ip},
    )
    return response, await response.json()


async def test_over_the_limit_is_429_with_retry_after_and_one_security_event(client, conn, queries):
    product = await limited_product(client, conn, {"validate": "3/minute"})
    lic = await make_license(conn, queries, product)
    statuses = [(await validate(client, product, lic["key"]))[0].status for _ in range(5)]
    assert statuses == [403, 403, 403, 429, 429]  # DEVICE_NOT_ACTIVATED until the limit, then refused
    response, body = await validate(client, product, lic["key"])
    assert body["error"]["code"] == "RATE_LIMITED"
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    events = await conn.fetch(
        "SELECT * FROM security_events WHERE kind = 'rate_limited' AND product_id = $1", product["id"]
    )
    assert len(events) == 1  # reported once a minute, not for every refused call


async def test_limits_are_per_call_group_and_product(client, conn, queries):
    product = await limited_product(client, conn, {"validate": "2/minute"})
    lic = await make_license(conn, queries, product)
    for _ in range(2):
        await validate(client, product, lic["key"])
    assert (await validate(client, product, lic["key"]))[0].status == 429
    # Another call group of the same product is not limited.
    activate = await client.post(
        "/api/v1/licenses/activate",
        json={"license_key": lic["key"], "hardware_id": "hw"},
        headers={"X-API-Key": product["api_key"]},
    )
    assert activate.status == 200
    # Another product is counted on its own.
    other = await limited_product(client, conn, {"validate": "2/minute"})
    other_license = await make_license(conn, queries, other)
    assert (await validate(client, other, other_license["key"]))[0].status == 403


async def test_wildcard_limit_and_legacy_routes(client, conn, queries):
    product = await limited_product(client, conn, {"*": "2/minute"})
    lic = await make_license(conn, queries, product)
    headers = {"X-API-Key": product["api_key"]}
    body = {"license_key": lic["key"], "hardware_hash": "dev-1"}
    codes = []
    for _ in range(3):
        response = await client.post("/api/license/verify", json=body, headers=headers)
        codes.append((response.status, (await response.json()).get("code")))
    assert codes[-1] == (429, "RATE_LIMITED")


async def test_bad_rate_limit_settings_are_refused(client, admin_headers, conn):
    product = await make_product(conn, client.app)
    for bad in ({"validate": "lots"}, {"nope": "1/minute"}, {"validate": 5}, ["1/minute"]):
        response = await client.patch(
            f"/api/v1/admin/products/{product['id']}", json={"rate_limits": bad}, headers=admin_headers
        )
        assert response.status == 400, bad
    good = await client.patch(
        f"/api/v1/admin/products/{product['id']}",
        json={"rate_limits": {"start": "5/second; 100/hour"}},
        headers=admin_headers,
    )
    assert good.status == 200
    assert (await good.json())["data"]["rate_limits"] == {"start": "5/second; 100/hour"}
