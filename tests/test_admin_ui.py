from __future__ import annotations

import pytest

from admin_helpers import PASSWORD, csrf_of, login, make_admin, page_csrf
from factories import make_license, make_product

PAGES = [
    "/admin/",
    "/admin/licenses",
    "/admin/cards",
    "/admin/sessions",
    "/admin/history",
    "/admin/products",
    "/admin/tokens",
    "/admin/admins",
    "/admin/audit",
    "/admin/security",
    "/admin/password",
]


@pytest.fixture
async def owner(client, conn, queries):
    username = await make_admin(conn, queries, "owner")
    response = await login(client, username)
    assert response.status == 303
    return username


async def test_login_sets_a_strict_httponly_cookie_and_opens_every_page(client, owner):
    for path in PAGES:
        response = await client.get(path)
        assert response.status == 200, path
        assert "<form" in await response.text() or path in ("/admin/audit", "/admin/security")


async def test_cookie_flags(client, conn, queries):
    username = await make_admin(conn, queries)
    response = await login(client, username)
    cookie = response.cookies["licsrv_admin"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/admin"


async def test_pages_need_a_login(client):
    response = await client.get("/admin/licenses", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"].startswith("/admin/login")


async def test_wrong_password_is_refused_and_recorded(client, conn, queries):
    username = await make_admin(conn, queries)
    response = await login(client, username, "wrong password!")
    assert response.status == 401
    assert "Wrong username or password" in await response.text()
    kinds = await conn.fetchval(
        "SELECT count(*) FROM security_events"
        " WHERE kind = 'admin_login_failed' AND details->>'username' = $1",
        username,
    )
    assert kinds == 1


async def test_five_failures_lock_the_account_even_for_the_right_password(client, conn, queries):
    username = await make_admin(conn, queries)
    for _ in range(5):
        assert (await login(client, username, "nope nope nope")).status == 401
    response = await login(client, username, PASSWORD)
    assert response.status == 429
    assert "Too many failed logins" in await response.text()


async def test_post_without_csrf_token_is_refused(client, owner):
    response = await client.post("/admin/licenses", data={"customer_name": "x"}, allow_redirects=False)
    assert response.status == 403
    response = await client.post(
        "/admin/licenses", data={"customer_name": "x", "csrf": "forged"}, allow_redirects=False
    )
    assert response.status == 403


async def test_create_license_and_escape_customer_data(client, conn, owner):
    token = await page_csrf(client, "/admin/licenses")
    name = "<script>alert(1)</script> Jürgen 张伟"
    response = await client.post(
        "/admin/licenses",
        data={"csrf": token, "customer_name": name, "max_devices": "2", "product_id": "1"},
        allow_redirects=False,
    )
    assert response.status == 303
    page = await (await client.get(response.headers["Location"])).text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Jürgen 张伟" in page and "<script>alert(1)" not in page
    assert await conn.fetchval("SELECT count(*) FROM licenses WHERE customer_name = $1", name) == 1


async def test_viewer_sees_but_cannot_change(client, conn, queries):
    viewer = await make_admin(conn, queries, "viewer")
    await login(client, viewer)
    page = await (await client.get("/admin/licenses")).text()
    assert "Create license" not in page
    token = await page_csrf(client, "/admin/licenses")
    response = await client.post(
        "/admin/licenses", data={"csrf": token, "customer_name": "viewer-made"}, allow_redirects=False
    )
    assert response.status == 403
    assert await conn.fetchval("SELECT count(*) FROM licenses WHERE customer_name = 'viewer-made'") == 0


async def test_terminate_from_the_sessions_page(client, conn, queries, owner):
    product = await make_product(conn, client.app)
    headers = {"X-API-Key": product["api_key"]}
    lic = await make_license(conn, queries, product, customer_name="Live Kunde")
    start = {"license_key": lic["key"], "hardware_id": "ui-hw", "client_version": "2.0.0"}
    session = (await (await client.post("/api/v1/sessions/start", json=start, headers=headers)).json())[
        "data"
    ]
    page = await (await client.get("/admin/sessions")).text()
    assert "Live Kunde" in page and "Terminate" in page
    token = await page_csrf(client, "/admin/sessions")
    response = await client.post(
        f"/admin/sessions/{session['session_id']}/terminate", data={"csrf": token}, allow_redirects=False
    )
    assert response.status == 303
    reply = await (
        await client.post(
            "/api/v1/sessions/heartbeat", json={"session_token": session["session_token"]}, headers=headers
        )
    ).json()
    assert reply["error"]["code"] == "SESSION_TERMINATED"


async def test_dashboard_summary_json(client, owner):
    response = await client.get("/admin/api/summary")
    body = await response.json()
    assert {"live_sessions", "licenses", "devices", "unused_cards", "newest"} <= set(body)


async def test_logout_ends_the_session(client, owner):
    token = await page_csrf(client)
    await client.post("/admin/logout", data={"csrf": token}, allow_redirects=False)
    response = await client.get("/admin/", allow_redirects=False)
    assert response.status == 303


async def test_disabling_an_admin_ends_their_open_session(client, conn, queries):
    operator = await make_admin(conn, queries, "operator")
    await login(client, operator)
    assert (await client.get("/admin/licenses", allow_redirects=False)).status == 200
    await conn.execute("UPDATE admin_users SET disabled = true WHERE username = $1", operator)
    response = await client.get("/admin/licenses", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"].startswith("/admin/login")


async def test_a_role_change_applies_to_an_open_session(client, conn, queries):
    operator = await make_admin(conn, queries, "operator")
    await login(client, operator)
    await conn.execute("UPDATE admin_users SET role = 'viewer' WHERE username = $1", operator)
    token = await page_csrf(client, "/admin/licenses")
    response = await client.post(
        "/admin/licenses", data={"csrf": token, "customer_name": "x"}, allow_redirects=False
    )
    assert response.status == 403


async def test_own_password_change_keeps_this_session_and_ends_the_old_ones(client, conn, queries):
    import aiohttp

    username = await make_admin(conn, queries, "operator")
    await login(client, username)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other:
        form_page = await other.get(client.make_url("/admin/login"))
        token = csrf_of(await form_page.text())
        credentials = {"username": username, "password": PASSWORD, "csrf": token, "next": "/admin/"}
        assert (
            await other.post(client.make_url("/admin/login"), data=credentials, allow_redirects=False)
        ).status == 303
        token = await page_csrf(client, "/admin/password")
        new = "a much newer password"
        form = {"csrf": token, "current_password": PASSWORD, "new_password": new, "repeat_password": new}
        response = await client.post("/admin/password", data=form)
        assert response.status == 200 and "Password changed" in await response.text()
        assert (await client.get("/admin/", allow_redirects=False)).status == 200
        assert (await other.get(client.make_url("/admin/"), allow_redirects=False)).status == 303


async def test_sessions_end_at_their_maximum_age(aiohttp_client, settings, conn, queries):
    from dataclasses import replace

    from licsrv.app import create_app

    short = await aiohttp_client(create_app(replace(settings, admin_max_session_age=0)))
    username = await make_admin(conn, queries)
    assert (await login(short, username)).status == 303
    assert (await short.get("/admin/", allow_redirects=False)).status == 303


async def test_unknown_ids_in_admin_urls_are_404_pages_not_500(client, owner):
    for path in ("/admin/licenses/999999999", "/admin/products/999999999", "/admin/cards/999999999.csv"):
        response = await client.get(path)
        assert response.status == 404, path
        assert "not found" in (await response.text()).lower()


async def test_a_burst_of_logins_leaves_the_pool_to_everyone_else(aiohttp_client, settings, conn, queries):
    """A login checks its password (argon2id, queued on the password threads) holding no pooled connection:
    twenty logins at once on a pool of two still let a session start through within its acquire timeout."""
    import asyncio
    from dataclasses import replace

    import aiohttp

    from licsrv.app import create_app

    # (concurrent attempts count as failures until they succeed: the lockout is not what is tested here)
    small_pool = replace(
        settings, db_pool_min=1, db_pool_max=2, db_acquire_timeout=1.0, login_max_failures=100
    )
    app = create_app(small_pool)
    client = await aiohttp_client(app)
    username = await make_admin(conn, queries)
    product = await make_product(conn, app)
    lic = await make_license(conn, queries, product)

    async def log_in() -> int:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
            token = csrf_of(await (await browser.get(client.make_url("/admin/login"))).text())
            form = {"username": username, "password": PASSWORD, "csrf": token, "next": "/admin/"}
            response = await browser.post(client.make_url("/admin/login"), data=form, allow_redirects=False)
            return response.status

    async def start() -> int:
        await asyncio.sleep(0.05)  # while the logins wait for the password threads
        body = {"license_key": lic["key"], "hardware_id": "hw-burst", "client_version": "1.0.0"}
        response = await client.post(
            "/api/v1/sessions/start", json=body, headers={"X-API-Key": product["api_key"]}
        )
        return response.status

    *logins, started = await asyncio.gather(*(log_in() for _ in range(20)), start())
    assert logins == [303] * 20
    assert started == 200
