"""No caching of secret or personal pages, and viewers never see product API keys."""

from __future__ import annotations

from licsrv.services.audit import CLI_ACTOR
from licsrv.services.tokens import create_token

from admin_helpers import login, make_admin
from factories import make_product


async def token_of(conn, queries, role: str) -> dict[str, str]:
    _, token = await create_token(conn, queries, f"{role}-exposure", role, CLI_ACTOR)
    return {"Authorization": f"Bearer {token}"}


async def test_admin_pages_management_api_and_card_csv_are_no_store(client, conn, queries, admin_headers):
    batch = await client.post(
        "/api/v1/admin/card-batches", json={"count": 2, "duration_days": 1}, headers=admin_headers
    )
    batch_id = (await batch.json())["data"]["id"]
    for path in ("/api/v1/admin/products", f"/api/v1/admin/card-batches/{batch_id}/export"):
        response = await client.get(path, headers=admin_headers)
        assert response.status == 200 and response.headers["Cache-Control"] == "no-store", path
    refused = await client.get("/api/v1/admin/licenses/999999999", headers=admin_headers)
    assert refused.status == 404 and refused.headers["Cache-Control"] == "no-store"
    unauthenticated = await client.get("/api/v1/admin/products")
    assert unauthenticated.status == 401 and unauthenticated.headers["Cache-Control"] == "no-store"

    assert (await login(client, await make_admin(conn, queries, "operator"))).status == 303
    for path in (
        "/admin/",
        "/admin/licenses",
        "/admin/products/1",
        f"/admin/cards/{batch_id}.csv",
    ):
        response = await client.get(path, allow_redirects=False)
        assert response.status == 200 and response.headers["Cache-Control"] == "no-store", path


async def test_viewer_and_operator_tokens_never_see_api_keys(client, conn, queries):
    product = await make_product(conn, client.app)
    for role in ("viewer", "operator"):
        headers = await token_of(conn, queries, role)
        listing = await (await client.get("/api/v1/admin/products", headers=headers)).json()
        one = await (await client.get(f"/api/v1/admin/products/{product['id']}", headers=headers)).json()
        assert all("api_key" not in p for p in listing["data"]) and "api_key" not in one["data"], role
        assert product["api_key"] not in str(listing) + str(one)
    owner = await token_of(conn, queries, "owner")
    one = await (await client.get(f"/api/v1/admin/products/{product['id']}", headers=owner)).json()
    assert one["data"]["api_key"] == product["api_key"]


async def test_viewer_settings_page_shows_no_part_of_the_api_key(client, conn, queries):
    product = await make_product(conn, client.app)
    assert (await login(client, await make_admin(conn, queries, "viewer"))).status == 303
    page = await (await client.get(f"/admin/products/{product['id']}")).text()
    assert "shown to owners only" in page
    assert product["api_key"][:8] not in page and product["api_key"][-8:] not in page
