from __future__ import annotations

from licsrv.openapi import api_routes


async def test_every_api_route_is_in_the_openapi_document(client):
    response = await client.get("/api/openapi.json")
    assert response.status == 200
    spec = await response.json()
    assert spec["openapi"].startswith("3.")
    documented = {(path, method) for path, operations in spec["paths"].items() for method in operations}
    routes = {
        (path, method.lower())
        for method, path, _ in api_routes(client.app)
        if path.startswith("/api/") and not path.startswith(("/api/docs", "/api/openapi.json"))
    }
    assert routes, "no routes found"
    assert sorted(routes - documented) == []


async def test_schemas_and_error_codes_are_described(client):
    spec = await (await client.get("/api/openapi.json")).json()
    start = spec["paths"]["/api/v1/sessions/start"]["post"]
    assert start["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/Start")
    assert "SESSION_LIMIT_REACHED" in start["responses"]["409"]["description"]
    assert start["security"] == [{"apiKey": []}]
    assert spec["paths"]["/api/v1/admin/licenses"]["post"]["security"] == [{"bearer": []}]
    assert "hardware_id" in spec["components"]["schemas"]["Start"]["properties"]
    assert (
        "INVALID_API_KEY"
        in spec["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"]
    )


async def test_docs_page_is_served_with_bundled_assets(client):
    for path in ("/api/docs", "/api/docs/"):
        response = await client.get(path)
        assert response.status == 200
        html = await response.text()
        assert "swagger" in html.lower() and 'url: "/api/openapi.json"' in html
    bundle = await client.get("/api/docs/static/swagger-ui-bundle.js")
    assert bundle.status == 200
