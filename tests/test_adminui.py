"""The admin UI answers a shop's daily questions: usage charts, history by key, readable audit entries, forms
that keep what was typed and say why, a message after every change, the front page."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import pytest

from licsrv.services import usage
from licsrv.state import DEPS
from licsrv.web.audit_text import change_lines
from licsrv.web.charts import Plot, chart, nice_step
from licsrv.web.scope import SCOPE_COOKIE

from admin_helpers import login, make_admin, page_csrf
from factories import make_license, make_product


@pytest.fixture
async def owner(client, conn, queries):
    username = await make_admin(conn, queries, "owner")
    assert (await login(client, username)).status == 303
    return username


def scope_to(client, product: dict) -> None:
    client.session.cookie_jar.update_cookies({SCOPE_COOKIE: str(product["id"])})


async def start_session(client, product: dict, lic: dict, hardware_id: str) -> dict:
    start = {"license_key": lic["key"], "hardware_id": hardware_id, "client_version": "2.0.0"}
    response = await client.post(
        "/api/v1/sessions/start", json=start, headers={"X-API-Key": product["api_key"]}
    )
    assert response.status == 200, await response.text()
    return (await response.json())["data"]


# --- charts ----------------------------------------------------------------------------------------


def test_chart_is_escaped_svg_with_axes_legend_and_a_title():
    svg = chart(
        "c1", "Sessions <b>&", "desc", ["00:00", "01:00"], [Plot("Peak <x>", [3, 9], "line", "#123456")]
    )
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert '<title id="c1-title">Sessions &lt;b&gt;&amp;</title>' in svg
    assert "<title>Peak &lt;x&gt;, 01:00: 9</title>" in svg and "<b>" not in svg
    assert svg.count("<circle") == 2 and "<polyline" in svg
    assert ">5</text>" in svg and ">10</text>" in svg  # whole-number grid steps up to the peak


def test_grid_steps_are_round_whole_numbers():
    assert [nice_step(v) for v in (0, 3, 7, 11, 26, 480, 1001)] == [1, 1, 2, 5, 10, 200, 500]


async def test_dashboard_draws_the_charts_from_usage_licenses_devices_and_cards(client, conn, queries, owner):
    product = await make_product(conn, client.app)
    now = datetime.now(UTC)
    hour = now.replace(minute=0, second=0, microsecond=0)
    yesterday = hour - timedelta(days=1)
    await conn.executemany(
        "INSERT INTO usage_hourly (product_id, hour, peak_sessions) VALUES ($1, $2, $3)",
        [
            (product["id"], hour, 7),
            (product["id"], yesterday, 5),
            (product["id"], yesterday + timedelta(hours=1), 4),
        ],
    )
    sold = [await make_license(conn, queries, product) for _ in range(2)]
    await conn.executemany(
        "INSERT INTO devices (license_id, hardware_id, first_seen_at) VALUES ($1, $2, $3)",
        [(sold[0]["id"], "hw-a", now), (sold[0]["id"], "hw-b", now), (sold[1]["id"], "hw-c", now)],
    )
    batch = await conn.fetchval(
        "INSERT INTO card_batches (product_id, count, duration_days) VALUES ($1, 1, 30) RETURNING id",
        product["id"],
    )
    await conn.execute(
        "INSERT INTO card_keys (batch_id, code, status, license_id, redeemed_at)"
        " VALUES ($1, $2, 'redeemed', $3, $4)",
        batch,
        secrets.token_hex(16).upper(),
        sold[0]["id"],
        now,
    )
    scope_to(client, product)
    page = await (await client.get("/admin/")).text()
    today, day_before = now.strftime("%m-%d"), yesterday.strftime("%m-%d")
    assert page.count("<svg") == 3 and 'role="img"' in page
    assert f"<title>Peak sessions, {hour:%H}:00: 7</title>" in page
    assert f"<title>Peak sessions, {day_before}: 5</title>" in page  # the day's peak, not its sum
    assert f"<title>Licenses sold, {today}: 2</title>" in page
    assert f"<title>Activations, {today}: 3</title>" in page
    assert f"<title>Card redemptions, {today}: 1</title>" in page
    assert "Concurrent sessions, last 24 hours (peak per hour, UTC)" in page


async def test_sampler_records_the_peak_of_the_hour_and_keeps_a_higher_one(client, conn, queries):
    deps = client.app[DEPS]
    busy, quiet = await make_product(conn, client.app), await make_product(conn, client.app)
    lic = await make_license(conn, queries, busy, max_devices=3, max_sessions=3)
    for hardware_id in ("s-1", "s-2"):
        await start_session(client, busy, lic, hardware_id)
    counts = await usage.sample_once(deps)
    assert counts[busy["id"]] == 2 and quiet["id"] not in counts
    hour = deps.now().replace(minute=0, second=0, microsecond=0)
    peak = "SELECT peak_sessions FROM usage_hourly WHERE product_id = $1 AND hour = $2"
    assert await conn.fetchval(peak, busy["id"], hour) == 2
    await conn.execute("UPDATE usage_hourly SET peak_sessions = 9 WHERE product_id = $1", busy["id"])
    await usage.sample_once(deps)
    assert await conn.fetchval(peak, busy["id"], hour) == 9  # GREATEST: an earlier, higher peak stays


# --- history by license key ------------------------------------------------------------------------


async def test_history_filters_by_a_pasted_license_key(client, conn, queries, owner):
    product = await make_product(conn, client.app)
    wanted = await make_license(conn, queries, product, customer_name="Gesucht Müller")
    other = await make_license(conn, queries, product, customer_name="Andere Person")
    await start_session(client, product, wanted, "hist-1")
    await start_session(client, product, other, "hist-2")
    page = await (await client.get("/admin/history", params={"license": f"  {wanted['key']} "})).text()
    assert "Gesucht Müller" in page and "Andere Person" not in page
    by_id = await (await client.get("/admin/history", params={"license": str(other["id"])})).text()
    assert "Andere Person" in by_id and "Gesucht Müller" not in by_id


async def test_history_says_when_a_key_names_no_license(client, owner, admin_headers):
    response = await client.get("/admin/history", params={"license": "NOPE-NOPE-NOPE"})
    assert response.status == 404
    assert "No license with key NOPE-NOPE-NOPE." in await response.text()
    api = await client.get(
        "/api/v1/admin/history", params={"license_key": "NOPE-NOPE-NOPE"}, headers=admin_headers
    )
    assert api.status == 404 and (await api.json())["error"]["code"] == "LICENSE_NOT_FOUND"


async def test_management_api_history_takes_a_license_key(client, conn, queries, admin_headers):
    product = await make_product(conn, client.app)
    lic = await make_license(conn, queries, product)
    await start_session(client, product, lic, "api-hist")
    response = await client.get(
        "/api/v1/admin/history", params={"license_key": lic["key"]}, headers=admin_headers
    )
    rows = (await response.json())["data"]
    assert response.status == 200 and {row["license_id"] for row in rows} == {lic["id"]}


# --- audit as readable text ------------------------------------------------------------------------


def test_audit_lines_say_field_before_and_after():
    lines = change_lines(
        {"customer_name": "Mueller", "max_devices": 1, "notes": "x"},
        {"customer_name": "Müller", "max_devices": 1, "notes": "", "features": {"级别": "专业"}},
    )
    assert lines == ["customer_name: Mueller → Müller", "notes: x → (empty)", 'features: {"级别": "专业"}']


async def test_audit_page_shows_german_and_chinese_as_characters(client, conn, queries, owner):
    product = await make_product(conn, client.app)
    lic = await make_license(conn, queries, product, customer_name="Müller")
    token = await page_csrf(client, f"/admin/licenses/{lic['id']}")
    data = {"csrf": token, "customer_name": "张伟", "customer_email": "", "max_devices": "1", "notes": ""}
    response = await client.post(f"/admin/licenses/{lic['id']}/edit", data=data, allow_redirects=False)
    assert response.status == 303
    page = await (await client.get("/admin/audit")).text()
    assert "customer_name: Müller → 张伟" in page
    assert "\\u00fc" not in page and "\\u5f20" not in page


# --- forms: words, typed values, messages, email ---------------------------------------------------


async def test_refused_license_form_keeps_what_was_typed_and_says_why_in_words(client, conn, owner):
    token = await page_csrf(client, "/admin/licenses")
    typed = {
        "csrf": token,
        "product_id": "1",
        "customer_name": "Jürgen 王芳",
        "customer_email": "not-an-address",
    }
    response = await client.post("/admin/licenses", data={**typed, "notes": "Notiz 备注"})
    page = await response.text()
    assert response.status == 400
    assert "Customer email is not a valid address." in page and "customer_email" not in page.split("<form")[0]
    assert (
        'value="Jürgen 王芳"' in page and 'value="not-an-address"' in page and "Notiz 备注</textarea>" in page
    )
    assert await conn.fetchval("SELECT count(*) FROM licenses WHERE customer_name = 'Jürgen 王芳'") == 0


async def test_license_edit_refusal_keeps_the_typed_values_open(client, conn, queries, owner):
    lic = await make_license(conn, queries, await make_product(conn, client.app), customer_name="Alt")
    token = await page_csrf(client, f"/admin/licenses/{lic['id']}")
    data = {"csrf": token, "customer_name": "Neu", "customer_email": "a@", "max_devices": "x", "notes": ""}
    response = await client.post(f"/admin/licenses/{lic['id']}/edit", data=data)
    page = await response.text()
    assert response.status == 400 and '<details class="card" open>' in page
    assert "Device slots must be a whole number." in page and "Customer email is not a valid address." in page
    assert 'value="Neu"' in page and 'value="a@"' in page
    assert await conn.fetchval("SELECT customer_name FROM licenses WHERE id = $1", lic["id"]) == "Alt"


async def test_api_refuses_a_bad_customer_email_and_takes_an_empty_one(client, admin_headers):
    bad = await client.post("/api/v1/admin/licenses", json={"customer_email": "x@"}, headers=admin_headers)
    assert bad.status == 400 and "customer_email" in (await bad.json())["error"]["details"]
    empty = await client.post("/api/v1/admin/licenses", json={"customer_email": ""}, headers=admin_headers)
    good = await client.post(
        "/api/v1/admin/licenses", json={"customer_email": "kunde@例え.jp"}, headers=admin_headers
    )
    assert empty.status == 201 and good.status == 201


async def test_every_change_confirms_itself_once(client, conn, queries, owner):
    lic = await make_license(conn, queries, await make_product(conn, client.app))
    token = await page_csrf(client, f"/admin/licenses/{lic['id']}")
    response = await client.post(f"/admin/licenses/{lic['id']}/extend", data={"csrf": token, "days": "7"})
    assert response.status == 200 and "License extended by 7 days." in await response.text()
    again = await (await client.get(f"/admin/licenses/{lic['id']}")).text()
    assert "License extended by 7 days." not in again  # read once
    created = await client.post(
        "/admin/licenses", data={"csrf": token, "product_id": "1", "customer_name": "Neu"}
    )
    assert "created." in await created.text() and created.url.path.startswith("/admin/licenses/")
    saved = await client.post("/admin/tokens", data={"csrf": token, "name": "shop", "role": "operator"})
    assert "Token created." in await saved.text()
    made = await client.post(
        "/admin/admins",
        data={
            "csrf": token,
            "username": "flash-admin-" + secrets.token_hex(2),
            "role": "viewer",
            "password": "long enough password",
        },
    )
    assert "created." in await made.text()


async def test_a_forged_flash_cookie_shows_nothing(client, owner):
    client.session.cookie_jar.update_cookies({"licsrv_flash": "SGFja2Vk.forged"})
    page = await (await client.get("/admin/")).text()
    assert "Hacked" not in page and 'class="message"' not in page


async def test_pages_are_titled_after_themselves(client, conn, queries, owner):
    lic = await make_license(conn, queries, await make_product(conn, client.app))
    for path, title in (
        ("/admin/", "Dashboard · licsrv"),
        ("/admin/licenses", "Licenses · licsrv"),
        (f"/admin/licenses/{lic['id']}", f"License {lic['id']} · licsrv"),
        ("/admin/history", "Session history · licsrv"),
        ("/admin/audit", "Audit log · licsrv"),
    ):
        assert f"<title>{title}</title>" in await (await client.get(path)).text(), path


# --- content key -----------------------------------------------------------------------------------


async def test_owner_sets_generates_and_clears_the_content_key_seeing_only_a_fingerprint(client, conn, owner):
    product = await make_product(conn, client.app)
    path = f"/admin/products/{product['id']}"
    token = await page_csrf(client, path)
    refused = await client.post(
        path + "/content-key", data={"csrf": token, "action": "set", "content_key": "abc"}
    )
    assert refused.status == 400 and "Content key" in await refused.text()
    generated = await client.post(path + "/content-key", data={"csrf": token, "action": "generate"})
    page = await generated.text()
    assert "Copy it now: it is not shown again." in page and 'id="new-content-key"' in page
    assert await conn.fetchval(
        "SELECT content_key_enc IS NOT NULL FROM products WHERE id = $1", product["id"]
    )
    shown = await (await client.get(path)).text()
    assert "new-content-key" not in shown and 'Stored key: <span class="mono">' in shown
    cleared = await client.post(path + "/content-key", data={"csrf": token, "action": "clear"})
    assert "The content key is cleared." in await cleared.text()
    assert await conn.fetchval("SELECT content_key_enc IS NULL FROM products WHERE id = $1", product["id"])
    audited = "SELECT count(*) FROM audit_log WHERE action = 'product.content_key' AND object_id = $1"
    assert await conn.fetchval(audited, str(product["id"])) == 2


# --- the front page --------------------------------------------------------------------------------


async def test_front_page_names_the_server_and_links_admin_docs_and_health(client):
    response = await client.get("/")
    page = await response.text()
    assert response.status == 200 and "licsrv — license server" in page
    for link in ('href="/admin/login"', 'href="/api/docs"', 'href="/health"', 'href="/portal/'):
        assert link in page
    assert "/metrics" not in page
    assert "script-src" in response.headers["Content-Security-Policy"]
