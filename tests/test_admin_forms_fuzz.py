"""Every admin form and list page fed values the JSON API refuses: a 4xx page in words, never a 500, and
nothing half-written."""

from __future__ import annotations

import pytest

from admin_helpers import login as log_in
from admin_helpers import make_admin, page_csrf
from factories import make_license

BAD = [
    "",
    "abc",
    "-1",
    "0",
    "1.5",
    "1e5",
    "99999999999999999999999",
    "9223372036854775808",
    "NaN",
    "\x00",
    "<script>alert(1)</script>",
    "javascript:alert(1)",
    "[]",
    '{"a": {"b": {"c": 1}}}',
    '{"a": null}',
    "x" * 3000,
]

FORMS = {
    "/admin/licenses": {
        "customer_name": "n",
        "customer_email": "e@example.com",
        "max_devices": "1",
        "max_sessions": "",
        "duration_days": "",
        "notes": "",
        "product_id": "1",
        "plan_id": "",
        "features.name": "",
        "features.value": "",
    },
    "/admin/licenses/{license}/edit": {
        "customer_name": "n",
        "customer_email": "e",
        "max_devices": "1",
        "max_sessions": "",
        "notes": "",
    },
    "/admin/licenses/{license}/extend": {"days": "3"},
    "/admin/licenses/{license}/remove-device": {"device_id": "1"},
    "/admin/cards": {"count": "2", "duration_days": "3", "product_id": "1", "note": ""},
    "/admin/products/1": {
        "current_version": "2.0.0",
        "minimum_version": "1.0.0",
        "download_url": "https://example.com/dl",
        "whats_new": "",
        "session_policy": "reject",
        "max_sessions": "1",
        "heartbeat_interval": "30",
        "session_timeout": "60",
        "features.name": "",
        "features.value": "",
        "rate_limits.name": "",
        "rate_limits.value": "",
    },
    "/admin/tokens": {"name": "t", "role": "viewer"},
    "/admin/admins": {"username": "fuzz", "password": "long enough password", "role": "viewer"},
    "/admin/admins/{admin}": {"role": "viewer", "new_password": ""},
    "/admin/password": {"current_password": "x", "new_password": "y", "repeat_password": "y"},
}

LISTS = {
    "/admin/licenses": ("q", "cursor"),
    "/admin/history": ("license_id", "license_key", "since", "until", "reason", "q", "cursor"),
    "/admin/sessions": ("license_id", "q"),
    "/admin/audit": ("cursor", "q", "before"),
    "/admin/security": ("cursor", "q", "kind", "before"),
    "/admin/cards": ("q", "cursor"),
}

UNKNOWN_IDS = [
    "/admin/licenses/999999999/suspend",
    "/admin/licenses/999999999/extend",
    "/admin/licenses/999999999/nothing",
    "/admin/cards/999999999/void",
    "/admin/products/999999999",
    "/admin/products/999999999/rotate",
    "/admin/tokens/999999999/revoke",
    "/admin/admins/999999999",
    "/admin/sessions/AAAAAAAAAAAA/terminate",
]


@pytest.fixture
async def owner(client, conn, queries):
    username = await make_admin(conn, queries, "owner")
    assert (await log_in(client, username)).status == 303
    return username


async def test_no_form_answers_500_to_bad_values(client, conn, queries, owner, default_product):
    lic = await make_license(conn, queries, dict(default_product))
    victim = await make_admin(conn, queries, "viewer")
    victim_id = await conn.fetchval("SELECT id FROM admin_users WHERE username = $1", victim)
    token = await page_csrf(client, "/admin/licenses")
    failures = []
    for template, good in FORMS.items():
        path = template.format(license=lic["id"], admin=victim_id)
        for field in good:
            for bad in BAD:
                data = {**good, field: bad, "csrf": token}
                response = await client.post(path, data=data, allow_redirects=False)
                if response.status >= 500:
                    failures.append((path, field, bad[:30], response.status))
    for path in UNKNOWN_IDS:
        response = await client.post(path, data={"csrf": token, "days": "1"}, allow_redirects=False)
        if response.status >= 500 or response.status == 200:
            failures.append((path, "", "", response.status))
    for path, params in LISTS.items():
        for name in params:
            for bad in BAD:
                response = await client.get(path, params={name: bad}, allow_redirects=False)
                if response.status >= 500:
                    failures.append((path, name, bad[:30], response.status))
    assert failures == []
    # Nothing half-written: the product kept its valid settings through all of it.
    product = await conn.fetchrow("SELECT * FROM products WHERE id = 1")
    assert product["download_url"].startswith(("https://", "http://")) or product["download_url"] == ""
    assert isinstance(product["features"], dict)
    assert all(not isinstance(v, dict | list) for v in product["features"].values())


async def test_refused_form_input_is_answered_in_the_apis_words(client, conn, queries, owner):
    token = await page_csrf(client, "/admin/products/1")
    form = {**FORMS["/admin/products/1"], "csrf": token}
    refused = await client.post("/admin/products/1", data={**form, "download_url": "javascript:alert(1)"})
    assert refused.status == 400 and "an http:// or https:// URL" in await refused.text()
    twice = [("csrf", token), ("features.name", "a"), ("features.value", "1")] * 2
    doubled = await client.post("/admin/products/1", data=twice)
    assert doubled.status == 400 and "named twice" in await doubled.text()
    unknown_call = {**form, "rate_limits.name": "everything", "rate_limits.value": "5/minute"}
    refused_call = await client.post("/admin/products/1", data=unknown_call)
    assert refused_call.status == 400 and "is not one of" in await refused_call.text()
    before = await conn.fetchval("SELECT count(*) FROM licenses")
    unknown = await client.post("/admin/licenses", data={"csrf": token, "product_id": "999999"})
    assert unknown.status == 422 and "names nothing that exists" in await unknown.text()
    assert await conn.fetchval("SELECT count(*) FROM licenses") == before


async def test_license_and_card_forms_refuse_in_the_apis_words(client, conn, owner, admin_headers):
    token = await page_csrf(client, "/admin/licenses")
    api = await client.post("/api/v1/admin/licenses", json={"max_devices": 200000}, headers=admin_headers)
    assert "max_devices" in (await api.json())["error"]["details"]
    # The same refusal, said with the form's label instead of the field's name.
    ui = await client.post("/admin/licenses", data={"csrf": token, "max_devices": "200000"})
    assert api.status == ui.status == 400
    assert "Device slots must be between 0 and 100000." in await ui.text()
    cards = await client.post("/admin/cards", data={"csrf": token, "count": "abc", "duration_days": "3"})
    assert cards.status == 400 and "Number of cards must be a whole number." in await cards.text()
