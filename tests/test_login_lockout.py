"""Admin login lockout: counted before the password is checked, per user+address, throttled per user."""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import replace

import pytest

from licsrv.app import create_app

from admin_helpers import PASSWORD, csrf_of, make_admin
from test_cli import licsrv

WRONG = "not the password"


@pytest.fixture
async def proxied(aiohttp_client, settings):
    """The app behind a trusted proxy, so each test picks its client address with X-Forwarded-For."""
    app = create_app(
        replace(
            settings,
            trusted_proxies=(ipaddress.ip_network("127.0.0.1/32"),),
            login_user_max_failures=8,
            login_address_max_failures=20,
        )
    )
    return await aiohttp_client(app)


async def attempt(client, username: str, password: str, ip: str) -> int:
    token = csrf_of(await (await client.get("/admin/login")).text())
    response = await client.post(
        "/admin/login",
        data={"username": username, "password": password, "csrf": token},
        headers={"X-Forwarded-For": ip},
        allow_redirects=False,
    )
    return response.status


async def events(conn, kind: str, username: str) -> int:
    return await conn.fetchval(
        "SELECT count(*) FROM security_events WHERE kind = $1 AND details->>'username' = $2", kind, username
    )


async def test_200_concurrent_wrong_passwords_check_at_most_five(proxied, conn, queries):
    username = await make_admin(conn, queries)
    token = csrf_of(await (await proxied.get("/admin/login")).text())

    async def wrong() -> int:
        response = await proxied.post(
            "/admin/login",
            data={"username": username, "password": WRONG, "csrf": token},
            headers={"X-Forwarded-For": "203.0.113.9"},
            allow_redirects=False,
        )
        return response.status

    statuses = await asyncio.gather(*(wrong() for _ in range(200)))
    assert set(statuses) <= {401, 429, 503}
    # A 503 (Redis missed its 1 s timeout on a loaded host; the password was not checked) means "try again":
    # each such attempt tries once more after the burst, and must be refused unchecked then.
    statuses = [status if status != 503 else await wrong() for status in statuses]
    # Every checked password is a recorded failure: at most the limit were checked, whatever the timing.
    checked = await events(conn, "admin_login_failed", username)
    assert 1 <= checked <= 5 and statuses.count(401) == checked
    assert statuses.count(429) == 200 - checked
    assert await events(conn, "admin_login_locked", username) == 1


async def test_an_attacker_elsewhere_cannot_lock_out_the_admin(proxied, conn, queries):
    username = await make_admin(conn, queries)
    for _ in range(7):
        await attempt(proxied, username, WRONG, "203.0.113.20")
    assert await attempt(proxied, username, PASSWORD, "203.0.113.20") == 429  # that address is locked
    assert await attempt(proxied, username, PASSWORD, "198.51.100.7") == 303  # the admin's is not


async def test_per_user_throttle_spares_known_addresses_and_unlock_lifts_it(proxied, conn, queries, settings):
    username = await make_admin(conn, queries)
    assert await attempt(proxied, username, PASSWORD, "198.51.100.1") == 303  # a known address from now on
    # Failures spread over many addresses, none reaching its own lock: the per-user limit (8 here) holds.
    statuses = [await attempt(proxied, username, WRONG, f"203.0.113.{n}") for n in range(40, 52)]
    assert statuses.count(401) == 8 and statuses[8:] == [429] * 4
    assert await events(conn, "admin_login_throttled", username) == 1
    assert await attempt(proxied, username, PASSWORD, "192.0.2.77") == 429  # a new address is throttled
    assert await attempt(proxied, username, PASSWORD, "198.51.100.1") == 303  # the known one is not

    assert licsrv(settings, "admins", "unlock", username) == f"admin {username} unlocked"
    assert await attempt(proxied, username, PASSWORD, "192.0.2.77") == 303
    audit = await conn.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'admin.unlock' AND actor = 'cli'"
    )
    assert audit >= 1


async def test_unlock_lifts_an_address_lock(proxied, conn, queries, settings):
    username = await make_admin(conn, queries)
    for _ in range(5):
        assert await attempt(proxied, username, WRONG, "203.0.113.99") == 401
    assert await attempt(proxied, username, PASSWORD, "203.0.113.99") == 429
    licsrv(settings, "admins", "unlock", username)
    assert await attempt(proxied, username, PASSWORD, "203.0.113.99") == 303


async def test_password_spraying_from_one_address_is_throttled_there_only(proxied, conn, queries):
    username = await make_admin(conn, queries)
    sprayed = [await attempt(proxied, f"guess-{n}", WRONG, "203.0.113.150") for n in range(20)]
    assert sprayed == [401] * 20
    assert await attempt(proxied, username, PASSWORD, "203.0.113.150") == 429
    assert await attempt(proxied, username, PASSWORD, "198.51.100.150") == 303
    throttled = await conn.fetchval(
        "SELECT count(*) FROM security_events WHERE kind = 'admin_login_address_throttled'"
        " AND ip = '203.0.113.150'::inet"
    )
    assert throttled == 1


def test_unlock_of_an_unknown_admin_fails(settings):
    import subprocess

    from test_cli import LICSRV, cli_env

    result = subprocess.run(
        [*LICSRV, "admins", "unlock", "nobody-here"],
        env=cli_env(settings),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0 and "No admin named" in result.stderr
