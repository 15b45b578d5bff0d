"""Bounded input on the management API: flat features, known ids, http(s) download URLs."""

from __future__ import annotations

import pytest

from factories import make_product

LICENSES = "/api/v1/admin/licenses"


def nested(depth: int) -> dict:
    value: dict = {"leaf": True}
    for _ in range(depth):
        value = {"x": value}
    return value


@pytest.mark.parametrize(
    "features",
    [
        nested(1),
        nested(300),
        {f"f{n}": True for n in range(101)},
        {"tier": "x" * 201},
        {"list": [1, 2]},
        {"none": None},
        {"": True},
        {"x" * 65: True},
    ],
    ids=["nested", "nested-300", "101-names", "long-string", "list", "null", "empty-name", "long-name"],
)
async def test_features_that_are_not_flat_and_small_are_refused(client, conn, admin_headers, features):
    before = await conn.fetchval("SELECT count(*) FROM licenses")
    response = await client.post(LICENSES, json={"features": features}, headers=admin_headers)
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "VALIDATION_ERROR"
    assert await conn.fetchval("SELECT count(*) FROM licenses") == before


async def test_flat_features_are_stored(client, admin_headers):
    features = {"pro": True, "seats": 5, "ratio": 0.5, "tier": "gold", **{f"f{n}": 1 for n in range(96)}}
    response = await client.post(LICENSES, json={"features": features}, headers=admin_headers)
    assert response.status == 201
    assert (await response.json())["data"]["features"] == features


async def test_unknown_product_id_is_422_unknown_reference_and_writes_nothing(client, conn, admin_headers):
    before = await conn.fetchval("SELECT count(*) FROM licenses")
    response = await client.post(LICENSES, json={"product_id": 987654321}, headers=admin_headers)
    body = await response.json()
    assert response.status == 422 and body["error"]["code"] == "UNKNOWN_REFERENCE"
    assert body["error"]["details"] == {"product_id": ["No product has this id."]}
    assert await conn.fetchval("SELECT count(*) FROM licenses") == before
    batch = await client.post(
        "/api/v1/admin/card-batches",
        json={"product_id": 987654321, "count": 1, "duration_days": 1},
        headers=admin_headers,
    )
    assert batch.status in (404, 422)


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "data:text/html,hi", "/relative", "ftp://example.com/x", "http://", "a b"]
)
async def test_download_url_is_http_or_https_only(client, conn, admin_headers, url):
    product = await make_product(conn, client.app)
    path = f"/api/v1/admin/products/{product['id']}"
    response = await client.patch(path, json={"download_url": url}, headers=admin_headers)
    assert response.status == 400
    assert (await response.json())["error"]["details"] == {
        "download_url": ["an http:// or https:// URL (or empty)."]
    }
    stored = await conn.fetchval("SELECT download_url FROM products WHERE id = $1", product["id"])
    assert stored == product["download_url"]
    for good in ("https://example.com/app.exe", "http://10.0.0.1:8080/dl", ""):
        response = await client.patch(path, json={"download_url": good}, headers=admin_headers)
        assert response.status == 200


async def test_expiry_outside_sane_years_is_refused_and_extending_never_overflows(
    client, conn, admin_headers
):
    for moment in ("0001-01-01T00:00:00Z", "9999-12-31T00:00:00Z"):
        response = await client.post(LICENSES, json={"expires_at": moment}, headers=admin_headers)
        assert response.status == 400, moment
    created = await client.post(LICENSES, json={"expires_at": "2999-12-01T00:00:00Z"}, headers=admin_headers)
    license_id = (await created.json())["data"]["id"]
    statuses = set()
    for _ in range(75):  # 75 × 100 years: far past what a date can hold
        extend = await client.post(
            f"{LICENSES}/{license_id}/extend", json={"days": 36500}, headers=admin_headers
        )
        statuses.add(extend.status)
    assert statuses <= {200, 400} and 400 in statuses
