"""Products and plans through the management API: create, conflicts, archive, licenses made from a plan."""

from __future__ import annotations

import asyncio
import secrets

from licsrv.app import create_app
from licsrv.services.audit import CLI_ACTOR
from licsrv.services.tokens import create_token

API = "/api/v1/admin"


def slug() -> str:
    return f"cat-{secrets.token_hex(4)}"


async def post(client, path, headers, body=None):
    response = await client.post(f"{API}{path}", json=body, headers=headers)
    return response.status, await response.json()


async def new_product(client, headers, **fields):
    status, body = await post(
        client, "/products", headers, {"name": "Katalog 商品", "slug": slug(), **fields}
    )
    assert status == 201, body
    return body["data"]


async def test_a_created_product_answers_clients_at_once(client, admin_headers):
    product = await new_product(client, admin_headers, heartbeat_interval=10, session_timeout=25)
    assert product["api_key"].startswith("lk_") and product["archived_at"] is None
    assert (product["heartbeat_interval"], product["session_timeout"]) == (10, 25)
    # No waiting for the NOTIFY: this worker reloaded its API-key cache before answering.
    unknown = await client.post(
        "/api/v1/licenses/validate",
        json={"license_key": "NOSUCH-KEY-00000", "hardware_id": "x"},
        headers={"X-API-Key": product["api_key"]},
    )
    assert (await unknown.json())["error"]["code"] == "LICENSE_NOT_FOUND"
    listed = (await (await client.get(f"{API}/products", headers=admin_headers)).json())["data"]
    assert product["slug"] in {p["slug"] for p in listed}


async def test_another_worker_learns_of_a_new_product_through_notify(
    client, aiohttp_client, settings, admin_headers
):
    other_worker = await aiohttp_client(create_app(settings))
    product = await new_product(client, admin_headers)
    # The other worker's cache reloads on the NOTIFY sent at commit (milliseconds; bounded wait, no TTL).
    for _ in range(250):
        answer = await other_worker.get("/api/v1/keys/none", headers={"X-API-Key": product["api_key"]})
        if answer.status != 401:
            break
        await asyncio.sleep(0.02)
    assert answer.status == 404  # past the API key check: the key is known there too


async def test_imported_api_key_is_kept_checked_and_unique(client, conn, admin_headers):
    legacy_key = f"OLD-{secrets.token_hex(8)}"
    product = await new_product(client, admin_headers, api_key=legacy_key)
    assert product["api_key"] == legacy_key
    status, body = await post(
        client, "/products", admin_headers, {"name": "Twin", "slug": slug(), "api_key": legacy_key}
    )
    assert (status, body["error"]["code"]) == (409, "API_KEY_TAKEN")
    status, body = await post(client, "/products", admin_headers, {"name": "Twin", "slug": product["slug"]})
    assert (status, body["error"]["code"]) == (409, "SLUG_TAKEN")
    for bad_key in ("short", "has space inside", "ü" * 10, "x" * 201):
        status, body = await post(
            client, "/products", admin_headers, {"name": "X", "slug": slug(), "api_key": bad_key}
        )
        assert (status, body["error"]["code"]) == (400, "VALIDATION_ERROR"), bad_key
    for bad_slug in ("Upper", "-dash", "", "a" * 64, "ü"):
        status, body = await post(client, "/products", admin_headers, {"name": "X", "slug": bad_slug})
        assert status == 400, bad_slug
    status, body = await post(
        client,
        "/products",
        admin_headers,
        {"name": "X", "slug": slug(), "heartbeat_interval": 50, "session_timeout": 60},
    )
    assert status == 400 and "twice" in body["error"]["message"]
    audited = await conn.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'product.create' AND object_id = $1",
        str(product["id"]),
    )
    assert audited == 1


async def test_only_owners_create_rename_and_archive(client, conn, queries, admin_headers):
    _, token = await create_token(conn, queries, f"op-{secrets.token_hex(3)}", "operator", CLI_ACTOR)
    operator = {"Authorization": f"Bearer {token}"}
    status, body = await post(client, "/products", operator, {"name": "No", "slug": slug()})
    assert (status, body["error"]["code"]) == (403, "FORBIDDEN")
    product = await new_product(client, admin_headers)
    assert (await post(client, f"/products/{product['id']}/archive", operator))[0] == 403
    renamed = await client.patch(
        f"{API}/products/{product['id']}", json={"name": "Neuer Name"}, headers=admin_headers
    )
    assert renamed.status == 200 and (await renamed.json())["data"]["name"] == "Neuer Name"
    empty = await client.patch(f"{API}/products/{product['id']}", json={"name": ""}, headers=admin_headers)
    assert empty.status == 400


async def test_archived_product_refuses_new_licenses_plans_and_cards_but_old_licenses_work(
    client, admin_headers
):
    product = await new_product(client, admin_headers)
    pid, client_headers = product["id"], {"X-API-Key": product["api_key"]}
    status, lic = await post(client, "/licenses", admin_headers, {"product_id": pid, "max_devices": 2})
    assert status == 201
    status, archived = await post(client, f"/products/{pid}/archive", admin_headers)
    assert status == 200 and archived["data"]["archived_at"] is not None
    for path, body in (
        ("/licenses", {"product_id": pid}),
        ("/card-batches", {"product_id": pid, "count": 2, "duration_days": 30, "note": ""}),
        ("/plans", {"product_id": pid, "name": "Late"}),
    ):
        status, refused = await post(client, path, admin_headers, body)
        assert (status, refused["error"]["code"]) == (409, "PRODUCT_ARCHIVED"), path
    # The license sold before keeps activating and starting sessions.
    activate = await client.post(
        "/api/v1/licenses/activate",
        json={"license_key": lic["data"]["key"], "hardware_id": "hw-old"},
        headers=client_headers,
    )
    assert activate.status == 200, await activate.text()
    start = await client.post(
        "/api/v1/sessions/start",
        json={"license_key": lic["data"]["key"], "hardware_id": "hw-old", "client_version": "9.0.0"},
        headers=client_headers,
    )
    assert start.status == 200, await start.text()
    status, reopened = await post(client, f"/products/{pid}/unarchive", admin_headers)
    assert status == 200 and reopened["data"]["archived_at"] is None
    assert (await post(client, "/licenses", admin_headers, {"product_id": pid}))[0] == 201


async def test_plan_crud_names_archive_and_audit(client, conn, admin_headers):
    product = await new_product(client, admin_headers)
    body = {
        "product_id": product["id"],
        "name": "Pro · 30 Tage",
        "max_devices": 2,
        "max_sessions": 3,
        "duration_days": 30,
        "features": {"pro": True, "seats": 5, "tier": "gold"},
    }
    status, created = await post(client, "/plans", admin_headers, body)
    assert status == 201, created
    plan = created["data"]
    assert plan["features"] == {"pro": True, "seats": 5, "tier": "gold"} and plan["archived_at"] is None
    status, taken = await post(client, "/plans", admin_headers, {**body, "name": "pro · 30 tage"})
    assert (status, taken["error"]["code"]) == (409, "PLAN_NAME_TAKEN")
    status, other = await post(
        client, "/plans", admin_headers, {**body, "name": "Basic", "duration_days": None}
    )
    assert status == 201 and other["data"]["duration_days"] is None
    clash = await client.patch(
        f"{API}/plans/{other['data']['id']}", json={"name": "PRO · 30 TAGE"}, headers=admin_headers
    )
    assert clash.status == 409 and (await clash.json())["error"]["code"] == "PLAN_NAME_TAKEN"
    changed = await client.patch(f"{API}/plans/{plan['id']}", json={"max_devices": 4}, headers=admin_headers)
    assert changed.status == 200 and (await changed.json())["data"]["max_devices"] == 4
    listed = await client.get(f"{API}/plans", params={"product_id": product["id"]}, headers=admin_headers)
    assert [p["name"] for p in (await listed.json())["data"]] == ["Basic", "Pro · 30 Tage"]
    status, archived = await post(client, f"/plans/{plan['id']}/archive", admin_headers)
    assert status == 200 and archived["data"]["archived_at"] is not None
    # Archived: its name is free again, it is kept as it was, and nothing new is made from it.
    assert (await post(client, "/plans", admin_headers, body))[0] == 201
    frozen = await client.patch(f"{API}/plans/{plan['id']}", json={"max_devices": 9}, headers=admin_headers)
    assert (await frozen.json())["error"]["code"] == "PLAN_ARCHIVED"
    status, refused = await post(
        client, "/licenses", admin_headers, {"product_id": product["id"], "plan_id": plan["id"]}
    )
    assert (status, refused["error"]["code"]) == (409, "PLAN_ARCHIVED")
    actions = await conn.fetch(
        "SELECT action FROM audit_log WHERE object_type = 'plan' AND object_id = $1 ORDER BY id",
        str(plan["id"]),
    )
    assert [a["action"] for a in actions] == ["plan.create", "plan.update", "plan.archive"]
    missing = await client.get(f"{API}/plans/999999999", headers=admin_headers)
    assert missing.status == 404 and (await missing.json())["error"]["code"] == "PLAN_NOT_FOUND"


async def test_bad_plans_are_refused_before_anything_is_written(client, conn, admin_headers):
    product = await new_product(client, admin_headers)
    before = await conn.fetchval("SELECT count(*) FROM plans")
    for bad in (
        {"name": ""},
        {"name": "x", "max_devices": -1},
        {"name": "x", "duration_days": 0},
        {"name": "x", "features": {"nested": {"a": 1}}},
        {"name": "x", "unknown": 1},
        {"name": "x", "product_id": 999999999},
    ):
        status, body = await post(client, "/plans", admin_headers, {"product_id": product["id"], **bad})
        assert 400 <= status < 500 and body["status"] == "error", bad
    assert await conn.fetchval("SELECT count(*) FROM plans") == before


async def test_a_license_from_a_plan_copies_it_and_keeps_what_was_given(client, admin_headers):
    product = await new_product(client, admin_headers)
    features = {"pro": True, "export": "pdf"}
    plan_body = {
        "product_id": product["id"],
        "name": "Team",
        "max_devices": 3,
        "max_sessions": 2,
        "duration_days": 90,
    }
    status, plan = await post(client, "/plans", admin_headers, {**plan_body, "features": features})
    plan_id = plan["data"]["id"]
    status, lic = await post(
        client, "/licenses", admin_headers, {"product_id": product["id"], "plan_id": plan_id}
    )
    assert status == 201, lic
    data = lic["data"]
    assert (data["max_devices"], data["max_sessions"], data["duration_days"]) == (3, 2, 90)
    assert data["features"] == features and data["plan_id"] == plan_id
    listed = await client.get(f"{API}/licenses", params={"product_id": product["id"]}, headers=admin_headers)
    assert [lic["plan_id"] for lic in (await listed.json())["data"]] == [plan_id]
    status, own = await post(
        client,
        "/licenses",
        admin_headers,
        {"product_id": product["id"], "plan_id": plan_id, "max_devices": 1, "features": {"pro": False}},
    )
    assert (own["data"]["max_devices"], own["data"]["features"], own["data"]["max_sessions"]) == (
        1,
        {"pro": False},
        2,
    )
    # Editing the plan later never changes the license already sold.
    await client.patch(
        f"{API}/plans/{plan_id}", json={"max_devices": 10, "features": {}}, headers=admin_headers
    )
    again = await (await client.get(f"{API}/licenses/{data['id']}", headers=admin_headers)).json()
    assert again["data"]["max_devices"] == 3 and again["data"]["features"] == features
    other = await new_product(client, admin_headers)
    status, refused = await post(
        client, "/licenses", admin_headers, {"product_id": other["id"], "plan_id": plan_id}
    )
    assert (status, refused["error"]["code"]) == (422, "PLAN_OF_ANOTHER_PRODUCT")
    status, refused = await post(
        client, "/licenses", admin_headers, {"product_id": product["id"], "plan_id": 999999999}
    )
    assert (status, refused["error"]["code"]) == (404, "PLAN_NOT_FOUND")
    # Without a plan a license is as before: one slot, no features.
    status, plain = await post(client, "/licenses", admin_headers, {"product_id": product["id"]})
    assert (plain["data"]["max_devices"], plain["data"]["features"], plain["data"]["plan_id"]) == (
        1,
        {},
        None,
    )
