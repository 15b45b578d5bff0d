"""The admin UI's catalogue: the products page, the header's product switcher, plans, and the key/value
editor that replaces JSON textareas."""

from __future__ import annotations

import secrets

import pytest
from multidict import MultiDict

from licsrv.errors import ApiError
from licsrv.web.forms import kv_rows, parse_kv

from admin_helpers import login, make_admin, page_csrf
from factories import make_license, make_product


@pytest.fixture
async def owner(client, conn, queries):
    username = await make_admin(conn, queries, "owner")
    assert (await login(client, username)).status == 303
    return username


def kv(*pairs: tuple[str, str], prefix: str = "features") -> list[tuple[str, str]]:
    rows = []
    for name, value in pairs:
        rows += [(f"{prefix}.name", name), (f"{prefix}.value", value)]
    return rows


def test_key_value_rows_become_a_flat_object_of_typed_values():
    posted = MultiDict(
        kv(
            ("pro", "TRUE"),
            ("beta", "false"),
            ("seats", "5"),
            ("ratio", "2.5"),
            ("tier", "Gold 金"),
            ("", ""),
            ("zip", "007"),
        )
    )
    assert parse_kv(kv_rows(posted, "features"), "Features") == {
        "pro": True,
        "beta": False,
        "seats": 5,
        "ratio": 2.5,
        "tier": "Gold 金",
        "zip": "007",
    }
    refusals = {
        "named twice": kv(("a", "1"), ("a", "2")),
        "has no name": kv(("", "1")),
        "needs a value": kv(("a", "")),
        "at most 200": kv(("a", "x" * 201)),
        "printable": kv(("a\x00", "1")),
    }
    for words, pairs in refusals.items():
        with pytest.raises(ApiError, match=words):
            parse_kv(kv_rows(MultiDict(pairs), "features"), "Features")
    limits = kv_rows(MultiDict(kv(("start", "60/minute"), prefix="rate_limits")), "rate_limits")
    assert parse_kv(limits, "Rate limits", typed=False, names={"start"}) == {"start": "60/minute"}


async def test_owner_creates_renames_and_archives_a_product_in_the_ui(client, conn, owner):
    token = await page_csrf(client, "/admin/products")
    slug = f"ui-{secrets.token_hex(4)}"
    created = await client.post(
        "/admin/products", data={"csrf": token, "name": "Malwerk 画图", "slug": slug, "api_key": ""}
    )
    assert created.status == 200 and "Product Malwerk 画图 created" in await created.text()
    product_id = await conn.fetchval("SELECT id FROM products WHERE slug = $1", slug)
    again = await client.post(
        "/admin/products", data={"csrf": token, "name": "Zweites", "slug": slug, "api_key": ""}
    )
    text = await again.text()
    assert again.status == 409 and "exists already" in text and 'value="Zweites"' in text
    renamed = await client.post(
        f"/admin/products/{product_id}/rename", data={"csrf": token, "name": "Malwerk 2"}
    )
    assert "Renamed to Malwerk 2" in await renamed.text()
    archived = await client.post(f"/admin/products/{product_id}/archive", data={"csrf": token})
    assert "is archived" in await archived.text()
    refused = await client.post("/admin/licenses", data={"csrf": token, "product_id": str(product_id)})
    assert refused.status == 409 and "archived" in await refused.text()


async def test_operators_cannot_create_products(client, conn, queries):
    assert (await login(client, await make_admin(conn, queries, "operator"))).status == 303
    token = await page_csrf(client, "/admin/products")
    response = await client.post("/admin/products", data={"csrf": token, "name": "x", "slug": "x-op"})
    assert response.status == 403


async def test_the_switcher_scopes_licenses_sessions_and_dashboard(client, conn, queries, owner):
    first, second = await make_product(conn, client.app), await make_product(conn, client.app)
    mine = await make_license(conn, queries, first, customer_name="Erste Kundin")
    theirs = await make_license(conn, queries, second, customer_name="Zweiter Kunde")
    token = await page_csrf(client, "/admin/licenses")
    switched = await client.post(
        "/admin/scope",
        data={"csrf": token, "product_id": str(first["id"]), "next": "/admin/licenses?q="},
        allow_redirects=False,
    )
    assert switched.status == 303 and switched.headers["Location"] == "/admin/licenses?q="
    assert (
        "HttpOnly" in switched.headers["Set-Cookie"] and "SameSite=Strict" in switched.headers["Set-Cookie"]
    )
    listing = await (await client.get("/admin/licenses")).text()
    assert mine["key"] in listing and theirs["key"] not in listing
    assert f'<option value="{first["id"]}" selected>' in listing and "Showing product" in listing
    dashboard = await (await client.get("/admin/")).text()
    assert 'id="licenses">1<' in dashboard
    assert (await client.get("/admin/sessions")).status == 200
    everything = await client.post(
        "/admin/scope",
        data={"csrf": token, "product_id": "", "next": "https://evil.example/"},
        allow_redirects=False,
    )
    assert everything.headers["Location"] == "/admin/"
    listing = await (await client.get("/admin/licenses")).text()
    assert mine["key"] in listing and theirs["key"] in listing and "Showing product" not in listing
    forged = await client.post("/admin/scope", data={"product_id": str(first["id"])}, allow_redirects=False)
    assert forged.status == 403


async def test_settings_link_opens_the_product_in_scope(client, conn, owner):
    product = await make_product(conn, client.app)
    token = await page_csrf(client)
    await client.post(
        "/admin/scope", data={"csrf": token, "product_id": str(product["id"]), "next": "/admin/"}
    )
    response = await client.get("/admin/settings", allow_redirects=False)
    assert response.headers["Location"] == f"/admin/products/{product['id']}"


async def test_plans_page_creates_edits_and_archives_with_the_key_value_editor(client, conn, owner):
    product = await make_product(conn, client.app)
    token = await page_csrf(client, "/admin/plans")
    form = [
        ("csrf", token),
        ("product_id", str(product["id"])),
        ("name", "Studio"),
        ("max_devices", "2"),
        ("max_sessions", ""),
        ("duration_days", "365"),
    ]
    created = await client.post("/admin/plans", data=form + kv(("pro", "true"), ("seats", "3"), ("", "")))
    assert created.status == 200 and "Plan Studio created" in await created.text()
    plan = await conn.fetchrow("SELECT * FROM plans WHERE product_id = $1", product["id"])
    assert (
        plan["features"] == {"pro": True, "seats": 3}
        and plan["duration_days"] == 365
        and plan["max_sessions"] is None
    )
    doubled = await client.post(
        "/admin/plans", data=[*form[:2], ("name", "Zwei"), *kv(("a", "1"), ("a", "2"))]
    )
    text = await doubled.text()
    assert doubled.status == 400 and "named twice" in text and 'value="Zwei"' in text
    edit_page = await (await client.get(f"/admin/plans?edit={plan['id']}")).text()
    assert 'name="features.name"' in edit_page and 'value="seats"' in edit_page
    edit = [
        ("csrf", token),
        ("name", "Studio"),
        ("max_devices", "4"),
        ("max_sessions", "2"),
        ("duration_days", ""),
    ]
    saved = await client.post(f"/admin/plans/{plan['id']}", data=edit + kv(("pro", "false")))
    assert "Plan Studio saved" in await saved.text()
    plan = await conn.fetchrow("SELECT * FROM plans WHERE id = $1", plan["id"])
    assert (plan["max_devices"], plan["max_sessions"], plan["duration_days"], plan["features"]) == (
        4,
        2,
        None,
        {"pro": False},
    )
    archived = await client.post(f"/admin/plans/{plan['id']}/archive", data={"csrf": token})
    assert "archived" in await archived.text()
    assert await conn.fetchval("SELECT archived_at IS NOT NULL FROM plans WHERE id = $1", plan["id"])


async def test_license_form_takes_a_plan_and_features(client, conn, queries, owner):
    product = await make_product(conn, client.app)
    plan = await conn.fetchrow(
        "INSERT INTO plans (product_id, name, max_devices, features) VALUES ($1, 'Gold', 3, $2) RETURNING *",
        product["id"],
        {"export": "pdf"},
    )
    token = await page_csrf(client, "/admin/licenses")
    form = [
        ("csrf", token),
        ("product_id", str(product["id"])),
        ("plan_id", str(plan["id"])),
        ("customer_name", "Plan Kunde"),
    ]
    created = await client.post("/admin/licenses", data=form + kv(("", "")), allow_redirects=False)
    assert created.status == 303, await created.text()
    detail = await (await client.get(created.headers["Location"])).text()
    assert "export: pdf" in detail and "from plan <strong>Gold</strong>" in detail
    lic = await conn.fetchrow("SELECT * FROM licenses WHERE customer_name = 'Plan Kunde'")
    assert (lic["max_devices"], lic["plan_id"]) == (3, plan["id"])
    edit = [("csrf", token), ("customer_name", "Plan Kunde"), ("max_devices", "3")]
    await client.post(
        f"/admin/licenses/{lic['id']}/edit", data=edit + kv(("export", "pdf"), ("watermark", "false"))
    )
    assert await conn.fetchval("SELECT features FROM licenses WHERE id = $1", lic["id"]) == {
        "export": "pdf",
        "watermark": False,
    }


async def test_product_settings_save_features_and_rate_limits_from_the_editor(client, conn, owner):
    product = await make_product(conn, client.app)
    token = await page_csrf(client, f"/admin/products/{product['id']}")
    form = [
        ("csrf", token), ("current_version", "2.0.0"), ("minimum_version", "1.0.0"), ("download_url", ""),
        ("whats_new", ""), ("session_policy", "reject"), ("max_sessions", "1"), ("heartbeat_interval", "1"),
        ("session_timeout", "2"),
    ]  # fmt: skip
    saved = await client.post(
        f"/admin/products/{product['id']}",
        data=form + kv(("beta_ui", "true"), ("", "")) + kv(("activate", "10/minute"), prefix="rate_limits"),
    )
    assert saved.status == 200 and "Product settings saved." in await saved.text()
    row = await conn.fetchrow("SELECT features, rate_limits FROM products WHERE id = $1", product["id"])
    assert (row["features"], row["rate_limits"]) == ({"beta_ui": True}, {"activate": "10/minute"})
    bad = await client.post(
        f"/admin/products/{product['id']}", data=form + kv(("activate", "often"), prefix="rate_limits")
    )
    assert bad.status == 400 and "a rate such as" in await bad.text()
